//! Session keypairs and the previous/current/next rotation (whitepaper §6.1, kernel noise.c).
//!
//! A completed handshake yields a [`Keypair`]. The initiator may use it at once; the responder
//! keeps it as `next` until the first data packet arrives on it (key confirmation), then
//! promotes it. The previous keypair stays so that packets in flight during a rekey still
//! decrypt.

use alloc::boxed::Box;
use alloc::sync::Arc;

use crate::crypto::{AeadKey, Crypto};
use crate::messages::{REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME};
use crate::noise::SessionKeys;
use crate::replay::ReplayWindow;
use crate::time::Instant;

/// One direction's key, shareable with worker threads that seal or open outside the device.
pub type SharedKey = Arc<Box<dyn AeadKey>>;

/// The keys and counters of one session.
pub struct Keypair {
    /// Key for sending.
    pub send: SharedKey,
    /// Key for receiving.
    pub recv: SharedKey,
    /// The next counter to send.
    pub send_counter: u64,
    /// Counters already received.
    pub replay: ReplayWindow,
    /// When the handshake completed.
    pub created: Instant,
    /// We were the initiator of the handshake.
    pub is_initiator: bool,
    /// Our index (the receiver_index of packets to us).
    pub local_index: u32,
    /// The peer's index.
    pub remote_index: u32,
    /// False once the session was expired for sending ([`Keypairs::expire_sending`]); it still
    /// receives until it ages out.
    pub sending_valid: bool,
}

impl Keypair {
    /// A keypair from handshake output.
    pub fn new(keys: &SessionKeys, crypto: &dyn Crypto, now: Instant) -> Self {
        Keypair {
            send: Arc::new(crypto.aead_key(&keys.send)),
            recv: Arc::new(crypto.aead_key(&keys.recv)),
            send_counter: 0,
            replay: ReplayWindow::new(),
            created: now,
            is_initiator: keys.is_initiator,
            local_index: keys.local_index,
            remote_index: keys.remote_index,
            sending_valid: true,
        }
    }

    /// Not yet too old to use at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) < REJECT_AFTER_TIME
    }

    /// Can still send at `now`.
    pub fn can_send(&self, now: Instant) -> bool {
        self.sending_valid && self.is_fresh(now) && self.send_counter < REJECT_AFTER_MESSAGES
    }
}

/// Which slot a keypair occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// The keypair before the current one.
    Previous,
    /// The keypair used for sending.
    Current,
    /// A responder's keypair awaiting confirmation.
    Next,
}

/// The three keypair slots of a peer. Boxed: a keypair (with its 1 KiB replay window) exists
/// only while a session does, so a peer without one costs 24 bytes here, not 3.3 KiB.
#[derive(Default)]
pub struct Keypairs {
    /// Previous.
    pub previous: Option<Box<Keypair>>,
    /// Current.
    pub current: Option<Box<Keypair>>,
    /// Next.
    pub next: Option<Box<Keypair>>,
}

impl Keypairs {
    /// Installs a new keypair as the kernel does and returns the local indices of keypairs
    /// that were dropped (to be removed from the index table).
    pub fn insert(&mut self, new: Keypair, mut dropped: impl FnMut(u32)) {
        let new = Box::new(new);
        let mut drop_kp = |kp: Option<Box<Keypair>>| {
            if let Some(k) = kp {
                dropped(k.local_index);
            }
        };
        if new.is_initiator {
            if let Some(next) = self.next.take() {
                drop_kp(self.current.take());
                drop_kp(self.previous.replace(next));
            } else {
                let cur = self.current.take();
                drop_kp(core::mem::replace(&mut self.previous, cur));
            }
            self.current = Some(new);
        } else {
            drop_kp(self.next.replace(new));
            drop_kp(self.previous.take());
        }
    }

    /// The first packet arrived on the `next` keypair: promote it (key confirmation).
    /// Returns the local index of the keypair that was dropped, if any.
    pub fn confirm_next(&mut self) -> Option<u32> {
        let next = self.next.take()?;
        let cur = self.current.replace(next);
        core::mem::replace(&mut self.previous, cur).map(|k| k.local_index)
    }

    /// The keypair with `local_index`.
    pub fn find_mut(&mut self, local_index: u32) -> Option<(Slot, &mut Keypair)> {
        let slots = [
            (Slot::Current, self.current.as_deref_mut()),
            (Slot::Previous, self.previous.as_deref_mut()),
            (Slot::Next, self.next.as_deref_mut()),
        ];
        slots
            .into_iter()
            .find_map(|(s, k)| k.filter(|k| k.local_index == local_index).map(|k| (s, k)))
    }

    /// Drops every keypair, reporting their local indices.
    pub fn clear(&mut self, mut dropped: impl FnMut(u32)) {
        for k in [self.previous.take(), self.current.take(), self.next.take()]
            .into_iter()
            .flatten()
        {
            dropped(k.local_index);
        }
    }

    /// Stops sending on the current and next keypairs (kernel
    /// `wg_noise_expire_current_peer_keypairs`): the next packet starts a new handshake, while
    /// packets still arriving on them are accepted until they age out.
    pub fn expire_sending(&mut self) {
        for k in [self.current.as_deref_mut(), self.next.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            k.sending_valid = false;
        }
    }

    /// True when no keypair is held.
    pub fn is_empty(&self) -> bool {
        self.previous.is_none() && self.current.is_none() && self.next.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RustCrypto;
    use alloc::vec::Vec;
    use zeroize::Zeroizing;

    fn kp(idx: u32, initiator: bool) -> Keypair {
        let keys = SessionKeys {
            send: Zeroizing::new([idx as u8; 32]),
            recv: Zeroizing::new([0; 32]),
            is_initiator: initiator,
            local_index: idx,
            remote_index: 0,
        };
        Keypair::new(&keys, &RustCrypto, Instant::ZERO)
    }

    fn idx(k: &Option<Box<Keypair>>) -> Option<u32> {
        k.as_ref().map(|k| k.local_index)
    }

    #[test]
    fn rotation_follows_the_kernel() {
        let mut ks = Keypairs::default();
        let mut dropped = Vec::new();
        ks.insert(kp(1, true), |i| dropped.push(i));
        ks.insert(kp(2, true), |i| dropped.push(i));
        assert_eq!(
            (idx(&ks.previous), idx(&ks.current), idx(&ks.next)),
            (Some(1), Some(2), None)
        );
        ks.insert(kp(3, true), |i| dropped.push(i));
        assert_eq!(dropped, [1]);
        // Responder: goes to next, previous is dropped.
        ks.insert(kp(4, false), |i| dropped.push(i));
        assert_eq!(
            (idx(&ks.previous), idx(&ks.current), idx(&ks.next)),
            (None, Some(3), Some(4))
        );
        assert_eq!(dropped, [1, 2]);
        assert_eq!(ks.confirm_next(), None);
        assert_eq!(
            (idx(&ks.previous), idx(&ks.current), idx(&ks.next)),
            (Some(3), Some(4), None)
        );
        // An initiator keypair arriving while a next is pending demotes next to previous.
        ks.insert(kp(5, false), |i| dropped.push(i));
        ks.insert(kp(6, true), |i| dropped.push(i));
        assert_eq!(
            (idx(&ks.previous), idx(&ks.current), idx(&ks.next)),
            (Some(5), Some(6), None)
        );
        assert_eq!(dropped, [1, 2, 3, 4]);
        assert!(ks.find_mut(5).is_some() && ks.find_mut(4).is_none());
        ks.clear(|i| dropped.push(i));
        assert!(ks.is_empty());
        assert_eq!(dropped, [1, 2, 3, 4, 5, 6]);
    }
}
