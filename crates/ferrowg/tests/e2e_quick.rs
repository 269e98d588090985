//! End-to-end (issue #3, part 3): `ferrowg up FILE` / `ferrowg down FILE` on wg-quick(8) files
//! inside network namespaces, checked with `ip addr`, `ip route`, `ip link`, `ip rule`:
//!
//! - addresses (IPv4 and IPv6), a route per AllowedIPs prefix not already covered, an explicit
//!   MTU and an automatic one (the endpoint route's device MTU minus 80), PreUp / PostUp /
//!   PreDown / PostDown hooks with `%i`; everything gone after `down`;
//! - `AllowedIPs = 0.0.0.0/0, ::/0`: the fwmark, the policy rules and the routing table of
//!   wg-quick, checked to work where they matter (the endpoint reachable only through the main
//!   table's default route), and removed after `down`.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::time::Duration;

use ferrowg_testkit::*;

/// `ip link show DEV` reports `mtu M`.
fn mtu(ns: &Netns, dev: &str) -> u32 {
    let out = ns.run(&format!("ip link show dev {dev}"));
    out.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mtu in {out}"))
}

fn hook_lines(dir: &TempDir, hooks: &str) -> String {
    let f = dir.0.join(hooks);
    ["PreUp", "PostUp", "PreDown", "PostDown"]
        .iter()
        .map(|h| format!("{h} = echo {h} %i >> {}\n", f.display()))
        .collect()
}

/// Asserts that nothing of `iface` is left in `ns`.
fn assert_gone(ns: &Netns, iface: &str) {
    assert!(
        !ns.sh(&format!("ip link show dev {iface}")).status.success(),
        "{iface} still exists"
    );
    for fam in ["-4", "-6"] {
        let routes = ns.run(&format!("ip {fam} route show table all"));
        assert!(
            !routes.contains(iface),
            "{fam} routes of {iface} left:\n{routes}"
        );
    }
    let gone = wait_for(Duration::from_secs(5), || !socket_path(iface).exists());
    assert!(gone.is_some(), "UAPI socket of {iface} left");
}

#[test]
fn up_down_sets_and_removes_addresses_routes_mtu_and_runs_hooks() {
    if !require_root() {
        return;
    }
    let mut link = Link::new();
    let n = link.n;
    let dir = TempDir::new();
    let (ka, kb) = (genkeys(), genkeys());
    let (ia, ib) = (iface_name("u"), iface_name("v"));
    link.a.own_iface(&ia);
    link.b.own_iface(&ib);
    // B's MTU is automatic: its endpoint route goes through B's veth, MTU 1450 -> 1370.
    link.b
        .run(&format!("ip link set dev {} mtu 1450", link.veth_b));
    let conf_a = dir.write(
        &format!("{ia}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nAddress = 10.202.{n}.1/24\nAddress = fd02:{n}::1/64\n\
             ListenPort = 51820\nMTU = 1380\n{}\n\
             [Peer]\nPublicKey = {}\nEndpoint = {}:51820\n\
             AllowedIPs = 10.202.{n}.2/32, fd02:{n}::2/128, 10.77.{n}.0/24, fd77:{n}::/64\n",
            ka.private,
            hook_lines(&dir, "hooks"),
            kb.public,
            link.underlay(2)
        ),
    );
    let conf_b = dir.write(
        &format!("{ib}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nAddress = 10.202.{n}.2/24, fd02:{n}::2/64\nListenPort = 51820\n\n\
             [Peer]\nPublicKey = {}\nEndpoint = {}:51820\nAllowedIPs = 10.202.{n}.1/32, fd02:{n}::1/128\n",
            kb.private,
            ka.public,
            link.underlay(1)
        ),
    );
    let up_a = link.a.sh(&format!("{} up {}", fwg(), conf_a.display()));
    assert!(up_a.status.success(), "ferrowg up:\n{}", text(&up_a));
    link.b.run(&format!("{} up {}", fwg(), conf_b.display()));

    // Addresses, v4 and v6.
    let addrs = link.a.run(&format!("ip addr show dev {ia}"));
    assert!(addrs.contains(&format!("inet 10.202.{n}.1/24")), "{addrs}");
    assert!(addrs.contains(&format!("inet6 fd02:{n}::1/64")), "{addrs}");
    // Routes: the prefixes not covered by the addresses' own subnets.
    let r4 = link.a.run(&format!("ip -4 route show dev {ia}"));
    assert!(
        r4.contains(&format!("10.77.{n}.0/24")),
        "IPv4 routes:\n{r4}"
    );
    assert!(
        r4.contains(&format!("10.202.{n}.0/24")),
        "IPv4 routes:\n{r4}"
    );
    let r6 = link.a.run(&format!("ip -6 route show dev {ia}"));
    assert!(r6.contains(&format!("fd77:{n}::/64")), "IPv6 routes:\n{r6}");
    // MTU: explicit on A, automatic on B; both up.
    assert_eq!(mtu(&link.a, &ia), 1380);
    assert_eq!(
        mtu(&link.b, &ib),
        1370,
        "automatic MTU: endpoint device MTU 1450 - 80"
    );
    assert!(
        link.a
            .run(&format!("ip link show dev {ia}"))
            .contains(",UP"),
        "{ia} is not up"
    );
    // The tunnel works.
    ping_v4_then_v6(
        &link.a,
        &format!("10.202.{n}.2"),
        &format!("fd02:{n}::2"),
        2,
        "over the tunnel",
    );
    let shown = link.a.run(&format!("{} show {ia}", fwg()));
    assert!(shown.contains("latest handshake"), "ferrowg show:\n{shown}");

    let down = link.a.sh(&format!("{} down {}", fwg(), conf_a.display()));
    assert!(down.status.success(), "ferrowg down:\n{}", text(&down));
    assert_gone(&link.a, &ia);
    let hooks = std::fs::read_to_string(dir.0.join("hooks")).expect("hooks ran");
    assert_eq!(
        hooks,
        format!("PreUp {ia}\nPostUp {ia}\nPreDown {ia}\nPostDown {ia}\n"),
        "hooks, in order, with %i replaced"
    );

    link.b.run(&format!("{} down {}", fwg(), conf_b.display()));
    assert_gone(&link.b, &ib);
    // A second `down` is an error, not a silent success.
    let again = link.b.sh(&format!("{} down {}", fwg(), conf_b.display()));
    assert!(
        !again.status.success(),
        "second down succeeded:\n{}",
        text(&again)
    );
}

/// Rules wg-quick adds for a default route, per family.
fn policy_rules(ns: &Netns, fam: &str) -> String {
    ns.run(&format!("ip {fam} rule show"))
}

#[test]
fn up_down_default_route_gets_fwmark_and_policy_rules() {
    if !require_root() {
        return;
    }
    let mut link = Link::new();
    let n = link.n;
    let va = link.veth_a.clone();
    // A reaches B's endpoint only through its main table's *default* route, the case where the
    // fwmark matters: without it, the tunnel's own UDP packets would be routed into the tunnel.
    link.a.run(&format!(
        "ip addr del 10.199.{n}.1/24 dev {va} && ip addr add 10.199.{n}.1/32 dev {va} && \
         ip route add default dev {va}"
    ));
    // Addresses behind B that A can reach only through the tunnel's default route.
    link.b.run(&format!(
        "ip addr add 10.55.{n}.1/32 dev lo && ip -6 addr add fd55:{n}::1/128 dev lo"
    ));
    let dir = TempDir::new();
    let (ka, kb) = (genkeys(), genkeys());
    let (ia, ib) = (iface_name("d"), iface_name("e"));
    link.a.own_iface(&ia);
    link.b.own_iface(&ib);
    let conf_a = dir.write(
        &format!("{ia}.conf"),
        &format!(
            "[Interface]\nPrivateKey = {}\nAddress = 10.203.{n}.1/24, fd03:{n}::1/64\n\n\
             [Peer]\nPublicKey = {}\nEndpoint = {}:51820\nAllowedIPs = 0.0.0.0/0, ::/0\n",
            ka.private,
            kb.public,
            link.underlay(2)
        ),
    );
    let conf_b = dir.write(
        &format!("{ib}.conf"),
        &responder_quick_conf(&kb, &ka, &format!("10.203.{n}"), &format!("fd03:{n}")),
    );
    link.b.run(&format!("{} up {}", fwg(), conf_b.display()));
    let before4 = policy_rules(&link.a, "-4");
    let before6 = policy_rules(&link.a, "-6");
    let up = link.a.sh(&format!("{} up {}", fwg(), conf_a.display()));
    assert!(up.status.success(), "ferrowg up:\n{}", text(&up));

    assert_eq!(
        link.a.run(&format!("wg show {ia} fwmark")).trim(),
        "0xca6c",
        "fwmark 51820"
    );
    for fam in ["-4", "-6"] {
        let rules = policy_rules(&link.a, fam);
        assert!(
            rules.contains("not from all fwmark 0xca6c lookup 51820"),
            "{fam} rules:\n{rules}"
        );
        assert!(
            rules.contains("from all lookup main suppress_prefixlength 0"),
            "{fam} rules:\n{rules}"
        );
        let table = link.a.run(&format!("ip {fam} route show table 51820"));
        assert!(
            table.contains(&format!("default dev {ia}")),
            "{fam} table 51820:\n{table}"
        );
    }
    assert_eq!(
        link.a
            .run("sysctl -n net.ipv4.conf.all.src_valid_mark")
            .trim(),
        "1"
    );

    // Traffic to an address only B has goes through the tunnel, and the tunnel's packets
    // escape it through the fwmark.
    ping_v4_then_v6(
        &link.a,
        &format!("10.55.{n}.1"),
        &format!("fd55:{n}::1"),
        2,
        "through the default route",
    );
    let rx = second_field_u64(&link.b.run(&format!("wg show {ib} transfer")));
    assert!(rx > 0, "B received nothing through the tunnel");

    let down = link.a.sh(&format!("{} down {}", fwg(), conf_a.display()));
    assert!(down.status.success(), "ferrowg down:\n{}", text(&down));
    assert_gone(&link.a, &ia);
    assert_eq!(
        policy_rules(&link.a, "-4"),
        before4,
        "IPv4 rules after down"
    );
    assert_eq!(
        policy_rules(&link.a, "-6"),
        before6,
        "IPv6 rules after down"
    );
    for fam in ["-4", "-6"] {
        let table = link.a.run(&format!("ip {fam} route show table 51820"));
        assert!(
            table.trim().is_empty(),
            "{fam} table 51820 after down:\n{table}"
        );
    }
    link.b.run(&format!("{} down {}", fwg(), conf_b.display()));
}
