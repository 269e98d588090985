//! The receive path (kernel receive.c): MAC and cookie checks, handshake messages, cookie
//! replies, and transport data decrypted, replay-checked and source-checked.

use alloc::sync::Arc;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use zeroize::Zeroizing;

use super::handshake::{HandshakeJob, StaticDhJob};
use super::jobs::{Begin, OpenJob};
use super::state::{Device, Event, Incoming};
use crate::cookie::CookieError;
use crate::crypto::StaticKey;
use crate::error::DropReason;
use crate::index::IndexEntry;
use crate::keypair::{Keypair, Slot};
use crate::messages::{
    self, Message, AEAD_TAG_SIZE, HANDSHAKE_RESPONSE_SIZE, KEEPALIVE_TIMEOUT,
    REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME, REKEY_TIMEOUT, TRANSPORT_HEADER_SIZE,
};
use crate::noise::{self, HandshakeError};
use crate::peer::PeerId;
use crate::time::Instant;

/// Handshake messages and cookie replies.
impl Device {
    /// Counts a handshake that failed on our side; a failing static key is also reported as
    /// [`Event::StaticKeyFailed`].
    pub(super) fn handshake_failed(&mut self, id: PeerId, e: HandshakeError) {
        let r = handshake_drop(e);
        self.stats.drops.count(r);
        if r == DropReason::KeyUnavailable {
            self.push_event(Event::StaticKeyFailed { peer: id });
        }
    }

    /// Checks MACs, cookies and the rate limit of a handshake message. `Err` = dropped.
    /// Only messages with a valid mac1 count towards the load, so junk cannot put the device
    /// under load.
    fn admit_handshake(
        &mut self,
        now: Instant,
        src: SocketAddr,
        msg: &[u8],
        sender_index: u32,
    ) -> Result<(), DropReason> {
        if !self.cookie_checker.check_mac1(msg) {
            return Err(DropReason::InvalidMac1);
        }
        if !self.load.count_handshake(now) {
            return Ok(());
        }
        if !self
            .cookie_checker
            .check_mac2(msg, src, now, &mut *self.rng)
        {
            let reply =
                self.cookie_checker
                    .create_reply(msg, sender_index, src, now, &mut *self.rng);
            if self.push_transmit(src, reply.to_vec()) {
                self.stats.cookie_replies_sent += 1;
            }
            return Err(DropReason::CookieSent);
        }
        if !self.ratelimiter.allow(now, src.ip()) {
            return Err(DropReason::RateLimited);
        }
        Ok(())
    }

    /// An admitted initiation, with `local` for its static-key DHs: answered with a response,
    /// which installs the next keypair. With offloaded DHs, a peer whose static-static DH is
    /// not known yet gives the job that computes it (nothing changed; call again once it is
    /// provided).
    pub(super) fn consume_initiation(
        &mut self,
        now: Instant,
        src: SocketAddr,
        m: &messages::Initiation<'_>,
        local: &dyn StaticKey,
    ) -> Result<Incoming, StaticDhJob> {
        let begin = match noise::begin_consume_initiation(local, m) {
            Ok(b) => b,
            Err(e) => return Ok(self.drop_in(handshake_drop(e))),
        };
        let Some(id) = self.by_key.get(&begin.remote_static).copied() else {
            return Ok(self.drop_in(DropReason::UnknownPeer));
        };
        if self.dh_offloaded
            && !self
                .peers
                .get(id)
                .is_some_and(|p| p.handshake.has_static_static())
        {
            return Err(self.static_dh_job(id));
        }
        let mut eph = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut eph[..]);
        let index = self.indices.insert(IndexEntry::Keypair(id), &mut *self.rng);
        let crypto = &*self.crypto;
        let Some(p) = self.peers.get_mut(id) else {
            self.indices.remove(index);
            return Ok(self.drop_in(DropReason::UnknownPeer));
        };
        let pending = p.handshake.pending_local_index();
        let mut resp = [0u8; HANDSHAKE_RESPONSE_SIZE];
        let keys = p
            .handshake
            .consume_initiation(local, begin, m, now)
            .and_then(|()| p.handshake.create_response(crypto, *eph, index, &mut resp));
        let keys = match keys {
            Ok(k) => k,
            Err(e) => {
                self.indices.remove(index);
                return Ok(self.drop_in(handshake_drop(e)));
            }
        };
        p.cookie.add_macs(&mut resp, now);
        let kp = Keypair::new(&keys, crypto, now);
        let indices = &mut self.indices;
        if let Some(old) = pending {
            indices.remove(old);
        }
        p.keypairs.insert(kp, |i| indices.remove(i));
        p.sent_lastminute_handshake = false;
        p.timers.session_derived(now);
        p.timers.any_authenticated_packet_received();
        p.timers.any_authenticated_packet_traversal(now);
        p.timers.any_authenticated_packet_sent();
        p.last_sent_handshake = Some(now);
        self.set_endpoint_from(id, src);
        self.stats.responses_sent += 1;
        self.push_transmit(src, resp.to_vec());
        self.reschedule(id);
        Ok(Incoming::Handshake)
    }

    /// An admitted response to our initiation, with `local` for its static-key DH: the
    /// session starts at once.
    pub(super) fn consume_response(
        &mut self,
        now: Instant,
        src: SocketAddr,
        m: &messages::Response<'_>,
        local: &dyn StaticKey,
    ) -> Incoming {
        let id = match self.indices.get(m.receiver_index()) {
            Some(IndexEntry::Handshake(id)) => id,
            // The index names a session, not an initiation in flight (e.g. a replay).
            Some(IndexEntry::Keypair(_)) => return self.drop_in(DropReason::UnexpectedMessage),
            None => return self.drop_in(DropReason::UnknownIndex),
        };
        let crypto = &*self.crypto;
        let Some(p) = self.peers.get_mut(id) else {
            return self.drop_in(DropReason::UnexpectedMessage);
        };
        let keys = match p.handshake.consume_response(local, crypto, m) {
            Ok(k) => k,
            Err(e) => {
                self.handshake_failed(id, e);
                return Incoming::Dropped(handshake_drop(e));
            }
        };
        let kp = Keypair::new(&keys, crypto, now);
        self.indices.set(keys.local_index, IndexEntry::Keypair(id));
        let indices = &mut self.indices;
        p.keypairs.insert(kp, |i| indices.remove(i));
        p.sent_lastminute_handshake = false;
        p.timers.session_derived(now);
        p.timers.handshake_complete();
        p.timers.any_authenticated_packet_received();
        p.timers.any_authenticated_packet_traversal(now);
        p.last_handshake = Some(now);
        self.set_endpoint_from(id, src);
        self.take_over(id);
        self.push_event(Event::HandshakeCompleted {
            peer: id,
            initiator: true,
        });
        // Confirms the session to the responder, flushing queued packets first.
        self.send_keepalive(id, now);
        self.reschedule(id);
        Incoming::Handshake
    }

    /// A cookie reply: mac2 of our next handshake message carries the cookie.
    fn receive_cookie_reply(&mut self, now: Instant, m: &messages::CookieReply<'_>) -> Incoming {
        let Some(id) = self.indices.get(m.receiver_index()).map(IndexEntry::peer) else {
            return self.drop_in(DropReason::UnknownIndex);
        };
        let Ok(p) = self.peer_mut(id) else {
            return self.drop_in(DropReason::UnknownIndex);
        };
        match p.cookie.consume_reply(m, now) {
            Ok(()) => Incoming::Handshake,
            Err(CookieError::Unexpected) => self.drop_in(DropReason::UnexpectedMessage),
            Err(CookieError::DecryptFailed) => self.drop_in(DropReason::HandshakeDecryptFailed),
        }
    }

    /// A handshake message (initiation or response): admitted, then handled at once with the
    /// static key, or, with offloaded DHs, handed to the caller as a [`HandshakeJob`].
    fn receive_handshake(&mut self, now: Instant, src: SocketAddr, msg: Message<'_>) -> Begin {
        let (bytes, sender_index) = match &msg {
            Message::Initiation(m) => (m.bytes(), m.sender_index()),
            Message::Response(m) => (m.bytes(), m.sender_index()),
            _ => return Begin::Done(self.drop_in(DropReason::UnexpectedMessage)),
        };
        if let Err(r) = self.admit_handshake(now, src, bytes, sender_index) {
            return Begin::Done(self.drop_in(r));
        }
        if self.dh_offloaded {
            return match HandshakeJob::new(src, bytes, self.static_key.clone()) {
                Some(job) => Begin::Handshake(job),
                None => Begin::Done(self.drop_in(DropReason::UnexpectedMessage)),
            };
        }
        let key = self.static_key.clone();
        let incoming = match msg {
            Message::Initiation(m) => self
                .consume_initiation(now, src, &m, &*key)
                .unwrap_or(Incoming::Dropped(DropReason::KeyUnavailable)),
            Message::Response(m) => self.consume_response(now, src, &m, &*key),
            _ => self.drop_in(DropReason::UnexpectedMessage),
        };
        Begin::Done(incoming)
    }

    /// Roaming: the peer's endpoint becomes the source of its latest authenticated datagram.
    fn set_endpoint_from(&mut self, id: PeerId, src: SocketAddr) {
        let Ok(p) = self.peer_mut(id) else { return };
        if p.endpoint != Some(src) {
            p.endpoint = Some(src);
            self.push_event(Event::EndpointChanged {
                peer: id,
                endpoint: src,
            });
        }
    }
}

/// The data path: network → OS.
impl Device {
    /// Processes a datagram from `src`. Transport data is decrypted in place; on
    /// [`Incoming::Packet`] the IP packet is at `buf[TRANSPORT_HEADER_SIZE..][..len]`.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddr, buf: &mut [u8]) -> Incoming {
        match self.begin_datagram(now, src, buf) {
            Begin::Done(incoming) => incoming,
            Begin::Handshake(job) => {
                let c = job.compute();
                // Offloaded DHs ask for the static-static DH through this call too.
                match self.finish_handshake(now, &c) {
                    Ok(incoming) => incoming,
                    Err(dh) => {
                        if self.provide_static_dh(now, dh.compute()) {
                            self.finish_handshake(now, &c)
                                .unwrap_or(Incoming::Dropped(DropReason::KeyUnavailable))
                        } else {
                            Incoming::Dropped(DropReason::KeyUnavailable)
                        }
                    }
                }
            }
            Begin::Open(job) => {
                let opened = job.open(buf);
                self.finish_datagram(now, src, buf, job, opened)
            }
        }
    }

    /// The first third of [`Device::handle_datagram`], for callers that decrypt without
    /// holding the device (a lock around it): handles everything but transport data, and for
    /// transport data finds the session and returns the [`OpenJob`] that decrypts it. Then
    /// call [`OpenJob::open`] on the same buffer (no `&mut Device` needed) and
    /// [`Device::finish_datagram`] with its result. Jobs of one batch may be opened in any order
    /// and in parallel; finishing them checks replay and updates timers, roaming and counters
    /// exactly as [`Device::handle_datagram`] would.
    pub fn begin_datagram(&mut self, now: Instant, src: SocketAddr, buf: &mut [u8]) -> Begin {
        let msg = match Message::parse(buf) {
            Ok(m) => m,
            Err(e) => return Begin::Done(self.drop_in(e.into())),
        };
        match msg {
            m @ (Message::Initiation(_) | Message::Response(_)) => {
                self.receive_handshake(now, src, m)
            }
            Message::CookieReply(m) => Begin::Done(self.receive_cookie_reply(now, &m)),
            Message::Transport(t) => {
                match self.begin_transport(now, t.receiver_index(), t.counter()) {
                    Ok(job) => Begin::Open(job),
                    Err(r) => Begin::Done(self.drop_in(r)),
                }
            }
        }
    }

    /// Finds the session a transport datagram names and checks that it may still receive.
    fn begin_transport(
        &mut self,
        now: Instant,
        index: u32,
        counter: u64,
    ) -> Result<OpenJob, DropReason> {
        let Some(IndexEntry::Keypair(id)) = self.indices.get(index) else {
            return Err(DropReason::UnknownIndex);
        };
        let Some(p) = self.peers.get_mut(id) else {
            return Err(DropReason::UnknownIndex);
        };
        let Some((_, kp)) = p.keypairs.find_mut(index) else {
            return Err(DropReason::UnknownIndex);
        };
        if !kp.is_fresh(now) || counter >= REJECT_AFTER_MESSAGES {
            return Err(DropReason::ExpiredKeypair);
        }
        Ok(OpenJob {
            key: kp.recv.clone(),
            peer: id,
            index,
            counter,
        })
    }

    /// The last third of [`Device::handle_datagram`] for a datagram that
    /// [`Device::begin_datagram`] gave an [`OpenJob`] for: `opened` is what [`OpenJob::open`]
    /// returned for `buf`. Checks the counter against the replay window of the session the job
    /// came from (a session replaced in between drops the packet) and does the bookkeeping.
    pub fn finish_datagram(
        &mut self,
        now: Instant,
        src: SocketAddr,
        buf: &mut [u8],
        job: OpenJob,
        opened: bool,
    ) -> Incoming {
        if !opened {
            return self.drop_in(DropReason::DecryptFailed);
        }
        let id = job.peer;
        let Some(p) = self.peers.get_mut(id) else {
            return self.drop_in(DropReason::UnknownIndex);
        };
        let Some((slot, kp)) = p.keypairs.find_mut(job.index) else {
            return self.drop_in(DropReason::UnknownIndex);
        };
        if !Arc::ptr_eq(&kp.recv, &job.key) {
            return self.drop_in(DropReason::UnknownIndex);
        }
        if !kp.replay.check_and_update(job.counter) {
            return self.drop_in(DropReason::Replay);
        }
        let total = buf.len();
        let body = &buf[TRANSPORT_HEADER_SIZE..total - AEAD_TAG_SIZE];
        let plain_len = body.len();
        if slot == Slot::Next {
            self.confirm_next(id, now);
        }
        // After any promotion above, as the kernel does: a just-confirmed responder keypair
        // needs no rekey.
        self.keep_key_fresh_on_receive(id, now);
        self.set_endpoint_from(id, src);
        let Ok(p) = self.peer_mut(id) else {
            return Incoming::Dropped(DropReason::UnknownIndex);
        };
        p.timers.any_authenticated_packet_received();
        p.timers.any_authenticated_packet_traversal(now);
        p.rx_bytes = p.rx_bytes.saturating_add(total as u64);
        if plain_len == 0 {
            self.reschedule(id);
            return Incoming::Keepalive { peer: id };
        }
        p.timers.data_received(now);
        self.reschedule(id);
        let plain = &mut buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + plain_len];
        if let Some(p) = self.peers.get(id) {
            // A site's real source becomes its mapped address, which the source check knows.
            for m in &p.netmaps {
                if m.from_site(plain) {
                    break;
                }
            }
        }
        let Some((ip_len, source)) = ip_length_and_source(plain) else {
            return self.drop_in(DropReason::InvalidIpPacket);
        };
        if !self.source_allowed(id, self.allowed_ips.lookup(source)) {
            return self.drop_in(DropReason::NotAllowedSource);
        }
        Incoming::Packet {
            peer: id,
            len: ip_len,
        }
    }

    /// The first packet on the responder's `next` keypair confirms it (whitepaper §6.1): it
    /// becomes current, the handshake is complete, and the packets that waited go out.
    fn confirm_next(&mut self, id: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        if let Some(i) = p.keypairs.confirm_next() {
            self.indices.remove(i);
        }
        p.timers.handshake_complete();
        p.last_handshake = Some(now);
        self.take_over(id);
        self.push_event(Event::HandshakeCompleted {
            peer: id,
            initiator: false,
        });
        self.send_staged(id, now);
    }

    /// keep_key_fresh, receive side: an initiator whose current keypair is close to
    /// REJECT_AFTER_TIME starts one last handshake before it expires.
    fn keep_key_fresh_on_receive(&mut self, id: PeerId, now: Instant) {
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let stale = p.keypairs.current.as_ref().is_some_and(|k| {
            k.is_initiator
                && now.saturating_duration_since(k.created)
                    >= REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
        });
        if stale && !p.sent_lastminute_handshake {
            p.sent_lastminute_handshake = true;
            self.send_initiation(id, now, false);
        }
    }
}

/// The drop reason of a handshake error.
fn handshake_drop(e: HandshakeError) -> DropReason {
    match e {
        HandshakeError::DecryptFailed => DropReason::HandshakeDecryptFailed,
        HandshakeError::LowOrderPoint => DropReason::LowOrderPoint,
        HandshakeError::KeyUnavailable => DropReason::KeyUnavailable,
        HandshakeError::StaleTimestamp => DropReason::StaleTimestamp,
        HandshakeError::Flood => DropReason::InitiationFlood,
        HandshakeError::UnexpectedResponse => DropReason::UnexpectedMessage,
    }
}

/// The length (from the IP header, without padding) and source address of a decrypted packet.
pub fn ip_length_and_source(p: &[u8]) -> Option<(usize, IpAddr)> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let len = usize::from(u16::from_be_bytes([p[2], p[3]]));
            let b: [u8; 4] = p[12..16].try_into().ok()?;
            (20..=p.len())
                .contains(&len)
                .then_some((len, IpAddr::V4(Ipv4Addr::from(b))))
        }
        6 if p.len() >= 40 => {
            let len = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
            let b: [u8; 16] = p[8..24].try_into().ok()?;
            (len <= p.len()).then_some((len, IpAddr::V6(Ipv6Addr::from(b))))
        }
        _ => None,
    }
}
