//! Reading the `tests` section: each test's source, protocol and `accept`/`deny` destinations,
//! every name checked against the names the rest of the policy declares ([`Names`]). Running
//! the tests is `acltest.rs`.

use std::net::IpAddr;

use crate::error::PolicyError;
use crate::hujson::{Kind, Value};
use crate::ports::{self, Proto};
use crate::prefix::Prefix;
use crate::read;

/// What the rest of the policy declares, as the tests' names are checked against it.
pub(crate) trait Names {
    /// `t` (`tag:X`) if it is declared in `tagOwners`, else why not.
    fn tag(&self, t: &str) -> Result<String, String>;
    /// The prefix of host alias `name`.
    fn host(&self, name: &str) -> Option<Prefix>;
    /// Whether `name` is a device some group lists.
    fn is_device(&self, name: &str) -> bool;
}

/// A test, names resolved.
#[derive(Debug, Clone)]
pub(crate) struct AclTest {
    pub(crate) src: Target,
    pub(crate) src_text: String,
    pub(crate) proto: Proto,
    pub(crate) checks: Vec<Check>,
}

/// One destination of a test.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub(crate) line: usize,
    pub(crate) text: String,
    pub(crate) target: Target,
    pub(crate) port: u16,
    pub(crate) accept: bool,
}

/// What a test names.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Tag(String),
    Device(String),
    Host(Prefix),
    Addr(IpAddr),
}

/// Reads the `tests` list.
pub(crate) fn read_tests(p: &dyn Names, v: &Value) -> Result<Vec<AclTest>, PolicyError> {
    let Kind::Array(items) = &v.kind else {
        return Err(PolicyError::key(
            v.line,
            "tests",
            format!("expected a list, found {}", v.kind.describe()),
        ));
    };
    items.iter().map(|item| read_test(p, item)).collect()
}

fn read_test(p: &dyn Names, v: &Value) -> Result<AclTest, PolicyError> {
    let [src, proto, accept, deny] =
        read::members(v, "tests", &["src", "proto", "accept", "deny"])?;
    let src_v = read::required(src, v, "src")?;
    let src_text = read::string(src_v, "src")?;
    let src = target(p, src_text).map_err(|m| PolicyError::key(src_v.line, "src", m))?;
    let proto = match proto {
        None => Proto::Tcp,
        Some(pv) => match read::string(pv, "proto")? {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            "icmp" => Proto::Icmp,
            other => {
                return Err(PolicyError::key(
                    pv.line,
                    "proto",
                    format!("{other:?}: tests take tcp, udp or icmp"),
                ))
            }
        },
    };
    let mut checks = Vec::new();
    for (list, key, expect) in [(accept, "accept", true), (deny, "deny", false)] {
        let Some(list) = list else { continue };
        for (line, text) in read::strings(list, key)? {
            let (target, port) =
                destination(p, text, proto).map_err(|m| PolicyError::key(line, key, m))?;
            checks.push(Check {
                line,
                text: text.to_owned(),
                target,
                port,
                accept: expect,
            });
        }
    }
    Ok(AclTest {
        src,
        src_text: src_text.to_owned(),
        proto,
        checks,
    })
}

/// `TARGET:PORT`, `[V6]:PORT` or `V6:PORT` (split at the last colon).
fn destination(p: &dyn Names, s: &str, proto: Proto) -> Result<(Target, u16), String> {
    let split = match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once("]:")
            .filter(|(a, _)| a.parse::<IpAddr>().is_ok()),
        None => s.rsplit_once(':'),
    };
    let Some((name, port)) = split else {
        return Err(format!("{s:?} is not TARGET:PORT"));
    };
    let port = match port {
        "*" if proto == Proto::Icmp => 0,
        p => ports::port(p)?,
    };
    Ok((target(p, name)?, port))
}

/// A test's source or destination name.
fn target(p: &dyn Names, s: &str) -> Result<Target, String> {
    if s.starts_with("tag:") {
        return p.tag(s).map(Target::Tag);
    }
    if s.starts_with("group:") || s == "*" {
        return Err(format!(
            "{s:?}: a test names one tag, device, host or address"
        ));
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Ok(Target::Addr(a));
    }
    if s.contains('/') {
        return Err(format!(
            "{s:?}: a test names one address, not a prefix (name it in `hosts`)"
        ));
    }
    if let Some(prefix) = p.host(s) {
        return Ok(Target::Host(prefix));
    }
    if p.is_device(s) {
        return Ok(Target::Device(s.to_owned()));
    }
    Err(format!(
        "unknown tag, host or device {s:?} (devices are declared by being members of a group)"
    ))
}
