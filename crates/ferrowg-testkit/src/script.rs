//! The repository's check scripts (`scripts/demo-hub.sh`, `scripts/test-hub-*.sh`) run as
//! tests: each prints `ok: …` or `FAIL: …` per check and `NAME: every check passed` at the end,
//! and removes what it made, also when a check fails.

use std::process::Command;

/// Runs `scripts/NAME` with `FERROWG=ferrowg` (this build's binary), killed after `limit_secs`,
/// and asserts that it succeeded, said `NAME: every check passed`, printed no `FAIL:`, and
/// passed a check mentioning each of `checks` (so that a check the test relies on cannot
/// silently disappear from the script).
pub fn run_check_script(name: &str, ferrowg: &str, limit_secs: u32, checks: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/").to_owned() + name;
    let out = Command::new("timeout")
        .arg(limit_secs.to_string())
        .arg(&script)
        .env("FERROWG", ferrowg)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{name} failed: {:?}", out.status);
    assert!(stdout.contains(&format!("{name}: every check passed")));
    assert!(!stdout.contains("FAIL:"));
    for what in checks {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok: ") && l.contains(what)),
            "no passed check of {name} mentions {what:?}"
        );
    }
}
