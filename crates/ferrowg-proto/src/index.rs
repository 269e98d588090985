//! Lookup tables: receiver index → session, static public key → peer (kernel peerlookup.c).
//!
//! Indices are chosen at random by us and public keys are random curve points; both tables
//! still hash with a secret seed from the device's RNG ([`HashSeed`]), like every table of the
//! device.

use hashbrown::HashMap;

use crate::hasher::HashSeed;
use crate::peer::PeerId;

/// What a receiver index names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexEntry {
    /// An initiation we sent and await a response to.
    Handshake(PeerId),
    /// A keypair of the peer.
    Keypair(PeerId),
}

impl IndexEntry {
    /// The peer the index belongs to.
    pub fn peer(self) -> PeerId {
        match self {
            IndexEntry::Handshake(p) | IndexEntry::Keypair(p) => p,
        }
    }
}

/// Receiver index → session.
pub struct IndexTable(HashMap<u32, IndexEntry, HashSeed>);

impl IndexTable {
    /// An empty table hashing with `seed`.
    pub(crate) fn new(seed: HashSeed) -> Self {
        IndexTable(HashMap::with_hasher(seed))
    }
    /// Registers `entry` under a fresh random index drawn from `rng` and returns it.
    pub fn insert(&mut self, entry: IndexEntry, rng: &mut dyn rand_core::RngCore) -> u32 {
        loop {
            let i = rng.next_u32();
            if let hashbrown::hash_map::Entry::Vacant(v) = self.0.entry(i) {
                v.insert(entry);
                return i;
            }
        }
    }
    /// Re-labels an existing index (a handshake index becomes a keypair index).
    pub fn set(&mut self, index: u32, entry: IndexEntry) {
        self.0.insert(index, entry);
    }
    /// Looks an index up.
    pub fn get(&self, index: u32) -> Option<IndexEntry> {
        self.0.get(&index).copied()
    }
    /// Forgets an index.
    pub fn remove(&mut self, index: u32) {
        self.0.remove(&index);
    }
    /// Number of live indices.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Static public key → peer.
pub(crate) type PeerByKey = HashMap<[u8; 32], PeerId, HashSeed>;

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn indices_are_unique_and_removable() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut t = IndexTable::new(HashSeed::new(1, 2, 3));
        let mut seen = alloc::vec::Vec::new();
        for n in 0..1000 {
            let i = t.insert(IndexEntry::Keypair(PeerId(n)), &mut rng);
            assert_eq!(t.get(i), Some(IndexEntry::Keypair(PeerId(n))));
            seen.push(i);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
        t.remove(seen[0]);
        assert_eq!(t.get(seen[0]), None);
        assert_eq!(t.len(), 999);
    }
}
