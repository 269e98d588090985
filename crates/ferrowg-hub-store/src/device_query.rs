//! One page of devices, filtered, sorted and counted in SQL (the dashboard's device list, which
//! must stay fast with 10,000 devices): a search text, a group, a status; a sort column from a
//! fixed list and a direction; a limit and an offset. The same statements run on SQLite and
//! PostgreSQL: the SQL text is assembled only from the fixed fragments here, and every value
//! the caller gives is a bound parameter.
//!
//! The search matches the name, the group, the addresses, the endpoint and the public keys as
//! the API shows them (`10.64.0.2/32`, base64), case-insensitively, as a substring (`LIKE` with
//! `%` and `_` escaped). The addresses and keys are matched against text columns the store
//! writes beside the host numbers and key bytes ([`crate::search_text`]).

use std::collections::HashMap;

use crate::devices::{Device, DeviceRow, SELECT_DEVICE};
use crate::error::{Field, Reason, Result, StoreError};
use crate::routes::{self, Route};
use crate::schema::Conn;
use crate::settings;
use crate::time::UnixTime;

/// Most devices one page holds.
pub const MAX_PAGE: u32 = 1000;

/// Longest search text or group filter, in bytes.
pub const MAX_FILTER_LEN: usize = 256;

/// Pages of more devices than this read every device's routes at once rather than by id.
const ROUTES_BY_ID_MAX: usize = 500;

/// What a page is sorted by (ties broken by name, ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSort {
    /// The device's name.
    #[default]
    Name,
    /// Its group.
    Group,
    /// Its latest handshake (devices without one last).
    LastHandshake,
    /// Its endpoint, as text (devices without one last).
    Endpoint,
    /// Bytes received from it.
    RxBytes,
    /// Bytes sent to it.
    TxBytes,
    /// When it was enrolled or added.
    CreatedAt,
}

impl DeviceSort {
    const ALL: [(Self, &'static str, &'static str); 7] = [
        (Self::Name, "name", "d.name"),
        (Self::Group, "group", "d.device_group"),
        (Self::LastHandshake, "last_handshake", "d.last_handshake"),
        (Self::Endpoint, "endpoint", "d.endpoint"),
        (Self::RxBytes, "rx_bytes", "d.rx_bytes"),
        (Self::TxBytes, "tx_bytes", "d.tx_bytes"),
        (Self::CreatedAt, "created_at", "d.created_at"),
    ];

    /// The sort named `text` as the API names it (`name`, `group`, `last_handshake`, …).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n, _)| *n == text).map(|e| e.0)
    }

    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|e| e.0 == self)
            .map_or("name", |e| e.1)
    }

    /// The column: a fixed fragment of SQL, never text from a request.
    fn column(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|e| e.0 == self)
            .map_or("d.name", |e| e.2)
    }

    fn nullable(self) -> bool {
        matches!(self, Self::LastHandshake | Self::Endpoint)
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// Which devices a status filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Active, with a handshake at or after the query's `online_since`.
    Online,
    /// Active, without such a handshake.
    Offline,
    /// Pending (no handshake yet).
    Pending,
    /// Revoked.
    Revoked,
}

impl StatusFilter {
    /// The filter named `text` (`online`, `offline`, `pending`, `revoked`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            "pending" => Some(Self::Pending),
            "revoked" => Some(Self::Revoked),
            _ => None,
        }
    }
}

/// A query of the device list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceQuery {
    /// A substring of the name, group, an address, the endpoint or a public key (any case).
    pub search: Option<String>,
    /// Exactly this group.
    pub group: Option<String>,
    /// Only devices of this status.
    pub status: Option<StatusFilter>,
    /// The sort column.
    pub sort: DeviceSort,
    /// The sort direction.
    pub order: SortOrder,
    /// At most this many devices (1 to [`MAX_PAGE`]); `None`: all of them.
    pub limit: Option<u32>,
    /// Skip this many matching devices first.
    pub offset: u64,
}

impl DeviceQuery {
    /// Checks the limits and the lengths of the texts.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.limit.is_some_and(|l| l == 0 || l > MAX_PAGE) || self.offset > i64::MAX as u64 {
            return Err(StoreError::invalid(Field::Limit, Reason::OutOfRange));
        }
        let texts = [(Field::Search, &self.search), (Field::Group, &self.group)];
        for (field, text) in texts {
            if text.as_ref().is_some_and(|t| t.len() > MAX_FILTER_LEN) {
                let reason = Reason::TooLong {
                    max: MAX_FILTER_LEN,
                };
                return Err(StoreError::invalid(field, reason));
            }
        }
        Ok(())
    }
}

/// One page of devices and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePage {
    /// The devices of the page, in the query's order.
    pub devices: Vec<Device>,
    /// How many devices match the filters (before the limit and the offset).
    pub total: u64,
}

/// A value bound to a parameter of the assembled SQL.
enum Bind {
    Text(String),
    Int(i64),
}

/// The `WHERE` condition of `query` (device alias `d`) and the values of its parameters
/// `$1…$N`, in order. A device is online when its handshake is at or after `online_since`.
fn condition(query: &DeviceQuery, online_since: UnixTime) -> (String, Vec<Bind>) {
    let mut terms: Vec<String> = vec!["1 = 1".into()];
    let mut binds = Vec::new();
    if let Some(text) = &query.search {
        binds.push(Bind::Text(like_pattern(text)));
        let p = format!("${}", binds.len());
        let like = |col: &str| format!("LOWER({col}) LIKE {p} ESCAPE '\\'");
        let columns = [
            "d.name",
            "d.device_group",
            "d.ipv4_text",
            "d.ipv6_text",
            "d.endpoint",
        ]
        .map(like)
        .join(" OR ");
        terms.push(format!(
            "({columns} OR EXISTS (SELECT 1 FROM device_keys k WHERE k.device_id = d.id AND {}))",
            like("k.key_text")
        ));
    }
    if let Some(group) = &query.group {
        binds.push(Bind::Text(group.clone()));
        terms.push(format!("d.device_group = ${}", binds.len()));
    }
    match query.status {
        None => {}
        Some(StatusFilter::Pending) => terms.push("d.state = 'pending'".into()),
        Some(StatusFilter::Revoked) => terms.push("d.state = 'revoked'".into()),
        Some(StatusFilter::Online) => {
            binds.push(Bind::Int(online_since.0));
            let p = binds.len();
            terms.push(format!("d.state = 'active' AND d.last_handshake >= ${p}"));
        }
        Some(StatusFilter::Offline) => {
            binds.push(Bind::Int(online_since.0));
            let p = binds.len();
            terms.push(format!(
                "d.state = 'active' AND (d.last_handshake IS NULL OR d.last_handshake < ${p})"
            ));
        }
    }
    (terms.join(" AND "), binds)
}

/// `%text%` in lower case, with `\`, `%` and `_` escaped (by `\`).
fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The `ORDER BY` list: the sort column (empty values last), then the name.
fn order_by(sort: DeviceSort, order: SortOrder) -> String {
    let dir = match order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    let col = sort.column();
    match sort {
        DeviceSort::Name => format!("d.name {dir}"),
        s if s.nullable() => format!("({col} IS NULL), {col} {dir}, d.name ASC"),
        _ => format!("{col} {dir}, d.name ASC"),
    }
}

macro_rules! bind_all {
    ($q:expr, $binds:expr) => {{
        let mut q = $q;
        for b in $binds {
            q = match b {
                Bind::Text(t) => q.bind(t.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// The page of devices `query` asks for (see [`DeviceQuery`]); a device is online when its
/// latest handshake is at or after `online_since`.
pub(crate) async fn page(
    conn: &mut Conn,
    query: &DeviceQuery,
    online_since: UnixTime,
) -> Result<DevicePage> {
    let (cond, binds) = condition(query, online_since);
    let count_sql = format!("SELECT COUNT(*) FROM devices d WHERE {cond}");
    let (total,): (i64,) = bind_all!(sqlx::query_as(&count_sql), &binds)
        .fetch_one(&mut *conn)
        .await?;
    let n = binds.len();
    let page_sql = format!(
        "{SELECT_DEVICE} WHERE {cond} ORDER BY {} LIMIT ${} OFFSET ${}",
        order_by(query.sort, query.order),
        n + 1,
        n + 2
    );
    let limit = query.limit.map_or(i64::MAX, i64::from);
    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
    let rows: Vec<DeviceRow> = bind_all!(sqlx::query_as(&page_sql), &binds)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
    let pools = settings::pools(conn).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut routes = routes_of(conn, &ids).await?;
    let devices = rows
        .into_iter()
        .map(|row| {
            let own = routes.remove(&row.id).unwrap_or_default();
            row.into_device(&pools, own)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DevicePage {
        devices,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// The routes of the devices `ids`, by device id.
async fn routes_of(conn: &mut Conn, ids: &[i64]) -> Result<HashMap<i64, Vec<Route>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    if ids.len() > ROUTES_BY_ID_MAX {
        return routes::all(conn).await;
    }
    routes::of_devices(conn, ids).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Ab"), "%ab%");
        assert_eq!(like_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
    }

    #[test]
    fn sorts_round_trip_and_are_fixed_columns() {
        for (sort, name, column) in DeviceSort::ALL {
            assert_eq!(DeviceSort::parse(name), Some(sort));
            assert_eq!(sort.as_str(), name);
            assert!(
                column.starts_with("d.")
                    && column[2..]
                        .bytes()
                        .all(|b| b == b'_' || b.is_ascii_lowercase())
            );
        }
        assert_eq!(DeviceSort::parse("name; DROP TABLE devices"), None);
        assert_eq!(
            order_by(DeviceSort::LastHandshake, SortOrder::Desc),
            "(d.last_handshake IS NULL), d.last_handshake DESC, d.name ASC"
        );
    }

    #[test]
    fn parameters_are_numbered_in_order() {
        let q = DeviceQuery {
            search: Some("zq".into()),
            group: Some("g".into()),
            status: Some(StatusFilter::Offline),
            ..Default::default()
        };
        let (cond, binds) = condition(&q, UnixTime(5));
        assert_eq!(binds.len(), 3);
        assert!(cond.contains("d.device_group = $2"), "{cond}");
        assert!(cond.contains("d.last_handshake < $3"), "{cond}");
        assert!(
            !cond.contains("zq"),
            "the search text is bound, not spliced: {cond}"
        );
    }
}
