//! The address pools and the allocator.
//!
//! Addresses are stored as host numbers inside the pool: host 0 is the network address, host 1
//! the hub itself (`10.64.0.1` in `10.64.0.0/16`), and the last IPv4 host the broadcast address;
//! devices get hosts from 2 up. A new device gets the lowest free host number. The allocator runs
//! inside the caller's write transaction, which holds the database's write lock (SQLite: `BEGIN
//! IMMEDIATE`; PostgreSQL: the event counter row), and the columns are UNIQUE, so two devices
//! can never be given one address; a uniqueness violation is retried by the caller.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::error::{Family, Field, Reason, Result, StoreError};
use crate::schema::Conn;

/// The first host number a device can get (0 is the network, 1 the hub).
pub(crate) const FIRST_DEVICE_HOST: i64 = 2;

/// The pools devices' addresses come from: IPv4 always, IPv6 optionally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pools {
    v4: Ipv4Net,
    v6: Option<Ipv6Net>,
}

impl Pools {
    /// Pools from their prefixes. The prefixes must have no host bits set; the IPv4 one must
    /// hold at least one device (`/30` or shorter), the IPv6 one too (`/126` or shorter).
    pub fn new(v4: Ipv4Net, v6: Option<Ipv6Net>) -> Result<Self> {
        if v4.trunc() != v4 {
            return Err(StoreError::invalid(Field::Pool4, Reason::BadFormat));
        }
        if v4.prefix_len() > 30 {
            return Err(StoreError::invalid(Field::Pool4, Reason::OutOfRange));
        }
        if let Some(v6) = v6 {
            if v6.trunc() != v6 {
                return Err(StoreError::invalid(Field::Pool6, Reason::BadFormat));
            }
            if v6.prefix_len() > 126 {
                return Err(StoreError::invalid(Field::Pool6, Reason::OutOfRange));
            }
        }
        Ok(Self { v4, v6 })
    }

    /// The IPv4 pool.
    pub fn v4(&self) -> Ipv4Net {
        self.v4
    }

    /// The IPv6 pool, if any.
    pub fn v6(&self) -> Option<Ipv6Net> {
        self.v6
    }

    /// The hub's own IPv4 address: the first host of the pool.
    pub fn hub_v4(&self) -> Ipv4Addr {
        self.v4_at(1)
    }

    /// The hub's own IPv6 address: the first host of the pool.
    pub fn hub_v6(&self) -> Option<Ipv6Addr> {
        self.v6
            .map(|net| Ipv6Addr::from(u128::from(net.network()) + 1))
    }

    /// The highest IPv4 host number a device may get (the one below broadcast).
    pub(crate) fn max_host_v4(&self) -> i64 {
        (1i64 << (32 - self.v4.prefix_len())) - 2
    }

    /// The highest IPv6 host number a device may get (capped at `i64::MAX`).
    pub(crate) fn max_host_v6(&self) -> Option<i64> {
        self.v6.map(|net| {
            let bits = 128 - u32::from(net.prefix_len());
            if bits >= 63 {
                i64::MAX
            } else {
                (1i64 << bits) - 1
            }
        })
    }

    /// The IPv4 address of host number `host` (callers pass numbers from the database, checked
    /// by [`Pools::v4_of`]).
    fn v4_at(&self, host: i64) -> Ipv4Addr {
        let base = u32::from(self.v4.network());
        Ipv4Addr::from(base.wrapping_add(host as u32))
    }

    /// The IPv4 address of a stored host number, or `Corrupt` if it lies outside the pool.
    pub(crate) fn v4_of(&self, host: i64) -> Result<Ipv4Addr> {
        if (FIRST_DEVICE_HOST..=self.max_host_v4()).contains(&host) {
            Ok(self.v4_at(host))
        } else {
            Err(StoreError::Corrupt("IPv4 host number outside the pool"))
        }
    }

    /// The IPv6 address of a stored host number (`None` stays `None`), or `Corrupt` if it lies
    /// outside the pool or there is no IPv6 pool.
    pub(crate) fn v6_of(&self, host: Option<i64>) -> Result<Option<Ipv6Addr>> {
        let Some(host) = host else { return Ok(None) };
        match (self.v6, self.max_host_v6()) {
            (Some(net), Some(max)) if (FIRST_DEVICE_HOST..=max).contains(&host) => {
                let base = u128::from(net.network());
                Ok(Some(Ipv6Addr::from(base + host as u128)))
            }
            _ => Err(StoreError::Corrupt("IPv6 host number outside the pool")),
        }
    }
}

/// The lowest free IPv4 host number: the lowest of 2 and every taken number plus one that is
/// not itself taken (the start of the first gap).
const LOWEST_FREE_V4: &str = "SELECT MIN(c.h) FROM (
        SELECT $1 AS h
        UNION ALL
        SELECT ipv4_host + 1 AS h FROM devices
    ) c
    WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.ipv4_host = c.h)";

/// As [`LOWEST_FREE_V4`], for IPv6.
const LOWEST_FREE_V6: &str = "SELECT MIN(c.h) FROM (
        SELECT $1 AS h
        UNION ALL
        SELECT ipv6_host + 1 AS h FROM devices WHERE ipv6_host IS NOT NULL
    ) c
    WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.ipv6_host = c.h)";

/// Host numbers for a new device: IPv4, and IPv6 when there is an IPv6 pool. Call inside the
/// write transaction that inserts the device.
pub(crate) async fn allocate(conn: &mut Conn, pools: &Pools) -> Result<(i64, Option<i64>)> {
    let v4 = lowest_free(conn, LOWEST_FREE_V4, pools.max_host_v4(), Family::V4).await?;
    let v6 = match pools.max_host_v6() {
        Some(max) => Some(lowest_free(conn, LOWEST_FREE_V6, max, Family::V6).await?),
        None => None,
    };
    Ok((v4, v6))
}

async fn lowest_free(conn: &mut Conn, sql: &str, max: i64, family: Family) -> Result<i64> {
    let (free,): (Option<i64>,) = sqlx::query_as(sql)
        .bind(FIRST_DEVICE_HOST)
        .fetch_one(&mut *conn)
        .await?;
    // With every host up to `max` taken the lowest candidate is `max + 1` (or, past
    // `i64::MAX`, none at all).
    match free {
        Some(host) if host <= max => Ok(host),
        _ => Err(StoreError::PoolExhausted(family)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(v4: &str, v6: Option<&str>) -> Result<Pools> {
        Pools::new(v4.parse().unwrap(), v6.map(|s| s.parse().unwrap()))
    }

    #[test]
    fn limits_and_hub_addresses() {
        let p = pools("10.64.0.0/16", Some("fd64::/64")).unwrap();
        assert_eq!(p.hub_v4(), Ipv4Addr::new(10, 64, 0, 1));
        assert_eq!(p.hub_v6(), Some("fd64::1".parse().unwrap()));
        assert_eq!(p.max_host_v4(), 65534);
        assert_eq!(p.max_host_v6(), Some(i64::MAX));
        assert_eq!(p.v4_of(2).unwrap(), Ipv4Addr::new(10, 64, 0, 2));
        assert_eq!(p.v4_of(65534).unwrap(), Ipv4Addr::new(10, 64, 255, 254));
        assert!(p.v4_of(65535).is_err(), "broadcast");
        assert!(p.v4_of(1).is_err(), "hub");
        assert_eq!(p.v6_of(Some(2)).unwrap(), Some("fd64::2".parse().unwrap()));
        assert_eq!(p.v6_of(None).unwrap(), None);
        let small = pools("192.0.2.0/30", Some("fd00::/126")).unwrap();
        assert_eq!(small.max_host_v4(), 2);
        assert_eq!(small.max_host_v6(), Some(3));
        assert!(small.v6_of(Some(4)).is_err());
        let none = pools("10.0.0.0/8", None).unwrap();
        assert_eq!(none.hub_v6(), None);
        assert!(none.v6_of(Some(2)).is_err());
    }

    #[test]
    fn bad_pools_are_refused() {
        let invalid = |r: Result<Pools>| match r {
            Err(StoreError::Invalid { field, reason }) => (field, reason),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            invalid(pools("10.64.0.1/16", None)),
            (Field::Pool4, Reason::BadFormat)
        );
        assert_eq!(
            invalid(pools("10.64.0.0/31", None)),
            (Field::Pool4, Reason::OutOfRange)
        );
        assert_eq!(
            invalid(pools("10.64.0.0/16", Some("fd64::1/64"))),
            (Field::Pool6, Reason::BadFormat)
        );
        assert_eq!(
            invalid(pools("10.64.0.0/16", Some("fd64::/127"))),
            (Field::Pool6, Reason::OutOfRange)
        );
    }
}
