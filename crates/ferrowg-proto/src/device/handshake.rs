//! Handshakes whose static-key DHs run outside the device (the kernel's handshake worker), for
//! callers that lock the [`Device`] and must not hold that lock while a slow static key (a
//! PKCS#11 token, a secure element) computes.
//!
//! With [`Device::set_static_dh_offloaded`], the device never calls [`StaticKey::dh`]:
//! 1. [`Device::begin_datagram`] admits a handshake message (mac1; under load a valid mac2, or
//!    a cookie reply; the per-source rate limit) and returns [`Begin::Handshake`] with a
//!    [`HandshakeJob`];
//! 2. [`HandshakeJob::compute`] runs its one static-key DH without the device;
//! 3. [`Device::finish_handshake`] completes it. When the peer's static-static DH is not known
//!    yet (first handshake with the peer, or with a new key), it returns a [`StaticDhJob`]
//!    instead: compute that, hand it over with [`Device::provide_static_dh`] and call
//!    `finish_handshake` again with the same computed job.
//!
//! The ephemeral DHs of a handshake (software X25519, tens of microseconds each) still run
//! inside the device, and only for messages whose static-key step authenticated them.
//!
//! Initiations the device sends itself (timers, data waiting for a session) wait likewise for
//! a peer's static-static DH: [`Event::StaticDhWanted`] announces them and
//! [`Device::take_static_dh_jobs`] hands out the jobs; providing the result sends the
//! initiation. The caller tells the device when its backlog of handshake jobs puts it under
//! load ([`Device::set_under_load`]); the device is also under load on its own when more than
//! 1,024 messages with a valid mac1 arrive in a second, so that a flood a fast key could keep
//! up with does not cost a CPU's worth of DHs.
//!
//! [`Begin::Handshake`]: super::Begin::Handshake
//! [`Event::StaticDhWanted`]: super::Event::StaticDhWanted

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use super::state::{Device, Incoming};
use crate::crypto::{ct_eq, KeyError, Secret, StaticKey};
use crate::error::DropReason;
use crate::messages::{
    Message, HANDSHAKE_INITIATION_SIZE, HANDSHAKE_RESPONSE_SIZE, MESSAGE_HANDSHAKE_INITIATION,
    MESSAGE_HANDSHAKE_RESPONSE,
};
use crate::peer::PeerId;
use crate::time::Instant;

/// An admitted handshake message (initiation or response), waiting for its static-key DH.
pub struct HandshakeJob {
    src: SocketAddr,
    msg: [u8; HANDSHAKE_INITIATION_SIZE],
    len: usize,
    key: Arc<dyn StaticKey>,
}

impl HandshakeJob {
    /// A job for `msg` from `src`, or `None` if `msg` is not a handshake message.
    pub(super) fn new(src: SocketAddr, msg: &[u8], key: Arc<dyn StaticKey>) -> Option<Self> {
        let kind = *msg.first()?;
        let size_ok = match kind {
            MESSAGE_HANDSHAKE_INITIATION => msg.len() == HANDSHAKE_INITIATION_SIZE,
            MESSAGE_HANDSHAKE_RESPONSE => msg.len() == HANDSHAKE_RESPONSE_SIZE,
            _ => false,
        };
        if !size_ok {
            return None;
        }
        let mut copy = [0u8; HANDSHAKE_INITIATION_SIZE];
        copy[..msg.len()].copy_from_slice(msg);
        Some(HandshakeJob {
            src,
            msg: copy,
            len: msg.len(),
            key,
        })
    }

    /// Where the message came from.
    pub fn source(&self) -> SocketAddr {
        self.src
    }

    /// Runs the message's static-key DH (with the sender's ephemeral key: `es` of an
    /// initiation, `se` of a response). Needs no device; may be slow.
    pub fn compute(self) -> ComputedHandshake {
        let at = if self.msg[0] == MESSAGE_HANDSHAKE_INITIATION {
            8
        } else {
            12
        };
        let mut point = [0u8; 32];
        point.copy_from_slice(&self.msg[at..at + 32]);
        let result = self.key.dh(&point);
        ComputedHandshake {
            src: self.src,
            msg: self.msg,
            len: self.len,
            local_public: self.key.public_key(),
            point,
            result,
        }
    }
}

impl core::fmt::Debug for HandshakeJob {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HandshakeJob")
            .field("src", &self.src)
            .field("type", &self.msg[0])
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// A handshake message with its static-key DH done, for [`Device::finish_handshake`].
pub struct ComputedHandshake {
    src: SocketAddr,
    msg: [u8; HANDSHAKE_INITIATION_SIZE],
    len: usize,
    local_public: [u8; 32],
    point: [u8; 32],
    result: Result<Secret, KeyError>,
}

/// A peer's static-static DH, DH(S_priv, S_pub_peer), to compute without the device.
pub struct StaticDhJob {
    peer: PeerId,
    remote: [u8; 32],
    key: Arc<dyn StaticKey>,
}

impl StaticDhJob {
    /// The peer it is for.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Runs the DH. Needs no device; may be slow.
    pub fn compute(self) -> StaticDh {
        StaticDh {
            peer: self.peer,
            remote: self.remote,
            local_public: self.key.public_key(),
            result: self.key.dh(&self.remote),
        }
    }
}

/// The outcome of a [`StaticDhJob`], for [`Device::provide_static_dh`].
pub struct StaticDh {
    peer: PeerId,
    remote: [u8; 32],
    local_public: [u8; 32],
    result: Result<Secret, KeyError>,
}

/// The static key as seen by a handshake step that was computed beforehand: it answers the
/// one DH that was computed and refuses every other.
struct Precomputed<'a> {
    public: [u8; 32],
    point: [u8; 32],
    result: &'a Result<Secret, KeyError>,
}

impl StaticKey for Precomputed<'_> {
    fn public_key(&self) -> [u8; 32] {
        self.public
    }
    fn dh(&self, peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        if ct_eq(peer_public, &self.point) {
            self.result.clone()
        } else {
            Err(KeyError::Unavailable)
        }
    }
}

/// The static key of a device whose DHs the caller runs: its public half only.
pub(super) struct NoStaticDh(pub [u8; 32]);

impl StaticKey for NoStaticDh {
    fn public_key(&self) -> [u8; 32] {
        self.0
    }
    fn dh(&self, _peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        Err(KeyError::Unavailable)
    }
}

/// Static-key DHs run by the caller.
impl Device {
    /// With `on`, the device never runs a static-key DH itself (see the [module
    /// documentation](self)).
    pub fn set_static_dh_offloaded(&mut self, on: bool) {
        self.dh_offloaded = on;
    }

    /// Completes a handshake message whose DH [`HandshakeJob::compute`] ran. `Err` asks for
    /// the peer's static-static DH first: nothing changed; compute the job, pass it to
    /// [`Device::provide_static_dh`] and call again. A job computed with a static key that has
    /// since been replaced is dropped.
    pub fn finish_handshake(
        &mut self,
        now: Instant,
        c: &ComputedHandshake,
    ) -> Result<Incoming, StaticDhJob> {
        if c.local_public != self.public_key {
            return Ok(self.drop_in(DropReason::KeyUnavailable));
        }
        let local = Precomputed {
            public: c.local_public,
            point: c.point,
            result: &c.result,
        };
        match Message::parse(&c.msg[..c.len]) {
            Ok(Message::Initiation(m)) => self.consume_initiation(now, c.src, &m, &local),
            Ok(Message::Response(m)) => Ok(self.consume_response(now, c.src, &m, &local)),
            _ => Ok(self.drop_in(DropReason::UnexpectedMessage)),
        }
    }

    /// Installs a peer's static-static DH. Returns whether it was installed: false when the
    /// DH failed (counted, and reported as [`Event::StaticKeyFailed`](super::Event)), or the
    /// key or the peer changed meanwhile. An initiation that waited for it is sent now.
    pub fn provide_static_dh(&mut self, now: Instant, r: StaticDh) -> bool {
        if r.local_public != self.public_key {
            return false;
        }
        let Some(p) = self.peers.get_mut(r.peer) else {
            return false;
        };
        if p.public_key != r.remote {
            return false;
        }
        let waiting = core::mem::take(&mut p.awaiting_static_dh);
        match r.result {
            Ok(ss) => {
                p.handshake.set_static_static(ss);
                if waiting {
                    self.send_initiation(r.peer, now, true);
                }
                true
            }
            Err(e) => {
                self.handshake_failed(r.peer, e.into());
                false
            }
        }
    }

    /// Up to `max` static-static DHs that initiations wait for, oldest first.
    pub fn take_static_dh_jobs(&mut self, max: usize) -> Vec<StaticDhJob> {
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some(id) = self.static_dh_wanted.pop_front() else {
                break;
            };
            let wanted = self
                .peers
                .get(id)
                .is_some_and(|p| p.awaiting_static_dh && !p.handshake.has_static_static());
            if wanted {
                jobs.push(self.static_dh_job(id));
            }
        }
        jobs
    }

    /// True while initiations wait for static-static DHs ([`Device::take_static_dh_jobs`]).
    pub fn wants_static_dh(&self) -> bool {
        !self.static_dh_wanted.is_empty()
    }

    /// The job computing peer `id`'s static-static DH with the current key.
    pub(super) fn static_dh_job(&self, id: PeerId) -> StaticDhJob {
        StaticDhJob {
            peer: id,
            remote: self
                .peers
                .get(id)
                .map_or([0; 32], |p| *p.handshake.remote_static()),
            key: self.static_key.clone(),
        }
    }

    /// Marks the initiation to `id` as waiting for its static-static DH, announced once.
    pub(super) fn want_static_dh(&mut self, id: PeerId) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        if !p.awaiting_static_dh {
            p.awaiting_static_dh = true;
            self.static_dh_wanted.push_back(id);
            self.push_event(super::Event::StaticDhWanted { peer: id });
        }
    }
}
