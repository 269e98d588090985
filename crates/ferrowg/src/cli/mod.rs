//! The command line: wg(8)'s and wg-quick(8)'s subcommands with their arguments and output,
//! plus `daemon` (wireguard-go's role). An argument that is no subcommand but a valid interface
//! name starts the daemon for it, so `WG_QUICK_USERSPACE_IMPLEMENTATION=ferrowg wg-quick up`
//! works unchanged.

use std::io::Write;

pub mod client;
pub mod daemon;
pub mod enroll;
pub mod key;
pub mod quick;
pub mod show;
pub mod wg;

use ferrowg_conf::uapi::valid_iface_name;
use ferrowg_keys::keyfile::KeyFileError;

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

impl From<KeyFileError> for CliError {
    fn from(e: KeyFileError) -> Self {
        CliError(e.to_string())
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
  daemon: Runs the userspace WireGuard daemon: daemon [--foreground] [--aead=ring] [--no-offload] INTERFACE
  hub: Runs and manages a hub for device fleets: hub init|serve|token|device|policy (hub --help)
  enroll: Joins a hub with an enrolment token: enroll TOKEN --iface IFACE (enroll --help)
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

/// The error for a first argument that is no subcommand (or a subcommand with arguments it
/// does not take), with the usage.
pub(crate) fn invalid_subcommand(cmd: &str) -> CliError {
    usage(&format!("Invalid subcommand: `{cmd}'\n{USAGE}"))
}

fn dispatch(args: &[String]) -> Result<(), CliError> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    // `--help` after a subcommand prints the overview; `set` takes no such
    // option, and `daemon` and `hub` print their own options.
    let own_help = matches!(a.first(), Some(&("set" | "daemon" | "hub" | "enroll")));
    if !own_help && a.iter().skip(1).any(|x| *x == "--help" || *x == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    match a.as_slice() {
        [] => show::command(&[]),
        ["--help" | "-h" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        ["--version" | "-v" | "version"] => {
            println!(
                "ferrowg v{} - userspace WireGuard",
                env!("CARGO_PKG_VERSION")
            );
            Ok(())
        }
        ["show", rest @ ..] => show::command(rest),
        [cmd @ ("showconf" | "set" | "setconf" | "addconf" | "syncconf"), rest @ ..] => {
            wg::command(cmd, rest)
        }
        ["key", "rotate", iface, rest @ ..] if enroll::handles_rotation(iface, rest) => {
            enroll::rotate_command(iface, rest)
        }
        [cmd @ ("genkey" | "genpsk" | "pubkey" | "key"), rest @ ..] => key::command(cmd, rest),
        [cmd @ ("strip" | "up" | "down"), rest @ ..] => quick::command(cmd, rest),
        ["daemon", rest @ ..] => daemon::command(rest),
        ["hub", rest @ ..] => hub(rest),
        ["enroll", rest @ ..] => enroll::command(rest),
        // wireguard-go's command line: [-f|--foreground] INTERFACE.
        ["-f" | "--foreground", iface] => daemon::command(&["--foreground", iface]),
        [iface] if valid_iface_name(iface) => daemon::command(&[iface]),
        [other, ..] => Err(invalid_subcommand(other)),
    }
}

/// `ferrowg hub …`: the hub's own command line, which prints its errors itself.
fn hub(args: &[&str]) -> Result<(), CliError> {
    match ferrowg_hub::cli::run(args.iter().map(std::ffi::OsString::from)) {
        0 => Ok(()),
        _ => Err(CliError::new(String::new())),
    }
}

/// Writes `s` to standard output and flushes it, failing (rather than panicking like
/// `print!`) when standard output is closed.
pub(crate) fn out(s: &str) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| CliError::new(e.to_string()))
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
