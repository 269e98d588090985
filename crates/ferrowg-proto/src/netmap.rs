//! 1:1 prefix translation (iptables' NETMAP) for a peer's site: two sites that both use
//! 192.168.1.0/24 become reachable as, say, 10.201.1.0/24 and 10.201.2.0/24. A [`Netmap`] pairs
//! the site's real prefix with its mapped prefix (same family and length); the host bits of an
//! address are kept. The device applies a peer's maps itself:
//! - on receive, before the source check, a source inside the real prefix becomes the mapped
//!   address ([`Netmap::from_site`]); the peer's allowed IPs hold the mapped prefix;
//! - on send, after routing to the peer (by the mapped prefix), a destination inside the mapped
//!   prefix becomes the real address ([`Netmap::to_site`]).
//!
//! Checksums are updated incrementally (RFC 1624): the IPv4 header's, and the TCP, UDP and
//! ICMPv6 checksums, whose pseudo-header holds the addresses (a UDP/IPv4 checksum of zero, "none",
//! stays zero), UDP-Lite's too. IPv6 extension headers are walked (at most 8); a packet with a
//! routing header is left as it is. Later fragments carry no transport header and only get their
//! addresses rewritten; so do packets whose transport header is cut short. ICMP errors keep the
//! addresses of the packet they quote. Packets that are not IP, or too short for their IP
//! header, are left as they are (the source check or the route then decides).

use core::net::IpAddr;

use crate::allowedips::canonical_prefix;

/// A site's real prefix and the prefix it is reachable as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netmap {
    real: (IpAddr, u8),
    mapped: (IpAddr, u8),
}

/// Why a pair of prefixes is not a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidNetmap;

impl core::fmt::Display for InvalidNetmap {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a netmap needs two valid prefixes of one family and one length")
    }
}

/// Which address of a packet a rewrite touches.
#[derive(Clone, Copy)]
enum Which {
    Source,
    Destination,
}

impl Netmap {
    /// The map from `real` to `mapped` (address and prefix length each; host bits ignored).
    pub fn new(real: (IpAddr, u8), mapped: (IpAddr, u8)) -> Result<Netmap, InvalidNetmap> {
        let real = canonical_prefix(real.0, real.1).map_err(|_| InvalidNetmap)?;
        let mapped = canonical_prefix(mapped.0, mapped.1).map_err(|_| InvalidNetmap)?;
        if real.0.is_ipv4() != mapped.0.is_ipv4() || real.1 != mapped.1 {
            return Err(InvalidNetmap);
        }
        Ok(Netmap { real, mapped })
    }

    /// The site's real prefix.
    pub fn real(&self) -> (IpAddr, u8) {
        self.real
    }

    /// The prefix the site is reachable as.
    pub fn mapped(&self) -> (IpAddr, u8) {
        self.mapped
    }

    /// A packet from the site: a source inside the real prefix becomes the mapped address.
    /// Returns whether the packet changed.
    pub fn from_site(&self, packet: &mut [u8]) -> bool {
        rewrite(packet, Which::Source, self.real, self.mapped)
    }

    /// A packet to the site: a destination inside the mapped prefix becomes the real address.
    /// Returns whether the packet changed.
    pub fn to_site(&self, packet: &mut [u8]) -> bool {
        rewrite(packet, Which::Destination, self.mapped, self.real)
    }
}

/// `addr` moved from prefix `from` to prefix `to` (host bits kept), if it lies in `from`.
fn translate(addr: IpAddr, from: (IpAddr, u8), to: (IpAddr, u8)) -> Option<IpAddr> {
    match (addr, from.0, to.0) {
        (IpAddr::V4(a), IpAddr::V4(f), IpAddr::V4(t)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(from.1)).unwrap_or(0);
            let a = u32::from(a);
            (a & mask == u32::from(f)).then(|| IpAddr::V4((u32::from(t) | (a & !mask)).into()))
        }
        (IpAddr::V6(a), IpAddr::V6(f), IpAddr::V6(t)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(from.1)).unwrap_or(0);
            let a = u128::from(a);
            (a & mask == u128::from(f)).then(|| IpAddr::V6((u128::from(t) | (a & !mask)).into()))
        }
        _ => None,
    }
}

/// Rewrites the `which` address of `packet` from prefix `from` to prefix `to`, with its
/// checksums; false if the packet is not IP, too short, or its address is outside `from`.
fn rewrite(packet: &mut [u8], which: Which, from: (IpAddr, u8), to: (IpAddr, u8)) -> bool {
    match packet.first().map(|b| b >> 4) {
        Some(4) => rewrite_v4(packet, which, from, to),
        Some(6) => rewrite_v6(packet, which, from, to),
        _ => false,
    }
}

fn rewrite_v4(p: &mut [u8], which: Which, from: (IpAddr, u8), to: (IpAddr, u8)) -> bool {
    let ihl = usize::from(p[0] & 0x0f) * 4;
    if ihl < 20 || p.len() < ihl {
        return false;
    }
    let at = match which {
        Which::Source => 12,
        Which::Destination => 16,
    };
    let old: [u8; 4] = [p[at], p[at + 1], p[at + 2], p[at + 3]];
    let Some(IpAddr::V4(new)) = translate(IpAddr::from(old), from, to) else {
        return false;
    };
    let new = new.octets();
    p[at..at + 4].copy_from_slice(&new);
    adjust(p, 10, &old, &new);
    // Only a first (or whole) packet carries the transport header.
    let offset = u16::from_be_bytes([p[6], p[7]]) & 0x1fff;
    if offset == 0 {
        let (proto, rest) = (p[9], &mut p[ihl..]);
        transport(rest, proto, &old, &new, false);
    }
    true
}

fn rewrite_v6(p: &mut [u8], which: Which, from: (IpAddr, u8), to: (IpAddr, u8)) -> bool {
    if p.len() < 40 {
        return false;
    }
    let at = match which {
        Which::Source => 8,
        Which::Destination => 24,
    };
    let mut old = [0u8; 16];
    old.copy_from_slice(&p[at..at + 16]);
    let Some(IpAddr::V6(new)) = translate(IpAddr::from(old), from, to) else {
        return false;
    };
    let Some(transport_at) = v6_transport(p) else {
        // A routing header (whose final destination is in the pseudo-header) or a chain the
        // walk gives up on: left untranslated, so the source check or the route decides.
        return false;
    };
    let new = new.octets();
    p[at..at + 16].copy_from_slice(&new);
    if let Some((proto, off)) = transport_at {
        transport(&mut p[off..], proto, &old, &new, true);
    }
    true
}

/// Most IPv6 extension headers walked before the transport header.
const MAX_EXTENSION_HEADERS: usize = 8;

/// Where the transport header of an IPv6 packet starts and its protocol: `Some(None)` for a
/// later fragment or a packet cut short (no transport header to update), `None` when the
/// packet is not to be translated (a routing header, or more than [`MAX_EXTENSION_HEADERS`]).
fn v6_transport(p: &[u8]) -> Option<Option<(u8, usize)>> {
    let (mut next, mut off) = (p[6], 40usize);
    for _ in 0..MAX_EXTENSION_HEADERS {
        match next {
            // Hop-by-hop and destination options: length in 8-byte units after the first 8.
            0 | 60 => {
                let Some(h) = p.get(off..off + 2) else {
                    return Some(None);
                };
                next = h[0];
                off += 8 + usize::from(h[1]) * 8;
            }
            // Fragment: only the first fragment holds the transport header.
            44 => {
                let Some(h) = p.get(off..off + 8) else {
                    return Some(None);
                };
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    return Some(None);
                }
                next = h[0];
                off += 8;
            }
            43 => return None,
            proto => return Some(Some((proto, off.min(p.len())))),
        }
    }
    None
}

/// Updates the checksum of the transport header at the start of `t` (protocol `proto`) for an
/// address of its pseudo-header changed from `old` to `new`.
fn transport(t: &mut [u8], proto: u8, old: &[u8], new: &[u8], v6: bool) {
    let (at, zero_means_none) = match proto {
        6 => (16, false),
        17 => (6, !v6),
        // UDP-Lite: the UDP layout, and a checksum is mandatory.
        136 => (6, false),
        58 if v6 => (2, false),
        _ => return,
    };
    if t.len() < at + 2 {
        return;
    }
    if zero_means_none && t[at] == 0 && t[at + 1] == 0 {
        return;
    }
    adjust(t, at, old, new);
    if zero_means_none && t[at] == 0 && t[at + 1] == 0 {
        // A computed zero is sent as all ones (RFC 768).
        t[at] = 0xff;
        t[at + 1] = 0xff;
    }
}

/// RFC 1624 eqn. 3: the checksum at `buf[at..at + 2]` after the 16-bit words `old` became
/// `new` (both of even length).
fn adjust(buf: &mut [u8], at: usize, old: &[u8], new: &[u8]) {
    let mut sum = u32::from(!u16::from_be_bytes([buf[at], buf[at + 1]]));
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        sum += u32::from(!u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([n[0], n[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The Internet checksum of `data` (odd length padded), folded, not inverted.
    fn sum(data: &[u8], mut acc: u32) -> u32 {
        for c in data.chunks(2) {
            acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        acc
    }

    fn fold(mut s: u32) -> u16 {
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    /// An IPv4 packet with `proto` and a transport header of 20 bytes plus payload, with every
    /// checksum computed in full.
    fn v4(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let tlen = 20 + payload.len();
        let mut p = alloc::vec![0u8; 20 + tlen];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + tlen) as u16).to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
        p[20] = 0x12;
        p[22] = 0x01;
        p[40..].copy_from_slice(payload);
        v4_checksums(&mut p);
        p
    }

    fn v4_checksums(p: &mut [u8]) {
        p[10..12].fill(0);
        let h = fold(sum(&p[..20], 0));
        p[10..12].copy_from_slice(&h.to_be_bytes());
        let at = match p[9] {
            6 => 16,
            17 => 6,
            _ => return,
        };
        let tlen = p.len() - 20;
        p[20 + at..22 + at].fill(0);
        let mut pseudo = sum(&p[12..20], 0) + u32::from(p[9]) + tlen as u32;
        pseudo = sum(&p[20..], pseudo);
        let mut c = fold(pseudo);
        if p[9] == 17 && c == 0 {
            c = 0xffff;
        }
        p[20 + at..22 + at].copy_from_slice(&c.to_be_bytes());
    }

    fn v4_prefix(a: [u8; 4], len: u8) -> (IpAddr, u8) {
        (IpAddr::from(a), len)
    }

    #[test]
    fn ipv4_tcp_and_udp_checksums_match_a_full_recomputation_and_round_trip() {
        let map = Netmap::new(
            v4_prefix([192, 168, 1, 0], 24),
            v4_prefix([10, 201, 1, 0], 24),
        )
        .unwrap();
        let mut seed = 7u32;
        for proto in [6u8, 17] {
            for n in 0..200u32 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let payload: Vec<u8> = (0..(n % 37)).map(|i| (seed >> (i % 24)) as u8).collect();
                let host = (seed >> 8) as u8;
                let original = v4(proto, [192, 168, 1, host], [10, 64, 0, 9], &payload);
                let mut p = original.clone();
                assert!(map.from_site(&mut p));
                let mut expect = p.clone();
                v4_checksums(&mut expect);
                assert_eq!(p, expect, "from_site, proto {proto}");
                assert_eq!(&p[12..16], &[10, 201, 1, host]);
                // The reply direction: to the site.
                let mut back = v4(proto, [10, 64, 0, 9], [10, 201, 1, host], &payload);
                assert!(map.to_site(&mut back));
                let mut expect = back.clone();
                v4_checksums(&mut expect);
                assert_eq!(back, expect, "to_site, proto {proto}");
                assert_eq!(&back[16..20], &[192, 168, 1, host]);
            }
        }
    }

    #[test]
    fn addresses_outside_the_prefix_and_garbage_are_left_alone() {
        let map = Netmap::new(
            v4_prefix([192, 168, 1, 0], 24),
            v4_prefix([10, 201, 1, 0], 24),
        )
        .unwrap();
        let mut p = v4(6, [192, 168, 2, 1], [10, 64, 0, 9], b"x");
        let before = p.clone();
        assert!(!map.from_site(&mut p));
        assert_eq!(p, before);
        for len in 0..48 {
            let mut junk: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(29) | 0x40)
                .collect();
            map.from_site(&mut junk);
            map.to_site(&mut junk);
        }
        assert!(Netmap::new(
            v4_prefix([192, 168, 1, 0], 24),
            v4_prefix([10, 0, 0, 0], 16)
        )
        .is_err());
    }

    #[test]
    fn a_udp_checksum_of_zero_stays_zero_on_ipv4() {
        let map = Netmap::new(
            v4_prefix([192, 168, 1, 0], 24),
            v4_prefix([10, 201, 1, 0], 24),
        )
        .unwrap();
        let mut p = v4(17, [192, 168, 1, 5], [10, 64, 0, 9], b"abc");
        p[26..28].fill(0);
        assert!(map.from_site(&mut p));
        assert_eq!(&p[26..28], &[0, 0]);
    }
}
