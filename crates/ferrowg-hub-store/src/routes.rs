//! Subnets that devices advertise (sites behind them) and their approval. A device states the
//! whole set it advertises; prefixes it keeps advertising keep their approval, new ones start
//! unapproved unless the caller (the policy's `autoApprovers`) approves them.

use std::collections::HashMap;

use ipnet::IpNet;

use crate::error::{Conflict, Entity, Result, StoreError};
use crate::events::{self, EventKind};
use crate::schema::{parse_stored, Conn};
use crate::time::UnixTime;
use crate::validate;

/// Adds one route to device `id`.
pub(crate) async fn insert(conn: &mut Conn, id: i64, route: &Route) -> Result<()> {
    sqlx::query(
        "INSERT INTO device_routes (device_id, prefix, approved, mapped) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(route.prefix.to_string())
    .bind(route.approved)
    .bind(route.mapped.map(|m| m.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A subnet a device advertises (a site behind it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// The prefix, without host bits.
    pub prefix: IpNet,
    /// Whether the admin (or the policy's `autoApprovers`) approved it; the hub routes only
    /// approved prefixes to the device.
    pub approved: bool,
    /// The prefix the site is reached through instead (same family and length; 1:1 NETMAP in
    /// the hub), when its real prefix is another site's too.
    pub mapped: Option<IpNet>,
}

impl Route {
    /// An unmapped route.
    pub fn new(prefix: IpNet, approved: bool) -> Route {
        Route {
            prefix,
            approved,
            mapped: None,
        }
    }

    /// The prefix the hub routes to the device: the mapped one if any, else the real one.
    pub fn reached_as(&self) -> IpNet {
        self.mapped.unwrap_or(self.prefix)
    }
}

/// A stored route row: prefix, approval, mapped prefix.
/// A route's columns: prefix, approved (as 0 or 1: sqlx's `Any` driver reads no SQLite
/// booleans, so they are read through [`APPROVED`]), mapped prefix.
type RouteRow = (String, i64, Option<String>);

/// `approved` as an integer on every backend.
const APPROVED: &str = "CASE WHEN approved THEN 1 ELSE 0 END AS approved";

fn to_route((prefix, approved, mapped): &RouteRow) -> Result<Route> {
    Ok(Route {
        prefix: parse_stored(prefix, "route prefix")?,
        approved: *approved != 0,
        mapped: mapped
            .as_deref()
            .map(|m| parse_stored(m, "mapped prefix"))
            .transpose()?,
    })
}

/// The routes of device `id`, ordered by prefix text.
pub(crate) async fn of_device(conn: &mut Conn, id: i64) -> Result<Vec<Route>> {
    let sql = format!(
        "SELECT prefix, {APPROVED}, mapped FROM device_routes WHERE device_id = $1 \
         ORDER BY prefix"
    );
    let rows: Vec<RouteRow> = sqlx::query_as(&sql).bind(id).fetch_all(&mut *conn).await?;
    let mut routes = rows.iter().map(to_route).collect::<Result<Vec<_>>>()?;
    sort(&mut routes);
    Ok(routes)
}

/// Sorts routes by prefix text, in Rust so that every backend's collation gives one order.
pub(crate) fn sort(routes: &mut [Route]) {
    routes.sort_by_cached_key(|r| r.prefix.to_string());
}

/// Every device's routes, by device id.
pub(crate) async fn all(conn: &mut Conn) -> Result<HashMap<i64, Vec<Route>>> {
    let sql = format!(
        "SELECT device_id, prefix, {APPROVED}, mapped FROM device_routes \
         ORDER BY device_id, prefix"
    );
    let rows: Vec<(i64, String, i64, Option<String>)> =
        sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    by_device(rows)
}

/// Rows of `device_routes` (device id, prefix, approved, mapped) as each device's sorted routes.
fn by_device(rows: Vec<(i64, String, i64, Option<String>)>) -> Result<HashMap<i64, Vec<Route>>> {
    let mut map: HashMap<i64, Vec<Route>> = HashMap::new();
    for (id, prefix, approved, mapped) in rows {
        map.entry(id)
            .or_default()
            .push(to_route(&(prefix, approved, mapped))?);
    }
    map.values_mut().for_each(|routes| sort(routes));
    Ok(map)
}

/// The routes of the devices `ids` (a few hundred at most: one parameter each), by device id.
pub(crate) async fn of_devices(conn: &mut Conn, ids: &[i64]) -> Result<HashMap<i64, Vec<Route>>> {
    let params: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT device_id, prefix, {APPROVED}, mapped FROM device_routes \
         WHERE device_id IN ({})",
        params.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let rows: Vec<(i64, String, i64, Option<String>)> = query.fetch_all(&mut *conn).await?;
    by_device(rows)
}

/// The approved routes of every device that is not revoked, with the device's name, ordered by
/// name and prefix text: what other devices route to the hub, read without reading every
/// device.
pub(crate) async fn approved(conn: &mut Conn) -> Result<Vec<(String, Route)>> {
    let sql = format!(
        "SELECT d.name, r.prefix, {APPROVED}, r.mapped FROM device_routes r
         JOIN devices d ON d.id = r.device_id
         WHERE r.approved AND d.state <> 'revoked'"
    );
    let rows: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    let mut out = rows
        .into_iter()
        .map(|(name, prefix, approved, mapped)| Ok((name, to_route(&(prefix, approved, mapped))?)))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_cached_key(|(name, r)| (name.clone(), r.prefix.to_string()));
    Ok(out)
}

/// Replaces the set of prefixes device `id` (called `name`) advertises. Prefixes it advertised
/// before keep their approval; new ones are approved if listed in `auto_approved`.
pub(crate) async fn replace_advertised(
    conn: &mut Conn,
    (id, name): (i64, &str),
    prefixes: &[IpNet],
    auto_approved: &[IpNet],
    now: UnixTime,
) -> Result<()> {
    validate::routes(prefixes.iter())?;
    let old = of_device(conn, id).await?;
    let before = |p: &IpNet| old.iter().find(|r| r.prefix == *p);
    let mut new: Vec<Route> = prefixes
        .iter()
        .map(|p| match before(p) {
            Some(r) => *r,
            None => Route::new(*p, auto_approved.contains(p)),
        })
        .collect();
    sort(&mut new);
    if new == old {
        return Ok(());
    }
    events::record(conn, EventKind::RoutesChanged, name, now).await?;
    sqlx::query("DELETE FROM device_routes WHERE device_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for route in &new {
        insert(conn, id, route).await?;
    }
    Ok(())
}

/// Approves (or withdraws approval of) a prefix device `id` (called `name`) advertises;
/// [`Entity::Route`] not found if it does not advertise it.
pub(crate) async fn set_approval(
    conn: &mut Conn,
    (id, name): (i64, &str),
    prefix: &IpNet,
    approved: bool,
    now: UnixTime,
) -> Result<()> {
    validate::route(prefix)?;
    let current = of_device(conn, id).await?;
    let route = current
        .iter()
        .find(|r| r.prefix == *prefix)
        .ok_or(StoreError::NotFound(Entity::Route))?;
    if route.approved == approved {
        return Ok(());
    }
    events::record(conn, EventKind::RoutesChanged, name, now).await?;
    sqlx::query("UPDATE device_routes SET approved = $3 WHERE device_id = $1 AND prefix = $2")
        .bind(id)
        .bind(prefix.to_string())
        .bind(approved)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets (or, with `None`, clears) the prefix through which the hub reaches the site `prefix`
/// that device `id` (called `name`) advertises. The mapped prefix has the family and length of
/// the real one, lies outside the hub's address pools, and belongs to no other route
/// ([`Conflict::MappedPrefix`]).
pub(crate) async fn set_map(
    conn: &mut Conn,
    (id, name): (i64, &str),
    prefix: &IpNet,
    mapped: Option<&IpNet>,
    pools: &crate::addresses::Pools,
    now: UnixTime,
) -> Result<()> {
    validate::route(prefix)?;
    if let Some(m) = mapped {
        validate::mapped_route(prefix, m, pools)?;
    }
    let current = of_device(conn, id).await?;
    let route = current
        .iter()
        .find(|r| r.prefix == *prefix)
        .ok_or(StoreError::NotFound(Entity::Route))?;
    if route.mapped.as_ref() == mapped {
        return Ok(());
    }
    events::record(conn, EventKind::RoutesChanged, name, now).await?;
    let done =
        sqlx::query("UPDATE device_routes SET mapped = $3 WHERE device_id = $1 AND prefix = $2")
            .bind(id)
            .bind(prefix.to_string())
            .bind(mapped.map(|m| m.to_string()))
            .execute(&mut *conn)
            .await;
    match done {
        Ok(_) => Ok(()),
        Err(e) => {
            let e = StoreError::from(e);
            if e.is_unique_violation() {
                return Err(StoreError::Conflict(Conflict::MappedPrefix));
            }
            Err(e)
        }
    }
}
