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

use std::sync::Arc;

use ferrowg_proto::crypto::{KeyError, Secret, StaticKey};
use ferrowg_proto::device::{ComputedHandshake, HandshakeJob, StaticDh};
use ferrowg_proto::{Incoming, Instant};

use super::handshake_queue::BATCH;
use super::outbox::Outbox;
use super::shared::Shared;
use super::{BUF_SIZE, POLL};
use crate::state::{self, State};

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
