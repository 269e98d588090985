//! Key rotation and the handshakes that complete it. A device that rotates announces its next
//! public key; from then on both keys are valid, and the first handshake with the next key makes
//! it the current one and drops the old one. Nothing here ever expires a key: a device is never
//! disconnected by the passing of time. The first handshake of a pending device (with either
//! key) makes it active. An admin may ask a device to rotate ([`request`]): the request stands
//! until the first handshake of a next key completes a rotation.

use std::net::SocketAddr;

use crate::devices::{self, Device, DeviceState, KeyRole};
use crate::error::{Conflict, Entity, Result, StoreError};
use crate::events::{self, EventKind};
use crate::schema::Conn;
use crate::time::UnixTime;

/// What a recorded handshake changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeOutcome {
    /// The device after the change.
    pub device: Device,
    /// It was pending and is now active.
    pub activated: bool,
    /// The handshake used its next key, which is now its current key (the old one is gone).
    pub rotated: bool,
}

/// Sets `key` as the next key of device `name` (replacing an earlier next key). Announcing the
/// pending next key again changes nothing.
pub(crate) async fn begin(
    conn: &mut Conn,
    name: &str,
    key: &[u8; 32],
    now: UnixTime,
) -> Result<Device> {
    let device = devices::by_name(conn, name).await?;
    if device.state == DeviceState::Revoked {
        return Err(StoreError::Conflict(Conflict::DeviceRevoked));
    }
    if device.next_public_key.as_ref() == Some(key) {
        return Ok(device);
    }
    if devices::key_in_use(conn, key).await? {
        return Err(StoreError::Conflict(Conflict::PublicKey));
    }
    let (id, _) = devices::id_of(conn, name).await?;
    events::record(conn, EventKind::RotationChanged, name, now).await?;
    delete_next(conn, id).await?;
    devices::insert_key(conn, id, key, "next", now).await?;
    devices::by_name(conn, name).await
}

/// Drops the pending next key of device `name`; [`Entity::Rotation`] not found if none.
pub(crate) async fn cancel(conn: &mut Conn, name: &str, now: UnixTime) -> Result<Device> {
    let (id, _) = devices::id_of(conn, name).await?;
    events::record(conn, EventKind::RotationChanged, name, now).await?;
    if delete_next(conn, id).await? == 0 {
        return Err(StoreError::NotFound(Entity::Rotation));
    }
    devices::by_name(conn, name).await
}

/// Asks device `name` to rotate its key (it sees the request as its rotation being due);
/// asking again while a request stands changes nothing. A revoked device is a conflict.
pub(crate) async fn request(conn: &mut Conn, name: &str, now: UnixTime) -> Result<Device> {
    let device = devices::by_name(conn, name).await?;
    if device.state == DeviceState::Revoked {
        return Err(StoreError::Conflict(Conflict::DeviceRevoked));
    }
    if device.rotate_requested_at.is_some() {
        return Ok(device);
    }
    events::record(conn, EventKind::RotationRequested, name, now).await?;
    sqlx::query("UPDATE devices SET rotate_requested_at = $2 WHERE name = $1")
        .bind(name)
        .bind(now.0)
        .execute(&mut *conn)
        .await?;
    devices::by_name(conn, name).await
}

async fn delete_next(conn: &mut Conn, id: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM device_keys WHERE device_id = $1 AND role = 'next'")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Records a completed handshake with `key` at `at` from `endpoint`: activates a pending device,
/// completes a rotation when `key` is the next key, and updates the last-seen fields.
pub(crate) async fn handshake(
    conn: &mut Conn,
    key: &[u8; 32],
    at: UnixTime,
    endpoint: Option<SocketAddr>,
) -> Result<HandshakeOutcome> {
    let (device, role) = devices::by_key(conn, key).await?;
    if device.state == DeviceState::Revoked {
        return Err(StoreError::Conflict(Conflict::DeviceRevoked));
    }
    let (id, _) = devices::id_of(conn, &device.name).await?;
    let rotated = role == KeyRole::Next;
    if rotated {
        events::record(conn, EventKind::KeyRotated, &device.name, at).await?;
        sqlx::query("DELETE FROM device_keys WHERE device_id = $1 AND role = 'current'")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE device_keys SET role = 'current' WHERE public_key = $1")
            .bind(key.as_slice())
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE devices SET rotate_requested_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let activated = device.state == DeviceState::Pending;
    if activated {
        events::record(conn, EventKind::DeviceActivated, &device.name, at).await?;
    }
    sqlx::query(
        "UPDATE devices SET state = 'active', last_handshake = $2,
            endpoint = COALESCE($3, endpoint)
         WHERE id = $1",
    )
    .bind(id)
    .bind(at.0)
    .bind(endpoint.map(|e| e.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(HandshakeOutcome {
        device: devices::by_name(conn, &device.name).await?,
        activated,
        rotated,
    })
}
