//! Shared by the store's integration tests: a store on a fresh file in a temporary directory,
//! initialised with the pools the examples use, and keys that differ per index.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ferrowg_hub_store::{HubSettings, HubStore, Pools, SqliteStore, UnixTime};

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

/// A temporary directory and a store in it, initialised with `settings`.
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub store: SqliteStore,
}

impl TestStore {
    /// The database file.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(ferrowg_hub_store::DB_FILE)
    }
}

/// A new store with pools `10.64.0.0/16` and `fd64::/64`.
pub async fn store() -> TestStore {
    store_with(settings("10.64.0.0/16", Some("fd64::/64"))).await
}

/// A new store initialised with `settings`.
pub async fn store_with(settings: HubSettings) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    store.init(&settings).await.unwrap();
    TestStore { dir, store }
}

/// Opens another handle on an existing file.
pub async fn reopen(path: &Path) -> SqliteStore {
    SqliteStore::open_file(path).await.unwrap()
}
