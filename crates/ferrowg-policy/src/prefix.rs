//! IP prefixes (`10.1.0.0/24`, `fd00:1::/64`, or a bare address meaning /32 or /128) as policy
//! files write them for hosts, grant sources and destinations, and auto-approved routes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 prefix whose host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrefixError {
    /// The address part is not an IPv4 or IPv6 address.
    Address,
    /// The length is not a decimal number within 0..=32 (IPv4) or 0..=128 (IPv6).
    Length,
    /// Bits beyond the length are set; the prefix meant is given.
    HostBits(Prefix),
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::Address => f.write_str("not an IP address"),
            PrefixError::Length => f.write_str("prefix length out of range"),
            PrefixError::HostBits(p) => write!(f, "host bits set (did you mean {p}?)"),
        }
    }
}

impl std::error::Error for PrefixError {}

impl Prefix {
    /// The prefix `addr/len`, host bits cleared; `None` if `len` exceeds the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        if len > width(addr) {
            return None;
        }
        Some(Prefix {
            addr: from_bits(addr, bits(addr) & mask(addr, len)),
            len,
        })
    }

    /// The single address `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> Prefix {
        Prefix {
            addr,
            len: width(addr),
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` is inside this prefix (never across families).
    pub fn contains(&self, addr: IpAddr) -> bool {
        addr.is_ipv4() == self.addr.is_ipv4()
            && bits(addr) & mask(addr, self.len) == bits(self.addr)
    }

    /// Whether every address of `other` is inside this prefix.
    pub fn contains_prefix(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// The address that stands for the prefix in tests: the first host of an IPv4 prefix of
    /// /30 or wider (`10.1.0.0/24` → `10.1.0.1`), else the network address.
    pub fn sample(&self) -> IpAddr {
        let b = bits(self.addr);
        match self.addr {
            IpAddr::V4(_) if self.len <= 30 => from_bits(self.addr, b + 1),
            IpAddr::V6(_) if self.len <= 126 => from_bits(self.addr, b + 1),
            _ => self.addr,
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// `ADDR` or `ADDR/LEN`; `LEN` is decimal digits only; host bits must be zero.
    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| PrefixError::Address)?;
        let Some(l) = l else {
            return Ok(Prefix::host(addr));
        };
        if l.is_empty() || l.len() > 3 || !l.bytes().all(|c| c.is_ascii_digit()) {
            return Err(PrefixError::Length);
        }
        let len: u8 = l.parse().map_err(|_| PrefixError::Length)?;
        let p = Prefix::new(addr, len).ok_or(PrefixError::Length)?;
        if p.addr != addr {
            return Err(PrefixError::HostBits(p));
        }
        Ok(p)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// 32 or 128.
pub(crate) fn width(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// The address as an integer (IPv4 in the low 32 bits).
pub(crate) fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The mask of the first `len` bits of `addr`'s family, `len` at most its width.
pub(crate) fn mask(addr: IpAddr, len: u8) -> u128 {
    let w = u32::from(width(addr));
    let len = u32::from(len).min(w);
    let all: u128 = if w == 32 {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    };
    // checked_shr: a shift by 128 (len 0 of IPv6) would overflow.
    all & !(all.checked_shr(len).unwrap_or(0))
}

fn from_bits(family: IpAddr, v: u128) -> IpAddr {
    match family {
        // Callers pass values of the family's width, so the truncation keeps every bit.
        IpAddr::V4(_) => IpAddr::V4((v as u32).into()),
        IpAddr::V6(_) => IpAddr::V6(v.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(p("10.1.0.0/24").to_string(), "10.1.0.0/24");
        assert_eq!(p("10.1.0.5").to_string(), "10.1.0.5/32");
        assert_eq!(p("fd00:1::/64").to_string(), "fd00:1::/64");
        assert_eq!(p("::/0").to_string(), "::/0");
        assert_eq!(p("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(p("fd00::1").prefix_len(), 128);
    }

    #[test]
    fn refuses() {
        assert_eq!("10.1.0.0/33".parse::<Prefix>(), Err(PrefixError::Length));
        assert_eq!("fd00::/129".parse::<Prefix>(), Err(PrefixError::Length));
        assert_eq!("10.1.0.0/+8".parse::<Prefix>(), Err(PrefixError::Length));
        assert_eq!("10.1.0.0/".parse::<Prefix>(), Err(PrefixError::Length));
        assert_eq!("10.1.0.0/0008".parse::<Prefix>(), Err(PrefixError::Length));
        assert_eq!("10.1.0/24".parse::<Prefix>(), Err(PrefixError::Address));
        assert_eq!("host".parse::<Prefix>(), Err(PrefixError::Address));
        assert_eq!(
            "10.1.0.5/24".parse::<Prefix>(),
            Err(PrefixError::HostBits(p("10.1.0.0/24")))
        );
    }

    #[test]
    fn containment() {
        let site = p("10.1.0.0/24");
        assert!(site.contains("10.1.0.200".parse().unwrap()));
        assert!(!site.contains("10.1.1.1".parse().unwrap()));
        assert!(!site.contains("::ffff:10.1.0.1".parse().unwrap()));
        assert!(site.contains_prefix(&p("10.1.0.128/25")));
        assert!(!site.contains_prefix(&p("10.1.0.0/23")));
        assert!(p("::/0").contains("fd00::1".parse().unwrap()));
        assert!(!p("::/0").contains("10.0.0.1".parse().unwrap()));
        assert!(p("0.0.0.0/0").contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn samples() {
        assert_eq!(p("10.1.0.0/24").sample().to_string(), "10.1.0.1");
        assert_eq!(p("10.1.0.5").sample().to_string(), "10.1.0.5");
        assert_eq!(p("fd00:1::/64").sample().to_string(), "fd00:1::1");
    }
}
