//! Key commands and key sources of the command line.
//!
//! - `ferrowg genkey --pkcs11 URI`: a new non-extractable, sensitive X25519 key in a token;
//!   prints its public key.
//! - `ferrowg pubkey --pkcs11 URI`: the public key of a key in a token.
//! - `ferrowg key rotate IFACE [--pkcs11 URI | --file PATH]`: a new key (in a token or a file),
//!   switched to on the running interface without a restart; prints the new public key.
//! - `ferrowg key import --pkcs11 URI < KEYFILE`: moves an existing `wg genkey` key into a token.
//! - Private key files for the software provider ([`read_private_key_file`]): refused when the
//!   group or others may access them (wg(8) only warns), read into memory that is zeroed.
//!
//! A URI on the command line is checked here, in the CLI, by opening the key the way the
//! daemon will, so a wrong PIN, a missing module or a missing object is reported with the
//! exact cause before the interface is touched.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use super::{client, CliError};
use ferrowg_conf::config::Config;
use ferrowg_conf::uapi::{DeviceState, InterfaceOp, SetRequest};
use ferrowg_conf::uapi::{UAPI_KEY_PUBLIC, UAPI_KEY_URI};
use ferrowg_keys::key::{PrivateKey, PublicKey};
use ferrowg_keys::pkcs11::{manage, Pkcs11Error, Pkcs11Key, Pkcs11Uri};
use ferrowg_proto::crypto::StaticKey as _;

/// Usage of `ferrowg key`.
pub const KEY_USAGE: &str = "Usage: ferrowg key rotate <interface> [--pkcs11 <URI> | --file <path>]
       ferrowg key import --pkcs11 <URI> < <private key file>
       ferrowg key info --pkcs11 <URI>";

/// Reads a private key file for the software provider: base64 as `wg genkey` writes it.
/// `-` and `/dev/stdin` read standard input. A regular file that its group or others may
/// access is refused (wg(8) only warns); the bytes read are zeroed after parsing.
pub fn read_private_key_file(path: &str) -> Result<PrivateKey, CliError> {
    use std::os::unix::fs::PermissionsExt;
    let mut buf = Zeroizing::new(Vec::new());
    if path == "-" || path == "/dev/stdin" {
        std::io::stdin()
            .lock()
            .take(4096)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::new(format!("{path}: {e}")))?;
    } else {
        let mut f = std::fs::File::open(path).map_err(|e| CliError::new(format!("{path}: {e}")))?;
        let meta = f
            .metadata()
            .map_err(|e| CliError::new(format!("{path}: {e}")))?;
        let mode = meta.permissions().mode();
        if meta.is_file() && mode & 0o077 != 0 {
            return Err(CliError::new(format!(
                "`{path}' is accessible by its group or others (mode {:04o}): a private key \
                 file must be private to its owner; run chmod 600 {path}",
                mode & 0o7777
            )));
        }
        Read::by_ref(&mut f)
            .take(4096)
            .read_to_end(&mut buf)
            .map_err(|e| CliError::new(format!("{path}: {e}")))?;
    }
    let text = std::str::from_utf8(&buf).map_err(|_| bad_key(path))?;
    PrivateKey::from_base64(text.trim()).map_err(|_| bad_key(path))
}

fn bad_key(path: &str) -> CliError {
    CliError::new(format!("Key is not the correct length or format: `{path}'"))
}

/// Writes `key` in base64 to `path`, mode 0600, replacing the file atomically.
pub fn write_private_key_file(path: &Path, key: &PrivateKey) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| CliError::new(format!("{}: {e}", path.display()));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let b64 = Zeroizing::new(key.to_base64());
    let text = Zeroizing::new(format!("{}\n", b64.as_str()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let written = f.write_all(text.as_bytes()).and_then(|()| f.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

/// Parses a URI given on the command line or in a file, and makes its file names absolute
/// (the daemon runs with another working directory).
pub fn parse_uri_arg(text: &str) -> Result<Pkcs11Uri, CliError> {
    let mut uri =
        Pkcs11Uri::parse(text).map_err(|e| CliError::new(format!("Invalid PKCS#11 URI: {e}")))?;
    if let Ok(cwd) = std::env::current_dir() {
        uri.absolutize(&cwd);
    }
    Ok(uri)
}

fn pkcs11_err(e: Pkcs11Error) -> CliError {
    CliError::new(format!("PKCS#11 private key: {e}"))
}

/// Opens the key the URI names, as the daemon will, and returns its public key: the check
/// that makes `set`, `setconf` and `up` fail with the exact cause.
pub fn check_token_key(uri: &Pkcs11Uri) -> Result<PublicKey, CliError> {
    let key = Pkcs11Key::open(uri).map_err(pkcs11_err)?;
    Ok(PublicKey::from_bytes(key.public_key()))
}

/// A configuration whose `PrivateKey` is a PKCS#11 URI, with the URI's file names made
/// absolute and the key checked by opening it; other configurations unchanged.
pub fn config_with_checked_key(cfg: &Config) -> Result<Cow<'_, Config>, CliError> {
    let Some(uri) = &cfg.interface.private_key_uri else {
        return Ok(Cow::Borrowed(cfg));
    };
    let mut uri = uri.clone();
    if let Ok(cwd) = std::env::current_dir() {
        uri.absolutize(&cwd);
    }
    check_token_key(&uri)?;
    let mut owned = cfg.clone();
    owned.interface.private_key_uri = Some(uri);
    Ok(Cow::Owned(owned))
}

/// `ferrowg genkey --pkcs11 URI`.
pub fn genkey(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    let public = manage::generate(&uri).map_err(pkcs11_err)?;
    println!("{}", PublicKey::from_bytes(public));
    Ok(())
}

/// `ferrowg pubkey --pkcs11 URI`.
pub fn pubkey(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    println!("{}", check_token_key(&uri)?);
    Ok(())
}

/// `ferrowg key …`.
pub fn key_cmd(args: &[&str]) -> Result<(), CliError> {
    match args {
        ["rotate", iface, opts @ ..] => rotate(iface, opts),
        ["import", "--pkcs11", uri] => import(uri),
        ["info", "--pkcs11", uri] => info(uri),
        _ => Err(CliError::new(KEY_USAGE)),
    }
}

/// `ferrowg key import --pkcs11 URI`: reads a base64 private key from standard input and
/// stores it in the token as a sensitive, non-extractable key; prints its public key.
fn import(uri_text: &str) -> Result<(), CliError> {
    let uri = parse_uri_arg(uri_text)?;
    let key = read_private_key_file("-")?;
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
}

/// Reads what key `iface` runs with (ferrowg's `get=1` extension lines included).
pub fn running_key(iface: &str) -> Result<RunningKey, CliError> {
    let raw = client::get_raw(iface)?;
    let state = ferrowg_conf::uapi::client::parse_get_response(&raw)
        .map_err(|e| CliError::new(format!("Unable to access interface {iface}: {e}")))?;
    let mut out = RunningKey {
        public: state.public_key(),
        software: state.private_key.is_some(),
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

/// `wg showconf` for `iface` (whose state is `state`), with `PrivateKey = pkcs11:…` when the
/// key is in a token, so that the output can be applied again. The daemon never reports a
/// `pin-value`; when `config` names the same key, its URI (PIN included) is used instead, as
/// `SaveConfig` needs.
pub fn showconf(iface: &str, state: &DeviceState, config: Option<&Config>) -> String {
    let mut cfg = Config::from(state);
    if state.private_key.is_none() {
        if let Ok(RunningKey {
            uri: Some(running), ..
        }) = running_key(iface)
        {
            let from_file = config
                .and_then(|c| c.interface.private_key_uri.as_ref())
                .filter(|u| u.to_string() == running.to_string());
            cfg.interface.private_key_uri = Some(from_file.cloned().unwrap_or(running));
        }
    }
    cfg.to_wg_conf()
}

/// Where `key rotate` puts the new key.
enum Target {
    Token(Box<Pkcs11Uri>),
    File(std::path::PathBuf),
}

/// `ferrowg key rotate IFACE [--pkcs11 URI | --file PATH]`: makes a new key, switches the
/// running interface to it (sessions keep running; a handshake with the new key starts at
/// once and is retried until the peers know it), prints the new public key.
///
/// Without an option, an interface whose key is in a token gets a new key in the same token,
/// labelled `<object>-r<unix time>`; the old key stays in the token. An interface with a key
/// in memory needs `--file` (where to keep the new key) or `--pkcs11`.
pub fn rotate(iface: &str, opts: &[&str]) -> Result<(), CliError> {
    let running = running_key(iface)?;
    let target = match opts {
        ["--pkcs11", uri] => Target::Token(Box::new(parse_uri_arg(uri)?)),
        ["--file", path] => Target::File(std::path::PathBuf::from(path)),
        [] => match &running.uri {
            Some(uri) if uri.pin.is_some() => {
                Target::Token(Box::new(rotated_uri(uri, unix_secs())))
            }
            Some(_) => {
                return Err(CliError::new(
                    "the running key's URI has no pin-source (a pin-value is not reported by \
                     the daemon): give the new key's URI with --pkcs11",
                ))
            }
            None => {
                return Err(CliError::new(format!(
                    "{iface}'s key is not in a token: give --file PATH (where to keep the new \
                     key) or --pkcs11 URI\n{KEY_USAGE}"
                )))
            }
        },
        _ => return Err(CliError::new(KEY_USAGE)),
    };
    let (req, public, note) = match target {
        Target::Token(uri) => {
            let (uri, public) = generate_free(*uri, opts.is_empty())?;
            let note = format!(
                "{iface}: now using {uri}; the previous key stays where it was. Update \
                 PrivateKey in the configuration file."
            );
            (InterfaceOp::PrivateKeyUri(Box::new(uri)), public, note)
        }
        Target::File(path) => {
            let key = PrivateKey::generate()
                .map_err(|e| CliError::new(format!("Unable to generate a key: {e}")))?;
            write_private_key_file(&path, &key)?;
            let public = key.public_key();
            let note = format!("{iface}: now using the key in {}", path.display());
            (InterfaceOp::PrivateKey(Some(key)), public, note)
        }
    };
    let req = SetRequest {
        interface: vec![req],
        peers: Vec::new(),
    };
    client::set(iface, &req)?;
    eprintln!("{note}");
    if let Some(old) = running.public {
        eprintln!("{iface}: old public key {old}; tell the peers the new one");
    }
    println!("{public}");
    Ok(())
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

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ferrowg-keycmd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn key_files_must_be_private() {
        let d = tmpdir("perm");
        let path = d.join("k");
        let key = PrivateKey::from_bytes([0x41; 32]);
        write_private_key_file(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let p = path.to_str().unwrap();
        assert_eq!(read_private_key_file(p).unwrap(), key);
        for bad in [0o640, 0o604, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
            let e = read_private_key_file(p).unwrap_err().0;
            assert!(
                e.contains("chmod 600") && e.contains(&format!("{bad:04o}")),
                "{e}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_private_key_file(p).unwrap(), key);
        std::fs::write(d.join("bad"), "not a key\n").unwrap();
        std::fs::set_permissions(d.join("bad"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_private_key_file(d.join("bad").to_str().unwrap())
            .unwrap_err()
            .0;
        assert!(e.contains("not the correct length or format"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
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
