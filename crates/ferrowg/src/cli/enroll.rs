//! `ferrowg enroll TOKEN --iface IFACE`: joins a ferrowg hub with an enrolment token. The device
//! makes its own key (in a file, or inside a PKCS#11 token or secure element), sends only the
//! public key over the API the token names (TLS pinned to the certificate the token carries),
//! and writes `DIR/IFACE.conf` in wg-quick format with the addresses, the hub's endpoint and
//! key and the routes it got; `PrivateKey` is the key itself or the `pkcs11:` URI. Then it
//! brings the interface up as `ferrowg up` does (not with `--no-up`).
//!
//! The configuration also names the hub's device API inside the tunnel (a comment, which
//! wg-quick ignores: `ferrowg_hub::wgconf`), where `ferrowg key rotate` announces a new key.
//! `ferrowg key rotate IFACE --if-due` first asks the hub whether the key is older than the
//! hub's schedule (`rotate_after`) and rotates only then: run it from a timer (the systemd
//! units in `dist/systemd/`) and devices rotate on schedule.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Parser;
use ferrowg_hub::api::types::EnrollRequest;
use ferrowg_hub::client::Client;
use ferrowg_hub::wgconf::{render, HUB_API_COMMENT};
use ferrowg_keys::key::{PrivateKey, PublicKey};
use ferrowg_keys::pkcs11::{manage, Pkcs11Error, Pkcs11Key};
use zeroize::Zeroizing;

use super::key::{parse_uri_arg, rotated_uri, running_key};
use super::{client, quick, unix_now, CliError};
use ferrowg_conf::uapi::{InterfaceOp, SetRequest};
use ferrowg_keys::pkcs11::Pkcs11Uri;

/// `ferrowg enroll`'s arguments.
#[derive(Debug, Parser)]
#[command(
    name = "ferrowg enroll",
    about = "Joins a ferrowg hub with an enrolment token: makes the device's key locally, \
             writes IFACE.conf and brings the interface up"
)]
struct Args {
    /// The enrolment token (`fwg1.…`) from `ferrowg hub token create`.
    token: String,
    /// The interface to create.
    #[arg(long)]
    iface: String,
    /// The device's name in the hub (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Make the key inside a PKCS#11 token (or secure element) at this URI; the key never
    /// leaves it. A PIN is given with `pin-source=file:…`.
    #[arg(long, conflicts_with = "key_file")]
    pkcs11: Option<String>,
    /// Also keep the new private key in this file (mode 0600).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Where IFACE.conf goes.
    #[arg(long, default_value = "/etc/wireguard")]
    config_dir: PathBuf,
    /// Subnets behind this device it offers to route (comma-separated).
    #[arg(long, value_delimiter = ',')]
    advertise_routes: Vec<String>,
    /// Only write the configuration; do not bring the interface up.
    #[arg(long)]
    no_up: bool,
}

/// The device's new key: what goes after `PrivateKey =`, and its public key.
struct DeviceKey {
    private_key_line: Zeroizing<String>,
    public: PublicKey,
}

/// Runs `ferrowg enroll ARGS…`.
pub fn command(args: &[&str]) -> Result<(), CliError> {
    let args = match Args::try_parse_from(std::iter::once("enroll").chain(args.iter().copied())) {
        Ok(a) => a,
        Err(e) => return Err(CliError::new(e.to_string().trim_end())),
    };
    if !ferrowg_conf::uapi::valid_iface_name(&args.iface) {
        return Err(CliError::new(format!(
            "Invalid interface name: {}",
            args.iface
        )));
    }
    let conf = args.config_dir.join(format!("{}.conf", args.iface));
    if conf.exists() {
        return Err(CliError::new(format!(
            "{} exists already: this interface is configured (remove it to enrol again)",
            conf.display()
        )));
    }
    let token = ferrowg_hub::token::parse(&args.token)
        .map_err(|e| CliError::new(format!("enrolment token: {e}")))?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => host_name()?,
    };
    let key = make_key(&args)?;
    let req = EnrollRequest {
        token_secret: token.secret().to_string(),
        name,
        public_key: key.public.to_base64(),
        advertise_routes: args.advertise_routes.clone(),
    };
    let client = Client::new(token.api(), token.pin(), None)
        .map_err(|e| CliError::new(format!("hub API {}: {e}", token.api())))?;
    let resp = run_async(client.enroll(&req))?
        .map_err(|e| CliError::new(format!("enrolment refused by {}: {e}", token.api())))?;
    if resp.hub_public_key != token.hub_key().to_base64() {
        return Err(CliError::new(
            "the hub answered with a WireGuard key other than the one in the token: refusing",
        ));
    }
    write_conf(&conf, &render(&resp, Some(&key.private_key_line)))?;
    eprintln!(
        "enrolled as {} ({}), configuration in {}",
        resp.device,
        resp.addresses.join(", "),
        conf.display()
    );
    if args.no_up {
        return Ok(());
    }
    quick::up(&conf.to_string_lossy())
}

/// Makes the device's key: in the token the URI names, else in memory (and in `--key-file`).
fn make_key(args: &Args) -> Result<DeviceKey, CliError> {
    if let Some(uri_text) = &args.pkcs11 {
        let uri = parse_uri_arg(uri_text)?;
        let public = match manage::generate(&uri) {
            Ok(pk) => PublicKey::from_bytes(pk),
            Err(Pkcs11Error::Exists { .. }) => {
                return Err(CliError::new(format!(
                    "{uri_text}: a key with this label exists in the token; name a new one \
                     (object=…) so that no other interface's key is reused"
                )))
            }
            Err(e) => return Err(CliError::new(format!("PKCS#11: {e}"))),
        };
        // Opened as the daemon will open it: a wrong PIN or module fails here, not later.
        Pkcs11Key::open(&uri).map_err(|e| CliError::new(format!("PKCS#11: {e}")))?;
        return Ok(DeviceKey {
            private_key_line: Zeroizing::new(uri_text.clone()),
            public,
        });
    }
    let key = PrivateKey::generate().map_err(|e| CliError::new(format!("key generation: {e}")))?;
    if let Some(path) = &args.key_file {
        ferrowg_keys::keyfile::write_private_key(path, &key)?;
    }
    Ok(DeviceKey {
        private_key_line: Zeroizing::new(key.to_base64()),
        public: key.public_key(),
    })
}

/// Writes the configuration, readable by root only, creating its directory.
fn write_conf(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(format!("{}: {e}", dir.display())))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))
}

/// The host name, as the device's default name.
fn host_name() -> Result<String, CliError> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| CliError::new(format!("cannot read the host name ({e}): give --name")))?;
    Ok(raw.trim().to_ascii_lowercase())
}

/// Runs `f` to completion on a runtime of its own.
pub(crate) fn run_async<F: std::future::Future>(f: F) -> Result<F::Output, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(f))
}

/// Whether `conf` is a configuration made by `ferrowg enroll` (it names a hub's device API).
fn is_enrolled(conf: &Path) -> bool {
    std::fs::read_to_string(conf).is_ok_and(|t| hub_api(&t).is_some())
}

/// The options of `ferrowg key rotate IFACE` on an enrolled device.
struct RotateOpts<'a> {
    /// `--config-dir DIR`.
    dir: Option<&'a str>,
    /// `--if-due`: rotate only when the hub's schedule says the key is due.
    if_due: bool,
}

/// `[--config-dir DIR] [--if-due]` in any order, or `None` for anything else.
fn rotate_opts<'a>(opts: &[&'a str]) -> Option<RotateOpts<'a>> {
    let mut out = RotateOpts {
        dir: None,
        if_due: false,
    };
    let mut rest = opts;
    loop {
        match rest {
            [] => return Some(out),
            ["--config-dir", dir, tail @ ..] if out.dir.is_none() => {
                out.dir = Some(dir);
                rest = tail;
            }
            ["--if-due", tail @ ..] if !out.if_due => {
                out.if_due = true;
                rest = tail;
            }
            _ => return None,
        }
    }
}

/// Whether `ferrowg key rotate IFACE OPTS` is the rotation of an enrolled device: with
/// `--config-dir` or `--if-due` (options only it has), or when `/etc/wireguard/IFACE.conf` was
/// written by `ferrowg enroll`.
pub fn handles_rotation(iface: &str, opts: &[&str]) -> bool {
    match rotate_opts(opts) {
        None => false,
        Some(o) if o.dir.is_some() || o.if_due => true,
        Some(_) => is_enrolled(&Path::new("/etc/wireguard").join(format!("{iface}.conf"))),
    }
}

/// `ferrowg key rotate IFACE [--config-dir DIR] [--if-due]` on an enrolled device (see
/// [`handles_rotation`]): [`rotate`] with its configuration; with `--if-due` only when the hub
/// says the key is older than its schedule (otherwise it says so and changes nothing).
pub fn rotate_command(iface: &str, opts: &[&str]) -> Result<(), CliError> {
    let o = rotate_opts(opts).ok_or_else(|| {
        CliError::new("usage: ferrowg key rotate IFACE [--config-dir DIR] [--if-due]")
    })?;
    let dir = Path::new(o.dir.unwrap_or("/etc/wireguard"));
    let conf = dir.join(format!("{iface}.conf"));
    if !is_enrolled(&conf) {
        return Err(CliError::new(format!(
            "{}: not a configuration made by `ferrowg enroll`",
            conf.display()
        )));
    }
    if o.if_due && !due(iface, &conf)? {
        return Ok(());
    }
    if !running_key(iface)?.keeps_sessions {
        return Err(CliError::new(format!(
            "{iface}: its daemon cannot switch keys without dropping the sessions (it is not \
             ferrowg)"
        )));
    }
    rotate(iface, &conf)
}

/// Asks the hub named in `conf` whether this device's key is due; says on standard error what
/// it found.
fn due(iface: &str, conf: &Path) -> Result<bool, CliError> {
    let text = std::fs::read_to_string(conf)
        .map_err(|e| CliError::new(format!("{}: {e}", conf.display())))?;
    let api = hub_api(&text).unwrap_or_default().to_string();
    let status = run_async(ferrowg_hub::device_api::rotation_status(&api))?
        .map_err(|e| CliError::new(format!("asking the hub about the key's age: {e}")))?;
    let schedule = status
        .rotate_after
        .map_or("no rotation schedule".to_owned(), |s| {
            format!("the hub's schedule is {s} s")
        });
    let verdict = if status.due { "rotating" } else { "not due" };
    eprintln!(
        "{iface}: the key of device {} is {} s old and {schedule}: {verdict}",
        status.device, status.key_age
    );
    Ok(status.due)
}

/// The device API a configuration names.
fn hub_api(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix(HUB_API_COMMENT))
        .map(str::trim)
}

/// `ferrowg key rotate IFACE` on an enrolled device whose configuration is `conf`: a new key of
/// the kind it has (in memory, or in the same token under a new label), announced to the hub
/// through the tunnel (which then accepts both keys until the new one's first handshake), then
/// switched to on the running interface keeping its sessions, and written to `conf`.
fn rotate(iface: &str, conf: &Path) -> Result<(), CliError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(conf)
            .map_err(|e| CliError::new(format!("{}: {e}", conf.display())))?,
    );
    let api = hub_api(&text).unwrap_or_default().to_string();
    let current = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "PrivateKey").then(|| v.trim())
        })
        .ok_or_else(|| CliError::new(format!("{}: no PrivateKey", conf.display())))?;
    let (op, line, public) = if current.starts_with("pkcs11:") {
        let uri = Pkcs11Uri::parse(current)
            .map_err(|e| CliError::new(format!("{}: PrivateKey: {e}", conf.display())))?;
        let next = rotated_uri(&uri, unix_now());
        let public = manage::generate(&next)
            .map(PublicKey::from_bytes)
            .map_err(|e| CliError::new(format!("PKCS#11: {e}")))?;
        let line = Zeroizing::new(next.to_uri_string(true));
        (InterfaceOp::PrivateKeyUri(Box::new(next)), line, public)
    } else {
        let key =
            PrivateKey::generate().map_err(|e| CliError::new(format!("key generation: {e}")))?;
        let public = key.public_key();
        let line = Zeroizing::new(key.to_base64());
        (InterfaceOp::PrivateKey(Some(key)), line, public)
    };
    let device = run_async(ferrowg_hub::device_api::announce_rotation(&api, &public))?
        .map_err(|e| CliError::new(format!("the hub refused the new key: {e}")))?;
    let req = SetRequest {
        interface: vec![op, InterfaceOp::KeepSessions],
        peers: Vec::new(),
    };
    client::set(iface, &req)?;
    rewrite_private_key(conf, &text, &line)?;
    eprintln!(
        "{iface}: device {device} now uses its new key (the hub accepts both until the new \
         one's first handshake); {} updated",
        conf.display()
    );
    super::out(&format!("{public}\n"))
}

/// Writes `text` with its `PrivateKey` value replaced by `value`, atomically (a new file,
/// readable by root only, renamed over the old one).
fn rewrite_private_key(conf: &Path, text: &str, value: &str) -> Result<(), CliError> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    for l in text.lines() {
        match l.split_once('=') {
            Some((k, _)) if k.trim() == "PrivateKey" => {
                out.push_str(&format!("PrivateKey = {value}\n"));
            }
            _ => {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    let tmp = conf.with_extension("conf.new");
    let _ = std::fs::remove_file(&tmp);
    write_conf(&tmp, &out)?;
    std::fs::rename(&tmp, conf).map_err(|e| CliError::new(format!("{}: {e}", conf.display())))
}
