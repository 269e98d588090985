//! The command line: wg(8)'s and wg-quick(8)'s subcommands with their arguments and output,
//! plus `daemon` (wireguard-go's role). An argument that is no subcommand but a valid interface
//! name starts the daemon for it, so `WG_QUICK_USERSPACE_IMPLEMENTATION=ferrowg wg-quick up`
//! works unchanged.

use std::io::{Read, Write};

pub mod client;
pub mod daemon;
pub mod key;
pub mod quick;
pub mod show;
pub mod wg;

use ferrowg_conf::config::{self, Dialect};
use ferrowg_conf::uapi::{valid_iface_name, DeviceState};
use ferrowg_keys::key::{PresharedKey, PrivateKey};

use show::{Field, ShowOptions};

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

const USAGE: &str = "Usage: ferrowg <cmd> [<args>]

Available subcommands (as in wg(8) and wg-quick(8)):
  show: Shows the current configuration and device information
  showconf: Shows the current configuration of a given WireGuard interface, for use with `setconf'
  set: Change the current configuration, add peers, remove peers, or change peers
  setconf: Applies a configuration file to a WireGuard interface
  addconf: Appends a configuration file to a WireGuard interface
  syncconf: Synchronizes a configuration file to a WireGuard interface
  genkey: Generates a new private key and writes it to stdout
  genpsk: Generates a new preshared key and writes it to stdout
  pubkey: Reads a private key from stdin and writes a public key to stdout
  genkey --pkcs11 URI: Generates a key in a PKCS#11 token and writes its public key to stdout
  pubkey --pkcs11 URI: Writes the public key of a key in a PKCS#11 token to stdout
  key: Rotates, imports or describes keys: key rotate INTERFACE [--pkcs11 URI | --file PATH]
  strip: Prints a wg-quick configuration file without the wg-quick keys
  up: Brings up an interface from a wg-quick configuration file (CONFIG_FILE | INTERFACE)
  down: Takes down an interface brought up with `up'
  daemon: Runs the userspace WireGuard daemon: daemon [--foreground] INTERFACE
You may pass `--help' to any of these subcommands to view usage.";

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    match dispatch(&args) {
        Ok(()) => 0,
        Err(e) => {
            if !e.0.is_empty() {
                // Not eprintln!: a detached daemon's standard error may be a closed pipe.
                let _ = writeln!(std::io::stderr(), "{}", e.0);
            }
            1
        }
    }
}

pub(crate) fn usage(text: &str) -> CliError {
    CliError::new(text.to_string())
}

fn dispatch(args: &[String]) -> Result<(), CliError> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    if a.iter().skip(1).any(|x| *x == "--help" || *x == "-h") && a.first() != Some(&"set") {
        println!("{USAGE}");
        return Ok(());
    }
    match a.as_slice() {
        [] => show_cmd(&[]),
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["--version" | "-v" | "version"] => {
            println!("ferrowg v{} - userspace WireGuard", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        ["show", rest @ ..] => show_cmd(rest),
        ["showconf", iface] => {
            let st = client::get(iface)?;
            print!("{}", key::showconf(iface, &st, None));
            Ok(())
        }
        ["showconf", ..] => Err(usage("Usage: ferrowg showconf <interface>")),
        ["set", iface, rest @ ..] if !rest.is_empty() => {
            let owned: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let req = wg::parse_set_args(&owned)?;
            client::set(iface, &req)
        }
        ["set", ..] => Err(usage(
            "Usage: ferrowg set <interface> [listen-port <port>] [fwmark <mark>] [private-key <file path>] \
             [peer <base64 public key> [remove] [preshared-key <file path>] [endpoint <ip>:<port>] \
             [persistent-keepalive <interval seconds>] [allowed-ips <ip1>/<cidr1>[,<ip2>/<cidr2>]...] ]...",
        )),
        [cmd @ ("setconf" | "addconf" | "syncconf"), iface, file] => {
            let cfg = wg::read_config(file, Dialect::Wg)?;
            wg::apply_config(iface, &cfg, cmd)
        }
        [cmd @ ("setconf" | "addconf" | "syncconf"), ..] => {
            Err(usage(&format!("Usage: ferrowg {cmd} <interface> <configuration filename>")))
        }
        ["genkey", "--pkcs11", uri] => key::genkey(uri),
        ["pubkey", "--pkcs11", uri] => key::pubkey(uri),
        ["key", rest @ ..] => key::key_cmd(rest),
        ["genkey"] => {
            warn_world_readable_stdout();
            let k = PrivateKey::generate().map_err(|e| CliError::new(format!("Unable to generate a key: {e}")))?;
            out(&format!("{}\n", k.to_base64()))
        }
        ["genpsk"] => {
            warn_world_readable_stdout();
            let k = PresharedKey::generate().map_err(|e| CliError::new(format!("Unable to generate a key: {e}")))?;
            out(&format!("{}\n", k.to_base64()))
        }
        ["pubkey"] => {
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
        ["strip", target] => {
            let qf_path = if valid_iface_name(target) && !target.contains('.') {
                format!("/etc/wireguard/{target}.conf")
            } else {
                target.to_string()
            };
            let input = std::fs::read(&qf_path).map_err(|e| CliError::new(format!("`{qf_path}': {e}")))?;
            let stripped = config::strip(&qf_path, &input).map_err(|e| CliError::new(e.to_string()))?;
            std::io::stdout().write_all(&stripped).map_err(|e| CliError::new(e.to_string()))
        }
        ["up", target] => quick::up(target),
        ["down", target] => quick::down(target),
        ["up" | "down", ..] => Err(usage("Usage: ferrowg [ up | down ] [ CONFIG_FILE | INTERFACE ]")),
        ["daemon", rest @ ..] => daemon::command(rest),
        // wireguard-go's command line: [-f|--foreground] INTERFACE.
        ["-f" | "--foreground", iface] => daemon::command(&["--foreground", iface]),
        [iface] if valid_iface_name(iface) => daemon::command(&[iface]),
        [other, ..] => Err(usage(&format!("Invalid subcommand: `{other}'\n{USAGE}"))),
    }
}

fn out(s: &str) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| CliError::new(e.to_string()))
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

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn show_cmd(args: &[&str]) -> Result<(), CliError> {
    let json = args.contains(&"--json");
    let args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let opts = ShowOptions {
        hide_keys: std::env::var("WG_HIDE_KEYS").map_or(true, |v| v != "never"),
    };
    let target = args.first().copied().unwrap_or("all");
    if target == "interfaces" {
        if args.len() > 1 {
            return Err(usage("Usage: ferrowg show { <interface> | all | interfaces } [public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump]"));
        }
        let names = client::interfaces();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        return out(&show::interfaces(&refs));
    }
    let field = match args.get(1) {
        Some(f) => Some(f.parse::<Field>().map_err(|_| {
            usage("Usage: ferrowg show { <interface> | all | interfaces } [public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump]")
        })?),
        None => None,
    };
    let names: Vec<String> = if target == "all" {
        client::interfaces()
    } else {
        vec![target.to_string()]
    };
    let mut states: Vec<(String, DeviceState)> = Vec::new();
    for n in &names {
        match client::get(n) {
            Ok(s) => states.push((n.clone(), s)),
            Err(e) if target == "all" => eprintln!("{e}"),
            Err(e) => return Err(e),
        }
    }
    let refs: Vec<(&str, &DeviceState)> = states.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let text = if json {
        show::json(&refs, !opts.hide_keys)
    } else {
        match (field, target == "all") {
            (None, true) => show::pretty_all(&refs, now_secs(), opts),
            (None, false) => refs
                .first()
                .map_or(String::new(), |(n, s)| show::pretty(n, s, now_secs(), opts)),
            (Some(f), true) => show::field_all(&refs, f),
            (Some(f), false) => refs
                .first()
                .map_or(String::new(), |(n, s)| show::field(n, s, f, false)),
        }
    };
    out(&text)
}
