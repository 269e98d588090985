//! UDP → decrypt → TUN.
//!
//! One `recvmmsg` fills up to [`BATCH`] 64 KiB buffers; with UDP GRO on, each may hold many
//! datagrams of one sender glued together, cut apart again by the `stride` the kernel reports.
//! The state is locked once to find each datagram's session
//! ([`ferrowg_proto::Device::begin_datagram`]; handshake messages are admitted there and go to
//! the handshake worker, `handshakes.rs`), the
//! datagrams are decrypted in place without the lock ([`ferrowg_proto::OpenJob::open`]), and the
//! state is locked once more for the replay checks and bookkeeping
//! ([`ferrowg_proto::Device::finish_datagram`]). Then, with the TUN
//! device's virtio-net header, the packets go through the [`Coalescer`] (TCP runs and, with
//! USO, UDP runs become super-packets) and each frame is one `writev(2)` gathered from the
//! receive buffers; without it, each packet is written as it lies in the receive buffer.

use std::io::IoSlice;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use ferrowg_proto::{open_batch, Begin, DropReason, Incoming, OpenJob, TRANSPORT_HEADER_SIZE};
use ferrowg_sys::{Offload, PageBuf, Poller, RecvMeta, TunQueue, UdpSocket};

use super::forward::{self, Hop};
use super::outbox::Outbox;
use super::placement::LIGHT_PACKETS;
use super::shared::Shared;
use super::spans::split_spans;
use super::stats::DatapathStats;
use super::tx::Sender;
use super::{BATCH, BUF_SIZE, TUN_TOKEN, UDP_TOKEN};
use crate::offload::{Coalescer, PacketRef};
use crate::state::{self, State};

/// The receiving half of one TUN queue: UDP → device → TUN. Whichever data-path thread of the
/// queue is free runs it ([`Receiver::drain`]) when the socket becomes readable.
pub struct Receiver {
    rx: Mutex<Rx>,
}

/// What [`Receiver::drain`] leaves behind.
pub struct Drained {
    /// The socket to arm again (the device's socket may have been replaced meanwhile).
    pub sock: Arc<UdpSocket>,
    /// How many packets were delivered.
    pub packets: usize,
}

/// The receiving stage's buffers (allocated once) and the socket it reads.
struct Rx {
    bufs: Vec<PageBuf>,
    metas: [RecvMeta; BATCH],
    /// Where each decrypted IP packet for the TUN device lies in `bufs`.
    deliver: Vec<PacketRef>,
    /// Decrypted packets bound for another peer, before the policy decided.
    hops: Vec<Hop>,
    /// Decrypted packets the policy lets through to another peer.
    forward: Vec<PacketRef>,
    jobs: Vec<Job>,
    coalescer: Option<Coalescer>,
    scratch: PageBuf,
    out: Outbox,
    sock: Arc<UdpSocket>,
    /// The state's socket generation `sock` belongs to.
    generation: u64,
    replies: ReplyBackoff,
}

/// Whether a small batch is worth a reply attempt ([`Sender::reply`]). At the end of a tunnel
/// that starts the exchanges (the ping sender, the client), the kernel has no immediate answer
/// to what is written, and each attempt only costs two `epoll_ctl` and a `read` answered
/// `EAGAIN`. So after an attempt that found nothing, the next 1, 2, 4, … 64 small batches go
/// without one; an attempt that finds an answer ends the backoff.
#[derive(Debug, Default)]
struct ReplyBackoff {
    /// Small batches to skip after the last miss.
    backoff: u8,
    /// Small batches still to skip.
    skip: u8,
}

/// Most small batches skipped between two reply attempts.
const REPLY_BACKOFF_MAX: u8 = 64;

impl ReplyBackoff {
    /// Called for each small batch: whether to attempt a reply after it.
    fn wanted(&mut self) -> bool {
        if self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }

    /// The outcome of an attempt: `found` if it sent something.
    fn record(&mut self, found: bool) {
        if found {
            self.backoff = 0;
        } else {
            self.backoff = (self.backoff.saturating_mul(2)).clamp(1, REPLY_BACKOFF_MAX);
        }
        self.skip = self.backoff;
    }
}

impl Receiver {
    /// The receiving half of `tun`. `offload` is what the TUN device accepts (USO decides
    /// whether UDP is coalesced).
    pub fn new(shared: &Shared, tun: &TunQueue, offload: Offload) -> Receiver {
        let (sock, generation) = {
            let st = shared.lock();
            (st.socket.clone(), st.socket_generation)
        };
        enable_gro(&sock);
        let rx = Rx {
            bufs: PageBuf::many(BATCH, BUF_SIZE),
            metas: [RecvMeta::default(); BATCH],
            deliver: Vec::with_capacity(BATCH * 64),
            hops: Vec::new(),
            forward: Vec::new(),
            jobs: Vec::with_capacity(BATCH * 64),
            coalescer: tun
                .has_vnet_hdr()
                .then(|| Coalescer::new(BATCH, offload.uso)),
            scratch: PageBuf::zeroed(BUF_SIZE),
            out: Outbox::default(),
            sock,
            generation,
            replies: ReplyBackoff::default(),
        };
        Receiver { rx: Mutex::new(rx) }
    }

    /// The socket this stage reads now.
    pub fn socket(&self) -> Arc<UdpSocket> {
        self.lock().sock.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Rx> {
        self.rx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Receives, decrypts and delivers batches until the socket has nothing more queued (or the
    /// daemon stops). Returns the socket to arm again in `poller`: the device's socket may have
    /// been replaced (a new listen port) meanwhile, and then the new one is already registered.
    /// After a batch of at most `LIGHT_PACKETS` packets, the kernel's immediate answers to them
    /// are sent through `sender` from this thread ([`Sender::reply`]). Also returns how many
    /// packets were delivered.
    pub fn drain(
        &self,
        shared: &Shared,
        poller: &Poller,
        tun: &TunQueue,
        sender: &Sender,
    ) -> Drained {
        let mut guard = self.lock();
        let rx = &mut *guard;
        let mut packets = 0;
        while !shared.stopping() {
            let n = match rx
                .sock
                .recv_batch(&mut rx.bufs, &mut rx.metas, Some(Duration::ZERO))
            {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    log::warn!("UDP receive: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    break;
                }
            };
            // A few packets: the kernel's answers to them, made during the write, are sent from
            // this thread, with the TUN queue disarmed meanwhile (the other thread would only
            // wake to find them taken). Whatever is left then wakes a thread as usual.
            let delivered = rx.open(shared, poller, n);
            packets += delivered;
            let reply = delivered > 0 && delivered <= LIGHT_PACKETS && rx.replies.wanted();
            if reply {
                if let Err(e) = poller.disarm(tun, TUN_TOKEN) {
                    log::debug!("data path: {e}");
                }
            }
            rx.write(shared, tun);
            if !rx.forward.is_empty() {
                sender.forward(shared, &rx.bufs, &rx.forward);
            }
            if reply {
                if let Some(found) = sender.reply(shared, tun) {
                    rx.replies.record(found > 0);
                }
                if let Err(e) = poller.rearm(tun, TUN_TOKEN) {
                    log::warn!("data path: {e}");
                }
            }
        }
        Drained {
            sock: rx.sock.clone(),
            packets,
        }
    }

    /// Follows a replacement of the device's socket without waiting for a datagram on the old
    /// one (which may never come). Does nothing if another thread is receiving: it follows.
    pub fn follow_socket(&self, shared: &Shared, poller: &Poller) {
        let mut rx = match self.rx.try_lock() {
            Ok(rx) => rx,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        let rx = &mut *rx;
        follow(&shared.lock(), poller, &mut rx.sock, &mut rx.generation);
    }
}

/// Switches `sock` to the state's socket if that was replaced: the old one leaves `poller`,
/// the new one joins it, armed (`generation` follows only once it has).
fn follow(st: &State, poller: &Poller, sock: &mut Arc<UdpSocket>, generation: &mut u64) {
    if st.socket_generation == *generation {
        return;
    }
    // The old socket may already be closed elsewhere; either way it is no longer watched.
    let _ = poller.remove(&**sock);
    *sock = st.socket.clone();
    enable_gro(sock);
    match poller.add(&**sock, UDP_TOKEN) {
        Ok(()) => *generation = st.socket_generation,
        // Tried again at the next wait that times out.
        Err(e) => log::error!("cannot watch the new UDP socket: {e}"),
    }
}

impl Rx {
    /// Decrypts the `n` datagrams just received (following a replaced socket in `poller` on
    /// the way); returns how many packets there are to [`write`](Self::write).
    ///
    /// A batch is decrypted without the state lock, so that the sending stage is not kept
    /// waiting; but a few datagrams ([`OPEN_LOCKED`]) decrypt in less time than unlocking and
    /// locking again costs, and are decrypted under the one lock.
    fn open(&mut self, shared: &Shared, poller: &Poller, n: usize) -> usize {
        let Rx {
            bufs,
            metas,
            deliver,
            hops,
            forward,
            jobs,
            scratch,
            out,
            sock,
            generation,
            ..
        } = self;
        deliver.clear();
        hops.clear();
        forward.clear();
        let forwarding = shared.forwarding.as_deref();
        let mut st = shared.lock();
        follow(&st, poller, sock, generation);
        let mut now = state::now();
        begin(shared, &mut st, now, &metas[..n], bufs, jobs);
        if jobs.len() > OPEN_LOCKED {
            out.take(&mut st, scratch);
            shared.nudge(&st);
            drop(st);
            open_jobs(bufs, jobs);
            st = shared.lock();
            now = state::now();
        } else {
            open_jobs(bufs, jobs);
        }
        for j in jobs.drain(..) {
            let PacketRef { buf: b, start, len } = j.datagram;
            let src = metas[b].src;
            let buf = &mut bufs[b][start..start + len];
            match st.device.finish_datagram(now, src, buf, j.job, j.opened) {
                Incoming::Packet { len, peer } => {
                    let at = forward::packet_at(j.datagram, len);
                    let hop = forwarding.and_then(|_| {
                        let packet = buf.get(TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len)?;
                        forward::next_hop(&st, peer, packet, at)
                    });
                    match hop {
                        Some(hop) => hops.push(hop),
                        None => deliver.push(at),
                    }
                }
                Incoming::Dropped(r) => log::trace!("datagram from {src} dropped: {r}"),
                _ => {}
            }
        }
        out.take(&mut st, scratch);
        shared.nudge(&st);
        drop(st);
        if let Some(policy) = forwarding {
            decide(shared, policy, bufs, hops, forward);
        }
        deliver.len() + forward.len()
    }

    /// Writes the decrypted packets to `tun`, then sends what the device wants sent.
    fn write(&mut self, shared: &Shared, tun: &TunQueue) {
        let Rx {
            bufs,
            deliver,
            coalescer,
            out,
            sock,
            ..
        } = self;
        match coalescer.as_mut() {
            Some(c) => {
                for &p in deliver.iter() {
                    if !c.push(bufs, p) {
                        write_frames(shared, tun, c, bufs);
                        // An empty coalescer always takes a packet.
                        c.push(bufs, p);
                    }
                }
                if !c.is_empty() {
                    write_frames(shared, tun, c, bufs);
                }
            }
            None => {
                for p in deliver.iter().filter_map(|p| p.get(bufs)) {
                    if !write_one(shared, tun, &[IoSlice::new(p)]) {
                        break;
                    }
                }
            }
        }
        out.send(sock);
    }
}

/// Asks `policy` about each packet in `hops`, without the state lock; the ones it allows go to
/// `forward`, the others are counted and dropped.
fn decide(
    shared: &Shared,
    policy: &dyn forward::Forwarding,
    bufs: &mut [PageBuf],
    hops: &[Hop],
    forward: &mut Vec<PacketRef>,
) {
    for hop in hops {
        let allowed = hop
            .packet
            .get_mut(bufs)
            .is_some_and(|p| policy.allow(&hop.from, &hop.to, p));
        if allowed {
            forward.push(hop.packet);
        } else {
            DatapathStats::count(&shared.stats.forward_denied, 1);
        }
    }
}

/// Most datagrams decrypted under the state lock ([`Rx::open`]).
const OPEN_LOCKED: usize = 4;

/// Finds the session of each datagram described by `metas` (with GRO, several per buffer),
/// under the state lock: transport data becomes a job in `jobs`; handshake messages are
/// admitted (cookies under load, decided from the handshake queue's backlog) and queued for
/// the handshake worker; cookie replies are handled right away.
fn begin(
    shared: &Shared,
    st: &mut State,
    now: ferrowg_proto::Instant,
    metas: &[RecvMeta],
    bufs: &mut [PageBuf],
    jobs: &mut Vec<Job>,
) {
    st.device.set_under_load(shared.handshakes.under_load());
    for (i, m) in metas.iter().enumerate() {
        if m.truncated {
            DatapathStats::count(&shared.stats.udp_truncated, 1);
            continue;
        }
        let stride = if m.stride == 0 { m.len } else { m.stride };
        let mut off = 0;
        while off < m.len {
            let end = (off + stride).min(m.len);
            match st.device.begin_datagram(now, m.src, &mut bufs[i][off..end]) {
                Begin::Open(job) => jobs.push(Job {
                    datagram: PacketRef {
                        buf: i,
                        start: off,
                        len: end - off,
                    },
                    job,
                    opened: false,
                }),
                Begin::Handshake(job) => {
                    if !shared.handshakes.push(job) {
                        DatapathStats::count(&shared.stats.handshakes_dropped, 1);
                    }
                }
                Begin::Done(Incoming::Dropped(r)) => {
                    if r == DropReason::UnknownIndex {
                        if let Some(f) = &shared.forwarding {
                            f.unknown_session(m.src);
                        }
                    }
                    log::trace!("datagram from {} dropped: {r}", m.src)
                }
                Begin::Done(_) => {}
            }
            off = end;
        }
    }
}

/// Decrypts the jobs in place, in batches per session key.
fn open_jobs(bufs: &mut [PageBuf], jobs: &mut [Job]) {
    let views = split_spans(bufs, jobs.iter().map(|j| j.datagram));
    open_batch(
        jobs.iter_mut()
            .zip(views)
            .filter_map(|(Job { job, opened, .. }, v)| Some((&*job, v?, opened))),
    );
}

/// A transport datagram waiting to be decrypted.
struct Job {
    /// Where it lies in the receive buffers.
    datagram: PacketRef,
    /// Its session key and counter.
    job: OpenJob,
    /// Set once it decrypted and authenticated.
    opened: bool,
}

/// Asks for UDP GRO on `sock` (the receive buffers are 64 KiB, enough for any GRO batch).
fn enable_gro(sock: &UdpSocket) {
    if let Err(e) = sock.set_gro(true) {
        log::debug!("UDP GRO unavailable: {e}");
    }
}

/// Writes every frame of the coalescer to the TUN device and empties it.
fn write_frames(shared: &Shared, tun: &TunQueue, c: &mut Coalescer, bufs: &mut [PageBuf]) {
    c.flush(bufs, |frame| {
        // A frame starts with its virtio-net header, whose second byte is the GSO type:
        // non-zero for a super-packet.
        if frame
            .first()
            .and_then(|h| h.get(1))
            .is_some_and(|&t| t != 0)
        {
            DatapathStats::count(&shared.stats.gro_writes, 1);
        }
        write_one(shared, tun, frame)
    });
}

/// Writes one packet (or frame), gathered from `parts`; false once the interface is gone.
fn write_one(shared: &Shared, tun: &TunQueue, parts: &[IoSlice<'_>]) -> bool {
    match tun.write_vectored(parts, Some(Duration::from_secs(1))) {
        Ok(true) => true,
        Ok(false) => {
            DatapathStats::count(&shared.stats.tun_write_errors, 1);
            true
        }
        Err(e) if e.is_interface_gone() => {
            shared.stop(format!("interface {} was removed", tun.name()));
            false
        }
        Err(e) => {
            log::debug!("TUN write: {e}");
            DatapathStats::count(&shared.stats.tun_write_errors, 1);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern of attempts over `batches` small batches when every attempt finds `found`.
    fn attempts(b: &mut ReplyBackoff, batches: usize, found: bool) -> Vec<usize> {
        let mut at = Vec::new();
        for i in 0..batches {
            if b.wanted() {
                at.push(i);
                b.record(found);
            }
        }
        at
    }

    #[test]
    fn misses_back_off_exponentially_and_a_hit_ends_it() {
        let mut b = ReplyBackoff::default();
        // Hits: every batch tries.
        assert_eq!(attempts(&mut b, 5, true), [0, 1, 2, 3, 4]);
        // Misses: gaps of 1, 2, 4, … batches, capped at 64.
        assert_eq!(
            attempts(&mut b, 400, false),
            [0, 2, 5, 10, 19, 36, 69, 134, 199, 264, 329, 394]
        );
        // One hit, and every batch tries again.
        let mut b = ReplyBackoff::default();
        b.record(false);
        assert!(!b.wanted());
        assert!(b.wanted());
        b.record(true);
        assert_eq!(attempts(&mut b, 3, true), [0, 1, 2]);
    }
}
