//! The `get=1` reply and the `errno=` status that ends every reply: writing them in
//! wireguard-go's layout (the daemon) and reading them back as wg(8) does (the command line).

use std::fmt::Write;
use std::io::BufRead;

use super::line::{read_line_bounded, Line};
use super::{hex_or_zero, DeviceState, Errno, Limits, PeerState};
use crate::addr::{parse_uapi_endpoint, AllowedIp, HostEndpoint};
use crate::grammar::decimal;
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// Writes the reply to `get=1`, `errno=0` and the final empty line included, in wireguard-go's
/// order: `private_key` (when set), `listen_port` and `fwmark` (when non-zero), then per peer
/// `public_key`, `preshared_key` (zeros when none), `protocol_version`, `endpoint` (when known),
/// ferrowg's `ferrowg_endpoint_host` (when the endpoint was given as a name),
/// `last_handshake_time_sec`, `last_handshake_time_nsec`, `tx_bytes`, `rx_bytes`,
/// `persistent_keepalive_interval` and one `allowed_ip` per prefix. Addresses are formatted as Go
/// formats them (RFC 5952).
pub fn write_get_response(state: &DeviceState) -> String {
    write_get_response_ext(state, &[])
}

/// [`write_get_response`] with extension lines (`key`, `value`) after the interface's own
/// lines and before the first peer. wg(8) ignores keys it does not know.
pub fn write_get_response_ext(state: &DeviceState, extensions: &[(&str, String)]) -> String {
    // The reply holds the private and preshared keys: it is measured first and written into an
    // allocation of exactly its size, so that no growth leaves a copy of a key in freed memory
    // (the caller wipes the one copy after sending it).
    let mut length = ByteCount(0);
    write_reply(&mut length, state, extensions);
    let mut out = String::with_capacity(length.0);
    write_reply(&mut out, state, extensions);
    out
}

/// Counts the bytes a reply would take.
struct ByteCount(usize);

impl Write for ByteCount {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

fn write_reply<W: Write>(out: &mut W, state: &DeviceState, extensions: &[(&str, String)]) {
    if let Some(key) = state.private_key.as_ref().filter(|k| !k.is_zero()) {
        let hex = Zeroizing::new(key.to_hex());
        let _ = writeln!(out, "private_key={}", hex.as_str());
    }
    if state.listen_port != 0 {
        let _ = writeln!(out, "listen_port={}", state.listen_port);
    }
    if state.fwmark != 0 {
        let _ = writeln!(out, "fwmark={}", state.fwmark);
    }
    for (key, value) in extensions {
        let _ = writeln!(out, "{key}={value}");
    }
    for peer in &state.peers {
        write_peer(out, peer);
    }
    let _ = out.write_str("errno=0\n\n");
}

fn write_peer<W: Write>(out: &mut W, peer: &PeerState) {
    let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
    let psk = Zeroizing::new(hex_or_zero(
        peer.preshared_key.as_ref().map(PresharedKey::to_hex),
    ));
    let _ = writeln!(out, "preshared_key={}", psk.as_str());
    let _ = writeln!(out, "protocol_version={}", peer.protocol_version);
    if let Some(endpoint) = peer.endpoint {
        let _ = writeln!(out, "endpoint={endpoint}");
    }
    if let Some(host) = &peer.endpoint_host {
        let _ = writeln!(out, "{}={host}", super::UAPI_KEY_ENDPOINT_HOST);
    }
    let _ = writeln!(
        out,
        "last_handshake_time_sec={}",
        peer.last_handshake_time_sec
    );
    let _ = writeln!(
        out,
        "last_handshake_time_nsec={}",
        peer.last_handshake_time_nsec
    );
    let _ = writeln!(out, "tx_bytes={}", peer.tx_bytes);
    let _ = writeln!(out, "rx_bytes={}", peer.rx_bytes);
    let _ = writeln!(
        out,
        "persistent_keepalive_interval={}",
        peer.persistent_keepalive_interval
    );
    for ip in &peer.allowed_ips {
        let _ = writeln!(out, "allowed_ip={ip}");
    }
}

/// The status reply ending every operation: `errno=0\n\n` on success, else the negated errno as
/// wireguard-go writes it (`errno=-22\n\n`).
pub fn errno_reply(error: Option<Errno>) -> String {
    match error {
        None => "errno=0\n\n".to_owned(),
        Some(e) => format!("errno={}\n\n", e.wire()),
    }
}

/// Why a `get=1` reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The daemon answered with a non-zero errno (sign as received dropped).
    #[error("the daemon replied with {0}")]
    Remote(Errno),
    /// A line that does not belong in a reply: 1-based line number and what is wrong.
    #[error("malformed reply, line {line}: {reason}")]
    Malformed {
        /// 1-based line of the reply.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The reply ended (or exceeded the limits) before `errno=` and the empty line.
    #[error("truncated reply")]
    Truncated,
    /// Reading failed.
    #[error("read failed: {0:?}")]
    Io(std::io::ErrorKind),
}

/// Reads and parses a `get=1` reply from a connection, within `limits`.
pub fn read_get_response<R: BufRead + ?Sized>(
    reader: &mut R,
    limits: &Limits,
) -> Result<DeviceState, GetError> {
    let mut reply = GetReply::default();
    let mut buf = Vec::new();
    let mut total = 0usize;
    loop {
        let read = read_line_bounded(reader, &mut buf, limits.max_line)
            .map_err(|e| GetError::Io(e.kind()))?;
        total += buf.len() + 1;
        if read != Line::Complete || total > limits.max_total {
            return Err(GetError::Truncated);
        }
        if buf.is_empty() {
            return reply.finish();
        }
        reply.line(&buf)?;
    }
}

/// Parses a complete `get=1` reply held in memory (through its empty line).
pub fn parse_get_response(text: &[u8]) -> Result<DeviceState, GetError> {
    read_get_response(
        &mut &text[..],
        &Limits {
            max_line: usize::MAX,
            max_total: usize::MAX,
        },
    )
}

/// Accumulates a reply line by line. Unknown keys are ignored, as wg(8) ignores them (other
/// daemons add their own); known keys must be well-formed and in the right place.
#[derive(Default)]
struct GetReply {
    state: DeviceState,
    line_no: usize,
    errno: Option<i32>,
}

impl GetReply {
    fn line(&mut self, line: &[u8]) -> Result<(), GetError> {
        self.line_no += 1;
        let malformed = |reason: String| GetError::Malformed {
            line: self.line_no,
            reason,
        };
        if self.errno.is_some() {
            return Err(malformed("data after errno".into()));
        }
        let line = core::str::from_utf8(line).map_err(|_| malformed("not UTF-8".into()))?;
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| malformed("no '='".into()))?;
        let bad = || malformed(format!("invalid {key} {value:?}"));
        let num = |max: u64| decimal::<u64>(value).filter(|&n| n <= max).ok_or_else(bad);
        let peer = self.state.peers.last_mut();
        match (key, peer) {
            ("errno", _) => {
                let n = value.strip_prefix('-').unwrap_or(value);
                self.errno = Some(decimal(n).ok_or_else(bad)?);
            }
            ("public_key", _) => {
                let pk = PublicKey::from_hex(value).map_err(|_| bad())?;
                self.state.peers.push(PeerState::new(pk));
            }
            ("private_key", None) => {
                let sk = PrivateKey::from_hex(value).map_err(|_| bad())?;
                self.state.private_key = sk.nonzero();
            }
            ("listen_port", None) => self.state.listen_port = decimal(value).ok_or_else(bad)?,
            ("fwmark", None) => self.state.fwmark = decimal(value).ok_or_else(bad)?,
            ("private_key" | "listen_port" | "fwmark", Some(_)) => {
                return Err(malformed(format!("interface key {key} after a peer")));
            }
            ("preshared_key", Some(p)) => {
                let psk = PresharedKey::from_hex(value).map_err(|_| bad())?;
                p.preshared_key = psk.nonzero();
            }
            ("endpoint", Some(p)) => p.endpoint = Some(parse_uapi_endpoint(value).ok_or_else(bad)?),
            (super::UAPI_KEY_ENDPOINT_HOST, Some(p)) => {
                p.endpoint_host = Some(HostEndpoint::parse(value).ok_or_else(bad)?);
            }
            ("last_handshake_time_sec", Some(p)) => {
                p.last_handshake_time_sec = num(i64::MAX as u64)?
            }
            ("last_handshake_time_nsec", Some(p)) => {
                p.last_handshake_time_nsec = num(999_999_999)? as u32;
            }
            ("rx_bytes", Some(p)) => p.rx_bytes = decimal(value).ok_or_else(bad)?,
            ("tx_bytes", Some(p)) => p.tx_bytes = decimal(value).ok_or_else(bad)?,
            ("persistent_keepalive_interval", Some(p)) => {
                p.persistent_keepalive_interval = decimal(value).ok_or_else(bad)?;
            }
            ("allowed_ip", Some(p)) => p
                .allowed_ips
                .push(AllowedIp::parse_uapi(value).ok_or_else(bad)?),
            ("protocol_version", Some(p)) => {
                p.protocol_version = decimal(value).ok_or_else(bad)?;
            }
            (
                "preshared_key"
                | "endpoint"
                | "last_handshake_time_sec"
                | "last_handshake_time_nsec"
                | "rx_bytes"
                | "tx_bytes"
                | "persistent_keepalive_interval"
                | "allowed_ip"
                | "protocol_version",
                None,
            ) => return Err(malformed(format!("peer key {key} before any public_key"))),
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<DeviceState, GetError> {
        match self.errno {
            None => Err(GetError::Truncated),
            Some(0) => Ok(self.state),
            Some(n) => Err(GetError::Remote(Errno(n))),
        }
    }
}

/// Parses the `errno=N\n\n` status that answers a `set=1` request.
pub fn parse_set_response(text: &[u8]) -> Result<(), GetError> {
    let line = text.strip_suffix(b"\n\n").ok_or(GetError::Truncated)?;
    if line.contains(&b'\n') || !line.starts_with(b"errno=") {
        return Err(GetError::Malformed {
            line: 1,
            reason: "expected errno=".into(),
        });
    }
    let mut reply = GetReply::default();
    reply.line(line)?;
    reply.finish().map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const SK: &str = "YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=";

    fn pk(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    /// The reply holds keys: it is written into one allocation of exactly its size, so no
    /// growth leaves a copy behind (a reply grown by pushing would end with spare capacity).
    #[test]
    fn get_reply_is_allocated_once_at_its_size() {
        let mut state = sample_state();
        for b in 2..40 {
            let mut p = PeerState::new(pk(b));
            p.preshared_key = Some(PresharedKey::from_bytes([b; 32]));
            p.allowed_ips = vec![AllowedIp::parse_uapi("10.0.0.0/8").unwrap(); 20];
            state.peers.push(p);
        }
        let ext = [("ferrowg_public_key", "ab".repeat(32))];
        let reply = write_get_response_ext(&state, &ext);
        assert_eq!(reply.capacity(), reply.len());
        assert!(reply.starts_with("private_key=") && reply.ends_with("errno=0\n\n"));
    }

    fn sample_state() -> DeviceState {
        let mut p = PeerState::new(pk(1));
        p.preshared_key = Some(PresharedKey::from_bytes([2; 32]));
        p.endpoint = Some("[fe80::1%3]:51820".parse().unwrap());
        p.last_handshake_time_sec = 1_700_000_000;
        p.last_handshake_time_nsec = 999_999_999;
        p.rx_bytes = u64::MAX;
        p.tx_bytes = 1;
        p.persistent_keepalive_interval = 65535;
        p.allowed_ips = vec![AllowedIp::parse_uapi("10.0.0.0/8").unwrap()];
        DeviceState {
            private_key: Some(PrivateKey::from_base64(SK).unwrap()),
            listen_port: 65535,
            fwmark: u32::MAX,
            peers: vec![p, PeerState::new(pk(3))],
        }
    }

    #[test]
    fn get_reply_round_trips_through_the_writer() {
        let state = sample_state();
        let text = write_get_response(&state);
        assert_eq!(parse_get_response(text.as_bytes()), Ok(state));
    }

    #[test]
    fn get_reply_errors() {
        assert_eq!(
            parse_get_response(b"errno=-22\n\n"),
            Err(GetError::Remote(Errno::EINVAL))
        );
        assert_eq!(
            parse_get_response(b"errno=71\n\n"),
            Err(GetError::Remote(Errno::EPROTO))
        );
        assert_eq!(
            parse_get_response(b"listen_port=1\n"),
            Err(GetError::Truncated)
        );
        assert_eq!(
            parse_get_response(b"listen_port=1\n\n"),
            Err(GetError::Truncated)
        );
        let bad = |t: &[u8]| matches!(parse_get_response(t), Err(GetError::Malformed { .. }));
        assert!(bad(b"listen_port=65536\nerrno=0\n\n"));
        assert!(bad(b"rx_bytes=1\nerrno=0\n\n"));
        assert!(bad(b"public_key=00\nerrno=0\n\n"));
        assert!(bad(b"errno=0\nlisten_port=1\n\n"));
        assert!(bad(b"junk\nerrno=0\n\n"));
        let pk1 = "01".repeat(32);
        assert!(bad(
            format!("public_key={pk1}\nlisten_port=1\nerrno=0\n\n").as_bytes()
        ));
        // Unknown keys are ignored, as by wg(8).
        let state = parse_get_response(b"jc=4\nlisten_port=9\nerrno=0\n\n").unwrap();
        assert_eq!(state.listen_port, 9);
    }

    #[test]
    fn get_reply_reading_is_bounded() {
        let limits = Limits {
            max_line: 32,
            max_total: 64,
        };
        let long = format!("listen_port={}\nerrno=0\n\n", "1".repeat(100));
        assert_eq!(
            read_get_response(&mut long.as_bytes(), &limits),
            Err(GetError::Truncated)
        );
        let many = "listen_port=1\n".repeat(10) + "errno=0\n\n";
        assert_eq!(
            read_get_response(&mut many.as_bytes(), &limits),
            Err(GetError::Truncated)
        );
    }

    #[test]
    fn set_response() {
        assert_eq!(parse_set_response(b"errno=0\n\n"), Ok(()));
        assert_eq!(
            parse_set_response(b"errno=-98\n\n"),
            Err(GetError::Remote(Errno::EADDRINUSE))
        );
        assert!(parse_set_response(b"errno=0\n").is_err());
    }

    #[test]
    fn get_response_layout_matches_wireguard_go() {
        // Layout observed from wireguard-go 0.0.20220316 (see the module header).
        let mut peer = PeerState::new(PublicKey::from_bytes([0x11; 32]));
        peer.endpoint = Some("[::ffff:1.2.3.4]:5".parse().unwrap());
        peer.allowed_ips = vec![
            AllowedIp::parse_uapi("10.0.0.0/24").unwrap(),
            AllowedIp::parse_uapi("::ffff:1.2.3.4/128").unwrap(),
        ];
        let state = DeviceState {
            listen_port: 57145,
            peers: vec![peer],
            ..Default::default()
        };
        let expected = format!(
            "listen_port=57145\npublic_key={PK1}\npreshared_key={}\nprotocol_version=1\n\
             endpoint=[::ffff:1.2.3.4]:5\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n\
             tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nallowed_ip=10.0.0.0/24\n\
             allowed_ip=::ffff:1.2.3.4/128\nerrno=0\n\n",
            "0".repeat(64)
        );
        assert_eq!(write_get_response(&state), expected);
        assert_eq!(write_get_response(&DeviceState::default()), "errno=0\n\n");
    }

    #[test]
    fn errno_replies_are_negative_like_wireguard_go() {
        assert_eq!(errno_reply(None), "errno=0\n\n");
        assert_eq!(errno_reply(Some(Errno::EINVAL)), "errno=-22\n\n");
        assert_eq!(errno_reply(Some(Errno::EPROTO)), "errno=-71\n\n");
    }
}
