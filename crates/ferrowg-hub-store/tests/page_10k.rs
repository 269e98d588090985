//! How long one page of the device list takes with 10,000 devices (the dashboard's query:
//! filtered, sorted and counted in SQL). Prints the times; asserts only the results. Ignored
//! by default (adding 10,000 devices one transaction each takes a while):
//! `cargo test -p ferrowg-hub-store --test page_10k -- --ignored --nocapture`
//! (with `FERROWG_TEST_DATABASE=postgres` for PostgreSQL).

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use ferrowg_hub_store::{
    DeviceQuery, DeviceSort, DeviceStats, HubStore, NewDevice, SortOrder, StatusFilter, UnixTime,
};

use support::{key, T0};

const DEVICES: u32 = 10_000;

#[tokio::test]
#[ignore = "adds 10,000 devices; run with --ignored --nocapture"]
async fn one_page_of_ten_thousand_devices() {
    let t = support::store().await;
    let started = Instant::now();
    for i in 0..DEVICES {
        let new = NewDevice {
            name: format!("dev-{i:05}"),
            group: format!("g{}", i % 20),
            public_key: key(i),
            routes: vec![],
        };
        t.store.add_device(&new, T0).await.unwrap();
    }
    println!(
        "added {DEVICES} devices in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Every tenth device has shaken hands (it is active), at times spread over an hour; every
    // other one has traffic counters and an endpoint.
    let shaken_at = |i: u32| UnixTime(T0.0 + i64::from(i % 3600));
    for i in (0..DEVICES).step_by(10) {
        t.store
            .record_handshake(&key(i), shaken_at(i), None)
            .await
            .unwrap();
    }
    let stats: Vec<DeviceStats> = (0..DEVICES)
        .step_by(2)
        .map(|i| DeviceStats {
            public_key: key(i),
            last_handshake: None,
            endpoint: Some(
                format!("198.51.{}.{}:51820", i / 250, i % 250)
                    .parse()
                    .unwrap(),
            ),
            rx_bytes: u64::from(i) * 7 % 1000,
            tx_bytes: u64::from(i),
        })
        .collect();
    t.store.record_stats(&stats).await.unwrap();
    let since = UnixTime(T0.0 + 1800);
    let offline_g0 = (0..DEVICES)
        .filter(|i| i % 20 == 0 && shaken_at(*i) < since)
        .count() as u64;
    let online = (0..DEVICES)
        .filter(|i| i % 10 == 0 && shaken_at(*i) >= since)
        .count() as u64;
    let cases = [
        ("first page by name", DeviceQuery::default(), 10_000),
        (
            "page 100 by last handshake, descending",
            DeviceQuery {
                sort: DeviceSort::LastHandshake,
                order: SortOrder::Desc,
                offset: 4950,
                ..Default::default()
            },
            10_000,
        ),
        (
            "search \"dev-0123\" by rx",
            DeviceQuery {
                search: Some("DEV-0123".into()),
                sort: DeviceSort::RxBytes,
                ..Default::default()
            },
            10,
        ),
        (
            "search an address",
            DeviceQuery {
                search: Some("10.64.3.".into()),
                ..Default::default()
            },
            256,
        ),
        (
            "group g0, status offline, by endpoint",
            DeviceQuery {
                group: Some("g0".into()),
                status: Some(StatusFilter::Offline),
                sort: DeviceSort::Endpoint,
                ..Default::default()
            },
            offline_g0,
        ),
        (
            "status online by last handshake",
            DeviceQuery {
                status: Some(StatusFilter::Online),
                sort: DeviceSort::LastHandshake,
                ..Default::default()
            },
            online,
        ),
    ];
    for (what, mut query, total) in cases {
        query.limit = Some(50);
        // The first run warms the caches; the second is timed.
        t.store.query_devices(&query, since).await.unwrap();
        let started = Instant::now();
        let page = t.store.query_devices(&query, since).await.unwrap();
        let took = started.elapsed();
        println!(
            "{what}: {} of {} devices in {:.2} ms",
            page.devices.len(),
            page.total,
            took.as_secs_f64() * 1000.0
        );
        assert_eq!(page.total, total, "{what}");
    }
    let started = Instant::now();
    let all = t
        .store
        .query_devices(&DeviceQuery::default(), since)
        .await
        .unwrap();
    println!(
        "every device (no limit): {} in {:.1} ms",
        all.devices.len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
}
