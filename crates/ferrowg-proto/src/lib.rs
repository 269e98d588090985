//! # ferrowg-proto
//!
//! The WireGuard protocol (Noise_IKpsk2, cookies, timers, cryptokey routing, roaming) as a
//! deterministic, sans-IO state machine. It performs no I/O, reads no clock and owns no global
//! randomness: the caller passes the time ([`Instant`]) and a cryptographically secure RNG into
//! every call that needs them, and moves datagrams and IP packets in and out through caller-owned
//! buffers.
//!
//! The crate is `#![no_std]` (it needs `alloc`) and contains no `unsafe` code.
//!
//! See [`Device`] for the API and the order in which to call it.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod allowedips;
pub mod cookie;
pub mod crypto;
pub mod device;
pub mod error;
pub(crate) mod hasher;
pub(crate) mod index;
pub(crate) mod keypair;
pub mod messages;
pub mod netmap;
pub(crate) mod noise;
pub(crate) mod peer;
pub(crate) mod ratelimiter;
pub mod replay;
pub(crate) mod tai64n;
pub mod time;
pub(crate) mod timers;

pub use device::{open_batch, seal_batch};
pub use device::{
    Begin, Device, Event, Incoming, OpenJob, Outgoing, PeerConfig, PeerId, PeerInfo, Prepared,
    SealJob, Transmit,
};
pub use error::DropReason;
pub use messages::TRANSPORT_HEADER_SIZE;
/// The RNG traits the [`Device`] takes, re-exported so callers use the same version.
pub use rand_core;
pub use time::Instant;
