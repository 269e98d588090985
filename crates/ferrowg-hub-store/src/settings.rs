//! The hub's settings, written once by `ferrowg hub init`: the endpoint devices connect to,
//! the address pools and the hub's WireGuard public key.

use crate::addresses::Pools;
use crate::error::{Conflict, Entity, Result, StoreError};
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
}

/// The `hub_settings` columns: endpoint, pool4, pool6, public key, creation time.
type SettingsRow = (String, String, Option<String>, Vec<u8>, i64);

/// Stores the settings; [`Conflict::AlreadyInitialised`] if they exist.
pub(crate) async fn init(conn: &mut Conn, settings: &HubSettings) -> Result<()> {
    validate::endpoint(&settings.endpoint)?;
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
        "INSERT INTO hub_settings (id, endpoint, pool4, pool6, public_key, created_at)
         VALUES (1, $1, $2, $3, $4, $5)",
    )
    .bind(&settings.endpoint)
    .bind(settings.pools.v4().to_string())
    .bind(settings.pools.v6().map(|n| n.to_string()))
    .bind(settings.public_key.as_slice())
    .bind(settings.created_at.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The settings, or [`Entity::Settings`] not found before `init`.
pub(crate) async fn load(conn: &mut Conn) -> Result<HubSettings> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT endpoint, pool4, pool6, public_key, created_at FROM hub_settings WHERE id = 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let (endpoint, pool4, pool6, key, created_at) =
        row.ok_or(StoreError::NotFound(Entity::Settings))?;
    let v4 = parse_stored(&pool4, "IPv4 pool")?;
    let v6 = pool6.map(|p| parse_stored(&p, "IPv6 pool")).transpose()?;
    let pools = Pools::new(v4, v6).map_err(|_| StoreError::Corrupt("address pools"))?;
    Ok(HubSettings {
        endpoint,
        pools,
        public_key: key_from_stored(&key)?,
        created_at: UnixTime(created_at),
    })
}

/// The address pools (the part of the settings every device operation needs).
pub(crate) async fn pools(conn: &mut Conn) -> Result<Pools> {
    Ok(load(conn).await?.pools)
}
