//! End-to-end robustness (issue #3, parts 4–6), ferrowg on both ends:
//!
//! - roaming: the client's underlay address changes in the middle of a TCP transfer; the
//!   transfer completes intact and the server reports the new endpoint;
//! - restart: `kill -9` of either daemon (its TUN device goes, its UAPI socket stays behind),
//!   started again with the same configuration: traffic resumes by itself;
//! - bad input: a malformed configuration file, malformed UAPI requests, a flood of garbage
//!   datagrams at the UDP port, bad interface names, no privilege.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::io::{Read, Write};
use std::net::UdpSocket;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferrowg_keys::key::PublicKey;
use ferrowg_testkit::*;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

// ---------------------------------------------------------------------------------------------
// Roaming

#[test]
fn roaming_client_changes_address_during_transfer() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    pair.ping_until_up(Duration::from_secs(20));
    let (a, b, n) = (&pair.a, &pair.b, pair.n);
    let old = format!("10.199.{n}.1");
    let new = format!("10.199.{n}.11");
    assert_eq!(
        b.wg_show("endpoints").split_whitespace().nth(1),
        Some(format!("{old}:51001").as_str())
    );

    // Halfway through, the client's address changes: the new one is added as a secondary,
    // and the old one removed, which promotes the new one (the subnet route stays).
    let bytes = 100_000_000;
    let moved_at = std::sync::Mutex::new(None);
    let t = tcp_transfer_with(&pair, bytes, Duration::from_secs(120), bytes / 3, || {
        a.ns.run(&format!(
            "sysctl -qw net.ipv4.conf.{v}.promote_secondaries=1 && ip addr add {new}/24 dev {v} && \
             ip addr del {old}/24 dev {v}",
            v = a.veth
        ));
        *moved_at.lock().unwrap() = Some(Instant::now());
    });
    assert!(
        moved_at.lock().unwrap().is_some(),
        "the address never changed"
    );
    let addrs = a.ns.run(&format!("ip -4 addr show dev {}", a.veth));
    assert!(
        addrs.contains(&new) && !addrs.contains(&format!("{old}/")),
        "{addrs}"
    );
    eprintln!(
        "roaming: {} bytes in {:.1?} ({:.0} Mbit/s)",
        t.received,
        t.elapsed,
        t.mbit_per_s()
    );
    assert_eq!(t.received, bytes);
    assert_eq!(
        t.sent_hash, t.received_hash,
        "checksum across the address change"
    );
    let eps = b.wg_show("endpoints");
    assert_eq!(
        eps.split_whitespace().nth(1),
        Some(format!("{new}:51001").as_str()),
        "the server's view of the client's endpoint:\n{eps}"
    );
    // And the server can reach the client at its new address on its own.
    assert!(b.ping(&a.tunnel_v4, 3), "ping B -> A after roaming");
}

// ---------------------------------------------------------------------------------------------
// Restart

/// Kills one end's daemon with SIGKILL, starts it again with the same configuration and
/// returns how long the tunnel took to carry a ping again.
fn restart(kill_server: bool) -> Duration {
    let mut pair = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    pair.ping_until_up(Duration::from_secs(20));
    let hs_before = if kill_server {
        pair.a.latest_handshake()
    } else {
        pair.b.latest_handshake()
    };
    let (victim, other) = if kill_server {
        (&mut pair.b, &pair.a)
    } else {
        (&mut pair.a, &pair.b)
    };
    let pid = victim.pid.expect("daemon running");
    victim.ns.kill9(pid);
    let iface = victim.iface.clone();
    let gone = wait_for(Duration::from_secs(5), || {
        !victim
            .ns
            .sh(&format!("ip link show {iface}"))
            .status
            .success()
    });
    assert!(gone.is_some(), "{iface} outlived its daemon");
    assert!(
        socket_path(&iface).exists(),
        "expected the stale UAPI socket to stay behind"
    );

    // The same configuration again; the daemon must replace the stale socket.
    let restarted = Instant::now();
    victim.start_daemon();
    victim.setconf(other, !kill_server);
    victim.configure_link(1420);
    let back = pair.ping_until_up(Duration::from_secs(60));
    // A new handshake happened, seen from both ends.
    let now = unix_now();
    let survivor = if kill_server { &pair.a } else { &pair.b };
    let hs_after = survivor.latest_handshake();
    assert!(
        hs_after >= hs_before && hs_after + restarted.elapsed().as_secs() + 2 >= now,
        "no new handshake"
    );
    let restarted_end = if kill_server { &pair.b } else { &pair.a };
    assert!(
        restarted_end.latest_handshake() != 0,
        "the restarted daemon reports no handshake"
    );
    let t = tcp_transfer(&pair, 5_000_000, Duration::from_secs(60));
    assert_eq!(t.sent_hash, t.received_hash);
    back
}

#[test]
fn restart_of_killed_responder_resumes_traffic() {
    if !require_root() {
        return;
    }
    // The client still has its old session: its packets are dropped until, after
    // KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (15 s) without an answer, it starts a new handshake.
    let t = restart(true);
    eprintln!("responder restarted: traffic back after {t:.1?}");
}

#[test]
fn restart_of_killed_initiator_resumes_traffic() {
    if !require_root() {
        return;
    }
    let t = restart(false);
    eprintln!("initiator restarted: traffic back after {t:.1?}");
}

#[test]
fn listen_port_change_moves_traffic_to_the_new_socket() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    pair.ping_until_up(Duration::from_secs(20));
    let (a, b) = (&pair.a, &pair.b);
    // The responder moves to another port while its data path is idle, and the initiator is
    // told the new endpoint: the session goes on over the new socket.
    let port = b.port + 100;
    b.ns.run(&format!("wg set {} listen-port {port}", b.iface));
    a.ns.run(&format!(
        "wg set {} peer {} endpoint {}:{port}",
        a.iface, b.keys.public, b.underlay
    ));
    let (rx_before, _) = b.transfer();
    assert!(
        a.ping(&b.tunnel_v4, 3),
        "no answer after the port change\nA: {}\nB: {}",
        a.ns.logs(),
        b.ns.logs()
    );
    let (rx_after, _) = b.transfer();
    assert!(rx_after > rx_before, "{rx_before} -> {rx_after}");
    // The old socket is closed, not merely unused: only the new port is bound.
    let bound = b.ns.run("ss -Hlun");
    assert!(bound.contains(&format!(":{port} ")), "{bound}");
    assert!(!bound.contains(&format!(":{} ", b.port)), "{bound}");
}

// ---------------------------------------------------------------------------------------------
// Bad input

/// A ferrowg daemon in a namespace of its own, configured with one peer by `wg setconf`.
struct Single {
    ns: Netns,
    iface: String,
    pid: u32,
    dir: TempDir,
}

fn single() -> Single {
    let mut ns = Netns::new("s");
    let iface = iface_name("s");
    let pid = start_ferrowg(&mut ns, &iface, &[], &[]);
    let dir = TempDir::new();
    let conf = dir.write(
        "good.conf",
        &format!(
            "[Interface]\nPrivateKey = {}\nListenPort = 51820\n\n[Peer]\nPublicKey = {}\n\
             AllowedIPs = 10.1.0.0/24, fd01::/64\nEndpoint = 192.0.2.1:51820\nPersistentKeepalive = 25\n",
            genkeys().private,
            genkeys().public
        ),
    );
    ns.run(&format!("wg setconf {iface} {}", conf.display()));
    Single {
        ns,
        iface,
        pid,
        dir,
    }
}

impl Single {
    fn showconf(&self) -> String {
        self.ns.run(&format!("wg showconf {}", self.iface))
    }
}

#[test]
fn malformed_config_is_refused_naming_file_line_field() {
    if !require_root() {
        return;
    }
    let s = single();
    let before = s.showconf();
    let key = genkeys();
    // (file contents, line, field) — every file is otherwise valid and would change the device.
    let cases = [
        (
            format!(
                "[Interface]\nPrivateKey = {}\nListenPort = 40000\n\n[Peer]\nPublicKey = {}\nAllowedIPs = 10.0.0.0/33\n",
                key.private, key.public
            ),
            7,
            "AllowedIPs",
        ),
        (format!("[Interface]\nPrivateKey = {}\nListenPort = 70000\n", key.private), 3, "ListenPort"),
        (
            format!("[Interface]\nListenPort = 40000\n\n[Peer]\nPublicKey = {}\nAllowedIPs = 10.2.0.0/16\nEndpoint = 10.0.0.1\n", key.public),
            7,
            "Endpoint",
        ),
        (format!("[Interface]\nPrivateKey = {}xyz\n", key.private), 2, "PrivateKey"),
        (
            format!("[Interface]\nListenPort = 40000\n[Peer]\nPublicKey = {}\nPersistentKeepalive = often\n", key.public),
            5,
            "PersistentKeepalive",
        ),
    ];
    for (i, (conf, line, field)) in cases.iter().enumerate() {
        let name = format!("bad{i}.conf");
        let path = s.dir.write(&name, conf);
        for cmd in ["setconf", "addconf", "syncconf"] {
            let out =
                s.ns.sh(&format!("{} {cmd} {} {}", fwg(), s.iface, path.display()));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{cmd} {name} succeeded:\n{conf}");
            assert!(
                err.contains(&format!("{name}:{line}")) && err.contains(field),
                "{cmd} {name}: error should name {name}:{line} and {field}, got: {err}"
            );
            assert!(
                !err.contains(&key.private),
                "the error leaks the private key: {err}"
            );
        }
    }
    assert_eq!(
        s.showconf(),
        before,
        "a refused configuration changed the device"
    );
}

/// Sends `request` on a fresh connection to the UAPI socket and returns what comes back
/// before the reply's empty line (or the end of the connection); bounded by 5 s.
fn uapi(conn: &mut UnixStream, request: &[u8]) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(request).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n\n") {
        match conn.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => reply.push(byte[0]),
            Err(e) => panic!("UAPI read after {:?}: {e}", String::from_utf8_lossy(&reply)),
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn malformed_uapi_requests_get_errno_and_change_nothing() {
    if !require_root() {
        return;
    }
    let s = single();
    let before = s.showconf();
    let valid_key = PublicKey::from_base64(&genkeys().public).unwrap().to_hex();
    let cases: Vec<(String, &str)> = vec![
        ("set=1\nlisten_port=notaport\n\n".into(), "errno=-22\n\n"),
        ("set=1\nlisten_port=65536\n\n".into(), "errno=-22\n\n"),
        ("set=1\nno_such_key=1\n\n".into(), "errno=-22\n\n"),
        ("set=1\nprivate_key=zz\n\n".into(), "errno=-22\n\n"),
        ("set=1\nthis line has no equals sign\n\n".into(), "errno=-71\n\n"),
        ("set=1\npublic_key=0123\n\n".into(), "errno=-22\n\n"),
        // Valid up to the last line: nothing of it may be applied.
        (
            format!("set=1\nlisten_port=40000\nreplace_peers=true\npublic_key={valid_key}\nallowed_ip=10.9.0.0/24\nallowed_ip=10.0.0.0/40\n\n"),
            "errno=-22\n\n",
        ),
        (format!("set=1\npublic_key={valid_key}\nendpoint=not-an-endpoint\n\n"), "errno=-22\n\n"),
        (format!("set=1\npublic_key={valid_key}\npersistent_keepalive_interval=-1\n\n"), "errno=-22\n\n"),
        (format!("set=1\npublic_key={valid_key}\nprotocol_version=2\n\n"), "errno=-22\n\n"),
    ];
    for (req, want) in &cases {
        let mut conn = UnixStream::connect(socket_path(&s.iface)).expect("connect");
        let got = uapi(&mut conn, req.as_bytes());
        assert_eq!(&got, want, "reply to {req:?}");
        // The connection stays usable after a refused request.
        let get = uapi(&mut conn, b"get=1\n\n");
        assert!(
            get.starts_with("private_key=") && get.ends_with("errno=0\n\n"),
            "get after {req:?}: {get:?}"
        );
    }
    // An unknown operation: the connection is closed without a reply, as wireguard-go does.
    let mut conn = UnixStream::connect(socket_path(&s.iface)).expect("connect");
    assert_eq!(uapi(&mut conn, b"frobnicate=1\n\n"), "");
    // Binary junk.
    let mut conn = UnixStream::connect(socket_path(&s.iface)).expect("connect");
    let _ = conn.write_all(&[0xff, 0x00, 0x13, b'\n', 0x80, b'=', 0x01, b'\n', b'\n']);
    drop(conn);

    assert_eq!(s.showconf(), before, "a refused request changed the device");
    let mut ns = s.ns;
    assert!(ns.alive(s.pid), "the daemon died");
}

/// The flood's deterministic generator.
struct Rng(ChaCha8Rng);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }
    fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill_bytes(buf);
    }
}

/// One garbage datagram: random bytes, or a WireGuard header (types 1–4) on garbage: some
/// initiations carry a valid mac1 for the victim (they pass the cheap check and reach the
/// handshake code or the cookie logic), some transport messages the receiver index of the live
/// session with random counters (they reach the AEAD and must not move the replay window).
fn garbage(rng: &mut Rng, mac: &mut ferrowg_proto::cookie::CookieMaker, index: [u8; 4]) -> Vec<u8> {
    let kind = rng.below(7);
    let len = match kind {
        0 => rng.below(1501),
        1 | 2 => 148,
        3 => 92,
        4 => 64,
        _ => 32 + rng.below(1469),
    };
    let mut d = vec![0u8; len];
    rng.fill(&mut d);
    if kind > 0 {
        let ty = [0, 1, 1, 2, 3, 4, 4][kind];
        d[..4].copy_from_slice(&[ty, 0, 0, 0]);
    }
    if kind == 2 {
        mac.add_macs(&mut d, ferrowg_proto::Instant::from_nanos(0));
    }
    if kind == 6 {
        d[4..8].copy_from_slice(&index);
        if rng.below(2) == 0 {
            // A counter far ahead: accepted into the window only if authentic.
            d[8..16].copy_from_slice(&(u64::MAX - 1 - rng.below(1 << 20) as u64).to_le_bytes());
        }
    }
    d
}

/// B's receiver index of the current session, read off the wire (bytes 4..8 of a transport
/// message from A, captured with tshark in B's namespace while A pings).
fn sniff_receiver_index(pair: &Pair) -> [u8; 4] {
    require_tool("tshark");
    let filter = format!("udp dst port {} and udp[8] = 4", pair.b.port);
    let cmd = pair.b.ns.wrap(&format!(
        "tshark -l -i {} -c 1 -a duration:40 -f \"{filter}\" -T fields -e udp.payload 2>/dev/null",
        pair.b.veth
    ));
    let out = std::thread::scope(|s| {
        let capture = s.spawn(|| sh(&cmd));
        while !capture.is_finished() {
            pair.a.ping(&pair.b.tunnel_v4, 1);
        }
        capture.join().expect("tshark thread")
    });
    let hex: String = String::from_utf8_lossy(&out.stdout)
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    assert!(
        hex.len() >= 32 && hex.starts_with("04000000"),
        "no transport message captured: {}",
        text(&out)
    );
    let mut index = [0u8; 4];
    for (i, b) in index.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[8 + 2 * i..10 + 2 * i], 16).expect("hex");
    }
    index
}

#[test]
fn garbage_flood_does_not_disturb_the_tunnel() {
    if !require_root() {
        return;
    }
    let mut pair = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    pair.ping_until_up(Duration::from_secs(20));
    let pid = pair.b.pid.expect("daemon");
    let index = sniff_receiver_index(&pair);
    let rss_before = rss_kib(pid);
    let victim_key = *PublicKey::from_base64(&pair.b.keys.public)
        .unwrap()
        .as_bytes();
    let target = format!("{}:{}", pair.b.underlay, pair.b.port);
    // From another port of the client's namespace: same source address as the real peer.
    let sock = pair
        .a
        .run_in_ns(|| UdpSocket::bind("0.0.0.0:0").expect("bind"));
    sock.connect(&target).expect("connect");

    let rx_packets = || -> u64 {
        let f = format!("cat /sys/class/net/{}/statistics/rx_packets", pair.b.veth);
        pair.b.ns.run(&f).trim().parse().expect("rx_packets")
    };
    let rx_before = rx_packets();

    const MAX_DATAGRAMS: u64 = 60_000;
    const FLOOD_TIME: Duration = Duration::from_secs(4);
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let peak_rss = AtomicU64::new(rss_before);
    let (ping_during, rss_during) = std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(ChaCha8Rng::seed_from_u64(0x5eed_1234_abcd_0001));
            let mut mac = ferrowg_proto::cookie::CookieMaker::new(&victim_key);
            let start = Instant::now();
            // About 15 000 datagrams a second, in bursts of 15 every millisecond.
            while start.elapsed() < FLOOD_TIME && sent.load(Ordering::Relaxed) < MAX_DATAGRAMS {
                for _ in 0..15 {
                    let _ = sock.send(&garbage(&mut rng, &mut mac, index));
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            done.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                peak_rss.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        // Ten pings while the flood runs.
        std::thread::sleep(Duration::from_millis(300));
        let out = pair
            .a
            .ns
            .sh(&format!("ping -n -c 10 -i 0.2 -W 1 {}", pair.b.tunnel_v4));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let during_flood = !done.load(Ordering::SeqCst);
        (stdout, during_flood)
    });
    let received: u32 = ping_during
        .split(',')
        .find_map(|p| {
            p.trim()
                .strip_suffix(" received")
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let sent = sent.load(Ordering::Relaxed);
    let (peak, after) = (peak_rss.load(Ordering::Relaxed), rss_kib(pid));
    eprintln!(
        "flood: {sent} datagrams in {FLOOD_TIME:?}; pings during it: {received}/10 (ended during flood: {rss_during}); \
         RSS before {rss_before} KiB, peak {peak} KiB, after {after} KiB"
    );
    assert!(sent >= 1000, "the flood did not run ({sent} datagrams)");
    let arrived = rx_packets() - rx_before;
    assert!(
        arrived >= sent * 9 / 10,
        "only {arrived} of {sent} datagrams reached the server"
    );
    assert!(
        received >= 5,
        "the tunnel did not serve during the flood:\n{ping_during}"
    );
    assert!(
        pair.b.ns.alive(pid),
        "the daemon died\n{}",
        pair.b.ns.logs()
    );
    assert!(
        peak < rss_before + 64 * 1024 && after < rss_before + 32 * 1024,
        "RSS grew: before {rss_before} KiB, peak {peak} KiB, after {after} KiB"
    );
    // Still serving: ping, a transfer, the UAPI.
    assert!(pair.a.ping(&pair.b.tunnel_v4, 3), "ping after the flood");
    let t = tcp_transfer(&pair, 5_000_000, Duration::from_secs(60));
    assert_eq!(t.sent_hash, t.received_hash);
    assert!(pair.b.wg_show("peers").contains(&pair.a.keys.public));
}

#[test]
fn daemon_refuses_bad_interface_names() {
    if !require_root() {
        return;
    }
    let ns = Netns::new("n");
    for (args, want) in [
        ("daemon --foreground bad/name", "not a valid interface name"),
        (
            "daemon --foreground fw0123456789abcdef",
            "not a valid interface name",
        ),
        (
            "daemon --foreground 'has space'",
            "not a valid interface name",
        ),
        ("daemon --foreground ..", "not a valid interface name"),
        ("daemon bad/name", "not a valid interface name"),
        ("daemon", "Usage: ferrowg daemon"),
        ("daemon --foreground a b", "Usage: ferrowg daemon"),
    ] {
        let out = ns.sh(&format!("{} {args}", fwg()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "`ferrowg {args}` succeeded");
        assert!(
            err.contains(want),
            "`ferrowg {args}`: want {want:?} in: {err}"
        );
    }
    let links = ns.run("ip -o link show");
    assert_eq!(links.lines().count(), 1, "a device was created: {links}");
}

#[test]
fn daemon_without_privilege_says_so() {
    if !require_root() {
        return;
    }
    require_tool("setpriv");
    let ns = Netns::new("p");
    for detach in ["--foreground ", ""] {
        let iface = iface_name("p");
        let out = ns.sh(&format!(
            "setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all {} daemon {detach}{iface}",
            fwg()
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "an unprivileged daemon started ({detach:?})"
        );
        assert!(
            err.contains(&format!("creating {iface} needs root or CAP_NET_ADMIN")),
            "unclear error ({detach:?}): {err}"
        );
        assert!(!socket_path(&iface).exists());
    }
}
