//! The state kept for one peer, the id that names it, and the table of peers by id.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use hashbrown::HashSet;

use crate::cookie::CookieMaker;
use crate::hasher::HashSeed;
use crate::keypair::Keypairs;
use crate::netmap::Netmap;
use crate::noise::Handshake;
use crate::time::Instant;
use crate::timers::Timers;

/// Identifies a peer of a [`Device`](crate::Device). Ids of removed peers may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) u32);

impl PeerId {
    /// The id as a number (stable while the peer exists).
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

/// One peer: handshake, keys, timers, endpoint and counters.
pub(crate) struct Peer {
    pub public_key: [u8; 32],
    pub handshake: Handshake,
    pub cookie: CookieMaker,
    pub keypairs: Keypairs,
    pub endpoint: Option<SocketAddr>,
    pub timers: Timers,
    /// IP packets waiting for a session (at most MAX_STAGED_PACKETS).
    pub staged: VecDeque<Vec<u8>>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub last_handshake: Option<Instant>,
    pub last_sent_handshake: Option<Instant>,
    pub sent_lastminute_handshake: bool,
    /// An initiation waits for the static-static DH the caller computes (offloaded DH).
    pub awaiting_static_dh: bool,
    /// The deadline this peer has in the device's timer heap.
    pub scheduled: Option<Instant>,
    /// This peer's allowed-IPs prefixes (canonical), so that replacing or removing them costs
    /// their number, not the size of the whole table (the kernel's per-peer node list).
    pub allowed_ips: PrefixSet,
    /// The key of the peer this one succeeds: at its first handshake it takes over that peer's
    /// allowed IPs (`device/successor.rs`).
    pub successor_of: Option<[u8; 32]>,
    /// The key of this peer's successor, whose prefixes this peer may still send from.
    pub succeeded_by: Option<[u8; 32]>,
    /// Prefix translations for the sites behind this peer (`netmap.rs`).
    pub netmaps: Vec<Netmap>,
}

/// A set of canonical `(network address, prefix length)` pairs. Prefixes come from the local
/// administrator (UAPI, root only), never from the network.
pub(crate) type PrefixSet = HashSet<(IpAddr, u8), HashSeed>;

impl Peer {
    /// A peer whose allowed-IPs set hashes with `seed`.
    pub fn new(public_key: [u8; 32], handshake: Handshake, seed: HashSeed) -> Self {
        Peer {
            public_key,
            cookie: CookieMaker::new(&public_key),
            handshake,
            keypairs: Keypairs::default(),
            endpoint: None,
            timers: Timers::default(),
            staged: VecDeque::new(),
            rx_bytes: 0,
            tx_bytes: 0,
            last_handshake: None,
            last_sent_handshake: None,
            sent_lastminute_handshake: false,
            awaiting_static_dh: false,
            scheduled: None,
            allowed_ips: PrefixSet::with_hasher(seed),
            successor_of: None,
            succeeded_by: None,
            netmaps: Vec::new(),
        }
    }
}

/// The peers of a device by id: one slot per id ever handed out, and the ids of removed peers,
/// which new peers take first.
#[derive(Default)]
pub(crate) struct Peers {
    slots: Vec<Option<Peer>>,
    free_ids: Vec<u32>,
}

impl Peers {
    /// The peer `id`.
    pub fn get(&self, id: PeerId) -> Option<&Peer> {
        self.slots.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// The peer `id`, mutably.
    pub fn get_mut(&mut self, id: PeerId) -> Option<&mut Peer> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    /// Stores `peer` under a free id, else a new one; `None` when ids ran out.
    pub fn insert(&mut self, peer: Peer) -> Option<PeerId> {
        if let Some(i) = self.free_ids.pop() {
            self.slots[i as usize] = Some(peer);
            return Some(PeerId(i));
        }
        let i = u32::try_from(self.slots.len()).ok()?;
        self.slots.push(Some(peer));
        Some(PeerId(i))
    }

    /// Takes the peer `id` out; its id becomes free.
    pub fn remove(&mut self, id: PeerId) -> Option<Peer> {
        let peer = self.slots.get_mut(id.0 as usize).and_then(Option::take)?;
        self.free_ids.push(id.0);
        Some(peer)
    }

    /// Every peer's id, in id order.
    pub fn ids(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| PeerId(i as u32))
    }

    /// Every peer, mutably.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Peer> {
        self.slots.iter_mut().flatten()
    }

    /// Makes room for `additional` more peers (free ids are reused first).
    pub fn reserve(&mut self, additional: usize) {
        self.slots
            .reserve(additional.saturating_sub(self.free_ids.len()));
    }

    /// Removes every peer.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free_ids.clear();
    }
}
