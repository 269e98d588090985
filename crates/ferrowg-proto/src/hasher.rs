//! The hasher of the device's hash tables (receiver indices, static public keys, per-peer
//! allowed-IPs prefixes, rate-limiter sources): a seeded multiply-fold hash with a finaliser.
//!
//! Every word is mixed in with a folded multiply (the 128-bit product of the state and a
//! secret multiplier, high half XORed into low half), which carries every input bit into every
//! output bit, and [`SeededHasher::finish`] mixes once more, so keys that differ only in a few
//! bits (consecutive addresses, prefixes of one /16) spread over all buckets. The seeds come
//! from the caller's RNG ([`HashSeed::from_rng`]), so nobody outside can predict where a key
//! lands.

use core::hash::{BuildHasher, Hasher};

use rand_core::RngCore;

/// Fixed odd constants (digits of π) that keep the multipliers away from weak values whatever
/// the seed is.
const PI: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

/// The 128-bit product of `a` and `b`, high half XORed into low half.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    // Truncation keeps the low half on purpose; the high half is folded in.
    (full as u64) ^ ((full >> 64) as u64)
}

/// A hasher keyed by a [`HashSeed`].
#[derive(Clone, Copy)]
pub(crate) struct SeededHasher {
    acc: u64,
    mul: u64,
    fin: u64,
}

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.acc = folded_multiply(self.acc ^ i, self.mul);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        folded_multiply(self.acc ^ self.fin, PI[1]).rotate_left(23)
    }
}

/// The secret seed of a hash table: builds [`SeededHasher`]s.
#[derive(Clone, Copy)]
pub(crate) struct HashSeed {
    init: u64,
    mul: u64,
    fin: u64,
}

impl HashSeed {
    /// A seed from three words; the multiplier is made odd and given a high bit, so no seed is
    /// weak.
    pub fn new(init: u64, mul: u64, fin: u64) -> Self {
        HashSeed {
            init,
            mul: (mul ^ PI[0]) | (1 << 63) | 1,
            fin,
        }
    }

    /// A fresh random seed drawn from `rng`.
    pub fn from_rng(rng: &mut (impl RngCore + ?Sized)) -> Self {
        Self::new(rng.next_u64(), rng.next_u64(), rng.next_u64())
    }
}

impl BuildHasher for HashSeed {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher {
            acc: self.init,
            mul: self.mul,
            fin: self.fin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use core::net::{IpAddr, Ipv4Addr};

    /// The 65,536 /32s of one /16, inserted into a per-peer prefix set, and their hashes.
    fn slash16_hashes(seed: HashSeed) -> alloc::vec::Vec<u64> {
        let mut set = crate::peer::PrefixSet::with_hasher(seed);
        for i in 0..=u16::MAX {
            set.insert((IpAddr::V4(Ipv4Addr::from(0x0a40_0000 | u32::from(i))), 32));
        }
        assert_eq!(set.len(), 1 << 16);
        set.iter().map(|p| set.hasher().hash_one(p)).collect()
    }

    /// hashbrown picks a bucket from the low bits: 65,536 /32s of one /16 must hit most of
    /// the 65,536 possible low-16-bit values (uniform hashing hits about 63%), and no bucket
    /// of a 2^16-bucket table may hold more than a handful.
    #[test]
    fn host_routes_of_one_slash16_spread() {
        for seed in [
            HashSeed::new(0, 0, 0),
            HashSeed::new(1, 2, 3),
            HashSeed::new(u64::MAX, 0x5eed, 42),
        ] {
            let mut buckets: BTreeMap<u16, u32> = BTreeMap::new();
            for h in slash16_hashes(seed) {
                *buckets.entry(h as u16).or_default() += 1;
            }
            let max = buckets.values().copied().max().unwrap_or(0);
            assert!(buckets.len() > 38_000, "distinct {}", buckets.len());
            assert!(max <= 12, "max bucket {max}");
            // The top 7 bits (hashbrown's control byte) vary too.
            let tags: alloc::collections::BTreeSet<u64> =
                slash16_hashes(seed).iter().map(|h| h >> 57).collect();
            assert_eq!(tags.len(), 128);
        }
    }

    #[test]
    fn seeds_change_the_hash() {
        let a = HashSeed::new(1, 2, 3).hash_one(7u32);
        let b = HashSeed::new(1, 2, 4).hash_one(7u32);
        let c = HashSeed::new(2, 2, 3).hash_one(7u32);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
