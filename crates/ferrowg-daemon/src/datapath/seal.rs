//! TUN → encrypt → UDP: the sealing stage.
//!
//! The reading stage ([`super::tx`]) hands over a [`Load`]: an arena of prepared datagrams.
//! They are encrypted in place ([`ferrowg_proto::SealJob::seal`]) after the state lock is
//! released, so the receiving stage is never kept waiting by it: in the reading thread, or,
//! with more than two CPUs, on a sealing thread that takes whole arenas in order through a
//! bounded queue while the reading thread reads on ([`Pipe`]). Consecutive datagrams to the
//! same endpoint with the same size (the last may be shorter) then leave as one UDP GSO send
//! (`UDP_SEGMENT`), all of them in one `sendmmsg`. If the kernel refuses GSO (`EIO` on a path
//! without checksum offload, for one), the stage falls back to one datagram each for good.

use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use ferrowg_proto::{seal_batch, SealJob};
use ferrowg_sys::{PageBuf, Transmit, UdpSocket, GSO_MAX_SEGMENTS};

use super::outbox::Outbox;
use super::shared::Shared;
use super::spans::split_spans;
use super::stats::DatapathStats;
use super::BATCH;
use crate::offload::PacketRef;

/// Size of the send arena: the encrypted datagrams of (at least) one full super-packet, and of
/// about 16 per flush.
pub(super) const ARENA_SIZE: usize = 1 << 20;
/// Most bytes in one UDP GSO send: a 64 KiB IP packet minus IPv6 and UDP headers.
const MAX_GSO_BYTES: usize = 65535 - 40 - 8;

/// A datagram in the arena: prepared, on its way to be sealed; then sealed, on its way out.
#[derive(Clone, Copy)]
pub(super) struct Datagram {
    /// Where it starts in the arena.
    pub(super) start: usize,
    /// Its length.
    pub(super) len: usize,
    /// Where it goes.
    pub(super) dst: SocketAddr,
}

/// A prepared datagram and the job that seals it.
pub(super) struct Job {
    pub(super) datagram: Datagram,
    pub(super) job: SealJob,
}

/// One arena of prepared datagrams on its way to the sealing stage, and back empty.
pub(super) struct Load {
    pub(super) arena: PageBuf,
    /// Prepared, not yet sealed.
    pub(super) jobs: Vec<Job>,
    /// The device's own datagrams (handshakes, keepalives, staged data), sent after the arena.
    pub(super) out: Outbox,
    pub(super) sock: Option<Arc<UdpSocket>>,
}

impl Load {
    pub(super) fn new() -> Self {
        Load {
            arena: PageBuf::zeroed(ARENA_SIZE),
            jobs: Vec::with_capacity(ARENA_SIZE / 64),
            out: Outbox::default(),
            sock: None,
        }
    }
}

/// The sealing stage: encrypts a load's datagrams and sends them.
pub(super) struct Sealer {
    /// Sealed datagrams in the arena.
    sent: Vec<Datagram>,
    /// Use UDP GSO (until the kernel refuses it).
    gso: bool,
}

/// Where prepared loads go: sealed in the reading thread, or handed to a sealing thread (the
/// second core) through a bounded queue, in order, so a peer's packets stay in order.
pub(super) enum Pipe {
    Inline(Sealer),
    Thread {
        work: SyncSender<Load>,
        free: Receiver<Load>,
    },
}

/// Loads in flight per sealing thread, besides the one being filled.
const LOADS_IN_FLIGHT: usize = 2;

/// Whether to seal on a thread of its own: only with more than two CPUs. With two, a queue's
/// sending and receiving threads already keep both busy under load, and a third thread only
/// adds the cost of handing each load over.
pub(super) fn seal_thread_wanted() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 2)
}

impl Pipe {
    /// Seals on a thread of its own if `threaded` (and the thread starts), else inline.
    pub(super) fn new(shared: &Arc<Shared>, threaded: bool) -> Pipe {
        let sealer = Sealer::new();
        if !threaded {
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
    pub(super) fn submit(&mut self, shared: &Shared, mut load: Load) -> Load {
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

impl Load {
    /// A placeholder while the real load is away (no memory).
    pub(super) fn empty() -> Self {
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
            load.jobs.iter().map(|j| PacketRef {
                buf: 0,
                start: j.datagram.start,
                len: j.datagram.len,
            }),
        );
        let sent = &mut self.sent;
        seal_batch(
            load.jobs
                .iter()
                .zip(views)
                .filter_map(|(Job { datagram, job }, view)| {
                    // Invariant: `prepare` lays the datagrams out in order, so every view exists.
                    let view = view?;
                    sent.push(*datagram);
                    Some((job, view))
                }),
        );
        load.jobs.clear();
        if let Some(sock) = load.sock.take() {
            self.send(shared, &sock, &load.arena);
            load.out.send(&sock);
        }
        self.sent.clear();
        load.out.clear();
    }

    /// Sends the sealed datagrams of `arena`, grouped for GSO.
    fn send(&mut self, shared: &Shared, sock: &UdpSocket, arena: &[u8]) {
        let mut msgs: Vec<Transmit<'_>> = Vec::with_capacity(self.sent.len().min(BATCH * 4));
        let mut i = 0;
        while i < self.sent.len() {
            let run = gso_run(&self.sent[i..], self.gso);
            let first = self.sent[i];
            let msg = Transmit::new(first.dst, &arena[first.start..run.end]);
            msgs.push(if run.datagrams > 1 {
                msg.with_segment_size(first.len as u16)
            } else {
                msg
            });
            i += run.datagrams;
        }
        if !send_all(shared, sock, &msgs) && self.gso {
            log::warn!("UDP GSO refused by the kernel; sending datagrams one by one");
            self.gso = false;
        }
    }
}

/// The datagrams at the front of a list that leave as one UDP GSO send ([`gso_run`]).
#[derive(Debug, PartialEq, Eq)]
struct GsoRun {
    /// How many (at least one, unless the list is empty).
    datagrams: usize,
    /// Where in the arena the send ends.
    end: usize,
}

/// Which of the datagrams `sent` at the front go out as one UDP GSO send: back to back in the
/// arena, to the same destination, all of the first one's size except a shorter last, at most
/// [`GSO_MAX_SEGMENTS`] and [`MAX_GSO_BYTES`]. Always at least one; exactly one without `gso`.
fn gso_run(sent: &[Datagram], gso: bool) -> GsoRun {
    let Some(&Datagram {
        start,
        len: size,
        dst,
    }) = sent.first()
    else {
        return GsoRun {
            datagrams: 0,
            end: 0,
        };
    };
    let (mut end, mut n) = (start + size, 1);
    while gso && n < sent.len() && n < GSO_MAX_SEGMENTS {
        let Datagram {
            start: s,
            len: l,
            dst: d,
        } = sent[n];
        if d != dst || s != end || l > size || end - start + l > MAX_GSO_BYTES {
            break;
        }
        end += l;
        n += 1;
        if l < size {
            break;
        }
    }
    GsoRun { datagrams: n, end }
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

    /// Loads handed to a sealing thread come back, one for each, and what they carry leaves in
    /// the order the loads were submitted.
    #[test]
    fn a_sealing_thread_sends_loads_in_order() {
        use ferrowg_proto::crypto::RingCrypto;
        use ferrowg_proto::Device;

        use crate::state::{NoKey, State};

        let rng = crate::rng::ErasingRng::from_os().unwrap();
        let device = Device::new(Box::new(NoKey), Box::new(RingCrypto), Box::new(rng));
        let sock = UdpSocket::bind(0).unwrap();
        let state = State::new(device, sock);
        let shared = Arc::new(Shared::new(state, Default::default()));
        let sock = shared.lock().socket.clone();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let dst = peer.local_addr().unwrap();

        let mut pipe = Pipe::new(&shared, true);
        assert!(matches!(pipe, Pipe::Thread { .. }));
        let mut load = Load::new();
        for i in 0..(3 * LOADS_IN_FLIGHT as u8) {
            load.out.push(dst, vec![i]);
            load.sock = Some(sock.clone());
            load = pipe.submit(&shared, load);
            assert!(load.jobs.is_empty() && load.sock.is_none());
        }
        for i in 0..(3 * LOADS_IN_FLIGHT as u8) {
            let mut buf = [0u8; 8];
            let n = peer.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i]);
        }
    }

    fn run(sizes: &[(usize, u16)], gso: bool) -> Vec<usize> {
        let mut sent = Vec::new();
        let mut at = 0;
        for &(len, port) in sizes {
            sent.push(Datagram {
                start: at,
                len,
                dst: SocketAddr::from(([10, 0, 0, 1], port)),
            });
            at += len;
        }
        let mut runs = Vec::new();
        let mut i = 0;
        while i < sent.len() {
            let GsoRun { datagrams: n, end } = gso_run(&sent[i..], gso);
            assert_eq!(
                end - sent[i].start,
                sent[i..i + n].iter().map(|s| s.len).sum::<usize>()
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
