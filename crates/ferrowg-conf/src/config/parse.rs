//! The configuration parser: a file's lines, sections and wg(8) keys.
//!
//! Each line is looked at twice, as the real tools do: first as wg-quick's `parse_options`
//! would (comment cut at `#`, key and value trimmed; only inside a section headed exactly
//! `[Interface]`), and, when it is not a wg-quick key, as wg's `config.c` would (comment cut,
//! every whitespace character removed, `Key=` matched case-insensitively).

use super::error::{invalid, ConfigError, ConfigErrorKind, Section};
use super::quick;
use super::syntax::{lines, match_key, quick_line};
use super::{Config, Dialect, Interface, Peer};
use crate::addr::{AllowedIp, Endpoint};
use crate::grammar::{self, strip_wg_spaces};
use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};

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
        let line = strip_wg_spaces(code);
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
        let line = quick_line(code);
        self.quick_interface = line.in_interface(self.quick_interface);
        let Some((field, value)) = line.quick_key(self.quick_interface) else {
            return Ok(false);
        };
        quick::set_key(&mut self.config.interface.quick, field, value, whole)?;
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
                    grammar::port(value)
                        .ok_or_else(|| invalid(field, value, "a valid port (0-65535)"))?,
                );
            }
            "FwMark" => {
                iface.fwmark = Some(grammar::fwmark(value).ok_or_else(|| {
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
                let ips = AllowedIp::parse_config_list(value)
                    .map_err(|item| invalid(field, item, "a valid prefix"))?;
                peer.allowed_ips.extend(ips);
            }
            "Endpoint" => {
                peer.endpoint = Some(Endpoint::parse_config(value).ok_or_else(|| {
                    invalid(field, value, "a valid endpoint (host:port or [host]:port)")
                })?);
            }
            _ => {
                peer.persistent_keepalive =
                    Some(grammar::keepalive(value).ok_or_else(|| {
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

fn unknown(key: &str, section: Section) -> ConfigErrorKind {
    ConfigErrorKind::UnknownKey {
        key: key.to_owned(),
        section,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Table;
    use std::net::IpAddr;

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
