//! The client side of the UAPI socket: list the interfaces with a live socket, `get=1` and
//! `set=1` with bounded replies. Any daemon that speaks the cross-platform UAPI answers it
//! (ferrowg, wireguard-go, boringtun).

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use ferrowg_conf::uapi::reply::{parse_get_response, parse_set_response, GetError};
use ferrowg_conf::uapi::{announces, FEATURE_ENDPOINT_HOST};
use ferrowg_conf::uapi::{socket_path, DeviceState, Errno, InterfaceOp, SetRequest, SOCKET_DIR};

use super::CliError;

/// The interfaces with a live UAPI socket, sorted.
pub fn interfaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(SOCKET_DIR) else {
        return Vec::new();
    };
    let mut out: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".sock"))
                .map(String::from)
        })
        .filter(|n| UnixStream::connect(socket_path(n)).is_ok())
        .collect();
    out.sort();
    out
}

fn connect(iface: &str) -> Result<UnixStream, CliError> {
    let path = socket_path(iface);
    let s = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => CliError::new(
            format!("Unable to access interface {iface}: No such device"),
        ),
        std::io::ErrorKind::PermissionDenied => CliError::new(format!(
            "Unable to access interface {iface}: Permission denied"
        )),
        _ => CliError::new(format!("Unable to access interface {iface}: {e}")),
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    Ok(s)
}

/// `get=1`: the interface's state.
pub fn get(iface: &str) -> Result<DeviceState, CliError> {
    let text = get_raw(iface)?;
    parse_get_response(&text)
        .map_err(|e| CliError::new(format!("Unable to access interface {iface}: {e}")))
}

/// `get=1`: the reply as received (for the extension lines [`get`] does not keep).
pub fn get_raw(iface: &str) -> Result<Vec<u8>, CliError> {
    let mut s = connect(iface)?;
    s.write_all(b"get=1\n\n")
        .map_err(|e| CliError::new(format!("Unable to access interface {iface}: {e}")))?;
    let mut text = Vec::new();
    read_reply(&mut s, &mut text)?;
    Ok(text)
}

/// Whether the daemon of `iface` announces, in its `get=1` reply, that it keeps endpoint host
/// names ([`FEATURE_ENDPOINT_HOST`]). A ferrowg daemon does; wireguard-go, boringtun and older
/// ferrowg daemons do not, and would refuse the request with EINVAL.
fn daemon_takes_endpoint_hosts(iface: &str) -> Result<bool, CliError> {
    Ok(announces(&get_raw(iface)?, FEATURE_ENDPOINT_HOST))
}

/// Reads one reply (up to and including its empty line) with a size bound.
fn read_reply(s: &mut UnixStream, out: &mut Vec<u8>) -> Result<(), CliError> {
    use std::io::BufRead;
    let mut r = BufReader::new(s);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::new(format!("UAPI read: {e}")))?;
        if n == 0 {
            return Ok(());
        }
        out.extend_from_slice(&line);
        if line == b"\n" {
            return Ok(());
        }
        if out.len() > 64 << 20 {
            return Err(CliError::new("UAPI reply too large"));
        }
    }
}

/// Sends a `set=1` request. Host names of endpoints (ferrowg's extension) go only to a
/// daemon that announces it understands them ([`daemon_takes_endpoint_hosts`]); for any other
/// the request is exactly what wg(8) sends.
pub fn set(iface: &str, req: &SetRequest) -> Result<(), CliError> {
    let stripped;
    let req = if req.has_endpoint_hosts() && !daemon_takes_endpoint_hosts(iface)? {
        let mut plain = req.clone();
        plain.remove_endpoint_hosts();
        stripped = plain;
        &stripped
    } else {
        req
    };
    let mut s = connect(iface)?;
    s.write_all(req.to_uapi().as_bytes())
        .map_err(|e| CliError::new(format!("Unable to modify interface {iface}: {e}")))?;
    let mut text = Vec::new();
    read_reply(&mut s, &mut text)?;
    parse_set_response(&text).map_err(|e| {
        // A refused token key: say which part failed (the daemon's log has the details).
        let uri = req
            .interface
            .iter()
            .any(|op| matches!(op, InterfaceOp::PrivateKeyUri(_)));
        let why = match &e {
            GetError::Remote(errno) if uri => Errno::explain_token_errno(errno.0),
            _ => None,
        };
        match why {
            Some(why) => CliError::new(format!(
                "Unable to modify interface {iface}: {why} ({e}; the daemon's log says more)"
            )),
            None => CliError::new(format!("Unable to modify interface {iface}: {e}")),
        }
    })
}
