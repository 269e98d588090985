//! End-to-end (issue #3, part 2): the stock wireguard-tools drive a running ferrowg daemon.
//!
//! - `wg setconf` / `wg set` / `wg show` / `wg show IFACE dump` / `wg showconf` against the
//!   daemon's UAPI socket, with a live handshake time and byte counters that grow with traffic;
//! - `wg-quick up` / `wg-quick down` with `WG_QUICK_USERSPACE_IMPLEMENTATION=<ferrowg>` inside a
//!   namespace, the other end brought up by `ferrowg up`.
//!
//! Needs root and wireguard-tools; without root it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::time::Duration;

use ferrowg_testkit::*;

/// One peer line of `wg show IFACE dump`.
#[derive(Debug)]
struct DumpPeer {
    public_key: String,
    endpoint: String,
    allowed_ips: String,
    latest_handshake: u64,
    rx: u64,
    tx: u64,
    keepalive: String,
}

/// Parses `wg show IFACE dump`: the interface line, then one line per peer.
fn dump(end: &End) -> (Vec<String>, Vec<DumpPeer>) {
    let out = end.wg_show("dump");
    let mut lines = out.lines();
    let iface: Vec<String> = lines
        .next()
        .expect("interface line")
        .split('\t')
        .map(String::from)
        .collect();
    assert_eq!(iface.len(), 4, "interface line of dump: {out}");
    let peers = lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 8, "peer line of dump: {l:?}");
            DumpPeer {
                public_key: f[0].into(),
                endpoint: f[2].into(),
                allowed_ips: f[3].into(),
                latest_handshake: f[4].parse().expect("latest-handshake"),
                rx: f[5].parse().expect("rx"),
                tx: f[6].parse().expect("tx"),
                keepalive: f[7].into(),
            }
        })
        .collect();
    (iface, peers)
}

#[test]
fn stock_wg_configures_and_reads_ferrowg() {
    if !require_root() {
        return;
    }
    require_tool("wg");
    // Pair::new configures both daemons with the stock `wg setconf`.
    let pair = Pair::new(Impl::Ferrowg, Impl::Ferrowg);
    let (a, b) = (&pair.a, &pair.b);
    let showconf = a.ns.run(&format!("wg showconf {}", a.iface));
    for want in [
        format!("PrivateKey = {}", a.keys.private),
        "ListenPort = 51001".to_string(),
        format!("PublicKey = {}", b.keys.public),
        format!("Endpoint = {}:{}", b.underlay, b.port),
        format!("AllowedIPs = {}/32, {}/128", b.tunnel_v4, b.tunnel_v6),
    ] {
        assert!(
            showconf.contains(&want),
            "`wg showconf` lacks {want:?}:\n{showconf}"
        );
    }
    let own = a.ns.run(&format!("{} showconf {}", fwg(), a.iface));
    assert_eq!(own, showconf, "`ferrowg showconf` and `wg showconf` differ");

    pair.ping_until_up(Duration::from_secs(20));

    // `wg show IFACE dump`: keys, port, a live handshake time, counters.
    let now = unix_now();
    let (iface, peers) = dump(a);
    assert_eq!(iface[0], a.keys.private);
    assert_eq!(iface[1], a.keys.public);
    assert_eq!(iface[2], "51001");
    assert_eq!(iface[3], "off");
    let [p0] = peers.as_slice() else {
        panic!("one peer expected: {peers:?}")
    };
    assert_eq!(p0.public_key, b.keys.public);
    assert_eq!(p0.endpoint, format!("{}:{}", b.underlay, b.port));
    assert_eq!(
        p0.allowed_ips,
        format!("{}/32,{}/128", b.tunnel_v4, b.tunnel_v6)
    );
    assert!(
        p0.latest_handshake != 0
            && p0.latest_handshake + 30 >= now
            && p0.latest_handshake <= now + 2,
        "latest handshake {} is not recent (now {now})",
        p0.latest_handshake
    );
    assert!(
        p0.rx > 0 && p0.tx > 0,
        "no traffic counted after a ping: {p0:?}"
    );
    assert_eq!(p0.keepalive, "off");
    let (_, b_peers) = dump(b);
    assert_eq!(
        b_peers[0].endpoint,
        format!("{}:{}", a.underlay, a.port),
        "B learnt A's endpoint"
    );

    // The counters grow with traffic: 5 MB A -> B.
    let t = tcp_transfer(&pair, 5_000_000, Duration::from_secs(60));
    assert_eq!(t.sent_hash, t.received_hash);
    let (_, after) = dump(a);
    assert!(
        after[0].tx >= p0.tx + 5_000_000,
        "tx {} -> {}",
        p0.tx,
        after[0].tx
    );
    assert!(after[0].rx > p0.rx, "rx {} -> {}", p0.rx, after[0].rx);
    let (_, b_after) = dump(b);
    assert!(b_after[0].rx >= 5_000_000, "B rx {}", b_after[0].rx);

    // The pretty form.
    let pretty = a.ns.run(&format!("wg show {}", a.iface));
    for want in [
        format!("interface: {}", a.iface),
        format!("public key: {}", a.keys.public),
        "private key: (hidden)".to_string(),
        "listening port: 51001".to_string(),
        format!("peer: {}", b.keys.public),
        format!("endpoint: {}:{}", b.underlay, b.port),
        "latest handshake: ".to_string(),
        "transfer: ".to_string(),
    ] {
        assert!(
            pretty.contains(&want),
            "`wg show` lacks {want:?}:\n{pretty}"
        );
    }
    assert!(
        pretty.contains("second") || pretty.contains("Now"),
        "handshake age not in seconds:\n{pretty}"
    );

    // `wg set IFACE peer … allowed-ips …`, endpoint, keepalive, preshared key; then replace
    // and remove.
    let extra = genkeys().public;
    let dir = TempDir::new();
    let psk_file = dir.write("psk", &run(&format!("{} genpsk", fwg())));
    a.ns.run(&format!(
        "wg set {} peer {extra} allowed-ips 10.9.0.0/24,fd09::/64 endpoint 10.199.{}.9:1234 \
         persistent-keepalive 25 preshared-key {}",
        a.iface,
        pair.n,
        psk_file.display()
    ));
    let ips = a.wg_show("allowed-ips");
    assert!(
        ips.contains(&format!("{extra}\t10.9.0.0/24 fd09::/64")),
        "allowed-ips:\n{ips}"
    );
    assert!(
        ips.contains(&format!(
            "{}\t{}/32 {}/128",
            b.keys.public, b.tunnel_v4, b.tunnel_v6
        )),
        "the first peer's allowed-ips changed:\n{ips}"
    );
    let eps = a.wg_show("endpoints");
    assert!(
        eps.contains(&format!("{extra}\t10.199.{}.9:1234", pair.n)),
        "endpoints:\n{eps}"
    );
    let ka = a.wg_show("persistent-keepalive");
    assert!(
        ka.contains(&format!("{extra}\t25")),
        "persistent-keepalive:\n{ka}"
    );
    let psks = a.wg_show("preshared-keys");
    assert!(psks.contains(&format!(
        "{extra}\t{}",
        run(&format!("cat {}", psk_file.display())).trim()
    )));

    a.ns.run(&format!(
        "wg set {} peer {extra} allowed-ips 10.9.1.0/24",
        a.iface
    ));
    let ips = a.wg_show("allowed-ips");
    assert!(
        ips.contains(&format!("{extra}\t10.9.1.0/24\n")),
        "allowed-ips replaced:\n{ips}"
    );

    a.ns.run(&format!("wg set {} peer {extra} remove", a.iface));
    let peers = a.wg_show("peers");
    assert_eq!(peers.trim(), b.keys.public, "after remove");

    // Interface settings: a new listen port and an fwmark; the tunnel keeps working (B learns
    // A's new port from the next packet).
    a.ns.run(&format!(
        "wg set {} listen-port 51111 fwmark 0x1234",
        a.iface
    ));
    assert_eq!(a.wg_show("listen-port").trim(), "51111");
    assert_eq!(a.wg_show("fwmark").trim(), "0x1234");
    assert!(
        a.ping(&b.tunnel_v4, 3),
        "ping after changing the listen port"
    );
    let (_, b_peers) = dump(b);
    assert_eq!(
        b_peers[0].endpoint,
        format!("{}:51111", a.underlay),
        "B follows A's new port"
    );
}

#[test]
fn wg_quick_brings_up_ferrowg_as_userspace_implementation() {
    if !require_root() {
        return;
    }
    require_tool("wg-quick");
    let mut link = Link::new();
    let n = link.n;
    let dir = TempDir::new();
    let (ka, kb) = (genkeys(), genkeys());
    let (ia, ib) = (iface_name("q"), iface_name("r"));
    link.a.own_iface(&ia);
    link.b.own_iface(&ib);
    let conf_a = dir.write(
        &format!("{ia}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nAddress = 10.201.{n}.1/24, fd01:{n}::1/64\nListenPort = 51820\n\n\
             [Peer]\nPublicKey = {}\nAllowedIPs = 10.201.{n}.2/32, fd01:{n}::2/128\nEndpoint = {}:51820\n",
            ka.private,
            kb.public,
            link.underlay(2)
        ),
    );
    let conf_b = dir.write(
        &format!("{ib}.conf"),
        &responder_quick_conf(&kb, &ka, &format!("10.201.{n}"), &format!("fd01:{n}")),
    );
    link.b.run(&format!("{} up {}", fwg(), conf_b.display()));

    // Output captured: a daemon that kept wg-quick's standard error open would hang here.
    let up = link.a.sh(&format!(
        "WG_QUICK_USERSPACE_IMPLEMENTATION={} wg-quick up {}",
        fwg(),
        conf_a.display()
    ));
    assert!(up.status.success(), "wg-quick up:\n{}", text(&up));
    let log = String::from_utf8_lossy(&up.stderr);
    assert!(
        log.contains(&format!("[#] {} {ia}", fwg())),
        "wg-quick did not start ferrowg:\n{log}"
    );

    let shown = link.a.run(&format!("wg show {ia}"));
    assert!(
        shown.contains(&format!("peer: {}", kb.public)),
        "wg show:\n{shown}"
    );
    let addrs = link.a.run(&format!("ip addr show dev {ia}"));
    assert!(
        addrs.contains(&format!("10.201.{n}.1/24")) && addrs.contains(&format!("fd01:{n}::1/64")),
        "{addrs}"
    );
    ping_v4_then_v6(
        &link.a,
        &format!("10.201.{n}.2"),
        &format!("fd01:{n}::2"),
        3,
        "over the wg-quick tunnel",
    );
    let hs = second_field_u64(&link.a.run(&format!("wg show {ia} latest-handshakes")));
    assert!(hs + 60 >= unix_now(), "latest handshake {hs}");

    let down = link.a.sh(&format!("wg-quick down {}", conf_a.display()));
    assert!(down.status.success(), "wg-quick down:\n{}", text(&down));
    assert!(
        !link.a.sh(&format!("ip link show {ia}")).status.success(),
        "{ia} still exists"
    );
    let gone = wait_for(Duration::from_secs(5), || !socket_path(&ia).exists());
    assert!(gone.is_some(), "the daemon did not remove its UAPI socket");
    let daemons = run(&format!("ip netns pids {}", link.a.name));
    assert!(
        daemons.trim().is_empty(),
        "processes left in the namespace: {daemons}"
    );

    link.b.run(&format!("{} down {}", fwg(), conf_b.display()));
}
