//! The cryptoki plumbing: modules, tokens, login, objects, X25519 key generation and derive.
//!
//! Each module file is loaded and `C_Initialize`d once per process and kept (a module must not
//! be initialised twice, and several keys, e.g. an old and a new one during rotation, may share
//! it). A module can be finalised and initialised again ([`reinitialize`]) when a token has
//! gone away: some modules (SoftHSM 2.6) fail `C_GetSlotList` for good once a token they knew
//! disappeared, even after it is back. Each initialisation is a generation; a [`Conn`] closes
//! its session only if the module is still in the generation that opened it, since session
//! handles of an earlier generation may have been reused. A module is loaded (`dlopen`, as the
//! daemon's user, often root) only from a trusted file: see [`trusted_module`]. Every other
//! call takes a [`Pkcs11Uri`] and returns a [`Pkcs11Error`] that names what went wrong. The
//! derived shared secrets are session objects that are destroyed right after their value is
//! read; the bytes are zeroed on every path.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ferrowg_proto::crypto::Secret;
use zeroize::Zeroize;

use super::uri::{ObjectType, PinSpec, Pkcs11Uri};
use super::Pkcs11Error;

/// `CKA_EC_PARAMS` for X25519 as an OID: DER of id-X25519 (1.3.101.110, RFC 8410).
pub const X25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x6e];
/// `CKA_EC_PARAMS` for X25519 as a curve name: DER PrintableString "curve25519" (PKCS#11 3.0
/// §6.3.6; what SoftHSM 2.6 expects with the Edwards mechanism).
pub const X25519_NAME: [u8; 12] = *b"\x13\x0acurve25519";
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_NAME: [u8; 14] = *b"\x13\x0cedwards25519";
/// The X25519 base point u = 9: X25519(k, 9) is the public key of k.
pub(super) const BASEPOINT: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 9;
    b
};

/// Where `module-name=` is looked for (Debian's p11-kit directory first).
fn module_dirs() -> Vec<PathBuf> {
    vec![
        PathBuf::from(format!(
            "/usr/lib/{}-linux-gnu/pkcs11",
            std::env::consts::ARCH
        )),
        PathBuf::from("/usr/lib64/pkcs11"),
        PathBuf::from("/usr/lib/pkcs11"),
        PathBuf::from("/usr/local/lib/pkcs11"),
        PathBuf::from("/usr/lib/softhsm"),
    ]
}

/// The module file a URI names.
pub fn module_file(uri: &Pkcs11Uri) -> Result<PathBuf, Pkcs11Error> {
    if let Some(p) = &uri.module_path {
        return Ok(p.clone());
    }
    let Some(name) = &uri.module_name else {
        return Err(Pkcs11Error::NoModule);
    };
    let dirs = module_dirs();
    for dir in &dirs {
        for file in [name.clone(), format!("{name}.so"), format!("lib{name}.so")] {
            let p = dir.join(file);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(Pkcs11Error::ModuleNotFound {
        name: name.clone(),
        searched: searched.join(", "),
    })
}

/// A loaded module and the number of times it was (re)initialised.
struct Module {
    ctx: Pkcs11,
    generation: u64,
}

fn modules() -> &'static Mutex<HashMap<PathBuf, Module>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The current initialisation generation of the module at `path` (0 if not loaded).
pub fn generation(path: &Path) -> u64 {
    let map = modules().lock().unwrap_or_else(|e| e.into_inner());
    map.get(path).map_or(0, |m| m.generation)
}

/// Finalises and initialises again the module at `path`, unless that already happened since
/// `seen` (its generation when the caller's failure happened). Sessions of every key on the
/// module end; the others reconnect when they next fail.
pub fn reinitialize(path: &Path, seen: u64) -> Result<(), Pkcs11Error> {
    let mut map = modules().lock().unwrap_or_else(|e| e.into_inner());
    let Some(m) = map.get_mut(path) else {
        return Ok(());
    };
    if m.generation != seen {
        return Ok(());
    }
    m.generation += 1;
    let _ = m.ctx.clone().finalize();
    match m.ctx.initialize(init_args()) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(Pkcs11Error::ModuleLoad {
            path: path.to_owned(),
            reason: format!("C_Initialize: {}", rv_text(&e)),
        }),
    }
}

/// The loaded and initialised module at `path`, and its generation.
pub fn module(path: &Path) -> Result<(Pkcs11, u64), Pkcs11Error> {
    let mut map = modules().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = map.get(path) {
        return Ok((m.ctx.clone(), m.generation));
    }
    let load = |reason: String| Pkcs11Error::ModuleLoad {
        path: path.to_owned(),
        reason,
    };
    if !path.exists() {
        return Err(load("no such file".into()));
    }
    let real = trusted_module(path)?;
    let ctx = Pkcs11::new(&real).map_err(|e| match e {
        CkError::LibraryLoading(l) => load(l.to_string()),
        other => load(other.to_string()),
    })?;
    match ctx.initialize(init_args()) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load(format!("C_Initialize: {}", rv_text(&e)))),
    }
    map.insert(
        path.to_owned(),
        Module {
            ctx: ctx.clone(),
            generation: 1,
        },
    );
    Ok((ctx, 1))
}

/// Checks that the module at `path` may be loaded and returns the file to load (symbolic links
/// resolved). The rule: the file, and every directory above it up to `/`, belongs to root or
/// to this process's user and is not writable by its group or others; this holds both for the
/// path as written (a symbolic link counts by its owner) and for the file it resolves to.
/// Anyone who could replace such a file could already act as root or as the daemon.
pub fn trusted_module(path: &Path) -> Result<PathBuf, Pkcs11Error> {
    let io = |e: std::io::Error| Pkcs11Error::ModuleLoad {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let written = std::path::absolute(path).map_err(io)?;
    let real = std::fs::canonicalize(path).map_err(io)?;
    let user = effective_uid();
    for (p, follow) in written
        .ancestors()
        .map(|p| (p, false))
        .chain(real.ancestors().map(|p| (p, true)))
    {
        let meta = if follow {
            std::fs::metadata(p)
        } else {
            std::fs::symlink_metadata(p)
        };
        let meta = meta.map_err(io)?;
        let (owner, mode) = (meta.uid(), meta.mode());
        let writable = !meta.file_type().is_symlink() && mode & 0o022 != 0;
        if (owner != 0 && Some(owner) != user) || writable {
            return Err(Pkcs11Error::UntrustedModule {
                module: path.to_owned(),
                offender: p.to_owned(),
                owner,
                mode: mode & 0o7777,
            });
        }
    }
    Ok(real)
}

/// The process's effective user id (`Uid:` of `/proc/self/status`: real, effective, …).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A PKCS#11 error as `CKR_NAME` text.
pub fn rv_text(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, _) => format!("{rv:?} ({rv})"),
        other => other.to_string(),
    }
}

/// Whether a failed call means the session, the login or the token itself is gone (so a new
/// session may succeed), as opposed to a refusal of this particular request (a bad point, a
/// mechanism or template the token dislikes), after which reconnecting would only cost time.
pub fn is_session_error(e: &CkError) -> bool {
    use RvError as R;
    matches!(
        e,
        CkError::Pkcs11(
            R::SessionHandleInvalid
                | R::SessionClosed
                | R::SessionCount
                | R::DeviceRemoved
                | R::DeviceError
                | R::DeviceMemory
                | R::TokenNotPresent
                | R::TokenNotRecognized
                | R::UserNotLoggedIn
                | R::CryptokiNotInitialized
                | R::KeyHandleInvalid
                | R::ObjectHandleInvalid
                | R::GeneralError,
            _
        )
    )
}

pub(super) fn token_err<'a>(
    token: &'a str,
    op: &'static str,
) -> impl Fn(CkError) -> Pkcs11Error + 'a {
    move |e| Pkcs11Error::Token {
        token: token.to_owned(),
        op,
        rv: rv_text(&e),
    }
}

/// The token-matching part of a URI, for messages.
fn wanted_token(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    for (name, v) in [
        ("token", &uri.token),
        ("manufacturer", &uri.manufacturer),
        ("serial", &uri.serial),
        ("model", &uri.model),
        ("slot-description", &uri.slot_description),
        ("slot-manufacturer", &uri.slot_manufacturer),
    ] {
        if let Some(v) = v {
            parts.push(format!("{name}={v:?}"));
        }
    }
    if let Some(id) = uri.slot_id {
        parts.push(format!("slot-id={id}"));
    }
    if parts.is_empty() {
        "any token".into()
    } else {
        parts.join(" ")
    }
}

/// The object-matching part of a URI, for messages.
pub fn wanted_object(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &uri.object {
        parts.push(format!("object={o:?}"));
    }
    if let Some(id) = &uri.id {
        let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
        parts.push(format!("id={hex}"));
    }
    parts.join(" ")
}

/// A token found by its URI: its slot and label.
pub struct FoundToken {
    /// The module.
    pub ctx: Pkcs11,
    /// The module's file.
    pub path: PathBuf,
    /// The module's generation.
    pub generation: u64,
    /// The slot holding it.
    pub slot: Slot,
    /// Its label, trimmed.
    pub label: String,
}

/// Finds the one initialised token that matches the URI's token and slot attributes.
pub fn find_token(uri: &Pkcs11Uri) -> Result<FoundToken, Pkcs11Error> {
    let path = module_file(uri)?;
    let (ctx, generation) = module(&path)?;
    let fail = |op, e: CkError| Pkcs11Error::Token {
        token: path.display().to_string(),
        op,
        rv: rv_text(&e),
    };
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| fail("C_GetSlotList", e))?;
    let mut present = Vec::new();
    let mut matches = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        let label = info.label().trim_end().to_owned();
        present.push(format!("{label:?}"));
        let eq = |want: &Option<String>, have: &str| {
            want.as_ref()
                .is_none_or(|w| w.trim_end() == have.trim_end())
        };
        let mut ok = eq(&uri.token, &label)
            && eq(&uri.manufacturer, info.manufacturer_id())
            && eq(&uri.serial, info.serial_number())
            && eq(&uri.model, info.model())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        if ok && (uri.slot_description.is_some() || uri.slot_manufacturer.is_some()) {
            ok = ctx.get_slot_info(slot).is_ok_and(|s| {
                eq(&uri.slot_description, s.slot_description())
                    && eq(&uri.slot_manufacturer, s.manufacturer_id())
            });
        }
        if ok {
            matches.push((slot, label));
        }
    }
    match matches.len() {
        1 => {
            let (slot, label) = matches.remove(0);
            Ok(FoundToken {
                ctx,
                path,
                generation,
                slot,
                label,
            })
        }
        0 => Err(Pkcs11Error::NoToken {
            wanted: wanted_token(uri),
            module: path,
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        }),
        _ => Err(Pkcs11Error::AmbiguousToken {
            wanted: wanted_token(uri),
            present: matches
                .iter()
                .map(|(_, l)| format!("{l:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Reads the PIN the URI gives (`pin-value`, or the first line of the `pin-source` file).
pub fn read_pin(uri: &Pkcs11Uri) -> Result<Option<AuthPin>, Pkcs11Error> {
    match &uri.pin {
        None => Ok(None),
        Some(PinSpec::Value(v)) => Ok(Some(AuthPin::from(v.as_str()))),
        Some(PinSpec::Source(path)) => {
            let err = |reason: String| Pkcs11Error::PinSource {
                path: path.clone(),
                reason,
            };
            // A PIN file is held to the rules of private key files (private to its owner,
            // bounded, wiped).
            let text = match crate::keyfile::read_secret_file(path) {
                Ok(text) => text,
                Err(crate::keyfile::KeyFileError::Format { .. }) => {
                    return Err(err("not UTF-8".into()))
                }
                Err(crate::keyfile::KeyFileError::Io { source, .. }) => {
                    return Err(err(source.to_string()))
                }
                Err(e) => return Err(err(e.to_string())),
            };
            let pin = text.split(['\n', '\r']).next().unwrap_or("");
            if pin.is_empty() {
                return Err(err("the file is empty".into()));
            }
            Ok(Some(AuthPin::from(pin)))
        }
    }
}

/// Logs the session in as the user. Already being logged in (another session of this process
/// on the same token) counts as success.
pub fn login(session: &Session, pin: Option<&AuthPin>, token: &str) -> Result<(), Pkcs11Error> {
    let Some(pin) = pin else { return Ok(()) };
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            _,
        )) => Err(Pkcs11Error::WrongPin {
            token: token.to_owned(),
        }),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(Pkcs11Error::PinLocked {
            token: token.to_owned(),
        }),
        Err(e) => Err(token_err(token, "C_Login")(e)),
    }
}

/// The search template for the URI's object: its label and id, of `class`.
pub(super) fn object_template(uri: &Pkcs11Uri, class: Option<ObjectClass>) -> Vec<Attribute> {
    let mut t = Vec::new();
    if let Some(c) = class {
        t.push(Attribute::Class(c));
    }
    if let Some(o) = &uri.object {
        t.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// Refuses a URI that cannot name a private key.
pub fn check_names_key(uri: &Pkcs11Uri) -> Result<(), Pkcs11Error> {
    match uri.object_type {
        None | Some(ObjectType::Private) => {}
        Some(ObjectType::Public) => return Err(Pkcs11Error::WrongType("public")),
        Some(ObjectType::Cert) => return Err(Pkcs11Error::WrongType("cert")),
        Some(ObjectType::SecretKey) => return Err(Pkcs11Error::WrongType("secret-key")),
        Some(ObjectType::Data) => return Err(Pkcs11Error::WrongType("data")),
    }
    if uri.object.is_none() && uri.id.is_none() {
        return Err(Pkcs11Error::NoObjectName);
    }
    Ok(())
}

/// Finds the URI's private key in a logged-in session and checks that it is X25519.
pub fn find_key(
    session: &Session,
    uri: &Pkcs11Uri,
    token: &str,
    have_pin: bool,
) -> Result<ObjectHandle, Pkcs11Error> {
    let template = object_template(uri, Some(ObjectClass::PRIVATE_KEY));
    let found = session
        .find_objects(&template)
        .map_err(token_err(token, "C_FindObjects"))?;
    let wanted = wanted_object(uri);
    let key = match found.as_slice() {
        [k] => *k,
        [] => {
            return Err(Pkcs11Error::NoObject {
                token: token.to_owned(),
                wanted,
                no_pin: !have_pin,
            })
        }
        more => {
            return Err(Pkcs11Error::AmbiguousObject {
                token: token.to_owned(),
                wanted,
                count: more.len(),
            })
        }
    };
    if let Some(what) = not_x25519(session, key) {
        return Err(Pkcs11Error::NotX25519 {
            token: token.to_owned(),
            wanted,
            what,
        });
    }
    Ok(key)
}

/// Why `key` is not an X25519 key, or `None` when it is one.
fn not_x25519(session: &Session, key: ObjectHandle) -> Option<String> {
    let attrs =
        match session.get_attributes(key, &[AttributeType::KeyType, AttributeType::EcParams]) {
            Ok(a) => a,
            Err(e) => return Some(format!("its attributes cannot be read: {}", rv_text(&e))),
        };
    let mut key_type = None;
    let mut params = None;
    for a in attrs {
        match a {
            Attribute::KeyType(k) => key_type = Some(k),
            Attribute::EcParams(p) => params = Some(p),
            _ => {}
        }
    }
    let x25519 = |p: &Option<Vec<u8>>| {
        p.as_deref()
            .is_some_and(|p| p == X25519_OID || p == X25519_NAME)
    };
    match key_type {
        Some(k) if k == KeyType::EC_MONTGOMERY => (params.is_some() && !x25519(&params))
            .then(|| "a Montgomery key on another curve".into()),
        Some(k) if k == KeyType::EC_EDWARDS => {
            if x25519(&params) {
                None
            } else if params
                .as_deref()
                .is_some_and(|p| p == ED25519_OID || p == ED25519_NAME)
            {
                Some("an Ed25519 signing key".into())
            } else {
                Some("an Edwards key on another curve".into())
            }
        }
        Some(k) => Some(format!("key type {k}")),
        None => Some("it has no key type".into()),
    }
}

/// X25519(key, `peer`) in the token: `CKM_ECDH1_DERIVE` with no KDF into an extractable
/// session object, whose value is read and which is then destroyed. The caller checks for the
/// all-zero result.
pub fn derive(session: &Session, key: ObjectHandle, peer: &[u8; 32]) -> Result<Secret, CkError> {
    let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(32.into()),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let secret = session.derive_key(&Mechanism::Ecdh1Derive(params), key, &template)?;
    let read = session.get_attributes(secret, &[AttributeType::Value]);
    if let Err(e) = session.destroy_object(secret) {
        log::warn!(
            "pkcs11: cannot destroy a derived session object: {}",
            rv_text(&e)
        );
    }
    let mut out = Secret::new([0u8; 32]);
    let mut found = false;
    for a in read? {
        if let Attribute::Value(mut v) = a {
            if v.len() == 32 {
                out.copy_from_slice(&v);
                found = true;
            }
            v.zeroize();
        }
    }
    if found {
        Ok(out)
    } else {
        Err(CkError::Pkcs11(
            RvError::KeySizeRange,
            cryptoki::context::Function::GetAttributeValue,
        ))
    }
}

/// The public key of `key`: X25519(key, 9), computed by the token.
pub fn public_key(
    session: &Session,
    key: ObjectHandle,
    token: &str,
) -> Result<[u8; 32], Pkcs11Error> {
    let pk = derive(session, key, &BASEPOINT).map_err(token_err(token, "C_DeriveKey"))?;
    Ok(*pk)
}

/// A session that is closed on drop only if its module was not reinitialised since it was
/// opened (session handles of an earlier generation may name another key's session now).
struct OwnedSession {
    session: Option<Session>,
    module: PathBuf,
    generation: u64,
}

impl Drop for OwnedSession {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            if generation(&self.module) == self.generation {
                let _ = s.close();
            }
        }
    }
}

/// A logged-in session holding the URI's key.
pub struct Conn {
    owned: OwnedSession,
    /// The private key.
    pub key: ObjectHandle,
    /// The token label.
    pub token: String,
}

impl Conn {
    /// The session.
    pub fn session(&self) -> &Session {
        session_of(&self.owned)
    }

    /// The module file and the generation the session was opened in.
    pub fn module(&self) -> (&Path, u64) {
        (&self.owned.module, self.owned.generation)
    }
}

fn session_of(o: &OwnedSession) -> &Session {
    // Invariant: `session` is only taken in `drop`.
    o.session.as_ref().expect("session present until drop")
}

/// What a session is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Using a key: read-only, and closed by [`Conn`] only while its module generation lasts.
    Use,
    /// Creating, reading or deleting objects: read-write, closed on drop.
    Manage,
}

/// Checks that the URI names a key, finds its token and opens a session on it.
pub fn open_session(uri: &Pkcs11Uri, access: Access) -> Result<(FoundToken, Session), Pkcs11Error> {
    check_names_key(uri)?;
    let t = find_token(uri)?;
    let opened = match access {
        Access::Use => t.ctx.open_ro_session_no_drop(t.slot),
        Access::Manage => t.ctx.open_rw_session(t.slot),
    };
    let session = opened.map_err(token_err(&t.label, "C_OpenSession"))?;
    Ok((t, session))
}

/// Opens a session on the URI's token, logs in with `pin` and finds the key.
pub fn connect(uri: &Pkcs11Uri, pin: Option<&AuthPin>) -> Result<Conn, Pkcs11Error> {
    let (t, session) = open_session(uri, Access::Use)?;
    let owned = OwnedSession {
        session: Some(session),
        module: t.path,
        generation: t.generation,
    };
    login(session_of(&owned), pin, &t.label)?;
    let key = find_key(session_of(&owned), uri, &t.label, pin.is_some())?;
    Ok(Conn {
        owned,
        key,
        token: t.label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_parameters_are_the_der_encodings() {
        // OBJECT IDENTIFIER 1.3.101.110 and PrintableString "curve25519".
        assert_eq!(X25519_OID, [6, 3, 43, 101, 110]);
        assert_eq!(&X25519_NAME[..2], &[0x13, 10]);
        assert_eq!(&X25519_NAME[2..], b"curve25519");
        assert_eq!(&ED25519_NAME[2..], b"edwards25519");
    }

    #[test]
    fn module_lookup_errors_are_specific() {
        let uri = Pkcs11Uri::parse("pkcs11:object=k").unwrap();
        assert_eq!(module_file(&uri), Err(Pkcs11Error::NoModule));
        let uri = Pkcs11Uri::parse("pkcs11:object=k?module-name=no-such-module-xyz").unwrap();
        assert!(matches!(
            module_file(&uri),
            Err(Pkcs11Error::ModuleNotFound { .. })
        ));
        let uri = Pkcs11Uri::parse("pkcs11:object=k?module-path=/nonexistent/x.so").unwrap();
        let e = connect(&uri, None).err().unwrap();
        assert!(matches!(e, Pkcs11Error::ModuleLoad { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/x.so"), "{e}");
    }

    /// A directory under the system's temporary directory, removed on drop.
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(tag: &str, mode: u32) -> Dir {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("ferrowg-token-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
        Dir(d)
    }

    #[test]
    fn modules_in_writable_places_are_refused_before_loading() {
        use std::os::unix::fs::PermissionsExt;
        let open = dir("open", 0o1777);
        // Not a library: were it loaded, the error would be a loader error (ModuleLoad).
        let fake = open.0.join("evil.so");
        std::fs::write(&fake, b"not a library").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = open.0.join("link.so");
        std::os::unix::fs::symlink("/usr/lib/softhsm/libsofthsm2.so", &link).unwrap();
        for file in [&fake, &link] {
            let uri = format!("pkcs11:object=k?module-path={}", file.display());
            let e = connect(&Pkcs11Uri::parse(&uri).unwrap(), None)
                .err()
                .unwrap();
            match &e {
                Pkcs11Error::UntrustedModule { offender, mode, .. } => {
                    assert_eq!(offender, &open.0, "{e}");
                    assert_eq!(*mode, 0o1777, "{e}");
                }
                other => panic!("{file:?}: {other:?}"),
            }
            let msg = e.to_string();
            assert!(msg.contains(&open.0.display().to_string()), "{msg}");
            assert!(msg.contains("chmod go-w"), "{msg}");
            assert_eq!(generation(file), 0, "never loaded");
        }
        // A module file that its group may write is refused by name.
        let closed = dir("closed", 0o700);
        let module = closed.0.join("m.so");
        std::fs::write(&module, b"x").unwrap();
        std::fs::set_permissions(&module, std::fs::Permissions::from_mode(0o664)).unwrap();
        match trusted_module(&module) {
            Err(Pkcs11Error::UntrustedModule { offender, .. }) => assert_eq!(offender, module),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pin_files_are_held_to_the_key_file_rule() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("pin", 0o700);
        let pin = d.0.join("pin");
        crate::keyfile::write_private_file(&pin, b"1234\n").unwrap();
        let uri = Pkcs11Uri::parse(&format!(
            "pkcs11:object=k?pin-source=file:{}",
            pin.display()
        ))
        .unwrap();
        assert!(read_pin(&uri).unwrap().is_some());
        std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_pin(&uri).err().unwrap();
        assert!(matches!(e, Pkcs11Error::PinSource { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("chmod 600") && msg.contains("0644"), "{msg}");
        assert!(!msg.contains("1234"), "{msg}");
    }

    #[test]
    fn system_modules_are_trusted() {
        let softhsm = Path::new("/usr/lib/softhsm/libsofthsm2.so");
        if softhsm.exists() {
            let real = trusted_module(softhsm).unwrap();
            assert_eq!(real, std::fs::canonicalize(softhsm).unwrap());
        }
        let proc_owner = std::fs::metadata("/proc/self").unwrap().uid();
        assert_eq!(effective_uid(), Some(proc_owner));
    }

    #[test]
    fn a_key_uri_must_name_a_private_key() {
        let u = |s| Pkcs11Uri::parse(s).unwrap();
        assert_eq!(
            check_names_key(&u("pkcs11:token=t")),
            Err(Pkcs11Error::NoObjectName)
        );
        assert_eq!(
            check_names_key(&u("pkcs11:object=k;type=cert")),
            Err(Pkcs11Error::WrongType("cert"))
        );
        assert!(check_names_key(&u("pkcs11:id=%01")).is_ok());
        assert!(check_names_key(&u("pkcs11:object=k;type=private")).is_ok());
    }
}
