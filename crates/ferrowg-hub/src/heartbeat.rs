//! The node's heartbeat: every [`EVERY`], `hub serve` writes its row in the store's `nodes`
//! table (name, API address, version, start time, and what its data plane sees: devices
//! online, handshakes completed), which `GET /api/v1/nodes` lists for every node sharing the
//! store. A heartbeat that fails (the database away: the hub is fail-static) is logged, once
//! as a warning until one succeeds again, and tried again at the next beat; it never stops
//! the node.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrowg_daemon::Handle;
use ferrowg_hub_dataplane::View;
use ferrowg_hub_store::{HubNode, HubStore, UnixTime};

use crate::api::ONLINE_WITHIN;

/// Time between two heartbeats.
pub const EVERY: Duration = Duration::from_secs(5);

/// The longest node name (as the store takes it).
pub use ferrowg_hub_store::nodes::MAX_NODE_NAME;

/// What the data plane sees, for a heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Devices with a handshake at most [`ONLINE_WITHIN`] seconds old.
    pub devices_online: u64,
    /// Handshakes completed since the interface started.
    pub handshakes: u64,
}

/// Who the node is: the parts of its heartbeat that do not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its name (`hub serve --node`).
    pub name: String,
    /// Its API's listening address.
    pub api: String,
    /// When it started.
    pub started_at: UnixTime,
}

/// The counts of the hub's interface behind `handle`: devices (named in `view`'s directory; a
/// device rotating its key is one device under two keys) with a recent handshake, and
/// handshakes completed.
pub fn interface_counts(handle: &Handle, view: &View) -> Counts {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let within = u128::try_from(ONLINE_WITHIN).unwrap_or(0) * 1_000_000_000;
    let observed = handle.observe();
    let directory = view.directory();
    let mut online: Vec<&str> = observed
        .peers
        .iter()
        .filter(|p| {
            p.last_handshake_unix_nanos
                .is_some_and(|t| now.saturating_sub(u128::from(t)) <= within)
        })
        .filter_map(|p| directory.get(&p.public_key).map(|m| m.name.as_str()))
        .collect();
    online.sort_unstable();
    online.dedup();
    Counts {
        devices_online: online.len() as u64,
        handshakes: observed.device.handshakes_completed,
    }
}

/// Starts the heartbeat of `node` every [`EVERY`], with the counts of the hub's interface
/// behind `handle` (devices named in `view`).
pub fn spawn(
    store: Arc<dyn HubStore>,
    node: Identity,
    handle: Handle,
    view: Arc<View>,
) -> tokio::task::JoinHandle<()> {
    let counts = move || interface_counts(&handle, &view);
    tokio::spawn(run(store, node, counts, EVERY))
}

/// The host name (`/proc/sys/kernel/hostname`), as the default node name.
pub fn host_name() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = raw.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Writes a heartbeat for `node` into `store` every `every` (the first at once), with the
/// counts `counts` gives at that moment, until the task is dropped.
pub async fn run(
    store: Arc<dyn HubStore>,
    node: Identity,
    counts: impl Fn() -> Counts + Send,
    every: Duration,
) {
    let mut failing = false;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let c = counts();
        let row = HubNode {
            name: node.name.clone(),
            api: node.api.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: node.started_at,
            last_seen: UnixTime::now(),
            devices_online: c.devices_online,
            handshakes: c.handshakes,
        };
        match store.heartbeat(&row).await {
            Ok(()) if failing => {
                log::info!("node {}: heartbeats written again", node.name);
                failing = false;
            }
            Ok(()) => {}
            Err(e) if failing => log::debug!("node {}: heartbeat: {e}", node.name),
            Err(e) => {
                log::warn!(
                    "node {}: heartbeat: {e} (the node runs on; retrying every {} s)",
                    node.name,
                    every.as_secs()
                );
                failing = true;
            }
        }
    }
}
