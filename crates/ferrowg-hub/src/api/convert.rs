//! Between the store's types and the API's JSON: devices and tokens to their JSON form, keys
//! and prefixes from request text (refused with a 422 problem naming the field), and the
//! prefixes a device routes to the hub.

use ferrowg_hub_store::ipnet::IpNet;
use ferrowg_hub_store::{Device, EnrolmentToken, HubSettings, PolicyVersion, Route, UnixTime};
use ferrowg_keys::key::PublicKey;

use super::problem::Problem;
use super::types::{DeviceInfo, DeviceState, Expiry, PolicyInfo, RouteInfo, TokenInfo};
use super::ONLINE_WITHIN;

/// A WireGuard public key from base64 (not all zero), or a 422 naming `field`.
pub fn public_key(field: &str, text: &str) -> Result<[u8; 32], Problem> {
    PublicKey::from_base64(text.trim())
        .ok()
        .filter(|k| k.as_bytes() != &[0; 32])
        .map(|k| *k.as_bytes())
        .ok_or_else(|| Problem::invalid(format!("{field}: not a WireGuard public key (base64)")))
}

/// Prefixes from text, or a 422 naming the one that does not parse.
pub fn prefixes(field: &str, texts: &[String]) -> Result<Vec<IpNet>, Problem> {
    if texts.len() > ferrowg_hub_store::validate::MAX_ROUTES {
        let max = ferrowg_hub_store::validate::MAX_ROUTES;
        return Err(Problem::invalid(format!(
            "{field}: more than {max} prefixes"
        )));
    }
    texts
        .iter()
        .map(|t| {
            t.trim().parse::<IpNet>().map_err(|_| {
                let shown: String = t.chars().take(64).collect();
                Problem::invalid(format!("{field}: {shown:?} is not an IP prefix"))
            })
        })
        .collect()
}

/// The device's addresses as host prefixes.
pub fn addresses(device: &Device) -> Vec<String> {
    let mut out = vec![format!("{}/32", device.ipv4)];
    if let Some(v6) = device.ipv6 {
        out.push(format!("{v6}/128"));
    }
    out
}

/// The state as the API names it.
pub fn state(device: &Device) -> DeviceState {
    match device.state {
        ferrowg_hub_store::DeviceState::Pending => DeviceState::Pending,
        ferrowg_hub_store::DeviceState::Active => DeviceState::Active,
        ferrowg_hub_store::DeviceState::Revoked => DeviceState::Revoked,
    }
}

/// The routes as the API shows them.
pub fn routes(device: &Device) -> Vec<RouteInfo> {
    device
        .routes
        .iter()
        .map(|r| RouteInfo {
            prefix: r.prefix.to_string(),
            approved: r.approved,
            mapped: r.mapped.map(|m| m.to_string()),
        })
        .collect()
}

/// A device as the API shows it at time `now`: online if not revoked and its latest handshake
/// is at most [`ONLINE_WITHIN`] old; its rotation due by `settings`' schedule or an admin's
/// request.
pub fn device_info(device: &Device, settings: &HubSettings, now: UnixTime) -> DeviceInfo {
    let online = device.last_handshake.is_some_and(|t| {
        now.0.saturating_sub(t.0) <= ONLINE_WITHIN
            && device.state != ferrowg_hub_store::DeviceState::Revoked
    });
    DeviceInfo {
        name: device.name.clone(),
        group: device.group.clone(),
        addresses: addresses(device),
        public_key: PublicKey::from_bytes(device.public_key).to_base64(),
        next_public_key: device
            .next_public_key
            .map(|k| PublicKey::from_bytes(k).to_base64()),
        state: state(device),
        online,
        last_handshake: device.last_handshake.map(|t| t.0),
        endpoint: device.endpoint.map(|e| e.to_string()),
        rx_bytes: device.rx_bytes,
        tx_bytes: device.tx_bytes,
        routes: routes(device),
        created_at: device.created_at.0,
        key_since: device.key_since.0,
        rotation_due: device.state != ferrowg_hub_store::DeviceState::Revoked
            && (device.rotate_requested_at.is_some()
                || settings.rotation_due(device.key_since, now)),
        revoked_at: device.revoked_at.map(|t| t.0),
        token_id: device.token_id.clone(),
    }
}

/// Longest duration accepted (token expiry, rotation schedule): 100 years, in seconds.
pub const MAX_EXPIRY: u64 = 100 * 365 * 24 * 3600;

/// Seconds from `90s`, `30m`, `12h`, `7d`, `4w`, a bare number of seconds, or `None` for
/// `never`; at least 1 second, at most [`MAX_EXPIRY`].
pub fn parse_duration(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let bad = || format!("{text:?} is not a duration (like 3600, 90m, 12h, 7d, 4w or never)");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 24 * 3600,
        "w" => 7 * 24 * 3600,
        _ => return Err(bad()),
    };
    let secs = n
        .checked_mul(scale)
        .filter(|s| (1..=MAX_EXPIRY).contains(s));
    secs.map(Some)
        .ok_or_else(|| format!("{text:?}: a duration from 1 second to 100 years"))
}

/// A duration from a request: `Some(seconds)`, or `None` for `never`; from 1 second to 100
/// years, else a 422 naming `field`.
pub fn duration(field: &str, value: &Expiry) -> Result<Option<u64>, Problem> {
    match value {
        Expiry::Seconds(0) => Err(Problem::invalid(format!("{field}: at least 1 second"))),
        Expiry::Seconds(n) if *n > MAX_EXPIRY => {
            Err(Problem::invalid(format!("{field}: at most 100 years")))
        }
        Expiry::Seconds(n) => Ok(Some(*n)),
        Expiry::Text(t) => parse_duration(t).map_err(|e| Problem::invalid(format!("{field}: {e}"))),
    }
}

/// An enrolment token as the API shows it.
pub fn token_info(token: &EnrolmentToken) -> TokenInfo {
    TokenInfo {
        id: token.id.clone(),
        group: token.group.clone(),
        uses_left: token.uses_left,
        expires_at: token.expires_at.map(|t| t.0),
        created_at: token.created_at.0,
        revoked_at: token.revoked_at.map(|t| t.0),
    }
}

/// A policy version as the API shows it.
pub fn policy_info(p: PolicyVersion) -> PolicyInfo {
    PolicyInfo {
        version: p.version,
        text: p.text,
        created_at: p.created_at.0,
    }
}

/// What device `name` routes to the hub: the address pools and the approved routes of every
/// other device that is not revoked (`routes`, with their devices' names).
pub fn allowed_ips(settings: &HubSettings, routes: &[(String, Route)], name: &str) -> Vec<String> {
    let mut out = vec![settings.pools.v4().to_string()];
    if let Some(v6) = settings.pools.v6() {
        out.push(v6.to_string());
    }
    let mut seen: std::collections::HashSet<String> = out.iter().cloned().collect();
    for (_, route) in routes.iter().filter(|(owner, _)| owner != name) {
        let text = route.reached_as().to_string();
        if seen.insert(text.clone()) {
            out.push(text);
        }
    }
    out
}
