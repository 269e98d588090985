//! `ferrowg daemon IFACE`: the userspace WireGuard daemon, a drop-in for wireguard-go.
//!
//! It creates TUN device IFACE and the UAPI socket `/var/run/wireguard/IFACE.sock`, then runs
//! until the interface is deleted, the socket is removed, or it gets SIGTERM/SIGINT; it then
//! removes both. Without `--foreground` it detaches (re-executes itself in the background and
//! returns once the interface is ready), like wireguard-go.
//!
//! Threads: one TUN→UDP and one UDP→TUN data-path thread (so both cores work), one for the
//! protocol timers, one for the UAPI socket, and the main thread watching for the end.

pub mod control;
pub mod crypto;
pub mod datapath;
pub mod offload;
mod rng;
pub mod state;

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
    let listener = control::listen(iface).map_err(|e| os("cannot create the UAPI socket", e))?;
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
    handles.push(spawn("uapi", move || control::serve(s, listener))?);

    let path = ferrowg_conf::uapi::socket_path(iface);
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
