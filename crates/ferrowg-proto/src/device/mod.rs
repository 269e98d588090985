//! The public sans-IO API: a WireGuard interface with many peers.
//!
//! A [`Device`] owns the static key, the peers, the cryptokey routing table and every
//! protocol timer, and performs no I/O. The caller drives it:
//!
//! 1. `handle_packet` for each IP packet the OS wants to send through the tunnel,
//!    `handle_datagram` for each UDP datagram that arrives, and `handle_timeout` when the
//!    instant from `poll_timeout` has passed.
//! 2. After any of these, drain `poll_transmit` (datagrams to send: handshakes, cookie replies,
//!    keepalives, packets that waited for a session) and `poll_event` (handshake completed,
//!    endpoint changed, …), then ask `poll_timeout` when to call `handle_timeout` next.
//!
//! Data packets take the zero-copy path: the caller keeps the IP packet at offset
//! [`TRANSPORT_HEADER_SIZE`] of its own buffer, and the core writes header, padding and tag
//! around it in place; decryption likewise happens in the datagram's own buffer.
//!
//! Time is the caller's [`Instant`]; the RNG is handed over at construction (a seeded one in
//! tests makes every run identical).

use alloc::boxed::Box;
use alloc::collections::{BinaryHeap, VecDeque};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::time::Duration;

use rand_core::CryptoRngCore;

use crate::allowedips::{canonical_prefix, AllowedIps};
use crate::cookie::{CookieChecker, MacState};
use crate::crypto::{AeadMessage, Crypto, StaticKey};
use crate::error::{ConfigError, DropCounters, DropReason};
use crate::index::{IndexEntry, IndexTable, PeerByKey};
use crate::keypair::{Keypair, SharedKey, Slot};
use crate::messages::{
    self, padded_len, Message, AEAD_TAG_SIZE, HANDSHAKE_INITIATION_SIZE, HANDSHAKE_RESPONSE_SIZE,
    KEEPALIVE_TIMEOUT, MAX_PEERS, MAX_STAGED_PACKETS, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME,
    REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX,
    TRANSPORT_HEADER_SIZE, TRANSPORT_OVERHEAD,
};
use crate::noise::{self, Handshake, HandshakeError};
use crate::peer::Peer;
use crate::ratelimiter::RateLimiter;
use crate::tai64n::Tai64N;
use crate::time::Instant;
use crate::timers::{Fired, MAX_TIMER_HANDSHAKES};

mod receive;
mod send;

pub use receive::ip_length_and_source;
pub use send::ip_destination;

/// Identifies a peer of a [`Device`]. Ids of removed peers may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) u32);

impl PeerId {
    /// The id as a number (stable while the peer exists).
    pub fn as_u32(self) -> u32 {
        self.0
    }
}

/// How a new peer starts out.
#[derive(Debug, Clone, Default)]
pub struct PeerConfig {
    /// The preshared key (`None` = 32 zero bytes, i.e. none).
    pub preshared_key: Option<[u8; 32]>,
    /// Where to send until the peer's own packets tell us otherwise.
    pub endpoint: Option<SocketAddr>,
    /// Persistent keepalive interval in seconds (`None` or 0 = off).
    pub persistent_keepalive: Option<u16>,
}

/// What the device reports about a peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer's static public key.
    pub public_key: [u8; 32],
    /// The preshared key (all zeros when none).
    pub preshared_key: [u8; 32],
    /// The current endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Bytes of datagrams received from the peer (authenticated only).
    pub rx_bytes: u64,
    /// Bytes of datagrams sent to the peer.
    pub tx_bytes: u64,
    /// When the latest handshake completed.
    pub last_handshake: Option<Instant>,
    /// Persistent keepalive interval in seconds (0 = off).
    pub persistent_keepalive: u16,
    /// A session key is currently usable for sending.
    pub has_session: bool,
}

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

/// Outcome of [`Device::prepare_packet`].
#[derive(Debug)]
pub enum Prepared {
    /// The header and padding are written; [`SealJob::seal`] finishes the datagram.
    Seal {
        /// The peer it goes to.
        peer: PeerId,
        /// Where to send it.
        endpoint: SocketAddr,
        /// The encryption left to do.
        job: SealJob,
    },
    /// No session yet: the packet was copied to the peer's queue and a handshake started.
    Queued {
        /// The peer.
        peer: PeerId,
    },
    /// The packet was dropped.
    Dropped(DropReason),
}

/// The encryption of one transport datagram, done without the [`Device`]: it holds the session
/// key (shared, so the device may replace the session meanwhile) and the counter the device
/// assigned.
pub struct SealJob {
    key: SharedKey,
    counter: u64,
    padded: usize,
}

impl SealJob {
    /// Encrypts the padded packet at `buf[TRANSPORT_HEADER_SIZE..]` in place and appends the
    /// tag; `buf` is the buffer given to [`Device::prepare_packet`]. Returns the datagram length.
    /// A buffer shorter than [`SealJob::len`] is left alone and 0 returned.
    pub fn seal(&self, buf: &mut [u8]) -> usize {
        let Some(m) = self.message(buf) else {
            return 0;
        };
        *m.tag = self.key.seal(m.counter, m.body);
        self.len()
    }

    /// The datagram length.
    pub fn len(&self) -> usize {
        TRANSPORT_OVERHEAD + self.padded
    }

    /// The message [`SealJob::seal`] would seal in `buf`, for a batch ([`seal_batch`]); `None`
    /// if `buf` is shorter than [`SealJob::len`].
    fn message<'b>(&self, buf: &'b mut [u8]) -> Option<AeadMessage<'b>> {
        let dgram = buf.get_mut(TRANSPORT_HEADER_SIZE..self.len())?;
        let (body, tag) = dgram.split_at_mut(self.padded);
        Some(AeadMessage {
            counter: self.counter,
            body,
            tag: tag.try_into().ok()?,
            ok: false,
        })
    }

    /// Never true: a datagram has at least a header and a tag.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl core::fmt::Debug for SealJob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "SealJob {{ counter: {}, len: {} }}",
            self.counter,
            self.len()
        )
    }
}

/// Outcome of [`Device::begin_datagram`].
#[derive(Debug)]
pub enum Begin {
    /// Fully handled (handshake, cookie reply or drop), as by [`Device::handle_datagram`].
    Done(Incoming),
    /// Transport data: decrypt with [`OpenJob::open`], then call [`Device::finish_datagram`].
    Open(OpenJob),
}

/// The decryption of one transport datagram, done without the [`Device`].
pub struct OpenJob {
    key: SharedKey,
    peer: PeerId,
    index: u32,
    counter: u64,
}

impl OpenJob {
    /// Decrypts the transport datagram `buf` (the buffer given to [`Device::begin_datagram`])
    /// in place; false if it does not authenticate.
    pub fn open(&self, buf: &mut [u8]) -> bool {
        self.message(buf)
            .is_some_and(|m| self.key.open(m.counter, m.body, m.tag).is_ok())
    }

    /// The peer the datagram claims to come from (authenticated only once opened).
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The message [`OpenJob::open`] would open in `buf`, for a batch ([`open_batch`]).
    fn message<'b>(&self, buf: &'b mut [u8]) -> Option<AeadMessage<'b>> {
        let body_len = buf.len().checked_sub(TRANSPORT_OVERHEAD)?;
        let (body, tag) = buf.get_mut(TRANSPORT_HEADER_SIZE..)?.split_at_mut(body_len);
        Some(AeadMessage {
            counter: self.counter,
            body,
            tag: tag.try_into().ok()?,
            ok: false,
        })
    }
}

/// Seals many datagrams, as [`SealJob::seal`] on each would, but hands each run of jobs under
/// the same session key to the backend at once ([`AeadKey::seal_batch`]), so a backend that
/// interleaves messages can. Each item is a job and the buffer it was prepared in; a buffer
/// shorter than the job's [`SealJob::len`] is skipped (left alone), as by [`SealJob::seal`].
pub fn seal_batch<'a, 'b>(jobs: impl IntoIterator<Item = (&'a SealJob, &'b mut [u8])>) {
    let mut run: Vec<AeadMessage<'b>> = Vec::new();
    let mut key: Option<&'a SharedKey> = None;
    for (job, buf) in jobs {
        let Some(m) = job.message(buf) else {
            continue;
        };
        if let Some(k) = key.filter(|k| !Arc::ptr_eq(k, &job.key)) {
            k.seal_batch(&mut run);
            run.clear();
        }
        key = Some(&job.key);
        run.push(m);
    }
    if let Some(k) = key {
        k.seal_batch(&mut run);
    }
}

/// Opens many datagrams, as [`OpenJob::open`] on each would, handing each run of jobs under
/// the same session key to the backend at once ([`AeadKey::open_batch`]). Each item is a job,
/// the datagram it came with, and where to write whether it authenticated.
pub fn open_batch<'a, 'b>(
    jobs: impl IntoIterator<Item = (&'a OpenJob, &'b mut [u8], &'b mut bool)>,
) {
    let mut run: Vec<AeadMessage<'b>> = Vec::new();
    let mut oks: Vec<&'b mut bool> = Vec::new();
    let mut key: Option<&'a SharedKey> = None;
    let flush = |k: &SharedKey, run: &mut Vec<AeadMessage<'b>>, oks: &mut Vec<&'b mut bool>| {
        k.open_batch(run);
        for (m, ok) in run.drain(..).zip(oks.drain(..)) {
            *ok = m.ok;
        }
    };
    for (job, buf, ok) in jobs {
        *ok = false;
        let Some(m) = job.message(buf) else {
            continue;
        };
        if let Some(k) = key.filter(|k| !Arc::ptr_eq(k, &job.key)) {
            flush(k, &mut run, &mut oks);
        }
        key = Some(&job.key);
        run.push(m);
        oks.push(ok);
    }
    if let Some(k) = key {
        flush(k, &mut run, &mut oks);
    }
}

impl core::fmt::Debug for OpenJob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "OpenJob {{ peer: {:?}, counter: {} }}",
            self.peer, self.counter
        )
    }
}

/// Handshake messages per second above which the device considers itself under load.
pub const DEFAULT_UNDER_LOAD_THRESHOLD: u32 = 1024;
/// Most datagrams kept for `poll_transmit`.
const MAX_QUEUED_TRANSMITS: usize = 4096;
/// Most events kept for `poll_event`.
const MAX_QUEUED_EVENTS: usize = 4096;
/// How long the device stays under load after the threshold was crossed.
const UNDER_LOAD_HOLD: Duration = Duration::from_secs(1);

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
}

/// A WireGuard interface, without I/O. See the module documentation for the call order.
pub struct Device {
    static_key: Box<dyn StaticKey>,
    public_key: [u8; 32],
    crypto: Box<dyn Crypto>,
    rng: Box<dyn CryptoRngCore + Send>,
    peers: Vec<Option<Peer>>,
    free_ids: Vec<u32>,
    by_key: PeerByKey,
    indices: IndexTable,
    allowed_ips: AllowedIps<PeerId>,
    cookie_checker: CookieChecker,
    ratelimiter: RateLimiter,
    timer_heap: BinaryHeap<Reverse<(Instant, u32)>>,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    stats: DeviceStats,
    mtu: usize,
    unix_offset_nanos: i128,
    forced_under_load: bool,
    under_load_threshold: u32,
    load_window: (Instant, u32),
    under_load_until: Option<Instant>,
}

impl Device {
    /// A device with static key `static_key`, data-path backend `crypto` and RNG `rng`.
    pub fn new(
        static_key: Box<dyn StaticKey>,
        crypto: Box<dyn Crypto>,
        rng: Box<dyn CryptoRngCore + Send>,
    ) -> Self {
        let public_key = static_key.public_key();
        Device {
            cookie_checker: CookieChecker::new(&public_key),
            static_key,
            public_key,
            crypto,
            rng,
            peers: Vec::new(),
            free_ids: Vec::new(),
            by_key: PeerByKey::default(),
            indices: IndexTable::default(),
            allowed_ips: AllowedIps::new(),
            ratelimiter: RateLimiter::default(),
            timer_heap: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: DeviceStats::default(),
            mtu: 1420,
            unix_offset_nanos: 0,
            forced_under_load: false,
            under_load_threshold: DEFAULT_UNDER_LOAD_THRESHOLD,
            load_window: (Instant::ZERO, 0),
            under_load_until: None,
        }
    }

    // ----- configuration -------------------------------------------------------------------

    /// The device's static public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public_key
    }

    /// The static key provider.
    pub fn static_key(&self) -> &dyn StaticKey {
        &*self.static_key
    }

    /// The crypto backend's name.
    pub fn crypto_name(&self) -> &'static str {
        self.crypto.name()
    }

    /// Replaces the static key without dropping sessions: established keypairs keep running,
    /// in-flight handshakes are forgotten, and the next handshake uses the new key. A peer
    /// whose public key equals the new one is removed (as the kernel does).
    pub fn set_static_key(&mut self, key: Box<dyn StaticKey>) {
        self.public_key = key.public_key();
        self.static_key = key;
        self.cookie_checker = CookieChecker::new(&self.public_key);
        if let Some(own) = self.by_key.get(&self.public_key).copied() {
            self.remove_peer(own);
        }
        for slot in 0..self.peers.len() {
            let pending = match self.peers[slot].as_mut() {
                Some(p) => {
                    let pending = p.handshake.pending_local_index();
                    p.handshake.forget_local_key();
                    pending
                }
                None => None,
            };
            if let Some(i) = pending {
                self.indices.remove(i);
            }
        }
    }

    /// Sets the tunnel MTU, which caps padding.
    pub fn set_mtu(&mut self, mtu: usize) {
        self.mtu = mtu;
    }

    /// The tunnel MTU: a transport datagram for a packet of `len` bytes is
    /// `TRANSPORT_OVERHEAD + messages::padded_len(len, mtu)` bytes long.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Ties the caller's clock to real time: `unix_nanos` is the wall-clock time at `now`.
    /// Handshake timestamps (TAI64N) are derived from it and must grow across restarts.
    pub fn set_clock(&mut self, now: Instant, unix_nanos: u64) {
        self.unix_offset_nanos = i128::from(unix_nanos) - i128::from(now.as_nanos());
    }

    /// The wall-clock time (ns since the Unix epoch) of `t`, per [`Device::set_clock`].
    pub fn unix_nanos(&self, t: Instant) -> u64 {
        let v = i128::from(t.as_nanos()) + self.unix_offset_nanos;
        u64::try_from(v.max(0)).unwrap_or(u64::MAX)
    }

    /// Forces the under-load mode on (e.g. when the caller's handshake queue is long).
    pub fn set_under_load(&mut self, on: bool) {
        self.forced_under_load = on;
    }

    /// Handshake messages per second beyond which the device switches to under-load mode.
    pub fn set_under_load_threshold(&mut self, per_second: u32) {
        self.under_load_threshold = per_second;
    }

    /// Adds a peer.
    pub fn add_peer(
        &mut self,
        public_key: [u8; 32],
        cfg: PeerConfig,
        now: Instant,
    ) -> Result<PeerId, ConfigError> {
        if crate::crypto::ct_eq(&public_key, &self.public_key) {
            return Err(ConfigError::OwnPublicKey);
        }
        if let Some(id) = self.by_key.get(&public_key) {
            return Ok(*id);
        }
        if self.by_key.len() >= MAX_PEERS {
            return Err(ConfigError::TooManyPeers);
        }
        let hs = Handshake::new(public_key, cfg.preshared_key.unwrap_or([0; 32]));
        let mut peer = Peer::new(public_key, hs);
        peer.endpoint = cfg.endpoint;
        let id = match self.free_ids.pop() {
            Some(i) => {
                self.peers[i as usize] = Some(peer);
                PeerId(i)
            }
            None => {
                // Invariant: MAX_PEERS < u32::MAX, checked above.
                let i = u32::try_from(self.peers.len()).map_err(|_| ConfigError::TooManyPeers)?;
                self.peers.push(Some(peer));
                PeerId(i)
            }
        };
        self.by_key.insert(public_key, id);
        let ka = cfg.persistent_keepalive.filter(|k| *k > 0);
        if ka.is_some() {
            self.set_persistent_keepalive(id, ka, now)?;
        }
        Ok(id)
    }

    /// Makes room for `additional` more peers at once (a large configuration applied in one
    /// go then grows the tables once instead of doubling them again and again).
    pub fn reserve_peers(&mut self, additional: usize) {
        let additional = additional.min(MAX_PEERS.saturating_sub(self.by_key.len()));
        let new_slots = additional.saturating_sub(self.free_ids.len());
        self.peers.reserve(new_slots);
        self.by_key.reserve(additional);
    }

    /// The peer with `public_key`.
    pub fn peer_by_key(&self, public_key: &[u8; 32]) -> Option<PeerId> {
        self.by_key.get(public_key).copied()
    }

    /// Every peer, in id order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| PeerId(i as u32))
    }

    /// Number of peers.
    pub fn peer_count(&self) -> usize {
        self.by_key.len()
    }

    /// Removes a peer, erasing its keys and routes.
    pub fn remove_peer(&mut self, id: PeerId) -> bool {
        let Some(mut peer) = self.peers.get_mut(id.0 as usize).and_then(Option::take) else {
            return false;
        };
        let indices = &mut self.indices;
        peer.keypairs.clear(|i| indices.remove(i));
        if let Some(i) = peer.handshake.pending_local_index() {
            indices.remove(i);
        }
        self.by_key.remove(&peer.public_key);
        for (addr, cidr) in peer.allowed_ips.drain() {
            self.allowed_ips.remove(addr, cidr);
        }
        self.free_ids.push(id.0);
        true
    }

    /// Removes every peer.
    pub fn clear_peers(&mut self) {
        self.peers.clear();
        self.free_ids.clear();
        self.by_key.clear();
        self.indices = IndexTable::default();
        self.allowed_ips.clear();
        self.timer_heap.clear();
    }

    fn peer_mut(&mut self, id: PeerId) -> Result<&mut Peer, ConfigError> {
        self.peers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(ConfigError::NoSuchPeer)
    }

    fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id.0 as usize).and_then(Option::as_ref)
    }

    /// Sets the preshared key (all zeros = none).
    pub fn set_preshared_key(&mut self, id: PeerId, psk: [u8; 32]) -> Result<(), ConfigError> {
        self.peer_mut(id)?.handshake.set_preshared_key(psk);
        Ok(())
    }

    /// Sets the endpoint.
    pub fn set_endpoint(
        &mut self,
        id: PeerId,
        endpoint: Option<SocketAddr>,
    ) -> Result<(), ConfigError> {
        self.peer_mut(id)?.endpoint = endpoint;
        Ok(())
    }

    /// Sets the persistent keepalive interval; a new non-zero interval sends a keepalive at
    /// once, like wireguard-go.
    pub fn set_persistent_keepalive(
        &mut self,
        id: PeerId,
        seconds: Option<u16>,
        now: Instant,
    ) -> Result<(), ConfigError> {
        let p = self.peer_mut(id)?;
        let interval = seconds
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s)));
        let was = p.timers.persistent_keepalive_interval;
        p.timers.set_persistent_keepalive(interval, now);
        if interval.is_some() && was.is_none() && p.endpoint.is_some() {
            self.send_keepalive(id, now);
        }
        self.reschedule(id);
        Ok(())
    }

    /// Adds an allowed-IPs prefix, moving it from another peer if needed.
    pub fn add_allowed_ip(
        &mut self,
        id: PeerId,
        addr: IpAddr,
        cidr: u8,
    ) -> Result<(), ConfigError> {
        self.peer_mut(id)?;
        let prefix = canonical_prefix(addr, cidr).map_err(|_| ConfigError::InvalidPrefix)?;
        let old = self
            .allowed_ips
            .insert(prefix.0, prefix.1, id)
            .map_err(|_| ConfigError::InvalidPrefix)?;
        if old != Some(id) {
            if let Some(other) = old.and_then(|o| self.peers.get_mut(o.0 as usize)?.as_mut()) {
                other.allowed_ips.remove(&prefix);
            }
            self.peer_mut(id)?.allowed_ips.insert(prefix);
        }
        Ok(())
    }

    /// Removes every allowed-IPs prefix of the peer, in time proportional to their number.
    pub fn clear_allowed_ips(&mut self, id: PeerId) -> Result<(), ConfigError> {
        let p = self
            .peers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(ConfigError::NoSuchPeer)?;
        for (addr, cidr) in p.allowed_ips.drain() {
            self.allowed_ips.remove(addr, cidr);
        }
        Ok(())
    }

    /// The peer's allowed-IPs prefixes, IPv4 first, then IPv6, each in ascending order of
    /// address and prefix length (the order of the table).
    pub fn allowed_ips(&self, id: PeerId) -> impl Iterator<Item = (IpAddr, u8)> {
        let mut v: Vec<(IpAddr, u8)> = self
            .peer(id)
            .map(|p| p.allowed_ips.iter().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v.into_iter()
    }

    /// The peer whose allowed IPs hold the longest prefix matching `addr`.
    pub fn route(&self, addr: IpAddr) -> Option<PeerId> {
        self.allowed_ips.lookup(addr)
    }

    /// What the device knows about a peer.
    pub fn peer_info(&self, id: PeerId) -> Option<PeerInfo> {
        let p = self.peer(id)?;
        Some(PeerInfo {
            public_key: p.public_key,
            preshared_key: *p.handshake.preshared_key(),
            endpoint: p.endpoint,
            rx_bytes: p.rx_bytes,
            tx_bytes: p.tx_bytes,
            last_handshake: p.last_handshake,
            persistent_keepalive: p
                .timers
                .persistent_keepalive_interval
                .map_or(0, |d| u16::try_from(d.as_secs()).unwrap_or(u16::MAX)),
            has_session: p.keypairs.current.is_some(),
        })
    }

    /// Device statistics and drop counters.
    pub fn stats(&self) -> &DeviceStats {
        &self.stats
    }

    // ----- outputs -------------------------------------------------------------------------

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

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn push_transmit(&mut self, endpoint: SocketAddr, data: Vec<u8>) -> bool {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            self.stats.drops.count(DropReason::QueueFull);
            return false;
        }
        self.transmits.push_back((endpoint, data));
        true
    }

    fn reschedule(&mut self, id: PeerId) {
        let Some(p) = self.peers.get_mut(id.0 as usize).and_then(Option::as_mut) else {
            return;
        };
        if let Some(d) = p.timers.next_deadline() {
            if p.scheduled.is_none_or(|s| d < s) {
                p.scheduled = Some(d);
                self.timer_heap.push(Reverse((d, id.0)));
            }
        }
    }

    fn drop_prepared(&mut self, r: DropReason) -> Prepared {
        self.stats.drops.count(r);
        Prepared::Dropped(r)
    }

    fn drop_in(&mut self, r: DropReason) -> Incoming {
        self.stats.drops.count(r);
        Incoming::Dropped(r)
    }

    // ----- timers --------------------------------------------------------------------------

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, raw))) = self.timer_heap.peek().copied() {
            if t > now {
                break;
            }
            self.timer_heap.pop();
            let id = PeerId(raw);
            let Some(p) = self.peers.get_mut(raw as usize).and_then(Option::as_mut) else {
                continue;
            };
            if p.scheduled != Some(t) {
                continue;
            }
            p.scheduled = None;
            while let Some(fired) = self
                .peer_mut(id)
                .ok()
                .and_then(|p| p.timers.take_expired(now))
            {
                self.fire(id, fired, now);
            }
            self.reschedule(id);
        }
    }

    fn fire(&mut self, id: PeerId, fired: Fired, now: Instant) {
        match fired {
            Fired::RetransmitHandshake => {
                let Ok(p) = self.peer_mut(id) else { return };
                if p.timers.handshake_attempts > MAX_TIMER_HANDSHAKES {
                    p.timers.gave_up(now);
                    let staged = p.staged.len();
                    p.staged.clear();
                    let pending = p.handshake.pending_local_index();
                    p.handshake.clear();
                    if let Some(i) = pending {
                        self.indices.remove(i);
                    }
                    for _ in 0..staged {
                        self.stats.drops.count(DropReason::HandshakeTimeout);
                    }
                    self.push_event(Event::HandshakeGaveUp { peer: id });
                } else {
                    p.timers.handshake_attempts += 1;
                    self.send_initiation(id, now, true);
                }
            }
            Fired::SendKeepalive => {
                // As the kernel: without a usable session this starts a handshake.
                self.send_keepalive(id, now);
                if let Ok(p) = self.peer_mut(id) {
                    p.timers.keepalive_sent_by_timer(now);
                }
            }
            Fired::NewHandshake => self.send_initiation(id, now, false),
            Fired::ZeroKeyMaterial => {
                let Some(p) = self.peers.get_mut(id.0 as usize).and_then(Option::as_mut) else {
                    return;
                };
                let pending = p.handshake.pending_local_index();
                p.handshake.clear();
                let indices = &mut self.indices;
                p.keypairs.clear(|i| indices.remove(i));
                if let Some(i) = pending {
                    indices.remove(i);
                }
                self.push_event(Event::KeysZeroed { peer: id });
            }
            Fired::PersistentKeepalive => {
                let Ok(p) = self.peer_mut(id) else { return };
                if p.endpoint.is_some() {
                    self.send_keepalive(id, now);
                }
            }
        }
    }

    /// Receiver indices in use (handshakes in flight plus keypairs), for leak checks.
    pub fn live_indices(&self) -> usize {
        self.indices.len()
    }

    /// True when the peer holds any keypair (for tests and diagnostics).
    pub fn has_keys(&self, id: PeerId) -> bool {
        self.peer(id).is_some_and(|p| !p.keypairs.is_empty())
    }
}
