//! Whether root-only tests run, and the tools they need.
//!
//! The rule, the same in every test: as root the test runs; otherwise it fails, unless
//! `FERROWG_SKIP_ROOT_TESTS=1` is set, in which case it says so and passes without running.
//! A CI that runs as root therefore cannot skip a test silently.

/// The environment switch that lets a non-root run skip the root-only tests.
pub const SKIP_ROOT_TESTS: &str = "FERROWG_SKIP_ROOT_TESTS";

/// True when root-only tests should run; false (after saying so on standard error) when not
/// root and `FERROWG_SKIP_ROOT_TESTS=1`; panics otherwise.
pub fn require_root() -> bool {
    if ferrowg_sys::process::is_root() {
        return true;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("this test");
    if std::env::var(SKIP_ROOT_TESTS).as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root ({SKIP_ROOT_TESTS}=1)");
        return false;
    }
    panic!(
        "{test} needs root (network namespaces, TUN devices, /var/run/wireguard); run as root \
         or set {SKIP_ROOT_TESTS}=1 to skip it"
    );
}

/// Whether a program is on the `PATH`.
pub fn tool_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Panics unless `program` is installed: a missing peer implementation or tool is a failure,
/// not a skip.
pub fn require_tool(program: &str) {
    assert!(
        tool_exists(program),
        "{program} is not installed; this test needs it"
    );
}
