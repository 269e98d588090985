//! `ferrowg daemon IFACE`: the userspace WireGuard daemon, a drop-in for wireguard-go.
//!
//! It creates TUN device IFACE and the UAPI socket `/var/run/wireguard/IFACE.sock`, then runs
//! until the interface is deleted, the socket is removed, or it gets SIGTERM/SIGINT; it then
//! removes both. Without `--foreground` it detaches (re-executes itself in the background and
//! returns once the interface is ready), like wireguard-go.
//!
//! Threads: one TUN→UDP and one UDP→TUN data-path thread (so both cores work), one for the
//! protocol timers, one for the UAPI socket, and the main thread watching for the end.

pub mod crypto;
pub mod datapath;
pub mod offload;
mod rng;
pub mod state;
pub mod uapi;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ferrowg_proto::crypto::aws_lc::WithAwsLcX25519;
use ferrowg_proto::crypto::RingCrypto;
use ferrowg_proto::Device;

use datapath::Shared;
use state::{NoKey, State};

/// Why the daemon could not start.
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
    /// Another OS error.
    #[error("{what}: {source}")]
    Os {
        /// What failed.
        what: String,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn os(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> DaemonError {
    DaemonError::Os {
        what: what.into(),
        source: Box::new(e),
    }
}

/// Validates an interface name like the kernel does (1–15 bytes, no '/', no whitespace).
pub fn valid_iface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace())
}

/// Starts the daemon in the background and returns once the UAPI socket is up.
///
/// The daemon outlives the caller, so it must not keep the caller's standard error open: a
/// caller that captures it (`out=$(wg-quick up wg0 2>&1)`, a test harness, a pipe to `tee`)
/// would otherwise wait for the daemon to exit. Its standard error is a pipe instead, relayed
/// to ours while we wait, so start-up errors are still shown; once we return, the pipe closes
/// and later messages are dropped (as wireguard-go drops them unless LOG_LEVEL is set). Run
/// `daemon --foreground` to keep the log.
pub fn spawn_detached(iface: &str) -> Result<(), DaemonError> {
    let exe = std::env::current_exe().map_err(|e| os("cannot find own executable", e))?;
    let mut child = Command::new(exe)
        .args(["daemon", "--foreground", iface])
        .env("FERROWG_DETACHED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| os("cannot start the daemon", e))?;
    let relay = child
        .stderr
        .take()
        .map(|from| std::thread::spawn(move || relay_lines(from)));
    let path = uapi::socket_path(iface);
    for _ in 0..200 {
        if let Ok(Some(status)) = child.try_wait() {
            // The pipe is at its end now: let the daemon's own message come out first.
            if let Some(r) = relay {
                let _ = r.join();
            }
            return Err(os(
                "daemon",
                std::io::Error::other(format!("exited early: {status}")),
            ));
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(os(
        "daemon",
        std::io::Error::other("UAPI socket did not appear within 5 s"),
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

use std::os::unix::process::CommandExt as _;

/// Runs the daemon in this process until it is told to stop.
pub fn run(iface: &str) -> Result<(), DaemonError> {
    let (tun, offload) = datapath::open_tun(iface).map_err(|e| {
        // EPERM: TUNSETIFF without CAP_NET_ADMIN. EACCES: /dev/net/tun's mode does not let
        // the user open it (0600 or 0660 on many systems).
        if matches!(e.raw_os_error(), Some(1 | 13)) {
            DaemonError::Privilege {
                iface: iface.to_string(),
                source: e,
            }
        } else if e.raw_os_error() == Some(2) {
            DaemonError::NoTun(e)
        } else {
            os(format!("cannot create TUN device {iface}"), e)
        }
    })?;
    let socket = state::bind_socket(0, 0).map_err(|e| {
        os(
            "cannot bind a UDP socket",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let rng = rng::ErasingRng::from_os().map_err(|e| {
        os(
            "cannot seed the random number generator",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let device = Device::new(
        Box::new(NoKey),
        // ring's ChaCha20-Poly1305 and aws-lc's X25519: the fastest of each measured here
        // (crates/ferrowg-proto/benches); batches of datagrams in AVX-512 lanes (crypto.rs).
        Box::new(crypto::BatchCrypto::new(WithAwsLcX25519(RingCrypto))),
        Box::new(rng),
    );
    let mut st = State::new(device, socket);
    let now = state::now();
    st.device.set_clock(now, state::unix_nanos());
    if let Ok(mtu) = tun.mtu() {
        st.device.set_mtu(mtu as usize);
        st.device_mtu = mtu;
    }
    let listener = uapi::listen(iface).map_err(|e| os("cannot create the UAPI socket", e))?;
    let shared = Arc::new(Shared {
        state: Mutex::new(st),
        timer_wake: Condvar::new(),
        shutdown: AtomicBool::new(false),
        reason: Mutex::new(None),
        stats: Default::default(),
    });
    let term = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| os("cannot install signal handlers", e))?;
    }
    log::info!(
        "{iface}: ferrowg {} started (crypto: {} ChaCha20-Poly1305, aws-lc X25519; TUN \
         offloads: {offload:?})",
        env!("CARGO_PKG_VERSION"),
        shared.lock().device.crypto_name(),
    );

    let mut handles = Vec::new();
    for q in tun.into_queues() {
        let q = Arc::new(
            datapath::Queue::new(&shared, q, offload)
                .map_err(|e| os("cannot set up the data path", e))?,
        );
        for name in ["data-0", "data-1"] {
            let (s, q) = (shared.clone(), q.clone());
            handles.push(spawn(name, move || q.work(&s))?);
        }
    }
    let s = shared.clone();
    handles.push(spawn("timers", move || datapath::timers(s))?);
    let s = shared.clone();
    handles.push(spawn("uapi", move || uapi::serve(s, listener))?);

    let path = uapi::socket_path(iface);
    let mut tick = 0u32;
    let mut mtu = shared.lock().device_mtu;
    while !shared.shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if term.load(Ordering::Relaxed) {
            shared.stop("signal received");
        }
        follow_mtu(&shared, iface, &mut mtu);
        tick += 1;
        if tick.is_multiple_of(5) {
            if !path.exists() {
                shared.stop(format!("{} was removed", path.display()));
            }
            if !ferrowg_sys::netdev::exists(iface).unwrap_or(true) {
                shared.stop(format!("interface {iface} was removed"));
            }
        }
    }
    let reason = shared.reason.lock().map(|r| r.clone()).unwrap_or_default();
    log::info!("{iface}: shutting down: {}", reason.unwrap_or_default());
    for h in handles {
        let _ = h.join();
    }
    log::info!("{iface}: data-path drops: {}", shared.stats.summary());
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Keeps the device's MTU (which caps the padding of transport messages, whitepaper §5.4.6) in
/// step with the interface's: wg-quick and users set it after the daemon has started. With a
/// stale 1500, a full-size 1420-byte packet is padded to 1424 and its datagram no longer fits a
/// 1500-byte IPv6 underlay, so every one of them is fragmented.
fn follow_mtu(shared: &Shared, iface: &str, known: &mut u32) {
    let Ok(mtu) = ferrowg_sys::netdev::mtu(iface) else {
        return;
    };
    if mtu != *known {
        log::info!("{iface}: MTU {known} -> {mtu}");
        let mut st = shared.lock();
        st.device.set_mtu(mtu as usize);
        st.device_mtu = mtu;
        *known = mtu;
    }
}

fn spawn(
    name: &str,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| os("cannot start a thread", e))
}
