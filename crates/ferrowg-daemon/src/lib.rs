//! `ferrowg daemon IFACE`: the userspace WireGuard daemon, a drop-in for wireguard-go.
//!
//! It creates TUN device IFACE and the UAPI socket `/var/run/wireguard/IFACE.sock`, then runs
//! until the interface is deleted, the socket is removed, or it gets SIGTERM/SIGINT; it then
//! removes both. The command line (`ferrowg daemon`, in the binary) decides whether it runs in
//! the foreground or detached, and the [`Tuning`] it runs with.
//!
//! Threads: two data-path threads per TUN queue, which take either direction ([`datapath`]),
//! one for the protocol timers, one for the UAPI socket ([`control`]), and the main thread
//! watching for the end.

pub mod control;
pub mod crypto;
pub mod datapath;
mod error;
pub mod offload;
mod rng;
pub mod state;
mod tuning;

pub use error::DaemonError;
pub use tuning::{Aead, Tuning};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferrowg_proto::crypto::aws_lc::WithAwsLcX25519;
use ferrowg_proto::crypto::RingCrypto;
use ferrowg_proto::Device;
use ferrowg_sys::Tun;

use datapath::{DatapathStats, OpenTun, Shared};
use error::os;
use state::{NoKey, State};

/// Runs the daemon for `iface` in this process, tuned by `tuning`, until it is told to stop.
pub fn run(iface: &str, tuning: &Tuning) -> Result<(), DaemonError> {
    let OpenTun { tun, offload } = datapath::open_tun(iface, tuning.offload)?;
    let stats = Arc::new(DatapathStats::default());
    let state = new_state(&tun, tuning, stats.clone())?;
    let listener = control::listen(iface).map_err(|e| os("cannot create the UAPI socket", e))?;
    let shared = Arc::new(Shared::new(state, stats));
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
    handles.push(spawn("timers", move || datapath::run_timers(s))?);
    let s = shared.clone();
    handles.push(spawn("uapi", move || control::serve(s, listener))?);

    watch(&shared, iface, &term);
    log::info!("{iface}: shutting down: {}", shared.reason());
    for h in handles {
        let _ = h.join();
    }
    log::info!("{iface}: data-path drops: {}", shared.stats.summary());
    let _ = std::fs::remove_file(ferrowg_conf::uapi::socket_path(iface));
    Ok(())
}

/// The interface's state at start: a protocol device with no key and no peers, its crypto
/// tuned by `tuning` and counting into `stats`, on a fresh UDP socket, at the MTU of `tun`.
fn new_state(tun: &Tun, tuning: &Tuning, stats: Arc<DatapathStats>) -> Result<State, DaemonError> {
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
        // ring's ChaCha20-Poly1305 and aws-lc's X25519, the fastest of each
        // (crates/ferrowg-proto/benches); batches of datagrams in AVX-512 lanes (crypto.rs).
        Box::new(crypto::BatchCrypto::new(
            WithAwsLcX25519(RingCrypto),
            tuning.aead,
            stats,
        )),
        Box::new(rng),
    );
    let mut st = State::new(device, socket);
    st.device.set_clock(state::now(), state::unix_nanos());
    if let Ok(mtu) = tun.mtu() {
        st.device.set_mtu(mtu as usize);
        st.device_mtu = mtu;
    }
    Ok(st)
}

/// The main thread's watch, until a thread asks every thread to stop: stops on a signal
/// (`term`), when the UAPI socket or the interface is removed; follows the interface's MTU.
fn watch(shared: &Shared, iface: &str, term: &AtomicBool) {
    let path = ferrowg_conf::uapi::socket_path(iface);
    let mut tick = 0u32;
    let mut mtu = shared.lock().device_mtu;
    while !shared.stopping() {
        std::thread::sleep(Duration::from_millis(100));
        if term.load(Ordering::Relaxed) {
            shared.stop("signal received");
        }
        follow_mtu(shared, iface, &mut mtu);
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

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, DaemonError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| os("cannot start a thread", e))
}
