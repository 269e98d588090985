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
//!   and the daemon's UAPI extension key, defined with the UAPI in `ferrowg-conf`).
//! - `token` (internal): the cryptoki plumbing: loading modules, finding the token and the object,
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
pub(crate) mod token;
pub mod uri;

use std::path::PathBuf;

pub use provider::Pkcs11Key;
pub use uri::{Pkcs11Uri, UriError};

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
    /// The module file, or a directory above it, could be replaced by a user other than root
    /// and the daemon's: it is not loaded (loading runs its code as the daemon's user).
    #[error(
        "PKCS#11 module {}: not loaded: {} (owner uid {owner}, mode {mode:04o}) could be changed \
         by other users; a module is loaded only from a file that, like every directory above it, \
         belongs to root and is not writable by group or others: move the module to a system \
         directory, or run chown root {} and chmod go-w {}",
        module.display(),
        offender.display(),
        offender.display(),
        offender.display()
    )]
    UntrustedModule {
        /// The module file the URI names.
        module: PathBuf,
        /// The file or directory that fails the rule.
        offender: PathBuf,
        /// Its owner.
        owner: u32,
        /// Its permission bits.
        mode: u32,
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
