//! Static-key DHs run by the caller (`set_static_dh_offloaded`): the device never calls the
//! static key itself — not for answering an initiation, not for consuming a response, not for
//! the static-static DH of a first handshake, not for initiations its timers or waiting data
//! start — and handshakes complete exactly as without it. Under load is then the caller's
//! decision alone. Also: a key change outside rotation stops sending on current sessions.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ferrowg_proto::crypto::{clamp, KeyError, Secret, SecretKey, StaticKey};
use ferrowg_proto::device::Event;
use ferrowg_proto::{
    Begin, Device, DropReason, Incoming, Instant, Outgoing, PeerConfig, PeerId,
    TRANSPORT_HEADER_SIZE,
};

mod common;
use common::{device, A_EP, B_EP};

/// A static key that counts its DHs and records any made while `allowed` is false.
#[derive(Clone)]
struct Watched {
    key: Arc<SecretKey>,
    allowed: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    violations: Arc<AtomicUsize>,
}

impl Watched {
    fn new(k: u8) -> Self {
        Watched {
            key: Arc::new(SecretKey::from_bytes(clamp([k; 32]))),
            allowed: Arc::new(AtomicBool::new(false)),
            calls: Arc::new(AtomicUsize::new(0)),
            violations: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `f` as the caller's worker would: outside the device, DHs allowed.
    fn outside<T>(&self, f: impl FnOnce() -> T) -> T {
        self.allowed.store(true, Ordering::SeqCst);
        let r = f();
        self.allowed.store(false, Ordering::SeqCst);
        r
    }
}

impl StaticKey for Watched {
    fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }
    fn dh(&self, peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.allowed.load(Ordering::SeqCst) {
            self.violations.fetch_add(1, Ordering::SeqCst);
        }
        self.key.dh(peer_public)
    }
}

fn ep(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A (normal, key 1) and B (offloaded, watched key 2), peers of each other with endpoints and
/// allowed IPs 10.0.0.1 (A) and 10.0.0.2 (B). Returns (a, b, B at A, A at B, B's key).
fn pair() -> (Device, Device, PeerId, PeerId, Watched) {
    let now = Instant::from_secs(1);
    let wk = Watched::new(2);
    let mut a = device(Box::new(SecretKey::from_bytes(clamp([1; 32]))), 1);
    let mut b = device(Box::new(wk.clone()), 2);
    b.set_static_dh_offloaded(true);
    let cfg = |e: &str| PeerConfig {
        endpoint: Some(ep(e)),
        ..PeerConfig::default()
    };
    let pb = a.add_peer(b.public_key(), cfg(B_EP), now).unwrap();
    let pa = b.add_peer(a.public_key(), cfg(A_EP), now).unwrap();
    a.add_allowed_ip(pb, "10.0.0.2".parse().unwrap(), 32)
        .unwrap();
    b.add_allowed_ip(pa, "10.0.0.1".parse().unwrap(), 32)
        .unwrap();
    (a, b, pb, pa, wk)
}

/// An IPv4 packet `src` → `dst` of 60 bytes at TRANSPORT_HEADER_SIZE of a buffer.
fn packet(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + 60 + 64];
    let p = &mut buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + 60];
    p[0] = 0x45;
    p[3] = 60;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    buf
}

/// B's side of one datagram as the daemon runs it: begin under "the lock", the DHs outside,
/// finish under the lock (asking for the static-static DH once if needed).
fn b_receive(b: &mut Device, wk: &Watched, now: Instant, src: &str, d: &mut [u8]) -> Incoming {
    match b.begin_datagram(now, ep(src), d) {
        Begin::Done(i) => i,
        Begin::Open(job) => {
            let ok = job.open(d);
            b.finish_datagram(now, ep(src), d, job, ok)
        }
        Begin::Handshake(job) => {
            let c = wk.outside(|| job.compute());
            match b.finish_handshake(now, &c) {
                Ok(i) => i,
                Err(dh) => {
                    let r = wk.outside(|| dh.compute());
                    assert!(b.provide_static_dh(now, r));
                    b.finish_handshake(now, &c)
                        .unwrap_or_else(|_| panic!("asked twice"))
                }
            }
        }
    }
}

/// Everything `d` wants sent, as (endpoint, bytes).
fn drain(d: &mut Device) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(t) = d.poll_transmit(&mut buf) {
        out.push((t.endpoint, buf[..t.len].to_vec()));
    }
    out
}

/// A sends one packet to B through the tunnel; B must deliver it.
fn a_to_b(a: &mut Device, b: &mut Device, wk: &Watched, now: Instant) {
    let mut buf = packet([10, 0, 0, 1], [10, 0, 0, 2]);
    let Outgoing::Send { len, .. } = a.handle_packet(now, &mut buf, 60) else {
        panic!("A has no session")
    };
    let r = b_receive(b, wk, now, A_EP, &mut buf[..len]);
    assert!(matches!(r, Incoming::Packet { len: 60, .. }), "{r:?}");
}

#[test]
fn responder_never_runs_a_static_dh_inside_the_device() {
    let (mut a, mut b, pb, _, wk) = pair();
    let now = Instant::from_secs(2);
    a.initiate_handshake(pb, now);
    let (_, mut init) = drain(&mut a).pop().expect("initiation");
    // es with the initiation's ephemeral, then the static-static DH of a first handshake.
    assert_eq!(
        b_receive(&mut b, &wk, now, A_EP, &mut init),
        Incoming::Handshake
    );
    assert_eq!(wk.calls.load(Ordering::SeqCst), 2);
    let (to, mut resp) = drain(&mut b).pop().expect("response");
    assert_eq!(to, ep(A_EP));
    assert_eq!(
        a.handle_datagram(now, ep(B_EP), &mut resp),
        Incoming::Handshake
    );
    for (_, mut d) in drain(&mut a) {
        b_receive(&mut b, &wk, now, A_EP, &mut d);
    }
    a_to_b(&mut a, &mut b, &wk, now);
    // A second handshake needs only es: the static-static DH is kept.
    let later = now + std::time::Duration::from_secs(6);
    a.initiate_handshake(pb, later);
    let (_, mut init) = drain(&mut a).pop().expect("initiation");
    assert_eq!(
        b_receive(&mut b, &wk, later, A_EP, &mut init),
        Incoming::Handshake
    );
    assert_eq!(wk.calls.load(Ordering::SeqCst), 3);
    assert_eq!(wk.violations.load(Ordering::SeqCst), 0);
}

#[test]
fn initiator_waits_for_its_static_dh_then_sends() {
    let (mut a, mut b, _, pa, wk) = pair();
    let now = Instant::from_secs(2);
    // Data for A with no session: the initiation waits for the static-static DH.
    let mut buf = packet([10, 0, 0, 2], [10, 0, 0, 1]);
    assert_eq!(
        b.handle_packet(now, &mut buf, 60),
        Outgoing::Queued { peer: pa }
    );
    assert!(drain(&mut b).is_empty());
    assert!(b.wants_static_dh());
    let mut events = Vec::new();
    while let Some(e) = b.poll_event() {
        events.push(e);
    }
    assert!(events.contains(&Event::StaticDhWanted { peer: pa }));
    let jobs = b.take_static_dh_jobs(16);
    assert_eq!(jobs.len(), 1);
    assert!(!b.wants_static_dh());
    for j in jobs {
        let r = wk.outside(|| j.compute());
        assert!(b.provide_static_dh(now, r));
    }
    // Now the initiation goes out; A answers; B consumes the response outside the device.
    let (to, mut init) = drain(&mut b).pop().expect("initiation after the DH");
    assert_eq!(to, ep(A_EP));
    assert_eq!(
        a.handle_datagram(now, ep(B_EP), &mut init),
        Incoming::Handshake
    );
    let (_, mut resp) = drain(&mut a).pop().expect("response");
    assert_eq!(
        b_receive(&mut b, &wk, now, B_EP, &mut resp),
        Incoming::Handshake
    );
    // The staged packet went out with B's keepalive; A delivers it.
    let out = drain(&mut b);
    assert!(!out.is_empty());
    let delivered = out.into_iter().any(|(_, mut d)| {
        matches!(
            a.handle_datagram(now, ep(B_EP), &mut d),
            Incoming::Packet { .. }
        )
    });
    assert!(delivered);
    assert_eq!(wk.violations.load(Ordering::SeqCst), 0);
    assert_eq!(wk.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_result_computed_with_a_replaced_key_is_refused() {
    let (mut a, mut b, pb, _, wk) = pair();
    let now = Instant::from_secs(2);
    a.initiate_handshake(pb, now);
    let (_, mut init) = drain(&mut a).pop().expect("initiation");
    let Begin::Handshake(job) = b.begin_datagram(now, ep(A_EP), &mut init) else {
        panic!("not offloaded")
    };
    let c = wk.outside(|| job.compute());
    b.rotate_static_key(Box::new(SecretKey::from_bytes(clamp([9; 32]))));
    assert_eq!(
        b.finish_handshake(now, &c).ok(),
        Some(Incoming::Dropped(DropReason::KeyUnavailable))
    );
    assert!(drain(&mut b).is_empty());
}

#[test]
fn under_load_from_the_callers_backlog_or_the_rate() {
    let (mut a, mut b, pb, _, _) = pair();
    let mut now = Instant::from_secs(2);
    a.initiate_handshake(pb, now);
    let (_, init) = drain(&mut a).pop().expect("initiation");
    // Admission only (the same initiation replayed: admission does not look further).
    let admit = |b: &mut Device, now: Instant| {
        let mut d = init.clone();
        match b.begin_datagram(now, ep(A_EP), &mut d) {
            Begin::Done(Incoming::Dropped(DropReason::CookieSent)) => true,
            Begin::Handshake(_) => false,
            other => panic!("{other:?}"),
        }
    };
    // The caller's backlog says so: a cookie at once.
    b.set_under_load(true);
    assert!(admit(&mut b, now));
    assert_eq!(drain(&mut b).len(), 1);
    b.set_under_load(false);
    // Its own rate: the first 1,024 messages of a second (the one above included) pass, then
    // cookies.
    let mut cookies = 0;
    for i in 0..1500 {
        now = now + std::time::Duration::from_micros(100);
        let cookie = admit(&mut b, now);
        assert_eq!(cookie, i >= 1023, "message {i}");
        cookies += usize::from(cookie);
    }
    assert_eq!(drain(&mut b).len(), cookies);
}

#[test]
fn a_new_key_stops_sending_on_the_old_session_but_rotation_does_not() {
    for rotate in [false, true] {
        let (mut a, mut b, pb, pa, wk) = pair();
        let now = Instant::from_secs(2);
        a.initiate_handshake(pb, now);
        let (_, mut init) = drain(&mut a).pop().expect("initiation");
        b_receive(&mut b, &wk, now, A_EP, &mut init);
        let (_, mut resp) = drain(&mut b).pop().expect("response");
        a.handle_datagram(now, ep(B_EP), &mut resp);
        for (_, mut d) in drain(&mut a) {
            b_receive(&mut b, &wk, now, A_EP, &mut d);
        }
        let new_key = Box::new(SecretKey::from_bytes(clamp([7; 32])));
        if rotate {
            b.rotate_static_key(new_key);
        } else {
            b.set_static_key(new_key);
        }
        let mut buf = packet([10, 0, 0, 2], [10, 0, 0, 1]);
        let out = b.handle_packet(now, &mut buf, 60);
        if rotate {
            assert!(matches!(out, Outgoing::Send { .. }), "{out:?}");
        } else {
            assert_eq!(out, Outgoing::Queued { peer: pa });
        }
        // Either way, what A still sends on the old session arrives.
        a_to_b(&mut a, &mut b, &wk, now);
        assert_eq!(wk.violations.load(Ordering::SeqCst), 0);
    }
}
