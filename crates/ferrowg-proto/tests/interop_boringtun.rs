//! Interoperability with boringtun, in process.
//!
//! One ferrowg `Device` and one boringtun `noise::Tunn` talk to each other through in-memory
//! datagrams, in both roles, with and without a preshared key: handshakes, data both ways
//! (real IPv4/IPv6 UDP packets, since ferrowg checks the inner source against allowed IPs),
//! keepalives, replays, crossing initiations, rekeys with packets in flight, and cookie
//! replies in both directions, to initiations and to responses.
//!
//! ```text
//!   ferrowg Device                                   boringtun Tunn
//!   192.0.2.1:51820  <---- datagrams (Vec<u8>) ---->  198.51.100.2:51821
//!   tunnel 10.0.0.1, fd00::1                          tunnel 10.0.0.2, fd00::2
//! ```
//!
//! Every datagram ferrowg emits goes through `Ferro::check_wire` in `harness.rs` (sizes
//! 148/92/64/32+16n, zero reserved bytes, little-endian indices checked against boringtun's
//! known index layout, strictly consecutive transport counters).
//!
//! Determinism: ferrowg's clock is ours and its RNG is a seeded ChaCha; boringtun draws its
//! ephemerals from `OsRng` and reads the real clock, so only its random bytes vary between
//! runs. boringtun's timers run on its real clock before each call (so that its session
//! bookkeeping sees time pass) and must find nothing due; where a test needs boringtun to
//! start a handshake it calls `format_handshake_initiation(_, true)`, the call its
//! `update_timers` makes on REKEY_AFTER_TIME or REKEY_TIMEOUT (boringtun's `mock-instant`
//! feature would let its own timers drive this, at the price of a process-wide mock clock).

#[path = "interop_boringtun/harness.rs"]
mod harness;

use std::time::Duration;

use boringtun::noise::TunnResult;
use ferrowg_proto::messages::{
    COOKIE_REPLY_SIZE, KEEPALIVE_TIMEOUT, REKEY_AFTER_TIME, REKEY_TIMEOUT,
    REKEY_TIMEOUT_JITTER_MAX, TRANSPORT_OVERHEAD,
};
use ferrowg_proto::{DropReason, Event, Incoming, Outgoing};
use harness::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

// ----- 1 & 2: handshakes both ways, data both ways --------------------------------------------

fn ferrowg_initiates(seed: u64, psk: Option<[u8; 32]>) {
    let mut p = Pair::new(Setup::psk(seed, psk));
    p.handshake_ferro_initiates();
    p.exchange(40);
    // Passive keepalive: ferrowg sends (which disarms the keepalive timer), then receives
    // data; KEEPALIVE_TIMEOUT later it sends an empty packet, which boringtun accepts.
    let a = p.packet(true, true);
    let (_, ds) = p.f.send_ip(&a);
    assert_eq!(p.pump(ds, Vec::new()).0, vec![a]);
    p.advance(Duration::from_millis(500));
    let q = p.packet(false, false);
    let d = p.b.send(&q);
    assert_eq!(p.f.recv(&d).1, Some(q));
    let received_at = p.f.now;
    let tx = loop {
        let t = p.f.dev.poll_timeout().expect("a keepalive timer");
        assert!(t - received_at <= KEEPALIVE_TIMEOUT + Duration::from_secs(1));
        p.f.now = t;
        p.f.dev.handle_timeout(t);
        let tx = p.f.drain();
        if !tx.is_empty() {
            break tx;
        }
    };
    assert!(p.f.now - received_at >= KEEPALIVE_TIMEOUT);
    assert_eq!(tx.len(), 1);
    assert_eq!((tx[0][0], tx[0].len()), (4, TRANSPORT_OVERHEAD));
    let got = p.b.recv(&tx[0]);
    assert!(got.done && got.err.is_none(), "{got:?}");
    p.exchange(10);
    assert_eq!(p.f.completed(true), 1);
    assert_eq!(p.f.completed(false), 0);
    assert_eq!(p.f.dev.stats().drops.total(), 0);
}

#[test]
fn ferrowg_initiator_boringtun_responder() {
    ferrowg_initiates(1, None);
}

#[test]
fn ferrowg_initiator_boringtun_responder_psk() {
    ferrowg_initiates(2, Some([0x5a; 32]));
}

fn boringtun_initiates(seed: u64, psk: Option<[u8; 32]>) {
    let mut p = Pair::new(Setup {
        ferro_knows_endpoint: false,
        ..Setup::psk(seed, psk)
    });
    let init = p.handshake_boring_initiates();
    assert!(p.f.events.contains(&Event::EndpointChanged {
        peer: p.f.peer,
        endpoint: BORING_EP
    }));
    p.exchange(40);
    // Cryptokey routing: a packet from boringtun with a source outside the peer's allowed
    // IPs authenticates but is dropped.
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let spoofed = udp_packet(&mut rng, "10.0.0.99".parse().unwrap(), FERRO_V4, 100);
    let d = p.b.send(&spoofed);
    assert_eq!(
        p.f.recv(&d).0,
        Incoming::Dropped(DropReason::NotAllowedSource)
    );
    // Replays are refused on both sides: transport data by counter, the initiation by its
    // TAI64N timestamp.
    let q = p.packet(false, true);
    let d = p.b.send(&q);
    assert_eq!(p.f.recv(&d).1, Some(q));
    assert_eq!(p.f.recv(&d).0, Incoming::Dropped(DropReason::Replay));
    let a = p.packet(true, true);
    let (_, ds) = p.f.send_ip(&a);
    assert_eq!(p.b.recv(&ds[0]).tunnel, vec![a]);
    assert_eq!(p.b.recv(&ds[0]).err.as_deref(), Some("DuplicateCounter"));
    p.f.now = p.f.now + Duration::from_secs(1);
    let (r, _, tx) = p.f.recv(&init);
    assert_eq!(r, Incoming::Dropped(DropReason::StaleTimestamp));
    assert!(tx.is_empty());
    p.exchange(10);
    assert_eq!(p.f.completed(false), 1);
    assert_eq!(p.f.completed(true), 0);
}

#[test]
fn boringtun_initiator_ferrowg_responder() {
    boringtun_initiates(3, None);
}

#[test]
fn boringtun_initiator_ferrowg_responder_psk() {
    boringtun_initiates(4, Some([0xa5; 32]));
}

/// A preshared key that differs between the two sides makes the handshake fail, in both
/// directions (the positive tests above would also pass if neither side used the key).
#[test]
fn mismatched_psk_fails_both_ways() {
    let s = Setup {
        ferro_psk: Some([1; 32]),
        boring_psk: Some([2; 32]),
        ..Setup::psk(5, None)
    };
    let mut p = Pair::new(s);
    let pkt = p.packet(true, false);
    let (_, ds) = p.f.send_ip(&pkt);
    let got = p.b.recv(&ds[0]);
    assert_eq!(got.network.len(), 1, "boringtun cannot tell yet");
    let (r, _, tx) = p.f.recv(&got.network[0]);
    assert_eq!(r, Incoming::Dropped(DropReason::HandshakeDecryptFailed));
    assert!(tx.is_empty());

    let mut p = Pair::new(Setup {
        ferro_knows_endpoint: false,
        ..s
    });
    let init = p.b.initiate();
    let (r, _, tx) = p.f.recv(&init);
    assert_eq!(r, Incoming::Handshake);
    let got = p.b.recv(&tx[0]);
    assert!(got.err.is_some() && got.network.is_empty(), "{got:?}");
    assert_eq!(p.f.completed(true) + p.f.completed(false), 0);
}

/// Both sides start a handshake at once (one-way latency 25 ms, above the 20 ms initiation
/// flood interval).
///
/// ferrowg, like the kernel, keeps one handshake per peer: answering boringtun's initiation
/// abandons its own, so boringtun's response to it is refused. boringtun, on its side, answers
/// ferrowg's initiation and then, flushing its queue (it holds a packet and, as a responder,
/// has no confirmed session), starts a second initiation and forgets its first; ferrowg's
/// response to that first one is refused. ferrowg answers the second, boringtun completes as
/// initiator, and the packets queued on both sides get through. ferrowg's retransmit timer
/// for its abandoned initiation is cancelled by the completed handshake.
#[test]
fn simultaneous_initiations() {
    const HOP: Duration = Duration::from_millis(25);
    let mut p = Pair::new(Setup::psk(13, Some([0x42; 32])));
    let p1 = p.packet(true, false);
    let (out, ds) = p.f.send_ip(&p1);
    assert_eq!(out, Outgoing::Queued { peer: p.f.peer });
    let init_f = ds[0].clone();
    let p2 = p.packet(false, true);
    p.b.tick();
    let mut buf = vec![0u8; 2048];
    let init_b = match p.b.tunn.encapsulate(&p2, &mut buf) {
        TunnResult::WriteToNetwork(d) => d.to_vec(),
        other => panic!("{other:?}"),
    };
    assert_eq!(init_b[0], 1, "boringtun queues the packet and initiates");

    // The initiations cross.
    p.advance(HOP);
    let (r, _, tx) = p.f.recv(&init_b);
    assert_eq!(r, Incoming::Handshake);
    let resp_f1 = tx[0].clone();
    assert_eq!(&resp_f1[8..12], &init_b[4..8]);
    let got = p.b.recv(&init_f);
    assert_eq!(got.err, None);
    assert_eq!(got.network.len(), 2, "response, then a new initiation");
    let (resp_b, init_b2) = (got.network[0].clone(), got.network[1].clone());
    assert_eq!((resp_b[0], init_b2[0]), (2, 1));
    assert_eq!(&resp_b[8..12], &init_f[4..8]);

    // The responses cross; both are to abandoned initiations.
    p.advance(HOP);
    assert_eq!(
        p.f.recv(&resp_b).0,
        Incoming::Dropped(DropReason::UnknownIndex)
    );
    assert_eq!(p.b.recv(&resp_f1).err.as_deref(), Some("UnexpectedPacket"));
    let (r, _, tx) = p.f.recv(&init_b2);
    assert_eq!(r, Incoming::Handshake);
    let resp_f2 = tx[0].clone();

    // boringtun completes as initiator: keepalive, then its queued packet.
    p.advance(HOP);
    let got = p.b.recv(&resp_f2);
    assert_eq!(got.err, None);
    assert_eq!(got.network.len(), 2);
    assert_eq!(got.network[0].len(), TRANSPORT_OVERHEAD);
    p.advance(HOP);
    let (at_b, at_f) = p.pump(Vec::new(), got.network);
    assert_eq!(at_f, vec![p2]);
    assert_eq!(at_b, vec![p1]);
    assert_eq!(p.f.completed(false), 1);
    let ack = p.b.send(&[]);
    assert_eq!(p.f.recv(&ack).0, Incoming::Keepalive { peer: p.f.peer });
    p.advance(Duration::from_secs(30));
    assert_eq!(
        p.f.dev.stats().initiations_sent,
        1,
        "retried an abandoned handshake"
    );
    p.exchange(20);
    assert_eq!(p.f.completed(true), 0);
}

// ----- 3: rekeys ----------------------------------------------------------------------------

/// ferrowg, the initiator, rekeys on the first send after REKEY_AFTER_TIME; packets sent by
/// boringtun on the old session before and during the handshake still arrive, and so do
/// ferrowg's first packets on the new session even when they overtake its keepalive.
#[test]
fn rekey_initiated_by_ferrowg() {
    let mut p = Pair::new(Setup::psk(6, Some([7; 32])));
    p.handshake_ferro_initiates();
    for round in 1..=3u32 {
        let session_start = p.f.now;
        p.exchange(20);
        let old_index = BORING_INDEX << 8 | round;
        // Just before REKEY_AFTER_TIME a send rekeys nothing.
        p.advance(REKEY_AFTER_TIME - (p.f.now - session_start) - Duration::from_secs(1));
        let a = p.packet(true, false);
        let (_, ds) = p.f.send_ip(&a);
        assert_eq!(ds.len(), 1, "rekeyed early");
        assert_eq!(p.pump(ds, Vec::new()).0, vec![a]);
        p.advance(Duration::from_secs(2));

        // The first send after it goes out on the old keys and starts a handshake.
        let f1 = p.packet(true, true);
        let (out, ds) = p.f.send_ip(&f1);
        assert!(matches!(out, Outgoing::Send { .. }));
        assert_eq!(ds.len(), 2, "packet and initiation");
        assert_eq!((ds[0][0], le32(&ds[0], 4)), (4, old_index));
        assert_eq!(ds[1][0], 1);
        let init = ds[1].clone();
        // More data before the response: old keys, and no second initiation.
        let f2 = p.packet(true, false);
        let (_, ds2) = p.f.send_ip(&f2);
        assert_eq!(ds2.len(), 1);
        assert_eq!(le32(&ds2[0], 4), old_index);
        let b1 = p.packet(false, false);
        let b1d = p.b.send(&b1);
        assert_eq!(
            p.pump(vec![ds[0].clone(), ds2[0].clone()], Vec::new()).0,
            vec![f1, f2]
        );

        let got = p.b.recv(&init);
        assert_eq!(got.network.len(), 1);
        let resp = got.network[0].clone();
        assert_eq!(le32(&resp, 4), old_index + 1, "boringtun's new index");
        // boringtun has not seen the new keys used: it still sends on the old session.
        let b2 = p.packet(false, true);
        let b2d = p.b.send(&b2);
        assert_eq!(le32(&b2d, 4), le32(&b1d, 4));

        let (r, _, tx) = p.f.recv(&resp);
        assert_eq!(r, Incoming::Handshake);
        assert_eq!(p.f.completed(true), round as usize + 1);
        assert_eq!(tx.len(), 1, "keepalive");
        let keepalive = tx[0].clone();
        assert_eq!(
            (le32(&keepalive, 4), le64(&keepalive, 8)),
            (old_index + 1, 0)
        );
        let f3 = p.packet(true, true);
        let (_, ds3) = p.f.send_ip(&f3);
        assert_eq!(ds3.len(), 1);
        assert_eq!((le32(&ds3[0], 4), le64(&ds3[0], 8)), (old_index + 1, 1));

        // In-flight old-session packets still decrypt at ferrowg (previous keypair).
        assert_eq!(p.pump(Vec::new(), vec![b1d, b2d]).1, vec![b1, b2]);
        // ferrowg's new-session data overtakes its keepalive.
        assert_eq!(p.pump(ds3, Vec::new()).0, vec![f3]);
        let got = p.b.recv(&keepalive);
        assert!(got.done && got.err.is_none(), "{got:?}");
        // boringtun now sends on the new session.
        let b3 = p.packet(false, true);
        let b3d = p.b.send(&b3);
        assert_eq!(le32(&b3d, 4), le32(&init, 4), "ferrowg's new index");
        assert_eq!(p.pump(Vec::new(), vec![b3d]).1, vec![b3]);
    }
    p.exchange(20);
    assert_eq!(p.f.completed(true), 4);
    assert_eq!(p.f.dev.stats().drops.total(), 0);
}

/// boringtun, the initiator, rekeys (as its REKEY_AFTER_TIME timer would); ferrowg keeps
/// sending on the old session until boringtun's first packet on the new one confirms it, and
/// old-session packets in flight still arrive on both sides.
#[test]
fn rekey_initiated_by_boringtun() {
    let mut p = Pair::new(Setup {
        ferro_knows_endpoint: false,
        ..Setup::psk(7, None)
    });
    p.handshake_boring_initiates();
    for round in 1..=3u32 {
        p.exchange(20);
        p.advance(Duration::from_secs(60));
        let old_index = BORING_INDEX << 8 | round;
        let b0 = p.packet(false, false);
        let b0d = p.b.send(&b0);
        let f1 = p.packet(true, false);
        let (_, f1d) = p.f.send_ip(&f1);

        let init = p.b.initiate();
        let (r, _, tx) = p.f.recv(&init);
        assert_eq!(r, Incoming::Handshake);
        assert_eq!(tx.len(), 1);
        let resp = tx[0].clone();
        // Unconfirmed next keypair: ferrowg still sends on the current one.
        let f2 = p.packet(true, true);
        let (_, f2d) = p.f.send_ip(&f2);
        assert_eq!(f2d.len(), 1);
        assert_eq!(le32(&f2d[0], 4), old_index);

        let got = p.b.recv(&resp);
        assert_eq!(got.err, None);
        assert_eq!(got.network.len(), 1);
        let keepalive = got.network[0].clone();
        assert_eq!(le32(&keepalive, 4), le32(&resp, 4), "on the new session");
        let b1 = p.packet(false, true);
        let b1d = p.b.send(&b1);
        assert_eq!(le32(&b1d, 4), le32(&resp, 4));

        // ferrowg's old-session packets reach boringtun after its switch.
        assert_eq!(p.pump([f1d, f2d].concat(), Vec::new()).0, vec![f1, f2]);
        // boringtun's data overtakes its keepalive and confirms the keys.
        let completed = p.f.completed(false);
        let (r, pkt, tx) = p.f.recv(&b1d);
        assert!(matches!(r, Incoming::Packet { .. }));
        assert_eq!(pkt, Some(b1));
        assert!(tx.is_empty());
        assert_eq!(p.f.completed(false), completed + 1);
        assert_eq!(
            p.f.recv(&keepalive).0,
            Incoming::Keepalive { peer: p.f.peer }
        );
        // The old session's straggler.
        assert_eq!(p.pump(Vec::new(), vec![b0d]).1, vec![b0]);
        // ferrowg now sends on the new session, counter 0.
        let f3 = p.packet(true, false);
        let (_, f3d) = p.f.send_ip(&f3);
        assert_eq!((le32(&f3d[0], 4), le64(&f3d[0], 8)), (old_index + 1, 0));
        assert_eq!(p.pump(f3d, Vec::new()).0, vec![f3]);
    }
    p.exchange(20);
    assert_eq!(p.f.completed(false), 4);
    assert_eq!(p.f.completed(true), 0);
    assert_eq!(p.f.dev.stats().drops.total(), 0);
}

/// After boringtun initiated, ferrowg (the responder, which does not rekey on time) lets the
/// session expire at REJECT_AFTER_TIME, then initiates itself on the next packet.
#[test]
fn ferrowg_reinitiates_after_session_expiry() {
    let mut p = Pair::new(Setup {
        ferro_knows_endpoint: false,
        ..Setup::psk(8, Some([3; 32]))
    });
    p.handshake_boring_initiates();
    p.exchange(10);
    p.advance(REKEY_AFTER_TIME + Duration::from_secs(10));
    let a = p.packet(true, false);
    let (_, ds) = p.f.send_ip(&a);
    assert_eq!(ds.len(), 1, "a responder rekeyed on time");
    assert_eq!(p.pump(ds, Vec::new()).0, vec![a]);
    // boringtun acknowledges (else ferrowg would rekey after KEEPALIVE + REKEY_TIMEOUT).
    let ack = p.b.send(&[]);
    assert_eq!(p.f.recv(&ack).0, Incoming::Keepalive { peer: p.f.peer });
    p.advance(Duration::from_secs(60));
    assert_eq!(p.f.completed(true), 0, "ferrowg rekeyed before expiry");
    let first = p.packet(true, true);
    let (out, ds) = p.f.send_ip(&first);
    assert_eq!(out, Outgoing::Queued { peer: p.f.peer });
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0][0], 1);
    let (at_b, _) = p.pump(ds, Vec::new());
    assert_eq!(at_b, vec![first]);
    assert_eq!(p.f.completed(true), 1);
    p.exchange(20);
}

// ----- 4: cookies ---------------------------------------------------------------------------

/// boringtun under load (rate limit 0) answers ferrowg's initiation with a cookie reply;
/// ferrowg's retry after REKEY_TIMEOUT carries a mac2 that boringtun accepts.
#[test]
fn cookie_reply_from_boringtun() {
    let mut p = Pair::new(Setup {
        boring_limit: Some(0),
        ..Setup::psk(9, None)
    });
    let first = p.packet(true, false);
    let (out, ds) = p.f.send_ip(&first);
    assert_eq!(out, Outgoing::Queued { peer: p.f.peer });
    let init = ds[0].clone();
    let sent_at = p.f.now;
    assert_eq!(&init[132..], &[0; 16]);
    let got = p.b.recv(&init);
    assert_eq!(got.network.len(), 1);
    let cookie = got.network[0].clone();
    assert_eq!(
        (cookie[0], cookie.len()),
        (3, COOKIE_REPLY_SIZE),
        "not a cookie reply"
    );
    assert_eq!(&cookie[4..8], &init[4..8]);

    p.f.now = p.f.now + Duration::from_millis(2);
    let (r, _, tx) = p.f.recv(&cookie);
    assert_eq!(r, Incoming::Handshake);
    assert!(tx.is_empty(), "ferrowg retried before REKEY_TIMEOUT");

    // The retry comes from the retransmit timer.
    let retry = loop {
        let t = p.f.dev.poll_timeout().expect("a retransmit timer");
        assert!(t - sent_at <= REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX);
        p.f.now = t;
        p.f.dev.handle_timeout(t);
        let tx = p.f.drain();
        if let Some(d) = tx.into_iter().find(|d| d[0] == 1) {
            break d;
        }
    };
    assert!(
        p.f.now - sent_at >= REKEY_TIMEOUT,
        "retry after {:?}",
        p.f.now - sent_at
    );
    assert_ne!(&retry[132..], &[0; 16], "no mac2 on the retry");
    // A corrupted mac2 draws another cookie reply: boringtun really checks it.
    let mut bad = retry.clone();
    bad[140] ^= 1;
    assert_eq!(p.b.recv(&bad).network[0][0], 3);
    let got = p.b.recv(&retry);
    assert_eq!(got.err, None);
    assert_eq!(got.network.len(), 1);
    assert_eq!(got.network[0][0], 2, "boringtun did not accept the mac2");
    let (at_b, _) = p.pump(Vec::new(), got.network);
    assert_eq!(at_b, vec![first]);
    assert_eq!(p.f.completed(true), 1);
    p.exchange(20);
}

/// ferrowg under load answers boringtun's initiation with a cookie reply, boringtun accepts
/// it, and its retry (with mac2) completes the handshake.
#[test]
fn cookie_reply_from_ferrowg() {
    let mut p = Pair::new(Setup {
        ferro_knows_endpoint: false,
        ..Setup::psk(10, Some([0x11; 32]))
    });
    p.f.dev.set_under_load(true);
    let init = p.b.initiate();
    assert_eq!(&init[132..], &[0; 16]);
    let (r, _, tx) = p.f.recv(&init);
    assert_eq!(r, Incoming::Dropped(DropReason::CookieSent));
    assert_eq!(tx.len(), 1);
    let cookie = tx[0].clone();
    assert_eq!((cookie[0], cookie.len()), (3, COOKIE_REPLY_SIZE));
    assert_eq!(
        &cookie[4..8],
        &init[4..8],
        "receiver_index = initiation's sender_index"
    );
    assert_eq!(p.f.dev.stats().cookie_replies_sent, 1);
    assert_eq!(p.f.dev.peer_info(p.f.peer).unwrap().endpoint, None);

    // A tampered reply is refused by boringtun.
    let mut bad = cookie.clone();
    bad[40] ^= 1;
    assert!(p.b.recv(&bad).err.is_some());
    let got = p.b.recv(&cookie);
    assert!(
        got.done && got.err.is_none(),
        "boringtun refused the cookie: {got:?}"
    );

    let retry = p.b.initiate();
    assert_ne!(&retry[132..], &[0; 16], "boringtun sent no mac2");
    p.f.now = p.f.now + Duration::from_millis(50);
    let (r, _, tx) = p.f.recv(&retry);
    assert_eq!(
        r,
        Incoming::Handshake,
        "ferrowg did not accept boringtun's mac2"
    );
    assert_eq!(p.f.dev.stats().cookie_replies_sent, 1);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0][0], 2);
    let got = p.b.recv(&tx[0]);
    assert_eq!(got.err, None);
    let (_, at_f) = p.pump(Vec::new(), got.network);
    assert!(at_f.is_empty());
    assert_eq!(p.f.completed(false), 1);
    p.exchange(20);
    p.f.dev.set_under_load(false);
}

/// ferrowg under load as the initiator: boringtun's response draws a cookie reply (addressed
/// to the response's sender index), boringtun accepts it, and its response to ferrowg's retry
/// carries a mac2 that ferrowg accepts.
#[test]
fn cookie_reply_to_boringtun_response() {
    let mut p = Pair::new(Setup::psk(14, None));
    p.f.dev.set_under_load(true);
    let first = p.packet(true, true);
    let (_, ds) = p.f.send_ip(&first);
    let sent_at = p.f.now;
    let got = p.b.recv(&ds[0]);
    let resp = got.network[0].clone();
    assert_eq!((resp[0], &resp[76..]), (2, &[0u8; 16][..]));
    let (r, _, tx) = p.f.recv(&resp);
    assert_eq!(r, Incoming::Dropped(DropReason::CookieSent));
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0][0], 3);
    assert_eq!(
        &tx[0][4..8],
        &resp[4..8],
        "receiver_index = response's sender_index"
    );
    let got = p.b.recv(&tx[0]);
    assert!(
        got.done && got.err.is_none(),
        "boringtun refused the cookie: {got:?}"
    );
    assert_eq!(p.f.completed(true), 0);

    let retry = loop {
        let t = p.f.dev.poll_timeout().expect("a retransmit timer");
        p.f.now = t;
        p.f.dev.handle_timeout(t);
        if let Some(d) = p.f.drain().into_iter().find(|d| d[0] == 1) {
            break d;
        }
    };
    assert!(p.f.now - sent_at >= REKEY_TIMEOUT);
    let got = p.b.recv(&retry);
    let resp2 = got.network[0].clone();
    assert_eq!(resp2[0], 2);
    assert_ne!(&resp2[76..], &[0u8; 16], "boringtun sent no mac2");
    let (r, _, tx) = p.f.recv(&resp2);
    assert_eq!(
        r,
        Incoming::Handshake,
        "ferrowg did not accept boringtun's mac2"
    );
    assert_eq!(p.f.completed(true), 1);
    assert_eq!(p.f.dev.stats().cookie_replies_sent, 1);
    assert_eq!(p.pump(tx, Vec::new()).0, vec![first]);
    p.exchange(20);
}

/// boringtun under load as the initiator: it answers ferrowg's response with a cookie reply
/// (addressed to the response's sender index, which names a keypair in ferrowg's table);
/// ferrowg takes the cookie, and its response to boringtun's retry carries a valid mac2.
#[test]
fn cookie_reply_from_boringtun_to_response() {
    let mut p = Pair::new(Setup {
        boring_limit: Some(0),
        ferro_knows_endpoint: false,
        ..Setup::psk(15, Some([0x77; 32]))
    });
    let init = p.b.initiate();
    let (r, _, tx) = p.f.recv(&init);
    assert_eq!(r, Incoming::Handshake);
    let resp = tx[0].clone();
    assert_eq!(&resp[76..], &[0u8; 16]);
    let got = p.b.recv(&resp);
    assert_eq!(got.network.len(), 1);
    let cookie = got.network[0].clone();
    assert_eq!(cookie[0], 3, "boringtun under load answered {}", cookie[0]);
    assert_eq!(&cookie[4..8], &resp[4..8]);
    p.f.now = p.f.now + Duration::from_millis(2);
    let (r, _, tx) = p.f.recv(&cookie);
    assert_eq!(r, Incoming::Handshake, "ferrowg refused the cookie");
    assert!(tx.is_empty());

    let retry = p.b.initiate();
    p.f.now = p.f.now + Duration::from_millis(100);
    let (r, _, tx) = p.f.recv(&retry);
    assert_eq!(r, Incoming::Handshake);
    let resp2 = tx[0].clone();
    assert_ne!(&resp2[76..], &[0u8; 16], "ferrowg sent no mac2");
    let got = p.b.recv(&resp2);
    assert_eq!(got.err, None);
    assert_eq!(got.network.len(), 1);
    assert_eq!(
        got.network[0].len(),
        TRANSPORT_OVERHEAD,
        "boringtun did not accept the mac2"
    );
    assert_eq!(p.pump(Vec::new(), got.network).1, Vec::<Vec<u8>>::new());
    assert_eq!(p.f.completed(false), 1);
    p.exchange(20);
}

// ----- 5: wire format -----------------------------------------------------------------------

/// Every IP packet size from the smallest UDP packet to the MTU, IPv4 and IPv6, both ways:
/// ferrowg's datagram is exactly 32 + the padded length (checked in `send_ip`), boringtun's
/// (unpadded) ones decrypt at ferrowg, and the packets arrive intact.
#[test]
fn wire_format_every_size() {
    let mut p = Pair::new(Setup::psk(11, None));
    let init = p.handshake_ferro_initiates();
    // The initiation's sender_index is what boringtun addresses its data to.
    let q = p.packet(false, false);
    let d = p.b.send(&q);
    assert_eq!(&d[4..8], &init[4..8]);
    assert_eq!(p.f.recv(&d).1, Some(q));
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    for (f, b) in [(FERRO_V4, BORING_V4), (FERRO_V6, BORING_V6)] {
        for len in min_len(f)..=MTU {
            let out = udp_packet(&mut rng, f, b, len);
            let (_, ds) = p.f.send_ip(&out);
            assert_eq!(ds.len(), 1);
            assert_eq!(p.pump(ds, Vec::new()).0, vec![out]);
            let back = udp_packet(&mut rng, b, f, len);
            let d = p.b.send(&back);
            assert_eq!(d.len(), TRANSPORT_OVERHEAD + len, "boringtun pads nothing");
            assert_eq!(p.f.recv(&d).1, Some(back));
        }
    }
    // Counters ran 0, 1, 2, … on the one session (checked per datagram by check_wire).
    let sent: usize = p.f.counters.values().map(|n| *n as usize).sum();
    assert_eq!(p.f.counters.len(), 1);
    assert_eq!(sent, 1 + (MTU + 1 - 28) + (MTU + 1 - 48));
}
