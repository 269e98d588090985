//! A remote peer's key rotation without loss: the peer's next key is added as a second peer,
//! its *successor*, with no allowed IPs of its own. When the successor completes its first
//! handshake (its first data confirms the responder's keypair, or its response completes ours),
//! it takes over every allowed-IPs prefix of the peer it succeeds, in the same step, so the
//! packets of the new session pass the source check from the first one, and packets to those
//! addresses go out on the new session. Packets still in flight on the old key's session keep
//! passing the source check afterwards: a peer may send from its successor's prefixes.
//!
//! The caller removes the old peer when it sees the successor's handshake (the hub: when the
//! store records the rotation). Nothing here expires anything.

use alloc::vec::Vec;
use core::net::IpAddr;

use super::state::Device;
use crate::crypto::ct_eq;
use crate::error::ConfigError;
use crate::peer::PeerId;

impl Device {
    /// Makes peer `new` the successor of peer `old` (see the module's rules). Replaces an
    /// earlier successor of `old`.
    pub fn set_successor(&mut self, old: PeerId, new: PeerId) -> Result<(), ConfigError> {
        if old == new {
            return Err(ConfigError::NoSuchPeer);
        }
        let old_key = self.peer_mut(old)?.public_key;
        let new_key = self.peer_mut(new)?.public_key;
        self.peer_mut(new)?.successor_of = Some(old_key);
        self.peer_mut(old)?.succeeded_by = Some(new_key);
        Ok(())
    }

    /// Called when peer `id` completed a handshake: if it is a successor, it takes over the
    /// allowed IPs of the peer it succeeds.
    pub(super) fn take_over(&mut self, id: PeerId) {
        let Some(old_key) = self.peers.get_mut(id).and_then(|p| p.successor_of.take()) else {
            return;
        };
        let Some(old) = self.by_key.get(&old_key).copied() else {
            return;
        };
        let prefixes: Vec<(IpAddr, u8)> = self
            .peers
            .get(old)
            .map(|p| p.allowed_ips.iter().copied().collect())
            .unwrap_or_default();
        for (addr, cidr) in prefixes {
            // Canonical prefixes of a live peer: moving them cannot fail.
            let _ = self.add_allowed_ip(id, addr, cidr);
        }
    }

    /// Whether a packet from peer `id` may carry a source address that routes to `owner`:
    /// `owner` is `id` itself, or the successor that took over from it.
    pub(super) fn source_allowed(&self, id: PeerId, owner: Option<PeerId>) -> bool {
        if owner == Some(id) {
            return true;
        }
        let Some(owner) = owner.and_then(|o| self.peers.get(o)) else {
            return false;
        };
        self.peers
            .get(id)
            .and_then(|p| p.succeeded_by.as_ref())
            .is_some_and(|k| ct_eq(k, &owner.public_key))
    }
}
