//! Per-peer timers (whitepaper §6.2–§6.5, kernel timers.c), as deadlines.
//!
//! The kernel arms five kernel timers per peer; here each is an optional deadline that the
//! device compares with the caller's `now` in `handle_timeout`. The event hooks below have
//! the kernel's names and semantics, so the state machine can be read against timers.c.

use core::time::Duration;

use crate::messages::{KEEPALIVE_TIMEOUT, REJECT_AFTER_TIME, REKEY_ATTEMPT_TIME, REKEY_TIMEOUT};
use crate::time::Instant;

/// Retries allowed before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT.
pub const MAX_TIMER_HANDSHAKES: u32 =
    (REKEY_ATTEMPT_TIME.as_secs() / REKEY_TIMEOUT.as_secs()) as u32;

/// A timer that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// Our initiation was not answered: retry (or give up).
    RetransmitHandshake,
    /// We received data and sent nothing back: send a keepalive.
    SendKeepalive,
    /// We sent data and heard nothing: start a new handshake.
    NewHandshake,
    /// No new session for 3 × REJECT_AFTER_TIME: erase the keys.
    ZeroKeyMaterial,
    /// The persistent keepalive interval passed.
    PersistentKeepalive,
}

/// The timer state of one peer.
#[derive(Debug, Default, Clone)]
pub struct Timers {
    retransmit_handshake: Option<Instant>,
    send_keepalive: Option<Instant>,
    new_handshake: Option<Instant>,
    zero_key_material: Option<Instant>,
    persistent_keepalive: Option<Instant>,
    /// Initiations sent for the current handshake attempt, beyond the first.
    pub handshake_attempts: u32,
    need_another_keepalive: bool,
    /// The persistent keepalive interval, if configured.
    pub persistent_keepalive_interval: Option<Duration>,
}

impl Timers {
    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.retransmit_handshake,
            self.send_keepalive,
            self.new_handshake,
            self.zero_key_material,
            self.persistent_keepalive,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes the first timer due at `now`, disarming it.
    pub fn take_expired(&mut self, now: Instant) -> Option<Fired> {
        let slots: [(&mut Option<Instant>, Fired); 5] = [
            (&mut self.zero_key_material, Fired::ZeroKeyMaterial),
            (&mut self.retransmit_handshake, Fired::RetransmitHandshake),
            (&mut self.new_handshake, Fired::NewHandshake),
            (&mut self.send_keepalive, Fired::SendKeepalive),
            (&mut self.persistent_keepalive, Fired::PersistentKeepalive),
        ];
        for (slot, fired) in slots {
            if slot.is_some_and(|t| t <= now) {
                *slot = None;
                return Some(fired);
            }
        }
        None
    }

    /// True when [`Timers::data_sent`] would arm the new-handshake timer (so the caller only
    /// draws jitter when it is needed).
    pub fn new_handshake_idle(&self) -> bool {
        self.new_handshake.is_none()
    }

    /// We sent a data packet (not a keepalive): expect an answer within
    /// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+ `jitter`, as the kernel adds).
    pub fn data_sent(&mut self, now: Instant, jitter: Duration) {
        if self.new_handshake.is_none() {
            self.new_handshake = Some(now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter);
        }
    }

    /// We received a data packet (not a keepalive).
    pub fn data_received(&mut self, now: Instant) {
        if self.send_keepalive.is_none() {
            self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
        } else {
            self.need_another_keepalive = true;
        }
    }

    /// A keepalive timer fired; rearm it when more data arrived meanwhile.
    pub fn keepalive_sent_by_timer(&mut self, now: Instant) {
        if self.need_another_keepalive {
            self.need_another_keepalive = false;
            self.send_keepalive = Some(now + KEEPALIVE_TIMEOUT);
        }
    }

    /// We sent any authenticated packet: no passive keepalive is needed.
    pub fn any_authenticated_packet_sent(&mut self) {
        self.send_keepalive = None;
    }

    /// We received any authenticated packet: the peer is alive.
    pub fn any_authenticated_packet_received(&mut self) {
        self.new_handshake = None;
    }

    /// Any authenticated packet went either way: restart the persistent keepalive interval.
    pub fn any_authenticated_packet_traversal(&mut self, now: Instant) {
        if let Some(i) = self.persistent_keepalive_interval {
            self.persistent_keepalive = Some(now + i);
        }
    }

    /// We sent an initiation: retry after REKEY_TIMEOUT plus `jitter`.
    pub fn handshake_initiated(&mut self, now: Instant, jitter: Duration) {
        self.retransmit_handshake = Some(now + REKEY_TIMEOUT + jitter);
    }

    /// A handshake completed.
    pub fn handshake_complete(&mut self) {
        self.retransmit_handshake = None;
        self.handshake_attempts = 0;
    }

    /// New session keys were derived: erase everything if nothing newer comes for 3 × REJECT.
    pub fn session_derived(&mut self, now: Instant) {
        self.zero_key_material = Some(now + REJECT_AFTER_TIME * 3);
    }

    /// The handshake was given up: stop keepalives and schedule erasure if not yet scheduled.
    pub fn gave_up(&mut self, now: Instant) {
        self.retransmit_handshake = None;
        self.send_keepalive = None;
        self.handshake_attempts = 0;
        if self.zero_key_material.is_none() {
            self.zero_key_material = Some(now + REJECT_AFTER_TIME * 3);
        }
    }

    /// Sets or clears the persistent keepalive interval.
    pub fn set_persistent_keepalive(&mut self, interval: Option<Duration>, now: Instant) {
        self.persistent_keepalive_interval = interval.filter(|d| !d.is_zero());
        self.persistent_keepalive = self.persistent_keepalive_interval.map(|i| now + i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_and_new_handshake_timers() {
        let mut t = Timers::default();
        let t0 = Instant::from_secs(100);
        assert_eq!(t.next_deadline(), None);
        t.data_received(t0);
        t.data_received(t0 + Duration::from_secs(1));
        assert_eq!(t.next_deadline(), Some(t0 + KEEPALIVE_TIMEOUT));
        assert_eq!(t.take_expired(t0 + Duration::from_secs(9)), None);
        assert_eq!(
            t.take_expired(t0 + KEEPALIVE_TIMEOUT),
            Some(Fired::SendKeepalive)
        );
        t.keepalive_sent_by_timer(t0 + KEEPALIVE_TIMEOUT);
        assert_eq!(t.next_deadline(), Some(t0 + KEEPALIVE_TIMEOUT * 2));
        t.any_authenticated_packet_sent();
        assert_eq!(t.next_deadline(), None);
        t.data_sent(t0, Duration::ZERO);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(15)));
        t.any_authenticated_packet_received();
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn zeroing_is_three_reject_times() {
        let mut t = Timers::default();
        t.session_derived(Instant::ZERO);
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(540)));
        assert_eq!(
            t.take_expired(Instant::from_secs(540)),
            Some(Fired::ZeroKeyMaterial)
        );
        assert_eq!(MAX_TIMER_HANDSHAKES, 18);
    }

    #[test]
    fn persistent_keepalive() {
        let mut t = Timers::default();
        t.set_persistent_keepalive(Some(Duration::from_secs(25)), Instant::ZERO);
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(25)));
        t.any_authenticated_packet_traversal(Instant::from_secs(10));
        assert_eq!(t.next_deadline(), Some(Instant::from_secs(35)));
        t.set_persistent_keepalive(Some(Duration::ZERO), Instant::ZERO);
        assert_eq!(t.next_deadline(), None);
    }
}
