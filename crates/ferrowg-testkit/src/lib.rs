//! Test support shared by ferrowg's integration tests (`crates/*/tests/`): one home for what
//! every root-only, namespace-based or interop test needs.
//!
//! - [`root`]: whether root-only tests run (the one rule for `FERROWG_SKIP_ROOT_TESTS`), and
//!   required tools.
//! - [`process`]: bounded shell commands and programs, polling with a limit.
//! - [`netns`]: network namespaces with unique names per run, processes started inside them,
//!   cleanup on drop (also when the test fails).
//! - [`tempdir`]: private temporary directories.
//! - [`fake_daemon`]: a fake UAPI daemon that answers `get=1` and records `set=1`, for comparing
//!   ferrowg with the stock `wg`.
//! - [`tunnel`]: two namespaces joined by a veth pair with a WireGuard tunnel between them, each
//!   end run by ferrowg or a reference peer (wireguard-go, boringtun-cli).
//! - [`transfer`]: checked TCP transfers through a tunnel.
//! - [`handshake`]: an in-process handshake between two protocol devices.
//! - [`script`]: the repository's check scripts run as tests.
//! - [`postgres`]: a private PostgreSQL server for the hub's tests, and the switch that runs
//!   them on it (not re-exported at the top).
//!
//! Every item is re-exported at the top, so a test file says `use ferrowg_testkit::*;`.

pub mod fake_daemon;
pub mod handshake;
pub mod netns;
pub mod postgres;
pub mod process;
pub mod root;
pub mod script;
pub mod tempdir;
pub mod transfer;
pub mod tunnel;

pub use fake_daemon::*;
pub use handshake::*;
pub use netns::*;
pub use process::*;
pub use root::*;
pub use script::*;
pub use tempdir::*;
pub use transfer::*;
pub use tunnel::*;

/// Asserts that the differences found between ferrowg and a reference implementation are
/// exactly the deliberate ones: each entry of `known` is a substring of one difference, and
/// every difference contains one of them.
pub fn assert_known_differences(differences: &[String], known: &[&str]) {
    let unexpected: Vec<&String> = differences
        .iter()
        .filter(|m| !known.iter().any(|k| m.contains(k)))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert_eq!(differences.len(), known.len(), "{differences:#?}");
}
