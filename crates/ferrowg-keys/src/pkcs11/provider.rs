//! [`Pkcs11Key`]: a [`StaticKey`] whose private half stays in a PKCS#11 token.
//!
//! The key keeps one logged-in session behind a mutex, and its public key, computed once by
//! the token when the key is opened. Each [`StaticKey::dh`] is one `C_DeriveKey` (see
//! [`token::derive`]).
//!
//! When the token goes away (unplugged, its daemon restarted, its files moved), the derive
//! fails with a session-level error ([`token::is_session_error`]; any other refusal is
//! returned as it is): the session is dropped and one reconnection (new session, login, find the object,
//! check that it is still the same key) is tried at once; if that fails too the call returns
//! [`KeyError::Unavailable`], which the core turns into a failed handshake that its timers
//! retry. Further reconnections are attempted no more often than a backoff that doubles from
//! [`RETRY_MIN`] to [`RETRY_MAX`]; between attempts `dh` fails at once, so a missing token
//! never stalls the daemon. Established sessions do not use the static key and keep running.
//! The outage and the recovery are logged once each, with the token error but never with key
//! material.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use cryptoki::types::AuthPin;
use ferrowg_proto::crypto::{self, KeyError, Secret, StaticKey};

use super::token::{self, Conn};
use super::{Pkcs11Error, Pkcs11Uri};
use crate::key::PublicKey;

/// First delay before retrying a token that failed.
pub const RETRY_MIN: Duration = Duration::from_millis(250);
/// Longest delay between retries (well under REKEY_TIMEOUT, so that a handshake retried by the
/// core after the token returns finds it reconnected).
pub const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a continuing outage is logged again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// The static key in a PKCS#11 token.
pub struct Pkcs11Key {
    uri: Pkcs11Uri,
    pin: Option<AuthPin>,
    public: [u8; 32],
    name: String,
    inner: Mutex<Inner>,
}

struct Inner {
    conn: Option<Conn>,
    /// The module generation of the last session (see [`token::reinitialize`]).
    generation: u64,
    backoff: Duration,
    next_retry: Option<Instant>,
    down_since: Option<Instant>,
    last_reminder: Option<Instant>,
}

impl Pkcs11Key {
    /// The public key of the key in the token, as the other key types spell it.
    pub fn public(&self) -> PublicKey {
        PublicKey::from_bytes(self.public)
    }

    /// Opens the key the URI names: loads the module, finds the token, logs in, finds the
    /// object, checks that it is X25519 and asks the token for its public key. Every failure
    /// says which of these went wrong.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, Pkcs11Error> {
        let pin = token::read_pin(uri)?;
        let conn = token::connect(uri, pin.as_ref())?;
        let public = token::public_key(conn.session(), conn.key, &conn.token)?;
        let name = format!("pkcs11 {}", uri.describe());
        log::info!(
            "{name}: opened in token {:?} ({})",
            conn.token,
            PublicKey::from_bytes(public)
        );
        Ok(Pkcs11Key {
            uri: uri.clone(),
            pin,
            public,
            name,
            inner: Mutex::new(Inner {
                generation: conn.module().1,
                conn: Some(conn),
                backoff: RETRY_MIN,
                next_retry: None,
                down_since: None,
                last_reminder: None,
            }),
        })
    }

    /// The URI the key was opened with (its PIN included; `Display` leaves it out).
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    /// True while the token answers (false between a failure and the next reconnection).
    pub fn is_connected(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .conn
            .is_some()
    }

    /// A fresh session with the same key, refusing a different key under the same name. When
    /// the token cannot be found, the module is initialised again once (see
    /// [`token::reinitialize`]) before giving up.
    fn connect(&self, inner: &mut Inner) -> Result<Conn, Pkcs11Error> {
        let conn = match token::connect(&self.uri, self.pin.as_ref()) {
            Ok(c) => c,
            Err(
                Pkcs11Error::NoToken { .. }
                | Pkcs11Error::Token {
                    op: "C_GetSlotList",
                    ..
                },
            ) => {
                let path = token::module_file(&self.uri)?;
                token::reinitialize(&path, inner.generation)?;
                inner.generation = token::generation(&path);
                token::connect(&self.uri, self.pin.as_ref())?
            }
            Err(e) => return Err(e),
        };
        let public = token::public_key(conn.session(), conn.key, &conn.token)?;
        if public != self.public {
            return Err(Pkcs11Error::KeyChanged {
                token: conn.token,
                wanted: token::wanted_object(&self.uri),
            });
        }
        Ok(conn)
    }

    /// Reconnects unless the backoff says to wait. `Err` means the token is unavailable.
    fn reconnect(&self, inner: &mut Inner) -> Result<(), KeyError> {
        let now = Instant::now();
        if inner.next_retry.is_some_and(|t| now < t) {
            return Err(KeyError::Unavailable);
        }
        match self.connect(inner) {
            Ok(conn) => {
                inner.generation = conn.module().1;
                if let Some(since) = inner.down_since.take() {
                    log::info!(
                        "{}: token is back after {:.1} s; handshakes resume",
                        self.name,
                        since.elapsed().as_secs_f64()
                    );
                }
                inner.conn = Some(conn);
                inner.backoff = RETRY_MIN;
                inner.next_retry = None;
                inner.last_reminder = None;
                Ok(())
            }
            Err(e) => {
                match inner.down_since {
                    None => {
                        inner.down_since = Some(now);
                        inner.last_reminder = Some(now);
                        log::error!(
                            "{}: token unavailable: {e}; new handshakes fail until it returns \
                             (established sessions keep running; retrying every {} s at most)",
                            self.name,
                            RETRY_MAX.as_secs()
                        );
                    }
                    Some(since) => {
                        if inner
                            .last_reminder
                            .is_none_or(|t| now.duration_since(t) >= REMIND_EVERY)
                        {
                            inner.last_reminder = Some(now);
                            log::error!(
                                "{}: token still unavailable after {} s: {e}",
                                self.name,
                                since.elapsed().as_secs()
                            );
                        } else {
                            log::debug!("{}: reconnection failed: {e}", self.name);
                        }
                    }
                }
                inner.next_retry = Some(now + inner.backoff);
                inner.backoff = (inner.backoff * 2).min(RETRY_MAX);
                Err(KeyError::Unavailable)
            }
        }
    }
}

/// True for the public keys X25519 maps to zero whatever the scalar (the low-order points,
/// in any encoding): a clamped scalar is a multiple of the cofactor, so one software X25519
/// with a fixed, public scalar tells.
fn low_order(peer: &[u8; 32]) -> bool {
    crypto::x25519(&crypto::clamp([0x55; 32]), peer).is_none()
}

impl StaticKey for Pkcs11Key {
    fn public_key(&self) -> [u8; 32] {
        self.public
    }

    fn dh(&self, peer_public: &[u8; 32]) -> Result<Secret, KeyError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // At most two derives: on the current session, and on a fresh one if that failed.
        for _ in 0..2 {
            if inner.conn.is_none() {
                self.reconnect(&mut inner)?;
            }
            let Some(conn) = inner.conn.as_ref() else {
                return Err(KeyError::Unavailable);
            };
            match token::derive(conn.session(), conn.key, peer_public) {
                Ok(s) if crypto::ct_eq(&s[..], &[0u8; 32]) => return Err(KeyError::LowOrderPoint),
                Ok(s) => return Ok(s),
                // A token may refuse a low-order point instead of returning zeros.
                Err(_) if low_order(peer_public) => return Err(KeyError::LowOrderPoint),
                // A refusal of this request: the session is fine, reconnecting would not help.
                Err(e) if !token::is_session_error(&e) => {
                    log::debug!("{}: X25519 refused: {}", self.name, token::rv_text(&e));
                    return Err(KeyError::Unavailable);
                }
                Err(e) => {
                    log::warn!(
                        "{}: X25519 in token {:?} failed: {}; reopening the session",
                        self.name,
                        conn.token,
                        token::rv_text(&e)
                    );
                    inner.conn = None;
                }
            }
        }
        Err(KeyError::Unavailable)
    }
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.uri)
            .field("public", &PublicKey::from_bytes(self.public))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_session_level_errors_reconnect() {
        use cryptoki::context::Function;
        use cryptoki::error::{Error, RvError};
        let e = |rv| Error::Pkcs11(rv, Function::DeriveKey);
        for rv in [
            RvError::SessionHandleInvalid,
            RvError::SessionClosed,
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::UserNotLoggedIn,
            RvError::CryptokiNotInitialized,
            RvError::KeyHandleInvalid,
        ] {
            assert!(token::is_session_error(&e(rv)), "{rv:?}");
        }
        for rv in [
            RvError::ArgumentsBad,
            RvError::MechanismInvalid,
            RvError::MechanismParamInvalid,
            RvError::DomainParamsInvalid,
            RvError::TemplateInconsistent,
            RvError::AttributeValueInvalid,
            RvError::KeyFunctionNotPermitted,
            RvError::FunctionFailed,
        ] {
            assert!(!token::is_session_error(&e(rv)), "{rv:?}");
        }
    }

    #[test]
    fn low_order_points_are_recognised() {
        // RFC 7748 / the kernel's list: 0, 1, and the order-8 points.
        let mut zero = [0u8; 32];
        assert!(low_order(&zero));
        zero[0] = 1;
        assert!(low_order(&zero));
        let p8: [u8; 32] = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        assert!(low_order(&p8));
        assert!(!low_order(&crypto::x25519_public(&[7; 32])));
    }
}
