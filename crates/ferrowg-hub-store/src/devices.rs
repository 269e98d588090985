//! Devices: their rows, the insertion every enrolment and `device add` goes through, lookups by
//! name and by public key, revocation and deletion. Keys live in `device_keys` (current and the
//! pending next one, see [`crate::rotation`]), advertised routes in `device_routes` (see
//! [`crate::routes`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::addresses::{self, Pools};
use crate::error::{Conflict, Entity, Field, Result, StoreError};
use crate::events::{self, EventKind};
use crate::routes::{self, Route};
use crate::schema::{key_from_stored, parse_stored, Conn};
use crate::search_text;
use crate::settings;
use crate::time::UnixTime;
use crate::validate;

/// Where a device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceState {
    /// Enrolled or added, but it has not yet proved with a handshake that it holds the key; its
    /// group's rules do not apply yet.
    Pending,
    /// It has completed a handshake.
    Active,
    /// Revoked: the hub drops its sessions and keys; the row, its addresses and its keys stay
    /// reserved (a revoked key cannot enrol again) until the device is deleted.
    Revoked,
}

impl DeviceState {
    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "revoked" => Ok(Self::Revoked),
            _ => Err(StoreError::Corrupt("unknown device state")),
        }
    }
}

/// A device as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The name: unique, `[a-z0-9-]{1,63}`.
    pub name: String,
    /// The group (`tag:GROUP` in the policy).
    pub group: String,
    /// The current public key.
    pub public_key: [u8; 32],
    /// During a rotation, the next public key; both are valid until the next one's first
    /// handshake.
    pub next_public_key: Option<[u8; 32]>,
    /// The IPv4 address from the pool.
    pub ipv4: Ipv4Addr,
    /// The IPv6 address from the pool, if the hub has one.
    pub ipv6: Option<Ipv6Addr>,
    /// Pending, active or revoked.
    pub state: DeviceState,
    /// The enrolment token it was enrolled with (`None`: added by an admin).
    pub token_id: Option<String>,
    /// When it was enrolled or added.
    pub created_at: UnixTime,
    /// Since when its current key has been known to the hub (its age counts from here).
    pub key_since: UnixTime,
    /// When it was revoked.
    pub revoked_at: Option<UnixTime>,
    /// Its latest handshake with the hub.
    pub last_handshake: Option<UnixTime>,
    /// Where the hub last heard from it.
    pub endpoint: Option<SocketAddr>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
    /// Advertised routes, ordered by prefix text.
    pub routes: Vec<Route>,
    /// When an admin asked it to rotate its key; cleared by the first handshake of its next
    /// key (see [`crate::rotation`]).
    pub rotate_requested_at: Option<UnixTime>,
}

/// A device to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its public key (the device made the private key; the hub never sees it).
    pub public_key: [u8; 32],
    /// Routes it advertises, approved or not as the caller decided.
    pub routes: Vec<Route>,
}

impl NewDevice {
    /// Checks the name, the group and the routes.
    pub(crate) fn validate(&self) -> Result<()> {
        validate::name(Field::DeviceName, &self.name)?;
        validate::name(Field::Group, &self.group)?;
        validate::routes(self.routes.iter().map(|r| &r.prefix))
    }
}

/// The columns every device read selects, joined with its keys.
pub(crate) const SELECT_DEVICE: &str = "SELECT d.id, d.name, d.device_group, d.ipv4_host,
        d.ipv6_host, d.state, d.token_id, d.created_at, d.revoked_at, d.last_handshake,
        d.endpoint, d.rx_bytes, d.tx_bytes, d.rotate_requested_at,
        kc.public_key AS public_key, kc.added_at AS key_since,
        kn.public_key AS next_public_key
    FROM devices d
    JOIN device_keys kc ON kc.device_id = d.id AND kc.role = 'current'
    LEFT JOIN device_keys kn ON kn.device_id = d.id AND kn.role = 'next'";

/// A row of [`SELECT_DEVICE`].
#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    pub(crate) id: i64,
    name: String,
    device_group: String,
    ipv4_host: i64,
    ipv6_host: Option<i64>,
    state: String,
    token_id: Option<String>,
    created_at: i64,
    revoked_at: Option<i64>,
    last_handshake: Option<i64>,
    endpoint: Option<String>,
    rx_bytes: i64,
    tx_bytes: i64,
    rotate_requested_at: Option<i64>,
    public_key: Vec<u8>,
    key_since: i64,
    next_public_key: Option<Vec<u8>>,
}

impl DeviceRow {
    /// The device, with its `routes`.
    pub(crate) fn into_device(self, pools: &Pools, routes: Vec<Route>) -> Result<Device> {
        let endpoint = self
            .endpoint
            .map(|e| parse_stored(&e, "device endpoint"))
            .transpose()?;
        Ok(Device {
            name: self.name,
            group: self.device_group,
            public_key: key_from_stored(&self.public_key)?,
            next_public_key: self
                .next_public_key
                .map(|k| key_from_stored(&k))
                .transpose()?,
            ipv4: pools.v4_of(self.ipv4_host)?,
            ipv6: pools.v6_of(self.ipv6_host)?,
            state: DeviceState::parse(&self.state)?,
            token_id: self.token_id,
            created_at: UnixTime(self.created_at),
            key_since: UnixTime(self.key_since),
            revoked_at: self.revoked_at.map(UnixTime),
            last_handshake: self.last_handshake.map(UnixTime),
            endpoint,
            rx_bytes: u64::try_from(self.rx_bytes).unwrap_or(0),
            tx_bytes: u64::try_from(self.tx_bytes).unwrap_or(0),
            routes,
            rotate_requested_at: self.rotate_requested_at.map(UnixTime),
        })
    }
}

/// The database id of the device called `name`, with its state.
pub(crate) async fn id_of(conn: &mut Conn, name: &str) -> Result<(i64, DeviceState)> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT id, state FROM devices WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    let (id, state) = row.ok_or(StoreError::NotFound(Entity::Device))?;
    Ok((id, DeviceState::parse(&state)?))
}

/// Inserts a device (state pending) with addresses from the pools; `token_id` names the
/// enrolment token it used. Call inside a write transaction; a uniqueness violation from the
/// database means a concurrent writer took an address and the transaction should be retried.
pub(crate) async fn insert(
    conn: &mut Conn,
    new: &NewDevice,
    token_id: Option<&str>,
    now: UnixTime,
) -> Result<Device> {
    let name_taken: Option<(i64,)> = sqlx::query_as("SELECT id FROM devices WHERE name = $1")
        .bind(&new.name)
        .fetch_optional(&mut *conn)
        .await?;
    if name_taken.is_some() {
        return Err(StoreError::Conflict(Conflict::DeviceName));
    }
    if key_in_use(conn, &new.public_key).await? {
        return Err(StoreError::Conflict(Conflict::PublicKey));
    }
    events::record(conn, EventKind::DeviceAdded, &new.name, now).await?;
    let pools = settings::pools(conn).await?;
    let (v4, v6) = addresses::allocate(conn, &pools).await?;
    let (v4_text, v6_text) = search_text::address_texts(&pools, v4, v6)?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO devices (name, device_group, ipv4_host, ipv6_host, state, token_id,
            created_at, ipv4_text, ipv6_text)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8) RETURNING id",
    )
    .bind(&new.name)
    .bind(&new.group)
    .bind(v4)
    .bind(v6)
    .bind(token_id)
    .bind(now.0)
    .bind(v4_text)
    .bind(v6_text)
    .fetch_one(&mut *conn)
    .await?;
    insert_key(conn, id, &new.public_key, "current", now).await?;
    for route in &new.routes {
        routes::insert(conn, id, route).await?;
    }
    by_id(conn, &pools, id).await
}

/// Whether any device holds `key`, as current or next key (revoked devices included).
pub(crate) async fn key_in_use(conn: &mut Conn, key: &[u8; 32]) -> Result<bool> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT device_id FROM device_keys WHERE public_key = $1")
            .bind(key.as_slice())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.is_some())
}

/// Adds a key of `role` (`current` or `next`) to device `id`.
pub(crate) async fn insert_key(
    conn: &mut Conn,
    id: i64,
    key: &[u8; 32],
    role: &str,
    now: UnixTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO device_keys (public_key, device_id, role, added_at, key_text)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key.as_slice())
    .bind(id)
    .bind(role)
    .bind(now.0)
    .bind(search_text::key_text(key))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The device with database id `id`.
pub(crate) async fn by_id(conn: &mut Conn, pools: &Pools, id: i64) -> Result<Device> {
    let sql = format!("{SELECT_DEVICE} WHERE d.id = $1");
    let row: Option<DeviceRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let row = row.ok_or(StoreError::NotFound(Entity::Device))?;
    let own = routes::of_device(conn, id).await?;
    row.into_device(pools, own)
}

/// The device called `name`.
pub(crate) async fn by_name(conn: &mut Conn, name: &str) -> Result<Device> {
    let pools = settings::pools(conn).await?;
    let (id, _) = id_of(conn, name).await?;
    by_id(conn, &pools, id).await
}

/// Whether a key is a device's current key or the next one of a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The current key.
    Current,
    /// The pending next key.
    Next,
}

/// The device holding `key` (current or next), and which of its keys it is.
pub(crate) async fn by_key(conn: &mut Conn, key: &[u8; 32]) -> Result<(Device, KeyRole)> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT device_id, role FROM device_keys WHERE public_key = $1")
            .bind(key.as_slice())
            .fetch_optional(&mut *conn)
            .await?;
    let (id, role) = row.ok_or(StoreError::NotFound(Entity::Device))?;
    let role = match role.as_str() {
        "current" => KeyRole::Current,
        "next" => KeyRole::Next,
        _ => return Err(StoreError::Corrupt("unknown key role")),
    };
    let pools = settings::pools(conn).await?;
    Ok((by_id(conn, &pools, id).await?, role))
}

/// Every device, ordered by name.
pub(crate) async fn list(conn: &mut Conn) -> Result<Vec<Device>> {
    let pools = settings::pools(conn).await?;
    let mut rows: Vec<DeviceRow> = sqlx::query_as(SELECT_DEVICE).fetch_all(&mut *conn).await?;
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut by_device: HashMap<i64, Vec<Route>> = routes::all(conn).await?;
    rows.into_iter()
        .map(|row| {
            let own = by_device.remove(&row.id).unwrap_or_default();
            row.into_device(&pools, own)
        })
        .collect()
}

/// Revokes the device called `name`; revoking a revoked device changes nothing.
pub(crate) async fn revoke(conn: &mut Conn, name: &str, now: UnixTime) -> Result<Device> {
    let (id, state) = id_of(conn, name).await?;
    if state != DeviceState::Revoked {
        events::record(conn, EventKind::DeviceRevoked, name, now).await?;
        sqlx::query("UPDATE devices SET state = 'revoked', revoked_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now.0)
            .execute(&mut *conn)
            .await?;
    }
    by_name(conn, name).await
}

/// Deletes the device called `name` with its keys and routes; its addresses become free.
pub(crate) async fn delete(conn: &mut Conn, name: &str, now: UnixTime) -> Result<()> {
    let (id, _) = id_of(conn, name).await?;
    events::record(conn, EventKind::DeviceDeleted, name, now).await?;
    sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces the prefixes device `name` advertises (see [`routes::replace_advertised`]).
pub(crate) async fn set_advertised_routes(
    conn: &mut Conn,
    name: &str,
    prefixes: &[IpNet],
    auto_approved: &[IpNet],
    now: UnixTime,
) -> Result<Device> {
    let (id, state) = id_of(conn, name).await?;
    if state == DeviceState::Revoked {
        return Err(StoreError::Conflict(Conflict::DeviceRevoked));
    }
    routes::replace_advertised(conn, (id, name), prefixes, auto_approved, now).await?;
    by_name(conn, name).await
}

/// Approves or unapproves a prefix device `name` advertises (see [`routes::set_approval`]).
pub(crate) async fn set_route_approval(
    conn: &mut Conn,
    name: &str,
    prefix: &IpNet,
    approved: bool,
    now: UnixTime,
) -> Result<Device> {
    let (id, _) = id_of(conn, name).await?;
    routes::set_approval(conn, (id, name), prefix, approved, now).await?;
    by_name(conn, name).await
}

/// Sets or clears the mapped prefix of a route device `name` advertises (see
/// [`routes::set_map`]).
pub(crate) async fn set_route_map(
    conn: &mut Conn,
    name: &str,
    prefix: &IpNet,
    mapped: Option<&IpNet>,
    now: UnixTime,
) -> Result<Device> {
    let (id, _) = id_of(conn, name).await?;
    let pools = settings::pools(conn).await?;
    routes::set_map(conn, (id, name), prefix, mapped, &pools, now).await?;
    by_name(conn, name).await
}
