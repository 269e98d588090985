//! What a panic does to the daemon: it ends it. A thread that died alone would leave the
//! interface up with nothing moving its packets, and a supervisor (systemd, a container
//! runtime) would see a live process; so the hook [`install`] puts in place logs the panic,
//! records it ([`first`]) and stops every thread. [`run`](crate::run) then shuts down as on a
//! signal (TUN device and UAPI socket removed) and fails, and the process exits non-zero.
//! A panic of the main thread itself unwinds out of `run` and exits with Rust's 101.
//!
//! The hook covers every thread of the process, also those started per UAPI connection. It
//! is process-wide and stays installed once `run` has returned.
//!
//! Debug builds only, for tests: the environment variable `FERROWG_TEST_PANIC` (read once, at
//! start) names a kind of thread ([`ThreadKind`]: `datapath`, `timers`, `handshakes`,
//! `resolver`, `control`, `main`) that panics once the daemon has started ([`test_point`]);
//! release builds compile none of it.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write as _;
use std::panic::PanicHookInfo;
use std::sync::{Arc, OnceLock};

use crate::datapath::Shared;

/// The report of the first panic since [`install`].
static FIRST: OnceLock<String> = OnceLock::new();

/// Makes a panic in any thread log itself, and stop `shared`'s threads.
pub(crate) fn install(shared: &Arc<Shared>) {
    let shared = Arc::downgrade(shared);
    std::panic::set_hook(Box::new(move |info| {
        let report = report(info);
        let trace = Backtrace::capture();
        let trace = match trace.status() {
            BacktraceStatus::Captured => format!("\n{trace}"),
            _ => String::new(),
        };
        if log::log_enabled!(log::Level::Error) {
            log::error!("{report}{trace}");
        } else {
            // Not eprintln!: standard error may be a closed pipe, and a panic here aborts.
            let _ = writeln!(std::io::stderr(), "ferrowg: {report}{trace}");
        }
        let _ = FIRST.set(report.clone());
        if let Some(shared) = shared.upgrade() {
            shared.stop(report);
        }
    }));
}

/// The first panic since [`install`], as logged.
pub(crate) fn first() -> Option<String> {
    FIRST.get().cloned()
}

/// `thread NAME panicked at FILE:LINE:COL: MESSAGE`.
fn report(info: &PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("unnamed");
    let payload = info.payload();
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    match info.location() {
        Some(at) => format!("thread {name} panicked at {at}: {what}"),
        None => format!("thread {name} panicked: {what}"),
    }
}

/// The kinds of thread `FERROWG_TEST_PANIC` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadKind {
    /// The data-path threads.
    Datapath,
    /// The timer thread.
    Timers,
    /// The handshake worker.
    Handshakes,
    /// The thread that resolves endpoint names again.
    Resolver,
    /// The UAPI socket's accepting thread.
    Control,
    /// The main thread, watching for the end.
    Main,
}

/// The test-only trigger, compiled in debug builds only.
#[cfg(debug_assertions)]
mod trigger {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    use std::time::Duration;

    use super::ThreadKind;
    use crate::datapath::Shared;

    /// Test-only: `FERROWG_TEST_PANIC=datapath|timers|handshakes|resolver|control|main` makes the threads of that
    /// kind panic once the daemon has started.
    const TEST_PANIC: &str = "FERROWG_TEST_PANIC";

    /// Set once every thread runs.
    static STARTED: AtomicBool = AtomicBool::new(false);

    /// The kind [`TEST_PANIC`] names, read once.
    fn armed() -> Option<ThreadKind> {
        static ARMED: OnceLock<Option<ThreadKind>> = OnceLock::new();
        *ARMED.get_or_init(|| match std::env::var(TEST_PANIC).ok()?.as_str() {
            "datapath" => Some(ThreadKind::Datapath),
            "timers" => Some(ThreadKind::Timers),
            "handshakes" => Some(ThreadKind::Handshakes),
            "resolver" => Some(ThreadKind::Resolver),
            "control" => Some(ThreadKind::Control),
            "main" => Some(ThreadKind::Main),
            other => {
                log::warn!("{TEST_PANIC}={other}: not a thread kind, ignored");
                None
            }
        })
    }

    /// Reads the variable now, at start.
    pub(crate) fn arm() {
        armed();
    }

    /// Every thread runs: the armed ones may panic.
    pub(crate) fn started() {
        STARTED.store(true, Ordering::SeqCst);
    }

    /// Panics if armed for `kind`, once every thread runs (unless the daemon stops first).
    pub(crate) fn test_point(kind: ThreadKind, shared: &Shared) {
        if armed() != Some(kind) {
            return;
        }
        while !STARTED.load(Ordering::SeqCst) {
            if shared.stopping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{TEST_PANIC}: test-only panic of a {kind:?} thread");
    }
}

/// Reads `FERROWG_TEST_PANIC` (debug builds; nothing in release builds).
pub(crate) fn arm_test_panic() {
    #[cfg(debug_assertions)]
    trigger::arm();
}

/// Tells [`test_point`] that every thread runs (debug builds; nothing in release builds).
pub(crate) fn started() {
    #[cfg(debug_assertions)]
    trigger::started();
}

/// In debug builds, if `FERROWG_TEST_PANIC` names `kind`: waits until the daemon has started (or
/// is stopping), then panics. Nothing in release builds.
pub(crate) fn test_point(kind: ThreadKind, shared: &Shared) {
    #[cfg(debug_assertions)]
    trigger::test_point(kind, shared);
    #[cfg(not(debug_assertions))]
    let _ = (kind, shared);
}
