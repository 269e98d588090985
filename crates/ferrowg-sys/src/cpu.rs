//! Keeping the calling thread on one CPU: the data path gathers its
//! threads on one CPU while traffic is light ([`pin_current_thread`]), so that a lone packet
//! does not wake a second, halted CPU (on a VM, each such wake-up costs tens of microseconds
//! of round trip), and lets them spread again under load.

use std::io;
use std::sync::OnceLock;

use crate::fd::cvt;

/// The CPUs the process was allowed to run on when this was first called.
fn allowed() -> io::Result<libc::cpu_set_t> {
    static ALLOWED: OnceLock<Option<libc::cpu_set_t>> = OnceLock::new();
    let set = ALLOWED.get_or_init(|| {
        // SAFETY: an all-zero cpu_set_t is a valid, empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a writable cpu_set_t of the size passed; pid 0 is this thread.
        let ret =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        cvt(ret).ok().map(|_| set)
    });
    set.ok_or_else(|| io::Error::other("sched_getaffinity failed"))
}

/// The lowest-numbered CPU the process was allowed to run on at the first call of this
/// module.
pub fn first_allowed_cpu() -> Option<usize> {
    static FIRST: OnceLock<Option<usize>> = OnceLock::new();
    *FIRST.get_or_init(|| {
        let all = allowed().ok()?;
        // SAFETY: CPU_ISSET only reads the set, and checks `c` against its size.
        (0..libc::CPU_SETSIZE as usize).find(|&c| unsafe { libc::CPU_ISSET(c, &all) })
    })
}

/// Restricts the calling thread to CPU `cpu`, or with `None` gives it back every CPU the
/// process had at its first call. Fails (changing nothing) if `cpu` is not among those.
pub fn pin_current_thread(cpu: Option<usize>) -> io::Result<()> {
    let all = allowed()?;
    let set = match cpu {
        None => all,
        Some(c) => {
            // SAFETY: CPU_ISSET only reads the set, and checks `c` against its size.
            if c >= libc::CPU_SETSIZE as usize || !unsafe { libc::CPU_ISSET(c, &all) } {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
            // SAFETY: an all-zero cpu_set_t is a valid, empty set.
            let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: CPU_SET writes bit `c` of `one`, in range (checked above).
            unsafe { libc::CPU_SET(c, &mut one) };
            one
        }
    };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    cvt(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU the calling thread is running on now.
    fn current_cpu() -> Option<usize> {
        // SAFETY: sched_getcpu(3) takes no arguments and only returns a number (or -1).
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }

    #[test]
    fn pinning_moves_the_thread_and_unpinning_frees_it() {
        std::thread::spawn(|| {
            let all = allowed().unwrap();
            // SAFETY: CPU_ISSET only reads the set.
            let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| unsafe { libc::CPU_ISSET(c, &all) })
                .collect();
            for &c in &cpus {
                pin_current_thread(Some(c)).unwrap();
                assert_eq!(current_cpu(), Some(c));
            }
            pin_current_thread(None).unwrap();
            // SAFETY: as in `allowed`.
            let mut now: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: as in `allowed`.
            let ret = unsafe {
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut now)
            };
            assert_eq!(ret, 0);
            // SAFETY: CPU_EQUAL only reads both sets.
            assert!(unsafe { libc::CPU_EQUAL(&now, &all) });
            // A CPU the process may not use is refused.
            assert!(pin_current_thread(Some(libc::CPU_SETSIZE as usize)).is_err());
        })
        .join()
        .unwrap();
    }
}
