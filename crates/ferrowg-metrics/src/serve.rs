//! The `/metrics` listener: `GET /metrics` in the OpenMetrics text format; every other path is
//! 404. A few scrapes at a time; more wait.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// The media type of the answer.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Scrapes answered at once; more wait for a slot.
const MAX_CONCURRENT_SCRAPES: usize = 4;

/// Serves `registry` on `listener` until the task ends or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>) -> io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_CONCURRENT_SCRAPES,
        ))
        .with_state(registry);
    axum::serve(listener, app).await
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &registry) {
        Ok(()) => (
            StatusCode::OK,
            [(CONTENT_TYPE, CONTENT_TYPE_OPENMETRICS)],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "encoding the metrics failed\n".to_owned(),
        ),
    }
}

/// Binds `addr` now (so that a port in use is reported to the caller) and serves `registry` on
/// it from a thread of its own, for a process without an async runtime (`ferrowg daemon`).
/// Returns the bound address.
pub fn spawn_thread(addr: SocketAddr, registry: Arc<Registry>) -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            runtime.block_on(async move {
                let result = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => serve(l, registry).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    log::error!("metrics listener {bound}: {e}");
                }
            });
        })?;
    Ok(bound)
}
