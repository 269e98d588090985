//! Changing the private key of a running interface (issue #17, item 8), against wireguard-go
//! as the peer: `wg set IFACE private-key FILE` ends the current sessions, as it does on the
//! kernel and on wireguard-go (the peer does not know the new key, so traffic stops at once
//! instead of running on for up to 180 s); `ferrowg key rotate` keeps them running.
//!
//! wireguard-go on side A runs the same steps as the reference.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::time::Duration;

use ferrowg_testkit::*;

/// Whether any of three pings from A to B (one per 0.3 s, 1 s wait) is answered.
fn any_ping(pair: &Pair) -> bool {
    pair.a
        .ns
        .sh(&format!("ping -n -q -c 3 -i 0.3 -W 1 {}", pair.b.tunnel_v4))
        .status
        .success()
}

/// Sets a new private key on A with `wg set` and reports whether pings still get through
/// (checked for a few seconds: the old session must not carry them).
fn new_key_keeps_traffic(a_imp: Impl) -> bool {
    let pair = Pair::new(a_imp, Impl::WireguardGo);
    pair.ping_until_up(Duration::from_secs(20));
    let dir = TempDir::new();
    let key = dir.write("new.key", &format!("{}\n", genkeys().private));
    pair.a.ns.run(&format!(
        "chmod 600 {k} && wg set {i} private-key {k}",
        k = key.display(),
        i = pair.a.iface
    ));
    // Three rounds of three pings: any answer means the old session still carries traffic.
    (0..3).any(|_| any_ping(&pair))
}

#[test]
fn a_new_private_key_ends_the_sessions_like_wireguard_go() {
    if !require_root() {
        return;
    }
    assert!(
        !new_key_keeps_traffic(Impl::WireguardGo),
        "reference: wireguard-go stops sending on the old session"
    );
    assert!(
        !new_key_keeps_traffic(Impl::Ferrowg),
        "ferrowg kept sending on the session of the replaced key"
    );
}

#[test]
fn key_rotate_keeps_the_sessions() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(Impl::Ferrowg, Impl::WireguardGo);
    pair.ping_until_up(Duration::from_secs(20));
    let dir = TempDir::new();
    let key = dir.0.join("rotated.key");
    pair.a.ns.run(&format!(
        "{} key rotate {} --file {}",
        fwg(),
        pair.a.iface,
        key.display()
    ));
    assert!(
        any_ping(&pair),
        "after key rotate the old session must carry traffic until the peer knows the new key"
    );
}

#[test]
fn key_rotate_refuses_a_daemon_that_cannot_keep_sessions() {
    if !require_root() {
        return;
    }
    let pair = Pair::new(Impl::WireguardGo, Impl::WireguardGo);
    let dir = TempDir::new();
    let key = dir.0.join("rotated.key");
    let out = pair.a.ns.sh(&format!(
        "{} key rotate {} --file {}",
        fwg(),
        pair.a.iface,
        key.display()
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("cannot switch keys without dropping the sessions"),
        "{err}"
    );
    assert!(
        !key.exists(),
        "no key is made for a rotation that cannot happen"
    );
}
