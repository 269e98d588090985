//! Configuration of a [`Device`]: its static key, MTU and clock, the peers with their keys,
//! endpoints and keepalives, and the allowed-IPs table (cryptokey routing, whitepaper §2), plus
//! what the device reports about each peer.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use super::state::Device;
use super::RATELIMITER_MAX_CAPACITY;
use crate::allowedips::canonical_prefix;
use crate::cookie::CookieChecker;
use crate::crypto::{ct_eq, StaticKey};
use crate::error::ConfigError;
use crate::hasher::HashSeed;
use crate::index::IndexTable;
use crate::messages::MAX_PEERS;
use crate::netmap::Netmap;
use crate::noise::Handshake;
use crate::peer::{Peer, PeerId};
use crate::time::Instant;

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

/// The device itself: static key, MTU, clock, load.
impl Device {
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

    /// Replaces the static key, as `wg set private-key` does on the kernel and wireguard-go:
    /// every peer's current session stops sending (the next packet starts a handshake with the
    /// new key; packets still arriving on the old session are accepted until it ages out), and
    /// in-flight handshakes are forgotten. A peer whose public key equals the new one is
    /// removed (as the kernel does). [`Device::rotate_static_key`] keeps sessions instead.
    pub fn set_static_key(&mut self, key: Box<dyn StaticKey>) {
        self.install_static_key(key);
        for p in self.peers.iter_mut() {
            p.keypairs.expire_sending();
            p.last_sent_handshake = None;
        }
    }

    /// Replaces the static key without dropping sessions (ferrowg's key rotation): established
    /// keypairs keep running, in-flight handshakes are forgotten, and the next handshake uses
    /// the new key. A peer whose public key equals the new one is removed.
    pub fn rotate_static_key(&mut self, key: Box<dyn StaticKey>) {
        self.install_static_key(key);
    }

    /// The part of a key change both kinds share.
    fn install_static_key(&mut self, key: Box<dyn StaticKey>) {
        self.public_key = key.public_key();
        self.static_key = Arc::from(key);
        self.cookie_checker = CookieChecker::new(&self.public_key);
        if let Some(own) = self.by_key.get(&self.public_key).copied() {
            self.remove_peer(own);
        }
        self.static_dh_wanted.clear();
        for p in self.peers.iter_mut() {
            let pending = p.handshake.pending_local_index();
            p.handshake.forget_local_key();
            p.awaiting_static_dh = false;
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

    /// Forces the under-load mode on (e.g. when the caller's handshake queue is long); the
    /// device is also under load while more than 1,024 handshake messages with a valid mac1
    /// arrive per second.
    pub fn set_under_load(&mut self, on: bool) {
        self.load.forced = on;
    }

    /// Sets how many sources the handshake rate limiter tracks at once (default
    /// [`RATELIMITER_DEFAULT_CAPACITY`](super::RATELIMITER_DEFAULT_CAPACITY);
    /// [`ratelimiter_capacity_for_ram`](super::ratelimiter_capacity_for_ram) gives the kernel's
    /// choice for a machine). When the table is full, a new source evicts the oldest entry
    /// not used recently; shrinking evicts the same way. A capacity of 0 or above
    /// [`RATELIMITER_MAX_CAPACITY`] is refused with [`ConfigError::InvalidCapacity`].
    pub fn set_ratelimiter_capacity(&mut self, capacity: usize) -> Result<(), ConfigError> {
        if !(1..=RATELIMITER_MAX_CAPACITY).contains(&capacity) {
            return Err(ConfigError::InvalidCapacity);
        }
        self.ratelimiter.set_capacity(capacity);
        Ok(())
    }

    /// How many sources the handshake rate limiter tracks at once.
    pub fn ratelimiter_capacity(&self) -> usize {
        self.ratelimiter.capacity()
    }
}

/// Most prefix translations one peer has (each packet from or to it tries them in turn).
pub const MAX_NETMAPS: usize = 64;

/// The peers: adding, removing, listing.
impl Device {
    /// Adds a peer.
    pub fn add_peer(
        &mut self,
        public_key: [u8; 32],
        cfg: PeerConfig,
        now: Instant,
    ) -> Result<PeerId, ConfigError> {
        if ct_eq(&public_key, &self.public_key) {
            return Err(ConfigError::OwnPublicKey);
        }
        if let Some(id) = self.by_key.get(&public_key) {
            return Ok(*id);
        }
        if self.by_key.len() >= MAX_PEERS {
            return Err(ConfigError::TooManyPeers);
        }
        let hs = Handshake::new(public_key, cfg.preshared_key.unwrap_or([0; 32]));
        let mut peer = Peer::new(public_key, hs, HashSeed::from_rng(&mut *self.rng));
        peer.endpoint = cfg.endpoint;
        // Invariant: MAX_PEERS < u32::MAX, checked above, so an id is always found.
        let id = self.peers.insert(peer).ok_or(ConfigError::TooManyPeers)?;
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
        self.peers.reserve(additional);
        self.by_key.reserve(additional);
    }

    /// The peer with `public_key`.
    pub fn peer_by_key(&self, public_key: &[u8; 32]) -> Option<PeerId> {
        self.by_key.get(public_key).copied()
    }

    /// Every peer, in id order.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.ids()
    }

    /// Number of peers.
    pub fn peer_count(&self) -> usize {
        self.by_key.len()
    }

    /// Removes a peer, erasing its keys and routes.
    pub fn remove_peer(&mut self, id: PeerId) -> bool {
        let Some(mut peer) = self.peers.remove(id) else {
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
        true
    }

    /// Removes every peer.
    pub fn clear_peers(&mut self) {
        self.peers.clear();
        self.by_key.clear();
        self.indices = IndexTable::new(HashSeed::from_rng(&mut *self.rng));
        self.allowed_ips.clear();
        self.timer_heap.clear();
    }

    /// The public key of peer `id`.
    pub fn peer_public_key(&self, id: PeerId) -> Option<[u8; 32]> {
        self.peers.get(id).map(|p| p.public_key)
    }

    /// What the device knows about a peer.
    pub fn peer_info(&self, id: PeerId) -> Option<PeerInfo> {
        let p = self.peers.get(id)?;
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
}

/// One peer's settings and allowed IPs.
impl Device {
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
            if let Some(other) = old.and_then(|o| self.peers.get_mut(o)) {
                other.allowed_ips.remove(&prefix);
            }
            self.peer_mut(id)?.allowed_ips.insert(prefix);
        }
        Ok(())
    }

    /// Sets the prefix translations of the sites behind the peer (`crate::netmap`): its
    /// allowed IPs should hold the mapped prefixes. At most [`MAX_NETMAPS`] per peer.
    pub fn set_netmaps(&mut self, id: PeerId, maps: &[Netmap]) -> Result<(), ConfigError> {
        if maps.len() > MAX_NETMAPS {
            return Err(ConfigError::InvalidPrefix);
        }
        self.peer_mut(id)?.netmaps = maps.to_vec();
        Ok(())
    }

    /// Removes every allowed-IPs prefix of the peer, in time proportional to their number.
    pub fn clear_allowed_ips(&mut self, id: PeerId) -> Result<(), ConfigError> {
        let p = self.peers.get_mut(id).ok_or(ConfigError::NoSuchPeer)?;
        for (addr, cidr) in p.allowed_ips.drain() {
            self.allowed_ips.remove(addr, cidr);
        }
        Ok(())
    }

    /// The peer's allowed-IPs prefixes, IPv4 first, then IPv6, each in ascending order of
    /// address and prefix length (the order of the table).
    pub fn allowed_ips(&self, id: PeerId) -> impl Iterator<Item = (IpAddr, u8)> {
        let mut v: Vec<(IpAddr, u8)> = self
            .peers
            .get(id)
            .map(|p| p.allowed_ips.iter().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v.into_iter()
    }

    /// The peer whose allowed IPs hold the longest prefix matching `addr`.
    pub fn route(&self, addr: IpAddr) -> Option<PeerId> {
        self.allowed_ips.lookup(addr)
    }
}
