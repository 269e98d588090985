//! The dashboard's store operations: pages of devices filtered, sorted and counted in SQL,
//! rotation requests that stand until a rotation completes, and the hub nodes' heartbeats.

use ferrowg_hub_store::{
    Conflict, DeviceQuery, DeviceSort, DeviceStats, Entity, EventKind, Field, HubNode, HubStore,
    NewDevice, Reason, Route, SortOrder, StatusFilter, StoreError, UnixTime,
};

use crate::support::{self, key, T0};

/// Online means a handshake at or after this time in these tests.
const SINCE: UnixTime = UnixTime(T0.0 + 1000);

fn new(name: &str, group: &str, i: u32) -> NewDevice {
    NewDevice {
        name: name.into(),
        group: group.into(),
        public_key: key(i),
        routes: vec![],
    }
}

fn names(page: &ferrowg_hub_store::DevicePage) -> Vec<&str> {
    page.devices.iter().map(|d| d.name.as_str()).collect()
}

/// Seven devices:
/// - `alpha` (ops): online, handshake SINCE+5 from 198.51.100.7, rx 300, tx 1, a route
/// - `bravo` (ops): offline, handshake SINCE-1 from 203.0.113.1, rx 100, tx 3
/// - `charlie` (lab): online, handshake SINCE from 198.51.100.2, rx 200, tx 2
/// - `delta` (lab), `echo` (ops): pending
/// - `foxtrot` (lab-x): revoked after a handshake at SINCE+9
/// - `golf` (lab): pending, created last
///
/// Device `i` (from 1) has the key `key(i)` and the addresses of host `i + 1`.
async fn fleet() -> support::TestStore {
    let t = support::store().await;
    let s = &t.store;
    let mut with_route = new("alpha", "ops", 1);
    with_route.routes = vec![Route::new("192.168.7.0/24".parse().unwrap(), true)];
    s.add_device(&with_route, T0).await.unwrap();
    s.add_device(&new("bravo", "ops", 2), T0.plus(1))
        .await
        .unwrap();
    s.add_device(&new("charlie", "lab", 3), T0.plus(2))
        .await
        .unwrap();
    s.add_device(&new("delta", "lab", 4), T0.plus(3))
        .await
        .unwrap();
    s.add_device(&new("echo", "ops", 5), T0.plus(4))
        .await
        .unwrap();
    s.add_device(&new("foxtrot", "lab-x", 6), T0.plus(5))
        .await
        .unwrap();
    s.add_device(&new("golf", "lab", 7), T0.plus(6))
        .await
        .unwrap();
    let shakes = [
        (1, SINCE.plus(5), "198.51.100.7:51820"),
        (2, UnixTime(SINCE.0 - 1), "203.0.113.1:4500"),
        (3, SINCE, "198.51.100.2:1000"),
        (6, SINCE.plus(9), "192.0.2.66:7"),
    ];
    for (i, at, ep) in shakes {
        s.record_handshake(&key(i), at, Some(ep.parse().unwrap()))
            .await
            .unwrap();
    }
    let stats = [(1, 300, 1), (2, 100, 3), (3, 200, 2)].map(|(i, rx, tx)| DeviceStats {
        public_key: key(i),
        last_handshake: None,
        endpoint: None,
        rx_bytes: rx,
        tx_bytes: tx,
    });
    s.record_stats(&stats).await.unwrap();
    s.revoke_device("foxtrot", SINCE.plus(10)).await.unwrap();
    t
}

async fn query(t: &support::TestStore, q: DeviceQuery) -> (Vec<String>, u64) {
    let page = t.store.query_devices(&q, SINCE).await.unwrap();
    (
        names(&page).into_iter().map(String::from).collect(),
        page.total,
    )
}

fn search(text: &str) -> DeviceQuery {
    DeviceQuery {
        search: Some(text.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn no_parameters_lists_every_device_by_name_with_details() {
    let t = fleet().await;
    let page = t
        .store
        .query_devices(&DeviceQuery::default(), SINCE)
        .await
        .unwrap();
    assert_eq!(page.total, 7);
    assert_eq!(page.devices, t.store.list_devices().await.unwrap());
    let alpha = &page.devices[0];
    assert_eq!(alpha.routes.len(), 1, "routes are loaded for the page");
    assert_eq!(alpha.public_key, key(1));
    assert_eq!(alpha.ipv4.to_string(), "10.64.0.2");
}

#[tokio::test]
async fn search_matches_name_group_address_endpoint_and_key_in_any_case() {
    let t = fleet().await;
    let cases: [(&str, &[&str]); 9] = [
        ("ALPH", &["alpha"]),
        ("lab", &["charlie", "delta", "foxtrot", "golf"]),
        ("10.64.0.4/32", &["charlie"]),
        ("fd64::7/", &["foxtrot"]),
        ("198.51.100", &["alpha", "charlie"]),
        // The base64 of key(2) starts with AAAAAlpa (0,0,0,2 then 0x5a bytes).
        ("aaaaalpa", &["bravo"]),
        // `_` and `%` are literal, not wildcards.
        ("a_", &[]),
        ("%", &[]),
        ("zz-nothing", &[]),
    ];
    for (text, want) in cases {
        let (got, total) = query(&t, search(text)).await;
        assert_eq!(got, want, "search {text:?}");
        assert_eq!(total, want.len() as u64, "search {text:?}");
    }
}

#[tokio::test]
async fn group_and_status_filters_count_before_the_page() {
    let t = fleet().await;
    let by_status = |s| DeviceQuery {
        status: Some(s),
        ..Default::default()
    };
    let cases: [(StatusFilter, &[&str]); 4] = [
        // foxtrot's handshake is recent, but it is revoked: not online.
        (StatusFilter::Online, &["alpha", "charlie"]),
        (StatusFilter::Offline, &["bravo"]),
        (StatusFilter::Pending, &["delta", "echo", "golf"]),
        (StatusFilter::Revoked, &["foxtrot"]),
    ];
    for (status, want) in cases {
        assert_eq!(query(&t, by_status(status)).await.0, want, "{status:?}");
    }
    let q = DeviceQuery {
        group: Some("lab".into()),
        status: Some(StatusFilter::Pending),
        limit: Some(1),
        offset: 1,
        ..Default::default()
    };
    assert_eq!(query(&t, q).await, (vec!["golf".to_string()], 2));
    let exact = DeviceQuery {
        group: Some("la".into()),
        ..Default::default()
    };
    assert_eq!(query(&t, exact).await.1, 0, "the group filter is exact");
}

#[tokio::test]
async fn every_sort_in_both_orders_ties_by_name_and_empty_values_last() {
    let t = fleet().await;
    let all = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    ];
    let pending = ["delta", "echo", "golf"];
    let cases: [(DeviceSort, SortOrder, Vec<&str>); 8] = [
        (
            DeviceSort::Name,
            SortOrder::Desc,
            all.iter().rev().copied().collect(),
        ),
        (
            DeviceSort::Group,
            SortOrder::Asc,
            vec![
                "charlie", "delta", "golf", "foxtrot", "alpha", "bravo", "echo",
            ],
        ),
        (
            DeviceSort::LastHandshake,
            SortOrder::Desc,
            [&["foxtrot", "alpha", "charlie", "bravo"][..], &pending].concat(),
        ),
        (
            DeviceSort::LastHandshake,
            SortOrder::Asc,
            [&["bravo", "charlie", "alpha", "foxtrot"][..], &pending].concat(),
        ),
        (
            DeviceSort::Endpoint,
            SortOrder::Asc,
            [&["foxtrot", "charlie", "alpha", "bravo"][..], &pending].concat(),
        ),
        (
            DeviceSort::RxBytes,
            SortOrder::Desc,
            vec![
                "alpha", "charlie", "bravo", "delta", "echo", "foxtrot", "golf",
            ],
        ),
        (
            DeviceSort::TxBytes,
            SortOrder::Asc,
            vec![
                "delta", "echo", "foxtrot", "golf", "alpha", "charlie", "bravo",
            ],
        ),
        (
            DeviceSort::CreatedAt,
            SortOrder::Desc,
            all.iter().rev().copied().collect(),
        ),
    ];
    for (sort, order, want) in cases {
        let q = DeviceQuery {
            sort,
            order,
            ..Default::default()
        };
        assert_eq!(query(&t, q).await.0, want, "{sort:?} {order:?}");
    }
}

#[tokio::test]
async fn pages_concatenate_to_the_whole_order() {
    let t = fleet().await;
    let mut seen = Vec::new();
    for offset in (0..9).step_by(3) {
        let q = DeviceQuery {
            sort: DeviceSort::RxBytes,
            order: SortOrder::Desc,
            limit: Some(3),
            offset,
            ..Default::default()
        };
        let (page, total) = query(&t, q).await;
        assert_eq!(total, 7);
        assert!(page.len() <= 3);
        seen.extend(page);
    }
    let whole = DeviceQuery {
        sort: DeviceSort::RxBytes,
        order: SortOrder::Desc,
        ..Default::default()
    };
    assert_eq!(seen, query(&t, whole).await.0);
}

#[tokio::test]
async fn out_of_range_limits_and_long_texts_are_refused() {
    let t = fleet().await;
    for limit in [0, 1001] {
        let q = DeviceQuery {
            limit: Some(limit),
            ..Default::default()
        };
        match t.store.query_devices(&q, SINCE).await {
            Err(StoreError::Invalid {
                field: Field::Limit,
                reason: Reason::OutOfRange,
            }) => {}
            other => panic!("limit {limit}: {other:?}"),
        }
    }
    match t
        .store
        .query_devices(&search(&"a".repeat(257)), SINCE)
        .await
    {
        Err(StoreError::Invalid {
            field: Field::Search,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rotation_request_stands_until_a_rotation_completes() {
    let t = fleet().await;
    let s = &t.store;
    assert_eq!(s.device("alpha").await.unwrap().rotate_requested_at, None);
    let seq = s.event_seq().await.unwrap();
    let d = s.request_rotation("alpha", T0.plus(50)).await.unwrap();
    assert_eq!(d.rotate_requested_at, Some(T0.plus(50)));
    let events = s.events_since(seq, 10).await.unwrap();
    assert_eq!(events.len(), 1, "a configuration change other nodes see");
    assert_eq!(
        (events[0].kind, events[0].subject.as_str()),
        (EventKind::RotationRequested, "alpha")
    );
    // Asking again changes nothing.
    let again = s.request_rotation("alpha", T0.plus(60)).await.unwrap();
    assert_eq!(again.rotate_requested_at, Some(T0.plus(50)));
    assert_eq!(s.event_seq().await.unwrap(), seq + 1);
    // A handshake with the current key, or announcing a next key, does not complete it.
    s.record_handshake(&key(1), T0.plus(61), None)
        .await
        .unwrap();
    s.begin_rotation("alpha", &key(100), T0.plus(62))
        .await
        .unwrap();
    assert!(s
        .device("alpha")
        .await
        .unwrap()
        .rotate_requested_at
        .is_some());
    // The next key's first handshake does.
    let o = s
        .record_handshake(&key(100), T0.plus(63), None)
        .await
        .unwrap();
    assert!(o.rotated);
    assert_eq!(o.device.rotate_requested_at, None);
    assert_eq!(s.device("alpha").await.unwrap().rotate_requested_at, None);

    match s.request_rotation("foxtrot", T0.plus(70)).await {
        Err(StoreError::Conflict(Conflict::DeviceRevoked)) => {}
        other => panic!("{other:?}"),
    }
    match s.request_rotation("nope", T0.plus(70)).await {
        Err(StoreError::NotFound(Entity::Device)) => {}
        other => panic!("{other:?}"),
    }
}

fn node(name: &str, seen: i64, online: u64) -> HubNode {
    HubNode {
        name: name.into(),
        api: "0.0.0.0:8443".into(),
        version: "0.1.0".into(),
        started_at: T0,
        last_seen: UnixTime(seen),
        devices_online: online,
        handshakes: 10 * online,
    }
}

#[tokio::test]
async fn heartbeats_replace_their_row_and_make_no_event() {
    let t = support::store().await;
    let s = &t.store;
    assert!(s.list_nodes().await.unwrap().is_empty());
    let seq = s.event_seq().await.unwrap();
    s.heartbeat(&node("hub-b", T0.0 + 5, 3)).await.unwrap();
    s.heartbeat(&node("hub-a", T0.0 + 5, 1)).await.unwrap();
    s.heartbeat(&node("hub-b", T0.0 + 10, 4)).await.unwrap();
    assert_eq!(
        s.list_nodes().await.unwrap(),
        [node("hub-a", T0.0 + 5, 1), node("hub-b", T0.0 + 10, 4)]
    );
    assert_eq!(
        s.event_seq().await.unwrap(),
        seq,
        "heartbeats are no events"
    );
    for (name, field) in [
        ("", Field::NodeName),
        ("two words", Field::NodeName),
        (&"n".repeat(254), Field::NodeName),
    ] {
        match s.heartbeat(&node(name, T0.0, 0)).await {
            Err(StoreError::Invalid { field: f, .. }) if f == field => {}
            other => panic!("{name:?}: {other:?}"),
        }
    }
    let mut long = node("hub-c", T0.0, 0);
    long.api = "x".repeat(513);
    assert!(matches!(
        s.heartbeat(&long).await,
        Err(StoreError::Invalid {
            field: Field::NodeDetail,
            ..
        })
    ));
}

#[tokio::test]
async fn search_texts_are_written_for_rows_from_before_they_existed() {
    let t = fleet().await;
    // Rows as a store before migration 0005 left them.
    sqlx::any::install_default_drivers();
    let url = match &t.url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", t.path().display()),
    };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::query("UPDATE devices SET ipv4_text = NULL, ipv6_text = NULL")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE device_keys SET key_text = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(query(&t, search("10.64.0.4/32")).await.1, 0);
    let reopened = t.reopen().await;
    for (text, want) in [("10.64.0.4/32", "charlie"), ("aaaaalpa", "bravo")] {
        let page = reopened.query_devices(&search(text), SINCE).await.unwrap();
        assert_eq!(names(&page), [want], "{text}");
    }
}
