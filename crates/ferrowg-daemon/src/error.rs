//! Why the daemon could not start or failed ([`DaemonError`]), and the one reading of OS
//! error numbers the start-up relies on ([`OsCause`]).

/// Why the daemon could not start, or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Not root / no CAP_NET_ADMIN.
    #[error("creating {iface} needs root or CAP_NET_ADMIN ({source})")]
    Privilege {
        /// The interface.
        iface: String,
        /// The OS error.
        source: ferrowg_sys::Error,
    },
    /// /dev/net/tun is missing.
    #[error("/dev/net/tun is missing: load the tun module or create the device node ({0})")]
    NoTun(ferrowg_sys::Error),
    /// A thread of the running daemon panicked (the report says which, where and why); the
    /// daemon stopped.
    #[error("stopped after a panic: {0}")]
    Panicked(String),
    /// Another OS error.
    #[error("{what}: {source}")]
    Os {
        /// What failed.
        what: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A [`DaemonError::Os`]: `what` failed with `e`.
pub(crate) fn os(
    what: impl Into<String>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> DaemonError {
    DaemonError::Os {
        what: what.into(),
        source: Box::new(e),
    }
}

/// What an OS error says about the machine, as far as starting the daemon cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OsCause {
    /// `EPERM` (no CAP_NET_ADMIN for TUNSETIFF) or `EACCES` (the mode of /dev/net/tun does not
    /// let the user open it: 0600 or 0660 on many systems).
    Privilege,
    /// `ENOENT`: /dev/net/tun does not exist.
    NoDevice,
    /// Anything else.
    Other,
}

/// The errno values [`OsCause`] tells apart (ferrowg has no libc dependency of its own).
const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EACCES: i32 = 13;

impl OsCause {
    /// The cause of `e`.
    pub(crate) fn of(e: &ferrowg_sys::Error) -> OsCause {
        match e.raw_os_error() {
            Some(EPERM | EACCES) => OsCause::Privilege,
            Some(ENOENT) => OsCause::NoDevice,
            _ => OsCause::Other,
        }
    }
}
