//! The clock the protocol timers run on: [`boottime`], `CLOCK_BOOTTIME`, which keeps counting
//! while the machine is suspended (the kernel's WireGuard times its sessions and handshakes on
//! it too). `CLOCK_MONOTONIC`, behind `std::time::Instant`, stops during suspend: after a night
//! in suspend, a session established the evening before would look minutes old and be used
//! long past REJECT_AFTER_TIME.
//!
//! Both clocks are served by the vDSO, so a read costs the same as `Instant::now()`.

use std::time::Duration;

/// Time since boot, suspend included (`CLOCK_BOOTTIME`). Never goes backwards.
pub fn boottime() -> Duration {
    read(libc::CLOCK_BOOTTIME)
}

/// The time of `clock`.
fn read(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable timespec; `clock` is a clock id that Linux has had since 2.6.39
    // (CLOCK_BOOTTIME) or always (CLOCK_MONOTONIC), so the call cannot fail and only writes `ts`.
    let ret = unsafe { libc::clock_gettime(clock, &mut ts) };
    debug_assert_eq!(ret, 0, "clock_gettime({clock})");
    // Both fields are non-negative for these clocks (time since boot).
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CLOCK_BOOTTIME is CLOCK_MONOTONIC plus the time spent in suspend: never behind it.
    #[test]
    fn boottime_is_monotonic_plus_suspend() {
        let mono = read(libc::CLOCK_MONOTONIC);
        let boot = boottime();
        assert!(boot >= mono, "boottime {boot:?} < monotonic {mono:?}");
        let mut last = boottime();
        for _ in 0..1000 {
            let t = boottime();
            assert!(t >= last);
            last = t;
        }
    }
}
