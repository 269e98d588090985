//! Handshakes (activation), key rotation with both keys valid in between, traffic statistics,
//! and advertised routes with their approval.

use ferrowg_hub_store::ipnet::IpNet;
use ferrowg_hub_store::{
    Conflict, DeviceState, DeviceStats, Entity, Field, HubStore, KeyRole, NewDevice, Reason, Route,
    StoreError, UnixTime,
};

use crate::support::{self, key, T0};

fn new(name: &str, i: u32, routes: Vec<Route>) -> NewDevice {
    NewDevice {
        name: name.into(),
        group: "sites".into(),
        public_key: key(i),
        routes,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[tokio::test]
async fn first_handshake_activates_and_records_endpoint() {
    let t = support::store().await;
    t.store.add_device(&new("a", 1, vec![]), T0).await.unwrap();
    let ep = "192.0.2.9:4500".parse().unwrap();
    let seq = t.store.event_seq().await.unwrap();
    let o = t
        .store
        .record_handshake(&key(1), T0.plus(3), Some(ep))
        .await
        .unwrap();
    assert!(o.activated && !o.rotated);
    assert_eq!(o.device.state, DeviceState::Active);
    assert_eq!(o.device.last_handshake, Some(T0.plus(3)));
    assert_eq!(o.device.endpoint, Some(ep));
    assert_eq!(t.store.event_seq().await.unwrap(), seq + 1);
    let o = t
        .store
        .record_handshake(&key(1), T0.plus(9), None)
        .await
        .unwrap();
    assert!(!o.activated && !o.rotated);
    assert_eq!(o.device.endpoint, Some(ep), "kept when not reported");
    assert_eq!(
        t.store.event_seq().await.unwrap(),
        seq + 1,
        "no change, no event"
    );
    assert!(matches!(
        t.store.record_handshake(&key(2), T0, None).await,
        Err(StoreError::NotFound(Entity::Device))
    ));
}

#[tokio::test]
async fn rotation_keeps_both_keys_until_the_new_one_handshakes() {
    let t = support::store().await;
    t.store.add_device(&new("a", 1, vec![]), T0).await.unwrap();
    t.store.add_device(&new("b", 2, vec![]), T0).await.unwrap();
    t.store.record_handshake(&key(1), T0, None).await.unwrap();
    let d = t.store.begin_rotation("a", &key(10), T0).await.unwrap();
    assert_eq!((d.public_key, d.next_public_key), (key(1), Some(key(10))));
    assert_eq!(
        t.store.device_by_key(&key(1)).await.unwrap().1,
        KeyRole::Current
    );
    assert_eq!(
        t.store.device_by_key(&key(10)).await.unwrap().1,
        KeyRole::Next
    );
    // The old key still handshakes during the overlap.
    let o = t
        .store
        .record_handshake(&key(1), T0.plus(1), None)
        .await
        .unwrap();
    assert!(!o.rotated);
    // Announcing the same next key again is no change; another one replaces it.
    let seq = t.store.event_seq().await.unwrap();
    t.store.begin_rotation("a", &key(10), T0).await.unwrap();
    assert_eq!(t.store.event_seq().await.unwrap(), seq);
    let d = t.store.begin_rotation("a", &key(11), T0).await.unwrap();
    assert_eq!(d.next_public_key, Some(key(11)));
    assert!(t.store.device_by_key(&key(10)).await.is_err());
    // Keys of other devices (current or next) are refused.
    let taken = t.store.begin_rotation("a", &key(2), T0).await;
    assert!(matches!(
        taken,
        Err(StoreError::Conflict(Conflict::PublicKey))
    ));
    let o = t
        .store
        .record_handshake(&key(11), T0.plus(2), None)
        .await
        .unwrap();
    assert!(o.rotated && !o.activated);
    assert_eq!(
        (o.device.public_key, o.device.next_public_key),
        (key(11), None)
    );
    assert!(matches!(
        t.store.device_by_key(&key(1)).await,
        Err(StoreError::NotFound(Entity::Device))
    ));
}

#[tokio::test]
async fn cancel_rotation_and_revoked_devices() {
    let t = support::store().await;
    t.store.add_device(&new("a", 1, vec![]), T0).await.unwrap();
    assert!(matches!(
        t.store.cancel_rotation("a", T0).await,
        Err(StoreError::NotFound(Entity::Rotation))
    ));
    t.store.begin_rotation("a", &key(5), T0).await.unwrap();
    let d = t.store.cancel_rotation("a", T0).await.unwrap();
    assert_eq!(d.next_public_key, None);
    assert!(matches!(
        t.store.begin_rotation("nope", &key(6), T0).await,
        Err(StoreError::NotFound(Entity::Device))
    ));
    t.store.revoke_device("a", T0).await.unwrap();
    assert!(matches!(
        t.store.begin_rotation("a", &key(6), T0).await,
        Err(StoreError::Conflict(Conflict::DeviceRevoked))
    ));
    assert!(matches!(
        t.store.record_handshake(&key(1), T0, None).await,
        Err(StoreError::Conflict(Conflict::DeviceRevoked))
    ));
}

#[tokio::test]
async fn stats_update_counters_without_events() {
    let t = support::store().await;
    t.store.add_device(&new("a", 1, vec![]), T0).await.unwrap();
    t.store.add_device(&new("b", 2, vec![]), T0).await.unwrap();
    let seq = t.store.event_seq().await.unwrap();
    let ep = "[2001:db8::7]:51820".parse().unwrap();
    let entry = |k, hs: Option<UnixTime>, rx| DeviceStats {
        public_key: key(k),
        last_handshake: hs,
        endpoint: Some(ep),
        rx_bytes: rx,
        tx_bytes: u64::MAX,
    };
    let batch = [entry(1, Some(T0.plus(50)), 100), entry(99, None, 1)];
    assert_eq!(t.store.record_stats(&batch).await.unwrap(), 1);
    let a = t.store.device("a").await.unwrap();
    assert_eq!((a.rx_bytes, a.tx_bytes), (100, i64::MAX as u64));
    assert_eq!(
        (a.last_handshake, a.endpoint),
        (Some(T0.plus(50)), Some(ep))
    );
    // An older handshake time never replaces a newer one.
    t.store
        .record_stats(&[entry(1, Some(T0), 200)])
        .await
        .unwrap();
    let a = t.store.device("a").await.unwrap();
    assert_eq!((a.rx_bytes, a.last_handshake), (200, Some(T0.plus(50))));
    assert_eq!(t.store.event_seq().await.unwrap(), seq);
    assert_eq!(t.store.device("b").await.unwrap().rx_bytes, 0);
}

#[tokio::test]
async fn routes_advertised_approved_and_replaced() {
    let t = support::store().await;
    let site = Route::new(net("192.168.1.0/24"), false);
    let d = t
        .store
        .add_device(&new("s", 1, vec![site]), T0)
        .await
        .unwrap();
    assert_eq!(d.routes, vec![site]);
    let d = t
        .store
        .set_route_approval("s", &site.prefix, true, T0)
        .await
        .unwrap();
    assert!(d.routes[0].approved);
    let seq = t.store.event_seq().await.unwrap();
    t.store
        .set_route_approval("s", &site.prefix, true, T0)
        .await
        .unwrap();
    assert_eq!(
        t.store.event_seq().await.unwrap(),
        seq,
        "unchanged approval"
    );
    // The kept prefix keeps its approval; of the new ones only the auto-approved one is.
    let prefixes = [net("192.168.1.0/24"), net("10.9.0.0/16"), net("fd01::/64")];
    let d = t
        .store
        .set_advertised_routes("s", &prefixes, &[net("fd01::/64")], T0)
        .await
        .unwrap();
    let got: Vec<(String, bool)> = d
        .routes
        .iter()
        .map(|r| (r.prefix.to_string(), r.approved))
        .collect();
    let want = [
        ("10.9.0.0/16", false),
        ("192.168.1.0/24", true),
        ("fd01::/64", true),
    ];
    assert_eq!(got, want.map(|(p, a)| (p.to_string(), a)));
    let d = t
        .store
        .set_advertised_routes("s", &[], &[], T0)
        .await
        .unwrap();
    assert!(d.routes.is_empty());
    assert!(matches!(
        t.store
            .set_route_approval("s", &site.prefix, true, T0)
            .await,
        Err(StoreError::NotFound(Entity::Route))
    ));
}

#[tokio::test]
async fn bad_routes_are_refused() {
    let t = support::store().await;
    let host_bits = Route::new(net("192.168.1.1/24"), true);
    let r = t.store.add_device(&new("s", 1, vec![host_bits]), T0).await;
    assert!(matches!(
        r,
        Err(StoreError::Invalid {
            field: Field::Route,
            reason: Reason::BadFormat
        })
    ));
    t.store.add_device(&new("s", 1, vec![]), T0).await.unwrap();
    let twice = [net("10.0.0.0/8"), net("10.0.0.0/8")];
    assert!(matches!(
        t.store.set_advertised_routes("s", &twice, &[], T0).await,
        Err(StoreError::Invalid {
            field: Field::Routes,
            reason: Reason::Duplicate
        })
    ));
    t.store.revoke_device("s", T0).await.unwrap();
    assert!(matches!(
        t.store
            .set_advertised_routes("s", &[net("10.0.0.0/8")], &[], T0)
            .await,
        Err(StoreError::Conflict(Conflict::DeviceRevoked))
    ));
}

#[tokio::test]
async fn two_sites_with_one_prefix_get_distinct_mapped_prefixes() {
    let t = support::store().await;
    let lan = net("192.168.1.0/24");
    for (name, i) in [("site-a", 1), ("site-b", 2)] {
        t.store
            .add_device(&new(name, i, vec![Route::new(lan, true)]), T0)
            .await
            .unwrap();
    }
    let a = t
        .store
        .set_route_map("site-a", &lan, Some(&net("10.201.1.0/24")), T0)
        .await
        .unwrap();
    assert_eq!(a.routes[0].reached_as(), net("10.201.1.0/24"));
    // One mapped prefix per route.
    let taken = t
        .store
        .set_route_map("site-b", &lan, Some(&net("10.201.1.0/24")), T0)
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict(Conflict::MappedPrefix))),
        "{taken:?}"
    );
    // Same length and family, outside the pools.
    for bad in ["10.201.0.0/16", "fd00::/120", "10.64.9.0/24"] {
        let r = t
            .store
            .set_route_map("site-b", &lan, Some(&net(bad)), T0)
            .await;
        assert!(
            matches!(
                r,
                Err(StoreError::Invalid {
                    field: Field::MappedRoute,
                    ..
                })
            ),
            "{bad}: {r:?}"
        );
    }
    let b = t
        .store
        .set_route_map("site-b", &lan, Some(&net("10.201.2.0/24")), T0)
        .await
        .unwrap();
    assert_eq!(b.routes[0].mapped, Some(net("10.201.2.0/24")));
    // Advertising the same prefix again keeps the map; clearing it works.
    let a = t
        .store
        .set_advertised_routes("site-a", &[lan, net("10.9.0.0/16")], &[], T0)
        .await
        .unwrap();
    let kept = a.routes.iter().find(|r| r.prefix == lan).unwrap();
    assert_eq!(kept.mapped, Some(net("10.201.1.0/24")));
    let a = t
        .store
        .set_route_map("site-a", &lan, None, T0)
        .await
        .unwrap();
    assert!(a.routes.iter().all(|r| r.mapped.is_none()));
}
