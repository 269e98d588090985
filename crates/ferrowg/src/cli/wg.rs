//! The wg(8) commands that read or change an interface's configuration, on top of the UAPI
//! client: `showconf`, `set` (its arguments), `setconf`, `addconf`, `syncconf`. The same socket
//! protocol drives ferrowg, wireguard-go and boringtun, so these commands work against any of
//! them. (`show` has its own file, `show/`.)

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use ferrowg_conf::addr::{preferred_address, AllowedIp, Endpoint};
use ferrowg_conf::config::{self, ConfMode, Config, Dialect};
use ferrowg_conf::grammar;
use ferrowg_conf::uapi::{DeviceState, InterfaceOp, PeerOp, PeerSet, SetRequest};
use ferrowg_keys::key::PublicKey;
use ferrowg_keys::keyfile;

use super::key::{running_key, RunningKey};
use super::{client, usage, CliError};

/// The wg(8) commands that read or change an interface's configuration.
pub fn command(cmd: &str, args: &[&str]) -> Result<(), CliError> {
    match (cmd, args) {
        ("showconf", [iface]) => {
            let st = client::get(iface)?;
            print!("{}", showconf(iface, &st, None));
            Ok(())
        }
        ("showconf", _) => Err(usage("Usage: ferrowg showconf <interface>")),
        ("set", [iface, rest @ ..]) if !rest.is_empty() => {
            let owned: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let req = parse_set_args(&owned)?;
            client::set(iface, &req)
        }
        ("set", _) => Err(usage(
            "Usage: ferrowg set <interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] \
             [peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] \
             [persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...",
        )),
        (_, [iface, file]) => {
            let cfg = read_config(file, Dialect::Wg)?;
            apply_config(iface, &cfg, cmd)
        }
        _ => Err(usage(&format!(
            "Usage: ferrowg {cmd} <interface> <configuration filename>"
        ))),
    }
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

/// Resolves a host-name endpoint like wg(8), choosing among the addresses as the daemon does
/// when it resolves the name again ([`preferred_address`]: IPv4 first).
pub fn resolve(e: &Endpoint) -> Result<SocketAddr, CliError> {
    let text = e.to_string();
    let addrs = text
        .to_socket_addrs()
        .map_err(|err| CliError::new(format!("{text}: {err}")))?;
    preferred_address(addrs).ok_or_else(|| CliError::new(format!("{text}: no address")))
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

/// Parses the arguments of `wg set IFACE …` into a request. Values follow wg(8)'s grammar
/// through the same parsers as configuration files ([`grammar`], [`AllowedIp`], [`Endpoint`]);
/// key files are read by the one strict key-file reader.
pub fn parse_set_args(args: &[String]) -> Result<SetRequest, CliError> {
    let mut req = SetRequest::default();
    let mut rest = args;
    while let [name, tail @ ..] = rest {
        if name == "peer" {
            break;
        }
        let (value, tail) = take_value(name, tail)?;
        req.interface.push(interface_arg(name, value)?);
        rest = tail;
    }
    while let [_peer, tail @ ..] = rest {
        let (key, tail) = take_value("peer", tail)?;
        let public_key = PublicKey::from_base64(key).map_err(|_| {
            CliError::new(format!("Key is not the correct length or format: `{key}'"))
        })?;
        let mut peer = PeerSet {
            public_key,
            ops: Vec::new(),
        };
        rest = tail;
        while let [name, tail @ ..] = rest {
            if name == "peer" {
                break;
            }
            rest = if name == "remove" {
                peer.ops.push(PeerOp::Remove);
                tail
            } else {
                let (value, tail) = take_value(name, tail)?;
                peer_arg(&mut peer.ops, name, value)?;
                tail
            };
        }
        req.peers.push(peer);
    }
    Ok(req)
}

/// The value after argument `name`, and the arguments after it.
fn take_value<'a>(name: &str, rest: &'a [String]) -> Result<(&'a str, &'a [String]), CliError> {
    match rest {
        [value, tail @ ..] => Ok((value, tail)),
        [] => Err(CliError::new(format!("Missing value for {name}"))),
    }
}

fn unparsable(what: &str, value: &str) -> CliError {
    CliError::new(format!("Unable to parse {what}: `{value}'"))
}

/// One interface argument of `wg set`.
fn interface_arg(name: &str, value: &str) -> Result<InterfaceOp, CliError> {
    Ok(match name {
        "listen-port" => {
            InterfaceOp::ListenPort(grammar::port(value).ok_or_else(|| unparsable("port", value))?)
        }
        "fwmark" => {
            InterfaceOp::FwMark(grammar::fwmark(value).ok_or_else(|| unparsable("fwmark", value))?)
        }
        // ferrowg's extension: a key in a PKCS#11 token, checked here.
        "private-key" if ferrowg_keys::pkcs11::uri::is_pkcs11_uri(value) => {
            let uri = super::key::parse_uri_arg(value)?;
            super::key::check_token_key(&uri)?;
            InterfaceOp::PrivateKeyUri(Box::new(uri))
        }
        "private-key" => {
            let key = keyfile::read_private_key(Path::new(value))?;
            InterfaceOp::PrivateKey(key.nonzero())
        }
        other => return Err(CliError::new(format!("Invalid argument: {other}"))),
    })
}

/// One peer argument of `wg set` (other than `remove`), appended to `ops`.
fn peer_arg(ops: &mut Vec<PeerOp>, name: &str, value: &str) -> Result<(), CliError> {
    match name {
        "endpoint" => {
            let endpoint =
                Endpoint::parse_config(value).ok_or_else(|| unparsable("endpoint", value))?;
            ops.push(PeerOp::Endpoint(endpoint.resolve_with(resolve)?));
            // The name, for a daemon that resolves it again (see `client::set`).
            ops.extend(endpoint.host_endpoint().map(PeerOp::EndpointHost));
        }
        "allowed-ips" => {
            let ips = AllowedIp::parse_config_list(&grammar::strip_wg_spaces(value))
                .map_err(|item| unparsable("IP address", item))?;
            ops.push(PeerOp::ReplaceAllowedIps);
            ops.extend(ips.into_iter().map(PeerOp::AllowedIp));
        }
        "persistent-keepalive" => {
            let interval = grammar::keepalive(value)
                .ok_or_else(|| unparsable("persistent keepalive interval", value))?;
            ops.push(PeerOp::PersistentKeepaliveInterval(interval));
        }
        "preshared-key" => {
            let key = keyfile::read_preshared_key(Path::new(value))?;
            ops.push(PeerOp::PresharedKey(key.nonzero()));
        }
        other => return Err(CliError::new(format!("Invalid argument: {other}"))),
    }
    Ok(())
}

impl From<CliError> for std::io::Error {
    fn from(e: CliError) -> Self {
        std::io::Error::other(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const PK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn set(args: &str) -> Result<SetRequest, String> {
        let args: Vec<String> = args.split(' ').map(String::from).collect();
        parse_set_args(&args).map_err(|e| e.0)
    }

    #[test]
    fn set_arguments_use_the_file_grammar() {
        let req = set("listen-port 0051820 fwmark OFF").unwrap();
        assert_eq!(
            req.interface,
            [InterfaceOp::ListenPort(51820), InterfaceOp::FwMark(0)]
        );
        let req = set(&format!(
            "fwmark 0x1f peer {PK} persistent-keepalive Off allowed-ips 10.0.0.1/24,\tfd00::/64 \
             remove endpoint [fd00::1]:7"
        ))
        .unwrap();
        assert_eq!(req.interface, [InterfaceOp::FwMark(0x1f)]);
        assert_eq!(
            req.peers[0].ops,
            [
                PeerOp::PersistentKeepaliveInterval(0),
                PeerOp::ReplaceAllowedIps,
                PeerOp::AllowedIp(AllowedIp::parse_config("10.0.0.1/24").unwrap()),
                PeerOp::AllowedIp(AllowedIp::parse_config("fd00::/64").unwrap()),
                PeerOp::Remove,
                PeerOp::Endpoint("[fd00::1]:7".parse().unwrap()),
            ]
        );
        let req = set(&format!("peer {PK} allowed-ips  peer {PK}")).unwrap();
        assert_eq!(req.peers[0].ops, [PeerOp::ReplaceAllowedIps]);
        assert_eq!(req.peers.len(), 2);
    }

    #[test]
    fn bad_set_arguments_are_refused() {
        for (args, message) in [
            ("listen-port +1", "Unable to parse port: `+1'"),
            ("listen-port 65536", "Unable to parse port: `65536'"),
            ("fwmark 0X1f", "Unable to parse fwmark: `0X1f'"),
            ("fwmark", "Missing value for fwmark"),
            ("bogus 1", "Invalid argument: bogus"),
            ("peer", "Missing value for peer"),
            ("peer abc", "Key is not the correct length or format: `abc'"),
        ] {
            assert_eq!(set(args).unwrap_err(), message, "{args}");
        }
        for (peer_args, message) in [
            ("allowed-ips 10.0.0.0/8,", "Unable to parse IP address: `'"),
            (
                "allowed-ips 10.0.0.0/999",
                "Unable to parse IP address: `10.0.0.0/999'",
            ),
            (
                "persistent-keepalive +5",
                "Unable to parse persistent keepalive interval: `+5'",
            ),
            ("endpoint 1.2.3.4", "Unable to parse endpoint: `1.2.3.4'"),
            ("update-only 1", "Invalid argument: update-only"),
        ] {
            let args = format!("peer {PK} {peer_args}");
            assert_eq!(set(&args).unwrap_err(), message, "{args}");
        }
    }

    #[test]
    fn set_refuses_a_pin_in_the_uri() {
        let e = set("private-key pkcs11:token=t;object=k?pin-value=8765&module-path=/m.so")
            .unwrap_err();
        assert!(e.contains("pin-source") && !e.contains("8765"), "{e}");
    }

    #[test]
    fn key_files_are_read_strictly() {
        let dir = std::env::temp_dir().join(format!("ferrowg-wg-set-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let psk = dir.join("psk");
        std::fs::write(&psk, format!("{PK}\n")).unwrap();
        let arg = format!("peer {PK} preshared-key {}", psk.display());
        std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = set(&arg).unwrap_err();
        assert!(e.contains("accessible by its group or others"), "{e}");
        std::fs::set_permissions(&psk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let req = set(&arg).unwrap();
        let PeerOp::PresharedKey(Some(key)) = &req.peers[0].ops[0] else {
            panic!("{:?}", req.peers[0].ops)
        };
        assert_eq!(key.to_base64(), PK);
        let e = set(&format!("private-key {}", dir.join("missing").display())).unwrap_err();
        assert!(e.contains("missing"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
