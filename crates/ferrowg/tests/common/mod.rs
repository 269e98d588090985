//! Test harness shared by the interop tests: root checks, unique interface names, a fake UAPI
//! daemon on a Unix socket, and runners for the stock `wg`/`wg-quick`/`wireguard-go`.
//!
//! The fake daemon answers `get=1` with a canned reply (produced by ferrowg's own writer) and
//! records every `set=1` request byte for byte, answering with a canned status.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where wg(8) looks for userspace interfaces.
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// Whether the root-only tests should run. Not being root is a failure unless
/// `FERROWG_SKIP_ROOT_TESTS=1`, so that CI (which runs as root) cannot silently skip them.
pub fn root_tests_enabled() -> bool {
    let skip = std::env::var("FERROWG_SKIP_ROOT_TESTS").is_ok_and(|v| v == "1");
    // The owner of /proc/self is the effective uid.
    let is_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if is_root && tool_exists("wg") {
        return true;
    }
    if skip {
        eprintln!("skipping: needs root and wg(8) (FERROWG_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!(
        "these interop tests need root and the stock wg(8) binary (root: {is_root}, wg: {}); \
         set FERROWG_SKIP_ROOT_TESTS=1 to skip them",
        tool_exists("wg")
    );
}

/// Whether a program is on the PATH.
pub fn tool_exists(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// A fresh interface name, `fwgt<pid><n>`, at most 15 characters.
pub fn iface_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("fwgt{}{n}", std::process::id());
    assert!(name.len() <= 15, "{name}");
    name
}

/// A private temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ferrowg-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the fake daemon says.
#[derive(Clone)]
pub struct Replies {
    /// The full reply to `get=1` (ending with `errno=0\n\n`).
    pub get: String,
    /// The status reply to `set=1`.
    pub set: String,
}

/// A fake UAPI daemon listening on `<dir>/<name>.sock` in a background thread.
pub struct FakeDaemon {
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    pub sets: Arc<Mutex<Vec<Vec<u8>>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDaemon {
    /// Listens in wg's socket directory (created if missing).
    pub fn start(name: &str, replies: Replies) -> Self {
        std::fs::create_dir_all(SOCKET_DIR).unwrap();
        Self::start_in(Path::new(SOCKET_DIR), name, replies)
    }

    /// Listens in `dir`.
    pub fn start_in(dir: &Path, name: &str, replies: Replies) -> Self {
        let path = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sets = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, sets) = (stop.clone(), sets.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &replies, &sets);
                    }
                }
            })
        };
        Self {
            path,
            stop,
            sets,
            thread: Some(thread),
        }
    }

    /// The `set=1` requests received so far.
    pub fn sets(&self) -> Vec<Vec<u8>> {
        self.sets.lock().unwrap().clone()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(conn: UnixStream, replies: &Replies, sets: &Mutex<Vec<Vec<u8>>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut op = Vec::new();
        if reader.read_until(b'\n', &mut op).unwrap_or(0) == 0 {
            return;
        }
        match op.as_slice() {
            b"get=1\n" => {
                let mut empty = Vec::new();
                let _ = reader.read_until(b'\n', &mut empty);
                let _ = writer.write_all(replies.get.as_bytes());
            }
            b"set=1\n" => {
                let mut request = op.clone();
                loop {
                    let mut line = Vec::new();
                    if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    request.extend_from_slice(&line);
                    if line == b"\n" {
                        break;
                    }
                }
                sets.lock().unwrap().push(request);
                let _ = writer.write_all(replies.set.as_bytes());
            }
            _ => return,
        }
    }
}

/// Runs a program with a clean `WG_*` environment, stdin from `input`.
pub fn run(program: &str, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Output {
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
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `wg` and returns its standard output, asserting success.
pub fn wg(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run("wg", args, env, b"");
    assert!(
        out.status.success(),
        "wg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a shell command in new mount and network namespaces where `dir` is mounted over wg's
/// socket directory, so `wg show all` sees exactly the sockets in `dir`.
pub fn in_private_socket_dir(dir: &Path, script: &str) -> Output {
    std::fs::create_dir_all(SOCKET_DIR).unwrap();
    let script = format!("mount --bind '{}' {SOCKET_DIR} && {script}", dir.display());
    run(
        "unshare",
        &["--mount", "--net", "sh", "-c", &script],
        &[],
        b"",
    )
}
