//! Scenario tests of the protocol core on a simulated network (issue #2).
//!
//! Each test builds a small world with `net::Sim` (tests/sim/mod.rs: devices with seeded RNGs,
//! a fake clock, links with latency, loss, reordering, duplication and NAT rebinding) and runs
//! minutes to hours of protocol time in about a second of wall time or less. Each test prints
//! the figures it observed (`cargo test --test sim -- --nocapture`). Topologies:
//!
//! ```text
//!   two devices:   A 192.0.2.1:51820 (10.0.0.1) ──── B 198.51.100.2:51820 (10.0.0.2)
//!
//!   hub-and-spoke:        S1 10.0.1.1
//!                           │
//!                 S3 ───── hub 10.0.0.1 ───── S2 10.0.2.1
//!                10.0.3.1   (forwards between spokes; each spoke owns 10.0.i.0/24)
//! ```

#[path = "sim/mod.rs"]
mod net;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrowg_proto::crypto::{self, hash, mac};
use ferrowg_proto::messages::{
    HANDSHAKE_INITIATION_SIZE, LABEL_COOKIE, LABEL_MAC1, REJECT_AFTER_TIME,
};
use ferrowg_proto::replay::COUNTER_WINDOW_SIZE;
use ferrowg_proto::{DropReason, Event, Instant};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use net::{at, ms, secs, Link, SendResult, Sim, Tap};

const A_ADDR: &str = "192.0.2.1:51820";
const B_ADDR: &str = "198.51.100.2:51820";

fn completed(initiator: bool) -> impl Fn(&Event) -> bool + Copy {
    move |e| matches!(e, Event::HandshakeCompleted { initiator: i, .. } if *i == initiator)
}

fn any_completed(e: &Event) -> bool {
    matches!(e, Event::HandshakeCompleted { .. })
}

/// A world of two connected devices A and B on a clean link with one-way latency `latency`.
fn pair(seed: u64, latency: Duration) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, Link::clean(latency));
    let a = sim.add_node("A", A_ADDR, "10.0.0.1");
    let b = sim.add_node("B", B_ADDR, "10.0.0.2");
    sim.connect(a, b);
    (sim, a, b)
}

/// 1. Two hours of continuous traffic both ways on a clean link: a rekey every ~120 s and not
///    one application packet lost.
#[test]
fn clean_link_two_hours_rekeys_and_loses_nothing() {
    let (mut sim, a, b) = pair(1, ms(10));
    let end = at(7200.0);
    // B starts a second later, so A is the initiator of every session (B only answers).
    let ab = sim.add_flow(a, b, at(0.0), ms(100), Some(end));
    let ba = sim.add_flow(b, a, at(1.0), ms(100), Some(end));
    sim.run_until(end + Duration::from_secs(1));

    for f in [ab, ba] {
        let flow = &sim.flows[f];
        assert!(
            flow.sent_count() > 71_000,
            "flow {f} sent {}",
            flow.sent_count()
        );
        assert_eq!(flow.lost(), Vec::<u64>::new(), "flow {f} lost packets");
        assert_eq!((flow.duplicates, flow.misdelivered), (0, 0));
    }
    for n in &sim.nodes {
        let drops: Vec<_> = n.dev.stats().drops.iter().collect();
        assert!(drops.is_empty(), "{} dropped {drops:?}", n.name);
    }

    // One handshake per REKEY_AFTER_TIME (plus the time to the next send and one RTT).
    let done = sim.nodes[a].event_times(completed(true));
    let per_hour = done.len() as f64 / 2.0;
    assert!((29.0..=31.0).contains(&per_hour), "{per_hour} handshakes/h");
    for w in done.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_secs(120) && gap <= Duration::from_millis(120_300),
            "rekey gap {gap:?}"
        );
    }
    // Each handshake completes on both sides: ~60 HandshakeCompleted events per hour.
    let events_per_hour = sim.count_events(any_completed) as f64 / 2.0;
    assert!(
        (58.0..=62.0).contains(&events_per_hour),
        "{events_per_hour}"
    );
    assert_eq!(sim.nodes[b].dev.stats().initiations_sent, 0);
    assert_eq!(sim.nodes[b].count_events(completed(true)), 0);
    // Indices do not leak: at most previous + current + next, plus a handshake in flight.
    for n in &sim.nodes {
        assert!(
            n.dev.live_indices() <= 4,
            "{} {}",
            n.name,
            n.dev.live_indices()
        );
    }
    let gaps: Vec<f64> = done
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    println!(
        "2 h: {} packets each way, 0 lost; {} handshakes ({per_hour}/h), {events_per_hour} \
         HandshakeCompleted events/h, rekey gaps {:.3}..{:.3} s, wakeups A {} B {}",
        sim.flows[ab].sent_count(),
        done.len(),
        gaps.iter().copied().fold(f64::MAX, f64::min),
        gaps.iter().copied().fold(0.0, f64::max),
        sim.nodes[a].wakeups,
        sim.nodes[b].wakeups,
    );
}

/// 2. The responder disappears: the initiator notices (data sent, nothing back for 15 s),
///    retries every REKEY_TIMEOUT plus jitter, gives up after REKEY_ATTEMPT_TIME (20 attempts,
///    ~103 s, as the kernel) and stays quiet until new traffic arrives.
#[test]
fn peer_gone_retries_with_jitter_then_gives_up() {
    let (mut sim, a, b) = pair(2, ms(10));
    let ab = sim.add_flow(a, b, at(0.0), ms(100), Some(at(35.0)));
    sim.add_flow(b, a, at(1.0), ms(100), Some(at(30.0)));
    sim.run_until(at(30.0));
    assert!(sim.nodes[a].count_events(completed(true)) >= 1);
    sim.nodes[b].up = false;
    sim.run_until(at(400.0));

    let inits: Vec<Instant> = sim
        .sent_by(a, |r| r.is_initiation() && r.time > at(30.0))
        .iter()
        .map(|r| r.time)
        .collect();
    // A's data sent from 30 s on got no answer: KEEPALIVE_TIMEOUT + REKEY_TIMEOUT later it
    // starts a new handshake, plus up to 333 ms of jitter as the kernel adds.
    let first = inits.first().copied().unwrap();
    assert!(first >= at(45.0) && first <= at(45.5), "{}", secs(first));
    // One initiation plus MAX_TIMER_HANDSHAKES + 1 retries: the kernel's "did not complete
    // after 20 attempts, giving up".
    assert_eq!(inits.len(), 20, "{inits:?}");
    let gaps: Vec<Duration> = inits.windows(2).map(|w| w[1] - w[0]).collect();
    for g in &gaps {
        assert!(
            *g >= Duration::from_secs(5) && *g <= Duration::from_millis(5334),
            "retry gap {g:?}"
        );
    }
    assert!(gaps.iter().any(|g| *g != gaps[0]), "no jitter: {gaps:?}");

    let gave_up = sim.nodes[a].event_times(|e| matches!(e, Event::HandshakeGaveUp { .. }));
    assert_eq!(gave_up.len(), 1);
    let after = gave_up[0] - inits[0];
    assert!(
        after >= Duration::from_secs(90) && after <= Duration::from_secs(110),
        "gave up {after:?} after the first initiation"
    );
    assert!(inits.iter().all(|t| *t < gave_up[0]));

    println!(
        "peer gone: {} initiations, gaps {:?}..{:?}, gave up {:.3} s after the first",
        inits.len(),
        gaps.iter().min().unwrap(),
        gaps.iter().max().unwrap(),
        after.as_secs_f64()
    );

    // New traffic starts a new handshake at once, and completes once B is back.
    sim.nodes[b].up = true;
    let before = sim.nodes[a].dev.stats().initiations_sent;
    let r = sim.send(ab);
    assert_eq!(r, SendResult::Queued);
    assert_eq!(sim.nodes[a].dev.stats().initiations_sent, before + 1);
    let last = sim.sent_by(a, |r| r.is_initiation()).last().unwrap().time;
    assert_eq!(last, sim.now);
    // B's own timers were frozen while it was down and fire now too; like the kernel's
    // keepalive timer they start a handshake of B's own, which may cross A's and cost one
    // retry (REKEY_TIMEOUT + jitter).
    sim.run_for(Duration::from_secs(6));
    let delivered = sim.flows[ab].delivered.last().copied().flatten();
    assert!(
        delivered.is_some_and(|t| t >= last + ms(30) && t <= last + ms(5400)),
        "{delivered:?}"
    );
}

/// 3. After traffic stops, every key of both sides is erased 3 × REJECT_AFTER_TIME after the
///    last session was derived, and not before.
#[test]
fn idle_keys_are_zeroed_after_540_s() {
    let (mut sim, a, b) = pair(3, ms(10));
    sim.add_flow(a, b, at(0.0), ms(100), Some(at(300.0)));
    sim.add_flow(b, a, at(0.5), ms(100), Some(at(300.0)));
    sim.run_until(at(320.0));
    assert!(
        sim.nodes[a].count_events(completed(true)) >= 2,
        "a rekey happened"
    );
    for n in [a, b] {
        assert_eq!(
            sim.nodes[n].count_events(|e| matches!(e, Event::KeysZeroed { .. })),
            0
        );
    }
    let last: Vec<Instant> = [a, b]
        .iter()
        .map(|n| *sim.nodes[*n].sessions_derived().last().unwrap())
        .collect();
    let mut order = [(last[0], a), (last[1], b)];
    order.sort();
    for (derived, n) in order {
        let due = derived + REJECT_AFTER_TIME * 3;
        sim.run_until(Instant::from_nanos(due.as_nanos() - 1_000_000));
        let node = &sim.nodes[n];
        let peer = node.dev.peers().next().unwrap();
        assert!(node.dev.has_keys(peer), "{} zeroed early", node.name);
        assert_eq!(
            node.count_events(|e| matches!(e, Event::KeysZeroed { .. })),
            0
        );
        sim.run_until(due);
        let node = &sim.nodes[n];
        let zeroed = node.event_times(|e| matches!(e, Event::KeysZeroed { .. }));
        assert_eq!(zeroed, vec![due], "{}", node.name);
        assert!(!node.dev.has_keys(peer));
        assert!(!node.dev.peer_info(peer).unwrap().has_session);
    }
    for n in [a, b] {
        assert_eq!(sim.nodes[n].dev.live_indices(), 0, "{}", sim.nodes[n].name);
    }
    println!(
        "idle: sessions last derived at {:.3} s / {:.3} s, keys zeroed at {:.3} s / {:.3} s",
        secs(last[0]),
        secs(last[1]),
        secs(last[0] + REJECT_AFTER_TIME * 3),
        secs(last[1] + REJECT_AFTER_TIME * 3)
    );
    // And nothing else happens afterwards: no handshake without traffic.
    let inits = sim.log.iter().filter(|r| r.is_initiation()).count();
    sim.run_until(at(3000.0));
    assert_eq!(sim.log.iter().filter(|r| r.is_initiation()).count(), inits);
    // New traffic after the erasure gets a fresh session.
    let f = sim.add_flow(b, a, sim.now, ms(100), Some(at(3001.0)));
    sim.run_until(at(3002.0));
    assert_eq!(sim.flows[f].lost(), Vec::<u64>::new());
    assert_eq!(sim.nodes[b].count_events(completed(true)), 1);
}

/// 4. Replays and packets older than the 8128-counter window are dropped and counted; packets
///    reordered within the window are accepted.
#[test]
fn replays_and_out_of_window_are_dropped_reordering_accepted() {
    let (mut sim, a, b) = pair(4, ms(10));
    // 10 000 packets in 10 s, one session (counter == sequence number: A only sends data).
    let f = sim.add_flow(a, b, at(0.0), ms(1), Some(at(10.0)));
    let late = 50u64;
    let reordered = 1000u64..1010;
    let captured = 2000u64..2100;
    let window = COUNTER_WINDOW_SIZE;
    sim.tap = Some(Box::new(move |r| match r.counter {
        _ if r.from == a && r.is_initiation() => Tap::Capture,
        _ if r.from != a || !r.is_data() => Tap::Pass,
        // 9 s later some 9000 newer counters have arrived: beyond the window.
        c if c == late => Tap::Delay(Duration::from_secs(9)),
        // 200 ms later only ~200 newer counters have: within the window.
        c if reordered.contains(&c) => Tap::Delay(ms(200)),
        c if captured.contains(&c) => Tap::Capture,
        _ => Tap::Pass,
    }));
    sim.run_until(at(11.0));
    assert_eq!(sim.nodes[a].count_events(completed(true)), 1);
    let flow = &sim.flows[f];
    assert!(flow.sent_count() >= 9999);
    assert!(flow.sent_count() as u64 > late + window + 1000);
    assert_eq!(
        flow.lost(),
        vec![late],
        "only the packet beyond the window is lost"
    );
    assert!(flow.reordered >= 10, "reordered {}", flow.reordered);
    let drops = &sim.nodes[b].dev.stats().drops;
    assert_eq!(drops.get(DropReason::Replay), 1);

    // Replay the 100 captured datagrams, twice each.
    let mut replays = std::mem::take(&mut sim.held);
    let initiation = replays.remove(0);
    assert_eq!(initiation.bytes[0], 1);
    assert_eq!(replays.len(), 100);
    for round in 0..2 {
        for d in &replays {
            let when = sim.now + ms(1 + round);
            sim.inject(when, d.src, d.dst, d.bytes.clone());
        }
    }
    sim.run_until(at(12.0));
    let drops = &sim.nodes[b].dev.stats().drops;
    assert_eq!(drops.get(DropReason::Replay), 201);
    assert_eq!(drops.total(), 201, "{:?}", drops.iter().collect::<Vec<_>>());
    assert_eq!(sim.flows[f].duplicates, 0);

    // A replayed initiation carries an old timestamp: refused, no new session, no response.
    let responses = sim.nodes[b].dev.stats().responses_sent;
    sim.inject(sim.now, initiation.src, initiation.dst, initiation.bytes);
    sim.run_until(at(13.0));
    let stats = sim.nodes[b].dev.stats();
    assert_eq!(stats.drops.get(DropReason::StaleTimestamp), 1);
    assert_eq!(stats.responses_sent, responses);
    println!(
        "replay: {} packets, lost {:?} (beyond the window), {} reordered and accepted, \
         Replay drops {}, StaleTimestamp drops 1",
        sim.flows[f].sent_count(),
        sim.flows[f].lost(),
        sim.flows[f].reordered,
        stats.drops.get(DropReason::Replay)
    );
}

/// Builds a handshake initiation that passes mac1 for `responder` (whose public key anyone may
/// know) but carries garbage, as a flooding attacker would; mac2 is `cookie`'s MAC or zero.
fn forged_initiation(
    rng: &mut ChaCha8Rng,
    responder: &[u8; 32],
    cookie: Option<&[u8; 16]>,
) -> Vec<u8> {
    let mut m = vec![0u8; HANDSHAKE_INITIATION_SIZE];
    m[0] = 1;
    rng.fill(&mut m[4..116]);
    let mac1 = mac(&hash(&[LABEL_MAC1, responder]), &[&m[..116]]);
    m[116..132].copy_from_slice(&mac1);
    if let Some(c) = cookie {
        let mac2 = mac(c, &[&m[..132]]);
        m[132..148].copy_from_slice(&mac2);
    }
    m
}

/// Opens a cookie reply to a message whose mac1 was `mac1`, as its sender would.
fn open_cookie_reply(reply: &[u8], responder: &[u8; 32], mac1: &[u8]) -> Option<[u8; 16]> {
    let key = hash(&[LABEL_COOKIE, responder]);
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&reply[8..32]);
    let mut cookie = [0u8; 16];
    cookie.copy_from_slice(&reply[32..48]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&reply[48..64]);
    crypto::xaead_open(&key, &nonce, &mut cookie, mac1, &tag).ok()?;
    Some(cookie)
}

/// 5. A flood of initiations with valid mac1 puts the responder under load: it answers with
///    cookie replies, processes only messages that echo a cookie (rate-limited per source), and
///    the legitimate peer still gets its handshake through via cookie reply + retry.
#[test]
fn handshake_flood_triggers_cookies_and_legit_peer_gets_through() {
    let mut sim = Sim::new(5, Link::clean(ms(10)));
    let l = sim.add_node("legit", A_ADDR, "10.0.0.1");
    let r = sim.add_node("responder", B_ADDR, "10.0.0.2");
    sim.connect(l, r);
    let r_pub = sim.nodes[r].dev.public_key();
    let r_addr: SocketAddr = B_ADDR.parse().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(55);

    // Not under load, a forged initiation costs the responder its DH and is dropped.
    let m = forged_initiation(&mut rng, &r_pub, None);
    sim.inject(at(1.0), "203.0.113.1:1".parse().unwrap(), r_addr, m);
    sim.run_until(at(2.0));
    let drops = &sim.nodes[r].dev.stats().drops;
    assert_eq!(drops.get(DropReason::HandshakeDecryptFailed), 1);
    assert_eq!(sim.nodes[r].dev.stats().cookie_replies_sent, 0);

    // 5000 forged initiations per second from spoofed sources, from t = 10 s to t = 25 s.
    let (flood_start, flood_end) = (at(10.0), at(25.0));
    let legit_start = at(12.0);
    let flow = sim.add_flow(l, r, legit_start, ms(100), Some(at(180.0)));
    // Mallory runs a real device that knows the responder's key, but the responder does not
    // know Mallory's: it sends real initiations and echoes the cookies it gets.
    let mallory = sim.add_node("mallory", "203.0.113.99:51820", "10.0.0.66");
    sim.add_peer(mallory, r, &["10.0.0.2/32"], true, None);
    sim.add_flow(mallory, r, legit_start, ms(100), Some(at(24.0)));
    sim.tap = Some(Box::new(move |d| {
        if d.from == mallory && d.is_initiation() {
            Tap::Capture
        } else {
            Tap::Pass
        }
    }));
    sim.run_until(flood_start);
    let mut forged = 0u64;
    while sim.now < flood_end {
        for i in 0..50u64 {
            let src = SocketAddr::from((
                Ipv4Addr::new(203, 0, 113, rng.gen_range(2..255)),
                rng.gen_range(1024..65535),
            ));
            let when = sim.now + Duration::from_micros(200 * i);
            sim.inject(when, src, r_addr, forged_initiation(&mut rng, &r_pub, None));
            forged += 1;
        }
        let next = sim.now + ms(10);
        sim.run_until(next);
    }
    // Let the last cookie replies land.
    sim.run_until(flood_end + ms(50));
    let stats = sim.nodes[r].dev.stats().clone();
    // The first ~1024 in the first second were processed; the rest got cookie replies.
    let processed = stats.drops.get(DropReason::HandshakeDecryptFailed) - 1;
    assert!(
        (1000..=1100).contains(&processed),
        "processed {processed} forged initiations before going under load"
    );
    assert!(
        stats.cookie_replies_sent + processed >= forged,
        "{stats:?} forged {forged}"
    );
    assert_eq!(
        stats.drops.get(DropReason::CookieSent),
        stats.cookie_replies_sent
    );
    // Nothing but cookie replies went to the attacker's addresses.
    assert!(sim
        .unrouted
        .iter()
        .all(|d| d.bytes[0] == 3 && d.bytes.len() == 64));
    let cookies_to_mallory = sim.sent_by(r, |d| d.dst == sim.nodes[mallory].addr);
    assert!(cookies_to_mallory.iter().all(|d| d.kind == 3));
    assert_eq!(
        sim.unrouted.len() + cookies_to_mallory.len(),
        stats.cookie_replies_sent as usize - 1
    );
    // Mallory's retries carry mac2; the responder does the DH for those, finds no such peer.
    let mallory_inits = std::mem::take(&mut sim.held);
    let with_mac2 = mallory_inits
        .iter()
        .filter(|d| d.bytes[132..] != [0u8; 16])
        .count();
    assert!(with_mac2 >= 1 && !cookies_to_mallory.is_empty());
    assert_eq!(stats.drops.get(DropReason::UnknownPeer) as usize, with_mac2);
    assert_eq!(sim.nodes[mallory].count_events(any_completed), 0);

    // The legitimate peer: its first initiation got a cookie reply, its retry (with mac2)
    // a response. Every response the responder sent went to it.
    let cookie_to_l = sim.sent_by(r, |d| d.kind == 3 && d.dst == sim.nodes[l].addr);
    assert_eq!(cookie_to_l.len(), 1);
    let done = sim.nodes[l].event_times(completed(true));
    assert_eq!(done.len(), 1);
    let took = done[0] - legit_start;
    assert!(
        took <= Duration::from_secs(6),
        "legit handshake took {took:?}"
    );
    let l_inits = sim.sent_by(l, |d| d.is_initiation());
    assert_eq!(
        l_inits.len(),
        2,
        "one initiation and one retry with the cookie"
    );
    assert_eq!(stats.responses_sent, 1);
    assert!(sim
        .sent_by(r, |d| d.kind == 2)
        .iter()
        .all(|d| d.dst == sim.nodes[l].addr));
    let delivered_after = sim.flows[flow].delivered_fraction_between(done[0], at(25.0));
    assert_eq!(delivered_after, 1.0);

    // An attacker at a real address can decrypt its cookie (the key is public) and echo it:
    // the responder then processes its messages, but rate-limited per source (20/s, burst 5).
    let attacker: SocketAddr = "203.0.113.200:4444".parse().unwrap();
    let probe = forged_initiation(&mut rng, &r_pub, None);
    let mac1 = probe[116..132].to_vec();
    let replies_before = sim.unrouted.len();
    sim.inject(sim.now, attacker, r_addr, probe);
    // Keep the responder under load with spoofed traffic meanwhile.
    let mut echoed = 0u64;
    let before = sim.nodes[r].dev.stats().clone();
    let echo_start = sim.now;
    let mut cookie = None;
    while sim.now < echo_start + Duration::from_secs(2) {
        for i in 0..20u64 {
            let src = SocketAddr::from((Ipv4Addr::new(198, 18, 0, 1), 1000 + i as u16));
            let when = sim.now + Duration::from_micros(500 * i);
            sim.inject(when, src, r_addr, forged_initiation(&mut rng, &r_pub, None));
        }
        if let Some(c) = cookie.as_ref() {
            for i in 0..10u64 {
                let when = sim.now + Duration::from_micros(1000 * i);
                sim.inject(
                    when,
                    attacker,
                    r_addr,
                    forged_initiation(&mut rng, &r_pub, Some(c)),
                );
                echoed += 1;
            }
        }
        let next = sim.now + ms(10);
        sim.run_until(next);
        if cookie.is_none() {
            let reply = sim.unrouted[replies_before..]
                .iter()
                .find(|d| d.dst == attacker)
                .expect("cookie reply to the attacker");
            cookie = Some(open_cookie_reply(&reply.bytes, &r_pub, &mac1).expect("opens"));
        }
    }
    let after = sim.nodes[r].dev.stats();
    let rate_limited = after.drops.get(DropReason::RateLimited);
    let decrypted = after.drops.get(DropReason::HandshakeDecryptFailed)
        - before.drops.get(DropReason::HandshakeDecryptFailed);
    assert_eq!(
        rate_limited + decrypted,
        echoed,
        "every echoed message passed the cookie check"
    );
    assert!(
        decrypted <= 5 + 2 * 20 + 1,
        "rate limiter let {decrypted} through"
    );
    assert!(decrypted >= 20, "rate limiter let only {decrypted} through");

    println!(
        "flood: {forged} forged initiations in 15 s; {processed} processed before under load, \
         {} cookie replies; legit handshake after {took:?} ({} initiations); unknown device: \
         {} initiations, {with_mac2} echoed a cookie and cost a DH; cookie-echoing forger: \
         {echoed} sent, {decrypted} processed, {rate_limited} rate-limited",
        stats.cookie_replies_sent,
        l_inits.len(),
        mallory_inits.len()
    );

    // After the flood the responder leaves under-load mode and the session keeps working,
    // rekeys included.
    sim.run_until(at(200.0));
    let f = &sim.flows[flow];
    assert_eq!(f.delivered_fraction_between(done[0], at(180.0)), 1.0);
    assert_eq!(sim.nodes[l].count_events(completed(true)), 2);
}

/// 6. The initiator's NAT mapping changes mid-stream: the responder follows it and only the
///    packets it sent to the old mapping are lost.
#[test]
fn roaming_endpoint_follows_nat_rebinding() {
    let mut sim = Sim::new(6, Link::clean(ms(10)));
    let a = sim.add_node("client", "192.0.2.1:40000", "10.0.0.1");
    let b = sim.add_node("server", B_ADDR, "10.0.0.2");
    let ab_peer = sim.add_peer(a, b, &["10.0.0.2/32"], true, None);
    let ba_peer = sim.add_peer(b, a, &["10.0.0.1/32"], false, None);
    let _ = ab_peer;
    let ab = sim.add_flow(a, b, at(0.0), ms(100), Some(at(60.0)));
    let ba = sim.add_flow(b, a, at(1.0), ms(100), Some(at(60.0)));
    sim.run_until(at(30.05));
    let old: SocketAddr = "192.0.2.1:40000".parse().unwrap();
    assert_eq!(
        sim.nodes[b].dev.peer_info(ba_peer).unwrap().endpoint,
        Some(old)
    );
    let rebind = sim.now;
    sim.rebind(a, "192.0.2.77:50000", false);
    sim.run_until(at(61.0));

    let new: SocketAddr = "192.0.2.77:50000".parse().unwrap();
    assert_eq!(
        sim.nodes[b].dev.peer_info(ba_peer).unwrap().endpoint,
        Some(new)
    );
    let changes: Vec<(Instant, SocketAddr)> = sim.nodes[b]
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::EndpointChanged { endpoint, .. } => Some((*t, *endpoint)),
            _ => None,
        })
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].1, old);
    let (learned, ep) = changes[1];
    assert_eq!(ep, new);
    // A's next packet (≤ 100 ms later) arrives 10 ms after it is sent.
    assert!(
        learned > rebind && learned - rebind <= ms(111),
        "{}",
        secs(learned)
    );

    assert_eq!(sim.flows[ab].lost(), Vec::<u64>::new());
    let lost = sim.flows[ba].lost();
    assert!(!lost.is_empty() && lost.len() <= 2, "{lost:?}");
    for s in &lost {
        let sent = sim.flows[ba].sent[*s as usize].0;
        // In flight at the rebinding, or sent before B learned the new address.
        assert!(
            sent + ms(10) > rebind && sent < learned,
            "seq {s} at {}",
            secs(sent)
        );
    }
    println!(
        "roaming: rebound at {:.3} s, server followed at {:.3} s, lost server->client {lost:?}",
        secs(rebind),
        secs(learned)
    );
}

/// 7. Thirty minutes on a bad link: sessions keep being established, nothing is delivered
///    twice, and most packets arrive.
#[test]
fn lossy_link_thirty_minutes() {
    let link = Link {
        latency: ms(30),
        jitter: ms(40),
        loss: 0.10,
        duplicate: 0.02,
        reorder: 0.05,
        reorder_delay: ms(300),
    };
    let mut sim = Sim::new(7, link);
    let a = sim.add_node("A", A_ADDR, "10.0.0.1");
    let b = sim.add_node("B", B_ADDR, "10.0.0.2");
    sim.connect(a, b);
    let end = at(1800.0);
    let ab = sim.add_flow(a, b, at(0.0), ms(100), Some(end));
    let ba = sim.add_flow(b, a, at(0.5), ms(100), Some(end));
    sim.run_until(end + Duration::from_secs(5));

    for f in [ab, ba] {
        let flow = &sim.flows[f];
        assert_eq!((flow.duplicates, flow.misdelivered), (0, 0), "flow {f}");
        let total = flow.delivered_fraction_between(at(0.0), end);
        assert!(total >= 0.85, "flow {f} delivered {total:.3}");
        for w in 0..6 {
            let from = at(300.0 * w as f64);
            let frac = flow.delivered_fraction_between(from, from + Duration::from_secs(300));
            assert!(frac >= 0.75, "flow {f} window {w}: {frac:.3}");
        }
        assert!(flow.reordered > 0, "reordering was accepted");
    }
    let handshakes = sim.count_events(completed(true));
    assert!(handshakes >= 1800 / 130, "only {handshakes} handshakes");
    let last = sim
        .nodes
        .iter()
        .flat_map(|n| n.event_times(completed(true)))
        .max()
        .unwrap();
    assert!(last > at(1600.0), "last handshake at {}", secs(last));
    let replays: u64 = sim
        .nodes
        .iter()
        .map(|n| n.dev.stats().drops.get(DropReason::Replay))
        .sum();
    assert!(
        replays > 0 && replays <= sim.net.duplicated,
        "{replays} {}",
        sim.net.duplicated
    );
    println!(
        "lossy: delivered {:.3} / {:.3}, reordered {} / {}, {handshakes} handshakes, \
         {replays} duplicates dropped as Replay; {:?}",
        sim.flows[ab].delivered_fraction_between(at(0.0), end),
        sim.flows[ba].delivered_fraction_between(at(0.0), end),
        sim.flows[ab].reordered,
        sim.flows[ba].reordered,
        sim.net
    );
}

/// 8. Hub and spokes with cryptokey routing: packets reach the right spoke through the hub,
///    and a packet whose inner source is not in its sender's allowed IPs is dropped.
#[test]
fn hub_and_spoke_cryptokey_routing() {
    let mut sim = Sim::new(8, Link::clean(ms(15)));
    let hub = sim.add_node("hub", "198.51.100.1:51820", "10.0.0.1");
    sim.nodes[hub].forwarding = true;
    let mut spokes = Vec::new();
    let mut at_hub = Vec::new();
    for i in 1..=3u8 {
        // S3 reaches the hub over IPv6 (its tunnel traffic is still IPv4).
        let addr = match i {
            3 => "[2001:db8::3]:51820".to_string(),
            _ => format!("192.0.2.{i}:51820"),
        };
        let s = sim.add_node(&format!("S{i}"), &addr, &format!("10.0.{i}.1"));
        sim.add_peer(s, hub, &["10.0.0.0/16"], true, None);
        at_hub.push(sim.add_peer(hub, s, &[&format!("10.0.{i}.0/24")], false, None));
        spokes.push(s);
    }
    let (s1, s2, s3) = (spokes[0], spokes[1], spokes[2]);
    let end = Some(at(20.0));
    // Each spoke talks to the hub first, so that the hub learns its endpoint.
    let flows = [
        sim.add_flow(s1, hub, at(0.0), ms(200), end),
        sim.add_flow(s2, hub, at(0.0), ms(200), end),
        sim.add_flow(s1, s2, at(1.0), ms(200), end),
        sim.add_flow(s2, s3, at(1.1), ms(200), end),
        sim.add_flow(s3, s1, at(1.2), ms(200), end),
        sim.add_flow(s3, hub, at(0.0), ms(200), end),
        sim.add_flow(hub, s3, at(2.0), ms(200), end),
    ];
    sim.run_until(at(21.0));
    for f in flows {
        let flow = &sim.flows[f];
        assert_eq!(flow.lost(), Vec::<u64>::new(), "flow {f}");
        assert_eq!(flow.misdelivered, 0);
    }
    let spoke_to_spoke: usize = flows[2..5]
        .iter()
        .map(|f| sim.flows[*f].delivered_count())
        .sum();
    assert_eq!(sim.nodes[hub].forwarded, spoke_to_spoke as u64);
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert_eq!(sim.nodes[hub].dev.route(ip("10.0.2.77")), Some(at_hub[1]));
    assert_eq!(sim.nodes[hub].dev.route(ip("10.0.9.9")), None);

    // S3 claims an address of S1's range: the hub drops it.
    let spoof = sim.add_manual_flow(
        s3,
        hub,
        Ipv4Addr::new(10, 0, 1, 5),
        Ipv4Addr::new(10, 0, 0, 1),
    );
    // S3 using another address of its own /24 is fine.
    let own = sim.add_manual_flow(
        s3,
        hub,
        Ipv4Addr::new(10, 0, 3, 9),
        Ipv4Addr::new(10, 0, 0, 1),
    );
    // The hub has no route to 10.0.9.9.
    let nowhere = sim.add_manual_flow(
        hub,
        s1,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 9, 9),
    );
    for _ in 0..5 {
        assert_eq!(sim.send(spoof), SendResult::Sent);
        assert_eq!(sim.send(own), SendResult::Sent);
        assert_eq!(sim.send(nowhere), SendResult::Dropped(DropReason::NoRoute));
    }
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.flows[spoof].delivered_count(), 0);
    assert_eq!(sim.flows[own].delivered_count(), 5);
    let drops = &sim.nodes[hub].dev.stats().drops;
    assert_eq!(drops.get(DropReason::NotAllowedSource), 5);
    assert_eq!(drops.get(DropReason::NoRoute), 5);
    for s in spokes {
        assert_eq!(
            sim.nodes[s].dev.stats().drops.total(),
            0,
            "{}",
            sim.nodes[s].name
        );
    }
    println!(
        "hub: forwarded {spoke_to_spoke} spoke-to-spoke packets, NotAllowedSource 5, NoRoute 5"
    );
}

/// 9. A peer with a persistent keepalive of 25 s sends one every 25 s while idle; the other
///    side, without one, sends nothing but handshake responses.
#[test]
fn persistent_keepalive_every_25_s() {
    let mut sim = Sim::new(9, Link::clean(ms(10)));
    let a = sim.add_node("client", "192.0.2.1:40000", "10.0.0.1");
    let b = sim.add_node("server", B_ADDR, "10.0.0.2");
    let pa = sim.add_peer(a, b, &["10.0.0.2/32"], true, Some(25));
    sim.add_peer(b, a, &["10.0.0.1/32"], false, None);
    assert_eq!(
        sim.nodes[a].dev.peer_info(pa).unwrap().persistent_keepalive,
        25
    );
    let ab = sim.add_manual_flow(a, b, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let ba = sim.add_manual_flow(b, a, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
    sim.run_until(at(1.0));
    sim.send(ab);
    sim.run_until(at(2.0));
    sim.send(ba);
    sim.run_until(at(900.0));
    assert_eq!(sim.flows[ab].delivered_count(), 1);
    assert_eq!(sim.flows[ba].delivered_count(), 1);

    let idle = at(60.0);
    // Keepalives that confirm a new session (counter 0) are not the persistent ones.
    let keepalives: Vec<Instant> = sim
        .sent_by(a, |r| r.is_keepalive() && r.counter > 0 && r.time >= idle)
        .iter()
        .map(|r| r.time)
        .collect();
    assert!(
        keepalives.len() >= (840 / 25) - 1,
        "{} keepalives",
        keepalives.len()
    );
    for w in keepalives.windows(2) {
        let gap = w[1] - w[0];
        // 25 s, or 25 s after the response of a rekey the keepalive itself triggered.
        assert!(
            gap >= Duration::from_secs(25) && gap <= ms(25_030),
            "gap {gap:?}"
        );
    }
    // Keepalives keep a NAT mapping open; they also keep the initiator rekeying.
    assert!(sim.nodes[a].count_events(completed(true)) >= 840 / 130);
    assert_eq!(sim.sent_by(b, |r| r.kind == 4 && r.time >= idle).len(), 0);
    assert!(sim.sent_by(b, |r| r.kind == 2 && r.time >= idle).len() >= 840 / 130);
    assert_eq!(
        sim.nodes[b].count_events(|e| matches!(e, Event::KeysZeroed { .. })),
        0
    );
    println!(
        "keepalive: {} persistent keepalives from {:.3} s to {:.3} s, {} handshakes",
        keepalives.len(),
        secs(keepalives[0]),
        secs(*keepalives.last().unwrap()),
        sim.nodes[a].count_events(completed(true))
    );
}

/// 10. Regression: a node whose own (initiator) session is old confirms a session the peer
///     initiated. The receive-side rekey check must look at the keypair that is current after
///     the confirmation (the peer's fresh one), as the kernel's keep_key_fresh does, and not
///     start a needless handshake that replaces the session just made.
#[test]
fn confirming_a_responder_session_does_not_rekey() {
    let (mut sim, a, b) = pair(10, ms(10));
    let ab = sim.add_manual_flow(a, b, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let ba = sim.add_manual_flow(b, a, Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
    sim.send(ab);
    sim.run_until(at(1.0));
    sim.send(ba);
    // Silence until A's session (A initiated it) is past REJECT_AFTER_TIME; B must then start
    // a handshake of its own to send. Its first data packet is lost, so A confirms the new
    // session only with the next one, more than REKEY_TIMEOUT after answering B.
    sim.run_until(at(200.0));
    sim.tap = Some(Box::new(move |r| {
        if r.from == b && r.is_data() && r.time < at(206.0) {
            Tap::Drop
        } else {
            Tap::Pass
        }
    }));
    sim.send(ba);
    sim.run_until(at(207.0));
    sim.send(ba);
    sim.run_until(at(210.0));
    assert_eq!(sim.flows[ba].delivered_count(), 2);
    assert_eq!(sim.nodes[b].count_events(completed(true)), 1);
    assert_eq!(sim.nodes[a].count_events(completed(false)), 1);
    // A initiated only the first session.
    assert_eq!(sim.nodes[a].dev.stats().initiations_sent, 1);
}
