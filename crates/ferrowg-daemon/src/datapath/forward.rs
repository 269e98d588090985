//! Forwarding between the peers of one interface, for the hub: a packet decrypted from one peer
//! whose destination routes to another peer of the same interface is, when the interface has a
//! [`Forwarding`] policy and it allows the packet, encrypted to that peer by this process
//! instead of being written to the TUN device. The kernel's `ip_forward` plays no part, and
//! nothing of the kind happens on an interface without a policy (wireguard-go's behaviour:
//! everything goes to the TUN device).
//!
//! The receiving stage finds the next hop under the state lock ([`next_hop`]), asks the policy
//! after releasing it, and hands the allowed packets to the queue's sending stage
//! ([`super::Sender::forward`]), which routes, encrypts and sends them like packets read from
//! the TUN device. A packet's source was already checked against the sending peer's allowed
//! IPs by the protocol core (a spoofed source never gets here; the core counts it).

use ferrowg_proto::{PeerId, TRANSPORT_HEADER_SIZE};

use crate::offload::PacketRef;
use crate::state::State;

/// The decision on packets between two peers of one interface. Called by the data-path
/// threads, without the interface's lock held, once per packet: it must be quick and must not
/// block for long.
pub trait Forwarding: Send + Sync {
    /// Whether `packet` (an IP packet), decrypted from the peer whose public key is `from` and
    /// routed to the peer whose public key is `to`, may be sent on to `to`. It may rewrite the
    /// packet in place (addresses, checksums), keeping its length.
    fn allow(&self, from: &[u8; 32], to: &[u8; 32], packet: &mut [u8]) -> bool;

    /// A transport datagram came from `from` for a session this interface does not have (a
    /// hub node that just took over from another one gets its devices' traffic this way). The
    /// call is made under the state lock, for every such datagram: it must return at once
    /// (hand the address on, e.g. through a bounded channel, and decide elsewhere).
    fn unknown_session(&self, from: std::net::SocketAddr) {
        let _ = from;
    }
}

/// A decrypted packet bound for another peer, waiting for the policy's decision.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hop {
    /// Where the IP packet lies in the receive buffers.
    pub(crate) packet: PacketRef,
    /// The public key of the peer it came from.
    pub(crate) from: [u8; 32],
    /// The public key of the peer its destination routes to.
    pub(crate) to: [u8; 32],
}

/// Under the state lock: the hop for the IP packet `packet` (at `at` in the receive buffers)
/// just decrypted from peer `from`, if its destination routes to another peer; `None` if it is
/// for the TUN device (no route, a route back to `from`, or not an IP packet).
pub(crate) fn next_hop(st: &State, from: PeerId, packet: &[u8], at: PacketRef) -> Option<Hop> {
    let dst = ferrowg_proto::device::ip_destination(packet)?;
    let to = st.device.route(dst)?;
    if to == from {
        return None;
    }
    Some(Hop {
        packet: at,
        from: st.device.peer_public_key(from)?,
        to: st.device.peer_public_key(to)?,
    })
}

/// Where a decrypted transport datagram's IP packet of `len` bytes lies, the datagram being at
/// `datagram` in the receive buffers.
pub(crate) fn packet_at(datagram: PacketRef, len: usize) -> PacketRef {
    PacketRef {
        buf: datagram.buf,
        start: datagram.start + TRANSPORT_HEADER_SIZE,
        len,
    }
}
