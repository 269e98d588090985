//! Arbitrary sequences of allowed-IPs operations, each checked against a naive list that
//! answers longest-prefix match by scanning every entry.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrowg_proto::allowedips::AllowedIps;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// An address: IPv4 from the first 4 bytes, or IPv6. Few distinct values so that prefixes
/// overlap often.
#[derive(Debug, Clone, Copy, Arbitrary)]
struct Addr {
    v6: bool,
    bytes: [u8; 16],
}

impl Addr {
    fn ip(self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.bytes))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                self.bytes[0],
                self.bytes[1],
                self.bytes[2],
                self.bytes[3],
            ))
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Insert(Addr, u8, u8),
    Remove(Addr, u8),
    RemoveByValue(u8),
    Lookup(Addr),
    Clear,
}

/// (is IPv6, address as u128 with host bits cleared, prefix length).
type Key = (bool, u128, u8);

fn key(ip: IpAddr, cidr: u8) -> Option<Key> {
    let (v6, raw, bits) = match ip {
        IpAddr::V4(a) => (false, u128::from(u32::from(a)), 32u8),
        IpAddr::V6(a) => (true, u128::from(a), 128u8),
    };
    if cidr > bits {
        return None;
    }
    let host_bits = u32::from(bits - cidr);
    let mask = if host_bits >= 128 {
        0
    } else {
        u128::MAX << host_bits
    };
    let width_mask = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    Some((v6, raw & mask & width_mask, cidr))
}

fn contains(k: Key, ip: IpAddr) -> bool {
    let is_v6 = ip.is_ipv6();
    is_v6 == k.0 && key(ip, k.2).is_some_and(|m| m.1 == k.1)
}

fuzz_target!(|ops: Vec<Op>| {
    let mut table = AllowedIps::<u8>::new();
    let mut model: Vec<(Key, u8)> = Vec::new();
    for op in ops {
        match op {
            Op::Insert(a, cidr, v) => {
                let got = table.insert(a.ip(), cidr, v);
                match key(a.ip(), cidr) {
                    None => assert!(got.is_err()),
                    Some(k) => {
                        let old = model.iter().position(|(mk, _)| *mk == k);
                        let prev = old.map(|i| std::mem::replace(&mut model[i].1, v));
                        if old.is_none() {
                            model.push((k, v));
                        }
                        assert_eq!(got, Ok(prev));
                    }
                }
            }
            Op::Remove(a, cidr) => {
                let got = table.remove(a.ip(), cidr);
                let want = key(a.ip(), cidr)
                    .and_then(|k| model.iter().position(|(mk, _)| *mk == k))
                    .map(|i| model.swap_remove(i).1);
                assert_eq!(got, want);
            }
            Op::RemoveByValue(v) => {
                let before = model.len();
                model.retain(|(_, mv)| *mv != v);
                assert_eq!(table.remove_by_value(v), before - model.len());
            }
            Op::Lookup(a) => {
                let ip = a.ip();
                let want = model
                    .iter()
                    .filter(|(k, _)| contains(*k, ip))
                    .max_by_key(|(k, _)| k.2)
                    .map(|(_, v)| *v);
                assert_eq!(table.lookup(ip), want);
                let fam = match ip {
                    IpAddr::V4(a4) => table.lookup_v4(a4.octets()),
                    IpAddr::V6(a6) => table.lookup_v6(a6.octets()),
                };
                assert_eq!(fam, want);
            }
            Op::Clear => {
                table.clear();
                model.clear();
            }
        }
        assert_eq!(table.len(), model.len());
        assert_eq!(table.is_empty(), model.is_empty());
    }
    // Iteration: every entry once, IPv4 first, each family by address then prefix length.
    let got: Vec<(Key, u8)> = table
        .iter()
        .map(|(ip, cidr, v)| (key(ip, cidr).expect("valid entry"), v))
        .collect();
    let mut want = model.clone();
    want.sort();
    assert_eq!(got, want);
    // An entry's own network address always matches something (itself or a longer prefix).
    for (ip, _, _) in table.iter() {
        assert!(table.lookup(ip).is_some());
    }
});
