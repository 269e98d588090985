//! Admin tokens for the hub's REST API and its command line: hashed like enrolment tokens,
//! scoped (read or write) and optionally expiring. `init` creates the first one.

use crate::error::{Conflict, Entity, Field, Reason, Result, StoreError};
use crate::events::{self, EventKind};
use crate::schema::Conn;
use crate::secret::{check_id, Credential, Purpose};
use crate::time::UnixTime;
use crate::validate;

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Read settings, devices, tokens, the policy and events.
    Read,
    /// Everything `Read` may, and change things.
    Write,
}

impl Scope {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            _ => Err(StoreError::Corrupt("unknown admin scope")),
        }
    }

    /// Whether a token of this scope may do what `needed` requires (write includes read).
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

/// An admin token as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// Its identifier.
    pub id: String,
    /// What it may do.
    pub scope: Scope,
    /// A note for people (who holds it, what for).
    pub label: String,
    /// When it stops working; `None`: never.
    pub expires_at: Option<UnixTime>,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it was revoked.
    pub revoked_at: Option<UnixTime>,
}

type AdminRow = (String, String, String, Option<i64>, i64, Option<i64>);

const SELECT_ADMIN: &str =
    "SELECT id, scope, label, expires_at, created_at, revoked_at FROM admin_tokens";

fn from_row((id, scope, label, expires, created, revoked): AdminRow) -> Result<AdminToken> {
    Ok(AdminToken {
        id,
        scope: Scope::parse(&scope)?,
        label,
        expires_at: expires.map(UnixTime),
        created_at: UnixTime(created),
        revoked_at: revoked.map(UnixTime),
    })
}

/// Checks a new admin token's label and expiry against `now`.
pub(crate) fn validate_new(label: &str, expires_at: Option<UnixTime>, now: UnixTime) -> Result<()> {
    validate::label(label)?;
    if expires_at.is_some_and(|t| t <= now) {
        return Err(StoreError::invalid(Field::Expiry, Reason::OutOfRange));
    }
    Ok(())
}

/// Creates an admin token; returns it and its credential.
pub(crate) async fn create(
    conn: &mut Conn,
    scope: Scope,
    label: &str,
    expires_at: Option<UnixTime>,
    now: UnixTime,
) -> Result<(AdminToken, Credential)> {
    let credential = Credential::generate();
    if get(conn, credential.id()).await.is_ok() {
        return Err(StoreError::Conflict(Conflict::Identifier));
    }
    events::record(conn, EventKind::AdminTokenCreated, credential.id(), now).await?;
    sqlx::query(
        "INSERT INTO admin_tokens (id, scope, label, secret_hash, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(credential.id())
    .bind(scope.as_str())
    .bind(label)
    .bind(credential.hash(Purpose::Admin).as_slice())
    .bind(expires_at.map(|t| t.0))
    .bind(now.0)
    .execute(&mut *conn)
    .await?;
    Ok((get(conn, credential.id()).await?, credential))
}

/// The admin token with identifier `id`.
pub(crate) async fn get(conn: &mut Conn, id: &str) -> Result<AdminToken> {
    check_id(id)?;
    let sql = format!("{SELECT_ADMIN} WHERE id = $1");
    let row: Option<AdminRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    from_row(row.ok_or(StoreError::NotFound(Entity::AdminToken))?)
}

/// Every admin token, oldest first.
pub(crate) async fn list(conn: &mut Conn) -> Result<Vec<AdminToken>> {
    let sql = format!("{SELECT_ADMIN} ORDER BY created_at, id");
    let rows: Vec<AdminRow> = sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    rows.into_iter().map(from_row).collect()
}

/// The token `credential` names, if its secret matches, it is not revoked and not expired:
/// otherwise [`StoreError::TokenInvalid`] or [`StoreError::TokenExpired`]. The caller checks
/// the scope with [`Scope::allows`].
pub(crate) async fn authenticate(
    conn: &mut Conn,
    credential: &Credential,
    now: UnixTime,
) -> Result<AdminToken> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT secret_hash FROM admin_tokens WHERE id = $1")
            .bind(credential.id())
            .fetch_optional(&mut *conn)
            .await?;
    if !credential.matches(Purpose::Admin, row.as_ref().map(|(h,)| h.as_slice())) {
        return Err(StoreError::TokenInvalid);
    }
    let token = get(conn, credential.id()).await?;
    if token.revoked_at.is_some() {
        return Err(StoreError::TokenInvalid);
    }
    if token.expires_at.is_some_and(|t| t <= now) {
        return Err(StoreError::TokenExpired);
    }
    Ok(token)
}

/// Revokes admin token `id`; revoking it again changes nothing.
pub(crate) async fn revoke(conn: &mut Conn, id: &str, now: UnixTime) -> Result<AdminToken> {
    let token = get(conn, id).await?;
    if token.revoked_at.is_none() {
        events::record(conn, EventKind::AdminTokenRevoked, id, now).await?;
        sqlx::query("UPDATE admin_tokens SET revoked_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now.0)
            .execute(&mut *conn)
            .await?;
    }
    get(conn, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_includes_read() {
        assert!(Scope::Write.allows(Scope::Read));
        assert!(Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
        for s in [Scope::Read, Scope::Write] {
            assert_eq!(Scope::parse(s.as_str()).unwrap(), s);
        }
    }
}
