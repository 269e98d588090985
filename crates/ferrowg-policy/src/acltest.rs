//! The `tests` section (Tailscale's ACL tests): from a source, these destinations must be
//! reachable (`accept`) and these must not (`deny`), checked against the compiled policy the hub
//! would enforce. A failing test refuses the policy (`ferrowg hub policy set`/`test`).
//!
//! ```text
//! "tests": [{ "src": "tag:sensor", "proto": "tcp",
//!             "accept": ["tag:collector:443", "10.1.0.5:22"], "deny": ["tag:db:5432"] }]
//! ```
//!
//! `src` is one tag, device, host or address; each destination is `TARGET:PORT` with a target of
//! the same kinds (`[v6]:PORT` or `v6:PORT` for IPv6). `proto` is `tcp` (the default), `udp` or
//! `icmp` (whose port is ignored and may be `*`). What the names stand for comes from a
//! [`TestEnv`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::compile::{Compiled, Subject};
use crate::policy::Policy;
use crate::ports::Proto;
use crate::tests_read::Target;

/// What the names of tests stand for when they are run.
///
/// - `tag:X` is a device with only that tag and no name the policy uses, at the address given
///   with [`TestEnv::tag`], else at a sample address of its own in `198.18.0.0/16` (RFC 2544's
///   benchmarking range, which no site should use).
/// - A device name is that device, with the address and tags given with [`TestEnv::device`],
///   else with no tags at a sample address in `198.19.0.0/16` (so only rules naming the device
///   or a group it is a member of apply to it).
/// - A host is a site address with no device: the prefix's first host (`10.1.0.0/24` →
///   `10.1.0.1`).
/// - An address is the device given that address with [`TestEnv::device`], else a site address
///   with no device.
///
/// `ferrowg hub policy test FILE` runs with an empty environment; `policy set` can describe the
/// hub's real devices so that address rules (a CIDR covering the device pool) are tested too.
#[derive(Debug, Clone, Default)]
pub struct TestEnv {
    tags: BTreeMap<String, IpAddr>,
    devices: BTreeMap<String, (IpAddr, Vec<String>)>,
}

impl TestEnv {
    /// An empty environment: every name stands for its sample.
    pub fn new() -> TestEnv {
        TestEnv::default()
    }

    /// `tag` (`tag:X`) stands for a device of that tag at `addr`.
    pub fn tag(&mut self, tag: &str, addr: IpAddr) -> &mut TestEnv {
        self.tags.insert(tag.to_owned(), addr);
        self
    }

    /// The device `name` is at `addr` with `tags`.
    pub fn device(&mut self, name: &str, addr: IpAddr, tags: &[&str]) -> &mut TestEnv {
        let tags = tags.iter().map(|t| (*t).to_owned()).collect();
        self.devices.insert(name.to_owned(), (addr, tags));
        self
    }
}

/// One failed assertion of a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFailure {
    /// 1-based line of the destination in `accept` or `deny`.
    pub line: usize,
    /// The test's `src`, as written.
    pub src: String,
    /// The destination, as written.
    pub dst: String,
    /// The protocol tested.
    pub proto: Proto,
    /// True if the destination was listed in `accept` (and the policy denies it), false if in
    /// `deny` (and the policy allows it).
    pub expected_accept: bool,
}

impl TestFailure {
    /// The failure without its line.
    pub fn what(&self) -> String {
        let (want, got) = if self.expected_accept {
            ("accept", "denies")
        } else {
            ("deny", "allows")
        };
        format!(
            "test {} -> {} ({}): expected {want}, but the policy {got} it",
            self.src,
            self.dst,
            self.proto.name()
        )
    }
}

impl fmt::Display for TestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.what())
    }
}

/// A subject to check: owned parts of a [`Subject`].
struct Sample {
    device: Option<String>,
    tags: Vec<String>,
    addr: IpAddr,
}

impl Sample {
    fn check(&self, c: &Compiled, dst: &Sample, proto: Proto, port: u16) -> bool {
        let st: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        let dt: Vec<&str> = dst.tags.iter().map(String::as_str).collect();
        let src = Subject {
            device: self.device.as_deref(),
            tags: &st,
            addr: self.addr,
        };
        let dst = Subject {
            device: dst.device.as_deref(),
            tags: &dt,
            addr: dst.addr,
        };
        c.allows(&src, &dst, proto, port)
    }
}

/// Resolves test names to samples, in time independent of the number of names.
struct Resolver<'a> {
    env: &'a TestEnv,
    tag_index: HashMap<&'a str, usize>,
    device_index: HashMap<&'a str, usize>,
    by_addr: HashMap<IpAddr, &'a str>,
}

impl<'a> Resolver<'a> {
    fn new(p: &'a Policy, env: &'a TestEnv) -> Resolver<'a> {
        let index = |names: &'a std::collections::BTreeSet<String>| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.as_str(), i))
                .collect()
        };
        Resolver {
            env,
            tag_index: index(&p.tags),
            device_index: index(&p.devices),
            by_addr: env
                .devices
                .iter()
                .map(|(name, (addr, _))| (*addr, name.as_str()))
                .collect(),
        }
    }

    /// `base.x.y` where `x.y` is 1 + the name's position (modulo 65534).
    fn sample_addr(base: [u8; 2], index: &HashMap<&str, usize>, name: &str) -> IpAddr {
        let i = index.get(name).copied().unwrap_or(0) % 65534 + 1;
        let [hi, lo] = u16::try_from(i).unwrap_or(u16::MAX).to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(base[0], base[1], hi, lo))
    }

    fn device(&self, name: &str, fallback: IpAddr) -> Sample {
        match self.env.devices.get(name) {
            Some((addr, tags)) => Sample {
                device: Some(name.to_owned()),
                tags: tags.clone(),
                addr: *addr,
            },
            None => Sample {
                device: Some(name.to_owned()),
                tags: Vec::new(),
                addr: fallback,
            },
        }
    }

    fn sample(&self, t: &Target) -> Sample {
        match t {
            Target::Tag(tag) => Sample {
                device: None,
                tags: vec![tag.clone()],
                addr: self
                    .env
                    .tags
                    .get(tag)
                    .copied()
                    .unwrap_or_else(|| Self::sample_addr([198, 18], &self.tag_index, tag)),
            },
            Target::Device(name) => {
                self.device(name, Self::sample_addr([198, 19], &self.device_index, name))
            }
            Target::Host(prefix) => Sample {
                device: None,
                tags: Vec::new(),
                addr: prefix.sample(),
            },
            Target::Addr(addr) => match self.by_addr.get(addr) {
                Some(name) => self.device(name, *addr),
                None => Sample {
                    device: None,
                    tags: Vec::new(),
                    addr: *addr,
                },
            },
        }
    }
}

impl Policy {
    /// Runs the `tests` section against the compiled policy, names standing for what `env`
    /// says (see [`TestEnv`]). Every failed assertion is returned, in file order.
    pub fn run_tests(&self, env: &TestEnv) -> Result<(), Vec<TestFailure>> {
        let compiled = self.compile();
        let resolver = Resolver::new(self, env);
        let mut failures = Vec::new();
        for t in &self.tests {
            let src = resolver.sample(&t.src);
            for c in &t.checks {
                let dst = resolver.sample(&c.target);
                if src.check(&compiled, &dst, t.proto, c.port) != c.accept {
                    failures.push(TestFailure {
                        line: c.line,
                        src: t.src_text.clone(),
                        dst: c.text.clone(),
                        proto: t.proto,
                        expected_accept: c.accept,
                    });
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    /// The number of tests and of assertions (destinations) in them.
    pub fn test_counts(&self) -> (usize, usize) {
        let assertions = self.tests.iter().map(|t| t.checks.len()).sum();
        (self.tests.len(), assertions)
    }
}
