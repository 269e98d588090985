//! End-to-end (issue #18): `scripts/test-hub-lifecycle.sh` with this build's `ferrowg`. A hub
//! whose WireGuard key lives in a SoftHSM2 token (`hub init --pkcs11`) is killed with `kill -9`
//! during 100 concurrent enrolments: after a restart every enrolment it acknowledged is listed
//! with the address the device received, and no address is given twice. A device then
//! handshakes with the token's key, and the key-rotation schedule is exercised: `ferrowg key
//! rotate IFACE --if-due` changes nothing before the key is due, an overdue device stays
//! connected, and a due key is rotated with traffic continuing.
//!
//! The script removes everything it made, also when a check fails. Needs root; without it
//! fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::process::Command;

use ferrowg_testkit::{require_root, require_tool};

#[test]
fn hub_lifecycle_script_passes_every_check() {
    if !require_root() {
        return;
    }
    for tool in ["ping", "softhsm2-util"] {
        require_tool(tool);
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-hub-lifecycle.sh"
    );
    let out = Command::new("timeout")
        .args(["240", script])
        .env("FERROWG", env!("CARGO_BIN_EXE_ferrowg"))
        .output()
        .expect("run test-hub-lifecycle.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "test-hub-lifecycle.sh failed: {:?}",
        out.status
    );
    assert!(stdout.contains("test-hub-lifecycle.sh: every check passed"));
    assert!(!stdout.contains("FAIL:"));
    for what in [
        "the token's",
        "killed mid-burst",
        "survived kill -9",
        "no address given twice",
        "handshake with the token's key",
        "changes nothing while the key is younger",
        "overdue device stays connected",
        "rotates: the hub knows",
        "traffic continues on the new key",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok: ") && l.contains(what)),
            "no passed check mentions {what:?}"
        );
    }
}
