//! Protocols and ports: the `ip` entries of a grant (`"*"`, `"443"`, `"8000-8100"`,
//! `"tcp:443"`, `"udp:53,123"`, `"icmp"`, `"47:*"`) and the set of (protocol, port) they allow.

/// The transport protocol of a flow, as the hub reads it from the IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// ICMP for IPv4 (1) or ICMPv6 (58): one protocol for the policy, as `icmp` in Tailscale.
    Icmp,
    /// Any other IP protocol number. [`Proto::from_number`] never makes `Other(6)`, `Other(17)`,
    /// `Other(1)` or `Other(58)`; [`crate::Compiled::allows`] treats those as the named ones.
    Other(u8),
}

impl Proto {
    /// The protocol of IP protocol number (IPv4) or next header (IPv6) `n`.
    pub fn from_number(n: u8) -> Proto {
        match n {
            6 => Proto::Tcp,
            17 => Proto::Udp,
            1 | 58 => Proto::Icmp,
            n => Proto::Other(n),
        }
    }

    /// The name tests and messages use: `tcp`, `udp`, `icmp` or the number.
    pub fn name(&self) -> String {
        match self {
            Proto::Tcp => "tcp".into(),
            Proto::Udp => "udp".into(),
            Proto::Icmp => "icmp".into(),
            Proto::Other(n) => n.to_string(),
        }
    }
}

/// Inclusive port ranges; sorted, disjoint and not touching once [`PortSet::normalize`]d.
type Ranges = Vec<(u16, u16)>;

/// A set of (protocol, port) pairs: what one grant's `ip` list, or the union of every grant
/// between two selectors, allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PortSet {
    tcp: Ranges,
    udp: Ranges,
    icmp: bool,
    /// Other protocols by number (all ports: they have none the policy can name).
    other: [u64; 4],
}

const ALL_PORTS: (u16, u16) = (0, u16::MAX);

impl PortSet {
    /// Every protocol and port (`"*"`).
    pub(crate) fn all() -> PortSet {
        PortSet {
            tcp: vec![ALL_PORTS],
            udp: vec![ALL_PORTS],
            icmp: true,
            other: [u64::MAX; 4],
        }
    }

    /// Adds everything `other` allows. The result may need [`PortSet::normalize`].
    pub(crate) fn add(&mut self, other: &PortSet) {
        self.tcp.extend_from_slice(&other.tcp);
        self.udp.extend_from_slice(&other.udp);
        self.icmp |= other.icmp;
        for (a, b) in self.other.iter_mut().zip(other.other) {
            *a |= b;
        }
    }

    /// Sorts and merges the ranges so that lookups can bisect them.
    pub(crate) fn normalize(&mut self) {
        merge(&mut self.tcp);
        merge(&mut self.udp);
    }

    /// How many ranges the set holds (a measure of the work of copying it).
    pub(crate) fn range_count(&self) -> usize {
        self.tcp.len() + self.udp.len() + 1
    }

    /// Whether the set allows `port` of `proto` (the port counts for TCP and UDP only).
    /// The set must be normalized.
    pub(crate) fn allows(&self, proto: Proto, port: u16) -> bool {
        match proto {
            Proto::Tcp | Proto::Other(6) => contains(&self.tcp, port),
            Proto::Udp | Proto::Other(17) => contains(&self.udp, port),
            Proto::Icmp | Proto::Other(1 | 58) => self.icmp,
            Proto::Other(n) => self.other[usize::from(n / 64)] & (1 << (n % 64)) != 0,
        }
    }

    fn add_proto(&mut self, n: u8) {
        match Proto::from_number(n) {
            Proto::Tcp => self.tcp.push(ALL_PORTS),
            Proto::Udp => self.udp.push(ALL_PORTS),
            Proto::Icmp => self.icmp = true,
            Proto::Other(n) => self.other[usize::from(n / 64)] |= 1 << (n % 64),
        }
    }
}

fn merge(r: &mut Ranges) {
    r.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(r.len());
    for &(lo, hi) in r.iter() {
        match out.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    *r = out;
}

fn contains(r: &Ranges, port: u16) -> bool {
    // The first range whose end is at or past `port` is the only one that can hold it.
    let i = r.partition_point(|&(_, hi)| hi < port);
    r.get(i).is_some_and(|&(lo, _)| lo <= port)
}

/// Parses one entry of a grant's `ip` list:
///
/// - `*`: every protocol and port;
/// - `PORTS`: TCP and UDP on those ports, where `PORTS` is a comma-separated list of ports and
///   ranges (`22`, `8000-8100`, `80,443`) or `*`;
/// - `tcp:PORTS`, `udp:PORTS`; `tcp`, `udp`: all their ports;
/// - `icmp`, `icmp:*`: ICMP and ICMPv6;
/// - `N:*` (`N` an IP protocol number, 0–255): that protocol (6 and 17 also take `PORTS`).
pub(crate) fn parse_ip(spec: &str) -> Result<PortSet, String> {
    let mut set = PortSet::default();
    if spec == "*" {
        return Ok(PortSet::all());
    }
    let (proto, ports) = match spec.split_once(':') {
        Some((p, ports)) => (Some(p), ports),
        None if spec.starts_with(|c: char| c.is_ascii_alphabetic()) => (Some(spec), "*"),
        None => (None, spec),
    };
    let number = match proto {
        None => None,
        Some("tcp") => Some(6),
        Some("udp") => Some(17),
        Some("icmp") => Some(1),
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|c| c.is_ascii_digit()) => Some(
            p.parse::<u8>()
                .map_err(|_| format!("protocol number {p:?} is over 255"))?,
        ),
        Some(p) => {
            return Err(format!(
                "unknown protocol {p:?} (tcp, udp, icmp, or a protocol number)"
            ))
        }
    };
    let ranges = parse_ports(ports)?;
    match number {
        None => {
            set.tcp.extend_from_slice(&ranges);
            set.udp = ranges;
        }
        Some(6) => set.tcp = ranges,
        Some(17) => set.udp = ranges,
        Some(n) if ports == "*" => set.add_proto(n),
        Some(_) => return Err(format!("{spec:?}: only tcp and udp have ports; use `*`")),
    }
    set.normalize();
    Ok(set)
}

/// `*` or a comma-separated list of `PORT` and `LOW-HIGH`.
fn parse_ports(s: &str) -> Result<Ranges, String> {
    if s == "*" {
        return Ok(vec![ALL_PORTS]);
    }
    s.split(',')
        .map(|item| {
            let (lo, hi) = match item.split_once('-') {
                Some((lo, hi)) => (port(lo)?, port(hi)?),
                None => (port(item)?, port(item)?),
            };
            if lo > hi {
                return Err(format!("port range {item:?} ends before it starts"));
            }
            Ok((lo, hi))
        })
        .collect()
}

/// A port in decimal (at most 5 digits, 0–65535).
pub(crate) fn port(s: &str) -> Result<u16, String> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{s:?} is not a port (0-65535, `*`, or a range like 8000-8100)"
        ));
    }
    s.parse().map_err(|_| format!("port {s} is over 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> PortSet {
        parse_ip(s).unwrap()
    }

    #[test]
    fn entries() {
        let all = ok("*");
        for p in [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Other(47)] {
            assert!(all.allows(p, 1));
        }
        let https = ok("tcp:443");
        assert!(https.allows(Proto::Tcp, 443));
        assert!(!https.allows(Proto::Tcp, 444));
        assert!(!https.allows(Proto::Udp, 443));
        assert!(!https.allows(Proto::Icmp, 0));
        let bare = ok("22");
        assert!(bare.allows(Proto::Tcp, 22) && bare.allows(Proto::Udp, 22));
        assert!(!bare.allows(Proto::Icmp, 0));
        let range = ok("tcp:8000-8100");
        assert!(range.allows(Proto::Tcp, 8000) && range.allows(Proto::Tcp, 8100));
        assert!(!range.allows(Proto::Tcp, 7999) && !range.allows(Proto::Tcp, 8101));
        let list = ok("udp:53,123,5000-5001");
        assert!(list.allows(Proto::Udp, 123) && list.allows(Proto::Udp, 5001));
        assert!(!list.allows(Proto::Udp, 54));
        assert!(ok("icmp").allows(Proto::Icmp, 0));
        assert!(ok("icmp:*").allows(Proto::Icmp, 0));
        assert!(!ok("icmp").allows(Proto::Tcp, 0));
        assert!(ok("udp").allows(Proto::Udp, 9));
        assert!(ok("tcp:*").allows(Proto::Tcp, 65535));
        let gre = ok("47:*");
        assert!(gre.allows(Proto::Other(47), 0) && !gre.allows(Proto::Other(48), 0));
        assert!(ok("6:22").allows(Proto::Tcp, 22));
        assert!(ok("58:*").allows(Proto::Icmp, 0));
        assert!(ok("255:*").allows(Proto::Other(255), 0));
        // A raw number that names a protocol with a variant of its own.
        assert!(ok("tcp:22").allows(Proto::Other(6), 22));
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "tcp:",
            "tcp:65536",
            "tcp:100-99",
            "tcp:1,,2",
            "TCP:22",
            "sctp:1",
            "icmp:8",
            "47:80",
            "256:*",
            "-1",
            "22-",
            "tcp:+1",
            "tcp:123456",
            ":22",
            "tcp:22:1",
        ] {
            assert!(parse_ip(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn union_merges() {
        let mut s = ok("tcp:1-10");
        s.add(&ok("tcp:11-20"));
        s.add(&ok("tcp:5-6"));
        s.add(&ok("tcp:100"));
        s.normalize();
        assert_eq!(s.tcp, vec![(1, 20), (100, 100)]);
        assert!(s.allows(Proto::Tcp, 15) && !s.allows(Proto::Tcp, 21));
    }
}
