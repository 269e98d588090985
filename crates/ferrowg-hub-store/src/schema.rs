//! The database file, its settings and its schema migrations: the one file that names the
//! database backend. Query modules take a [`Conn`] and use only SQL that SQLite and PostgreSQL
//! share (`$N` parameters, `RETURNING`, no backend functions), so that the PostgreSQL backend
//! can run the same statements.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{Result, StoreError};

/// A connection of the backend the query modules run on.
pub(crate) type Conn = sqlx::SqliteConnection;

/// The database file's name inside the hub's data directory.
pub const DB_FILE: &str = "hub.db";

/// How long a writer waits for another process's write lock before failing with
/// [`StoreError::Database`]. Writers of one [`crate::SqliteStore`] queue in the process and
/// never wait here for each other.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections in the pool: one writer at a time, readers beside it (WAL).
const MAX_CONNECTIONS: u32 = 8;

/// The schema, embedded at build time from `migrations/sqlite/`.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Opens (creating it if missing) the database file at `path`: WAL journal, `synchronous=FULL`
/// (a commit is on disk before it returns, also in WAL mode), foreign keys enforced, and every
/// pending migration applied.
pub(crate) async fn open(path: &Path) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Runs SQLite's `PRAGMA integrity_check` and reports whether it answered `ok`.
pub(crate) async fn integrity_ok(pool: &SqlitePool) -> Result<bool> {
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(pool)
        .await?;
    Ok(rows.len() == 1 && rows[0].0 == "ok")
}

/// The connection's settings as SQLite reports them: journal mode, `synchronous` (2 is FULL)
/// and `foreign_keys`.
pub(crate) async fn pragmas(pool: &SqlitePool) -> Result<(String, i64, bool)> {
    let mut conn = pool.acquire().await?;
    let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?;
    let (fk,): (bool,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await?;
    Ok((journal, sync, fk))
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
