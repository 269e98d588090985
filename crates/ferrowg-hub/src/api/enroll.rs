//! `POST /api/v1/enroll`: a device presents an enrolment token's secret, its name, its public
//! key and the routes it advertises; the store checks the token, takes a use and creates the
//! device (pending until its first handshake) in one transaction. Advertised routes are
//! approved when the current policy's `autoApprovers` approve them for the token's group, and
//! otherwise wait for an admin.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferrowg_hub_store::ipnet::IpNet;
use ferrowg_hub_store::{Credential, Device, Enrolment, HubStore, Route, StoreError, UnixTime};
use ferrowg_keys::key::PublicKey;
use ferrowg_policy::{Policy, Prefix};

use super::convert;
use super::problem::Problem;
use super::types::{EnrollRequest, EnrollResponse};
use super::{ApiJson, ApiState, PERSISTENT_KEEPALIVE};

/// Enrols a device with an enrolment token.
#[utoipa::path(
    post,
    path = "/api/v1/enroll",
    tag = "enrolment",
    request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled (pending until its first handshake)", body = EnrollResponse),
        (status = 401, description = "Unknown, revoked or malformed token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Name or public key taken", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Token expired or used up", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, key or route", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn enroll(
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> Result<(StatusCode, Json<EnrollResponse>), Problem> {
    let credential: Credential = req
        .token_secret
        .trim()
        .parse()
        .map_err(|_| Problem::from(StoreError::TokenInvalid))?;
    let public_key = convert::public_key("public_key", &req.public_key)?;
    let prefixes = convert::prefixes("advertise_routes", &req.advertise_routes)?;
    let now = UnixTime::now();
    let group = match state.store.token(credential.id()).await {
        Ok(token) => token.group,
        // Unknown identifiers are answered like wrong secrets.
        Err(StoreError::NotFound(_) | StoreError::Invalid { .. }) => {
            return Err(StoreError::TokenInvalid.into())
        }
        Err(e) => return Err(e.into()),
    };
    let approved = auto_approved(state.store.as_ref(), &group, &prefixes).await;
    let routes = prefixes
        .iter()
        .map(|p| Route::new(*p, approved.contains(p)))
        .collect();
    let enrolment = Enrolment {
        name: req.name,
        public_key,
        routes,
    };
    let device = state.store.redeem(&credential, &enrolment, now).await?;
    state.poke();
    state.counters.enrolments.inc();
    log::info!(
        "enrolled device {} (group {}, token {}, {})",
        device.name,
        device.group,
        credential.id(),
        convert::addresses(&device).join(", ")
    );
    let response = device_config(state.store.as_ref(), &device).await?;
    Ok((StatusCode::CREATED, Json(response)))
}

/// The prefixes among `prefixes` that the current policy's `autoApprovers` approve for a
/// device of `group`; none without a policy. A stored policy that no longer parses approves
/// nothing (and is logged): it was checked when it was set.
pub async fn auto_approved(store: &dyn HubStore, group: &str, prefixes: &[IpNet]) -> Vec<IpNet> {
    if prefixes.is_empty() {
        return vec![];
    }
    let text = match store.policy().await {
        Ok(Some(p)) => p.text,
        Ok(None) => return vec![],
        Err(e) => {
            log::warn!("auto-approval: reading the policy: {e}");
            return vec![];
        }
    };
    let policy = match Policy::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("auto-approval: the stored policy does not parse: {e}");
            return vec![];
        }
    };
    let tag = format!("tag:{group}");
    prefixes
        .iter()
        .filter(|p| {
            Prefix::new(p.addr(), p.prefix_len())
                .is_some_and(|prefix| policy.auto_approves(prefix, &[tag.as_str()]))
        })
        .copied()
        .collect()
}

/// What device `device` needs for its configuration.
pub async fn device_config(
    store: &dyn HubStore,
    device: &Device,
) -> Result<EnrollResponse, Problem> {
    let settings = store.settings().await?;
    let routes = store.approved_routes().await?;
    Ok(EnrollResponse {
        device: device.name.clone(),
        addresses: convert::addresses(device),
        hub_public_key: PublicKey::from_bytes(settings.public_key).to_base64(),
        endpoint: settings.endpoint.clone(),
        allowed_ips: convert::allowed_ips(&settings, &routes, &device.name),
        persistent_keepalive: PERSISTENT_KEEPALIVE,
        state: convert::state(device),
        routes: convert::routes(device),
        device_api: Some(crate::device_api::url(settings.pools.hub_v4().into())),
    })
}
