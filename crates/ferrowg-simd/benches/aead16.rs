//! ChaCha20-Poly1305 backends side by side, in bytes of payload per second: ring (one message
//! per call, what the daemon used alone before) against [`ferrowg_simd::aead16`] (up to 16
//! messages per pass), sealing and opening, for the batch shapes the daemon sees: a GSO
//! super-packet's 45 datagrams of 1420 bytes, smaller runs, a single message, and small packets.
//!
//! `cargo bench -p ferrowg-simd --bench aead16`

#![allow(missing_docs)] // criterion_group! makes an undocumented function

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use ferrowg_simd::aead16::{self, Message};
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// The batch as the vector code's messages, counters 1, 2, ….
fn messages<'a>(bodies: &'a mut [Vec<u8>], tags: &'a mut [[u8; 16]]) -> Vec<Message<'a>> {
    bodies
        .iter_mut()
        .zip(tags.iter_mut())
        .enumerate()
        .map(|(i, (body, tag))| Message {
            counter: i as u64 + 1,
            body,
            tag,
            ok: false,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let key = [7u8; 32];
    let ring_key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).unwrap());
    let have = aead16::available();
    if !have {
        eprintln!("aead16: this CPU has no AVX-512 IFMA; only ring is measured");
    }
    for (count, len) in [
        (45usize, 1420usize),
        (16, 1420),
        (8, 1420),
        (1, 1420),
        (45, 64),
    ] {
        let mut g = c.benchmark_group(format!("{count}x{len}"));
        g.throughput(Throughput::Bytes((count * len) as u64));
        let plain = vec![vec![0x5au8; len]; count];
        // Sealed once with ring, for the open benchmarks (each run opens a fresh copy).
        let mut sealed = plain.clone();
        let tags: Vec<[u8; 16]> = sealed
            .iter_mut()
            .enumerate()
            .map(|(i, b)| {
                let t = ring_key
                    .seal_in_place_separate_tag(nonce(i as u64 + 1), Aad::empty(), b)
                    .unwrap();
                t.as_ref().try_into().unwrap()
            })
            .collect();
        let fresh = || (sealed.clone(), tags.clone());
        g.bench_function(BenchmarkId::new("seal", "ring"), |b| {
            b.iter_batched_ref(
                || plain.clone(),
                |bodies| {
                    for (i, body) in bodies.iter_mut().enumerate() {
                        let t = ring_key
                            .seal_in_place_separate_tag(nonce(i as u64 + 1), Aad::empty(), body)
                            .unwrap();
                        let _ = std::hint::black_box(t);
                    }
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("open", "ring"), |b| {
            b.iter_batched_ref(
                fresh,
                |(bodies, tags)| {
                    for (i, (body, tag)) in bodies.iter_mut().zip(tags.iter()).enumerate() {
                        ring_key
                            .open_in_place_separate_tag(
                                nonce(i as u64 + 1),
                                Aad::empty(),
                                Tag::from(*tag),
                                body,
                                0..,
                            )
                            .unwrap();
                    }
                },
                BatchSize::SmallInput,
            )
        });
        if !have {
            continue;
        }
        g.bench_function(BenchmarkId::new("seal", "aead16"), |b| {
            b.iter_batched_ref(
                || (plain.clone(), vec![[0u8; 16]; count]),
                |(bodies, tags)| {
                    aead16::seal(&key, &mut messages(bodies, tags));
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("open", "aead16"), |b| {
            b.iter_batched_ref(
                fresh,
                |(bodies, tags)| {
                    let mut msgs = messages(bodies, tags);
                    aead16::open(&key, &mut msgs);
                    assert!(msgs.iter().all(|m| m.ok));
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
