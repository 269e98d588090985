//! The policy file read and validated: its sections (`groups`, `tagOwners`, `hosts`, `grants`,
//! `autoApprovers`, `tests`), every name resolved, every limit checked. What a name in `src`
//! or `dst` means:
//!
//! | entry | means |
//! |---|---|
//! | `*` | every source or destination: devices, site addresses, anything |
//! | `tag:X` | every device enrolled with `--group X`; `X` must be declared in `tagOwners` |
//! | `group:X` | every member of `groups["group:X"]`: its tags and its devices |
//! | an address or CIDR | the addresses inside it (a device's or a site's) |
//! | a name in `hosts` | the prefix the host names |
//! | another name | the device of that name; it must be a member of some group, so that a misspelt host or device is refused rather than matching nothing |

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::error::PolicyError;
use crate::hujson::{self, Value};
use crate::ports::{self, PortSet};
use crate::prefix::Prefix;
use crate::read::{self, prefixed_name, valid_name};
use crate::tests_read::{self, AclTest, Names};

/// The largest policy file accepted, in bytes (1 MiB).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// The most (source, destination, port range) entries the grants of one policy may expand to:
/// the sum over grants of sources × destinations × port ranges, groups counted by members. It
/// bounds the time and memory of [`Policy::compile`] (a few hundred MB at most).
pub const MAX_EXPANSION: u64 = 1 << 20;

/// The top-level keys, in the order they are checked.
const SECTIONS: [&str; 6] = [
    "tagOwners",
    "hosts",
    "groups",
    "grants",
    "autoApprovers",
    "tests",
];

/// A policy file, parsed and validated: every tag declared, every group, host and device
/// known, every prefix and port well formed. Build one with [`Policy::parse`].
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Declared tags, `tag:` included.
    pub(crate) tags: BTreeSet<String>,
    /// Groups (`group:` included) and their members.
    pub(crate) groups: BTreeMap<String, BTreeSet<Principal>>,
    /// Host aliases.
    pub(crate) hosts: BTreeMap<String, Prefix>,
    /// Device names, declared by being members of a group.
    pub(crate) devices: BTreeSet<String>,
    pub(crate) grants: Vec<Grant>,
    /// `autoApprovers.routes`: a route inside the prefix is approved for these tags.
    pub(crate) routes: Vec<(Prefix, BTreeSet<String>)>,
    pub(crate) tests: Vec<AclTest>,
}

/// A device or every device of a tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Principal {
    /// `tag:X`, prefix included.
    Tag(String),
    /// A device name.
    Device(String),
}

/// One source or destination of a grant, groups and hosts resolved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Selector {
    /// `*`
    Any,
    Principal(Principal),
    Prefix(Prefix),
}

/// A grant: sources may open flows to destinations on the ports in `ip`.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) src: BTreeSet<Selector>,
    pub(crate) dst: BTreeSet<Selector>,
    pub(crate) ip: PortSet,
}

impl Policy {
    /// Reads and validates a policy file (HuJSON). The first fault found is returned, with its
    /// line; nothing panics, and the work is bounded by [`MAX_POLICY_BYTES`] and
    /// [`MAX_EXPANSION`].
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::at(
                0,
                format!(
                    "the policy is {} bytes; the limit is {MAX_POLICY_BYTES}",
                    text.len()
                ),
            ));
        }
        let root = hujson::parse(text)?;
        let [tag_owners, hosts, groups, grants, auto, tests] =
            read::members(&root, "policy", &SECTIONS)?;
        let mut p = Policy::default();
        if let Some(v) = tag_owners {
            p.declare_tags(v)?;
        }
        if let Some(v) = hosts {
            p.read_hosts(v)?;
        }
        if let Some(v) = groups {
            p.read_groups(v)?;
        }
        if let Some(v) = tag_owners {
            p.check_tag_owners(v)?;
        }
        if let Some(v) = grants {
            p.read_grants(v)?;
        }
        if let Some(v) = auto {
            p.read_auto_approvers(v)?;
        }
        if let Some(v) = tests {
            p.tests = tests_read::read_tests(&p, v)?;
        }
        Ok(p)
    }

    /// Whether `autoApprovers.routes` approves `route` for a device with `tags`: the route lies
    /// inside a listed prefix and the device has one of that prefix's tags (`tag:X`).
    pub fn auto_approves(&self, route: Prefix, tags: &[&str]) -> bool {
        self.routes.iter().any(|(within, approvers)| {
            within.contains_prefix(&route) && tags.iter().any(|t| approvers.contains(*t))
        })
    }

    /// The declared tags (`tag:X`).
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.iter().map(String::as_str)
    }

    /// The device names the policy refers to (members of its groups): the hub can warn about
    /// those no device is enrolled with.
    pub fn devices(&self) -> impl Iterator<Item = &str> {
        self.devices.iter().map(String::as_str)
    }

    /// The host aliases and their prefixes.
    pub fn hosts(&self) -> impl Iterator<Item = (&str, Prefix)> {
        self.hosts.iter().map(|(n, p)| (n.as_str(), *p))
    }

    /// The number of grants.
    pub fn grant_count(&self) -> usize {
        self.grants.len()
    }

    /// The `tagOwners` keys: the tags every other section may use.
    fn declare_tags(&mut self, v: &Value) -> Result<(), PolicyError> {
        let members = read::object(v, "tagOwners")?;
        read::no_duplicates(members)?;
        for (k, _) in members {
            prefixed_name(&k.name, "tag:").map_err(|m| PolicyError::key(k.line, &k.name, m))?;
            self.tags.insert(k.name.clone());
        }
        Ok(())
    }

    /// The `tagOwners` values: lists of owners, each a known group, a declared tag, an
    /// `autogroup:` or an administrator's name (accepted for compatibility, not used).
    fn check_tag_owners(&self, v: &Value) -> Result<(), PolicyError> {
        for (k, owners) in read::object(v, "tagOwners")? {
            for (line, owner) in read::strings(owners, &k.name)? {
                let ok = if owner.starts_with("group:") {
                    self.groups.contains_key(owner)
                } else if owner.starts_with("tag:") {
                    self.tags.contains(owner)
                } else {
                    !owner.is_empty() && !owner.chars().any(|c| c.is_whitespace() || c.is_control())
                };
                if !ok {
                    return Err(PolicyError::key(
                        line,
                        &k.name,
                        format!("owner {owner:?} is not a known group, a declared tag or a name"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn read_hosts(&mut self, v: &Value) -> Result<(), PolicyError> {
        let members = read::object(v, "hosts")?;
        read::no_duplicates(members)?;
        for (k, value) in members {
            if !valid_name(&k.name) || k.name.parse::<IpAddr>().is_ok() {
                return Err(PolicyError::key(k.line, &k.name, "not a valid host name"));
            }
            let text = read::string(value, &k.name)?;
            let prefix = text
                .parse::<Prefix>()
                .map_err(|e| PolicyError::key(value.line, &k.name, format!("{text:?}: {e}")))?;
            self.hosts.insert(k.name.clone(), prefix);
        }
        Ok(())
    }

    fn read_groups(&mut self, v: &Value) -> Result<(), PolicyError> {
        let members = read::object(v, "groups")?;
        read::no_duplicates(members)?;
        for (k, list) in members {
            prefixed_name(&k.name, "group:").map_err(|m| PolicyError::key(k.line, &k.name, m))?;
            let mut set = BTreeSet::new();
            for (line, m) in read::strings(list, &k.name)? {
                let member = self
                    .group_member(m)
                    .map_err(|msg| PolicyError::key(line, &k.name, msg))?;
                if let Principal::Device(d) = &member {
                    self.devices.insert(d.clone());
                }
                set.insert(member);
            }
            self.groups.insert(k.name.clone(), set);
        }
        Ok(())
    }

    /// A group member: a declared tag or a device name.
    fn group_member(&self, m: &str) -> Result<Principal, String> {
        if m.starts_with("tag:") {
            return self.tag(m).map(Principal::Tag);
        }
        if m.starts_with("group:") {
            return Err(format!("{m:?}: a group cannot contain a group"));
        }
        if self.hosts.contains_key(m) {
            return Err(format!("{m:?} is a host; groups hold devices and tags"));
        }
        if m.contains('/') || m.parse::<IpAddr>().is_ok() {
            return Err(format!(
                "{m:?}: groups hold devices and tags; name addresses in `hosts`"
            ));
        }
        if !valid_name(m) {
            return Err(format!("{m:?} is not a valid device name or tag"));
        }
        Ok(Principal::Device(m.to_owned()))
    }

    /// `tag:X`, if declared.
    pub(crate) fn tag(&self, t: &str) -> Result<String, String> {
        prefixed_name(t, "tag:")?;
        if !self.tags.contains(t) {
            return Err(format!("tag {t:?} is not declared in tagOwners"));
        }
        Ok(t.to_owned())
    }

    fn read_grants(&mut self, v: &Value) -> Result<(), PolicyError> {
        let hujson::Kind::Array(items) = &v.kind else {
            return Err(PolicyError::key(
                v.line,
                "grants",
                format!("expected a list, found {}", v.kind.describe()),
            ));
        };
        let mut expansion: u64 = 0;
        let mut members: u64 = 0;
        for item in items {
            let grant = self.read_grant(item, &mut members)?;
            let size = |s: &BTreeSet<Selector>| s.len() as u64;
            expansion = expansion.saturating_add(
                size(&grant.src)
                    .saturating_mul(size(&grant.dst))
                    .saturating_mul(grant.ip.range_count() as u64),
            );
            if expansion > MAX_EXPANSION {
                return Err(PolicyError::at(
                    item.line,
                    format!(
                        "the grants so far expand to {expansion} (source, destination, port \
                         range) entries; the limit is {MAX_EXPANSION}: use tags and prefixes \
                         rather than long lists"
                    ),
                ));
            }
            self.grants.push(grant);
        }
        Ok(())
    }

    /// One grant; `members` counts the group members its lists and the earlier grants' expanded.
    fn read_grant(&self, v: &Value, members: &mut u64) -> Result<Grant, PolicyError> {
        let [src, dst, ip] = read::members(v, "grants", &["src", "dst", "ip"])?;
        let src = self.selectors(read::required(src, v, "src")?, "src", members)?;
        let dst = self.selectors(read::required(dst, v, "dst")?, "dst", members)?;
        let mut set = PortSet::default();
        for (line, spec) in read::nonempty_strings(read::required(ip, v, "ip")?, "ip")? {
            let one = ports::parse_ip(spec).map_err(|m| PolicyError::key(line, "ip", m))?;
            set.add(&one);
        }
        set.normalize();
        Ok(Grant { src, dst, ip: set })
    }

    /// A `src` or `dst` list, groups expanded into their members and hosts into prefixes.
    fn selectors(
        &self,
        v: &Value,
        key: &str,
        members: &mut u64,
    ) -> Result<BTreeSet<Selector>, PolicyError> {
        let mut out = BTreeSet::new();
        for (line, s) in read::nonempty_strings(v, key)? {
            self.selector(s, &mut out, members)
                .map_err(|m| PolicyError::key(line, key, m))?;
        }
        Ok(out)
    }

    /// Adds what `s` selects to `out`. Group references are counted in `members` and bounded
    /// by [`MAX_EXPANSION`], since a list may name a big group many times over.
    fn selector(
        &self,
        s: &str,
        out: &mut BTreeSet<Selector>,
        members: &mut u64,
    ) -> Result<(), String> {
        if s == "*" {
            out.insert(Selector::Any);
        } else if s.starts_with("tag:") {
            out.insert(Selector::Principal(Principal::Tag(self.tag(s)?)));
        } else if s.starts_with("group:") {
            let group = self
                .groups
                .get(s)
                .ok_or_else(|| format!("unknown group {s:?}"))?;
            *members = members.saturating_add(group.len() as u64);
            if *members > MAX_EXPANSION {
                return Err(format!(
                    "the grants so far name groups of {} members in all; the limit is \
                     {MAX_EXPANSION}",
                    *members
                ));
            }
            out.extend(group.iter().cloned().map(Selector::Principal));
        } else if s.contains('/') || s.parse::<IpAddr>().is_ok() {
            let p = s.parse::<Prefix>().map_err(|e| format!("{s:?}: {e}"))?;
            out.insert(Selector::Prefix(p));
        } else if let Some(p) = self.hosts.get(s) {
            out.insert(Selector::Prefix(*p));
        } else if self.devices.contains(s) {
            out.insert(Selector::Principal(Principal::Device(s.to_owned())));
        } else if valid_name(s) {
            return Err(format!(
                "unknown host or device {s:?} (hosts are declared in `hosts`, devices by \
                 being members of a group)"
            ));
        } else {
            return Err(format!(
                "{s:?} is not `*`, a tag, a group, a host, a device or an address"
            ));
        }
        Ok(())
    }

    fn read_auto_approvers(&mut self, v: &Value) -> Result<(), PolicyError> {
        let [routes] = read::members(v, "autoApprovers", &["routes"])?;
        let Some(routes) = routes else {
            return Ok(());
        };
        let members = read::object(routes, "routes")?;
        read::no_duplicates(members)?;
        for (k, list) in members {
            let prefix = k
                .name
                .parse::<Prefix>()
                .map_err(|e| PolicyError::key(k.line, &k.name, format!("not a route: {e}")))?;
            let mut approvers = BTreeSet::new();
            for (line, t) in read::strings(list, &k.name)? {
                if !t.starts_with("tag:") {
                    return Err(PolicyError::key(
                        line,
                        &k.name,
                        format!("{t:?}: routes are approved for tags (a device's group)"),
                    ));
                }
                approvers.insert(
                    self.tag(t)
                        .map_err(|m| PolicyError::key(line, &k.name, m))?,
                );
            }
            self.routes.push((prefix, approvers));
        }
        Ok(())
    }
}

impl Names for Policy {
    fn tag(&self, t: &str) -> Result<String, String> {
        Policy::tag(self, t)
    }
    fn host(&self, name: &str) -> Option<Prefix> {
        self.hosts.get(name).copied()
    }
    fn is_device(&self, name: &str) -> bool {
        self.devices.contains(name)
    }
}
