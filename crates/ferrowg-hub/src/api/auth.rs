//! Admin authentication: `Authorization: Bearer ID.SECRET` with an admin token from the store
//! ([`HubStore::authenticate_admin`] checks the hash in constant time, the expiry and
//! revocation). Handlers take [`ReadAccess`] or [`WriteAccess`] as an extractor; a missing or
//! invalid credential is 401, a read-only credential on a write endpoint 403. The credential is
//! never logged.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ferrowg_hub_store::{AdminToken, Credential, Scope, StoreError, UnixTime};

use super::problem::Problem;
use super::ApiState;

/// An admin token with at least read scope made the request.
#[derive(Debug, Clone)]
pub struct ReadAccess(pub AdminToken);

/// An admin token with write scope made the request.
#[derive(Debug, Clone)]
pub struct WriteAccess(pub AdminToken);

impl FromRequestParts<ApiState> for ReadAccess {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Problem> {
        authenticate(parts, state, Scope::Read)
            .await
            .map(ReadAccess)
    }
}

impl FromRequestParts<ApiState> for WriteAccess {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Problem> {
        authenticate(parts, state, Scope::Write)
            .await
            .map(WriteAccess)
    }
}

/// The admin token of the request, if it allows `needed`.
async fn authenticate(
    parts: &Parts,
    state: &ApiState,
    needed: Scope,
) -> Result<AdminToken, Problem> {
    let credential = bearer(parts)?;
    let token = state
        .store
        .authenticate_admin(&credential, UnixTime::now())
        .await
        .map_err(|e| match e {
            StoreError::TokenInvalid | StoreError::TokenExpired => {
                Problem::unauthorized("the admin token is unknown, revoked or expired")
            }
            other => Problem::from(other),
        })?;
    if !token.scope.allows(needed) {
        let detail = format!(
            "admin token {} has {} scope; this needs {}",
            token.id,
            token.scope.as_str(),
            needed.as_str()
        );
        return Err(Problem::forbidden(detail));
    }
    Ok(token)
}

/// The credential in `Authorization: Bearer …`.
fn bearer(parts: &Parts) -> Result<Credential, Problem> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Problem::unauthorized("missing Authorization: Bearer <admin token>"))?;
    let text = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| Problem::unauthorized("expected Authorization: Bearer <admin token>"))?;
    text.trim()
        .parse()
        .map_err(|_| Problem::unauthorized("the admin token is malformed"))
}
