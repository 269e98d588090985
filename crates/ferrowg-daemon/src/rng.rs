//! The daemon's random numbers: seeded from getrandom(2), then drawn from ChaCha20 in
//! userspace with fast key erasure, and reseeded now and then and after a fork.
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
//!
//! Fresh randomness from getrandom(2) is mixed into the key every [`RESEED_REFILLS`] refills,
//! so a disclosure of the state does not reveal the outputs after the next reseed either (the
//! Linux CRNG reseeds every minute; counting refills instead of reading a clock keeps the draw
//! free of system calls). A refill in a process other than the one that last seeded (a child
//! of `fork`) reseeds first, so parent and child do not hand out the same keys; only what was
//! already in the buffer at the fork (less than one refill) may be served by both. The pid is
//! read once per refill, never per number.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Bytes handed out per refill (the refill computes 32 more for the next key).
const BUF: usize = 480;
/// Refills between two reseeds: 480 KiB of output, tens of thousands of draws, so one
/// getrandom(2) call costs each draw next to nothing.
const RESEED_REFILLS: u32 = 1024;

/// A cryptographically secure generator with fast key erasure; see the module comment.
pub struct ErasingRng {
    key: Zeroizing<[u8; 32]>,
    buf: Zeroizing<[u8; BUF]>,
    /// Bytes of `buf` already handed out (and wiped).
    used: usize,
    /// Refills left before the next reseed.
    refills_left: u32,
    /// The process that last seeded the key.
    pid: u32,
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
            refills_left: RESEED_REFILLS,
            pid: std::process::id(),
        }
    }

    /// Mixes 32 bytes of getrandom(2) into the key (process `pid`). On failure the key stays
    /// and the next refill tries again.
    fn reseed(&mut self, pid: u32) {
        let mut fresh = Zeroizing::new([0u8; 32]);
        if let Err(e) = rand_core::OsRng.try_fill_bytes(&mut fresh[..]) {
            log::warn!("cannot reseed the random number generator: {e}");
            return;
        }
        for (k, f) in self.key.iter_mut().zip(fresh.iter()) {
            *k ^= f;
        }
        self.refills_left = RESEED_REFILLS;
        self.pid = pid;
    }

    /// Replaces the key and the buffer with the next keystream block of the current key.
    fn refill(&mut self) {
        let pid = std::process::id();
        if self.refills_left == 0 || pid != self.pid {
            self.reseed(pid);
        }
        self.refills_left = self.refills_left.saturating_sub(1);
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

    /// The output of `rng` after its key `k0` handed out `refills` refills, `len` bytes, and
    /// what the key chain of `k0` alone would have given there.
    fn next_and_chain(rng: &mut ErasingRng, k0: [u8; 32], refills: u32) -> (Vec<u8>, Vec<u8>) {
        let mut key = k0;
        let mut skipped = vec![0u8; BUF];
        for _ in 0..refills {
            let s = keystream(&key, 32 + BUF);
            key = s[..32].try_into().unwrap();
            rng.fill_bytes(&mut skipped);
            assert_eq!(
                skipped,
                s[32..],
                "output before the reseed follows the chain"
            );
        }
        let mut got = vec![0u8; BUF];
        rng.fill_bytes(&mut got);
        (got, keystream(&key, 32 + BUF)[32..].to_vec())
    }

    /// After RESEED_REFILLS refills the key takes in fresh randomness: the output leaves the
    /// key chain, and the count starts again.
    #[test]
    fn reseeds_after_a_number_of_refills() {
        let k0 = [5u8; 32];
        let mut rng = ErasingRng::from_key(Zeroizing::new(k0));
        let (got, chain) = next_and_chain(&mut rng, k0, RESEED_REFILLS);
        assert_ne!(got, chain);
        assert_eq!(rng.refills_left, RESEED_REFILLS - 1);
    }

    /// A refill in another process than the one that seeded (a forked child) reseeds first.
    #[test]
    fn reseeds_in_a_forked_child() {
        let k0 = [6u8; 32];
        let mut rng = ErasingRng::from_key(Zeroizing::new(k0));
        let (_, chain) = next_and_chain(&mut rng, k0, 0);
        let mut rng = ErasingRng::from_key(Zeroizing::new(k0));
        rng.pid = std::process::id().wrapping_add(1);
        let mut got = vec![0u8; BUF];
        rng.fill_bytes(&mut got);
        assert_ne!(got, chain);
        assert_eq!(rng.pid, std::process::id());
        assert_eq!(rng.refills_left, RESEED_REFILLS - 1);
    }

    /// Two generators from the operating system differ (a stuck seed would not).
    #[test]
    fn os_seeded_generators_differ() {
        let mut a = ErasingRng::from_os().unwrap();
        let mut b = ErasingRng::from_os().unwrap();
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
