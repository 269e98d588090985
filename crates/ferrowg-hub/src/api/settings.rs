//! The settings endpoints: `GET` shows the hub's settings, `PATCH` changes the one an admin may
//! change after `init`, the key-rotation schedule (`rotate_after`). A refused value changes
//! nothing.

use axum::extract::State;
use axum::Json;
use ferrowg_hub_store::{HubSettings, UnixTime};
use ferrowg_keys::key::PublicKey;

use super::auth::{ReadAccess, WriteAccess};
use super::convert;
use super::problem::Problem;
use super::types::{SettingsInfo, SettingsUpdate};
use super::{ApiJson, ApiState};

/// The hub's settings.
#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "settings",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The settings", body = SettingsInfo),
        (status = 401, description = "No valid admin token", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_settings(
    _: ReadAccess,
    State(state): State<ApiState>,
) -> Result<Json<SettingsInfo>, Problem> {
    Ok(Json(info(&state.store.settings().await?)))
}

/// Changes the settings named in the body; the others stay.
#[utoipa::path(
    patch,
    path = "/api/v1/settings",
    tag = "settings",
    security(("admin" = [])),
    request_body = SettingsUpdate,
    responses(
        (status = 200, description = "The settings after the change", body = SettingsInfo),
        (status = 422, description = "A value out of range; nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch_settings(
    _: WriteAccess,
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<SettingsUpdate>,
) -> Result<Json<SettingsInfo>, Problem> {
    let Some(value) = &req.rotate_after else {
        return Ok(Json(info(&state.store.settings().await?)));
    };
    let rotate_after = convert::duration("rotate_after", value)?;
    let settings = state
        .store
        .set_rotate_after(rotate_after, UnixTime::now())
        .await?;
    state.poke();
    log::info!(
        "key rotation schedule: {}",
        rotate_after.map_or("none".into(), |s| format!("{s} s"))
    );
    Ok(Json(info(&settings)))
}

fn info(s: &HubSettings) -> SettingsInfo {
    SettingsInfo {
        endpoint: s.endpoint.clone(),
        pool4: s.pools.v4().to_string(),
        pool6: s.pools.v6().map(|p| p.to_string()),
        public_key: PublicKey::from_bytes(s.public_key).to_base64(),
        rotate_after: s.rotate_after,
    }
}
