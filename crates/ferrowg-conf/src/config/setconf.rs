//! The UAPI `set=1` request for a configuration file, built the way wg(8) (`config.c`,
//! `setconf.c`) builds it for `setconf`, `addconf` and `syncconf`.
//!
//! How wg(8) turns a configuration file into a request, which [`SetRequest::from_config`]
//! reproduces line for line:
//!
//! - `setconf`: the interface lines are always sent — `private_key` (zeros if the file has
//!   none), `listen_port` (0 if none), `fwmark` (0 if none) — then `replace_peers=true`; then
//!   every `[Peer]` in file order: `public_key`, `preshared_key` (if in the file), `endpoint` (if
//!   in the file, resolved), `persistent_keepalive_interval` (if in the file),
//!   `replace_allowed_ips=true` (always: a `[Peer]` replaces its allowed IPs) and one
//!   `allowed_ip` per prefix.
//! - `addconf`: the same peers, but only the interface keys present in the file and no
//!   `replace_peers`.
//! - `syncconf`: `setconf`, except that when both the file and the running interface have peers,
//!   `replace_peers` is dropped (so unchanged peers keep their sessions); every running peer
//!   absent from the file gets `public_key=…` + `remove=true`, these come first, in descending
//!   public-key order (wg prepends them while walking the keys in ascending `memcmp` order); a
//!   running peer kept by the file whose preshared key or keepalive the file does not mention
//!   gets `preshared_key=0…0` / `persistent_keepalive_interval=0`, so the result matches the
//!   file. If the file has no peers, or the interface has none, it is plain `setconf`.
//!
//! One addition of ferrowg's: after an `endpoint` given as a host name comes its
//! `ferrowg_endpoint_host` line (the name as written), which the client sends only to a daemon
//! that announces it ([`SetRequest::remove_endpoint_hosts`] drops it otherwise).
//!
//! The two resets are current upstream behaviour (wireguard-tools commit 780182e37d2b, from pull
//! request #13); wireguard-tools 1.0.20210914, the version the interop tests run, does not send
//! them and is otherwise matched byte for byte.

use std::net::SocketAddr;

use super::{Config, Peer};
use crate::addr::Endpoint;
use crate::uapi::{DeviceState, InterfaceOp, PeerOp, PeerSet, PeerState, SetRequest};
use ferrowg_keys::key::{PrivateKey, PublicKey};

/// Which wg(8) command the request is for.
#[derive(Debug, Clone, Copy)]
pub enum ConfMode<'a> {
    /// `wg setconf`: replace everything.
    Set,
    /// `wg addconf`: add to what is there.
    Add,
    /// `wg syncconf`, given the running state from a `get=1`.
    Sync(&'a DeviceState),
}

impl SetRequest {
    /// Builds the request wg(8) would send for `config` (see the module documentation for the
    /// exact sequence). Host-name endpoints are passed to `resolve`; numeric ones are not.
    pub fn from_config<E>(
        config: &Config,
        mode: ConfMode<'_>,
        mut resolve: impl FnMut(&Endpoint) -> Result<SocketAddr, E>,
    ) -> Result<Self, E> {
        let iface = &config.interface;
        let mut interface = Vec::new();
        let replace = !matches!(mode, ConfMode::Add);
        if let Some(uri) = &iface.private_key_uri {
            // ferrowg's extension: the key is in a PKCS#11 token.
            interface.push(InterfaceOp::PrivateKeyUri(Box::new(uri.clone())));
        } else if replace || iface.private_key.is_some() {
            let key = iface.private_key.clone().and_then(PrivateKey::nonzero);
            interface.push(InterfaceOp::PrivateKey(key));
        }
        if replace || iface.listen_port.is_some() {
            interface.push(InterfaceOp::ListenPort(iface.listen_port.unwrap_or(0)));
        }
        if replace || iface.fwmark.is_some() {
            interface.push(InterfaceOp::FwMark(iface.fwmark.unwrap_or(0)));
        }
        let mut peers = Vec::with_capacity(config.peers.len());
        let mut replace_peers = replace;
        let runtime = match mode {
            ConfMode::Sync(rt) if !config.peers.is_empty() && !rt.peers.is_empty() => Some(rt),
            _ => None,
        };
        if let Some(rt) = runtime {
            replace_peers = false;
            let mut gone: Vec<PublicKey> = rt
                .peers
                .iter()
                .map(|p| p.public_key)
                .filter(|k| !config.peers.iter().any(|p| p.public_key == *k))
                .collect();
            gone.sort_unstable_by(|a, b| b.cmp(a));
            gone.dedup();
            peers.extend(gone.into_iter().map(|k| PeerSet {
                public_key: k,
                ops: vec![PeerOp::Remove],
            }));
        }
        if replace_peers {
            interface.push(InterfaceOp::ReplacePeers);
        }
        for peer in &config.peers {
            let running =
                runtime.and_then(|rt| rt.peers.iter().find(|p| p.public_key == peer.public_key));
            peers.push(peer_ops(peer, running, &mut resolve)?);
        }
        Ok(Self { interface, peers })
    }
}

/// One `[Peer]`'s operations in wg's order; `running` is the same peer on the interface when
/// syncing.
fn peer_ops<E>(
    peer: &Peer,
    running: Option<&PeerState>,
    resolve: &mut impl FnMut(&Endpoint) -> Result<SocketAddr, E>,
) -> Result<PeerSet, E> {
    let mut ops = Vec::new();
    match (&peer.preshared_key, running) {
        (Some(psk), _) => ops.push(PeerOp::PresharedKey(psk.clone().nonzero())),
        (None, Some(rt)) if rt.preshared_key.is_some() => ops.push(PeerOp::PresharedKey(None)),
        _ => {}
    }
    if let Some(endpoint) = &peer.endpoint {
        ops.push(PeerOp::Endpoint(endpoint.resolve_with(&mut *resolve)?));
        // ferrowg's extension: the name, for the daemon to resolve again (the client drops it
        // for a daemon that does not announce it).
        ops.extend(endpoint.host_endpoint().map(PeerOp::EndpointHost));
    }
    match (peer.persistent_keepalive, running) {
        (Some(k), _) => ops.push(PeerOp::PersistentKeepaliveInterval(k)),
        (None, Some(rt)) if rt.persistent_keepalive_interval != 0 => {
            ops.push(PeerOp::PersistentKeepaliveInterval(0));
        }
        _ => {}
    }
    ops.push(PeerOp::ReplaceAllowedIps);
    ops.extend(peer.allowed_ips.iter().map(|ip| PeerOp::AllowedIp(*ip)));
    Ok(PeerSet {
        public_key: peer.public_key,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Dialect};
    use crate::uapi::request::parse_set;
    use crate::uapi::Limits;
    use ferrowg_keys::key::{PresharedKey, PrivateKey};
    use ferrowg_keys::pkcs11::Pkcs11Uri;

    const URI: &str = "pkcs11:token=wg;object=wg0?module-path=/usr/lib/softhsm/libsofthsm2.so\
                       &pin-value=12%2634";

    const PK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn pk(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    fn no_dns(_: &Endpoint) -> Result<SocketAddr, String> {
        Err("no resolver in this test".into())
    }

    fn config(text: &str) -> Config {
        parse("t.conf", text.as_bytes(), Dialect::Wg).unwrap()
    }

    #[test]
    fn setconf_sends_everything_and_replaces_peers() {
        let c = config(&format!(
            "[Interface]\nListenPort = 5\n[Peer]\nPublicKey = {PK_A}\nAllowedIPs = ::1.2.3.4/128, 10.0.0.1/24\n\
             Endpoint = [::ffff:1.2.3.4]:7\nPersistentKeepalive = 0\n"
        ));
        let req = SetRequest::from_config(&c, ConfMode::Set, no_dns).unwrap();
        let pk_hex = PublicKey::from_base64(PK_A).unwrap().to_hex();
        let zero = "0".repeat(64);
        assert_eq!(
            req.to_uapi(),
            format!(
                "set=1\nprivate_key={zero}\nlisten_port=5\nfwmark=0\nreplace_peers=true\n\
                 public_key={pk_hex}\nendpoint=[::ffff:1.2.3.4]:7\npersistent_keepalive_interval=0\n\
                 replace_allowed_ips=true\nallowed_ip=::1.2.3.4/128\nallowed_ip=10.0.0.1/24\n\n"
            )
        );
        // The daemon side reads it back into the same request.
        let body = req.to_uapi();
        let parsed = parse_set(&body.as_bytes()["set=1\n".len()..], &Limits::default()).unwrap();
        assert_eq!(parsed, req);
    }

    #[test]
    fn addconf_sends_only_what_is_in_the_file() {
        let c = config(&format!(
            "[Interface]\nFwMark = 7\n[Peer]\nPublicKey = {PK_A}\n"
        ));
        let req = SetRequest::from_config(&c, ConfMode::Add, no_dns).unwrap();
        assert_eq!(req.interface, vec![InterfaceOp::FwMark(7)]);
        assert_eq!(req.peers[0].ops, vec![PeerOp::ReplaceAllowedIps]);
    }

    #[test]
    fn host_endpoints_go_through_the_resolver() {
        let c = config(&format!(
            "[Peer]\nPublicKey = {PK_A}\nEndpoint = vpn.example:9\n"
        ));
        assert_eq!(
            SetRequest::from_config(&c, ConfMode::Add, no_dns),
            Err("no resolver in this test".to_string())
        );
        let resolved = SetRequest::from_config(&c, ConfMode::Add, |e| match e {
            Endpoint::Host { port, .. } => Ok::<_, ()>(SocketAddr::from(([192, 0, 2, 1], *port))),
            Endpoint::Addr(a) => Ok(*a),
        })
        .unwrap();
        assert_eq!(
            resolved.peers[0].ops[..2],
            [
                PeerOp::Endpoint("192.0.2.1:9".parse().unwrap()),
                PeerOp::EndpointHost(crate::addr::HostEndpoint::parse("vpn.example:9").unwrap()),
            ]
        );
        // A numeric endpoint has no name.
        let c = config(&format!(
            "[Peer]\nPublicKey = {PK_A}\nEndpoint = 192.0.2.1:9\n"
        ));
        let req = SetRequest::from_config(&c, ConfMode::Add, no_dns).unwrap();
        assert!(!req.has_endpoint_hosts());
    }

    #[test]
    fn syncconf_removes_missing_peers_and_clears_dropped_settings() {
        let mut kept = PeerState::new(pk(5));
        kept.preshared_key = Some(PresharedKey::from_bytes([1; 32]));
        kept.persistent_keepalive_interval = 25;
        let runtime = DeviceState {
            peers: vec![
                PeerState::new(pk(2)),
                kept,
                PeerState::new(pk(9)),
                PeerState::new(pk(1)),
            ],
            ..Default::default()
        };
        let c = Config {
            peers: vec![Peer::new(pk(7)), Peer::new(pk(5))],
            ..Default::default()
        };
        let req = SetRequest::from_config(&c, ConfMode::Sync(&runtime), no_dns).unwrap();
        assert_eq!(
            req.interface,
            vec![
                InterfaceOp::PrivateKey(None),
                InterfaceOp::ListenPort(0),
                InterfaceOp::FwMark(0)
            ]
        );
        let order: Vec<(u8, bool)> = req
            .peers
            .iter()
            .map(|p| (p.public_key.as_bytes()[0], p.ops == vec![PeerOp::Remove]))
            .collect();
        assert_eq!(
            order,
            [(9, true), (2, true), (1, true), (7, false), (5, false)]
        );
        assert_eq!(
            req.peers[4].ops,
            vec![
                PeerOp::PresharedKey(None),
                PeerOp::PersistentKeepaliveInterval(0),
                PeerOp::ReplaceAllowedIps
            ]
        );
        // Without peers on either side, syncconf is setconf.
        let empty = DeviceState::default();
        let req = SetRequest::from_config(&c, ConfMode::Sync(&empty), no_dns).unwrap();
        assert!(req.interface.contains(&InterfaceOp::ReplacePeers));
        let req =
            SetRequest::from_config(&Config::default(), ConfMode::Sync(&runtime), no_dns).unwrap();
        assert!(req.interface.contains(&InterfaceOp::ReplacePeers));
        assert!(req.peers.is_empty());
    }

    #[test]
    fn config_private_key_may_be_a_uri() {
        let sk = PrivateKey::from_bytes([0x41; 32]).to_base64();
        let text = format!("[Interface]\nPrivateKey = {URI}\nListenPort = 1\n");
        let c = parse("wg0.conf", text.as_bytes(), Dialect::WgQuick).unwrap();
        assert_eq!(c.interface.private_key, None);
        let uri = c.interface.private_key_uri.clone().unwrap();
        assert_eq!(uri, Pkcs11Uri::parse(URI).unwrap());
        // Printed back as written (this is the user's own file), and sent as the extension.
        assert!(c
            .to_wg_conf()
            .contains(&format!("PrivateKey = {}", uri.to_uri_string(true))));
        let req = SetRequest::from_config(&c, ConfMode::Set, |_| Err::<_, ()>(())).unwrap();
        assert_eq!(req.interface[0], InterfaceOp::PrivateKeyUri(Box::new(uri)));
        assert!(!req
            .interface
            .iter()
            .any(|op| matches!(op, InterfaceOp::PrivateKey(_))));
        // The later line wins, either way.
        let both = format!("[Interface]\nPrivateKey = {URI}\nPrivateKey = {sk}\n");
        let c = parse("wg0.conf", both.as_bytes(), Dialect::Wg).unwrap();
        assert!(c.interface.private_key.is_some() && c.interface.private_key_uri.is_none());
        let both = format!("[Interface]\nPrivateKey = {sk}\nPrivateKey = {URI}\n");
        let c = parse("wg0.conf", both.as_bytes(), Dialect::Wg).unwrap();
        assert!(c.interface.private_key.is_none() && c.interface.private_key_uri.is_some());
        // A bad URI names the line and the problem, not the PIN.
        let bad = "[Interface]\nPrivateKey = pkcs11:object=k;bogus=1?pin-value=secret\n";
        let e = parse("wg0.conf", bad.as_bytes(), Dialect::Wg).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("wg0.conf:2: PrivateKey: not a valid PKCS#11 URI"),
            "{msg}"
        );
        assert!(msg.contains("bogus") && !msg.contains("secret"), "{msg}");
    }
}
