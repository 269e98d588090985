//! TUN → encrypt → UDP: the reading stage.
//!
//! A batch of TUN reads lands in per-read buffers. Each read is one IP packet or, with the
//! virtio-net header, possibly a TSO/USO super-packet; either way its packets are written back
//! to back into a send arena (super-packets cut by [`GsoSplit`], partial checksums completed)
//! at [`TRANSPORT_HEADER_SIZE`] past their slot, each slot as long as its datagram will be.
//! Only then is the state locked, once, to route each packet and assign its counter
//! ([`ferrowg_proto::Device::prepare_packet`]). The arena then goes to the sealing stage
//! ([`super::seal`]), which encrypts and sends it after the lock is released.
//!
//! All of this is a [`Sender`]: a data-path thread runs it when the TUN queue is readable
//! ([`Sender::drain`]), and the thread that has just written packets to the TUN device borrows
//! it for the one read that answers them ([`Sender::reply`]).

use std::sync::{Arc, Mutex, TryLockError};
use std::time::Duration;

use ferrowg_proto::messages::{padded_len, TRANSPORT_OVERHEAD};
use ferrowg_proto::{Prepared, TRANSPORT_HEADER_SIZE};
use ferrowg_sys::{PageBuf, TunQueue, VirtioNetHdr, VIRTIO_NET_HDR_LEN};

use super::seal::{seal_thread_wanted, Datagram, Job, Load, Pipe, ARENA_SIZE};
use super::shared::Shared;
use super::stats::DatapathStats;
use super::{BATCH, BUF_SIZE};
use crate::offload::{complete_checksum, GsoSplit, PacketRef};
use crate::state;

/// Worst-case growth of one packet by encryption: header, tag and padding.
const PER_PACKET_OVERHEAD: usize = 32 + 16;

/// The reading stage's buffers, allocated once.
struct Tx {
    reads: Vec<PageBuf>,
    sizes: [usize; BATCH],
    /// The load being filled.
    load: Load,
    /// Packets copied into the load's arena, not yet prepared.
    slots: Vec<Slot>,
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

/// A packet copied into the arena, its datagram not yet prepared.
struct Slot {
    /// Where the datagram starts in the arena (the packet is [`TRANSPORT_HEADER_SIZE`] further).
    start: usize,
    /// Length of the IP packet.
    len: usize,
    /// Room for the datagram: header, padded packet and tag.
    size: usize,
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
            pipe: Pipe::new(shared, seal_thread_wanted()),
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
                Ok(Pumped { reads: 0, .. }) => return packets,
                Ok(pumped) => {
                    packets += pumped.packets;
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
    /// thread, instead of waking the other thread (whose CPU may have to be woken first, which
    /// adds to the round trip). Does nothing if another thread is sending: it will get there
    /// itself. Errors are left to [`Sender::drain`] to see and report.
    ///
    /// Returns how many reads there were, `None` if another thread is sending or the read
    /// failed.
    pub fn reply(&self, shared: &Shared, tun: &TunQueue) -> Option<usize> {
        let mut tx = match self.tx.try_lock() {
            Ok(tx) => tx,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let n = tx.pump(shared, tun, REPLY_READS).ok()?.reads;
        DatapathStats::count(&shared.stats.replies, n as u64);
        Some(n)
    }

    /// For the receiving stage: routes, encrypts and sends `packets` (IP packets in `bufs`,
    /// decrypted from one peer and allowed on to another, [`super::forward`]) as if read
    /// from the TUN device. Waits for a thread that is sending to finish its batch.
    pub(super) fn forward(&self, shared: &Shared, bufs: &[PageBuf], packets: &[PacketRef]) {
        let mut tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = 0;
        for packet in packets.iter().filter_map(|p| p.get(bufs)) {
            let need = packet.len() + PER_PACKET_OVERHEAD;
            if need > tx.load.arena.len() {
                continue;
            }
            if tx.used + need > tx.load.arena.len() && !tx.slots.is_empty() {
                tx.flush(shared);
            }
            let at = tx.used + TRANSPORT_HEADER_SIZE;
            tx.load.arena[at..at + packet.len()].copy_from_slice(packet);
            let (mtu, len) = (tx.mtu, packet.len());
            let Tx { slots, used, .. } = &mut *tx;
            add_slot(slots, used, mtu, len);
            sent += 1;
        }
        if !tx.slots.is_empty() {
            tx.flush(shared);
        }
        DatapathStats::count(&shared.stats.forwarded, sent);
    }
}

/// What one [`Tx::pump`] did.
struct Pumped {
    /// TUN reads.
    reads: usize,
    /// Packets they held (a super-packet counts as the packets it holds).
    packets: usize,
}

impl Tx {
    /// Reads up to `max` packets (or super-packets) already queued on `tun`, without waiting,
    /// and sends them.
    fn pump(&mut self, shared: &Shared, tun: &TunQueue, max: usize) -> ferrowg_sys::Result<Pumped> {
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
        Ok(Pumped {
            reads: n,
            packets: self.process(shared, n),
        })
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
            self.flush(shared);
        }
        packets
    }

    /// Prepares the slots in the arena and hands the load to the sealing stage (which
    /// encrypts and sends it, with the device's own datagrams); the next load starts empty.
    fn flush(&mut self, shared: &Shared) {
        self.prepare(shared);
        let full = std::mem::replace(&mut self.load, Load::empty());
        self.load = self.pipe.submit(shared, full);
        self.used = 0;
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
        for Slot { start, len, size } in self.slots.drain(..) {
            // A datagram longer than its slot (the MTU grew since `fill`) is dropped by
            // prepare_packet (BufferTooSmall); a shorter one leaves a gap that ends a GSO run.
            match st
                .device
                .prepare_packet(now, &mut self.load.arena[start..start + size], len)
            {
                Prepared::Seal { endpoint, job, .. } => {
                    let datagram = Datagram {
                        start,
                        len: job.len(),
                        dst: endpoint,
                    };
                    self.load.jobs.push(Job { datagram, job });
                }
                Prepared::Queued { .. } => {}
                Prepared::Dropped(r) => log::trace!("outgoing packet dropped: {r}"),
            }
        }
        self.mtu = st.device.mtu();
        self.load.out.take(&mut st, &mut self.scratch);
        shared.nudge(&st);
        self.load.sock = Some(st.socket.clone());
    }
}

/// Records the packet of `len` bytes just written at `used + TRANSPORT_HEADER_SIZE` as a slot
/// as long as its datagram will be (padding for the MTU last seen under the lock).
fn add_slot(slots: &mut Vec<Slot>, used: &mut usize, mtu: usize, len: usize) {
    let size = TRANSPORT_OVERHEAD + padded_len(len, mtu);
    slots.push(Slot {
        start: *used,
        len,
        size,
    });
    *used += size;
}
