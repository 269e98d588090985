//! The values of wg-quick(8)'s own `[Interface]` keys (`Address`, `DNS`, `MTU`, `Table`,
//! `SaveConfig` and the hooks), read as wg-quick's `parse_options` reads them.

use std::net::IpAddr;

use super::error::{invalid, ConfigErrorKind};
use super::syntax::quick_line;
use super::{Address, QuickInterface, Table};
use crate::addr::AllowedIp;
use crate::grammar::decimal;

/// Applies one wg-quick key (`field`, canonically spelled) with its trimmed `value`; `whole`
/// is the whole line, comment included (a hook's command keeps its `#`), when it is UTF-8.
pub(super) fn set_key(
    quick: &mut QuickInterface,
    field: &'static str,
    value: &str,
    whole: Option<&str>,
) -> Result<(), ConfigErrorKind> {
    match field {
        "Address" => {
            for item in split_list(value) {
                quick.addresses.push(
                    parse_address(item).ok_or_else(|| invalid(field, item, "a valid address"))?,
                );
            }
        }
        "DNS" => {
            for item in split_list(value) {
                // wg-quick: `^[0-9.]+$` or anything with a colon is a server.
                if item.bytes().all(|c| c.is_ascii_digit() || c == b'.') || item.contains(':') {
                    let ip = item
                        .parse::<IpAddr>()
                        .map_err(|_| invalid(field, item, "a valid IP address"))?;
                    quick.dns.push(ip);
                } else {
                    quick.dns_search.push(item.to_owned());
                }
            }
        }
        "MTU" => {
            quick.mtu = match value {
                "" => None,
                v => Some(decimal(v).ok_or_else(|| invalid(field, v, "a valid MTU"))?),
            }
        }
        "Table" => {
            quick.table =
                parse_table(value).map_err(|()| invalid(field, value, "a valid routing table"))?
        }
        "SaveConfig" => {
            quick.save_config = if value.eq_ignore_ascii_case("true") {
                true
            } else if value.eq_ignore_ascii_case("false") {
                false
            } else {
                return Err(invalid(field, value, "true or false"));
            }
        }
        hook => {
            // The command is everything after the first '=' of the whole line.
            let whole = whole.ok_or(ConfigErrorKind::NotUtf8)?;
            let command = quick_line(whole).unstripped_value.unwrap_or("").to_owned();
            let list = match hook {
                "PreUp" => &mut quick.pre_up,
                "PostUp" => &mut quick.post_up,
                "PreDown" => &mut quick.pre_down,
                _ => &mut quick.post_down,
            };
            list.push(command);
        }
    }
    Ok(())
}

/// wg-quick's `${value//,/ }` followed by word splitting.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
}

/// An `Address` entry: `ip` or `ip/cidr`.
fn parse_address(item: &str) -> Option<Address> {
    let prefix = AllowedIp::parse_config(item)?;
    Some(Address {
        addr: prefix.addr,
        cidr: item.contains('/').then_some(prefix.cidr),
    })
}

fn parse_table(value: &str) -> Result<Option<Table>, ()> {
    Ok(Some(match value {
        "" => return Ok(None),
        "off" => Table::Off,
        "auto" => Table::Auto,
        v if v.bytes().all(|c| c.is_ascii_digit()) => Table::Id(decimal(v).ok_or(())?),
        v if v
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) =>
        {
            Table::Name(v.to_owned())
        }
        _ => return Err(()),
    }))
}
