//! Two network namespaces joined by a veth pair, with a WireGuard tunnel between them; each end
//! run by ferrowg or by a reference peer (wireguard-go, boringtun-cli).
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fake_daemon::socket_path;
use crate::netns::{iface_name, unique, Netns};
use crate::process::{run, wait_for};
use crate::root::require_tool;
use crate::tempdir::TempDir;

/// The ferrowg binary cargo built for the integration test running now: `ferrowg` in the
/// target directory, beside the `deps/` folder that holds the test executable (cargo builds a
/// package's binaries before its integration tests).
pub fn ferrowg_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("ferrowg"))
        .expect("the test executable is in <target>/<profile>/deps");
    assert!(
        bin.is_file(),
        "{} does not exist: run the test with cargo test -p ferrowg",
        bin.display()
    );
    bin
}

/// The ferrowg binary as a string, for shell command lines.
pub fn fwg() -> String {
    ferrowg_bin().to_str().expect("utf-8 path").to_string()
}

/// Which implementation runs an end of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// ferrowg's daemon (`ferrowg daemon --foreground`).
    Ferrowg,
    /// wireguard-go.
    WireguardGo,
    /// boringtun-cli.
    Boringtun,
}

/// A static key pair made by `wg genkey`-compatible code (the ferrowg CLI).
#[derive(Clone)]
pub struct Keys {
    /// The private key, base64.
    pub private: String,
    /// The public key, base64.
    pub public: String,
}

/// A new key pair from `ferrowg genkey` and `ferrowg pubkey`.
pub fn genkeys() -> Keys {
    let private = run(&format!("{} genkey", fwg())).trim().to_string();
    let public = run(&format!("echo {private} | {} pubkey", fwg()))
        .trim()
        .to_string();
    Keys { private, public }
}

/// The wg-quick configuration of a responder (host 2 of the `/24` and `/64` subnets `net4` and
/// `net6`, e.g. `10.201.7` and `fd01:7`) that listens on port 51820 and accepts the initiator
/// `peer` (host 1) without knowing its endpoint.
pub fn responder_quick_conf(me: &Keys, peer: &Keys, net4: &str, net6: &str) -> String {
    format!(
        "[Interface]\nPrivateKey = {}\nAddress = {net4}.2/24, {net6}::2/64\nListenPort = 51820\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = {net4}.1/32, {net6}::1/128\n",
        me.private, peer.public
    )
}

/// Two namespaces joined by a veth pair, with IPv4 and IPv6 addresses on both ends.
pub struct Link {
    /// Side A (host 1).
    pub a: Netns,
    /// Side B (host 2).
    pub b: Netns,
    /// The subnet number N in the addresses above (addresses are local to the namespaces,
    /// so it only needs to be unique within a test).
    pub n: u32,
    /// The veth device in A.
    pub veth_a: String,
    /// The veth device in B.
    pub veth_b: String,
}

impl Link {
    /// Creates both namespaces and the veth pair, with addresses on both ends.
    #[allow(clippy::new_without_default)]
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

/// Starts `ferrowg daemon --foreground ARGS… IFACE` in `ns` (which then owns the interface),
/// with `RUST_LOG=info` and `env`, and waits (bounded) until its UAPI socket answers and its
/// interface exists; panics with the namespace's logs otherwise. Returns the daemon's pid.
pub fn start_ferrowg(ns: &mut Netns, iface: &str, args: &[&str], env: &[(&str, &str)]) -> u32 {
    ns.own_iface(iface);
    let mut argv = vec!["daemon", "--foreground"];
    argv.extend_from_slice(args);
    argv.push(iface);
    let mut envs = vec![("RUST_LOG", "info")];
    envs.extend_from_slice(env);
    let pid = ns.spawn(&fwg(), &argv, &envs);
    let up = wait_for(Duration::from_secs(15), || {
        std::os::unix::net::UnixStream::connect(socket_path(iface)).is_ok()
            && ns.sh(&format!("ip link show {iface}")).status.success()
    });
    assert!(
        up.is_some(),
        "ferrowg did not create {iface}\n{}",
        ns.logs()
    );
    pid
}

/// One end of a tunnel.
pub struct End {
    /// The namespace it runs in.
    pub ns: Netns,
    /// Its WireGuard interface.
    pub iface: String,
    /// Its static keys.
    pub keys: Keys,
    /// What runs it.
    pub imp: Impl,
    /// The underlay IPv4 address.
    pub underlay: String,
    /// The underlay IPv6 address.
    pub underlay6: String,
    /// Whether the peer reaches this end over IPv6 (its configured endpoint is `underlay6`).
    pub via_v6: bool,
    /// Its veth device.
    pub veth: String,
    /// Its IPv4 address inside the tunnel.
    pub tunnel_v4: String,
    /// Its IPv6 address inside the tunnel.
    pub tunnel_v6: String,
    /// Its UDP listen port.
    pub port: u16,
    /// The daemon's pid, once started.
    pub pid: Option<u32>,
    /// More options for `ferrowg daemon` (before the interface name).
    pub daemon_args: Vec<String>,
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
                let mut argv = vec!["daemon", "--foreground"];
                argv.extend(self.daemon_args.iter().map(String::as_str));
                argv.push(&iface);
                self.ns.spawn(&bin, &argv, &[("RUST_LOG", &level)])
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

    /// Runs `f` on a thread inside this end's namespace.
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
    /// The client (initiator), the only end that knows the other's endpoint.
    pub a: End,
    /// The server (responder).
    pub b: End,
    /// The subnet number in the addresses.
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
        Pair::build_with(a_imp, b_imp, via_v6, &[])
    }

    /// [`Pair::build`], A's `ferrowg daemon` given the options `a_args` too.
    pub fn build_with(a_imp: Impl, b_imp: Impl, via_v6: bool, a_args: &[&str]) -> Pair {
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
            daemon_args: Vec::new(),
        };
        let mut a = mk(ns_a, a_imp, "a", 1, veth_a);
        a.daemon_args = a_args.iter().map(|s| (*s).to_owned()).collect();
        let mut b = mk(ns_b, b_imp, "b", 2, veth_b);
        a.start_daemon();
        b.start_daemon();
        b.setconf(&a, false);
        a.setconf(&b, true);
        a.configure_link(1420);
        b.configure_link(1420);
        Pair { a, b, n }
    }

    /// Asserts that `count` pings get through over IPv4 and IPv6, both ways (B answers only
    /// once it has learnt A's endpoint, so ping A to B first).
    pub fn assert_pings_both_ways(&self, count: u32) {
        assert!(self.a.ping(&self.b.tunnel_v4, count), "IPv4 ping A -> B");
        assert!(self.a.ping(&self.b.tunnel_v6, count), "IPv6 ping A -> B");
        assert!(self.b.ping(&self.a.tunnel_v4, count), "IPv4 ping B -> A");
        assert!(self.b.ping(&self.a.tunnel_v6, count), "IPv6 ping B -> A");
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
