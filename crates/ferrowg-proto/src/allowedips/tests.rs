//! Tests of the allowed-IPs table: kernel selftest cases, a differential test against a naive
//! list, property tests, and scale.

use super::*;
use alloc::vec;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(words: [u32; 4]) -> IpAddr {
    let [a, b, c, d] = words;
    let n = (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d);
    IpAddr::V6(Ipv6Addr::from(n))
}

impl<K: Key + fmt::Debug, T: Copy + PartialEq> Trie<K, T> {
    /// Asserts the structural invariants; returns the number of reachable nodes.
    fn check(&self) -> usize {
        assert_eq!(self.nodes.len(), self.values.len());
        let mut reachable = 0;
        let mut with_value = 0;
        let mut stack = vec![(self.root, 0u8, None::<Node<K>>, 0usize)];
        while let Some((idx, depth, parent, bit)) = stack.pop() {
            let Some(node) = self.node(idx).copied() else {
                assert_eq!(idx, NIL, "dangling index");
                continue;
            };
            reachable += 1;
            assert!(depth <= K::BITS + 1, "path too long");
            assert!(node.cidr <= K::BITS);
            assert_eq!(node.key, node.key.masked(node.cidr), "unmasked key");
            assert_eq!(node.has_value, self.value(idx).is_some());
            if node.has_value {
                with_value += 1;
            } else {
                assert!(!node.children.contains(&NIL), "branch without two children");
            }
            if let Some(p) = parent {
                assert!(node.cidr > p.cidr);
                assert!(p.contains(node.key));
                assert_eq!(node.key.bit(p.cidr), bit);
            }
            for (b, &child) in node.children.iter().enumerate() {
                stack.push((child, depth + 1, Some(node), b));
            }
        }
        assert_eq!(with_value, self.len);
        assert_eq!(reachable + self.free_count, self.nodes.len());
        let mut free = 0;
        let mut idx = self.free_head;
        while let Some(node) = self.node(idx) {
            free += 1;
            assert!(free <= self.free_count, "free list cycle");
            idx = node.children[0];
        }
        assert_eq!(free, self.free_count);
        assert!(self.nodes.len() <= 2 * self.len + self.free_count);
        self.check_jump();
        reachable
    }

    /// Asserts that every jump entry is where a walk from the root would be.
    fn check_jump(&self) {
        let jump = &self.jump;
        if jump.bits == 0 {
            assert!(jump.entries.is_empty());
            assert!(self.len < JUMP_MIN_LEN.max(2 * jump.sized_for));
            return;
        }
        assert_eq!(jump.entries.len(), 1 << jump.bits);
        assert!(jump.outside <= jump.sized_for / 2);
        assert!(jump.entries.len() <= 4 * self.len, "jump table oversized");
        let depth = jump.depth();
        for (i, entry) in jump.entries.iter().enumerate() {
            let mut block = jump.anchor;
            for b in 0..jump.bits {
                if i & (1 << (jump.bits - 1 - b)) != 0 {
                    block = block.with_bit(jump.anchor_cidr + b);
                }
            }
            assert_eq!(block.field(jump.anchor_cidr, jump.bits), i);
            let (mut idx, mut best) = (self.root, NIL);
            while let Some(node) = self.node(idx) {
                if node.cidr >= depth || !node.contains(block) {
                    break;
                }
                if node.has_value {
                    best = idx;
                }
                idx = node.children[block.bit(node.cidr)];
            }
            if self.node(idx).is_some_and(|n| n.key.masked(depth) != block) {
                idx = NIL;
            }
            assert_eq!(*entry, JumpEntry { node: idx, best }, "bucket {i}");
        }
    }
}

impl<T: Copy + PartialEq> AllowedIps<T> {
    fn check(&self) {
        self.v4.check();
        self.v6.check();
    }
}

#[test]
fn kernel_selftest_lookups() {
    let mut t = AllowedIps::new();
    let ins = |t: &mut AllowedIps<char>, a, c, v| {
        t.insert(a, c, v).expect("valid prefix");
    };
    ins(&mut t, v4(192, 168, 4, 0), 24, 'a');
    ins(&mut t, v4(192, 168, 4, 4), 32, 'b');
    ins(&mut t, v4(192, 168, 0, 0), 16, 'c');
    ins(&mut t, v4(192, 95, 5, 64), 27, 'd');
    ins(&mut t, v4(192, 95, 5, 65), 27, 'c'); // replaces d, host bit masked
    ins(
        &mut t,
        v6([0x2607_5300, 0x6000_6b00, 0, 0xc05f_0543]),
        128,
        'd',
    );
    ins(&mut t, v6([0x2607_5300, 0x6000_6b00, 0, 0]), 64, 'c');
    ins(&mut t, v4(0, 0, 0, 0), 0, 'e');
    ins(&mut t, v6([0; 4]), 0, 'e');
    ins(&mut t, v6([0; 4]), 0, 'f'); // replaces e
    ins(&mut t, v6([0x2404_6800, 0, 0, 0]), 32, 'g');
    ins(
        &mut t,
        v6([0x2404_6800, 0x4004_0800, 0xdead_beef, 0xdead_beef]),
        64,
        'h',
    );
    ins(
        &mut t,
        v6([0x2404_6800, 0x4004_0800, 0xdead_beef, 0xdead_beef]),
        128,
        'a',
    );
    ins(
        &mut t,
        v6([0x2444_6800, 0x40e4_0800, 0xdeae_beef, 0x0def_beef]),
        128,
        'c',
    );
    ins(
        &mut t,
        v6([0x2444_6800, 0xf0e4_0800, 0xeeae_beef, 0]),
        98,
        'b',
    );
    ins(&mut t, v4(64, 15, 112, 0), 20, 'g');
    ins(&mut t, v4(64, 15, 123, 211), 25, 'h');
    ins(&mut t, v4(10, 0, 0, 0), 25, 'a');
    ins(&mut t, v4(10, 0, 0, 128), 25, 'b');
    ins(&mut t, v4(10, 1, 0, 0), 30, 'a');
    ins(&mut t, v4(10, 1, 0, 4), 30, 'b');
    ins(&mut t, v4(10, 1, 0, 8), 29, 'c');
    ins(&mut t, v4(10, 1, 0, 16), 29, 'd');
    t.check();
    let cases = [
        (v4(192, 168, 4, 20), 'a'),
        (v4(192, 168, 4, 0), 'a'),
        (v4(192, 168, 4, 4), 'b'),
        (v4(192, 168, 200, 182), 'c'),
        (v4(192, 95, 5, 68), 'c'),
        (v4(192, 95, 5, 96), 'e'),
        (v6([0x2607_5300, 0x6000_6b00, 0, 0xc05f_0543]), 'd'),
        (v6([0x2607_5300, 0x6000_6b00, 0, 0xc02e_01ee]), 'c'),
        (v6([0x2607_5300, 0x6000_6b01, 0, 0]), 'f'),
        (v6([0x2404_6800, 0x4004_0806, 0, 0x1006]), 'g'),
        (v6([0x2404_6800, 0x4004_0806, 0x1234, 0x5678]), 'g'),
        (v6([0x2404_67ff, 0x4004_0806, 0x1234, 0x5678]), 'f'),
        (v6([0x2404_6801, 0x4004_0806, 0x1234, 0x5678]), 'f'),
        (v6([0x2404_6800, 0x4004_0800, 0x1234, 0x5678]), 'h'),
        (v6([0x2404_6800, 0x4004_0800, 0, 0]), 'h'),
        (
            v6([0x2404_6800, 0x4004_0800, 0x1010_1010, 0x1010_1010]),
            'h',
        ),
        (
            v6([0x2404_6800, 0x4004_0800, 0xdead_beef, 0xdead_beef]),
            'a',
        ),
        (v4(64, 15, 116, 26), 'g'),
        (v4(64, 15, 127, 3), 'g'),
        (v4(64, 15, 123, 1), 'g'),
        (v4(64, 15, 123, 128), 'h'),
        (v4(64, 15, 123, 129), 'h'),
        (v4(10, 0, 0, 52), 'a'),
        (v4(10, 0, 0, 220), 'b'),
        (v4(10, 1, 0, 2), 'a'),
        (v4(10, 1, 0, 6), 'b'),
        (v4(10, 1, 0, 10), 'c'),
        (v4(10, 1, 0, 20), 'd'),
    ];
    for (addr, want) in cases {
        assert_eq!(t.lookup(addr), Some(want), "{addr}");
    }
    assert_eq!(t.len(), 21);
}

#[test]
fn overlapping_prefixes_pick_longest() {
    let mut t = AllowedIps::new();
    for (cidr, v) in [(8, 1), (16, 2), (24, 3), (32, 4)] {
        assert_eq!(t.insert(v4(10, 1, 2, 3), cidr, v), Ok(None));
    }
    assert_eq!(t.lookup_v4([10, 1, 2, 3]), Some(4));
    assert_eq!(t.lookup_v4([10, 1, 2, 4]), Some(3));
    assert_eq!(t.lookup_v4([10, 1, 3, 3]), Some(2));
    assert_eq!(t.lookup_v4([10, 2, 2, 3]), Some(1));
    assert_eq!(t.lookup_v4([11, 1, 2, 3]), None);
    t.check();
}

#[test]
fn default_routes_are_per_family() {
    let mut t = AllowedIps::new();
    t.insert(v4(0, 0, 0, 0), 0, 4).expect("valid");
    t.insert(v6([0; 4]), 0, 6).expect("valid");
    assert_eq!(t.lookup_v4([1, 2, 3, 4]), Some(4));
    assert_eq!(t.lookup_v4([255; 4]), Some(4));
    assert_eq!(t.lookup_v6([0xff; 16]), Some(6));
    assert_eq!(t.remove(v4(0, 0, 0, 0), 0), Some(4));
    assert_eq!(t.lookup_v4([1, 2, 3, 4]), None);
    assert_eq!(t.lookup_v6([0; 16]), Some(6));
    assert_eq!(t.len(), 1);
    t.check();
}

#[test]
fn host_bits_are_masked() {
    let mut t = AllowedIps::new();
    assert_eq!(t.insert(v4(10, 0, 0, 1), 24, 1), Ok(None));
    assert_eq!(t.iter().collect::<Vec<_>>(), [(v4(10, 0, 0, 0), 24, 1)]);
    assert_eq!(t.insert(v4(10, 0, 0, 77), 24, 2), Ok(Some(1)));
    let six = v6([0x2001_0db8, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff]);
    assert_eq!(t.insert(six, 33, 3), Ok(None));
    assert_eq!(
        t.iter_value(3).collect::<Vec<_>>(),
        [(v6([0x2001_0db8, 0x8000_0000, 0, 0]), 33)]
    );
    assert_eq!(t.remove(v4(10, 0, 0, 200), 24), Some(2));
    assert_eq!(t.len(), 1);
    t.check();
}

#[test]
fn replace_keeps_len() {
    let mut t = AllowedIps::new();
    let p = v6([0xfd00_0000, 0, 0, 1]);
    assert_eq!(t.insert(p, 128, 1), Ok(None));
    assert_eq!(t.insert(p, 128, 2), Ok(Some(1)));
    assert_eq!(t.insert(p, 128, 2), Ok(Some(2)));
    assert_eq!(t.len(), 1);
    assert_eq!(t.lookup(p), Some(2));
}

#[test]
fn remove_is_exact() {
    let mut t = AllowedIps::new();
    for (cidr, v) in [(8, 1), (16, 2), (24, 3)] {
        t.insert(v4(10, 1, 2, 0), cidr, v).expect("valid");
    }
    // 10.0.0.0/9 is only a branch point once 10.128.0.0/9 exists: not an entry.
    t.insert(v4(10, 128, 0, 0), 9, 4).expect("valid");
    assert_eq!(t.remove(v4(10, 1, 2, 0), 12), None);
    assert_eq!(t.remove(v4(10, 1, 2, 0), 32), None);
    assert_eq!(t.remove(v6([0x0a01_0200, 0, 0, 0]), 16), None);
    assert_eq!(t.remove(v4(10, 1, 0, 0), 16), Some(2));
    assert_eq!(t.remove(v4(10, 1, 0, 0), 16), None);
    assert_eq!(t.lookup_v4([10, 1, 2, 9]), Some(3));
    assert_eq!(t.lookup_v4([10, 1, 3, 9]), Some(1));
    assert_eq!(t.lookup_v4([10, 200, 3, 9]), Some(4));
    t.check();
    assert_eq!(t.remove(v4(10, 0, 0, 0), 8), Some(1));
    assert_eq!(t.lookup_v4([10, 1, 3, 9]), None);
    assert_eq!(t.remove(v4(10, 1, 2, 0), 24), Some(3));
    assert_eq!(t.remove(v4(10, 128, 0, 0), 9), Some(4));
    assert!(t.is_empty());
    assert_eq!(t.v4.root, NIL);
    t.check();
}

#[test]
fn remove_by_value_drops_all_of_one_peer() {
    let mut t = AllowedIps::new();
    t.insert(v4(10, 0, 0, 0), 8, 1).expect("valid");
    t.insert(v4(10, 1, 0, 0), 16, 2).expect("valid");
    t.insert(v4(10, 1, 1, 0), 24, 1).expect("valid");
    t.insert(v6([0xfd00_0000, 0, 0, 0]), 16, 1).expect("valid");
    t.insert(v6([0xfd00_0000, 1, 0, 0]), 64, 2).expect("valid");
    let ones: Vec<_> = t.iter_value(1).collect();
    assert_eq!(
        ones,
        [
            (v4(10, 0, 0, 0), 8),
            (v4(10, 1, 1, 0), 24),
            (v6([0xfd00_0000, 0, 0, 0]), 16)
        ]
    );
    assert_eq!(t.remove_by_value(1), 3);
    assert_eq!(t.remove_by_value(1), 0);
    assert_eq!(t.len(), 2);
    assert_eq!(t.lookup_v4([10, 1, 1, 1]), Some(2));
    assert_eq!(t.lookup_v4([10, 2, 1, 1]), None);
    assert_eq!(t.iter_value(1).count(), 0);
    t.check();
}

#[test]
fn v4_and_v4_mapped_v6_are_distinct() {
    let mut t = AllowedIps::new();
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    t.insert(v4(10, 0, 0, 1), 32, 4).expect("valid");
    assert_eq!(t.lookup(mapped), None);
    t.insert(mapped, 128, 6).expect("valid");
    assert_eq!(t.lookup(v4(10, 0, 0, 1)), Some(4));
    assert_eq!(t.lookup(mapped), Some(6));
    assert_eq!(t.remove(v4(10, 0, 0, 1), 32), Some(4));
    assert_eq!(t.lookup(mapped), Some(6));
}

#[test]
fn invalid_prefix_is_rejected() {
    let mut t = AllowedIps::new();
    assert_eq!(t.insert(v4(10, 0, 0, 0), 33, 1), Err(InvalidPrefix));
    assert_eq!(t.insert(v6([0; 4]), 129, 1), Err(InvalidPrefix));
    assert_eq!(t.insert(v6([0; 4]), u8::MAX, 1), Err(InvalidPrefix));
    assert!(t.is_empty());
    assert_eq!(t.remove(v4(10, 0, 0, 0), 33), None);
    assert_eq!(t.remove(v6([0; 4]), 255), None);
    assert!(!alloc::format!("{InvalidPrefix}").is_empty());
}

#[test]
fn every_v6_prefix_length_of_one_address() {
    let mut t = AllowedIps::new();
    let addr = [0xa5; 16];
    for cidr in 0..=128u8 {
        t.insert(IpAddr::V6(addr.into()), cidr, cidr)
            .expect("valid");
    }
    assert_eq!(t.v6.check(), 129);
    for cidr in 0..=128u8 {
        let mut probe = u128::from_be_bytes(addr);
        if cidr < 128 {
            probe ^= 1 << (127 - cidr); // differ first at bit `cidr`
        }
        assert_eq!(t.lookup_v6(probe.to_be_bytes()), Some(cidr));
    }
    for cidr in (0..=128u8).rev() {
        assert_eq!(t.remove(IpAddr::V6(addr.into()), cidr), Some(cidr));
        t.check();
    }
    assert!(t.is_empty());
}

#[test]
fn churn_reuses_slots_and_compacts() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut t = AllowedIps::new();
    let mut live = Vec::new();
    for i in 0..200_000u32 {
        if live.len() < 500 || rng.gen_bool(0.5) {
            let p = (
                v4(10, rng.gen(), rng.gen(), rng.gen()),
                rng.gen_range(8..=32),
            );
            t.insert(p.0, p.1, i).expect("valid");
            live.push(p);
        } else {
            let p = live.swap_remove(rng.gen_range(0..live.len()));
            t.remove(p.0, p.1);
        }
        assert!(
            t.v4.nodes.len() <= 2 * 2_000 + COMPACT_MIN_FREE,
            "arena grew"
        );
    }
    t.check();
    for p in live.drain(..) {
        t.remove(p.0, p.1);
    }
    assert!(t.is_empty());
    assert!(t.v4.nodes.len() <= COMPACT_MIN_FREE);
    t.check();
}

/// 2^20 peers with one /32 each (2^16 in debug builds, to keep them quick), then every peer
/// removed.
#[test]
fn a_million_host_routes() {
    const PEERS: u32 = if cfg!(debug_assertions) {
        1 << 16
    } else {
        1 << 20
    };
    // Multiplying by an odd constant permutes u32, so the addresses are distinct.
    let addr = |i: u32| IpAddr::V4(i.wrapping_mul(0x9e37_79b9).into());
    let mut t = AllowedIps::new();
    for i in 0..PEERS {
        assert_eq!(t.insert(addr(i), 32, i), Ok(None));
    }
    assert_eq!(t.len(), PEERS as usize);
    assert!(t.v4.nodes.len() < 2 * PEERS as usize);
    assert!(t.v4.jump.entries.len() <= PEERS as usize);
    for i in (0..PEERS).step_by(97) {
        assert_eq!(t.lookup(addr(i)), Some(i));
    }
    for i in 0..4 {
        assert_eq!(t.remove_by_value(i), 1);
    }
    for i in 4..PEERS {
        assert_eq!(t.remove(addr(i), 32), Some(i));
    }
    assert!(t.is_empty());
    assert!(t.v4.nodes.len() <= COMPACT_MIN_FREE);
    t.check();
}

#[test]
fn compaction_preserves_contents() {
    let mut t = AllowedIps::new();
    for i in 0..20_000u32 {
        t.insert(IpAddr::V6(Ipv6Addr::from(u128::from(i) << 40)), 88, i)
            .expect("valid");
    }
    for i in (0..20_000u32).filter(|i| i % 10 != 0) {
        assert_eq!(
            t.remove(IpAddr::V6(Ipv6Addr::from(u128::from(i) << 40)), 88),
            Some(i)
        );
    }
    t.check();
    assert!(
        t.v6.nodes.len() < 4_000 + COMPACT_MIN_FREE,
        "{}",
        t.v6.nodes.len()
    );
    for i in 0..20_000u32 {
        let want = (i % 10 == 0).then_some(i);
        let addr = (u128::from(i) << 40) | 0xff_ffff;
        assert_eq!(t.lookup_v6(addr.to_be_bytes()), want);
    }
}

#[test]
fn clear_empties_and_iter_is_sorted() {
    let mut t = AllowedIps::new();
    for (a, c) in [
        (v6([1, 0, 0, 0]), 32),
        (v4(10, 0, 0, 0), 8),
        (v4(9, 0, 0, 0), 8),
    ] {
        t.insert(a, c, ()).expect("valid");
    }
    t.insert(v4(10, 0, 0, 0), 7, ()).expect("valid");
    let got: Vec<_> = t.iter().map(|(a, c, ())| (a, c)).collect();
    let mut want = got.clone();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(got.len(), 4);
    t.clear();
    assert!(t.is_empty());
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.lookup_v4([10, 0, 0, 0]), None);
}

/// The naive reference: a list of masked prefixes and a linear longest-prefix scan, with
/// masking done bit by bit on the octets (independently of the trie's integer shifts).
#[derive(Default)]
struct Model {
    entries: Vec<(IpAddr, u8, u32)>,
}

fn naive_mask(addr: IpAddr, cidr: u8) -> IpAddr {
    fn clear<const N: usize>(mut o: [u8; N], cidr: u8) -> [u8; N] {
        for bit in usize::from(cidr)..N * 8 {
            o[bit / 8] &= !(0x80 >> (bit % 8));
        }
        o
    }
    match addr {
        IpAddr::V4(a) => IpAddr::V4(clear(a.octets(), cidr).into()),
        IpAddr::V6(a) => IpAddr::V6(clear(a.octets(), cidr).into()),
    }
}

impl Model {
    fn max_cidr(addr: IpAddr) -> u8 {
        if addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    fn insert(&mut self, addr: IpAddr, cidr: u8, v: u32) -> Result<Option<u32>, InvalidPrefix> {
        if cidr > Self::max_cidr(addr) {
            return Err(InvalidPrefix);
        }
        let key = naive_mask(addr, cidr);
        for e in &mut self.entries {
            if e.0 == key && e.1 == cidr {
                return Ok(Some(core::mem::replace(&mut e.2, v)));
            }
        }
        self.entries.push((key, cidr, v));
        Ok(None)
    }

    fn remove(&mut self, addr: IpAddr, cidr: u8) -> Option<u32> {
        let key = naive_mask(addr, cidr);
        let pos = self
            .entries
            .iter()
            .position(|e| e.0 == key && e.1 == cidr)?;
        Some(self.entries.swap_remove(pos).2)
    }

    fn remove_by_value(&mut self, v: u32) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| e.2 != v);
        before - self.entries.len()
    }

    fn lookup(&self, addr: IpAddr) -> Option<u32> {
        self.entries
            .iter()
            .filter(|e| e.0.is_ipv4() == addr.is_ipv4() && naive_mask(addr, e.1) == e.0)
            .max_by_key(|e| e.1)
            .map(|e| e.2)
    }

    fn sorted(&self) -> Vec<(IpAddr, u8, u32)> {
        let mut all = self.entries.clone();
        all.sort();
        all
    }
}

/// An address near one of a few bases, so that generated prefixes overlap and collide.
fn near_addr(rng: &mut ChaCha8Rng) -> IpAddr {
    const V4: [u32; 5] = [0, 0x0a00_0000, 0x0a00_0180, 0xc0a8_0100, u32::MAX];
    const V6: [u128; 5] = [
        0,
        0xfd00 << 112,
        0xffff_0a00_0000,
        0x2001_0db8 << 96,
        u128::MAX,
    ];
    let flips = rng.gen_range(0..4);
    if rng.gen_bool(0.5) {
        let mut a = V4[rng.gen_range(0..V4.len())];
        for _ in 0..flips {
            a ^= 1 << rng.gen_range(0..32);
        }
        IpAddr::V4(a.into())
    } else {
        let mut a = V6[rng.gen_range(0..V6.len())];
        for _ in 0..flips {
            a ^= 1 << rng.gen_range(0..128);
        }
        IpAddr::V6(a.into())
    }
}

fn near_cidr(rng: &mut ChaCha8Rng, addr: IpAddr) -> u8 {
    const COMMON: [u8; 7] = [1, 8, 16, 24, 25, 31, 32];
    let max = Model::max_cidr(addr);
    match rng.gen_range(0..20) {
        0 => rng.gen_range(max + 1..=u8::MAX), // invalid
        1..=9 => COMMON[rng.gen_range(0..COMMON.len())] * (max / 32),
        10..=12 => max,
        _ => rng.gen_range(0..=max),
    }
}

/// A random prefix for the differential tests, and a random address to look up.
struct Workload {
    prefix: fn(&mut ChaCha8Rng) -> (IpAddr, u8),
    probe: fn(&mut ChaCha8Rng) -> IpAddr,
    /// Percentages of steps that insert and remove; 1% remove by value.
    insert: u32,
    remove: u32,
    values: u32,
}

/// Runs `steps` random operations on the table and the naive model, checking every result,
/// `len()` after every step, and `iter()` and the internal invariants every 500 steps.
fn differential(seed: u64, steps: usize, w: &Workload) -> AllowedIps<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = AllowedIps::new();
    let mut m = Model::default();
    for step in 0..steps {
        let (addr, cidr) = (w.prefix)(&mut rng);
        let dice = rng.gen_range(0..100);
        if dice < w.insert {
            let v = rng.gen_range(0..w.values);
            assert_eq!(t.insert(addr, cidr, v), m.insert(addr, cidr, v), "{step}");
        } else if dice < w.insert + w.remove {
            let (a, c) = match m.entries.get(rng.gen_range(0..m.entries.len().max(1))) {
                Some(e) if rng.gen_bool(0.8) => (e.0, e.1),
                _ => (addr, cidr),
            };
            assert_eq!(t.remove(a, c), m.remove(a, c), "{step}: remove {a}/{c}");
        } else if dice == w.insert + w.remove {
            let v = rng.gen_range(0..w.values);
            assert_eq!(t.remove_by_value(v), m.remove_by_value(v), "{step}");
        }
        for _ in 0..4 {
            let probe = (w.probe)(&mut rng);
            assert_eq!(t.lookup(probe), m.lookup(probe), "{step}: lookup {probe}");
        }
        assert_eq!(t.len(), m.entries.len(), "{step}");
        if step % 500 == 0 {
            t.check();
            assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted(), "{step}");
        }
    }
    t.check();
    assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted());
    for v in 0..w.values {
        let want: Vec<_> = m
            .sorted()
            .into_iter()
            .filter(|e| e.2 == v)
            .map(|e| (e.0, e.1))
            .collect();
        assert_eq!(t.iter_value(v).collect::<Vec<_>>(), want);
    }
    t
}

#[test]
fn differential_against_naive_list() {
    let workload = Workload {
        prefix: |rng| {
            let addr = near_addr(rng);
            (addr, near_cidr(rng, addr))
        },
        probe: near_addr,
        insert: 45,
        remove: 20,
        values: 8,
    };
    differential(0x5eed_a11d, 20_000, &workload);
}

#[test]
fn jump_anchor_follows_the_entries() {
    let mut t = AllowedIps::new();
    let host = |net: u32, i: u32| IpAddr::V4((net | i).into());
    for i in 0..4096 {
        t.insert(host(0x0a00_0000, i), 32, i).expect("valid");
    }
    assert_eq!(t.v4.jump.anchor_cidr, 20);
    assert!(t.v4.jump.bits >= 11);
    for i in 0..2048 {
        t.remove(host(0x0a00_0000, i), 32);
        t.insert(host(0xc0a8_0000, i), 32, i).expect("valid");
    }
    t.check();
    assert_eq!(t.v4.jump.anchor_cidr, 0);
    for i in 0..4096 {
        assert_eq!(t.lookup(host(0x0a00_0000, i)), (i >= 2048).then_some(i));
        assert_eq!(t.lookup(host(0xc0a8_0000, i)), (i < 2048).then_some(i));
    }
}

/// A VPN hub's table: thousands of host routes inside one network, with a few shorter
/// prefixes and default routes, so the jump table anchors below the root.
#[test]
fn differential_clustered_peers() {
    fn clustered(rng: &mut ChaCha8Rng) -> IpAddr {
        let host = rng.gen_range(0..4096u32);
        match rng.gen_range(0..10) {
            0..=4 => IpAddr::V4((0x0a00_0000 | host).into()),
            5..=8 => IpAddr::V6(((0xfd00_u128 << 112) | u128::from(host)).into()),
            _ => near_addr(rng),
        }
    }
    let workload = Workload {
        prefix: |rng| {
            let addr = clustered(rng);
            let max = Model::max_cidr(addr);
            let cidr = if rng.gen_bool(0.9) {
                max
            } else {
                rng.gen_range(0..=max)
            };
            (addr, cidr)
        },
        probe: clustered,
        insert: 60,
        remove: 25,
        values: 64,
    };
    let t = differential(0xc105_7e2ed, 8_000, &workload);
    assert!(t.v4.jump.anchor_cidr >= 8, "{}", t.v4.jump.anchor_cidr);
    assert!(t.v6.jump.anchor_cidr >= 64, "{}", t.v6.jump.anchor_cidr);
}

/// An address whose set bits come from a few fixed positions, so prefixes collide often.
fn sparse_addr() -> impl Strategy<Value = IpAddr> {
    const P4: [u32; 8] = [0, 1, 2, 8, 16, 23, 24, 31];
    const P6: [u32; 8] = [0, 1, 2, 16, 63, 64, 96, 127];
    let spread = |positions: [u32; 8], width: u32, bits: u8| -> u128 {
        (0..8)
            .filter(|i| bits & (1 << i) != 0)
            .map(|i| 1u128 << (width - 1 - positions[i]))
            .fold(0, |acc, b| acc | b)
    };
    prop_oneof![
        any::<u8>().prop_map(move |b| IpAddr::V4((spread(P4, 32, b) as u32).into())),
        any::<u8>().prop_map(move |b| IpAddr::V6(spread(P6, 128, b).into())),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Insert(IpAddr, u8, u32),
    Remove(IpAddr, u8),
    RemoveByValue(u32),
    Lookup(IpAddr),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (sparse_addr(), 0u8..=130, 0u32..4).prop_map(|(a, c, v)| Op::Insert(a, c, v)),
        2 => (sparse_addr(), 0u8..=128).prop_map(|(a, c)| Op::Remove(a, c)),
        1 => (0u32..4).prop_map(Op::RemoveByValue),
        3 => sparse_addr().prop_map(Op::Lookup),
    ]
}

proptest! {
    #[test]
    fn proptest_matches_naive_list(ops in prop::collection::vec(op(), 1..300)) {
        let mut t = AllowedIps::new();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Insert(a, c, v) => prop_assert_eq!(t.insert(a, c, v), m.insert(a, c, v)),
                Op::Remove(a, c) => prop_assert_eq!(t.remove(a, c), m.remove(a, c)),
                Op::RemoveByValue(v) => prop_assert_eq!(t.remove_by_value(v), m.remove_by_value(v)),
                Op::Lookup(a) => prop_assert_eq!(t.lookup(a), m.lookup(a)),
            }
            prop_assert_eq!(t.len(), m.entries.len());
        }
        t.check();
        prop_assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted());
    }
}
