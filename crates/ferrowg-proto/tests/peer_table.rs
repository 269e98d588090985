//! The peer table at scale (issue #4): adding peers costs no X25519, and a peer's allowed IPs
//! are replaced or removed in time proportional to their own number, with the table staying
//! equal to a naive model through random adds, steals, clears and peer removals.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrowg_proto::crypto::{clamp, KeyError, Secret, SecretKey, StaticKey};
use ferrowg_proto::{Instant, PeerConfig, PeerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::{connect, device, handshake, B_EP};

/// A static key that counts the DH operations asked of it (a stand-in for a token, where each
/// one costs hundreds of microseconds).
struct Counting {
    key: SecretKey,
    dhs: Arc<AtomicUsize>,
}

impl StaticKey for Counting {
    fn public_key(&self) -> [u8; 32] {
        self.key.public_key()
    }
    fn dh(&self, peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        self.dhs.fetch_add(1, Ordering::SeqCst);
        self.key.dh(peer_public)
    }
}

#[test]
fn adding_peers_costs_no_dh_and_ss_is_computed_once_per_key() {
    let dhs = Arc::new(AtomicUsize::new(0));
    let key_a = |seed: u8| Counting {
        key: SecretKey::from_bytes(clamp([seed; 32])),
        dhs: dhs.clone(),
    };
    let mut a = device(Box::new(key_a(1)), 1);
    let mut b = device(Box::new(SecretKey::from_bytes(clamp([2; 32]))), 2);
    let now = Instant::from_secs(1);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..10_000 {
        let pk: [u8; 32] = rng.gen();
        a.add_peer(pk, PeerConfig::default(), now).unwrap();
    }
    let pb = connect(&mut a, &mut b, now);
    assert_eq!(a.peer_count(), 10_001);
    assert_eq!(
        dhs.load(Ordering::SeqCst),
        0,
        "add_peer must not ask the key"
    );

    // First handshake as initiator: ss (computed now, then kept) and se.
    handshake(&mut a, &mut b, pb, now);
    assert_eq!(dhs.load(Ordering::SeqCst), 2);
    // Later handshakes: se only.
    let now = now + Duration::from_secs(6);
    handshake(&mut a, &mut b, pb, now);
    assert_eq!(dhs.load(Ordering::SeqCst), 3);

    // A new key forgets ss for every peer without computing any; the next handshake
    // recomputes it for the one peer that talks.
    a.set_static_key(Box::new(key_a(3)));
    assert_eq!(dhs.load(Ordering::SeqCst), 3);
    b.remove_peer(b.peer_by_key(&key_a(1).public_key()).unwrap());
    b.add_peer(a.public_key(), PeerConfig::default(), now)
        .unwrap();
    let now = now + Duration::from_secs(6);
    handshake(&mut a, &mut b, pb, now);
    assert_eq!(dhs.load(Ordering::SeqCst), 5);
}

#[test]
fn a_low_order_peer_key_is_accepted_and_its_handshakes_fail() {
    let mut a = device(Box::new(SecretKey::from_bytes(clamp([1; 32]))), 1);
    let now = Instant::from_secs(1);
    let cfg = PeerConfig {
        endpoint: Some(B_EP.parse().unwrap()),
        ..PeerConfig::default()
    };
    // The all-zero point has low order: every DH with it is zero.
    let id = a.add_peer([0; 32], cfg, now).unwrap();
    a.initiate_handshake(id, now);
    let mut wire = vec![0u8; 256];
    assert!(a.poll_transmit(&mut wire).is_none(), "no initiation sent");
    assert!(!a.has_keys(id));
}

/// The model: canonical prefix → owner.
type Model = BTreeMap<(IpAddr, u8), usize>;

fn random_prefix(rng: &mut ChaCha8Rng) -> (IpAddr, u8) {
    // A small space, so that prefixes collide, nest and move between peers often.
    if rng.gen_bool(0.7) {
        let cidr = [8, 16, 24, 28, 32][rng.gen_range(0..5)];
        let a = Ipv4Addr::new(10, rng.gen_range(0..4), rng.gen_range(0..4), rng.gen());
        (IpAddr::V4(a), cidr)
    } else {
        let cidr = [48, 64, 120, 128][rng.gen_range(0..4)];
        let a = Ipv6Addr::new(
            0xfd00,
            0,
            rng.gen_range(0..4),
            rng.gen_range(0..4),
            0,
            0,
            0,
            rng.gen(),
        );
        (IpAddr::V6(a), cidr)
    }
}

fn canonical((addr, cidr): (IpAddr, u8)) -> (IpAddr, u8) {
    ferrowg_proto::allowedips::canonical_prefix(addr, cidr).unwrap()
}

fn contains((net, cidr): (IpAddr, u8), addr: IpAddr) -> bool {
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            cidr == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - u32::from(cidr)) == 0
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            cidr == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - u32::from(cidr)) == 0
        }
        _ => false,
    }
}

#[test]
fn per_peer_allowed_ips_match_a_model_through_adds_steals_clears_and_removals() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut dev = device(Box::new(SecretKey::from_bytes(clamp([1; 32]))), 1);
    let now = Instant::from_secs(1);
    const SLOTS: usize = 8;
    let keys: Vec<[u8; 32]> = (0..SLOTS).map(|_| rng.gen()).collect();
    let mut ids: Vec<Option<PeerId>> = vec![None; SLOTS];
    let mut model = Model::new();
    for step in 0..20_000 {
        let slot = rng.gen_range(0..SLOTS);
        match rng.gen_range(0..100) {
            0..=69 => {
                let id = match ids[slot] {
                    Some(id) => id,
                    None => {
                        let id = dev
                            .add_peer(keys[slot], PeerConfig::default(), now)
                            .unwrap();
                        ids[slot] = Some(id);
                        id
                    }
                };
                let p = random_prefix(&mut rng);
                dev.add_allowed_ip(id, p.0, p.1).unwrap();
                model.insert(canonical(p), slot);
            }
            70..=84 => {
                if let Some(id) = ids[slot] {
                    dev.clear_allowed_ips(id).unwrap();
                    model.retain(|_, s| *s != slot);
                }
            }
            _ => {
                if let Some(id) = ids[slot].take() {
                    assert!(dev.remove_peer(id));
                    model.retain(|_, s| *s != slot);
                }
            }
        }
        for (s, id) in ids.iter().enumerate() {
            let Some(id) = id else { continue };
            let got: Vec<(IpAddr, u8)> = dev.allowed_ips(*id).collect();
            let want: Vec<(IpAddr, u8)> = model
                .iter()
                .filter(|(_, o)| **o == s)
                .map(|(p, _)| *p)
                .collect();
            assert_eq!(got, want, "step {step}, slot {s}");
        }
        let probe = random_prefix(&mut rng).0;
        let want = model
            .iter()
            .filter(|(p, _)| contains(**p, probe))
            .max_by_key(|(p, _)| p.1)
            .map(|(_, s)| ids[*s].unwrap());
        assert_eq!(dev.route(probe), want, "step {step}, route {probe}");
    }
    let live: BTreeSet<usize> = model.values().copied().collect();
    assert!(
        live.len() > 1,
        "the walk ended with prefixes on several peers"
    );
}
