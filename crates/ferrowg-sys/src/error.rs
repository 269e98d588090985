//! The one error type of the sys crate.
//!
//! The daemon has to tell three situations apart, and the enum is shaped after them:
//! - the TUN interface was deleted under us ([`Error::InterfaceGone`]): shut the device down
//!   cleanly, this is how `ip link del wg0` stops a userspace WireGuard;
//! - the caller passed something Linux cannot accept (a bad interface name, an address of the wrong
//!   family, offloads without a virtio-net header): a configuration error to report to the user;
//! - any other system call failure ([`Error::Os`]), which names the call that failed.
//!
//! Timeouts are not errors: the waiting calls return `Ok(false)`, `Ok(None)` or `Ok(0)` instead.

use std::io;
use std::net::SocketAddr;

/// `Result` with this crate's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TUN interface behind this handle no longer exists: it was deleted (`ip link del`) or
    /// its queue was detached. The kernel reports this on read/write as `EBADFD` (or `ENODEV`).
    /// Every further call on the handle fails the same way; drop it.
    #[error("TUN interface {name} is gone (deleted or detached)")]
    InterfaceGone {
        /// The name the interface had when it was opened.
        name: String,
    },

    /// An interface name Linux rejects: empty, longer than 15 bytes, `.` or `..`, or containing
    /// NUL, `/`, `:` or whitespace.
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterfaceName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A destination address this socket cannot reach: an IPv6 address on an IPv4-only socket,
    /// or an IPv4 address on an IPv6-only socket.
    #[error("cannot send to {addr} from a socket bound to {local}")]
    AddressFamily {
        /// The destination that was asked for.
        addr: SocketAddr,
        /// The socket's local address (its family decides what it can reach).
        local: SocketAddr,
    },

    /// A call that cannot work with this handle's configuration (the reason says why), e.g.
    /// offloads on a TUN device opened without a virtio-net header.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: &'static str,
    },

    /// A system call failed.
    #[error("{op}: {source}")]
    Os {
        /// The call (and, for ioctls and socket options, the request) that failed.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an OS error with the name of the call that produced it.
    pub(crate) fn os(op: &'static str, source: io::Error) -> Self {
        Error::Os { op, source }
    }

    /// True if the TUN interface was deleted or detached (see [`Error::InterfaceGone`]).
    pub fn is_interface_gone(&self) -> bool {
        matches!(self, Error::InterfaceGone { .. })
    }

    /// The `errno` of a failed system call, if this is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The closest [`io::ErrorKind`], for callers that work in `io::Error` terms.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            Error::InterfaceGone { .. } => io::ErrorKind::NotFound,
            Error::InvalidInterfaceName { .. }
            | Error::AddressFamily { .. }
            | Error::InvalidArgument { .. } => io::ErrorKind::InvalidInput,
            Error::Os { source, .. } => source.kind(),
        }
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        match err {
            // Keep the errno (and so `raw_os_error()`) of a plain OS failure intact.
            Error::Os { source, .. } => source,
            other => io::Error::new(other.kind(), other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_keep_their_errno_through_io_error() {
        let err = Error::os("read", io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        let expected = format!("read: {}", io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(err.to_string(), expected);
        let io: io::Error = err.into();
        assert_eq!(io.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn interface_gone_is_distinct() {
        let err = Error::InterfaceGone { name: "wg0".into() };
        assert!(err.is_interface_gone());
        assert_eq!(err.raw_os_error(), None);
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("wg0"));
        let io: io::Error = err.into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }
}
