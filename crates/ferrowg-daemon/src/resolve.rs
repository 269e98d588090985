//! Endpoints given as host names, resolved again when handshakes to them keep failing: what
//! wireguard-tools' `reresolve-dns.sh` does from cron, done by the daemon itself, so that a
//! peer whose address changes behind a stable name (a server that moved, a cellular peer on
//! dynamic DNS) is found again without any command.
//!
//! The command line sends the name with the resolved endpoint (`ferrowg_endpoint_host`, see
//! `ferrowg_conf::uapi`); [`EndpointNames`](crate::names::EndpointNames), in the shared
//! [`State`], keeps it per peer and
//! forgets it when the peer is removed or given a numeric endpoint. It also counts the
//! handshake initiations sent to each named peer's endpoint ([`EndpointNames::note_sent`], fed
//! by the outbox with every datagram the device emits).
//!
//! The rule: a named peer is resolved again when [`UNANSWERED`] initiations have gone to its
//! endpoint with no handshake completed since its last handshake, endpoint change or lookup
//! (the first initiation got no response for REKEY_TIMEOUT and was retried), and at most once
//! per [`MIN_INTERVAL`] (2 × REKEY_TIMEOUT). Lookups continue while initiations do, and stop
//! with them when the core gives up. When the name's address (chosen as the command line
//! chooses it, IPv4 first) differs from the endpoint, the endpoint is set to it and a line is
//! logged. A peer that moved while carrying traffic: its session's keepalive timeout starts a
//! handshake after 15 s, the first retry 5 s later triggers the lookup, the second retry goes
//! to the new address, about 25 s after the move. (reresolve-dns.sh acts only once the latest
//! handshake is 135 s old, and on idle peers too.)
//!
//! The lookups (getaddrinfo, which may block for seconds) run on their own thread ([`run`]),
//! never under the state lock nor on the data-path or timer threads: the lock is taken
//! briefly to pick the peers that are due, and again to set an endpoint that changed.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ferrowg_conf::addr::preferred_address;
use ferrowg_keys::key::PublicKey;

use crate::datapath::{Shared, POLL};
use crate::names::{Lookup, TICK};
use crate::state::{self, State};

/// The resolver thread: every [`TICK`], looks up the names that are due and sets the
/// endpoints that changed, until the daemon stops (noticed within [`POLL`]).
pub fn run(shared: Arc<Shared>) {
    let mut slept = Duration::ZERO;
    while !shared.stopping() {
        std::thread::sleep(POLL);
        slept += POLL;
        if slept < TICK {
            continue;
        }
        slept = Duration::ZERO;
        let due = {
            let mut st = shared.lock();
            let st = &mut *st;
            st.names.due(&st.device, state::now())
        };
        for lookup in due {
            if shared.stopping() {
                return;
            }
            // Without the lock: getaddrinfo may block for seconds.
            let found = (lookup.host.host(), lookup.host.port())
                .to_socket_addrs()
                .map(preferred_address);
            let mut st = shared.lock();
            match found {
                Ok(Some(addr)) => {
                    update(&mut st, &lookup, addr);
                }
                Ok(None) => log::warn!(
                    "peer {}: {} has no address",
                    PublicKey::from_bytes(lookup.key),
                    lookup.host
                ),
                Err(e) => log::warn!(
                    "peer {}: cannot resolve {}: {e}",
                    PublicKey::from_bytes(lookup.key),
                    lookup.host
                ),
            }
        }
    }
}

/// Sets the endpoint of the peer of `lookup` to `addr`, the address its name now has, unless
/// the peer is gone, its name changed meanwhile, or it is there already. Returns whether the
/// endpoint changed.
fn update(st: &mut State, lookup: &Lookup, addr: SocketAddr) -> bool {
    let addr = ferrowg_sys::canonical(addr);
    if st.names.host(&lookup.key) != Some(&lookup.host) {
        return false;
    }
    let Some(id) = st.device.peer_by_key(&lookup.key) else {
        return false;
    };
    let old = st.device.peer_info(id).and_then(|i| i.endpoint);
    if old == Some(addr) {
        log::debug!(
            "peer {}: {} still resolves to {addr}",
            PublicKey::from_bytes(lookup.key),
            lookup.host
        );
        return false;
    }
    if st.device.set_endpoint(id, Some(addr)).is_err() {
        return false;
    }
    let was = old.map_or_else(|| "none".to_string(), |o| o.to_string());
    log::info!(
        "peer {}: handshakes failing; {} now resolves to {addr} (endpoint was {was})",
        PublicKey::from_bytes(lookup.key),
        lookup.host
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;

    use crate::names::{EndpointNames, Named};
    use ferrowg_conf::addr::HostEndpoint;
    use ferrowg_conf::uapi::PeerOp;
    use ferrowg_proto::messages::{HANDSHAKE_INITIATION_SIZE, MESSAGE_HANDSHAKE_INITIATION};
    use ferrowg_proto::{Device, Instant};

    use ferrowg_proto::crypto::RingCrypto;
    use ferrowg_proto::device::PeerConfig;

    const KEY: [u8; 32] = [7; 32];

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn host(s: &str) -> HostEndpoint {
        HostEndpoint::parse(s).unwrap()
    }

    /// A datagram that looks like a handshake initiation.
    fn initiation() -> Vec<u8> {
        let mut d = vec![0; HANDSHAKE_INITIATION_SIZE];
        d[0] = MESSAGE_HANDSHAKE_INITIATION;
        d
    }

    /// A state with one peer (`KEY`) at `endpoint`, named by `name`.
    fn state_with_peer(endpoint: &str, name: &str) -> State {
        let rng = crate::rng::ErasingRng::from_os().unwrap();
        let device = Device::new(Box::new(state::NoKey), Box::new(RingCrypto), Box::new(rng));
        let mut st = State::new(device, ferrowg_sys::UdpSocket::bind(0).unwrap());
        let id = st
            .device
            .add_peer(KEY, PeerConfig::default(), Instant::ZERO)
            .unwrap();
        let ep = addr(endpoint);
        st.device.set_endpoint(id, Some(ep)).unwrap();
        let ops = [PeerOp::Endpoint(ep), PeerOp::EndpointHost(host(name))];
        st.names.follow_set(&KEY, &ops, || Some(ep));
        st
    }

    fn secs(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn a_name_follows_the_set_that_gives_or_removes_it() {
        let mut names = EndpointNames::default();
        let ep = addr("10.0.0.1:5");
        let named = [PeerOp::Endpoint(ep), PeerOp::EndpointHost(host("a.test:5"))];
        names.follow_set(&KEY, &named, || Some(ep));
        assert_eq!(names.host(&KEY), Some(&host("a.test:5")));
        // Other operations leave it.
        names.follow_set(&KEY, &[PeerOp::ReplaceAllowedIps], || Some(ep));
        assert_eq!(names.host(&KEY), Some(&host("a.test:5")));
        // A numeric endpoint forgets it.
        names.follow_set(&KEY, &[PeerOp::Endpoint(ep)], || Some(ep));
        assert_eq!(names.host(&KEY), None);
        names.follow_set(&KEY, &named, || Some(ep));
        names.forget(&KEY);
        assert_eq!(names.host(&KEY), None);
        names.follow_set(&KEY, &named, || Some(ep));
        names.clear();
        assert_eq!(names.host(&KEY), None);
    }

    #[test]
    fn due_after_an_unanswered_initiation_is_retried_then_not_before_min_interval() {
        let mut st = state_with_peer("10.0.0.1:5", "a.test:5");
        let ep = addr("10.0.0.1:5");
        let init = initiation();
        assert!(st.names.due(&st.device, secs(1)).is_empty());
        st.names.note_sent(ep, &init);
        assert!(
            st.names.due(&st.device, secs(2)).is_empty(),
            "one initiation"
        );
        // Not initiations, or sent elsewhere: not counted.
        st.names.note_sent(ep, &[MESSAGE_HANDSHAKE_INITIATION; 32]);
        st.names.note_sent(addr("10.0.0.9:5"), &init);
        assert!(st.names.due(&st.device, secs(3)).is_empty());
        st.names.note_sent(ep, &init);
        let due = st.names.due(&st.device, secs(7));
        let want = Lookup {
            key: KEY,
            host: host("a.test:5"),
        };
        assert_eq!(due, vec![want]);
        // Once looked up, the next lookup needs two more unanswered initiations and
        // MIN_INTERVAL.
        assert!(st.names.due(&st.device, secs(8)).is_empty());
        st.names.note_sent(ep, &init);
        st.names.note_sent(ep, &init);
        assert!(st.names.due(&st.device, secs(16)).is_empty(), "too soon");
        assert_eq!(st.names.due(&st.device, secs(17)).len(), 1);
        // No more initiations (the core gave up): no more lookups.
        assert!(st.names.due(&st.device, secs(100)).is_empty());
    }

    #[test]
    fn an_endpoint_change_starts_the_count_again() {
        let mut st = state_with_peer("10.0.0.1:5", "a.test:5");
        let init = initiation();
        st.names.note_sent(addr("10.0.0.1:5"), &init);
        // The peer roamed: initiations to the old address no longer count.
        let id = st.device.peer_by_key(&KEY).unwrap();
        st.device
            .set_endpoint(id, Some(addr("10.0.0.2:5")))
            .unwrap();
        assert!(st.names.due(&st.device, secs(1)).is_empty());
        st.names.note_sent(addr("10.0.0.2:5"), &init);
        assert!(st.names.due(&st.device, secs(2)).is_empty());
        st.names.note_sent(addr("10.0.0.2:5"), &init);
        assert_eq!(st.names.due(&st.device, secs(3)).len(), 1);
    }

    #[test]
    fn a_completed_handshake_answers_the_initiations() {
        let mut named = Named {
            host: host("a.test:5"),
            endpoint: Some(addr("10.0.0.1:5")),
            last_handshake: None,
            baseline: 0,
            last_lookup: None,
        };
        let mut sent = HashMap::from([(addr("10.0.0.1:5"), 1)]);
        let ep = Some(addr("10.0.0.1:5"));
        assert!(!named.observe(&mut sent, ep, Some(secs(1)), secs(1)));
        sent.insert(addr("10.0.0.1:5"), 2);
        assert!(!named.observe(&mut sent, ep, Some(secs(1)), secs(2)));
        sent.insert(addr("10.0.0.1:5"), 3);
        assert!(named.observe(&mut sent, ep, Some(secs(1)), secs(3)));
        // No endpoint: nothing to count, never due.
        assert!(!named.observe(&mut sent, None, Some(secs(1)), secs(30)));
    }

    #[test]
    fn names_of_removed_peers_and_their_counts_are_dropped() {
        let mut st = state_with_peer("10.0.0.1:5", "a.test:5");
        st.names.note_sent(addr("10.0.0.1:5"), &initiation());
        let id = st.device.peer_by_key(&KEY).unwrap();
        st.device.remove_peer(id);
        assert!(st.names.due(&st.device, secs(1)).is_empty());
        assert_eq!(st.names.host(&KEY), None);
        assert!(st.names.sent.is_empty());
    }

    #[test]
    fn update_sets_a_changed_address_for_the_same_name_only() {
        let mut st = state_with_peer("10.0.0.1:5", "a.test:5");
        let lookup = Lookup {
            key: KEY,
            host: host("a.test:5"),
        };
        let endpoint = |st: &State| {
            let id = st.device.peer_by_key(&KEY).unwrap();
            st.device.peer_info(id).unwrap().endpoint
        };
        assert!(
            !update(&mut st, &lookup, addr("10.0.0.1:5")),
            "same address"
        );
        assert!(update(&mut st, &lookup, addr("[::ffff:10.0.0.2]:5")));
        assert_eq!(endpoint(&st), Some(addr("10.0.0.2:5")), "canonical");
        // The name changed while the lookup ran: its answer is stale.
        let other = [PeerOp::EndpointHost(host("b.test:5"))];
        let now_at = endpoint(&st);
        st.names.follow_set(&KEY, &other, || now_at);
        assert!(!update(&mut st, &lookup, addr("10.0.0.3:5")));
        assert_eq!(endpoint(&st), Some(addr("10.0.0.2:5")));
    }
}
