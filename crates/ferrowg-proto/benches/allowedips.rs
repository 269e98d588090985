//! Criterion benchmarks for the allowed-IPs table (`ferrowg_proto::allowedips`).
//!
//! Tables of 100k random IPv4 prefixes (/8 to /32) and 100k random IPv6 prefixes (/16 to /128),
//! built from a fixed seed. The lookup benchmarks run 4096 lookups per iteration, so the time per
//! lookup is the reported time divided by 4096 (criterion also prints it as throughput):
//! `random` probes uniformly random addresses, `hit` probes addresses inside inserted prefixes
//! (the deepest walks). The insert benchmarks build a 100k-entry table from empty.
//!
//! `device_host_routes` adds 2^16, 2^18 and 2^20 host routes (/32s, in address order) of one peer
//! inside 10.16.0.0/12 through `Device::add_allowed_ip`, which also fills the peer's own
//! prefix set; the time per route (criterion's throughput) must stay flat from 2^16 to 2^20.
//! `table_only_*` inserts the same routes into a bare table, for comparison.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{BatchSize, Criterion, Throughput};
use ferrowg_proto::allowedips::AllowedIps;
use ferrowg_proto::crypto::{clamp, RustCrypto, SecretKey};
use ferrowg_proto::{Device, Instant, PeerConfig, PeerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Prefixes per address family.
const ENTRIES: usize = 100_000;
/// Lookups per benchmark iteration.
const PROBES: usize = 4096;

fn v4_prefixes(rng: &mut ChaCha8Rng) -> Vec<(IpAddr, u8)> {
    (0..ENTRIES)
        .map(|_| {
            (
                IpAddr::V4(Ipv4Addr::from(rng.gen::<u32>())),
                rng.gen_range(8..=32),
            )
        })
        .collect()
}

fn v6_prefixes(rng: &mut ChaCha8Rng) -> Vec<(IpAddr, u8)> {
    (0..ENTRIES)
        .map(|_| {
            (
                IpAddr::V6(Ipv6Addr::from(rng.gen::<u128>())),
                rng.gen_range(16..=128),
            )
        })
        .collect()
}

fn build(prefixes: &[(IpAddr, u8)]) -> AllowedIps<u32> {
    let mut table = AllowedIps::new();
    for (value, &(addr, cidr)) in (0u32..).zip(prefixes) {
        // The generated prefix lengths are all valid for their family.
        let _ = table.insert(addr, cidr, value);
    }
    table
}

/// An address inside a randomly chosen inserted prefix (host bits random).
fn hit_v4(rng: &mut ChaCha8Rng, prefixes: &[(IpAddr, u8)]) -> [u8; 4] {
    match prefixes[rng.gen_range(0..prefixes.len())] {
        (IpAddr::V4(a), cidr) => {
            let host = rng.gen::<u32>().checked_shr(u32::from(cidr)).unwrap_or(0);
            let net = u32::from(a) & !u32::MAX.checked_shr(u32::from(cidr)).unwrap_or(0);
            (net | host).to_be_bytes()
        }
        (IpAddr::V6(_), _) => [0; 4],
    }
}

/// An address inside a randomly chosen inserted prefix (host bits random).
fn hit_v6(rng: &mut ChaCha8Rng, prefixes: &[(IpAddr, u8)]) -> [u8; 16] {
    match prefixes[rng.gen_range(0..prefixes.len())] {
        (IpAddr::V6(a), cidr) => {
            let host = rng.gen::<u128>().checked_shr(u32::from(cidr)).unwrap_or(0);
            let net = u128::from(a) & !u128::MAX.checked_shr(u32::from(cidr)).unwrap_or(0);
            (net | host).to_be_bytes()
        }
        (IpAddr::V4(_), _) => [0; 16],
    }
}

fn lookups(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0a11_d1b5);
    let p4 = v4_prefixes(&mut rng);
    let p6 = v6_prefixes(&mut rng);
    let table4 = build(&p4);
    let table6 = build(&p6);

    let random4: Vec<[u8; 4]> = (0..PROBES).map(|_| rng.gen()).collect();
    let hits4: Vec<[u8; 4]> = (0..PROBES).map(|_| hit_v4(&mut rng, &p4)).collect();
    let random6: Vec<[u8; 16]> = (0..PROBES).map(|_| rng.gen()).collect();
    let hits6: Vec<[u8; 16]> = (0..PROBES).map(|_| hit_v6(&mut rng, &p6)).collect();

    let mut group = c.benchmark_group("lookup_v4_100k");
    group.throughput(Throughput::Elements(PROBES as u64));
    for (name, probes) in [("random", &random4), ("hit", &hits4)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for &addr in probes {
                    black_box(table4.lookup_v4(black_box(addr)));
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("lookup_v6_100k");
    group.throughput(Throughput::Elements(PROBES as u64));
    for (name, probes) in [("random", &random6), ("hit", &hits6)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for &addr in probes {
                    black_box(table6.lookup_v6(black_box(addr)));
                }
            })
        });
    }
    group.finish();
}

fn inserts(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x1_5e27);
    let p4 = v4_prefixes(&mut rng);
    let p6 = v6_prefixes(&mut rng);
    let mut group = c.benchmark_group("insert_100k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for (name, prefixes) in [("v4", &p4), ("v6", &p6)] {
        group.bench_function(name, |b| {
            b.iter_batched(|| prefixes.clone(), |p| build(&p), BatchSize::LargeInput)
        });
    }
    group.finish();
}

/// A device with one peer and no routes.
fn device_with_peer() -> (Device, PeerId) {
    let mut dev = Device::new(
        Box::new(SecretKey::from_bytes(clamp([1; 32]))),
        Box::new(RustCrypto),
        Box::new(ChaCha8Rng::seed_from_u64(0x12)),
    );
    let peer = SecretKey::from_bytes(clamp([2; 32]));
    let public = ferrowg_proto::crypto::StaticKey::public_key(&peer);
    let id = dev
        .add_peer(public, PeerConfig::default(), Instant::ZERO)
        .expect("peer");
    (dev, id)
}

fn device_host_routes(c: &mut Criterion) {
    let mut group = c.benchmark_group("device_host_routes_slash12");
    group.sample_size(10);
    for log2 in [16u32, 18, 20] {
        let n = 1u32 << log2;
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_function(format!("2^{log2}"), |b| {
            b.iter_batched(
                device_with_peer,
                |(mut dev, id)| {
                    for i in 0..n {
                        let addr = IpAddr::V4(Ipv4Addr::from(0x0a10_0000 | i));
                        // Every /32 is valid, so this cannot fail.
                        let _ = dev.add_allowed_ip(id, addr, 32);
                    }
                    dev
                },
                BatchSize::PerIteration,
            )
        });
        // The same routes in the table alone, without the device and the peer's set.
        group.bench_function(format!("table_only_2^{log2}"), |b| {
            b.iter_batched(
                AllowedIps::<u32>::new,
                |mut table| {
                    for i in 0..n {
                        let addr = IpAddr::V4(Ipv4Addr::from(0x0a10_0000 | i));
                        let _ = table.insert(addr, 32, 1);
                    }
                    table
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// What `criterion_group!`/`criterion_main!` would generate, written out so that every item
/// has a doc comment.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    lookups(&mut c);
    inserts(&mut c);
    device_host_routes(&mut c);
    c.final_summary();
}
