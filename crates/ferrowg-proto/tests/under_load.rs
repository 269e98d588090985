//! When the device goes under load, and what the handshake rate limiter admits (issue #17,
//! item 2): only handshake messages with a valid mac1 count towards the load, so junk type-1
//! datagrams cannot force cookie mode; the device's rate-limiter capacity is settable and
//! bounded, and a full table still admits new sources.

use std::net::SocketAddr;

use ferrowg_proto::crypto::{clamp, SecretKey};
use ferrowg_proto::device::{
    ratelimiter_capacity_for_ram, RATELIMITER_DEFAULT_CAPACITY, RATELIMITER_MAX_CAPACITY,
};
use ferrowg_proto::error::ConfigError;
use ferrowg_proto::messages::{
    HANDSHAKE_INITIATION_SIZE, MESSAGE_HANDSHAKE_COOKIE, MESSAGE_HANDSHAKE_RESPONSE,
};
use ferrowg_proto::{Device, DropReason, Incoming, Instant, PeerId};

mod common;
use common::{connect, device, A_EP};

/// Handshake messages per second above which the device goes under load.
const THRESHOLD: usize = 1024;

/// Initiator A (knows B at B_EP) and responder B (knows A).
fn pair() -> (Device, Device, PeerId) {
    let now = Instant::from_secs(1);
    let key = |k| Box::new(SecretKey::from_bytes(clamp([k; 32])));
    let (mut a, mut b) = (device(key(1), 1), device(key(2), 2));
    let pb = connect(&mut a, &mut b, now);
    (a, b, pb)
}

/// A fresh, valid initiation from A to B at `now`.
fn initiation(a: &mut Device, pb: PeerId, now: Instant) -> Vec<u8> {
    a.initiate_handshake(pb, now);
    let mut wire = vec![0u8; 256];
    let t = a.poll_transmit(&mut wire).expect("initiation");
    assert_eq!(t.len, HANDSHAKE_INITIATION_SIZE);
    wire.truncate(t.len);
    wire
}

/// The types of the datagrams B queued.
fn sent_types(b: &mut Device) -> Vec<u8> {
    let mut wire = vec![0u8; 256];
    let mut types = Vec::new();
    while let Some(t) = b.poll_transmit(&mut wire) {
        types.push(wire[0]);
        assert!(t.len > 0);
    }
    types
}

/// Twice the threshold of junk initiations (wrong mac1) within one second leaves the device
/// out of load: a valid initiation right after is answered, not met with a cookie reply.
#[test]
fn junk_mac1_flood_does_not_put_device_under_load() {
    let (mut a, mut b, pb) = pair();
    let t0 = Instant::from_secs(10);
    let good = initiation(&mut a, pb, t0);
    let mut junk = good.clone();
    junk[HANDSHAKE_INITIATION_SIZE - 20] ^= 1;
    let src: SocketAddr = "203.0.113.7:4444".parse().unwrap();
    for i in 0..2 * THRESHOLD as u64 {
        let now = Instant::from_nanos(t0.as_nanos() + i * 100_000);
        let mut m = junk.clone();
        assert_eq!(
            b.handle_datagram(now, src, &mut m),
            Incoming::Dropped(DropReason::InvalidMac1)
        );
    }
    let now = Instant::from_nanos(t0.as_nanos() + 300_000_000);
    let mut m = good;
    assert_eq!(
        b.handle_datagram(now, A_EP.parse().unwrap(), &mut m),
        Incoming::Handshake
    );
    assert_eq!(sent_types(&mut b), [MESSAGE_HANDSHAKE_RESPONSE]);
    assert_eq!(b.stats().cookie_replies_sent, 0);
}

/// Messages with a valid mac1 above the threshold do put it under load: a valid initiation
/// without a cookie then gets a cookie reply.
#[test]
fn valid_mac1_flood_puts_device_under_load() {
    let (mut a, mut b, pb) = pair();
    let t0 = Instant::from_secs(10);
    let replayed = initiation(&mut a, pb, t0);
    let src: SocketAddr = "203.0.113.7:4444".parse().unwrap();
    for i in 0..=THRESHOLD as u64 {
        let now = Instant::from_nanos(t0.as_nanos() + i * 100_000);
        let mut m = replayed.clone();
        let r = b.handle_datagram(now, src, &mut m);
        assert_ne!(r, Incoming::Dropped(DropReason::InvalidMac1));
    }
    sent_types(&mut b);
    let now = Instant::from_nanos(t0.as_nanos() + 300_000_000);
    let mut m = replayed;
    assert_eq!(
        b.handle_datagram(now, A_EP.parse().unwrap(), &mut m),
        Incoming::Dropped(DropReason::CookieSent)
    );
    assert_eq!(sent_types(&mut b), [MESSAGE_HANDSHAKE_COOKIE]);
}

#[test]
fn ratelimiter_capacity_is_settable_and_bounded() {
    let (_, mut b, _) = pair();
    assert_eq!(b.ratelimiter_capacity(), RATELIMITER_DEFAULT_CAPACITY);
    assert_eq!(RATELIMITER_DEFAULT_CAPACITY, 8192);
    b.set_ratelimiter_capacity(ratelimiter_capacity_for_ram(4 << 30))
        .unwrap();
    assert_eq!(b.ratelimiter_capacity(), 65_536);
    for bad in [0, RATELIMITER_MAX_CAPACITY + 1, usize::MAX] {
        assert_eq!(
            b.set_ratelimiter_capacity(bad),
            Err(ConfigError::InvalidCapacity)
        );
        assert_eq!(b.ratelimiter_capacity(), 65_536);
    }
    b.set_ratelimiter_capacity(RATELIMITER_MAX_CAPACITY)
        .unwrap();
    assert_eq!(b.ratelimiter_capacity(), RATELIMITER_MAX_CAPACITY);
}
