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
//! around it in place; decryption likewise happens in the datagram's own buffer. A caller that
//! encrypts and decrypts outside its lock on the device splits these calls in two
//! ([`Device::prepare_packet`] + [`SealJob`], [`Device::begin_datagram`] + [`OpenJob`]).
//!
//! Time is the caller's [`Instant`](crate::Instant); the RNG is handed over at construction
//! (a seeded one in tests makes every run identical).
//!
//! The files of this folder, by concern: `state` (the device, its outcomes and the `poll_*`
//! outputs), `config` (static key, peers, allowed IPs), `send` (OS → network, initiations),
//! `receive` (network → OS, handshake messages), `jobs` (encryption and decryption without
//! the device), `handshake` (handshakes whose static-key DHs run without the device),
//! `timers` (the timer heap and what each expired timer does) and, for tests only, `export`
//! (a peer's session keys, feature `test-export-keys`).
//!
//! [`TRANSPORT_HEADER_SIZE`]: crate::messages::TRANSPORT_HEADER_SIZE

mod config;
#[cfg(feature = "test-export-keys")]
mod export;
mod handshake;
mod jobs;
mod receive;
mod send;
mod state;
mod successor;
#[cfg(test)]
mod tests;
mod timers;

pub use crate::peer::PeerId;
pub use crate::ratelimiter::{
    capacity_for_ram as ratelimiter_capacity_for_ram,
    DEFAULT_MAX_ENTRIES as RATELIMITER_DEFAULT_CAPACITY, MAX_CAPACITY as RATELIMITER_MAX_CAPACITY,
};
pub use config::{PeerConfig, PeerInfo};
pub use handshake::{ComputedHandshake, HandshakeJob, StaticDh, StaticDhJob};
pub use jobs::{open_batch, seal_batch, Begin, OpenJob, Prepared, SealJob};
pub use receive::ip_length_and_source;
pub use send::ip_destination;
pub use state::{Device, DeviceStats, Event, Incoming, Outgoing, Transmit};
