//! The device's timer wheel: one deadline per peer in a heap, and what each expired protocol
//! timer (whitepaper §6.2–§6.5, [`crate::timers`]) makes the device do.

use core::cmp::Reverse;

use super::state::{Device, Event};
use crate::error::DropReason;
use crate::peer::PeerId;
use crate::time::Instant;
use crate::timers::{Fired, MAX_TIMER_HANDSHAKES};

impl Device {
    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, raw))) = self.timer_heap.peek().copied() {
            if t > now {
                break;
            }
            self.timer_heap.pop();
            let id = PeerId(raw);
            let Some(p) = self.peers.get_mut(id) else {
                continue;
            };
            if p.scheduled != Some(t) {
                continue;
            }
            p.scheduled = None;
            while let Some(fired) = self
                .peers
                .get_mut(id)
                .and_then(|p| p.timers.take_expired(now))
            {
                self.fire(id, fired, now);
            }
            self.reschedule(id);
        }
    }

    /// Puts the peer's earliest timer deadline into the heap, unless an earlier entry for
    /// the peer is already there (a later one is then pushed when that entry pops).
    pub(super) fn reschedule(&mut self, id: PeerId) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        if let Some(d) = p.timers.next_deadline() {
            if p.scheduled.is_none_or(|s| d < s) {
                p.scheduled = Some(d);
                self.timer_heap.push(Reverse((d, id.0)));
            }
        }
    }

    fn fire(&mut self, id: PeerId, fired: Fired, now: Instant) {
        match fired {
            Fired::RetransmitHandshake => self.retransmit_handshake(id, now),
            Fired::SendKeepalive => {
                // As the kernel: without a usable session this starts a handshake.
                self.send_keepalive(id, now);
                if let Some(p) = self.peers.get_mut(id) {
                    p.timers.keepalive_sent_by_timer(now);
                }
            }
            Fired::NewHandshake => self.send_initiation(id, now, false),
            Fired::ZeroKeyMaterial => self.zero_key_material(id),
            Fired::PersistentKeepalive => {
                if self.peers.get(id).is_some_and(|p| p.endpoint.is_some()) {
                    self.send_keepalive(id, now);
                }
            }
        }
    }

    /// Our initiation went unanswered: send another, or give up after
    /// [`MAX_TIMER_HANDSHAKES`] retries, dropping the packets that waited for the session.
    fn retransmit_handshake(&mut self, id: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        if p.timers.handshake_attempts <= MAX_TIMER_HANDSHAKES {
            p.timers.handshake_attempts += 1;
            self.send_initiation(id, now, true);
            return;
        }
        p.timers.gave_up(now);
        let staged = p.staged.len();
        p.staged.clear();
        let pending = p.handshake.pending_local_index();
        p.handshake.clear();
        if let Some(i) = pending {
            self.indices.remove(i);
        }
        for _ in 0..staged {
            self.stats.drops.count(DropReason::HandshakeTimeout);
        }
        self.push_event(Event::HandshakeGaveUp { peer: id });
    }

    /// No new session for 3 × REJECT_AFTER_TIME: erase the handshake and every keypair.
    fn zero_key_material(&mut self, id: PeerId) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let pending = p.handshake.pending_local_index();
        p.handshake.clear();
        let indices = &mut self.indices;
        p.keypairs.clear(|i| indices.remove(i));
        if let Some(i) = pending {
            indices.remove(i);
        }
        self.push_event(Event::KeysZeroed { peer: id });
    }
}
