//! The metrics of one interface, read at every scrape from the running daemon.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use ferrowg_daemon::observe::{Observation, PeerObservation};
use ferrowg_daemon::Handle;
use ferrowg_keys::key::PublicKey;
use ferrowg_proto::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// Names for peers (a hub's device names), shown as the `friendly_name` label.
pub trait PeerNames: Send + Sync + 'static {
    /// The name of the peer with public key `key`, if it has one.
    fn name(&self, key: &[u8; 32]) -> Option<String>;
}

/// Drop reasons of received handshake messages that passed mac1 and still failed: with the
/// handshakes given up for lack of an answer, they make `wireguard_handshakes_failed_total`.
const HANDSHAKE_FAILURES: [DropReason; 5] = [
    DropReason::HandshakeDecryptFailed,
    DropReason::StaleTimestamp,
    DropReason::UnknownPeer,
    DropReason::LowOrderPoint,
    DropReason::KeyUnavailable,
];

/// Reads interface `iface` through `handle` at every scrape.
#[derive(Clone)]
pub struct InterfaceCollector {
    iface: String,
    handle: Handle,
    names: Option<Arc<dyn PeerNames>>,
}

impl fmt::Debug for InterfaceCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterfaceCollector")
            .field("iface", &self.iface)
            .finish_non_exhaustive()
    }
}

impl InterfaceCollector {
    /// A collector for interface `iface`; `names` labels peers with a `friendly_name`.
    pub fn new(iface: &str, handle: Handle, names: Option<Arc<dyn PeerNames>>) -> Self {
        InterfaceCollector {
            iface: iface.to_owned(),
            handle,
            names,
        }
    }

    fn peer_labels(&self, p: &PeerObservation) -> Vec<(&'static str, String)> {
        let mut allowed = String::new();
        for (i, (addr, cidr)) in p.allowed_ips.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(allowed, "{sep}{addr}/{cidr}");
        }
        let mut labels = vec![
            ("interface", self.iface.clone()),
            (
                "public_key",
                PublicKey::from_bytes(p.public_key).to_base64(),
            ),
            ("allowed_ips", allowed),
        ];
        if let Some(name) = self.names.as_ref().and_then(|n| n.name(&p.public_key)) {
            labels.push(("friendly_name", name));
        }
        labels
    }

    fn encode_peers(&self, obs: &Observation, enc: &mut DescriptorEncoder) -> fmt::Result {
        let labels: Vec<_> = obs.peers.iter().map(|p| self.peer_labels(p)).collect();
        let series =
            |f: fn(&PeerObservation) -> u64| -> Vec<u64> { obs.peers.iter().map(f).collect() };
        let peer_counters = [
            (
                "wireguard_sent_bytes",
                "Bytes sent to the peer",
                series(|p| p.tx_bytes),
            ),
            (
                "wireguard_received_bytes",
                "Bytes received from the peer",
                series(|p| p.rx_bytes),
            ),
        ];
        for (name, help, values) in peer_counters {
            let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (l, v) in labels.iter().zip(values) {
                ConstCounter::new(v).encode(family.encode_family(l)?)?;
            }
        }
        let mut family = enc.encode_descriptor(
            "wireguard_latest_handshake_seconds",
            "Seconds since the Unix epoch of the latest handshake with the peer (0: never)",
            None,
            MetricType::Gauge,
        )?;
        for (l, p) in labels.iter().zip(&obs.peers) {
            let secs = p
                .last_handshake_unix_nanos
                .map_or(0.0, |ns| ns as f64 / 1e9);
            ConstGauge::new(secs).encode(family.encode_family(l)?)?;
        }
        Ok(())
    }

    fn encode_interface(&self, obs: &Observation, enc: &mut DescriptorEncoder) -> fmt::Result {
        let iface = [("interface", self.iface.as_str())];
        let d = &obs.device;
        let failed = d.handshakes_gave_up
            + HANDSHAKE_FAILURES
                .iter()
                .map(|r| d.drops.get(*r))
                .sum::<u64>();
        let counters = [
            (
                "wireguard_handshakes_initiated",
                "Handshake initiations sent",
                d.initiations_sent,
            ),
            (
                "wireguard_handshakes_completed",
                "Handshakes completed, as initiator or responder",
                d.handshakes_completed,
            ),
            (
                "wireguard_handshakes_failed",
                "Handshakes given up without an answer, and received handshake messages refused \
                 after their mac1 (bad decryption, old timestamp, unknown peer, low-order key, \
                 key unavailable)",
                failed,
            ),
            (
                "wireguard_cookie_replies_sent",
                "Cookie replies sent to handshake messages that came under load",
                d.cookie_replies_sent,
            ),
            (
                "wireguard_forwarded_packets",
                "Packets forwarded from one peer to another inside the process",
                obs.datapath.forwarded,
            ),
        ];
        for (name, help, value) in counters {
            let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(family.encode_family(&iface)?)?;
        }
        let mut family = enc.encode_descriptor(
            "wireguard_dropped_packets",
            "Packets dropped, by reason (the protocol core's reasons; policy: refused by the \
             forwarding policy; handshake_queue_full: over the handshake worker's queue)",
            None,
            MetricType::Counter,
        )?;
        let reasons = DropReason::ALL
            .iter()
            .map(|r| (r.name(), d.drops.get(*r)))
            .chain([
                ("policy", obs.datapath.policy_denied),
                ("handshake_queue_full", obs.datapath.handshake_queue_full),
            ]);
        for (reason, value) in reasons {
            let labels = [("interface", self.iface.as_str()), ("reason", reason)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        let mut family = enc.encode_descriptor(
            "wireguard_peers",
            "Peers configured",
            None,
            MetricType::Gauge,
        )?;
        let peers = i64::try_from(obs.peers.len()).unwrap_or(i64::MAX);
        ConstGauge::new(peers).encode(family.encode_family(&iface)?)?;
        Ok(())
    }
}

impl Collector for InterfaceCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let obs = self.handle.observe();
        self.encode_peers(&obs, &mut enc)?;
        self.encode_interface(&obs, &mut enc)
    }
}
