//! The change log. Every write that changes configuration takes the next sequence number from
//! the one-row `event_counter` and records what it changed; the hub's data plane remembers the
//! last number it applied and reloads what the newer events name. Sequence numbers are assigned
//! inside the write transaction, so they are in commit order and a rolled-back change leaves
//! none behind.
//!
//! Traffic statistics (last handshake, endpoint, byte counts) are observations the data plane
//! itself reports, not configuration: recording them makes no event.

use crate::error::{Field, Reason, Result, StoreError};
use crate::schema::Conn;
use crate::time::UnixTime;

/// What an event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// `init` wrote the hub settings (subject: the endpoint).
    HubInitialised,
    /// A device was enrolled or added (subject: its name).
    DeviceAdded,
    /// A pending device completed its first handshake (subject: its name).
    DeviceActivated,
    /// A device was revoked (subject: its name).
    DeviceRevoked,
    /// A device was deleted (subject: its name).
    DeviceDeleted,
    /// A device's next key was set or cleared (subject: its name).
    RotationChanged,
    /// A device's next key replaced its current one (subject: its name).
    KeyRotated,
    /// An admin asked a device to rotate its key (subject: its name).
    RotationRequested,
    /// A device's advertised routes or their approval changed (subject: its name).
    RoutesChanged,
    /// An enrolment token was created (subject: its identifier).
    TokenCreated,
    /// An enrolment token was revoked (subject: its identifier).
    TokenRevoked,
    /// An admin token was created (subject: its identifier).
    AdminTokenCreated,
    /// An admin token was revoked (subject: its identifier).
    AdminTokenRevoked,
    /// A new policy version was stored (subject: the version number).
    PolicySet,
    /// A setting changed (subject: its name).
    SettingsChanged,
}

impl EventKind {
    const ALL: [(Self, &'static str); 15] = [
        (Self::HubInitialised, "hub_initialised"),
        (Self::DeviceAdded, "device_added"),
        (Self::DeviceActivated, "device_activated"),
        (Self::DeviceRevoked, "device_revoked"),
        (Self::DeviceDeleted, "device_deleted"),
        (Self::RotationChanged, "rotation_changed"),
        (Self::KeyRotated, "key_rotated"),
        (Self::RotationRequested, "rotation_requested"),
        (Self::RoutesChanged, "routes_changed"),
        (Self::TokenCreated, "token_created"),
        (Self::TokenRevoked, "token_revoked"),
        (Self::AdminTokenCreated, "admin_token_created"),
        (Self::AdminTokenRevoked, "admin_token_revoked"),
        (Self::PolicySet, "policy_set"),
        (Self::SettingsChanged, "settings_changed"),
    ];

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("unknown", |(_, s)| s)
    }

    fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == text)
            .map(|(k, _)| *k)
            .ok_or(StoreError::Corrupt("unknown event kind"))
    }
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its sequence number: 1 for the first change, one more for each after it.
    pub seq: i64,
    /// What changed.
    pub kind: EventKind,
    /// The name or identifier of what changed.
    pub subject: String,
    /// When.
    pub at: UnixTime,
}

/// Most events one [`since`] call returns.
pub const MAX_EVENTS_PER_READ: u32 = 10_000;

/// Takes the next sequence number and records the change. Call inside the write transaction
/// that makes the change.
pub(crate) async fn record(
    conn: &mut Conn,
    kind: EventKind,
    subject: &str,
    now: UnixTime,
) -> Result<i64> {
    let (seq,): (i64,) =
        sqlx::query_as("UPDATE event_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq")
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query("INSERT INTO events (seq, kind, subject, at) VALUES ($1, $2, $3, $4)")
        .bind(seq)
        .bind(kind.as_str())
        .bind(subject)
        .bind(now.0)
        .execute(&mut *conn)
        .await?;
    Ok(seq)
}

/// The sequence number of the latest change (0 before the first).
pub(crate) async fn current(conn: &mut Conn) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM event_counter WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    Ok(seq)
}

/// The events after `after`, oldest first, at most `limit` (1 to [`MAX_EVENTS_PER_READ`]).
pub(crate) async fn since(conn: &mut Conn, after: i64, limit: u32) -> Result<Vec<Event>> {
    if limit == 0 || limit > MAX_EVENTS_PER_READ {
        return Err(StoreError::invalid(Field::Limit, Reason::OutOfRange));
    }
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT seq, kind, subject, at FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(seq, kind, subject, at)| {
            Ok(Event {
                seq,
                kind: EventKind::parse(&kind)?,
                subject,
                at: UnixTime(at),
            })
        })
        .collect()
}

/// Deletes the events up to and including `upto` (the counter keeps counting); returns how many.
pub(crate) async fn prune(conn: &mut Conn, upto: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM events WHERE seq <= $1")
        .bind(upto)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for (kind, name) in EventKind::ALL {
            assert_eq!(kind.as_str(), name);
            assert_eq!(EventKind::parse(name).unwrap(), kind);
        }
        assert!(EventKind::parse("nope").is_err());
    }
}
