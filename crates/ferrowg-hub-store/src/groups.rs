//! The groups at a glance: every group a device or an enrolment token names, with its devices
//! counted by status and its usable tokens, counted in SQL (one statement, the same on SQLite
//! and PostgreSQL) so that the dashboard's groups page costs one query whatever the fleet size.

use crate::error::Result;
use crate::schema::Conn;
use crate::time::UnixTime;

/// One group and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// The group's name.
    pub name: String,
    /// Its devices that are not revoked (active or pending).
    pub devices: u64,
    /// Its active devices with a handshake recent enough to count as online.
    pub online: u64,
    /// Its pending devices (enrolled, no handshake yet).
    pub pending: u64,
    /// Its revoked devices.
    pub revoked: u64,
    /// Its enrolment tokens that can still enrol a device: not revoked, not expired, with
    /// uses left.
    pub tokens: u64,
}

/// The statement: the union of the groups devices and tokens name, joined to the per-group
/// counts of each. `$1`: a handshake at or after it is online; `$2`: now (a token whose expiry
/// is at or before it is expired, as redemption decides).
const SUMMARY: &str = "
SELECT g.name,
       COALESCE(d.devices, 0), COALESCE(d.online, 0), COALESCE(d.pending, 0),
       COALESCE(d.revoked, 0), COALESCE(t.tokens, 0)
FROM (SELECT device_group AS name FROM devices
      UNION SELECT device_group AS name FROM enrolment_tokens) g
LEFT JOIN (SELECT device_group,
                  SUM(CASE WHEN state <> 'revoked' THEN 1 ELSE 0 END) AS devices,
                  SUM(CASE WHEN state = 'active' AND last_handshake >= $1 THEN 1 ELSE 0 END)
                      AS online,
                  SUM(CASE WHEN state = 'pending' THEN 1 ELSE 0 END) AS pending,
                  SUM(CASE WHEN state = 'revoked' THEN 1 ELSE 0 END) AS revoked
           FROM devices GROUP BY device_group) d ON d.device_group = g.name
LEFT JOIN (SELECT device_group, COUNT(*) AS tokens
           FROM enrolment_tokens
           WHERE revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > $2)
             AND (uses_left IS NULL OR uses_left > 0)
           GROUP BY device_group) t ON t.device_group = g.name
ORDER BY g.name";

type SummaryRow = (String, i64, i64, i64, i64, i64);

/// A count from the database (never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Every group a device or a token names, ordered by name, counted at `now`; a device is
/// online when its latest handshake is at or after `online_since`.
pub(crate) async fn summary(
    conn: &mut Conn,
    now: UnixTime,
    online_since: UnixTime,
) -> Result<Vec<GroupSummary>> {
    let rows: Vec<SummaryRow> = sqlx::query_as(SUMMARY)
        .bind(online_since.0)
        .bind(now.0)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, devices, online, pending, revoked, tokens)| GroupSummary {
                name,
                devices: count(devices),
                online: count(online),
                pending: count(pending),
                revoked: count(revoked),
                tokens: count(tokens),
            },
        )
        .collect())
}
