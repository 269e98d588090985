//! Hub settings, the database file's settings, and what happens before `init`.

use ferrowg_hub_store::{
    Conflict, Entity, Field, HubStore, NewDevice, Reason, SqlStore, StoreError,
};

use crate::support::{self, key, settings, T0};

#[tokio::test]
async fn init_once_and_read_back() {
    let t = support::store().await;
    let s = t.store.settings().await.unwrap();
    assert_eq!(s, settings("10.64.0.0/16", Some("fd64::/64")));
    assert_eq!(s.pools.hub_v4().to_string(), "10.64.0.1");
    let again = t.store.init(&s).await;
    assert!(matches!(
        again,
        Err(StoreError::Conflict(Conflict::AlreadyInitialised))
    ));
    // Reopening the file (migrations already applied) keeps everything.
    t.store.close().await;
    let reopened = t.reopen().await;
    assert_eq!(reopened.settings().await.unwrap(), s);
}

#[tokio::test]
async fn file_is_wal_full_sync_with_foreign_keys() {
    let t = support::store().await;
    if !support::on_sqlite() {
        assert!(t.store.integrity_ok().await.unwrap());
        return; // SQLite's settings.
    }
    let (journal, sync, fk) = t.store.pragmas().await.unwrap();
    assert_eq!(journal, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert!(fk);
    assert!(t.store.integrity_ok().await.unwrap());
}

#[tokio::test]
async fn before_init_settings_are_not_found() {
    let t = support::empty().await;
    let store = &t.store;
    assert!(matches!(
        store.settings().await,
        Err(StoreError::NotFound(Entity::Settings))
    ));
    let new = NewDevice {
        name: "a".into(),
        group: "g".into(),
        public_key: key(1),
        routes: vec![],
    };
    assert!(matches!(
        store.add_device(&new, T0).await,
        Err(StoreError::NotFound(Entity::Settings))
    ));
    assert_eq!(store.event_seq().await.unwrap(), 0, "nothing committed");
}

#[tokio::test]
async fn bad_endpoint_is_refused() {
    let t = support::empty().await;
    let store = &t.store;
    let mut s = settings("10.64.0.0/16", None);
    s.endpoint = "no-port".into();
    assert!(matches!(
        store.init(&s).await,
        Err(StoreError::Invalid {
            field: Field::Endpoint,
            reason: Reason::BadFormat
        })
    ));
    assert!(store.settings().await.is_err());
}

#[tokio::test]
async fn missing_directory_is_a_database_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    assert!(matches!(
        SqlStore::open(&missing).await,
        Err(StoreError::Database(_))
    ));
}

#[tokio::test]
async fn values_changed_behind_the_store_are_corrupt_not_panics() {
    let t = support::store().await;
    let new = NewDevice {
        name: "a".into(),
        group: "g".into(),
        public_key: key(1),
        routes: vec![],
    };
    t.store.add_device(&new, T0).await.unwrap();
    sqlx::any::install_default_drivers();
    let url = match &t.url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", t.path().display()),
    };
    let raw = sqlx::AnyPool::connect(&url).await.unwrap();
    // The hub's own address is not a device address.
    sqlx::query("UPDATE devices SET ipv4_host = 70000")
        .execute(&raw)
        .await
        .unwrap();
    assert!(corrupt(t.store.device("a").await));
    assert!(corrupt(t.store.list_devices().await));
    sqlx::query("UPDATE devices SET ipv4_host = 2, endpoint = 'nowhere'")
        .execute(&raw)
        .await
        .unwrap();
    assert!(corrupt(t.store.device("a").await));
    sqlx::query("UPDATE devices SET endpoint = NULL")
        .execute(&raw)
        .await
        .unwrap();
    t.store.device("a").await.unwrap();
    sqlx::query("UPDATE events SET kind = 'from-the-future'")
        .execute(&raw)
        .await
        .unwrap();
    assert!(corrupt(t.store.events_since(0, 10).await));
    sqlx::query("UPDATE hub_settings SET pool4 = '10.64.0.1/16'")
        .execute(&raw)
        .await
        .unwrap();
    assert!(corrupt(t.store.settings().await));
    raw.close().await;
}

fn corrupt<T>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Corrupt(_)))
}

#[tokio::test]
async fn rotation_schedule_changes_and_counts_from_the_current_key() {
    let t = support::store().await;
    let day = 24 * 3600;
    let new = NewDevice {
        name: "a".into(),
        group: "g".into(),
        public_key: key(1),
        routes: vec![],
    };
    let d = t.store.add_device(&new, T0).await.unwrap();
    assert_eq!(d.key_since, T0);
    let s = t.store.settings().await.unwrap();
    assert_eq!(s.rotate_after, Some(90 * day));
    let later = |secs: u64| ferrowg_hub_store::UnixTime(T0.0 + secs as i64);
    assert!(!s.rotation_due(d.key_since, later(90 * day - 1)));
    assert!(s.rotation_due(d.key_since, later(90 * day)));

    let seq = t.store.event_seq().await.unwrap();
    let s = t.store.set_rotate_after(Some(60), T0).await.unwrap();
    assert_eq!(s.rotate_after, Some(60));
    assert_eq!(t.store.settings().await.unwrap(), s);
    assert!(t.store.event_seq().await.unwrap() > seq);
    assert!(s.rotation_due(d.key_since, later(60)));

    // A completed rotation restarts the count at the moment the next key was announced.
    let t1 = later(100);
    t.store.begin_rotation("a", &key(2), t1).await.unwrap();
    t.store
        .record_handshake(&key(2), later(101), None)
        .await
        .unwrap();
    let d = t.store.device("a").await.unwrap();
    assert_eq!((d.public_key, d.key_since), (key(2), t1));
    assert!(!s.rotation_due(d.key_since, later(159)));

    // No schedule: never due. Out of range: refused, nothing changed.
    let s = t.store.set_rotate_after(None, T0).await.unwrap();
    assert!(!s.rotation_due(d.key_since, later(100 * 365 * day)));
    for bad in [Some(0), Some(100 * 365 * day + 1), Some(u64::MAX)] {
        let seq = t.store.event_seq().await.unwrap();
        assert!(matches!(
            t.store.set_rotate_after(bad, T0).await,
            Err(StoreError::Invalid {
                field: Field::RotateAfter,
                reason: Reason::OutOfRange
            })
        ));
        assert_eq!(t.store.settings().await.unwrap().rotate_after, None);
        assert_eq!(t.store.event_seq().await.unwrap(), seq);
    }
}
