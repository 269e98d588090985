//! The parser on well-formed packets of each kind, on extension headers and fragments, and on
//! every truncation of them.

use std::net::IpAddr;

use super::*;
use crate::build;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An IPv6 extension header of `len8` 8-byte units naming `next`.
fn ext(next: u8, len8: usize) -> Vec<u8> {
    let mut h = vec![0u8; len8 * 8];
    h[0] = next;
    h[1] = (len8 - 1) as u8;
    h
}

/// An IPv6 fragment header naming `next`.
fn frag6(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

#[test]
fn ipv4_tcp_udp_echo() {
    let t = build::ip(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        proto::TCP,
        &[],
        &build::tcp(1234, 443, TCP_SYN, b""),
    );
    let p = parse(&t).unwrap();
    assert_eq!(
        p.flow,
        Flow {
            proto: 6,
            src: ip("10.0.0.1"),
            dst: ip("10.0.0.2"),
            src_port: 1234,
            dst_port: 443
        }
    );
    assert_eq!(p.kind, Kind::Tcp { flags: TCP_SYN });
    assert_eq!((p.l4_offset, p.end, p.fragment), (20, 40, None));

    let u = build::ip(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        proto::UDP,
        &[],
        &build::udp(5683, 53, b"x"),
    );
    let p = parse(&u).unwrap();
    assert_eq!(
        (p.kind, p.flow.src_port, p.flow.dst_port),
        (Kind::Ports, 5683, 53)
    );

    let e = build::ip(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        proto::ICMP,
        &[],
        &build::echo(false, true, 77, 1),
    );
    let p = parse(&e).unwrap();
    assert_eq!(
        (p.kind, p.flow.src_port, p.flow.dst_port),
        (Kind::EchoRequest, 77, 77)
    );
    let e = build::ip(
        ip("fd00::1"),
        ip("fd00::2"),
        proto::ICMPV6,
        &[],
        &build::echo(true, false, 78, 1),
    );
    let p = parse(&e).unwrap();
    assert_eq!((p.kind, p.flow.src_port), (Kind::EchoReply, 78));
}

#[test]
fn link_padding_is_ignored_and_short_packets_refused() {
    let mut t = build::ip(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        proto::UDP,
        &[],
        &build::udp(1, 2, b""),
    );
    t.extend_from_slice(&[0xee; 6]);
    assert_eq!(parse(&t).unwrap().end, 28);
    t[3] = 200; // total length beyond the buffer
    assert_eq!(parse(&t), Err(ParseError::Truncated));
    t[3] = 19;
    assert_eq!(parse(&t), Err(ParseError::HeaderLength));
    t[3] = 28;
    t[0] = 0x44; // IHL 16 bytes
    assert_eq!(parse(&t), Err(ParseError::HeaderLength));
    t[0] = 0x55;
    assert_eq!(parse(&t), Err(ParseError::Version));
    assert_eq!(parse(&[]), Err(ParseError::Truncated));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let chain = [ext(proto::DSTOPTS, 1), ext(proto::TCP, 2)].concat();
    let mut hbh = chain.clone();
    hbh[0] = proto::DSTOPTS;
    let packets = [
        build::ip(
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            proto::TCP,
            &[],
            &build::tcp(1, 2, TCP_ACK, b"abc"),
        ),
        build::ip(
            ip("fd00::1"),
            ip("fd00::2"),
            proto::HOPOPT,
            &hbh,
            &build::tcp(1, 2, 0, b""),
        ),
        build::ip(
            ip("fd00::1"),
            ip("fd00::2"),
            proto::ICMPV6,
            &[],
            &build::echo(true, true, 1, 2),
        ),
    ];
    for full in packets {
        assert!(parse(&full).is_ok());
        for n in 0..full.len() {
            let mut cut = full[..n].to_vec();
            assert!(parse(&cut).is_err(), "{n} bytes of {}", full.len());
            // Length fields that agree with the cut: still refused or read within bounds.
            if cut.len() >= 40 && cut[0] >> 4 == 6 {
                let len = (cut.len() - 40) as u16;
                cut[4..6].copy_from_slice(&len.to_be_bytes());
                let _ = parse(&cut);
            }
        }
    }
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let l4 = build::udp(4000, 53, b"q");
    let chain = [
        ext(proto::ROUTING, 1),
        ext(proto::DSTOPTS, 1),
        ext(proto::AH, 2),
        vec![proto::UDP, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // AH: (2 + 2) * 4 bytes
    ]
    .concat();
    let p = build::ip(ip("fd00::1"), ip("fd00::2"), proto::HOPOPT, &chain, &l4);
    let got = parse(&p).unwrap();
    assert_eq!(
        (got.flow.proto, got.flow.src_port, got.flow.dst_port),
        (proto::UDP, 4000, 53)
    );
    assert_eq!(got.l4_offset, 40 + chain.len());
    assert!(!got.routed);

    // A routing header with segments left is flagged.
    let mut routed = ext(proto::UDP, 1);
    routed[3] = 1;
    let p = build::ip(ip("fd00::1"), ip("fd00::2"), proto::ROUTING, &routed, &l4);
    assert!(parse(&p).unwrap().routed);
}

#[test]
fn ipv6_extension_header_bounds() {
    let l4 = build::udp(1, 2, b"");
    let mut chain = Vec::new();
    for i in 0..MAX_EXT_HEADERS {
        let next = if i + 1 == MAX_EXT_HEADERS {
            proto::UDP
        } else {
            proto::DSTOPTS
        };
        chain.extend(ext(next, 1));
    }
    let ok = build::ip(ip("fd00::1"), ip("fd00::2"), proto::DSTOPTS, &chain, &l4);
    assert!(parse(&ok).is_ok());
    let mut more = ext(proto::DSTOPTS, 1);
    more.extend(&chain);
    let bad = build::ip(ip("fd00::1"), ip("fd00::2"), proto::DSTOPTS, &more, &l4);
    assert_eq!(parse(&bad), Err(ParseError::TooManyExtensionHeaders));

    // Hop-by-hop only first; one fragment header.
    let late_hbh = [ext(proto::HOPOPT, 1), ext(proto::UDP, 1)].concat();
    let p = build::ip(ip("fd00::1"), ip("fd00::2"), proto::DSTOPTS, &late_hbh, &l4);
    assert_eq!(parse(&p), Err(ParseError::ExtensionHeaderOrder));
    let two = [
        frag6(proto::FRAGMENT, 0, true, 1),
        frag6(proto::UDP, 0, true, 1),
    ]
    .concat();
    let p = build::ip(ip("fd00::1"), ip("fd00::2"), proto::FRAGMENT, &two, &l4);
    assert_eq!(parse(&p), Err(ParseError::ExtensionHeaderOrder));
    // An extension header running past the payload.
    let long = ext(proto::UDP, 200);
    let mut p = build::ip(ip("fd00::1"), ip("fd00::2"), proto::DSTOPTS, &long, &l4);
    p[4..6].copy_from_slice(&16u16.to_be_bytes());
    p.truncate(56);
    assert_eq!(parse(&p), Err(ParseError::Truncated));
}

#[test]
fn fragments() {
    let l4 = build::udp(4000, 53, &[7; 32]);
    // IPv6 first fragment: ports read; later fragment: none.
    let first = build::ip(
        ip("fd00::1"),
        ip("fd00::2"),
        proto::FRAGMENT,
        &frag6(proto::UDP, 0, true, 0xdead),
        &l4,
    );
    let p = parse(&first).unwrap();
    assert_eq!(
        p.fragment,
        Some(Fragment {
            id: 0xdead,
            offset: 0,
            more: true
        })
    );
    assert_eq!((p.kind, p.flow.dst_port), (Kind::Ports, 53));
    let later = build::ip(
        ip("fd00::1"),
        ip("fd00::2"),
        proto::FRAGMENT,
        &frag6(proto::UDP, 5, false, 0xdead),
        &[1; 16],
    );
    let p = parse(&later).unwrap();
    assert_eq!(
        (p.kind, p.flow.proto, p.flow.dst_port),
        (Kind::LaterFragment, proto::UDP, 0)
    );
    assert_eq!(
        p.fragment,
        Some(Fragment {
            id: 0xdead,
            offset: 5,
            more: false
        })
    );
    // An atomic fragment is a whole packet.
    let atomic = build::ip(
        ip("fd00::1"),
        ip("fd00::2"),
        proto::FRAGMENT,
        &frag6(proto::UDP, 0, false, 9),
        &l4,
    );
    assert_eq!(parse(&atomic).unwrap().fragment, None);
    // A first fragment too short for its transport header.
    let tiny = build::ip(
        ip("fd00::1"),
        ip("fd00::2"),
        proto::FRAGMENT,
        &frag6(proto::TCP, 0, true, 9),
        &[0; 8],
    );
    assert_eq!(parse(&tiny), Err(ParseError::TinyFragment));

    // IPv4: MF and offset.
    let mut v4 = build::ip(ip("10.0.0.1"), ip("10.0.0.2"), proto::UDP, &[], &l4);
    v4[6] = 0x20; // MF
    let p = parse(&v4).unwrap();
    assert_eq!(
        p.fragment,
        Some(Fragment {
            id: 0x1234,
            offset: 0,
            more: true
        })
    );
    assert_eq!(p.flow.dst_port, 53);
    v4[6] = 0x00;
    v4[7] = 3;
    assert_eq!(parse(&v4).unwrap().kind, Kind::LaterFragment);
    // A TCP fragment at offset 1 (8 bytes) could rewrite the first fragment's header.
    let mut t = build::ip(ip("10.0.0.1"), ip("10.0.0.2"), proto::TCP, &[], &[0; 24]);
    t[7] = 1;
    assert_eq!(parse(&t), Err(ParseError::TinyFragment));
}

#[test]
fn icmp_errors_quote_a_flow() {
    let inner = build::ip(
        ip("10.0.0.2"),
        ip("192.168.1.5"),
        proto::UDP,
        &[],
        &build::udp(4000, 53, b"query"),
    );
    let mut msg = vec![3, 4, 0, 0, 0, 0, 5, 0x78]; // fragmentation needed, MTU 1400
    msg.extend_from_slice(&inner[..28]);
    let e = build::ip(ip("10.0.0.9"), ip("10.0.0.2"), proto::ICMP, &[], &msg);
    let p = parse(&e).unwrap();
    let quoted = Flow {
        proto: proto::UDP,
        src: ip("10.0.0.2"),
        dst: ip("192.168.1.5"),
        src_port: 4000,
        dst_port: 53,
    };
    assert_eq!(p.kind, Kind::IcmpError { quoted });

    // ICMPv6 packet too big quoting an echo request.
    let inner = build::ip(
        ip("fd00::2"),
        ip("fd00::5"),
        proto::ICMPV6,
        &[],
        &build::echo(true, true, 42, 1),
    );
    let mut msg = vec![2, 0, 0, 0, 0, 0, 5, 0x00];
    msg.extend_from_slice(&inner);
    let e = build::ip(ip("fd00::9"), ip("fd00::2"), proto::ICMPV6, &[], &msg);
    let Kind::IcmpError { quoted } = parse(&e).unwrap().kind else {
        panic!("not an error")
    };
    assert_eq!(
        (quoted.proto, quoted.src_port, quoted.dst_port),
        (proto::ICMPV6, 42, 42)
    );

    // Quoting the other family, or nothing readable, is malformed.
    let v6inner = build::ip(
        ip("fd00::2"),
        ip("fd00::5"),
        proto::UDP,
        &[],
        &build::udp(1, 2, b""),
    );
    let mut msg = vec![3, 1, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&v6inner);
    let e = build::ip(ip("10.0.0.9"), ip("10.0.0.2"), proto::ICMP, &[], &msg);
    assert_eq!(parse(&e), Err(ParseError::Quoted));
    let e = build::ip(
        ip("10.0.0.9"),
        ip("10.0.0.2"),
        proto::ICMP,
        &[],
        &[11, 0, 0, 0, 0, 0, 0, 0, 0x45],
    );
    assert_eq!(parse(&e), Err(ParseError::Quoted));
}

#[test]
fn other_protocols_are_opaque() {
    let p = build::ip(ip("10.0.0.1"), ip("10.0.0.2"), 47, &[], &[0; 4]);
    let got = parse(&p).unwrap();
    assert_eq!(
        (got.kind, got.flow.proto, got.flow.src_port),
        (Kind::Opaque, 47, 0)
    );
    let p = build::ip(
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        proto::SCTP,
        &[],
        &[0, 9, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0],
    );
    let got = parse(&p).unwrap();
    assert_eq!(
        (got.kind, got.flow.src_port, got.flow.dst_port),
        (Kind::Ports, 9, 10)
    );
}
