//! 200 enrolments at once against one database file: every one succeeds, no two devices share
//! an address, and no address is skipped (the 200 devices hold exactly the 200 lowest hosts).
//! The tasks go through four store handles on the same file, so they contend both inside a
//! handle and between handles (as two hub processes would, through SQLite's file locks).

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use ferrowg_hub_store::{Enrolment, HubStore, NewToken, StoreError};

use support::{key, T0};

const ENROLMENTS: u32 = 200;
const HANDLES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_enrolments_get_distinct_addresses() {
    let t = support::store().await;
    let token = NewToken {
        group: "fleet".into(),
        uses: Some(ENROLMENTS),
        expires_at: None,
    };
    let (tok, cred) = t.store.create_token(&token, T0).await.unwrap();
    let mut handles = vec![];
    for _ in 0..HANDLES {
        handles.push(Arc::new(t.reopen().await));
    }
    let cred = Arc::new(cred);
    let start = Arc::new(tokio::sync::Barrier::new(ENROLMENTS as usize));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ENROLMENTS {
        let store = Arc::clone(&handles[i as usize % HANDLES]);
        let (cred, start) = (Arc::clone(&cred), Arc::clone(&start));
        tasks.spawn(async move {
            let enrolment = Enrolment {
                name: format!("dev-{i}"),
                public_key: key(i),
                routes: vec![],
            };
            start.wait().await;
            store.redeem(&cred, &enrolment, T0).await
        });
    }
    let mut acked = vec![];
    while let Some(joined) = tasks.join_next().await {
        acked.push(joined.expect("task").expect("enrolment"));
    }
    assert_eq!(acked.len(), ENROLMENTS as usize);
    let v4: HashSet<_> = acked.iter().map(|d| d.ipv4).collect();
    let v6: HashSet<_> = acked.iter().map(|d| d.ipv6.unwrap()).collect();
    assert_eq!(v4.len(), acked.len(), "duplicate IPv4 address");
    assert_eq!(v6.len(), acked.len(), "duplicate IPv6 address");

    // None lost: the stored devices are exactly the acknowledged ones, on hosts 2..=201.
    let stored = t.store.list_devices().await.unwrap();
    assert_eq!(stored.len(), acked.len());
    let hosts: HashSet<u32> = stored
        .iter()
        .map(|d| u32::from(d.ipv4) - u32::from(std::net::Ipv4Addr::new(10, 64, 0, 0)))
        .collect();
    assert_eq!(hosts, (2..2 + ENROLMENTS).collect::<HashSet<_>>());
    for d in &acked {
        assert!(stored.contains(d), "{} acknowledged but not stored", d.name);
    }
    assert_eq!(t.store.token(&tok.id).await.unwrap().uses_left, Some(0));
    let extra = Enrolment {
        name: "one-too-many".into(),
        public_key: key(ENROLMENTS),
        routes: vec![],
    };
    assert!(matches!(
        t.store.redeem(&cred, &extra, T0).await,
        Err(StoreError::TokenExhausted)
    ));
    assert!(t.store.integrity_ok().await.unwrap());
}
