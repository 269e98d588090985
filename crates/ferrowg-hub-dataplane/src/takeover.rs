//! Taking over devices from another hub node. Several nodes share one database; the devices'
//! endpoint is a service address that moves to the standby when the active node dies. The
//! devices then send on sessions the new node never had: it drops those datagrams (unknown
//! receiver index), and the devices would wait 15 s (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT)
//! before they handshake again. Instead, the data path hands the sender's address here
//! ([`ferrowg_daemon::Forwarding::unknown_session`]); when the directory knows a device last
//! heard from at that address (the endpoint the store recorded), the node starts a handshake
//! with it at once, so traffic resumes within a round trip.
//!
//! Bounded: a queue of [`QUEUE`] addresses (more are dropped), one handshake per address per
//! [`AGAIN_AFTER`], at most [`MAX_TRACKED`] addresses remembered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrowg_daemon::Handle;

use crate::view::View;

/// Addresses waiting to be looked at; more are dropped until there is room.
pub const QUEUE: usize = 1024;
/// The least time between two handshakes started for one address (REKEY_TIMEOUT).
pub const AGAIN_AFTER: Duration = Duration::from_secs(5);
/// Addresses remembered for [`AGAIN_AFTER`]; when full, the oldest are forgotten.
pub const MAX_TRACKED: usize = 65_536;

/// The receiving end, run by [`Takeover::spawn`].
pub struct Takeover {
    rx: Receiver<SocketAddr>,
}

/// The queue between the data path (sender) and the takeover thread.
pub(crate) fn channel() -> (SyncSender<SocketAddr>, Takeover) {
    let (tx, rx) = sync_channel(QUEUE);
    (tx, Takeover { rx })
}

impl Takeover {
    /// Runs on a thread of its own until the interface's data path is gone.
    pub fn spawn(self, handle: Handle, view: Arc<View>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("takeover".into())
            .spawn(move || self.run(&handle, &view))
    }

    fn run(self, handle: &Handle, view: &View) {
        let mut last: HashMap<SocketAddr, Instant> = HashMap::new();
        while let Ok(from) = self.rx.recv() {
            if handle.stopping() {
                return;
            }
            let now = Instant::now();
            if last
                .get(&from)
                .is_some_and(|t| now.duration_since(*t) < AGAIN_AFTER)
            {
                continue;
            }
            if last.len() >= MAX_TRACKED {
                last.retain(|_, t| now.duration_since(*t) < AGAIN_AFTER);
                if last.len() >= MAX_TRACKED {
                    last.clear();
                }
            }
            last.insert(from, now);
            let Some(key) = view.directory().key_at(from) else {
                continue;
            };
            let name = view.directory().get(&key).map(|m| m.name.clone());
            match handle.initiate(&key, from) {
                Ok(()) => log::info!(
                    "device {} at {from} has a session this node does not know (another hub \
                     node had it): handshaking with it",
                    name.unwrap_or_default()
                ),
                Err(e) => log::debug!("handshake with {from}: {e}"),
            }
        }
    }
}
