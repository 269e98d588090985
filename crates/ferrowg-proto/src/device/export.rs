//! FOR TESTS ONLY (feature `test-export-keys`): the raw session keys a device holds for a
//! peer, so that a test speaking to another implementation knows what must not stay in that
//! implementation's memory once the session is gone (`crates/ferrowg/tests/e2e_memscan.rs`).
//!
//! Only keys made by [`RustCrypto`](crate::crypto::RustCrypto) can be exported; other backends
//! keep no bytes that could be handed out, and their keys are left out.

use alloc::vec::Vec;

use super::{Device, PeerId};
use crate::keypair::Keypair;

impl Device {
    /// The send and receive keys of every keypair (previous, current, next) held for `peer`,
    /// in that order; empty for an unknown peer. For tests only: never enable the
    /// `test-export-keys` feature in a program that carries real traffic.
    pub fn export_session_keys(&self, peer: PeerId) -> Vec<[u8; 32]> {
        let Some(p) = self.peers.get(peer) else {
            return Vec::new();
        };
        let k = &p.keypairs;
        [&k.previous, &k.current, &k.next]
            .into_iter()
            .filter_map(|slot| slot.as_deref())
            .flat_map(|kp: &Keypair| [&kp.send, &kp.recv])
            .filter_map(|key| key.export().map(|s| *s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use alloc::boxed::Box;

    use crate::crypto::{clamp, RustCrypto, SecretKey};
    use crate::{Device, Incoming, Instant, PeerConfig};

    fn device(seed: u8) -> Device {
        let rng = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(seed.into());
        Device::new(
            Box::new(SecretKey::from_bytes(clamp([seed; 32]))),
            Box::new(RustCrypto),
            Box::new(rng),
        )
    }

    /// After a handshake each side exports one keypair, and A's send key is B's receive key.
    #[test]
    fn both_ends_export_matching_keys() {
        let (mut a, mut b) = (device(1), device(2));
        let now = Instant::ZERO;
        let cfg = PeerConfig {
            endpoint: Some("192.0.2.2:51820".parse().unwrap()),
            ..PeerConfig::default()
        };
        let pb = a.add_peer(b.public_key(), cfg, now).unwrap();
        let pa = b
            .add_peer(a.public_key(), PeerConfig::default(), now)
            .unwrap();
        assert!(a.export_session_keys(pb).is_empty());
        let mut wire = [0u8; 256];
        a.initiate_handshake(pb, now);
        let t = a.poll_transmit(&mut wire).unwrap();
        let src = "192.0.2.1:51820".parse().unwrap();
        assert_eq!(
            b.handle_datagram(now, src, &mut wire[..t.len]),
            Incoming::Handshake
        );
        let t = b.poll_transmit(&mut wire).unwrap();
        let src = "192.0.2.2:51820".parse().unwrap();
        assert_eq!(
            a.handle_datagram(now, src, &mut wire[..t.len]),
            Incoming::Handshake
        );
        let ka = a.export_session_keys(pb);
        let kb = b.export_session_keys(pa);
        assert_eq!(ka.len(), 2);
        assert_eq!((ka[0], ka[1]), (kb[1], kb[0]));
        assert_ne!(ka[0], ka[1]);
    }
}
