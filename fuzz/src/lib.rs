//! Shared set-up for the fuzz targets: two in-process devices that have completed a handshake,
//! and ([`packets`]) an independent checksum oracle for the offload targets.
//!
//! A (10.0.0.1, endpoint 192.0.2.1:51820) initiated, B (10.0.0.2, endpoint 192.0.2.2:51820)
//! responded, and one data packet each way confirmed the session. Everything is seeded, so a
//! crash input replays exactly.

pub mod packets;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrowg_proto::crypto::{clamp, RustCrypto, SecretKey};
use ferrowg_proto::{Device, Incoming, Instant, Outgoing, PeerConfig, PeerId};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A's tunnel address.
pub const A_TUN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// B's tunnel address.
pub const B_TUN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// A's UDP endpoint.
pub const A_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 51820);
/// B's UDP endpoint.
pub const B_EP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 51820);
/// The device's bound on queued output datagrams.
pub const MAX_QUEUED_TRANSMITS: usize = 4096;

/// Two devices with an established session.
pub struct Pair {
    /// The initiator.
    pub a: Device,
    /// The responder (the device the `datagram` target attacks).
    pub b: Device,
    /// B as seen by A.
    pub a_peer: PeerId,
    /// B's public key (for recomputing mac1 of forged initiations).
    pub b_pub: [u8; 32],
    /// The caller's clock.
    pub now: Instant,
}

fn device(seed: u64, key: u8) -> Device {
    Device::new(
        Box::new(SecretKey::from_bytes(clamp([key; 32]))),
        Box::new(RustCrypto),
        Box::new(ChaCha8Rng::seed_from_u64(seed)),
    )
}

/// An IPv4/UDP-looking packet of `len` (at least 20) bytes.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(20)];
    let total = u16::try_from(p.len()).unwrap_or(u16::MAX);
    p[0] = 0x45;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p
}

impl Pair {
    /// Builds the pair and runs the handshake.
    pub fn established() -> Pair {
        let now = Instant::from_secs(1);
        let mut a = device(1, 1);
        let mut b = device(2, 2);
        a.set_clock(now, 1_700_000_000_000_000_000);
        b.set_clock(now, 1_700_000_000_000_000_000);
        let b_pub = b.public_key();
        let cfg = PeerConfig {
            endpoint: Some(B_EP),
            ..PeerConfig::default()
        };
        let a_peer = a.add_peer(b_pub, cfg, now).expect("peer");
        let b_peer = b
            .add_peer(a.public_key(), PeerConfig::default(), now)
            .expect("peer");
        a.add_allowed_ip(a_peer, IpAddr::V4(B_TUN), 32)
            .expect("prefix");
        b.add_allowed_ip(b_peer, IpAddr::V4(A_TUN), 32)
            .expect("prefix");
        let mut p = Pair {
            a,
            b,
            a_peer,
            b_pub,
            now,
        };
        let first = p.seal_a(&ipv4(A_TUN, B_TUN, 40));
        assert!(first.is_none(), "no session before the handshake");
        p.pump();
        assert!(p.data_flows(), "handshake in set-up");
        p
    }

    /// Moves the clock forward.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }

    /// Seals `ip` on A: `Some(datagram)` if A had a session, `None` if it was queued.
    pub fn seal_a(&mut self, ip: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 16 + ip.len() + 32];
        buf[16..16 + ip.len()].copy_from_slice(ip);
        match self.a.handle_packet(self.now, &mut buf, ip.len()) {
            Outgoing::Send { len, .. } => {
                buf.truncate(len);
                Some(buf)
            }
            _ => None,
        }
    }

    /// Runs timers and delivers queued datagrams both ways until both queues are empty.
    pub fn pump(&mut self) {
        let mut buf = vec![0u8; 2048];
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        for _ in 0..64 {
            let mut moved = false;
            while let Some(t) = self.a.poll_transmit(&mut buf) {
                self.b.handle_datagram(self.now, A_EP, &mut buf[..t.len]);
                moved = true;
            }
            while let Some(t) = self.b.poll_transmit(&mut buf) {
                self.a.handle_datagram(self.now, B_EP, &mut buf[..t.len]);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        while self.a.poll_event().is_some() {}
        while self.b.poll_event().is_some() {}
    }

    /// Whether a fresh packet from A reaches B intact (sending it, or after the handshake it
    /// triggers).
    pub fn data_flows(&mut self) -> bool {
        let ip = ipv4(A_TUN, B_TUN, 100);
        let datagram = match self.seal_a(&ip) {
            Some(d) => d,
            None => {
                self.pump();
                // The staged packet went out during the pump; try once more on the session.
                match self.seal_a(&ip) {
                    Some(d) => d,
                    None => return false,
                }
            }
        };
        let mut buf = datagram;
        match self.b.handle_datagram(self.now, A_EP, &mut buf) {
            Incoming::Packet { len, .. } => len == ip.len() && buf[16..16 + len] == ip[..],
            _ => false,
        }
    }
}
