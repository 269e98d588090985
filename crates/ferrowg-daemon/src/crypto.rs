//! The daemon's transport crypto: the backend picked at start-up (ring's ChaCha20-Poly1305,
//! aws-lc's X25519), plus ferrowg-sys's AVX-512 code ([`ferrowg_simd::aead16`]) for batches.
//!
//! A GSO super-packet from TUN becomes ~45 datagrams under one session key, and a UDP GRO read
//! brings as many back; sealing or opening them 16 at a time in vector lanes costs about 60 %
//! of ring's one-at-a-time time (`cargo bench -p ferrowg-sys --bench aead16`). Single packets
//! and small batches, where most lanes would idle, still go to ring, so latency is unchanged.
//! Used when the CPU has AVX-512F and IFMA; `FERROWG_AEAD=ring` turns it off (for A/B runs).

use std::sync::atomic::{AtomicU64, Ordering};

use ferrowg_proto::crypto::{AeadKey, AeadMessage, AuthError, Crypto, Secret};
use ferrowg_simd::aead16::{self, Message, LANES};
use zeroize::Zeroizing;

/// Fewest messages worth a vector pass: below this, half the lanes would idle and ring is as
/// fast (8 × 1420 bytes measured equal).
const MIN_BATCH: usize = 8;

/// Messages sealed in vector lanes since the process started (one interface per process, so
/// the daemon's log reports it with its own statistics).
pub static VECTOR_SEALED: AtomicU64 = AtomicU64::new(0);
/// Messages opened (verified or not) in vector lanes since the process started.
pub static VECTOR_OPENED: AtomicU64 = AtomicU64::new(0);

/// A backend whose keys seal and open batches with [`ferrowg_simd::aead16`].
pub struct BatchCrypto<C> {
    inner: C,
    vector: bool,
}

impl<C: Crypto> BatchCrypto<C> {
    /// Wraps `inner`; batches use the vector code if this CPU runs it and `FERROWG_AEAD` is
    /// not `ring`.
    pub fn new(inner: C) -> Self {
        let off = std::env::var("FERROWG_AEAD").is_ok_and(|v| v == "ring");
        BatchCrypto {
            inner,
            vector: aead16::available() && !off,
        }
    }
}

impl<C: Crypto> Crypto for BatchCrypto<C> {
    fn aead_key(&self, key: &[u8; 32]) -> Box<dyn AeadKey> {
        let single = self.inner.aead_key(key);
        if !self.vector {
            return single;
        }
        Box::new(BatchKey {
            key: Zeroizing::new(*key),
            single,
        })
    }
    fn x25519(&self, secret: &[u8; 32], public: &[u8; 32]) -> Option<Secret> {
        self.inner.x25519(secret, public)
    }
    fn x25519_public(&self, secret: &[u8; 32]) -> [u8; 32] {
        self.inner.x25519_public(secret)
    }
    fn name(&self) -> &'static str {
        if self.vector {
            "AVX-512 IFMA (batches) and ring"
        } else {
            self.inner.name()
        }
    }
}

/// A session key: ring for single messages, the vector code for batches.
struct BatchKey {
    key: Zeroizing<[u8; 32]>,
    single: Box<dyn AeadKey>,
}

/// How many messages of a batch of `n` go to the vector code: whole groups of [`LANES`], and
/// the remainder too if it fills at least [`MIN_BATCH`] lanes.
fn vector_share(n: usize) -> usize {
    let whole = n / LANES * LANES;
    if n - whole >= MIN_BATCH {
        n
    } else {
        whole
    }
}

/// The vector code's view of `batch` (the same buffers).
fn lanes<'m>(batch: &'m mut [AeadMessage<'_>]) -> Vec<Message<'m>> {
    batch
        .iter_mut()
        .map(|m| Message {
            counter: m.counter,
            body: &mut *m.body,
            tag: &mut *m.tag,
            ok: false,
        })
        .collect()
}

impl AeadKey for BatchKey {
    fn seal(&self, counter: u64, buf: &mut [u8]) -> [u8; 16] {
        self.single.seal(counter, buf)
    }
    fn open(&self, counter: u64, buf: &mut [u8], tag: &[u8; 16]) -> Result<(), AuthError> {
        self.single.open(counter, buf, tag)
    }
    fn seal_batch(&self, batch: &mut [AeadMessage<'_>]) {
        let (vector, rest) = batch.split_at_mut(vector_share(batch.len()));
        if !vector.is_empty() {
            if aead16::seal(&self.key, &mut lanes(vector)) {
                VECTOR_SEALED.fetch_add(vector.len() as u64, Ordering::Relaxed);
            } else {
                self.single.seal_batch(vector);
            }
        }
        self.single.seal_batch(rest);
    }
    fn open_batch(&self, batch: &mut [AeadMessage<'_>]) {
        let (vector, rest) = batch.split_at_mut(vector_share(batch.len()));
        if !vector.is_empty() {
            let mut msgs = lanes(vector);
            if aead16::open(&self.key, &mut msgs) {
                let oks: Vec<bool> = msgs.iter().map(|m| m.ok).collect();
                drop(msgs);
                for (m, ok) in vector.iter_mut().zip(oks) {
                    m.ok = ok;
                }
                VECTOR_OPENED.fetch_add(vector.len() as u64, Ordering::Relaxed);
            } else {
                drop(msgs);
                self.single.open_batch(vector);
            }
        }
        self.single.open_batch(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrowg_proto::crypto::RingCrypto;

    #[test]
    fn small_remainders_go_to_ring() {
        assert_eq!(vector_share(0), 0);
        assert_eq!(vector_share(7), 0);
        assert_eq!(vector_share(8), 8);
        assert_eq!(vector_share(16), 16);
        assert_eq!(vector_share(23), 16);
        assert_eq!(vector_share(24), 24);
        assert_eq!(vector_share(45), 45);
    }

    /// The batch over `bodies`, counters 1000, 1001, ….
    fn messages<'a>(bodies: &'a mut [Vec<u8>], tags: &'a mut [[u8; 16]]) -> Vec<AeadMessage<'a>> {
        bodies
            .iter_mut()
            .zip(tags.iter_mut())
            .enumerate()
            .map(|(i, (body, tag))| AeadMessage {
                counter: 1000 + i as u64,
                body,
                tag,
                ok: false,
            })
            .collect()
    }

    /// Every batch size from 1 to 50 seals to what ring seals one by one, and opens back; a
    /// corrupted message in a batch fails alone.
    #[test]
    fn batches_match_ring_message_for_message() {
        let key = [0x42u8; 32];
        let ring = RingCrypto.aead_key(&key);
        let batched = BatchCrypto::new(RingCrypto).aead_key(&key);
        for n in 1..=50usize {
            let plain: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 16 * (i % 90) + 12]).collect();
            let mut bodies = plain.clone();
            let mut tags = vec![[0u8; 16]; n];
            let mut batch = messages(&mut bodies, &mut tags);
            batched.seal_batch(&mut batch);
            drop(batch);
            for i in 0..n {
                let mut want = plain[i].clone();
                let tag = ring.seal(1000 + i as u64, &mut want);
                assert_eq!((&bodies[i], &tags[i]), (&want, &tag), "n={n} i={i}");
            }
            let bad = n / 2;
            bodies[bad][3] ^= 1;
            let mut batch = messages(&mut bodies, &mut tags);
            batched.open_batch(&mut batch);
            let oks: Vec<bool> = batch.iter().map(|m| m.ok).collect();
            drop(batch);
            for i in 0..n {
                assert_eq!(oks[i], i != bad, "n={n} i={i}");
                if i != bad {
                    assert_eq!(bodies[i], plain[i], "n={n} i={i}");
                }
            }
        }
    }
}
