//! Thin, safe wrappers around the file-descriptor system calls that TUN and UDP share:
//! `read`/`write`, readiness waits with a timeout (`ppoll`) and integer socket options.
//!
//! Every wrapper retries on `EINTR` (a signal for the daemon, e.g. SIGHUP, must not surface as an
//! I/O error) and returns `io::Error`; the callers add the name of the operation.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
}

impl Interest {
    fn events(self) -> libc::c_short {
        match self {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        }
    }
}

/// When a wait gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Deadline {
    /// No timeout: wait forever.
    Never,
    /// A zero timeout: do not wait at all (known without reading the clock, which the data
    /// path's non-blocking calls would otherwise do on every call).
    Passed,
    /// Wait until then.
    At(Instant),
}

impl Deadline {
    /// A deadline `timeout` from now (`None`: never).
    pub(crate) fn after(timeout: Option<Duration>) -> Self {
        match timeout {
            None => Deadline::Never,
            Some(t) if t.is_zero() => Deadline::Passed,
            // A timeout too large to represent as an Instant is as good as "never".
            Some(t) => Instant::now()
                .checked_add(t)
                .map_or(Deadline::Never, Deadline::At),
        }
    }

    /// The time left, `None` if there is no deadline; zero once it has passed.
    pub(crate) fn remaining(self) -> Option<Duration> {
        match self {
            Deadline::Never => None,
            Deadline::Passed => Some(Duration::ZERO),
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }
}

/// Runs `f` until it does not fail with `EINTR`.
fn retry_eintr<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Turns a `-1`-on-error return value into `io::Result`.
pub(crate) fn cvt<T: Copy + PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `read(2)` once into `buf` (retrying `EINTR`); `WouldBlock` on a nonblocking fd with no data.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    retry_eintr(|| {
        // SAFETY: `buf` is a valid, writable region of `buf.len()` bytes for the whole call, and
        // `fd` is a live descriptor borrowed for the call.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        // `read` returns at most `buf.len()`, so a non-negative result fits in usize.
        cvt(n).map(|n| n as usize)
    })
}

/// `write(2)` once from `buf` (retrying `EINTR`).
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    retry_eintr(|| {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call, and `fd` is a
        // live descriptor borrowed for the call.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        cvt(n).map(|n| n as usize)
    })
}

/// `writev(2)` once from `bufs`, gathered in order (retrying `EINTR`).
pub(crate) fn writev(fd: BorrowedFd<'_>, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // More than UIO_MAXIOV slices would fail with EINVAL; say so before the call.
    let count = libc::c_int::try_from(bufs.len())
        .ok()
        .filter(|&n| n <= libc::UIO_MAXIOV)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    retry_eintr(|| {
        // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` (std guarantees it on Unix), and
        // every slice in `bufs` is valid for reads of its length for the whole call; `count` is
        // the number of slices; `fd` is a live descriptor borrowed for the call.
        let n = unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), count) };
        cvt(n).map(|n| n as usize)
    })
}

/// Waits until `fd` (any descriptor: a listening socket, a pipe) has something to read, at most
/// `timeout` (`None`: forever). `Ok(false)` on timeout; error conditions count as readable.
pub fn wait_readable(fd: impl AsFd, timeout: Option<Duration>) -> io::Result<bool> {
    wait(fd.as_fd(), Interest::Read, Deadline::after(timeout))
}

/// Waits until `fd` is ready for `interest` or `deadline` passes.
///
/// Returns `Ok(true)` when ready, `Ok(false)` on timeout. Error conditions (`POLLERR`, `POLLHUP`,
/// `POLLNVAL`) count as ready: the next read or write on the fd then reports what is wrong, which
/// is how a deleted TUN interface surfaces (its `poll` returns `POLLERR`).
pub(crate) fn wait(fd: BorrowedFd<'_>, interest: Interest, deadline: Deadline) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: interest.events(),
        revents: 0,
    };
    loop {
        let remaining = deadline.remaining();
        let ts = remaining.map(|d| libc::timespec {
            // Clamp: a wait of more than i64::MAX seconds is a wait forever in practice.
            tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
            // subsec_nanos() < 1e9 always fits in c_long.
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `pfd` is one valid, writable pollfd; `ts_ptr` is null or points to `ts`, which
        // lives until after the call; a null sigmask leaves the signal mask unchanged.
        let ret = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
        match cvt(ret) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(pfd.revents != 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a valid `c_int` that lives for the call, and the length passed
    // is exactly its size.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// `getsockopt(fd, level, name)` for an `int`-valued option.
pub(crate) fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid and writable for the call, and `len` holds the size of
    // `value`, so the kernel writes at most that many bytes.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    cvt(ret)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn wait_times_out_then_sees_data() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let start = Instant::now();
        let ready = wait(
            a.as_fd(),
            Interest::Read,
            Deadline::after(Some(Duration::from_millis(20))),
        );
        assert!(!ready.unwrap());
        assert!(start.elapsed() >= Duration::from_millis(20));

        b.send(b"x").unwrap();
        let ready = wait(
            a.as_fd(),
            Interest::Read,
            Deadline::after(Some(Duration::from_secs(5))),
        );
        assert!(ready.unwrap());
        assert!(wait(
            a.as_fd(),
            Interest::Write,
            Deadline::after(Some(Duration::ZERO))
        )
        .unwrap());
    }

    #[test]
    fn wait_readable_sees_a_listener_s_pending_connection() {
        let dir = std::env::temp_dir().join(format!("ferrowg-sys-wait-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = std::os::unix::net::UnixListener::bind(&dir).unwrap();
        assert!(!wait_readable(&listener, Some(Duration::from_millis(10))).unwrap());
        let _client = std::os::unix::net::UnixStream::connect(&dir).unwrap();
        assert!(wait_readable(&listener, Some(Duration::from_secs(5))).unwrap());
        assert!(listener.accept().is_ok());
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn nonblocking_read_would_block_then_reads() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 16];
        let err = read(a.as_fd(), &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(write(b.as_fd(), b"hello").unwrap(), 5);
        assert_eq!(read(a.as_fd(), &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
    }

    #[test]
    fn int_socket_options_round_trip() {
        let (a, _b) = UnixDatagram::pair().unwrap();
        setsockopt_int(a.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, 65536).unwrap();
        // Linux doubles the value for bookkeeping overhead.
        assert!(getsockopt_int(a.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF).unwrap() >= 65536);
    }

    #[test]
    fn deadline_without_timeout_never_expires() {
        assert_eq!(Deadline::after(None).remaining(), None);
        let d = Deadline::after(Some(Duration::ZERO));
        assert_eq!(d.remaining(), Some(Duration::ZERO));
    }
}
