//! The access policy's text, versioned: each `policy set` stores a new version with its time,
//! and the older versions stay as history. The text is checked by the policy engine before it
//! gets here; the store only bounds its size.

use crate::error::{Field, Reason, Result, StoreError};
use crate::events::{self, EventKind};
use crate::schema::Conn;
use crate::time::UnixTime;

/// Most versions one history read returns.
pub const MAX_HISTORY_READ: u32 = 1000;

/// One stored version of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// 1 for the first version, one more for each after it.
    pub version: i64,
    /// The policy text (HuJSON).
    pub text: String,
    /// When it was stored.
    pub created_at: UnixTime,
}

fn from_row((version, text, created): (i64, String, i64)) -> PolicyVersion {
    PolicyVersion {
        version,
        text,
        created_at: UnixTime(created),
    }
}

/// Stores `text` as the new current version.
pub(crate) async fn set(conn: &mut Conn, text: &str, now: UnixTime) -> Result<PolicyVersion> {
    let (latest,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM policy_versions")
        .fetch_one(&mut *conn)
        .await?;
    let version = latest.unwrap_or(0) + 1;
    events::record(conn, EventKind::PolicySet, &version.to_string(), now).await?;
    sqlx::query("INSERT INTO policy_versions (version, text, created_at) VALUES ($1, $2, $3)")
        .bind(version)
        .bind(text)
        .bind(now.0)
        .execute(&mut *conn)
        .await?;
    Ok(PolicyVersion {
        version,
        text: text.to_owned(),
        created_at: now,
    })
}

/// The current version, or `None` before the first `set`.
pub(crate) async fn current(conn: &mut Conn) -> Result<Option<PolicyVersion>> {
    let row: Option<(i64, String, i64)> = sqlx::query_as(
        "SELECT version, text, created_at FROM policy_versions ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(from_row))
}

/// The newest `limit` versions (1 to [`MAX_HISTORY_READ`]), newest first.
pub(crate) async fn history(conn: &mut Conn, limit: u32) -> Result<Vec<PolicyVersion>> {
    if limit == 0 || limit > MAX_HISTORY_READ {
        return Err(StoreError::invalid(Field::Limit, Reason::OutOfRange));
    }
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT version, text, created_at FROM policy_versions ORDER BY version DESC LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}
