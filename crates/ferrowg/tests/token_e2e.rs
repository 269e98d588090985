//! End-to-end tests of token-held keys: ferrowg with its static key in a SoftHSM2 token
//! against wireguard-go (and ferrowg) with ordinary keys, in two network namespaces.
//!
//! ```text
//!   netns A: ferrowg daemon ──── PKCS#11 ──── SoftHSM2 token (its own store, this test's)
//!     wg iface 10.200.N.1 ── UDP over veth ── wg iface 10.200.N.2   netns B: wireguard-go
//!                                          └─ wg iface 10.201.N.2   (second peer, some tests)
//! ```
//!
//! The tunnel is first built by the shared bench (`support::Pair`), then A's daemon is
//! restarted with the token's `SOFTHSM2_CONF` and given the token key (with `ferrowg setconf`
//! and a `PrivateKey = pkcs11:…` line, or `ferrowg set … private-key pkcs11:…`); B is told the
//! new public key with the stock `wg`.
//!
//! Needs root, SoftHSM2, wireguard-go and iperf3; without root it fails unless
//! FERROWG_SKIP_ROOT_TESTS=1.

mod token;

use std::time::{Duration, Instant};

use ferrowg_testkit::*;
use token::{TestToken, MODULE};

/// How A gets its token key.
#[derive(Clone, Copy)]
enum Via {
    /// `ferrowg setconf IFACE FILE` with `PrivateKey = pkcs11:…`.
    Setconf,
    /// `ferrowg set IFACE private-key pkcs11:…`.
    Set,
}

/// Restarts A's ferrowg daemon with the token's store in its environment, gives it the token
/// key `object` (generated now), and tells B the new public key. Returns the key's URI.
fn switch_a_to_token(pair: &mut Pair, t: &TestToken, object: &str, via: Via) -> String {
    let uri = t.uri(object);
    let public = t.ferrowg_ok(&["genkey", "--pkcs11", &uri]);
    let a = &mut pair.a;
    if let Some(pid) = a.pid.take() {
        a.ns.kill9(pid);
    }
    let iface = a.iface.clone();
    let gone = wait_for(Duration::from_secs(5), || {
        !a.ns.sh(&format!("ip link show {iface}")).status.success()
    });
    assert!(
        gone.is_some(),
        "{iface} still exists after its daemon was killed"
    );
    let conf = t.conf.to_str().expect("utf-8 path").to_owned();
    let pid = a.ns.spawn(
        &fwg(),
        &["daemon", "--foreground", &iface],
        &[("RUST_LOG", "info"), ("SOFTHSM2_CONF", &conf)],
    );
    a.pid = Some(pid);
    let up = wait_for(Duration::from_secs(15), || {
        std::os::unix::net::UnixStream::connect(socket_path(&iface)).is_ok()
            && a.ns.sh(&format!("ip link show {iface}")).status.success()
    });
    assert!(
        up.is_some(),
        "ferrowg did not recreate {iface}\n{}",
        a.ns.logs()
    );
    let old_public = std::mem::replace(&mut a.keys.public, public.clone());
    a.keys.private = String::new();
    let dir = TempDir::new();
    match via {
        Via::Setconf => {
            let text = a
                .conf(&pair.b, true)
                .replace("PrivateKey = \n", &format!("PrivateKey = {uri}\n"));
            assert!(text.contains("PrivateKey = pkcs11:"), "{text}");
            let path = dir.write(&format!("{iface}.conf"), &text);
            a.ns.run(&format!(
                "{} {} setconf {iface} {}",
                t.env(),
                fwg(),
                path.display()
            ));
        }
        Via::Set => {
            let text = a.conf(&pair.b, true).replace("PrivateKey = \n", "");
            let path = dir.write(&format!("{iface}.conf"), &text);
            a.ns.run(&format!("{} setconf {iface} {}", fwg(), path.display()));
            a.ns.run(&format!(
                "{} {} set {iface} private-key '{uri}'",
                t.env(),
                fwg()
            ));
        }
    }
    a.configure_link(1420);
    tell_peer(&pair.b, &old_public, &public, &pair.a);
    uri
}

/// Replaces `old` by `new` as B's peer, with A's tunnel addresses (stock `wg set`).
fn tell_peer(b: &End, old: &str, new: &str, a: &End) {
    b.ns.run(&format!(
        "wg set {} peer {old} remove peer {new} allowed-ips {}/32,{}/128",
        b.iface, a.tunnel_v4, a.tunnel_v6
    ));
}

fn logs_of(pair: &Pair) -> String {
    format!("A: {}\nB: {}", pair.a.ns.logs(), pair.b.ns.logs())
}

#[test]
fn token_key_interop_with_wireguard_go() {
    if !require_root() {
        return;
    }
    let t = TestToken::new("go");
    let mut pair = Pair::new(Impl::Ferrowg, Impl::WireguardGo);
    let uri = switch_a_to_token(&mut pair, &t, "wg-a", Via::Setconf);
    let up = pair.ping_until_up(Duration::from_secs(20));
    eprintln!("token key: tunnel up after {up:?}");

    // Handshake on both ends, pings both ways over IPv4 and IPv6.
    let now = unix_now();
    for end in [&pair.a, &pair.b] {
        let hs = end.latest_handshake();
        assert!(
            hs != 0 && hs + 60 >= now,
            "{:?}: latest handshake {hs}",
            end.imp
        );
    }
    pair.assert_pings_both_ways(3);

    // A transfer whose checksum matches.
    let bytes = 64 << 20;
    let tr = tcp_transfer(&pair, bytes, Duration::from_secs(120));
    assert_eq!(
        tr.received,
        bytes,
        "received {} of {bytes} bytes\n{}",
        tr.received,
        logs_of(&pair)
    );
    assert_eq!(tr.sent_hash, tr.received_hash, "checksum mismatch");
    eprintln!(
        "token key: {} MiB in {:?} ({:.0} Mbit/s)",
        bytes >> 20,
        tr.elapsed,
        tr.mbit_per_s()
    );

    // Stock wg(8) against the token-backed interface: it works, and shows no private key
    // (and so no public key: wg derives that from the private key).
    let shown = pair.a.ns.run(&format!("wg show {}", pair.a.iface));
    assert!(
        shown.contains(&format!("peer: {}", pair.b.keys.public)),
        "{shown}"
    );
    assert!(!shown.contains("private key"), "{shown}");
    let private = pair.a.wg_show("private-key");
    assert_eq!(private.trim(), "(none)", "wg show private-key: {private}");
    let conf = pair.a.ns.run(&format!("wg showconf {}", pair.a.iface));
    assert!(!conf.contains("PrivateKey"), "{conf}");
    assert!(conf.contains(&pair.b.keys.public), "{conf}");
    let dump = pair.a.wg_show("dump");
    assert!(
        dump.lines()
            .next()
            .is_some_and(|l| l.starts_with("(none)\t")),
        "{dump}"
    );

    // ferrowg reports the token key through its UAPI extension (URI without PIN, public key).
    let raw = ferrowg::cli::client::get_raw(&pair.a.iface).expect("get");
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.contains("ferrowg_private_key_uri=pkcs11:"), "{raw}");
    assert!(
        !raw.contains("private_key=") || raw.contains("ferrowg_private_key_uri="),
        "{raw}"
    );
    assert!(!raw.lines().any(|l| l.starts_with("private_key=")), "{raw}");
    let running = pair
        .a
        .ns
        .run_in(|| ferrowg::cli::key::running_key(&pair.a.iface));
    let running = running.expect("running key");
    assert_eq!(
        running.public.map(|k| k.to_base64()),
        Some(pair.a.keys.public.clone())
    );
    let expected = ferrowg_keys::pkcs11::Pkcs11Uri::parse(&uri).expect("uri");
    assert_eq!(running.uri, Some(expected));
    assert!(!running.software);
}

/// Writes a wg-quick file for A with `PrivateKey = uri` and runs `ferrowg up` on it.
fn up_with(
    ns: &Netns,
    t: &TestToken,
    dir: &TempDir,
    iface: &str,
    uri: &str,
) -> std::process::Output {
    let text = format!(
        "[Interface]\nPrivateKey = {uri}\nAddress = 10.202.7.1/24\nListenPort = 51820\n\n\
         [Peer]\nPublicKey = {}\nAllowedIPs = 10.202.7.2/32\n",
        genkeys().public
    );
    let path = dir.write(&format!("{iface}.conf"), &text);
    ns.sh(&format!("{} {} up {}", t.env(), fwg(), path.display()))
}

#[test]
fn up_reports_which_part_of_the_token_key_is_wrong() {
    if !require_root() {
        return;
    }
    let t = TestToken::new("up");
    t.ferrowg_ok(&["genkey", "--pkcs11", &t.uri("k")]);
    let mut ns = Netns::new("u");
    let dir = TempDir::new();
    let m = format!("module-path={MODULE}");
    let cases = [
        (
            t.uri_with_query("k", &format!("{m}&pin-value=9999")),
            "wrong PIN (CKR_PIN_INCORRECT)",
        ),
        (
            t.uri_with_query("k", "module-path=/usr/lib/missing-pkcs11.so&pin-value=1234"),
            "PKCS#11 module /usr/lib/missing-pkcs11.so: cannot be loaded",
        ),
        (
            t.uri_with_query("nokey", &format!("{m}&pin-value=1234")),
            "has no private key with object=\"nokey\"",
        ),
    ];
    for (uri, says) in &cases {
        let iface = iface_name("u");
        ns.own_iface(&iface);
        let out = up_with(&ns, &t, &dir, &iface, uri);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "up succeeded with {uri}\n{err}");
        assert!(
            err.contains(says),
            "up with {uri}: expected {says:?} in\n{err}"
        );
        assert!(
            !err.contains("9999") && !err.contains("1234"),
            "PIN shown:\n{err}"
        );
        // Nothing is left behind.
        let gone = wait_for(Duration::from_secs(5), || {
            !ns.sh(&format!("ip link show {iface}")).status.success()
        });
        assert!(gone.is_some(), "{iface} left behind after a failed up");
    }
    // And a right one comes up, with the token key.
    let iface = iface_name("u");
    ns.own_iface(&iface);
    let out = up_with(&ns, &t, &dir, &iface, &t.uri("k"));
    assert!(
        out.status.success(),
        "up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = t.ferrowg_ok(&["pubkey", "--pkcs11", &t.uri("k")]);
    let running = ns
        .run_in(|| ferrowg::cli::key::running_key(&iface))
        .expect("running key");
    assert_eq!(running.public.map(|k| k.to_base64()), Some(public));
    let down = ns.sh(&format!(
        "{} down {}",
        fwg(),
        dir.0.join(format!("{iface}.conf")).display()
    ));
    assert!(
        down.status.success(),
        "down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
}

/// A second wireguard-go interface in B, as a second peer of A with no session yet.
struct SecondPeer {
    iface: String,
    public: String,
    tunnel: String,
}

fn add_second_peer(pair: &mut Pair) -> SecondPeer {
    let n = pair.n;
    let iface = iface_name("c");
    pair.b.ns.own_iface(&iface);
    pair.b
        .ns
        .spawn("wireguard-go", &["-f", &iface], &[("LOG_LEVEL", "error")]);
    let up = wait_for(Duration::from_secs(15), || {
        std::os::unix::net::UnixStream::connect(socket_path(&iface)).is_ok()
    });
    assert!(up.is_some(), "second wireguard-go did not start");
    let keys = genkeys();
    let dir = TempDir::new();
    let key_file = dir.write("key", &format!("{}\n", keys.private));
    let b = &pair.b;
    b.ns.run(&format!(
        "wg set {iface} listen-port 51003 private-key {} peer {} allowed-ips 10.201.{n}.1/32",
        key_file.display(),
        pair.a.keys.public
    ));
    b.ns.run(&format!(
        "ip addr add 10.201.{n}.2/24 dev {iface} && ip link set {iface} up"
    ));
    let a = &pair.a;
    a.ns.run(&format!("ip addr add 10.201.{n}.1/24 dev {}", a.iface));
    a.ns.run(&format!(
        "wg set {} peer {} endpoint {}:51003 allowed-ips 10.201.{n}.2/32",
        a.iface, keys.public, b.underlay
    ));
    SecondPeer {
        iface,
        public: keys.public,
        tunnel: format!("10.201.{n}.2"),
    }
}

#[test]
fn token_going_away_fails_new_handshakes_only() {
    if !require_root() {
        return;
    }
    let t = TestToken::new("gone");
    let mut pair = Pair::new(Impl::Ferrowg, Impl::WireguardGo);
    switch_a_to_token(&mut pair, &t, "wg-a", Via::Set);
    pair.ping_until_up(Duration::from_secs(20));
    let second = add_second_peer(&mut pair);

    // The token goes away: the established session keeps carrying pings...
    t.take_away();
    let away = Instant::now();
    let mut lost = 0;
    for _ in 0..5 {
        if !pair.a.ping(&pair.b.tunnel_v4, 2) {
            lost += 1;
        }
    }
    assert_eq!(
        lost,
        0,
        "pings over the established session failed\n{}",
        logs_of(&pair)
    );
    // ...while a new handshake (with the second peer) fails, and says why in the log.
    assert!(
        !pair.a.ping(&second.tunnel, 3),
        "second peer reachable without the token"
    );
    let logged = wait_for(Duration::from_secs(10), || {
        let l = pair.a.ns.logs();
        l.contains("token unavailable") && l.contains("static key unavailable")
    });
    assert!(logged.is_some(), "no logged error\n{}", pair.a.ns.logs());
    let hs = pair
        .a
        .ns
        .run(&format!("wg show {} latest-handshakes", pair.a.iface));
    let second_hs = hs
        .lines()
        .find(|l| l.starts_with(&second.public))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        second_hs, "0",
        "second peer got a handshake without the token: {hs}"
    );
    assert!(
        pair.a.ping(&pair.b.tunnel_v4, 2),
        "established session stopped\n{}",
        logs_of(&pair)
    );
    eprintln!(
        "token away for {:?}: old session fine, new handshake refused",
        away.elapsed()
    );

    // It comes back: handshakes resume by themselves.
    t.bring_back();
    let back = Instant::now();
    let resumed = wait_for(Duration::from_secs(30), || pair.a.ping(&second.tunnel, 1));
    assert!(
        resumed.is_some(),
        "no handshake after the token returned\n{}",
        logs_of(&pair)
    );
    eprintln!(
        "token back: second peer reachable after {:?}",
        back.elapsed()
    );
    assert!(
        pair.a.ns.logs().contains("token is back"),
        "{}",
        pair.a.ns.logs()
    );
    assert!(
        pair.a.ping(&pair.b.tunnel_v4, 2),
        "first peer after the token returned"
    );
    drop(second.iface);
}

/// Parses `N packets transmitted, M received` from ping's summary.
fn ping_counts(out: &str) -> (u32, u32) {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("");
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let sent = nums.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    let got = nums.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (sent, got)
}

#[test]
fn key_rotation_in_the_token_counts_lost_pings() {
    if !require_root() {
        return;
    }
    let t = TestToken::new("rot");
    let mut pair = Pair::new(Impl::Ferrowg, Impl::WireguardGo);
    switch_a_to_token(&mut pair, &t, "wg-a", Via::Setconf);
    pair.ping_until_up(Duration::from_secs(20));

    // 10 pings a second for 20 s across the rotation.
    let (count, interval) = (200, 0.1);
    let ping_cmd = pair.a.ns.wrap(&format!(
        "ping -n -c {count} -i {interval} -W 1 {}",
        pair.b.tunnel_v4
    ));
    let (summary, rotation) = std::thread::scope(|s| {
        let pinger = s.spawn(|| sh(&ping_cmd));
        std::thread::sleep(Duration::from_secs(4));
        // Rotate: a new key in the same token; the interface switches at once.
        let out = pair.a.ns.sh(&format!(
            "{} {} key rotate {}",
            t.env(),
            fwg(),
            pair.a.iface
        ));
        assert!(out.status.success(), "rotate: {}", text(&out));
        let new_public = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let note = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(new_public.len(), 44, "{new_public}");
        assert_ne!(new_public, pair.a.keys.public);
        // Before the peer knows: the old session still carries the pings.
        std::thread::sleep(Duration::from_secs(4));
        let told = Instant::now();
        tell_peer(&pair.b, &pair.a.keys.public, &new_public, &pair.a);
        let done = pinger.join().expect("pinger");
        (done, (new_public, note, told.elapsed()))
    });
    let stdout = String::from_utf8_lossy(&summary.stdout).into_owned();
    let (sent, got) = ping_counts(&stdout);
    let (new_public, note, _) = rotation;
    eprintln!("rotation: {note}");
    eprintln!(
        "rotation: {sent} pings at {interval} s intervals, {got} answered, {} lost",
        sent - got
    );
    assert!(sent >= count - 5, "ping did not run: {stdout}");
    // The pings after the rotation and after B learnt the new key come back.
    assert!(
        pair.a.ping(&pair.b.tunnel_v4, 3),
        "no traffic after rotation\n{}",
        logs_of(&pair)
    );
    assert!(pair.b.ping(&pair.a.tunnel_v4, 3), "B -> A after rotation");
    // A now runs the new key, which is in the token, and B's handshake is with it.
    let running = pair
        .a
        .ns
        .run_in(|| ferrowg::cli::key::running_key(&pair.a.iface))
        .expect("key");
    assert_eq!(
        running.public.map(|k| k.to_base64()),
        Some(new_public.clone())
    );
    let new_uri = running.uri.expect("token URI").to_string();
    assert!(new_uri.contains("object=wg-a-r"), "{new_uri}");
    let peers = pair.b.wg_show("peers");
    assert_eq!(peers.trim(), new_public, "B's peers: {peers}");
    assert!(pair.b.latest_handshake() != 0);
    // Loss is bounded by one handshake retry interval (REKEY_TIMEOUT 5 s + jitter) after B
    // learnt the key: at 10 pings a second, well under 70.
    assert!(
        sent - got <= 70,
        "{} pings lost\n{}",
        sent - got,
        logs_of(&pair)
    );
}

/// iperf3 TCP throughput A -> B over the tunnel, Mbit/s, for `secs` seconds.
fn iperf(pair: &mut Pair, secs: u32) -> f64 {
    let port = "5210";
    let pid = pair.b.ns.spawn("iperf3", &["-s", "-1", "-p", port], &[]);
    let ready = wait_for(Duration::from_secs(5), || {
        pair.b
            .ns
            .sh(&format!("ss -ltn | grep -q ':{port} '"))
            .status
            .success()
    });
    assert!(ready.is_some(), "iperf3 server did not start");
    let out = pair.a.ns.sh(&format!(
        "iperf3 -c {} -p {port} -t {secs} -J",
        pair.b.tunnel_v4
    ));
    let _ = pair.b.ns.alive(pid);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3 JSON: {e}\n{}", text(&out)));
    json["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0)
        / 1e6
}

/// Not a timing assertion: prints tunnel throughput ferrowg (token key) -> ferrowg and
/// ferrowg (key in memory) -> ferrowg, alternating short iperf3 runs.
#[test]
fn throughput_token_vs_memory_key() {
    if !require_root() {
        return;
    }
    require_tool("iperf3");
    let t = TestToken::new("tp");
    let mut mem = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    let mut tok = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    switch_a_to_token(&mut tok, &t, "wg-a", Via::Setconf);
    mem.ping_until_up(Duration::from_secs(20));
    tok.ping_until_up(Duration::from_secs(20));
    let secs = std::env::var("FERROWG_IPERF_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (mut m, mut k) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        m.push(iperf(&mut mem, secs));
        k.push(iperf(&mut tok, secs));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mm, km) = (median(&mut m), median(&mut k));
    println!("iperf3 TCP A -> B, {secs} s runs, Mbit/s: memory key {m:?}, token key {k:?}");
    println!(
        "median: memory {mm:.0}, token {km:.0}, token/memory = {:.3}",
        km / mm
    );
    assert!(mm > 0.0 && km > 0.0);
}
