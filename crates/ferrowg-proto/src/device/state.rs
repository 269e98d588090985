//! The [`Device`] itself: its state, the outcomes its calls return, and its outputs (the
//! `poll_*` calls that drain queued datagrams and events and tell when timers are due).

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::SocketAddr;
use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::allowedips::AllowedIps;
use crate::cookie::CookieChecker;
use crate::crypto::{Crypto, StaticKey};
use crate::error::{ConfigError, DropCounters, DropReason};
use crate::hasher::HashSeed;
use crate::index::{IndexTable, PeerByKey};
use crate::peer::{Peer, PeerId, Peers};
use crate::ratelimiter::{RateLimiter, DEFAULT_MAX_ENTRIES};
use crate::time::Instant;

/// Something the caller may want to log or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A handshake completed and a new session is in use.
    HandshakeCompleted {
        /// The peer.
        peer: PeerId,
        /// We sent the initiation.
        initiator: bool,
    },
    /// The peer was seen at a new address (roaming).
    EndpointChanged {
        /// The peer.
        peer: PeerId,
        /// Its new address.
        endpoint: SocketAddr,
    },
    /// No response for REKEY_ATTEMPT_TIME: stopped trying; queued packets were dropped.
    HandshakeGaveUp {
        /// The peer.
        peer: PeerId,
    },
    /// No new session for 3 × REJECT_AFTER_TIME: all keys of the peer were erased.
    KeysZeroed {
        /// The peer.
        peer: PeerId,
    },
    /// A handshake could not be built or answered because the static key failed (for
    /// example a token was removed). It will be retried.
    StaticKeyFailed {
        /// The peer.
        peer: PeerId,
    },
    /// A handshake with the peer waits for a static-key DH that the caller runs
    /// ([`Device::take_static_dh_jobs`]); only with [`Device::set_static_dh_offloaded`].
    StaticDhWanted {
        /// The peer.
        peer: PeerId,
    },
}

/// A datagram ready in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub endpoint: SocketAddr,
    /// Its length at the start of the buffer.
    pub len: usize,
}

/// Outcome of [`Device::handle_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// The buffer now holds a datagram of `len` bytes for `endpoint`.
    Send {
        /// The peer it goes to.
        peer: PeerId,
        /// Where to send it.
        endpoint: SocketAddr,
        /// Datagram length.
        len: usize,
    },
    /// No session yet: the packet was copied to the peer's queue and a handshake started.
    Queued {
        /// The peer.
        peer: PeerId,
    },
    /// The packet was dropped.
    Dropped(DropReason),
}

/// Outcome of [`Device::handle_datagram`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// An IP packet for the OS is at `buf[TRANSPORT_HEADER_SIZE..][..len]`.
    Packet {
        /// The peer it came from.
        peer: PeerId,
        /// Length of the IP packet (padding removed).
        len: usize,
    },
    /// An authenticated keepalive.
    Keepalive {
        /// The peer it came from.
        peer: PeerId,
    },
    /// A handshake message or cookie reply was processed; see `poll_transmit`/`poll_event`.
    Handshake,
    /// The datagram was dropped.
    Dropped(DropReason),
}

/// Device-wide statistics.
#[derive(Debug, Clone, Default)]
pub struct DeviceStats {
    /// Drops by reason.
    pub drops: DropCounters,
    /// Cookie replies sent.
    pub cookie_replies_sent: u64,
    /// Handshake initiations sent.
    pub initiations_sent: u64,
    /// Handshake responses sent.
    pub responses_sent: u64,
    /// Handshakes completed, as initiator or responder.
    pub handshakes_completed: u64,
    /// Handshakes given up after REKEY_ATTEMPT_TIME without an answer.
    pub handshakes_gave_up: u64,
}

/// Most datagrams kept for `poll_transmit`.
const MAX_QUEUED_TRANSMITS: usize = 4096;
/// Most events kept for `poll_event`.
const MAX_QUEUED_EVENTS: usize = 4096;
/// Handshake messages with a valid mac1 per second above which the device considers itself
/// under load.
const UNDER_LOAD_THRESHOLD: u32 = 1024;
/// How long the device stays under load after the threshold was crossed.
const UNDER_LOAD_HOLD: Duration = Duration::from_secs(1);

/// Whether the device is under load, in which case handshake messages need a cookie (mac2)
/// and are rate-limited per source (whitepaper §5.3).
#[derive(Debug, Default)]
pub(super) struct Load {
    /// The caller says so ([`Device::set_under_load`], e.g. from its handshake backlog).
    pub forced: bool,
    /// Start of the current one-second window of handshake messages.
    window_start: Instant,
    /// Handshake messages with a valid mac1 seen in that window.
    in_window: u32,
    /// Under load until then: more than [`UNDER_LOAD_THRESHOLD`] messages came in a window.
    until: Option<Instant>,
}

impl Load {
    /// Counts a handshake message with a valid mac1 arriving at `now`; true while the device
    /// is under load.
    pub fn count_handshake(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.in_window = 1;
        } else {
            self.in_window = self.in_window.saturating_add(1);
            if self.in_window > UNDER_LOAD_THRESHOLD {
                self.until = Some(now + UNDER_LOAD_HOLD);
            }
        }
        self.forced || self.until.is_some_and(|t| now < t)
    }
}

/// A WireGuard interface, without I/O. See the [module documentation](super) for the call
/// order.
pub struct Device {
    pub(super) static_key: Arc<dyn StaticKey>,
    /// The caller runs every static-key DH ([`Device::set_static_dh_offloaded`]).
    pub(super) dh_offloaded: bool,
    /// Peers whose initiation waits for their static-static DH, in the order they asked.
    pub(super) static_dh_wanted: VecDeque<PeerId>,
    pub(super) public_key: [u8; 32],
    pub(super) crypto: Box<dyn Crypto>,
    pub(super) rng: Box<dyn CryptoRngCore + Send>,
    pub(super) peers: Peers,
    pub(super) by_key: PeerByKey,
    pub(super) indices: IndexTable,
    pub(super) allowed_ips: AllowedIps<PeerId>,
    pub(super) cookie_checker: CookieChecker,
    pub(super) ratelimiter: RateLimiter,
    /// Each peer's earliest deadline, with its raw id (see [`Peer::scheduled`]).
    pub(super) timer_heap: BinaryHeap<Reverse<(Instant, u32)>>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    pub(super) stats: DeviceStats,
    pub(super) mtu: usize,
    /// Unix time minus caller time, in nanoseconds ([`Device::set_clock`]).
    pub(super) unix_offset_nanos: i128,
    pub(super) load: Load,
}

impl Device {
    /// A device with static key `static_key`, data-path backend `crypto` and RNG `rng`.
    pub fn new(
        static_key: Box<dyn StaticKey>,
        crypto: Box<dyn Crypto>,
        mut rng: Box<dyn CryptoRngCore + Send>,
    ) -> Self {
        let public_key = static_key.public_key();
        let by_key = PeerByKey::with_hasher(HashSeed::from_rng(&mut *rng));
        let indices = IndexTable::new(HashSeed::from_rng(&mut *rng));
        let ratelimiter = RateLimiter::new(DEFAULT_MAX_ENTRIES, HashSeed::from_rng(&mut *rng));
        Device {
            cookie_checker: CookieChecker::new(&public_key),
            static_key: Arc::from(static_key),
            dh_offloaded: false,
            static_dh_wanted: VecDeque::new(),
            public_key,
            crypto,
            rng,
            peers: Peers::default(),
            by_key,
            indices,
            allowed_ips: AllowedIps::new(),
            ratelimiter,
            timer_heap: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: DeviceStats::default(),
            mtu: 1420,
            unix_offset_nanos: 0,
            load: Load::default(),
        }
    }

    /// The next datagram to send, copied into `buf`. Returns `None` when there is none; a
    /// datagram larger than `buf` is dropped (counted as `BufferTooSmall`).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some((endpoint, data)) = self.transmits.pop_front() {
            if let Some(dst) = buf.get_mut(..data.len()) {
                dst.copy_from_slice(&data);
                return Some(Transmit {
                    endpoint,
                    len: data.len(),
                });
            }
            self.stats.drops.count(DropReason::BufferTooSmall);
        }
        None
    }

    /// Datagrams waiting for `poll_transmit`.
    pub fn pending_transmits(&self) -> usize {
        self.transmits.len()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should be called next (may be early, never late).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Device statistics and drop counters.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    /// Receiver indices in use (handshakes in flight plus keypairs), for leak checks.
    pub fn live_indices(&self) -> usize {
        self.indices.len()
    }

    /// True when the peer holds any keypair (for tests and diagnostics).
    pub fn has_keys(&self, id: PeerId) -> bool {
        self.peers.get(id).is_some_and(|p| !p.keypairs.is_empty())
    }

    /// Queues an event for `poll_event`, dropping the oldest when the queue is full.
    pub(super) fn push_event(&mut self, e: Event) {
        match &e {
            Event::HandshakeCompleted { .. } => self.stats.handshakes_completed += 1,
            Event::HandshakeGaveUp { .. } => self.stats.handshakes_gave_up += 1,
            _ => {}
        }
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    /// Queues a datagram for `poll_transmit`; false (and counted) when the queue is full.
    pub(super) fn push_transmit(&mut self, endpoint: SocketAddr, data: Vec<u8>) -> bool {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.stats.drops.count(DropReason::QueueFull);
            return false;
        }
        self.transmits.push_back((endpoint, data));
        true
    }

    /// The peer `id`, or [`ConfigError::NoSuchPeer`].
    pub(super) fn peer_mut(&mut self, id: PeerId) -> Result<&mut Peer, ConfigError> {
        self.peers.get_mut(id).ok_or(ConfigError::NoSuchPeer)
    }

    /// Counts a dropped datagram from the network.
    pub(super) fn drop_in(&mut self, r: DropReason) -> Incoming {
        self.stats.drops.count(r);
        Incoming::Dropped(r)
    }
}
