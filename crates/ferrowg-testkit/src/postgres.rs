//! A private PostgreSQL server for the hub's tests, from Debian's packages: its own data
//! directory, listening on 127.0.0.1 at a free port (and a Unix socket inside the directory),
//! trust authentication for the loopback only. One server per test process, started on first
//! use; a fresh database per caller ([`database_url`]).
//!
//! Which backend the hub's tests use is [`backend`]: `FERROWG_TEST_DATABASE=postgres` selects
//! PostgreSQL (the whole store and API suite runs again on it); anything else, SQLite.
//!
//! Clean-up, also when a test panics or the process is killed: a watcher process started with
//! the server polls the test process and, once it is gone, stops the server (`pg_ctl stop -m
//! immediate`) and deletes the directory. PostgreSQL refuses to run as root: as root, the
//! server runs as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::wait_for;

/// The environment switch: `postgres` runs the hub's tests on PostgreSQL.
pub const TEST_DATABASE: &str = "FERROWG_TEST_DATABASE";

/// The database backend the hub's tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// An SQLite file in a temporary directory.
    Sqlite,
    /// A database on this process's private PostgreSQL server.
    Postgres,
}

/// The backend selected by [`TEST_DATABASE`].
pub fn backend() -> TestBackend {
    match std::env::var(TEST_DATABASE).as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        _ => TestBackend::Sqlite,
    }
}

/// A running server.
struct Server {
    port: u16,
    /// Counts the databases handed out.
    next: AtomicU32,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The URL of a new, empty database on this process's server (started on first use); panics
/// with the server's log when it cannot start.
pub fn database_url() -> String {
    let server = SERVER.get_or_init(start);
    let n = server.next.fetch_add(1, Ordering::Relaxed);
    let name = format!("t{n}");
    let psql = Command::new(bin("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            "ferrowg",
        ])
        .args([
            "-d",
            "postgres",
            "-q",
            "-c",
            &format!("CREATE DATABASE {name}"),
        ])
        .output()
        .expect("run psql");
    assert!(
        psql.status.success(),
        "CREATE DATABASE {name}: {}",
        String::from_utf8_lossy(&psql.stderr)
    );
    format!("postgres://ferrowg@127.0.0.1:{}/{name}", server.port)
}

/// PostgreSQL's program `name` from the newest installed version.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (apt-get install postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("bin").join(name).is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .map(|p| p.join("bin").join(name))
        .unwrap_or_else(|| panic!("PostgreSQL's {name} is not installed"))
}

/// Runs `program args` as the server's user (`postgres` when we are root).
fn as_server_user(program: &Path, args: &[&str]) -> Command {
    if ferrowg_sys::process::is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

/// A free TCP port on 127.0.0.1 (released before the server binds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start() -> Server {
    let dir = std::env::temp_dir().join(format!("ferrowg-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the server's directory");
    if ferrowg_sys::process::is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(chown.success(), "chown the server's directory");
    }
    let data = dir.join("data");
    let data_s = data.to_str().expect("a UTF-8 temporary directory");
    let init = as_server_user(
        &bin("initdb"),
        &[
            "-D",
            data_s,
            "-U",
            "ferrowg",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )
    .output()
    .expect("run initdb");
    assert!(
        init.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let port = free_port();
    let log = dir.join("server.log");
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=200",
        dir.display()
    );
    let started = as_server_user(
        &bin("pg_ctl"),
        &[
            "-D",
            data_s,
            "-l",
            log.to_str().unwrap_or(""),
            "-o",
            &options,
            "-w",
            "-t",
            "30",
            "start",
        ],
    )
    .stdout(Stdio::null())
    .status()
    .expect("run pg_ctl");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(started.success(), "pg_ctl start failed:\n{}", log_text());
    watch(&dir, data_s);
    let ready = wait_for(Duration::from_secs(30), || {
        Command::new(bin("pg_isready"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        ready.is_some(),
        "PostgreSQL did not answer:\n{}",
        log_text()
    );
    Server {
        port,
        next: AtomicU32::new(0),
    }
}

/// Starts the watcher that stops the server and deletes `dir` once this process is gone.
fn watch(dir: &Path, data: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         {stop} >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        stop = stop_command(data),
        dir = dir.display(),
    );
    // Started in the background by a shell that exits at once: the watcher is nobody's child
    // to wait for, and outlives this process.
    let started = Command::new("sh")
        .args(["-c", &format!("( {script} ) </dev/null >/dev/null 2>&1 &")])
        .status()
        .expect("start the server's watcher");
    assert!(started.success(), "start the server's watcher");
}

/// The shell command that stops the server at once.
fn stop_command(data: &str) -> String {
    let pg_ctl = bin("pg_ctl");
    let ctl = format!("{} -D '{data}' -m immediate stop", pg_ctl.display());
    if ferrowg_sys::process::is_root() {
        format!("runuser -u postgres -- {ctl}")
    } else {
        ctl
    }
}
