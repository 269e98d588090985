//! 200 enrolments at once through the HTTPS API, each with its own connection: every one
//! succeeds and no two devices get one address (IPv4 or IPv6), as the store guarantees.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use ferrowg_hub::api::types::{CreateTokenRequest, Expiry};
use ferrowg_hub::{client, token};
use support::{random_key, Hub};

const ENROLMENTS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_enrolments_get_distinct_addresses() {
    let hub = Hub::start().await;
    let req = CreateTokenRequest {
        group: "fleet".into(),
        uses: ENROLMENTS as u32,
        expires: Some(Expiry::Text("never".into())),
    };
    let created = hub.admin().create_token(&req).await.unwrap();
    let tok = Arc::new(token::parse(&created.token).unwrap());
    let start = Arc::new(tokio::sync::Barrier::new(ENROLMENTS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ENROLMENTS {
        let (tok, start) = (Arc::clone(&tok), Arc::clone(&start));
        tasks.spawn(async move {
            start.wait().await;
            client::enroll(&tok, &format!("dev-{i}"), &random_key(), &[]).await
        });
    }
    let mut v4 = HashSet::new();
    let mut v6 = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        let r = joined.expect("task").expect("enrolment");
        assert!(
            v4.insert(r.addresses[0].clone()),
            "duplicate {}",
            r.addresses[0]
        );
        assert!(
            v6.insert(r.addresses[1].clone()),
            "duplicate {}",
            r.addresses[1]
        );
    }
    assert_eq!((v4.len(), v6.len()), (ENROLMENTS, ENROLMENTS));
    let listed = hub.admin().list_devices().await.unwrap();
    assert_eq!(listed.len(), ENROLMENTS);
    let listed_v4: HashSet<String> = listed.iter().map(|d| d.addresses[0].clone()).collect();
    assert_eq!(listed_v4, v4);
    let extra = client::enroll(&tok, "one-too-many", &random_key(), &[]).await;
    assert!(extra.is_err(), "the token's uses are spent");
}
