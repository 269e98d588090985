//! Data-path throughput: encapsulation (`handle_packet`) and decapsulation (`handle_datagram`)
//! of 64, 512 and 1420-byte IP packets, one at a time and in batches of 64, for each crypto
//! backend, next to boringtun 0.7.1's `Tunn::encapsulate`/`decapsulate` measured the same way.
//!
//! Run: `cargo bench -p ferrowg-proto --features ring --bench dataplane` (without `ring` the
//! ring rows are skipped); pin it to one CPU (`taskset -c 1`). Times are the benchmark thread's
//! CPU time, or wall-clock time with `FERROWG_BENCH_CLOCK=wall` (see `common`). Throughput is
//! reported in bytes of IP packet per second; packets per second are the inverse of the time per
//! packet.
//!
//! What each iteration does, so that the rows compare like with like:
//! - encapsulate: copy the IP packet into the buffer (ferrowg encrypts in place; boringtun
//!   copies `src` into `dst` itself), then pad, encrypt and frame it.
//! - decapsulate: authenticate and decrypt one datagram with a fresh counter, check the replay
//!   window, and (ferrowg only) the allowed-IPs source check. The datagrams of a sample are
//!   sealed before it, outside the timed part, in one batch (so that each timed stretch is long
//!   enough for the CPU-time clock, see `common`).

#[macro_use]
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use boringtun::noise::{Tunn, TunnResult};
use criterion::measurement::Measurement;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use ferrowg_proto::crypto::{clamp, Crypto, RustCrypto, SecretKey};
use ferrowg_proto::{
    Device, DropReason, Incoming, Instant, Outgoing, PeerConfig, TRANSPORT_HEADER_SIZE,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// IP packet sizes: a small packet, a medium one, and a full 1420-byte MTU.
const SIZES: [usize; 3] = [64, 512, 1420];
/// Packets per batch.
const BATCH: usize = 64;
const A_TUN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B_TUN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const A_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 51820);
const B_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 51820);

/// An IPv4 packet of `len` bytes from A to B.
fn ipv4(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&A_TUN.octets());
    p[16..20].copy_from_slice(&B_TUN.octets());
    p
}

// ----- ferrowg -----------------------------------------------------------------------------

/// Two devices with a confirmed session; A sends to B.
fn ferrowg_pair(crypto: fn() -> Box<dyn Crypto>) -> (Device, Device, Instant) {
    let now = Instant::from_secs(1);
    let dev = |seed: u64| {
        let mut d = Device::new(
            Box::new(SecretKey::from_bytes(clamp([seed as u8; 32]))),
            crypto(),
            Box::new(ChaCha8Rng::seed_from_u64(seed)),
        );
        d.set_clock(now, 1_700_000_000_000_000_000);
        d
    };
    let (mut a, mut b) = (dev(1), dev(2));
    let cfg = PeerConfig {
        endpoint: Some(B_EP),
        ..PeerConfig::default()
    };
    let pa = a.add_peer(b.public_key(), cfg, now).unwrap();
    let pb = b
        .add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    a.add_allowed_ip(pa, IpAddr::V4(B_TUN), 32).unwrap();
    b.add_allowed_ip(pb, IpAddr::V4(A_TUN), 32).unwrap();
    let ip = ipv4(64);
    let mut buf = vec![0u8; 128];
    buf[16..80].copy_from_slice(&ip);
    assert!(matches!(
        a.handle_packet(now, &mut buf, 64),
        Outgoing::Queued { .. }
    ));
    let mut wire = vec![0u8; 2048];
    for _ in 0..4 {
        while let Some(t) = a.poll_transmit(&mut wire) {
            b.handle_datagram(now, A_EP, &mut wire[..t.len]);
        }
        while let Some(t) = b.poll_transmit(&mut wire) {
            a.handle_datagram(now, B_EP, &mut wire[..t.len]);
        }
    }
    assert!(b.peer_info(pb).unwrap().has_session, "handshake");
    (a, b, now)
}

/// Seals `ip` on `a` into a fresh datagram.
fn ferrowg_seal(a: &mut Device, now: Instant, ip: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + ip.len() + 32];
    buf[TRANSPORT_HEADER_SIZE..][..ip.len()].copy_from_slice(ip);
    match a.handle_packet(now, &mut buf, ip.len()) {
        Outgoing::Send { len, .. } => {
            buf.truncate(len);
            buf
        }
        other => panic!("{other:?}"),
    }
}

fn ferrowg_open(b: &mut Device, now: Instant, d: &mut [u8]) -> usize {
    match b.handle_datagram(now, A_EP, d) {
        Incoming::Packet { len, .. } => len,
        other => panic!("{other:?}"),
    }
}

fn bench_ferrowg<M: Measurement>(
    c: &mut Criterion<M>,
    name: &str,
    crypto: fn() -> Box<dyn Crypto>,
) {
    for size in SIZES {
        let ip = ipv4(size);
        let (mut a, mut b, now) = ferrowg_pair(crypto);

        let mut g = common::group(c, "encap_single", Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + size + 32];
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter(|| {
                buf[TRANSPORT_HEADER_SIZE..][..size].copy_from_slice(&ip);
                match a.handle_packet(now, &mut buf, size) {
                    Outgoing::Send { len, .. } => black_box(len),
                    other => panic!("{other:?}"),
                }
            })
        });
        g.finish();

        let mut g = common::group(c, "encap_batch64", Throughput::Bytes((size * BATCH) as u64));
        let mut bufs = vec![vec![0u8; TRANSPORT_HEADER_SIZE + size + 32]; BATCH];
        let mut refs: Vec<&mut [u8]> = bufs.iter_mut().map(|b| b.as_mut_slice()).collect();
        let lens = vec![size; BATCH];
        let mut results = vec![Outgoing::Dropped(DropReason::TooShort); BATCH];
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter(|| {
                for r in refs.iter_mut() {
                    r[TRANSPORT_HEADER_SIZE..][..size].copy_from_slice(&ip);
                }
                a.handle_packets(now, &mut refs, &lens, &mut results);
                debug_assert!(results.iter().all(|r| matches!(r, Outgoing::Send { .. })));
                black_box(&results);
            })
        });
        g.finish();

        let mut g = common::group(c, "decap_single", Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter_batched_ref(
                || ferrowg_seal(&mut a, now, &ip),
                |d| black_box(ferrowg_open(&mut b, now, d)),
                BatchSize::NumBatches(1),
            )
        });
        g.finish();

        let mut g = common::group(c, "decap_batch64", Throughput::Bytes((size * BATCH) as u64));
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter_batched_ref(
                || {
                    (0..BATCH)
                        .map(|_| ferrowg_seal(&mut a, now, &ip))
                        .collect::<Vec<_>>()
                },
                |ds| {
                    for d in ds.iter_mut() {
                        black_box(ferrowg_open(&mut b, now, d));
                    }
                },
                BatchSize::NumBatches(1),
            )
        });
        g.finish();
    }
}

fn rustcrypto() -> Box<dyn Crypto> {
    Box::new(RustCrypto)
}

#[cfg(feature = "ring")]
fn ring() -> Box<dyn Crypto> {
    Box::new(ferrowg_proto::crypto::RingCrypto)
}

// ----- boringtun ---------------------------------------------------------------------------

/// Two boringtun tunnels after a handshake; A sends to B. The rate limiters never trip.
fn boringtun_pair() -> (Tunn, Tunn) {
    let (mut a, mut b) = common::boringtun_tunnels();
    let mut d1 = vec![0u8; 2048];
    let mut d2 = vec![0u8; 2048];
    let init = match a.format_handshake_initiation(&mut d1, false) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("initiation"),
    };
    let resp = match b.decapsulate(None, &init, &mut d2) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("response"),
    };
    let keepalive = match a.decapsulate(None, &resp, &mut d1) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("keepalive"),
    };
    assert!(matches!(
        b.decapsulate(None, &keepalive, &mut d2),
        TunnResult::Done
    ));
    (a, b)
}

fn boringtun_seal(a: &mut Tunn, ip: &[u8], dst: &mut [u8]) -> Vec<u8> {
    match a.encapsulate(ip, dst) {
        TunnResult::WriteToNetwork(p) => p.to_vec(),
        _ => panic!("encapsulate"),
    }
}

fn boringtun_open(b: &mut Tunn, d: &[u8], dst: &mut [u8]) -> usize {
    match b.decapsulate(Some(A_EP.ip()), d, dst) {
        TunnResult::WriteToTunnelV4(p, _) => p.len(),
        _ => panic!("decapsulate"),
    }
}

fn bench_boringtun<M: Measurement>(c: &mut Criterion<M>) {
    let name = "boringtun";
    for size in SIZES {
        let ip = ipv4(size);
        let (mut a, mut b) = boringtun_pair();
        let mut dst = vec![0u8; size + 32 + 148];
        let mut out = vec![0u8; size + 32 + 148];

        let mut g = common::group(c, "encap_single", Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter(|| match a.encapsulate(&ip, &mut dst) {
                TunnResult::WriteToNetwork(p) => black_box(p.len()),
                _ => panic!("encapsulate"),
            })
        });
        g.finish();

        let mut g = common::group(c, "encap_batch64", Throughput::Bytes((size * BATCH) as u64));
        let mut dsts = vec![vec![0u8; size + 32 + 148]; BATCH];
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter(|| {
                for d in dsts.iter_mut() {
                    match a.encapsulate(&ip, d) {
                        TunnResult::WriteToNetwork(p) => black_box(p.len()),
                        _ => panic!("encapsulate"),
                    };
                }
            })
        });
        g.finish();

        let mut g = common::group(c, "decap_single", Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter_batched_ref(
                || boringtun_seal(&mut a, &ip, &mut dst),
                |d| black_box(boringtun_open(&mut b, d, &mut out)),
                BatchSize::NumBatches(1),
            )
        });
        g.finish();

        let mut g = common::group(c, "decap_batch64", Throughput::Bytes((size * BATCH) as u64));
        g.bench_function(BenchmarkId::new(name, size), |bench| {
            bench.iter_batched_ref(
                || {
                    (0..BATCH)
                        .map(|_| boringtun_seal(&mut a, &ip, &mut dst))
                        .collect::<Vec<_>>()
                },
                |ds| {
                    for d in ds.iter() {
                        black_box(boringtun_open(&mut b, d, &mut out));
                    }
                },
                BatchSize::NumBatches(1),
            )
        });
        g.finish();
    }
}

fn dataplane<M: Measurement>(c: &mut Criterion<M>) {
    bench_ferrowg(c, "ferrowg-rustcrypto", rustcrypto);
    #[cfg(feature = "ring")]
    bench_ferrowg(c, "ferrowg-ring", ring);
    bench_boringtun(c);
}

bench_main!(
    measurement = Duration::from_secs(3),
    samples = 30,
    targets = dataplane,
);
