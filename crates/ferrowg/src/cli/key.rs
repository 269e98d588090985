//! Key commands of the command line and the key checks the wg commands share.
//!
//! - `ferrowg genkey`, `genpsk`, `pubkey`: wg(8)'s software keys, same output and messages.
//! - `ferrowg genkey --pkcs11 URI`: a new non-extractable, sensitive X25519 key in a token;
//!   prints its public key.
//! - `ferrowg pubkey --pkcs11 URI`: the public key of a key in a token.
//! - `ferrowg key rotate IFACE [--pkcs11 URI | --file PATH]`: a new key (in a token or a file),
//!   switched to on the running interface without a restart; prints the new public key.
//! - `ferrowg key import --pkcs11 URI < KEYFILE`: moves an existing `wg genkey` key into a token.
//! - `ferrowg key info --pkcs11 URI`: a token key's public key and protection attributes.
//!
//! Private key files are read and written by `ferrowg_keys::keyfile` (the one strict reader:
//! group- or world-accessible files are refused). A URI on the command line is checked here,
//! in the CLI, by opening the key the way the daemon will, so a wrong PIN, a missing module or
//! a missing object is reported with the exact cause before the interface is touched.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{client, invalid_subcommand, out, unix_now, CliError};
use ferrowg_conf::config::Config;
use ferrowg_conf::uapi::{InterfaceOp, SetRequest};
use ferrowg_conf::uapi::{FEATURE_KEEP_SESSIONS, UAPI_KEY_PUBLIC, UAPI_KEY_URI};
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};
use ferrowg_keys::keyfile::{read_private_key, write_private_key};
use ferrowg_keys::pkcs11::{manage, Pkcs11Error, Pkcs11Key, Pkcs11Uri};

/// Usage of `ferrowg key`.
pub const KEY_USAGE: &str = "Usage: ferrowg key rotate <interface> [--pkcs11 <URI> | --file <path>]
       ferrowg key rotate <interface> [--config-dir <dir>] [--if-due]   (a device enrolled in a hub)
       ferrowg key import --pkcs11 <URI> < <private key file>
       ferrowg key info --pkcs11 <URI>";

/// Why a URI on the command line may not carry its PIN.
pub const PIN_VALUE_ON_COMMAND_LINE: &str = "Invalid PKCS#11 URI: pin-value= is not accepted on \
     the command line, where every user can read it (/proc/PID/cmdline): put the PIN in a file \
     only you can read (chmod 600) and give pin-source=file:/path/to/pin instead (a \
     configuration file may keep pin-value=)";

/// Parses a URI given on the command line and makes its file names absolute (the daemon runs
/// with another working directory). A URI with `pin-value` is refused: see
/// [`PIN_VALUE_ON_COMMAND_LINE`].
pub fn parse_uri_arg(text: &str) -> Result<Pkcs11Uri, CliError> {
    let mut uri =
        Pkcs11Uri::parse(text).map_err(|e| CliError::new(format!("Invalid PKCS#11 URI: {e}")))?;
    if uri.has_pin_value() {
        return Err(CliError::new(PIN_VALUE_ON_COMMAND_LINE));
    }
    absolutize(&mut uri);
    Ok(uri)
}

/// Makes the URI's file names absolute against this process's working directory: the daemon
/// that opens them runs in another one.
fn absolutize(uri: &mut Pkcs11Uri) {
    if let Ok(cwd) = std::env::current_dir() {
        uri.absolutize(&cwd);
    }
}

fn pkcs11_err(e: Pkcs11Error) -> CliError {
    CliError::new(format!("PKCS#11 private key: {e}"))
}

/// Opens the key the URI names, as the daemon will, and returns its public key: the check
/// that makes `set`, `setconf` and `up` fail with the exact cause.
pub fn check_token_key(uri: &Pkcs11Uri) -> Result<PublicKey, CliError> {
    let key = Pkcs11Key::open(uri).map_err(pkcs11_err)?;
    Ok(key.public())
}

/// A configuration whose `PrivateKey` is a PKCS#11 URI, with the URI's file names made
/// absolute and the key checked by opening it; other configurations unchanged.
pub fn config_with_checked_key(cfg: &Config) -> Result<Cow<'_, Config>, CliError> {
    let Some(uri) = &cfg.interface.private_key_uri else {
        return Ok(Cow::Borrowed(cfg));
    };
    let mut uri = uri.clone();
    absolutize(&mut uri);
    check_token_key(&uri)?;
    let mut owned = cfg.clone();
    owned.interface.private_key_uri = Some(uri);
    Ok(Cow::Owned(owned))
}

/// `ferrowg genkey`, `genpsk` and `pubkey` (with or without `--pkcs11 URI`), and
/// `ferrowg key …`.
pub fn command(cmd: &str, args: &[&str]) -> Result<(), CliError> {
    match (cmd, args) {
        ("genkey", ["--pkcs11", uri]) => genkey_in_token(uri),
        ("pubkey", ["--pkcs11", uri]) => pubkey_of_token_key(uri),
        ("key", ["rotate", iface, opts @ ..]) => rotate(iface, opts),
        ("key", ["import", "--pkcs11", uri]) => import(uri),
        ("key", ["info", "--pkcs11", uri]) => info(uri),
        ("key", _) => Err(CliError::new(KEY_USAGE)),
        ("genkey", []) => {
            warn_world_readable_stdout();
            let k = PrivateKey::generate().map_err(generate_err)?;
            out(&format!("{}\n", k.to_base64()))
        }
        ("genpsk", []) => {
            warn_world_readable_stdout();
            let k = PresharedKey::generate().map_err(generate_err)?;
            out(&format!("{}\n", k.to_base64()))
        }
        ("pubkey", []) => pubkey(),
        _ => Err(invalid_subcommand(cmd)),
    }
}

fn generate_err(e: impl std::fmt::Display) -> CliError {
    CliError::new(format!("Unable to generate a key: {e}"))
}

/// wg genkey's warning when its output goes to a file others can read.
fn warn_world_readable_stdout() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(m) = std::fs::metadata("/proc/self/fd/1") {
        if m.is_file() && !m.file_type().is_fifo() && m.permissions().mode() & 0o007 != 0 {
            eprintln!("Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.");
        }
    }
}

/// `ferrowg pubkey`: a private key on standard input, read as wg does, to its public key.
fn pubkey() -> Result<(), CliError> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(1 << 16)
        .read_to_end(&mut input)
        .map_err(|e| CliError::new(e.to_string()))?;
    let key = PrivateKey::from_base64_input(&input)
        .map_err(|_| CliError::new("pubkey: Key is not the correct length or format"))?;
    out(&format!("{}\n", key.public_key()))
}

/// `ferrowg genkey --pkcs11 URI`.
fn genkey_in_token(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    let public = manage::generate(&uri).map_err(pkcs11_err)?;
    println!("{}", PublicKey::from_bytes(public));
    Ok(())
}

/// `ferrowg pubkey --pkcs11 URI`.
fn pubkey_of_token_key(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    println!("{}", check_token_key(&uri)?);
    Ok(())
}

/// `ferrowg key import --pkcs11 URI`: reads a base64 private key from standard input and
/// stores it in the token as a sensitive, non-extractable key; prints its public key.
fn import(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    let key = read_private_key(Path::new("-"))?;
    let public = manage::import(&uri, key.as_bytes()).map_err(pkcs11_err)?;
    if public != *key.public_key().as_bytes() {
        return Err(CliError::new(
            "PKCS#11 private key: the token computes a different public key for the imported key",
        ));
    }
    println!("{}", PublicKey::from_bytes(public));
    Ok(())
}

/// `ferrowg key info --pkcs11 URI`: the key's public key and protection attributes.
fn info(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    let public = check_token_key(&uri)?;
    let a = manage::key_attributes(&uri).map_err(pkcs11_err)?;
    let b = |v: Option<bool>| v.map_or("unknown".to_owned(), |v| v.to_string());
    println!("public key: {public}");
    println!("key type: {}", a.key_type);
    println!("sensitive: {}", b(a.sensitive));
    println!("extractable: {}", b(a.extractable));
    println!("always sensitive: {}", b(a.always_sensitive));
    println!("never extractable: {}", b(a.never_extractable));
    println!("generated on the token: {}", b(a.local));
    match a.value_read {
        Ok(()) => println!("private value: READABLE (the key is not protected)"),
        Err(e) => println!("private value: not readable ({e})"),
    }
    Ok(())
}

/// What an interface's private key is, from its `get=1` reply.
#[derive(Debug, Clone, Default)]
pub struct RunningKey {
    /// The token key's URI (without a `pin-value`: the daemon does not report it).
    pub uri: Option<Pkcs11Uri>,
    /// The public key, when there is a private key.
    pub public: Option<PublicKey>,
    /// The key is in memory (`private_key=` was reported).
    pub software: bool,
    /// The daemon keeps sessions across a key change when asked (a ferrowg daemon).
    pub keeps_sessions: bool,
}

/// Reads what key `iface` runs with (ferrowg's `get=1` extension lines included).
pub fn running_key(iface: &str) -> Result<RunningKey, CliError> {
    let raw = client::get_raw(iface)?;
    let state = ferrowg_conf::uapi::reply::parse_get_response(&raw)
        .map_err(|e| CliError::new(format!("Unable to access interface {iface}: {e}")))?;
    let mut out = RunningKey {
        public: state.public_key(),
        software: state.private_key.is_some(),
        keeps_sessions: ferrowg_conf::uapi::announces(&raw, FEATURE_KEEP_SESSIONS),
        ..RunningKey::default()
    };
    for line in raw.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if line.starts_with("public_key=") {
            break;
        }
        if let Some(v) = line
            .strip_prefix(UAPI_KEY_URI)
            .and_then(|r| r.strip_prefix('='))
        {
            out.uri = Pkcs11Uri::parse(v).ok();
        }
        if let Some(v) = line
            .strip_prefix(UAPI_KEY_PUBLIC)
            .and_then(|r| r.strip_prefix('='))
        {
            out.public = PublicKey::from_hex(v).ok();
        }
    }
    Ok(out)
}

/// Where `key rotate` puts the new key.
enum Target {
    Token(Box<Pkcs11Uri>),
    File(PathBuf),
}

/// A new key, switched to by a `set=1` request.
struct NewKey {
    /// The request's interface operation.
    op: InterfaceOp,
    /// Its public key.
    public: PublicKey,
    /// What to tell the user about where the key is.
    note: String,
}

/// `ferrowg key rotate IFACE [--pkcs11 URI | --file PATH]`: makes a new key, switches the
/// running interface to it (sessions keep running; a handshake with the new key starts at
/// once and is retried until the peers know it), prints the new public key.
///
/// Without an option, an interface whose key is in a token gets a new key in the same token,
/// labelled `<object>-r<unix time>`; the old key stays in the token. An interface with a key
/// in memory needs `--file` (where to keep the new key) or `--pkcs11`.
///
/// (An interface made by `ferrowg enroll` is rotated by [`super::enroll::rotate_command`].)
pub fn rotate(iface: &str, opts: &[&str]) -> Result<(), CliError> {
    let running = running_key(iface)?;
    if !running.keeps_sessions {
        return Err(CliError::new(format!(
            "{iface}: its daemon cannot switch keys without dropping the sessions (it is not \
             ferrowg); use `wg set {iface} private-key FILE` instead"
        )));
    }
    let new = match rotation_target(iface, opts, &running)? {
        Target::Token(uri) => {
            let (uri, public) = generate_free(*uri, opts.is_empty())?;
            let note = format!(
                "{iface}: now using {uri}; the previous key stays where it was. Update \
                 PrivateKey in the configuration file."
            );
            NewKey {
                op: InterfaceOp::PrivateKeyUri(Box::new(uri)),
                public,
                note,
            }
        }
        Target::File(path) => {
            let key = PrivateKey::generate().map_err(generate_err)?;
            write_private_key(&path, &key)?;
            NewKey {
                public: key.public_key(),
                note: format!("{iface}: now using the key in {}", path.display()),
                op: InterfaceOp::PrivateKey(Some(key)),
            }
        }
    };
    let req = SetRequest {
        interface: vec![new.op, InterfaceOp::KeepSessions],
        peers: Vec::new(),
    };
    client::set(iface, &req)?;
    eprintln!("{}", new.note);
    if let Some(old) = running.public {
        eprintln!("{iface}: old public key {old}; tell the peers the new one");
    }
    println!("{}", new.public);
    Ok(())
}

/// Where the rotated key goes: the option given, else the running key's token.
fn rotation_target(iface: &str, opts: &[&str], running: &RunningKey) -> Result<Target, CliError> {
    match opts {
        ["--pkcs11", uri] => Ok(Target::Token(Box::new(parse_uri_arg(uri)?))),
        ["--file", path] => Ok(Target::File(PathBuf::from(path))),
        [] => match &running.uri {
            Some(uri) if uri.pin.is_some() => {
                Ok(Target::Token(Box::new(rotated_uri(uri, unix_now()))))
            }
            Some(_) => Err(CliError::new(
                "the running key's URI has no pin-source (a pin-value is not reported by \
                 the daemon): give the new key's URI with --pkcs11",
            )),
            None => Err(CliError::new(format!(
                "{iface}'s key is not in a token: give --file PATH (where to keep the new \
                 key) or --pkcs11 URI\n{KEY_USAGE}"
            ))),
        },
        _ => Err(CliError::new(KEY_USAGE)),
    }
}

/// Generates the key, moving to `-1`, `-2`, … suffixes when `retry` and the label is taken.
fn generate_free(uri: Pkcs11Uri, retry: bool) -> Result<(Pkcs11Uri, PublicKey), CliError> {
    let mut candidate = uri.clone();
    for n in 1..=20 {
        match manage::generate(&candidate) {
            Ok(pk) => return Ok((candidate, PublicKey::from_bytes(pk))),
            Err(Pkcs11Error::Exists { .. }) if retry => {
                let base = uri.object.clone().unwrap_or_default();
                candidate.object = Some(format!("{base}-{n}"));
            }
            Err(e) => return Err(pkcs11_err(e)),
        }
    }
    Err(CliError::new(
        "PKCS#11 private key: no free label for the new key",
    ))
}

/// The URI of the next key in the same token: label `<base>-r<secs>` (a previous `-r<digits>`
/// suffix replaced), no id (a fresh one is made).
pub fn rotated_uri(current: &Pkcs11Uri, secs: u64) -> Pkcs11Uri {
    let mut u = current.clone();
    let label = current.object.as_deref().unwrap_or("wireguard");
    let base = match label.rsplit_once("-r") {
        Some((b, digits))
            if !b.is_empty()
                && !digits.is_empty()
                && digits.bytes().all(|c| c.is_ascii_digit()) =>
        {
            b
        }
        _ => label,
    };
    u.object = Some(format!("{base}-r{secs}"));
    u.id = None;
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_values_on_the_command_line_are_refused() {
        let e = parse_uri_arg("pkcs11:object=k?pin-value=4321&module-path=/m.so").unwrap_err();
        let msg = e.0;
        assert!(msg.contains("pin-source"), "{msg}");
        assert!(!msg.contains("4321"), "{msg}");
        // Every command that takes a URI refuses it before touching a token.
        for (cmd, args) in [
            (
                "genkey",
                &["--pkcs11", "pkcs11:object=k?pin-value=4321"][..],
            ),
            (
                "pubkey",
                &["--pkcs11", "pkcs11:object=k?pin-value=4321"][..],
            ),
            (
                "key",
                &["import", "--pkcs11", "pkcs11:object=k?pin-value=4321"][..],
            ),
            (
                "key",
                &["info", "--pkcs11", "pkcs11:object=k?pin-value=4321"][..],
            ),
        ] {
            let msg = command(cmd, args).unwrap_err().0;
            assert!(msg.contains("pin-source"), "{cmd} {args:?}: {msg}");
        }
        assert!(parse_uri_arg("pkcs11:object=k?pin-source=file:/p&module-path=/m.so").is_ok());
    }

    #[test]
    fn rotated_labels() {
        let u = Pkcs11Uri::parse("pkcs11:token=t;object=wg0;id=%01?pin-source=/p").unwrap();
        let r = rotated_uri(&u, 1700000000);
        assert_eq!(r.object.as_deref(), Some("wg0-r1700000000"));
        assert_eq!(r.id, None);
        assert_eq!(r.pin, u.pin);
        assert_eq!(rotated_uri(&r, 5).object.as_deref(), Some("wg0-r5"));
        let odd = Pkcs11Uri::parse("pkcs11:object=a-rx").unwrap();
        assert_eq!(rotated_uri(&odd, 5).object.as_deref(), Some("a-rx-r5"));
    }
}
