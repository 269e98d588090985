//! Unit tests of the device that look at its private state.

use alloc::boxed::Box;
use alloc::vec;
use core::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Device, Outgoing, PeerConfig};
use crate::crypto::{clamp, RustCrypto, SecretKey};
use crate::messages::{REKEY_TIMEOUT, TRANSPORT_HEADER_SIZE};
use crate::peer::PeerId;
use crate::time::Instant;

/// A device whose one peer (at 192.0.2.2:51820, owning 10.0.0.2/32) never answers.
fn lonely_device() -> (Device, PeerId) {
    let key = SecretKey::from_bytes(clamp([1; 32]));
    let mut dev = Device::new(
        Box::new(key),
        Box::new(RustCrypto),
        Box::new(ChaCha8Rng::seed_from_u64(9)),
    );
    let peer_key = SecretKey::from_bytes(clamp([2; 32]));
    let cfg = PeerConfig {
        endpoint: Some("192.0.2.2:51820".parse().unwrap()),
        ..PeerConfig::default()
    };
    let id = dev
        .add_peer(
            crate::crypto::StaticKey::public_key(&peer_key),
            cfg,
            Instant::ZERO,
        )
        .unwrap();
    dev.add_allowed_ip(id, "10.0.0.2".parse().unwrap(), 32)
        .unwrap();
    (dev, id)
}

/// Hands the device an IPv4 packet to 10.0.0.2 at `now`.
fn send_data(dev: &mut Device, now: Instant) -> Outgoing {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + 20 + 64];
    let p = &mut buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + 20];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&20u16.to_be_bytes());
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    dev.handle_packet(now, &mut buf, 20)
}

/// As the kernel (`wg_packet_send_queued_handshake_initiation`): data that asks for a new
/// handshake resets the count of attempts before the once-per-REKEY_TIMEOUT limit is checked,
/// so the count restarts even when no initiation goes out.
#[test]
fn data_resets_handshake_attempts_even_when_rate_limited() {
    let (mut dev, id) = lonely_device();
    let t0 = Instant::from_secs(100);
    assert_eq!(send_data(&mut dev, t0), Outgoing::Queued { peer: id });
    assert_eq!(dev.stats().initiations_sent, 1);
    // Three retransmissions.
    while dev.stats().initiations_sent < 4 {
        let t = dev.poll_timeout().unwrap();
        dev.handle_timeout(t);
    }
    let attempts = |d: &Device| d.peers.get(id).unwrap().timers.handshake_attempts;
    assert_eq!(attempts(&dev), 3);
    let last = dev.peers.get(id).unwrap().last_sent_handshake.unwrap();
    let now = last + Duration::from_secs(1);
    assert!(now.saturating_duration_since(last) < REKEY_TIMEOUT);
    assert_eq!(send_data(&mut dev, now), Outgoing::Queued { peer: id });
    // Rate-limited: nothing was sent, but the attempts start over.
    assert_eq!(dev.stats().initiations_sent, 4);
    assert_eq!(attempts(&dev), 0);
}
