//! The state kept for one peer.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::hash::BuildHasherDefault;
use core::net::{IpAddr, SocketAddr};

use hashbrown::HashSet;

use crate::cookie::CookieMaker;
use crate::index::RandomKeyHasher;
use crate::keypair::Keypairs;
use crate::noise::Handshake;
use crate::time::Instant;
use crate::timers::Timers;

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
    /// The deadline this peer has in the device's timer heap.
    pub scheduled: Option<Instant>,
    /// This peer's allowed-IPs prefixes (canonical), so that replacing or removing them costs
    /// their number, not the size of the whole table (the kernel's per-peer node list).
    pub allowed_ips: PrefixSet,
}

/// A set of canonical `(network address, prefix length)` pairs. Prefixes come from the local
/// administrator (UAPI, root only), never from the network.
pub(crate) type PrefixSet = HashSet<(IpAddr, u8), BuildHasherDefault<RandomKeyHasher>>;

impl Peer {
    pub fn new(public_key: [u8; 32], handshake: Handshake) -> Self {
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
            scheduled: None,
            allowed_ips: PrefixSet::default(),
        }
    }
}
