//! [`SqlStore`]: the [`HubStore`] on an SQLite file in the hub's data directory, or on a
//! PostgreSQL database that several hub nodes share.
//!
//! Writes: the writers of one store queue on an in-process mutex (fair, so 200 concurrent
//! enrolments are served in turn instead of spinning on SQLite's busy handler), then run in a
//! transaction that takes the database's write lock before its first read, so what a
//! transaction reads (the lowest free address, uses left) cannot change under it, also against
//! another process or hub node: SQLite's `BEGIN IMMEDIATE`; on PostgreSQL, the row lock of the
//! change counter (`SELECT … FOR UPDATE`), which every write takes. The transaction commits
//! before the operation returns: SQLite with `synchronous=FULL`, PostgreSQL with its default
//! `synchronous_commit`, so a returned operation survives `kill -9` and power loss. Device
//! insertions are retried when the database reports a uniqueness violation (which the write
//! lock makes impossible; it is the safety net).
//!
//! Reads run in one snapshot beside the writer: a deferred transaction on SQLite (WAL),
//! `REPEATABLE READ READ ONLY` on PostgreSQL.

use std::net::SocketAddr;
use std::path::Path;

use async_trait::async_trait;
use ipnet::IpNet;
use sqlx::any::Any;
use sqlx::AnyPool;
use sqlx::Transaction;
use tokio::sync::Mutex;

use crate::admin::{self, AdminToken, Scope};
use crate::device_query::{self, DevicePage, DeviceQuery};
use crate::devices::{self, Device, KeyRole, NewDevice};
use crate::error::{Conflict, Result, StoreError};
use crate::events::{self, Event};
use crate::groups::{self, GroupSummary};
use crate::nodes::{self, HubNode};
use crate::policy::{self, PolicyVersion};
use crate::rotation::{self, HandshakeOutcome};
use crate::routes::{self, Route};
use crate::schema::{self, Backend, Conn};
use crate::search_text;
use crate::secret::Credential;
use crate::settings::{self, HubSettings};
use crate::stats::{self, DeviceStats};
use crate::store::HubStore;
use crate::time::UnixTime;
use crate::tokens::{self, Enrolment, EnrolmentToken, NewToken};
use crate::validate;

/// How often a device insertion is tried when the database reports a uniqueness violation.
const INSERT_ATTEMPTS: u32 = 8;

/// The hub's store on SQLite or PostgreSQL.
#[derive(Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL database's URL (for its change notifications).
    url: Option<String>,
    writer: Mutex<()>,
}

/// The PostgreSQL channel every recorded change is announced on (`migrations/postgres/0004`).
const CHANGES_CHANNEL: &str = "ferrowg_hub_events";

/// How long [`SqlStore::forward_changes`] waits before listening again after a failure.
const LISTEN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `$body` (an expression using `$conn: &mut Conn` that yields a future of a `Result`) in
/// a write transaction, committed if it succeeds and rolled back if not.
macro_rules! write_tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let _writer = $store.writer.lock().await;
        let mut tx = $store.begin_write().await?;
        let result = {
            let $conn: &mut Conn = &mut tx;
            $body.await
        };
        finish(tx, result).await
    }};
}

/// As [`write_tx`], retried while the database reports a uniqueness violation (a concurrent
/// writer took the address); a violation that persists is [`Conflict::Address`].
macro_rules! insert_tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let _writer = $store.writer.lock().await;
        let mut attempt = 1;
        loop {
            let mut tx = $store.begin_write().await?;
            let result = {
                let $conn: &mut Conn = &mut tx;
                $body.await
            };
            match finish(tx, result).await {
                Err(e) if e.is_unique_violation() && attempt < INSERT_ATTEMPTS => attempt += 1,
                Err(e) if e.is_unique_violation() => {
                    break Err(StoreError::Conflict(Conflict::Address));
                }
                other => break other,
            }
        }
    }};
}

/// Runs `$body` in a read transaction (one snapshot).
macro_rules! read_tx {
    ($store:expr, |$conn:ident| $body:expr) => {{
        let mut tx = $store.begin_read().await?;
        let result = {
            let $conn: &mut Conn = &mut tx;
            $body.await
        };
        finish(tx, result).await
    }};
}

/// Commits on success, rolls back on failure (a failed rollback closes the connection, which
/// rolls back too).
async fn finish<T>(tx: Transaction<'static, Any>, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

impl SqlStore {
    /// Opens the store in the hub's data directory (the SQLite file [`schema::DB_FILE`],
    /// created if missing; the directory must exist), applying pending migrations.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_file(&schema::db_path(data_dir)).await
    }

    /// Opens the store in the SQLite file at `path` (created if missing).
    pub async fn open_file(path: &Path) -> Result<Self> {
        let pool = schema::open_sqlite(path).await?;
        Self::new(pool, Backend::Sqlite, None).ready().await
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://USER@HOST:PORT/DB`),
    /// applying pending migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = schema::open_postgres(url).await?;
        Self::new(pool, Backend::Postgres, Some(url.to_owned()))
            .ready()
            .await
    }

    /// The store named by `database` (a `postgres://` or `postgresql://` URL), or else the
    /// SQLite file in `data_dir`.
    pub async fn open_in(data_dir: &Path, database: Option<&str>) -> Result<Self> {
        match database {
            Some(url) => Self::connect(url).await,
            None => Self::open(data_dir).await,
        }
    }

    fn new(pool: AnyPool, backend: Backend, url: Option<String>) -> Self {
        Self {
            pool,
            backend,
            url,
            writer: Mutex::new(()),
        }
    }

    /// The store once the search texts of rows from before they existed are written (see
    /// [`search_text::fill_search_text`]).
    async fn ready(self) -> Result<Self> {
        let filled = write_tx!(self, |c| search_text::fill_search_text(c))?;
        if filled > 0 {
            log::info!("store: wrote the search text of {filled} devices and keys");
        }
        Ok(self)
    }

    /// The database it runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database finds itself sound: SQLite's `PRAGMA integrity_check`; on
    /// PostgreSQL, whether it answers.
    pub async fn integrity_ok(&self) -> Result<bool> {
        match self.backend {
            Backend::Sqlite => schema::integrity_ok(&self.pool).await,
            Backend::Postgres => {
                let (one,): (i64,) = sqlx::query_as("SELECT CAST(1 AS BIGINT)")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(one == 1)
            }
        }
    }

    /// The SQLite connection settings in force: journal mode, `synchronous` (2 is FULL) and
    /// whether foreign keys are enforced. SQLite only.
    pub async fn pragmas(&self) -> Result<(String, i64, bool)> {
        schema::pragmas(&self.pool).await
    }

    /// Waits for running operations and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                let locked = sqlx::query("SELECT seq FROM event_counter WHERE id = 1 FOR UPDATE")
                    .execute(&mut *tx)
                    .await;
                match locked {
                    Ok(_) => Ok(tx),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(e.into())
                    }
                }
            }
        }
    }

    async fn begin_read(&self) -> Result<Transaction<'static, Any>> {
        let statement = match self.backend {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        };
        Ok(self.pool.begin_with(statement).await?)
    }
}

/// Listens on [`CHANGES_CHANNEL`] and pokes `changed` for every notification, until the
/// connection fails.
async fn listen(url: &str, changed: &tokio::sync::Notify) -> Result<()> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    changed.notify_one();
    loop {
        match listener.try_recv().await? {
            Some(_) => changed.notify_one(),
            None => return Ok(()), // The connection was lost.
        }
    }
}

#[async_trait]
impl HubStore for SqlStore {
    /// On PostgreSQL, a task that pokes `changed` (`notify_one`) whenever any hub node records
    /// a change, and once after every reconnection (notifications sent while the connection
    /// was down are lost, so the caller reads the events again); `None` on SQLite, where every
    /// writer is in this process.
    fn forward_changes(
        &self,
        changed: std::sync::Arc<tokio::sync::Notify>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.url.clone()?;
        Some(tokio::spawn(async move {
            loop {
                if let Err(e) = listen(&url, &changed).await {
                    log::warn!("listening for the hub's changes: {e}");
                }
                changed.notify_one();
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        }))
    }

    async fn init(&self, settings: &HubSettings) -> Result<()> {
        write_tx!(self, |c| settings::init(c, settings))
    }

    async fn settings(&self) -> Result<HubSettings> {
        read_tx!(self, |c| settings::load(c))
    }

    async fn set_rotate_after(
        &self,
        rotate_after: Option<u64>,
        now: UnixTime,
    ) -> Result<HubSettings> {
        write_tx!(self, |c| settings::set_rotate_after(c, rotate_after, now))
    }

    async fn create_token(
        &self,
        new: &NewToken,
        now: UnixTime,
    ) -> Result<(EnrolmentToken, Credential)> {
        tokens::validate_new(new, now)?;
        write_tx!(self, |c| tokens::create(c, new, now))
    }

    async fn token(&self, id: &str) -> Result<EnrolmentToken> {
        read_tx!(self, |c| tokens::get(c, id))
    }

    async fn list_tokens(&self) -> Result<Vec<EnrolmentToken>> {
        read_tx!(self, |c| tokens::list(c))
    }

    async fn revoke_token(&self, id: &str, now: UnixTime) -> Result<EnrolmentToken> {
        write_tx!(self, |c| tokens::revoke(c, id, now))
    }

    async fn redeem(
        &self,
        credential: &Credential,
        enrolment: &Enrolment,
        now: UnixTime,
    ) -> Result<Device> {
        enrolment.validate()?;
        insert_tx!(self, |c| tokens::redeem(c, credential, enrolment, now))
    }

    async fn add_device(&self, new: &NewDevice, now: UnixTime) -> Result<Device> {
        new.validate()?;
        insert_tx!(self, |c| devices::insert(c, new, None, now))
    }

    async fn device(&self, name: &str) -> Result<Device> {
        read_tx!(self, |c| devices::by_name(c, name))
    }

    async fn device_by_key(&self, key: &[u8; 32]) -> Result<(Device, KeyRole)> {
        read_tx!(self, |c| devices::by_key(c, key))
    }

    async fn list_devices(&self) -> Result<Vec<Device>> {
        read_tx!(self, |c| devices::list(c))
    }

    async fn query_devices(
        &self,
        query: &DeviceQuery,
        online_since: UnixTime,
    ) -> Result<DevicePage> {
        query.validate()?;
        read_tx!(self, |c| device_query::page(c, query, online_since))
    }

    async fn group_summary(&self, now: UnixTime, online_within: i64) -> Result<Vec<GroupSummary>> {
        let online_since = UnixTime(now.0.saturating_sub(online_within));
        read_tx!(self, |c| groups::summary(c, now, online_since))
    }

    async fn approved_routes(&self) -> Result<Vec<(String, Route)>> {
        read_tx!(self, |c| routes::approved(c))
    }

    async fn revoke_device(&self, name: &str, now: UnixTime) -> Result<Device> {
        write_tx!(self, |c| devices::revoke(c, name, now))
    }

    async fn delete_device(&self, name: &str, now: UnixTime) -> Result<()> {
        write_tx!(self, |c| devices::delete(c, name, now))
    }

    async fn begin_rotation(&self, name: &str, key: &[u8; 32], now: UnixTime) -> Result<Device> {
        write_tx!(self, |c| rotation::begin(c, name, key, now))
    }

    async fn request_rotation(&self, name: &str, now: UnixTime) -> Result<Device> {
        write_tx!(self, |c| rotation::request(c, name, now))
    }

    async fn cancel_rotation(&self, name: &str, now: UnixTime) -> Result<Device> {
        write_tx!(self, |c| rotation::cancel(c, name, now))
    }

    async fn record_handshake(
        &self,
        key: &[u8; 32],
        at: UnixTime,
        endpoint: Option<SocketAddr>,
    ) -> Result<HandshakeOutcome> {
        write_tx!(self, |c| rotation::handshake(c, key, at, endpoint))
    }

    async fn record_stats(&self, entries: &[DeviceStats]) -> Result<u64> {
        write_tx!(self, |c| stats::record(c, entries))
    }

    async fn set_advertised_routes(
        &self,
        name: &str,
        prefixes: &[IpNet],
        auto_approved: &[IpNet],
        now: UnixTime,
    ) -> Result<Device> {
        validate::routes(prefixes.iter())?;
        write_tx!(self, |c| devices::set_advertised_routes(
            c,
            name,
            prefixes,
            auto_approved,
            now
        ))
    }

    async fn set_route_approval(
        &self,
        name: &str,
        prefix: &IpNet,
        approved: bool,
        now: UnixTime,
    ) -> Result<Device> {
        validate::route(prefix)?;
        write_tx!(self, |c| devices::set_route_approval(
            c, name, prefix, approved, now
        ))
    }

    async fn set_route_map(
        &self,
        name: &str,
        prefix: &IpNet,
        mapped: Option<&IpNet>,
        now: UnixTime,
    ) -> Result<Device> {
        write_tx!(self, |c| devices::set_route_map(
            c, name, prefix, mapped, now
        ))
    }

    async fn create_admin_token(
        &self,
        scope: Scope,
        label: &str,
        expires_at: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<(AdminToken, Credential)> {
        admin::validate_new(label, expires_at, now)?;
        write_tx!(self, |c| admin::create(c, scope, label, expires_at, now))
    }

    async fn authenticate_admin(
        &self,
        credential: &Credential,
        now: UnixTime,
    ) -> Result<AdminToken> {
        read_tx!(self, |c| admin::authenticate(c, credential, now))
    }

    async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        read_tx!(self, |c| admin::list(c))
    }

    async fn revoke_admin_token(&self, id: &str, now: UnixTime) -> Result<AdminToken> {
        write_tx!(self, |c| admin::revoke(c, id, now))
    }

    async fn set_policy(&self, text: &str, now: UnixTime) -> Result<PolicyVersion> {
        validate::policy_text(text)?;
        write_tx!(self, |c| policy::set(c, text, now))
    }

    async fn policy(&self) -> Result<Option<PolicyVersion>> {
        read_tx!(self, |c| policy::current(c))
    }

    async fn policy_history(&self, limit: u32) -> Result<Vec<PolicyVersion>> {
        read_tx!(self, |c| policy::history(c, limit))
    }

    async fn heartbeat(&self, node: &HubNode) -> Result<()> {
        node.validate()?;
        write_tx!(self, |c| nodes::heartbeat(c, node))
    }

    async fn list_nodes(&self) -> Result<Vec<HubNode>> {
        read_tx!(self, |c| nodes::list(c))
    }

    async fn event_seq(&self) -> Result<i64> {
        read_tx!(self, |c| events::current(c))
    }

    async fn events_since(&self, after: i64, limit: u32) -> Result<Vec<Event>> {
        read_tx!(self, |c| events::since(c, after, limit))
    }

    async fn prune_events(&self, upto: i64) -> Result<u64> {
        write_tx!(self, |c| events::prune(c, upto))
    }
}
