//! The daemon's threads: TUN → encrypt → UDP, UDP → decrypt → TUN, and the protocol timers.
//!
//! Each data-path thread works in batches of up to [`BATCH`] packets: one batched read, one
//! lock of the shared state for the whole batch, one batched write. Buffers are allocated once
//! per thread; the packet is encrypted and decrypted in place at offset
//! [`TRANSPORT_HEADER_SIZE`], so nothing is copied or allocated per packet on the steady path.
//! Handshake messages and packets that waited for a session come out of `poll_transmit`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ferrowg_proto::device::{Event, Incoming, Outgoing};
use ferrowg_proto::{Instant, TRANSPORT_HEADER_SIZE};
use ferrowg_sys::{RecvMeta, Transmit, TunQueue, UdpSocket};

use super::state::{self, State};
use crate::key::PublicKey;

/// Packets per batch (wireguard-go and the kernel's GRO use 64–128).
pub const BATCH: usize = 64;
/// Room for the largest IP packet a TUN device delivers plus WireGuard framing and padding.
const BUF_SIZE: usize = TRANSPORT_HEADER_SIZE + 65535 + 64;
/// How often blocked threads look at the shutdown flag.
const POLL: Duration = Duration::from_millis(250);

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

fn alloc_bufs() -> Vec<Vec<u8>> {
    (0..BATCH).map(|_| vec![0u8; BUF_SIZE]).collect()
}

/// TUN → device → UDP.
pub fn tun_to_udp(shared: Arc<Shared>, tun: Arc<TunQueue>) {
    let mut bufs = alloc_bufs();
    let mut sizes = [0usize; BATCH];
    let mut results: Vec<(usize, SocketAddr, usize)> = Vec::with_capacity(BATCH);
    let mut scratch = vec![0u8; BUF_SIZE];
    let mut out = Outbox::default();
    while !shared.stopping() {
        let n = {
            let mut views: Vec<&mut [u8]> = bufs
                .iter_mut()
                .map(|b| &mut b[TRANSPORT_HEADER_SIZE..])
                .collect();
            match tun.read_batch(&mut views, &mut sizes, Some(POLL)) {
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
        if n == 0 {
            continue;
        }
        results.clear();
        let sock = {
            let mut st = shared.lock();
            let now = state::now();
            for (i, buf) in bufs.iter_mut().enumerate().take(n) {
                match st.device.handle_packet(now, buf, sizes[i]) {
                    Outgoing::Send { endpoint, len, .. } => results.push((i, endpoint, len)),
                    Outgoing::Queued { .. } => {}
                    Outgoing::Dropped(r) => log::trace!("outgoing packet dropped: {r}"),
                }
            }
            drain(&mut st, &mut out, &mut scratch);
            nudge_timer(&shared, &st);
            st.socket.clone()
        };
        let msgs: Vec<Transmit<'_>> = results
            .iter()
            .map(|&(i, dst, len)| Transmit::new(dst, &bufs[i][..len]))
            .collect();
        send_all(&sock, &msgs);
        send_outbox(&sock, &mut out);
    }
}

/// Sends a batch, skipping a destination that fails so one bad endpoint cannot stall others.
fn send_all(sock: &UdpSocket, msgs: &[Transmit<'_>]) {
    let mut done = 0;
    while done < msgs.len() {
        match sock.send_batch(&msgs[done..], Some(Duration::from_secs(1))) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) => {
                log::debug!("send to {}: {e}", msgs[done].dst);
                done += 1;
            }
        }
    }
}

/// UDP → device → TUN.
pub fn udp_to_tun(shared: Arc<Shared>, tun: Arc<TunQueue>) {
    let mut bufs = alloc_bufs();
    let mut metas = [RecvMeta::default(); BATCH];
    let mut deliver: Vec<(usize, usize)> = Vec::with_capacity(BATCH);
    let mut scratch = vec![0u8; BUF_SIZE];
    let mut out = Outbox::default();
    let (mut sock, mut generation) = {
        let st = shared.lock();
        (st.socket.clone(), st.socket_generation)
    };
    while !shared.stopping() {
        let n = match sock.recv_batch(&mut bufs, &mut metas, Some(POLL)) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("UDP receive: {e}");
                std::thread::sleep(Duration::from_millis(10));
                0
            }
        };
        deliver.clear();
        {
            let mut st = shared.lock();
            if st.socket_generation != generation {
                sock = st.socket.clone();
                generation = st.socket_generation;
            }
            let now = state::now();
            for (i, m) in metas.iter().enumerate().take(n) {
                if m.truncated {
                    continue;
                }
                match st.device.handle_datagram(now, m.src, &mut bufs[i][..m.len]) {
                    Incoming::Packet { len, .. } => deliver.push((i, len)),
                    Incoming::Dropped(r) => log::trace!("datagram from {} dropped: {r}", m.src),
                    _ => {}
                }
            }
            drain(&mut st, &mut out, &mut scratch);
            nudge_timer(&shared, &st);
        }
        if !deliver.is_empty() {
            let packets: Vec<&[u8]> = deliver
                .iter()
                .map(|&(i, len)| &bufs[i][TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len])
                .collect();
            write_all(&shared, &tun, &packets);
        }
        send_outbox(&sock, &mut out);
    }
}

fn write_all(shared: &Shared, tun: &TunQueue, packets: &[&[u8]]) {
    let mut done = 0;
    while done < packets.len() {
        match tun.write_batch(&packets[done..], Some(Duration::from_secs(1))) {
            Ok(0) => break,
            Ok(k) => done += k,
            Err(e) if e.is_interface_gone() => {
                shared.stop(format!("interface {} was removed", tun.name()));
                return;
            }
            Err(e) => {
                log::debug!("TUN write: {e}");
                done += 1;
            }
        }
    }
}

/// Runs the protocol timers.
pub fn timers(shared: Arc<Shared>) {
    let mut scratch = vec![0u8; BUF_SIZE];
    let mut out = Outbox::default();
    while !shared.stopping() {
        let sock = {
            let mut st = shared.lock();
            let now = state::now();
            st.device.set_clock(now, state::unix_nanos());
            st.device.handle_timeout(now);
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
