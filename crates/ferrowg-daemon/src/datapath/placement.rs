//! Where a queue's data-path threads run: spread over two CPUs under load, gathered on one
//! while traffic is light ([`Gathering`], [`Placement`]).
//!
//! Under load the two threads of a queue run on two CPUs, one per direction. At low load,
//! though, a packet that wakes a thread on an idle CPU pays for waking that CPU (on a virtual
//! machine, resuming a halted vCPU costs tens of microseconds), and a ping's round trip crosses
//! four such hops. So after [`LIGHT_STREAK`] light events in a row, and none heavy in the queue
//! for [`QUIET`], both threads keep to one CPU, the first the process may use (so that the
//! interfaces of one host gather on the same one); the first event with more than
//! [`LIGHT_PACKETS`] packets spreads them again. The kernel still runs everything else wherever
//! it likes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Most packets one readiness event may bring and still count as light traffic: a ping, a
/// request and its answer, a few TCP ACKs, not a bulk transfer. After such a receive batch the
/// receiving thread also sends the kernel's immediate answers itself
/// ([`Sender::reply`](super::Sender::reply)).
pub(super) const LIGHT_PACKETS: usize = 4;
/// Light events in a row after which a thread gathers the queue's threads on one CPU ...
const LIGHT_STREAK: u32 = 8;
/// ... if neither thread has seen a heavy event for this long (a bulk sender's stream of ACKs
/// comes in light events, between heavy ones).
const QUIET: Duration = Duration::from_millis(500);

/// What the threads of one queue share about where they run.
pub(super) struct Gathering {
    /// Whether both threads keep to one CPU, traffic being light.
    gathered: AtomicBool,
    /// When the queue was made: the origin of `heavy_at`.
    born: std::time::Instant,
    /// Milliseconds after `born` of the last event with more than [`LIGHT_PACKETS`] packets.
    heavy_at: AtomicU64,
}

/// Where one data-path thread may run.
#[derive(Debug, Default)]
pub(super) struct Placement {
    /// Light events in a row seen by this thread.
    streak: u32,
    /// The CPU this thread is pinned to, `None` if any.
    pinned: Option<usize>,
}

impl Gathering {
    /// A queue's threads, spread.
    pub(super) fn new() -> Self {
        Gathering {
            gathered: AtomicBool::new(false),
            born: std::time::Instant::now(),
            heavy_at: AtomicU64::new(0),
        }
    }

    /// After an event that brought `packets` packets to the thread placed by `me`: gathers or
    /// spreads the queue's threads and moves this one accordingly.
    pub(super) fn place(&self, me: &mut Placement, packets: usize) {
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
