//! `ferrowg daemon`: runs the userspace WireGuard daemon (the [`ferrowg_daemon`] runtime) in
//! the foreground, or detached in the background like wireguard-go; its options are the
//! daemon's [`Tuning`], parsed here once and passed down.
//!
//! The exit status is 0 after a normal stop (a signal, the interface or the UAPI socket
//! removed) and non-zero after a failure, a panic in any of the daemon's threads included, so
//! a supervisor restarts it.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferrowg_conf::uapi::{socket_path, valid_iface_name};
use ferrowg_daemon::{Aead, Tuning};
use ferrowg_metrics::interface::InterfaceCollector;
use ferrowg_metrics::prometheus_client::registry::Registry;
use ferrowg_metrics::serve::spawn_thread;

use super::{usage, CliError};

/// `ferrowg daemon --help`.
const USAGE: &str = "Usage: ferrowg daemon [--foreground] [--aead=ring] [--no-offload] [--metrics=ADDR:PORT] INTERFACE

Creates the WireGuard interface INTERFACE and serves its UAPI socket
/var/run/wireguard/INTERFACE.sock, like wireguard-go; configure it with `ferrowg set',
`ferrowg setconf' or wg(8). Without --foreground it detaches once the interface is ready.

Options:
  -f, --foreground  stay in the foreground and log to standard error (RUST_LOG: level)
  --aead=ring       encrypt and decrypt every datagram with ring, never with the AVX-512
                    batch code (default --aead=auto: batches in AVX-512 lanes where the
                    CPU has AVX-512F and IFMA)
  --no-offload      no TSO/USO/GRO offloads on the TUN device: one plain IP packet per
                    read and write
  --metrics=ADDR:PORT  Prometheus metrics at http://ADDR:PORT/metrics (per-peer bytes and
                    handshakes as prometheus_wireguard_exporter names them, handshakes,
                    cookies, drops by reason); e.g. --metrics=127.0.0.1:9586";

/// `--aead=ring`: ring for every datagram.
const AEAD_RING: &str = "--aead=ring";
/// `--aead=auto`: the default.
const AEAD_AUTO: &str = "--aead=auto";
/// `--no-offload`: a plain TUN device.
const NO_OFFLOAD: &str = "--no-offload";
/// `--metrics=ADDR:PORT`: the Prometheus listener.
const METRICS: &str = "--metrics=";

/// What the command line asks of the daemon.
struct DaemonArgs<'a> {
    iface: &'a str,
    foreground: bool,
    tuning: Tuning,
    metrics: Option<SocketAddr>,
}

/// Parses `[--foreground|-f] [--aead=ring|auto] [--no-offload] [--metrics=ADDR:PORT] IFACE`
/// (options in any order); `None` for `--help`.
fn parse<'a>(args: &[&'a str]) -> Result<Option<DaemonArgs<'a>>, CliError> {
    let mut foreground = false;
    let mut tuning = Tuning::default();
    let mut metrics = None;
    let mut names = Vec::new();
    for &arg in args {
        match arg {
            "--help" | "-h" => return Ok(None),
            "--foreground" | "-f" => foreground = true,
            AEAD_RING => tuning.aead = Aead::Ring,
            AEAD_AUTO => tuning.aead = Aead::Auto,
            NO_OFFLOAD => tuning.offload = false,
            _ if arg.starts_with(METRICS) => {
                let addr = &arg[METRICS.len()..];
                metrics = Some(addr.parse().map_err(|_| {
                    usage(&format!(
                        "--metrics: `{addr}' is not ADDR:PORT (e.g. 127.0.0.1:9586)\n{USAGE}"
                    ))
                })?);
            }
            _ if arg.starts_with('-') => {
                return Err(usage(&format!("Unknown option `{arg}'\n{USAGE}")));
            }
            _ => names.push(arg),
        }
    }
    let [iface] = names.as_slice() else {
        return Err(usage(USAGE));
    };
    Ok(Some(DaemonArgs {
        iface,
        foreground,
        tuning,
        metrics,
    }))
}

/// The options that give `tuning` back to [`parse`] (none for the default).
fn tuning_args(tuning: &Tuning) -> Vec<&'static str> {
    let mut args = Vec::new();
    if tuning.aead == Aead::Ring {
        args.push(AEAD_RING);
    }
    if !tuning.offload {
        args.push(NO_OFFLOAD);
    }
    args
}

/// `ferrowg daemon [OPTIONS] IFACE`, and wireguard-go's `[-f] IFACE`.
pub fn command(args: &[&str]) -> Result<(), CliError> {
    let Some(DaemonArgs {
        iface,
        foreground,
        tuning,
        metrics,
    }) = parse(args)?
    else {
        println!("{USAGE}");
        return Ok(());
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
        run(iface, &tuning, metrics)
    } else {
        start_detached(iface, &tuning, metrics)
    }
}

/// Runs the daemon in this process, with its metrics listener when `metrics` names one.
fn run(iface: &str, tuning: &Tuning, metrics: Option<SocketAddr>) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::new(format!("ferrowg: {e}"));
    let running = ferrowg_daemon::start(iface, tuning, None).map_err(|e| failed(&e))?;
    if let Some(addr) = metrics {
        let mut registry = Registry::default();
        let collector = InterfaceCollector::new(iface, running.handle(), None);
        registry.register_collector(Box::new(collector));
        let bound = spawn_thread(addr, Arc::new(registry))
            .map_err(|e| failed(&format!("metrics listener {addr}: {e}")))?;
        log::info!("{iface}: metrics at http://{bound}/metrics");
    }
    running.wait().map_err(|e| failed(&e))
}

/// Starts the daemon for `iface` in the background, untuned, and returns once the UAPI socket
/// is up (see [`start_detached`]).
pub(super) fn spawn_detached(iface: &str) -> Result<(), CliError> {
    start_detached(iface, &Tuning::default(), None)
}

/// Starts the daemon in the background and returns once the UAPI socket is up.
///
/// The daemon outlives the caller, so it must not keep the caller's standard error open: a
/// caller that captures it (`out=$(wg-quick up wg0 2>&1)`, a test harness, a pipe to `tee`)
/// would otherwise wait for the daemon to exit. Its standard error is a pipe instead, relayed
/// to ours while we wait, so start-up errors are still shown; once we return, the pipe closes
/// and later messages are dropped (as wireguard-go drops them unless LOG_LEVEL is set). Run
/// `daemon --foreground` to keep the log. The detached daemon gets the same `tuning`.
fn start_detached(
    iface: &str,
    tuning: &Tuning,
    metrics: Option<SocketAddr>,
) -> Result<(), CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("ferrowg: cannot find own executable: {e}")))?;
    let mut child = Command::new(exe)
        .args(["daemon", "--foreground"])
        .args(tuning_args(tuning))
        .args(metrics.map(|m| format!("{METRICS}{m}")))
        .arg(iface)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> (String, bool, Tuning) {
        let a = parse(args).unwrap().unwrap();
        (a.iface.to_string(), a.foreground, a.tuning)
    }

    #[test]
    fn metrics_option() {
        let a = parse(&["--metrics=127.0.0.1:9586", "wg0"])
            .unwrap()
            .unwrap();
        assert_eq!(a.metrics, Some("127.0.0.1:9586".parse().unwrap()));
        assert!(parse(&["wg0"]).unwrap().unwrap().metrics.is_none());
        for bad in [
            "--metrics=",
            "--metrics=localhost:9586",
            "--metrics=127.0.0.1",
        ] {
            assert!(parse(&[bad, "wg0"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_parse_and_round_trip() {
        let plain = Tuning::default();
        assert_eq!(parsed(&["wg0"]), ("wg0".into(), false, plain));
        assert_eq!(parsed(&["-f", "wg0"]), ("wg0".into(), true, plain));
        let tuned = Tuning {
            aead: Aead::Ring,
            offload: false,
        };
        let args = ["--no-offload", "wg0", "--aead=ring", "--foreground"];
        assert_eq!(parsed(&args), ("wg0".into(), true, tuned));
        // What a detached start passes on parses back to the same tuning.
        for t in [plain, tuned] {
            let mut again = tuning_args(&t);
            again.push("wg0");
            assert_eq!(parsed(&again).2, t);
        }
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--aead=chacha", "wg0"]).is_err());
        assert!(parse(&["wg0", "wg1"]).is_err());
        assert!(parse(&[]).is_err());
    }
}
