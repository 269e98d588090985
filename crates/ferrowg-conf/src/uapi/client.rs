//! The CLI's side of UAPI: reading a `get=1` reply into a [`DeviceState`], and building and
//! writing `set=1` requests the way wg(8) (`ipc-uapi.h`, `config.c`, `setconf.c`) does.
//!
//! How wg(8) turns a configuration file into a request, which [`SetRequest::from_config`]
//! reproduces line for line:
//!
//! - `setconf`: the interface lines are always sent — `private_key` (zeros if the file has
//!   none), `listen_port` (0 if none), `fwmark` (0 if none) — then `replace_peers=true`; then
//!   every `[Peer]` in file order: `public_key`, `preshared_key` (if in the file), `endpoint` (if
//!   in the file, resolved), `persistent_keepalive_interval` (if in the file),
//!   `replace_allowed_ips=true` (always: a `[Peer]` replaces its allowed IPs) and one
//!   `allowed_ip` per prefix.
//! - `addconf`: the same peers, but only the interface keys present in the file and no
//!   `replace_peers`.
//! - `syncconf`: `setconf`, except that when both the file and the running interface have peers,
//!   `replace_peers` is dropped (so unchanged peers keep their sessions); every running peer
//!   absent from the file gets `public_key=…` + `remove=true`, these come first, in descending
//!   public-key order (wg prepends them while walking the keys in ascending `memcmp` order); a
//!   running peer kept by the file whose preshared key or keepalive the file does not mention
//!   gets `preshared_key=0…0` / `persistent_keepalive_interval=0`, so the result matches the
//!   file. If the file has no peers, or the interface has none, it is plain `setconf`.
//!
//! The two resets are current upstream behaviour (wireguard-tools commit 780182e37d2b, from pull
//! request #13); wireguard-tools 1.0.20210914, the version the interop tests run, does not send
//! them and is otherwise matched byte for byte.

use std::fmt::Write as _;
use std::io::BufRead;
use std::net::SocketAddr;

use super::server::{read_line_bounded, Line};
use super::{DeviceState, Errno, InterfaceOp, Limits, PeerOp, PeerSet, PeerState, SetRequest};
use crate::addr::{parse_uapi_endpoint, AllowedIp, Endpoint, Ntop};
use crate::config::{Config, Peer};
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey, KEY_LEN_HEX};

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
        if read != Line::Line || total > limits.max_total {
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
    errno: Option<i64>,
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
        let num = |max: u64| parse_num(value).filter(|&n| n <= max).ok_or_else(bad);
        let peer = self.state.peers.last_mut();
        match (key, peer) {
            ("errno", _) => {
                let n = value.strip_prefix('-').unwrap_or(value);
                self.errno = Some(
                    parse_num(n)
                        .filter(|&n| n <= i32::MAX as u64)
                        .ok_or_else(bad)? as i64,
                );
            }
            ("public_key", _) => {
                let pk = PublicKey::from_hex(value).map_err(|_| bad())?;
                self.state.peers.push(PeerState::new(pk));
            }
            ("private_key", None) => {
                let sk = PrivateKey::from_hex(value).map_err(|_| bad())?;
                self.state.private_key = (!sk.is_zero()).then_some(sk);
            }
            ("listen_port", None) => self.state.listen_port = num(u16::MAX.into())? as u16,
            ("fwmark", None) => self.state.fwmark = num(u32::MAX.into())? as u32,
            ("private_key" | "listen_port" | "fwmark", Some(_)) => {
                return Err(malformed(format!("interface key {key} after a peer")));
            }
            ("preshared_key", Some(p)) => {
                let psk = PresharedKey::from_hex(value).map_err(|_| bad())?;
                p.preshared_key = (!psk.is_zero()).then_some(psk);
            }
            ("endpoint", Some(p)) => p.endpoint = Some(parse_uapi_endpoint(value).ok_or_else(bad)?),
            ("last_handshake_time_sec", Some(p)) => {
                p.last_handshake_time_sec = num(i64::MAX as u64)?
            }
            ("last_handshake_time_nsec", Some(p)) => {
                p.last_handshake_time_nsec = num(999_999_999)? as u32;
            }
            ("rx_bytes", Some(p)) => p.rx_bytes = num(u64::MAX)?,
            ("tx_bytes", Some(p)) => p.tx_bytes = num(u64::MAX)?,
            ("persistent_keepalive_interval", Some(p)) => {
                p.persistent_keepalive_interval = num(u16::MAX.into())? as u16;
            }
            ("allowed_ip", Some(p)) => p
                .allowed_ips
                .push(AllowedIp::parse_uapi(value).ok_or_else(bad)?),
            ("protocol_version", Some(p)) => p.protocol_version = num(u32::MAX.into())? as u32,
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
            Some(n) => Err(GetError::Remote(Errno(n as i32))),
        }
    }
}

/// Decimal digits only, at most `u64::MAX`.
fn parse_num(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = value.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse().ok()
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

/// Which wg(8) command the request is for.
#[derive(Debug, Clone, Copy)]
pub enum ConfMode<'a> {
    /// `wg setconf`: replace everything.
    Set,
    /// `wg addconf`: add to what is there.
    Add,
    /// `wg syncconf`, given the running state from a `get=1`.
    Sync(&'a DeviceState),
}

impl SetRequest {
    /// Builds the request wg(8) would send for `config` (see the module documentation for the
    /// exact sequence). Host-name endpoints are passed to `resolve`; numeric ones are not.
    pub fn from_config<E>(
        config: &Config,
        mode: ConfMode<'_>,
        mut resolve: impl FnMut(&Endpoint) -> Result<SocketAddr, E>,
    ) -> Result<Self, E> {
        let iface = &config.interface;
        let mut interface = Vec::new();
        let replace = !matches!(mode, ConfMode::Add);
        if let Some(uri) = &iface.private_key_uri {
            // ferrowg's extension: the key is in a PKCS#11 token.
            interface.push(InterfaceOp::PrivateKeyUri(Box::new(uri.clone())));
        } else if replace || iface.private_key.is_some() {
            let key = iface.private_key.clone().filter(|k| !k.is_zero());
            interface.push(InterfaceOp::PrivateKey(key));
        }
        if replace || iface.listen_port.is_some() {
            interface.push(InterfaceOp::ListenPort(iface.listen_port.unwrap_or(0)));
        }
        if replace || iface.fwmark.is_some() {
            interface.push(InterfaceOp::FwMark(iface.fwmark.unwrap_or(0)));
        }
        let mut peers = Vec::with_capacity(config.peers.len());
        let mut replace_peers = replace;
        let runtime = match mode {
            ConfMode::Sync(rt) if !config.peers.is_empty() && !rt.peers.is_empty() => Some(rt),
            _ => None,
        };
        if let Some(rt) = runtime {
            replace_peers = false;
            let mut gone: Vec<PublicKey> = rt
                .peers
                .iter()
                .map(|p| p.public_key)
                .filter(|k| !config.peers.iter().any(|p| p.public_key == *k))
                .collect();
            gone.sort_unstable_by(|a, b| b.cmp(a));
            gone.dedup();
            peers.extend(gone.into_iter().map(|k| PeerSet {
                public_key: k,
                ops: vec![PeerOp::Remove],
            }));
        }
        if replace_peers {
            interface.push(InterfaceOp::ReplacePeers);
        }
        for peer in &config.peers {
            let running =
                runtime.and_then(|rt| rt.peers.iter().find(|p| p.public_key == peer.public_key));
            peers.push(peer_ops(peer, running, &mut resolve)?);
        }
        Ok(Self { interface, peers })
    }

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
                InterfaceOp::PrivateKeyUri(uri) => writeln!(
                    out,
                    "{}={}",
                    crate::uapi::UAPI_KEY_URI,
                    uri.to_uri_string(true)
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
                };
            }
        }
        out.push('\n');
        out
    }
}

fn hex_or_zero(hex: Option<String>) -> String {
    hex.unwrap_or_else(|| "0".repeat(KEY_LEN_HEX))
}

/// One `[Peer]`'s operations in wg's order; `running` is the same peer on the interface when
/// syncing.
fn peer_ops<E>(
    peer: &Peer,
    running: Option<&PeerState>,
    resolve: &mut impl FnMut(&Endpoint) -> Result<SocketAddr, E>,
) -> Result<PeerSet, E> {
    let mut ops = Vec::new();
    match (&peer.preshared_key, running) {
        (Some(psk), _) => ops.push(PeerOp::PresharedKey(
            Some(psk.clone()).filter(|k| !k.is_zero()),
        )),
        (None, Some(rt)) if rt.preshared_key.is_some() => ops.push(PeerOp::PresharedKey(None)),
        _ => {}
    }
    if let Some(endpoint) = &peer.endpoint {
        let addr = match endpoint {
            Endpoint::Addr(a) => *a,
            host => resolve(host)?,
        };
        ops.push(PeerOp::Endpoint(addr));
    }
    match (peer.persistent_keepalive, running) {
        (Some(k), _) => ops.push(PeerOp::PersistentKeepaliveInterval(k)),
        (None, Some(rt)) if rt.persistent_keepalive_interval != 0 => {
            ops.push(PeerOp::PersistentKeepaliveInterval(0));
        }
        _ => {}
    }
    ops.push(PeerOp::ReplaceAllowedIps);
    ops.extend(peer.allowed_ips.iter().map(|ip| PeerOp::AllowedIp(*ip)));
    Ok(PeerSet {
        public_key: peer.public_key,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, Dialect};
    use crate::uapi::server::{parse_set, write_get_response};

    const PK_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SK: &str = "YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=";

    fn pk(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    fn no_dns(_: &Endpoint) -> Result<SocketAddr, String> {
        Err("no resolver in this test".into())
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

    fn config(text: &str) -> Config {
        parse("t.conf", text.as_bytes(), Dialect::Wg).unwrap()
    }

    #[test]
    fn setconf_sends_everything_and_replaces_peers() {
        let c = config(&format!(
            "[Interface]\nListenPort = 5\n[Peer]\nPublicKey = {PK_A}\nAllowedIPs = ::1.2.3.4/128, 10.0.0.1/24\n\
             Endpoint = [::ffff:1.2.3.4]:7\nPersistentKeepalive = 0\n"
        ));
        let req = SetRequest::from_config(&c, ConfMode::Set, no_dns).unwrap();
        let pk_hex = PublicKey::from_base64(PK_A).unwrap().to_hex();
        let zero = "0".repeat(64);
        assert_eq!(
            req.to_uapi(),
            format!(
                "set=1\nprivate_key={zero}\nlisten_port=5\nfwmark=0\nreplace_peers=true\n\
                 public_key={pk_hex}\nendpoint=[::ffff:1.2.3.4]:7\npersistent_keepalive_interval=0\n\
                 replace_allowed_ips=true\nallowed_ip=::1.2.3.4/128\nallowed_ip=10.0.0.1/24\n\n"
            )
        );
        // The daemon side reads it back into the same request.
        let body = req.to_uapi();
        let parsed = parse_set(&body.as_bytes()["set=1\n".len()..], &Limits::default()).unwrap();
        assert_eq!(parsed, req);
    }

    #[test]
    fn addconf_sends_only_what_is_in_the_file() {
        let c = config(&format!(
            "[Interface]\nFwMark = 7\n[Peer]\nPublicKey = {PK_A}\n"
        ));
        let req = SetRequest::from_config(&c, ConfMode::Add, no_dns).unwrap();
        assert_eq!(req.interface, vec![InterfaceOp::FwMark(7)]);
        assert_eq!(req.peers[0].ops, vec![PeerOp::ReplaceAllowedIps]);
    }

    #[test]
    fn host_endpoints_go_through_the_resolver() {
        let c = config(&format!(
            "[Peer]\nPublicKey = {PK_A}\nEndpoint = vpn.example:9\n"
        ));
        assert_eq!(
            SetRequest::from_config(&c, ConfMode::Add, no_dns),
            Err("no resolver in this test".to_string())
        );
        let resolved = SetRequest::from_config(&c, ConfMode::Add, |e| match e {
            Endpoint::Host { port, .. } => Ok::<_, ()>(SocketAddr::from(([192, 0, 2, 1], *port))),
            Endpoint::Addr(a) => Ok(*a),
        })
        .unwrap();
        assert_eq!(
            resolved.peers[0].ops[0],
            PeerOp::Endpoint("192.0.2.1:9".parse().unwrap())
        );
    }

    #[test]
    fn syncconf_removes_missing_peers_and_clears_dropped_settings() {
        let mut kept = PeerState::new(pk(5));
        kept.preshared_key = Some(PresharedKey::from_bytes([1; 32]));
        kept.persistent_keepalive_interval = 25;
        let runtime = DeviceState {
            peers: vec![
                PeerState::new(pk(2)),
                kept,
                PeerState::new(pk(9)),
                PeerState::new(pk(1)),
            ],
            ..Default::default()
        };
        let c = Config {
            peers: vec![Peer::new(pk(7)), Peer::new(pk(5))],
            ..Default::default()
        };
        let req = SetRequest::from_config(&c, ConfMode::Sync(&runtime), no_dns).unwrap();
        assert_eq!(
            req.interface,
            vec![
                InterfaceOp::PrivateKey(None),
                InterfaceOp::ListenPort(0),
                InterfaceOp::FwMark(0)
            ]
        );
        let order: Vec<(u8, bool)> = req
            .peers
            .iter()
            .map(|p| (p.public_key.as_bytes()[0], p.ops == vec![PeerOp::Remove]))
            .collect();
        assert_eq!(
            order,
            [(9, true), (2, true), (1, true), (7, false), (5, false)]
        );
        assert_eq!(
            req.peers[4].ops,
            vec![
                PeerOp::PresharedKey(None),
                PeerOp::PersistentKeepaliveInterval(0),
                PeerOp::ReplaceAllowedIps
            ]
        );
        // Without peers on either side, syncconf is setconf.
        let empty = DeviceState::default();
        let req = SetRequest::from_config(&c, ConfMode::Sync(&empty), no_dns).unwrap();
        assert!(req.interface.contains(&InterfaceOp::ReplacePeers));
        let req =
            SetRequest::from_config(&Config::default(), ConfMode::Sync(&runtime), no_dns).unwrap();
        assert!(req.interface.contains(&InterfaceOp::ReplacePeers));
        assert!(req.peers.is_empty());
    }
}
