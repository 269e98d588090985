//! NETMAP against full recomputation: random packets of each protocol, both directions,
//! checksums verified from scratch, and the round trip giving the original bytes.

use std::net::IpAddr;

use super::*;
use crate::build;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix::new(ip(a), l.parse().unwrap()).unwrap()
}

/// xorshift64*: a seeded generator for reproducible random packets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A random address: inside `inside` half the time.
fn addr(rng: &mut Rng, inside: Prefix) -> IpAddr {
    let host = rng.next();
    match inside.addr() {
        IpAddr::V4(a) if rng.below(2) == 0 => {
            let len = u32::from(inside.prefix_len());
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::V4((u32::from(a) | (host as u32 & !mask)).into())
        }
        IpAddr::V6(a) if rng.below(2) == 0 => {
            let len = u32::from(inside.prefix_len());
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::V6((u128::from(a) | (u128::from(host) & !mask)).into())
        }
        IpAddr::V4(_) => IpAddr::V4((host as u32).into()),
        IpAddr::V6(_) => IpAddr::V6((u128::from(host) << 64 | u128::from(rng.next())).into()),
    }
}

/// A random valid packet between `src` and `dst`.
fn random_packet(rng: &mut Rng, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let n = rng.below(64) as usize;
    let payload = rng.bytes(n);
    let (sp, dp) = (rng.next() as u16, rng.next() as u16);
    let (proto, l4) = match rng.below(5) {
        0 => (proto::TCP, build::tcp(sp, dp, rng.next() as u8, &payload)),
        1 | 2 => (proto::UDP, build::udp(sp, dp, &payload)),
        3 => (proto::UDPLITE, build::udp(sp, dp, &payload)),
        _ if v6 => (proto::ICMPV6, build::echo(true, rng.below(2) == 0, sp, dp)),
        _ => (proto::ICMP, build::echo(false, rng.below(2) == 0, sp, dp)),
    };
    let ext = match (v6, rng.below(3)) {
        (true, 0) => vec![proto, 0, 0, 0, 0, 0, 0, 0],
        _ => Vec::new(),
    };
    let first = if ext.is_empty() {
        proto
    } else {
        crate::packet::proto::DSTOPTS
    };
    let mut p = build::ip(src, dst, first, &ext, &l4);
    if proto == proto::UDP && rng.below(4) == 0 {
        // No UDP checksum (legal in IPv4; carried through in IPv6 too).
        let at = p.len() - l4.len() + 6;
        p[at..at + 2].fill(0);
    }
    p
}

fn check_random(real: &str, mapped: &str, seed: u64) {
    let map = Netmap::new(prefix(real), prefix(mapped)).unwrap();
    let mut rng = Rng(seed);
    let mut changed = 0;
    for _ in 0..5000 {
        // Toward the site: destinations in the mapped prefix.
        let src = addr(&mut rng, map.real());
        let dst = addr(&mut rng, map.mapped());
        let orig = random_packet(&mut rng, src, dst);
        assert!(build::checksums_valid(&orig));
        let mut p = orig.clone();
        let did = map.to_site(&mut p).unwrap();
        assert_eq!(did, map.mapped().contains(dst));
        assert!(
            build::checksums_valid(&p),
            "to_site {orig:02x?} -> {p:02x?}"
        );
        if did {
            changed += 1;
            let parsed = crate::packet::parse(&p).unwrap();
            assert_eq!(Some(parsed.flow.dst), map.unmap_addr(dst));
            assert_eq!(parsed.flow.src, src);
            // Back the other way: the real source becomes the mapped one again, as the
            // reply would; a packet swapped end to end round-trips.
            let mut back = p.clone();
            assert!(translate(&mut back, Field::Dst, map.real(), map.mapped()).unwrap());
            assert_eq!(back, orig);
        }
        // From the site: sources in the real prefix.
        let src = addr(&mut rng, map.real());
        let orig = random_packet(&mut rng, src, dst);
        let mut p = orig.clone();
        let did = map.from_site(&mut p).unwrap();
        assert_eq!(did, map.real().contains(src));
        assert!(
            build::checksums_valid(&p),
            "from_site {orig:02x?} -> {p:02x?}"
        );
        if did {
            let mut back = p.clone();
            assert!(translate(&mut back, Field::Src, map.mapped(), map.real()).unwrap());
            assert_eq!(back, orig);
        }
    }
    assert!(changed > 1000);
}

#[test]
fn ipv4_random_packets_against_recomputation() {
    check_random("192.168.1.0/24", "10.201.1.0/24", 1);
    check_random("192.168.0.0/16", "10.201.0.0/16", 2);
    check_random("192.168.1.7/32", "10.201.1.9/32", 3);
}

#[test]
fn ipv6_random_packets_against_recomputation() {
    check_random("fd00:1::/64", "fd64:201:1::/64", 4);
    check_random("fd00:1::/48", "2001:db8:ffff::/48", 5);
}

#[test]
fn the_example_site() {
    let map = Netmap::new(prefix("192.168.1.0/24"), prefix("10.201.1.0/24")).unwrap();
    assert_eq!(map.unmap_addr(ip("10.201.1.5")), Some(ip("192.168.1.5")));
    assert_eq!(map.map_addr(ip("192.168.1.5")), Some(ip("10.201.1.5")));
    assert_eq!(map.map_addr(ip("192.168.2.5")), None);
    assert_eq!(map.map_addr(ip("fd00::1")), None);
    let mut p = build::ip(
        ip("10.64.0.2"),
        ip("10.201.1.5"),
        proto::TCP,
        &[],
        &build::tcp(4000, 502, 2, b"x"),
    );
    assert!(map.to_site(&mut p).unwrap());
    assert_eq!(&p[16..20], &[192, 168, 1, 5]);
    assert!(build::checksums_valid(&p));
    // Not toward the site: unchanged.
    let mut q = build::ip(
        ip("10.64.0.2"),
        ip("10.64.0.3"),
        proto::TCP,
        &[],
        &build::tcp(4000, 502, 2, b"x"),
    );
    let before = q.clone();
    assert!(!map.to_site(&mut q).unwrap());
    assert_eq!(q, before);
}

#[test]
fn refusals() {
    assert_eq!(
        Netmap::new(prefix("10.0.0.0/24"), prefix("fd00::/120")),
        Err(NetmapError::Family)
    );
    assert_eq!(
        Netmap::new(prefix("10.0.0.0/24"), prefix("10.1.0.0/16")),
        Err(NetmapError::Length)
    );
    let map = Netmap::new(prefix("fd00:1::/64"), prefix("fd64:1::/64")).unwrap();
    assert!(matches!(
        map.to_site(&mut [0x60; 20]),
        Err(NetmapError::Malformed(_))
    ));
    let mut routing = vec![proto::UDP, 0, 0, 1, 0, 0, 0, 0];
    routing[3] = 1;
    let mut p = build::ip(
        ip("fd00::9"),
        ip("fd64:1::5"),
        proto::ROUTING,
        &routing,
        &build::udp(1, 2, b""),
    );
    assert_eq!(map.to_site(&mut p), Err(NetmapError::RoutingHeader));
}

#[test]
fn later_fragments_change_only_the_ipv4_header() {
    let map = Netmap::new(prefix("192.168.1.0/24"), prefix("10.201.1.0/24")).unwrap();
    let mut p = build::ip(
        ip("10.64.0.2"),
        ip("10.201.1.5"),
        proto::UDP,
        &[],
        &[0xab; 24],
    );
    p[6] = 0x00;
    p[7] = 3; // offset 24 bytes
    build::fill_checksums(&mut p);
    let orig = p.clone();
    assert!(map.to_site(&mut p).unwrap());
    assert_eq!(&p[20..], &orig[20..]);
    assert_eq!(crate::csum::fold(crate::csum::sum(&p[..20], 0)), 0xffff);
}

#[test]
fn a_udp_checksum_that_becomes_zero_is_sent_as_ffff() {
    let map = Netmap::new(prefix("192.168.1.0/24"), prefix("10.201.1.0/24")).unwrap();
    // After translation the packet goes to 192.168.1.5; choose two payload bytes so that its
    // checksum computes to 0 there.
    let mut after = build::ip(
        ip("10.64.0.2"),
        ip("192.168.1.5"),
        proto::UDP,
        &[],
        &build::udp(7, 9, &[0, 0]),
    );
    after[26..28].fill(0);
    let pkt = crate::packet::parse(&after).unwrap();
    let s = crate::csum::fold(
        crate::csum::sum(&after[20..], 0)
            + crate::csum::pseudo_header(&after[12..16], &after[16..20], proto::UDP, pkt.end - 20),
    );
    let fix = (0xffff - u32::from(s)) as u16;
    after[28..30].copy_from_slice(&fix.to_be_bytes());
    // The same packet as sent toward the mapped address, checksums filled.
    let mut p = after.clone();
    p[16..20].copy_from_slice(&[10, 201, 1, 5]);
    build::fill_checksums(&mut p);
    assert_ne!(&p[26..28], &[0, 0]);
    assert!(map.to_site(&mut p).unwrap());
    assert_eq!(&p[26..28], &[0xff, 0xff]);
    assert!(build::checksums_valid(&p));
}
