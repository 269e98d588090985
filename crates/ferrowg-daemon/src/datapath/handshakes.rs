//! The handshake worker (kernel `wg_packet_handshake_receive_worker`): handshake messages and
//! static-key DHs, off the data path's lock.
//!
//! The receiving stage admits a handshake message under the state lock (mac1; under load a
//! valid mac2, or a cookie reply; the per-source rate limit: all cheap) and queues the
//! [`HandshakeJob`] here, dropping it when the queue is full. This thread runs each job's DH
//! with the static key — a PKCS#11 token takes milliseconds — without the lock, then takes the
//! lock once per batch to finish the jobs. It also computes the static-static DHs that the
//! device's own initiations wait for ([`Device::take_static_dh_jobs`]): after a key change or
//! for a peer's first handshake, never under the lock either.
//!
//! The interface is under load while the queue is at least 1/8 full, and for one second after
//! (the kernel's rule), and also while more than 1,024 messages with a valid mac1 arrive per
//! second (the core's own rule, so that a flood a fast key keeps up with does not take a CPU):
//! admission then demands a cookie, so a flood of initiations costs cookie replies, not DHs,
//! and a peer that answers the cookie gets through.
//!
//! [`Device::take_static_dh_jobs`]: ferrowg_proto::Device::take_static_dh_jobs

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ferrowg_proto::crypto::{KeyError, Secret, StaticKey};
use ferrowg_proto::device::{ComputedHandshake, HandshakeJob, StaticDh};
use ferrowg_proto::{Incoming, Instant};

use super::outbox::Outbox;
use super::shared::Shared;
use super::{BUF_SIZE, POLL};
use crate::state::{self, State};

/// Most handshake messages waiting (the kernel's MAX_QUEUED_INCOMING_HANDSHAKES).
pub const MAX_QUEUED_HANDSHAKES: usize = 4096;
/// Jobs taken per batch, and static-static DHs per round.
const BATCH: usize = 64;
/// How long the interface stays under load after the queue was last 1/8 full.
const UNDER_LOAD_HOLD: Duration = Duration::from_secs(1);

/// The queue between the receiving stage and the worker.
#[derive(Default)]
pub struct HandshakeQueue {
    jobs: Mutex<VecDeque<HandshakeJob>>,
    /// Signalled (under `jobs`' lock) when a job arrives or static-static DHs are wanted.
    ready: Condvar,
    /// Jobs queued (mirrors `jobs.len()`, readable without the lock).
    len: AtomicUsize,
    /// Set when the device wants static-static DHs.
    dh_wanted: AtomicBool,
    /// Boot-time nanoseconds when the queue was last found 1/8 full (0 = never).
    last_under_load: AtomicU64,
}

impl HandshakeQueue {
    /// Whether the interface is under load now: the queue is at least 1/8 full, or was within
    /// the last second.
    pub fn under_load(&self) -> bool {
        let now = u64::try_from(ferrowg_sys::clock::boottime().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        if self.len.load(Ordering::Relaxed) >= MAX_QUEUED_HANDSHAKES / 8 {
            self.last_under_load.store(now, Ordering::Relaxed);
            return true;
        }
        let last = self.last_under_load.load(Ordering::Relaxed);
        let hold = u64::try_from(UNDER_LOAD_HOLD.as_nanos()).unwrap_or(u64::MAX);
        last != 0 && now.saturating_sub(last) < hold
    }

    /// Queues `job`; false (the job is dropped) when the queue is full.
    pub fn push(&self, job: HandshakeJob) -> bool {
        let mut q = self.lock();
        if q.len() >= MAX_QUEUED_HANDSHAKES {
            return false;
        }
        q.push_back(job);
        self.len.store(q.len(), Ordering::Relaxed);
        self.ready.notify_one();
        true
    }

    /// Tells the worker that the device wants static-static DHs.
    pub fn want_static_dh(&self) {
        if !self.dh_wanted.swap(true, Ordering::SeqCst) {
            let _q = self.lock();
            self.ready.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<HandshakeJob>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves up to [`BATCH`] jobs into `into`, waiting up to `wait` when there is nothing to
    /// do; returns whether static-static DHs were asked for since the last call.
    fn take(&self, wait: Duration, into: &mut Vec<HandshakeJob>) -> bool {
        let mut q = self.lock();
        if q.is_empty() && !self.dh_wanted.load(Ordering::SeqCst) {
            q = self
                .ready
                .wait_timeout(q, wait)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let n = q.len().min(BATCH);
        into.extend(q.drain(..n));
        self.len.store(q.len(), Ordering::Relaxed);
        drop(q);
        self.dh_wanted.swap(false, Ordering::SeqCst)
    }
}

thread_local! {
    /// Set while this thread runs static-key DHs without the state lock ([`unlocked_dh`]).
    static DH_ALLOWED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, which computes static-key DHs, marked as allowed to: only the worker calls it,
/// and never with the state lock held.
fn unlocked_dh<T>(f: impl FnOnce() -> T) -> T {
    DH_ALLOWED.with(|a| a.set(true));
    let r = f();
    DH_ALLOWED.with(|a| a.set(false));
    r
}

/// The daemon's static key as the device holds it: in debug builds, a DH asked for anywhere
/// but in the worker's unlocked sections is a bug and panics (which ends the daemon), so that
/// every test with a handshake checks the rule; release builds only forward.
pub struct WorkerOnlyKey(pub Box<dyn StaticKey>);

impl StaticKey for WorkerOnlyKey {
    fn public_key(&self) -> [u8; 32] {
        self.0.public_key()
    }
    fn dh(&self, peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        debug_assert!(
            DH_ALLOWED.with(|a| a.get()),
            "a static-key DH outside the handshake worker's unlocked sections"
        );
        self.0.dh(peer_public)
    }
}

/// The worker's buffers.
struct Worker {
    jobs: Vec<HandshakeJob>,
    out: Outbox,
    scratch: ferrowg_sys::PageBuf,
}

/// Runs the handshake worker until the daemon stops.
pub fn run_handshakes(shared: Arc<Shared>) {
    let mut w = Worker {
        jobs: Vec::with_capacity(BATCH),
        out: Outbox::default(),
        scratch: ferrowg_sys::PageBuf::zeroed(BUF_SIZE),
    };
    while !shared.stopping() {
        let dh_wanted = shared.handshakes.take(POLL, &mut w.jobs);
        if w.jobs.is_empty() && !dh_wanted {
            continue;
        }
        if !w.jobs.is_empty() {
            // The slow part, without the lock.
            let computed: Vec<ComputedHandshake> =
                unlocked_dh(|| w.jobs.drain(..).map(HandshakeJob::compute).collect());
            w.finish(&shared, &computed);
        }
        if dh_wanted {
            w.static_dhs(&shared);
        }
        // Session keys and ephemeral secrets were derived on this stack; they must not
        // outlive their keypair there.
        ferrowg_simd::wipe::scrub_stack();
    }
}

impl Worker {
    /// Finishes `computed` under one lock. Those that wait for a peer's static-static DH get
    /// it computed without the lock, then are finished once more.
    fn finish(&mut self, shared: &Shared, computed: &[ComputedHandshake]) {
        let waiting = self.locked(shared, |st, now| {
            let mut waiting = Vec::new();
            for (i, c) in computed.iter().enumerate() {
                match st.device.finish_handshake(now, c) {
                    Ok(r) => log_outcome(r),
                    Err(job) => waiting.push((i, job)),
                }
            }
            waiting
        });
        if waiting.is_empty() {
            return;
        }
        let results: Vec<(usize, StaticDh)> =
            unlocked_dh(|| waiting.into_iter().map(|(i, j)| (i, j.compute())).collect());
        self.locked(shared, |st, now| {
            for (i, r) in results {
                if st.device.provide_static_dh(now, r) {
                    match st.device.finish_handshake(now, &computed[i]) {
                        Ok(r) => log_outcome(r),
                        Err(_) => log::debug!("handshake dropped: static-static DH changed"),
                    }
                }
            }
        });
    }

    /// Computes the static-static DHs the device's initiations wait for, a batch at a time,
    /// each batch without the lock.
    fn static_dhs(&mut self, shared: &Shared) {
        loop {
            let jobs = self.locked(shared, |st, _| st.device.take_static_dh_jobs(BATCH));
            if jobs.is_empty() {
                return;
            }
            let results: Vec<StaticDh> =
                unlocked_dh(|| jobs.into_iter().map(|j| j.compute()).collect());
            self.locked(shared, |st, now| {
                for r in results {
                    st.device.provide_static_dh(now, r);
                }
            });
        }
    }

    /// Runs `f` on the locked state, then sends what the device wants sent.
    fn locked<T>(&mut self, shared: &Shared, f: impl FnOnce(&mut State, Instant) -> T) -> T {
        let (r, sock) = {
            let mut st = shared.lock();
            let now = state::now();
            let r = f(&mut st, now);
            self.out.take(&mut st, &mut self.scratch);
            shared.nudge(&st);
            (r, st.socket.clone())
        };
        self.out.send(&sock);
        r
    }
}

/// Logs a dropped handshake message.
fn log_outcome(r: Incoming) {
    if let Incoming::Dropped(r) = r {
        log::trace!("handshake dropped: {r}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrowg_proto::crypto::{clamp, RustCrypto, SecretKey};
    use ferrowg_proto::{Begin, Device, PeerConfig};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A handshake job as the receiving stage makes it: a genuine initiation from A, admitted
    /// by an offloaded B (admission does not look at replays, so it can be cloned at will).
    fn jobs() -> impl FnMut() -> HandshakeJob {
        let dev = |k: u8, seed| {
            let key = Box::new(SecretKey::from_bytes(clamp([k; 32])));
            let rng = Box::new(ChaCha8Rng::seed_from_u64(seed));
            Device::new(key, Box::new(RustCrypto), rng)
        };
        let now = ferrowg_proto::Instant::from_secs(1);
        let (mut a, mut b) = (dev(1, 1), dev(2, 2));
        b.set_static_dh_offloaded(true);
        let cfg = PeerConfig {
            endpoint: Some("192.0.2.2:1".parse().unwrap()),
            ..PeerConfig::default()
        };
        let pb = a.add_peer(b.public_key(), cfg, now).unwrap();
        a.initiate_handshake(pb, now);
        let mut init = vec![0u8; 256];
        let len = a.poll_transmit(&mut init).unwrap().len;
        init.truncate(len);
        let mut now = now;
        move || {
            // One a millisecond: below the core's own under-load rate.
            now = now + Duration::from_millis(1);
            let mut d = init.clone();
            match b.begin_datagram(now, "192.0.2.1:1".parse().unwrap(), &mut d) {
                Begin::Handshake(job) => job,
                _ => panic!("not admitted"),
            }
        }
    }

    #[test]
    fn under_load_from_one_eighth_full_and_for_a_second_after() {
        let mut job = jobs();
        let q = HandshakeQueue::default();
        assert!(!q.under_load());
        for _ in 0..MAX_QUEUED_HANDSHAKES / 8 - 1 {
            assert!(q.push(job()));
        }
        assert!(!q.under_load());
        assert!(q.push(job()));
        assert!(q.under_load());
        // Drained: still under load for the hold time, measured from the last check.
        let mut taken = Vec::new();
        while {
            taken.clear();
            q.take(Duration::ZERO, &mut taken);
            !taken.is_empty()
        } {}
        assert_eq!(q.len.load(Ordering::Relaxed), 0);
        assert!(q.under_load());
    }

    #[test]
    fn a_full_queue_drops_and_the_worker_takes_batches() {
        let mut job = jobs();
        let q = HandshakeQueue::default();
        for _ in 0..MAX_QUEUED_HANDSHAKES {
            assert!(q.push(job()));
        }
        assert!(!q.push(job()));
        let mut taken = Vec::new();
        assert!(!q.take(Duration::ZERO, &mut taken));
        assert_eq!(taken.len(), BATCH);
        assert!(q.push(job()));
        q.want_static_dh();
        taken.clear();
        assert!(q.take(Duration::ZERO, &mut taken));
        assert!(!q.take(Duration::ZERO, &mut taken));
    }
}
