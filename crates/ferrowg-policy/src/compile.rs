//! The policy compiled for the data path: checked once per NEW flow (replies to an allowed flow
//! are the hub's flow table's business), at a cost independent of the number of devices.
//!
//! Every selector of every grant becomes a small integer id: `*` is id 0, each tag and each
//! device the policy names has one (groups are expanded into theirs), each prefix has one.
//! The grants become a sparse matrix `(source id, destination id) → set of (protocol, port)`,
//! the union of every grant between the two. A flow's source and destination each map to a
//! handful of ids — `*`, the device's own name, its tags, the prefixes holding its address
//! (one hash probe per distinct prefix length) — and the flow is allowed if one pair of them
//! allows its protocol and port. Devices are never listed: a device of group G is found by
//! its tag `tag:G`, so enrolling the ten-thousandth sensor changes nothing here.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::policy::{Policy, Principal, Selector};
use crate::ports::{PortSet, Proto};
use crate::prefix::{self, Prefix};

/// One side of a flow as the hub knows it.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The enrolled device the packet comes from or goes to; `None` for a site address behind
    /// a router device, or any address that is not a device's own. Device names follow
    /// [`crate::valid_name`] (a name with `:` is never looked up).
    pub device: Option<&'a str>,
    /// The device's tags, `tag:` included (a device enrolled with `--group G` has `tag:G`).
    pub tags: &'a [&'a str],
    /// The address the packet carries for this side.
    pub addr: IpAddr,
}

/// The id of `*`, which every subject has.
const ANY: u32 = 0;

/// A policy compiled by [`Policy::compile`]; immutable, `Send + Sync`, shareable behind an
/// `Arc` by the data path.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Tags (`tag:X`) and device names → id.
    names: HashMap<String, u32>,
    v4: PrefixTable,
    v6: PrefixTable,
    /// (source id, destination id) → index in `sets` of what the grants between them allow.
    rules: HashMap<(u32, u32), u32>,
    /// The distinct unions of grants' port sets: pairs joined by the same grants share one.
    sets: Vec<PortSet>,
    /// The next free id.
    next: u32,
}

/// Prefixes of one family by length: for each length present, masked address → id.
#[derive(Debug, Clone, Default)]
struct PrefixTable {
    by_len: Vec<(u8, HashMap<u128, u32>)>,
}

/// The size of a compiled policy: it depends on the policy's selectors and grants only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledStats {
    /// Tags and devices the grants name.
    pub principals: usize,
    /// Distinct prefixes the grants name.
    pub prefixes: usize,
    /// Distinct prefix lengths: the most hash probes one address costs.
    pub prefix_lengths: usize,
    /// (source, destination) pairs with a rule.
    pub pairs: usize,
    /// Distinct port sets the pairs share.
    pub port_sets: usize,
    /// Port ranges held by those sets.
    pub ranges: usize,
}

impl Policy {
    /// Compiles the grants into the matrix [`Compiled::allows`] checks. Infallible: parsing
    /// bounded the work ([`crate::MAX_EXPANSION`]).
    pub fn compile(&self) -> Compiled {
        let mut c = Compiled {
            next: ANY + 1,
            ..Compiled::default()
        };
        // Each pair's grants, in order, as a node of a trie of grant lists (node 0: no grant;
        // a node is its parent list plus one grant), so that pairs joined by the same grants
        // share a node and no pair allocates. Then one port set per node some pair ends on,
        // built from the ranges of its grants: the work is the (pair, grant) incidences plus
        // those ranges, at most the expansion parsing bounded.
        let mut nodes: Vec<(u32, usize)> = vec![(0, usize::MAX)];
        let mut child: HashMap<(u32, usize), u32> = HashMap::new();
        let mut node_of: HashMap<(u32, u32), u32> = HashMap::new();
        for (i, g) in self.grants.iter().enumerate() {
            let src: Vec<u32> = g.src.iter().map(|s| c.id(s)).collect();
            let dst: Vec<u32> = g.dst.iter().map(|s| c.id(s)).collect();
            for &s in &src {
                for &d in &dst {
                    let node = node_of.entry((s, d)).or_insert(0);
                    if nodes[*node as usize].1 != i {
                        *node = *child.entry((*node, i)).or_insert_with(|| {
                            nodes.push((*node, i));
                            (nodes.len() - 1) as u32
                        });
                    }
                }
            }
        }
        let mut set_of: HashMap<u32, u32> = HashMap::new();
        for (pair, node) in node_of {
            let next = c.sets.len() as u32;
            let id = *set_of.entry(node).or_insert_with(|| {
                let mut set = PortSet::default();
                let mut n = node;
                while n != 0 {
                    let (parent, grant) = nodes[n as usize];
                    set.add(&self.grants[grant].ip);
                    n = parent;
                }
                set.normalize();
                c.sets.push(set);
                next
            });
            c.rules.insert(pair, id);
        }
        c
    }
}

impl Compiled {
    /// Whether the policy lets `src` open a flow to `dst` with `proto` on `port` (the
    /// destination port; ignored for protocols other than TCP and UDP). A grant matches when
    /// one of its sources matches `src` and one of its destinations matches `dst`: `*` matches
    /// anything, a tag a subject with that tag, a device name the subject of that name, a
    /// prefix a subject whose address is inside it. So a site address with no device (`dst`
    /// with `device: None` and no tags) is matched only by `*`, hosts and prefixes.
    pub fn allows(&self, src: &Subject, dst: &Subject, proto: Proto, port: u16) -> bool {
        self.each_id(src, &mut |s| {
            self.each_id(dst, &mut |d| {
                self.rules
                    .get(&(s, d))
                    .and_then(|&i| self.sets.get(i as usize))
                    .is_some_and(|set| set.allows(proto, port))
            })
        })
    }

    /// Calls `f` with each id `subject` has, until `f` returns true; returns whether it did.
    fn each_id(&self, subject: &Subject, f: &mut dyn FnMut(u32) -> bool) -> bool {
        if f(ANY) {
            return true;
        }
        if let Some(name) = subject.device.filter(|n| !n.contains(':')) {
            if self.names.get(name).is_some_and(|&id| f(id)) {
                return true;
            }
        }
        for tag in subject.tags.iter().filter(|t| t.starts_with("tag:")) {
            if self.names.get(*tag).is_some_and(|&id| f(id)) {
                return true;
            }
        }
        let (table, a) = match subject.addr {
            IpAddr::V4(_) => (&self.v4, subject.addr),
            IpAddr::V6(_) => (&self.v6, subject.addr),
        };
        let bits = prefix::bits(a);
        table.by_len.iter().any(|(len, map)| {
            map.get(&(bits & prefix::mask(a, *len)))
                .is_some_and(|&id| f(id))
        })
    }

    /// How big the compiled policy is.
    pub fn stats(&self) -> CompiledStats {
        let prefixes = |t: &PrefixTable| t.by_len.iter().map(|(_, m)| m.len()).sum::<usize>();
        CompiledStats {
            principals: self.names.len(),
            prefixes: prefixes(&self.v4) + prefixes(&self.v6),
            prefix_lengths: self.v4.by_len.len() + self.v6.by_len.len(),
            pairs: self.rules.len(),
            port_sets: self.sets.len(),
            ranges: self.sets.iter().map(PortSet::range_count).sum(),
        }
    }

    /// The id of a selector, made on first use.
    fn id(&mut self, s: &Selector) -> u32 {
        let next = &mut self.next;
        let fresh = || {
            let id = *next;
            *next += 1;
            id
        };
        match s {
            Selector::Any => ANY,
            Selector::Principal(Principal::Tag(n) | Principal::Device(n)) => {
                *self.names.entry(n.clone()).or_insert_with(fresh)
            }
            Selector::Prefix(p) => {
                let table = if p.addr().is_ipv4() {
                    &mut self.v4
                } else {
                    &mut self.v6
                };
                *table
                    .entry(p)
                    .entry(prefix::bits(p.addr()))
                    .or_insert_with(fresh)
            }
        }
    }
}

impl PrefixTable {
    /// The map of `p`'s length, added in length order if new.
    fn entry(&mut self, p: &Prefix) -> &mut HashMap<u128, u32> {
        let len = p.prefix_len();
        let i = match self.by_len.binary_search_by_key(&len, |(l, _)| *l) {
            Ok(i) => i,
            Err(i) => {
                self.by_len.insert(i, (len, HashMap::new()));
                i
            }
        };
        &mut self.by_len[i].1
    }
}

impl Policy {
    /// What the grants mean, evaluated directly: every grant, every selector, no matrix. The
    /// model [`Compiled::allows`] is checked against by the differential test and the fuzz
    /// target; its cost grows with the policy, so it is not for the data path.
    #[doc(hidden)]
    pub fn allows_reference(&self, src: &Subject, dst: &Subject, proto: Proto, port: u16) -> bool {
        self.grants.iter().any(|g| {
            g.ip.allows(proto, port)
                && g.src.iter().any(|s| selects(s, src))
                && g.dst.iter().any(|d| selects(d, dst))
        })
    }
}

/// Whether `sel` matches `subject`.
fn selects(sel: &Selector, subject: &Subject) -> bool {
    match sel {
        Selector::Any => true,
        Selector::Principal(Principal::Tag(t)) => subject.tags.contains(&t.as_str()),
        Selector::Principal(Principal::Device(d)) => subject.device == Some(d.as_str()),
        Selector::Prefix(p) => p.contains(subject.addr),
    }
}
