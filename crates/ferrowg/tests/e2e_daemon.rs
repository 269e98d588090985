//! End-to-end: how `ferrowg daemon` ends (issue #17, item 7). A panic in any of its threads
//! (data path, timers, endpoint resolver, UAPI socket, main) ends the process with a non-zero exit and a log line
//! naming the panic, and removes the interface and the UAPI socket as a normal stop does; a
//! signal ends it with success. The panics come from the debug build's test-only trigger
//! `FERROWG_TEST_PANIC=<kind>`, which makes the threads of that kind panic once the daemon has
//! started.
//!
//! Each run has a namespace of its own and an interface name of its own; the daemon gets
//! 20 s to end and is killed (with the namespace) if it does not.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use ferrowg_testkit::*;

/// How long the daemon may take to start, and then to end.
const LIMIT: Duration = Duration::from_secs(20);

/// A `ferrowg daemon --foreground` in a namespace, its standard error in a file; killed on
/// drop if it still runs.
struct Daemon {
    child: Child,
    log: PathBuf,
    iface: String,
}

impl Daemon {
    /// Starts the daemon for a new interface in `ns`, with `envs`.
    fn start(ns: &mut Netns, envs: &[(&str, &str)]) -> Daemon {
        let iface = iface_name("d");
        ns.own_iface(&iface);
        let log = std::env::temp_dir().join(format!("{}-{iface}.log", ns.name));
        let err = File::create(&log).expect("log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name])
            .arg(ferrowg_bin())
            .args(["daemon", "--foreground", &iface])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start ferrowg daemon");
        Daemon { child, log, iface }
    }

    /// What the daemon logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its exit status, once it has ended within [`LIMIT`]; panics (with the log) if it
    /// does not end.
    fn wait(&mut self) -> ExitStatus {
        let mut status = None;
        wait_for(LIMIT, || {
            status = self.child.try_wait().expect("wait for the daemon");
            status.is_some()
        });
        status.unwrap_or_else(|| panic!("the daemon did not end within {LIMIT:?}:\n{}", self.log()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs the daemon with `FERROWG_TEST_PANIC=kind` and checks that it starts, ends with a
/// failure and a log line naming the panic of thread `thread`, and leaves neither its
/// interface nor its UAPI socket behind.
fn panic_ends_the_daemon(kind: &str, thread: &str) {
    let Some(mut ns) = Netns::for_test("panic") else {
        return;
    };
    let mut d = Daemon::start(&mut ns, &[("FERROWG_TEST_PANIC", kind)]);
    let status = d.wait();
    let log = d.log();
    assert!(!status.success(), "{kind}: exit {status}\n{log}");
    assert!(log.contains("started"), "{kind}: never started:\n{log}");
    assert!(
        log.contains(&format!("thread {thread}"))
            && log.contains("panicked")
            && log.contains("FERROWG_TEST_PANIC"),
        "{kind}: the log does not name the panic:\n{log}"
    );
    assert!(
        !ns.sh(&format!("ip link show {}", d.iface)).status.success(),
        "{kind}: the interface outlived the daemon"
    );
    assert!(
        !socket_path(&d.iface).exists(),
        "{kind}: the UAPI socket outlived the daemon"
    );
}

#[test]
fn a_panic_in_a_data_path_thread_ends_the_daemon() {
    panic_ends_the_daemon("datapath", "data-");
}

#[test]
fn a_panic_in_the_timer_thread_ends_the_daemon() {
    panic_ends_the_daemon("timers", "timers");
}

#[test]
fn a_panic_in_the_handshake_worker_ends_the_daemon() {
    panic_ends_the_daemon("handshakes", "handshakes");
}

#[test]
fn a_panic_in_the_resolver_thread_ends_the_daemon() {
    panic_ends_the_daemon("resolver", "resolve");
}

#[test]
fn a_panic_in_the_control_socket_thread_ends_the_daemon() {
    panic_ends_the_daemon("control", "uapi");
}

#[test]
fn a_panic_in_the_main_thread_ends_the_daemon() {
    panic_ends_the_daemon("main", "main");
}

/// Without a panic, SIGTERM ends the daemon with success (so the failures above are the
/// panics', not the way the tests stop it).
#[test]
fn a_signal_ends_the_daemon_with_success() {
    let Some(mut ns) = Netns::for_test("term") else {
        return;
    };
    let mut d = Daemon::start(&mut ns, &[]);
    let up = wait_for(LIMIT, || socket_path(&d.iface).exists());
    assert!(up.is_some(), "the daemon did not start:\n{}", d.log());
    run(&format!("kill -TERM {}", d.child.id()));
    let status = d.wait();
    assert!(status.success(), "exit {status}\n{}", d.log());
    assert!(!socket_path(&d.iface).exists());
}
