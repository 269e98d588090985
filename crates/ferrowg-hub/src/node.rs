//! A hub node: one process that is both the WireGuard server the devices connect to and the
//! control plane. `ferrowg hub serve` runs [`run`]:
//! - the hub's interface ([`ferrowg_hub_dataplane::start`]): the daemon's data path with the
//!   hub's key (file or PKCS#11), listening on the endpoint's port, the hub's addresses from
//!   the pools, forwarding between devices under the policy;
//! - the sync loop ([`ferrowg_hub_dataplane::Sync`]), woken by every change the API makes;
//! - the HTTPS API ([`crate::serve::serve_api`]);
//! - the device API inside the tunnel ([`crate::device_api`]), on the hub's tunnel address;
//! - the metrics listener ([`crate::metrics`]), unless turned off;
//! - the heartbeat ([`crate::heartbeat`]): the node's row in the store's list of nodes.
//!
//! It ends on the shutdown future (SIGINT/SIGTERM), when the interface goes away, or when a
//! part fails; the interface is removed on the way out.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ferrowg_hub_dataplane::{HubKey, InterfaceSpec, Sync, View};
use ferrowg_hub_store::HubSettings;
use ferrowg_keys::pkcs11::Pkcs11Uri;

use crate::device_api;
use crate::heartbeat;
use crate::paths::DataDir;
use crate::serve::{bind, load, serve_api, ServeError};

/// The interface name when `--iface` is not given.
pub const DEFAULT_IFACE: &str = "fwhub0";
/// The MTU of the hub's interface (wg-quick's default for a 1500-byte underlay).
pub const MTU: u32 = 1420;

/// How a node runs, besides its data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOptions {
    /// The API's listening address; `None`: the one in `hub.json`.
    pub listen: Option<SocketAddr>,
    /// The WireGuard interface's name.
    pub iface: String,
    /// The metrics listener; `None`: no metrics.
    pub metrics: Option<SocketAddr>,
    /// The PostgreSQL database (`postgres://…`); `None`: the one `init` recorded, or SQLite.
    pub database: Option<String>,
    /// The node's name in the store's list of nodes (unique among the nodes sharing it).
    pub node: String,
}

/// Runs a hub node on data directory `dir` as `opts` say until `shutdown` completes.
/// `on_listening` is told the API's bound address once everything runs.
pub async fn run(
    dir: &DataDir,
    opts: &NodeOptions,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (listen, iface) = (opts.listen, opts.iface.as_str());
    let started_at = ferrowg_hub_store::UnixTime::now();
    let (state, tls, default_listen) = load(dir, opts.database.as_deref()).await?;
    let settings = state
        .store
        .settings()
        .await
        .map_err(|source| ServeError::Store {
            dir: dir.root().to_owned(),
            source,
        })?;
    let spec = interface_spec(dir, iface, &settings)?;
    let view = Arc::new(View::default());
    let start_view = view.clone();
    let (running, handle, takeover) =
        tokio::task::spawn_blocking(move || ferrowg_hub_dataplane::start(&spec, start_view))
            .await
            .map_err(|e| ServeError::DataPlane(e.to_string()))?
            .map_err(|e| ServeError::DataPlane(e.to_string()))?;
    let mut daemon = tokio::task::spawn_blocking(move || running.wait());
    takeover
        .spawn(handle.clone(), view.clone())
        .map_err(|e| ServeError::DataPlane(format!("the takeover thread: {e}")))?;
    let metrics_task = match opts.metrics {
        Some(addr) => Some(serve_metrics(addr, iface, &handle, &view, &state.counters).await?),
        None => None,
    };
    // Changes other hub nodes make (PostgreSQL) wake the sync loop as this node's API does.
    let changes_task = state.store.forward_changes(state.changed.clone());
    let beat_view = view.clone();
    let sync = Sync::new(state.store.clone(), handle.clone(), view);
    let sync_task = tokio::spawn(sync.run(state.changed.clone()));

    let (listener, bound) = bind(listen.unwrap_or(default_listen)).await?;
    let identity = heartbeat::Identity {
        name: opts.node.clone(),
        api: bound.to_string(),
        started_at,
    };
    let beat_task = heartbeat::spawn(state.store.clone(), identity, handle.clone(), beat_view);
    let devices = device_api::listen(iface, settings.pools.hub_v4().into()).map_err(|source| {
        ServeError::Listen {
            addr: SocketAddr::new(settings.pools.hub_v4().into(), device_api::PORT),
            source,
        }
    })?;
    let device_task = tokio::spawn(device_api::serve(
        devices,
        state.store.clone(),
        state.changed.clone(),
        handle.clone(),
    ));
    on_listening(bound);
    let outcome = tokio::select! {
        () = serve_api(state, listener, tls, shutdown) => Ok(()),
        ended = &mut daemon => Err(ServeError::DataPlane(match ended {
            Ok(Ok(())) => "the interface went away".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        })),
    };
    sync_task.abort();
    beat_task.abort();
    device_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    if let Some(t) = changes_task {
        t.abort();
    }
    handle.stop("the hub is stopping");
    if outcome.is_ok() {
        let _ = daemon.await;
    }
    outcome
}

/// Serves the metrics of the hub's interface `iface` on `addr` (a task).
async fn serve_metrics(
    addr: SocketAddr,
    iface: &str,
    handle: &ferrowg_daemon::Handle,
    view: &Arc<View>,
    counters: &crate::api::ApiCounters,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, ServeError> {
    let registry = crate::metrics::registry(iface, handle, view, counters);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    log::info!("metrics at http://{addr}/metrics");
    Ok(tokio::spawn(ferrowg_metrics::serve::serve(
        listener,
        Arc::new(registry),
    )))
}

/// The hub's interface: its key from the data directory, the endpoint's port, the hub's
/// first address of each pool.
fn interface_spec(
    dir: &DataDir,
    iface: &str,
    settings: &HubSettings,
) -> Result<InterfaceSpec, ServeError> {
    let key = match std::fs::read_to_string(dir.key_uri()) {
        Ok(text) => {
            let uri = Pkcs11Uri::parse(text.trim())
                .map_err(|e| ServeError::HubFile(format!("{}: {e}", dir.key_uri().display())))?;
            HubKey::Token(Box::new(uri))
        }
        Err(_) => {
            let key = ferrowg_keys::keyfile::read_private_key(&dir.key())
                .map_err(|e| ServeError::HubFile(format!("{}: {e}", dir.key().display())))?;
            HubKey::File(key)
        }
    };
    let port = crate::paths::port_of(&settings.endpoint).ok_or_else(|| {
        ServeError::HubFile(format!("the endpoint {} has no port", settings.endpoint))
    })?;
    let pools = &settings.pools;
    let mut addresses = vec![(IpAddr::from(pools.hub_v4()), pools.v4().prefix_len())];
    if let (Some(a), Some(p)) = (pools.hub_v6(), pools.v6()) {
        addresses.push((IpAddr::from(a), p.prefix_len()));
    }
    Ok(InterfaceSpec {
        iface: iface.to_string(),
        key,
        listen_port: port,
        addresses,
        mtu: MTU,
    })
}
