//! The daemon's shared interface state: the protocol [`Device`] plus what the OS side owns
//! (the UDP socket, listen port, fwmark), behind one mutex, and the translation between it
//! and the UAPI's [`DeviceState`] / [`SetRequest`].
//!
//! A `set` is applied in two phases so that a request that fails changes nothing: first every
//! fallible step that touches the OS (binding a new port, the fwmark) is prepared on the side,
//! then the request is applied to the device, which cannot fail.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use ferrowg_proto::crypto::{KeyError, Secret, SecretKey, StaticKey};
use ferrowg_proto::device::PeerConfig;
use ferrowg_proto::{Device, Instant};
use ferrowg_sys::UdpSocket;

use crate::addr::AllowedIp;
use crate::key::{PresharedKey, PrivateKey, PublicKey};
use crate::uapi::{DeviceState, Errno, InterfaceOp, PeerOp, PeerState, SetRequest};

/// Socket buffer size asked of the kernel (the namespace sysctls cannot be raised).
pub const SOCKET_BUFFER: usize = 8 << 20;

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
    /// The private key as configured (for `get`); `None` when unset.
    pub private_key: Option<PrivateKey>,
    /// The bound UDP socket.
    pub socket: Arc<UdpSocket>,
    /// Incremented whenever `socket` is replaced, so readers pick up the new one.
    pub socket_generation: u64,
    /// The fwmark (0 = none).
    pub fwmark: u32,
    /// When the timer thread plans to wake next.
    pub planned_wake: Option<Instant>,
}

/// The process-wide monotonic clock as a protocol [`Instant`].
pub fn now() -> Instant {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    Instant::from_nanos(u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX))
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
    if let Err(e) = sock.set_buffer_sizes(SOCKET_BUFFER) {
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
            socket: Arc::new(socket),
            socket_generation: 0,
            fwmark: 0,
            planned_wake: None,
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
        let now = now();
        // Phase 1: everything that can fail, without touching the device.
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

        // Phase 2: apply; nothing below fails.
        if let Some(s) = new_socket {
            log::info!("listening on UDP port {}", s.port());
            self.socket = Arc::new(s);
            self.socket_generation += 1;
        }
        self.fwmark = new_fwmark;
        for op in &req.interface {
            match op {
                InterfaceOp::PrivateKey(k) => self.set_private_key(k.clone()),
                InterfaceOp::ReplacePeers => self.device.clear_peers(),
                InterfaceOp::ListenPort(_) | InterfaceOp::FwMark(_) => {}
            }
        }
        for ps in &req.peers {
            self.apply_peer(ps.public_key.as_bytes(), &ps.ops, now);
        }
        Ok(())
    }

    fn set_private_key(&mut self, key: Option<PrivateKey>) {
        // Stored clamped, as wireguard-go does, so `get` reports what X25519 uses.
        let key = key.map(|k| k.clamped());
        let same = match (&key, &self.private_key) {
            (Some(a), Some(b)) => a.as_key() == b.as_key(),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        match &key {
            Some(k) => self
                .device
                .set_static_key(Box::new(SecretKey::from_bytes(*k.as_bytes()))),
            None => self.device.set_static_key(Box::new(NoKey)),
        }
        self.private_key = key;
    }

    fn apply_peer(&mut self, public_key: &[u8; 32], ops: &[PeerOp], now: Instant) {
        let dev = &mut self.device;
        let update_only = ops.iter().any(|o| matches!(o, PeerOp::UpdateOnly));
        if ops.iter().any(|o| matches!(o, PeerOp::Remove)) {
            if let Some(id) = dev.peer_by_key(public_key) {
                dev.remove_peer(id);
            }
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
                PeerOp::Endpoint(e) => dev.set_endpoint(id, Some(canonical(*e))),
                PeerOp::PersistentKeepaliveInterval(s) => {
                    dev.set_persistent_keepalive(id, Some(*s), now)
                }
                PeerOp::ReplaceAllowedIps => dev.clear_allowed_ips(id),
                PeerOp::AllowedIp(a) => dev.add_allowed_ip(id, a.addr, a.cidr),
                PeerOp::Remove | PeerOp::UpdateOnly | PeerOp::ProtocolVersion(_) => Ok(()),
            };
        }
    }
}

fn canonical(a: SocketAddr) -> SocketAddr {
    ferrowg_sys::canonical(a)
}
