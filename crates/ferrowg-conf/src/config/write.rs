//! Writing configurations back: `wg showconf`, `wg-quick save`'s layout, and `wg-quick strip`.
//!
//! The wg layout, from wg's `showconf.c`: `[Interface]`, then `ListenPort`, `FwMark` (as
//! `0x%x`), `PrivateKey`, an empty line; each peer as `[Peer]`, `PublicKey`, `PresharedKey`,
//! `AllowedIPs = a, b`, `Endpoint`, `PersistentKeepalive`, with an empty line between peers.
//! Addresses are printed by `inet_ntop`.

use std::fmt::Write as _;

use super::error::ConfigError;
use super::parse::parse;
use super::syntax::{lines, quick_line};
use super::{Address, Config, Dialect, Interface, Peer};
use crate::addr::{Endpoint, Ntop};
use crate::uapi::DeviceState;
use ferrowg_keys::key::{PresharedKey, PrivateKey};

/// `wg showconf`: the running configuration of an interface, byte for byte as wg(8) prints it.
pub fn showconf(state: &DeviceState) -> String {
    Config::from(state).to_wg_conf()
}

impl From<&DeviceState> for Config {
    /// The configuration that would recreate `state`; zero values (`listen_port`, `fwmark`,
    /// keepalive) become "not set", as `wg showconf` omits them.
    fn from(state: &DeviceState) -> Self {
        let peers = state
            .peers
            .iter()
            .map(|p| Peer {
                public_key: p.public_key,
                preshared_key: p.preshared_key.clone().and_then(PresharedKey::nonzero),
                allowed_ips: p.allowed_ips.clone(),
                endpoint: p.endpoint.map(Endpoint::Addr),
                persistent_keepalive: Some(p.persistent_keepalive_interval).filter(|&k| k != 0),
            })
            .collect();
        Self {
            interface: Interface {
                private_key: state.private_key.clone().and_then(PrivateKey::nonzero),
                private_key_uri: None,
                listen_port: Some(state.listen_port).filter(|&p| p != 0),
                fwmark: Some(state.fwmark).filter(|&m| m != 0),
                quick: Default::default(),
            },
            peers,
        }
    }
}

impl Config {
    /// The wg(8) keys in `wg showconf` layout. Values that `showconf` never prints but a file
    /// may hold are kept: `ListenPort = 0`, `FwMark = off`, `PersistentKeepalive = off`, and a
    /// host name endpoint.
    pub fn to_wg_conf(&self) -> String {
        let mut out = String::from("[Interface]\n");
        self.write_wg_interface(&mut out);
        self.write_peers(&mut out);
        out
    }

    /// The wg-quick(8) layout of `wg-quick save`: `[Interface]`, the wg-quick keys (`Address`,
    /// `DNS`, `MTU`, `Table`, `SaveConfig`, `PreUp`, `PostUp`, `PreDown`, `PostDown`), then
    /// the wg keys as in [`Config::to_wg_conf`], ending with a single newline.
    pub fn to_quick_conf(&self) -> String {
        let mut out = String::from("[Interface]\n");
        let q = &self.interface.quick;
        for a in &q.addresses {
            let _ = writeln!(out, "Address = {}", fmt_address(a));
        }
        for d in &q.dns {
            let _ = writeln!(out, "DNS = {}", Ntop(*d));
        }
        for d in &q.dns_search {
            let _ = writeln!(out, "DNS = {d}");
        }
        if let Some(mtu) = q.mtu {
            let _ = writeln!(out, "MTU = {mtu}");
        }
        if let Some(table) = &q.table {
            let _ = writeln!(out, "Table = {table}");
        }
        if q.save_config {
            out.push_str("SaveConfig = true\n");
        }
        for (name, list) in q.hooks() {
            for cmd in list {
                let _ = writeln!(out, "{name} = {cmd}");
            }
        }
        self.write_wg_interface(&mut out);
        self.write_peers(&mut out);
        // wg-quick captures showconf with $(…), dropping trailing newlines, then echoes one.
        let end = out.trim_end_matches('\n').len();
        out.truncate(end);
        out.push('\n');
        out
    }

    fn write_wg_interface(&self, out: &mut String) {
        let iface = &self.interface;
        if let Some(port) = iface.listen_port {
            let _ = writeln!(out, "ListenPort = {port}");
        }
        write_off_or(out, "FwMark", iface.fwmark, |mark| format!("0x{mark:x}"));
        if let Some(key) = &iface.private_key {
            let _ = writeln!(out, "PrivateKey = {}", key.to_base64());
        } else if let Some(uri) = &iface.private_key_uri {
            let _ = writeln!(out, "PrivateKey = {}", uri.to_uri_secret().as_str());
        }
        out.push('\n');
    }

    fn write_peers(&self, out: &mut String) {
        for (i, peer) in self.peers.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "[Peer]\nPublicKey = {}", peer.public_key.to_base64());
            if let Some(psk) = &peer.preshared_key {
                let _ = writeln!(out, "PresharedKey = {}", psk.to_base64());
            }
            if !peer.allowed_ips.is_empty() {
                let ips: Vec<String> = peer
                    .allowed_ips
                    .iter()
                    .map(|ip| ip.ntop().to_string())
                    .collect();
                let _ = writeln!(out, "AllowedIPs = {}", ips.join(", "));
            }
            if let Some(endpoint) = &peer.endpoint {
                let _ = writeln!(out, "Endpoint = {endpoint}");
            }
            let keepalive = peer.persistent_keepalive.map(u32::from);
            write_off_or(out, "PersistentKeepalive", keepalive, |k| k.to_string());
        }
    }
}

fn fmt_address(a: &Address) -> String {
    match a.cidr {
        Some(cidr) => format!("{}/{cidr}", Ntop(a.addr)),
        None => Ntop(a.addr).to_string(),
    }
}

/// `Key = off` for 0, `Key = value` otherwise, nothing when unset: how a file spells the
/// values whose zero means off (`FwMark`, `PersistentKeepalive`).
fn write_off_or(out: &mut String, key: &str, value: Option<u32>, show: impl Fn(u32) -> String) {
    match value {
        Some(0) => {
            let _ = writeln!(out, "{key} = off");
        }
        Some(v) => {
            let _ = writeln!(out, "{key} = {}", show(v));
        }
        None => {}
    }
}

/// `wg-quick strip`: the file without the wg-quick keys, for `wg setconf`/`syncconf`.
///
/// Same output as wg-quick's `echo "$WG_CONFIG"`: every other line, comments and blank lines
/// included, with leading and trailing spaces and tabs removed (what `read -r` does), then one
/// extra newline. Unlike wg-quick, the whole file is parsed first, so a bad file is an error
/// here rather than later in `wg`.
pub fn strip(file: &str, input: &[u8]) -> Result<Vec<u8>, ConfigError> {
    parse(file, input, Dialect::WgQuick)?;
    let mut out = Vec::with_capacity(input.len() + 1);
    let mut interface_section = false;
    for raw in lines(input) {
        let hash = raw.iter().position(|&b| b == b'#').unwrap_or(raw.len());
        // parse() succeeded, so the code part is UTF-8.
        let code = core::str::from_utf8(&raw[..hash]).unwrap_or("");
        let line = quick_line(code);
        interface_section = line.in_interface(interface_section);
        if line.quick_key(interface_section).is_some() {
            continue;
        }
        let is_ifs = |c: &u8| matches!(c, b' ' | b'\t');
        let start = raw.iter().position(|c| !is_ifs(c)).unwrap_or(raw.len());
        let end = raw
            .iter()
            .rposition(|c| !is_ifs(c))
            .map_or(start, |i| i + 1);
        out.extend_from_slice(&raw[start..end.max(start)]);
        out.push(b'\n');
    }
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::AllowedIp;
    use crate::uapi::PeerState;
    use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};

    const PK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SK: &str = "YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=";

    fn state() -> DeviceState {
        let mut p1 = PeerState::new(PublicKey::from_base64(PK).unwrap());
        p1.preshared_key = Some(PresharedKey::from_bytes([7; 32]));
        p1.allowed_ips = vec![
            AllowedIp::parse_uapi("10.0.0.0/24").unwrap(),
            AllowedIp::parse_uapi("::1.2.3.4/128").unwrap(),
        ];
        p1.endpoint = Some("[2001:db8::1]:51820".parse().unwrap());
        p1.persistent_keepalive_interval = 25;
        p1.last_handshake_time_sec = 1234;
        let p2 = PeerState::new(PublicKey::from_bytes([9; 32]));
        DeviceState {
            private_key: Some(PrivateKey::from_base64(SK).unwrap()),
            listen_port: 51820,
            fwmark: 0xca6c,
            peers: vec![p1, p2],
        }
    }

    #[test]
    fn showconf_layout() {
        let expected = format!(
            "[Interface]\nListenPort = 51820\nFwMark = 0xca6c\nPrivateKey = {SK}\n\n\
             [Peer]\nPublicKey = {PK}\nPresharedKey = BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\
             AllowedIPs = 10.0.0.0/24, ::1.2.3.4/128\nEndpoint = [2001:db8::1]:51820\n\
             PersistentKeepalive = 25\n\n[Peer]\nPublicKey = CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n"
        );
        assert_eq!(showconf(&state()), expected);
        assert_eq!(showconf(&DeviceState::default()), "[Interface]\n\n");
    }

    #[test]
    fn showconf_round_trips_through_the_parser() {
        let text = showconf(&state());
        let parsed = parse("x", text.as_bytes(), Dialect::Wg).unwrap();
        assert_eq!(parsed, Config::from(&state()));
        assert_eq!(parsed.to_wg_conf(), text);
    }

    #[test]
    fn wg_conf_keeps_what_showconf_would_drop() {
        let text = "[Interface]\nListenPort = 0\nFwMark = off\n\n[Peer]\n\
                    PublicKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\
                    Endpoint = vpn.example.com:51820\nPersistentKeepalive = off\n";
        let c = parse("x", text.as_bytes(), Dialect::Wg).unwrap();
        assert_eq!(c.to_wg_conf(), text);
    }

    #[test]
    fn quick_conf_round_trips() {
        let text = format!(
            "[Interface]\nAddress = 10.0.0.1/24\nAddress = fd00::1\nDNS = 1.1.1.1\nDNS = example.com\n\
             MTU = 1420\nTable = 1234\nSaveConfig = true\nPreUp = echo up # %i\nPostUp = a\n\
             PreDown = b\nPostDown = c\nListenPort = 1\nPrivateKey = {SK}\n\n[Peer]\nPublicKey = {PK}\n\
             AllowedIPs = 0.0.0.0/0\n"
        );
        let c = parse("x", text.as_bytes(), Dialect::WgQuick).unwrap();
        assert_eq!(c.to_quick_conf(), text);
        let again = parse("x", c.to_quick_conf().as_bytes(), Dialect::WgQuick).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn strip_is_wg_quick_strip() {
        let text = b"  [Interface]  \n# Address = kept comment\nAddress = 10.0.0.1/24\n\
                     \tPrivateKey = YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=\t\n\n\
                     PostUp = echo '#'\ndns=1.1.1.1\n[Peer]\n\
                     PublicKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let expected = b"[Interface]\n# Address = kept comment\n\
                         PrivateKey = YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=\n\n\
                         [Peer]\nPublicKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n";
        assert_eq!(
            String::from_utf8_lossy(&strip("wg0.conf", text).unwrap()),
            String::from_utf8_lossy(expected)
        );
        assert_eq!(strip("wg0.conf", b"").unwrap(), b"\n");
        let e = strip("wg0.conf", b"[Interface]\nMTU = x\n").unwrap_err();
        assert_eq!(e.to_string(), "wg0.conf:2: MTU: \"x\" is not a valid MTU");
    }
}
