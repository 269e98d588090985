//! The queue between the receiving stage and the handshake worker ([`HandshakeQueue`]):
//! bounded (the kernel's 4,096 messages; full means dropped), and the source of the "under
//! load" signal (1/8 full, and for one second after), as in the kernel.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use ferrowg_proto::device::HandshakeJob;

/// Most handshake messages waiting (the kernel's MAX_QUEUED_INCOMING_HANDSHAKES).
pub const MAX_QUEUED_HANDSHAKES: usize = 4096;
/// Jobs taken per batch, and static-static DHs per round.
pub(super) const BATCH: usize = 64;
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
    /// The clock is read only when the queue is long or was lately: the receiving stage asks
    /// once per batch.
    pub fn under_load(&self) -> bool {
        let now = || {
            u64::try_from(ferrowg_sys::clock::boottime().as_nanos())
                .unwrap_or(u64::MAX)
                .max(1)
        };
        if self.len.load(Ordering::Relaxed) >= MAX_QUEUED_HANDSHAKES / 8 {
            self.last_under_load.store(now(), Ordering::Relaxed);
            return true;
        }
        let last = self.last_under_load.load(Ordering::Relaxed);
        let hold = u64::try_from(UNDER_LOAD_HOLD.as_nanos()).unwrap_or(u64::MAX);
        last != 0 && now().saturating_sub(last) < hold
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
    pub(super) fn take(&self, wait: Duration, into: &mut Vec<HandshakeJob>) -> bool {
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
