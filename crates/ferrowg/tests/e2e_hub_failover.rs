//! End-to-end (issue #19): `scripts/test-hub-failover.sh` with this build's `ferrowg`. Two hub
//! nodes share one PostgreSQL database (a server in a namespace of its own); a token made on
//! one node enrols devices through the other, whose interface has them at once; the active
//! node is killed with `kill -9` and the service address moves to the standby, through which
//! the devices' pings resume (the script prints how soon); with PostgreSQL stopped the devices
//! keep talking and an admin write answers 503, and with it back the write succeeds.
//!
//! The script removes everything it made, also when a check fails. Needs root; without it
//! fails unless FERROWG_SKIP_ROOT_TESTS=1.

use ferrowg_testkit::{require_root, require_tool, run_check_script};

#[test]
fn hub_failover_script_passes_every_check() {
    if !require_root() {
        return;
    }
    for tool in ["ping", "runuser"] {
        require_tool(tool);
    }
    run_check_script(
        "test-hub-failover.sh",
        env!("CARGO_BIN_EXE_ferrowg"),
        300,
        &[
            "enrolled through node A",
            "endpoints are in the database",
            "traffic resumed through node B",
            "with the database down",
            "503 database-unavailable",
            "with the database back",
        ],
    );
}
