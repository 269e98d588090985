//! Helpers shared by the integration tests of the device API: a seeded device and one full
//! handshake between two devices.
#![allow(dead_code)]

use std::net::SocketAddr;

use ferrowg_proto::crypto::{Crypto, RustCrypto, StaticKey};
use ferrowg_proto::{Device, Incoming, Instant, PeerConfig, PeerId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A's underlay address in these tests.
pub const A_EP: &str = "192.0.2.1:51820";
/// B's underlay address in these tests.
pub const B_EP: &str = "192.0.2.2:51820";

/// A device with `key`, a seeded RNG and its clock at 1 s.
pub fn device(key: Box<dyn StaticKey>, seed: u64) -> Device {
    device_with(key, Box::new(RustCrypto), seed)
}

/// [`device`] with another crypto backend.
pub fn device_with(key: Box<dyn StaticKey>, crypto: Box<dyn Crypto>, seed: u64) -> Device {
    let mut d = Device::new(key, crypto, Box::new(ChaCha8Rng::seed_from_u64(seed)));
    d.set_clock(Instant::from_secs(1), 1_700_000_000_000_000_000);
    d
}

/// Makes A and B peers of each other, A knowing B's endpoint (`B_EP`); returns B's id at A.
pub fn connect(a: &mut Device, b: &mut Device, now: Instant) -> PeerId {
    let cfg = PeerConfig {
        endpoint: Some(B_EP.parse().unwrap()),
        ..PeerConfig::default()
    };
    let pb = a.add_peer(b.public_key(), cfg, now).unwrap();
    b.add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    pb
}

/// One full handshake A → B; returns after A has consumed the response.
pub fn handshake(a: &mut Device, b: &mut Device, peer_b: PeerId, now: Instant) {
    let (a_ep, b_ep): (SocketAddr, SocketAddr) = (A_EP.parse().unwrap(), B_EP.parse().unwrap());
    let mut wire = vec![0u8; 256];
    a.initiate_handshake(peer_b, now);
    let t = a.poll_transmit(&mut wire).expect("initiation");
    assert_eq!(
        b.handle_datagram(now, a_ep, &mut wire[..t.len]),
        Incoming::Handshake
    );
    let t = b.poll_transmit(&mut wire).expect("response");
    assert_eq!(
        a.handle_datagram(now, b_ep, &mut wire[..t.len]),
        Incoming::Handshake
    );
    while a.poll_transmit(&mut wire).is_some() || b.poll_transmit(&mut wire).is_some() {}
    while a.poll_event().is_some() || b.poll_event().is_some() {}
}
