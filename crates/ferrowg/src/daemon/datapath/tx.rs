//! TUN → encrypt → UDP.
//!
//! A batch of TUN reads lands in per-read buffers. Each read is one IP packet or, with the
//! virtio-net header, possibly a TSO/USO super-packet; either way its packets are written back
//! to back into one send arena (super-packets cut by [`GsoSplit`], partial checksums completed)
//! at [`TRANSPORT_HEADER_SIZE`] past their slot, each slot as long as its datagram will be.
//! Only then is the state locked, once, to route each packet and assign its counter
//! ([`ferrowg_proto::Device::prepare_packet`]); the encryption itself ([`SealJob::seal`]) runs after the lock
//! is released, so the receive thread is never kept waiting by it. Consecutive datagrams to the same endpoint with the same size (the last
//! may be shorter) then leave as one UDP GSO send (`UDP_SEGMENT`), all of them in one
//! `sendmmsg`. If the kernel refuses GSO (`EIO` on a path without checksum offload, for one),
//! the thread falls back to one datagram each for good.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrowg_proto::messages::{padded_len, TRANSPORT_OVERHEAD};
use ferrowg_proto::{Prepared, SealJob, TRANSPORT_HEADER_SIZE};
use ferrowg_sys::{
    PageBuf, Transmit, TunQueue, UdpSocket, VirtioNetHdr, GSO_MAX_SEGMENTS, VIRTIO_NET_HDR_LEN,
};

use super::{
    drain, nudge_timer, send_outbox, DatapathStats, Outbox, Shared, BATCH, BUF_SIZE, POLL,
};
use crate::daemon::offload::{complete_checksum, GsoSplit};
use crate::daemon::state;

/// Size of the send arena: the encrypted datagrams of (at least) one full super-packet, and of
/// about 16 per flush.
const ARENA_SIZE: usize = 1 << 20;
/// Worst-case growth of one packet by encryption: header, tag and padding.
const PER_PACKET_OVERHEAD: usize = 32 + 16;
/// Most bytes in one UDP GSO send: a 64 KiB IP packet minus IPv6 and UDP headers.
const MAX_GSO_BYTES: usize = 65535 - 40 - 8;

/// The thread's buffers, allocated once.
struct Tx {
    reads: Vec<PageBuf>,
    sizes: [usize; BATCH],
    arena: PageBuf,
    /// Encrypted datagrams in the arena: (start, length, destination).
    sent: Vec<(usize, usize, SocketAddr)>,
    /// Packets copied into the arena, not yet prepared: (start, packet length, slot size).
    slots: Vec<(usize, usize, usize)>,
    /// Prepared, not yet sealed: (start, datagram length, destination, job).
    jobs: Vec<(usize, usize, SocketAddr, SealJob)>,
    /// Bytes of the arena in use.
    used: usize,
    /// The device's MTU as last seen (it decides the padding, hence each slot's size).
    mtu: usize,
    /// Use UDP GSO (until the kernel refuses it).
    gso: bool,
    vnet: bool,
    scratch: PageBuf,
    out: Outbox,
}

/// TUN → device → UDP.
pub fn tun_to_udp(shared: Arc<Shared>, tun: Arc<TunQueue>) {
    let vnet = tun.has_vnet_hdr();
    let mut tx = Tx {
        reads: PageBuf::many(BATCH, BUF_SIZE),
        sizes: [0; BATCH],
        arena: PageBuf::zeroed(ARENA_SIZE),
        sent: Vec::with_capacity(ARENA_SIZE / 64),
        slots: Vec::with_capacity(ARENA_SIZE / 64),
        jobs: Vec::with_capacity(ARENA_SIZE / 64),
        used: 0,
        mtu: shared.lock().device.mtu(),
        gso: true,
        vnet,
        scratch: PageBuf::zeroed(BUF_SIZE),
        out: Outbox::default(),
    };
    // The IP packet starts at TRANSPORT_HEADER_SIZE whether or not a header precedes it.
    let read_at = if vnet {
        TRANSPORT_HEADER_SIZE - VIRTIO_NET_HDR_LEN
    } else {
        TRANSPORT_HEADER_SIZE
    };
    let mut truncated = 0;
    while !shared.stopping() {
        let n = {
            let mut views: Vec<&mut [u8]> =
                tx.reads.iter_mut().map(|b| &mut b[read_at..]).collect();
            match tun.read_batch(&mut views, &mut tx.sizes, Some(POLL)) {
                Ok(n) => n,
                Err(e) if e.is_interface_gone() => {
                    shared.stop(format!("interface {} was removed", tun.name()));
                    break;
                }
                Err(e) => {
                    log::warn!("TUN read: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        };
        let t = tun.truncated();
        if t != truncated {
            DatapathStats::count(&shared.stats.tun_read_errors, t - truncated);
            truncated = t;
        }
        if n > 0 {
            tx.process(&shared, n);
        }
    }
}

impl Tx {
    /// Encrypts the `n` reads and sends them, in as many arena loads as they need.
    fn process(&mut self, shared: &Shared, n: usize) {
        let mut i = 0;
        while i < n {
            let next = self.fill(shared, i, n);
            if self.slots.is_empty() && next == i {
                // Cannot happen: an empty arena holds any read (checked in `fill`).
                i += 1;
                continue;
            }
            i = next;
            let sock = self.prepare(shared);
            for (start, len, dst, job) in self.jobs.drain(..) {
                let n = job.seal(&mut self.arena[start..start + len]);
                if n == len {
                    self.sent.push((start, len, dst));
                }
            }
            self.send(shared, &sock);
        }
    }

    /// Copies reads `from..n` into the arena as slots, without the lock, until one does not
    /// fit; returns the first read left over.
    fn fill(&mut self, shared: &Shared, from: usize, n: usize) -> usize {
        for i in from..n {
            let frame_len = self.sizes[i];
            let (hdr, len) = if self.vnet {
                match frame_len.checked_sub(VIRTIO_NET_HDR_LEN) {
                    Some(len) => {
                        let at = TRANSPORT_HEADER_SIZE - VIRTIO_NET_HDR_LEN;
                        // The read put at least VIRTIO_NET_HDR_LEN bytes there.
                        (
                            VirtioNetHdr::parse(&self.reads[i][at..]).unwrap_or_default(),
                            len,
                        )
                    }
                    None => {
                        DatapathStats::count(&shared.stats.tun_read_errors, 1);
                        continue;
                    }
                }
            } else {
                (VirtioNetHdr::default(), frame_len)
            };
            let packet = &mut self.reads[i][TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len];
            let split = if hdr.is_gso() {
                match GsoSplit::new(&hdr, packet) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        log::debug!("TUN super-packet dropped: {e}");
                        DatapathStats::count(&shared.stats.tun_read_errors, 1);
                        continue;
                    }
                }
            } else {
                if hdr.needs_csum() && complete_checksum(&hdr, packet).is_err() {
                    DatapathStats::count(&shared.stats.tun_read_errors, 1);
                    continue;
                }
                None
            };
            let need = match &split {
                Some(s) => s.segments() * (s.max_segment_len() + PER_PACKET_OVERHEAD),
                None => len + PER_PACKET_OVERHEAD,
            };
            if need > self.arena.len() {
                DatapathStats::count(&shared.stats.tun_read_errors, 1);
                continue;
            }
            if self.used + need > self.arena.len() {
                return i;
            }
            match split {
                Some(mut split) => {
                    DatapathStats::count(&shared.stats.gso_reads, 1);
                    loop {
                        let at = self.used + TRANSPORT_HEADER_SIZE;
                        match split.next_into(&mut self.arena[at..]) {
                            Ok(Some(seg)) => {
                                add_slot(&mut self.slots, &mut self.used, self.mtu, seg)
                            }
                            // BufferTooSmall cannot happen: `need` covered every segment.
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                None => {
                    let at = self.used + TRANSPORT_HEADER_SIZE;
                    self.arena[at..at + len].copy_from_slice(packet);
                    add_slot(&mut self.slots, &mut self.used, self.mtu, len);
                }
            }
        }
        n
    }

    /// Under one lock: routes every slot and assigns its counter, collects the device's own
    /// datagrams; returns the socket to send on.
    fn prepare(&mut self, shared: &Shared) -> Arc<UdpSocket> {
        let mut st = shared.lock();
        let now = state::now();
        for (start, len, size) in self.slots.drain(..) {
            // A datagram longer than its slot (the MTU grew since `fill`) is dropped by
            // prepare_packet (BufferTooSmall); a shorter one leaves a gap that ends a GSO run.
            match st
                .device
                .prepare_packet(now, &mut self.arena[start..start + size], len)
            {
                Prepared::Seal { endpoint, job, .. } => {
                    self.jobs.push((start, job.len(), endpoint, job));
                }
                Prepared::Queued { .. } => {}
                Prepared::Dropped(r) => log::trace!("outgoing packet dropped: {r}"),
            }
        }
        self.mtu = st.device.mtu();
        drain(&mut st, &mut self.out, &mut self.scratch);
        nudge_timer(shared, &st);
        st.socket.clone()
    }

    /// Sends the arena's datagrams, grouped for GSO, then the device's own; empties the arena.
    fn send(&mut self, shared: &Shared, sock: &UdpSocket) {
        let mut msgs: Vec<Transmit<'_>> = Vec::with_capacity(self.sent.len().min(BATCH * 4));
        let mut i = 0;
        while i < self.sent.len() {
            let (j, end) = gso_run(&self.sent[i..], self.gso);
            let (start, size, dst) = self.sent[i];
            let msg = Transmit::new(dst, &self.arena[start..end]);
            msgs.push(if j > 1 {
                msg.with_segment_size(size as u16)
            } else {
                msg
            });
            i += j;
        }
        if !send_all(shared, sock, &msgs) && self.gso {
            log::warn!("UDP GSO refused by the kernel; sending datagrams one by one");
            self.gso = false;
        }
        self.sent.clear();
        self.used = 0;
        send_outbox(sock, &mut self.out);
    }
}

/// Records the packet of `len` bytes just written at `used + TRANSPORT_HEADER_SIZE` as a slot
/// as long as its datagram will be (padding for the MTU last seen under the lock).
fn add_slot(slots: &mut Vec<(usize, usize, usize)>, used: &mut usize, mtu: usize, len: usize) {
    let size = TRANSPORT_OVERHEAD + padded_len(len, mtu);
    slots.push((*used, len, size));
    *used += size;
}

/// How many of the datagrams `sent` (start, length, destination) at the front go out as one
/// UDP GSO send, and where in the arena that send ends: back to back in the arena, to the same
/// destination, all of the first one's size except a shorter last, at most
/// [`GSO_MAX_SEGMENTS`] and [`MAX_GSO_BYTES`]. Always at least one; exactly one without `gso`.
fn gso_run(sent: &[(usize, usize, SocketAddr)], gso: bool) -> (usize, usize) {
    let Some(&(start, size, dst)) = sent.first() else {
        return (0, 0);
    };
    let (mut end, mut n) = (start + size, 1);
    while gso && n < sent.len() && n < GSO_MAX_SEGMENTS {
        let (s, l, d) = sent[n];
        if d != dst || s != end || l > size || end - start + l > MAX_GSO_BYTES {
            break;
        }
        end += l;
        n += 1;
        if l < size {
            break;
        }
    }
    (n, end)
}

/// Sends a batch, skipping a destination that fails so one bad endpoint cannot stall others.
/// A GSO message that fails is retried as single datagrams; returns false if that happened.
fn send_all(shared: &Shared, sock: &UdpSocket, msgs: &[Transmit<'_>]) -> bool {
    let mut gso_ok = true;
    let mut done = 0;
    while done < msgs.len() {
        match sock.send_batch(&msgs[done..], Some(Duration::from_secs(1))) {
            Ok(0) => {
                let rest: usize = msgs[done..].iter().map(datagrams).sum();
                DatapathStats::count(&shared.stats.udp_send_errors, rest as u64);
                break;
            }
            Ok(k) => done += k,
            Err(e) => {
                let msg = msgs[done];
                match msg.segment_size {
                    Some(size) if !matches!(e, ferrowg_sys::Error::AddressFamily { .. }) => {
                        gso_ok = false;
                        for seg in msg.contents.chunks(usize::from(size)) {
                            if sock.send_to(seg, msg.dst).is_err() {
                                DatapathStats::count(&shared.stats.udp_send_errors, 1);
                            }
                        }
                    }
                    _ => {
                        log::debug!("send to {}: {e}", msg.dst);
                        DatapathStats::count(&shared.stats.udp_send_errors, datagrams(&msg) as u64);
                    }
                }
                done += 1;
            }
        }
    }
    gso_ok
}

/// How many datagrams a message makes.
fn datagrams(m: &Transmit<'_>) -> usize {
    m.segment_size
        .map_or(1, |s| m.contents.len().div_ceil(usize::from(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(sizes: &[(usize, u16)], gso: bool) -> Vec<usize> {
        let mut sent = Vec::new();
        let mut at = 0;
        for &(len, port) in sizes {
            sent.push((at, len, SocketAddr::from(([10, 0, 0, 1], port))));
            at += len;
        }
        let mut runs = Vec::new();
        let mut i = 0;
        while i < sent.len() {
            let (n, end) = gso_run(&sent[i..], gso);
            let (start, ..) = sent[i];
            assert_eq!(
                end - start,
                sent[i..i + n].iter().map(|s| s.1).sum::<usize>()
            );
            runs.push(n);
            i += n;
        }
        runs
    }

    #[test]
    fn runs_split_on_destination_size_and_limits() {
        // Equal sizes, a shorter last one ends the run, a larger one starts a new run.
        let v = [
            (1452, 1),
            (1452, 1),
            (1452, 1),
            (900, 1),
            (1452, 1),
            (1452, 2),
            (1452, 2),
        ];
        assert_eq!(run(&v, true), [4, 1, 2]);
        assert_eq!(run(&v, false), [1; 7]);
        // A smaller then larger datagram: the larger cannot follow.
        assert_eq!(run(&[(100, 1), (200, 1)], true), [1, 1]);
        // Byte limit: 45 x 1452 fit in 64 KiB, 46 do not.
        assert_eq!(run(&[(1452, 1); 100], true), [45, 45, 10]);
        // Segment limit.
        assert_eq!(run(&[(100, 1); 130], true), [64, 64, 2]);
        assert_eq!(run(&[], true), Vec::<usize>::new());
    }
}
