//! The client side of the UAPI socket, and the wg(8) commands built on it: `show`, `showconf`,
//! `set`, `setconf`, `addconf`, `syncconf`. The same socket protocol drives ferrowg,
//! wireguard-go and boringtun, so these commands work against any of them.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::addr::{AllowedIp, Endpoint};
use crate::config::{self, Config, Dialect};
use crate::key::{PresharedKey, PublicKey};
use crate::uapi::client::{parse_get_response, parse_set_response, ConfMode};
use crate::uapi::{DeviceState, InterfaceOp, PeerOp, PeerSet, SetRequest};

use crate::daemon::uapi::socket_path;
pub use crate::daemon::uapi::SOCKET_DIR;

/// A CLI failure, printed as the one line the user sees.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

impl CliError {
    /// An error with a message.
    pub fn new(msg: impl Into<String>) -> Self {
        CliError(msg.into())
    }
}

/// The interfaces with a live UAPI socket, sorted.
pub fn interfaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(SOCKET_DIR) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".sock"))
                .map(String::from)
        })
        .filter(|n| UnixStream::connect(socket_path(n)).is_ok())
        .collect();
    out.sort();
    out
}

fn connect(iface: &str) -> Result<UnixStream, CliError> {
    let path = socket_path(iface);
    let s = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => CliError::new(
            format!("Unable to access interface {iface}: No such device"),
        ),
        std::io::ErrorKind::PermissionDenied => CliError::new(format!(
            "Unable to access interface {iface}: Permission denied"
        )),
        _ => CliError::new(format!("Unable to access interface {iface}: {e}")),
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    Ok(s)
}

/// `get=1`: the interface's state.
pub fn get(iface: &str) -> Result<DeviceState, CliError> {
    let text = get_raw(iface)?;
    parse_get_response(&text)
        .map_err(|e| CliError::new(format!("Unable to access interface {iface}: {e}")))
}

/// `get=1`: the reply as received (for the extension lines [`get`] does not keep).
pub fn get_raw(iface: &str) -> Result<Vec<u8>, CliError> {
    let mut s = connect(iface)?;
    s.write_all(b"get=1\n\n")
        .map_err(|e| CliError::new(format!("Unable to access interface {iface}: {e}")))?;
    let mut text = Vec::new();
    read_reply(&mut s, &mut text)?;
    Ok(text)
}

/// Reads one reply (up to and including its empty line) with a size bound.
fn read_reply(s: &mut UnixStream, out: &mut Vec<u8>) -> Result<(), CliError> {
    use std::io::BufRead;
    let mut r = BufReader::new(s);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::new(format!("UAPI read: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        out.extend_from_slice(&line);
        if line == b"\n" {
            return Ok(());
        }
        if out.len() > 64 << 20 {
            return Err(CliError::new("UAPI reply too large"));
        }
    }
}

/// Sends a `set=1` request.
pub fn set(iface: &str, req: &SetRequest) -> Result<(), CliError> {
    let mut s = connect(iface)?;
    s.write_all(req.to_uapi().as_bytes())
        .map_err(|e| CliError::new(format!("Unable to modify interface {iface}: {e}")))?;
    let mut text = Vec::new();
    read_reply(&mut s, &mut text)?;
    parse_set_response(&text).map_err(|e| {
        // A refused token key: say which part failed (the daemon's log has the details).
        let uri = req
            .interface
            .iter()
            .any(|op| matches!(op, InterfaceOp::PrivateKeyUri(_)));
        let why = match &e {
            crate::uapi::client::GetError::Remote(errno) if uri => {
                crate::pkcs11::Pkcs11Error::explain_errno(errno.0)
            }
            _ => None,
        };
        match why {
            Some(why) => CliError::new(format!(
                "Unable to modify interface {iface}: {why} ({e}; the daemon's log says more)"
            )),
            None => CliError::new(format!("Unable to modify interface {iface}: {e}")),
        }
    })
}

/// Resolves a host-name endpoint like wg(8) (first address; IPv4 preferred).
pub fn resolve(e: &Endpoint) -> Result<SocketAddr, CliError> {
    let text = e.to_string();
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|err| CliError::new(format!("{text}: {err}")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| CliError::new(format!("{text}: no address")))
}

/// Reads and parses a config file in the given dialect.
pub fn read_config(path: &str, dialect: Dialect) -> Result<Config, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::new(format!("{path}: {e}")))?;
    config::parse(path, &bytes, dialect).map_err(|e| CliError::new(e.to_string()))
}

/// `setconf`, `addconf` or `syncconf` with an already parsed config.
pub fn apply_config(iface: &str, cfg: &Config, mode: &str) -> Result<(), CliError> {
    let running;
    let mode = match mode {
        "setconf" => ConfMode::Set,
        "addconf" => ConfMode::Add,
        _ => {
            running = get(iface)?;
            ConfMode::Sync(&running)
        }
    };
    // A PKCS#11 key is opened here first, so a wrong PIN or a missing module or object is
    // reported with its cause before the request is sent.
    let cfg = crate::keycmd::config_with_checked_key(cfg)?;
    let req = SetRequest::from_config(&cfg, mode, resolve)?;
    set(iface, &req)
}

/// Parses the arguments of `wg set IFACE …` into a request (wg(8) grammar; key files are read).
pub fn parse_set_args(args: &[String]) -> Result<SetRequest, CliError> {
    let mut req = SetRequest::default();
    let mut i = 0;
    let need = |i: usize, what: &str| -> Result<&String, CliError> {
        args.get(i + 1)
            .ok_or_else(|| CliError::new(format!("Missing value for {what}")))
    };
    while i < args.len() && args[i] != "peer" {
        let v = need(i, &args[i])?;
        match args[i].as_str() {
            "listen-port" => req
                .interface
                .push(InterfaceOp::ListenPort(v.parse().map_err(|_| {
                    CliError::new(format!("Unable to parse port: `{v}'"))
                })?)),
            "fwmark" => req.interface.push(InterfaceOp::FwMark(parse_fwmark(v)?)),
            // ferrowg's extension: a key in a PKCS#11 token, checked here.
            "private-key" if crate::pkcs11::uri::is_pkcs11_uri(v) => {
                let uri = crate::keycmd::parse_uri_arg(v)?;
                crate::keycmd::check_token_key(&uri)?;
                req.interface
                    .push(InterfaceOp::PrivateKeyUri(Box::new(uri)));
            }
            "private-key" => {
                let k = crate::keycmd::read_private_key_file(v)?;
                req.interface
                    .push(InterfaceOp::PrivateKey(Some(k).filter(|k| !k.is_zero())));
            }
            other => return Err(CliError::new(format!("Invalid argument: {other}"))),
        }
        i += 2;
    }
    while i < args.len() {
        // args[i] == "peer"
        let key = need(i, "peer")?;
        let public_key = PublicKey::from_base64(key).map_err(|_| {
            CliError::new(format!("Key is not the correct length or format: `{key}'"))
        })?;
        let mut ps = PeerSet {
            public_key,
            ops: Vec::new(),
        };
        i += 2;
        while i < args.len() && args[i] != "peer" {
            let arg = args[i].as_str();
            if arg == "remove" {
                ps.ops.push(PeerOp::Remove);
                i += 1;
                continue;
            }
            let v = need(i, arg)?;
            match arg {
                "endpoint" => {
                    let e = Endpoint::parse_config(v)
                        .ok_or_else(|| CliError::new(format!("Unable to parse endpoint: `{v}'")))?;
                    let a = match e {
                        Endpoint::Addr(a) => a,
                        host => resolve(&host)?,
                    };
                    ps.ops.push(PeerOp::Endpoint(a));
                }
                "allowed-ips" => {
                    ps.ops.push(PeerOp::ReplaceAllowedIps);
                    for part in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let ip = AllowedIp::parse_config(part).ok_or_else(|| {
                            CliError::new(format!("Unable to parse IP address: `{part}'"))
                        })?;
                        ps.ops.push(PeerOp::AllowedIp(ip));
                    }
                }
                "persistent-keepalive" => {
                    let k = if v == "off" {
                        0
                    } else {
                        v.parse().map_err(|_| {
                            CliError::new(format!(
                                "Unable to parse persistent keepalive interval: `{v}'"
                            ))
                        })?
                    };
                    ps.ops.push(PeerOp::PersistentKeepaliveInterval(k));
                }
                "preshared-key" => {
                    let k = PresharedKey::from_base64(read_key_file(v)?.trim()).map_err(|_| {
                        CliError::new(format!("Key is not the correct length or format: `{v}'"))
                    })?;
                    ps.ops
                        .push(PeerOp::PresharedKey(Some(k).filter(|k| !k.is_zero())));
                }
                other => return Err(CliError::new(format!("Invalid argument: {other}"))),
            }
            i += 2;
        }
        req.peers.push(ps);
    }
    Ok(req)
}

fn parse_fwmark(v: &str) -> Result<u32, CliError> {
    let bad = || CliError::new(format!("Unable to parse fwmark: `{v}'"));
    if v == "off" {
        return Ok(0);
    }
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).map_err(|_| bad()),
        None => v.parse().map_err(|_| bad()),
    }
}

/// Reads a key file (`/dev/stdin` and `-` read standard input), warning like wg when others
/// can read it.
fn read_key_file(path: &str) -> Result<String, CliError> {
    use std::os::unix::fs::PermissionsExt;
    if path == "-" || path == "/dev/stdin" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::new(format!("{path}: {e}")))?;
        return Ok(s);
    }
    if let Ok(m) = std::fs::metadata(path) {
        if m.is_file() && m.permissions().mode() & 0o077 != 0 {
            eprintln!("Warning: `{path}' is world accessible");
        }
    }
    std::fs::read_to_string(path).map_err(|e| CliError::new(format!("{path}: {e}")))
}

impl From<CliError> for std::io::Error {
    fn from(e: CliError) -> Self {
        std::io::Error::other(e.0)
    }
}
