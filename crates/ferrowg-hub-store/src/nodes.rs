//! The hub nodes sharing the store: each running node writes its own row (its name, API
//! address, version, start time, and what its data plane sees) every few seconds. A heartbeat
//! is an observation, not configuration: it makes no event (see [`crate::events`]).

use crate::error::{Field, Reason, Result, StoreError};
use crate::schema::Conn;
use crate::time::UnixTime;

/// Longest node name, in bytes (a DNS name's length).
pub const MAX_NODE_NAME: usize = 253;
/// Longest API address or version text, in bytes.
pub const MAX_NODE_DETAIL: usize = 512;

/// A hub node, as its latest heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubNode {
    /// Its name (`hub serve --node`, by default the host name): unique among the nodes.
    pub name: String,
    /// Its API URL or listening address.
    pub api: String,
    /// The ferrowg version it runs.
    pub version: String,
    /// When it started.
    pub started_at: UnixTime,
    /// Its latest heartbeat.
    pub last_seen: UnixTime,
    /// Devices with a recent handshake, as its data plane sees them.
    pub devices_online: u64,
    /// Handshakes its data plane completed since it started.
    pub handshakes: u64,
}

impl HubNode {
    /// Checks the texts: a name of 1 to [`MAX_NODE_NAME`] printable ASCII characters without
    /// spaces; an address and a version of at most [`MAX_NODE_DETAIL`] bytes.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.name.is_empty() {
            return Err(StoreError::invalid(Field::NodeName, Reason::Empty));
        }
        if self.name.len() > MAX_NODE_NAME {
            let reason = Reason::TooLong { max: MAX_NODE_NAME };
            return Err(StoreError::invalid(Field::NodeName, reason));
        }
        if !self.name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StoreError::invalid(Field::NodeName, Reason::BadCharacter));
        }
        for text in [&self.api, &self.version] {
            if text.len() > MAX_NODE_DETAIL {
                let reason = Reason::TooLong {
                    max: MAX_NODE_DETAIL,
                };
                return Err(StoreError::invalid(Field::NodeDetail, reason));
            }
            if text.chars().any(char::is_control) {
                return Err(StoreError::invalid(Field::NodeDetail, Reason::BadCharacter));
            }
        }
        Ok(())
    }
}

/// A count as a signed 64-bit column value (saturating).
fn stored(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Writes `node`'s row (inserting or replacing it).
pub(crate) async fn heartbeat(conn: &mut Conn, node: &HubNode) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (name, api, version, started_at, last_seen, devices_online, handshakes)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET api = excluded.api, version = excluded.version,
            started_at = excluded.started_at, last_seen = excluded.last_seen,
            devices_online = excluded.devices_online, handshakes = excluded.handshakes",
    )
    .bind(&node.name)
    .bind(&node.api)
    .bind(&node.version)
    .bind(node.started_at.0)
    .bind(node.last_seen.0)
    .bind(stored(node.devices_online))
    .bind(stored(node.handshakes))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

type NodeRow = (String, String, String, i64, i64, i64, i64);

/// Every node, ordered by name.
pub(crate) async fn list(conn: &mut Conn) -> Result<Vec<HubNode>> {
    let rows: Vec<NodeRow> = sqlx::query_as(
        "SELECT name, api, version, started_at, last_seen, devices_online, handshakes
         FROM nodes ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, api, version, started, seen, online, handshakes)| HubNode {
                name,
                api,
                version,
                started_at: UnixTime(started),
                last_seen: UnixTime(seen),
                devices_online: u64::try_from(online).unwrap_or(0),
                handshakes: u64::try_from(handshakes).unwrap_or(0),
            },
        )
        .collect())
}
