//! An in-process handshake between two protocol devices, for tests that need a session without
//! a network (the protocol core's own tests, the token-key tests).

use std::net::SocketAddr;

use ferrowg_proto::{Device, Incoming, Instant, PeerId};

/// Where device A's packets come from, as B sees them.
pub const A_ENDPOINT: &str = "192.0.2.1:51820";
/// Where device B's packets come from, as A sees them.
pub const B_ENDPOINT: &str = "192.0.2.2:51820";

/// The first two messages of a handshake A → B: A's initiation, which B must take as a
/// handshake, and B's response, which A must take as one. Returns once A has consumed the
/// response; what the devices send or report after that is left for the caller, in `wire`.
pub fn exchange_handshake(
    a: &mut Device,
    b: &mut Device,
    peer_b: PeerId,
    now: Instant,
    wire: &mut [u8],
) {
    let a_ep: SocketAddr = A_ENDPOINT.parse().expect("address");
    let b_ep: SocketAddr = B_ENDPOINT.parse().expect("address");
    a.initiate_handshake(peer_b, now);
    let t = a.poll_transmit(wire).expect("initiation");
    assert_eq!(
        b.handle_datagram(now, a_ep, &mut wire[..t.len]),
        Incoming::Handshake
    );
    let t = b.poll_transmit(wire).expect("response");
    assert_eq!(
        a.handle_datagram(now, b_ep, &mut wire[..t.len]),
        Incoming::Handshake
    );
}
