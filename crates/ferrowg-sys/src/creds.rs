//! Who may reach the daemon's control socket: the file mode a new socket gets (the umask it is
//! bound under) and the user at the other end of a connection (`SO_PEERCRED`).
//!
//! Binding under a strict umask, as wireguard-go does, makes the socket private from the
//! moment it exists; a `chmod` after `bind` leaves a window in which anyone may connect.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

/// Runs `f` with the process's file mode creation mask set to `mask`, then restores the
/// previous mask (also when `f` panics). The mask is process-wide: files other threads create
/// meanwhile get it too, so `f` should be short (a `bind`). Calls are serialised, so two of
/// them never restore each other's mask.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    static LOCK: Mutex<()> = Mutex::new(());
    let _serial = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    /// Puts the saved mask back on drop.
    struct Restore(libc::mode_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: umask(2) only swaps the process's creation mask and always succeeds.
            unsafe { libc::umask(self.0) };
        }
    }
    // SAFETY: umask(2) only swaps the process's creation mask and always succeeds.
    let old = unsafe { libc::umask((mask & 0o777) as libc::mode_t) };
    let _restore = Restore(old);
    f()
}

/// The process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, always succeeds and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// The user id of the process at the other end of a connected Unix socket, as the kernel
/// recorded it when that process connected (`SO_PEERCRED`; it cannot be forged by the peer).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let size = std::mem::size_of::<libc::ucred>();
    let mut len = size as libc::socklen_t;
    // SAFETY: the descriptor is open for the borrow of `stream`; `cred` is a valid, writable
    // `ucred` and `len` holds its exact size, so the kernel writes within it.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED returned a short ucred",
        ));
    }
    Ok(cred.uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::os::unix::net::UnixListener;

    /// The `Umask:` of `/proc/self/status`.
    fn current_umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .unwrap();
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn with_umask_applies_then_restores() {
        let dir = std::env::temp_dir().join(format!("ferrowg-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let before = current_umask();
        let sock = dir.join("s");
        let (listener, file_mode, inner) = with_umask(0o177, || {
            let l = UnixListener::bind(&sock).unwrap();
            let f = dir.join("f");
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .open(&f)
                .unwrap();
            (l, mode(&f), current_umask())
        });
        assert_eq!(inner, 0o177);
        assert_eq!(mode(&sock), 0o600, "socket bound under umask 0177");
        assert_eq!(file_mode, 0o600);
        assert_eq!(current_umask(), before, "the previous mask is back");
        drop(listener);
        let panicked = std::panic::catch_unwind(|| with_umask(0o077, || panic!("inside")));
        assert!(panicked.is_err());
        assert_eq!(current_umask(), before, "restored after a panic too");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn peer_uid_is_the_connecting_user() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), euid());
        assert_eq!(peer_uid(&b).unwrap(), euid());
    }
}
