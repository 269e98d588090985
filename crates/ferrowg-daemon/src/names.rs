//! The names of endpoints given as host names, and the rule for when to look one up again
//! ([`EndpointNames`], kept in the shared state): see [`crate::resolve`] for the thread that
//! does the lookups and for the whole rule.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use ferrowg_conf::addr::HostEndpoint;
use ferrowg_conf::uapi::PeerOp;
use ferrowg_proto::messages::{
    HANDSHAKE_INITIATION_SIZE, MESSAGE_HANDSHAKE_INITIATION, REKEY_TIMEOUT,
};
use ferrowg_proto::{Device, Instant};

/// Initiations sent to a named peer's endpoint, none answered, that make it due for a lookup.
pub const UNANSWERED: u64 = 2;
/// Least time between two lookups of one peer's name.
pub const MIN_INTERVAL: Duration = Duration::from_secs(2 * REKEY_TIMEOUT.as_secs());
/// How often the resolver thread looks for peers that are due.
pub const TICK: Duration = Duration::from_secs(1);

/// The host names of the peers whose endpoints were given as names, and the initiations sent
/// to their endpoints.
#[derive(Debug, Default)]
pub struct EndpointNames {
    /// Per peer (by public key): its name and what is known of its handshakes.
    peers: HashMap<[u8; 32], Named>,
    /// Initiations sent to each endpoint a named peer has, counted since it was first watched.
    pub(crate) sent: HashMap<SocketAddr, u64>,
}

/// One named peer.
#[derive(Debug)]
pub(crate) struct Named {
    /// The name and port, as written.
    pub(crate) host: HostEndpoint,
    /// The endpoint the peer had when last looked at.
    pub(crate) endpoint: Option<SocketAddr>,
    /// Its latest handshake when last looked at.
    pub(crate) last_handshake: Option<Instant>,
    /// The count of initiations sent to `endpoint` at its last handshake, endpoint change or
    /// lookup: those sent since are unanswered.
    pub(crate) baseline: u64,
    /// When the name was last looked up.
    pub(crate) last_lookup: Option<Instant>,
}

/// A name to look up for a peer, taken by [`EndpointNames::due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The peer's public key.
    pub key: [u8; 32],
    /// Its endpoint's name.
    pub host: HostEndpoint,
}

impl EndpointNames {
    /// The name of peer `key`'s endpoint, if it was given as one.
    pub fn host(&self, key: &[u8; 32]) -> Option<&HostEndpoint> {
        self.peers.get(key).map(|n| &n.host)
    }

    /// Forgets every name (the peers were all removed).
    pub fn clear(&mut self) {
        self.peers.clear();
        self.sent.clear();
    }

    /// Forgets the name of peer `key` (removed, or given a numeric endpoint).
    pub fn forget(&mut self, key: &[u8; 32]) {
        self.peers.remove(key);
    }

    /// Follows a `set`'s operations `ops` on the existing peer `key`, whose endpoint is now
    /// `endpoint()` (asked only when a name is set): `endpoint=` forgets the name,
    /// `ferrowg_endpoint_host=` (after it) sets it.
    pub fn follow_set(
        &mut self,
        key: &[u8; 32],
        ops: &[PeerOp],
        endpoint: impl Fn() -> Option<SocketAddr>,
    ) {
        for op in ops {
            match op {
                PeerOp::Endpoint(_) => self.forget(key),
                PeerOp::EndpointHost(host) => self.set(key, host.clone(), endpoint()),
                _ => {}
            }
        }
    }

    /// Gives peer `key`, at `endpoint`, the name `host`.
    fn set(&mut self, key: &[u8; 32], host: HostEndpoint, endpoint: Option<SocketAddr>) {
        let baseline = endpoint.map_or(0, |e| *self.sent.entry(e).or_insert(0));
        let named = Named {
            host,
            endpoint,
            last_handshake: None,
            baseline,
            last_lookup: None,
        };
        self.peers.insert(*key, named);
    }

    /// Counts `datagram`, sent to `dst`, if it is a handshake initiation to the endpoint of a
    /// named peer. Cheap when no peer has a name.
    pub fn note_sent(&mut self, dst: SocketAddr, datagram: &[u8]) {
        if self.sent.is_empty()
            || datagram.len() != HANDSHAKE_INITIATION_SIZE
            || datagram[0] != MESSAGE_HANDSHAKE_INITIATION
        {
            return;
        }
        if let Some(n) = self.sent.get_mut(&dst) {
            *n += 1;
        }
    }

    /// The names due for a lookup at `now` (see the module documentation), each marked as
    /// looked up. Forgets the names of peers `device` no longer has.
    pub fn due(&mut self, device: &Device, now: Instant) -> Vec<Lookup> {
        let mut due = Vec::new();
        let sent = &mut self.sent;
        self.peers.retain(|key, named| {
            let Some(info) = device.peer_by_key(key).and_then(|id| device.peer_info(id)) else {
                return false;
            };
            if named.observe(sent, info.endpoint, info.last_handshake, now) {
                due.push(Lookup {
                    key: *key,
                    host: named.host.clone(),
                });
            }
            true
        });
        let watched: HashSet<SocketAddr> = self.peers.values().filter_map(|n| n.endpoint).collect();
        self.sent.retain(|e, _| watched.contains(e));
        due
    }
}

impl Named {
    /// Takes in the peer's `endpoint` and `last_handshake` at `now`; returns whether its name
    /// is due for a lookup (and if so, counts it as looked up).
    pub(crate) fn observe(
        &mut self,
        sent: &mut HashMap<SocketAddr, u64>,
        endpoint: Option<SocketAddr>,
        last_handshake: Option<Instant>,
        now: Instant,
    ) -> bool {
        let Some(current) = endpoint else {
            self.endpoint = None;
            return false;
        };
        let count = *sent.entry(current).or_insert(0);
        if self.endpoint != endpoint || self.last_handshake != last_handshake {
            self.endpoint = endpoint;
            self.last_handshake = last_handshake;
            self.baseline = count;
        }
        let recent = self
            .last_lookup
            .is_some_and(|t| now.saturating_duration_since(t) < MIN_INTERVAL);
        if count.saturating_sub(self.baseline) < UNANSWERED || recent {
            return false;
        }
        self.last_lookup = Some(now);
        self.baseline = count;
        true
    }
}
