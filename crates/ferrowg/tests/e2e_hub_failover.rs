//! End-to-end (issue #19): `scripts/test-hub-failover.sh` with this build's `ferrowg`. Two hub
//! nodes share one PostgreSQL database (a server in a namespace of its own); a token made on
//! one node enrols devices through the other, whose interface has them at once; the active
//! node is killed with `kill -9` and the service address moves to the standby, through which
//! the devices' pings resume (the script prints how soon); with PostgreSQL stopped the devices
//! keep talking and an admin write answers 503, and with it back the write succeeds.
//!
//! The script removes everything it made, also when a check fails. Needs root; without it
//! fails unless FERROWG_SKIP_ROOT_TESTS=1.

use std::process::Command;

use ferrowg_testkit::{require_root, require_tool};

#[test]
fn hub_failover_script_passes_every_check() {
    if !require_root() {
        return;
    }
    for tool in ["ping", "runuser"] {
        require_tool(tool);
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-hub-failover.sh"
    );
    let out = Command::new("timeout")
        .args(["300", script])
        .env("FERROWG", env!("CARGO_BIN_EXE_ferrowg"))
        .output()
        .expect("run test-hub-failover.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "test-hub-failover.sh failed: {:?}",
        out.status
    );
    assert!(stdout.contains("test-hub-failover.sh: every check passed"));
    assert!(!stdout.contains("FAIL:"));
    for what in [
        "enrolled through node A",
        "endpoints are in the database",
        "traffic resumed through node B",
        "with the database down",
        "503 database-unavailable",
        "with the database back",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok: ") && l.contains(what)),
            "no passed check mentions {what:?}"
        );
    }
}
