//! The web dashboard, served on the API's listener beside `/api` (same TLS, same admin tokens).
//!
//! | path | what |
//! |---|---|
//! | `GET /`, `GET /ui` | redirect to `/ui/` |
//! | `GET /ui/` | the page (`assets/ui/index.html`) |
//! | `GET /ui/core.js`, `GET /ui/pages.js` | its scripts: helpers, API calls, routing and login; the pages |
//! | `GET /ui/app.css` | its style sheet |
//! | `POST /ui/qr` | read scope: the body (text, at most [`MAX_QR_TEXT`] bytes) as an SVG QR code |
//!
//! The four files are embedded in the binary: no build step, nothing fetched from elsewhere.
//! The page runs in the browser and talks to `/api/v1` with the admin token the user types in,
//! kept in `sessionStorage` only. Every response of this module carries [`CONTENT_SECURITY_POLICY`]
//! (scripts and styles only from these files, no inline code, no framing, no form posts),
//! `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`; the page inserts what
//! the API returns as text, never as markup.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY as CONTENT_SECURITY_POLICY_HEADER, CONTENT_TYPE,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use qrcode::render::svg;
use qrcode::QrCode;

use crate::api::auth::ReadAccess;
use crate::api::problem::Problem;
use crate::api::ApiState;

/// The dashboard's page.
const INDEX_HTML: &str = include_str!("../../assets/ui/index.html");
/// The dashboard's first script: DOM helpers, the API calls, hash routing, the login page.
const CORE_JS: &str = include_str!("../../assets/ui/core.js");
/// The dashboard's second script (run after the first): every other page.
const PAGES_JS: &str = include_str!("../../assets/ui/pages.js");
/// The dashboard's style sheet.
const APP_CSS: &str = include_str!("../../assets/ui/app.css");

/// The longest text `POST /ui/qr` encodes, in bytes (an enrolment token is about 200).
pub const MAX_QR_TEXT: usize = 1024;

/// The Content-Security-Policy of every dashboard response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'none'";

/// The dashboard's routes, merged with the API's by [`crate::app::router`] (which supplies the
/// state, the concurrency limit and the problem fallback for unknown paths).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route(
            "/ui/",
            get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/ui/core.js",
            get(|| asset("text/javascript; charset=utf-8", CORE_JS)),
        )
        .route(
            "/ui/pages.js",
            get(|| asset("text/javascript; charset=utf-8", PAGES_JS)),
        )
        .route(
            "/ui/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/ui/qr", post(qr).layer(DefaultBodyLimit::max(MAX_QR_TEXT)))
        .layer(axum::middleware::map_response(security_headers))
}

/// Adds the security headers to a dashboard response.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (CONTENT_SECURITY_POLICY_HEADER, CONTENT_SECURITY_POLICY),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// An embedded file with its media type; browsers revalidate it on every load (it changes with
/// the binary).
async fn asset(media: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, media), (CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `POST /ui/qr`: the body as a QR code in SVG. The text is typically a new enrolment token,
/// so the answer is not cached.
async fn qr(_: ReadAccess, body: Result<Bytes, BytesRejection>) -> Result<Response, Problem> {
    let body = body.map_err(|_| too_large())?;
    if body.len() > MAX_QR_TEXT {
        return Err(too_large());
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| Problem::invalid("the text to encode is not UTF-8"))?;
    if text.is_empty() {
        return Err(Problem::invalid("there is no text to encode"));
    }
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| Problem::invalid(format!("the text does not fit a QR code: {e}")))?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(320, 320)
        .quiet_zone(true)
        .build();
    Ok((
        [(CONTENT_TYPE, "image/svg+xml"), (CACHE_CONTROL, "no-store")],
        image,
    )
        .into_response())
}

/// 413: the text is longer than [`MAX_QR_TEXT`].
fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Body too large",
        format!("a QR code holds at most {MAX_QR_TEXT} bytes of text here"),
    )
}
