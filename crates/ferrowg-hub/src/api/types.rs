//! The JSON bodies of the API, shared by the server (`crate::api`) and the client
//! (`crate::client`), with their OpenAPI schemas.
//!
//! Conventions: keys are base64 (as `wg` prints them); addresses are prefixes (`10.64.0.2/32`);
//! times are whole seconds since the Unix epoch (UTC), `null` when there is none; durations in
//! requests are seconds or text like `90m`, `12h`, `7d`, `never`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /api/v1/enroll`: a device that made its own key asks to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The `secret` of the enrolment token (`ID.SECRET`, hex).
    pub token_secret: String,
    /// The device's name: 1 to 63 of `a-z`, `0-9`, `-`, unique in the hub.
    pub name: String,
    /// The device's WireGuard public key (base64). The private key never leaves the device.
    pub public_key: String,
    /// Subnets behind the device it offers to route (`192.168.1.0/24`); approved by the
    /// policy's `autoApprovers` or later by an admin.
    #[serde(default)]
    pub advertise_routes: Vec<String>,
}

/// What an enrolled (or admin-added) device needs for its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    /// The device's name.
    pub device: String,
    /// Its addresses (`10.64.0.2/32`, `fd64::2/128`).
    pub addresses: Vec<String>,
    /// The hub's WireGuard public key (base64).
    pub hub_public_key: String,
    /// Where the hub's WireGuard listens (`HOST:PORT`).
    pub endpoint: String,
    /// The prefixes to route to the hub: the address pools and other devices' approved routes.
    pub allowed_ips: Vec<String>,
    /// Seconds between keepalives (through NAT and cellular links).
    pub persistent_keepalive: u16,
    /// The device's state: `pending` until its first handshake.
    pub state: DeviceState,
    /// The routes it advertised, with their approval.
    pub routes: Vec<RouteInfo>,
    /// The hub's device API inside the tunnel (`http://HUB_TUNNEL_ADDRESS:8444`), where the
    /// device announces a new key (`ferrowg key rotate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_api: Option<String>,
}

/// Where a device is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    /// Enrolled or added; it has not yet proved with a handshake that it holds its key.
    Pending,
    /// It has completed a handshake; its group's rules apply.
    Active,
    /// Revoked: the hub drops its sessions and keys.
    Revoked,
}

/// A subnet a device advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteInfo {
    /// The prefix.
    pub prefix: String,
    /// Whether the hub routes it to the device.
    pub approved: bool,
    /// The prefix the hub reaches the site through (1:1 NETMAP), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped: Option<String>,
}

/// A device, as `GET /api/v1/devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// Its name.
    pub name: String,
    /// Its group (`tag:GROUP` in the policy).
    pub group: String,
    /// Its addresses.
    pub addresses: Vec<String>,
    /// Its current WireGuard public key (base64).
    pub public_key: String,
    /// During a key rotation, the next public key.
    pub next_public_key: Option<String>,
    /// Pending, active or revoked.
    pub state: DeviceState,
    /// Whether its latest handshake is at most [`crate::api::ONLINE_WITHIN`] seconds old.
    pub online: bool,
    /// Its latest handshake with the hub (Unix seconds), if any.
    pub last_handshake: Option<i64>,
    /// Where the hub last heard from it (`IP:PORT`), if known.
    pub endpoint: Option<String>,
    /// Bytes the hub received from it.
    pub rx_bytes: u64,
    /// Bytes the hub sent to it.
    pub tx_bytes: u64,
    /// The subnets it advertises.
    pub routes: Vec<RouteInfo>,
    /// When it was enrolled or added (Unix seconds).
    pub created_at: i64,
    /// Since when its current key has been known to the hub (Unix seconds): its key's age
    /// counts from here.
    pub key_since: i64,
    /// Whether its key is older than the hub's rotation schedule (`rotate_after`), or an admin
    /// asked it to rotate (`POST /api/v1/devices/{name}/rotate`) and it has not done so yet.
    /// The device rotates it with `ferrowg key rotate IFACE --if-due`; an overdue device stays
    /// connected.
    pub rotation_due: bool,
    /// When it was revoked (Unix seconds).
    pub revoked_at: Option<i64>,
    /// The enrolment token it used; `null` when an admin added it.
    pub token_id: Option<String>,
}

/// `POST /api/v1/devices`: admit a device that made its own key (a phone, a router, a stock
/// WireGuard client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDeviceRequest {
    /// Its name.
    pub name: String,
    /// Its WireGuard public key (base64).
    pub public_key: String,
    /// Its group.
    pub group: String,
    /// Subnets behind it, approved at once (an admin adds them).
    #[serde(default)]
    pub routes: Vec<String>,
}

/// The device an admin added, with a configuration for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddDeviceResponse {
    /// The device.
    pub device: DeviceInfo,
    /// A wg-quick configuration for the device, without `PrivateKey` (a comment says where it
    /// goes): the device made its key and keeps it.
    pub config: String,
}

/// `POST /api/v1/devices/{name}/routes`: approve or unapprove one advertised prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteApproval {
    /// The prefix the device advertises.
    pub prefix: String,
    /// Whether the hub routes it to the device.
    pub approved: bool,
    /// Reach the site through this prefix instead (same length; 1:1 NETMAP in the hub), for a
    /// site whose real prefix another site uses too. `null` or absent: leave the map as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_to: Option<String>,
}

/// A duration in a request: seconds, or text (`90s`, `30m`, `12h`, `7d`, `4w`, `never`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Expiry {
    /// Seconds.
    Seconds(u64),
    /// A duration with a unit, or `never`.
    Text(String),
}

/// `POST /api/v1/tokens`: a new enrolment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// The group of the devices it enrols.
    pub group: String,
    /// How many devices it may enrol; 0 is unlimited. Default 1.
    #[serde(default = "one")]
    pub uses: u32,
    /// When it stops working, from now. Default `7d`; `never` for no expiry (a fleet's
    /// provisioning token may be baked into an image that ships months later).
    #[serde(default)]
    pub expires: Option<Expiry>,
}

fn one() -> u32 {
    1
}

/// An enrolment token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// Its identifier.
    pub id: String,
    /// The group of the devices it enrols.
    pub group: String,
    /// Uses left; `null`: unlimited.
    pub uses_left: Option<u32>,
    /// When it stops working (Unix seconds); `null`: never.
    pub expires_at: Option<i64>,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// When it was revoked (Unix seconds).
    pub revoked_at: Option<i64>,
}

/// A new enrolment token: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateTokenResponse {
    /// The token to give to devices (`fwg1.…`): the API address, the TLS pin, the hub's key and
    /// the secret.
    pub token: String,
    /// The token as stored.
    pub info: TokenInfo,
}

/// `PUT /api/v1/policy` with `Content-Type: application/json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyText {
    /// The policy (HuJSON).
    pub text: String,
}

/// A stored policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyInfo {
    /// 1 for the first version, one more for each after it.
    pub version: i64,
    /// The policy (HuJSON).
    pub text: String,
    /// When it was stored (Unix seconds).
    pub created_at: i64,
}

/// An error, as `application/problem+json` (RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// What kind of problem: `urn:ferrowg:problem:NAME`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a human.
    #[serde(default)]
    pub detail: String,
    /// For a refused policy: the line of the fault (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// For a refused policy: the key at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{} ({})", self.title, self.status)
        } else {
            write!(f, "{} ({}): {}", self.title, self.status, self.detail)
        }
    }
}

impl std::error::Error for Problem {}

/// The hub's settings, `GET /api/v1/settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SettingsInfo {
    /// Where devices reach the hub's WireGuard (`HOST:PORT`).
    pub endpoint: String,
    /// The IPv4 address pool.
    pub pool4: String,
    /// The IPv6 address pool, if any.
    pub pool6: Option<String>,
    /// The hub's WireGuard public key (base64).
    pub public_key: String,
    /// How old a device's key may grow, in seconds, before the device rotates it
    /// (`ferrowg key rotate IFACE --if-due`); `null`: no schedule. Nothing ever disconnects a
    /// device whose key is older.
    pub rotate_after: Option<u64>,
}

/// `PATCH /api/v1/settings`: the settings an admin may change; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    /// The key-rotation schedule: seconds or text (`90d`), `never` for none.
    #[serde(default)]
    pub rotate_after: Option<Expiry>,
}

/// `GET /device/v1/rotation` on the device API (inside the tunnel): the asking device's key age
/// against the hub's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotationStatus {
    /// The device's name.
    pub device: String,
    /// Seconds since its current key became known to the hub.
    pub key_age: u64,
    /// The hub's schedule in seconds; `null`: none.
    pub rotate_after: Option<u64>,
    /// Whether the key is due for rotation: older than the schedule, or an admin asked the
    /// device to rotate it.
    pub due: bool,
}

/// The status a device list is filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Active, with a handshake at most 180 s ago.
    Online,
    /// Active, without a handshake in the last 180 s.
    Offline,
    /// Enrolled or added, no handshake yet.
    Pending,
    /// Revoked.
    Revoked,
}

/// What a device list is sorted by (ties broken by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSortKey {
    /// The name.
    Name,
    /// The group.
    Group,
    /// The latest handshake (devices without one last).
    LastHandshake,
    /// The endpoint, as text (devices without one last).
    Endpoint,
    /// Bytes received from the device.
    RxBytes,
    /// Bytes sent to the device.
    TxBytes,
    /// When the device was enrolled or added.
    CreatedAt,
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// `GET /api/v1/devices` query parameters: filtered, sorted and paginated by the hub. Without
/// any parameter, every device ordered by name. An empty value is the same as the parameter's
/// absence; an unknown or repeated parameter, or a value out of range, is a 422 problem naming
/// it. The `X-Total-Count` response header says how many devices match the filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceListParams {
    /// A substring of the name, the group, an address, the endpoint or the public key (any
    /// case; at most 256 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Only this group (exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Only devices of this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(inline)]
    pub status: Option<StatusFilter>,
    /// The sort column [default: name].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(inline)]
    pub sort: Option<DeviceSortKey>,
    /// The sort direction [default: asc].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(inline)]
    pub order: Option<SortDirection>,
    /// At most this many devices [default: 100 when any parameter is given, else all].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Skip this many matching devices first [default: 0].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// `POST /api/v1/policy/check`: the policy parses and its tests pass (nothing was stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyCheck {
    /// How many tests of its `tests` section ran (and passed).
    pub tests: usize,
}

/// A hub node sharing the store, `GET /api/v1/nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeInfo {
    /// Its name (`hub serve --node`, by default the host name).
    pub name: String,
    /// Its API's listening address.
    pub api: String,
    /// The ferrowg version it runs.
    pub version: String,
    /// When it started (Unix seconds).
    pub started_at: i64,
    /// Its latest heartbeat (Unix seconds); nodes write one every 5 s.
    pub last_seen: i64,
    /// Whether its latest heartbeat is at most 15 s old.
    pub healthy: bool,
    /// Devices with a handshake at most 180 s old, as its data plane sees them.
    pub devices_online: u64,
    /// Handshakes its data plane completed since it started.
    pub handshakes: u64,
}
