//! Static keys in PKCS#11 tokens: the private key never enters ferrowg's memory.
//!
//! WireGuard needs the static private key for exactly two things: the `es`/`se` DH of every
//! handshake and the static-static `ss` DH, which the core computes once per peer and caches
//! as the kernel does. [`Pkcs11Key`] does both inside the token with `CKM_ECDH1_DERIVE` and
//! reads back only the 32-byte shared secret; the ephemeral DHs stay in software. The
//! transport data path never touches the static key, so a token costs it nothing.
//!
//! - [`uri`]: RFC 7512 URIs, which name the key wherever a private key is accepted
//!   (`PrivateKey = pkcs11:…` in configuration files, `ferrowg set IFACE private-key pkcs11:…`,
//!   and the daemon's UAPI extension key [`UAPI_KEY_URI`]).
//! - [`token`]: the cryptoki plumbing: loading modules, finding the token and the object,
//!   logging in, the derive itself.
//! - [`manage`]: generating, importing, describing and deleting X25519 keys in a token.
//! - [`provider`]: [`Pkcs11Key`], the [`StaticKey`](ferrowg_proto::crypto::StaticKey) the
//!   daemon plugs into the protocol core, with reconnection when the token goes away.
//!
//! X25519 is spelled two ways by tokens (PKCS#11 3.0 §6.3): `CKK_EC_MONTGOMERY` keys made by
//! `CKM_EC_MONTGOMERY_KEY_PAIR_GEN`, and — SoftHSM 2.6 — `CKK_EC_EDWARDS` keys made by
//! `CKM_EC_EDWARDS_KEY_PAIR_GEN` with `CKA_EC_PARAMS` naming curve25519. Both derive with
//! `CKM_ECDH1_DERIVE`; both are accepted and generated (Montgomery preferred when offered).
//!
//! Nothing here logs or formats key material, PINs or derived secrets: logs and errors name the
//! token, the object and the PKCS#11 return code.

pub mod manage;
pub mod provider;
pub mod token;
pub mod uri;

use std::path::PathBuf;

pub use provider::Pkcs11Key;
pub use uri::{Pkcs11Uri, UriError};

use crate::uapi::Errno;

/// The UAPI key (interface section of `set=1`, and of the `get=1` reply) that carries the
/// PKCS#11 URI of a token-backed private key. wg(8) ignores unknown keys in `get` replies, so
/// stock `wg show` keeps working on such an interface (and shows no private key).
pub const UAPI_KEY_URI: &str = "ferrowg_private_key_uri";
/// The `get=1` key with the public key (hex) of a token-backed interface, which wg(8) cannot
/// derive without the private key.
pub const UAPI_KEY_PUBLIC: &str = "ferrowg_public_key";

/// Why a token key could not be opened, generated or used. The messages say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The URI has neither `module-path` nor `module-name`.
    #[error("the PKCS#11 URI names no module: add ?module-path=/path/to/module.so (or module-name=NAME)")]
    NoModule,
    /// `module-name` found nowhere.
    #[error("PKCS#11 module {name:?} not found (looked in {searched})")]
    ModuleNotFound {
        /// The name.
        name: String,
        /// The directories searched.
        searched: String,
    },
    /// The module file could not be loaded.
    #[error("PKCS#11 module {}: cannot be loaded: {reason}", path.display())]
    ModuleLoad {
        /// The file.
        path: PathBuf,
        /// The loader's or the module's error.
        reason: String,
    },
    /// No token matched the URI.
    #[error("no PKCS#11 token matches {wanted} in {} (tokens present: {present})", module.display())]
    NoToken {
        /// What the URI asked for.
        wanted: String,
        /// The module.
        module: PathBuf,
        /// The labels of the tokens present, or "none".
        present: String,
    },
    /// Several tokens matched.
    #[error("several PKCS#11 tokens match {wanted} ({present}): add token= or serial= to the URI")]
    AmbiguousToken {
        /// What the URI asked for.
        wanted: String,
        /// Their labels.
        present: String,
    },
    /// The `pin-source` file could not be read.
    #[error("cannot read the PIN from {}: {reason}", path.display())]
    PinSource {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// `CKR_PIN_INCORRECT`.
    #[error("token {token:?}: wrong PIN (CKR_PIN_INCORRECT)")]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// `CKR_PIN_LOCKED`.
    #[error("token {token:?}: the user PIN is locked (CKR_PIN_LOCKED); unlock it with the SO PIN")]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// No matching private key object.
    #[error("token {token:?} has no private key with {wanted}{}", if *no_pin {
        " (no PIN was given, and private objects are visible only after login: add pin-source= or pin-value=)"
    } else { "" })]
    NoObject {
        /// The token label.
        token: String,
        /// The object attributes asked for.
        wanted: String,
        /// The URI gave no PIN.
        no_pin: bool,
    },
    /// Several private keys matched.
    #[error("token {token:?} has {count} private keys with {wanted}: add id= to the URI")]
    AmbiguousObject {
        /// The token label.
        token: String,
        /// The object attributes asked for.
        wanted: String,
        /// How many.
        count: usize,
    },
    /// The object is not an X25519 key.
    #[error("token {token:?}: {wanted} is not an X25519 key ({what})")]
    NotX25519 {
        /// The token label.
        token: String,
        /// The object attributes asked for.
        wanted: String,
        /// What it is.
        what: String,
    },
    /// The URI names no object (`object=` or `id=`).
    #[error("the PKCS#11 URI names no key: add object=LABEL (and/or id=…)")]
    NoObjectName,
    /// `type=` other than `private`.
    #[error("the PKCS#11 URI has type={0}, but a WireGuard key is a private key (type=private)")]
    WrongType(&'static str),
    /// `genkey`: an object with this label/id exists already.
    #[error("token {token:?} already has an object with {wanted}: choose another object= (or delete it)")]
    Exists {
        /// The token label.
        token: String,
        /// The object attributes asked for.
        wanted: String,
    },
    /// `genkey`: the token offers no X25519 key generation.
    #[error("token {token:?} cannot generate X25519 keys (it offers neither CKM_EC_MONTGOMERY_KEY_PAIR_GEN nor CKM_EC_EDWARDS_KEY_PAIR_GEN)")]
    NoMechanism {
        /// The token label.
        token: String,
    },
    /// The key in the token changed under the same name (after a reconnection).
    #[error("token {token:?}: {wanted} now holds a different key than the one in use")]
    KeyChanged {
        /// The token label.
        token: String,
        /// The object attributes asked for.
        wanted: String,
    },
    /// Another PKCS#11 failure: the operation and the return code.
    #[error("token {token:?}: {op} failed: {rv}")]
    Token {
        /// The token label (or the module path before a token was found).
        token: String,
        /// The operation.
        op: &'static str,
        /// The PKCS#11 error.
        rv: String,
    },
}

impl Pkcs11Error {
    /// The errno the daemon answers a UAPI `set` with, distinct per kind of mistake so that a
    /// client can tell them apart: ENOENT (2) the module, ENODEV (19) the token, EACCES (13)
    /// the PIN, ENOKEY (126) the object, EKEYREJECTED (129) not an X25519 key, EIO (5) other
    /// token failures, EINVAL (22) an incomplete URI.
    pub fn errno(&self) -> Errno {
        Errno(match self {
            Self::NoModule | Self::NoObjectName | Self::WrongType(_) => 22,
            Self::ModuleNotFound { .. } | Self::ModuleLoad { .. } => 2,
            Self::NoToken { .. } | Self::AmbiguousToken { .. } => 19,
            Self::PinSource { .. } | Self::WrongPin { .. } | Self::PinLocked { .. } => 13,
            Self::NoObject { .. } | Self::AmbiguousObject { .. } | Self::Exists { .. } => 126,
            Self::NotX25519 { .. } | Self::KeyChanged { .. } | Self::NoMechanism { .. } => 129,
            Self::Token { .. } => 5,
        })
    }

    /// What a UAPI errno from [`Pkcs11Error::errno`] means, for a client whose `set` with a
    /// URI was refused.
    pub fn explain_errno(errno: i32) -> Option<&'static str> {
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
    //! How URIs travel through the configuration parser and the UAPI.
    use super::*;
    use crate::config::{self, Dialect};
    use crate::key::PublicKey;
    use crate::uapi::client::{parse_get_response, ConfMode};
    use crate::uapi::server::{parse_set, write_get_response_ext, SetErrorKind};
    use crate::uapi::{DeviceState, InterfaceOp, Limits, PeerState, SetRequest};

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
    fn config_private_key_may_be_a_uri() {
        let sk = crate::key::PrivateKey::from_bytes([0x41; 32]).to_base64();
        let text = format!("[Interface]\nPrivateKey = {URI}\nListenPort = 1\n");
        let c = config::parse("wg0.conf", text.as_bytes(), Dialect::WgQuick).unwrap();
        assert_eq!(c.interface.private_key, None);
        let uri = c.interface.private_key_uri.clone().unwrap();
        assert_eq!(uri, Pkcs11Uri::parse(URI).unwrap());
        // Printed back as written (this is the user's own file), and sent as the extension.
        assert!(c
            .to_wg_conf()
            .contains(&format!("PrivateKey = {}", uri.to_uri_string(true))));
        let req = SetRequest::from_config(&c, ConfMode::Set, |_| Err::<_, ()>(())).unwrap();
        assert_eq!(req.interface[0], InterfaceOp::PrivateKeyUri(Box::new(uri)));
        assert!(!req
            .interface
            .iter()
            .any(|op| matches!(op, InterfaceOp::PrivateKey(_))));
        // The later line wins, either way.
        let both = format!("[Interface]\nPrivateKey = {URI}\nPrivateKey = {sk}\n");
        let c = config::parse("wg0.conf", both.as_bytes(), Dialect::Wg).unwrap();
        assert!(c.interface.private_key.is_some() && c.interface.private_key_uri.is_none());
        let both = format!("[Interface]\nPrivateKey = {sk}\nPrivateKey = {URI}\n");
        let c = config::parse("wg0.conf", both.as_bytes(), Dialect::Wg).unwrap();
        assert!(c.interface.private_key.is_none() && c.interface.private_key_uri.is_some());
        // A bad URI names the line and the problem, not the PIN.
        let bad = "[Interface]\nPrivateKey = pkcs11:object=k;bogus=1?pin-value=secret\n";
        let e = config::parse("wg0.conf", bad.as_bytes(), Dialect::Wg).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("wg0.conf:2: PrivateKey: not a valid PKCS#11 URI"),
            "{msg}"
        );
        assert!(msg.contains("bogus") && !msg.contains("secret"), "{msg}");
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
        let codes: std::collections::BTreeSet<i32> = errs.iter().map(|e| e.errno().0).collect();
        assert_eq!(codes.len(), errs.len());
        for c in codes {
            assert!(Pkcs11Error::explain_errno(c).is_some(), "{c}");
        }
    }
}
