//! The API's client: HTTPS with the pinned certificate (no certificate authority is trusted),
//! one method per endpoint, returning the [`crate::api::types`] bodies. A problem response
//! becomes [`ClientError::Problem`] (its title and detail), a certificate that is not the
//! pinned one [`ClientError::PinMismatch`]. Responses are read up to [`MAX_RESPONSE`] bytes.
//! The admin token is sent only as a bearer header and never appears in an error.

use std::time::Duration;

use ferrowg_hub_store::ipnet::IpNet;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::api::types::{
    AddDeviceRequest, AddDeviceResponse, CreateTokenRequest, CreateTokenResponse, DeviceInfo,
    DeviceListParams, EnrollRequest, EnrollResponse, NodeInfo, PolicyCheck, PolicyInfo, Problem,
    RouteApproval, SettingsInfo, SettingsUpdate, TokenInfo,
};
use crate::tls::{self, Pin, PinMismatch};
use crate::token::EnrolToken;

/// Largest response body read, in bytes.
pub const MAX_RESPONSE: usize = 64 << 20;

/// How long one request may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The hub answered with a problem.
    #[error("{0}")]
    Problem(Problem),
    /// The server's certificate is not the pinned one.
    #[error("{url}: {message}")]
    PinMismatch {
        /// The URL.
        url: String,
        /// Expected and found pins.
        message: String,
    },
    /// The hub could not be reached or the connection failed.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What failed, with its causes.
        message: String,
    },
    /// The hub's answer was not what the API defines.
    #[error("{url}: unexpected response (HTTP {status}): {message}")]
    Response {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// What was wrong with it.
        message: String,
    },
    /// The client could not be set up (a malformed URL).
    #[error("{0}")]
    Setup(String),
}

/// A connection to one hub's API (clones share its connections).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    admin_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Client {
    /// A client for the API at `api` (`https://HOST:PORT`) whose certificate has `pin`, sending
    /// `admin_token` (`ID.SECRET`) as bearer credential when given.
    pub fn new(api: &str, pin: Pin, admin_token: Option<&str>) -> Result<Client, ClientError> {
        let base = Url::parse(api).map_err(|e| ClientError::Setup(format!("{api}: {e}")))?;
        if base.scheme() != "https" || base.host().is_none() {
            return Err(ClientError::Setup(format!("{api}: not an https:// URL")));
        }
        let tls = tls::client_config(pin).map_err(|e| ClientError::Setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Setup(chain(&e)))?;
        Ok(Client {
            http,
            base,
            admin_token: admin_token.map(|t| Zeroizing::new(t.trim().to_owned())),
        })
    }

    /// `POST /api/v1/enroll`.
    pub async fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, ClientError> {
        self.call(Method::POST, &["enroll"], Some(req)).await
    }

    /// `GET /api/v1/devices`.
    pub async fn list_devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        self.call(Method::GET, &["devices"], None::<&()>).await
    }

    /// `GET /api/v1/devices` with `params`: one page of devices, and how many match in all
    /// (the `X-Total-Count` header).
    pub async fn list_devices_page(
        &self,
        params: &DeviceListParams,
    ) -> Result<(Vec<DeviceInfo>, u64), ClientError> {
        let req = self
            .request(Method::GET, &["devices"])?
            .query(&crate::api::query::to_pairs(params));
        let (url, status, headers, body) = self.send_full(req).await?;
        let total = headers
            .get(crate::api::devices::TOTAL_COUNT)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ClientError::Response {
                url: url.clone(),
                status: status.as_u16(),
                message: "no X-Total-Count header".into(),
            })?;
        Ok((decode(&url, status, &body)?, total))
    }

    /// `GET /api/v1/devices/{name}`.
    pub async fn device(&self, name: &str) -> Result<DeviceInfo, ClientError> {
        self.call(Method::GET, &["devices", name], None::<&()>)
            .await
    }

    /// `POST /api/v1/devices`.
    pub async fn add_device(
        &self,
        req: &AddDeviceRequest,
    ) -> Result<AddDeviceResponse, ClientError> {
        self.call(Method::POST, &["devices"], Some(req)).await
    }

    /// `POST /api/v1/devices/{name}/revoke`.
    pub async fn revoke_device(&self, name: &str) -> Result<DeviceInfo, ClientError> {
        let path = ["devices", name, "revoke"];
        self.call(Method::POST, &path, None::<&()>).await
    }

    /// `POST /api/v1/devices/{name}/rotate`.
    pub async fn rotate_device(&self, name: &str) -> Result<DeviceInfo, ClientError> {
        let path = ["devices", name, "rotate"];
        self.call(Method::POST, &path, None::<&()>).await
    }

    /// `DELETE /api/v1/devices/{name}`.
    pub async fn delete_device(&self, name: &str) -> Result<(), ClientError> {
        let req = self.request(Method::DELETE, &["devices", name])?;
        self.send(req).await.map(drop)
    }

    /// `POST /api/v1/devices/{name}/routes`.
    pub async fn set_route_approval(
        &self,
        name: &str,
        prefix: &IpNet,
        approved: bool,
        map_to: Option<&IpNet>,
    ) -> Result<DeviceInfo, ClientError> {
        let body = RouteApproval {
            prefix: prefix.to_string(),
            approved,
            map_to: map_to.map(ToString::to_string),
        };
        let path = ["devices", name, "routes"];
        self.call(Method::POST, &path, Some(&body)).await
    }

    /// `POST /api/v1/tokens`.
    pub async fn create_token(
        &self,
        req: &CreateTokenRequest,
    ) -> Result<CreateTokenResponse, ClientError> {
        self.call(Method::POST, &["tokens"], Some(req)).await
    }

    /// `GET /api/v1/tokens`.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        self.call(Method::GET, &["tokens"], None::<&()>).await
    }

    /// `DELETE /api/v1/tokens/{id}`.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, ClientError> {
        self.call(Method::DELETE, &["tokens", id], None::<&()>)
            .await
    }

    /// `PUT /api/v1/policy` with the policy text.
    pub async fn set_policy(&self, text: &str) -> Result<PolicyInfo, ClientError> {
        let req = self
            .request(Method::PUT, &["policy"])?
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text.to_owned());
        let (url, status, body) = self.send(req).await?;
        decode(&url, status, &body)
    }

    /// `POST /api/v1/policy/check` with the policy text: how many tests ran (nothing stored).
    pub async fn check_policy(&self, text: &str) -> Result<PolicyCheck, ClientError> {
        let req = self
            .request(Method::POST, &["policy", "check"])?
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(text.to_owned());
        let (url, status, body) = self.send(req).await?;
        decode(&url, status, &body)
    }

    /// `GET /api/v1/nodes`.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ClientError> {
        self.call(Method::GET, &["nodes"], None::<&()>).await
    }

    /// `GET /api/v1/policy`.
    pub async fn policy(&self) -> Result<PolicyInfo, ClientError> {
        self.call(Method::GET, &["policy"], None::<&()>).await
    }

    /// `GET /api/v1/settings`.
    pub async fn settings(&self) -> Result<SettingsInfo, ClientError> {
        self.call(Method::GET, &["settings"], None::<&()>).await
    }

    /// `PATCH /api/v1/settings`.
    pub async fn update_settings(&self, req: &SettingsUpdate) -> Result<SettingsInfo, ClientError> {
        self.call(Method::PATCH, &["settings"], Some(req)).await
    }

    /// `GET /openapi.json`.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        let mut url = self.base.clone();
        url.set_path("/openapi.json");
        let (url, status, body) = self.send(self.http.get(url)).await?;
        decode(&url, status, &body)
    }

    /// A request to `/api/v1/` + `path` (each element one path segment, escaped).
    fn request(&self, method: Method, path: &[&str]) -> Result<RequestBuilder, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::Setup(format!("{}: not a base URL", self.base)))?
            .clear()
            .extend(["api", "v1"])
            .extend(path);
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.admin_token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", token.as_str()));
        }
        Ok(req)
    }

    /// Sends `method path` with `body` as JSON, and decodes the JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        body: Option<&impl Serialize>,
    ) -> Result<T, ClientError> {
        let mut req = self.request(method, path)?;
        if let Some(body) = body {
            req = req.json(body);
        }
        let (url, status, bytes) = self.send(req).await?;
        decode(&url, status, &bytes)
    }

    /// Sends a request; a success gives the status and body, a problem its error.
    async fn send(
        &self,
        req: RequestBuilder,
    ) -> Result<(String, StatusCode, Vec<u8>), ClientError> {
        let (url, status, _, body) = self.send_full(req).await?;
        Ok((url, status, body))
    }

    /// As [`Client::send`], with the response's headers.
    async fn send_full(
        &self,
        req: RequestBuilder,
    ) -> Result<(String, StatusCode, reqwest::header::HeaderMap, Vec<u8>), ClientError> {
        let req = req.build().map_err(|e| ClientError::Setup(chain(&e)))?;
        let url = req.url().as_str().to_owned();
        let mut response = self
            .http
            .execute(req)
            .await
            .map_err(|e| transport(&url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(&url, &e))? {
            if body.len() + chunk.len() > MAX_RESPONSE {
                let message = format!("response larger than {MAX_RESPONSE} bytes");
                return Err(ClientError::Response {
                    url,
                    status: status.as_u16(),
                    message,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok((url, status, headers, body));
        }
        match serde_json::from_slice::<Problem>(&body) {
            Ok(problem) => Err(ClientError::Problem(problem)),
            Err(_) => Err(ClientError::Response {
                url,
                status: status.as_u16(),
                message: String::from_utf8_lossy(&body).chars().take(200).collect(),
            }),
        }
    }
}

/// Enrols with `token`: connects to the API the token names, pinned to its certificate, and
/// presents its secret with the device's `name`, `public_key` and advertised `routes`.
pub async fn enroll(
    token: &EnrolToken,
    name: &str,
    public_key: &[u8; 32],
    routes: &[IpNet],
) -> Result<EnrollResponse, ClientError> {
    let client = Client::new(token.api(), token.pin(), None)?;
    let mut req = EnrollRequest {
        token_secret: token.secret().to_string(),
        name: name.to_owned(),
        public_key: ferrowg_keys::key::PublicKey::from_bytes(*public_key).to_base64(),
        advertise_routes: routes.iter().map(ToString::to_string).collect(),
    };
    let result = client.enroll(&req).await;
    zeroize::Zeroize::zeroize(&mut req.token_secret);
    result
}

fn decode<T: DeserializeOwned>(
    url: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::Response {
        url: url.to_owned(),
        status: status.as_u16(),
        message: e.to_string(),
    })
}

/// A transport error, told apart when the cause is the pin.
fn transport(url: &str, e: &reqwest::Error) -> ClientError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(mismatch) = pin_mismatch(err) {
            return ClientError::PinMismatch {
                url: url.to_owned(),
                message: mismatch.to_string(),
            };
        }
        source = err.source();
    }
    ClientError::Transport {
        url: url.to_owned(),
        message: chain(e),
    }
}

/// The pin mismatch `err` is or wraps directly: the verifier's error inside rustls's, possibly
/// inside an `io::Error` (whose `source` skips the error it wraps).
fn pin_mismatch<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a PinMismatch> {
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if let Some(inner) = io.get_ref() {
            return pin_mismatch(inner);
        }
    }
    if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) =
        err.downcast_ref::<rustls::Error>()
    {
        return other.0.downcast_ref::<PinMismatch>();
    }
    err.downcast_ref::<PinMismatch>()
}

/// An error and its causes, `: `-separated, without repeats.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    parts.join(": ")
}
