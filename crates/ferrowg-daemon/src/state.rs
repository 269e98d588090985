//! The daemon's shared interface state: the protocol [`Device`] plus what the OS side owns
//! (the UDP socket, listen port, fwmark), behind one mutex, and the translation between it
//! and the UAPI's [`DeviceState`] / [`SetRequest`].
//!
//! A `set` is applied in two phases so that a request that fails changes nothing: first every
//! check runs and every fallible step that touches the OS (binding a new port, the fwmark) is
//! prepared on the side, a new fwmark on the current socket last of all (it takes effect at
//! once); then the request is applied to the device, which cannot fail.

use std::sync::Arc;
use std::time::SystemTime;

use ferrowg_proto::crypto::aws_lc::AwsLcSecretKey;
use ferrowg_proto::crypto::{KeyError, Secret, StaticKey};
use ferrowg_proto::device::PeerConfig;
use ferrowg_proto::{Device, Instant};
use ferrowg_sys::UdpSocket;

use ferrowg_conf::addr::AllowedIp;
use ferrowg_conf::uapi::{DeviceState, Errno, InterfaceOp, PeerOp, PeerState, SetRequest};
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};
use ferrowg_keys::pkcs11::{Pkcs11Key, Pkcs11Uri};
use ferrowg_proto::messages::REKEY_ATTEMPT_TIME;

/// Most socket buffer asked of the kernel, per direction (the kernel doubles it for its own
/// accounting; the namespace sysctls cannot be raised, so the size is forced). It must hold
/// what arrives at line rate while the receiving thread waits for a CPU, which on busy CPUs
/// takes several milliseconds: at 4 Gbit/s, 10 ms are 5 MB.
pub const SOCKET_BUFFER_MAX: usize = 16 << 20;
/// Least socket buffer asked for, however small the machine.
pub const SOCKET_BUFFER_MIN: usize = 1 << 20;

/// The socket buffer size for a machine with `mem_total` bytes of RAM: 1/64 of it within
/// [`SOCKET_BUFFER_MIN`, `SOCKET_BUFFER_MAX`], so that a small device cannot be made to queue
/// a large share of its memory in the kernel (the buffers fill only under overload).
pub fn socket_buffer_for(mem_total: Option<u64>) -> usize {
    let share = mem_total.map_or(SOCKET_BUFFER_MAX as u64, |m| m / 64);
    usize::try_from(share)
        .unwrap_or(SOCKET_BUFFER_MAX)
        .clamp(SOCKET_BUFFER_MIN, SOCKET_BUFFER_MAX)
}

/// `MemTotal` of /proc/meminfo in bytes.
pub(crate) fn mem_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    kib.checked_mul(1024)
}

/// The static key of an interface that has none yet: no public key, every DH fails.
pub struct NoKey;

impl StaticKey for NoKey {
    fn public_key(&self) -> [u8; 32] {
        [0; 32]
    }
    fn dh(&self, _peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        Err(KeyError::Unavailable)
    }
}

/// Everything the daemon's threads share, guarded by one mutex.
pub struct State {
    /// The protocol state machine.
    pub device: Device,
    /// The private key as configured (for `get`); `None` when unset or in a token.
    pub private_key: Option<PrivateKey>,
    /// The PKCS#11 URI of the private key when it is in a token (ferrowg's UAPI extension).
    pub key_uri: Option<Pkcs11Uri>,
    /// Peers (by public key) that had a session when the private key changed and have not
    /// completed a handshake with the new key since (see [`State::poll_rekeys`]).
    pub rekey_pending: Vec<([u8; 32], Instant)>,
    /// The bound UDP socket.
    pub socket: Arc<UdpSocket>,
    /// Incremented whenever `socket` is replaced, so readers pick up the new one.
    pub socket_generation: u64,
    /// The fwmark (0 = none).
    pub fwmark: u32,
    /// When the timer thread plans to wake next.
    pub planned_wake: Option<Instant>,
    /// The interface MTU the device was last told (0 = never).
    pub device_mtu: u32,
    /// The host names of endpoints, resolved again when handshakes fail ([`crate::resolve`]).
    pub names: crate::names::EndpointNames,
}

/// The process-wide clock of the protocol timers as a protocol [`Instant`]: time since the
/// first call, on `CLOCK_BOOTTIME` ([`ferrowg_sys::clock`]), so that sessions and handshakes
/// age while the machine is suspended, as the kernel's do. One clock read per call.
pub fn now() -> Instant {
    since_epoch(ferrowg_sys::clock::boottime())
}

/// The protocol [`Instant`] of the boot-time reading `boot`: its distance from the daemon's
/// epoch (the first reading).
fn since_epoch(boot: std::time::Duration) -> Instant {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<std::time::Duration> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| boot);
    let elapsed = boot.saturating_sub(epoch);
    Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
}

/// Nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Binds the UDP socket for `port` (0 = random) with large buffers and `fwmark`.
pub fn bind_socket(port: u16, fwmark: u32) -> Result<UdpSocket, Errno> {
    let sock = UdpSocket::bind(port).map_err(|e| {
        log::error!("cannot bind UDP port {port}: {e}");
        Errno::EADDRINUSE
    })?;
    if let Err(e) = sock.set_buffer_sizes(socket_buffer_for(mem_total())) {
        log::warn!("cannot size socket buffers: {e}");
    }
    if fwmark != 0 {
        sock.set_mark(fwmark).map_err(|e| {
            log::error!("cannot set fwmark {fwmark:#x}: {e}");
            Errno::EADDRINUSE
        })?;
    }
    Ok(sock)
}

impl State {
    /// A device with no key and no peers, listening on a random port.
    pub fn new(device: Device, socket: UdpSocket) -> Self {
        State {
            device,
            private_key: None,
            key_uri: None,
            rekey_pending: Vec::new(),
            socket: Arc::new(socket),
            socket_generation: 0,
            fwmark: 0,
            planned_wake: None,
            device_mtu: 0,
            names: Default::default(),
        }
    }

    /// The `get=1` view.
    pub fn snapshot(&self) -> DeviceState {
        let peers = self
            .device
            .peers()
            .filter_map(|id| {
                let info = self.device.peer_info(id)?;
                let mut p = PeerState::new(PublicKey::from_bytes(info.public_key));
                p.preshared_key = (info.preshared_key != [0; 32])
                    .then(|| PresharedKey::from_bytes(info.preshared_key));
                p.endpoint = info.endpoint;
                p.endpoint_host = self.names.host(&info.public_key).cloned();
                if let Some(t) = info.last_handshake {
                    let ns = self.device.unix_nanos(t);
                    p.last_handshake_time_sec = ns / 1_000_000_000;
                    p.last_handshake_time_nsec = (ns % 1_000_000_000) as u32;
                }
                p.rx_bytes = info.rx_bytes;
                p.tx_bytes = info.tx_bytes;
                p.persistent_keepalive_interval = info.persistent_keepalive;
                p.allowed_ips = self
                    .device
                    .allowed_ips(id)
                    .filter_map(|(a, c)| AllowedIp::new(a, c))
                    .collect();
                Some(p)
            })
            .collect();
        DeviceState {
            private_key: self.private_key.clone(),
            listen_port: self.socket.port(),
            fwmark: self.fwmark,
            peers,
        }
    }

    /// Applies a validated `set=1` request; on error nothing has changed.
    pub fn apply(&mut self, req: &SetRequest) -> Result<(), Errno> {
        self.apply_with_key(req, None)
    }

    /// [`State::apply`] for a request that may name a token key: `token_key` is that key,
    /// opened beforehand by [`open_token_key`] (without the lock held: a token is slow).
    pub fn apply_with_key(
        &mut self,
        req: &SetRequest,
        mut token_key: Option<Pkcs11Key>,
    ) -> Result<(), Errno> {
        let now = now();
        // Phase 1: everything that can fail, without touching the device.
        let last_uri = last_key_uri(req);
        if let Some(uri) = last_uri {
            let opened = token_key.as_ref().is_some_and(|k| k.uri() == uri);
            if !opened && self.key_uri.as_ref() != Some(uri) {
                log::error!("UAPI set: the token key {uri} was not opened");
                return Err(Errno::EINVAL);
            }
        }
        let count = self.peer_count_after(req)?;
        // Last: it may change the live socket's fwmark, which nothing after it may undo.
        let socket = self.prepare_socket(req)?;

        // Phase 2: apply; nothing below fails.
        if let Some(s) = socket.new_socket {
            log::info!("listening on UDP port {}", s.port());
            self.socket = Arc::new(s);
            self.socket_generation += 1;
        }
        self.fwmark = socket.fwmark;
        let keep = req.interface.contains(&InterfaceOp::KeepSessions);
        let mut key_changed = false;
        for op in &req.interface {
            match op {
                InterfaceOp::PrivateKey(k) => {
                    key_changed |= self.set_private_key(k.clone(), keep);
                }
                // Only the last URI counts (it is the one opened); a later PrivateKey wins.
                InterfaceOp::PrivateKeyUri(uri) if Some(&**uri) == last_uri => {
                    key_changed |= self.set_token_key(uri, token_key.take(), keep);
                }
                InterfaceOp::PrivateKeyUri(_) => {}
                InterfaceOp::ReplacePeers => {
                    self.device.clear_peers();
                    self.names.clear();
                }
                InterfaceOp::ListenPort(_) | InterfaceOp::FwMark(_) | InterfaceOp::KeepSessions => {
                }
            }
        }
        self.device
            .reserve_peers(count.saturating_sub(self.device.peer_count()));
        for ps in &req.peers {
            self.apply_peer(ps.public_key.as_bytes(), &ps.ops, now);
        }
        if key_changed && keep {
            self.rekey_sessions(now);
        }
        Ok(())
    }

    /// Phase 1 of a `set` for the socket: binds the new listen port (with the new fwmark), or
    /// sets a new fwmark on the current socket. The latter takes effect at once, so this is the
    /// last fallible step of a `set`: every other check must have passed before it.
    fn prepare_socket(&self, req: &SetRequest) -> Result<SocketChange, Errno> {
        let mut port = None;
        let mut fwmark = None;
        for op in &req.interface {
            match op {
                InterfaceOp::ListenPort(p) => port = Some(*p),
                InterfaceOp::FwMark(m) => fwmark = Some(*m),
                _ => {}
            }
        }
        let new_fwmark = fwmark.unwrap_or(self.fwmark);
        let new_socket = match port {
            Some(p) if p != self.socket.port() || p == 0 => Some(bind_socket(p, new_fwmark)?),
            _ => None,
        };
        if new_socket.is_none() && fwmark.is_some_and(|m| m != self.fwmark) {
            self.socket.set_mark(new_fwmark).map_err(|e| {
                log::error!("cannot set fwmark {new_fwmark:#x}: {e}");
                Errno::EADDRINUSE
            })?;
        }
        Ok(SocketChange {
            new_socket,
            fwmark: new_fwmark,
        })
    }

    /// Phase 1 of a `set` for the peers: how many there will be, refused above
    /// [`MAX_PEERS`](ferrowg_proto::messages::MAX_PEERS).
    fn peer_count_after(&self, req: &SetRequest) -> Result<usize, Errno> {
        let replacing = req
            .interface
            .iter()
            .any(|op| matches!(op, InterfaceOp::ReplacePeers));
        let mut count = if replacing {
            0
        } else {
            self.device.peer_count()
        };
        for ps in &req.peers {
            let exists = !replacing && self.device.peer_by_key(ps.public_key.as_bytes()).is_some();
            let removing = ps.ops.iter().any(|o| matches!(o, PeerOp::Remove));
            let update_only = ps.ops.iter().any(|o| matches!(o, PeerOp::UpdateOnly));
            if !exists && !removing && !update_only {
                count += 1;
            }
        }
        if count > ferrowg_proto::messages::MAX_PEERS {
            return Err(Errno::EINVAL);
        }
        Ok(count)
    }

    /// Installs `key` in the device: with `keep`, current sessions keep running (rotation);
    /// without, they stop sending (wg(8)'s `set private-key`).
    fn install_key(&mut self, key: Box<dyn StaticKey>, keep: bool) {
        let key = Box::new(crate::datapath::WorkerOnlyKey(key));
        if keep {
            self.device.rotate_static_key(key);
        } else {
            self.device.set_static_key(key);
        }
    }

    /// Returns whether the key changed.
    fn set_private_key(&mut self, key: Option<PrivateKey>, keep: bool) -> bool {
        // Stored clamped, as wireguard-go does, so `get` reports what X25519 uses.
        let key = key.map(|k| k.clamped());
        let same = self.key_uri.is_none()
            && match (&key, &self.private_key) {
                (Some(a), Some(b)) => a.as_key() == b.as_key(),
                (None, None) => true,
                _ => false,
            };
        if same {
            return false;
        }
        match &key {
            Some(k) => self.install_key(Box::new(AwsLcSecretKey::from_bytes(*k.as_bytes())), keep),
            None => self.install_key(Box::new(NoKey), keep),
        }
        self.private_key = key;
        self.key_uri = None;
        true
    }

    /// Switches to the token key `key` opened for `uri`; `None` means the URI is the one in
    /// use already (nothing to do). Returns whether the key changed.
    fn set_token_key(&mut self, uri: &Pkcs11Uri, key: Option<Pkcs11Key>, keep: bool) -> bool {
        let Some(key) = key else { return false };
        log::info!(
            "private key is now {uri} (public key {})",
            PublicKey::from_bytes(key.public_key())
        );
        self.install_key(Box::new(key), keep);
        self.private_key = None;
        self.key_uri = Some(uri.clone());
        true
    }

    /// After a key rotation: sessions keep running on their keys (the core keeps them), and a
    /// handshake with the new key is started for every peer that has one, and retried (see
    /// [`State::poll_rekeys`]) until the peer knows the new key. The tunnel then moves to the
    /// new key within one handshake attempt of the peer learning it, and carries traffic on
    /// the old session while it does not.
    fn rekey_sessions(&mut self, now: Instant) {
        let dev = &self.device;
        self.rekey_pending = dev
            .peers()
            .filter(|&id| dev.has_keys(id))
            .filter_map(|id| dev.peer_info(id))
            .map(|info| (info.public_key, now))
            .collect();
        self.poll_rekeys(now);
    }

    /// Starts a handshake with the new key for every peer in [`State::rekey_pending`] that has
    /// not completed one since the key changed (the core limits this to one initiation per
    /// REKEY_TIMEOUT, so the timer thread may call it as often as it likes). Peers are dropped
    /// from the list on success, on removal, or after REKEY_ATTEMPT_TIME.
    pub fn poll_rekeys(&mut self, now: Instant) {
        let dev = &mut self.device;
        self.rekey_pending.retain(|(key, since)| {
            let Some(id) = dev.peer_by_key(key) else {
                return false;
            };
            let done = dev
                .peer_info(id)
                .and_then(|i| i.last_handshake)
                .is_some_and(|t| t > *since);
            if done || now.saturating_duration_since(*since) > REKEY_ATTEMPT_TIME {
                return false;
            }
            dev.initiate_handshake(id, now);
            true
        });
    }

    /// The ferrowg-specific lines of the `get=1` reply: the extensions of `set` this daemon
    /// understands, and a token key's URI (without its PIN) and public key, which wg(8)
    /// cannot derive.
    pub fn uapi_extensions(&self) -> Vec<(&'static str, String)> {
        let features = (
            ferrowg_conf::uapi::UAPI_KEY_FEATURES,
            [
                ferrowg_conf::uapi::FEATURE_ENDPOINT_HOST,
                ferrowg_conf::uapi::FEATURE_KEEP_SESSIONS,
            ]
            .join(","),
        );
        match &self.key_uri {
            Some(uri) => vec![
                features,
                (ferrowg_conf::uapi::UAPI_KEY_URI, uri.to_string()),
                (
                    ferrowg_conf::uapi::UAPI_KEY_PUBLIC,
                    PublicKey::from_bytes(self.device.public_key()).to_hex(),
                ),
            ],
            None => vec![features],
        }
    }

    fn apply_peer(&mut self, public_key: &[u8; 32], ops: &[PeerOp], now: Instant) {
        let dev = &mut self.device;
        let update_only = ops.iter().any(|o| matches!(o, PeerOp::UpdateOnly));
        if ops.iter().any(|o| matches!(o, PeerOp::Remove)) {
            if let Some(id) = dev.peer_by_key(public_key) {
                dev.remove_peer(id);
            }
            self.names.forget(public_key);
            return;
        }
        let id = match dev.peer_by_key(public_key) {
            Some(id) => id,
            None if update_only => return,
            None => match dev.add_peer(*public_key, PeerConfig::default(), now) {
                Ok(id) => id,
                // The interface's own key: ignored, as wireguard-go does.
                Err(e) => {
                    log::info!("ignoring peer {}: {e}", PublicKey::from_bytes(*public_key));
                    return;
                }
            },
        };
        for op in ops {
            // Errors below are impossible: the peer exists and prefixes were validated.
            let _ = match op {
                PeerOp::PresharedKey(k) => {
                    dev.set_preshared_key(id, k.as_ref().map_or([0; 32], |k| *k.as_bytes()))
                }
                PeerOp::Endpoint(e) => dev.set_endpoint(id, Some(ferrowg_sys::canonical(*e))),
                PeerOp::PersistentKeepaliveInterval(s) => {
                    dev.set_persistent_keepalive(id, Some(*s), now)
                }
                PeerOp::ReplaceAllowedIps => dev.clear_allowed_ips(id),
                PeerOp::AllowedIp(a) => dev.add_allowed_ip(id, a.addr, a.cidr),
                PeerOp::Remove
                | PeerOp::UpdateOnly
                | PeerOp::ProtocolVersion(_)
                | PeerOp::EndpointHost(_) => Ok(()),
            };
        }
        let endpoint = || dev.peer_info(id).and_then(|i| i.endpoint);
        self.names.follow_set(public_key, ops, endpoint);
    }
}

/// What a `set` does to the socket, prepared in phase 1.
struct SocketChange {
    /// The socket bound to a new listen port, if the request asks for one.
    new_socket: Option<UdpSocket>,
    /// The fwmark after the request.
    fwmark: u32,
}

/// The URI of the last `ferrowg_private_key_uri=` of a request (the one that takes effect).
fn last_key_uri(req: &SetRequest) -> Option<&Pkcs11Uri> {
    req.interface.iter().rev().find_map(|op| match op {
        InterfaceOp::PrivateKeyUri(u) => Some(&**u),
        _ => None,
    })
}

/// Opens the token key a `set` request names, unless it is `current` (the one in use). Call
/// without the state lock: loading a module and logging in take a while. The errno tells the
/// client which part failed (see [`Errno::of_token_error`]).
pub fn open_token_key(
    req: &SetRequest,
    current: Option<&Pkcs11Uri>,
) -> Result<Option<Pkcs11Key>, Errno> {
    let Some(uri) = last_key_uri(req) else {
        return Ok(None);
    };
    if current == Some(uri) {
        return Ok(None);
    }
    Pkcs11Key::open(uri).map(Some).map_err(|e| {
        log::error!("cannot use the private key {uri}: {e}");
        Errno::of_token_error(&e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use ferrowg_conf::uapi::PeerSet;
    use ferrowg_proto::crypto::RingCrypto;
    use ferrowg_proto::messages::MAX_PEERS;

    /// A state with no key and no peers on a fresh socket.
    fn state() -> State {
        let rng = crate::rng::ErasingRng::from_os().unwrap();
        let device = Device::new(Box::new(NoKey), Box::new(RingCrypto), Box::new(rng));
        State::new(device, UdpSocket::bind(0).unwrap())
    }

    /// A `set` that names a new fwmark and then fails a later check (here: one peer too many)
    /// leaves the live socket's mark as it was.
    #[test]
    fn a_refused_set_leaves_the_fwmark_alone() {
        if !ferrowg_testkit::require_root() {
            return;
        }
        let mut st = state();
        let marked = SetRequest {
            interface: vec![InterfaceOp::FwMark(0x42)],
            peers: Vec::new(),
        };
        assert_eq!(st.apply(&marked), Ok(()));
        assert_eq!(st.socket.mark().unwrap(), 0x42);

        let peers = (0..=MAX_PEERS as u32)
            .map(|i| {
                let mut key = [1u8; 32];
                key[..4].copy_from_slice(&i.to_le_bytes());
                PeerSet {
                    public_key: PublicKey::from_bytes(key),
                    ops: Vec::new(),
                }
            })
            .collect();
        let refused = SetRequest {
            interface: vec![InterfaceOp::FwMark(0x43)],
            peers,
        };
        assert_eq!(st.apply(&refused), Err(Errno::EINVAL));
        assert_eq!(st.socket.mark().unwrap(), 0x42, "the live socket's fwmark");
        assert_eq!(st.fwmark, 0x42);
        assert_eq!(st.device.peer_count(), 0);
    }

    /// The protocol clock is CLOCK_BOOTTIME's distance from the first reading: a reading taken
    /// between two boot-time readings lies between them (with std's Instant, CLOCK_MONOTONIC,
    /// it would lag by the time the machine has spent in suspend), and suspended time counts.
    #[test]
    fn now_runs_on_boottime() {
        let _ = now();
        let before = ferrowg_sys::clock::boottime();
        let at = now();
        let after = ferrowg_sys::clock::boottime();
        assert!(since_epoch(before) <= at && at <= since_epoch(after));
        let night = std::time::Duration::from_secs(8 * 3600);
        assert_eq!(since_epoch(after + night) - since_epoch(after), night);
    }

    #[test]
    fn socket_buffer_is_a_64th_of_memory_within_bounds() {
        assert_eq!(socket_buffer_for(Some(24 << 30)), SOCKET_BUFFER_MAX);
        assert_eq!(socket_buffer_for(Some(1 << 30)), SOCKET_BUFFER_MAX);
        assert_eq!(socket_buffer_for(Some(256 << 20)), 4 << 20);
        assert_eq!(socket_buffer_for(Some(32 << 20)), SOCKET_BUFFER_MIN);
        assert_eq!(socket_buffer_for(Some(0)), SOCKET_BUFFER_MIN);
        assert_eq!(socket_buffer_for(None), SOCKET_BUFFER_MAX);
        // This machine's /proc/meminfo parses to something plausible (more than 16 MiB).
        assert!(mem_total().is_some_and(|m| m > 16 << 20));
    }
}
