//! A fake UAPI daemon on a Unix socket, for comparing ferrowg with the stock `wg` byte for
//! byte: it answers `get=1` with a canned reply (produced by ferrowg's own writer) and records
//! every `set=1` request, answering with a canned status.
//!
//! ```text
//!   wg(8) / ferrowg CLI --- /var/run/wireguard/<name>.sock --- FakeDaemon (a thread)
//!                                                               get=1 -> Replies::get
//!                                                               set=1 -> recorded, Replies::set
//! ```

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::process::exec;

/// Where wg(8) and every userspace implementation put their UAPI sockets (stated here as wg
/// states it, independently of ferrowg's own definition, which the tests check).
pub const SOCKET_DIR: &str = "/var/run/wireguard";

/// The UAPI socket of `iface`.
pub fn socket_path(iface: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{iface}.sock"))
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
    /// Its socket.
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    /// The `set=1` requests received so far, byte for byte.
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

/// Runs a shell command in new mount and network namespaces where `dir` is mounted over wg's
/// socket directory, so `wg show all` sees exactly the sockets in `dir`.
pub fn in_private_socket_dir(dir: &Path, script: &str) -> Output {
    std::fs::create_dir_all(SOCKET_DIR).unwrap();
    let script = format!("mount --bind '{}' {SOCKET_DIR} && {script}", dir.display());
    exec(
        "unshare",
        &["--mount", "--net", "sh", "-c", &script],
        &[],
        b"",
    )
}
