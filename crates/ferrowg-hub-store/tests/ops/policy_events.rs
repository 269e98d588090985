//! The policy's versions and history, and the change sequence that every change advances.

use ferrowg_hub_store::{
    EventKind, Field, HubStore, NewDevice, NewToken, Reason, Scope, StoreError,
};

use crate::support::{self, key, T0};

#[tokio::test]
async fn policy_versions_and_history() {
    let t = support::store().await;
    assert_eq!(t.store.policy().await.unwrap(), None);
    let v1 = t.store.set_policy("{\"grants\": []}", T0).await.unwrap();
    let v2 = t
        .store
        .set_policy("{\"groups\": {}}", T0.plus(5))
        .await
        .unwrap();
    assert_eq!((v1.version, v2.version), (1, 2));
    assert_eq!(t.store.policy().await.unwrap(), Some(v2.clone()));
    assert_eq!(
        t.store.policy_history(10).await.unwrap(),
        vec![v2.clone(), v1]
    );
    assert_eq!(t.store.policy_history(1).await.unwrap(), vec![v2]);
    assert!(matches!(
        t.store.policy_history(0).await,
        Err(StoreError::Invalid {
            field: Field::Limit,
            ..
        })
    ));
    assert!(matches!(
        t.store.set_policy("  ", T0).await,
        Err(StoreError::Invalid {
            field: Field::PolicyText,
            reason: Reason::Empty
        })
    ));
}

#[tokio::test]
async fn every_change_advances_the_sequence_and_names_what_changed() {
    let t = support::store().await;
    assert_eq!(t.store.event_seq().await.unwrap(), 1, "init");
    let device = NewDevice {
        name: "a".into(),
        group: "g".into(),
        public_key: key(1),
        routes: vec![],
    };
    t.store.add_device(&device, T0).await.unwrap();
    let token = NewToken {
        group: "g".into(),
        uses: Some(1),
        expires_at: None,
    };
    let (tok, _) = t.store.create_token(&token, T0).await.unwrap();
    t.store.set_policy("{}", T0).await.unwrap();
    t.store
        .create_admin_token(Scope::Read, "", None, T0)
        .await
        .unwrap();
    t.store.revoke_device("a", T0.plus(1)).await.unwrap();
    assert_eq!(t.store.event_seq().await.unwrap(), 6);
    let events = t.store.events_since(1, 100).await.unwrap();
    let got: Vec<(i64, EventKind, &str)> = events
        .iter()
        .map(|e| (e.seq, e.kind, e.subject.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, EventKind::DeviceAdded, "a"),
            (3, EventKind::TokenCreated, tok.id.as_str()),
            (4, EventKind::PolicySet, "1"),
            (5, EventKind::AdminTokenCreated, events[3].subject.as_str()),
            (6, EventKind::DeviceRevoked, "a"),
        ]
    );
    assert_eq!(events[4].at, T0.plus(1));
    assert_eq!(t.store.events_since(4, 1).await.unwrap().len(), 1);
    assert!(t.store.events_since(6, 10).await.unwrap().is_empty());
    assert!(t.store.events_since(0, 0).await.is_err());
    // A failed change leaves no number behind.
    assert!(t.store.add_device(&device, T0).await.is_err());
    assert_eq!(t.store.event_seq().await.unwrap(), 6);
    // Pruning forgets old events but not the counter.
    assert_eq!(t.store.prune_events(4).await.unwrap(), 4);
    assert_eq!(t.store.events_since(0, 100).await.unwrap().len(), 2);
    t.store.set_policy("{}", T0).await.unwrap();
    assert_eq!(t.store.event_seq().await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_another_node_are_announced_within_a_second() {
    let t = support::store().await;
    let changed = std::sync::Arc::new(tokio::sync::Notify::new());
    let Some(task) = t.store.forward_changes(changed.clone()) else {
        assert!(support::on_sqlite(), "PostgreSQL announces changes");
        return; // One SQLite file, one hub node: its writers are in this process.
    };
    // The first poke says the listener is up.
    tokio::time::timeout(std::time::Duration::from_secs(10), changed.notified())
        .await
        .expect("the listener starts");
    let other = t.reopen().await;
    for round in 0..3 {
        let text = format!("{{ \"grants\": [] }} // {round}");
        let written = std::time::Instant::now();
        other.set_policy(&text, T0).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), changed.notified())
            .await
            .expect("announced within 1 s");
        assert!(written.elapsed() < std::time::Duration::from_secs(1));
    }
    task.abort();
}
