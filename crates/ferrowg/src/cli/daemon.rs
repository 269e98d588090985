//! `ferrowg daemon`: runs the userspace WireGuard daemon (the [`ferrowg_daemon`] runtime) in
//! the foreground, or detached in the background like wireguard-go.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrowg_conf::uapi::{socket_path, valid_iface_name};

use super::{usage, CliError};

/// `ferrowg daemon [--foreground] IFACE`, and wireguard-go's `[-f] IFACE`.
pub fn command(args: &[&str]) -> Result<(), CliError> {
    let foreground = args.iter().any(|a| *a == "--foreground" || *a == "-f");
    let names: Vec<&&str> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let [iface] = names.as_slice() else {
        return Err(usage("Usage: ferrowg daemon [--foreground] INTERFACE"));
    };
    if !valid_iface_name(iface) {
        return Err(CliError::new(format!(
            "`{iface}' is not a valid interface name"
        )));
    }
    let detached = std::env::var_os("FERROWG_DETACHED").is_some();
    if foreground || detached {
        // A detached daemon's log goes nowhere once its parent returns: only warnings and
        // errors, which the parent relays while it waits for the start-up.
        let env =
            env_logger::Env::default().default_filter_or(if detached { "warn" } else { "info" });
        let _ = env_logger::Builder::from_env(env)
            .format_target(false)
            .try_init();
        ferrowg_daemon::run(iface).map_err(|e| CliError::new(format!("ferrowg: {e}")))
    } else {
        spawn_detached(iface)
    }
}

/// Starts the daemon in the background and returns once the UAPI socket is up.
///
/// The daemon outlives the caller, so it must not keep the caller's standard error open: a
/// caller that captures it (`out=$(wg-quick up wg0 2>&1)`, a test harness, a pipe to `tee`)
/// would otherwise wait for the daemon to exit. Its standard error is a pipe instead, relayed
/// to ours while we wait, so start-up errors are still shown; once we return, the pipe closes
/// and later messages are dropped (as wireguard-go drops them unless LOG_LEVEL is set). Run
/// `daemon --foreground` to keep the log.
pub(super) fn spawn_detached(iface: &str) -> Result<(), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("ferrowg: cannot find own executable: {e}")))?;
    let mut child = Command::new(exe)
        .args(["daemon", "--foreground", iface])
        .env("FERROWG_DETACHED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::new(format!("ferrowg: cannot start the daemon: {e}")))?;
    let relay = child
        .stderr
        .take()
        .map(|from| std::thread::spawn(move || relay_lines(from)));
    let path = socket_path(iface);
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            // The pipe is at its end now: let the daemon's own message come out first.
            if let Some(r) = relay {
                let _ = r.join();
            }
            return Err(CliError::new(format!(
                "ferrowg: daemon: exited early: {status}"
            )));
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(CliError::new(
        "ferrowg: daemon: UAPI socket did not appear within 5 s",
    ))
}

/// Copies the detached daemon's standard error to ours, line by line, until it closes.
fn relay_lines(from: std::process::ChildStderr) {
    use std::io::{BufRead, Write};
    for line in std::io::BufReader::new(from).lines() {
        let Ok(line) = line else { return };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
