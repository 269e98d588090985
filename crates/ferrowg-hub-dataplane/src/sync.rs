//! The sync loop: keeps the hub's interface in step with the store, and the store with what the
//! interface saw. Each round (at once after a change the API announces, else every second):
//! - the devices and the policy are read; the [`View`] the data path decides with is replaced;
//! - the peers are changed by one `set` request (`peers.rs`): a revoked device's peer goes,
//!   which drops its sessions and keys;
//! - new handshakes are recorded (a pending device becomes active, a rotation completes), and
//!   then a round follows at once, so that its rules apply without waiting;
//! - every [`STATS_EVERY`] rounds, the counters are stored.
//!
//! A failing round (the database away) changes nothing on the interface: the data path keeps
//! the last configuration and policy it had.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrowg_conf::uapi::PeerState;
use ferrowg_daemon::Handle;
use ferrowg_hub_store::{Device, DeviceState, DeviceStats, HubStore, StoreError, UnixTime};
use ferrowg_proto::netmap::Netmap;
use tokio::sync::Notify;

use crate::directory::Directory;
use crate::peers::{self, PeerTable};
use crate::view::View;

/// How long a round waits for a change before it runs anyway.
pub const ROUND: Duration = Duration::from_secs(1);
/// Rounds between two writes of the counters to the store.
pub const STATS_EVERY: u32 = 5;

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The interface refused the peers' configuration.
    #[error("the interface refused its peers' configuration: {0}")]
    Interface(ferrowg_conf::uapi::Errno),
}

/// The loop's memory between rounds.
pub struct Sync {
    store: Arc<dyn HubStore>,
    handle: Handle,
    view: Arc<View>,
    applied: PeerTable,
    policy_version: Option<i64>,
    handshakes: HashMap<[u8; 32], u64>,
    netmaps: HashMap<[u8; 32], Vec<Netmap>>,
    /// Current key → next key, as last given to the interface.
    successors: HashMap<[u8; 32], [u8; 32]>,
    rounds: u32,
}

impl Sync {
    /// A loop for the interface behind `handle`, reading `store` and publishing to `view`.
    pub fn new(store: Arc<dyn HubStore>, handle: Handle, view: Arc<View>) -> Sync {
        Sync {
            store,
            handle,
            view,
            applied: PeerTable::new(),
            policy_version: None,
            handshakes: HashMap::new(),
            netmaps: HashMap::new(),
            successors: HashMap::new(),
            rounds: 0,
        }
    }

    /// Runs rounds until the interface stops: one at once after `changed` is notified, else
    /// one every [`ROUND`].
    pub async fn run(mut self, changed: Arc<Notify>) {
        while !self.handle.stopping() {
            match self.round().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => log::warn!("hub sync: {e}"),
            }
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(ROUND) => {}
            }
        }
    }

    /// One round; returns whether another should follow at once (a device became active or
    /// completed a rotation).
    pub async fn round(&mut self) -> Result<bool, SyncError> {
        let devices = self.store.list_devices().await?;
        let policy = self.store.policy().await?;
        let version = policy.as_ref().map(|p| p.version);
        if version != self.policy_version {
            match policy
                .as_ref()
                .map(|p| ferrowg_policy::Policy::parse(&p.text))
            {
                Some(Ok(p)) => self.view.set_policy(Some(Arc::new(p.compile()))),
                None => self.view.set_policy(None),
                // Stored policies were checked before they were stored; keep the last one.
                Some(Err(e)) => log::error!("stored policy {version:?} does not parse: {e}"),
            }
            self.policy_version = version;
        }
        self.view.set_directory(Directory::new(&devices));
        let want = peers::wanted(&devices);
        let req = peers::plan(&self.applied, &want);
        if !req.peers.is_empty() {
            self.handle.set(&req).map_err(SyncError::Interface)?;
            self.applied = want;
        }
        self.link(&devices)?;
        // One reading of the interface serves the handshakes and the counters.
        let peers = self.handle.get().peers;
        let fill = peers::endpoints(&peers, &devices);
        if !fill.peers.is_empty() {
            self.handle.set(&fill).map_err(SyncError::Interface)?;
        }
        let again = self.record_handshakes(&peers).await?;
        self.rounds = self.rounds.wrapping_add(1);
        if self.rounds.is_multiple_of(STATS_EVERY) {
            self.store.record_stats(&stats(&peers)).await?;
        }
        Ok(again)
    }

    /// Gives each device's peers their prefix translations, and a rotating device's next key
    /// the current key as the peer it succeeds; each only when it changed.
    fn link(&mut self, devices: &[Device]) -> Result<(), SyncError> {
        let mut maps = HashMap::new();
        let mut successors = HashMap::new();
        for d in devices.iter().filter(|d| d.state != DeviceState::Revoked) {
            let m = peers::netmaps(d);
            for key in std::iter::once(d.public_key).chain(d.next_public_key) {
                if self.netmaps.get(&key) != Some(&m) {
                    self.handle
                        .set_netmaps(&key, &m)
                        .map_err(SyncError::Interface)?;
                }
                maps.insert(key, m.clone());
            }
            if let Some(next) = d.next_public_key {
                if self.successors.get(&d.public_key) != Some(&next) {
                    self.handle
                        .set_successor(&d.public_key, &next)
                        .map_err(SyncError::Interface)?;
                }
                successors.insert(d.public_key, next);
            }
        }
        self.netmaps = maps;
        self.successors = successors;
        Ok(())
    }

    /// Records the handshakes among `peers` completed since the last round (and forgets the
    /// peers that are gone); whether one activated a device or completed a rotation.
    async fn record_handshakes(&mut self, peers: &[PeerState]) -> Result<bool, SyncError> {
        let mut again = false;
        let mut seen = HashMap::with_capacity(peers.len());
        for p in peers {
            let key = *p.public_key.as_bytes();
            let at = p.last_handshake_time_sec;
            if at != 0 && self.handshakes.get(&key) != Some(&at) {
                let when = UnixTime(i64::try_from(at).unwrap_or(i64::MAX));
                match self.store.record_handshake(&key, when, p.endpoint).await {
                    Ok(outcome) => again |= outcome.activated || outcome.rotated,
                    // A peer whose device was deleted or revoked meanwhile: the next plan
                    // removes it.
                    Err(StoreError::NotFound(_)) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            seen.insert(key, at);
        }
        self.handshakes = seen;
        Ok(again)
    }
}

/// The counters of `peers`, as the store takes them.
fn stats(peers: &[PeerState]) -> Vec<DeviceStats> {
    // Only peers this node has had a session with: a standby node (several nodes on one
    // database) must not overwrite the active node's counters with its zeros.
    peers
        .iter()
        .filter(|p| p.last_handshake_time_sec > 0)
        .map(|p| DeviceStats {
            public_key: *p.public_key.as_bytes(),
            last_handshake: (p.last_handshake_time_sec > 0)
                .then(|| UnixTime(i64::try_from(p.last_handshake_time_sec).unwrap_or(0))),
            endpoint: p.endpoint,
            rx_bytes: p.rx_bytes,
            tx_bytes: p.tx_bytes,
        })
        .collect()
}
