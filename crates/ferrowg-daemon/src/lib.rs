//! `ferrowg daemon IFACE`: the userspace WireGuard daemon, a drop-in for wireguard-go.
//!
//! It creates TUN device IFACE and the UAPI socket `/var/run/wireguard/IFACE.sock`, then runs
//! until the interface is deleted, the socket is removed, or it gets SIGTERM/SIGINT; it then
//! removes both. The command line (`ferrowg daemon`, in the binary) decides whether it runs in
//! the foreground or detached, and the [`Tuning`] it runs with.
//!
//! Threads: two data-path threads per TUN queue, which take either direction ([`datapath`]),
//! one for the protocol timers, one for handshakes and static-key DHs (the handshake worker),
//! one for the UAPI socket ([`control`]), one that resolves host names of endpoints again
//! when handshakes to them fail ([`resolve`]), and the main thread
//! watching for the end. A panic in any of them ends the daemon with a failure ([`panics`]).

pub mod control;
pub mod crypto;
pub mod datapath;
mod error;
pub mod names;
pub mod observe;
pub mod offload;
mod panics;
pub mod resolve;
mod rng;
pub mod state;
mod tuning;

pub use error::DaemonError;
pub use tuning::{Aead, Tuning};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ferrowg_proto::crypto::aws_lc::WithAwsLcX25519;
use ferrowg_proto::crypto::RingCrypto;
use ferrowg_proto::Device;
use ferrowg_sys::Tun;

pub use datapath::Forwarding;
use datapath::{DatapathStats, OpenTun, Shared};
use error::os;
use ferrowg_conf::uapi::{DeviceState, Errno, SetRequest};
use panics::ThreadKind;
use state::{NoKey, State};

/// How long the main thread waits for the other threads to stop before it leaves them.
const JOIN_LIMIT: Duration = Duration::from_secs(5);

/// Runs the daemon for `iface` in this process, tuned by `tuning`, until it is told to stop.
/// Fails with [`DaemonError::Panicked`] after a panic in one of its threads.
pub fn run(iface: &str, tuning: &Tuning) -> Result<(), DaemonError> {
    start(iface, tuning, None)?.wait()
}

/// Starts the daemon for `iface` in this process, tuned by `tuning`, forwarding packets
/// between its peers as `forwarding` decides (none: every packet goes to the TUN device), and
/// returns once its threads run. [`Running::wait`] then watches it until it is told to stop.
pub fn start(
    iface: &str,
    tuning: &Tuning,
    forwarding: Option<Arc<dyn Forwarding>>,
) -> Result<Running, DaemonError> {
    panics::arm_test_panic();
    let OpenTun { tun, offload } = datapath::open_tun(iface, tuning.offload)?;
    let stats = Arc::new(DatapathStats::default());
    let state = new_state(&tun, tuning, stats.clone())?;
    let listener = control::listen(iface).map_err(|e| os("cannot create the UAPI socket", e))?;
    let socket_file = SocketFile(ferrowg_conf::uapi::socket_path(iface));
    let shared = Arc::new(Shared::new(state, stats).with_forwarding(forwarding));
    panics::install(&shared);
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
            let q = q.clone();
            let work = move |s: Arc<Shared>| q.work(&s);
            handles.push(spawn(name, ThreadKind::Datapath, &shared, work)?);
        }
    }
    let timers = datapath::run_timers;
    handles.push(spawn("timers", ThreadKind::Timers, &shared, timers)?);
    let handshakes = datapath::run_handshakes;
    handles.push(spawn(
        "handshakes",
        ThreadKind::Handshakes,
        &shared,
        handshakes,
    )?);
    let resolver = resolve::run;
    handles.push(spawn("resolve", ThreadKind::Resolver, &shared, resolver)?);
    let serve = move |s| control::serve(s, listener);
    handles.push(spawn("uapi", ThreadKind::Control, &shared, serve)?);
    panics::started();
    Ok(Running {
        iface: iface.to_string(),
        shared,
        handles,
        term,
        _socket_file: socket_file,
    })
}

/// A daemon started by [`start`].
pub struct Running {
    iface: String,
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
    term: Arc<AtomicBool>,
    _socket_file: SocketFile,
}

impl Running {
    /// A handle for configuring the interface from this process.
    pub fn handle(&self) -> Handle {
        Handle(self.shared.clone())
    }

    /// Watches the daemon until it is told to stop (a signal, the interface or its socket
    /// removed, [`Handle::stop`]), then stops its threads. Fails with
    /// [`DaemonError::Panicked`] after a panic in one of them.
    pub fn wait(self) -> Result<(), DaemonError> {
        let Running {
            iface,
            shared,
            handles,
            term,
            _socket_file,
        } = self;
        panics::test_point(ThreadKind::Main, &shared);
        watch(&shared, &iface, &term);
        log::info!("{iface}: shutting down: {}", shared.reason());
        join_all(handles);
        log::info!("{iface}: data-path drops: {}", shared.stats.summary());
        match panics::first() {
            Some(report) => Err(DaemonError::Panicked(report)),
            None => Ok(()),
        }
    }
}

/// Configures a running daemon from its own process, as the control socket would (the hub
/// does, for the peers it enrols).
#[derive(Clone)]
pub struct Handle(Arc<Shared>);

impl Handle {
    /// Applies a `set=1` request; on error nothing has changed.
    pub fn set(&self, req: &SetRequest) -> Result<(), Errno> {
        control::apply_set(&self.0, req)
    }

    /// What `get=1` reports.
    pub fn get(&self) -> DeviceState {
        self.0.lock().snapshot()
    }

    /// Whether the interface has the peer with public key `key`.
    pub fn has_peer(&self, key: &[u8; 32]) -> bool {
        self.0.lock().device.peer_by_key(key).is_some()
    }

    /// Makes the peer with key `new` the successor of the peer with key `old`: at its first
    /// handshake it takes over the allowed IPs of `old` (a device's key rotation without loss,
    /// [`ferrowg_proto::Device::set_successor`]). Fails if either peer is missing.
    pub fn set_successor(&self, old: &[u8; 32], new: &[u8; 32]) -> Result<(), Errno> {
        let mut st = self.0.lock();
        let (Some(o), Some(n)) = (st.device.peer_by_key(old), st.device.peer_by_key(new)) else {
            return Err(Errno::EINVAL);
        };
        st.device.set_successor(o, n).map_err(|_| Errno::EINVAL)
    }

    /// Sets the prefix translations of the sites behind the peer with key `peer` (1:1 NETMAP,
    /// [`ferrowg_proto::netmap`]). Fails if the peer is missing or there are too many.
    pub fn set_netmaps(
        &self,
        peer: &[u8; 32],
        maps: &[ferrowg_proto::netmap::Netmap],
    ) -> Result<(), Errno> {
        let mut st = self.0.lock();
        let Some(id) = st.device.peer_by_key(peer) else {
            return Err(Errno::EINVAL);
        };
        st.device.set_netmaps(id, maps).map_err(|_| Errno::EINVAL)
    }

    /// The interface's peers and counters, for monitoring.
    pub fn observe(&self) -> observe::Observation {
        observe::observe(&self.0.lock(), &self.0.stats)
    }

    /// Sets the endpoint of the peer with key `key` to `endpoint` and starts a handshake with
    /// it now (a hub node that took over its devices from another one). Fails if the peer is
    /// missing.
    pub fn initiate(&self, key: &[u8; 32], endpoint: std::net::SocketAddr) -> Result<(), Errno> {
        let mut st = self.0.lock();
        let Some(id) = st.device.peer_by_key(key) else {
            return Err(Errno::EINVAL);
        };
        st.device
            .set_endpoint(id, Some(endpoint))
            .map_err(|_| Errno::EINVAL)?;
        st.device.initiate_handshake(id, state::now());
        self.0.nudge(&st);
        drop(st);
        self.0.timer_wake.notify_one();
        Ok(())
    }

    /// Packets the forwarding policy refused, and packets forwarded, so far.
    pub fn forwarding_counts(&self) -> (u64, u64) {
        let s = &self.0.stats;
        (
            s.forward_denied.load(Ordering::Relaxed),
            s.forwarded.load(Ordering::Relaxed),
        )
    }

    /// Asks the daemon to stop; [`Running::wait`] returns.
    pub fn stop(&self, why: &str) {
        self.0.stop(why);
    }

    /// Whether the daemon is stopping.
    pub fn stopping(&self) -> bool {
        self.0.stopping()
    }
}

/// The UAPI socket's file, removed when the daemon ends, also when the main thread panics.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Waits for `handles` to finish, for at most [`JOIN_LIMIT`]: a thread that is stuck must
/// not keep a stopping daemon (and its supervisor) waiting.
fn join_all(handles: Vec<JoinHandle<()>>) {
    let deadline = std::time::Instant::now() + JOIN_LIMIT;
    while handles.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for h in handles {
        if h.is_finished() {
            let _ = h.join();
        } else {
            let name = h.thread().name().unwrap_or("unnamed").to_string();
            log::warn!("thread {name} did not stop within {JOIN_LIMIT:?}; leaving it");
        }
    }
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
    // Every static-key DH runs in the handshake worker, never under the state lock.
    st.device.set_static_dh_offloaded(true);
    // The handshake rate limiter tracks as many sources as the kernel's would on this much RAM.
    if let Some(ram) = state::mem_total() {
        let capacity = ferrowg_proto::device::ratelimiter_capacity_for_ram(ram);
        if let Err(e) = st.device.set_ratelimiter_capacity(capacity) {
            log::warn!("handshake rate limiter: {e}");
        }
    }
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

/// Starts thread `name`, of `kind`, running `f` on `shared` (a panic in it stops the daemon:
/// [`panics`]).
fn spawn(
    name: &str,
    kind: ThreadKind,
    shared: &Arc<Shared>,
    f: impl FnOnce(Arc<Shared>) + Send + 'static,
) -> Result<JoinHandle<()>, DaemonError> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            panics::test_point(kind, &shared);
            f(shared);
        })
        .map_err(|e| os("cannot start a thread", e))
}
