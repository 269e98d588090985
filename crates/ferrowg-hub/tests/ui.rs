//! The web dashboard's routes through the API's router (tower `oneshot`, no socket): the
//! embedded files with their media types and security headers, the redirect of `/`, the QR code
//! endpoint's authentication and limits, and the page's rules that can be checked on its text
//! (no inline code, no `innerHTML`, no external URLs, the element ids the browser test uses).

mod support;

use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use axum::response::Response;
use ferrowg_hub::ui::{CONTENT_SECURITY_POLICY, MAX_QR_TEXT};
use support::Hub;
use tower::ServiceExt;

/// Sends one request to the API's router (which carries the dashboard).
async fn send(hub: &Hub, request: Request<Body>) -> Response {
    ferrowg_hub::app::router(hub.state.clone())
        .oneshot(request)
        .await
        .expect("the router answers")
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// `POST /ui/qr` with `body`, with the hub's admin token when `token` is given.
fn qr(token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::builder()
        .method(Method::POST)
        .uri("/ui/qr")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if let Some(t) = token {
        r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    r.body(body.into()).unwrap()
}

fn header_of<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn text(r: Response) -> String {
    let bytes = to_bytes(r.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn admin_token(hub: &Hub) -> String {
    std::fs::read_to_string(hub.data.admin_token())
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_have_media_types_and_security_headers() {
    let hub = Hub::start().await;
    let files = [
        (
            "/ui/",
            "text/html; charset=utf-8",
            "<script src=\"/ui/core.js\" defer></script>\n<script src=\"/ui/pages.js\"",
        ),
        (
            "/ui/core.js",
            "text/javascript; charset=utf-8",
            "window.ferrowgDash",
        ),
        (
            "/ui/pages.js",
            "text/javascript; charset=utf-8",
            "definePage('groups'",
        ),
        ("/ui/app.css", "text/css; charset=utf-8", "#devices-filter"),
    ];
    for (path, media, needle) in files {
        let r = send(&hub, get(path)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(header_of(&r, "content-type"), media, "{path}");
        assert_eq!(
            header_of(&r, "content-security-policy"),
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(header_of(&r, "x-content-type-options"), "nosniff");
        assert_eq!(header_of(&r, "referrer-policy"), "no-referrer");
        assert!(text(r).await.contains(needle), "{path} lacks {needle}");
    }
    for needed in [
        "default-src 'none'",
        "script-src 'self'",
        "form-action 'none'",
    ] {
        assert!(CONTENT_SECURITY_POLICY.contains(needed), "{needed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_redirects_and_unknown_paths_stay_problems() {
    let hub = Hub::start().await;
    for path in ["/", "/ui"] {
        let r = send(&hub, get(path)).await;
        assert!(r.status().is_redirection(), "{path}: {}", r.status());
        assert_eq!(header_of(&r, "location"), "/ui/");
    }
    let r = send(&hub, get("/ui/nothing-here")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&r, "content-type"), "application/problem+json");
    let r = send(&hub, get("/openapi.json")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(&hub, get("/api/v1/devices")).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the API still wants a token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_needs_a_token_and_bounds_its_text() {
    let hub = Hub::start().await;
    let token = admin_token(&hub);
    let r = send(&hub, qr(None, "fwg1.example")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = send(&hub, qr(Some("0123.bad"), "fwg1.example")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let long = "x".repeat(MAX_QR_TEXT + 1);
    let r = send(&hub, qr(Some(&token), long)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(header_of(&r, "content-type"), "application/problem+json");
    let r = send(&hub, qr(Some(&token), vec![0xff_u8, 0xfe])).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let r = send(&hub, qr(Some(&token), "x".repeat(MAX_QR_TEXT))).await;
    assert_eq!(r.status(), StatusCode::OK, "the longest text fits");
    let r = send(&hub, qr(Some(&token), "fwg1.example-token")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header_of(&r, "content-type"), "image/svg+xml");
    assert_eq!(header_of(&r, "cache-control"), "no-store");
    assert_eq!(
        header_of(&r, "content-security-policy"),
        CONTENT_SECURITY_POLICY
    );
    let svg = text(r).await;
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
}

/// The page's text keeps the rules the CSP and the contract with the browser test set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_has_no_inline_code_and_the_contract_ids() {
    let hub = Hub::start().await;
    let html = text(send(&hub, get("/ui/")).await).await;
    let mut js = text(send(&hub, get("/ui/core.js")).await).await;
    js += &text(send(&hub, get("/ui/pages.js")).await).await;
    let css = text(send(&hub, get("/ui/app.css")).await).await;
    for bad in [
        "<script>", "<style", "style=", "onclick", "onload", "http://", "https://",
    ] {
        assert!(!html.contains(bad), "index.html has {bad}");
    }
    for bad in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "console.",
        "window.confirm",
        "alert(",
        "localStorage",
        "http://",
        "https://",
    ] {
        assert!(!js.contains(bad), "core.js or pages.js has {bad}");
    }
    for bad in ["@import", "url(", "http://", "https://"] {
        assert!(!css.contains(bad), "app.css has {bad}");
    }
    let ids = [
        "login-token",
        "login-submit",
        "login-error",
        "nav-devices",
        "nav-groups",
        "nav-tokens",
        "nav-policy",
        "nav-nodes",
        "logout",
        "devices-filter",
        "devices-group",
        "devices-status",
        "devices-table",
        "devices-count",
        "devices-prev",
        "devices-next",
        "device-name",
        "device-status",
        "device-routes",
        "device-rotate",
        "device-revoke",
        "confirm-yes",
        "confirm-no",
        "token-group",
        "token-uses",
        "token-expires",
        "token-create",
        "token-value",
        "token-qr",
        "tokens-table",
        "error",
        "policy-text",
        "policy-check",
        "policy-save",
        "policy-result",
        "policy-error",
        "nodes-table",
        "groups-table",
    ];
    for id in ids {
        let quoted = [format!("id=\"{id}\""), format!("id: '{id}'")];
        assert!(
            quoted.iter().any(|q| html.contains(q) || js.contains(q)),
            "no element #{id}"
        );
    }
}
