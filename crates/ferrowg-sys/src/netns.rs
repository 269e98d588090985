//! Network namespaces for the calling thread (`setns(2)` with `CLONE_NEWNET`).
//!
//! A TUN device and a UDP socket belong to the namespace of the thread that creates them, and
//! keep it when the thread moves on. That gives the WireGuard "namespace trick": create the UDP
//! socket in the namespace with the physical NIC and the TUN device in a container's namespace
//! (wireguard.com/netns). Tests use it to run in a namespace of their own.
//!
//! Only the calling thread moves; other threads, including the rest of a multi-threaded test
//! runner, stay where they are. Move a dedicated thread and let it end with its work.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use crate::error::{Error, Result};
use crate::fd::cvt;

/// Opens a namespace file: `/run/netns/NAME` (made by `ip netns add`) or `/proc/PID/ns/net`.
pub fn open(path: impl AsRef<Path>) -> Result<File> {
    File::open(path).map_err(|e| Error::os("open(netns)", e))
}

/// The calling thread's current network namespace, to come back to with [`enter`].
pub fn current() -> Result<File> {
    open("/proc/thread-self/ns/net")
}

/// Moves the calling thread into the network namespace `ns` refers to (needs `CAP_SYS_ADMIN`).
pub fn enter(ns: &impl AsFd) -> Result<()> {
    // SAFETY: setns(2) takes a descriptor (borrowed, valid for the call) and a namespace type; it
    // changes only kernel state of the calling thread and touches no memory of ours.
    let ret = unsafe { libc::setns(ns.as_fd().as_raw_fd(), libc::CLONE_NEWNET) };
    cvt(ret)
        .map(drop)
        .map_err(|e| Error::os("setns(CLONE_NEWNET)", e))
}

/// Runs `f` on a new thread inside the namespace `ns` and returns its result; a panic in `f` is
/// passed on to the caller. The thread ends with `f`, so no thread is left behind in `ns`.
pub fn run_in<T, F>(ns: &File, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| enter(ns).map(|()| f()));
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn entering_our_own_namespace_is_a_no_op_when_allowed() {
        let ns = current().unwrap();
        // Without CAP_SYS_ADMIN setns fails with EPERM; with it, this changes nothing.
        match run_in(&ns, || 7) {
            Ok(v) => assert_eq!(v, 7),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }

    #[test]
    fn a_missing_namespace_is_an_error() {
        let err = open("/run/netns/fwgsys-does-not-exist").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
