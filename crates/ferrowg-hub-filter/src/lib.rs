//! The ferrowg hub's packet filter for device-to-device forwarding, sans-IO: no sockets, no
//! threads, no clock (the caller passes the time), total on any bytes.
//!
//! The hub decrypts a packet from device A, finds that its destination belongs to device B,
//! asks [`Filter::check`], and encrypts it to B if the verdict is [`Verdict::Forward`].
//! Grants are one-directional, as in Tailscale: a grant lets its source open flows to its
//! destination, and the filter tracks flows so that replies come back while the destination
//! cannot open flows of its own ([`filter`] gives the rules).
//!
//! - [`packet`]: a total parser of the flow key of an IPv4/IPv6 packet.
//! - [`Filter`]: the policy ([`ferrowg_policy::Compiled`], replaceable) and a bounded flow
//!   table (connection tracking lite: per-state timeouts, O(1) eviction, SipHash keyed at
//!   random); [`SharedFilter`] for several data-path threads.
//!
//! Sites reached through mapped prefixes (1:1 NETMAP, `ferrowg_proto::netmap`) are translated
//! by the protocol core after decryption and before encryption, so the filter always sees the
//! hub's address space (the mapped prefixes, which are unique) in both directions of a flow.

#![forbid(unsafe_code)]

pub mod build;
mod csum;
pub mod filter;
mod flows;
pub mod packet;

pub use filter::{Counters, DropReason, Filter, FilterConfig, SharedFilter, Side, Verdict};
pub use flows::{State, Timeouts, DEFAULT_CAPACITY};
pub use packet::{parse, Flow, Fragment, Kind, Packet, ParseError};
