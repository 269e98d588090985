//! The send path (kernel send.c): IP packets from the OS become transport datagrams, packets
//! wait for a session, keepalives, and handshake initiations.

use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use zeroize::Zeroizing;

use super::handshake::NoStaticDh;
use super::jobs::{Prepared, SealJob};
use super::state::{Device, Outgoing};
use crate::crypto::StaticKey;
use crate::error::DropReason;
use crate::index::IndexEntry;
use crate::messages::{
    self, padded_len, HANDSHAKE_INITIATION_SIZE, MAX_STAGED_PACKETS, REKEY_AFTER_MESSAGES,
    REKEY_AFTER_TIME, REKEY_TIMEOUT, REKEY_TIMEOUT_JITTER_MAX, TRANSPORT_HEADER_SIZE,
    TRANSPORT_OVERHEAD,
};
use crate::peer::{Peer, PeerId};
use crate::tai64n::Tai64N;
use crate::time::Instant;

/// The data path: OS → network.
impl Device {
    /// Encrypts the IP packet at `buf[TRANSPORT_HEADER_SIZE..][..len]` in place into a transport
    /// datagram starting at `buf[0]`. `buf` needs room for padding and the 16-byte tag.
    pub fn handle_packet(&mut self, now: Instant, buf: &mut [u8], len: usize) -> Outgoing {
        match self.prepare_packet(now, buf, len) {
            Prepared::Seal {
                peer,
                endpoint,
                job,
            } => Outgoing::Send {
                peer,
                endpoint,
                len: job.seal(buf),
            },
            Prepared::Queued { peer } => Outgoing::Queued { peer },
            Prepared::Dropped(r) => Outgoing::Dropped(r),
        }
    }

    /// [`Device::handle_packet`] without the encryption, for callers that encrypt without
    /// holding the device (a lock around it): routes the packet, assigns the counter, writes
    /// the header and padding, and does the bookkeeping; [`SealJob::seal`] on the same buffer
    /// then finishes the datagram. Jobs may be sealed in any order and in parallel, but must
    /// be sent in the order they were prepared to keep the peer's packets in order.
    pub fn prepare_packet(&mut self, now: Instant, buf: &mut [u8], len: usize) -> Prepared {
        let Some(packet) = buf.get(TRANSPORT_HEADER_SIZE..).and_then(|b| b.get(..len)) else {
            return self.drop_prepared(DropReason::BufferTooSmall);
        };
        let Some(dst) = ip_destination(packet) else {
            return self.drop_prepared(DropReason::InvalidIpPacket);
        };
        let Some(id) = self.allowed_ips.lookup(dst) else {
            return self.drop_prepared(DropReason::NoRoute);
        };
        if let (Some(p), Some(packet)) = (self.peers.get(id), buf.get_mut(TRANSPORT_HEADER_SIZE..))
        {
            // A mapped destination becomes the site's real address.
            let packet = &mut packet[..len];
            for m in &p.netmaps {
                if m.to_site(packet) {
                    break;
                }
            }
        }
        let mtu = self.mtu;
        // Invariant: the routing table only holds ids of live peers.
        let Ok(peer) = self.peer_mut(id) else {
            return self.drop_prepared(DropReason::NoRoute);
        };
        let Some(endpoint) = peer.endpoint else {
            return self.drop_prepared(DropReason::NoEndpoint);
        };
        let usable = peer
            .keypairs
            .current
            .as_ref()
            .is_some_and(|k| k.can_send(now));
        if !usable || !peer.staged.is_empty() {
            let packet = buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len].to_vec();
            self.stage(id, packet, now);
            return Prepared::Queued { peer: id };
        }
        match prepare_into(peer, now, buf, len, mtu) {
            Ok(job) => {
                self.after_send(id, now, true, job.len());
                Prepared::Seal {
                    peer: id,
                    endpoint,
                    job,
                }
            }
            Err(r) => self.drop_prepared(r),
        }
    }

    /// [`Device::handle_packet`] over a batch; `results[i]` receives the outcome for `bufs[i]`.
    pub fn handle_packets(
        &mut self,
        now: Instant,
        bufs: &mut [&mut [u8]],
        lens: &[usize],
        results: &mut [Outgoing],
    ) {
        for ((buf, len), res) in bufs.iter_mut().zip(lens).zip(results.iter_mut()) {
            *res = self.handle_packet(now, buf, *len);
        }
    }

    /// Counts a dropped packet from the OS.
    fn drop_prepared(&mut self, r: DropReason) -> Prepared {
        self.stats.drops.count(r);
        Prepared::Dropped(r)
    }

    /// Bookkeeping after a transport datagram of `n` bytes went to the peer.
    fn after_send(&mut self, id: PeerId, now: Instant, is_data: bool, n: usize) {
        let arm = is_data
            && self
                .peers
                .get(id)
                .is_some_and(|p| p.timers.new_handshake_idle());
        let jitter = if arm { self.jitter() } else { Duration::ZERO };
        let Ok(p) = self.peer_mut(id) else { return };
        p.tx_bytes = p.tx_bytes.saturating_add(n as u64);
        if is_data {
            p.timers.data_sent(now, jitter);
        }
        p.timers.any_authenticated_packet_sent();
        p.timers.any_authenticated_packet_traversal(now);
        // keep_key_fresh (send side): rekey after REKEY_AFTER_MESSAGES or, as initiator,
        // REKEY_AFTER_TIME.
        let stale = p.keypairs.current.as_ref().is_some_and(|k| {
            k.send_counter > REKEY_AFTER_MESSAGES
                || (k.is_initiator && now.saturating_duration_since(k.created) >= REKEY_AFTER_TIME)
        });
        if stale {
            self.send_initiation(id, now, false);
        }
        self.reschedule(id);
    }

    /// Queues `packet` for the peer until a session is usable, dropping the oldest beyond
    /// MAX_STAGED_PACKETS, then sends what it can.
    fn stage(&mut self, id: PeerId, packet: Vec<u8>, now: Instant) {
        if let Ok(p) = self.peer_mut(id) {
            if p.staged.len() >= MAX_STAGED_PACKETS {
                p.staged.pop_front();
                self.stats.drops.count(DropReason::QueueFull);
            }
            if let Ok(p) = self.peer_mut(id) {
                p.staged.push_back(packet);
            }
        }
        self.send_staged(id, now);
    }

    /// Sends the staged packets if a session is usable, else starts a handshake.
    pub(super) fn send_staged(&mut self, id: PeerId, now: Instant) {
        let mtu = self.mtu;
        let Ok(p) = self.peer_mut(id) else { return };
        let usable = p.keypairs.current.as_ref().is_some_and(|k| k.can_send(now));
        let Some(endpoint) = p.endpoint.filter(|_| usable) else {
            self.send_initiation(id, now, false);
            return;
        };
        while let Some(pkt) = self.peer_mut(id).ok().and_then(|p| p.staged.pop_front()) {
            let len = pkt.len();
            let mut buf = vec![0u8; TRANSPORT_OVERHEAD + padded_len(len, mtu)];
            buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len].copy_from_slice(&pkt);
            let Ok(p) = self.peer_mut(id) else { return };
            match prepare_into(p, now, &mut buf, len, mtu).map(|job| job.seal(&mut buf)) {
                Ok(n) => {
                    buf.truncate(n);
                    if self.push_transmit(endpoint, buf) {
                        self.after_send(id, now, len > 0, n);
                    }
                }
                Err(r) => self.stats.drops.count(r),
            }
        }
    }

    /// Sends a keepalive (an empty transport packet), or starts a handshake without a session.
    pub(super) fn send_keepalive(&mut self, id: PeerId, now: Instant) {
        let Ok(p) = self.peer_mut(id) else { return };
        if p.staged.is_empty() {
            p.staged.push_back(Vec::new());
        }
        self.send_staged(id, now);
    }
}

/// Handshake initiations.
impl Device {
    /// Starts a handshake with `id` now (rate-limited to one per REKEY_TIMEOUT).
    pub fn initiate_handshake(&mut self, id: PeerId, now: Instant) {
        self.send_initiation(id, now, false);
    }

    /// A random delay in [0, REKEY_TIMEOUT_JITTER_MAX), in whole milliseconds like the kernel's
    /// jiffies.
    fn jitter(&mut self) -> Duration {
        let max = REKEY_TIMEOUT_JITTER_MAX.as_millis() as u64;
        Duration::from_millis(u64::from(self.rng.next_u32()) % max)
    }

    /// The TAI64N timestamp of `now`, per [`Device::set_clock`].
    fn timestamp(&self, now: Instant) -> Tai64N {
        Tai64N::from_unix_nanos(self.unix_nanos(now))
    }

    /// Sends an initiation to the peer, at most one per REKEY_TIMEOUT; `is_retry` keeps the
    /// count of attempts (a retransmission), else it starts over, sent or not.
    pub(super) fn send_initiation(&mut self, id: PeerId, now: Instant, is_retry: bool) {
        let ts = self.timestamp(now);
        let mut eph = Zeroizing::new([0u8; 32]);
        self.rng.fill_bytes(&mut eph[..]);
        let jitter = self.jitter();
        let offloaded = self.dh_offloaded;
        let Ok(p) = self.peer_mut(id) else { return };
        // As the kernel's wg_packet_send_queued_handshake_initiation: a new handshake (not a
        // retry) restarts the count of attempts even when the rate limit below sends nothing.
        if !is_retry {
            p.timers.handshake_attempts = 0;
        }
        if p.last_sent_handshake
            .is_some_and(|t| now.saturating_duration_since(t) < REKEY_TIMEOUT)
        {
            return;
        }
        let Some(endpoint) = p.endpoint else { return };
        if offloaded && !p.handshake.has_static_static() {
            // Retried by the timer if the DH never comes.
            p.timers.handshake_initiated(now, jitter);
            self.want_static_dh(id);
            self.reschedule(id);
            return;
        }
        if let Some(old) = p.handshake.pending_local_index() {
            self.indices.remove(old);
        }
        let index = self
            .indices
            .insert(IndexEntry::Handshake(id), &mut *self.rng);
        let no_dh = NoStaticDh(self.public_key);
        let static_key: &dyn StaticKey = if self.dh_offloaded {
            &no_dh
        } else {
            &*self.static_key
        };
        let crypto = &*self.crypto;
        // Invariant: the peer was found just above and nothing removed it since.
        let Some(p) = self.peers.get_mut(id) else {
            return;
        };
        let mut msg = [0u8; HANDSHAKE_INITIATION_SIZE];
        let res = p
            .handshake
            .create_initiation(static_key, crypto, *eph, index, ts, &mut msg);
        p.last_sent_handshake = Some(now);
        p.timers.handshake_initiated(now, jitter);
        match res {
            Ok(()) => {
                p.cookie.add_macs(&mut msg, now);
                p.timers.any_authenticated_packet_sent();
                p.timers.any_authenticated_packet_traversal(now);
                self.stats.initiations_sent += 1;
                self.push_transmit(endpoint, msg.to_vec());
            }
            Err(e) => {
                self.indices.remove(index);
                self.handshake_failed(id, e);
            }
        }
        self.reschedule(id);
    }
}

/// Pads and frames the packet at `buf[16..16 + len]` for the peer's current keypair, taking
/// the next counter; the returned job encrypts it.
fn prepare_into(
    p: &mut Peer,
    now: Instant,
    buf: &mut [u8],
    len: usize,
    mtu: usize,
) -> Result<SealJob, DropReason> {
    let kp = match p.keypairs.current.as_mut() {
        Some(k) if k.can_send(now) => k,
        _ => return Err(DropReason::ExpiredKeypair),
    };
    let padded = padded_len(len, mtu);
    let total = TRANSPORT_OVERHEAD + padded;
    if buf.len() < total {
        return Err(DropReason::BufferTooSmall);
    }
    let counter = kp.send_counter;
    kp.send_counter += 1;
    buf[TRANSPORT_HEADER_SIZE + len..TRANSPORT_HEADER_SIZE + padded].fill(0);
    messages::write_transport_header(buf, kp.remote_index, counter);
    Ok(SealJob {
        key: kp.send.clone(),
        counter,
        padded,
    })
}

/// The destination address of an IPv4 or IPv6 packet.
pub fn ip_destination(p: &[u8]) -> Option<IpAddr> {
    match p.first()? >> 4 {
        4 if p.len() >= 20 => {
            let b: [u8; 4] = p[16..20].try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        6 if p.len() >= 40 => {
            let b: [u8; 16] = p[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}
