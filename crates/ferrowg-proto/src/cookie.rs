//! mac1, mac2 and cookie replies: WireGuard's DoS mitigation (whitepaper §5.3, §5.4.4, §5.4.7).
//!
//! - `CookieChecker` (crate-internal) is the receiving side, one per device: it checks mac1
//!   (one hash, before any DH), checks mac2 against the cookie it would hand out, and builds
//!   cookie replies.
//!   The cookie secret is random and replaced every [`COOKIE_REFRESH_TIME`].
//! - [`CookieMaker`] is the sending side, one per peer: it appends mac1/mac2 to handshake
//!   messages and stores the cookie from a reply for [`COOKIE_REFRESH_TIME`].

use core::net::{IpAddr, SocketAddr};

use zeroize::Zeroizing;

use crate::crypto::{self, ct_eq, hash, mac, Secret};
use crate::messages::{
    mac1_offset, mac2_offset, CookieReply, COOKIE_LEN, COOKIE_NONCE_LEN, COOKIE_REFRESH_TIME,
    COOKIE_REPLY_SIZE, LABEL_COOKIE, LABEL_MAC1, MAC_LEN, MESSAGE_HANDSHAKE_COOKIE, REKEY_TIMEOUT,
};
use crate::time::Instant;

/// Result of checking the MACs of a handshake message (the tests' summary of
/// [`CookieChecker::check_mac1`] and [`CookieChecker::check_mac2`]).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacState {
    /// mac1 is wrong: drop without further work.
    InvalidMac1,
    /// mac1 is right, mac2 is absent or wrong.
    ValidMac1,
    /// Both are right: the sender holds a current cookie for its address.
    ValidMac1AndCookie,
}

/// HASH(label ‖ public key): the mac1 key and the cookie encryption key.
fn labelled_key(label: &[u8], public: &[u8; 32]) -> [u8; 32] {
    hash(&[label, public])
}

/// The source-address bytes a cookie is bound to: IP then port (big-endian).
fn source_bytes(src: SocketAddr, out: &mut [u8; 18]) -> usize {
    let port = src.port().to_be_bytes();
    match src.ip() {
        IpAddr::V4(a) => {
            out[..4].copy_from_slice(&a.octets());
            out[4..6].copy_from_slice(&port);
            6
        }
        IpAddr::V6(a) => {
            out[..16].copy_from_slice(&a.octets());
            out[16..18].copy_from_slice(&port);
            18
        }
    }
}

/// Checks MACs and issues cookies for messages sent to this device.
pub(crate) struct CookieChecker {
    mac1_key: [u8; 32],
    cookie_key: [u8; 32],
    secret: Secret,
    secret_birth: Option<Instant>,
}

impl CookieChecker {
    /// For a device whose static public key is `local_public`.
    pub fn new(local_public: &[u8; 32]) -> Self {
        CookieChecker {
            mac1_key: labelled_key(LABEL_MAC1, local_public),
            cookie_key: labelled_key(LABEL_COOKIE, local_public),
            secret: Zeroizing::new([0; 32]),
            secret_birth: None,
        }
    }

    /// The cookie for `src` under the current secret, rotating the secret when it is older than
    /// two minutes.
    fn cookie(
        &mut self,
        now: Instant,
        src: SocketAddr,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> [u8; 16] {
        let stale = match self.secret_birth {
            None => true,
            Some(b) => now.saturating_duration_since(b) >= COOKIE_REFRESH_TIME,
        };
        if stale {
            rng.fill_bytes(&mut self.secret[..]);
            self.secret_birth = Some(now);
        }
        let mut buf = [0u8; 18];
        let n = source_bytes(src, &mut buf);
        mac(&self.secret[..], &[&buf[..n]])
    }

    /// Checks mac1 of `msg`, a length-checked handshake message: one keyed hash, before any
    /// other work on the message.
    pub fn check_mac1(&self, msg: &[u8]) -> bool {
        let m1 = mac1_offset(msg.len());
        let expected = mac(&self.mac1_key, &[&msg[..m1]]);
        ct_eq(&expected, &msg[m1..m1 + MAC_LEN])
    }

    /// Checks mac2 of `msg` (whose mac1 was valid) against the cookie `src` would hold now.
    pub fn check_mac2(
        &mut self,
        msg: &[u8],
        src: SocketAddr,
        now: Instant,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> bool {
        let m2 = mac2_offset(msg.len());
        let cookie = self.cookie(now, src, rng);
        let expected = mac(&cookie, &[&msg[..m2]]);
        ct_eq(&expected, &msg[m2..])
    }

    /// Checks mac1 and (when `check_cookie`) mac2 of `msg`, a length-checked handshake message.
    #[cfg(test)]
    pub fn check(
        &mut self,
        msg: &[u8],
        src: SocketAddr,
        check_cookie: bool,
        now: Instant,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> MacState {
        if !self.check_mac1(msg) {
            MacState::InvalidMac1
        } else if !check_cookie || !self.check_mac2(msg, src, now, rng) {
            MacState::ValidMac1
        } else {
            MacState::ValidMac1AndCookie
        }
    }

    /// A cookie reply to `msg` (whose mac1 was valid) from `src`, addressed to `sender_index`.
    pub fn create_reply(
        &mut self,
        msg: &[u8],
        sender_index: u32,
        src: SocketAddr,
        now: Instant,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> [u8; COOKIE_REPLY_SIZE] {
        let mut out = [0u8; COOKIE_REPLY_SIZE];
        out[0] = MESSAGE_HANDSHAKE_COOKIE;
        out[4..8].copy_from_slice(&sender_index.to_le_bytes());
        let mut nonce = [0u8; COOKIE_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        out[8..32].copy_from_slice(&nonce);
        let mut cookie = self.cookie(now, src, rng);
        let m1 = mac1_offset(msg.len());
        let tag = crypto::xaead_seal(
            &self.cookie_key,
            &nonce,
            &mut cookie,
            &msg[m1..m1 + MAC_LEN],
        );
        out[32..48].copy_from_slice(&cookie);
        out[48..64].copy_from_slice(&tag);
        out
    }
}

/// Adds MACs to messages sent to one peer and keeps the cookie it gave us.
pub struct CookieMaker {
    remote_public: [u8; 32],
    /// The mac1 and cookie keys, derived at the first handshake message (adding a peer costs no
    /// hashing).
    keys: Option<([u8; 32], [u8; 32])>,
    cookie: Option<([u8; COOKIE_LEN], Instant)>,
    last_mac1: Option<([u8; MAC_LEN], Instant)>,
}

/// Why a cookie reply was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// We sent no handshake message recently, so no reply is expected.
    Unexpected,
    /// The reply did not decrypt.
    DecryptFailed,
}

impl CookieMaker {
    /// For messages to the peer whose static public key is `remote_public`.
    pub fn new(remote_public: &[u8; 32]) -> Self {
        CookieMaker {
            remote_public: *remote_public,
            keys: None,
            cookie: None,
            last_mac1: None,
        }
    }

    /// The mac1 key and the cookie key.
    fn keys(&mut self) -> &([u8; 32], [u8; 32]) {
        let public = &self.remote_public;
        self.keys.get_or_insert_with(|| {
            (
                labelled_key(LABEL_MAC1, public),
                labelled_key(LABEL_COOKIE, public),
            )
        })
    }

    /// Writes mac1 and mac2 into the last 32 bytes of `msg`.
    pub fn add_macs(&mut self, msg: &mut [u8], now: Instant) {
        let m1 = mac1_offset(msg.len());
        let mac1 = mac(&self.keys().0, &[&msg[..m1]]);
        msg[m1..m1 + MAC_LEN].copy_from_slice(&mac1);
        self.last_mac1 = Some((mac1, now));
        let m2 = mac2_offset(msg.len());
        let mac2 = match &self.cookie {
            Some((c, birth)) if now.saturating_duration_since(*birth) < COOKIE_REFRESH_TIME => {
                mac(c, &[&msg[..m2]])
            }
            _ => [0; MAC_LEN],
        };
        msg[m2..].copy_from_slice(&mac2);
    }

    /// Takes the cookie from a reply to the last message we sent.
    pub fn consume_reply(
        &mut self,
        reply: &CookieReply<'_>,
        now: Instant,
    ) -> Result<(), CookieError> {
        let (mac1, sent) = self.last_mac1.ok_or(CookieError::Unexpected)?;
        // A reply to a message older than a retry interval is not expected.
        if now.saturating_duration_since(sent) > REKEY_TIMEOUT {
            return Err(CookieError::Unexpected);
        }
        let enc = reply.encrypted_cookie();
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&enc[..16]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&enc[16..]);
        let cookie_key = self.keys().1;
        crypto::xaead_open(&cookie_key, &reply.nonce(), &mut cookie, &mac1, &tag)
            .map_err(|_| CookieError::DecryptFailed)?;
        self.cookie = Some((cookie, now));
        self.last_mac1 = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;
    use rand::SeedableRng;

    #[test]
    fn mac1_then_cookie_round_trip() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let responder_pub = [5u8; 32];
        let mut checker = CookieChecker::new(&responder_pub);
        let mut maker = CookieMaker::new(&responder_pub);
        let src: SocketAddr = "192.0.2.1:51820".parse().unwrap();
        let now = Instant::from_secs(10);
        let mut msg = [1u8; 148];
        maker.add_macs(&mut msg, now);
        assert_eq!(
            checker.check(&msg, src, false, now, &mut rng),
            MacState::ValidMac1
        );
        assert_eq!(
            checker.check(&msg, src, true, now, &mut rng),
            MacState::ValidMac1
        );
        let mut bad = msg;
        bad[3] ^= 1;
        assert_eq!(
            checker.check(&bad, src, true, now, &mut rng),
            MacState::InvalidMac1
        );

        let reply = checker.create_reply(&msg, 77, src, now, &mut rng);
        let Ok(Message::CookieReply(r)) = Message::parse(&reply) else {
            panic!()
        };
        assert_eq!(r.receiver_index(), 77);
        maker.consume_reply(&r, now).unwrap();
        // A second reply to the same message is not expected.
        assert_eq!(maker.consume_reply(&r, now), Err(CookieError::Unexpected));
        maker.add_macs(&mut msg, now);
        assert_eq!(
            checker.check(&msg, src, true, now, &mut rng),
            MacState::ValidMac1AndCookie
        );
        // The cookie is bound to the source address and port.
        let other: SocketAddr = "192.0.2.1:51821".parse().unwrap();
        assert_eq!(
            checker.check(&msg, other, true, now, &mut rng),
            MacState::ValidMac1
        );
        // After two minutes the secret rotates and the old cookie stops working.
        let later = now + COOKIE_REFRESH_TIME;
        assert_eq!(
            checker.check(&msg, src, true, later, &mut rng),
            MacState::ValidMac1
        );
        // And the maker stops sending mac2 for an expired cookie.
        maker.add_macs(&mut msg, later);
        assert_eq!(&msg[132..], &[0u8; 16]);
    }

    #[test]
    fn forged_reply_is_rejected() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut maker = CookieMaker::new(&[5u8; 32]);
        let mut checker_wrong_key = CookieChecker::new(&[6u8; 32]);
        let now = Instant::from_secs(1);
        let mut msg = [1u8; 92];
        maker.add_macs(&mut msg, now);
        let reply = checker_wrong_key.create_reply(
            &msg,
            1,
            "[2001:db8::1]:9".parse().unwrap(),
            now,
            &mut rng,
        );
        let Ok(Message::CookieReply(r)) = Message::parse(&reply) else {
            panic!()
        };
        assert_eq!(
            maker.consume_reply(&r, now),
            Err(CookieError::DecryptFailed)
        );
    }
}
