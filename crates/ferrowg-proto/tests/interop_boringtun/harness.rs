//! The harness for `interop_boringtun.rs`: IP packet builders, the ferrowg and boringtun
//! sides with their wire-format checks, and the [`Pair`] that carries datagrams between them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Tunn, TunnResult};
use boringtun::x25519;
use ferrowg_proto::crypto::{RustCrypto, SecretKey};
use ferrowg_proto::messages::{
    COOKIE_REPLY_SIZE, HANDSHAKE_INITIATION_SIZE, HANDSHAKE_RESPONSE_SIZE, TRANSPORT_HEADER_SIZE,
    TRANSPORT_OVERHEAD,
};
use ferrowg_proto::{Device, Event, Incoming, Instant, Outgoing, PeerConfig, PeerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// ferrowg's default tunnel MTU, which caps the padding.
pub const MTU: usize = 1420;
/// ferrowg's UDP endpoint.
pub const FERRO_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 51820);
/// boringtun's UDP endpoint.
pub const BORING_EP: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), 51821);
/// Tunnel addresses. boringtun's are the allowed IPs of its peer entry in ferrowg.
pub const FERRO_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const BORING_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
pub const FERRO_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
pub const BORING_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2));
/// boringtun's peer index: its receiver indices are `BORING_INDEX << 8 | n`, n = 1, 2, …
pub const BORING_INDEX: u32 = 0x12_3456;
/// ferrowg's clock at the start of every test.
pub const T0: Instant = Instant::from_secs(1_000);
/// Wall-clock time at `T0` (2023-11-14), for ferrowg's TAI64N timestamps.
pub const UNIX_T0_NANOS: u64 = 1_700_000_000_000_000_000;

// ----- IP packets ----------------------------------------------------------------------------

/// The Internet checksum (RFC 1071) of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A UDP-in-IP packet of exactly `total_len` bytes from `src` to `dst` with a random payload
/// and correct IP and UDP checksums.
pub fn udp_packet(rng: &mut impl Rng, src: IpAddr, dst: IpAddr, total_len: usize) -> Vec<u8> {
    let ip_header = if src.is_ipv4() { 20 } else { 40 };
    let udp_len = total_len - ip_header;
    let mut udp = vec![0u8; udp_len];
    udp[0..2].copy_from_slice(&rng.gen_range(1024u16..65535).to_be_bytes());
    udp[2..4].copy_from_slice(&53u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    rng.fill(&mut udp[8..]);
    let mut pseudo = Vec::new();
    let mut p = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
            let mut h = vec![0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&(total_len as u16).to_be_bytes());
            h[4..6].copy_from_slice(&rng.gen::<u16>().to_be_bytes());
            h[6] = 0x40; // don't fragment
            h[8] = 64; // TTL
            h[9] = 17; // UDP
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = inet_checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            assert_eq!(inet_checksum(&h), 0, "IPv4 header checksum");
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(udp_len as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            h[6] = 17; // UDP
            h[7] = 64; // hop limit
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            h
        }
        _ => panic!("mixed address families"),
    };
    pseudo.extend_from_slice(&udp);
    let c = match inet_checksum(&pseudo) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&udp);
    assert_eq!(p.len(), total_len);
    p
}

/// The smallest UDP packet of the family of `addr`.
pub fn min_len(addr: IpAddr) -> usize {
    if addr.is_ipv4() {
        28
    } else {
        48
    }
}

/// The plaintext length of a transport message carrying `len` bytes: padded to a multiple of
/// 16 but not beyond the MTU (whitepaper §5.4.6).
pub fn padded(len: usize) -> usize {
    let p = len.div_ceil(16) * 16;
    if p <= MTU {
        p
    } else {
        len.max(MTU)
    }
}

pub fn le32(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(d[at..at + 4].try_into().unwrap())
}

pub fn le64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().unwrap())
}

/// The source address of an IP packet.
pub fn ip_source(p: &[u8]) -> IpAddr {
    match p[0] >> 4 {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&p[12..16]).unwrap())),
        6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap())),
        v => panic!("IP version {v}"),
    }
}

// ----- the ferrowg side ----------------------------------------------------------------------

/// The ferrowg device, its clock, and what it reported.
pub struct Ferro {
    pub dev: Device,
    pub now: Instant,
    pub peer: PeerId,
    pub events: Vec<Event>,
    /// Next transport counter expected, per receiver index, on what ferrowg sends.
    pub counters: HashMap<u32, u64>,
}

impl Ferro {
    /// Checks the wire format of a datagram ferrowg sends to boringtun.
    pub fn check_wire(&mut self, d: &[u8]) {
        assert!(d.len() >= 4, "datagram of {} bytes", d.len());
        assert_eq!(&d[1..4], &[0, 0, 0], "reserved bytes of type {}", d[0]);
        match d[0] {
            1 => assert_eq!(d.len(), HANDSHAKE_INITIATION_SIZE),
            2 => {
                assert_eq!(d.len(), HANDSHAKE_RESPONSE_SIZE);
                // receiver_index echoes boringtun's sender_index, little-endian.
                assert_eq!(le32(d, 8) >> 8, BORING_INDEX, "response receiver_index");
            }
            3 => {
                assert_eq!(d.len(), COOKIE_REPLY_SIZE);
                assert_eq!(le32(d, 4) >> 8, BORING_INDEX, "cookie receiver_index");
            }
            4 => {
                assert!(d.len() >= TRANSPORT_OVERHEAD);
                let body = d.len() - TRANSPORT_OVERHEAD;
                assert!(
                    body % 16 == 0 || body == MTU,
                    "transport of {} bytes",
                    d.len()
                );
                let index = le32(d, 4);
                assert_eq!(
                    index >> 8,
                    BORING_INDEX,
                    "transport receiver_index {index:#x}"
                );
                let next = self.counters.entry(index).or_insert(0);
                assert_eq!(le64(d, 8), *next, "counter on index {index:#x}");
                *next += 1;
            }
            t => panic!("ferrowg sent message type {t}"),
        }
    }

    /// Everything ferrowg wants to send now, checked; events are collected.
    pub fn drain(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Some(t) = self.dev.poll_transmit(&mut buf) {
            assert_eq!(t.endpoint, BORING_EP);
            let d = buf[..t.len].to_vec();
            self.check_wire(&d);
            out.push(d);
        }
        while let Some(e) = self.dev.poll_event() {
            self.events.push(e);
        }
        out
    }

    /// Hands an IP packet to ferrowg; returns the outcome and every datagram to send, the
    /// packet's own first.
    pub fn send_ip(&mut self, pkt: &[u8]) -> (Outgoing, Vec<Vec<u8>>) {
        let mut buf = vec![0u8; TRANSPORT_OVERHEAD + padded(pkt.len())];
        buf[TRANSPORT_HEADER_SIZE..][..pkt.len()].copy_from_slice(pkt);
        let out = self.dev.handle_packet(self.now, &mut buf, pkt.len());
        let mut datagrams = Vec::new();
        if let Outgoing::Send {
            peer,
            endpoint,
            len,
        } = out
        {
            assert_eq!((peer, endpoint), (self.peer, BORING_EP));
            assert_eq!(
                len,
                TRANSPORT_OVERHEAD + padded(pkt.len()),
                "for {}",
                pkt.len()
            );
            let d = buf[..len].to_vec();
            self.check_wire(&d);
            datagrams.push(d);
        }
        datagrams.extend(self.drain());
        (out, datagrams)
    }

    /// Hands a datagram from boringtun to ferrowg: the outcome, the IP packet if any, and
    /// what ferrowg sends in return.
    pub fn recv(&mut self, d: &[u8]) -> (Incoming, Option<Vec<u8>>, Vec<Vec<u8>>) {
        let mut buf = d.to_vec();
        let r = self.dev.handle_datagram(self.now, BORING_EP, &mut buf);
        let pkt = match r {
            Incoming::Packet { peer, len } => {
                assert_eq!(peer, self.peer);
                Some(buf[TRANSPORT_HEADER_SIZE..][..len].to_vec())
            }
            _ => None,
        };
        (r, pkt, self.drain())
    }

    /// How many `HandshakeCompleted` events with this role ferrowg reported.
    pub fn completed(&self, initiator: bool) -> usize {
        let want = Event::HandshakeCompleted {
            peer: self.peer,
            initiator,
        };
        self.events.iter().filter(|e| **e == want).count()
    }
}

// ----- the boringtun side --------------------------------------------------------------------

/// What boringtun made of one datagram.
#[derive(Debug, Default)]
pub struct BoringOut {
    /// Datagrams to send (after flushing its queue).
    pub network: Vec<Vec<u8>>,
    /// IP packets for its tunnel interface.
    pub tunnel: Vec<Vec<u8>>,
    /// `TunnResult::Done`: a keepalive or a cookie reply was consumed.
    pub done: bool,
    /// `TunnResult::Err`.
    pub err: Option<String>,
}

/// The boringtun tunnel (one peer: ferrowg).
pub struct Boring {
    pub tunn: Tunn,
}

impl Boring {
    /// Runs boringtun's timers on its own (real) clock so that its session bookkeeping sees
    /// time pass. The tests take far less than KEEPALIVE_TIMEOUT or REKEY_TIMEOUT of real
    /// time, so nothing is due.
    pub fn tick(&mut self) {
        let mut buf = [0u8; 256];
        match self.tunn.update_timers(&mut buf) {
            TunnResult::Done => {}
            other => panic!("a boringtun timer fired (test too slow?): {other:?}"),
        }
    }

    pub fn recv(&mut self, d: &[u8]) -> BoringOut {
        self.tick();
        let mut out = BoringOut::default();
        let mut buf = vec![0u8; 2048];
        match self.tunn.decapsulate(Some(FERRO_EP.ip()), d, &mut buf) {
            TunnResult::Done => out.done = true,
            TunnResult::Err(e) => out.err = Some(format!("{e:?}")),
            TunnResult::WriteToNetwork(p) => {
                out.network.push(p.to_vec());
                // Flush boringtun's queue (packets that waited for the session).
                loop {
                    match self.tunn.decapsulate(None, &[], &mut buf) {
                        TunnResult::WriteToNetwork(p) => out.network.push(p.to_vec()),
                        TunnResult::Done => break,
                        other => panic!("boringtun flush: {other:?}"),
                    }
                }
            }
            TunnResult::WriteToTunnelV4(p, a) => {
                assert_eq!(IpAddr::V4(a), ip_source(p));
                out.tunnel.push(p.to_vec());
            }
            TunnResult::WriteToTunnelV6(p, a) => {
                assert_eq!(IpAddr::V6(a), ip_source(p));
                out.tunnel.push(p.to_vec());
            }
        }
        out
    }

    /// Encapsulates `pkt` (empty = keepalive) on the current session.
    pub fn send(&mut self, pkt: &[u8]) -> Vec<u8> {
        self.tick();
        let mut buf = vec![0u8; pkt.len() + HANDSHAKE_INITIATION_SIZE + TRANSPORT_OVERHEAD];
        match self.tunn.encapsulate(pkt, &mut buf) {
            TunnResult::WriteToNetwork(d) => {
                assert_eq!(d[0], 4, "boringtun has no session");
                d.to_vec()
            }
            other => panic!("boringtun encapsulate: {other:?}"),
        }
    }

    /// A new handshake initiation, as boringtun's timers would send it.
    pub fn initiate(&mut self) -> Vec<u8> {
        self.tick();
        let mut buf = vec![0u8; HANDSHAKE_INITIATION_SIZE];
        match self.tunn.format_handshake_initiation(&mut buf, true) {
            TunnResult::WriteToNetwork(d) => d.to_vec(),
            other => panic!("boringtun initiation: {other:?}"),
        }
    }
}

// ----- the pair ------------------------------------------------------------------------------

/// The two sides of the tunnel.
pub struct Pair {
    pub f: Ferro,
    pub b: Boring,
    /// Test data (packet sizes and payloads).
    pub rng: ChaCha20Rng,
}

/// How to build a [`Pair`].
#[derive(Clone, Copy, Default)]
pub struct Setup {
    pub seed: u64,
    /// ferrowg's preshared key for the peer.
    pub ferro_psk: Option<[u8; 32]>,
    /// boringtun's preshared key.
    pub boring_psk: Option<[u8; 32]>,
    /// boringtun's handshake rate limit (`None` = its default per-tunnel limiter).
    pub boring_limit: Option<u64>,
    /// ferrowg is configured with boringtun's endpoint (else learns it from the initiation).
    pub ferro_knows_endpoint: bool,
}

impl Setup {
    pub fn psk(seed: u64, psk: Option<[u8; 32]>) -> Setup {
        Setup {
            seed,
            ferro_psk: psk,
            boring_psk: psk,
            ferro_knows_endpoint: true,
            ..Setup::default()
        }
    }
}

impl Pair {
    pub fn new(s: Setup) -> Pair {
        let mut rng = ChaCha20Rng::seed_from_u64(s.seed);
        let ferro_key = SecretKey::generate(&mut rng);
        let boring_secret = x25519::StaticSecret::from(rng.gen::<[u8; 32]>());
        let boring_public = x25519::PublicKey::from(&boring_secret);
        let device_rng = ChaCha20Rng::seed_from_u64(s.seed ^ 0xfe77_0000);
        let mut dev = Device::new(
            Box::new(ferro_key),
            Box::new(RustCrypto),
            Box::new(device_rng),
        );
        dev.set_clock(T0, UNIX_T0_NANOS);
        let cfg = PeerConfig {
            preshared_key: s.ferro_psk,
            endpoint: s.ferro_knows_endpoint.then_some(BORING_EP),
            persistent_keepalive: None,
        };
        let peer = dev.add_peer(boring_public.to_bytes(), cfg, T0).unwrap();
        dev.add_allowed_ip(peer, BORING_V4, 32).unwrap();
        dev.add_allowed_ip(peer, BORING_V6, 128).unwrap();
        let limiter = s
            .boring_limit
            .map(|l| Arc::new(RateLimiter::new(&boring_public, l)));
        let tunn = Tunn::new(
            boring_secret,
            x25519::PublicKey::from(dev.public_key()),
            s.boring_psk,
            None,
            BORING_INDEX,
            limiter,
        );
        Pair {
            f: Ferro {
                dev,
                now: T0,
                peer,
                events: Vec::new(),
                counters: HashMap::new(),
            },
            b: Boring { tunn },
            rng,
        }
    }

    /// A random-sized packet from ferrowg's tunnel address to boringtun's (or back).
    pub fn packet(&mut self, from_ferro: bool, v6: bool) -> Vec<u8> {
        let (f, b) = if v6 {
            (FERRO_V6, BORING_V6)
        } else {
            (FERRO_V4, BORING_V4)
        };
        let (src, dst) = if from_ferro { (f, b) } else { (b, f) };
        let len = self.rng.gen_range(min_len(src)..=MTU);
        udp_packet(&mut self.rng, src, dst, len)
    }

    /// Delivers datagrams back and forth until both sides are quiet. Returns the IP packets
    /// that came out at boringtun and at ferrowg. Any error or drop fails the test.
    pub fn pump(
        &mut self,
        mut to_b: Vec<Vec<u8>>,
        mut to_f: Vec<Vec<u8>>,
    ) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut at_b, mut at_f) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            if to_b.is_empty() && to_f.is_empty() {
                return (at_b, at_f);
            }
            for d in std::mem::take(&mut to_b) {
                let out = self.b.recv(&d);
                assert!(
                    out.err.is_none(),
                    "boringtun: {:?} on type {}",
                    out.err,
                    d[0]
                );
                at_b.extend(out.tunnel);
                to_f.extend(out.network);
            }
            for d in std::mem::take(&mut to_f) {
                let (r, pkt, tx) = self.f.recv(&d);
                assert!(
                    !matches!(r, Incoming::Dropped(_)),
                    "ferrowg: {r:?} on {}",
                    d[0]
                );
                at_f.extend(pkt);
                to_b.extend(tx);
            }
        }
        panic!("the pair never went quiet");
    }

    /// Advances ferrowg's clock by `dt`, running its timers on the way and delivering what
    /// they send.
    pub fn advance(&mut self, dt: Duration) {
        let target = self.f.now + dt;
        for _ in 0..10_000 {
            match self.f.dev.poll_timeout() {
                Some(t) if t <= target => {
                    self.f.now = self.f.now.max(t);
                    self.f.dev.handle_timeout(self.f.now);
                    let out = self.f.drain();
                    let (at_b, _) = self.pump(out, Vec::new());
                    assert!(at_b.is_empty(), "a timer sent data");
                }
                _ => {
                    self.f.now = target;
                    return;
                }
            }
        }
        panic!("timers never settled");
    }

    /// One packet each way per round (alternating IPv4 and IPv6, random sizes), each checked
    /// to arrive intact, then a keepalive from boringtun.
    pub fn exchange(&mut self, rounds: usize) {
        for i in 0..rounds {
            let v6 = i % 2 == 1;
            let p = self.packet(true, v6);
            let (out, ds) = self.f.send_ip(&p);
            assert!(matches!(out, Outgoing::Send { .. }), "{out:?}");
            assert_eq!(ds.len(), 1, "ferrowg sent more than the packet");
            let got = self.b.recv(&ds[0]);
            assert_eq!(got.err, None);
            assert!(got.network.is_empty());
            assert_eq!(got.tunnel, vec![p], "ferrowg → boringtun, round {i}");

            let q = self.packet(false, v6);
            let d = self.b.send(&q);
            let (r, pkt, tx) = self.f.recv(&d);
            assert!(matches!(r, Incoming::Packet { .. }), "{r:?}");
            assert_eq!(pkt, Some(q), "boringtun → ferrowg, round {i}");
            assert!(tx.is_empty());
            self.advance(Duration::from_millis(3));
        }
        let d = self.b.send(&[]);
        assert_eq!(d.len(), TRANSPORT_OVERHEAD);
        let (r, _, tx) = self.f.recv(&d);
        assert_eq!(r, Incoming::Keepalive { peer: self.f.peer });
        assert!(tx.is_empty());
    }

    /// ferrowg starts the handshake (a packet waits for it). Returns the initiation.
    pub fn handshake_ferro_initiates(&mut self) -> Vec<u8> {
        let first = self.packet(true, false);
        let (out, ds) = self.f.send_ip(&first);
        assert_eq!(out, Outgoing::Queued { peer: self.f.peer });
        assert_eq!(ds.len(), 1);
        let init = ds[0].clone();
        assert_eq!(init[0], 1);
        assert_eq!(&init[132..], &[0; 16], "mac2 without a cookie");
        let resp = self.b.recv(&init);
        assert_eq!(resp.err, None);
        assert_eq!(resp.network.len(), 1);
        let resp = &resp.network[0];
        assert_eq!((resp[0], resp.len()), (2, HANDSHAKE_RESPONSE_SIZE));
        // boringtun echoes our sender index (both little-endian).
        assert_eq!(&resp[8..12], &init[4..8]);
        let (r, _, tx) = self.f.recv(resp);
        assert_eq!(r, Incoming::Handshake);
        assert_eq!(self.f.completed(true), 1);
        // The queued packet goes out on the new session (it confirms the keys; no keepalive).
        assert_eq!(tx.len(), 1);
        assert_eq!(
            le32(&tx[0], 4),
            le32(resp, 4),
            "receiver index = boringtun's sender"
        );
        let (at_b, at_f) = self.pump(tx, Vec::new());
        assert_eq!(at_b, vec![first]);
        assert!(at_f.is_empty());
        init
    }

    /// boringtun starts the handshake; ferrowg holds a packet until boringtun confirms.
    /// Returns the initiation.
    pub fn handshake_boring_initiates(&mut self) -> Vec<u8> {
        let init = self.b.initiate();
        self.f.now = self.f.now + Duration::from_millis(1);
        let (r, _, tx) = self.f.recv(&init);
        assert_eq!(r, Incoming::Handshake);
        assert_eq!(tx.len(), 1);
        let resp = tx[0].clone();
        assert_eq!(resp[0], 2);
        assert_eq!(&resp[8..12], &init[4..8], "response receiver_index");
        assert_eq!(&resp[76..], &[0; 16], "mac2 without a cookie");
        assert_eq!(
            self.f.completed(false),
            0,
            "completed before key confirmation"
        );
        // Unconfirmed: ferrowg must not send data yet.
        let early = self.packet(true, true);
        let (out, ds) = self.f.send_ip(&early);
        assert_eq!(out, Outgoing::Queued { peer: self.f.peer });
        assert!(ds.iter().all(|d| d[0] != 4), "data on unconfirmed keys");
        let got = self.b.recv(&resp);
        assert_eq!(got.err, None);
        assert_eq!(got.network.len(), 1);
        let keepalive = &got.network[0];
        assert_eq!((keepalive[0], keepalive.len()), (4, TRANSPORT_OVERHEAD));
        let (r, _, tx) = self.f.recv(keepalive);
        assert_eq!(r, Incoming::Keepalive { peer: self.f.peer });
        assert_eq!(self.f.completed(false), 1);
        // Now the held packet goes out.
        assert_eq!(tx.len(), 1);
        let (at_b, _) = self.pump(tx, Vec::new());
        assert_eq!(at_b, vec![early]);
        init
    }
}
