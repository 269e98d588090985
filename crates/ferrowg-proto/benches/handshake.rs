//! Handshake rate, for ferrowg and for boringtun 0.7.1: group `handshake` is a full handshake
//! (initiation created, consumed and answered, response consumed) per iteration; group
//! `responder` is what one core spends per handshake as responder (an initiation consumed and
//! the response written; the initiations are made outside the timed part).
//!
//! Run: `cargo bench -p ferrowg-proto --features aws-lc --bench handshake`, pinned to one CPU
//! (`taskset -c 1`); without the feature the aws-lc rows are left out. The rate is
//! criterion's elements/s, by the thread's CPU time unless `FERROWG_BENCH_CLOCK=wall`.
//! Both sides run in this one thread, so one iteration costs what one initiator and one
//! responder spend together: ferrowg does 5 X25519 (ephemeral public key, es, ee, se on each
//! side; ss is computed at the first handshake and kept per peer) plus the BLAKE2s chain, mac1 and the
//! keepalive the initiator sends at once. The data-path backend does not matter here: the
//! handshake always uses the built-in X25519 and ChaCha20-Poly1305.

#[macro_use]
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use boringtun::noise::TunnResult;
use criterion::measurement::Measurement;
use criterion::{BatchSize, Criterion, Throughput};
#[cfg(feature = "aws-lc")]
use ferrowg_proto::crypto::aws_lc;
use ferrowg_proto::crypto::{clamp, Crypto, RustCrypto, SecretKey, StaticKey};
use ferrowg_proto::{Device, Incoming, Instant, PeerConfig, PeerId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const A_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 51820);
const B_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 51820);
/// Past REKEY_TIMEOUT, so that every iteration may start a new handshake.
const STEP: Duration = Duration::from_secs(6);

/// How the devices of a benchmark get their X25519: the software one (x25519-dalek), or
/// aws-lc's (feature `aws-lc`, what the daemon uses).
#[derive(Clone, Copy)]
enum Dh {
    Software,
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

impl Dh {
    fn all() -> Vec<Dh> {
        #[allow(unused_mut)]
        let mut v = vec![Dh::Software];
        #[cfg(feature = "aws-lc")]
        v.push(Dh::AwsLc);
        v
    }

    fn name(self) -> &'static str {
        match self {
            Dh::Software => "ferrowg",
            #[cfg(feature = "aws-lc")]
            Dh::AwsLc => "ferrowg-awslc",
        }
    }

    /// Devices A (seed 1, B as its peer with an endpoint) and B (seed 2, A as its peer), and B's
    /// id on A.
    fn pair(self, now: Instant) -> (Device, Device, PeerId) {
        let (mut a, mut b) = (self.device(1, now), self.device(2, now));
        let cfg = PeerConfig {
            endpoint: Some(B_EP),
            ..PeerConfig::default()
        };
        let peer = a.add_peer(b.public_key(), cfg, now).unwrap();
        b.add_peer(a.public_key(), PeerConfig::default(), now)
            .unwrap();
        (a, b, peer)
    }

    fn device(self, seed: u64, now: Instant) -> Device {
        let private = clamp([seed as u8; 32]);
        let (key, crypto): (Box<dyn StaticKey>, Box<dyn Crypto>) = match self {
            Dh::Software => (
                Box::new(SecretKey::from_bytes(private)),
                Box::new(RustCrypto),
            ),
            #[cfg(feature = "aws-lc")]
            Dh::AwsLc => (
                Box::new(aws_lc::AwsLcSecretKey::from_bytes(private)),
                Box::new(aws_lc::WithAwsLcX25519(RustCrypto)),
            ),
        };
        let mut d = Device::new(key, crypto, Box::new(ChaCha8Rng::seed_from_u64(seed)));
        d.set_clock(now, 1_700_000_000_000_000_000);
        d
    }
}

fn ferrowg<M: Measurement>(c: &mut Criterion<M>) {
    for dh in Dh::all() {
        ferrowg_full(c, dh);
    }
}

fn ferrowg_full<M: Measurement>(c: &mut Criterion<M>, dh: Dh) {
    let mut now = Instant::from_secs(1);
    let (mut a, mut b, peer) = dh.pair(now);
    let mut wire = vec![0u8; 256];
    let mut g = common::group(c, "handshake", Throughput::Elements(1));
    g.bench_function(dh.name(), |bench| {
        bench.iter(|| {
            now = now + STEP;
            a.initiate_handshake(peer, now);
            let t = a.poll_transmit(&mut wire).expect("initiation");
            let r = b.handle_datagram(now, A_EP, &mut wire[..t.len]);
            assert_eq!(r, Incoming::Handshake);
            let t = b.poll_transmit(&mut wire).expect("response");
            let r = a.handle_datagram(now, B_EP, &mut wire[..t.len]);
            assert_eq!(r, Incoming::Handshake);
            // The keepalive that confirms the session to the responder.
            black_box(a.poll_transmit(&mut wire).expect("keepalive"));
            while a.poll_event().is_some() || b.poll_event().is_some() {}
        })
    });
    g.finish();
}

fn boringtun<M: Measurement>(c: &mut Criterion<M>) {
    let (mut a, mut b) = common::boringtun_tunnels();
    let (mut d1, mut d2, mut d3) = (vec![0u8; 256], vec![0u8; 256], vec![0u8; 256]);
    let mut g = common::group(c, "handshake", Throughput::Elements(1));
    g.bench_function("boringtun", |bench| {
        bench.iter(|| {
            let TunnResult::WriteToNetwork(init) = a.format_handshake_initiation(&mut d1, true)
            else {
                panic!("initiation")
            };
            let TunnResult::WriteToNetwork(resp) = b.decapsulate(None, init, &mut d2) else {
                panic!("response")
            };
            // Consuming the response yields the keepalive.
            let TunnResult::WriteToNetwork(ka) = a.decapsulate(None, resp, &mut d3) else {
                panic!("keepalive")
            };
            black_box(ka.len());
        })
    });
    g.finish();
}

/// Responder cost alone: the initiator's work happens in criterion's untimed setup.
fn ferrowg_responder<M: Measurement>(c: &mut Criterion<M>) {
    for dh in Dh::all() {
        ferrowg_responder_with(c, dh);
    }
}

fn ferrowg_responder_with<M: Measurement>(c: &mut Criterion<M>, dh: Dh) {
    let mut now = Instant::from_secs(1);
    let (mut a, mut b, peer) = dh.pair(now);
    let mut resp = vec![0u8; 256];
    let mut g = common::group(c, "responder", Throughput::Elements(1));
    g.bench_function(dh.name(), |bench| {
        bench.iter_batched(
            || {
                // Past the responder's 20 ms flood interval, with a newer timestamp.
                now = now + STEP;
                a.initiate_handshake(peer, now);
                let mut init = vec![0u8; 256];
                let t = a.poll_transmit(&mut init).expect("initiation");
                init.truncate(t.len);
                while a.poll_event().is_some() {}
                (init, now)
            },
            |(mut init, t)| {
                let r = b.handle_datagram(t, A_EP, &mut init);
                assert_eq!(r, Incoming::Handshake);
                black_box(b.poll_transmit(&mut resp).expect("response"));
                while b.poll_event().is_some() {}
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn boringtun_responder<M: Measurement>(c: &mut Criterion<M>) {
    let (mut a, mut b) = common::boringtun_tunnels();
    let mut resp = vec![0u8; 256];
    let mut g = common::group(c, "responder", Throughput::Elements(1));
    g.bench_function("boringtun", |bench| {
        bench.iter_batched(
            || {
                let mut d = vec![0u8; 256];
                let TunnResult::WriteToNetwork(init) = a.format_handshake_initiation(&mut d, true)
                else {
                    panic!("initiation")
                };
                init.to_vec()
            },
            |init| {
                let TunnResult::WriteToNetwork(r) = b.decapsulate(None, &init, &mut resp) else {
                    panic!("response")
                };
                black_box(r.len());
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

bench_main!(
    measurement = Duration::from_secs(4),
    samples = 20,
    targets = ferrowg,
    boringtun,
    ferrowg_responder,
    boringtun_responder,
);
