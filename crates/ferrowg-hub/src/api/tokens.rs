//! The enrolment-token endpoints: create (the only response that holds the token's secret, as
//! a whole `fwg1.` token), list and revoke. Revoking a token stops new enrolments with it and
//! leaves the devices it enrolled alone.
//!
//! Defaults: one use, expiry in [`DEFAULT_EXPIRY`] (7 days); `uses: 0` is unlimited and
//! `expires: "never"` never expires (a provisioning token baked into a fleet's image must not
//! die after 30 days, a known complaint about NetBird's setup keys).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ferrowg_hub_store::{NewToken, UnixTime};
use ferrowg_keys::key::PublicKey;

use super::auth::{ReadAccess, WriteAccess};
use super::convert;
use super::problem::Problem;
use super::types::{CreateTokenRequest, CreateTokenResponse, Expiry, TokenInfo};
use super::{ApiJson, ApiState};
use crate::token::EnrolToken;

/// The expiry of a token created without one: 7 days, in seconds.
pub const DEFAULT_EXPIRY: u64 = 7 * 24 * 3600;

fn expiry_secs(expires: Option<&Expiry>) -> Result<Option<u64>, Problem> {
    expires.map_or(Ok(Some(DEFAULT_EXPIRY)), |e| {
        convert::duration("expires", e)
    })
}

/// Creates an enrolment token; the response is the only place its secret appears.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("admin" = [])),
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created; `token` is shown only here", body = CreateTokenResponse),
        (status = 422, description = "Invalid group, uses or expiry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_token(
    _: WriteAccess,
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreateTokenResponse>), Problem> {
    let now = UnixTime::now();
    let expires_at =
        expiry_secs(req.expires.as_ref())?.map(|s| now.plus(i64::try_from(s).unwrap_or(i64::MAX)));
    let new = NewToken {
        group: req.group,
        uses: (req.uses != 0).then_some(req.uses),
        expires_at,
    };
    let settings = state.store.settings().await?;
    let (stored, credential) = state.store.create_token(&new, now).await?;
    state.poke();
    log::info!(
        "created enrolment token {} (group {})",
        stored.id,
        stored.group
    );
    let hub_key = PublicKey::from_bytes(settings.public_key);
    let token =
        EnrolToken::new(&state.public_api, state.pin, hub_key, credential).map_err(|e| {
            log::error!("the hub's public API URL {:?}: {e}", state.public_api);
            Problem::internal()
        })?;
    let response = CreateTokenResponse {
        token: token.encode().to_string(),
        info: convert::token_info(&stored),
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// Every enrolment token, oldest first, without secrets.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("admin" = [])),
    responses((status = 200, description = "The tokens", body = Vec<TokenInfo>))
)]
pub async fn list_tokens(
    _: ReadAccess,
    State(state): State<ApiState>,
) -> Result<Json<Vec<TokenInfo>>, Problem> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.iter().map(convert::token_info).collect()))
}

/// Revokes an enrolment token; the devices it enrolled stay.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    security(("admin" = [])),
    params(("id" = String, Path, description = "The token's identifier")),
    responses(
        (status = 200, description = "The revoked token", body = TokenInfo),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_token(
    _: WriteAccess,
    State(state): State<ApiState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<TokenInfo>, Problem> {
    let Path(id) = id?;
    let token = state.store.revoke_token(&id, UnixTime::now()).await?;
    state.poke();
    log::info!("revoked enrolment token {}", token.id);
    Ok(Json(convert::token_info(&token)))
}

#[cfg(test)]
mod tests {
    use super::convert::parse_duration;
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Ok(Some(3600)));
        assert_eq!(parse_duration("90m"), Ok(Some(5400)));
        assert_eq!(parse_duration("12h"), Ok(Some(43200)));
        assert_eq!(parse_duration("7d"), Ok(Some(DEFAULT_EXPIRY)));
        assert_eq!(parse_duration("2w"), Ok(Some(14 * 86400)));
        assert_eq!(parse_duration("never"), Ok(None));
        for bad in [
            "",
            "d",
            "0",
            "5y",
            "-1",
            "1.5h",
            "99999999999999999999",
            "101000d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
