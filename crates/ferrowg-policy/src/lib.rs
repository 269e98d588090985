//! Access rules for `ferrowg hub`: a strict subset of the Tailscale/headscale policy file, so
//! that operators reuse what they know, compiled into a matrix the hub checks per new flow.
//!
//! The file is HuJSON (JSON with `//` and `/* */` comments and trailing commas) with these
//! sections, and no others:
//!
//! ```text
//! {
//!   "tagOwners": { "tag:sensor": [], "tag:collector": [] },   // every tag used is declared
//!   "groups":    { "group:ops": ["tag:collector", "gw-berlin"] }, // tags and device names
//!   "hosts":     { "site-berlin": "10.1.0.0/24" },            // names for prefixes
//!   "grants":    [{ "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443"] }],
//!   "autoApprovers": { "routes": { "10.1.0.0/16": ["tag:router"] } },
//!   "tests":     [{ "src": "tag:sensor", "accept": ["tag:collector:443"], "deny": ["tag:collector:22"] }],
//! }
//! ```
//!
//! In ferrowg devices are not users: a device enrolled with `--group G` is `tag:G`. A grant is
//! one-directional, as in Tailscale: `src` may open flows to `dst`; the hub lets replies back
//! through its flow table. Unknown keys, malformed values, undeclared tags and unknown groups,
//! hosts or devices are refused with their line ([`PolicyError`]).
//!
//! - [`Policy::parse`] reads and validates; [`Policy::compile`] gives the [`Compiled`] matrix,
//!   and [`Compiled::allows`] checks a flow.
//! - [`Policy::run_tests`] runs the `tests` section ([`TestEnv`] says what names stand for).
//! - [`Policy::auto_approves`] answers `autoApprovers.routes`.
//! - [`test_file`] is `ferrowg hub policy test FILE`.
//!
//! Not supported (refused as unknown keys): `acls`, `ssh`, `nodeAttrs`, `postures`, `ipsets`,
//! grant `app`/`via`/`srcPosture`, `autoApprovers.exitNode`, `autogroup:` selectors.

#![forbid(unsafe_code)]

mod acltest;
mod compile;
mod error;
mod hujson;
mod policy;
mod ports;
mod prefix;
mod read;
mod tests_read;

use std::io::Read;
use std::path::Path;

pub use acltest::{TestEnv, TestFailure};
pub use compile::{Compiled, CompiledStats, Subject};
pub use error::PolicyError;
pub use policy::{Policy, MAX_EXPANSION, MAX_POLICY_BYTES};
pub use ports::Proto;
pub use prefix::{Prefix, PrefixError};
pub use read::valid_name;

/// `ferrowg hub policy test FILE`: reads the policy at `path`, validates it and runs its tests
/// with an empty [`TestEnv`] (every name stands for its sample). Returns a one-line summary, or
/// every error as `FILE:LINE: message`, one per line.
pub fn test_file(path: &Path) -> Result<String, String> {
    let name = path.display();
    let text = read_bounded(path).map_err(|e| format!("{name}: {e}"))?;
    let policy = Policy::parse(&text).map_err(|e| match e.line {
        0 => format!("{name}: {e}"),
        line => {
            let rest = PolicyError { line: 0, ..e };
            format!("{name}:{line}: {rest}")
        }
    })?;
    policy.run_tests(&TestEnv::new()).map_err(|failures| {
        failures
            .iter()
            .map(|f| format!("{name}:{}: {}", f.line, f.what()))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let (tests, assertions) = policy.test_counts();
    Ok(format!(
        "{name}: policy valid ({} grants); {tests} tests, {assertions} assertions passed",
        policy.grant_count()
    ))
}

/// The file as UTF-8 text, refused past [`MAX_POLICY_BYTES`] without reading further.
fn read_bounded(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(format!("larger than the limit of {MAX_POLICY_BYTES} bytes"));
    }
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
}
