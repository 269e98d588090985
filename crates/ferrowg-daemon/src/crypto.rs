//! The daemon's transport crypto: the backend picked at start-up (ring's ChaCha20-Poly1305,
//! aws-lc's X25519), plus ferrowg-simd's AVX-512 code ([`ferrowg_simd::aead16`]) for batches.
//!
//! A GSO super-packet from TUN becomes dozens of datagrams under one session key, and a UDP GRO
//! read brings as many back; these are sealed or opened 16 at a time in vector lanes, which is
//! faster than ring one at a time (`cargo bench -p ferrowg-simd --bench aead16`). Single packets
//! and small batches, where most lanes would idle, go to ring, so latency does not depend on
//! the vector code. Used when the CPU has AVX-512F and IFMA, unless the [`Tuning`] says
//! [`Aead::Ring`].
//!
//! [`Tuning`]: crate::Tuning

use std::sync::Arc;

use ferrowg_proto::crypto::{AeadKey, AeadMessage, AuthError, Crypto, Secret};
use ferrowg_simd::aead16::{self, Message, LANES};
use zeroize::Zeroizing;

use crate::datapath::DatapathStats;
use crate::tuning::Aead;

/// Fewest messages worth a vector pass: below this, half the lanes would idle and ring is as
/// fast.
const MIN_BATCH: usize = 8;

/// A backend whose keys seal and open batches with [`ferrowg_simd::aead16`].
pub struct BatchCrypto<C> {
    inner: C,
    vector: bool,
    /// Where the keys count the messages they put through vector lanes.
    stats: Arc<DatapathStats>,
}

impl<C: Crypto> BatchCrypto<C> {
    /// Wraps `inner`; batches use the vector code if this CPU runs it and `aead` allows it,
    /// and are counted in `stats`.
    pub fn new(inner: C, aead: Aead, stats: Arc<DatapathStats>) -> Self {
        BatchCrypto {
            inner,
            vector: aead16::available() && aead == Aead::Auto,
            stats,
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
            stats: self.stats.clone(),
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
    stats: Arc<DatapathStats>,
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
                DatapathStats::count(&self.stats.vector_sealed, vector.len() as u64);
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
                DatapathStats::count(&self.stats.vector_opened, vector.len() as u64);
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
        let stats = Arc::new(DatapathStats::default());
        let batched = BatchCrypto::new(RingCrypto, Aead::Auto, stats.clone()).aead_key(&key);
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
        // The vector lanes count what they took (none on a CPU without them).
        let counted =
            |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        let vector = aead16::available();
        assert_eq!(counted(&stats.vector_sealed) > 0, vector);
        assert_eq!(counted(&stats.vector_opened) > 0, vector);
        // With ring chosen, nothing goes to the lanes.
        let stats = Arc::new(DatapathStats::default());
        let ring_only = BatchCrypto::new(RingCrypto, Aead::Ring, stats.clone()).aead_key(&key);
        let mut bodies = vec![vec![7u8; 1000]; 32];
        let mut tags = vec![[0u8; 16]; 32];
        ring_only.seal_batch(&mut messages(&mut bodies, &mut tags));
        assert_eq!(counted(&stats.vector_sealed), 0);
    }
}
