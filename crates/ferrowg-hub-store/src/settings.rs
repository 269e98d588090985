//! The hub's settings, written by `ferrowg hub init`: the endpoint devices connect to, the
//! address pools, the hub's WireGuard public key, and the key-rotation schedule (the one
//! setting an admin changes later).

use crate::addresses::Pools;
use crate::error::{Conflict, Entity, Field, Reason, Result, StoreError};
use crate::events::{self, EventKind};
use crate::schema::{key_from_stored, parse_stored, Conn};
use crate::time::UnixTime;
use crate::validate;

/// The hub's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// Where devices reach the hub: `HOST:PORT`.
    pub endpoint: String,
    /// The address pools.
    pub pools: Pools,
    /// The hub's WireGuard public key.
    pub public_key: [u8; 32],
    /// When `init` ran (set by the store).
    pub created_at: UnixTime,
    /// How old a device's key may grow, in seconds, before the device rotates it on its own
    /// schedule; `None`: no schedule. Nothing ever disconnects a device whose key is older.
    pub rotate_after: Option<u64>,
}

/// The rotation schedule of a hub initialised without one: 90 days, in seconds.
pub const DEFAULT_ROTATE_AFTER: u64 = 90 * 24 * 3600;

/// The longest rotation schedule: 100 years, in seconds (it is stored as a signed 64-bit
/// number).
pub const MAX_ROTATE_AFTER: u64 = 100 * 365 * 24 * 3600;

impl HubSettings {
    /// Whether a key that has been current since `since` is due for rotation at `now`.
    pub fn rotation_due(&self, since: UnixTime, now: UnixTime) -> bool {
        self.rotate_after.is_some_and(|after| {
            u64::try_from(now.0.saturating_sub(since.0)).is_ok_and(|age| age >= after)
        })
    }
}

/// The stored form of a schedule: seconds, 0 for none; invalid [`Field::RotateAfter`] out of
/// range.
fn stored_rotate_after(rotate_after: Option<u64>) -> Result<i64> {
    match rotate_after {
        None => Ok(0),
        Some(secs @ 1..=MAX_ROTATE_AFTER) => Ok(i64::try_from(secs).unwrap_or(i64::MAX)),
        Some(_) => Err(StoreError::invalid(Field::RotateAfter, Reason::OutOfRange)),
    }
}

/// The `hub_settings` columns: endpoint, pool4, pool6, public key, creation time, rotation
/// schedule.
type SettingsRow = (String, String, Option<String>, Vec<u8>, i64, i64);

/// Stores the settings; [`Conflict::AlreadyInitialised`] if they exist.
pub(crate) async fn init(conn: &mut Conn, settings: &HubSettings) -> Result<()> {
    validate::endpoint(&settings.endpoint)?;
    let rotate_after = stored_rotate_after(settings.rotate_after)?;
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM hub_settings WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(Conflict::AlreadyInitialised));
    }
    events::record(
        conn,
        EventKind::HubInitialised,
        &settings.endpoint,
        settings.created_at,
    )
    .await?;
    sqlx::query(
        "INSERT INTO hub_settings (id, endpoint, pool4, pool6, public_key, created_at,
            rotate_after)
         VALUES (1, $1, $2, $3, $4, $5, $6)",
    )
    .bind(&settings.endpoint)
    .bind(settings.pools.v4().to_string())
    .bind(settings.pools.v6().map(|n| n.to_string()))
    .bind(settings.public_key.as_slice())
    .bind(settings.created_at.0)
    .bind(rotate_after)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets the rotation schedule (`None`: none) and returns the settings.
pub(crate) async fn set_rotate_after(
    conn: &mut Conn,
    rotate_after: Option<u64>,
    now: UnixTime,
) -> Result<HubSettings> {
    let stored = stored_rotate_after(rotate_after)?;
    load(conn).await?;
    events::record(conn, EventKind::SettingsChanged, "rotate_after", now).await?;
    sqlx::query("UPDATE hub_settings SET rotate_after = $1 WHERE id = 1")
        .bind(stored)
        .execute(&mut *conn)
        .await?;
    load(conn).await
}

/// The settings, or [`Entity::Settings`] not found before `init`.
pub(crate) async fn load(conn: &mut Conn) -> Result<HubSettings> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT endpoint, pool4, pool6, public_key, created_at, rotate_after
         FROM hub_settings WHERE id = 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (endpoint, pool4, pool6, key, created_at, rotate_after) =
        row.ok_or(StoreError::NotFound(Entity::Settings))?;
    let v4 = parse_stored(&pool4, "IPv4 pool")?;
    let v6 = pool6.map(|p| parse_stored(&p, "IPv6 pool")).transpose()?;
    let pools = Pools::new(v4, v6).map_err(|_| StoreError::Corrupt("address pools"))?;
    Ok(HubSettings {
        endpoint,
        pools,
        public_key: key_from_stored(&key)?,
        created_at: UnixTime(created_at),
        rotate_after: u64::try_from(rotate_after).ok().filter(|&s| s > 0),
    })
}

/// The address pools (the part of the settings every device operation needs).
pub(crate) async fn pools(conn: &mut Conn) -> Result<Pools> {
    Ok(load(conn).await?.pools)
}
