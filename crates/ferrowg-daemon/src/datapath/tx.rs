//! TUN → encrypt → UDP.
//!
//! A batch of TUN reads lands in per-read buffers. Each read is one IP packet or, with the
//! virtio-net header, possibly a TSO/USO super-packet; either way its packets are written back
//! to back into a send arena (super-packets cut by [`GsoSplit`], partial checksums completed)
//! at [`TRANSPORT_HEADER_SIZE`] past their slot, each slot as long as its datagram will be.
//! Only then is the state locked, once, to route each packet and assign its counter
//! ([`ferrowg_proto::Device::prepare_packet`]). The encryption ([`SealJob::seal`]) runs after
//! the lock is released, so the receiving stage is never kept waiting by it: in this thread, or,
//! with more than two CPUs (or `FERROWG_SEAL_THREAD=1`), on a sealing thread that takes whole
//! arenas in order through a bounded queue while this one reads on. Consecutive datagrams to
//! the same endpoint with the same size (the last may be shorter) then leave as one UDP GSO
//! send (`UDP_SEGMENT`), all of them in one `sendmmsg`. If the kernel refuses GSO (`EIO` on a
//! path without checksum offload, for one), the stage falls back to one datagram each for good.
//!
//! All of this is a [`Sender`]: a data-path thread runs it when the TUN queue is readable
//! ([`Sender::drain`]), and the thread that has just written packets to the TUN device borrows
//! it for the one read that answers them ([`Sender::reply`]).

use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use ferrowg_proto::messages::{padded_len, TRANSPORT_OVERHEAD};
use ferrowg_proto::{seal_batch, Prepared, SealJob, TRANSPORT_HEADER_SIZE};
use ferrowg_sys::{
    PageBuf, Transmit, TunQueue, UdpSocket, VirtioNetHdr, GSO_MAX_SEGMENTS, VIRTIO_NET_HDR_LEN,
};

use super::{
    drain, nudge_timer, send_outbox, split_spans, DatapathStats, Outbox, Shared, BATCH, BUF_SIZE,
};
use crate::offload::{complete_checksum, GsoSplit};
use crate::state;

/// Size of the send arena: the encrypted datagrams of (at least) one full super-packet, and of
/// about 16 per flush.
const ARENA_SIZE: usize = 1 << 20;
/// Worst-case growth of one packet by encryption: header, tag and padding.
const PER_PACKET_OVERHEAD: usize = 32 + 16;
/// Most bytes in one UDP GSO send: a 64 KiB IP packet minus IPv6 and UDP headers.
const MAX_GSO_BYTES: usize = 65535 - 40 - 8;

/// The reading stage's buffers, allocated once.
struct Tx {
    reads: Vec<PageBuf>,
    sizes: [usize; BATCH],
    /// The load being filled.
    load: Load,
    /// Packets copied into the load's arena, not yet prepared: (start, packet length, slot
    /// size).
    slots: Vec<(usize, usize, usize)>,
    /// Bytes of the arena in use.
    used: usize,
    /// The device's MTU as last seen (it decides the padding, hence each slot's size).
    mtu: usize,
    vnet: bool,
    scratch: PageBuf,
    pipe: Pipe,
    /// The TUN queue's count of truncated reads, as last seen.
    truncated: u64,
}

/// One arena of prepared datagrams on its way to the sealing stage, and back empty.
struct Load {
    arena: PageBuf,
    /// Prepared, not yet sealed: (start, datagram length, destination, job).
    jobs: Vec<(usize, usize, SocketAddr, SealJob)>,
    /// The device's own datagrams (handshakes, keepalives, staged data), sent after the arena.
    out: Outbox,
    sock: Option<Arc<UdpSocket>>,
}

impl Load {
    fn new() -> Self {
        Load {
            arena: PageBuf::zeroed(ARENA_SIZE),
            jobs: Vec::with_capacity(ARENA_SIZE / 64),
            out: Outbox::default(),
            sock: None,
        }
    }
}

/// The sealing stage: encrypts a load's datagrams and sends them.
struct Sealer {
    /// Sealed datagrams in the arena: (start, length, destination).
    sent: Vec<(usize, usize, SocketAddr)>,
    /// Use UDP GSO (until the kernel refuses it).
    gso: bool,
}

/// Where prepared loads go: sealed in the reading thread, or handed to a sealing thread (the
/// second core) through a bounded queue, in order, so a peer's packets stay in order.
enum Pipe {
    Inline(Sealer),
    Thread {
        work: SyncSender<Load>,
        free: Receiver<Load>,
    },
}

/// Loads in flight per sealing thread, besides the one being filled.
const LOADS_IN_FLIGHT: usize = 2;

/// Whether to seal on a thread of its own: `FERROWG_SEAL_THREAD=0`/`1` decides, else only
/// with more than two CPUs. On two CPUs with both tunnel ends on the same machine
/// (bench/tunnel.sh), the extra hand-over cost about 7 % of TCP throughput (8 paired runs), as
/// each end's sending and receiving threads already keep both CPUs busy.
fn seal_thread_wanted() -> bool {
    match std::env::var("FERROWG_SEAL_THREAD").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => std::thread::available_parallelism().is_ok_and(|n| n.get() > 2),
    }
}

impl Pipe {
    fn new(shared: &Arc<Shared>) -> Pipe {
        let sealer = Sealer::new();
        if !seal_thread_wanted() {
            return Pipe::Inline(sealer);
        }
        let (work, todo) = sync_channel::<Load>(LOADS_IN_FLIGHT);
        let (done, free) = sync_channel::<Load>(LOADS_IN_FLIGHT);
        for _ in 0..LOADS_IN_FLIGHT {
            // Invariant: the queue has room for exactly these loads.
            let _ = done.try_send(Load::new());
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("seal".into())
            .spawn(move || {
                let mut sealer = sealer;
                // Ends when the reading stage drops its sender.
                while let Ok(mut load) = todo.recv() {
                    sealer.run(&s, &mut load);
                    if done.send(load).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => {
                log::info!("encrypting on a sealing thread of its own");
                Pipe::Thread { work, free }
            }
            Err(e) => {
                log::warn!("cannot start the sealing thread ({e}); sealing inline");
                Pipe::Inline(Sealer::new())
            }
        }
    }

    /// Seals and sends `load` (here or on the sealing thread) and returns an empty load to
    /// fill next.
    fn submit(&mut self, shared: &Shared, mut load: Load) -> Load {
        match self {
            Pipe::Inline(sealer) => {
                sealer.run(shared, &mut load);
                load
            }
            Pipe::Thread { work, free } => {
                if let Err(e) = work.send(load) {
                    // The sealing thread is gone (it never exits first): seal here.
                    let mut load = e.0;
                    let mut sealer = Sealer::new();
                    sealer.run(shared, &mut load);
                    *self = Pipe::Inline(sealer);
                    return load;
                }
                // Invariant: LOADS_IN_FLIGHT loads circulate and one was just queued, so one
                // comes back once the sealer is done with it.
                free.recv().unwrap_or_else(|_| Load::new())
            }
        }
    }
}

/// The sending half of one TUN queue. A data-path thread runs it ([`Sender::drain`]); the
/// receiving stage may borrow it for a moment to send a reply right away ([`Sender::reply`]).
/// Whoever reads the TUN queue holds the lock until the packets read are sent, so they leave
/// in the order they were read.
pub struct Sender {
    tx: Mutex<Tx>,
}

/// Most TUN reads [`Sender::reply`] takes: one, the answer to what was just written (in a bulk
/// transfer, the thread in [`Sender::drain`] takes the rest; one read may be a 64 KiB
/// super-packet).
const REPLY_READS: usize = 1;

impl Sender {
    /// The sending half of `tun`, with its buffers (and sealing thread, if any).
    pub fn new(shared: &Arc<Shared>, tun: &TunQueue) -> Sender {
        let vnet = tun.has_vnet_hdr();
        let tx = Tx {
            reads: PageBuf::many(BATCH, BUF_SIZE),
            sizes: [0; BATCH],
            load: Load::new(),
            slots: Vec::with_capacity(ARENA_SIZE / 64),
            used: 0,
            mtu: shared.lock().device.mtu(),
            vnet,
            scratch: PageBuf::zeroed(BUF_SIZE),
            pipe: Pipe::new(shared),
            truncated: 0,
        };
        Sender { tx: Mutex::new(tx) }
    }

    /// TUN → device → UDP until the queue is empty (or the daemon stops); whichever data-path
    /// thread of the queue is free runs it when the queue becomes readable.
    ///
    /// The first read is sent on its own: a packet that woke an idle thread is most likely
    /// alone (a ping, a request), and looking for company first would put one more `read(2)`,
    /// answered `EAGAIN`, ahead of it on the wire. Under load the reads go on in whole batches
    /// and the thread does not come back here.
    ///
    /// Returns how many packets were read (a super-packet counts as the packets it holds).
    pub fn drain(&self, shared: &Shared, tun: &TunQueue) -> usize {
        let mut max = 1;
        let mut packets = 0;
        while !shared.stopping() {
            let read = {
                let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
                tx.pump(shared, tun, max)
            };
            match read {
                Ok((0, _)) => return packets,
                Ok((_, sent)) => {
                    packets += sent;
                    max = BATCH;
                }
                Err(e) if e.is_interface_gone() => {
                    shared.stop(format!("interface {} was removed", tun.name()));
                    return packets;
                }
                Err(e) => {
                    log::warn!("TUN read: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    return packets;
                }
            }
        }
        packets
    }

    /// For the receiving stage, right after it wrote a few packets to the TUN device: the
    /// kernel answers some packets during that very write (an echo reply, a TCP ACK, a DNS
    /// answer from a local server), so whatever is queued now is read and sent from the calling
    /// thread, instead of waking the other thread (on this VM, each cross-CPU wake-up costs
    /// tens of microseconds of round trip). Does nothing if another thread is sending: it will
    /// get there itself. Errors are left to [`Sender::drain`] to see and report.
    ///
    /// Returns how many reads there were, `None` if another thread is sending or the read
    /// failed.
    pub fn reply(&self, shared: &Shared, tun: &TunQueue) -> Option<usize> {
        let mut tx = match self.tx.try_lock() {
            Ok(tx) => tx,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let (n, _) = tx.pump(shared, tun, REPLY_READS).ok()?;
        DatapathStats::count(&shared.stats.replies, n as u64);
        Some(n)
    }
}

impl Tx {
    /// Reads up to `max` packets (or super-packets) already queued on `tun`, without waiting,
    /// and sends them; returns how many reads there were, and how many packets they held.
    fn pump(
        &mut self,
        shared: &Shared,
        tun: &TunQueue,
        max: usize,
    ) -> ferrowg_sys::Result<(usize, usize)> {
        // The IP packet starts at TRANSPORT_HEADER_SIZE whether or not a header precedes it.
        let read_at = if self.vnet {
            TRANSPORT_HEADER_SIZE - VIRTIO_NET_HDR_LEN
        } else {
            TRANSPORT_HEADER_SIZE
        };
        let reads = &mut self.reads[..max.min(BATCH)];
        let n = tun.read_batch_at(reads, read_at, &mut self.sizes, Some(Duration::ZERO))?;
        let t = tun.truncated();
        if t != self.truncated {
            DatapathStats::count(&shared.stats.tun_read_errors, t - self.truncated);
            self.truncated = t;
        }
        Ok((n, self.process(shared, n)))
    }

    /// Encrypts the `n` reads and sends them, in as many arena loads as they need; returns how
    /// many packets they held.
    fn process(&mut self, shared: &Shared, n: usize) -> usize {
        let mut packets = 0;
        let mut i = 0;
        while i < n {
            let next = self.fill(shared, i, n);
            if self.slots.is_empty() && next == i {
                // Cannot happen: an empty arena holds any read (checked in `fill`).
                i += 1;
                continue;
            }
            i = next;
            packets += self.slots.len();
            self.prepare(shared);
            let full = std::mem::replace(&mut self.load, Load::empty());
            self.load = self.pipe.submit(shared, full);
            self.used = 0;
        }
        packets
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
            if need > self.load.arena.len() {
                DatapathStats::count(&shared.stats.tun_read_errors, 1);
                continue;
            }
            if self.used + need > self.load.arena.len() {
                return i;
            }
            match split {
                Some(mut split) => {
                    DatapathStats::count(&shared.stats.gso_reads, 1);
                    loop {
                        let at = self.used + TRANSPORT_HEADER_SIZE;
                        match split.next_into(&mut self.load.arena[at..]) {
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
                    self.load.arena[at..at + len].copy_from_slice(packet);
                    add_slot(&mut self.slots, &mut self.used, self.mtu, len);
                }
            }
        }
        n
    }

    /// Under one lock: routes every slot and assigns its counter, collects the device's own
    /// datagrams and the socket to send on.
    fn prepare(&mut self, shared: &Shared) {
        let mut st = shared.lock();
        let now = state::now();
        for (start, len, size) in self.slots.drain(..) {
            // A datagram longer than its slot (the MTU grew since `fill`) is dropped by
            // prepare_packet (BufferTooSmall); a shorter one leaves a gap that ends a GSO run.
            match st
                .device
                .prepare_packet(now, &mut self.load.arena[start..start + size], len)
            {
                Prepared::Seal { endpoint, job, .. } => {
                    self.load.jobs.push((start, job.len(), endpoint, job));
                }
                Prepared::Queued { .. } => {}
                Prepared::Dropped(r) => log::trace!("outgoing packet dropped: {r}"),
            }
        }
        self.mtu = st.device.mtu();
        drain(&mut st, &mut self.load.out, &mut self.scratch);
        nudge_timer(shared, &st);
        self.load.sock = Some(st.socket.clone());
    }
}

impl Load {
    /// A placeholder while the real load is away (no memory).
    fn empty() -> Self {
        Load {
            arena: PageBuf::zeroed(0),
            jobs: Vec::new(),
            out: Outbox::default(),
            sock: None,
        }
    }
}

impl Sealer {
    fn new() -> Self {
        Sealer {
            sent: Vec::with_capacity(ARENA_SIZE / 64),
            gso: true,
        }
    }

    /// Seals the load's datagrams in place, sends them grouped for GSO, then the device's own;
    /// leaves the load empty.
    fn run(&mut self, shared: &Shared, load: &mut Load) {
        let views = split_spans(
            core::slice::from_mut(&mut load.arena),
            load.jobs
                .iter()
                .map(|&(start, len, ..)| (0, start, start + len)),
        );
        let sent = &mut self.sent;
        seal_batch(
            load.jobs
                .iter()
                .zip(views)
                .filter_map(|((start, len, dst, job), view)| {
                    // Invariant: `prepare` lays the datagrams out in order, so every view exists.
                    let view = view?;
                    sent.push((*start, *len, *dst));
                    Some((job, view))
                }),
        );
        load.jobs.clear();
        if let Some(sock) = load.sock.take() {
            self.send(shared, &sock, &load.arena);
            send_outbox(&sock, &mut load.out);
        }
        self.sent.clear();
        load.out.datagrams.clear();
    }

    /// Sends the sealed datagrams of `arena`, grouped for GSO.
    fn send(&mut self, shared: &Shared, sock: &UdpSocket, arena: &[u8]) {
        let mut msgs: Vec<Transmit<'_>> = Vec::with_capacity(self.sent.len().min(BATCH * 4));
        let mut i = 0;
        while i < self.sent.len() {
            let (j, end) = gso_run(&self.sent[i..], self.gso);
            let (start, size, dst) = self.sent[i];
            let msg = Transmit::new(dst, &arena[start..end]);
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
