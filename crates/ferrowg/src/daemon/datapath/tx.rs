//! TUN → encrypt → UDP.
//!
//! A batch of TUN reads lands in per-read buffers. Each read is one IP packet or, with the
//! virtio-net header, possibly a TSO/USO super-packet; either way its packets are written back
//! to back into one send arena (super-packets cut by [`GsoSplit`], partial checksums completed)
//! at [`TRANSPORT_HEADER_SIZE`] past their slot, and encrypted in place there, all under one
//! lock of the state. Consecutive datagrams to the same endpoint with the same size (the last
//! may be shorter) then leave as one UDP GSO send (`UDP_SEGMENT`), all of them in one
//! `sendmmsg`. If the kernel refuses GSO (`EIO` on a path without checksum offload, for one),
//! the thread falls back to one datagram each for good.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferrowg_proto::device::Outgoing;
use ferrowg_proto::TRANSPORT_HEADER_SIZE;
use ferrowg_sys::{
    PageBuf, Transmit, TunQueue, UdpSocket, VirtioNetHdr, GSO_MAX_SEGMENTS, VIRTIO_NET_HDR_LEN,
};

use super::{
    drain, nudge_timer, send_outbox, DatapathStats, Outbox, Shared, BATCH, BUF_SIZE, POLL,
};
use crate::daemon::offload::{complete_checksum, GsoSplit};
use crate::daemon::state::{self, State};

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
    /// Bytes of the arena in use.
    used: usize,
    /// Use UDP GSO (until the kernel refuses it).
    gso: bool,
    vnet: bool,
    scratch: PageBuf,
    out: Outbox,
}

/// The send arena's parts, borrowed apart from the read buffers.
struct Arena<'a> {
    buf: &'a mut [u8],
    used: &'a mut usize,
    sent: &'a mut Vec<(usize, usize, SocketAddr)>,
}

impl Arena<'_> {
    /// Encrypts the packet of `len` bytes at `used + TRANSPORT_HEADER_SIZE` in place.
    fn seal(&mut self, st: &mut State, now: ferrowg_proto::Instant, len: usize) {
        match st
            .device
            .handle_packet(now, &mut self.buf[*self.used..], len)
        {
            Outgoing::Send { endpoint, len, .. } => {
                self.sent.push((*self.used, len, endpoint));
                *self.used += len;
            }
            Outgoing::Queued { .. } => {}
            Outgoing::Dropped(r) => log::trace!("outgoing packet dropped: {r}"),
        }
    }
}

/// TUN → device → UDP.
pub fn tun_to_udp(shared: Arc<Shared>, tun: Arc<TunQueue>) {
    let vnet = tun.has_vnet_hdr();
    let mut tx = Tx {
        reads: PageBuf::many(BATCH, BUF_SIZE),
        sizes: [0; BATCH],
        arena: PageBuf::zeroed(ARENA_SIZE),
        sent: Vec::with_capacity(ARENA_SIZE / 64),
        used: 0,
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
    /// Encrypts the `n` reads and sends them, flushing whenever the arena fills.
    fn process(&mut self, shared: &Shared, n: usize) {
        let mut st = shared.lock();
        let mut now = state::now();
        for i in 0..n {
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
            let need = if hdr.is_gso() {
                match GsoSplit::new(&hdr, packet) {
                    Ok(s) => {
                        DatapathStats::count(&shared.stats.gso_reads, 1);
                        s.segments() * (s.max_segment_len() + PER_PACKET_OVERHEAD)
                    }
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
                len + PER_PACKET_OVERHEAD
            };
            if need > self.arena.len() {
                DatapathStats::count(&shared.stats.tun_read_errors, 1);
                continue;
            }
            if self.used + need > self.arena.len() {
                let sock = self.finish_locked(shared, &mut st);
                drop(st);
                self.send(shared, &sock);
                st = shared.lock();
                now = state::now();
            }
            self.encrypt_read(&mut st, now, i, hdr, len);
        }
        let sock = self.finish_locked(shared, &mut st);
        drop(st);
        self.send(shared, &sock);
    }

    /// Puts the packets of read `i` into the arena and encrypts them there. The caller made
    /// sure they fit.
    fn encrypt_read(
        &mut self,
        st: &mut State,
        now: ferrowg_proto::Instant,
        i: usize,
        hdr: VirtioNetHdr,
        len: usize,
    ) {
        let packet = &self.reads[i][TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len];
        let mut arena = Arena {
            buf: &mut self.arena,
            used: &mut self.used,
            sent: &mut self.sent,
        };
        if !hdr.is_gso() {
            let at = *arena.used + TRANSPORT_HEADER_SIZE;
            arena.buf[at..at + len].copy_from_slice(packet);
            arena.seal(st, now, len);
            return;
        }
        // GsoSplit::new succeeded on this packet in process().
        let Ok(mut split) = GsoSplit::new(&hdr, packet) else {
            return;
        };
        loop {
            let at = *arena.used + TRANSPORT_HEADER_SIZE;
            match split.next_into(&mut arena.buf[at..]) {
                Ok(Some(seg)) => arena.seal(st, now, seg),
                // BufferTooSmall cannot happen: `need` covered every segment.
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// With the lock still held: collects the device's own datagrams and returns the socket.
    fn finish_locked(&mut self, shared: &Shared, st: &mut State) -> Arc<UdpSocket> {
        drain(st, &mut self.out, &mut self.scratch);
        nudge_timer(shared, st);
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
