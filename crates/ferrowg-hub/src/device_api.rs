//! The device API: what an enrolled device asks the hub for itself, over the tunnel. It listens
//! on the hub's tunnel address, bound to the hub's interface (`SO_BINDTODEVICE`), so every
//! request arrived through WireGuard, and the protocol core had checked the packet's source
//! against the sending device's addresses: the source address names the device. No bearer
//! token is needed, and a device can only ever speak for itself. Plain HTTP: the tunnel
//! already encrypts and authenticates.
//!
//! - `POST /device/v1/rotate` `{"public_key": "…"}`: the device's next key. Both keys are valid
//!   until the next one's first handshake, which moves the device's addresses to it in the data
//!   path (no packet lost) and makes it the current key in the store. Answered once the hub's
//!   interface knows the next key, so the device may switch at once.
//! - `GET /device/v1/rotation`: the device's key age against the hub's rotation schedule
//!   ([`RotationStatus`]), due also while an admin's request to rotate stands; `ferrowg key
//!   rotate IFACE --if-due` rotates only when it is due.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferrowg_daemon::Handle;
use ferrowg_hub_store::{Device, HubStore, UnixTime};
use ferrowg_keys::key::PublicKey;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;

use crate::api::problem::Problem;
pub use crate::api::types::RotationStatus;

/// The device API's TCP port on the hub's tunnel address.
pub const PORT: u16 = 8444;
/// Longest a rotation request waits for the interface to know the next key.
const APPLY_LIMIT: Duration = Duration::from_secs(5);

/// `POST /device/v1/rotate`: the device's next public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// The next public key (base64).
    pub public_key: String,
}

/// The answer to a rotation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateResponse {
    /// The device's name.
    pub device: String,
}

/// The URL of the device API for a hub whose tunnel address is `addr`.
pub fn url(addr: IpAddr) -> String {
    format!("http://{}", SocketAddr::new(addr, PORT))
}

#[derive(Clone)]
struct DeviceApi {
    store: Arc<dyn HubStore>,
    changed: Arc<Notify>,
    handle: Handle,
}

/// A listener on `addr`:[`PORT`], accepting only connections that arrived on interface
/// `iface`.
pub fn listen(iface: &str, addr: IpAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind_device(Some(iface.as_bytes()))?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(addr, PORT))?;
    socket.listen(64)
}

/// Serves the device API on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn HubStore>,
    changed: Arc<Notify>,
    handle: Handle,
) {
    let state = DeviceApi {
        store,
        changed,
        handle,
    };
    let app = Router::new()
        .route("/device/v1/rotate", post(rotate))
        .route("/device/v1/rotation", get(rotation))
        .layer(axum::extract::DefaultBodyLimit::max(4096))
        .with_state(state);
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, service).await {
        log::error!("device API: {e}");
    }
}

async fn rotate(
    State(api): State<DeviceApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(req): Json<RotateRequest>,
) -> Result<Json<RotateResponse>, Problem> {
    let key = PublicKey::from_base64(&req.public_key)
        .map_err(|e| Problem::invalid(format!("public_key: {e}")))?;
    let name = device_at(&api, peer).await?.name;
    api.store
        .begin_rotation(&name, key.as_bytes(), UnixTime::now())
        .await?;
    api.changed.notify_one();
    let deadline = Instant::now() + APPLY_LIMIT;
    while Instant::now() < deadline {
        if api.handle.has_peer(key.as_bytes()) {
            log::info!("device {name} rotates to {}", key.to_base64());
            return Ok(Json(RotateResponse { device: name }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Problem::internal())
}

/// The asking device's key age against the hub's schedule.
async fn rotation(
    State(api): State<DeviceApi>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Result<Json<RotationStatus>, Problem> {
    let device = device_at(&api, peer).await?;
    let settings = api.store.settings().await?;
    let now = UnixTime::now();
    Ok(Json(RotationStatus {
        key_age: u64::try_from(now.0.saturating_sub(device.key_since.0)).unwrap_or(0),
        rotate_after: settings.rotate_after,
        due: device.rotate_requested_at.is_some() || settings.rotation_due(device.key_since, now),
        device: device.name,
    }))
}

/// The device whose tunnel address `peer` comes from (the core checked it against the sending
/// peer's allowed IPs); 403 for any other address.
async fn device_at(api: &DeviceApi, peer: SocketAddr) -> Result<Device, Problem> {
    let ip = peer.ip().to_canonical();
    let devices = api.store.list_devices().await?;
    devices
        .into_iter()
        .find(|d| IpAddr::V4(d.ipv4) == ip || d.ipv6.map(IpAddr::V6) == Some(ip))
        .ok_or_else(|| Problem::forbidden(format!("{ip} is no device's address")))
}

/// Announces `public_key` as the next key of the device this runs on, to the device API at
/// `url` (`http://HUB_TUNNEL_ADDRESS:8444`, from the device's configuration). The request goes
/// through the tunnel: the hub knows the device by its tunnel address. Returns the device's
/// name in the hub.
pub async fn announce_rotation(url: &str, public_key: &PublicKey) -> Result<String, String> {
    let body = RotateRequest {
        public_key: public_key.to_base64(),
    };
    let http = plain_client(url)?;
    let req = http.post(format!("{}/device/v1/rotate", url.trim_end_matches('/')));
    let r: RotateResponse = call(url, req.json(&body)).await?;
    Ok(r.device)
}

/// Asks the device API at `url` whether this device's key is due for rotation.
pub async fn rotation_status(url: &str) -> Result<RotationStatus, String> {
    let http = plain_client(url)?;
    call(
        url,
        http.get(format!("{}/device/v1/rotation", url.trim_end_matches('/'))),
    )
    .await
}

/// An HTTP client for the device API at `url`, which must be plain `http://`.
fn plain_client(url: &str) -> Result<reqwest::Client, String> {
    if !url.starts_with("http://") {
        return Err(format!(
            "{url}: the device API is plain http:// inside the tunnel"
        ));
    }
    // Plain HTTP only: no TLS is ever negotiated (redirects are refused), so the TLS
    // configuration reqwest requires pins a certificate no server has.
    let tls = crate::tls::client_config(crate::tls::Pin::of(b"")).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// Sends `req` and decodes a successful JSON answer; a failure names `url`.
async fn call<T: serde::de::DeserializeOwned>(
    url: &str,
    req: reqwest::RequestBuilder,
) -> Result<T, String> {
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !status.is_success() {
        let detail: String = text.chars().take(500).collect();
        return Err(format!("{url}: HTTP {status}: {detail}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: unexpected answer: {e}"))
}
