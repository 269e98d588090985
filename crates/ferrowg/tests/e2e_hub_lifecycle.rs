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

use ferrowg_testkit::{require_root, require_tool, run_check_script};

#[test]
fn hub_lifecycle_script_passes_every_check() {
    if !require_root() {
        return;
    }
    for tool in ["ping", "softhsm2-util"] {
        require_tool(tool);
    }
    run_check_script(
        "test-hub-lifecycle.sh",
        env!("CARGO_BIN_EXE_ferrowg"),
        240,
        &[
            "the token's",
            "killed mid-burst",
            "survived kill -9",
            "no address given twice",
            "handshake with the token's key",
            "changes nothing while the key is younger",
            "overdue device stays connected",
            "rotates: the hub knows",
            "traffic continues on the new key",
        ],
    );
}
