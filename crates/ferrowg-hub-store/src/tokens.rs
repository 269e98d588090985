//! Enrolment tokens and their redemption. A token names a group, a number of uses (or none for
//! unlimited) and an expiry; only a hash of its secret is stored. Redeeming checks the token,
//! takes one use and creates the device in one transaction: either all of it happens or none.
//! Revoking a token stops new enrolments with it and leaves the devices it enrolled alone.

use crate::devices::{self, Device, NewDevice};
use crate::error::{Conflict, Entity, Field, Reason, Result, StoreError};
use crate::events::{self, EventKind};
use crate::routes::Route;
use crate::schema::Conn;
use crate::secret::{check_id, Credential, Purpose};
use crate::time::UnixTime;
use crate::validate;

/// An enrolment token as stored (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentToken {
    /// Its identifier (the part of the credential before the dot).
    pub id: String,
    /// The group of the devices it enrols.
    pub group: String,
    /// Uses left; `None`: unlimited.
    pub uses_left: Option<u32>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<UnixTime>,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it was revoked.
    pub revoked_at: Option<UnixTime>,
}

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The group of the devices it enrols.
    pub group: String,
    /// How many devices it may enrol (at least 1); `None`: unlimited.
    pub uses: Option<u32>,
    /// When it stops working (after now); `None`: never.
    pub expires_at: Option<UnixTime>,
}

/// What a device sends to enrol: the group comes from the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The device's name.
    pub name: String,
    /// Its public key.
    pub public_key: [u8; 32],
    /// Routes it advertises, approved or not as the caller (the policy) decided.
    pub routes: Vec<Route>,
}

impl Enrolment {
    /// Checks the name and the routes.
    pub(crate) fn validate(&self) -> Result<()> {
        validate::name(Field::DeviceName, &self.name)?;
        validate::routes(self.routes.iter().map(|r| &r.prefix))
    }
}

type TokenRow = (String, String, Option<i64>, Option<i64>, i64, Option<i64>);

const SELECT_TOKEN: &str =
    "SELECT id, device_group, uses_left, expires_at, created_at, revoked_at FROM enrolment_tokens";

fn from_row((id, group, uses, expires, created, revoked): TokenRow) -> Result<EnrolmentToken> {
    let uses_left = uses
        .map(u32::try_from)
        .transpose()
        .map_err(|_| StoreError::Corrupt("token uses out of range"))?;
    Ok(EnrolmentToken {
        id,
        group,
        uses_left,
        expires_at: expires.map(UnixTime),
        created_at: UnixTime(created),
        revoked_at: revoked.map(UnixTime),
    })
}

/// Checks a new token's fields against `now`.
pub(crate) fn validate_new(new: &NewToken, now: UnixTime) -> Result<()> {
    validate::name(Field::Group, &new.group)?;
    if new.uses == Some(0) {
        return Err(StoreError::invalid(Field::Uses, Reason::OutOfRange));
    }
    if new.expires_at.is_some_and(|t| t <= now) {
        return Err(StoreError::invalid(Field::Expiry, Reason::OutOfRange));
    }
    Ok(())
}

/// Creates a token; returns it and its credential (the only time the secret exists outside the
/// holder).
pub(crate) async fn create(
    conn: &mut Conn,
    new: &NewToken,
    now: UnixTime,
) -> Result<(EnrolmentToken, Credential)> {
    let credential = Credential::generate();
    if get(conn, credential.id()).await.is_ok() {
        return Err(StoreError::Conflict(Conflict::Identifier));
    }
    events::record(conn, EventKind::TokenCreated, credential.id(), now).await?;
    sqlx::query(
        "INSERT INTO enrolment_tokens
            (id, device_group, secret_hash, uses_left, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(credential.id())
    .bind(&new.group)
    .bind(credential.hash(Purpose::Enrolment).as_slice())
    .bind(new.uses.map(i64::from))
    .bind(new.expires_at.map(|t| t.0))
    .bind(now.0)
    .execute(&mut *conn)
    .await?;
    Ok((get(conn, credential.id()).await?, credential))
}

/// The token with identifier `id`.
pub(crate) async fn get(conn: &mut Conn, id: &str) -> Result<EnrolmentToken> {
    check_id(id)?;
    let sql = format!("{SELECT_TOKEN} WHERE id = $1");
    let row: Option<TokenRow> = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    from_row(row.ok_or(StoreError::NotFound(Entity::EnrolmentToken))?)
}

/// Every token, oldest first.
pub(crate) async fn list(conn: &mut Conn) -> Result<Vec<EnrolmentToken>> {
    let sql = format!("{SELECT_TOKEN} ORDER BY created_at, id");
    let rows: Vec<TokenRow> = sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    rows.into_iter().map(from_row).collect()
}

/// Revokes the token `id`; revoking it again changes nothing. Its devices stay enrolled.
pub(crate) async fn revoke(conn: &mut Conn, id: &str, now: UnixTime) -> Result<EnrolmentToken> {
    let token = get(conn, id).await?;
    if token.revoked_at.is_none() {
        events::record(conn, EventKind::TokenRevoked, id, now).await?;
        sqlx::query("UPDATE enrolment_tokens SET revoked_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now.0)
            .execute(&mut *conn)
            .await?;
    }
    get(conn, id).await
}

/// What redemption checks: group, secret hash, uses left, expiry, revocation time.
type RedeemRow = (String, Vec<u8>, Option<i64>, Option<i64>, Option<i64>);

/// Redeems `credential` for `enrolment`: checks the token (exists, secret matches, not revoked,
/// not expired, uses left), creates the device in the token's group, and takes one use. Call
/// inside one write transaction.
pub(crate) async fn redeem(
    conn: &mut Conn,
    credential: &Credential,
    enrolment: &Enrolment,
    now: UnixTime,
) -> Result<Device> {
    let row: Option<RedeemRow> = sqlx::query_as(
        "SELECT device_group, secret_hash, uses_left, expires_at, revoked_at
         FROM enrolment_tokens WHERE id = $1",
    )
    .bind(credential.id())
    .fetch_optional(&mut *conn)
    .await?;
    let hash = row.as_ref().map(|r| r.1.as_slice());
    if !credential.matches(Purpose::Enrolment, hash) {
        return Err(StoreError::TokenInvalid);
    }
    let (group, _, uses_left, expires_at, revoked_at) = row.ok_or(StoreError::TokenInvalid)?;
    if revoked_at.is_some() {
        return Err(StoreError::TokenInvalid);
    }
    if expires_at.is_some_and(|t| t <= now.0) {
        return Err(StoreError::TokenExpired);
    }
    if uses_left.is_some_and(|n| n <= 0) {
        return Err(StoreError::TokenExhausted);
    }
    let new = NewDevice {
        name: enrolment.name.clone(),
        group,
        public_key: enrolment.public_key,
        routes: enrolment.routes.clone(),
    };
    let device = devices::insert(conn, &new, Some(credential.id()), now).await?;
    sqlx::query(
        "UPDATE enrolment_tokens SET uses_left = uses_left - 1
         WHERE id = $1 AND uses_left IS NOT NULL",
    )
    .bind(credential.id())
    .execute(&mut *conn)
    .await?;
    Ok(device)
}
