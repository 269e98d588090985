//! The `set=1` request and the framing of every request: reading a request from a connection
//! with bounded memory, parsing a `set=1` body into a validated [`SetRequest`], and writing a
//! [`SetRequest`] as wg(8) writes it.
//!
//! Compatibility target: wireguard-go's `device/uapi.go` (checked against wireguard-go
//! 0.0.20220316 in `tests/wireguard_go.rs`). The errno of every failure is the one wireguard-go
//! returns: a line without `=` is EPROTO; an unknown key, a malformed value, a bad
//! `protocol_version` or a `true`-only flag set to anything else is EINVAL; an unreadable or
//! oversized request is EIO. Replies carry it negated (`errno=-22`), as wireguard-go writes it.
//! Values follow wireguard-go's rules: keys are 64 hex digits, numbers are [`decimal`],
//! prefixes and endpoints are read as Go's `netip` reads them ([`AllowedIp::parse_uapi`],
//! [`parse_uapi_endpoint`]).
//!
//! Differences, all deliberate:
//! - wireguard-go applies each line as it reads it, so a request that fails half-way is half
//!   applied, and it stops reading at the failing line, leaving the rest of the request to be
//!   misread as the next operation. Here the whole request is parsed first (the daemon can then
//!   apply it atomically) and after an error the rest of the request, up to its empty line, is
//!   read and dropped so the connection stays usable.
//! - An empty `private_key=` removes the key, like an all-zero one (wireguard-go: EINVAL).
//! - An IPv6 endpoint zone must be numeric (`[fe80::1%2]:51820`); wireguard-go also takes
//!   interface names.
//! - Nothing is normalised: a private key arrives unclamped and allowed IPs keep their host
//!   bits. The daemon should store the key clamped ([`PrivateKey::clamped`]) and the prefixes
//!   masked ([`AllowedIp::masked`]), as wireguard-go and the kernel do, so `get` reports them so.

use std::fmt::Write as _;
use std::io::{self, BufRead};

use super::line::{read_line_bounded, Line};
use super::{hex_or_zero, Errno, InterfaceOp, Limits, PeerOp, PeerSet, SetRequest};
use crate::addr::{parse_uapi_endpoint, AllowedIp, HostEndpoint, Ntop};
use crate::grammar::{self, decimal};
use ferrowg_keys::key::{KeyError, PresharedKey, PrivateKey, PublicKey};
use zeroize::Zeroizing;

/// An operation read from a UAPI connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `get=1\n\n`.
    Get,
    /// `set=1\n…\n`, parsed and validated.
    Set(SetRequest),
}

/// Why a request was refused. `errno()` is what to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The first line is neither `get=1` nor `set=1`. wireguard-go closes the connection
    /// without a reply; so should the daemon.
    #[error("invalid UAPI operation {0:?}")]
    InvalidOperation(String),
    /// `get=1` was not followed by an empty line.
    #[error("trailing character in UAPI get")]
    GetTrailing,
    /// The `set=1` body was refused.
    #[error(transparent)]
    Set(#[from] SetError),
}

impl RequestError {
    /// The errno to reply with, or `None` when the connection should just be closed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::InvalidOperation(_) => None,
            Self::GetTrailing => Some(Errno::EINVAL),
            Self::Set(e) => Some(e.errno()),
        }
    }
}

/// A refused `set=1` body: the 1-based line within the body and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("UAPI set, line {line}: {kind}")]
pub struct SetError {
    /// 1-based line number within the body (the `set=1` line not counted).
    pub line: usize,
    /// What was wrong.
    pub kind: SetErrorKind,
}

impl SetError {
    /// The errno wireguard-go would reply with.
    pub fn errno(&self) -> Errno {
        match self.kind {
            SetErrorKind::NoEquals => Errno::EPROTO,
            SetErrorKind::LineTooLong | SetErrorKind::TooLarge | SetErrorKind::Io(_) => Errno::EIO,
            _ => Errno::EINVAL,
        }
    }
}

/// Why a `set=1` line was refused. Values of secret keys are never kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetErrorKind {
    /// A line without `=` (EPROTO).
    #[error("line has no '='")]
    NoEquals,
    /// A key that is not an interface key, before the first `public_key=`.
    #[error("invalid UAPI device key: {0:?}")]
    UnknownInterfaceKey(String),
    /// A key that is not a peer key, after a `public_key=`.
    #[error("invalid UAPI peer key: {0:?}")]
    UnknownPeerKey(String),
    /// A key (private, preshared or public) that is not 64 hex digits.
    #[error("{key}: {error}")]
    InvalidKey {
        /// The UAPI key name.
        key: &'static str,
        /// What is wrong with the hex.
        error: KeyError,
    },
    /// A malformed non-secret value.
    #[error("{key}: invalid value {value:?}")]
    InvalidValue {
        /// The UAPI key name.
        key: &'static str,
        /// The value received.
        value: String,
    },
    /// `protocol_version` other than 1.
    #[error("invalid protocol version: {0:?}")]
    ProtocolVersion(String),
    /// A line longer than [`Limits::max_line`].
    #[error("line too long")]
    LineTooLong,
    /// A body larger than [`Limits::max_total`].
    #[error("request too large")]
    TooLarge,
    /// A line that is not UTF-8.
    #[error("line is not UTF-8")]
    NotUtf8,
    /// Reading failed (the kind of the I/O error).
    #[error("read failed: {0:?}")]
    Io(io::ErrorKind),
    /// `ferrowg_private_key_uri=` that is not a valid PKCS#11 URI (the value is not repeated:
    /// it may hold a PIN).
    #[error("ferrowg_private_key_uri: {0}")]
    InvalidKeyUri(ferrowg_keys::pkcs11::UriError),
}

/// Reads the next request from a connection. `Ok(None)` means the peer closed the connection
/// between requests. After an `Err`, reply with [`RequestError::errno`] (or close when it is
/// `None`); the request's remaining lines have been consumed.
pub fn read_request<R: BufRead + ?Sized>(
    reader: &mut R,
    limits: &Limits,
) -> Result<Option<Request>, RequestError> {
    // Lines may carry keys and PINs: one buffer, sized for the longest line so it never moves,
    // zeroed when the request is done.
    let mut buf = Zeroizing::new(Vec::with_capacity(limits.max_line.saturating_add(1)));
    let io_err = |e: io::Error| SetError {
        line: 0,
        kind: SetErrorKind::Io(e.kind()),
    };
    match read_line_bounded(reader, &mut buf, limits.max_line).map_err(io_err)? {
        Line::Eof => return Ok(None),
        Line::Complete if *buf == b"get=1" => {
            return match read_line_bounded(reader, &mut buf, limits.max_line).map_err(io_err)? {
                Line::Complete if buf.is_empty() => Ok(Some(Request::Get)),
                _ => Err(RequestError::GetTrailing),
            };
        }
        Line::Complete if *buf == b"set=1" => {}
        _ => {
            let op = String::from_utf8_lossy(&buf).into_owned();
            return Err(RequestError::InvalidOperation(op));
        }
    }
    let mut parser = SetParser::new(*limits);
    loop {
        let read = read_line_bounded(reader, &mut buf, limits.max_line).map_err(io_err)?;
        let result = match read {
            // wireguard-go applies what it has at end of input, as if the empty line came.
            Line::Eof => return Ok(Some(Request::Set(parser.finish()))),
            Line::Complete if buf.is_empty() => return Ok(Some(Request::Set(parser.finish()))),
            Line::Complete | Line::Partial => parser.line(&buf),
            Line::TooLong => parser.fail(SetErrorKind::LineTooLong),
        };
        if let Err(e) = result {
            if read == Line::Complete || read == Line::TooLong {
                drain_request(reader, &mut buf, limits.max_line);
            }
            return Err(e.into());
        }
    }
}

/// Skips the rest of a refused request, through its empty line (or end of input).
fn drain_request<R: BufRead + ?Sized>(reader: &mut R, buf: &mut Vec<u8>, max: usize) {
    loop {
        match read_line_bounded(reader, buf, max) {
            Ok(Line::Complete) if buf.is_empty() => return,
            Ok(Line::Complete | Line::TooLong) => {}
            Ok(Line::Eof | Line::Partial) | Err(_) => return,
        }
    }
}

/// Parses a `set=1` body held in memory (the text after `set=1\n`), up to its empty line or its
/// end. Limits apply as when reading from a socket.
pub fn parse_set(body: &[u8], limits: &Limits) -> Result<SetRequest, SetError> {
    let mut parser = SetParser::new(*limits);
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.is_empty() {
            break;
        }
        if line.len() > limits.max_line {
            parser.fail(SetErrorKind::LineTooLong)?;
        }
        parser.line(line)?;
        rest = next;
    }
    Ok(parser.finish())
}

/// Incremental `set=1` parser: feed it lines (without `\n`, never empty), then `finish`.
#[derive(Debug)]
pub struct SetParser {
    request: SetRequest,
    limits: Limits,
    line_no: usize,
    total: usize,
}

impl SetParser {
    /// A parser enforcing `limits.max_total` over the lines it is fed.
    pub fn new(limits: Limits) -> Self {
        Self {
            request: SetRequest::default(),
            limits,
            line_no: 0,
            total: 0,
        }
    }

    /// The request parsed so far.
    pub fn finish(self) -> SetRequest {
        self.request
    }

    fn fail(&mut self, kind: SetErrorKind) -> Result<(), SetError> {
        self.line_no += 1;
        Err(SetError {
            line: self.line_no,
            kind,
        })
    }

    /// Parses one line of the body.
    pub fn line(&mut self, line: &[u8]) -> Result<(), SetError> {
        self.line_no += 1;
        self.total += line.len() + 1;
        let err = |kind| SetError {
            line: self.line_no,
            kind,
        };
        if self.total > self.limits.max_total {
            return Err(err(SetErrorKind::TooLarge));
        }
        let line = core::str::from_utf8(line).map_err(|_| err(SetErrorKind::NotUtf8))?;
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| err(SetErrorKind::NoEquals))?;
        if key == "public_key" {
            let public_key = PublicKey::from_hex(value).map_err(|error| {
                err(SetErrorKind::InvalidKey {
                    key: "public_key",
                    error,
                })
            })?;
            self.request.peers.push(PeerSet {
                public_key,
                ops: Vec::new(),
            });
            return Ok(());
        }
        match self.request.peers.last_mut() {
            None => {
                let op = interface_op(key, value).map_err(err)?;
                self.request.interface.push(op);
            }
            Some(peer) => {
                let op = peer_op(key, value).map_err(err)?;
                peer.ops.push(op);
            }
        }
        Ok(())
    }
}

fn interface_op(key: &str, value: &str) -> Result<InterfaceOp, SetErrorKind> {
    Ok(match key {
        "private_key" => InterfaceOp::PrivateKey(private_key(value)?),
        "listen_port" => InterfaceOp::ListenPort(
            grammar::port(value).ok_or_else(|| invalid("listen_port", value))?,
        ),
        "fwmark" => InterfaceOp::FwMark(decimal(value).ok_or_else(|| invalid("fwmark", value))?),
        "replace_peers" => {
            flag("replace_peers", value)?;
            InterfaceOp::ReplacePeers
        }
        crate::uapi::UAPI_KEEP_SESSIONS => {
            flag(crate::uapi::UAPI_KEEP_SESSIONS, value)?;
            InterfaceOp::KeepSessions
        }
        crate::uapi::UAPI_KEY_URI => InterfaceOp::PrivateKeyUri(Box::new(
            ferrowg_keys::pkcs11::Pkcs11Uri::parse(value).map_err(SetErrorKind::InvalidKeyUri)?,
        )),
        _ => return Err(SetErrorKind::UnknownInterfaceKey(key.to_owned())),
    })
}

fn peer_op(key: &str, value: &str) -> Result<PeerOp, SetErrorKind> {
    Ok(match key {
        "remove" => {
            flag("remove", value)?;
            PeerOp::Remove
        }
        "update_only" => {
            flag("update_only", value)?;
            PeerOp::UpdateOnly
        }
        "preshared_key" => {
            let psk = PresharedKey::from_hex(value).map_err(|error| SetErrorKind::InvalidKey {
                key: "preshared_key",
                error,
            })?;
            PeerOp::PresharedKey(psk.nonzero())
        }
        "endpoint" => {
            PeerOp::Endpoint(parse_uapi_endpoint(value).ok_or_else(|| invalid("endpoint", value))?)
        }
        "persistent_keepalive_interval" => PeerOp::PersistentKeepaliveInterval(
            decimal(value).ok_or_else(|| invalid("persistent_keepalive_interval", value))?,
        ),
        "replace_allowed_ips" => {
            flag("replace_allowed_ips", value)?;
            PeerOp::ReplaceAllowedIps
        }
        "allowed_ip" => PeerOp::AllowedIp(
            AllowedIp::parse_uapi(value).ok_or_else(|| invalid("allowed_ip", value))?,
        ),
        "protocol_version" => {
            if value != "1" {
                return Err(SetErrorKind::ProtocolVersion(value.to_owned()));
            }
            PeerOp::ProtocolVersion(1)
        }
        crate::uapi::UAPI_KEY_ENDPOINT_HOST => PeerOp::EndpointHost(
            HostEndpoint::parse(value)
                .ok_or_else(|| invalid(crate::uapi::UAPI_KEY_ENDPOINT_HOST, value))?,
        ),
        _ => return Err(SetErrorKind::UnknownPeerKey(key.to_owned())),
    })
}

/// `private_key=`: 64 hex digits; all zero or (unlike wireguard-go, which refuses it) empty
/// removes the key.
fn private_key(value: &str) -> Result<Option<PrivateKey>, SetErrorKind> {
    if value.is_empty() {
        return Ok(None);
    }
    let key = PrivateKey::from_hex(value).map_err(|error| SetErrorKind::InvalidKey {
        key: "private_key",
        error,
    })?;
    Ok(key.nonzero())
}

/// The flags wireguard-go accepts only as `true`.
fn flag(key: &'static str, value: &str) -> Result<(), SetErrorKind> {
    if value == "true" {
        Ok(())
    } else {
        Err(invalid(key, value))
    }
}

fn invalid(key: &'static str, value: &str) -> SetErrorKind {
    SetErrorKind::InvalidValue {
        key,
        value: value.to_owned(),
    }
}

impl SetRequest {
    /// The request as wg(8) writes it: `set=1`, the lines, an empty line. Keys in lowercase
    /// hex, numbers in decimal, addresses by `inet_ntop`.
    pub fn to_uapi(&self) -> String {
        let mut out = String::from("set=1\n");
        for op in &self.interface {
            let _ = match op {
                InterfaceOp::PrivateKey(k) => writeln!(
                    out,
                    "private_key={}",
                    hex_or_zero(k.as_ref().map(PrivateKey::to_hex))
                ),
                InterfaceOp::ListenPort(p) => writeln!(out, "listen_port={p}"),
                InterfaceOp::FwMark(m) => writeln!(out, "fwmark={m}"),
                InterfaceOp::ReplacePeers => writeln!(out, "replace_peers=true"),
                InterfaceOp::KeepSessions => {
                    writeln!(out, "{}=true", crate::uapi::UAPI_KEEP_SESSIONS)
                }
                InterfaceOp::PrivateKeyUri(uri) => writeln!(
                    out,
                    "{}={}",
                    crate::uapi::UAPI_KEY_URI,
                    uri.to_uri_secret().as_str()
                ),
            };
        }
        for peer in &self.peers {
            let _ = writeln!(out, "public_key={}", peer.public_key.to_hex());
            for op in &peer.ops {
                let _ = match op {
                    PeerOp::Remove => writeln!(out, "remove=true"),
                    PeerOp::UpdateOnly => writeln!(out, "update_only=true"),
                    PeerOp::PresharedKey(k) => writeln!(
                        out,
                        "preshared_key={}",
                        hex_or_zero(k.as_ref().map(PresharedKey::to_hex))
                    ),
                    PeerOp::Endpoint(e) => writeln!(out, "endpoint={}", Ntop(*e)),
                    PeerOp::PersistentKeepaliveInterval(k) => {
                        writeln!(out, "persistent_keepalive_interval={k}")
                    }
                    PeerOp::ReplaceAllowedIps => writeln!(out, "replace_allowed_ips=true"),
                    PeerOp::AllowedIp(ip) => writeln!(out, "allowed_ip={}", ip.ntop()),
                    PeerOp::ProtocolVersion(v) => writeln!(out, "protocol_version={v}"),
                    PeerOp::EndpointHost(h) => {
                        writeln!(out, "{}={h}", crate::uapi::UAPI_KEY_ENDPOINT_HOST)
                    }
                };
            }
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK1: &str = "1111111111111111111111111111111111111111111111111111111111111111";

    fn set(body: &str) -> Result<SetRequest, SetError> {
        parse_set(body.as_bytes(), &Limits::default())
    }

    fn errno_of(body: &str) -> Errno {
        set(body).unwrap_err().errno()
    }

    #[test]
    fn parses_every_key() {
        let body = format!(
            "private_key={}\nlisten_port=51820\nfwmark=0x0\n",
            "a".repeat(64)
        );
        assert_eq!(errno_of(&body), Errno::EINVAL, "fwmark is decimal only");
        let body = format!(
            "private_key={}\nlisten_port=051820\nfwmark=4294967295\nreplace_peers=true\n\
             public_key={PK1}\nupdate_only=true\npreshared_key={}\nendpoint=[fd00::1]:5\n\
             persistent_keepalive_interval=25\nreplace_allowed_ips=true\n\
             allowed_ip=10.1.2.3/8\nallowed_ip=::/0\nprotocol_version=1\n\
             public_key={PK1}\nremove=true\n\nignored-after-empty-line\n",
            "A".repeat(64),
            "00".repeat(32)
        );
        let req = set(&body).unwrap();
        assert_eq!(
            req.interface,
            vec![
                InterfaceOp::PrivateKey(Some(PrivateKey::from_bytes([0xaa; 32]))),
                InterfaceOp::ListenPort(51820),
                InterfaceOp::FwMark(u32::MAX),
                InterfaceOp::ReplacePeers,
            ]
        );
        let pk = PublicKey::from_bytes([0x11; 32]);
        assert_eq!(req.peers.len(), 2);
        assert_eq!(req.peers[0].public_key, pk);
        assert_eq!(
            req.peers[0].ops,
            vec![
                PeerOp::UpdateOnly,
                PeerOp::PresharedKey(None),
                PeerOp::Endpoint("[fd00::1]:5".parse().unwrap()),
                PeerOp::PersistentKeepaliveInterval(25),
                PeerOp::ReplaceAllowedIps,
                PeerOp::AllowedIp(AllowedIp::parse_uapi("10.1.2.3/8").unwrap()),
                PeerOp::AllowedIp(AllowedIp::parse_uapi("::/0").unwrap()),
                PeerOp::ProtocolVersion(1),
            ]
        );
        assert_eq!(req.peers[1].ops, vec![PeerOp::Remove]);
    }

    #[test]
    fn private_key_zero_or_empty_removes() {
        for v in [String::new(), "0".repeat(64)] {
            let req = set(&format!("private_key={v}\n")).unwrap();
            assert_eq!(req.interface, vec![InterfaceOp::PrivateKey(None)]);
        }
    }

    #[test]
    fn errnos_match_wireguard_go() {
        // Observed against wireguard-go 0.0.20220316: "foo" → -71, "bogus=1" → -22,
        // "listen_port=abc" → -22, "protocol_version=2" → -22.
        assert_eq!(errno_of("foo\n"), Errno::EPROTO);
        assert_eq!(errno_of("bogus=1\n"), Errno::EINVAL);
        assert_eq!(errno_of("listen_port=abc\n"), Errno::EINVAL);
        assert_eq!(
            errno_of(&format!("public_key={PK1}\nprotocol_version=2\n")),
            Errno::EINVAL
        );
        let cases = [
            "listen_port=65536",
            "listen_port=-1",
            "listen_port=+1",
            "listen_port= 1",
            "listen_port=",
            "fwmark=4294967296",
            "replace_peers=false",
            "replace_peers=TRUE",
            "private_key=00",
            "public_key=zz",
            "allowed_ip=10.0.0.0/8",
            "listen_port=99999999999999999999999999",
        ];
        for line in cases {
            assert_eq!(errno_of(&format!("{line}\n")), Errno::EINVAL, "{line}");
        }
        let peer_cases = [
            "remove=1",
            "update_only=false",
            "preshared_key=1",
            "endpoint=1.2.3.4",
            "endpoint=host:5",
            "persistent_keepalive_interval=65536",
            "replace_allowed_ips=yes",
            "allowed_ip=10.0.0.0/33",
            "allowed_ip=10.0.0.1",
            "protocol_version=01",
            "listen_port=5",
            "private_key=",
        ];
        for line in peer_cases {
            let e = set(&format!("public_key={PK1}\n{line}\n")).unwrap_err();
            assert_eq!(e.errno(), Errno::EINVAL, "{line}");
            assert_eq!(e.line, 2);
        }
        assert_eq!(errno_of("allowed_ip=10.0.0.0/8\n"), Errno::EINVAL);
        assert_eq!(
            errno_of(&format!("public_key={PK1}\nnoequals\n")),
            Errno::EPROTO
        );
    }

    #[test]
    fn secret_values_are_not_kept_in_errors() {
        let secret = format!("{}zz", "ab".repeat(31));
        let e = set(&format!("private_key={secret}\n")).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("abab"));
        assert_eq!(
            e.kind,
            SetErrorKind::InvalidKey {
                key: "private_key",
                error: KeyError::HexChar { pos: 62 }
            }
        );
    }

    #[test]
    fn limits_bound_lines_and_totals() {
        let limits = Limits {
            max_line: 100,
            max_total: 1000,
        };
        let long = format!("listen_port={}\n", "1".repeat(200));
        let e = parse_set(long.as_bytes(), &limits).unwrap_err();
        assert_eq!(e.kind, SetErrorKind::LineTooLong);
        assert_eq!(e.errno(), Errno::EIO);
        let many = "listen_port=1\n".repeat(100);
        let e = parse_set(many.as_bytes(), &limits).unwrap_err();
        assert_eq!(e.kind, SetErrorKind::TooLarge);
        assert_eq!(e.line, 72);
    }

    #[test]
    fn reader_handles_get_set_and_garbage() {
        let limits = Limits::default();
        let mut input: &[u8] = b"get=1\n\nset=1\nlisten_port=5\n\nget=1\n\n";
        assert_eq!(read_request(&mut input, &limits), Ok(Some(Request::Get)));
        let expected = SetRequest {
            interface: vec![InterfaceOp::ListenPort(5)],
            peers: vec![],
        };
        assert_eq!(
            read_request(&mut input, &limits),
            Ok(Some(Request::Set(expected)))
        );
        assert_eq!(read_request(&mut input, &limits), Ok(Some(Request::Get)));
        assert_eq!(read_request(&mut input, &limits), Ok(None));

        let mut input: &[u8] = b"get=1\nx\n";
        let e = read_request(&mut input, &limits).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));

        let mut input: &[u8] = b"hello\n";
        let e = read_request(&mut input, &limits).unwrap_err();
        assert_eq!(e, RequestError::InvalidOperation("hello".into()));
        assert_eq!(e.errno(), None);
    }

    #[test]
    fn reader_drains_a_refused_set_and_stays_in_sync() {
        let limits = Limits {
            max_line: 64,
            max_total: 1 << 20,
        };
        let long = "x".repeat(1000);
        let text = format!("set=1\nbogus=1\nlisten_port=1\n\nset=1\n{long}\nfwmark=1\n\nget=1\n\n");
        let mut input = text.as_bytes();
        let e = read_request(&mut input, &limits).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
        let e = read_request(&mut input, &limits).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EIO));
        assert_eq!(read_request(&mut input, &limits), Ok(Some(Request::Get)));
    }

    #[test]
    fn reader_applies_at_end_of_input_like_wireguard_go() {
        let mut input: &[u8] = b"set=1\nfwmark=7";
        let req = read_request(&mut input, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            req,
            Request::Set(SetRequest {
                interface: vec![InterfaceOp::FwMark(7)],
                peers: vec![]
            })
        );
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz pass over a small alphabet of meaningful bytes.
        let alphabet: &[u8] = b"=\n:/[]%.0123456789abcdefxyz_-tru \xff";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (state % 48) as usize;
            let mut input = Vec::with_capacity(len + 16);
            input.extend_from_slice(b"public_key=");
            input.extend_from_slice(PK1.as_bytes());
            input.push(b'\n');
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                input.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = parse_set(&input, &Limits::default());
            let _ = read_request(&mut &input[..], &Limits::default());
        }
    }
}
