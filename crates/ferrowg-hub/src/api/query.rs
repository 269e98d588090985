//! The query string of `GET /api/v1/devices` ([`DeviceListParams`]): parsed strictly, so that a
//! bad parameter is a 422 problem naming it rather than a default silently applied; turned into
//! the store's [`DeviceQuery`], which filters, sorts and pages in SQL.

use ferrowg_hub_store::device_query::{MAX_FILTER_LEN, MAX_PAGE};
use ferrowg_hub_store::{DeviceQuery, DeviceSort, SortOrder};

use super::problem::Problem;
use super::types::{DeviceListParams, DeviceSortKey, SortDirection, StatusFilter};

/// The page size when some parameter is given but not `limit`.
pub const DEFAULT_LIMIT: u32 = 100;

/// Longest query string read, in bytes.
const MAX_QUERY: usize = 4096;

/// The parameters of a query string; `None` when there is none at all (every device, by
/// name). An empty value counts as absent.
pub fn parse(raw: Option<&str>) -> Result<Option<DeviceListParams>, Problem> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if raw.len() > MAX_QUERY {
        return Err(Problem::invalid(format!(
            "the query string is longer than {MAX_QUERY} bytes"
        )));
    }
    let mut p = DeviceListParams::default();
    let mut seen: Vec<String> = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        if seen.iter().any(|k| *k == key) {
            return Err(Problem::invalid(format!("{}: given twice", shown(&key))));
        }
        seen.push(key.to_string());
        if value.is_empty() {
            continue;
        }
        match &*key {
            "q" => p.q = Some(text("q", &value)?),
            "group" => p.group = Some(text("group", &value)?),
            "status" => p.status = Some(one_of("status", &value, STATUSES)?),
            "sort" => p.sort = Some(one_of("sort", &value, SORTS)?),
            "order" => p.order = Some(one_of("order", &value, ORDERS)?),
            "limit" => p.limit = Some(limit(&value)?),
            "offset" => p.offset = Some(offset(&value)?),
            other => {
                return Err(Problem::invalid(format!(
                    "{}: no such parameter (q, group, status, sort, order, limit, offset)",
                    shown(other)
                )))
            }
        }
    }
    Ok(Some(p))
}

/// The store's query for `params` (`None`: every device by name).
pub fn to_store(params: Option<&DeviceListParams>) -> DeviceQuery {
    let Some(p) = params else {
        return DeviceQuery::default();
    };
    DeviceQuery {
        search: p.q.clone(),
        group: p.group.clone(),
        status: p.status.map(|s| match s {
            StatusFilter::Online => ferrowg_hub_store::StatusFilter::Online,
            StatusFilter::Offline => ferrowg_hub_store::StatusFilter::Offline,
            StatusFilter::Pending => ferrowg_hub_store::StatusFilter::Pending,
            StatusFilter::Revoked => ferrowg_hub_store::StatusFilter::Revoked,
        }),
        sort: p
            .sort
            .and_then(|s| DeviceSort::parse(name_of(SORTS, s)))
            .unwrap_or_default(),
        order: match p.order {
            Some(SortDirection::Desc) => SortOrder::Desc,
            _ => SortOrder::Asc,
        },
        limit: Some(p.limit.unwrap_or(DEFAULT_LIMIT)),
        offset: p.offset.unwrap_or(0),
    }
}

/// The query string pairs for `params` (the client's side of [`parse`]).
pub fn to_pairs(p: &DeviceListParams) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(q) = &p.q {
        out.push(("q", q.clone()));
    }
    if let Some(g) = &p.group {
        out.push(("group", g.clone()));
    }
    if let Some(s) = p.status {
        out.push(("status", name_of(STATUSES, s).to_owned()));
    }
    if let Some(s) = p.sort {
        out.push(("sort", name_of(SORTS, s).to_owned()));
    }
    if let Some(o) = p.order {
        out.push(("order", name_of(ORDERS, o).to_owned()));
    }
    if let Some(l) = p.limit {
        out.push(("limit", l.to_string()));
    }
    if let Some(o) = p.offset {
        out.push(("offset", o.to_string()));
    }
    out
}

const STATUSES: &[(StatusFilter, &str)] = &[
    (StatusFilter::Online, "online"),
    (StatusFilter::Offline, "offline"),
    (StatusFilter::Pending, "pending"),
    (StatusFilter::Revoked, "revoked"),
];

const SORTS: &[(DeviceSortKey, &str)] = &[
    (DeviceSortKey::Name, "name"),
    (DeviceSortKey::Group, "group"),
    (DeviceSortKey::LastHandshake, "last_handshake"),
    (DeviceSortKey::Endpoint, "endpoint"),
    (DeviceSortKey::RxBytes, "rx_bytes"),
    (DeviceSortKey::TxBytes, "tx_bytes"),
    (DeviceSortKey::CreatedAt, "created_at"),
];

const ORDERS: &[(SortDirection, &str)] =
    &[(SortDirection::Asc, "asc"), (SortDirection::Desc, "desc")];

/// The name of `value` in `list`.
fn name_of<T: PartialEq + Copy>(list: &[(T, &'static str)], value: T) -> &'static str {
    list.iter()
        .find(|(k, _)| *k == value)
        .map_or("", |(_, n)| *n)
}

/// At most 64 characters of a request's text, quoted, for a problem's detail.
fn shown(text: &str) -> String {
    format!("{:?}", text.chars().take(64).collect::<String>())
}

fn text(name: &str, value: &str) -> Result<String, Problem> {
    if value.len() > MAX_FILTER_LEN {
        return Err(Problem::invalid(format!(
            "{name}: longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    Ok(value.to_owned())
}

fn one_of<T: Copy>(name: &str, value: &str, list: &[(T, &str)]) -> Result<T, Problem> {
    list.iter()
        .find(|(_, n)| *n == value)
        .map(|(v, _)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = list.iter().map(|(_, n)| *n).collect();
            Problem::invalid(format!(
                "{name}: {} is not one of {}",
                shown(value),
                names.join(", ")
            ))
        })
}

fn limit(value: &str) -> Result<u32, Problem> {
    value
        .parse::<u32>()
        .ok()
        .filter(|l| (1..=MAX_PAGE).contains(l))
        .ok_or_else(|| {
            Problem::invalid(format!(
                "limit: {} is not a number from 1 to {MAX_PAGE}",
                shown(value)
            ))
        })
}

fn offset(value: &str) -> Result<u64, Problem> {
    value
        .parse::<u64>()
        .ok()
        .filter(|o| i64::try_from(*o).is_ok())
        .ok_or_else(|| {
            Problem::invalid(format!(
                "offset: {} is not a number from 0 to {}",
                shown(value),
                i64::MAX
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_query_is_every_device_and_pairs_round_trip() {
        assert_eq!(parse(None).unwrap(), None);
        assert_eq!(parse(Some("")).unwrap(), None);
        assert_eq!(to_store(None).limit, None);
        let p = DeviceListParams {
            q: Some("a b&c=%".into()),
            group: Some("ops".into()),
            status: Some(StatusFilter::Offline),
            sort: Some(DeviceSortKey::LastHandshake),
            order: Some(SortDirection::Desc),
            limit: Some(50),
            offset: Some(100),
        };
        let raw: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(to_pairs(&p))
            .finish();
        assert_eq!(parse(Some(&raw)).unwrap(), Some(p.clone()));
        let q = to_store(Some(&p));
        assert_eq!(
            (q.sort, q.order, q.limit, q.offset),
            (DeviceSort::LastHandshake, SortOrder::Desc, Some(50), 100)
        );
        let defaults = to_store(parse(Some("q=")).unwrap().as_ref());
        assert_eq!(
            (defaults.search, defaults.limit),
            (None, Some(DEFAULT_LIMIT))
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (raw, named) in [
            ("limit=0", "limit"),
            ("limit=1001", "limit"),
            ("limit=-1", "limit"),
            ("offset=x", "offset"),
            ("sort=name;drop", "sort"),
            ("order=up", "order"),
            ("status=gone", "status"),
            ("colour=red", "colour"),
            ("q=a&q=b", "q"),
        ] {
            let p = parse(Some(raw)).unwrap_err();
            assert_eq!(p.status, 422, "{raw}");
            assert!(p.detail.contains(named), "{raw}: {}", p.detail);
        }
        let long = format!("q={}", "a".repeat(MAX_FILTER_LEN + 1));
        assert_eq!(parse(Some(&long)).unwrap_err().status, 422);
    }
}
