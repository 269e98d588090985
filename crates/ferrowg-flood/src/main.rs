//! `wg-flood`: load for ferrowg's denial-of-service benchmark (bench/flood.sh, issue #17).
//!
//! - `valid-mac1` / `junk`: a paced flood of handshake initiations against one WireGuard
//!   endpoint ([`flood`]).
//! - `legit`: one real handshake, timed, through a cookie round trip when the target asks for
//!   one ([`legit`]).
//! - `storm` / `storm-keys`: many real peers handshaking as fast as the target answers, for the
//!   handshakes per second a hub sustains (bench/hub.sh), and their public keys ([`storm`]).
//! - `fleet`: thousands of simulated devices coming up at once and talking to each other
//!   through a hub (bench/hub-scale.sh, [`fleet`]).
//!
//! Each run is bounded (duration, count, timeout) and prints one line of `key=value` figures.
//! Only for networks you own: this is a load generator.

mod args;
mod fleet;
mod flood;
mod legit;
mod storm;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let o = match args::parse(&argv) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wg-flood: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let res = match o.mode {
        args::Mode::ValidMac1 | args::Mode::Junk => flood::run(&o).map(|r| (r.line(&o), true)),
        args::Mode::Legit => legit::run(&o).map(|r| (r.line(&o), r.total.is_some())),
        args::Mode::Storm => storm::run(&o).map(|r| (r.line(&o), r.handshakes > 0)),
        args::Mode::StormKeys => Ok((storm::public_keys(&o).trim_end().to_string(), true)),
        args::Mode::Fleet => run_fleet(&o),
    };
    match res {
        Ok((line, ok)) => {
            println!("{line}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("wg-flood: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `fleet`: reads the addresses, runs, and succeeds when every device came up.
fn run_fleet(o: &args::Options) -> Result<(String, bool), String> {
    let path = o.addresses.as_ref().ok_or("fleet needs --addresses")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let addrs = fleet::addresses(&text, o.peers)?;
    let r = fleet::run(o, &addrs)?;
    Ok((r.line(o), r.up == o.peers))
}
