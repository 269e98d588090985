//! The hasher of the lookup tables whose keys are already uniformly random: receiver indices
//! (drawn by us), static public keys (random curve points) and allowed-IPs prefixes (set by the
//! local administrator, never by the network).

use core::hash::{BuildHasher, Hasher};

/// A hasher for keys that are already uniformly random: folds 8-byte words with a
/// multiply-rotate (FxHash's step). Not for attacker-chosen stored keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct RandomKeyHasher(u64);

impl Hasher for RandomKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`RandomKeyHasher`]s.
#[derive(Default, Clone, Copy)]
pub(crate) struct RandomKeyState;

impl BuildHasher for RandomKeyState {
    type Hasher = RandomKeyHasher;
    fn build_hasher(&self) -> RandomKeyHasher {
        RandomKeyHasher::default()
    }
}
