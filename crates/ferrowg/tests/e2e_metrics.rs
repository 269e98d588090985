//! Metrics (issue #19): `ferrowg daemon --metrics=ADDR:PORT` with wireguard-go as the peer. The
//! test sends traffic it knows, scrapes `/metrics` as Prometheus would, and checks the values:
//! per-peer bytes equal what the UAPI reports and grew by at least the datagrams it caused,
//! the latest handshake is `wg show`'s, handshakes were initiated and completed, and packets
//! from a source the peer does not own are counted under their drop reason. Every interface
//! metric the shipped Grafana dashboard (`dist/grafana/`) queries is exported.
//!
//! Needs root; without it fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ferrowg_testkit::*;

const METRICS: &str = "127.0.0.1:9586";

/// `GET PATH` on the metrics listener inside `ns`: (status line, headers, body).
fn get(ns: &Netns, path: &str) -> (String, String, String) {
    let raw = ns.run_in(|| {
        let mut s = TcpStream::connect(METRICS).expect("connect to the metrics listener");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {METRICS}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read the answer");
        out
    });
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

/// The value of the sample of `name` whose labels include every `label="value"` in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(hits.len(), 1, "one sample of {name} {labels:?} in\n{text}");
    hits[0]
}

/// Bytes on the wire inside the tunnel for an ICMP echo with `payload` bytes: the IP packet
/// padded to 16, plus the transport header (16) and the tag (16).
fn datagram_len(payload: u64) -> u64 {
    let ip = payload + 8 + 20;
    ip.div_ceil(16) * 16 + 32
}

#[test]
fn scraped_metrics_match_the_traffic_sent() {
    if !require_root() {
        return;
    }
    let metrics = format!("--metrics={METRICS}");
    let pair = Pair::build_with(Impl::Ferrowg, Impl::WireguardGo, false, &[&metrics]);
    pair.ping_until_up(Duration::from_secs(20));
    let peer = pair.b.keys.public.clone();
    let iface = pair.a.iface.clone();
    let by_peer = [("interface", iface.as_str()), ("public_key", peer.as_str())];

    let (status, headers, before) = get(&pair.a.ns, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains("content-type: application/openmetrics-text"),
        "{headers}"
    );
    assert!(before.trim_end().ends_with("# EOF"));
    // Every interface metric the shipped Grafana dashboard queries is exported.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../dist/grafana/ferrowg-dashboard.json"
    ))
    .expect("the Grafana dashboard");
    let queried = dashboard.split("wireguard_").skip(1).map(|rest| {
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len());
        format!("wireguard_{}", &rest[..end])
    });
    for name in queried {
        assert!(
            before
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "the dashboard queries {name}, which is not exported"
        );
    }
    let (status, _, _) = get(&pair.a.ns, "/nothing");
    assert!(status.contains(" 404 "), "{status}");

    // 50 echoes of 1,000 bytes, every one answered.
    let (count, size) = (50, 1000);
    pair.a.ns.run(&format!(
        "ping -n -q -c {count} -i 0.02 -s {size} -W 2 {}",
        pair.b.tunnel_v4
    ));
    let (_, _, after) = get(&pair.a.ns, "/metrics");
    let (rx, tx) = pair.a.transfer();
    let sent = sample(&after, "wireguard_sent_bytes_total", &by_peer);
    let received = sample(&after, "wireguard_received_bytes_total", &by_peer);
    assert_eq!((received as u64, sent as u64), (rx, tx), "metrics = UAPI");
    let least = count * datagram_len(size);
    let sent_delta = sent - sample(&before, "wireguard_sent_bytes_total", &by_peer);
    let received_delta = received - sample(&before, "wireguard_received_bytes_total", &by_peer);
    for (what, delta) in [("sent", sent_delta), ("received", received_delta)] {
        assert!(
            delta as u64 >= least && (delta as u64) < least + 1024,
            "{what} grew by {delta}, expected {least} and at most a keepalive or two more"
        );
    }
    let allowed = format!("{}/32,{}/128", pair.b.tunnel_v4, pair.b.tunnel_v6);
    let labels = [
        ("public_key", peer.as_str()),
        ("allowed_ips", allowed.as_str()),
    ];
    let handshake = sample(&after, "wireguard_latest_handshake_seconds", &labels);
    assert_eq!(handshake as u64, pair.a.latest_handshake(), "= wg show");
    let iface_only = [("interface", iface.as_str())];
    assert!(sample(&after, "wireguard_handshakes_initiated_total", &iface_only) >= 1.0);
    assert!(sample(&after, "wireguard_handshakes_completed_total", &iface_only) >= 1.0);
    assert_eq!(sample(&after, "wireguard_peers", &iface_only), 1.0);

    // Three echoes from an address B does not own (outside its allowed IPs at A): A drops
    // them as not_allowed_source.
    let spoof = [
        ("interface", iface.as_str()),
        ("reason", "not_allowed_source"),
    ];
    let spoofed_before = sample(&after, "wireguard_dropped_packets_total", &spoof);
    let fake = format!("10.200.{}.99", pair.n);
    pair.b
        .ns
        .run(&format!("ip addr add {fake}/32 dev {}", pair.b.iface));
    let answered = pair
        .b
        .ns
        .sh(&format!(
            "ping -n -q -c 3 -i 0.2 -W 1 -I {fake} {}",
            pair.a.tunnel_v4
        ))
        .status
        .success();
    assert!(!answered, "A answered a spoofed source");
    let (_, _, last) = get(&pair.a.ns, "/metrics");
    let spoofed = sample(&last, "wireguard_dropped_packets_total", &spoof) - spoofed_before;
    assert_eq!(spoofed, 3.0, "three spoofed echoes counted");
}
