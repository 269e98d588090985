//! `wg show`: the command ([`command`]), and rendering a [`DeviceState`] as wg(8) prints it
//! when standard output is not a terminal (no colour).
//!
//! Source of truth: wg's `show.c`, and the installed `wg` binary in the interop tests. Notable
//! details reproduced here:
//! - the pretty form sorts peers by latest handshake, newest first, never-handshaked last, with
//!   a stable sort (glibc's `qsort` is a merge sort); the field forms and `dump` keep the
//!   daemon's order;
//! - the pretty form hides private and preshared keys as `(hidden)` unless asked
//!   (`WG_HIDE_KEYS=never`), but `private-key`, `preshared-keys` and `dump` print them;
//! - times are relative to a `now` passed in (seconds since the Unix epoch), so output is
//!   deterministic: `Now`, `1 minute, 5 seconds ago`, or the clock-went-backwards notice;
//! - sizes use binary units with two decimals (`1.23 KiB`), computed in `f64` like wg's `double`;
//! - `wg show all <field>` starts every line with the interface name, as current wg does
//!   (wireguard-tools 1.0.20210914 printed it only once before the peers of `endpoints`).
//!
//! The JSON form is in [`json`].

use core::fmt;
use core::str::FromStr;
use std::fmt::Write as _;

use ferrowg_conf::addr::Ntop;
use ferrowg_conf::uapi::{DeviceState, PeerState};

mod json;

pub use json::json;

use super::{client, out, unix_now, usage, CliError};

const SHOW_USAGE: &str = "Usage: ferrowg show { <interface> | all | interfaces } [public-key | private-key | listen-port | fwmark | peers | preshared-keys | endpoints | allowed-ips | latest-handshakes | transfer | persistent-keepalive | dump]";

/// `ferrowg show [--json] [<interface> | all | interfaces] [<field>]`: asks the daemons and
/// prints what wg(8) prints (`all` when no interface is named).
pub fn command(args: &[&str]) -> Result<(), CliError> {
    let json_form = args.contains(&"--json");
    let args: Vec<&str> = args.iter().copied().filter(|a| *a != "--json").collect();
    let opts = ShowOptions {
        hide_keys: std::env::var("WG_HIDE_KEYS").map_or(true, |v| v != "never"),
    };
    let target = args.first().copied().unwrap_or("all");
    if target == "interfaces" {
        if args.len() > 1 {
            return Err(usage(SHOW_USAGE));
        }
        let names = client::interfaces();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        return out(&interfaces(&refs));
    }
    let field_asked = match args.get(1) {
        Some(f) => Some(f.parse::<Field>().map_err(|_| usage(SHOW_USAGE))?),
        None => None,
    };
    let all = target == "all";
    let states = device_states(target)?;
    let refs: Vec<(&str, &DeviceState)> = states.iter().map(|(n, s)| (n.as_str(), s)).collect();
    let text = if json_form {
        json(&refs, !opts.hide_keys)
    } else {
        match (field_asked, refs.first()) {
            (None, _) if all => pretty_all(&refs, unix_now(), opts),
            (Some(f), _) if all => field_all(&refs, f),
            (None, Some((n, s))) => pretty(n, s, unix_now(), opts),
            (Some(f), Some((n, s))) => field(n, s, f, false),
            (_, None) => String::new(),
        }
    };
    out(&text)
}

/// The state of `target` (an interface, or `all`: every interface with a live socket, those
/// that fail to answer reported and left out).
fn device_states(target: &str) -> Result<Vec<(String, DeviceState)>, CliError> {
    let names: Vec<String> = if target == "all" {
        client::interfaces()
    } else {
        vec![target.to_string()]
    };
    let mut states = Vec::new();
    for n in names {
        match client::get(&n) {
            Ok(s) => states.push((n, s)),
            Err(e) if target == "all" => eprintln!("{e}"),
            Err(e) => return Err(e),
        }
    }
    Ok(states)
}

/// Options of the pretty form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowOptions {
    /// Print `(hidden)` instead of private and preshared keys (wg's default; `WG_HIDE_KEYS=never`
    /// turns it off).
    pub hide_keys: bool,
}

impl Default for ShowOptions {
    fn default() -> Self {
        Self { hide_keys: true }
    }
}

impl ShowOptions {
    /// A secret key as the pretty form shows it: `(hidden)`, or its base64 when keys are shown.
    fn secret(self, base64: impl FnOnce() -> String) -> String {
        if self.hide_keys {
            "(hidden)".to_owned()
        } else {
            base64()
        }
    }
}

/// The pretty form of one interface, `interface: wg0` and what follows.
pub fn pretty(name: &str, state: &DeviceState, now: u64, opts: ShowOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "interface: {name}");
    if let Some(pk) = state.public_key() {
        let _ = writeln!(out, "  public key: {pk}");
    }
    if let Some(sk) = &state.private_key {
        let _ = writeln!(out, "  private key: {}", opts.secret(|| sk.to_base64()));
    }
    if state.listen_port != 0 {
        let _ = writeln!(out, "  listening port: {}", state.listen_port);
    }
    if state.fwmark != 0 {
        let _ = writeln!(out, "  fwmark: 0x{:x}", state.fwmark);
    }
    let mut peers: Vec<&PeerState> = state.peers.iter().collect();
    // Newest handshake first; never (0.0) last. Stable, like glibc's merge-sort qsort.
    peers.sort_by(|a, b| {
        let key = |p: &PeerState| (p.last_handshake_time_sec, p.last_handshake_time_nsec);
        let (ka, kb) = (key(a), key(b));
        match (ka == (0, 0), kb == (0, 0)) {
            (true, false) => core::cmp::Ordering::Greater,
            (false, true) => core::cmp::Ordering::Less,
            _ => kb.cmp(&ka),
        }
    });
    for peer in peers {
        out.push('\n');
        pretty_peer(&mut out, peer, now, opts);
    }
    out
}

fn pretty_peer(out: &mut String, peer: &PeerState, now: u64, opts: ShowOptions) {
    let _ = writeln!(out, "peer: {}", peer.public_key);
    if let Some(psk) = &peer.preshared_key {
        let _ = writeln!(out, "  preshared key: {}", opts.secret(|| psk.to_base64()));
    }
    if let Some(endpoint) = peer.endpoint {
        let _ = writeln!(out, "  endpoint: {}", Ntop(endpoint));
    }
    let _ = writeln!(out, "  allowed ips: {}", allowed_ips(peer, ", "));
    if peer.last_handshake_time_sec != 0 {
        let _ = writeln!(
            out,
            "  latest handshake: {}",
            ago(peer.last_handshake_time_sec, now)
        );
    }
    if peer.rx_bytes != 0 || peer.tx_bytes != 0 {
        let _ = writeln!(
            out,
            "  transfer: {} received, {} sent",
            Bytes(peer.rx_bytes),
            Bytes(peer.tx_bytes)
        );
    }
    if peer.persistent_keepalive_interval != 0 {
        let every = Duration(peer.persistent_keepalive_interval.into());
        let _ = writeln!(out, "  persistent keepalive: every {every}");
    }
}

/// `wg show all`: each interface's pretty form, separated by an empty line.
pub fn pretty_all(devices: &[(&str, &DeviceState)], now: u64, opts: ShowOptions) -> String {
    let parts: Vec<String> = devices
        .iter()
        .map(|(name, state)| pretty(name, state, now, opts))
        .collect();
    parts.join("\n")
}

/// `wg show interfaces`: the names on one line, space-separated; nothing at all for none.
pub fn interfaces(names: &[&str]) -> String {
    if names.is_empty() {
        return String::new();
    }
    format!("{}\n", names.join(" "))
}

/// The single-field forms of `wg show <interface> <field>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `public-key`.
    PublicKey,
    /// `private-key` (printed in clear).
    PrivateKey,
    /// `listen-port`.
    ListenPort,
    /// `fwmark`.
    FwMark,
    /// `peers`.
    Peers,
    /// `preshared-keys` (printed in clear).
    PresharedKeys,
    /// `endpoints`.
    Endpoints,
    /// `allowed-ips`.
    AllowedIps,
    /// `latest-handshakes`.
    LatestHandshakes,
    /// `transfer`.
    Transfer,
    /// `persistent-keepalive`.
    PersistentKeepalive,
    /// `dump`.
    Dump,
}

impl Field {
    /// Every field, in wg's usage order.
    pub const ALL: [Self; 12] = [
        Self::PublicKey,
        Self::PrivateKey,
        Self::ListenPort,
        Self::FwMark,
        Self::Peers,
        Self::PresharedKeys,
        Self::Endpoints,
        Self::AllowedIps,
        Self::LatestHandshakes,
        Self::Transfer,
        Self::PersistentKeepalive,
        Self::Dump,
    ];

    /// The name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Self::PublicKey => "public-key",
            Self::PrivateKey => "private-key",
            Self::ListenPort => "listen-port",
            Self::FwMark => "fwmark",
            Self::Peers => "peers",
            Self::PresharedKeys => "preshared-keys",
            Self::Endpoints => "endpoints",
            Self::AllowedIps => "allowed-ips",
            Self::LatestHandshakes => "latest-handshakes",
            Self::Transfer => "transfer",
            Self::PersistentKeepalive => "persistent-keepalive",
            Self::Dump => "dump",
        }
    }
}

/// A field name that wg does not know (wg prints "Invalid parameter: `x'").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid parameter: `{0}'")]
pub struct InvalidField(pub String);

impl FromStr for Field {
    type Err = InvalidField;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| InvalidField(s.to_owned()))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `wg show <interface> <field>`; with `with_interface` (for `wg show all <field>`) every line
/// starts with the interface name and a tab.
pub fn field(name: &str, state: &DeviceState, field: Field, with_interface: bool) -> String {
    let prefix = if with_interface {
        format!("{name}\t")
    } else {
        String::new()
    };
    let mut out = String::new();
    let none = || "(none)".to_owned();
    let device_line = |out: &mut String, value: String| {
        let _ = writeln!(out, "{prefix}{value}");
    };
    match field {
        Field::PublicKey => {
            device_line(
                &mut out,
                state.public_key().map_or_else(none, |k| k.to_base64()),
            );
        }
        Field::PrivateKey => {
            device_line(
                &mut out,
                state
                    .private_key
                    .as_ref()
                    .map_or_else(none, |k| k.to_base64()),
            );
        }
        Field::ListenPort => device_line(&mut out, state.listen_port.to_string()),
        Field::FwMark => device_line(&mut out, fwmark(state.fwmark)),
        Field::Dump => {
            let private = state
                .private_key
                .as_ref()
                .map_or_else(none, |k| k.to_base64());
            let public = state.public_key().map_or_else(none, |k| k.to_base64());
            let (port, mark) = (state.listen_port, fwmark(state.fwmark));
            device_line(&mut out, format!("{private}\t{public}\t{port}\t{mark}"));
            for p in &state.peers {
                let _ = writeln!(out, "{prefix}{}", dump_peer(p));
            }
        }
        _ => {
            for p in &state.peers {
                let _ = writeln!(out, "{prefix}{}", peer_field(p, field));
            }
        }
    }
    out
}

/// `wg show all <field>`: [`field`] for every interface, with the name column.
pub fn field_all(devices: &[(&str, &DeviceState)], f: Field) -> String {
    devices
        .iter()
        .map(|(name, state)| field(name, state, f, true))
        .collect()
}

fn fwmark(mark: u32) -> String {
    if mark == 0 {
        "off".to_owned()
    } else {
        format!("0x{mark:x}")
    }
}

fn peer_field(p: &PeerState, f: Field) -> String {
    let pk = p.public_key;
    match f {
        Field::PresharedKeys => {
            format!(
                "{pk}\t{}",
                p.preshared_key
                    .as_ref()
                    .map_or("(none)".into(), |k| k.to_base64())
            )
        }
        Field::Endpoints => format!("{pk}\t{}", endpoint(p)),
        Field::AllowedIps => format!("{pk}\t{}", allowed_ips(p, " ")),
        Field::LatestHandshakes => format!("{pk}\t{}", p.last_handshake_time_sec),
        Field::Transfer => format!("{pk}\t{}\t{}", p.rx_bytes, p.tx_bytes),
        Field::PersistentKeepalive => {
            format!("{pk}\t{}", keepalive(p.persistent_keepalive_interval))
        }
        // Peers, and the device fields which never reach here.
        _ => pk.to_string(),
    }
}

fn dump_peer(p: &PeerState) -> String {
    let psk = p
        .preshared_key
        .as_ref()
        .map_or("(none)".into(), |k| k.to_base64());
    format!(
        "{}\t{psk}\t{}\t{}\t{}\t{}\t{}\t{}",
        p.public_key,
        endpoint(p),
        allowed_ips(p, ","),
        p.last_handshake_time_sec,
        p.rx_bytes,
        p.tx_bytes,
        keepalive(p.persistent_keepalive_interval)
    )
}

/// The peer's allowed IPs joined by `sep`, or `(none)`.
fn allowed_ips(p: &PeerState, sep: &str) -> String {
    if p.allowed_ips.is_empty() {
        "(none)".to_owned()
    } else {
        join(p.allowed_ips.iter().map(|ip| ip.ntop()), sep)
    }
}

fn endpoint(p: &PeerState) -> String {
    p.endpoint.map_or("(none)".into(), |e| Ntop(e).to_string())
}

fn keepalive(k: u16) -> String {
    if k == 0 {
        "off".to_owned()
    } else {
        k.to_string()
    }
}

fn join<T: fmt::Display>(items: impl Iterator<Item = T>, sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        let _ = write!(out, "{item}");
    }
    out
}

/// `ago()` of show.c.
fn ago(then: u64, now: u64) -> String {
    match now.cmp(&then) {
        core::cmp::Ordering::Equal => "Now".to_owned(),
        core::cmp::Ordering::Less => {
            "(System clock wound backward; connection problems may ensue.)".to_owned()
        }
        core::cmp::Ordering::Greater => format!("{} ago", Duration(now - then)),
    }
}

/// `pretty_time()` of show.c: years (of 365 days), days, hours, minutes, seconds, zero units
/// left out, comma-separated, singular for 1.
struct Duration(u64);

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0;
        let mut first = true;
        for (unit, secs) in [
            ("year", 365 * 24 * 3600),
            ("day", 24 * 3600),
            ("hour", 3600),
            ("minute", 60),
            ("second", 1),
        ] {
            let n = left / secs;
            left %= secs;
            if n == 0 {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// `bytes()` of show.c: `%u B` below 1 KiB, else `%.2f` of the value in KiB, MiB, GiB or TiB.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const K: u64 = 1024;
        let b = self.0;
        // `as f64` rounds to nearest like C's conversion to double; the divisions by powers of
        // two are exact, and `{:.2}` rounds the exact value half-to-even like glibc's printf.
        let (value, unit) = if b < K {
            return write!(f, "{b} B");
        } else if b < K * K {
            (b as f64 / 1024.0, "KiB")
        } else if b < K * K * K {
            (b as f64 / (1024.0 * 1024.0), "MiB")
        } else if b < K * K * K * K {
            (b as f64 / (1024.0 * 1024.0 * 1024.0), "GiB")
        } else {
            (b as f64 / (1024.0 * 1024.0 * 1024.0) / 1024.0, "TiB")
        };
        write!(f, "{value:.2} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrowg_conf::addr::AllowedIp;
    use ferrowg_keys::key::{PresharedKey, PrivateKey, PublicKey};

    pub(super) const SK: &str = "YH3vNJcpXV1l5vBTKP5dF5Q8oRjU9Rvr7fZpXLgZRU0=";
    pub(super) const NOW: u64 = 1_700_000_000;

    pub(super) fn pk(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    pub(super) fn state() -> DeviceState {
        let mut a = PeerState::new(pk(1));
        a.last_handshake_time_sec = NOW - 65;
        a.rx_bytes = 1263;
        a.tx_bytes = 4_781_506;
        a.allowed_ips = vec![
            AllowedIp::parse_uapi("10.0.0.0/24").unwrap(),
            AllowedIp::parse_uapi("fd00::/64").unwrap(),
        ];
        a.endpoint = Some("192.0.2.1:51820".parse().unwrap());
        a.persistent_keepalive_interval = 25;
        a.preshared_key = Some(PresharedKey::from_bytes([2; 32]));
        let b = PeerState::new(pk(3));
        let mut c = PeerState::new(pk(4));
        c.last_handshake_time_sec = NOW;
        DeviceState {
            private_key: Some(PrivateKey::from_base64(SK).unwrap()),
            listen_port: 51820,
            fwmark: 0xca6c,
            peers: vec![a, b, c],
        }
    }

    #[test]
    fn pretty_form() {
        let s = state();
        let public = s.public_key().unwrap();
        let expected = format!(
            "interface: wg0\n  public key: {public}\n  private key: (hidden)\n  listening port: 51820\n\
             \x20 fwmark: 0xca6c\n\npeer: {}\n  allowed ips: (none)\n  latest handshake: Now\n\n\
             peer: {}\n  preshared key: (hidden)\n  endpoint: 192.0.2.1:51820\n\
             \x20 allowed ips: 10.0.0.0/24, fd00::/64\n  latest handshake: 1 minute, 5 seconds ago\n\
             \x20 transfer: 1.23 KiB received, 4.56 MiB sent\n  persistent keepalive: every 25 seconds\n\n\
             peer: {}\n  allowed ips: (none)\n",
            pk(4),
            pk(1),
            pk(3)
        );
        assert_eq!(pretty("wg0", &s, NOW, ShowOptions::default()), expected);
        let shown = pretty("wg0", &s, NOW, ShowOptions { hide_keys: false });
        assert!(shown.contains(&format!("private key: {SK}\n")));
        assert_eq!(
            pretty("x", &DeviceState::default(), NOW, ShowOptions::default()),
            "interface: x\n"
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(ago(NOW, NOW), "Now");
        assert_eq!(ago(NOW - 1, NOW), "1 second ago");
        assert_eq!(ago(NOW - 3600, NOW), "1 hour ago");
        assert_eq!(
            ago(NOW - (2 * 365 * 86400 + 86400 + 2 * 3600 + 60 + 7), NOW),
            "2 years, 1 day, 2 hours, 1 minute, 7 seconds ago"
        );
        assert_eq!(
            ago(NOW + 1, NOW),
            "(System clock wound backward; connection problems may ensue.)"
        );
        assert_eq!(
            Duration(65535).to_string(),
            "18 hours, 12 minutes, 15 seconds"
        );
        let b = |n: u64| Bytes(n).to_string();
        assert_eq!(b(0), "0 B");
        assert_eq!(b(1023), "1023 B");
        assert_eq!(b(1024), "1.00 KiB");
        assert_eq!(b(1152), "1.12 KiB"); // exact tie 1.125: round half to even, like glibc
        assert_eq!(b(1408), "1.38 KiB"); // 1.375
        assert_eq!(b(1024 * 1024 - 1), "1024.00 KiB");
        assert_eq!(b(1 << 30), "1.00 GiB");
        assert_eq!(b(1 << 40), "1.00 TiB");
        assert_eq!(b(u64::MAX), "16777216.00 TiB");
    }

    #[test]
    fn fields_and_dump() {
        let s = state();
        let public = s.public_key().unwrap();
        let f = |fl| field("wg0", &s, fl, false);
        assert_eq!(f(Field::PublicKey), format!("{public}\n"));
        assert_eq!(f(Field::PrivateKey), format!("{SK}\n"));
        assert_eq!(f(Field::ListenPort), "51820\n");
        assert_eq!(f(Field::FwMark), "0xca6c\n");
        assert_eq!(
            f(Field::Peers),
            format!("{}\n{}\n{}\n", pk(1), pk(3), pk(4))
        );
        assert_eq!(
            f(Field::AllowedIps),
            format!(
                "{}\t10.0.0.0/24 fd00::/64\n{}\t(none)\n{}\t(none)\n",
                pk(1),
                pk(3),
                pk(4)
            )
        );
        assert_eq!(
            f(Field::PersistentKeepalive),
            format!("{}\t25\n{}\toff\n{}\toff\n", pk(1), pk(3), pk(4))
        );
        let psk = PresharedKey::from_bytes([2; 32]).to_base64();
        assert_eq!(
            f(Field::Dump),
            format!(
                "{SK}\t{public}\t51820\t0xca6c\n\
                 {}\t{psk}\t192.0.2.1:51820\t10.0.0.0/24,fd00::/64\t{}\t1263\t4781506\t25\n\
                 {}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n{}\t(none)\t(none)\t(none)\t{NOW}\t0\t0\toff\n",
                pk(1),
                NOW - 65,
                pk(3),
                pk(4)
            )
        );
        let empty = DeviceState::default();
        assert_eq!(
            field("wg1", &empty, Field::Dump, true),
            "wg1\t(none)\t(none)\t0\toff\n"
        );
        assert_eq!(field("wg1", &empty, Field::Peers, true), "");
        assert_eq!(
            field_all(&[("a", &empty), ("b", &empty)], Field::ListenPort),
            "a\t0\nb\t0\n"
        );
    }

    #[test]
    fn field_names() {
        for f in Field::ALL {
            assert_eq!(f.name().parse::<Field>(), Ok(f));
        }
        assert_eq!(
            "bogus".parse::<Field>().unwrap_err().to_string(),
            "Invalid parameter: `bogus'"
        );
    }

    #[test]
    fn interfaces_and_all() {
        assert_eq!(interfaces(&[]), "");
        assert_eq!(interfaces(&["wg0", "wg1"]), "wg0 wg1\n");
        let empty = DeviceState::default();
        assert_eq!(
            pretty_all(&[("a", &empty), ("b", &empty)], NOW, ShowOptions::default()),
            "interface: a\n\ninterface: b\n"
        );
    }
}
