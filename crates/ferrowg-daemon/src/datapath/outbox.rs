//! The device's own output besides the data path ([`Outbox`]): handshake messages,
//! keepalives and packets that waited for a session, taken from the protocol core under the
//! lock and sent after it; and the log lines of the core's events.

use std::net::SocketAddr;

use ferrowg_keys::key::PublicKey;
use ferrowg_proto::device::Event;
use ferrowg_sys::UdpSocket;

use crate::state::State;

/// One datagram the device wants sent.
struct Datagram {
    /// Where to.
    dst: SocketAddr,
    /// The whole datagram.
    bytes: Vec<u8>,
}

/// Datagrams the device produced besides the data path (handshakes, keepalives, staged data).
#[derive(Default)]
pub(super) struct Outbox {
    datagrams: Vec<Datagram>,
}

impl Outbox {
    /// Takes everything the device wants sent, and logs its events. Call with the lock held
    /// (`state` is the locked state); `scratch` holds one datagram.
    pub(super) fn take(&mut self, state: &mut State, scratch: &mut [u8]) {
        while let Some(t) = state.device.poll_transmit(scratch) {
            // Initiations to named endpoints are counted (crate::resolve).
            state.names.note_sent(t.endpoint, &scratch[..t.len]);
            self.datagrams.push(Datagram {
                dst: t.endpoint,
                bytes: scratch[..t.len].to_vec(),
            });
        }
        while let Some(e) = state.device.poll_event() {
            log_event(state, e);
        }
    }

    /// Sends every datagram taken on `sock` and forgets it.
    pub(super) fn send(&mut self, sock: &UdpSocket) {
        for Datagram { dst, bytes } in self.datagrams.drain(..) {
            if let Err(e) = sock.send_to(&bytes, dst) {
                log::debug!("send to {dst}: {e}");
            }
        }
    }

    /// Adds a datagram by hand (for tests of the stages that send an outbox).
    #[cfg(test)]
    pub(super) fn push(&mut self, dst: SocketAddr, bytes: Vec<u8>) {
        self.datagrams.push(Datagram { dst, bytes });
    }

    /// Forgets every datagram taken, unsent.
    pub(super) fn clear(&mut self) {
        self.datagrams.clear();
    }
}

fn log_event(state: &State, e: Event) {
    let key = |p| {
        state
            .device
            .peer_info(p)
            .map(|i| PublicKey::from_bytes(i.public_key).to_base64())
            .unwrap_or_default()
    };
    match e {
        Event::HandshakeCompleted { peer, initiator } => {
            log::info!(
                "peer {}: handshake completed ({})",
                key(peer),
                if initiator { "initiator" } else { "responder" }
            )
        }
        Event::EndpointChanged { peer, endpoint } => {
            log::info!("peer {}: endpoint is now {endpoint}", key(peer))
        }
        Event::HandshakeGaveUp { peer } => {
            log::info!(
                "peer {}: no handshake response after 90 s, giving up",
                key(peer)
            )
        }
        Event::KeysZeroed { peer } => log::debug!("peer {}: session keys erased", key(peer)),
        Event::StaticKeyFailed { peer } => {
            log::error!(
                "peer {}: static key unavailable, handshake will be retried",
                key(peer)
            )
        }
        _ => log::debug!("event {e:?}"),
    }
}
