//! The daemon's data path: TUN → encrypt → UDP (`tx.rs`), UDP → decrypt → TUN (`rx.rs`), the
//! threads that run them ([`Queue`]), and the protocol timers (here).
//!
//! Each TUN queue has two data-path threads, and neither is tied to a direction: both wait on
//! one readiness queue ([`Poller`]) holding the TUN queue and the UDP socket, and whichever is
//! free takes whichever became readable. Under load that is one thread per direction; at low
//! load it is the thread that just sent a request that receives its answer (epoll wakes the
//! most recent waiter first), on the CPU it just ran on, instead of a second thread that last
//! ran elsewhere. On this 2-vCPU VM, where waking a halted vCPU costs
//! tens of microseconds, that is most of a ping's round trip in the daemon. While traffic stays
//! light, both threads also keep to one CPU, and spread again under load (`Placement`).
//!
//! Each stage works in batches: one batched read, one lock of the shared state for
//! the whole batch, one batched write. Buffers are allocated once per thread; packets are
//! encrypted and decrypted in place, so nothing is allocated per packet on the steady path.
//! Handshake messages and packets that waited for a session come out of `poll_transmit`.
//!
//! With the TUN device's virtio-net header ([`open_tun`]), the kernel hands over TCP/UDP
//! super-packets of up to 64 KiB, which are cut into MTU-sized packets ([`offload::gso`]),
//! encrypted back to back and sent with UDP GSO; received datagrams (UDP GRO) are decrypted and
//! glued back into super-packets ([`offload::gro`]) before the TUN write.
//!
//! [`offload::gso`]: super::offload::gso
//! [`offload::gro`]: super::offload::gro

mod rx;
mod tx;

pub use rx::Receiver;
pub use tx::Sender;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ferrowg_proto::device::Event;
use ferrowg_proto::{Instant, TRANSPORT_HEADER_SIZE};
use ferrowg_sys::{Offload, PageBuf, Poller, Tun, TunConfig, TunQueue, UdpSocket};

use super::state::{self, State};
use ferrowg_keys::key::PublicKey;

/// Reads or datagrams per batch (wireguard-go and the kernel's GRO use 64–128).
pub const BATCH: usize = 64;
/// Room for the largest IP packet a TUN device delivers plus WireGuard framing and padding.
const BUF_SIZE: usize = TRANSPORT_HEADER_SIZE + 65535 + 64;
/// How often blocked threads (data path and UAPI accept) look at the shutdown flag.
pub(super) const POLL: Duration = Duration::from_millis(250);

/// The token of a queue's TUN descriptor in its [`Poller`].
const TUN_TOKEN: u64 = 0;
/// The token of the UDP socket in a queue's [`Poller`].
const UDP_TOKEN: u64 = 1;

/// One TUN queue's data path: both stages and the readiness queue their threads share.
pub struct Queue {
    poller: Poller,
    tun: TunQueue,
    sender: Sender,
    receiver: Receiver,
    /// Whether both threads keep to one CPU, traffic being light ([`Placement`]).
    gathered: AtomicBool,
    /// Whether threads gather on one CPU at all (`FERROWG_GATHER=0` turns it off).
    gather: bool,
    /// When the queue was made: the origin of `heavy_at`.
    born: std::time::Instant,
    /// Milliseconds after `born` of the last event with more than [`LIGHT_PACKETS`] packets.
    heavy_at: AtomicU64,
}

/// Most packets one readiness event may bring and still count as light traffic: a ping, a
/// request and its answer, a few TCP ACKs, not a bulk transfer. After such a receive batch the
/// receiving thread also sends the kernel's immediate answers itself ([`Sender::reply`]).
const LIGHT_PACKETS: usize = 4;
/// Light events in a row after which a thread gathers the queue's threads on one CPU ...
const LIGHT_STREAK: u32 = 8;
/// ... if neither thread has seen a heavy event for this long (a bulk sender's stream of ACKs
/// comes in light events, between heavy ones).
const QUIET: Duration = Duration::from_millis(500);

/// Where one data-path thread may run.
///
/// Under load the two threads of a queue run on two CPUs, one per direction. At low load,
/// though, a packet that wakes a thread on an idle CPU pays for waking that CPU: on this
/// 2-vCPU VM a halted vCPU takes tens of microseconds to resume, and a ping's round trip
/// crosses four such hops (with every thread pinned to one CPU, the average ping here fell
/// from 0.163 to 0.115 ms). So after
/// [`LIGHT_STREAK`] light events in a row, and none heavy in the queue for [`QUIET`], both
/// threads keep to one CPU, the first the process may use (so that the interfaces of one host
/// gather on the same one); the first event with more than [`LIGHT_PACKETS`] packets spreads
/// them again. The kernel still runs everything else wherever it likes.
#[derive(Debug, Default)]
struct Placement {
    /// Light events in a row seen by this thread.
    streak: u32,
    /// The CPU this thread is pinned to, `None` if any.
    pinned: Option<usize>,
}

impl Queue {
    /// The data path of `tun`, reading the device's current UDP socket.
    pub fn new(shared: &Arc<Shared>, tun: TunQueue, offload: Offload) -> ferrowg_sys::Result<Self> {
        let sender = Sender::new(shared, &tun);
        let receiver = Receiver::new(shared, &tun, offload);
        let poller = Poller::new()?;
        poller.add(&tun, TUN_TOKEN)?;
        poller.add(&*receiver.socket(), UDP_TOKEN)?;
        Ok(Queue {
            poller,
            tun,
            sender,
            receiver,
            gathered: AtomicBool::new(false),
            gather: std::env::var_os("FERROWG_GATHER").is_none_or(|v| v != "0"),
            born: std::time::Instant::now(),
            heavy_at: AtomicU64::new(0),
        })
    }

    /// One data-path thread: takes whichever of TUN queue and socket is readable, empties it,
    /// and arms it again; until the daemon stops.
    pub fn work(&self, shared: &Shared) {
        let mut place = Placement::default();
        while !shared.stopping() {
            let rearmed = match self.poller.wait(Some(POLL)) {
                Ok(Some(TUN_TOKEN)) => {
                    let packets = self.sender.drain(shared, &self.tun);
                    self.place(&mut place, packets);
                    self.poller.rearm(&self.tun, TUN_TOKEN)
                }
                Ok(Some(_)) => {
                    let (sock, packets) =
                        self.receiver
                            .drain(shared, &self.poller, &self.tun, &self.sender);
                    self.place(&mut place, packets);
                    self.poller.rearm(&*sock, UDP_TOKEN)
                }
                Ok(None) => {
                    self.receiver.follow_socket(shared, &self.poller);
                    Ok(())
                }
                Err(e) => Err(e),
            };
            if let Err(e) = rearmed {
                log::warn!("data path: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// After an event that brought `packets` packets: gathers or spreads the queue's threads
    /// ([`Placement`]) and moves this one accordingly.
    fn place(&self, me: &mut Placement, packets: usize) {
        if !self.gather {
            return;
        }
        let Some(first) = ferrowg_sys::cpu::first_allowed_cpu() else {
            return;
        };
        let now_ms = || self.born.elapsed().as_millis() as u64;
        let want = me.after_event(&self.gathered, &self.heavy_at, packets, now_ms, first);
        if want != me.pinned {
            if let Err(e) = ferrowg_sys::cpu::pin_current_thread(want) {
                // Not retried: the thread stays where it is until the home changes again.
                log::debug!("data path: cannot move to CPU {want:?}: {e}");
            }
            me.pinned = want;
        }
    }
}

impl Placement {
    /// The policy: after an event with `packets` packets, updates whether the queue's threads
    /// are `gathered` and the time of its last heavy event, and returns the CPU this thread
    /// should keep to (`None`: any). `first` is the CPU threads gather on; `now_ms` reads the
    /// clock, which only heavy events and a gathering decision need (not every light event).
    fn after_event(
        &mut self,
        gathered: &AtomicBool,
        heavy_at: &AtomicU64,
        packets: usize,
        now_ms: impl Fn() -> u64,
        first: usize,
    ) -> Option<usize> {
        if packets > LIGHT_PACKETS {
            self.streak = 0;
            heavy_at.store(now_ms(), Ordering::Relaxed);
            gathered.store(false, Ordering::Relaxed);
        } else if packets > 0 {
            self.streak = self.streak.saturating_add(1);
            if self.streak >= LIGHT_STREAK
                && !gathered.load(Ordering::Relaxed)
                && now_ms().saturating_sub(heavy_at.load(Ordering::Relaxed))
                    >= QUIET.as_millis() as u64
            {
                gathered.store(true, Ordering::Relaxed);
            }
        }
        gathered.load(Ordering::Relaxed).then_some(first)
    }
}

/// What the threads share.
pub struct Shared {
    /// The interface state.
    pub state: Mutex<State>,
    /// Wakes the timer thread when a deadline moves earlier.
    pub timer_wake: Condvar,
    /// Set to stop every thread.
    pub shutdown: AtomicBool,
    /// Why the daemon stops, when a thread decided it.
    pub reason: Mutex<Option<String>>,
    /// Packets the data path dropped, by cause.
    pub stats: DatapathStats,
}

/// Packets the data path itself dropped (the protocol core counts its own drops), so that a
/// test or an operator can tell "none lost here" from "lost somewhere".
#[derive(Debug, Default)]
pub struct DatapathStats {
    /// TUN reads that could not be split (bad virtio-net header) or did not fit the buffers.
    pub tun_read_errors: AtomicU64,
    /// Packets (or super-packets) the TUN device refused or that timed out on write.
    pub tun_write_errors: AtomicU64,
    /// Datagrams that could not be sent.
    pub udp_send_errors: AtomicU64,
    /// Datagrams received truncated (larger than the receive buffer).
    pub udp_truncated: AtomicU64,
    /// Not drops: TUN reads that were TSO/USO super-packets and were split.
    pub gso_reads: AtomicU64,
    /// Not drops: coalesced super-packets written to the TUN device.
    pub gro_writes: AtomicU64,
    /// Not drops: TUN reads sent by the receiving stage right after its TUN write
    /// ([`Sender::reply`]).
    pub replies: AtomicU64,
}

impl DatapathStats {
    fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A one-line summary for the log.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "tun read errors {}, tun write errors {}, udp send errors {}, udp truncated {} \
             (super-packets split {}, coalesced {}, replies from the receiving stage {}, \
             datagrams sealed in vector lanes {}, opened in vector lanes {})",
            get(&self.tun_read_errors),
            get(&self.tun_write_errors),
            get(&self.udp_send_errors),
            get(&self.udp_truncated),
            get(&self.gso_reads),
            get(&self.gro_writes),
            get(&self.replies),
            get(&super::crypto::VECTOR_SEALED),
            get(&super::crypto::VECTOR_OPENED),
        )
    }
}

/// The errno values `open_tun` passes through (ferrowg has no libc dependency of its own).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
}

/// Opens TUN device `iface` with a virtio-net header and TCP/UDP segmentation offloads, so that
/// the kernel hands over 64 KiB super-packets; falls back to a plain device if the kernel
/// refuses (or if `FERROWG_OFFLOAD=0` is set, to compare). Returns the offloads in force.
pub fn open_tun(iface: &str) -> ferrowg_sys::Result<(Tun, Offload)> {
    let (tun, offload) = open_tun_device(iface)?;
    // The queue between the kernel and our reader: at the default 500 packets, a burst from a
    // fast UDP sender overflows it (tx_dropped) whenever this thread waits a scheduler tick
    // for a CPU. 4096 holds ~28 ms at 1.6 Gbit/s of 1420-byte packets (TCP never queues that
    // much: TCP small queues bound each socket).
    if let Err(e) = ferrowg_sys::netdev::set_tx_queue_len(iface, TUN_TX_QUEUE_LEN) {
        log::warn!("{iface}: cannot set the transmit queue length: {e}");
    }
    Ok((tun, offload))
}

/// Transmit queue length given to the TUN device (packets).
pub const TUN_TX_QUEUE_LEN: u32 = 4096;

fn open_tun_device(iface: &str) -> ferrowg_sys::Result<(Tun, Offload)> {
    if std::env::var_os("FERROWG_OFFLOAD").is_some_and(|v| v == "0") {
        return Ok((Tun::open(&TunConfig::new(iface))?, Offload::default()));
    }
    let offloaded = Tun::open(&TunConfig::new(iface).vnet_hdr(true))
        .and_then(|tun| tun.set_offload(Offload::ALL).map(|offload| (tun, offload)));
    match offloaded {
        Ok(pair) => Ok(pair),
        // Permission and missing-device errors are the same either way: report them.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc_errno::EPERM | libc_errno::EACCES | libc_errno::ENOENT)
            ) =>
        {
            Err(e)
        }
        Err(e) => {
            log::warn!("{iface}: TUN offloads unavailable ({e}); using plain packets");
            Ok((Tun::open(&TunConfig::new(iface))?, Offload::default()))
        }
    }
}

impl Shared {
    /// Locks the state (a poisoned lock means a thread panicked: keep serving regardless).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks every thread to stop.
    pub fn stop(&self, why: impl Into<String>) {
        let mut r = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if r.is_none() {
            *r = Some(why.into());
        }
        self.shutdown.store(true, Ordering::SeqCst);
        self.timer_wake.notify_all();
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// Datagrams the device produced besides the data path (handshakes, keepalives, staged data).
#[derive(Default)]
struct Outbox {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
}

/// Takes everything the device wants sent, and logs its events. Call with the lock held.
fn drain(state: &mut State, out: &mut Outbox, scratch: &mut [u8]) {
    while let Some(t) = state.device.poll_transmit(scratch) {
        out.datagrams.push((t.endpoint, scratch[..t.len].to_vec()));
    }
    while let Some(e) = state.device.poll_event() {
        log_event(state, e);
    }
}

fn log_event(state: &State, e: Event) {
    let key = |p| {
        state
            .device
            .peer_info(p)
            .map(|i| PublicKey::from_bytes(i.public_key).to_base64())
            .unwrap_or_default()
    };
    match e {
        Event::HandshakeCompleted { peer, initiator } => {
            log::info!(
                "peer {}: handshake completed ({})",
                key(peer),
                if initiator { "initiator" } else { "responder" }
            )
        }
        Event::EndpointChanged { peer, endpoint } => {
            log::info!("peer {}: endpoint is now {endpoint}", key(peer))
        }
        Event::HandshakeGaveUp { peer } => {
            log::info!(
                "peer {}: no handshake response after 90 s, giving up",
                key(peer)
            )
        }
        Event::KeysZeroed { peer } => log::debug!("peer {}: session keys erased", key(peer)),
        Event::StaticKeyFailed { peer } => {
            log::error!(
                "peer {}: static key unavailable, handshake will be retried",
                key(peer)
            )
        }
        _ => log::debug!("event {e:?}"),
    }
}

/// Wakes the timer thread if the device now wants to be called earlier than planned.
fn nudge_timer(shared: &Shared, state: &State) {
    if let Some(t) = state.device.poll_timeout() {
        if state.planned_wake.is_none_or(|p| t < p) {
            shared.timer_wake.notify_one();
        }
    }
}

fn send_outbox(sock: &UdpSocket, out: &mut Outbox) {
    for (dst, data) in out.datagrams.drain(..) {
        if let Err(e) = sock.send_to(&data, dst) {
            log::debug!("send to {dst}: {e}");
        }
    }
}

/// Disjoint mutable views of `bufs[b][start..end]` for each span `(b, start, end)`, so a batch of
/// datagrams can be sealed or opened in one call. Spans come sorted by buffer, then offset, and
/// do not overlap (as the data path lays them out); a span that breaks this, or lies outside its
/// buffer, gets `None`.
fn split_spans<'a>(
    bufs: &'a mut [PageBuf],
    spans: impl IntoIterator<Item = (usize, usize, usize)>,
) -> Vec<Option<&'a mut [u8]>> {
    let spans = spans.into_iter();
    let mut out = Vec::with_capacity(spans.size_hint().0);
    let mut next = bufs.iter_mut().enumerate();
    // The buffer being split: (index, what is left of it, offset where that starts).
    let mut cur: Option<(usize, &'a mut [u8], usize)> = None;
    for (b, start, end) in spans {
        while cur.as_ref().is_none_or(|c| c.0 < b) {
            match next.next() {
                Some((i, buf)) => cur = Some((i, &mut buf[..], 0)),
                None => {
                    cur = None;
                    break;
                }
            }
        }
        let view = match cur.take() {
            Some((i, rest, at))
                if i == b && at <= start && start <= end && end - at <= rest.len() =>
            {
                let (_, tail) = rest.split_at_mut(start - at);
                let (view, tail) = tail.split_at_mut(end - start);
                cur = Some((i, tail, end));
                Some(view)
            }
            other => {
                cur = other;
                None
            }
        };
        out.push(view);
    }
    out
}

/// Runs the protocol timers.
pub fn timers(shared: Arc<Shared>) {
    let mut scratch = ferrowg_sys::PageBuf::zeroed(BUF_SIZE);
    let mut out = Outbox::default();
    while !shared.stopping() {
        let sock = {
            let mut st = shared.lock();
            let now = state::now();
            st.device.set_clock(now, state::unix_nanos());
            st.device.handle_timeout(now);
            st.poll_rekeys(now);
            drain(&mut st, &mut out, &mut scratch);
            st.socket.clone()
        };
        send_outbox(&sock, &mut out);
        let st = shared.lock();
        let now = state::now();
        let next = st.device.poll_timeout();
        if next.is_some_and(|t| t <= now) {
            continue;
        }
        let wait = next
            .map_or(Duration::from_secs(1), |t| t - now)
            .min(Duration::from_secs(1));
        let mut st = st;
        st.planned_wake = Some(now + wait);
        let (mut st, _) = shared
            .timer_wake
            .wait_timeout(st, wait)
            .unwrap_or_else(|e| e.into_inner());
        st.planned_wake = None::<Instant>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Light traffic gathers both threads once it has been quiet; one heavy event spreads them
    /// at once; light events between heavy ones (a bulk sender's ACKs) never gather them.
    #[test]
    fn threads_gather_when_quiet_and_spread_under_load() {
        let (home, heavy_at) = (AtomicBool::new(false), AtomicU64::new(0));
        let (mut a, mut b) = (Placement::default(), Placement::default());
        let quiet = QUIET.as_millis() as u64;
        // Light events, but within QUIET of the start: stay spread.
        for t in 0..LIGHT_STREAK as u64 * 2 {
            assert_eq!(a.after_event(&home, &heavy_at, 1, || t, 3), None);
        }
        // Quiet now: the streak is long enough, both threads keep to CPU 3; an event with no
        // packets changes nothing.
        assert_eq!(a.after_event(&home, &heavy_at, 1, || quiet, 3), Some(3));
        assert_eq!(b.after_event(&home, &heavy_at, 0, || quiet, 3), Some(3));
        // A heavy event on either thread spreads both.
        assert_eq!(
            b.after_event(&home, &heavy_at, LIGHT_PACKETS + 1, || quiet + 1, 3),
            None
        );
        assert_eq!(a.after_event(&home, &heavy_at, 1, || quiet + 2, 3), None);
        // Light events with a heavy one every 100 ms: never gathered.
        for i in 0..100u64 {
            let t = quiet + 2 + i * 10;
            let p = if i % 10 == 0 { 64 } else { 2 };
            assert_eq!(
                a.after_event(&home, &heavy_at, p, || t, 3),
                None,
                "event {i}"
            );
        }
        // Quiet again for QUIET after the last heavy event: gathered again.
        let last_heavy = heavy_at.load(Ordering::Relaxed);
        assert_eq!(
            a.after_event(&home, &heavy_at, 1, || last_heavy + quiet, 3),
            Some(3)
        );
    }
}
