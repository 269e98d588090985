//! Packets for the root-only tests of this crate: just enough IPv4/IPv6/UDP/ICMP to craft and
//! check packets on a TUN device. The namespaces and the root check come from
//! `ferrowg-testkit`.
//!
//! Topology of every test (one namespace each, nothing touches the host's network):
//!
//! ```text
//!   netns fwt-<pid>-<test>-<n>
//!   +-------------------------------------------------------------+
//!   |  lo (up: 127.0.0.1, ::1)                                     |
//!   |                                                             |
//!   |  UdpSocket ---- kernel stack ---- fwg<pid><x> (TUN) <==> TunQueue (the test)
//!   |               10.77.x.1/24, fd00:77:x::1/64;                |
//!   |               10.77.x.2 / fd00:77:x::2 is "the peer", which  |
//!   |               only exists as packets the test reads/writes   |
//!   +-------------------------------------------------------------+
//! ```
//!
//! Each test body runs on a thread that has entered the namespace (`Netns::run_in`), so
//! cargo's other test threads stay where they are; the namespace is deleted by a drop guard
//! even when the test fails.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

/// The longest any test waits for one thing to happen.
pub const WAIT: Option<Duration> = Some(Duration::from_secs(5));

/// A TUN interface name unique to this test process and `suffix` (at most 4 characters).
pub fn tun_name(suffix: &str) -> String {
    format!("fwg{}{suffix}", std::process::id())
}

// ---- packets ------------------------------------------------------------------------------

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_UDP: u8 = 17;

/// The Internet checksum (RFC 1071) over the concatenation of `parts`.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload_len: usize) -> [u8; 20] {
    let total = (20 + payload_len) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[6] = 0x40; // DF
    h[8] = 64; // TTL
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let csum = checksum(&[&h]);
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    h
}

fn udp_header(sport: u16, dport: u16, payload: &[u8], pseudo: &[u8]) -> [u8; 8] {
    let len = (8 + payload.len()) as u16;
    let mut u = [0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&len.to_be_bytes());
    let mut csum = checksum(&[pseudo, &u, payload]);
    if csum == 0 {
        csum = 0xffff;
    }
    u[6..8].copy_from_slice(&csum.to_be_bytes());
    u
}

fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> Vec<u8> {
    [
        &src.octets()[..],
        &dst.octets(),
        &[0, proto],
        &(len as u16).to_be_bytes(),
    ]
    .concat()
}

fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: usize) -> Vec<u8> {
    [
        &src.octets()[..],
        &dst.octets(),
        &(len as u32).to_be_bytes(),
        &[0, 0, 0, proto],
    ]
    .concat()
}

/// An IPv4 UDP packet with valid checksums.
pub fn ipv4_udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let pseudo = pseudo_v4(*src.ip(), *dst.ip(), PROTO_UDP, 8 + payload.len());
    let udp = udp_header(src.port(), dst.port(), payload, &pseudo);
    let ip = ipv4_header(*src.ip(), *dst.ip(), PROTO_UDP, 8 + payload.len());
    [&ip[..], &udp, payload].concat()
}

/// An IPv6 UDP packet with a valid checksum.
pub fn ipv6_udp(src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Vec<u8> {
    let pseudo = pseudo_v6(*src.ip(), *dst.ip(), PROTO_UDP, 8 + payload.len());
    let udp = udp_header(src.port(), dst.port(), payload, &pseudo);
    let mut ip = [0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ip[6] = PROTO_UDP;
    ip[7] = 64; // hop limit
    ip[8..24].copy_from_slice(&src.ip().octets());
    ip[24..40].copy_from_slice(&dst.ip().octets());
    [&ip[..], &udp, payload].concat()
}

/// An IPv4 ICMP echo request.
pub fn ipv4_echo_request(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0];
    icmp.extend_from_slice(&id.to_be_bytes());
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(data);
    let csum = checksum(&[&icmp]);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    let ip = ipv4_header(src, dst, PROTO_ICMP, icmp.len());
    [&ip[..], &icmp].concat()
}

/// A UDP packet taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
    /// The UDP checksum verifies (always true for IPv4 packets sent without one).
    pub checksum_ok: bool,
}

/// Parses an IPv4 (no options needed, but allowed) or IPv6 (no extension headers) UDP packet.
/// Panics on an IPv4 header whose checksum or total length is wrong: that is a kernel or TUN
/// framing bug, not noise.
pub fn parse_udp(pkt: &[u8]) -> Option<Udp> {
    match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
            assert_eq!(total, pkt.len(), "IPv4 total length vs packet size");
            assert_eq!(checksum(&[&pkt[..ihl]]), 0, "IPv4 header checksum");
            if pkt[9] != PROTO_UDP {
                return None;
            }
            let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
            let udp = &pkt[ihl..];
            let pseudo = pseudo_v4(src, dst, PROTO_UDP, udp.len());
            let checksum_ok = udp[6..8] == [0, 0] || checksum(&[&pseudo, udp]) == 0;
            Some(udp_parts(src.into(), dst.into(), udp, checksum_ok))
        }
        6 => {
            if pkt[6] != PROTO_UDP {
                return None;
            }
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[8..24]).ok()?);
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[24..40]).ok()?);
            let udp = &pkt[40..];
            let pseudo = pseudo_v6(src, dst, PROTO_UDP, udp.len());
            let checksum_ok = checksum(&[&pseudo, udp]) == 0;
            Some(udp_parts(src.into(), dst.into(), udp, checksum_ok))
        }
        v => panic!("packet of IP version {v} from the TUN device"),
    }
}

fn udp_parts(src: std::net::IpAddr, dst: std::net::IpAddr, udp: &[u8], checksum_ok: bool) -> Udp {
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    assert_eq!(len, udp.len(), "UDP length vs IP payload");
    Udp {
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        payload: udp[8..].to_vec(),
        checksum_ok,
    }
}

/// If `pkt` is an IPv4 ICMP echo reply: (source, id, seq, data).
pub fn parse_echo_reply(pkt: &[u8]) -> Option<(Ipv4Addr, u16, u16, Vec<u8>)> {
    if pkt.first()? >> 4 != 4 || pkt[9] != PROTO_ICMP {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let icmp = &pkt[ihl..];
    if icmp[0] != 0 {
        return None;
    }
    assert_eq!(checksum(&[icmp]), 0, "ICMP checksum");
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((src, id, seq, icmp[8..].to_vec()))
}

#[test]
fn crafted_packets_parse_back() {
    let src = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 5555);
    let dst = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 51820);
    let pkt = ipv4_udp(src, dst, b"hello");
    let udp = parse_udp(&pkt).unwrap();
    assert_eq!((udp.src, udp.dst), (src.into(), dst.into()));
    assert!(udp.checksum_ok);
    assert_eq!(udp.payload, b"hello");

    let src6: SocketAddrV6 = "[fd00::2]:1".parse().unwrap();
    let dst6: SocketAddrV6 = "[fd00::1]:2".parse().unwrap();
    let udp = parse_udp(&ipv6_udp(src6, dst6, b"odd")).unwrap();
    assert!(udp.checksum_ok);
    assert_eq!(udp.dst, dst6.into());
}
