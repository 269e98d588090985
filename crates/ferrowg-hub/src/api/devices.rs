//! The device endpoints: listing (filtered, sorted and paginated by the store, see
//! [`super::query`]) and status (read scope), adding a device by its public key with the
//! wg-quick configuration for it, revoking, deleting, route approval and asking a device to
//! rotate its key (write scope).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::Json;
use ferrowg_hub_store::{Device, NewDevice, Route, UnixTime};

use super::auth::{ReadAccess, WriteAccess};
use super::convert;
use super::enroll::device_config;
use super::problem::Problem;
use super::query;
use super::types::{
    AddDeviceRequest, AddDeviceResponse, DeviceInfo, DeviceListParams, RouteApproval,
};
use super::{ApiJson, ApiState, ONLINE_WITHIN};

/// The response header of `GET /api/v1/devices` that says how many devices match the filters.
pub const TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// A path parameter that can fail as a problem.
type ApiPath<T> = Result<Path<T>, axum::extract::rejection::PathRejection>;

fn path<T>(p: ApiPath<T>) -> Result<T, Problem> {
    p.map(|Path(v)| v).map_err(Problem::from)
}

/// The devices: without parameters every device ordered by name; with them, one page of the
/// devices that match, sorted as asked.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    security(("admin" = [])),
    params(DeviceListParams),
    responses(
        (status = 200, description = "The devices of the page", body = Vec<DeviceInfo>,
            headers(("X-Total-Count" = u64, description = "How many devices match the filters (before limit and offset)"))),
        (status = 401, description = "No valid admin token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is unknown, repeated or out of range; the detail names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_devices(
    _: ReadAccess,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<([(HeaderName, HeaderValue); 1], Json<Vec<DeviceInfo>>), Problem> {
    let params = query::parse(raw.as_deref())?;
    let now = UnixTime::now();
    let online_since = UnixTime(now.0.saturating_sub(ONLINE_WITHIN));
    let settings = state.store.settings().await?;
    let page = state
        .store
        .query_devices(&query::to_store(params.as_ref()), online_since)
        .await?;
    let devices = page
        .devices
        .iter()
        .map(|d| convert::device_info(d, &settings, now))
        .collect();
    Ok((
        [(TOTAL_COUNT, HeaderValue::from(page.total))],
        Json(devices),
    ))
}

/// One device.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{name}",
    tag = "devices",
    security(("admin" = [])),
    params(("name" = String, Path, description = "The device's name")),
    responses(
        (status = 200, description = "The device", body = DeviceInfo),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_device(
    _: ReadAccess,
    State(state): State<ApiState>,
    name: ApiPath<String>,
) -> Result<Json<DeviceInfo>, Problem> {
    let device = state.store.device(&path(name)?).await?;
    info(&state, &device, UnixTime::now()).await
}

/// Admits a device that made its own key; its routes are approved. Returns a wg-quick
/// configuration for it without `PrivateKey`.
#[utoipa::path(
    post,
    path = "/api/v1/devices",
    tag = "devices",
    security(("admin" = [])),
    request_body = AddDeviceRequest,
    responses(
        (status = 201, description = "Added (pending until its first handshake)", body = AddDeviceResponse),
        (status = 409, description = "Name or public key taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name, group, key or route", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_device(
    _: WriteAccess,
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<AddDeviceRequest>,
) -> Result<(StatusCode, Json<AddDeviceResponse>), Problem> {
    let public_key = convert::public_key("public_key", &req.public_key)?;
    let routes = convert::prefixes("routes", &req.routes)?
        .into_iter()
        .map(|prefix| Route::new(prefix, true))
        .collect();
    let new = NewDevice {
        name: req.name,
        group: req.group,
        public_key,
        routes,
    };
    let now = UnixTime::now();
    let device = state.store.add_device(&new, now).await?;
    state.poke();
    log::info!("added device {} (group {})", device.name, device.group);
    let config = crate::wgconf::render(&device_config(state.store.as_ref(), &device).await?, None)
        .to_string();
    let response = AddDeviceResponse {
        device: info(&state, &device, now).await?.0,
        config,
    };
    Ok((StatusCode::CREATED, Json(response)))
}

/// Revokes a device: the hub drops its sessions and keys; its row, addresses and keys stay
/// reserved.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{name}/revoke",
    tag = "devices",
    security(("admin" = [])),
    params(("name" = String, Path, description = "The device's name")),
    responses(
        (status = 200, description = "The revoked device", body = DeviceInfo),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_device(
    _: WriteAccess,
    State(state): State<ApiState>,
    name: ApiPath<String>,
) -> Result<Json<DeviceInfo>, Problem> {
    let now = UnixTime::now();
    let device = state.store.revoke_device(&path(name)?, now).await?;
    state.poke();
    log::info!("revoked device {}", device.name);
    info(&state, &device, now).await
}

/// Asks a device to rotate its key: its `rotation_due` is true (and the device API tells the
/// device its rotation is due) until the first handshake of its next key.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{name}/rotate",
    tag = "devices",
    security(("admin" = [])),
    params(("name" = String, Path, description = "The device's name")),
    responses(
        (status = 200, description = "The device, its rotation due", body = DeviceInfo),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The device is revoked", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_device(
    _: WriteAccess,
    State(state): State<ApiState>,
    name: ApiPath<String>,
) -> Result<Json<DeviceInfo>, Problem> {
    let now = UnixTime::now();
    let device = state.store.request_rotation(&path(name)?, now).await?;
    state.poke();
    log::info!("asked device {} to rotate its key", device.name);
    info(&state, &device, now).await
}

/// Deletes a device; its name, addresses and keys become free.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{name}",
    tag = "devices",
    security(("admin" = [])),
    params(("name" = String, Path, description = "The device's name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_device(
    _: WriteAccess,
    State(state): State<ApiState>,
    name: ApiPath<String>,
) -> Result<StatusCode, Problem> {
    let name = path(name)?;
    state.store.delete_device(&name, UnixTime::now()).await?;
    state.poke();
    log::info!("deleted device {name}");
    Ok(StatusCode::NO_CONTENT)
}

/// Approves or unapproves a route the device advertises.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{name}/routes",
    tag = "devices",
    security(("admin" = [])),
    params(("name" = String, Path, description = "The device's name")),
    request_body = RouteApproval,
    responses(
        (status = 200, description = "The device", body = DeviceInfo),
        (status = 404, description = "No such device or route", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_route_approval(
    _: WriteAccess,
    State(state): State<ApiState>,
    name: ApiPath<String>,
    ApiJson(req): ApiJson<RouteApproval>,
) -> Result<Json<DeviceInfo>, Problem> {
    let name = path(name)?;
    let prefixes = convert::prefixes("prefix", std::slice::from_ref(&req.prefix))?;
    let prefix = prefixes
        .first()
        .ok_or_else(|| Problem::invalid("prefix: missing"))?;
    let now = UnixTime::now();
    if let Some(text) = &req.map_to {
        let mapped = convert::prefixes("map_to", std::slice::from_ref(text))?;
        let mapped = mapped
            .first()
            .ok_or_else(|| Problem::invalid("map_to: missing"))?;
        state
            .store
            .set_route_map(&name, prefix, Some(mapped), now)
            .await?;
    }
    let device = state
        .store
        .set_route_approval(&name, prefix, req.approved, now)
        .await?;
    state.poke();
    info(&state, &device, now).await
}

/// The API's view of `device` at `now` (its rotation is due by the hub's schedule).
async fn info(
    state: &ApiState,
    device: &Device,
    now: UnixTime,
) -> Result<Json<DeviceInfo>, Problem> {
    let settings = state.store.settings().await?;
    Ok(Json(convert::device_info(device, &settings, now)))
}
