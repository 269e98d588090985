//! Network-namespace test bench shared by the end-to-end tests (`tests/e2e_*.rs`).
//!
//! ```text
//!   netns A (client, initiator)               netns B (server, responder)
//!   wg iface  10.200.N.1/24, fd00:N::1/64     wg iface  10.200.N.2/24, fd00:N::2/64
//!        \__ UDP over veth __ 10.199.N.1/24 ——— 10.199.N.2/24 __/
//!                            fd99:N::1/64       fd99:N::2/64
//! ```
//!
//! Every name carries the test process id and a counter, so parallel tests and runs never
//! collide (the UAPI sockets of all namespaces share `/var/run/wireguard`). Namespaces, every
//! process started inside them and the UAPI sockets of the interfaces they own are removed on
//! drop, also when the test fails; the daemons' logs are printed then. Every wait is bounded.
#![allow(dead_code, missing_docs)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where wg(8) and every userspace implementation put their UAPI sockets.
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// A unique small number for this test within this process.
pub fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
}

/// A unique interface name (at most 15 bytes): `fw<pid mod 10^5><tag><n>`.
pub fn iface_name(tag: &str) -> String {
    let name = format!("fw{}{tag}{}", std::process::id() % 100_000, unique());
    assert!(name.len() <= 15, "interface name too long: {name}");
    name
}

/// The UAPI socket of `iface`.
pub fn socket_path(iface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{iface}.sock"))
}

/// Fails loudly unless root (or the explicit skip switch is set, in which case returns false).
pub fn require_root() -> bool {
    if ferrowg_sys::process::is_root() {
        return true;
    }
    if std::env::var_os("FERROWG_SKIP_ROOT_TESTS").is_some() {
        eprintln!("skipping: not root and FERROWG_SKIP_ROOT_TESTS is set");
        return false;
    }
    panic!("this test needs root (network namespaces); set FERROWG_SKIP_ROOT_TESTS=1 to skip");
}

/// Panics unless `program` is installed: a missing peer implementation is a failure, not a skip.
pub fn require_tool(program: &str) {
    assert!(
        sh(&format!("command -v {program}")).status.success(),
        "{program} is not installed; the interop tests need it"
    );
}

/// Runs a command, panicking with its output on failure.
pub fn run(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "command failed ({}): {cmd}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns its output whatever the status. Every command is bounded by
/// `timeout(1)`, so a tool that hangs fails the test instead of stalling the suite; and a
/// command that leaves a process behind holding its standard output or error (a daemon that
/// did not detach properly) fails the test rather than blocking it for ever.
pub fn sh(cmd: &str) -> Output {
    let mut child = Command::new("timeout")
        .args(["-k", "5", "120", "sh", "-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = child.wait().expect("wait sh");
    let closed = wait_for(Duration::from_secs(10), || {
        out.is_finished() && err.is_finished()
    });
    assert!(
        closed.is_some(),
        "`{cmd}` exited ({status}) but a process it started still holds its standard output or error open"
    );
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Standard output and error of a finished command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The ferrowg binary under test.
pub fn ferrowg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrowg"))
}

/// The ferrowg binary as a string, for shell command lines.
pub fn fwg() -> String {
    ferrowg_bin().to_str().expect("utf-8 path").to_string()
}

/// A private temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p =
            std::env::temp_dir().join(format!("ferrowg-e2e-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        run(&format!("chmod 700 {}", p.display()));
        TempDir(p)
    }

    /// Writes `name` (mode 0600) and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.0.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .expect("create file");
        f.write_all(contents.as_bytes()).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which implementation runs an end of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Ferrowg,
    WireguardGo,
    Boringtun,
}

/// A network namespace that deletes itself (and kills what runs inside) on drop.
pub struct Netns {
    pub name: String,
    children: Vec<(Child, PathBuf)>,
    /// Interfaces whose UAPI sockets to remove on drop.
    ifaces: Vec<String>,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("fwg{}{}{}", std::process::id(), tag, unique());
        run(&format!("ip netns add {name}"));
        let ns = Netns {
            name,
            children: Vec::new(),
            ifaces: Vec::new(),
        };
        ns.run("ip link set lo up");
        ns
    }

    /// The command line that runs `cmd` (a shell command) in this namespace.
    pub fn wrap(&self, cmd: &str) -> String {
        format!(
            "ip netns exec {} sh -c '{}'",
            self.name,
            cmd.replace('\'', "'\\''")
        )
    }

    /// Runs `cmd` inside the namespace (panics on failure).
    pub fn run(&self, cmd: &str) -> String {
        run(&self.wrap(cmd))
    }

    /// Runs `cmd` inside the namespace, returning the raw output.
    pub fn sh(&self, cmd: &str) -> Output {
        sh(&self.wrap(cmd))
    }

    /// Marks `iface` as created in this namespace: its UAPI socket is removed on drop.
    pub fn own_iface(&mut self, iface: &str) {
        self.ifaces.push(iface.to_string());
    }

    /// Starts a long-running process inside the namespace (killed on drop) and returns its pid.
    /// Its output goes to a log file, printed if the test fails.
    pub fn spawn(&mut self, program: &str, args: &[&str], envs: &[(&str, &str)]) -> u32 {
        let mut c = Command::new("ip");
        // `ip netns exec` execs the program: the child's pid is the program's.
        c.args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null());
        for (k, v) in envs {
            c.env(k, v);
        }
        let log = std::env::temp_dir().join(format!("{}-{}.log", self.name, self.children.len()));
        let f = std::fs::File::create(&log).expect("log file");
        c.stdout(Stdio::from(f.try_clone().expect("dup")))
            .stderr(Stdio::from(f));
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        let pid = child.id();
        self.children.push((child, log));
        pid
    }

    /// Whether the process `pid` started by [`Netns::spawn`] is still running.
    pub fn alive(&mut self, pid: u32) -> bool {
        self.children
            .iter_mut()
            .find(|(c, _)| c.id() == pid)
            .is_some_and(|(c, _)| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGKILL to the process `pid` started by [`Netns::spawn`] and reaps it.
    pub fn kill9(&mut self, pid: u32) {
        let i = self
            .children
            .iter()
            .position(|(c, _)| c.id() == pid)
            .expect("not our child");
        let (c, _) = &mut self.children[i];
        c.kill().expect("kill -9");
        c.wait().expect("wait");
    }

    /// The log of every process started here.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (c, log) in &self.children {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            s += &format!("--- pid {} ({}), last lines:\n", c.id(), log.display());
            for l in tail.iter().rev() {
                s += l;
                s.push('\n');
            }
        }
        s
    }

    /// Runs `f` on a thread inside this namespace (sockets it creates live here).
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = ferrowg_sys::netns::open(format!("/run/netns/{}", self.name)).expect("open netns");
        ferrowg_sys::netns::run_in(&ns, f).expect("enter netns")
    }

    /// Stops every process in the namespace: SIGTERM (daemons clean up), then SIGKILL.
    pub fn kill_all(&mut self) {
        let pids = format!("ip netns pids {}", self.name);
        let _ = sh(&format!("{pids} | xargs -r kill -TERM"));
        wait_for(Duration::from_secs(3), || {
            sh(&pids).stdout.iter().all(|b| b.is_ascii_whitespace())
        });
        let _ = sh(&format!("{pids} | xargs -r kill -9"));
        for (c, _) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            eprintln!("=== logs of namespace {} ===\n{}", self.name, self.logs());
        }
        if std::env::var_os("FERROWG_E2E_KEEP_LOGS").is_none() {
            for (_, log) in &self.children {
                let _ = std::fs::remove_file(log);
            }
        }
        let _ = sh(&format!("ip netns del {}", self.name));
        for i in &self.ifaces {
            let _ = std::fs::remove_file(socket_path(i));
        }
    }
}

/// A static key pair made by `wg genkey`-compatible code (the ferrowg CLI).
#[derive(Clone)]
pub struct Keys {
    pub private: String,
    pub public: String,
}

pub fn genkeys() -> Keys {
    let private = run(&format!("{} genkey", fwg())).trim().to_string();
    let public = run(&format!("echo {private} | {} pubkey", fwg()))
        .trim()
        .to_string();
    Keys { private, public }
}

/// Two namespaces joined by a veth pair, with IPv4 and IPv6 addresses on both ends.
pub struct Link {
    pub a: Netns,
    pub b: Netns,
    /// The subnet number N in the addresses above (addresses are local to the namespaces,
    /// so it only needs to be unique within a test).
    pub n: u32,
    pub veth_a: String,
    pub veth_b: String,
}

impl Link {
    pub fn new() -> Link {
        let a = Netns::new("a");
        let b = Netns::new("b");
        let n = unique() % 250;
        let id = format!("{}{}", std::process::id() % 100_000, unique());
        let (veth_a, veth_b) = (format!("va{id}"), format!("vb{id}"));
        run(&format!(
            "ip link add {veth_a} netns {} type veth peer name {veth_b} netns {}",
            a.name, b.name
        ));
        for (ns, dev, host) in [(&a, &veth_a, 1), (&b, &veth_b, 2)] {
            ns.run(&format!("ip addr add 10.199.{n}.{host}/24 dev {dev}"));
            ns.run(&format!(
                "ip -6 addr add fd99:{n}::{host}/64 dev {dev} nodad"
            ));
            ns.run(&format!("ip link set {dev} up"));
        }
        Link {
            a,
            b,
            n,
            veth_a,
            veth_b,
        }
    }

    /// The underlay IPv4 address of side `host` (1 = A, 2 = B).
    pub fn underlay(&self, host: u8) -> String {
        format!("10.199.{}.{host}", self.n)
    }
}

/// One end of a tunnel.
pub struct End {
    pub ns: Netns,
    pub iface: String,
    pub keys: Keys,
    pub imp: Impl,
    pub underlay: String,
    /// The underlay IPv6 address.
    pub underlay6: String,
    /// Whether the peer reaches this end over IPv6 (its configured endpoint is `underlay6`).
    pub via_v6: bool,
    pub veth: String,
    pub tunnel_v4: String,
    pub tunnel_v6: String,
    pub port: u16,
    /// The daemon's pid, once started.
    pub pid: Option<u32>,
}

impl End {
    /// Starts the implementation's daemon for `self.iface` inside the namespace and waits
    /// (bounded) until its interface and UAPI socket exist.
    pub fn start_daemon(&mut self) {
        let iface = self.iface.clone();
        self.ns.own_iface(&iface);
        let pid = match self.imp {
            Impl::Ferrowg => {
                // FERROWG_E2E_LOG=debug (or trace) for more detail in the logs of failed tests.
                let level = std::env::var("FERROWG_E2E_LOG").unwrap_or_else(|_| "info".into());
                let bin = fwg();
                self.ns.spawn(
                    &bin,
                    &["daemon", "--foreground", &iface],
                    &[("RUST_LOG", &level)],
                )
            }
            Impl::WireguardGo => {
                require_tool("wireguard-go");
                self.ns
                    .spawn("wireguard-go", &["-f", &iface], &[("LOG_LEVEL", "error")])
            }
            Impl::Boringtun => {
                require_tool("boringtun-cli");
                self.ns.spawn(
                    "boringtun-cli",
                    &["--foreground", "--disable-drop-privileges", &iface],
                    &[("WG_SUDO", "1")],
                )
            }
        };
        self.pid = Some(pid);
        let up = wait_for(Duration::from_secs(15), || {
            std::os::unix::net::UnixStream::connect(socket_path(&iface)).is_ok()
                && self
                    .ns
                    .sh(&format!("ip link show {iface}"))
                    .status
                    .success()
        });
        if up.is_none() {
            panic!("{:?} did not create {iface}\n{}", self.imp, self.ns.logs());
        }
    }

    /// Applies addresses and brings the interface up (what wg-quick does around setconf).
    pub fn configure_link(&self, mtu: u32) {
        let i = &self.iface;
        self.ns.run(&format!("ip link set {i} mtu {mtu}"));
        self.ns
            .run(&format!("ip addr add {}/24 dev {i}", self.tunnel_v4));
        self.ns.run(&format!(
            "ip -6 addr add {}/64 dev {i} nodad",
            self.tunnel_v6
        ));
        self.ns.run(&format!("ip link set {i} up"));
    }

    /// A wg(8) config for this end with `peer` as its only peer.
    pub fn conf(&self, peer: &End, endpoint: bool) -> String {
        let mut conf = format!(
            "[Interface]\nPrivateKey = {}\nListenPort = {}\n\n",
            self.keys.private, self.port
        );
        conf += &format!(
            "[Peer]\nPublicKey = {}\nAllowedIPs = {}/32, {}/128\n",
            peer.keys.public, peer.tunnel_v4, peer.tunnel_v6
        );
        if endpoint {
            conf += &format!("Endpoint = {}\n", peer.endpoint());
        }
        conf
    }

    /// This end's underlay endpoint as its peer is configured with it.
    pub fn endpoint(&self) -> String {
        if self.via_v6 {
            format!("[{}]:{}", self.underlay6, self.port)
        } else {
            format!("{}:{}", self.underlay, self.port)
        }
    }

    /// Writes the config from [`End::conf`] and applies it with the stock `wg setconf`.
    pub fn setconf(&self, peer: &End, endpoint: bool) {
        let dir = TempDir::new();
        let path = dir.write(&format!("{}.conf", self.iface), &self.conf(peer, endpoint));
        self.ns
            .run(&format!("wg setconf {} {}", self.iface, path.display()));
    }

    /// Runs `wg show IFACE FIELD` here and returns its output.
    pub fn wg_show(&self, field: &str) -> String {
        self.ns.run(&format!("wg show {} {field}", self.iface))
    }

    /// The peer's latest handshake (Unix seconds, 0 = never) as `wg show` reports it.
    pub fn latest_handshake(&self) -> u64 {
        let out = self.wg_show("latest-handshakes");
        out.split_whitespace()
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    }

    /// The peer's (rx, tx) byte counters as `wg show IFACE transfer` reports them.
    pub fn transfer(&self) -> (u64, u64) {
        let out = self.wg_show("transfer");
        let mut w = out
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0));
        (w.next().unwrap_or(0), w.next().unwrap_or(0))
    }

    pub fn run_in_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.run_in(f)
    }

    /// Pings `addr` from this end (bounded), returning whether any reply came.
    pub fn ping(&self, addr: &str, count: u32) -> bool {
        self.ns
            .sh(&format!("ping -n -q -c {count} -i 0.2 -W 2 {addr}"))
            .status
            .success()
    }
}

/// Two namespaces joined by a veth pair, with a tunnel between them.
pub struct Pair {
    pub a: End,
    pub b: End,
    pub n: u32,
}

impl Pair {
    /// Builds the topology and starts `a_imp` in A (client) and `b_imp` in B (server), the
    /// tunnel configured with the stock `wg setconf` (only A knows the other's endpoint).
    pub fn new(a_imp: Impl, b_imp: Impl) -> Pair {
        Pair::build(a_imp, b_imp, false)
    }

    /// [`Pair::new`], the tunnel running over the IPv6 underlay when `via_v6`.
    pub fn build(a_imp: Impl, b_imp: Impl, via_v6: bool) -> Pair {
        let link = Link::new();
        let n = link.n;
        let Link {
            a: ns_a,
            b: ns_b,
            veth_a,
            veth_b,
            ..
        } = link;
        let mk = |ns: Netns, imp: Impl, side: &str, host: u8, veth: String| End {
            ns,
            iface: iface_name(side),
            keys: genkeys(),
            imp,
            underlay: format!("10.199.{n}.{host}"),
            underlay6: format!("fd99:{n}::{host}"),
            via_v6,
            veth,
            tunnel_v4: format!("10.200.{n}.{host}"),
            tunnel_v6: format!("fd00:{n}::{host}"),
            port: 51000 + u16::from(host),
            pid: None,
        };
        let mut a = mk(ns_a, a_imp, "a", 1, veth_a);
        let mut b = mk(ns_b, b_imp, "b", 2, veth_b);
        a.start_daemon();
        b.start_daemon();
        b.setconf(&a, false);
        a.setconf(&b, true);
        a.configure_link(1420);
        b.configure_link(1420);
        Pair { a, b, n }
    }

    /// Pings from A to B over the tunnel until one answers (bounded); returns how long it took.
    pub fn ping_until_up(&self, limit: Duration) -> Duration {
        let ok = wait_for(limit, || self.a.ping(&self.b.tunnel_v4, 1));
        match ok {
            Some(t) => t,
            None => panic!(
                "tunnel {:?} -> {:?} not up within {limit:?}\nA: {}\nB: {}",
                self.a.imp,
                self.b.imp,
                self.a.ns.logs(),
                self.b.ns.logs()
            ),
        }
    }
}

/// Polls `f` every 100 ms until it returns true or `limit` passes.
/// Pings through a fresh tunnel from `ns`: waits up to 20 s for one IPv4 ping to `v4` to get
/// through (the first one carries the handshake), then sends `v6_count` IPv6 pings to `v6`,
/// which must all be answered; panics saying which failed, naming `what`.
pub fn ping_v4_then_v6(ns: &Netns, v4: &str, v6: &str, v6_count: u32, what: &str) {
    let ping = wait_for(Duration::from_secs(20), || {
        ns.sh(&format!("ping -n -c1 -W1 {v4}")).status.success()
    });
    assert!(ping.is_some(), "IPv4 ping {what}");
    assert!(
        ns.sh(&format!("ping -n -q -c{v6_count} -i0.2 -W2 {v6}"))
            .status
            .success(),
        "IPv6 ping {what}"
    );
}

/// The second whitespace-separated field of `line` (the value in `wg show IFACE FIELD` output
/// for one peer), as a number.
pub fn second_field_u64(line: &str) -> u64 {
    line.split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no number in the second field of {line:?}"))
}

pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// FNV-1a, 64 bits: cheap, and enough to detect corruption, loss or reordering of bytes.
pub fn fnv(h: &mut u64, data: &[u8]) {
    for b in data {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100000001b3);
    }
}

pub const FNV_INIT: u64 = 0xcbf29ce484222325;

/// What a TCP transfer measured.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub bytes: usize,
    /// FNV-1a of the bytes written by the sender.
    pub sent_hash: u64,
    /// FNV-1a of the bytes read by the receiver.
    pub received_hash: u64,
    pub received: usize,
    pub elapsed: Duration,
}

impl Transfer {
    pub fn mbit_per_s(&self) -> f64 {
        self.received as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Sends `bytes` of pseudo-random data over TCP from A to B across the tunnel (IPv4) and
/// returns what both sides saw. The whole transfer is bounded by `limit`.
pub fn tcp_transfer(pair: &Pair, bytes: usize, limit: Duration) -> Transfer {
    tcp_transfer_with(pair, bytes, limit, usize::MAX, || {})
}

/// [`tcp_transfer`], calling `hook` on the sending thread once `hook_at` bytes are written.
pub fn tcp_transfer_with(
    pair: &Pair,
    bytes: usize,
    limit: Duration,
    hook_at: usize,
    hook: impl FnOnce() + Send,
) -> Transfer {
    let deadline = Instant::now() + limit;
    let dst: SocketAddr = format!("{}:5201", pair.b.tunnel_v4)
        .parse()
        .expect("address");
    let listener = pair
        .b
        .run_in_ns(|| TcpListener::bind(("0.0.0.0", 5201)).expect("bind"));
    listener.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        let recv = s.spawn(|| receive(listener, bytes, deadline, &failed));
        let conn = pair
            .a
            .run_in_ns(|| TcpStream::connect_timeout(&dst, Duration::from_secs(10)));
        let sent_hash = match conn {
            Ok(conn) => send(conn, bytes, deadline, hook_at, hook),
            Err(e) => Err(format!("connect to {dst}: {e}")),
        };
        // The receiver stops waiting for a sender that gave up.
        failed.store(sent_hash.is_err(), Ordering::SeqCst);
        let (received_hash, received) = recv.join().expect("receiver thread");
        let sent_hash =
            sent_hash.unwrap_or_else(|e| panic!("sender: {e} (receiver got {received} bytes)"));
        Transfer {
            bytes,
            sent_hash,
            received_hash,
            received,
            elapsed: start.elapsed(),
        }
    })
}

fn receive(
    listener: TcpListener,
    bytes: usize,
    deadline: Instant,
    failed: &AtomicBool,
) -> (u64, usize) {
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e)
                if e.kind() == ErrorKind::WouldBlock
                    && Instant::now() < deadline
                    && !failed.load(Ordering::SeqCst) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return (FNV_INIT, 0),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut h = FNV_INIT;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0usize;
    while got < bytes && Instant::now() < deadline && !failed.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                fnv(&mut h, &buf[..n]);
                got += n;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    (h, got)
}

fn send(
    mut conn: TcpStream,
    bytes: usize,
    deadline: Instant,
    hook_at: usize,
    hook: impl FnOnce(),
) -> Result<u64, String> {
    conn.set_write_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let mut hook = Some(hook);
    let mut h = FNV_INIT;
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut sent = 0usize;
    while sent < bytes {
        if sent >= hook_at {
            if let Some(f) = hook.take() {
                f();
            }
        }
        let n = buf.len().min(bytes - sent);
        for chunk in buf[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let w = state.to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        fnv(&mut h, &buf[..n]);
        let mut off = 0;
        while off < n {
            if Instant::now() >= deadline {
                return Err(format!("deadline passed after {} bytes", sent + off));
            }
            match conn.write(&buf[off..n]) {
                Ok(k) => off += k,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("write after {} bytes: {e}", sent + off)),
            }
        }
        sent += n;
    }
    conn.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    Ok(h)
}

/// The resident set size of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
