//! A device rotates its key and the hub loses nothing: the hub adds the device's next key as a
//! successor peer (no allowed IPs of its own), and at the successor's first handshake the
//! device's addresses move to it in the same step. Every packet the device sends is accepted,
//! whether it travels on the old session (also after the move) or on the new one; the hub's
//! packets to the device's address go out on the new session.

use ferrowg_proto::crypto::{clamp, SecretKey, StaticKey};
use ferrowg_proto::{Device, Incoming, Instant, Outgoing, PeerConfig, TRANSPORT_HEADER_SIZE};

mod common;
use common::{device, handshake, A_EP, B_EP};

/// An IPv4/UDP packet of 60 bytes from `src` to `dst`, at TRANSPORT_HEADER_SIZE in its buffer.
fn packet(src: [u8; 4], dst: [u8; 4]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + 60 + 64];
    let p = &mut buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + 60];
    p[0] = 0x45;
    p[3] = 60;
    p[9] = 17;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    (buf, 60)
}

/// The device (A) encrypts a packet from its address to the hub; returns the datagram.
fn seal(a: &mut Device, now: Instant) -> Vec<u8> {
    let (mut buf, len) = packet([10, 64, 0, 2], [10, 64, 0, 1]);
    match a.handle_packet(now, &mut buf, len) {
        Outgoing::Send { len, .. } => buf[..len].to_vec(),
        other => panic!("device could not send: {other:?}"),
    }
}

fn key(k: u8) -> Box<SecretKey> {
    Box::new(SecretKey::from_bytes(clamp([k; 32])))
}

#[test]
fn the_successor_takes_over_at_its_first_handshake_and_nothing_is_lost() {
    let now = Instant::from_secs(1);
    let a_ep = A_EP.parse().unwrap();
    // The device (A, key 1) and the hub (B, key 9).
    let mut a = device(key(1), 1);
    let mut hub = device(key(9), 2);
    let cfg = PeerConfig {
        endpoint: Some(B_EP.parse().unwrap()),
        ..PeerConfig::default()
    };
    let hub_at_a = a.add_peer(hub.public_key(), cfg, now).unwrap();
    a.add_allowed_ip(hub_at_a, "10.64.0.0".parse().unwrap(), 16)
        .unwrap();
    let old = hub
        .add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    hub.add_allowed_ip(old, "10.64.0.2".parse().unwrap(), 32)
        .unwrap();
    handshake(&mut a, &mut hub, hub_at_a, now);
    let mut accepted = 0;
    let mut d = seal(&mut a, now);
    assert!(
        matches!(hub.handle_datagram(now, a_ep, &mut d), Incoming::Packet { peer, .. } if peer == old)
    );
    accepted += 1;

    // The device rotates (keeping its sessions); the hub adds the next key as a successor.
    let next_key = key(2);
    let next_public = next_key.public_key();
    a.rotate_static_key(next_key);
    let new = hub
        .add_peer(next_public, PeerConfig::default(), now)
        .unwrap();
    hub.set_successor(old, new).unwrap();
    // A datagram on the old session, sealed now and delivered after the takeover.
    let mut late = seal(&mut a, now);
    let mut d = seal(&mut a, now);
    assert!(
        matches!(hub.handle_datagram(now, a_ep, &mut d), Incoming::Packet { peer, .. } if peer == old)
    );
    accepted += 1;
    assert_eq!(hub.route("10.64.0.2".parse().unwrap()), Some(old));

    // The device's next handshake is with its new key; its first data confirms the session.
    let later = Instant::from_secs(10);
    handshake(&mut a, &mut hub, hub_at_a, later);
    let mut d = seal(&mut a, later);
    match hub.handle_datagram(later, a_ep, &mut d) {
        Incoming::Packet { peer, .. } => assert_eq!(peer, new, "on the new session"),
        other => panic!("first packet of the new session: {other:?}"),
    }
    accepted += 1;
    assert_eq!(
        hub.route("10.64.0.2".parse().unwrap()),
        Some(new),
        "the address moved to the successor"
    );
    assert_eq!(hub.allowed_ips(old).count(), 0);
    // The datagram still in flight on the old session passes the source check.
    match hub.handle_datagram(later, a_ep, &mut late) {
        Incoming::Packet { peer, .. } => assert_eq!(peer, old),
        other => panic!("late datagram on the old session: {other:?}"),
    }
    accepted += 1;
    assert_eq!(accepted, 4);

    // The hub's packets to the device's address go out on the new session, and the device
    // reads them.
    let (mut buf, len) = packet([10, 64, 0, 1], [10, 64, 0, 2]);
    let Outgoing::Send { peer, len, .. } = hub.handle_packet(later, &mut buf, len) else {
        panic!("the hub could not send to the device");
    };
    assert_eq!(peer, new);
    let b_ep = B_EP.parse().unwrap();
    assert!(matches!(
        a.handle_datagram(later, b_ep, &mut buf[..len]),
        Incoming::Packet { .. }
    ));

    // Once the old peer is removed, its packets are gone, and nothing else changed.
    assert!(hub.remove_peer(old));
    assert_eq!(hub.route("10.64.0.2".parse().unwrap()), Some(new));
}

#[test]
fn without_a_successor_a_new_key_cannot_send_from_the_old_address() {
    // The control: a new key that is a plain second peer gets its packets dropped.
    let now = Instant::from_secs(1);
    let mut a = device(key(1), 1);
    let mut hub = device(key(9), 2);
    let cfg = PeerConfig {
        endpoint: Some(B_EP.parse().unwrap()),
        ..PeerConfig::default()
    };
    let hub_at_a = a.add_peer(hub.public_key(), cfg, now).unwrap();
    a.add_allowed_ip(hub_at_a, "10.64.0.0".parse().unwrap(), 16)
        .unwrap();
    let old = hub
        .add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    hub.add_allowed_ip(old, "10.64.0.2".parse().unwrap(), 32)
        .unwrap();
    let next_key = key(2);
    let next_public = next_key.public_key();
    a.rotate_static_key(next_key);
    hub.add_peer(next_public, PeerConfig::default(), now)
        .unwrap();
    handshake(&mut a, &mut hub, hub_at_a, now);
    let mut d = seal(&mut a, now);
    assert!(matches!(
        hub.handle_datagram(now, A_EP.parse().unwrap(), &mut d),
        Incoming::Dropped(_)
    ));
}
