//! Which WireGuard peers the hub's interface must have, from the devices in the store, and the
//! `set` request that takes the interface from the peers it has to those. Pure functions: the
//! sync loop (`sync.rs`) applies the request.
//!
//! Rules: every device that is not revoked is a peer with its current key, and its addresses
//! and approved routes as allowed IPs. During a rotation the next key is a second peer without
//! allowed IPs: it can complete a handshake (which makes it the current key, and the old peer
//! goes), while the old key's peer keeps carrying the traffic until then. A revoked device has
//! no peer: removing it drops its sessions and keys.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use ferrowg_conf::addr::AllowedIp;
use ferrowg_conf::uapi::{PeerOp, PeerSet, PeerState, SetRequest};
use ferrowg_hub_store::ipnet::IpNet;
use ferrowg_hub_store::{Device, DeviceState};
use ferrowg_keys::key::PublicKey;
use ferrowg_proto::netmap::Netmap;

/// Peers by public key, each with its allowed IPs (sorted).
pub type PeerTable = BTreeMap<[u8; 32], Vec<IpNet>>;

/// The peers the interface must have for `devices`.
pub fn wanted(devices: &[Device]) -> PeerTable {
    let mut out = PeerTable::new();
    for d in devices.iter().filter(|d| d.state != DeviceState::Revoked) {
        out.insert(d.public_key, allowed_ips(d));
        if let Some(next) = d.next_public_key {
            out.entry(next).or_default();
        }
    }
    out
}

/// A device's allowed IPs: its addresses, then its approved routes (a mapped route by its
/// mapped prefix).
pub fn allowed_ips(d: &Device) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = vec![IpNet::from(IpAddr::V4(d.ipv4))];
    v.extend(d.ipv6.map(|a| IpNet::from(IpAddr::V6(a))));
    v.extend(
        d.routes
            .iter()
            .filter(|r| r.approved)
            .map(|r| r.reached_as()),
    );
    v.sort();
    v
}

/// A device's prefix translations: one per approved route with a mapped prefix.
pub fn netmaps(d: &Device) -> Vec<Netmap> {
    d.routes
        .iter()
        .filter(|r| r.approved)
        .filter_map(|r| {
            let m = r.mapped?;
            Netmap::new(
                (r.prefix.addr(), r.prefix.prefix_len()),
                (m.addr(), m.prefix_len()),
            )
            .ok()
        })
        .collect()
}

/// The `set` request that turns `have` into `want`: removes the peers that must go first (so
/// that their allowed IPs are free), then adds or updates the others. Empty when nothing
/// changes.
pub fn plan(have: &PeerTable, want: &PeerTable) -> SetRequest {
    let mut req = SetRequest::default();
    for key in have.keys().filter(|k| !want.contains_key(*k)) {
        req.peers.push(PeerSet {
            public_key: PublicKey::from_bytes(*key),
            ops: vec![PeerOp::Remove],
        });
    }
    for (key, ips) in want.iter().filter(|(k, ips)| have.get(*k) != Some(ips)) {
        let mut ops = vec![PeerOp::ReplaceAllowedIps];
        ops.extend(ips.iter().map(|n| {
            PeerOp::AllowedIp(AllowedIp {
                addr: n.addr(),
                cidr: n.prefix_len(),
            })
        }));
        req.peers.push(PeerSet {
            public_key: PublicKey::from_bytes(*key),
            ops,
        });
    }
    req
}

/// The `set` request that gives each peer without an endpoint the endpoint the store last
/// recorded for its device: a node that never talked to the device (a standby sharing the
/// database) can then reach it, e.g. to forward a packet to it after taking over. Peers with
/// an endpoint keep theirs (the interface knows better than the store). Empty when there is
/// nothing to give.
pub fn endpoints(have: &[PeerState], devices: &[Device]) -> SetRequest {
    let recorded: HashMap<[u8; 32], SocketAddr> = devices
        .iter()
        .filter(|d| d.state != DeviceState::Revoked)
        .filter_map(|d| Some((d.public_key, d.endpoint?)))
        .collect();
    let mut req = SetRequest::default();
    for p in have.iter().filter(|p| p.endpoint.is_none()) {
        if let Some(e) = recorded.get(p.public_key.as_bytes()) {
            req.peers.push(PeerSet {
                public_key: p.public_key,
                ops: vec![PeerOp::Endpoint(*e)],
            });
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(u8, &[&str])]) -> PeerTable {
        entries
            .iter()
            .map(|(k, ips)| ([*k; 32], ips.iter().map(|s| s.parse().unwrap()).collect()))
            .collect()
    }

    #[test]
    fn plan_removes_first_then_adds_and_changes_only_what_differs() {
        let have = table(&[(1, &["10.64.0.2/32"]), (2, &["10.64.0.3/32"]), (3, &[])]);
        let want = table(&[(1, &["10.64.0.2/32"]), (3, &["10.64.0.3/32"]), (4, &[])]);
        let req = plan(&have, &want);
        let keys: Vec<(u8, bool)> = req
            .peers
            .iter()
            .map(|p| (p.public_key.as_bytes()[0], p.ops == [PeerOp::Remove]))
            .collect();
        assert_eq!(keys, [(2, true), (3, false), (4, false)]);
        assert_eq!(req.peers[1].ops.len(), 2, "replace, then the one address");
        assert!(plan(&want, &want).peers.is_empty());
    }

    fn device(key: u8, endpoint: Option<&str>, state: DeviceState) -> Device {
        Device {
            name: format!("d{key}"),
            group: "g".into(),
            public_key: [key; 32],
            next_public_key: None,
            ipv4: std::net::Ipv4Addr::new(10, 64, 0, key),
            ipv6: None,
            state,
            token_id: None,
            created_at: ferrowg_hub_store::UnixTime(0),
            key_since: ferrowg_hub_store::UnixTime(0),
            revoked_at: None,
            last_handshake: None,
            endpoint: endpoint.map(|e| e.parse().unwrap()),
            rx_bytes: 0,
            tx_bytes: 0,
            routes: vec![],
            rotate_requested_at: None,
        }
    }

    #[test]
    fn endpoints_fill_only_peers_without_one() {
        let mut with = PeerState::new(PublicKey::from_bytes([1; 32]));
        with.endpoint = Some("192.0.2.1:1000".parse().unwrap());
        let have = [
            with,
            PeerState::new(PublicKey::from_bytes([2; 32])),
            PeerState::new(PublicKey::from_bytes([3; 32])),
            PeerState::new(PublicKey::from_bytes([4; 32])),
        ];
        let devices = [
            device(1, Some("192.0.2.9:9"), DeviceState::Active),
            device(2, Some("192.0.2.2:2000"), DeviceState::Active),
            device(3, None, DeviceState::Active),
            device(4, Some("192.0.2.4:4"), DeviceState::Revoked),
        ];
        let req = endpoints(&have, &devices);
        assert_eq!(
            req.peers.len(),
            1,
            "only the peer without one, known, not revoked"
        );
        assert_eq!(req.peers[0].public_key.as_bytes(), &[2; 32]);
        assert_eq!(
            req.peers[0].ops,
            [PeerOp::Endpoint("192.0.2.2:2000".parse().unwrap())]
        );
    }
}
