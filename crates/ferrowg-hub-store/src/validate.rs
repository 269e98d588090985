//! The rules for what users and devices may store: names, groups, endpoints, labels, routes
//! and the policy text, each with a length limit. Inputs are checked before any transaction
//! starts, so a refused input never touches the database.

use ipnet::IpNet;

use crate::error::{Field, Reason, Result, StoreError};

/// Longest device name or group: one DNS label.
pub const MAX_NAME_LEN: usize = 63;
/// Longest hub endpoint (`HOST:PORT`): a DNS name, a colon and five digits (and brackets).
pub const MAX_ENDPOINT_LEN: usize = 261;
/// Longest admin-token label.
pub const MAX_LABEL_LEN: usize = 128;
/// Most routes one device may advertise.
pub const MAX_ROUTES: usize = 256;
/// Largest policy text, in bytes.
pub const MAX_POLICY_LEN: usize = 1 << 20;

/// A device name or group: 1 to 63 of `a-z`, `0-9` and `-`, not starting or ending with `-`
/// (a DNS label, so the name can become a host name).
pub fn name(field: Field, text: &str) -> Result<()> {
    if text.is_empty() {
        return Err(StoreError::invalid(field, Reason::Empty));
    }
    if text.len() > MAX_NAME_LEN {
        let reason = Reason::TooLong { max: MAX_NAME_LEN };
        return Err(StoreError::invalid(field, reason));
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    if !text.bytes().all(allowed) || text.starts_with('-') || text.ends_with('-') {
        return Err(StoreError::invalid(field, Reason::BadCharacter));
    }
    Ok(())
}

/// The hub's endpoint: `HOST:PORT` or `[IPV6]:PORT`, printable ASCII without spaces, with a
/// port from 1 to 65535.
pub fn endpoint(text: &str) -> Result<()> {
    let field = Field::Endpoint;
    if text.is_empty() {
        return Err(StoreError::invalid(field, Reason::Empty));
    }
    if text.len() > MAX_ENDPOINT_LEN {
        let reason = Reason::TooLong {
            max: MAX_ENDPOINT_LEN,
        };
        return Err(StoreError::invalid(field, reason));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::invalid(field, Reason::BadCharacter));
    }
    let bad = || StoreError::invalid(field, Reason::BadFormat);
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if host.is_empty() || !port_ok {
        return Err(bad());
    }
    Ok(())
}

/// An admin-token label: at most 128 bytes, no control characters (it is printed in listings).
pub fn label(text: &str) -> Result<()> {
    if text.len() > MAX_LABEL_LEN {
        let reason = Reason::TooLong { max: MAX_LABEL_LEN };
        return Err(StoreError::invalid(Field::Label, reason));
    }
    if text.chars().any(char::is_control) {
        return Err(StoreError::invalid(Field::Label, Reason::BadCharacter));
    }
    Ok(())
}

/// The policy text: not empty, at most 1 MiB. Its grammar is the policy engine's business.
pub fn policy_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(StoreError::invalid(Field::PolicyText, Reason::Empty));
    }
    if text.len() > MAX_POLICY_LEN {
        let reason = Reason::TooLong {
            max: MAX_POLICY_LEN,
        };
        return Err(StoreError::invalid(Field::PolicyText, reason));
    }
    Ok(())
}

/// One advertised route: a prefix without host bits (`192.168.1.0/24`, not `192.168.1.1/24`).
pub fn route(prefix: &IpNet) -> Result<()> {
    if prefix.trunc() != *prefix {
        return Err(StoreError::invalid(Field::Route, Reason::BadFormat));
    }
    Ok(())
}

/// The prefix `mapped` that a site's `real` prefix is reached through: a valid prefix of the
/// same family and length, outside the hub's pools.
pub fn mapped_route(real: &IpNet, mapped: &IpNet, pools: &crate::addresses::Pools) -> Result<()> {
    route(mapped).map_err(|_| StoreError::invalid(Field::MappedRoute, Reason::BadFormat))?;
    let same_shape = real.prefix_len() == mapped.prefix_len()
        && matches!(
            (real, mapped),
            (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
        );
    if !same_shape {
        return Err(StoreError::invalid(Field::MappedRoute, Reason::BadFormat));
    }
    let in_pool = match mapped {
        IpNet::V4(m) => {
            let p = pools.v4();
            p.contains(m) || m.contains(&p)
        }
        IpNet::V6(m) => pools.v6().is_some_and(|p| p.contains(m) || m.contains(&p)),
    };
    if in_pool {
        return Err(StoreError::invalid(Field::MappedRoute, Reason::OutOfRange));
    }
    Ok(())
}

/// A list of advertised routes: each valid, none twice, at most [`MAX_ROUTES`].
pub fn routes<'a>(prefixes: impl ExactSizeIterator<Item = &'a IpNet>) -> Result<()> {
    if prefixes.len() > MAX_ROUTES {
        let reason = Reason::TooLong { max: MAX_ROUTES };
        return Err(StoreError::invalid(Field::Routes, reason));
    }
    let mut seen = std::collections::HashSet::new();
    for prefix in prefixes {
        route(prefix)?;
        if !seen.insert(*prefix) {
            return Err(StoreError::invalid(Field::Routes, Reason::Duplicate));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<()>) -> Option<Reason> {
        match r {
            Ok(()) => None,
            Err(StoreError::Invalid { reason, .. }) => Some(reason),
            Err(e) => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn names() {
        for ok in ["a", "sensor-17", "0", &"x".repeat(63)] {
            assert_eq!(reason(name(Field::DeviceName, ok)), None, "{ok}");
        }
        assert_eq!(reason(name(Field::DeviceName, "")), Some(Reason::Empty));
        let long = "x".repeat(64);
        assert_eq!(
            reason(name(Field::DeviceName, &long)),
            Some(Reason::TooLong { max: 63 })
        );
        for bad in ["Sensor", "a_b", "a.b", "-a", "a-", "é", "a b", "a\0"] {
            assert_eq!(
                reason(name(Field::Group, bad)),
                Some(Reason::BadCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn endpoints() {
        for ok in [
            "hub.example.com:51820",
            "192.0.2.1:1",
            "[2001:db8::1]:65535",
        ] {
            assert_eq!(reason(endpoint(ok)), None, "{ok}");
        }
        for bad in [
            "hub",
            "hub:",
            ":51820",
            "hub:0",
            "hub:65536",
            "hub:+1",
            "hub:x",
        ] {
            assert_eq!(reason(endpoint(bad)), Some(Reason::BadFormat), "{bad}");
        }
        assert_eq!(reason(endpoint("a b:1")), Some(Reason::BadCharacter));
        assert_eq!(reason(endpoint("")), Some(Reason::Empty));
        let long = format!("{}:1", "h".repeat(300));
        assert_eq!(reason(endpoint(&long)), Some(Reason::TooLong { max: 261 }));
    }

    #[test]
    fn labels_and_policy() {
        assert_eq!(reason(label("ci deploy key")), None);
        assert_eq!(reason(label("")), None);
        assert_eq!(reason(label("a\nb")), Some(Reason::BadCharacter));
        let long = "l".repeat(129);
        assert_eq!(reason(label(&long)), Some(Reason::TooLong { max: 128 }));
        assert_eq!(reason(policy_text("{}")), None);
        assert_eq!(reason(policy_text(" \n")), Some(Reason::Empty));
        let big = "x".repeat(MAX_POLICY_LEN + 1);
        assert_eq!(
            reason(policy_text(&big)),
            Some(Reason::TooLong {
                max: MAX_POLICY_LEN
            })
        );
    }

    #[test]
    fn route_lists() {
        let p = |s: &str| s.parse::<IpNet>().unwrap();
        let good = [p("192.168.1.0/24"), p("fd00:1::/64")];
        assert_eq!(reason(routes(good.iter())), None);
        let host_bits = [p("192.168.1.1/24")];
        assert_eq!(reason(routes(host_bits.iter())), Some(Reason::BadFormat));
        let twice = [p("10.1.0.0/16"), p("10.1.0.0/16")];
        assert_eq!(reason(routes(twice.iter())), Some(Reason::Duplicate));
        let many: Vec<IpNet> = (0..=MAX_ROUTES)
            .map(|i| IpNet::new(std::net::Ipv4Addr::from(i as u32 * 256).into(), 24).unwrap())
            .collect();
        assert_eq!(
            reason(routes(many.iter())),
            Some(Reason::TooLong { max: MAX_ROUTES })
        );
    }
}
