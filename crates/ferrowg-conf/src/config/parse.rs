//! The configuration parser and its errors.
//!
//! Each line is looked at twice, as the real tools do: first as wg-quick's `parse_options`
//! would (comment cut at `#`, key and value trimmed; only inside a section headed exactly
//! `[Interface]`), and, when it is not a wg-quick key, as wg's `config.c` would (comment cut,
//! every whitespace character removed, `Key=` matched case-insensitively).

use core::fmt;
use std::net::IpAddr;

use super::{Address, Config, Dialect, Interface, Peer, Table};
use crate::addr::{AllowedIp, Endpoint};
use ferrowg_keys::key::{KeyError, PresharedKey, PrivateKey, PublicKey};

/// A section of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[Interface]`.
    Interface,
    /// `[Peer]`.
    Peer,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interface => "[Interface]",
            Self::Peer => "[Peer]",
        })
    }
}

/// A configuration error: `file:line: what`, e.g.
/// `wg0.conf:7: AllowedIPs: "10.0.0.0/33" is not a valid prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ConfigError {
    /// The file name as given to [`parse`].
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// What is wrong with a line. Field names are spelled canonically (`AllowedIPs`), whatever case
/// the file used; values are quoted as found, after wg's whitespace removal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A value that does not parse, e.g. `AllowedIPs: "10.0.0.0/33" is not a valid prefix`.
    #[error("{field}: {value:?} is not {expected}")]
    InvalidValue {
        /// The key.
        field: &'static str,
        /// The offending value (for lists, the offending entry).
        value: String,
        /// What was expected, starting with an article.
        expected: &'static str,
    },
    /// A public key that does not decode.
    #[error("{field}: {value:?} is not a valid key: {error}")]
    InvalidPublicKey {
        /// The key name.
        field: &'static str,
        /// The text found.
        value: String,
        /// Why it does not decode.
        error: KeyError,
    },
    /// A private or preshared key that does not decode; its text is not repeated.
    #[error("{field}: not a valid key: {error}")]
    InvalidSecretKey {
        /// The key name.
        field: &'static str,
        /// Why it does not decode.
        error: KeyError,
    },
    /// A `PrivateKey` PKCS#11 URI that does not parse; its text is not repeated (it may hold a
    /// PIN).
    #[error("{field}: not a valid PKCS#11 URI: {error}")]
    InvalidKeyUri {
        /// The key name.
        field: &'static str,
        /// What is wrong with it.
        error: ferrowg_keys::pkcs11::UriError,
    },
    /// `Key =` with nothing after it (wg rejects these as unrecognized lines).
    #[error("{field}: empty value")]
    EmptyValue {
        /// The key.
        field: &'static str,
    },
    /// A key that does not belong in this section (or this dialect).
    #[error("unknown key {key:?} in {section} section")]
    UnknownKey {
        /// The key as written (whitespace removed).
        key: String,
        /// The section it is in.
        section: Section,
    },
    /// A section header other than `[Interface]` and `[Peer]`.
    #[error("unknown section {0:?}")]
    UnknownSection(String),
    /// A key before any section header.
    #[error("{0:?} is not inside an [Interface] or [Peer] section")]
    OutsideSection(String),
    /// A line that is neither `Key = Value`, a section header, a comment nor blank.
    #[error("expected \"Key = Value\" or a section header, found {0:?}")]
    Syntax(String),
    /// A `[Peer]` section (the line of its header) without `PublicKey`.
    #[error("[Peer] section has no PublicKey")]
    MissingPublicKey,
    /// Bytes that are not UTF-8 outside of a comment.
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

/// Parses a configuration file. `file` is only used in error messages, as given.
pub fn parse(file: &str, input: &[u8], dialect: Dialect) -> Result<Config, ConfigError> {
    let mut parser = Parser::new(dialect);
    for (index, raw) in lines(input).enumerate() {
        parser.line = index + 1;
        parser.parse_line(raw).map_err(|kind| ConfigError {
            file: file.to_owned(),
            line: parser.error_line.take().unwrap_or(parser.line),
            kind,
        })?;
    }
    parser.finish().map_err(|(line, kind)| ConfigError {
        file: file.to_owned(),
        line,
        kind,
    })
}

/// The lines of a file as getline(3) and bash `read` see them: split at `\n`, a last line
/// without `\n` included when not empty.
pub(super) fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let trimmed = input.strip_suffix(b"\n").unwrap_or(input);
    let empty = input.is_empty();
    trimmed.split(|&b| b == b'\n').filter(move |_| !empty)
}

/// `char_is_space` of wg's ctype.h: the six ASCII white-space characters.
pub(super) fn is_wg_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// A line as wg-quick's `parse_options` splits it.
pub(super) struct QuickLine<'a> {
    /// The part before `#`, before the first `=`, trimmed (the whole trimmed text if no `=`).
    pub key: &'a str,
    /// The part after the first `=` and before `#`, trimmed; `None` without `=`.
    pub value: Option<&'a str>,
    /// The part after the first `=` of the whole line, `#` included, trimmed (hooks use it).
    pub unstripped_value: Option<&'a str>,
}

fn trim_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_wg_space(c as u8))
}

pub(super) fn quick_line(line: &str) -> QuickLine<'_> {
    let stripped = line.split('#').next().unwrap_or("");
    let (key, value) = match stripped.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (stripped, None),
    };
    QuickLine {
        key: trim_space(key),
        value: value.map(trim_space),
        unstripped_value: line.split_once('=').map(|(_, v)| trim_space(v)),
    }
}

/// The wg-quick keys, canonically spelled.
pub(super) const QUICK_KEYS: [&str; 9] = [
    "Address",
    "DNS",
    "MTU",
    "Table",
    "PreUp",
    "PostUp",
    "PreDown",
    "PostDown",
    "SaveConfig",
];

pub(super) fn quick_key(key: &str) -> Option<&'static str> {
    QUICK_KEYS
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(key))
}

/// A `[Peer]` being read.
struct PendingPeer {
    header_line: usize,
    public_key: Option<PublicKey>,
    peer: Peer,
}

struct Parser {
    dialect: Dialect,
    line: usize,
    /// Set when an error belongs to an earlier line (a peer's header).
    error_line: Option<usize>,
    section: Option<Section>,
    /// wg-quick's `interface_section` flag.
    quick_interface: bool,
    config: Config,
    pending: Option<PendingPeer>,
}

type KindResult<T> = Result<T, ConfigErrorKind>;

impl Parser {
    fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            line: 0,
            error_line: None,
            section: None,
            quick_interface: false,
            config: Config::default(),
            pending: None,
        }
    }

    fn parse_line(&mut self, raw: &[u8]) -> KindResult<()> {
        // Only the part before '#' must be UTF-8, unless a hook keeps the comment.
        let hash = raw.iter().position(|&b| b == b'#').unwrap_or(raw.len());
        let code = core::str::from_utf8(&raw[..hash]).map_err(|_| ConfigErrorKind::NotUtf8)?;
        let whole = core::str::from_utf8(raw).ok();
        if self.dialect == Dialect::WgQuick && self.quick_line(code, whole)? {
            return Ok(());
        }
        let line: String = code
            .chars()
            .filter(|&c| !(c.is_ascii() && is_wg_space(c as u8)))
            .collect();
        if line.is_empty() {
            return Ok(());
        }
        if line.eq_ignore_ascii_case("[Interface]") {
            self.close_peer()?;
            self.section = Some(Section::Interface);
            return Ok(());
        }
        if line.eq_ignore_ascii_case("[Peer]") {
            self.close_peer()?;
            self.section = Some(Section::Peer);
            self.pending = Some(PendingPeer {
                header_line: self.line,
                public_key: None,
                peer: Peer::new(PublicKey::from_bytes([0; 32])),
            });
            return Ok(());
        }
        if line.starts_with('[') {
            return Err(ConfigErrorKind::UnknownSection(line));
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ConfigErrorKind::Syntax(line));
        };
        match self.section {
            None => Err(ConfigErrorKind::OutsideSection(key.to_owned())),
            Some(Section::Interface) => self.interface_key(key, value),
            Some(Section::Peer) => self.peer_key(key, value),
        }
    }

    /// Handles the line if wg-quick would; returns whether it did.
    fn quick_line(&mut self, code: &str, whole: Option<&str>) -> KindResult<bool> {
        let q = quick_line(code);
        if q.key.starts_with('[') {
            self.quick_interface = false;
        }
        if q.key.eq_ignore_ascii_case("[Interface]") {
            self.quick_interface = true;
        }
        let (true, Some(value), Some(field)) = (self.quick_interface, q.value, quick_key(q.key))
        else {
            return Ok(false);
        };
        let quick = &mut self.config.interface.quick;
        match field {
            "Address" => {
                for item in split_list(value) {
                    quick.addresses.push(
                        parse_address(item)
                            .ok_or_else(|| invalid(field, item, "a valid address"))?,
                    );
                }
            }
            "DNS" => {
                for item in split_list(value) {
                    // wg-quick: `^[0-9.]+$` or anything with a colon is a server.
                    if item.bytes().all(|c| c.is_ascii_digit() || c == b'.') || item.contains(':') {
                        let ip = item
                            .parse::<IpAddr>()
                            .map_err(|_| invalid(field, item, "a valid IP address"))?;
                        quick.dns.push(ip);
                    } else {
                        quick.dns_search.push(item.to_owned());
                    }
                }
            }
            "MTU" => {
                quick.mtu = match value {
                    "" => None,
                    v => Some(decimal(v).ok_or_else(|| invalid(field, v, "a valid MTU"))?),
                }
            }
            "Table" => {
                quick.table = parse_table(value)
                    .map_err(|()| invalid(field, value, "a valid routing table"))?
            }
            "SaveConfig" => {
                quick.save_config = if value.eq_ignore_ascii_case("true") {
                    true
                } else if value.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(invalid(field, value, "true or false"));
                }
            }
            hook => {
                // The command is everything after the first '=' of the whole line.
                let whole = whole.ok_or(ConfigErrorKind::NotUtf8)?;
                let command = quick_line(whole).unstripped_value.unwrap_or("").to_owned();
                let list = match hook {
                    "PreUp" => &mut quick.pre_up,
                    "PostUp" => &mut quick.post_up,
                    "PreDown" => &mut quick.pre_down,
                    _ => &mut quick.post_down,
                };
                list.push(command);
            }
        }
        Ok(true)
    }

    fn interface_key(&mut self, key: &str, value: &str) -> KindResult<()> {
        let field = match_key(key, &["ListenPort", "FwMark", "PrivateKey"])
            .ok_or_else(|| unknown(key, Section::Interface))?;
        if value.is_empty() {
            return Err(ConfigErrorKind::EmptyValue { field });
        }
        let iface: &mut Interface = &mut self.config.interface;
        match field {
            "ListenPort" => {
                iface.listen_port = Some(
                    decimal(value)
                        .ok_or_else(|| invalid(field, value, "a valid port (0-65535)"))?,
                );
            }
            "FwMark" => {
                iface.fwmark = Some(parse_fwmark(value).ok_or_else(|| {
                    invalid(field, value, "a valid fwmark (0-0xffffffff or off)")
                })?);
            }
            _ if ferrowg_keys::pkcs11::uri::is_pkcs11_uri(value) => {
                let uri = ferrowg_keys::pkcs11::Pkcs11Uri::parse(value)
                    .map_err(|error| ConfigErrorKind::InvalidKeyUri { field, error })?;
                iface.private_key = None;
                iface.private_key_uri = Some(uri);
            }
            _ => {
                let key = PrivateKey::from_base64(value)
                    .map_err(|error| ConfigErrorKind::InvalidSecretKey { field, error })?;
                iface.private_key = Some(key);
                iface.private_key_uri = None;
            }
        }
        Ok(())
    }

    fn peer_key(&mut self, key: &str, value: &str) -> KindResult<()> {
        let field = match_key(
            key,
            &[
                "PublicKey",
                "PresharedKey",
                "AllowedIPs",
                "Endpoint",
                "PersistentKeepalive",
            ],
        )
        .ok_or_else(|| unknown(key, Section::Peer))?;
        if value.is_empty() {
            return Err(ConfigErrorKind::EmptyValue { field });
        }
        // Invariant: a [Peer] header always opens `pending` before its keys are read.
        let Some(pending) = self.pending.as_mut() else {
            return Err(unknown(key, Section::Peer));
        };
        let peer = &mut pending.peer;
        match field {
            "PublicKey" => {
                let pk = PublicKey::from_base64(value).map_err(|error| {
                    ConfigErrorKind::InvalidPublicKey {
                        field,
                        value: value.to_owned(),
                        error,
                    }
                })?;
                pending.public_key = Some(pk);
            }
            "PresharedKey" => {
                let psk = PresharedKey::from_base64(value)
                    .map_err(|error| ConfigErrorKind::InvalidSecretKey { field, error })?;
                peer.preshared_key = Some(psk);
            }
            "AllowedIPs" => {
                // strsep on ',': an empty entry is an error, as in wg.
                for item in value.split(',') {
                    let ip = AllowedIp::parse_config(item)
                        .ok_or_else(|| invalid(field, item, "a valid prefix"))?;
                    peer.allowed_ips.push(ip);
                }
            }
            "Endpoint" => {
                peer.endpoint = Some(Endpoint::parse_config(value).ok_or_else(|| {
                    invalid(field, value, "a valid endpoint (host:port or [host]:port)")
                })?);
            }
            _ => {
                let interval = if value.eq_ignore_ascii_case("off") {
                    Some(0)
                } else {
                    decimal(value)
                };
                peer.persistent_keepalive =
                    Some(interval.ok_or_else(|| {
                        invalid(field, value, "a valid interval (0-65535 or off)")
                    })?);
            }
        }
        Ok(())
    }

    /// Ends the current `[Peer]`, checking that it had a public key.
    fn close_peer(&mut self) -> KindResult<()> {
        if let Some(mut pending) = self.pending.take() {
            let Some(pk) = pending.public_key else {
                self.error_line = Some(pending.header_line);
                return Err(ConfigErrorKind::MissingPublicKey);
            };
            pending.peer.public_key = pk;
            self.config.peers.push(pending.peer);
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Config, (usize, ConfigErrorKind)> {
        self.close_peer()
            .map_err(|kind| (self.error_line.unwrap_or(self.line), kind))?;
        Ok(self.config)
    }
}

fn match_key(key: &str, keys: &[&'static str]) -> Option<&'static str> {
    keys.iter().copied().find(|k| k.eq_ignore_ascii_case(key))
}

fn unknown(key: &str, section: Section) -> ConfigErrorKind {
    ConfigErrorKind::UnknownKey {
        key: key.to_owned(),
        section,
    }
}

fn invalid(field: &'static str, value: &str, expected: &'static str) -> ConfigErrorKind {
    ConfigErrorKind::InvalidValue {
        field,
        value: value.to_owned(),
        expected,
    }
}

/// wg-quick's `${value//,/ }` followed by word splitting.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
}

/// An unsigned decimal with optional leading zeros, like `strtoul` after a digit check.
fn decimal<T: TryFrom<u64>>(value: &str) -> Option<T> {
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = value.trim_start_matches('0');
    if digits.len() > 19 {
        return None;
    }
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    T::try_from(n).ok()
}

/// `parse_fwmark` of wg: `off`, decimal, or `0x` hexadecimal, at most 32 bits.
fn parse_fwmark(value: &str) -> Option<u32> {
    if value.eq_ignore_ascii_case("off") {
        return Some(0);
    }
    if let Some(hex) = value.strip_prefix("0x").filter(|h| !h.is_empty()) {
        if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let digits = hex.trim_start_matches('0');
        if digits.len() > 8 {
            return None;
        }
        return Some(if digits.is_empty() {
            0
        } else {
            u32::from_str_radix(digits, 16).ok()?
        });
    }
    decimal(value)
}

/// An `Address` entry: `ip` or `ip/cidr`.
fn parse_address(item: &str) -> Option<Address> {
    let prefix = AllowedIp::parse_config(item)?;
    Some(Address {
        addr: prefix.addr,
        cidr: item.contains('/').then_some(prefix.cidr),
    })
}

fn parse_table(value: &str) -> Result<Option<Table>, ()> {
    Ok(Some(match value {
        "" => return Ok(None),
        "off" => Table::Off,
        "auto" => Table::Auto,
        v if v.bytes().all(|c| c.is_ascii_digit()) => Table::Id(decimal(v).ok_or(())?),
        v if v
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) =>
        {
            Table::Name(v.to_owned())
        }
        _ => return Err(()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SK: &str = "YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=";

    fn wg(text: &str) -> Result<Config, ConfigError> {
        parse("wg0.conf", text.as_bytes(), Dialect::Wg)
    }

    fn quick(text: &str) -> Result<Config, ConfigError> {
        parse("wg0.conf", text.as_bytes(), Dialect::WgQuick)
    }

    fn err(text: &str) -> String {
        wg(text).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_full_wg_file() {
        let text = format!(
            "# comment\n[Interface]\nPrivateKey = {SK}\nListenPort = 51820\nFwMark = 0x1f\n\n\
             [Peer]\nPublicKey = {PK}\nPresharedKey = {PK}\n\
             AllowedIPs = 10.0.0.1/24, fd00::/64\nAllowedIPs = 192.168.0.0/16\n\
             Endpoint = [2001:db8::1]:51820\nPersistentKeepalive = 25\n\
             [peer]\npublickey={PK} # trailing comment\nendpoint = example.com:1\n"
        );
        let c = wg(&text).unwrap();
        assert_eq!(c.interface.private_key.as_ref().unwrap().to_base64(), SK);
        assert_eq!(c.interface.listen_port, Some(51820));
        assert_eq!(c.interface.fwmark, Some(0x1f));
        assert_eq!(c.peers.len(), 2);
        let p = &c.peers[0];
        assert_eq!(p.public_key.to_base64(), PK);
        assert_eq!(p.preshared_key.as_ref().unwrap().to_base64(), PK);
        let ips: Vec<String> = p.allowed_ips.iter().map(|ip| ip.to_string()).collect();
        assert_eq!(ips, ["10.0.0.1/24", "fd00::/64", "192.168.0.0/16"]);
        assert_eq!(
            p.endpoint,
            Some(Endpoint::Addr("[2001:db8::1]:51820".parse().unwrap()))
        );
        assert_eq!(p.persistent_keepalive, Some(25));
        assert_eq!(
            c.peers[1].endpoint,
            Some(Endpoint::Host {
                host: "example.com".into(),
                port: 1
            })
        );
    }

    #[test]
    fn whitespace_is_removed_everywhere_like_wg() {
        let text =
            format!("[ Inter face ]\nList enPort\t=\t5 1 8 2 0\r\n[Peer]\nPublic Key = {PK}\n");
        let c = wg(&text).unwrap();
        assert_eq!(c.interface.listen_port, Some(51820));
        assert_eq!(c.peers.len(), 1);
    }

    #[test]
    fn values_and_off() {
        let c = wg(&format!(
            "[Interface]\nFwMark = off\nListenPort = 00080\n[Peer]\nPublicKey={PK}\nPersistentKeepalive = OFF\n"
        ))
        .unwrap();
        assert_eq!(c.interface.fwmark, Some(0));
        assert_eq!(c.interface.listen_port, Some(80));
        assert_eq!(c.peers[0].persistent_keepalive, Some(0));
        let c = wg("[Interface]\nFwMark = 4294967295\nFwMark = 0xffffffff\n").unwrap();
        assert_eq!(c.interface.fwmark, Some(u32::MAX));
        assert_eq!(
            wg("[Interface]\nFwMark = 0\n").unwrap().interface.fwmark,
            Some(0)
        );
    }

    #[test]
    fn later_values_replace_earlier_ones() {
        let c = wg("[Interface]\nListenPort = 1\nListenPort = 2\n").unwrap();
        assert_eq!(c.interface.listen_port, Some(2));
    }

    #[test]
    fn every_error_has_its_exact_message() {
        let peer = format!("[Interface]\n\n[Peer]\nPublicKey = {PK}\n");
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{peer}AllowedIPs = 10.0.0.0/8,\n"),
                "wg0.conf:5: AllowedIPs: \"\" is not a valid prefix",
            ),
            (
                format!("{peer}\n\nAllowedIPs = 10.0.0.0/8, 10.0.0.0/33\n"),
                "wg0.conf:7: AllowedIPs: \"10.0.0.0/33\" is not a valid prefix",
            ),
            (
                format!("{peer}Endpoint = 1.2.3.4\n"),
                "wg0.conf:5: Endpoint: \"1.2.3.4\" is not a valid endpoint (host:port or [host]:port)",
            ),
            (
                format!("{peer}PersistentKeepalive = 65536\n"),
                "wg0.conf:5: PersistentKeepalive: \"65536\" is not a valid interval (0-65535 or off)",
            ),
            (
                format!("{peer}PresharedKey = abc\n"),
                "wg0.conf:5: PresharedKey: not a valid key: expected 44 base64 characters, found 3",
            ),
            (
                format!("{peer}PublicKey = abc\n"),
                "wg0.conf:5: PublicKey: \"abc\" is not a valid key: expected 44 base64 characters, found 3",
            ),
            (
                "[Interface]\nListenPort = 65536\n".into(),
                "wg0.conf:2: ListenPort: \"65536\" is not a valid port (0-65535)",
            ),
            (
                "[Interface]\nFwMark = 0x1ffffffff\n".into(),
                "wg0.conf:2: FwMark: \"0x1ffffffff\" is not a valid fwmark (0-0xffffffff or off)",
            ),
            (
                "[Interface]\nPrivateKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n".into(),
                "wg0.conf:2: PrivateKey: not a valid key: the last base64 character before '=' has non-zero padding bits",
            ),
            ("[Interface]\nListenPort =\n".into(), "wg0.conf:2: ListenPort: empty value"),
            (
                "[Interface]\nListenPort = 1\nPublicKey = x\n".into(),
                "wg0.conf:3: unknown key \"PublicKey\" in [Interface] section",
            ),
            (
                format!("{peer}ListenPort = 1\n"),
                "wg0.conf:5: unknown key \"ListenPort\" in [Peer] section",
            ),
            ("[Interface]\nAddress = 10.0.0.1/24\n".into(), "wg0.conf:2: unknown key \"Address\" in [Interface] section"),
            ("[Interfaces]\n".into(), "wg0.conf:1: unknown section \"[Interfaces]\""),
            ("ListenPort = 1\n".into(), "wg0.conf:1: \"ListenPort\" is not inside an [Interface] or [Peer] section"),
            ("[Interface]\nnonsense\n".into(), "wg0.conf:2: expected \"Key = Value\" or a section header, found \"nonsense\""),
            (
                "[Interface]\n[Peer]\nEndpoint = 1.2.3.4:5\n[Peer]\n".into(),
                "wg0.conf:2: [Peer] section has no PublicKey",
            ),
            ("[Peer]\n".into(), "wg0.conf:1: [Peer] section has no PublicKey"),
        ];
        for (text, expected) in cases {
            assert_eq!(err(&text), expected, "{text}");
        }
        let e = parse("x.conf", b"[Interface]\nListenPort = \xff\n", Dialect::Wg).unwrap_err();
        assert_eq!(e.to_string(), "x.conf:2: line is not valid UTF-8");
        // Non-UTF-8 inside a comment is fine, as for wg.
        assert!(parse("x.conf", b"[Interface] # \xff\n", Dialect::Wg).is_ok());
    }

    #[test]
    fn secrets_are_not_echoed_in_errors() {
        let bad = "YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0";
        let e = err(&format!("[Interface]\nPrivateKey = {bad}\n"));
        assert!(!e.contains("YH3v"), "{e}");
    }

    #[test]
    fn wg_quick_keys() {
        let text = format!(
            "[Interface]\nAddress = 10.0.0.1/24, fd00::1/64\naddress=10.0.1.1\n\
             DNS = 1.1.1.1, 2606:4700::1111, example.com corp.example\nMTU = 1420\nTable = off\n\
             PreUp = echo 'a # not a comment' # still part of the command\n\
             PostUp = iptables -A FORWARD -i %i -j ACCEPT; ip6tables -A FORWARD -i %i -j ACCEPT\n\
             PostUp = second\nPreDown = x=y\nPostDown =\nSaveConfig = True\nPrivateKey = {SK}\n\
             [Peer]\nPublicKey = {PK}\n"
        );
        let c = quick(&text).unwrap();
        let q = &c.interface.quick;
        let addrs: Vec<String> = q
            .addresses
            .iter()
            .map(|a| {
                format!(
                    "{}{}",
                    a.addr,
                    a.cidr.map(|c| format!("/{c}")).unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(addrs, ["10.0.0.1/24", "fd00::1/64", "10.0.1.1"]);
        assert_eq!(
            q.dns,
            [
                "1.1.1.1".parse::<IpAddr>().unwrap(),
                "2606:4700::1111".parse().unwrap()
            ]
        );
        assert_eq!(q.dns_search, ["example.com", "corp.example"]);
        assert_eq!(q.mtu, Some(1420));
        assert_eq!(q.table, Some(Table::Off));
        assert_eq!(
            q.pre_up,
            ["echo 'a # not a comment' # still part of the command"]
        );
        assert_eq!(q.post_up.len(), 2);
        assert_eq!(q.pre_down, ["x=y"]);
        assert_eq!(q.post_down, [""]);
        assert!(q.save_config);
        assert!(c.interface.private_key.is_some());
        assert_eq!(c.peers.len(), 1);
    }

    #[test]
    fn wg_quick_key_errors() {
        let cases = [
            (
                "[Interface]\nAddress = 10.0.0.300/24\n",
                "wg0.conf:2: Address: \"10.0.0.300/24\" is not a valid address",
            ),
            (
                "[Interface]\nDNS = 1.1.1\n",
                "wg0.conf:2: DNS: \"1.1.1\" is not a valid IP address",
            ),
            (
                "[Interface]\nMTU = big\n",
                "wg0.conf:2: MTU: \"big\" is not a valid MTU",
            ),
            (
                "[Interface]\nTable = a/b\n",
                "wg0.conf:2: Table: \"a/b\" is not a valid routing table",
            ),
            (
                "[Interface]\nSaveConfig = yes\n",
                "wg0.conf:2: SaveConfig: \"yes\" is not true or false",
            ),
            // wg-quick keys only count in a section headed exactly [Interface].
            (
                "[Peer]\nAddress = 10.0.0.1\n",
                "wg0.conf:2: unknown key \"Address\" in [Peer] section",
            ),
            (
                "[ Interface ]\nMTU = 1\n",
                "wg0.conf:2: unknown key \"MTU\" in [Interface] section",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(quick(text).unwrap_err().to_string(), expected, "{text}");
        }
        let c = quick("[Interface]\nTable = 1234\nMTU =\n").unwrap();
        assert_eq!(c.interface.quick.table, Some(Table::Id(1234)));
        assert_eq!(c.interface.quick.mtu, None);
        let c = quick("[Interface]\nTable = vpn_1\n").unwrap();
        assert_eq!(c.interface.quick.table, Some(Table::Name("vpn_1".into())));
    }

    #[test]
    fn last_line_without_newline_counts() {
        let c = wg("[Interface]\nListenPort = 7").unwrap();
        assert_eq!(c.interface.listen_port, Some(7));
        assert_eq!(wg("").unwrap(), Config::default());
    }
}
