//! End-to-end (issue #17, item 10): an endpoint given as a host name is resolved again by the
//! daemon when handshakes to it keep failing, so a peer that moves to a new address behind
//! the same name is found again without any command; and the name travels only to a daemon
//! that takes it (wireguard-go gets exactly what wg(8) sends).
//!
//! ```text
//!   netns A (ferrowg, client)                  netns B (the peer, ferrowg)
//!   /etc/hosts: NAME -> B's address            first at 10.199.N.2, then at 10.199.N.3
//!   tunnel 10.203.N.1/24                       tunnel 10.203.N.2/24
//!   Endpoint = NAME:51820
//!        \__ UDP over veth __ 10.199.N.1/24 ——— 10.199.N.2 (later .3)
//! ```
//!
//! The resolver is one the test controls: `ip netns exec NS` (which starts every process in
//! A) bind-mounts `/etc/netns/NS/hosts` over `/etc/hosts`, and the test rewrites that file in
//! place (a rename would leave the mount on the old file). Namespaces, processes, sockets and
//! the hosts directory are removed on drop, also when the test fails.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use ferrowg_testkit::*;

/// How long after the peer moved the tunnel must work again (the issue's bound).
const MOVE_LIMIT: Duration = Duration::from_secs(30);

/// `/etc/netns/<ns>/`, holding the `hosts` file that processes started in the namespace by
/// `ip netns exec` see as `/etc/hosts`; removed on drop.
struct HostsFile {
    dir: PathBuf,
}

impl HostsFile {
    /// Creates the directory for namespace `ns` with a hosts file mapping `name` to `addr`.
    /// Call before starting anything in the namespace: `ip netns exec` mounts it at start.
    fn new(ns: &Netns, name: &str, addr: &str) -> HostsFile {
        let dir = PathBuf::from("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<ns>");
        let hosts = HostsFile { dir };
        hosts.point(name, addr);
        hosts
    }

    /// Rewrites the file in place (same inode, so the bind mounts see it): `name` is `addr`.
    fn point(&self, name: &str, addr: &str) {
        let text = format!("127.0.0.1 localhost\n::1 localhost\n{addr} {name}\n");
        std::fs::write(self.dir.join("hosts"), text).expect("write hosts");
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The raw `get=1` reply of `iface`'s daemon.
fn uapi_get(iface: &str) -> String {
    let mut s = UnixStream::connect(socket_path(iface)).expect("connect to the UAPI socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"get=1\n\n").unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"\n\n") {
        let n = s.read(&mut buf).expect("read the get reply");
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// Starts `ferrowg daemon --foreground` for a new interface in `ns` and waits (bounded) for
/// its UAPI socket; returns the interface and the daemon's pid.
fn start_ferrowg(ns: &mut Netns, tag: &str) -> (String, u32) {
    let iface = iface_name(tag);
    let pid = ferrowg_testkit::start_ferrowg(ns, &iface, &[], &[]);
    (iface, pid)
}

/// The peer in B: a ferrowg daemon with key `me` that accepts `client` (tunnel address
/// 10.203.N.1) without knowing its endpoint, at tunnel address 10.203.N.2.
fn start_peer(ns: &mut Netns, n: u32, me: &Keys, client: &Keys, dir: &TempDir) -> (String, u32) {
    let (iface, pid) = start_ferrowg(ns, "p");
    let conf = dir.write(
        &format!("{iface}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nListenPort = 51820\n\n\
             [Peer]\nPublicKey = {}\nAllowedIPs = 10.203.{n}.1/32\n",
            me.private, client.public
        ),
    );
    ns.run(&format!("{} setconf {iface} {}", fwg(), conf.display()));
    ns.run(&format!("ip addr add 10.203.{n}.2/24 dev {iface}"));
    ns.run(&format!("ip link set {iface} up"));
    (iface, pid)
}

/// One ping through the tunnel from `ns` to `addr` (answered within 1 s).
fn ping_once(ns: &Netns, addr: &str) -> bool {
    ns.sh(&format!("ping -n -q -c1 -W1 {addr}"))
        .status
        .success()
}

#[test]
fn a_peer_that_moves_behind_its_name_is_found_again() {
    if !require_root() {
        return;
    }
    let mut link = Link::new();
    let n = link.n;
    let (addr_a, addr_b) = (format!("10.199.{n}.2"), format!("10.199.{n}.3"));
    let name = format!("peer-{}-{n}.test", std::process::id());
    let hosts = HostsFile::new(&link.a, &name, &addr_a);
    let dir = TempDir::new();
    let (kc, kp) = (genkeys(), genkeys());

    let (peer_iface, peer_pid) = start_peer(&mut link.b, n, &kp, &kc, &dir);
    let (iface, _) = start_ferrowg(&mut link.a, "c");
    let conf = dir.write(
        &format!("{iface}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\n\n\
             [Peer]\nPublicKey = {}\nEndpoint = {name}:51820\nAllowedIPs = 10.203.{n}.2/32\n",
            kc.private, kp.public
        ),
    );
    link.a
        .run(&format!("{} setconf {iface} {}", fwg(), conf.display()));
    link.a
        .run(&format!("ip addr add 10.203.{n}.1/24 dev {iface}"));
    link.a.run(&format!("ip link set {iface} up"));
    let peer_tunnel = format!("10.203.{n}.2");
    let first = wait_for(Duration::from_secs(20), || ping_once(&link.a, &peer_tunnel));
    assert!(first.is_some(), "no tunnel to the peer at {addr_a}");
    let endpoints = link.a.run(&format!("wg show {iface} endpoints"));
    assert!(
        endpoints.contains(&format!("{addr_a}:51820")),
        "{endpoints}"
    );

    // The peer moves: stopped at A, its address moved to B, started again there (knowing
    // nothing of the client, so only the client can restore the tunnel), and the name now
    // points at B. Nothing is run on the client's side.
    link.b.kill9(peer_pid);
    let veth = link.veth_b.clone();
    link.b.run(&format!("ip addr del {addr_a}/24 dev {veth}"));
    link.b.run(&format!("ip addr add {addr_b}/24 dev {veth}"));
    let wait_gone = wait_for(Duration::from_secs(10), || {
        !link
            .b
            .sh(&format!("ip link show {peer_iface}"))
            .status
            .success()
    });
    assert!(wait_gone.is_some(), "{peer_iface} outlived its daemon");
    start_peer(&mut link.b, n, &kp, &kc, &dir);
    hosts.point(&name, &addr_b);

    let again = wait_for(MOVE_LIMIT, || ping_once(&link.a, &peer_tunnel));
    assert!(
        again.is_some(),
        "the tunnel did not come back within {MOVE_LIMIT:?} of the peer's move to {addr_b}\n\
         client endpoints: {}\nlogs:\n{}",
        link.a.run(&format!("wg show {iface} endpoints")),
        link.a.logs()
    );
    eprintln!("tunnel back {:?} after the move", again.unwrap_or_default());
    let endpoints = link.a.run(&format!("wg show {iface} endpoints"));
    assert!(
        endpoints.contains(&format!("{addr_b}:51820")),
        "{endpoints}"
    );
    let logs = link.a.logs();
    assert!(
        logs.contains(&format!("{name}:51820 now resolves to {addr_b}:51820")),
        "no log line for the new address:\n{logs}"
    );
    // The name is kept, and reported after the endpoint.
    let reply = uapi_get(&iface);
    assert!(
        reply.contains(&format!(
            "endpoint={addr_b}:51820\nferrowg_endpoint_host={name}:51820\n"
        )),
        "{reply}"
    );
}

/// The name goes to a ferrowg daemon, which reports it and forgets it on a numeric endpoint;
/// wireguard-go gets the request without it (it would refuse the unknown key), and stock `wg`
/// reads a ferrowg interface that holds a name.
#[test]
fn names_go_only_to_a_daemon_that_takes_them() {
    let Some(mut ns) = Netns::for_test("names") else {
        return;
    };
    require_tool("wireguard-go");
    let name = format!("named-{}.test", std::process::id());
    let _hosts = HostsFile::new(&ns, &name, "10.9.8.7");
    let key = genkeys().public;
    let set_named = |ns: &Netns, iface: &str| {
        ns.sh(&format!(
            "{} set {iface} peer {key} endpoint {name}:51820 allowed-ips 10.0.0.2/32",
            fwg()
        ))
    };

    let (ours, _) = start_ferrowg(&mut ns, "f");
    let out = set_named(&ns, &ours);
    assert!(out.status.success(), "ferrowg set: {}", text(&out));
    let reply = uapi_get(&ours);
    assert!(
        reply.contains(&format!(
            "endpoint=10.9.8.7:51820\nferrowg_endpoint_host={name}:51820\n"
        )),
        "{reply}"
    );
    for cmd in ["show", "showconf"] {
        let out = ns.sh(&format!("wg {cmd} {ours}"));
        assert!(out.status.success(), "wg {cmd}: {}", text(&out));
        assert!(text(&out).contains("10.9.8.7:51820"), "{}", text(&out));
    }
    // A numeric endpoint, from stock wg, forgets the name.
    ns.run(&format!("wg set {ours} peer {key} endpoint 10.9.8.8:51820"));
    let reply = uapi_get(&ours);
    assert!(!reply.contains("ferrowg_endpoint_host"), "{reply}");
    assert!(reply.contains("endpoint=10.9.8.8:51820"), "{reply}");

    let go = iface_name("g");
    ns.own_iface(&go);
    ns.spawn("wireguard-go", &["-f", &go], &[("LOG_LEVEL", "error")]);
    let up = wait_for(Duration::from_secs(15), || {
        UnixStream::connect(socket_path(&go)).is_ok()
    });
    assert!(up.is_some(), "wireguard-go did not start:\n{}", ns.logs());
    let out = set_named(&ns, &go);
    assert!(
        out.status.success(),
        "ferrowg set on wireguard-go: {}",
        text(&out)
    );
    let endpoints = ns.run(&format!("wg show {go} endpoints"));
    assert!(endpoints.contains("10.9.8.7:51820"), "{endpoints}");
    assert!(!uapi_get(&go).contains("ferrowg_"));
}
