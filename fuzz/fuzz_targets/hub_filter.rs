//! The hub's packet filter and NETMAP on arbitrary packets: a sequence of packets between a few
//! devices, with time steps, policy changes and revalidations, through [`Filter::check`]; and
//! each packet through both translations of an IPv4 and an IPv6 map and back.
//!
//! Checked: no panic; the flow table never holds more than its capacity; every counter adds
//! up to the packets judged; a translation that changed a packet is undone by the inverse map
//! to the original bytes (a checksum field of 0xffff may come back as 0x0000, the same value in
//! one's complement); a packet whose checksums verified still verifies after translation.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use ferrowg_hub_filter::{build, Filter, FilterConfig, Side};
use ferrowg_proto::netmap::Netmap;
use ferrowg_policy::{Compiled, Policy, Prefix};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const CAPACITY: usize = 16;

const POLICIES: [&str; 2] = [
    r#"{ "tagOwners": { "tag:a": [], "tag:b": [] },
         "grants": [{ "src": ["tag:a"], "dst": ["tag:b", "10.201.1.0/24", "fd64::/64"], "ip": ["tcp:443", "udp:1-1024", "icmp", "47"] }] }"#,
    r#"{ "tagOwners": { "tag:a": [], "tag:b": [] },
         "grants": [{ "src": ["*"], "dst": ["*"], "ip": ["*"] }] }"#,
];

const SIDES: [Side<'static>; 3] = [
    Side {
        device: Some("a1"),
        tags: &["tag:a"],
    },
    Side {
        device: Some("b1"),
        tags: &["tag:b"],
    },
    Side {
        device: None,
        tags: &[],
    },
];

#[derive(Arbitrary, Debug)]
enum Op {
    /// Raw bytes.
    Packet {
        dt: u8,
        from: u8,
        to: u8,
        bytes: Vec<u8>,
    },
    /// A well-formed packet (valid checksums) between addresses of a small set, so that flows
    /// recur and translations apply.
    Built {
        dt: u8,
        from: u8,
        to: u8,
        shape: Shape,
    },
    SetPolicy(bool),
    Revalidate,
}

#[derive(Arbitrary, Debug)]
struct Shape {
    v6: bool,
    src: u8,
    dst: u8,
    kind: u8,
    src_port: u8,
    dst_port: u8,
    flags: u8,
    payload: Vec<u8>,
}

/// Addresses of devices, of the real and the mapped site prefixes.
const V4: [&str; 4] = ["10.64.0.1", "10.64.0.2", "192.168.1.7", "10.201.1.7"];
const V6: [&str; 4] = ["fd64:ffff::1", "fd64:ffff::2", "fd00:1::7", "fd64::7"];

impl Shape {
    fn bytes(&self) -> Vec<u8> {
        let addrs = if self.v6 { &V6 } else { &V4 };
        let pick = |i: u8| addrs[usize::from(i) % 4].parse::<IpAddr>().unwrap();
        let ports = [443u16, 53, 1024, 40000];
        let sp = ports[usize::from(self.src_port) % 4];
        let dp = ports[usize::from(self.dst_port) % 4];
        let icmp = if self.v6 { 58 } else { 1 };
        let (proto, l4) = match self.kind % 5 {
            0 => (6, build::tcp(sp, dp, self.flags, &self.payload)),
            1 => (17, build::udp(sp, dp, &self.payload)),
            2 => (136, build::udp(sp, dp, &self.payload)),
            3 => (icmp, build::echo(self.v6, self.flags & 1 == 0, sp, dp)),
            _ => (47, self.payload.clone()),
        };
        build::ip(pick(self.src), pick(self.dst), proto, &[], &l4)
    }
}

fn prefix(addr: &str, len: u8) -> Prefix {
    Prefix::new(addr.parse::<IpAddr>().unwrap(), len).unwrap()
}

/// Whether `after` is `before`, or differs only in bytes that went from 0xff to 0x00.
fn same_up_to_negative_zero(before: &[u8], after: &[u8]) -> bool {
    before.len() == after.len()
        && before
            .iter()
            .zip(after)
            .all(|(b, a)| b == a || (*b == 0xff && *a == 0))
}

/// `map` and its inverse on `bytes`, both ways.
fn netmap_round_trip(map: &Netmap, inverse: &Netmap, bytes: &[u8]) {
    let valid = build::checksums_valid(bytes);
    for toward in [true, false] {
        let mut p = bytes.to_vec();
        let changed = match toward {
            true => map.to_site(&mut p),
            false => map.from_site(&mut p),
        };
        if changed {
            assert!(!valid || build::checksums_valid(&p), "checksum broken");
            let undone = match toward {
                true => inverse.to_site(&mut p),
                false => inverse.from_site(&mut p),
            };
            assert!(undone);
            assert!(same_up_to_negative_zero(bytes, &p), "round trip differs");
        } else {
            assert_eq!(p, bytes, "refused but changed");
        }
    }
}

/// The compiled policies, made once.
fn compiled() -> &'static [Arc<Compiled>] {
    static COMPILED: OnceLock<Vec<Arc<Compiled>>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        POLICIES
            .iter()
            .map(|t| Arc::new(Policy::parse(t).unwrap().compile()))
            .collect()
    })
}

fuzz_target!(|ops: Vec<Op>| {
    let compiled = compiled();
    let config = FilterConfig {
        capacity: CAPACITY,
        ..FilterConfig::default()
    };
    let mut filter = Filter::with_config(Arc::clone(&compiled[0]), config);
    let maps = [
        (prefix("192.168.1.0", 24), prefix("10.201.1.0", 24)),
        (prefix("fd00:1::", 64), prefix("fd64::", 64)),
    ];
    let maps: Vec<(Netmap, Netmap)> = maps
        .iter()
        .map(|&(r, m)| {
            let (r, m) = ((r.addr(), r.prefix_len()), (m.addr(), m.prefix_len()));
            (Netmap::new(r, m).unwrap(), Netmap::new(m, r).unwrap())
        })
        .collect();
    let (mut now, mut judged) = (0u64, 0u64);
    for op in ops.iter().take(256) {
        match op {
            Op::Packet { .. } | Op::Built { .. } => {
                let (dt, from, to, bytes) = match op {
                    Op::Packet {
                        dt,
                        from,
                        to,
                        bytes,
                    } => (dt, from, to, bytes.clone()),
                    Op::Built {
                        dt,
                        from,
                        to,
                        shape,
                    } => (dt, from, to, shape.bytes()),
                    _ => continue,
                };
                let bytes = &bytes;
                now += u64::from(*dt) * u64::from(*dt);
                let src = &SIDES[usize::from(*from) % SIDES.len()];
                let dst = &SIDES[usize::from(*to) % SIDES.len()];
                let _ = ferrowg_hub_filter::parse(bytes);
                filter.check(now, bytes, src, dst);
                judged += 1;
                assert!(filter.flow_count() <= CAPACITY);
                for (map, inverse) in &maps {
                    netmap_round_trip(map, inverse, bytes);
                }
            }
            Op::SetPolicy(which) => filter.set_policy(Arc::clone(&compiled[usize::from(*which)])),
            Op::Revalidate => filter.revalidate(),
        }
    }
    let c = filter.counters();
    assert_eq!(
        c.forwarded + c.dropped_policy + c.dropped_malformed + c.dropped_fragment,
        judged
    );
});
