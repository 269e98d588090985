//! Running the API: an HTTPS (HTTP/1.1 over rustls) listener that serves [`crate::app::router`]
//! until a shutdown future completes.
//!
//! Limits against clients that hold resources: at most [`MAX_CONNECTIONS`] connections at once
//! (more wait in the kernel's accept queue), [`HANDSHAKE_TIMEOUT`] for the TLS handshake,
//! [`HEADER_TIMEOUT`] for a request's headers, [`IDLE_TIMEOUT`] for a whole connection. [`run_api`] is the API alone on a data directory (`ferrowg hub serve`
//! until the data path joins it); [`serve_api`] serves on a listener the caller bound.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrowg_hub_store::{HubStore, SqlStore};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::api::ApiState;
use crate::app;
use crate::paths::DataDir;
use crate::tls;

/// Most connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Longest a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection is kept open (clients reconnect for more).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Why the API could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// `hub.json` is missing or malformed.
    #[error("{0}")]
    HubFile(String),
    /// The store could not be opened.
    #[error("opening the store in {dir}: {source}")]
    Store {
        /// The data directory.
        dir: PathBuf,
        /// Why.
        source: ferrowg_hub_store::StoreError,
    },
    /// The certificate or its key could not be loaded.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    /// The hub's WireGuard interface could not start, or stopped.
    #[error("the hub's interface: {0}")]
    DataPlane(String),
    /// Binding or accepting failed.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The system's error.
        source: std::io::Error,
    },
}

/// The API's state and TLS configuration from a data directory: the store (the PostgreSQL
/// database `database` names, else the one `init --database` recorded, else the SQLite file),
/// the public API URL and the pin from `hub.json`, the certificate and key files.
pub async fn load(
    dir: &DataDir,
    database: Option<&str>,
) -> Result<(ApiState, Arc<rustls::ServerConfig>, SocketAddr), ServeError> {
    let file = dir.read_hub_file().map_err(ServeError::HubFile)?;
    let pin = file.pin().map_err(ServeError::HubFile)?;
    let tls = tls::server_config(&dir.tls_cert(), &dir.tls_key())?;
    if !pin.matches(tls::read_cert(&dir.tls_cert())?.as_ref()) {
        let msg = format!(
            "{}: the pin in hub.json is not that of {}",
            dir.root().display(),
            dir.tls_cert().display()
        );
        return Err(ServeError::HubFile(msg));
    }
    let recorded = dir.database_url().map_err(ServeError::HubFile)?;
    let database = database.map(str::to_owned).or(recorded);
    let store = SqlStore::open_in(dir.root(), database.as_deref())
        .await
        .map_err(|source| ServeError::Store {
            dir: dir.root().to_owned(),
            source,
        })?;
    let store: Arc<dyn HubStore> = Arc::new(store);
    let state = ApiState::new(store, &file.public_api, pin);
    Ok((state, tls, file.listen))
}

/// Runs the API alone on data directory `dir`, listening on `listen` (or the address in
/// `hub.json`) until `shutdown` completes. `on_listening` is told the bound address.
pub async fn run_api(
    dir: &DataDir,
    listen: Option<SocketAddr>,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (state, tls, default_listen) = load(dir, None).await?;
    let (listener, bound) = bind(listen.unwrap_or(default_listen)).await?;
    on_listening(bound);
    serve_api(state, listener, tls, shutdown).await;
    Ok(())
}

/// A listener on `addr`, and the address it is bound to (the port, when `addr`'s is 0).
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Listen { addr, source })?;
    Ok((listener, bound))
}

/// Serves the API on `listener` with TLS `tls` until `shutdown` completes; connections in
/// progress then end with the runtime.
pub async fn serve_api(
    state: ApiState,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = TlsAcceptor::from(tls);
    let router = app::router(state);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // Wait for a free slot before accepting, so excess clients wait in the kernel.
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: wait a little rather than spin.
                    log::warn!("API: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            serve_connection(acceptor, router, tcp, peer).await;
            drop(permit);
        });
    }
}

/// One connection: the TLS handshake, then HTTP/1.1 requests until the client closes it.
async fn serve_connection(
    acceptor: TlsAcceptor,
    router: axum::Router,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            log::debug!("API: TLS handshake with {peer}: {e}");
            return;
        }
        Err(_) => {
            log::debug!("API: TLS handshake with {peer} timed out");
            return;
        }
    };
    let service = TowerToHyperService::new(router);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    match tokio::time::timeout(IDLE_TIMEOUT, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::debug!("API: connection from {peer}: {e}"),
        Err(_) => log::debug!("API: connection from {peer} closed after {IDLE_TIMEOUT:?}"),
    }
}
