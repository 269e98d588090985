//! The UAPI socket `/var/run/wireguard/<iface>.sock`: accepts connections from `wg` (or
//! `ferrowg`) and answers `get=1` / `set=1` requests against the shared state.

use std::io::{BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use ferrowg_conf::uapi::reply::{errno_reply, write_get_response_ext};
use ferrowg_conf::uapi::request::{read_request, Request};
use ferrowg_conf::uapi::{socket_path, Limits, SOCKET_DIR};

use crate::datapath::{Shared, POLL};
use crate::state::open_token_key;

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
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves connections until shutdown.
pub fn serve(shared: Arc<Shared>, listener: UnixListener) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((conn, _)) => {
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

fn handle(shared: &Shared, conn: UnixStream) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let limits = Limits::default();
    loop {
        let reply = match read_request(&mut reader, &limits) {
            Ok(None) => return,
            // The reply ends with errno=0.
            Ok(Some(Request::Get)) => {
                let st = shared.lock();
                write_get_response_ext(&st.snapshot(), &st.uapi_extensions())
            }
            Ok(Some(Request::Set(req))) => {
                // A token key is opened before taking the lock (loading and login are slow).
                let current = shared.lock().key_uri.clone();
                let result = open_token_key(&req, current.as_ref())
                    .and_then(|key| shared.lock().apply_with_key(&req, key));
                shared.timer_wake.notify_one();
                match result {
                    Ok(()) => errno_reply(None),
                    Err(e) => {
                        log::warn!("UAPI set refused: {e}");
                        errno_reply(Some(e))
                    }
                }
            }
            Err(e) => match e.errno() {
                Some(errno) => {
                    log::warn!("UAPI: {e}");
                    errno_reply(Some(errno))
                }
                None => return,
            },
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
