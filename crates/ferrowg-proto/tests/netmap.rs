//! Two sites behind two peers use the same real prefix (192.168.1.0/24); the hub reaches them
//! as 10.201.1.0/24 and 10.201.2.0/24. A packet from each site arrives with its mapped source
//! (and passes the source check, which holds only the mapped prefixes); a packet to a mapped
//! address goes to the right site with the real destination. Without the maps, the same
//! packets are dropped.

use ferrowg_proto::crypto::{clamp, SecretKey};
use ferrowg_proto::netmap::Netmap;
use ferrowg_proto::{
    Device, Incoming, Instant, Outgoing, PeerConfig, PeerId, TRANSPORT_HEADER_SIZE,
};

mod common;
use common::{device, handshake, A_EP, B_EP};

fn key(k: u8) -> Box<SecretKey> {
    Box::new(SecretKey::from_bytes(clamp([k; 32])))
}

/// An IPv4/ICMP packet of 28 bytes, with a correct header checksum, at TRANSPORT_HEADER_SIZE.
fn packet(src: [u8; 4], dst: [u8; 4]) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; TRANSPORT_HEADER_SIZE + 28 + 64];
    let p = &mut buf[TRANSPORT_HEADER_SIZE..TRANSPORT_HEADER_SIZE + 28];
    p[0] = 0x45;
    p[3] = 28;
    p[8] = 64;
    p[9] = 1;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&dst);
    let mut s: u32 = p[..20]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    p[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
    (buf, 28)
}

/// One site (a peer of the hub with the given key) with a session to the hub; returns the
/// site device and its id at the hub.
fn site(hub: &mut Device, k: u8, mapped: [u8; 4], maps: bool) -> (Device, PeerId) {
    let now = Instant::from_secs(1);
    let mut s = device(key(k), u64::from(k));
    let cfg = PeerConfig {
        endpoint: Some(B_EP.parse().unwrap()),
        ..PeerConfig::default()
    };
    let hub_at_s = s.add_peer(hub.public_key(), cfg, now).unwrap();
    s.add_allowed_ip(hub_at_s, "10.0.0.0".parse().unwrap(), 8)
        .unwrap();
    let id = hub
        .add_peer(s.public_key(), PeerConfig::default(), now)
        .unwrap();
    hub.add_allowed_ip(id, mapped.into(), 24).unwrap();
    if maps {
        let m = Netmap::new(([192, 168, 1, 0].into(), 24), (mapped.into(), 24)).unwrap();
        hub.set_netmaps(id, &[m]).unwrap();
    }
    handshake(&mut s, hub, hub_at_s, now);
    (s, id)
}

/// The site sends a packet from its real 192.168.1.7 to the hub; what the hub makes of it and
/// the packet's source after.
fn from_site(s: &mut Device, hub: &mut Device) -> (Incoming, [u8; 4]) {
    let now = Instant::from_secs(1);
    let (mut buf, len) = packet([192, 168, 1, 7], [10, 64, 0, 1]);
    let Outgoing::Send { len, .. } = s.handle_packet(now, &mut buf, len) else {
        panic!("the site could not send");
    };
    let r = hub.handle_datagram(now, A_EP.parse().unwrap(), &mut buf[..len]);
    let at = TRANSPORT_HEADER_SIZE + 12;
    (r, buf[at..at + 4].try_into().unwrap())
}

#[test]
fn two_sites_with_one_prefix_are_reachable_through_their_mapped_prefixes() {
    let now = Instant::from_secs(1);
    let mut hub = device(key(9), 9);
    let (mut a, a_id) = site(&mut hub, 1, [10, 201, 1, 0], true);
    let (mut b, b_id) = site(&mut hub, 2, [10, 201, 2, 0], true);
    for (s, id, mapped) in [
        (&mut a, a_id, [10, 201, 1, 7]),
        (&mut b, b_id, [10, 201, 2, 7]),
    ] {
        let (r, src) = from_site(s, &mut hub);
        assert!(
            matches!(r, Incoming::Packet { peer, .. } if peer == id),
            "{r:?}"
        );
        assert_eq!(src, mapped, "the source is the mapped address");
    }
    // To site B's mapped address: routed to B, which reads the real address.
    let (mut buf, len) = packet([10, 64, 0, 1], [10, 201, 2, 7]);
    let Outgoing::Send { peer, len, .. } = hub.handle_packet(now, &mut buf, len) else {
        panic!("the hub could not send to the site");
    };
    assert_eq!(peer, b_id);
    let r = b.handle_datagram(now, B_EP.parse().unwrap(), &mut buf[..len]);
    assert!(matches!(r, Incoming::Packet { .. }), "{r:?}");
    let at = TRANSPORT_HEADER_SIZE + 16;
    assert_eq!(&buf[at..at + 4], &[192, 168, 1, 7]);
}

#[test]
fn without_maps_the_real_source_is_refused() {
    let mut hub = device(key(9), 9);
    let (mut a, _) = site(&mut hub, 1, [10, 201, 1, 0], false);
    let (r, _) = from_site(&mut a, &mut hub);
    assert!(matches!(r, Incoming::Dropped(_)), "{r:?}");
}
