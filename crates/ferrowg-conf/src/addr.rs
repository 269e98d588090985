//! IP prefixes and endpoints as the three dialects spell them.
//!
//! - wg(8) configuration files (`config.c`): `AllowedIPs` entries are `ip` or `ip/cidr` with the
//!   address parsed by `inet_pton` and a decimal mask that may have leading zeros; host bits are
//!   allowed. `Endpoint` is `host:port` or `[host]:port`, split at the last colon (or at the
//!   closing bracket), where the host may be a name to resolve later.
//! - The UAPI socket (wireguard-go, Go's `netip`): `allowed_ip=ip/cidr` with the mask mandatory
//!   and without leading zeros; `endpoint=ip:port` or `[ipv6]:port`, numeric only.
//! - Output of wg(8) (`show`, `showconf`, the `set=1` requests it writes): addresses are printed
//!   by glibc's `inet_ntop`, which differs from Rust's and Go's formatting for IPv6 addresses
//!   whose first 96 bits are zero (`::1.2.3.4`). [`Ntop`] reproduces glibc's algorithm.
//!
//! The numbers inside them (masks, ports, zones) are read by [`crate::grammar`].

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::grammar::{self, decimal};

/// An IP prefix: an address and a mask length, host bits kept as written (wg accepts
/// `10.0.0.1/24`; the allowed-IPs table masks it on insertion, see [`AllowedIp::masked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AllowedIp {
    /// The address, possibly with host bits set.
    pub addr: IpAddr,
    /// The mask length: at most 32 for IPv4 and 128 for IPv6.
    pub cidr: u8,
}

impl AllowedIp {
    /// A prefix, or `None` when `cidr` is longer than the address.
    pub fn new(addr: IpAddr, cidr: u8) -> Option<Self> {
        (cidr <= max_cidr(&addr)).then_some(Self { addr, cidr })
    }

    /// The same prefix with the host bits cleared.
    pub fn masked(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.cidr)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.cidr))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Self {
            addr,
            cidr: self.cidr,
        }
    }

    /// Parses one `AllowedIPs` entry of a wg(8) configuration file (whitespace already removed):
    /// `ip` (meaning /32 or /128) or `ip/cidr`, the way `parse_allowedips` in wg's config.c does.
    pub fn parse_config(text: &str) -> Option<Self> {
        let (ip, mask) = match text.split_once('/') {
            Some((ip, mask)) => (ip, Some(mask)),
            None => (text, None),
        };
        let addr = parse_ip_like_wg(ip)?;
        let cidr = match mask {
            Some(mask) => decimal(mask)?,
            None => max_cidr(&addr),
        };
        Self::new(addr, cidr)
    }

    /// Parses an `AllowedIPs` value the way `parse_allowedips` in wg's config.c does, for the
    /// file key and for `wg set … allowed-ips`: prefixes separated by commas (white space
    /// already removed), each as [`AllowedIp::parse_config`] reads it. An empty list is valid
    /// (`wg set … allowed-ips ""` clears a peer's prefixes); an empty entry is not. On failure,
    /// the offending entry.
    pub fn parse_config_list(list: &str) -> Result<Vec<Self>, &str> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        list.split(',')
            .map(|item| Self::parse_config(item).ok_or(item))
            .collect()
    }

    /// Parses a UAPI `allowed_ip` value like Go's `netip.ParsePrefix`: the mask is mandatory,
    /// decimal, without sign or leading zeros, and IPv6 zones are refused.
    pub fn parse_uapi(text: &str) -> Option<Self> {
        let (ip, bits) = text.rsplit_once('/')?;
        let addr = ip.parse::<IpAddr>().ok()?;
        if bits.len() > 1 && bits.starts_with('0') {
            return None;
        }
        Self::new(addr, decimal(bits)?)
    }

    /// Formats like wg(8) does (`inet_ntop`, then `/cidr`).
    pub fn ntop(&self) -> Ntop<Self> {
        Ntop(*self)
    }
}

/// Go/RFC 5952 style, as wireguard-go writes `allowed_ip=` lines.
impl fmt::Display for AllowedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.cidr)
    }
}

/// The longest mask for the address family.
fn max_cidr(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// `parse_ip` in wg's config.c: IPv6 if the text has a colon, else IPv4, both via `inet_pton`
/// (strict dotted quad without leading zeros; no zone), which std's parsers match.
fn parse_ip_like_wg(text: &str) -> Option<IpAddr> {
    if text.contains(':') {
        text.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    }
}

/// A peer endpoint as written in a configuration file: either a socket address, or a host name
/// with a port, kept as a string to be resolved when the configuration is applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A numeric address.
    Addr(SocketAddr),
    /// A name (or an IPv6 literal with a named zone) to resolve, and the port.
    Host {
        /// The host as written, without brackets.
        host: String,
        /// The UDP port.
        port: u16,
    },
}

impl Endpoint {
    /// Parses an `Endpoint` value the way wg's config.c splits it: `[host]:port` takes the text
    /// between the brackets; otherwise the host is everything before the last colon, so an
    /// unbracketed IPv6 literal also works. Ports are decimal (wg would also look up service
    /// names in /etc/services; we do not).
    pub fn parse_config(text: &str) -> Option<Self> {
        let (host, port, bracketed) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']')?;
            (host, after.strip_prefix(':')?, true)
        } else {
            let (host, port) = text.rsplit_once(':')?;
            (host, port, false)
        };
        if host.is_empty() {
            return None;
        }
        let port = grammar::port(port)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Self::Addr(SocketAddr::new(ip, port)));
        }
        // An IPv6 literal with a numeric zone is still an address (`[fe80::1%2]:51820`).
        if let Some(SocketAddr::V6(sa)) = parse_uapi_endpoint(&format!("[{host}]:{port}")) {
            return Some(Self::Addr(SocketAddr::V6(sa)));
        }
        let allowed = |c: char| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_')
                || (bracketed && matches!(c, ':' | '%'))
        };
        if !host.chars().all(allowed) {
            return None;
        }
        Some(Self::Host {
            host: host.to_owned(),
            port,
        })
    }

    /// The socket address: a numeric endpoint as it is, a host name through `resolve`.
    pub fn resolve_with<E>(
        &self,
        resolve: impl FnOnce(&Self) -> Result<SocketAddr, E>,
    ) -> Result<SocketAddr, E> {
        match self {
            Self::Addr(addr) => Ok(*addr),
            host => resolve(host),
        }
    }
}

impl Endpoint {
    /// The name and port of a host-name endpoint, when it is one a daemon may keep and resolve
    /// again ([`HostEndpoint`]); `None` for a numeric endpoint or an over-long name.
    pub fn host_endpoint(&self) -> Option<HostEndpoint> {
        match self {
            Self::Addr(_) => None,
            Self::Host { host, port } => HostEndpoint::new(host, *port),
        }
    }
}

/// The longest host name a [`HostEndpoint`] holds: 253 bytes, the longest DNS name in text
/// form (RFC 1035 §2.3.4: 255 octets on the wire).
pub const MAX_HOST_NAME: usize = 253;

/// A peer endpoint given as a host name and a port, kept as written so that it can be resolved
/// again later (ferrowg's UAPI extension `ferrowg_endpoint_host`). The host is what
/// [`Endpoint::parse_config`] accepts as a name (not a numeric address), at most
/// [`MAX_HOST_NAME`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostEndpoint {
    host: String,
    port: u16,
}

impl HostEndpoint {
    /// The endpoint `host`:`port`, or `None` when `host` is empty, too long, numeric or has a
    /// character that no name has.
    pub fn new(host: &str, port: u16) -> Option<Self> {
        if host.len() > MAX_HOST_NAME {
            return None;
        }
        let text = Endpoint::Host {
            host: host.to_owned(),
            port,
        }
        .to_string();
        Self::parse(&text)
    }

    /// Parses `host:port` or `[host]:port` as written in a configuration file; numeric
    /// endpoints and names over [`MAX_HOST_NAME`] bytes are refused.
    pub fn parse(text: &str) -> Option<Self> {
        match Endpoint::parse_config(text)? {
            Endpoint::Host { host, port } if host.len() <= MAX_HOST_NAME => {
                Some(Self { host, port })
            }
            _ => None,
        }
    }

    /// The host name, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The UDP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// As written in a configuration file: `host:port`, or `[host]:port` when the host has a `:`
/// or `%`; [`HostEndpoint::parse`] reads it back.
impl fmt::Display for HostEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains([':', '%']) {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The address a host name resolves to, chosen among the resolver's answers `addrs` as the
/// command line and the daemon both choose it: the first IPv4 address, else the first one.
pub fn preferred_address(addrs: impl IntoIterator<Item = SocketAddr>) -> Option<SocketAddr> {
    let mut first = None;
    for a in addrs {
        if a.is_ipv4() {
            return Some(a);
        }
        first = first.or(Some(a));
    }
    first
}

/// As wg(8) would write it back: `[v6]:port`, `v4:port`, or `host:port`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(sa) => Ntop(*sa).fmt(f),
            // Brackets whenever the host has a character that would end it otherwise, so what
            // is printed parses back to the same endpoint.
            Self::Host { host, port } if host.contains([':', '%']) => write!(f, "[{host}]:{port}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Parses a UAPI `endpoint` value like Go's `netip.ParseAddrPort`: `a.b.c.d:port` or
/// `[ipv6]:port`, brackets exactly when IPv6. A zone must be numeric (std cannot hold interface
/// names; wireguard-go would accept `%eth0`).
pub fn parse_uapi_endpoint(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.rsplit_once(':')?;
    if ip.is_empty() {
        return None;
    }
    let port = grammar::port(port)?;
    if let Some(inner) = ip.strip_prefix('[') {
        let inner = inner.strip_suffix(']')?;
        let (addr, scope) = match inner.split_once('%') {
            Some((addr, zone)) => (addr, decimal(zone)?),
            None => (inner, 0),
        };
        let addr = addr.parse::<Ipv6Addr>().ok()?;
        Some(SocketAddr::V6(SocketAddrV6::new(addr, port, 0, scope)))
    } else {
        let addr = ip.parse::<Ipv4Addr>().ok()?;
        Some(SocketAddr::new(IpAddr::V4(addr), port))
    }
}

/// Formats an address, prefix or socket address exactly as glibc's `inet_ntop` (and
/// `getnameinfo(NI_NUMERICHOST)`) would, which is how wg(8) prints them.
#[derive(Debug, Clone, Copy)]
pub struct Ntop<T>(pub T);

impl fmt::Display for Ntop<IpAddr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => a.fmt(f),
            IpAddr::V6(a) => fmt_ipv6_glibc(&a, f),
        }
    }
}

impl fmt::Display for Ntop<AllowedIp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ntop(self.0.addr), self.0.cidr)
    }
}

impl fmt::Display for Ntop<SocketAddr> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            SocketAddr::V4(sa) => write!(f, "{}:{}", sa.ip(), sa.port()),
            SocketAddr::V6(sa) => {
                write!(f, "[{}", Ntop(IpAddr::V6(*sa.ip())))?;
                if sa.scope_id() != 0 {
                    // getnameinfo prints the interface name when the index has one; we cannot
                    // know it without I/O and print the number, as it does for unknown indexes.
                    write!(f, "%{}", sa.scope_id())?;
                }
                write!(f, "]:{}", sa.port())
            }
        }
    }
}

/// glibc `inet_ntop6` (from BIND): compress the first longest run of at least two zero groups;
/// print the last 32 bits as dotted quad when the first 96 bits are zero (with at least one of
/// the last two groups non-zero: the run must be exactly six groups) or are `::ffff:0:0/96`.
fn fmt_ipv6_glibc(addr: &Ipv6Addr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let words = addr.segments();
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let (mut cur_base, mut cur_len) = (None::<usize>, 0usize);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_base.is_none() {
                cur_base = Some(i);
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base.is_some() {
            if best_base.is_none() || cur_len > best_len {
                (best_base, best_len) = (cur_base, cur_len);
            }
            cur_base = None;
        }
    }
    if cur_base.is_some() && (best_base.is_none() || cur_len > best_len) {
        (best_base, best_len) = (cur_base, cur_len);
    }
    if best_len < 2 {
        best_base = None;
    }
    let in_run = |i: usize| best_base.is_some_and(|b| i >= b && i < b + best_len);
    let mut out = String::with_capacity(46);
    for (i, &w) in words.iter().enumerate() {
        if in_run(i) {
            if best_base == Some(i) {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6
            && best_base == Some(0)
            && (best_len == 6 || (best_len == 5 && words[5] == 0xffff))
        {
            let o = addr.octets();
            out.push_str(&Ipv4Addr::new(o[12], o[13], o[14], o[15]).to_string());
            return f.write_str(&out);
        }
        out.push_str(&format!("{w:x}"));
    }
    if best_base.is_some_and(|b| b + best_len == 8) {
        out.push(':');
    }
    f.write_str(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntop6(s: &str) -> String {
        Ntop(IpAddr::V6(s.parse().unwrap())).to_string()
    }

    #[test]
    fn ntop_matches_glibc_on_its_special_cases() {
        // Expected strings are what glibc 2.36 inet_ntop prints (checked with wg(8) in the
        // interop tests, which print through it).
        assert_eq!(ntop6("::"), "::");
        assert_eq!(ntop6("::1"), "::1");
        assert_eq!(ntop6("::1.2.3.4"), "::1.2.3.4");
        assert_eq!(ntop6("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(ntop6("::ffff:0:0"), "::ffff:0.0.0.0");
        assert_eq!(ntop6("1::"), "1::");
        assert_eq!(ntop6("1:0:0:1:0:0:1:1"), "1::1:0:0:1:1");
        assert_eq!(ntop6("1:0:1:0:1:0:1:0"), "1:0:1:0:1:0:1:0");
        assert_eq!(ntop6("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(ntop6("fd00:0:0:0:0:0:0:0"), "fd00::");
        assert_eq!(ntop6("0:0:0:0:0:1:0:0"), "::1:0:0");
        assert_eq!(ntop6("64:ff9b::1.2.3.4"), "64:ff9b::102:304");
        // Rust and Go differ exactly here.
        assert_eq!(
            IpAddr::V6("::1.2.3.4".parse().unwrap()).to_string(),
            "::102:304"
        );
    }

    #[test]
    fn config_prefixes_follow_wg() {
        let p = |s| AllowedIp::parse_config(s);
        assert_eq!(p("10.0.0.1").unwrap().cidr, 32);
        assert_eq!(p("fd00::1").unwrap().cidr, 128);
        assert_eq!(p("10.0.0.1/024").unwrap().cidr, 24);
        assert_eq!(p("10.0.0.1/0000000000000008").unwrap().cidr, 8);
        assert_eq!(
            p("10.0.0.1/24").unwrap().addr,
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8x",
            "010.0.0.0/8",
            "10.0.0/8",
            "fe80::1%eth0/64",
            "host/8",
            "10.0.0.0/8/8",
            "10.0.0.0/999",
            "10.0.0.0/256",
            "10.0.0.0/99999999999999999999",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn config_prefix_lists_follow_wg() {
        let p = AllowedIp::parse_config_list;
        assert_eq!(p(""), Ok(Vec::new()));
        assert_eq!(p("10.0.0.1/24,fd00::/64").map(|v| v.len()), Ok(2));
        assert_eq!(p("10.0.0.0/8,"), Err(""));
        assert_eq!(p(",10.0.0.0/8"), Err(""));
        assert_eq!(p("10.0.0.0/8,10.0.0.0/33"), Err("10.0.0.0/33"));
    }

    #[test]
    fn uapi_prefixes_follow_netip() {
        let p = |s| AllowedIp::parse_uapi(s);
        assert_eq!(
            p("10.0.0.1/24"),
            AllowedIp::new("10.0.0.1".parse().unwrap(), 24)
        );
        assert_eq!(p("::/0").unwrap().cidr, 0);
        assert_eq!(p("::ffff:1.2.3.4/128").unwrap().cidr, 128);
        for bad in [
            "10.0.0.1",
            "10.0.0.0/024",
            "10.0.0.0/+8",
            "10.0.0.0/33",
            "fe80::%1/64",
            "",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn masking_clears_host_bits() {
        let m = |s: &str| AllowedIp::parse_config(s).unwrap().masked().to_string();
        assert_eq!(m("10.1.2.3/8"), "10.0.0.0/8");
        assert_eq!(m("10.1.2.3/0"), "0.0.0.0/0");
        assert_eq!(m("10.1.2.3/32"), "10.1.2.3/32");
        assert_eq!(m("fd00::1:2/112"), "fd00::1:0/112");
        assert_eq!(m("fd00::1/0"), "::/0");
    }

    #[test]
    fn config_endpoints_follow_wg_splitting() {
        let p = |s: &str| Endpoint::parse_config(s);
        assert_eq!(
            p("1.2.3.4:51820"),
            Some(Endpoint::Addr("1.2.3.4:51820".parse().unwrap()))
        );
        assert_eq!(
            p("[fd00::1]:5"),
            Some(Endpoint::Addr("[fd00::1]:5".parse().unwrap()))
        );
        assert_eq!(
            p("fd00::1:5"),
            Some(Endpoint::Addr("[fd00::1]:5".parse().unwrap()))
        );
        assert_eq!(
            p("vpn.example.com:51820"),
            Some(Endpoint::Host {
                host: "vpn.example.com".into(),
                port: 51820
            })
        );
        assert_eq!(
            p("[fe80::1%2]:7"),
            Some(Endpoint::Addr("[fe80::1%2]:7".parse().unwrap()))
        );
        assert_eq!(
            p("[fe80::1%eth0]:7"),
            Some(Endpoint::Host {
                host: "fe80::1%eth0".into(),
                port: 7
            })
        );
        // Found by fuzzing: a bracketed host with `%` and no `:` must print with its brackets.
        for text in [
            "[%]:72",
            "[fe80::1%eth0]:7",
            "[a%b]:1",
            "vpn.example.com:51820",
        ] {
            let e = p(text).unwrap();
            let printed = e.to_string();
            assert_eq!(p(&printed), Some(e.clone()), "{text} printed as {printed}");
        }
        for bad in [
            "",
            "1.2.3.4",
            "1.2.3.4:",
            "[fd00::1]",
            "[fd00::1]:",
            "[fd00::1:5",
            ":5",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
        for bad in ["1.2.3.4:65536", "1.2.3.4:http", "a b:5", "ex/ample:5"] {
            assert_eq!(p(bad), None, "{bad}");
        }
        assert_eq!(
            p("[vpn.example.com]:1").unwrap().to_string(),
            "vpn.example.com:1"
        );
        assert_eq!(p("[::1.2.3.4]:9").unwrap().to_string(), "[::1.2.3.4]:9");
    }

    #[test]
    fn host_endpoints_are_names_of_bounded_length() {
        let h = HostEndpoint::parse;
        let e = h("vpn.example.test:51820").unwrap();
        assert_eq!((e.host(), e.port()), ("vpn.example.test", 51820));
        assert_eq!(e.to_string(), "vpn.example.test:51820");
        let zoned = h("[fe80::1%eth0]:5").unwrap();
        assert_eq!(zoned.host(), "fe80::1%eth0");
        assert_eq!(h(&zoned.to_string()), Some(zoned));
        let longest = format!("{}.test", "a".repeat(MAX_HOST_NAME - 5));
        assert!(h(&format!("{longest}:1")).is_some());
        assert_eq!(h(&format!("a{longest}:1")), None, "254 bytes");
        for bad in [
            "1.2.3.4:5",
            "[fd00::1]:5",
            "[fe80::1%3]:5",
            "a b:5",
            "name",
            ":5",
        ] {
            assert_eq!(h(bad), None, "{bad}");
        }
        assert_eq!(HostEndpoint::new("x.test", 7), h("x.test:7"));
        assert_eq!(HostEndpoint::new("10.0.0.1", 7), None);
        let ep = Endpoint::parse_config("x.test:7").unwrap();
        assert_eq!(ep.host_endpoint(), h("x.test:7"));
        let ip = Endpoint::parse_config("10.0.0.1:7").unwrap();
        assert_eq!(ip.host_endpoint(), None);
    }

    #[test]
    fn the_preferred_address_is_the_first_ipv4_one() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let v6 = a("[fd00::1]:5");
        let (v4, v4b) = (a("10.0.0.1:5"), a("10.0.0.2:5"));
        assert_eq!(preferred_address([v6, v4, v4b]), Some(v4));
        assert_eq!(preferred_address([v6, a("[fd00::2]:5")]), Some(v6));
        assert_eq!(preferred_address([]), None);
    }

    #[test]
    fn uapi_endpoints_follow_netip() {
        let p = parse_uapi_endpoint;
        assert_eq!(p("1.2.3.4:51820"), Some("1.2.3.4:51820".parse().unwrap()));
        assert_eq!(p("[fd00::1]:0"), Some("[fd00::1]:0".parse().unwrap()));
        assert_eq!(
            p("[fe80::1%3]:5").map(|s| s.to_string()),
            Some("[fe80::1%3]:5".into())
        );
        for bad in [
            "[1.2.3.4]:5",
            "fd00::1:5",
            "1.2.3.4",
            "1.2.3.4:70000",
            "[fe80::1%eth0]:5",
            ":5",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    #[test]
    fn socket_addresses_print_like_getnameinfo() {
        let s = |a: &str| Ntop(a.parse::<SocketAddr>().unwrap()).to_string();
        assert_eq!(s("1.2.3.4:5"), "1.2.3.4:5");
        assert_eq!(s("[::1.2.3.4]:5"), "[::1.2.3.4]:5");
        assert_eq!(s("[fe80::1%4]:5"), "[fe80::1%4]:5");
    }
}
