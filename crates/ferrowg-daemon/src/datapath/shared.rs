//! What the daemon's threads share ([`Shared`]): the interface state behind its one lock, the
//! timer thread's wake-up, the shutdown flag and the data path's counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::forward::Forwarding;
use super::handshake_queue::HandshakeQueue;
use super::stats::DatapathStats;
use crate::state::State;

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
    /// Packets the data path dropped, by cause (shared with the AEAD, which counts its batches).
    pub stats: Arc<DatapathStats>,
    /// Handshake messages on their way to the handshake worker.
    pub handshakes: HandshakeQueue,
    /// The policy for packets between peers; without one, every packet goes to the TUN device.
    pub forwarding: Option<Arc<dyn Forwarding>>,
}

impl Shared {
    /// The shared side of `state`, running, counting into `stats`.
    pub fn new(state: State, stats: Arc<DatapathStats>) -> Self {
        Shared {
            state: Mutex::new(state),
            timer_wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
            reason: Mutex::new(None),
            stats,
            handshakes: HandshakeQueue::default(),
            forwarding: None,
        }
    }

    /// The same, forwarding packets between peers as `policy` decides ([`Forwarding`]).
    pub fn with_forwarding(mut self, policy: Option<Arc<dyn Forwarding>>) -> Self {
        self.forwarding = policy;
        self
    }

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

    /// Whether a thread asked every thread to stop.
    pub fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }

    /// Why the daemon stops (empty if nobody said).
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
            .unwrap_or_default()
    }

    /// Wakes the timer thread if the device now wants to be called earlier than planned, and
    /// the handshake worker if the device wants static-static DHs. Call with the lock held
    /// (`state` is the locked state).
    pub fn nudge(&self, state: &State) {
        self.nudge_handshakes(state);
        if let Some(t) = state.device.poll_timeout() {
            if state.planned_wake.is_none_or(|p| t < p) {
                self.timer_wake.notify_one();
            }
        }
    }

    /// Wakes the handshake worker if the device wants static-static DHs. Call with the lock
    /// held (`state` is the locked state).
    pub fn nudge_handshakes(&self, state: &State) {
        if state.device.wants_static_dh() {
            self.handshakes.want_static_dh();
        }
    }
}
