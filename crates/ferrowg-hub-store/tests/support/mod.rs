//! Shared by the store's integration tests: a store on a fresh database of the backend
//! `FERROWG_TEST_DATABASE` selects (an SQLite file in a temporary directory, or a new database
//! on the test process's PostgreSQL server), initialised with the pools the examples
//! use, and keys that differ per index.

#![allow(dead_code)]

use std::path::PathBuf;

use ferrowg_hub_store::{HubSettings, HubStore, Pools, SqlStore, UnixTime};
use ferrowg_testkit::postgres::{self, TestBackend};

/// The time tests start at.
pub const T0: UnixTime = UnixTime(1_800_000_000);

/// A distinct, valid-looking 32-byte public key for index `i`.
pub fn key(i: u32) -> [u8; 32] {
    let mut k = [0x5a; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k
}

/// Hub settings with an IPv4 pool and an optional IPv6 pool.
pub fn settings(pool4: &str, pool6: Option<&str>) -> HubSettings {
    HubSettings {
        endpoint: "hub.example.com:51820".into(),
        pools: Pools::new(pool4.parse().unwrap(), pool6.map(|p| p.parse().unwrap())).unwrap(),
        public_key: [7; 32],
        created_at: T0,
        rotate_after: Some(ferrowg_hub_store::settings::DEFAULT_ROTATE_AFTER),
    }
}

/// A temporary directory and a store on a fresh database, initialised with `settings`.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: SqlStore,
    /// The PostgreSQL database's URL; `None` for SQLite (the file in `dir`).
    pub url: Option<String>,
}

impl TestStore {
    /// The SQLite database file (SQLite only).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(ferrowg_hub_store::DB_FILE)
    }

    /// Another handle on the same database.
    pub async fn reopen(&self) -> SqlStore {
        SqlStore::open_in(self.dir.path(), self.url.as_deref())
            .await
            .unwrap()
    }
}

/// Whether the tests run on SQLite (some check SQLite's file and settings).
pub fn on_sqlite() -> bool {
    postgres::backend() == TestBackend::Sqlite
}

/// A fresh, uninitialised store on the selected backend.
pub async fn empty() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = (!on_sqlite()).then(postgres::database_url);
    let store = SqlStore::open_in(dir.path(), url.as_deref()).await.unwrap();
    TestStore { dir, store, url }
}

/// A new store with pools `10.64.0.0/16` and `fd64::/64`.
pub async fn store() -> TestStore {
    store_with(settings("10.64.0.0/16", Some("fd64::/64"))).await
}

/// A new store initialised with `settings`.
pub async fn store_with(settings: HubSettings) -> TestStore {
    let t = empty().await;
    t.store.init(&settings).await.unwrap();
    t
}
