//! Packets for tests, fuzz targets and benchmarks: IPv4/IPv6 headers, TCP, UDP and ICMP echo,
//! with correct checksums, and the full checksum check that translation is tested against.

use std::net::IpAddr;

use crate::csum;
use crate::packet::{self, proto, Kind};

/// A TCP header (20 bytes, checksum left 0) with `flags`, followed by `payload`.
pub fn tcp(src_port: u16, dst_port: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[12] = 5 << 4;
    h[13] = flags;
    h[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A UDP header (checksum left 0) followed by `payload`.
pub fn udp(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 8];
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    let len = (8 + payload.len()) as u16;
    h[4..6].copy_from_slice(&len.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// An ICMP (`v6`: ICMPv6) echo request or reply with identifier `id` (checksum left 0).
pub fn echo(v6: bool, request: bool, id: u16, seq: u16) -> Vec<u8> {
    let typ = match (v6, request) {
        (false, true) => 8,
        (false, false) => 0,
        (true, true) => 128,
        (true, false) => 129,
    };
    let mut h = vec![typ, 0, 0, 0];
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(b"ping");
    h
}

/// An IP packet from `src` to `dst` (one family) carrying `l4` of protocol `proto`, with the
/// IPv6 extension headers `ext` (already chained: `proto` is the first one's number when
/// `ext` is not empty, the last one names the transport), and every checksum filled.
pub fn ip(src: IpAddr, dst: IpAddr, proto: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
    let mut p = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + ext.len() + l4.len()) as u16;
            let mut h = vec![0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0];
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = (ext.len() + l4.len()) as u16;
            let mut h = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
            h[4..6].copy_from_slice(&len.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h
        }
        _ => Vec::new(),
    };
    p.extend_from_slice(ext);
    p.extend_from_slice(l4);
    fill_checksums(&mut p);
    p
}

/// The offset of the transport checksum `proto` has (with or without pseudo-header).
fn checksum_offset(proto: u8, v6: bool) -> Option<usize> {
    match proto {
        proto::TCP => Some(16),
        proto::UDP | proto::UDPLITE | proto::DCCP => Some(6),
        proto::ICMP if !v6 => Some(2),
        proto::ICMPV6 if v6 => Some(2),
        _ => None,
    }
}

/// The full checksum sum of the transport part of `p` (pseudo-header included where the
/// protocol has one), the checksum field counted as it is.
fn transport_sum(p: &[u8], pkt: &packet::Packet) -> u64 {
    let v6 = pkt.flow.src.is_ipv6();
    let l4 = p.get(pkt.l4_offset..pkt.end).unwrap_or(&[]);
    let data = csum::sum(l4, 0);
    if pkt.flow.proto == proto::ICMP && !v6 {
        return data;
    }
    let (s, d) = match (pkt.flow.src, pkt.flow.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        _ => (Vec::new(), Vec::new()),
    };
    data + csum::pseudo_header(&s, &d, pkt.flow.proto, l4.len())
}

/// Recomputes the IPv4 header checksum and the transport checksum of an unfragmented `p`
/// (UDP: 0 becomes 0xffff).
pub fn fill_checksums(p: &mut [u8]) {
    let Ok(pkt) = packet::parse(p) else { return };
    let v6 = pkt.flow.src.is_ipv6();
    if !v6 {
        p[10..12].fill(0);
        let c = !csum::fold(csum::sum(&p[..pkt.l4_offset], 0));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    if pkt.fragment.is_some() || pkt.kind == Kind::LaterFragment {
        return;
    }
    let Some(off) = checksum_offset(pkt.flow.proto, v6) else {
        return;
    };
    let at = pkt.l4_offset + off;
    if at + 2 > pkt.end {
        return;
    }
    p[at..at + 2].fill(0);
    let mut c = !csum::fold(transport_sum(p, &pkt));
    if c == 0 && pkt.flow.proto == proto::UDP {
        c = 0xffff;
    }
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Whether the IPv4 header checksum and the transport checksum of an unfragmented `p` verify
/// (a UDP checksum of 0 verifies).
pub fn checksums_valid(p: &[u8]) -> bool {
    let Ok(pkt) = packet::parse(p) else {
        return false;
    };
    let v6 = pkt.flow.src.is_ipv6();
    if !v6 && csum::fold(csum::sum(&p[..pkt.l4_offset], 0)) != 0xffff {
        return false;
    }
    let Some(off) = checksum_offset(pkt.flow.proto, v6) else {
        return true;
    };
    let at = pkt.l4_offset + off;
    if pkt.flow.proto == proto::UDP && p.get(at..at + 2) == Some(&[0, 0]) {
        return true;
    }
    csum::fold(transport_sum(p, &pkt)) == 0xffff
}
