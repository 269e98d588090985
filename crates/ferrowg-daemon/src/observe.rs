//! What an interface tells monitoring ([`Observation`], from [`crate::Handle::observe`]): each
//! peer's traffic and latest handshake, the protocol core's counters, and the drops that only
//! the data path sees. Public keys only: nothing here is secret.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use ferrowg_proto::device::DeviceStats;

use crate::datapath::DatapathStats;
use crate::state::State;

/// One peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerObservation {
    /// Its public key.
    pub public_key: [u8; 32],
    /// Its allowed IPs.
    pub allowed_ips: Vec<(IpAddr, u8)>,
    /// Its current endpoint.
    pub endpoint: Option<SocketAddr>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// Its latest handshake, nanoseconds since the Unix epoch.
    pub last_handshake_unix_nanos: Option<u64>,
}

/// The data path's own counters that monitoring shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DatapathCounts {
    /// Packets between two peers that the forwarding policy refused.
    pub policy_denied: u64,
    /// Packets forwarded from one peer to another.
    pub forwarded: u64,
    /// Handshake messages dropped because the handshake worker's queue was full.
    pub handshake_queue_full: u64,
}

/// An interface at one moment.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Its peers.
    pub peers: Vec<PeerObservation>,
    /// The protocol core's counters (drops by reason, handshakes, cookies).
    pub device: DeviceStats,
    /// The data path's own counters.
    pub datapath: DatapathCounts,
}

/// Reads `state` (under the caller's lock) and `stats`.
pub(crate) fn observe(state: &State, stats: &DatapathStats) -> Observation {
    let device = &state.device;
    let peers = device
        .peers()
        .filter_map(|id| {
            let info = device.peer_info(id)?;
            Some(PeerObservation {
                public_key: info.public_key,
                allowed_ips: device.allowed_ips(id).collect(),
                endpoint: info.endpoint,
                rx_bytes: info.rx_bytes,
                tx_bytes: info.tx_bytes,
                last_handshake_unix_nanos: info.last_handshake.map(|t| device.unix_nanos(t)),
            })
        })
        .collect();
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    Observation {
        peers,
        device: device.stats().clone(),
        datapath: DatapathCounts {
            policy_denied: get(&stats.forward_denied),
            forwarded: get(&stats.forwarded),
            handshake_queue_full: get(&stats.handshakes_dropped),
        },
    }
}
