//! Traffic statistics the hub's data plane reports: latest handshake, endpoint and byte counts
//! per device. Written in batches in one transaction; they are observations, not configuration,
//! so they make no event (see [`crate::events`]).

use std::net::SocketAddr;

use crate::error::{Field, Reason, Result, StoreError};
use crate::schema::Conn;
use crate::time::UnixTime;

/// Most entries one [`record`] call takes.
pub const MAX_STATS_BATCH: usize = 100_000;

/// The counters of one device, named by a key it holds (current or next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    /// One of the device's public keys.
    pub public_key: [u8; 32],
    /// Its latest handshake, if any (an older value never replaces a newer one).
    pub last_handshake: Option<UnixTime>,
    /// Where the hub last heard from it, if known.
    pub endpoint: Option<SocketAddr>,
    /// Bytes received from it.
    pub rx_bytes: u64,
    /// Bytes sent to it.
    pub tx_bytes: u64,
}

/// Stores the counters; entries whose key no device holds are skipped (the device may have been
/// deleted since). Returns how many devices were updated.
pub(crate) async fn record(conn: &mut Conn, entries: &[DeviceStats]) -> Result<u64> {
    if entries.len() > MAX_STATS_BATCH {
        let reason = Reason::TooLong {
            max: MAX_STATS_BATCH,
        };
        return Err(StoreError::invalid(Field::Limit, reason));
    }
    let mut updated = 0;
    for entry in entries {
        let done = sqlx::query(
            "UPDATE devices SET
                last_handshake = CASE
                    WHEN $2 IS NULL THEN last_handshake
                    WHEN last_handshake IS NULL OR last_handshake < $2 THEN $2
                    ELSE last_handshake END,
                endpoint = COALESCE($3, endpoint),
                rx_bytes = $4,
                tx_bytes = $5
             WHERE id = (SELECT device_id FROM device_keys WHERE public_key = $1)",
        )
        .bind(entry.public_key.as_slice())
        .bind(entry.last_handshake.map(|t| t.0))
        .bind(entry.endpoint.map(|e| e.to_string()))
        .bind(saturate(entry.rx_bytes))
        .bind(saturate(entry.tx_bytes))
        .execute(&mut *conn)
        .await?;
        updated += done.rows_affected();
    }
    Ok(updated)
}

/// A byte count as a signed 64-bit column value (saturating: 8 EiB).
fn saturate(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
