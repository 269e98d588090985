//! Running commands from tests: shell commands bounded by `timeout(1)`, programs with a clean
//! `WG_*` environment, and polling with a limit. Every wait is bounded, so a hanging tool
//! fails its test instead of stalling the suite.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a shell command, panicking with its output unless it succeeds; returns its standard
/// output.
pub fn run(cmd: &str) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "command failed ({}): {cmd}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell command and returns its output whatever the status. The command is bounded by
/// `timeout(1)` (two minutes); and a command that leaves a process behind holding its standard
/// output or error (a daemon that did not detach properly) fails the test rather than blocking
/// it for ever.
pub fn sh(cmd: &str) -> Output {
    let mut child = Command::new("timeout")
        .args(["-k", "5", "120", "sh", "-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let status = child.wait().expect("wait sh");
    let closed = wait_for(Duration::from_secs(10), || {
        out.is_finished() && err.is_finished()
    });
    assert!(
        closed.is_some(),
        "`{cmd}` exited ({status}) but a process it started still holds its standard output or error open"
    );
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut v);
        }
        v
    })
}

/// Standard output and error of a finished command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `program` with `args` and extra `env`, its standard input `input`, without the
/// `WG_*` variables that change wg(8)'s output (`WG_HIDE_KEYS`, `WG_COLOR_MODE`,
/// `WG_ENDPOINT_RESOLUTION_RETRIES`) unless `env` sets them.
pub fn exec(program: &str, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_remove("WG_HIDE_KEYS")
        .env_remove("WG_COLOR_MODE")
        .env_remove("WG_ENDPOINT_RESOLUTION_RETRIES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Runs the stock `wg` and returns its standard output, asserting success.
pub fn wg(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = exec("wg", args, env, b"");
    assert!(
        out.status.success(),
        "wg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("wg prints UTF-8")
}

/// Polls `f` every 100 ms until it returns true (then returns how long that took) or `limit`
/// passes (then `None`).
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if f() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
