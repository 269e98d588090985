//! The UAPI socket `/var/run/wireguard/<iface>.sock`: accepts connections from `wg` (or
//! `ferrowg`) and answers `get=1` / `set=1` requests against the shared state.
//!
//! Who may talk to it: the socket is bound under umask 0177, so it is mode 0600 from the moment
//! it exists, and a connection is served only when the kernel reports (`SO_PEERCRED`) that its
//! peer runs as root or as the daemon's own user; others are closed unanswered. Requests may
//! carry a private key or a PIN and `get` replies carry the private key: the connection's read
//! buffer and every `get` reply are wiped after use.

use std::io::{BufRead, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use ferrowg_conf::uapi::reply::{errno_reply, write_get_response_ext};
use ferrowg_conf::uapi::request::{read_request, Request};
use ferrowg_conf::uapi::{socket_path, Errno, Limits, SetRequest, SOCKET_DIR};

use zeroize::{Zeroize, Zeroizing};

use crate::datapath::{Shared, POLL};
use crate::state::open_token_key;

/// The umask the socket is bound under: it is created with mode 0600 (rw for its owner).
const SOCKET_UMASK: u32 = 0o177;
/// The size of a connection's read buffer.
const READ_BUF: usize = 8192;

/// Creates the listening socket, refusing if another daemon already serves `iface`.
pub fn listen(iface: &str) -> std::io::Result<UnixListener> {
    std::fs::create_dir_all(SOCKET_DIR)?;
    std::fs::set_permissions(SOCKET_DIR, std::fs::Permissions::from_mode(0o755))?;
    let path = socket_path(iface);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is already in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = ferrowg_sys::creds::with_umask(SOCKET_UMASK, || UnixListener::bind(&path))?;
    // Already 0600 from the umask; also when the file system ignores the mask.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves connections until shutdown.
pub fn serve(shared: Arc<Shared>, listener: UnixListener) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((conn, _)) => {
                if !allowed(&conn) {
                    continue;
                }
                let shared = shared.clone();
                // One thread per connection, as wireguard-go does; each ends with its client.
                let spawned = std::thread::Builder::new()
                    .name("uapi-conn".into())
                    .spawn(move || handle(&shared, conn));
                if let Err(e) = spawned {
                    log::warn!("UAPI: cannot start a connection thread: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Sleeps until a client connects, waking now and then for the shutdown flag.
                if let Err(e) = ferrowg_sys::wait_readable(&listener, Some(POLL)) {
                    log::warn!("UAPI: waiting for connections: {e}");
                    std::thread::sleep(POLL);
                }
            }
            Err(e) => {
                log::warn!("UAPI accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Whether the connection's peer runs as root or as the daemon's user; logs a refusal.
fn allowed(conn: &UnixStream) -> bool {
    match ferrowg_sys::creds::peer_uid(conn) {
        Ok(uid) if may_connect(uid, ferrowg_sys::creds::euid()) => true,
        Ok(uid) => {
            log::warn!("UAPI: refused a connection from uid {uid} (only root and the daemon's user may connect)");
            false
        }
        Err(e) => {
            log::warn!("UAPI: refused a connection whose peer is unknown (SO_PEERCRED: {e})");
            false
        }
    }
}

/// The rule: root, or the user the daemon runs as.
fn may_connect(peer: u32, daemon: u32) -> bool {
    peer == 0 || peer == daemon
}

/// A buffered reader whose buffer is zeroed when dropped (what `BufReader` does not do): it
/// holds the raw request text, private keys and PINs included.
struct WipingReader<R> {
    inner: R,
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    filled: usize,
}

impl<R: Read> WipingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Zeroizing::new(vec![0; READ_BUF]),
            pos: 0,
            filled: 0,
        }
    }
}

impl<R: Read> Read for WipingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let avail = self.fill_buf()?;
            let n = avail.len().min(out.len());
            out[..n].copy_from_slice(&avail[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for WipingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.filled {
            // What was consumed is wiped before the buffer is reused.
            self.buf[..self.filled].zeroize();
            self.filled = self.inner.read(&mut self.buf)?;
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

/// Applies a `set=1` request to the running interface, as the control socket does: a token
/// key it names is opened first, without the lock; on error nothing has changed.
pub fn apply_set(shared: &Shared, req: &SetRequest) -> Result<(), Errno> {
    let current = shared.lock().key_uri.clone();
    let result = open_token_key(req, current.as_ref()).and_then(|key| {
        let mut st = shared.lock();
        let r = st.apply_with_key(req, key);
        shared.nudge(&st);
        r
    });
    shared.timer_wake.notify_one();
    result
}

fn handle(shared: &Shared, conn: UnixStream) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = WipingReader::new(conn);
    let limits = Limits::default();
    loop {
        let reply = Zeroizing::new(match read_request(&mut reader, &limits) {
            Ok(None) => return,
            // The reply ends with errno=0.
            Ok(Some(Request::Get)) => {
                let st = shared.lock();
                write_get_response_ext(&st.snapshot(), &st.uapi_extensions())
            }
            Ok(Some(Request::Set(req))) => match apply_set(shared, &req) {
                Ok(()) => errno_reply(None),
                Err(e) => {
                    log::warn!("UAPI set refused: {e}");
                    errno_reply(Some(e))
                }
            },
            Err(e) => match e.errno() {
                Some(errno) => {
                    log::warn!("UAPI: {e}");
                    errno_reply(Some(errno))
                }
                None => return,
            },
        });
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_and_the_daemons_user_may_connect() {
        assert!(may_connect(0, 0));
        assert!(may_connect(0, 1000));
        assert!(may_connect(1000, 1000));
        assert!(!may_connect(65534, 0));
        assert!(!may_connect(1001, 1000));
    }

    #[test]
    fn the_reader_wipes_what_it_consumed_and_reads_like_bufreader() {
        let text = b"set=1\nprivate_key=4141\n\nget=1\n\n".to_vec();
        let mut r = WipingReader::new(&text[..]);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while r.read_until(b'\n', &mut line).unwrap() > 0 {
            lines.push(std::mem::take(&mut line));
        }
        assert_eq!(lines.concat(), text);
        // At end of input the consumed bytes are gone from the buffer.
        assert!(r.buf.iter().all(|&b| b == 0));
        let mut r = WipingReader::new(&text[..]);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, text);
    }
}
