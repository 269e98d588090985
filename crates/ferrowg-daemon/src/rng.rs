//! The daemon's random numbers: seeded once from getrandom(2), then drawn from ChaCha20 in
//! userspace with fast key erasure.
//!
//! The protocol core draws randomness for ephemeral keys and session indices (a few times per
//! handshake) and for timer jitter, which the kernel adds whenever a data packet arms the
//! new-handshake timer: in request/response traffic, once per packet. Asking the kernel each
//! time would put a `getrandom(2)` system call on the path of every such packet.
//!
//! Each refill runs ChaCha20 under the current key, takes the first 32 bytes of the keystream
//! as the next key and hands out the rest, wiping every byte it hands out (the construction of
//! OpenBSD's arc4random and the Linux CRNG). What stays in memory never reveals an earlier
//! output, so a later memory disclosure recovers no past ephemeral key.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Bytes handed out per refill (the refill computes 32 more for the next key).
const BUF: usize = 480;

/// A cryptographically secure generator with fast key erasure; see the module comment.
pub struct ErasingRng {
    key: Zeroizing<[u8; 32]>,
    buf: Zeroizing<[u8; BUF]>,
    /// Bytes of `buf` already handed out (and wiped).
    used: usize,
}

impl ErasingRng {
    /// A generator keyed from the operating system (getrandom(2)).
    pub fn from_os() -> Result<Self, rand_core::Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand_core::OsRng.try_fill_bytes(&mut key[..])?;
        Ok(Self::from_key(key))
    }

    /// A generator keyed with `key` (for tests: the same key gives the same output).
    fn from_key(key: Zeroizing<[u8; 32]>) -> Self {
        ErasingRng {
            key,
            buf: Zeroizing::new([0; BUF]),
            used: BUF,
        }
    }

    /// Replaces the key and the buffer with the next keystream block of the current key.
    fn refill(&mut self) {
        let mut block = Zeroizing::new([0u8; 32 + BUF]);
        // Each key is used once, so a fixed nonce is fine. ChaCha20 wipes its state on drop.
        ChaCha20::new((&*self.key).into(), &[0u8; 12].into()).apply_keystream(&mut block[..]);
        self.key.copy_from_slice(&block[..32]);
        self.buf.copy_from_slice(&block[32..]);
        self.used = 0;
    }
}

impl RngCore for ErasingRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut at = 0;
        while at < dest.len() {
            if self.used == BUF {
                self.refill();
            }
            let n = (dest.len() - at).min(BUF - self.used);
            let src = &mut self.buf[self.used..self.used + n];
            dest[at..at + n].copy_from_slice(src);
            src.zeroize();
            self.used += n;
            at += n;
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for ErasingRng {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ChaCha20 keystream of `key` (nonce 0, counter 0), `len` bytes.
    fn keystream(key: &[u8; 32], len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        ChaCha20::new(key.into(), &[0u8; 12].into()).apply_keystream(&mut out);
        out
    }

    /// The output is the keystream past each key, and each next key is the keystream's first
    /// 32 bytes, however the requests are cut.
    #[test]
    fn output_follows_the_key_chain() {
        let k0 = [7u8; 32];
        let s0 = keystream(&k0, 32 + BUF);
        let k1: [u8; 32] = s0[..32].try_into().unwrap();
        let s1 = keystream(&k1, 32 + BUF);
        let want: Vec<u8> = s0[32..].iter().chain(&s1[32..]).copied().collect();

        for cuts in [
            &[1usize, 3, 4, 8][..],
            &[BUF - 1, 2],
            &[BUF],
            &[2 * BUF],
            &[5, 700],
        ] {
            let mut rng = ErasingRng::from_key(Zeroizing::new(k0));
            let mut got = Vec::new();
            let mut i = 0;
            while got.len() < want.len() {
                let n = cuts[i % cuts.len()].min(want.len() - got.len());
                let mut part = vec![0u8; n];
                rng.fill_bytes(&mut part);
                got.extend_from_slice(&part);
                i += 1;
            }
            assert_eq!(got, want, "cuts {cuts:?}");
        }
    }

    /// Handed-out bytes are wiped from the buffer and the key moves on at each refill.
    #[test]
    fn served_bytes_and_old_keys_are_erased() {
        let k0 = [9u8; 32];
        let mut rng = ErasingRng::from_key(Zeroizing::new(k0));
        let mut first = [0u8; 100];
        rng.fill_bytes(&mut first);
        assert!(rng.buf[..100].iter().all(|&b| b == 0));
        assert_ne!(rng.buf[100..], [0u8; BUF - 100][..]);
        assert_ne!(*rng.key, k0);
        let k1 = *rng.key;
        let mut rest = vec![0u8; BUF];
        rng.fill_bytes(&mut rest);
        assert_ne!(*rng.key, k1);
        assert_ne!(*rng.key, k0);
    }

    /// Two generators from the operating system differ (a stuck seed would not).
    #[test]
    fn os_seeded_generators_differ() {
        let mut a = ErasingRng::from_os().unwrap();
        let mut b = ErasingRng::from_os().unwrap();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
