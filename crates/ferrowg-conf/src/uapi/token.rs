//! PKCS#11 token keys on the UAPI: the extension keys that carry a token key's URI and public
//! key, and the errno a `set` with a token URI is refused with, per kind of token error.

use ferrowg_keys::pkcs11::Pkcs11Error;

use super::Errno;

/// The UAPI key (interface section of `set=1`, and of the `get=1` reply) that carries the
/// PKCS#11 URI of a token-backed private key. wg(8) ignores unknown keys in `get` replies, so
/// stock `wg show` keeps working on such an interface (and shows no private key).
pub const UAPI_KEY_URI: &str = "ferrowg_private_key_uri";
/// The UAPI key (interface section of `set=1`, value `true`) by which a key change keeps the
/// current sessions ([`InterfaceOp::KeepSessions`](super::InterfaceOp::KeepSessions)).
pub const UAPI_KEEP_SESSIONS: &str = "ferrowg_keep_sessions";
/// The feature name of [`UAPI_KEEP_SESSIONS`] in the daemon's
/// [`UAPI_KEY_FEATURES`](super::UAPI_KEY_FEATURES) line.
pub const FEATURE_KEEP_SESSIONS: &str = "keep_sessions";
/// The `get=1` key with the public key (hex) of a token-backed interface, which wg(8) cannot
/// derive without the private key.
pub const UAPI_KEY_PUBLIC: &str = "ferrowg_public_key";

impl Errno {
    /// The errno the daemon answers a UAPI `set` with, distinct per kind of mistake so that a
    /// client can tell them apart: ENOENT (2) the module, ENODEV (19) the token, EACCES (13)
    /// the PIN, ENOKEY (126) the object, EKEYREJECTED (129) not an X25519 key, EIO (5) other
    /// token failures, EINVAL (22) an incomplete URI.
    pub fn of_token_error(e: &Pkcs11Error) -> Self {
        Self(match e {
            Pkcs11Error::NoModule | Pkcs11Error::NoObjectName | Pkcs11Error::WrongType(_) => 22,
            Pkcs11Error::ModuleNotFound { .. } | Pkcs11Error::ModuleLoad { .. } => 2,
            Pkcs11Error::NoToken { .. } | Pkcs11Error::AmbiguousToken { .. } => 19,
            Pkcs11Error::PinSource { .. }
            | Pkcs11Error::WrongPin { .. }
            | Pkcs11Error::PinLocked { .. } => 13,
            Pkcs11Error::NoObject { .. }
            | Pkcs11Error::AmbiguousObject { .. }
            | Pkcs11Error::Exists { .. } => 126,
            Pkcs11Error::NotX25519 { .. }
            | Pkcs11Error::KeyChanged { .. }
            | Pkcs11Error::NoMechanism { .. } => 129,
            // Pkcs11Error::Token and any kind added later: a token failure.
            _ => 5,
        })
    }

    /// What a UAPI errno from [`Errno::of_token_error`] means, for a client whose `set` with a
    /// URI was refused.
    pub fn explain_token_errno(errno: i32) -> Option<&'static str> {
        Some(match errno {
            2 => "the daemon cannot load the PKCS#11 module",
            19 => "the daemon finds no (or more than one) matching PKCS#11 token",
            13 => "the token refused the PIN, or the daemon cannot read the pin-source file",
            126 => "the daemon finds no matching private key in the token",
            129 => "the object in the token is not a usable X25519 key",
            5 => "the token failed",
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    //! How URIs travel through the UAPI.
    use super::*;
    use crate::uapi::reply::{parse_get_response, write_get_response_ext};
    use crate::uapi::request::{parse_set, SetErrorKind};
    use crate::uapi::{DeviceState, Errno, InterfaceOp, Limits, PeerState};
    use ferrowg_keys::key::PublicKey;
    use ferrowg_keys::pkcs11::{Pkcs11Error, Pkcs11Uri};

    const URI: &str = "pkcs11:token=wg;object=wg0?module-path=/usr/lib/softhsm/libsofthsm2.so\
                       &pin-value=12%2634";

    #[test]
    fn uapi_set_carries_the_uri_with_its_pin() {
        let body = format!("{UAPI_KEY_URI}={URI}\nlisten_port=51820\n");
        let req = parse_set(body.as_bytes(), &Limits::default()).unwrap();
        let InterfaceOp::PrivateKeyUri(uri) = &req.interface[0] else {
            panic!("{:?}", req.interface)
        };
        assert_eq!(uri.object.as_deref(), Some("wg0"));
        assert!(uri.has_pin_value());
        // The client writes it back with the PIN (the daemon needs it), and it parses again.
        let text = req.to_uapi();
        assert!(text.contains("ferrowg_private_key_uri=pkcs11:") && text.contains("pin-value"));
        let again = parse_set(
            text.strip_prefix("set=1\n").unwrap().as_bytes(),
            &Limits::default(),
        );
        assert_eq!(again.unwrap(), req);
        // A malformed URI is EINVAL, and the error does not repeat the value.
        let bad = format!("{UAPI_KEY_URI}=pkcs11:object=a b?pin-value=secret\n");
        let e = parse_set(bad.as_bytes(), &Limits::default()).unwrap_err();
        assert!(matches!(e.kind, SetErrorKind::InvalidKeyUri(_)), "{e:?}");
        assert_eq!(e.errno(), crate::uapi::Errno::EINVAL);
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn uapi_get_extension_lines_come_before_the_peers_and_are_ignored() {
        let mut state = DeviceState {
            listen_port: 51820,
            ..DeviceState::default()
        };
        state
            .peers
            .push(PeerState::new(PublicKey::from_bytes([7; 32])));
        let uri = Pkcs11Uri::parse(URI).unwrap();
        let ext = [
            (UAPI_KEY_URI, uri.to_string()),
            (UAPI_KEY_PUBLIC, PublicKey::from_bytes([9; 32]).to_hex()),
        ];
        let text = write_get_response_ext(&state, &ext);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "listen_port=51820");
        assert!(lines[1].starts_with("ferrowg_private_key_uri=pkcs11:token=wg;object=wg0?"));
        assert!(!text.contains("pin-value"), "{text}");
        assert!(lines[2].starts_with("ferrowg_public_key=0909"));
        assert!(lines[3].starts_with("public_key=0707"));
        assert_eq!(parse_get_response(text.as_bytes()).unwrap(), state);
    }

    #[test]
    fn errnos_are_distinct_and_explained() {
        let errs = [
            Pkcs11Error::ModuleLoad {
                path: "/x".into(),
                reason: String::new(),
            },
            Pkcs11Error::NoToken {
                wanted: String::new(),
                module: "/x".into(),
                present: String::new(),
            },
            Pkcs11Error::WrongPin {
                token: String::new(),
            },
            Pkcs11Error::NoObject {
                token: String::new(),
                wanted: String::new(),
                no_pin: false,
            },
        ];
        let codes: std::collections::BTreeSet<i32> =
            errs.iter().map(|e| Errno::of_token_error(e).0).collect();
        assert_eq!(codes.len(), errs.len());
        for c in codes {
            assert!(Errno::explain_token_errno(c).is_some(), "{c}");
        }
    }
}
