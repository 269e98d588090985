//! The harness of `malformed.rs`: two devices in process, A (initiator, 10.0.0.1 at
//! 192.0.2.1) and B (responder, 10.0.0.2 at 192.0.2.2), with helpers that seal, deliver and
//! pump datagrams between them, and that assert how a bad datagram was dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ferrowg_proto::cookie::CookieMaker;
use ferrowg_proto::crypto::{clamp, RustCrypto, SecretKey};
use ferrowg_proto::{
    Device, DropReason, Incoming, Instant, Outgoing, PeerConfig, PeerId, TRANSPORT_HEADER_SIZE,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub const A_TUN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const B_TUN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const A_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 51820);
pub const B_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 51820);
/// The device's bound on datagrams waiting for `poll_transmit` (`MAX_QUEUED_TRANSMITS`).
pub const MAX_QUEUED_TRANSMITS: usize = 4096;
/// The kernel's MAX_STAGED_PACKETS, which the device follows.
pub const MAX_STAGED_PACKETS: u64 = 128;
/// Seconds between handshakes we start, past REKEY_TIMEOUT (5 s).
pub const HANDSHAKE_GAP_SECS: u64 = 6;

// ----- the two devices ---------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// A (initiator, 10.0.0.1 at 192.0.2.1) and B (responder, 10.0.0.2 at 192.0.2.2).
pub struct Pair {
    pub a: Device,
    pub b: Device,
    /// B as seen by A.
    pub a_peer: PeerId,
    /// A as seen by B.
    pub b_peer: PeerId,
    pub a_pub: [u8; 32],
    pub b_pub: [u8; 32],
    pub now: Instant,
}

pub fn device(seed: u64, key: u8) -> Device {
    let sk = SecretKey::from_bytes(clamp([key; 32]));
    Device::new(
        Box::new(sk),
        Box::new(RustCrypto),
        Box::new(ChaCha8Rng::seed_from_u64(seed)),
    )
}

/// An IPv4 packet of `len` bytes (at least 20) from `src` to `dst` with a pattern payload.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(20)];
    p[0] = 0x45;
    let total = u16::try_from(p.len()).unwrap();
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    for (i, b) in p[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

impl Pair {
    pub fn new(seed: u64) -> Pair {
        let now = Instant::from_secs(1);
        let mut a = device(seed, 1);
        let mut b = device(seed.wrapping_add(1), 2);
        // Handshake timestamps come from this clock; any epoch works as long as it grows.
        a.set_clock(now, 1_700_000_000_000_000_000);
        b.set_clock(now, 1_700_000_000_000_000_000);
        let (a_pub, b_pub) = (a.public_key(), b.public_key());
        let a_peer = a
            .add_peer(
                b_pub,
                PeerConfig {
                    endpoint: Some(B_EP),
                    ..PeerConfig::default()
                },
                now,
            )
            .unwrap();
        let b_peer = b.add_peer(a_pub, PeerConfig::default(), now).unwrap();
        a.add_allowed_ip(a_peer, IpAddr::V4(B_TUN), 32).unwrap();
        b.add_allowed_ip(b_peer, IpAddr::V4(A_TUN), 32).unwrap();
        Pair {
            a,
            b,
            a_peer,
            b_peer,
            a_pub,
            b_pub,
            now,
        }
    }

    /// A pair whose first handshake is done and confirmed in both directions.
    pub fn established(seed: u64) -> Pair {
        let mut p = Pair::new(seed);
        let mut buf = packet_buf(&ipv4(A_TUN, B_TUN, 60));
        assert_eq!(
            p.a.handle_packet(p.now, &mut buf, 60),
            Outgoing::Queued { peer: p.a_peer }
        );
        p.pump();
        assert!(p.a.peer_info(p.a_peer).unwrap().has_session);
        assert!(p.b.peer_info(p.b_peer).unwrap().has_session);
        p.assert_session_works();
        p.drain_events();
        p
    }

    pub fn dev(&mut self, side: Side) -> &mut Device {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    pub fn advance(&mut self, secs: u64) {
        self.advance_millis(secs * 1000);
    }

    pub fn advance_millis(&mut self, ms: u64) {
        self.now = self.now + std::time::Duration::from_millis(ms);
    }

    /// Delivers every queued datagram in both directions until both queues are empty.
    pub fn pump(&mut self) -> Vec<(Side, Incoming)> {
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(&mut buf) {
                assert_eq!(t.endpoint, B_EP);
                seen.push((
                    Side::B,
                    self.b.handle_datagram(self.now, A_EP, &mut buf[..t.len]),
                ));
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(&mut buf) {
                assert_eq!(t.endpoint, A_EP);
                seen.push((
                    Side::A,
                    self.a.handle_datagram(self.now, B_EP, &mut buf[..t.len]),
                ));
                moved = true;
            }
            if !moved {
                return seen;
            }
        }
    }

    /// The one datagram `side` has queued.
    pub fn take_transmit(&mut self, side: Side) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let dev = self.dev(side);
        let t = dev.poll_transmit(&mut buf).expect("a queued datagram");
        assert_eq!(dev.pending_transmits(), 0, "exactly one datagram queued");
        buf.truncate(t.len);
        buf
    }

    /// Encrypts `ip` on `side` for the other side and returns the datagram.
    pub fn seal(&mut self, side: Side, ip: &[u8]) -> Vec<u8> {
        let now = self.now;
        let mut buf = packet_buf(ip);
        match self.dev(side).handle_packet(now, &mut buf, ip.len()) {
            Outgoing::Send { len, .. } => {
                buf.truncate(len);
                buf
            }
            other => panic!("{side:?} could not seal: {other:?}"),
        }
    }

    /// Hands `datagram` to `side` as if from the other side's endpoint.
    pub fn deliver(&mut self, side: Side, datagram: &[u8]) -> (Incoming, Vec<u8>) {
        let now = self.now;
        let src = match side {
            Side::A => B_EP,
            Side::B => A_EP,
        };
        let mut buf = datagram.to_vec();
        let r = self.dev(side).handle_datagram(now, src, &mut buf);
        (r, buf)
    }

    /// Data flows both ways: a fresh packet each way decrypts to the bytes that were sent.
    pub fn assert_session_works(&mut self) {
        for (from, to, src, dst) in [
            (Side::A, Side::B, A_TUN, B_TUN),
            (Side::B, Side::A, B_TUN, A_TUN),
        ] {
            let ip = ipv4(src, dst, 100);
            let d = self.seal(from, &ip);
            let (r, buf) = self.deliver(to, &d);
            match r {
                Incoming::Packet { len, .. } => {
                    assert_eq!(len, ip.len());
                    assert_eq!(&buf[TRANSPORT_HEADER_SIZE..][..len], &ip[..]);
                }
                other => panic!("session broken {from:?}→{to:?}: {other:?}"),
            }
        }
    }

    /// Starts a handshake from A (after REKEY_TIMEOUT) and returns its initiation.
    pub fn new_initiation(&mut self) -> Vec<u8> {
        self.advance(HANDSHAKE_GAP_SECS);
        let (now, peer) = (self.now, self.a_peer);
        self.a.initiate_handshake(peer, now);
        self.take_transmit(Side::A)
    }

    /// Delivers `init` to B, returns B's response (not yet delivered).
    pub fn response_to(&mut self, init: &[u8]) -> Vec<u8> {
        assert_eq!(self.deliver(Side::B, init).0, Incoming::Handshake);
        self.take_transmit(Side::B)
    }

    /// Completes a handshake from `init`: response to A, A's keepalive to B.
    pub fn complete(&mut self, init: &[u8]) {
        let resp = self.response_to(init);
        assert_eq!(self.deliver(Side::A, &resp).0, Incoming::Handshake);
        let seen = self.pump();
        assert!(
            seen.iter().all(|(_, r)| !matches!(r, Incoming::Dropped(_))),
            "{seen:?}"
        );
        self.drain_events();
    }

    pub fn drain_events(&mut self) {
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
    }
}

/// A buffer holding `ip` at offset 16 with room for padding and the tag.
pub fn packet_buf(ip: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + ip.len() + 16 + 16];
    buf[TRANSPORT_HEADER_SIZE..][..ip.len()].copy_from_slice(ip);
    buf
}

/// Feeds `datagram` to `side`, which must drop it for `expected`: exactly one counter (that
/// one) goes up, and nothing is queued in answer.
pub fn expect_drop(p: &mut Pair, side: Side, datagram: &[u8], expected: DropReason, what: &str) {
    let got = expect_some_drop(p, side, datagram, what);
    assert_eq!(got, expected, "{what}: {}", hex::encode(datagram));
}

/// Feeds `datagram` to `side`, which must drop it (for any reason, returned), counting it once
/// and queueing nothing.
pub fn expect_some_drop(p: &mut Pair, side: Side, datagram: &[u8], what: &str) -> DropReason {
    let dev = p.dev(side);
    let before = dev.stats().drops.clone();
    let queued = dev.pending_transmits();
    let (r, _) = p.deliver(side, datagram);
    let dev = p.dev(side);
    let Incoming::Dropped(reason) = r else {
        panic!("{what}: accepted as {r:?}: {}", hex::encode(datagram));
    };
    let after = &dev.stats().drops;
    assert_eq!(
        after.get(reason),
        before.get(reason) + 1,
        "{what}: counter of {reason}"
    );
    assert_eq!(
        after.total(),
        before.total() + 1,
        "{what}: one drop counted"
    );
    assert_eq!(
        dev.pending_transmits(),
        queued,
        "{what}: nothing sent in answer"
    );
    reason
}

/// Recomputes mac1 (and zeroes mac2) of a handshake message for the receiver `to`: an
/// attacker who knows the public key can always do this.
pub fn remac(m: &mut [u8], to: &[u8; 32], now: Instant) {
    CookieMaker::new(to).add_macs(m, now);
}
