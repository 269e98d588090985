//! The filter's rules: one-directional grants with replies, policy changes cutting flows,
//! timeouts, a full table, fragments, ICMP errors, malformed packets, the shared wrapper.

use std::net::IpAddr;
use std::sync::Arc;

use ferrowg_policy::{Compiled, Policy};

use super::*;
use crate::build;
use crate::packet::proto;

const POLICY: &str = r#"{
  "tagOwners": { "tag:sensor": [], "tag:collector": [] },
  "hosts": { "site": "10.201.1.0/24" },
  "grants": [
    { "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443", "udp:5683", "icmp"] },
    { "src": ["tag:sensor"], "dst": ["site"], "ip": ["*"] },
  ],
}"#;

/// The same without the UDP grant.
const NO_UDP: &str = r#"{
  "tagOwners": { "tag:sensor": [], "tag:collector": [] },
  "grants": [{ "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443", "icmp"] }],
}"#;

fn compiled(text: &str) -> Arc<Compiled> {
    Arc::new(Policy::parse(text).unwrap().compile())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const SENSOR_TAGS: &[&str] = &["tag:sensor"];
const COLL_TAGS: &[&str] = &["tag:collector"];
const S: Side = Side {
    device: Some("s1"),
    tags: SENSOR_TAGS,
};
const C: Side = Side {
    device: Some("c1"),
    tags: COLL_TAGS,
};
const SITE: Side = Side {
    device: None,
    tags: &[],
};
const S_IP: &str = "10.64.0.2";
const C_IP: &str = "10.64.0.3";

fn tcp(from: &str, to: &str, sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    build::ip(
        ip(from),
        ip(to),
        proto::TCP,
        &[],
        &build::tcp(sport, dport, flags, b""),
    )
}

fn udp(from: &str, to: &str, sport: u16, dport: u16) -> Vec<u8> {
    build::ip(
        ip(from),
        ip(to),
        proto::UDP,
        &[],
        &build::udp(sport, dport, b"data"),
    )
}

fn echo(from: &str, to: &str, request: bool, id: u16) -> Vec<u8> {
    let v6 = ip(from).is_ipv6();
    let p = if v6 { proto::ICMPV6 } else { proto::ICMP };
    build::ip(ip(from), ip(to), p, &[], &build::echo(v6, request, id, 1))
}

const FWD: Verdict = Verdict::Forward;
const POL: Verdict = Verdict::Drop(DropReason::Policy);

#[test]
fn a_grant_opens_one_way_and_replies_flow_back() {
    let mut f = Filter::new(compiled(POLICY));
    // The collector cannot open to the sensor.
    assert_eq!(
        f.check(0, &tcp(C_IP, S_IP, 5000, 443, TCP_SYN), &C, &S),
        POL
    );
    // The sensor opens; the collector's replies pass, both ways thereafter.
    assert_eq!(
        f.check(1, &tcp(S_IP, C_IP, 4000, 443, TCP_SYN), &S, &C),
        FWD
    );
    assert_eq!(
        f.check(1, &tcp(C_IP, S_IP, 443, 4000, TCP_SYN | TCP_ACK), &C, &S),
        FWD
    );
    assert_eq!(
        f.check(2, &tcp(S_IP, C_IP, 4000, 443, TCP_ACK), &S, &C),
        FWD
    );
    assert_eq!(
        f.check(2, &tcp(C_IP, S_IP, 443, 4000, TCP_ACK), &C, &S),
        FWD
    );
    // Only the granted port; and the responder cannot open on the flow's ports.
    assert_eq!(f.check(3, &tcp(S_IP, C_IP, 4001, 22, TCP_SYN), &S, &C), POL);
    assert_eq!(
        f.check(3, &tcp(C_IP, S_IP, 443, 4000, TCP_SYN), &C, &S),
        POL
    );
    // UDP and echo alike.
    assert_eq!(f.check(4, &udp(C_IP, S_IP, 5683, 6000), &C, &S), POL);
    assert_eq!(f.check(4, &udp(S_IP, C_IP, 6000, 5683), &S, &C), FWD);
    assert_eq!(f.check(4, &udp(C_IP, S_IP, 5683, 6000), &C, &S), FWD);
    assert_eq!(f.check(5, &echo(C_IP, S_IP, true, 9), &C, &S), POL);
    assert_eq!(f.check(5, &echo(S_IP, C_IP, true, 9), &S, &C), FWD);
    assert_eq!(f.check(5, &echo(C_IP, S_IP, false, 9), &C, &S), FWD);
    // An echo request from the responder on the same identifier is its own ping: refused.
    assert_eq!(f.check(5, &echo(C_IP, S_IP, true, 9), &C, &S), POL);
    let c = f.counters();
    assert_eq!((c.forwarded, c.dropped_policy, c.flows_opened), (8, 6, 3));
    assert_eq!(f.flow_count(), 3);
}

#[test]
fn unsolicited_replies_and_resets_are_not_tracked() {
    let mut f = Filter::new(compiled(POLICY));
    // Allowed in the sensor's direction, but neither opens a flow.
    assert_eq!(f.check(0, &echo(S_IP, C_IP, false, 3), &S, &C), FWD);
    assert_eq!(
        f.check(0, &tcp(S_IP, C_IP, 4000, 443, TCP_RST), &S, &C),
        FWD
    );
    assert_eq!(f.flow_count(), 0);
    assert_eq!(f.check(0, &echo(C_IP, S_IP, true, 3), &C, &S), POL);
}

#[test]
fn a_policy_change_cuts_flows_it_no_longer_allows() {
    let mut f = Filter::new(compiled(POLICY));
    assert_eq!(f.check(0, &udp(S_IP, C_IP, 6000, 5683), &S, &C), FWD);
    assert_eq!(
        f.check(0, &tcp(S_IP, C_IP, 4000, 443, TCP_SYN), &S, &C),
        FWD
    );
    f.set_policy(compiled(NO_UDP));
    // The reply of the UDP flow is judged anew: the collector may not open it.
    assert_eq!(f.check(1, &udp(C_IP, S_IP, 5683, 6000), &C, &S), POL);
    assert_eq!(f.check(1, &udp(S_IP, C_IP, 6000, 5683), &S, &C), POL);
    // The TCP flow is still allowed, from either end.
    assert_eq!(
        f.check(1, &tcp(C_IP, S_IP, 443, 4000, TCP_SYN | TCP_ACK), &C, &S),
        FWD
    );
    assert_eq!(f.counters().flows_cut, 1);
    assert_eq!(f.flow_count(), 1);
    // Revalidation after a device lost its tag: the flow goes.
    f.revalidate();
    let untagged = Side {
        device: Some("s1"),
        tags: &[],
    };
    assert_eq!(
        f.check(2, &tcp(S_IP, C_IP, 4000, 443, TCP_ACK), &untagged, &C),
        POL
    );
    assert_eq!(f.counters().flows_cut, 2);
}

#[test]
fn flows_expire_per_state() {
    let t = Timeouts::default();
    let mut f = Filter::new(compiled(POLICY));
    // UDP unreplied: gone after 30 s.
    f.check(0, &udp(S_IP, C_IP, 6000, 5683), &S, &C);
    assert_eq!(
        f.check(t.unreplied, &udp(C_IP, S_IP, 5683, 6000), &C, &S),
        POL
    );
    // UDP assured: 180 s after the last packet.
    f.check(100, &udp(S_IP, C_IP, 6001, 5683), &S, &C);
    f.check(101, &udp(C_IP, S_IP, 5683, 6001), &C, &S);
    assert_eq!(
        f.check(101 + t.assured - 1, &udp(C_IP, S_IP, 5683, 6001), &C, &S),
        FWD
    );
    let last = 101 + t.assured - 1;
    assert_eq!(
        f.check(last + t.assured, &udp(C_IP, S_IP, 5683, 6001), &C, &S),
        POL
    );
    // TCP established: an hour of silence is tolerated to the second.
    let t0 = 10_000;
    f.check(t0, &tcp(S_IP, C_IP, 4000, 443, TCP_SYN), &S, &C);
    f.check(t0, &tcp(C_IP, S_IP, 443, 4000, TCP_SYN | TCP_ACK), &C, &S);
    let t1 = t0 + t.tcp_established - 1;
    assert_eq!(
        f.check(t1, &tcp(C_IP, S_IP, 443, 4000, TCP_ACK), &C, &S),
        FWD
    );
    // After a RST only 10 s.
    f.check(t1, &tcp(S_IP, C_IP, 4000, 443, TCP_RST), &S, &C);
    assert_eq!(
        f.check(
            t1 + t.tcp_closed,
            &tcp(C_IP, S_IP, 443, 4000, TCP_ACK),
            &C,
            &S
        ),
        POL
    );
    // Echo: 30 s.
    f.check(0, &echo(S_IP, C_IP, true, 1), &S, &C);
    assert_eq!(f.check(t.echo, &echo(C_IP, S_IP, false, 1), &C, &S), POL);
    assert!(f.counters().flows_expired >= 4);
}

#[test]
fn fin_from_both_ends_closes_and_a_new_syn_reopens() {
    let t = Timeouts::default();
    let mut f = Filter::new(compiled(POLICY));
    f.check(0, &tcp(S_IP, C_IP, 4000, 443, TCP_SYN), &S, &C);
    f.check(0, &tcp(C_IP, S_IP, 443, 4000, TCP_SYN | TCP_ACK), &C, &S);
    f.check(1, &tcp(S_IP, C_IP, 4000, 443, TCP_FIN | TCP_ACK), &S, &C);
    // One FIN: the closing timeout (120 s) applies, not 10 s.
    assert_eq!(
        f.check(
            1 + t.tcp_closed,
            &tcp(C_IP, S_IP, 443, 4000, TCP_FIN | TCP_ACK),
            &C,
            &S
        ),
        FWD
    );
    let closed = 1 + t.tcp_closed;
    assert_eq!(
        f.check(closed + 5, &tcp(S_IP, C_IP, 4000, 443, TCP_SYN), &S, &C),
        FWD
    );
    assert_eq!(
        f.check(
            closed + 5 + t.tcp_closed,
            &tcp(C_IP, S_IP, 443, 4000, TCP_SYN | TCP_ACK),
            &C,
            &S
        ),
        FWD
    );
}

#[test]
fn a_full_table_evicts_the_oldest_and_stays_bounded() {
    let config = FilterConfig {
        capacity: 8,
        ..FilterConfig::default()
    };
    let mut f = Filter::with_config(compiled(POLICY), config);
    for port in 0..1000u16 {
        assert_eq!(
            f.check(u64::from(port / 100), &udp(S_IP, C_IP, port, 5683), &S, &C),
            FWD
        );
        assert!(f.flow_count() <= 8);
    }
    assert_eq!(f.counters().evicted_or_expired(), 992);
    // The newest flows are tracked, the oldest are not.
    assert_eq!(f.check(9, &udp(C_IP, S_IP, 5683, 999), &C, &S), FWD);
    assert_eq!(f.check(9, &udp(C_IP, S_IP, 5683, 0), &C, &S), POL);
}

impl Counters {
    fn evicted_or_expired(&self) -> u64 {
        self.flows_evicted + self.flows_expired
    }
}

/// An IPv6 packet from the sensor in two fragments: the first with the UDP header, the
/// later one with the rest.
fn fragments(from: &str, to: &str, id: u32, dport: u16) -> (Vec<u8>, Vec<u8>) {
    let frag = |offset: u16, more: bool| {
        let mut h = vec![proto::UDP, 0];
        h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h
    };
    let first = build::ip(
        ip(from),
        ip(to),
        proto::FRAGMENT,
        &frag(0, true),
        &build::udp(7000, dport, &[1; 40]),
    );
    let later = build::ip(ip(from), ip(to), proto::FRAGMENT, &frag(6, false), &[2; 40]);
    (first, later)
}

#[test]
fn later_fragments_follow_their_first_fragment() {
    let (s6, c6) = ("fd64::2", "fd64::3");
    let mut f = Filter::new(compiled(POLICY));
    let frag = Verdict::Drop(DropReason::Fragment);
    let (first, later) = fragments(s6, c6, 77, 5683);
    // A later fragment before its first: dropped.
    assert_eq!(f.check(0, &later, &S, &C), frag);
    assert_eq!(f.check(0, &first, &S, &C), FWD);
    assert_eq!(f.check(0, &later, &S, &C), FWD);
    // Another packet's later fragment, or the same identification the other way: dropped.
    let (_, other) = fragments(s6, c6, 78, 5683);
    assert_eq!(f.check(0, &other, &S, &C), frag);
    let (_, back) = fragments(c6, s6, 77, 5683);
    assert_eq!(f.check(0, &back, &C, &S), frag);
    // A denied first fragment lets nothing through.
    let (first, later) = fragments(s6, c6, 79, 22);
    assert_eq!(f.check(0, &first, &S, &C), POL);
    assert_eq!(f.check(0, &later, &S, &C), frag);
    // Replies may be fragmented too.
    let (first, later) = fragments(c6, s6, 80, 7000);
    let mut first = first;
    first[40 + 8..40 + 10].copy_from_slice(&5683u16.to_be_bytes());
    assert_eq!(f.check(0, &first, &C, &S), FWD);
    assert_eq!(f.check(0, &later, &C, &S), FWD);
    // The fragment entries expire, and a policy change drops them.
    let (first, later) = fragments(s6, c6, 81, 5683);
    assert_eq!(f.check(100, &first, &S, &C), FWD);
    assert_eq!(
        f.check(100 + Timeouts::default().fragment, &later, &S, &C),
        frag
    );
    assert_eq!(f.check(200, &first, &S, &C), FWD);
    f.revalidate();
    assert_eq!(f.check(200, &later, &S, &C), frag);
    assert_eq!(f.counters().dropped_fragment, 6);
}

/// An ICMPv4 "fragmentation needed" from `from` to `to` quoting `quoted`.
fn too_big(from: &str, to: &str, quoted: &[u8]) -> Vec<u8> {
    let mut msg = vec![3, 4, 0, 0, 0, 0, 5, 0x00];
    msg.extend_from_slice(&quoted[..28]);
    build::ip(ip(from), ip(to), proto::ICMP, &[], &msg)
}

#[test]
fn icmp_errors_about_a_tracked_flow_pass() {
    const NO_ICMP: &str = r#"{
      "tagOwners": { "tag:sensor": [], "tag:collector": [] },
      "grants": [{ "src": ["tag:sensor"], "dst": ["tag:collector", "10.201.1.0/24"], "ip": ["udp:5683"] }],
    }"#;
    let mut f = Filter::new(compiled(NO_ICMP));
    let to_site = udp(S_IP, "10.201.1.7", 6000, 5683);
    // Before the flow exists, an error about it is a new ICMP packet: not allowed.
    assert_eq!(
        f.check(0, &too_big("10.201.1.1", S_IP, &to_site), &SITE, &S),
        POL
    );
    assert_eq!(f.check(0, &to_site, &S, &SITE), FWD);
    // A router of the site reports the path MTU to the sensor.
    assert_eq!(
        f.check(0, &too_big("10.201.1.1", S_IP, &to_site), &SITE, &S),
        FWD
    );
    // An error quoting a packet its destination did not send is not related.
    let forged = udp(C_IP, "10.201.1.7", 6000, 5683);
    assert_eq!(
        f.check(0, &too_big("10.201.1.1", S_IP, &forged), &SITE, &S),
        POL
    );
}

#[test]
fn malformed_packets_are_dropped_and_counted() {
    let mut f = Filter::new(compiled(POLICY));
    let bad = Verdict::Drop(DropReason::Malformed);
    assert_eq!(f.check(0, &[], &S, &C), bad);
    assert_eq!(f.check(0, &[0x45; 19], &S, &C), bad);
    let mut short = udp(S_IP, C_IP, 1, 5683);
    short.truncate(24);
    assert_eq!(f.check(0, &short, &S, &C), bad);
    assert_eq!(f.counters().dropped_malformed, 3);
}

#[test]
fn sites_are_matched_by_prefix() {
    let mut f = Filter::new(compiled(POLICY));
    assert_eq!(
        f.check(0, &tcp(S_IP, "10.201.1.9", 4000, 502, TCP_SYN), &S, &SITE),
        FWD
    );
    assert_eq!(
        f.check(
            0,
            &tcp("10.201.1.9", S_IP, 502, 4000, TCP_SYN | TCP_ACK),
            &SITE,
            &S
        ),
        FWD
    );
    assert_eq!(
        f.check(0, &tcp("10.201.1.9", S_IP, 502, 4001, TCP_SYN), &SITE, &S),
        POL
    );
}

#[test]
fn the_shared_filter_serves_two_threads() {
    let shared = Arc::new(SharedFilter::new(Filter::new(compiled(POLICY))));
    let threads: Vec<_> = (0..2u16)
        .map(|t| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for port in 0..500u16 {
                    let p = udp(S_IP, C_IP, t * 1000 + port, 5683);
                    assert_eq!(shared.check(0, &p, &S, &C), FWD);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(shared.counters().forwarded, 1000);
    shared.set_policy(compiled(NO_UDP));
    assert_eq!(shared.check(1, &udp(C_IP, S_IP, 5683, 0), &C, &S), POL);
    assert_eq!(shared.lock().flow_count(), 999);
}

/// Prints the cost per packet of the common paths (release build advised):
/// `cargo test -p ferrowg-hub-filter --release -- --ignored --nocapture bench`.
#[test]
#[ignore]
fn bench_ns_per_packet() {
    use std::time::Instant;
    let n = 1_000_000u32;
    let mut f = Filter::new(compiled(POLICY));
    let shared = SharedFilter::new(Filter::new(compiled(POLICY)));
    let tracked = udp(S_IP, C_IP, 6000, 5683);
    let reply = udp(C_IP, S_IP, 5683, 6000);
    f.check(0, &tracked, &S, &C);
    shared.check(0, &tracked, &S, &C);
    let denied = udp(C_IP, S_IP, 1, 2);
    let fresh: Vec<Vec<u8>> = (0..4096u16).map(|p| udp(S_IP, C_IP, p, 5683)).collect();
    let time = |name: &str, f: &mut dyn FnMut(u32)| {
        let t = Instant::now();
        for i in 0..n {
            f(i);
        }
        println!(
            "{name}: {:.1} ns/packet",
            t.elapsed().as_nanos() as f64 / f64::from(n)
        );
    };
    time("tracked flow (reply)", &mut |_| {
        assert_eq!(f.check(1, &reply, &C, &S), FWD)
    });
    time("denied new flow", &mut |_| {
        assert_eq!(f.check(1, &denied, &C, &S), POL)
    });
    let mut g = Filter::with_config(
        compiled(POLICY),
        FilterConfig {
            capacity: 1024,
            ..FilterConfig::default()
        },
    );
    time("new flow, full table (evicting)", &mut |i| {
        g.check(1, &fresh[(i % 4096) as usize], &S, &C);
    });
    time("SharedFilter tracked flow (uncontended lock)", &mut |_| {
        assert_eq!(shared.check(1, &reply, &C, &S), FWD)
    });
}
