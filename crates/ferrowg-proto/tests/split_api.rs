//! The split data-path API (`prepare_packet` + `SealJob::seal`, `begin_datagram` +
//! `OpenJob::open` + `finish_datagram`) that lets a daemon encrypt and decrypt without holding
//! the device: byte for byte the same datagrams and outcomes as `handle_packet` /
//! `handle_datagram`, and the checks that must happen after decryption (replay, a session
//! replaced meanwhile, a failed open) still happen. The batch calls (`seal_batch`,
//! `open_batch`) give the same bytes and hand the backend one run per session key.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrowg_proto::crypto::{
    clamp, AeadKey, AeadMessage, AuthError, Crypto, RustCrypto, SecretKey,
};
use ferrowg_proto::{
    open_batch, seal_batch, Begin, Device, DropReason, Incoming, Instant, Outgoing, PeerConfig,
    PeerId, Prepared, TRANSPORT_HEADER_SIZE,
};

mod common;
use common::{device, device_with, handshake, A_EP, B_EP};

/// A connected pair A → B with a session; returns B's id on A.
fn pair() -> (Device, Device, PeerId, Instant) {
    pair_with(None)
}

/// [`pair`], with both devices' transport keys from `crypto` if given.
fn pair_with(crypto: Option<&Recording>) -> (Device, Device, PeerId, Instant) {
    let now = Instant::from_secs(1);
    let key = |k| Box::new(SecretKey::from_bytes(clamp([k; 32])));
    let (mut a, mut b) = match crypto {
        Some(c) => (
            device_with(key(1), Box::new(c.clone()), 1),
            device_with(key(2), Box::new(c.clone()), 2),
        ),
        None => (device(key(1), 1), device(key(2), 2)),
    };
    let cfg = PeerConfig {
        endpoint: Some(B_EP.parse().unwrap()),
        ..PeerConfig::default()
    };
    let pb = a.add_peer(b.public_key(), cfg, now).unwrap();
    let pa = b
        .add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    a.add_allowed_ip(pb, "10.0.0.2".parse().unwrap(), 32)
        .unwrap();
    b.add_allowed_ip(pa, "10.0.0.1".parse().unwrap(), 32)
        .unwrap();
    handshake(&mut a, &mut b, pb, now);
    (a, b, pb, now)
}

/// A buffer with an IPv4 packet 10.0.0.1 → 10.0.0.2 of `len` bytes (tagged with `tag`) at
/// TRANSPORT_HEADER_SIZE.
fn packet(len: usize, tag: u8) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + len + 64];
    let p = &mut buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = tag.wrapping_add(i as u8);
    }
    (buf, len)
}

#[test]
fn split_send_and_receive_equal_the_whole_calls() {
    // Two identical worlds (same seeds, same handshake): one uses the whole calls, the other
    // the split ones; every datagram and every outcome must be equal.
    let (mut a1, mut b1, p1, now) = pair();
    let (mut a2, mut b2, p2, _) = pair();
    assert_eq!(p1, p2);
    let src: SocketAddr = A_EP.parse().unwrap();
    for (i, len) in [20usize, 21, 100, 1000, 1419, 1420, 1500]
        .into_iter()
        .enumerate()
    {
        let (mut w1, l) = packet(len, i as u8);
        let (mut w2, _) = packet(len, i as u8);
        let Outgoing::Send {
            len: n1,
            endpoint: e1,
            ..
        } = a1.handle_packet(now, &mut w1, l)
        else {
            panic!("whole send")
        };
        let Prepared::Seal {
            job, endpoint: e2, ..
        } = a2.prepare_packet(now, &mut w2, l)
        else {
            panic!("prepare")
        };
        let n2 = job.seal(&mut w2);
        assert_eq!((n1, e1), (n2, e2));
        assert_eq!(w1[..n1], w2[..n2], "datagram {i} differs");

        let r1 = b1.handle_datagram(now, src, &mut w1[..n1]);
        let Begin::Open(job) = b2.begin_datagram(now, src, &mut w2[..n2]) else {
            panic!("begin")
        };
        let opened = job.open(&mut w2[..n2]);
        let r2 = b2.finish_datagram(now, src, &mut w2[..n2], job, opened);
        assert_eq!(r1, r2);
        assert_eq!(
            r1,
            Incoming::Packet {
                peer: r1_peer(r1),
                len
            }
        );
        assert_eq!(w1[..n1], w2[..n2], "decrypted {i} differs");
    }
    assert_eq!(
        a1.peer_info(p1).unwrap().tx_bytes,
        a2.peer_info(p2).unwrap().tx_bytes
    );
}

fn r1_peer(r: Incoming) -> PeerId {
    match r {
        Incoming::Packet { peer, .. } => peer,
        other => panic!("{other:?}"),
    }
}

/// Seals one packet from A and begins it on B; returns the datagram and the job.
fn sealed(a: &mut Device, now: Instant, tag: u8) -> (Vec<u8>, usize) {
    let (mut w, l) = packet(200, tag);
    let Outgoing::Send { len, .. } = a.handle_packet(now, &mut w, l) else {
        panic!("send")
    };
    w.truncate(len);
    (w, len)
}

#[test]
fn replays_within_one_batch_are_caught_at_finish() {
    let (mut a, mut b, _, now) = pair();
    let src: SocketAddr = A_EP.parse().unwrap();
    let (w, _) = sealed(&mut a, now, 1);
    // The same datagram twice in one batch: both begin (the replay window has not seen it
    // yet), both decrypt, only the first finishes as a packet.
    let (mut d1, mut d2) = (w.clone(), w.clone());
    let Begin::Open(j1) = b.begin_datagram(now, src, &mut d1) else {
        panic!()
    };
    let Begin::Open(j2) = b.begin_datagram(now, src, &mut d2) else {
        panic!()
    };
    let (o1, o2) = (j1.open(&mut d1), j2.open(&mut d2));
    assert!(o1 && o2);
    assert!(matches!(
        b.finish_datagram(now, src, &mut d1, j1, o1),
        Incoming::Packet { .. }
    ));
    assert_eq!(
        b.finish_datagram(now, src, &mut d2, j2, o2),
        Incoming::Dropped(DropReason::Replay)
    );
    assert_eq!(b.stats().drops.get(DropReason::Replay), 1);
}

#[test]
fn a_failed_open_is_a_decrypt_failure_and_changes_nothing() {
    let (mut a, mut b, _, now) = pair();
    let src: SocketAddr = A_EP.parse().unwrap();
    let (w, _) = sealed(&mut a, now, 2);
    let mut bad = w.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let Begin::Open(j) = b.begin_datagram(now, src, &mut bad) else {
        panic!()
    };
    let o = j.open(&mut bad);
    assert!(!o);
    assert_eq!(
        b.finish_datagram(now, src, &mut bad, j, o),
        Incoming::Dropped(DropReason::DecryptFailed)
    );
    // The genuine datagram (same counter) is still accepted: the failure did not touch the
    // replay window.
    let mut good = w;
    assert!(matches!(
        b.handle_datagram(now, src, &mut good),
        Incoming::Packet { .. }
    ));
}

#[test]
fn a_session_replaced_between_begin_and_finish_drops_the_packet() {
    let (mut a, mut b, pb, now) = pair();
    let src: SocketAddr = A_EP.parse().unwrap();
    // Confirm the session on B (its first packet), then start one more packet.
    let (mut first, _) = sealed(&mut a, now, 3);
    assert!(matches!(
        b.handle_datagram(now, src, &mut first),
        Incoming::Packet { .. }
    ));
    let (mut w, _) = sealed(&mut a, now, 4);
    let Begin::Open(j) = b.begin_datagram(now, src, &mut w) else {
        panic!()
    };
    let o = j.open(&mut w);
    assert!(o);
    // Meanwhile B's peer is removed and added again: the session the job came from is gone.
    let pa = j.peer();
    let key = b.peer_info(pa).unwrap().public_key;
    assert!(b.remove_peer(pa));
    let again = b.add_peer(key, PeerConfig::default(), now).unwrap();
    let r = b.finish_datagram(now, src, &mut w, j, o);
    assert_eq!(r, Incoming::Dropped(DropReason::UnknownIndex));
    // And a new handshake works as usual afterwards.
    let later = now + Duration::from_secs(6);
    handshake(&mut a, &mut b, pb, later);
    assert!(b.has_keys(again));
}

/// RustCrypto, with keys that record the size of every batch they are handed.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<usize>>>);

struct RecordingKey(Box<dyn AeadKey>, Arc<Mutex<Vec<usize>>>);

impl Crypto for Recording {
    fn aead_key(&self, key: &[u8; 32]) -> Box<dyn AeadKey> {
        Box::new(RecordingKey(RustCrypto.aead_key(key), self.0.clone()))
    }
    fn name(&self) -> &'static str {
        "recording"
    }
}

impl AeadKey for RecordingKey {
    fn seal(&self, counter: u64, buf: &mut [u8]) -> [u8; 16] {
        self.0.seal(counter, buf)
    }
    fn open(&self, counter: u64, buf: &mut [u8], tag: &[u8; 16]) -> Result<(), AuthError> {
        self.0.open(counter, buf, tag)
    }
    fn seal_batch(&self, batch: &mut [AeadMessage<'_>]) {
        self.1.lock().unwrap().push(batch.len());
        self.0.seal_batch(batch);
    }
    fn open_batch(&self, batch: &mut [AeadMessage<'_>]) {
        self.1.lock().unwrap().push(batch.len());
        self.0.open_batch(batch);
    }
}

#[test]
fn batches_equal_single_calls_and_run_per_session_key() {
    // World 1 seals one datagram at a time; world 2 (same seeds) prepares the same packets and
    // seals them in one batch that spans a rekey: 5 packets on the first session, a new
    // handshake, 5 on the second.
    let rec = Recording::default();
    let (mut a1, mut b1, p1, now) = pair();
    let (mut a2, mut b2, p2, _) = pair_with(Some(&rec));
    // A new handshake may start 5 s (REKEY_TIMEOUT) after the last one at the earliest.
    let later = now + Duration::from_secs(6);
    // B confirms the first session (a responder's session becomes current with its first
    // packet), so that it still has it after the second handshake.
    let src: SocketAddr = A_EP.parse().unwrap();
    for (a, b) in [(&mut a1, &mut b1), (&mut a2, &mut b2)] {
        let (mut w, _) = sealed(a, now, 9);
        assert!(matches!(
            b.handle_datagram(now, src, &mut w),
            Incoming::Packet { .. }
        ));
    }
    let (mut single, mut bufs, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..10u8 {
        if i == 5 {
            handshake(&mut a1, &mut b1, p1, later);
            handshake(&mut a2, &mut b2, p2, later);
        }
        let len = 100 + 97 * usize::from(i);
        let (mut w1, l) = packet(len, i);
        let Outgoing::Send { len: n, .. } = a1.handle_packet(later, &mut w1, l) else {
            panic!("send {i}")
        };
        w1.truncate(n);
        single.push(w1);
        let (mut w2, _) = packet(len, i);
        let Prepared::Seal { job, .. } = a2.prepare_packet(later, &mut w2, l) else {
            panic!("prepare {i}")
        };
        w2.truncate(job.len());
        bufs.push(w2);
        jobs.push(job);
    }
    rec.0.lock().unwrap().clear();
    seal_batch(jobs.iter().zip(bufs.iter_mut().map(|b| &mut b[..])));
    assert_eq!(
        *rec.0.lock().unwrap(),
        [5, 5],
        "one backend call per session key"
    );
    assert_eq!(
        bufs, single,
        "batch-sealed datagrams differ from single seals"
    );

    // B opens them in one batch too; one corrupted datagram fails alone.
    bufs[7][40] ^= 1;
    let mut opens = Vec::new();
    for (i, d) in bufs.iter_mut().enumerate() {
        let Begin::Open(job) = b2.begin_datagram(later, src, d) else {
            panic!("begin {i}")
        };
        opens.push((job, false));
    }
    rec.0.lock().unwrap().clear();
    open_batch(
        opens
            .iter_mut()
            .zip(bufs.iter_mut())
            .map(|((job, ok), d)| (&*job, &mut d[..], ok)),
    );
    assert_eq!(*rec.0.lock().unwrap(), [5, 5]);
    for (i, ((job, ok), d)) in opens.into_iter().zip(bufs.iter_mut()).enumerate() {
        assert_eq!(ok, i != 7, "datagram {i} opened");
        let r = b2.finish_datagram(later, src, d, job, ok);
        if i == 7 {
            assert_eq!(r, Incoming::Dropped(DropReason::DecryptFailed));
        } else {
            let len = 100 + 97 * i;
            assert!(
                matches!(r, Incoming::Packet { len: l, .. } if l == len),
                "{i}: {r:?}"
            );
            let p = &d[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + len];
            assert_eq!(p[20], i as u8, "datagram {i} payload");
        }
    }
}
