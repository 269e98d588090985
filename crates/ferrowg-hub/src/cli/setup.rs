//! `ferrowg hub init` and `ferrowg hub serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use ferrowg_hub_store::ipnet::{Ipv4Net, Ipv6Net};
use ferrowg_hub_store::settings::DEFAULT_ROTATE_AFTER;

use super::{out, CliError};
use crate::api::convert::parse_duration;
use crate::heartbeat;
use crate::init::{init as run_init, InitOptions};
use crate::node;
use crate::paths::DataDir;

/// `ferrowg hub init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The new hub's data directory (must not exist or be empty).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Where devices reach the hub's WireGuard (HOST:PORT, e.g. hub.example.com:51820).
    #[arg(long, value_name = "HOST:PORT")]
    endpoint: String,
    /// The devices' IPv4 addresses (the hub takes the first host).
    #[arg(long = "pool", value_name = "PREFIX")]
    pool4: Ipv4Net,
    /// The devices' IPv6 addresses.
    #[arg(long, value_name = "PREFIX")]
    pool6: Option<Ipv6Net>,
    /// Keep the hub's key in a PKCS#11 token: the pkcs11: URI of an existing X25519 key
    /// (with pin-source= for the PIN, never pin-value=).
    #[arg(long, value_name = "URI")]
    pkcs11: Option<String>,
    /// The API's listening address [default: 0.0.0.0:8443].
    #[arg(long, value_name = "ADDR:PORT")]
    api: Option<SocketAddr>,
    /// The API URL enrolment tokens carry [default: https://ENDPOINT-HOST:API-PORT].
    #[arg(long, value_name = "URL")]
    api_url: Option<String>,
    /// Another name or address for the API's certificate (repeatable).
    #[arg(long, value_name = "NAME")]
    api_san: Vec<String>,
    /// Keep the hub's store in this PostgreSQL database (postgres://USER@HOST:PORT/DB), which
    /// several hub nodes may share, instead of DIR/hub.db.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// How old a device's key may grow before the device rotates it (`ferrowg key rotate
    /// IFACE --if-due`): 3600, 12h, 90d or never [default: 90d]. Nothing disconnects an
    /// overdue device.
    #[arg(long, value_name = "DURATION")]
    rotate_after: Option<String>,
}

/// `ferrowg hub init`: prints what it made and how to go on.
pub async fn init(a: InitArgs) -> Result<(), CliError> {
    let rotate_after = match &a.rotate_after {
        None => Some(DEFAULT_ROTATE_AFTER),
        Some(text) => parse_duration(text).map_err(|e| CliError(format!("--rotate-after: {e}")))?,
    };
    let opts = InitOptions {
        data: a.data,
        endpoint: a.endpoint,
        pool4: a.pool4,
        pool6: a.pool6,
        pkcs11: a.pkcs11,
        api: a.api,
        api_url: a.api_url,
        api_sans: a.api_san,
        rotate_after,
        database: a.database,
    };
    let report = run_init(&opts).await?;
    let dir = DataDir::new(&report.data);
    let f = &report.hub_file;
    out(&format!(
        "hub initialised in {}\n\
         WireGuard public key: {}\n\
         API: listening on {}, dial {}, tokens carry {}\n\
         TLS pin: {}\n\
         admin token (write scope): {}\n\
         next: ferrowg hub serve --data {}\n",
        report.data.display(),
        report.public_key,
        f.listen,
        f.api,
        f.public_api,
        f.pin,
        dir.admin_token().display(),
        report.data.display(),
    ))
}

/// `ferrowg hub serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The hub's data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The API's listening address [default: the one in DIR/hub.json].
    #[arg(long, value_name = "ADDR:PORT")]
    api: Option<SocketAddr>,
    /// The hub's WireGuard interface name.
    #[arg(long, value_name = "NAME")]
    iface: Option<String>,
    /// The PostgreSQL database several hub nodes share (postgres://USER@HOST:PORT/DB)
    /// [default: the one `init --database` recorded, else DIR/hub.db].
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Prometheus metrics at http://ADDR:PORT/metrics, or `off`.
    #[arg(long, value_name = "ADDR:PORT|off", default_value = crate::metrics::DEFAULT_METRICS)]
    metrics: String,
    /// This node's name in the list of hub nodes (`GET /api/v1/nodes`); nodes sharing a
    /// database need distinct names [default: the host name].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

/// `ferrowg hub serve`: the hub's interface and its APIs until SIGINT or SIGTERM. Prints `API
/// listening on ADDR` once everything runs (scripts wait for that line).
pub async fn serve(a: ServeArgs) -> Result<(), CliError> {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).try_init();
    let iface = a.iface.as_deref().unwrap_or(node::DEFAULT_IFACE);
    let metrics = match a.metrics.as_str() {
        "off" => None,
        text => Some(
            text.parse()
                .map_err(|_| CliError(format!("--metrics: {text:?} is not ADDR:PORT or off")))?,
        ),
    };
    let node_name = match a.node {
        Some(name) => name,
        None => heartbeat::host_name()
            .ok_or_else(|| CliError("cannot read the host name: give --node NAME".to_owned()))?,
    };
    if node_name.is_empty()
        || node_name.len() > heartbeat::MAX_NODE_NAME
        || !node_name.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(CliError(format!(
            "--node: {node_name:?}: 1 to {} printable characters without spaces",
            heartbeat::MAX_NODE_NAME
        )));
    }
    let opts = node::NodeOptions {
        listen: a.api,
        iface: iface.to_owned(),
        metrics,
        database: a.database,
        node: node_name,
    };
    let dir = DataDir::new(&a.data);
    let on_listening = |addr: SocketAddr| {
        let _ = out(&format!("API listening on {addr}\n"));
        log::info!("API listening on https://{addr}; WireGuard on interface {iface}");
    };
    node::run(&dir, &opts, on_listening, shutdown_signal()).await?;
    log::info!("shutting down");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
