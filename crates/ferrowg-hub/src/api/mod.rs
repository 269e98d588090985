//! The hub's control API, under `/api/v1`, and its OpenAPI document at `/openapi.json`.
//!
//! | endpoint | access | what |
//! |---|---|---|
//! | `POST /api/v1/enroll` | enrolment token | a device that made its key joins |
//! | `GET /api/v1/devices`, `GET /api/v1/devices/{name}` | read | devices and their status (filtered, sorted, paginated: [`query`]) |
//! | `POST /api/v1/devices` | write | admit a device by public key; returns its wg-quick config |
//! | `POST /api/v1/devices/{name}/revoke`, `DELETE /api/v1/devices/{name}` | write | revoke, delete |
//! | `POST /api/v1/devices/{name}/routes` | write | approve or unapprove an advertised route |
//! | `POST /api/v1/devices/{name}/rotate` | write | ask a device to rotate its key |
//! | `POST /api/v1/tokens`, `GET /api/v1/tokens`, `DELETE /api/v1/tokens/{id}` | write / read / write | enrolment tokens |
//! | `PUT /api/v1/policy`, `GET /api/v1/policy` | write / read | the access policy |
//! | `POST /api/v1/policy/check` | read | check a policy and run its tests, storing nothing |
//! | `GET /api/v1/groups` | read | the groups: devices by status, usable enrolment tokens |
//! | `GET /api/v1/nodes` | read | the hub nodes sharing the store, from their heartbeats |
//! | `GET /api/v1/settings`, `PATCH /api/v1/settings` | read / write | the settings; the key-rotation schedule |
//!
//! Admin endpoints take `Authorization: Bearer ID.SECRET` ([`auth`]). Errors are
//! `application/problem+json` ([`problem`]). Bodies are limited to [`MAX_BODY`] bytes (the
//! policy to its own limit); at most [`MAX_CONCURRENT_REQUESTS`] requests run at once, the
//! others wait. Every handler that changes the store pokes [`ApiState::changed`].

pub mod auth;
pub mod convert;
pub mod devices;
pub mod enroll;
pub mod groups;
pub mod nodes;
pub mod policy;
pub mod problem;
pub mod query;
pub mod settings;
pub mod tokens;
pub mod types;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest};
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use ferrowg_hub_store::HubStore;
use ferrowg_metrics::prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::tls::Pin;
use problem::Problem;

/// Largest request body, in bytes, except `PUT /api/v1/policy`.
pub const MAX_BODY: usize = 16 * 1024;

/// Largest policy body: the store's policy limit and room for a JSON wrapper.
pub const MAX_POLICY_BODY: usize = ferrowg_hub_store::validate::MAX_POLICY_LEN + 64 * 1024;

/// Requests handled at once; more wait for a slot.
pub const MAX_CONCURRENT_REQUESTS: usize = 256;

/// A device is online if its latest handshake is at most this many seconds old (WireGuard
/// renews sessions every 120 s while traffic flows and keepalives are 25 s apart).
pub const ONLINE_WITHIN: i64 = 180;

/// The persistent keepalive handed to devices, in seconds.
pub const PERSISTENT_KEEPALIVE: u16 = 25;

/// What the API counts, for the hub's metrics ([`crate::metrics`]).
#[derive(Debug, Clone, Default)]
pub struct ApiCounters {
    /// Devices enrolled with a token.
    pub enrolments: Counter,
}

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// The hub's storage.
    pub store: Arc<dyn HubStore>,
    /// Notified (`notify_one`) after every change a handler made to the store: the data path
    /// waits on it, then reads the store's events since the last one it applied. A permit is
    /// kept while nobody waits, so a change made between two waits is not missed.
    pub changed: Arc<Notify>,
    /// The API URL enrolment tokens carry (`https://HOST:PORT`).
    pub public_api: Arc<str>,
    /// The pin of the API's certificate, for enrolment tokens.
    pub pin: Pin,
    /// What the API counts for the metrics.
    pub counters: ApiCounters,
}

impl ApiState {
    /// A state over `store`, with a new change notifier.
    pub fn new(store: Arc<dyn HubStore>, public_api: &str, pin: Pin) -> ApiState {
        ApiState {
            store,
            changed: Arc::new(Notify::new()),
            public_api: Arc::from(public_api),
            pin,
            counters: Default::default(),
        }
    }

    /// Tells the data path that the store changed.
    pub fn poke(&self) {
        self.changed.notify_one();
    }
}

/// A JSON body whose rejections are problems.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct ApiJson<T>(pub T);

/// The OpenAPI document's fixed parts; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ferrowg hub API",
        description = "Enrolment and administration of a ferrowg hub. Times are Unix seconds; \
                       errors are application/problem+json (RFC 9457).",
        license(name = "MIT OR Apache-2.0"),
        version = "1"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "enrolment", description = "Devices joining with a token"),
        (name = "devices", description = "Devices and their status"),
        (name = "tokens", description = "Enrolment tokens"),
        (name = "policy", description = "The access policy"),
        (name = "settings", description = "The hub's settings"),
        (name = "groups", description = "Device groups at a glance"),
        (name = "nodes", description = "The hub nodes sharing the store"),
    )
)]
struct ApiDoc;

/// Adds the `admin` bearer security scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An admin token (`ID.SECRET`) with read or write scope",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("admin", SecurityScheme::Http(scheme));
    }
}

/// The routes with their documentation, before the state is supplied.
fn api_router() -> OpenApiRouter<ApiState> {
    let policy = OpenApiRouter::new()
        .routes(routes!(policy::put_policy, policy::get_policy))
        .routes(routes!(policy::check_policy))
        .layer(DefaultBodyLimit::max(MAX_POLICY_BODY));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(enroll::enroll))
        .routes(routes!(devices::list_devices, devices::add_device))
        .routes(routes!(devices::get_device, devices::delete_device))
        .routes(routes!(devices::revoke_device))
        .routes(routes!(devices::set_route_approval))
        .routes(routes!(devices::rotate_device))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(settings::get_settings, settings::patch_settings))
        .routes(routes!(groups::list_groups))
        .routes(routes!(nodes::list_nodes))
        .merge(policy)
}

/// The OpenAPI document of the API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The document as served and committed (`crates/ferrowg-hub/openapi.json`): pretty JSON and a
/// final newline.
pub fn openapi_json(doc: &utoipa::openapi::OpenApi) -> String {
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The API's routes: every endpoint and `/openapi.json`, before the state, the limits and the
/// fallback, which [`crate::app::router`] supplies.
pub fn routes() -> Router<ApiState> {
    let (router, doc) = api_router().split_for_parts();
    let body: Arc<str> = Arc::from(openapi_json(&doc));
    router.route(
        "/openapi.json",
        get(move || {
            let body = Arc::clone(&body);
            async move { ([(CONTENT_TYPE, "application/json")], body.to_string()) }
        }),
    )
}
