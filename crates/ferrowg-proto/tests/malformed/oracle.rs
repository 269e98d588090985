//! The oracle of `malformed.rs`: what each malformed input must be dropped for, written from
//! the message table (whitepaper §5.4) and the IP header formats rather than from the code
//! under test; the mutations applied to genuine messages; and the fixture that produces one
//! consumed genuine message of every type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrowg_proto::messages::{
    COOKIE_REPLY_SIZE, HANDSHAKE_INITIATION_SIZE, HANDSHAKE_RESPONSE_SIZE, REJECT_AFTER_MESSAGES,
    TRANSPORT_MIN_SIZE,
};
use ferrowg_proto::{DropReason, Incoming, Outgoing, TRANSPORT_HEADER_SIZE};
use proptest::prelude::*;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::harness::*;

/// Why a datagram is not a WireGuard message at all, from the message table (whitepaper §5.4):
/// a 4-byte header (type, three zero bytes), then exactly 148/92/64 bytes for types 1/2/3 and
/// at least 32 for type 4.
pub fn structural_reason(m: &[u8]) -> Option<DropReason> {
    if m.len() < 4 {
        return Some(DropReason::TooShort);
    }
    if m[1..4] != [0, 0, 0] {
        return Some(DropReason::UnknownType);
    }
    let fits = match m[0] {
        1 => m.len() == HANDSHAKE_INITIATION_SIZE,
        2 => m.len() == HANDSHAKE_RESPONSE_SIZE,
        3 => m.len() == COOKIE_REPLY_SIZE,
        4 => m.len() >= TRANSPORT_MIN_SIZE,
        _ => return Some(DropReason::UnknownType),
    };
    (!fits).then_some(DropReason::BadLength)
}

pub fn le32(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(m[at..at + 4].try_into().unwrap())
}

/// A genuine message already consumed by its receiver, and what a second copy of it gets.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub target: Side,
    pub bytes: Vec<u8>,
    /// The reason the unchanged message is dropped now (replay, stale timestamp, …).
    pub replayed: DropReason,
}

/// What `mutated` (derived from the consumed `orig`) must be dropped for; `None` when the
/// mutation turned it into a different message type, which only has to be dropped.
pub fn expected_reason(orig: &Consumed, mutated: &[u8]) -> Option<DropReason> {
    if let Some(r) = structural_reason(mutated) {
        return Some(r);
    }
    let o = &orig.bytes;
    if mutated[0] != o[0] {
        return None;
    }
    Some(match mutated[0] {
        // mac1 covers everything before it; mac2 is not checked when not under load.
        1 | 2 => {
            let mac1_end = o.len() - 16;
            if mutated[..mac1_end] != o[..mac1_end] {
                DropReason::InvalidMac1
            } else {
                orig.replayed
            }
        }
        3 if le32(mutated, 4) != le32(o, 4) => DropReason::UnknownIndex,
        3 => orig.replayed,
        _ if le32(mutated, 4) != le32(o, 4) => DropReason::UnknownIndex,
        _ if mutated == &o[..] => DropReason::Replay,
        _ if u64::from_le_bytes(mutated[8..16].try_into().unwrap()) >= REJECT_AFTER_MESSAGES => {
            DropReason::ExpiredKeypair
        }
        _ => DropReason::DecryptFailed,
    })
}

/// One way to damage a message.
#[derive(Debug, Clone)]
pub enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Truncate(usize),
    Extend(Vec<u8>),
    SetType(u8),
    SetReserved(usize, u8),
    /// Overwrites the receiver index (sender index of an initiation).
    SetIndex(u32),
    /// Keeps the header (16 bytes of transport, 4 of a handshake message), randomises the rest.
    GarbageBody(u64),
}

pub fn apply(m: &mut Vec<u8>, mutation: &Mutation) {
    match *mutation {
        Mutation::FlipBit(i, bit) if !m.is_empty() => {
            let n = m.len();
            m[i % n] ^= 1 << (bit % 8);
        }
        Mutation::SetByte(i, v) if !m.is_empty() => {
            let n = m.len();
            m[i % n] = v;
        }
        Mutation::Truncate(n) => m.truncate(n % (m.len() + 1)),
        Mutation::Extend(ref tail) => m.extend_from_slice(tail),
        Mutation::SetType(t) if !m.is_empty() => m[0] = t,
        Mutation::SetReserved(i, v) if m.len() >= 4 => m[1 + i % 3] = v.max(1),
        Mutation::SetIndex(idx) => {
            let at = if m.first() == Some(&2) { 8 } else { 4 };
            if m.len() >= at + 4 {
                m[at..at + 4].copy_from_slice(&idx.to_le_bytes());
            }
        }
        Mutation::GarbageBody(seed) => {
            let from = if m.first() == Some(&4) { 16 } else { 4 };
            if m.len() > from {
                ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut m[from..]);
            }
        }
        _ => {}
    }
}

pub fn random_mutation(rng: &mut ChaCha8Rng) -> Mutation {
    match rng.gen_range(0..8) {
        0 => Mutation::FlipBit(rng.gen(), rng.gen()),
        1 => Mutation::SetByte(rng.gen(), rng.gen()),
        2 => Mutation::Truncate(rng.gen()),
        3 => {
            let mut tail = vec![0u8; rng.gen_range(1..200)];
            rng.fill_bytes(&mut tail);
            Mutation::Extend(tail)
        }
        4 => Mutation::SetType(rng.gen()),
        5 => Mutation::SetReserved(rng.gen(), rng.gen()),
        6 => Mutation::SetIndex(rng.gen()),
        _ => Mutation::GarbageBody(rng.gen()),
    }
}

pub fn mutation_strategy() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(Mutation::Extend),
        any::<u8>().prop_map(Mutation::SetType),
        (any::<usize>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetReserved(i, v)),
        any::<u32>().prop_map(Mutation::SetIndex),
        any::<u64>().prop_map(Mutation::GarbageBody),
    ]
}

/// An established pair plus one genuine, already consumed message of every type: transport
/// data both ways, an initiation that was answered with a cookie, the initiation that followed
/// with mac2, its response, and the cookie reply.
pub fn fixture(seed: u64) -> (Pair, Vec<Consumed>) {
    let mut p = Pair::established(seed);
    let mut consumed = Vec::new();

    for (from, to, src, dst) in [
        (Side::A, Side::B, A_TUN, B_TUN),
        (Side::B, Side::A, B_TUN, A_TUN),
    ] {
        let d = p.seal(from, &ipv4(src, dst, 200));
        assert!(matches!(p.deliver(to, &d).0, Incoming::Packet { .. }));
        consumed.push(Consumed {
            target: to,
            bytes: d,
            replayed: DropReason::Replay,
        });
    }

    // Under load B answers an initiation without mac2 with a cookie reply …
    let init1 = p.new_initiation();
    p.b.set_under_load(true);
    assert_eq!(
        p.deliver(Side::B, &init1).0,
        Incoming::Dropped(DropReason::CookieSent)
    );
    let cookie = p.take_transmit(Side::B);
    assert_eq!(p.deliver(Side::A, &cookie).0, Incoming::Handshake);
    // … and accepts A's next one, which carries mac2.
    let init2 = p.new_initiation();
    assert_ne!(init2[132..], [0u8; 16], "mac2 from the cookie");
    let resp = p.response_to(&init2);
    p.b.set_under_load(false);
    assert_eq!(p.deliver(Side::A, &resp).0, Incoming::Handshake);
    p.pump();
    p.drain_events();

    // init1's timestamp is older than init2's; the cookie reply's index (init1's) is retired.
    for (target, bytes, replayed) in [
        (Side::B, init1, DropReason::StaleTimestamp),
        (Side::B, init2, DropReason::StaleTimestamp),
        (Side::A, resp, DropReason::UnexpectedMessage),
        (Side::A, cookie, DropReason::UnknownIndex),
    ] {
        consumed.push(Consumed {
            target,
            bytes,
            replayed,
        });
    }
    for c in &consumed {
        expect_drop(
            &mut p,
            c.target,
            &c.bytes,
            c.replayed,
            "replay of a consumed message",
        );
    }
    p.assert_session_works();
    (p, consumed)
}

/// Applies `mutations` to `orig` and checks the drop against the oracle.
pub fn check_mutated(p: &mut Pair, orig: &Consumed, mutations: &[Mutation]) {
    let mut m = orig.bytes.clone();
    for mu in mutations {
        apply(&mut m, mu);
    }
    let what = format!("type {} mutated by {mutations:?}", orig.bytes[0]);
    let got = expect_some_drop(p, orig.target, &m, &what);
    if let Some(want) = expected_reason(orig, &m) {
        assert_eq!(got, want, "{what}: {}", hex::encode(&m));
    }
}

// ----- random datagrams -------------------------------------------------------------------------

/// Random bytes, shaped by `kind`: 0 = anything, 1–3 = a well-formed header of that handshake
/// type with a random body, 4 = transport to the live index of B's session.
pub fn shaped(kind: u8, body: &[u8], live_index: u32) -> Vec<u8> {
    let len = match kind {
        1 => HANDSHAKE_INITIATION_SIZE,
        2 => HANDSHAKE_RESPONSE_SIZE,
        3 => COOKIE_REPLY_SIZE,
        4 => TRANSPORT_MIN_SIZE + body.len(),
        _ => return body.to_vec(),
    };
    let mut m: Vec<u8> = body.iter().copied().cycle().take(len).collect();
    m.resize(len, 0);
    m[0] = kind;
    m[1..4].fill(0);
    if kind == 4 {
        m[4..8].copy_from_slice(&live_index.to_le_bytes());
    }
    m
}

/// The reason a random datagram of `kind` (see [`shaped`]) must be dropped for, if fixed.
pub fn random_reason(kind: u8, m: &[u8]) -> Option<DropReason> {
    match kind {
        1 | 2 => Some(DropReason::InvalidMac1),
        3 => Some(DropReason::UnknownIndex),
        4 if u64::from_le_bytes(m[8..16].try_into().unwrap()) >= REJECT_AFTER_MESSAGES => {
            Some(DropReason::ExpiredKeypair)
        }
        4 => Some(DropReason::DecryptFailed),
        _ => structural_reason(m),
    }
}

// ----- IP packets -------------------------------------------------------------------------------

/// What `handle_packet(buf, len)` must return on A (which routes only 10.0.0.2/32 and has a
/// session), from the IP header formats (RFC 791, RFC 8200).
pub fn packet_reason(buf: &[u8], len: usize) -> Option<DropReason> {
    let Some(ip) = buf.get(TRANSPORT_HEADER_SIZE..).and_then(|b| b.get(..len)) else {
        return Some(DropReason::BufferTooSmall);
    };
    let dst = match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 20 => {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap()))
        }
        Some(6) if ip.len() >= 40 => {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()))
        }
        _ => return Some(DropReason::InvalidIpPacket),
    };
    if dst != IpAddr::V4(B_TUN) {
        return Some(DropReason::NoRoute);
    }
    let padded = if len > 1420 {
        len
    } else {
        len.div_ceil(16) * 16
    }
    .min(1420)
    .max(len);
    (buf.len() < 32 + padded).then_some(DropReason::BufferTooSmall)
}

/// Feeds one packet to A and checks the outcome and the counters.
pub fn check_packet(p: &mut Pair, buf: &mut [u8], len: usize) {
    let before = p.a.stats().drops.clone();
    let now = p.now;
    let want = packet_reason(buf, len);
    let got = p.a.handle_packet(now, buf, len);
    match (want, got) {
        (Some(w), Outgoing::Dropped(r)) => {
            assert_eq!(r, w, "len {len} buf {}", buf.len());
            assert_eq!(p.a.stats().drops.get(r), before.get(r) + 1);
            assert_eq!(p.a.stats().drops.total(), before.total() + 1);
        }
        (None, Outgoing::Send { len: n, .. }) => {
            assert!(n <= buf.len());
            assert_eq!(p.a.stats().drops.total(), before.total());
            let (r, _) = p.deliver(Side::B, &buf[..n]);
            assert!(
                matches!(r, Incoming::Dropped(_) | Incoming::Packet { .. }),
                "{r:?}"
            );
        }
        (w, g) => panic!("len {len} buf {}: want {w:?}, got {g:?}", buf.len()),
    }
}

/// Random IP-ish packets: 0 = random bytes, 4/6 = that version nibble with a random (possibly
/// short) header, 5 = IPv4 to the routed address.
pub fn ip_strategy() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        0u8..7,
        proptest::collection::vec(any::<u8>(), 0..1600),
        0usize..64,
        any::<bool>(),
    )
        .prop_map(|(kind, mut bytes, slack, lie)| {
            let ip_start = TRANSPORT_HEADER_SIZE.min(bytes.len());
            if let Some(first) = bytes.get_mut(ip_start) {
                match kind {
                    4 | 5 => *first = 0x45,
                    6 => *first = 0x60 | (*first & 0x0f),
                    _ => {}
                }
            }
            if kind == 5 && bytes.len() >= TRANSPORT_HEADER_SIZE + 20 {
                bytes[TRANSPORT_HEADER_SIZE + 16..TRANSPORT_HEADER_SIZE + 20]
                    .copy_from_slice(&B_TUN.octets());
            }
            let room = bytes.len().saturating_sub(TRANSPORT_HEADER_SIZE);
            // Mostly a length that fits, sometimes one past the buffer.
            let len = if lie {
                room + slack
            } else {
                room.saturating_sub(slack)
            };
            (bytes, len)
        })
}
