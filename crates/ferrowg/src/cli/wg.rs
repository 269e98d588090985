//! The wg(8) commands on top of the UAPI client: `set` arguments, `setconf`, `addconf`,
//! `syncconf`. The same socket protocol drives ferrowg, wireguard-go and boringtun, so these
//! commands work against any of them.

use std::net::{SocketAddr, ToSocketAddrs};

use ferrowg_conf::addr::{AllowedIp, Endpoint};
use ferrowg_conf::config::{self, Config, Dialect};
use ferrowg_conf::uapi::client::ConfMode;
use ferrowg_conf::uapi::{InterfaceOp, PeerOp, PeerSet, SetRequest};
use ferrowg_keys::key::{PresharedKey, PublicKey};

use super::client;
use super::CliError;

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
            running = client::get(iface)?;
            ConfMode::Sync(&running)
        }
    };
    // A PKCS#11 key is opened here first, so a wrong PIN or a missing module or object is
    // reported with its cause before the request is sent.
    let cfg = super::key::config_with_checked_key(cfg)?;
    let req = SetRequest::from_config(&cfg, mode, resolve)?;
    client::set(iface, &req)
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
            "private-key" if ferrowg_keys::pkcs11::uri::is_pkcs11_uri(v) => {
                let uri = super::key::parse_uri_arg(v)?;
                super::key::check_token_key(&uri)?;
                req.interface
                    .push(InterfaceOp::PrivateKeyUri(Box::new(uri)));
            }
            "private-key" => {
                let k = super::key::read_private_key_file(v)?;
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
