//! `ferrowg hub …`: the hub's command line (clap).
//!
//! ```text
//! ferrowg hub init --data DIR --endpoint HOST:PORT --pool 10.64.0.0/16 [--pool6 fd64::/64] [--pkcs11 URI] [--api ADDR:PORT]
//! ferrowg hub serve --data DIR [--api ADDR:PORT] [--iface NAME] [--node NAME] [--database URL] [--metrics ADDR:PORT|off]
//! ferrowg hub token create|list|revoke …
//! ferrowg hub device add|import|list|show|revoke|delete|approve-route …
//! ferrowg hub policy set|show|test …
//! ferrowg hub settings [--rotate-after DURATION]
//! ```
//!
//! Admin commands talk to the running hub's API: with `--data DIR` they read `DIR/hub.json`
//! (address and pin) and `DIR/admin.token`; with `--hub URL --admin-token-file F --pin PIN`
//! they reach a hub elsewhere ([`conn`]). Errors are one line on standard error, exit status 1
//! (2 for a command line clap refuses).

mod conn;
mod devices;
mod import;
mod policy;
mod settings;
mod setup;
mod table;
mod tokens;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A command's failure: the line printed on standard error.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> CliError {
        CliError(e.to_string())
    }
}

/// `ferrowg hub`.
#[derive(Debug, Parser)]
#[command(
    name = "ferrowg hub",
    about = "A self-hosted WireGuard hub for device fleets: enrolment, addresses, access rules",
    version
)]
struct HubArgs {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Makes a new hub: its WireGuard key, API certificate, store and admin token.
    Init(setup::InitArgs),
    /// Runs the hub (the API; the WireGuard data path joins it in the same process).
    Serve(setup::ServeArgs),
    /// Enrolment tokens.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Devices.
    #[command(subcommand)]
    Device(devices::DeviceCommand),
    /// The access policy.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The hub's settings; `--rotate-after` changes the key-rotation schedule.
    Settings(settings::SettingsArgs),
}

/// Runs `ferrowg hub` with `args` (the arguments after `hub`) and returns the exit status.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    ExitCode::from(run(args))
}

/// As [`main`], with the exit status as a number (0 success, 1 failure, 2 usage).
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let argv = std::iter::once(OsString::from("ferrowg hub")).chain(args);
    let parsed = match HubArgs::try_parse_from(argv) {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&CliError(format!("starting the runtime: {e}"))),
    };
    match runtime.block_on(dispatch(parsed.command)) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn fail(e: &CliError) -> u8 {
    let _ = writeln!(std::io::stderr(), "ferrowg hub: {}", e.0);
    1
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Init(a) => setup::init(a).await,
        Command::Serve(a) => setup::serve(a).await,
        Command::Token(c) => tokens::run(c).await,
        Command::Device(c) => devices::run(c).await,
        Command::Policy(c) => policy::run(c).await,
        Command::Settings(a) => settings::run(a).await,
    }
}

/// Writes `text` to standard output, failing (not panicking) when it is closed.
fn out(text: &str) -> Result<(), CliError> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| CliError(format!("standard output: {e}")))
}

/// Prints `value` as pretty JSON.
fn out_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)?;
    out(&format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        HubArgs::command().debug_assert();
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(run(["nope".into()]), 2);
        assert_eq!(run(["device".into(), "list".into()]), 1);
    }
}
