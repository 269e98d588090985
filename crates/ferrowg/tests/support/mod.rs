//! Network-namespace test bench shared by the end-to-end tests.
//!
//! ```text
//!   netns A (client)                         netns B (server)
//!   wg iface  10.200.N.1/24, fd00:N::1/64    wg iface  10.200.N.2/24, fd00:N::2/64
//!        \__ UDP over veth __ 10.199.N.1/24 ——— 10.199.N.2/24 __/
//! ```
//!
//! Every name carries the test process id and a counter, so parallel tests and runs never
//! collide (the UAPI sockets of all namespaces share `/var/run/wireguard`). Namespaces, and every
//! process started inside them, are removed on drop, also when the test fails.
#![allow(dead_code, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique small number for this test within this process.
pub fn unique() -> u32 {
    COUNTER.fetch_add(1, Ordering::SeqCst)
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

/// Runs a command, panicking with its output on failure.
pub fn run(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "command failed: {cmd}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns its output whatever the status.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh").arg("-c").arg(cmd).output().expect("spawn sh")
}

/// The ferrowg binary under test.
pub fn ferrowg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrowg"))
}

/// Which implementation runs an end of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Ferrowg,
    WireguardGo,
    Boringtun,
}

impl Impl {
    pub fn available(self) -> bool {
        let bin = match self {
            Impl::Ferrowg => return true,
            Impl::WireguardGo => "wireguard-go",
            Impl::Boringtun => "boringtun-cli",
        };
        sh(&format!("command -v {bin}")).status.success()
    }
}

/// A network namespace that deletes itself (and kills what runs inside) on drop.
pub struct Netns {
    pub name: String,
    children: Vec<Child>,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("fwg{}{}{}", std::process::id(), tag, unique());
        run(&format!("ip netns add {name}"));
        run(&format!("ip -n {name} link set lo up"));
        Netns { name, children: Vec::new() }
    }

    /// Runs `cmd` inside the namespace (panics on failure).
    pub fn run(&self, cmd: &str) -> String {
        run(&format!("ip netns exec {} sh -c '{}'", self.name, cmd.replace('\'', "'\\''")))
    }

    /// Runs `cmd` inside the namespace, returning the raw output.
    pub fn sh(&self, cmd: &str) -> Output {
        sh(&format!("ip netns exec {} sh -c '{}'", self.name, cmd.replace('\'', "'\\''")))
    }

    /// Starts a long-running process inside the namespace; it is killed on drop.
    pub fn spawn(&mut self, program: &str, args: &[&str], envs: &[(&str, &str)]) -> &mut Child {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        for (k, v) in envs {
            c.env(k, v);
        }
        let log = std::env::temp_dir().join(format!("{}-{}.log", self.name, self.children.len()));
        let f = std::fs::File::create(&log).expect("log file");
        c.stdout(Stdio::from(f.try_clone().expect("dup"))).stderr(Stdio::from(f));
        let child = c.spawn().unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        self.children.push(child);
        self.children.last_mut().expect("just pushed")
    }

    /// Runs `f` on a thread inside this namespace (sockets it creates live here).
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = ferrowg_sys::netns::open(format!("/run/netns/{}", self.name)).expect("open netns");
        ferrowg_sys::netns::run_in(&ns, f).expect("enter netns")
    }

    /// Kills every process this namespace started.
    pub fn kill_all(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
        let _ = sh(&format!("ip netns pids {} | xargs -r kill -9", self.name));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all();
        let _ = sh(&format!("ip netns del {}", self.name));
    }
}

/// A static key pair made by `wg genkey`-compatible code (the ferrowg CLI).
#[derive(Clone)]
pub struct Keys {
    pub private: String,
    pub public: String,
}

pub fn genkeys() -> Keys {
    let bin = ferrowg_bin();
    let private = run(&format!("{} genkey", bin.display())).trim().to_string();
    let public = run(&format!("echo {private} | {} pubkey", bin.display())).trim().to_string();
    Keys { private, public }
}

/// One end of a tunnel.
pub struct End {
    pub ns: Netns,
    pub iface: String,
    pub keys: Keys,
    pub imp: Impl,
    pub underlay: String,
    pub tunnel_v4: String,
    pub tunnel_v6: String,
    pub port: u16,
}

impl End {
    /// Starts the implementation's daemon for `self.iface` inside the namespace.
    pub fn start_daemon(&mut self) {
        let iface = self.iface.clone();
        let bin = ferrowg_bin();
        match self.imp {
            Impl::Ferrowg => {
                self.ns.spawn(
                    bin.to_str().expect("utf-8 path"),
                    &["daemon", "--foreground", &iface],
                    &[("RUST_LOG", "info")],
                );
            }
            Impl::WireguardGo => {
                self.ns.spawn("wireguard-go", &["-f", &iface], &[("LOG_LEVEL", "error")]);
            }
            Impl::Boringtun => {
                self.ns.spawn(
                    "boringtun-cli",
                    &["--foreground", "--disable-drop-privileges", &iface],
                    &[("WG_SUDO", "1")],
                );
            }
        }
        wait_for(Duration::from_secs(10), || {
            std::path::Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists()
                && self.ns.sh(&format!("ip link show {iface}")).status.success()
        })
        .unwrap_or_else(|| panic!("{:?} did not create {iface}", self.imp));
    }

    /// Applies addresses and brings the interface up (what wg-quick does around setconf).
    pub fn configure_link(&self, mtu: u32) {
        let i = &self.iface;
        self.ns.run(&format!("ip link set {i} mtu {mtu}"));
        self.ns.run(&format!("ip addr add {}/24 dev {i}", self.tunnel_v4));
        self.ns.run(&format!("ip -6 addr add {}/64 dev {i} nodad", self.tunnel_v6));
        self.ns.run(&format!("ip link set {i} up"));
    }

    /// Writes a wg(8) config for this end and applies it with the stock `wg setconf`.
    pub fn setconf(&self, peer: &End, endpoint: bool) {
        let mut conf = format!("[Interface]\nPrivateKey = {}\nListenPort = {}\n\n", self.keys.private, self.port);
        conf += &format!(
            "[Peer]\nPublicKey = {}\nAllowedIPs = {}/32, {}/128\n",
            peer.keys.public, peer.tunnel_v4, peer.tunnel_v6
        );
        if endpoint {
            conf += &format!("Endpoint = {}:{}\n", peer.underlay, peer.port);
        }
        let path = std::env::temp_dir().join(format!("{}.conf", self.iface));
        std::fs::write(&path, conf).expect("write conf");
        self.ns.run(&format!("wg setconf {} {}", self.iface, path.display()));
        let _ = std::fs::remove_file(path);
    }
}

/// Two namespaces joined by a veth pair, with a tunnel between them.
pub struct Pair {
    pub a: End,
    pub b: End,
    pub n: u32,
}

impl Pair {
    /// Builds the topology and starts `a_imp` in A (client) and `b_imp` in B (server).
    pub fn new(a_imp: Impl, b_imp: Impl) -> Pair {
        let n = (std::process::id() % 200) + unique() % 50;
        let n = n % 250;
        let ns_a = Netns::new("a");
        let ns_b = Netns::new("b");
        let id = format!("{}{}", std::process::id() % 100000, unique());
        let (va, vb) = (format!("va{id}"), format!("vb{id}"));
        run(&format!("ip link add {va} netns {} type veth peer name {vb} netns {}", ns_a.name, ns_b.name));
        ns_a.run(&format!("ip addr add 10.199.{n}.1/24 dev {va} && ip link set {va} up"));
        ns_b.run(&format!("ip addr add 10.199.{n}.2/24 dev {vb} && ip link set {vb} up"));
        ns_a.run(&format!("ip -6 addr add fd99:{n}::1/64 dev {va} nodad"));
        ns_b.run(&format!("ip -6 addr add fd99:{n}::2/64 dev {vb} nodad"));
        let mk = |ns: Netns, imp: Impl, side: &str, host: u8| End {
            ns,
            iface: format!("fw{}{}{}", std::process::id() % 100000, side, unique()),
            keys: genkeys(),
            imp,
            underlay: format!("10.199.{n}.{host}"),
            tunnel_v4: format!("10.200.{n}.{host}"),
            tunnel_v6: format!("fd00:{n}::{host}"),
            port: 51000 + host as u16,
        };
        let mut a = mk(ns_a, a_imp, "a", 1);
        let mut b = mk(ns_b, b_imp, "b", 2);
        a.start_daemon();
        b.start_daemon();
        b.setconf(&a, false);
        a.setconf(&b, true);
        a.configure_link(1420);
        b.configure_link(1420);
        Pair { a, b, n }
    }

    /// Pings from A to B over the tunnel until one answers (bounded).
    pub fn ping_until_up(&self) {
        let ok = wait_for(Duration::from_secs(20), || {
            self.a.ns.sh(&format!("ping -c1 -W1 {}", self.b.tunnel_v4)).status.success()
        });
        assert!(ok.is_some(), "tunnel {:?} -> {:?} never came up", self.a.imp, self.b.imp);
    }
}

/// Polls `f` every 100 ms until it returns true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// FNV-1a over a deterministic pseudo-random stream: cheap, and enough to detect corruption.
fn fnv(h: &mut u64, data: &[u8]) {
    for b in data {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100000001b3);
    }
}

/// Sends `bytes` of pseudo-random data over TCP from A to B across the tunnel and returns the
/// (sent, received) checksums and the elapsed time. Bounded by `limit`.
pub fn tcp_transfer(pair: &Pair, bytes: usize, limit: Duration) -> (u64, u64, Duration) {
    let dst = format!("{}:5201", pair.b.tunnel_v4);
    let listener = pair.b.run_in_ns(|| TcpListener::bind(("0.0.0.0", 5201)).expect("bind"));
    let start = Instant::now();
    std::thread::scope(|s| {
        let recv = s.spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(limit)).expect("timeout");
            let mut h = 0xcbf29ce484222325u64;
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0usize;
            while got < bytes {
                let n = conn.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                fnv(&mut h, &buf[..n]);
                got += n;
            }
            (h, got)
        });
        let mut conn = pair.a.run_in_ns(|| TcpStream::connect(&dst).expect("connect"));
        conn.set_write_timeout(Some(limit)).expect("timeout");
        let mut h = 0xcbf29ce484222325u64;
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut buf = vec![0u8; 1 << 16];
        let mut sent = 0usize;
        while sent < bytes {
            let n = buf.len().min(bytes - sent);
            for chunk in buf[..n].chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let w = state.to_le_bytes();
                chunk.copy_from_slice(&w[..chunk.len()]);
            }
            conn.write_all(&buf[..n]).expect("write");
            fnv(&mut h, &buf[..n]);
            sent += n;
        }
        drop(conn);
        let (rh, got) = recv.join().expect("receiver");
        assert_eq!(got, bytes, "received byte count");
        (h, rh, start.elapsed())
    })
}

impl End {
    pub fn run_in_ns<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.ns.run_in(f)
    }
}
