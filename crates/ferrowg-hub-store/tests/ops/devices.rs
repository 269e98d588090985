//! Devices added by an admin: addresses (lowest free, hub and broadcast skipped, pools running
//! out), uniqueness of names and keys, lookups, revocation and deletion.

use std::net::Ipv4Addr;

use ferrowg_hub_store::{
    Conflict, DeviceState, Entity, Family, Field, HubStore, KeyRole, NewDevice, Reason, StoreError,
};

use crate::support::{self, key, settings, T0};

fn new(name: &str, i: u32) -> NewDevice {
    NewDevice {
        name: name.into(),
        group: "routers".into(),
        public_key: key(i),
        routes: vec![],
    }
}

#[tokio::test]
async fn add_and_read_back() {
    let t = support::store().await;
    let d = t.store.add_device(&new("r1", 1), T0).await.unwrap();
    assert_eq!(d.name, "r1");
    assert_eq!(d.group, "routers");
    assert_eq!(d.public_key, key(1));
    assert_eq!(d.next_public_key, None);
    assert_eq!(d.state, DeviceState::Pending);
    assert_eq!(d.token_id, None);
    assert_eq!(d.created_at, T0);
    assert_eq!(
        (d.last_handshake, d.endpoint, d.rx_bytes, d.tx_bytes),
        (None, None, 0, 0)
    );
    assert_eq!(t.store.device("r1").await.unwrap(), d);
    assert_eq!(
        t.store.device_by_key(&key(1)).await.unwrap(),
        (d, KeyRole::Current)
    );
}

#[tokio::test]
async fn lowest_free_address_skipping_hub_and_reusing_deleted() {
    let t = support::store().await;
    let mut v4 = Vec::new();
    for i in 0..4 {
        let d = t
            .store
            .add_device(&new(&format!("d{i}"), i), T0)
            .await
            .unwrap();
        v4.push(d.ipv4);
        assert_eq!(d.ipv6.unwrap().to_string(), format!("fd64::{}", i + 2));
    }
    let want: Vec<Ipv4Addr> = (2..6).map(|h| Ipv4Addr::new(10, 64, 0, h)).collect();
    assert_eq!(v4, want, "10.64.0.1 is the hub's");
    t.store.delete_device("d1", T0).await.unwrap();
    let d = t.store.add_device(&new("e", 9), T0).await.unwrap();
    assert_eq!(
        d.ipv4,
        Ipv4Addr::new(10, 64, 0, 3),
        "the gap is filled first"
    );
    assert_eq!(d.ipv6.unwrap().to_string(), "fd64::3");
    let d = t.store.add_device(&new("f", 10), T0).await.unwrap();
    assert_eq!(d.ipv4, Ipv4Addr::new(10, 64, 0, 6));
}

#[tokio::test]
async fn ipv4_pool_exhaustion_skips_broadcast() {
    // 192.0.2.0/29: network .0, hub .1, broadcast .7: devices get .2 to .6.
    let t = support::store_with(settings("192.0.2.0/29", None)).await;
    for i in 0..5 {
        let d = t
            .store
            .add_device(&new(&format!("d{i}"), i), T0)
            .await
            .unwrap();
        assert_eq!(d.ipv4, Ipv4Addr::new(192, 0, 2, 2 + i as u8));
        assert_eq!(d.ipv6, None);
    }
    let full = t.store.add_device(&new("x", 99), T0).await;
    assert!(matches!(full, Err(StoreError::PoolExhausted(Family::V4))));
    let seq = t.store.event_seq().await.unwrap();
    assert_eq!(t.store.list_devices().await.unwrap().len(), 5);
    // A revoked device keeps its address; a deleted one frees it.
    t.store.revoke_device("d4", T0).await.unwrap();
    assert!(t.store.add_device(&new("x", 99), T0).await.is_err());
    t.store.delete_device("d4", T0).await.unwrap();
    let x = t.store.add_device(&new("x", 99), T0).await.unwrap();
    assert_eq!(x.ipv4, Ipv4Addr::new(192, 0, 2, 6));
    assert!(t.store.event_seq().await.unwrap() > seq);
}

#[tokio::test]
async fn ipv6_pool_exhaustion() {
    // fd00::/126: fd00::0 and the hub's fd00::1 are not given out: two devices.
    let t = support::store_with(settings("10.0.0.0/24", Some("fd00::/126"))).await;
    t.store.add_device(&new("a", 1), T0).await.unwrap();
    t.store.add_device(&new("b", 2), T0).await.unwrap();
    let full = t.store.add_device(&new("c", 3), T0).await;
    assert!(matches!(full, Err(StoreError::PoolExhausted(Family::V6))));
}

#[tokio::test]
async fn names_and_keys_are_unique_also_after_revocation() {
    let t = support::store().await;
    t.store.add_device(&new("a", 1), T0).await.unwrap();
    let name = t.store.add_device(&new("a", 2), T0).await;
    assert!(matches!(
        name,
        Err(StoreError::Conflict(Conflict::DeviceName))
    ));
    let k = t.store.add_device(&new("b", 1), T0).await;
    assert!(matches!(k, Err(StoreError::Conflict(Conflict::PublicKey))));
    let revoked = t.store.revoke_device("a", T0.plus(1)).await.unwrap();
    assert_eq!(revoked.state, DeviceState::Revoked);
    assert_eq!(revoked.revoked_at, Some(T0.plus(1)));
    let k = t.store.add_device(&new("b", 1), T0).await;
    assert!(
        matches!(k, Err(StoreError::Conflict(Conflict::PublicKey))),
        "a revoked key cannot come back under another name"
    );
    let seq = t.store.event_seq().await.unwrap();
    let again = t.store.revoke_device("a", T0.plus(2)).await.unwrap();
    assert_eq!(again.revoked_at, Some(T0.plus(1)));
    assert_eq!(t.store.event_seq().await.unwrap(), seq);
}

#[tokio::test]
async fn invalid_inputs_are_refused() {
    let t = support::store().await;
    let mut d = new(&"n".repeat(64), 1);
    let r = t.store.add_device(&d, T0).await;
    assert!(matches!(
        r,
        Err(StoreError::Invalid {
            field: Field::DeviceName,
            reason: Reason::TooLong { max: 63 }
        })
    ));
    d.name = "ok".into();
    d.group = String::new();
    let r = t.store.add_device(&d, T0).await;
    assert!(matches!(
        r,
        Err(StoreError::Invalid {
            field: Field::Group,
            reason: Reason::Empty
        })
    ));
    assert!(t.store.list_devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn list_lookup_delete() {
    let t = support::store().await;
    for (i, name) in ["zeta", "alpha", "mid-1"].iter().enumerate() {
        t.store.add_device(&new(name, i as u32), T0).await.unwrap();
    }
    let names: Vec<String> = t
        .store
        .list_devices()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, ["alpha", "mid-1", "zeta"]);
    assert!(matches!(
        t.store.device("nope").await,
        Err(StoreError::NotFound(Entity::Device))
    ));
    assert!(matches!(
        t.store.device_by_key(&key(77)).await,
        Err(StoreError::NotFound(Entity::Device))
    ));
    assert!(matches!(
        t.store.revoke_device("nope", T0).await,
        Err(StoreError::NotFound(Entity::Device))
    ));
    t.store.delete_device("zeta", T0).await.unwrap();
    assert!(matches!(
        t.store.delete_device("zeta", T0).await,
        Err(StoreError::NotFound(Entity::Device))
    ));
    // Its name and key are free again.
    t.store.add_device(&new("zeta", 0), T0).await.unwrap();
}
