//! End-to-end interop (issue #3, part 1): real tunnels between two network namespaces with
//! ferrowg on at least one end and ferrowg, wireguard-go or boringtun-cli on the other.
//!
//! Each test: handshake (both ends report a recent `latest-handshake`), IPv4 and IPv6 ping
//! both ways, and a 200 MB TCP transfer A → B whose FNV-1a checksum must match on both sides
//! within 120 s. A is the initiator (only it knows the endpoint), B the responder.
//!
//! Needs root, wireguard-go and boringtun-cli; without root it fails unless
//! FERROWG_SKIP_ROOT_TESTS=1.

use std::time::Duration;

use ferrowg_testkit::*;

const TRANSFER_BYTES: usize = 200 * 1000 * 1000;
const TRANSFER_LIMIT: Duration = Duration::from_secs(120);

fn interop(a: Impl, b: Impl) {
    interop_over(a, b, false, TRANSFER_BYTES);
}

fn interop_over(a: Impl, b: Impl, via_v6: bool, bytes: usize) {
    if !require_root() {
        return;
    }
    let pair = Pair::build(a, b, via_v6);
    let up = pair.ping_until_up(Duration::from_secs(20));

    // Handshake: both ends report it, and it is recent. boringtun reports the seconds *since*
    // the handshake instead of a Unix time (cloudflare/boringtun#388, #447): for it, the proof
    // is that it has received and sent data.
    let now = unix_now();
    for end in [&pair.a, &pair.b] {
        if end.imp == Impl::Boringtun {
            let (rx, tx) = end.transfer();
            assert!(
                rx > 0 && tx > 0,
                "boringtun transfer counters: rx {rx}, tx {tx}"
            );
            continue;
        }
        let t = end.latest_handshake();
        assert!(
            t != 0 && t + 60 >= now && t <= now + 5,
            "{:?} reports latest handshake {t} (now {now})",
            end.imp
        );
    }

    // IPv4 and IPv6, both directions (B answers only once it has learnt A's endpoint).
    pair.assert_pings_both_ways(3);

    // The responder learnt the initiator's endpoint from its packets.
    let eps = pair.b.wg_show("endpoints");
    assert!(
        eps.contains(&pair.a.endpoint()),
        "{:?} endpoints: {eps}",
        pair.b.imp
    );

    let t = tcp_transfer(&pair, bytes, TRANSFER_LIMIT);
    let over = if via_v6 { "IPv6" } else { "IPv4" };
    eprintln!(
        "{a:?} -> {b:?} over {over}: tunnel up after {up:?}; {} bytes in {:.1?} ({:.0} Mbit/s)",
        t.received,
        t.elapsed,
        t.mbit_per_s()
    );
    assert_eq!(t.received, bytes, "bytes received");
    if via_v6 {
        // Full-size packets (1420 bytes, padding capped at the interface MTU) fit the 1500-byte
        // IPv6 underlay exactly: none may have been fragmented.
        let snmp = pair.a.ns.run("cat /proc/net/snmp6");
        let frags = snmp
            .lines()
            .find_map(|l| l.strip_prefix("Ip6FragCreates"))
            .map(str::trim);
        assert_eq!(frags, Some("0"), "{a:?} fragmented its datagrams over IPv6");
    }
    assert_eq!(
        t.sent_hash, t.received_hash,
        "checksum of the transferred data"
    );
}

#[test]
fn ferrowg_to_ferrowg() {
    interop(Impl::Ferrowg, Impl::Ferrowg);
}

#[test]
fn ferrowg_to_wireguard_go() {
    interop(Impl::Ferrowg, Impl::WireguardGo);
}

/// ferrowg as the responder.
#[test]
fn wireguard_go_to_ferrowg() {
    interop(Impl::WireguardGo, Impl::Ferrowg);
}

#[test]
fn ferrowg_to_boringtun() {
    interop(Impl::Ferrowg, Impl::Boringtun);
}

/// ferrowg as the responder to boringtun.
#[test]
fn boringtun_to_ferrowg() {
    interop(Impl::Boringtun, Impl::Ferrowg);
}

/// The tunnel over an IPv6 underlay (the UDP socket is dual-stack), to and from wireguard-go.
#[test]
fn ferrowg_and_wireguard_go_over_ipv6_underlay() {
    interop_over(Impl::Ferrowg, Impl::WireguardGo, true, 20_000_000);
    interop_over(Impl::WireguardGo, Impl::Ferrowg, true, 20_000_000);
}
