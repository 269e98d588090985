//! The database, its settings and its schema migrations: the one file that names the database
//! backends. Query modules take a [`Conn`] (sqlx's `Any` connection) and use only SQL that
//! SQLite and PostgreSQL share (`$N` parameters, `RETURNING`, no backend functions), so both
//! backends run the same statements.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;
use sqlx::Executor as _;

use crate::error::{Result, StoreError};

/// A connection of the backend the query modules run on (SQLite or PostgreSQL, chosen when
/// the store is opened).
pub(crate) type Conn = sqlx::AnyConnection;

/// The database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in the hub's data directory.
    Sqlite,
    /// A PostgreSQL database that several hub nodes may share.
    Postgres,
}

/// The database file's name inside the hub's data directory.
pub const DB_FILE: &str = "hub.db";

/// How long a writer waits for another process's write lock before failing with
/// [`StoreError::Database`]. Writers of one [`crate::SqlStore`] queue in the process and
/// never wait here for each other.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long opening a connection may take (a PostgreSQL server that does not answer).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections in the pool: one writer at a time, readers beside it (WAL).
const MAX_CONNECTIONS: u32 = 8;

/// The SQLite schema, embedded at build time from `migrations/sqlite/`.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL schema (the same tables, columns and constraints), from
/// `migrations/postgres/`.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Opens (creating it if missing) the SQLite file at `path` with every pending migration
/// applied. Every connection: WAL journal, `synchronous=FULL` (a commit is on disk before it
/// returns, also in WAL mode), foreign keys enforced, and a bounded wait for the write lock.
pub(crate) async fn open_sqlite(path: &Path) -> Result<AnyPool> {
    let text = path
        .to_str()
        .filter(|t| !t.contains(['?', '#']))
        .ok_or(StoreError::Corrupt(
            "the database path is not plain UTF-8 without ? or #",
        ))?;
    let url = format!("sqlite://{text}?mode=rwc");
    let pool = pool(&url, Backend::Sqlite).await?;
    SQLITE_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Connects to the PostgreSQL database at `url` (`postgres://…`) and applies every pending
/// migration (under PostgreSQL's migration lock, so nodes starting together take turns).
pub(crate) async fn open_postgres(url: &str) -> Result<AnyPool> {
    let pool = pool(url, Backend::Postgres).await?;
    POSTGRES_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

async fn pool(url: &str, backend: Backend) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url)?;
    let mut pool = AnyPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT);
    if backend == Backend::Sqlite {
        let settings: Arc<str> = Arc::from(format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA busy_timeout = {};",
            BUSY_TIMEOUT.as_millis()
        ));
        pool = pool.after_connect(move |conn, _| {
            let settings = settings.clone();
            Box::pin(async move {
                conn.execute(&*settings).await?;
                Ok(())
            })
        });
    }
    Ok(pool.connect_with(options).await?)
}

/// Runs SQLite's `PRAGMA integrity_check` and reports whether it answered `ok`.
pub(crate) async fn integrity_ok(pool: &AnyPool) -> Result<bool> {
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(pool)
        .await?;
    Ok(rows.len() == 1 && rows[0].0 == "ok")
}

/// The connection's settings as SQLite reports them: journal mode, `synchronous` (2 is FULL)
/// and `foreign_keys`.
pub(crate) async fn pragmas(pool: &AnyPool) -> Result<(String, i64, bool)> {
    let mut conn = pool.acquire().await?;
    let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?;
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await?;
    Ok((journal, sync, fk == 1))
}

/// A store path from a data directory.
pub(crate) fn db_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join(DB_FILE)
}

/// Parses a value this crate wrote itself (pool prefixes, route prefixes, endpoints); a value
/// that does not parse was changed outside the store.
pub(crate) fn parse_stored<T: FromStr>(text: &str, what: &'static str) -> Result<T> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

/// A 32-byte key read from a BLOB column.
pub(crate) fn key_from_stored(bytes: &[u8]) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("public key is not 32 bytes"))
}
