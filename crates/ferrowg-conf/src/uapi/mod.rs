//! The cross-platform userspace interface (UAPI, <https://www.wireguard.com/xplatform/>): the
//! text protocol that wg(8) speaks to a userspace daemon over `/var/run/wireguard/<iface>.sock`.
//!
//! A request is `get=1\n\n` or `set=1\n` followed by `key=value` lines and an empty line. Every
//! reply ends with `errno=N\n\n`. Keys are lowercase hex on this socket.
//!
//! - [`request`]: requests: reading one from a connection with bounded memory, turning a
//!   `set=1` body into a fully validated [`SetRequest`] (or an [`Errno`] chosen the way
//!   wireguard-go chooses it), and writing a [`SetRequest`] as wg(8) writes it.
//! - [`reply`]: replies: writing the `get=1` reply for a [`DeviceState`] and the `errno=`
//!   status as wireguard-go does, and reading them back as wg(8) does.
//! - `token`: the extension keys and errnos of PKCS#11 token keys.
//! - `host`: the extension that carries a peer's endpoint as a host name, and the line by
//!   which a ferrowg daemon announces the extensions it understands.
//!
//! The types here are plain data shared by the daemon and the command line.

mod host;
mod line;
pub mod reply;
pub mod request;
mod token;

pub use host::{announces, FEATURE_ENDPOINT_HOST, UAPI_KEY_ENDPOINT_HOST, UAPI_KEY_FEATURES};
pub use token::{FEATURE_KEEP_SESSIONS, UAPI_KEEP_SESSIONS, UAPI_KEY_PUBLIC, UAPI_KEY_URI};

use core::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::addr::{AllowedIp, HostEndpoint};
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey, KEY_LEN_HEX};

/// Where UAPI sockets live (shared by every network namespace on the machine).
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// The socket path of `iface`.
pub fn socket_path(iface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{iface}.sock"))
}

/// Validates an interface name like the kernel does (1–15 bytes, no '/', no whitespace).
pub fn valid_iface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// A Linux errno value as carried by `errno=` (positive here; see [`Errno::wire`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// EIO: the request could not be read (wireguard-go: `IpcErrorIO`); also our answer to a
    /// line or request over the size limits, as Go's scanner fails with an I/O error there.
    pub const EIO: Self = Self(5);
    /// EINVAL: a malformed value, an unknown key or a bad protocol version (`IpcErrorInvalid`).
    pub const EINVAL: Self = Self(22);
    /// EPROTO: a line without `=` (`IpcErrorProtocol`).
    pub const EPROTO: Self = Self(71);
    /// EADDRINUSE: the listen port or fwmark could not be applied to the socket
    /// (`IpcErrorPortInUse`).
    pub const EADDRINUSE: Self = Self(98);
    /// ENOANO (55): wireguard-go's code for an error of no other kind (`IpcErrorUnknown`).
    pub const UNKNOWN: Self = Self(55);

    /// The value written after `errno=`. wireguard-go writes the negated errno (`errno=-22`),
    /// and wg(8) relies on it: its set path does `errno = -ret` on the number it reads, so a
    /// positive value would print as "Unknown error -22".
    pub const fn wire(self) -> i64 {
        -(self.0 as i64)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            Self::EIO => "EIO",
            Self::EINVAL => "EINVAL",
            Self::EPROTO => "EPROTO",
            Self::EADDRINUSE => "EADDRINUSE",
            Self::UNKNOWN => "ENOANO",
            _ => return write!(f, "errno {}", self.0),
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// A key as the socket writes it: its hex, or 64 zeros for none.
fn hex_or_zero(hex: Option<String>) -> String {
    hex.unwrap_or_else(|| "0".repeat(KEY_LEN_HEX))
}

/// Size bounds for reading requests and replies, so that no input can make a reader allocate
/// without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted line, without its newline. The longest valid UAPI line is an IPv6
    /// endpoint with a zone (well under 100 bytes).
    pub max_line: usize,
    /// Largest accepted request or reply, all lines included.
    pub max_total: usize,
}

impl Default for Limits {
    /// 4 KiB lines and 32 MiB in total (room for ~300k peers or ~1M allowed IPs).
    fn default() -> Self {
        Self {
            max_line: 4096,
            max_total: 32 << 20,
        }
    }
}

/// What a daemon holds for one interface, as `get=1` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    /// The static private key; `None` when unset (all zero).
    pub private_key: Option<PrivateKey>,
    /// The UDP port; 0 when not listening.
    pub listen_port: u16,
    /// The fwmark of outgoing packets; 0 for none.
    pub fwmark: u32,
    /// The peers, in the daemon's order (wg(8) sorts them only for the pretty `show`).
    pub peers: Vec<PeerState>,
}

impl DeviceState {
    /// The interface's public key, derived from the private key as wg(8) derives it.
    pub fn public_key(&self) -> Option<PublicKey> {
        self.private_key.as_ref().map(PrivateKey::public_key)
    }
}

/// One peer as `get=1` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerState {
    /// The peer's identity.
    pub public_key: PublicKey,
    /// The preshared key; `None` when all zero.
    pub preshared_key: Option<PresharedKey>,
    /// The current endpoint, if known.
    pub endpoint: Option<SocketAddr>,
    /// The host name the endpoint was given as, which the daemon resolves again when
    /// handshakes fail (ferrowg's extension, [`UAPI_KEY_ENDPOINT_HOST`]).
    pub endpoint_host: Option<HostEndpoint>,
    /// Seconds since the Unix epoch of the latest completed handshake; 0 for never.
    pub last_handshake_time_sec: u64,
    /// Nanoseconds part of the latest handshake time (below 10^9).
    pub last_handshake_time_nsec: u32,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
    /// Seconds between persistent keepalives; 0 for off.
    pub persistent_keepalive_interval: u16,
    /// The peer's allowed IPs.
    pub allowed_ips: Vec<AllowedIp>,
    /// Always 1 today.
    pub protocol_version: u32,
}

impl PeerState {
    /// A peer with nothing but its key: no handshake, no traffic, no allowed IPs.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            public_key,
            preshared_key: None,
            endpoint: None,
            endpoint_host: None,
            last_handshake_time_sec: 0,
            last_handshake_time_nsec: 0,
            rx_bytes: 0,
            tx_bytes: 0,
            persistent_keepalive_interval: 0,
            allowed_ips: Vec::new(),
            protocol_version: 1,
        }
    }
}

/// A validated `set=1` request: interface operations, then per-peer operations, each list in
/// the order received (order matters: `replace_allowed_ips` clears what came before it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// Operations on the interface (all lines before the first `public_key=`).
    pub interface: Vec<InterfaceOp>,
    /// Operations on peers, one entry per `public_key=` line.
    pub peers: Vec<PeerSet>,
}

/// An operation on the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceOp {
    /// `private_key=`: set the key; `None` (all zero, or empty) removes it.
    PrivateKey(Option<PrivateKey>),
    /// `listen_port=`: 0 picks a random port.
    ListenPort(u16),
    /// `fwmark=`: 0 clears it.
    FwMark(u32),
    /// `replace_peers=true`: remove every peer before adding the ones that follow.
    ReplacePeers,
    /// `ferrowg_private_key_uri=` (ferrowg's extension, [`crate::uapi::UAPI_KEY_URI`]): use
    /// the X25519 key in a PKCS#11 token, named by this URI, as the private key.
    PrivateKeyUri(Box<ferrowg_keys::pkcs11::Pkcs11Uri>),
    /// `ferrowg_keep_sessions=true` (ferrowg's extension, [`crate::uapi::UAPI_KEEP_SESSIONS`],
    /// sent by `ferrowg key rotate`): a private key set in the same request keeps the current
    /// sessions running. Without it a new key stops them, as on the kernel and wireguard-go.
    KeepSessions,
}

/// The operations on one peer, introduced by `public_key=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSet {
    /// The peer to create or update.
    pub public_key: PublicKey,
    /// What to do to it, in order.
    pub ops: Vec<PeerOp>,
}

/// An operation on a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerOp {
    /// `remove=true`: remove the peer; later lines for it are ignored.
    Remove,
    /// `update_only=true`: do not create the peer if it does not exist.
    UpdateOnly,
    /// `preshared_key=`: `None` (all zero) clears it.
    PresharedKey(Option<PresharedKey>),
    /// `endpoint=`: also forgets the host name of an earlier [`PeerOp::EndpointHost`].
    Endpoint(SocketAddr),
    /// `ferrowg_endpoint_host=` (ferrowg's extension, [`UAPI_KEY_ENDPOINT_HOST`]): the host
    /// name the endpoint was resolved from, for the daemon to resolve again when handshakes
    /// fail. Sent after the `endpoint=` it belongs to (which would forget it).
    EndpointHost(HostEndpoint),
    /// `persistent_keepalive_interval=`: 0 turns it off.
    PersistentKeepaliveInterval(u16),
    /// `replace_allowed_ips=true`: drop the allowed IPs before adding those that follow.
    ReplaceAllowedIps,
    /// `allowed_ip=`: add one prefix (host bits as received).
    AllowedIp(AllowedIp),
    /// `protocol_version=`: always 1 (anything else is refused while parsing).
    ProtocolVersion(u32),
}
