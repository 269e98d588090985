//! What a valid policy allows: grants, groups, hosts and prefixes, protocols and ports, the
//! one-way rule, auto-approved routes, the tests section, and the sample policy
//! `examples/fleet.hujson` (through `test_file`, as `ferrowg hub policy test` runs it).

use std::net::IpAddr;
use std::path::Path;

use ferrowg_policy::{test_file, Compiled, Policy, Prefix, Proto, Subject, TestEnv};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn compile(text: &str) -> Compiled {
    Policy::parse(text).unwrap().compile()
}

/// A device `name` with `tags` at `addr`.
fn dev<'a>(name: &'a str, tags: &'a [&'a str], addr: &str) -> Subject<'a> {
    Subject {
        device: Some(name),
        tags,
        addr: ip(addr),
    }
}

/// An address with no device behind it (a site).
fn site(addr: &str) -> Subject<'static> {
    Subject {
        device: None,
        tags: &[],
        addr: ip(addr),
    }
}

const FLEET: &str = r#"{
  "tagOwners": { "tag:sensor": [], "tag:collector": [], "tag:db": [], "tag:router": [] },
  "groups": { "group:backend": ["tag:collector", "tag:db"], "group:admins": ["laptop"] },
  "hosts": { "site": "10.1.0.0/24", "plc": "10.1.0.5", "v6site": "fd00:10::/64" },
  "grants": [
    { "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443", "udp:5683"] },
    { "src": ["group:backend"], "dst": ["tag:db"], "ip": ["tcp:5432"] },
    { "src": ["group:admins"], "dst": ["*"], "ip": ["*"] },
    { "src": ["tag:router"], "dst": ["site"], "ip": ["tcp:502", "icmp"] },
    { "src": ["site"], "dst": ["tag:collector"], "ip": ["tcp:8000-8100"] },
    { "src": ["tag:sensor"], "dst": ["v6site", "10.9.0.0/16"], "ip": ["22"] },
    { "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:444"] },
  ],
  "autoApprovers": { "routes": { "10.1.0.0/16": ["tag:router"], "fd00::/16": ["tag:db"] } },
}"#;

#[test]
fn grants_are_one_directional_and_port_exact() {
    let c = compile(FLEET);
    let sensor = dev("s1", &["tag:sensor"], "10.64.0.2");
    let coll = dev("c1", &["tag:collector"], "10.64.0.3");
    assert!(c.allows(&sensor, &coll, Proto::Tcp, 443));
    assert!(c.allows(&sensor, &coll, Proto::Udp, 5683));
    assert!(!c.allows(&sensor, &coll, Proto::Udp, 443));
    assert!(!c.allows(&sensor, &coll, Proto::Tcp, 22));
    assert!(!c.allows(&sensor, &coll, Proto::Icmp, 0));
    // The reverse direction is not granted.
    assert!(!c.allows(&coll, &sensor, Proto::Tcp, 443));
    // Two grants between the same tags add up.
    assert!(c.allows(&sensor, &coll, Proto::Tcp, 444));
    // A device with no tag the policy knows gets nothing.
    let stranger = dev("x", &["tag:other"], "10.64.0.9");
    assert!(!c.allows(&stranger, &coll, Proto::Tcp, 443));
}

#[test]
fn groups_expand_to_tags_and_devices() {
    let c = compile(FLEET);
    let coll = dev("c1", &["tag:collector"], "10.64.0.3");
    let db = dev("d1", &["tag:db"], "10.64.0.4");
    assert!(c.allows(&coll, &db, Proto::Tcp, 5432));
    assert!(c.allows(&db, &db, Proto::Tcp, 5432));
    // A device named in a group is matched by name, whatever its tags.
    let laptop = dev("laptop", &[], "10.64.0.5");
    assert!(c.allows(&laptop, &db, Proto::Udp, 9));
    assert!(c.allows(&laptop, &site("192.168.7.7"), Proto::Other(47), 0));
    // Another device with the laptop's address but another name is not the laptop.
    let other = dev("laptop2", &[], "10.64.0.5");
    assert!(!c.allows(&other, &db, Proto::Tcp, 5432));
}

#[test]
fn hosts_and_prefixes_match_addresses() {
    let c = compile(FLEET);
    let router = dev("r1", &["tag:router"], "10.64.0.6");
    assert!(c.allows(&router, &site("10.1.0.77"), Proto::Tcp, 502));
    assert!(c.allows(&router, &site("10.1.0.5"), Proto::Icmp, 0));
    assert!(!c.allows(&router, &site("10.1.1.1"), Proto::Tcp, 502));
    // A site address has no tags: the sensor→collector grant never reaches it.
    let sensor = dev("s1", &["tag:sensor"], "10.64.0.2");
    assert!(!c.allows(&sensor, &site("10.1.0.3"), Proto::Tcp, 443));
    // A source prefix: machines of the site may open the ingest ports on collectors.
    let coll = dev("c1", &["tag:collector"], "10.64.0.3");
    assert!(c.allows(&site("10.1.0.20"), &coll, Proto::Tcp, 8050));
    assert!(!c.allows(&site("10.1.0.20"), &coll, Proto::Tcp, 443));
    assert!(!c.allows(&site("10.2.0.20"), &coll, Proto::Tcp, 8050));
    // IPv6 hosts and IPv4 CIDRs in one grant; a bare port is TCP and UDP.
    assert!(c.allows(&sensor, &site("fd00:10::99"), Proto::Tcp, 22));
    assert!(c.allows(&sensor, &site("10.9.200.1"), Proto::Udp, 22));
    assert!(!c.allows(&sensor, &site("fd00:11::1"), Proto::Tcp, 22));
    // A destination prefix also matches a device whose address is inside it.
    let inside = dev("c9", &[], "10.9.0.1");
    assert!(c.allows(&sensor, &inside, Proto::Tcp, 22));
}

#[test]
fn wildcard_matches_everything() {
    let c = compile(
        r#"{ "hosts": { "ntp": "10.0.0.123" },
             "grants": [{ "src": ["*"], "dst": ["ntp"], "ip": ["udp:123"] }] }"#,
    );
    assert!(c.allows(&site("192.0.2.1"), &site("10.0.0.123"), Proto::Udp, 123));
    assert!(c.allows(
        &dev("a", &["tag:z"], "10.64.0.1"),
        &site("10.0.0.123"),
        Proto::Udp,
        123
    ));
    assert!(!c.allows(&site("192.0.2.1"), &site("10.0.0.124"), Proto::Udp, 123));
    // No policy at all (an empty object) allows nothing.
    let none = compile("{}");
    assert!(!none.allows(&site("10.0.0.1"), &site("10.0.0.2"), Proto::Tcp, 80));
}

#[test]
fn auto_approvers() {
    let p = Policy::parse(FLEET).unwrap();
    let route = |s: &str| s.parse::<Prefix>().unwrap();
    assert!(p.auto_approves(route("10.1.2.0/24"), &["tag:router"]));
    assert!(p.auto_approves(route("10.1.0.0/16"), &["tag:sensor", "tag:router"]));
    assert!(
        !p.auto_approves(route("10.0.0.0/8"), &["tag:router"]),
        "wider than listed"
    );
    assert!(
        !p.auto_approves(route("10.2.0.0/24"), &["tag:router"]),
        "outside"
    );
    assert!(
        !p.auto_approves(route("10.1.2.0/24"), &["tag:db"]),
        "other tag"
    );
    assert!(!p.auto_approves(route("10.1.2.0/24"), &[]));
    assert!(p.auto_approves(route("fd00:1::/64"), &["tag:db"]));
    assert!(!p.auto_approves(route("fe80::/64"), &["tag:db"]));
    // Wider than the listed prefix though it starts at the same address.
    assert!(!p.auto_approves(route("fd00::/8"), &["tag:db"]));
    assert!(p.auto_approves(route("fd00::/16"), &["tag:db"]));
}

/// Compiling costs the same for 10 devices of a group as for 10,000: groups hold tags, the
/// matrix holds tags and prefixes, and each device is looked up by its tag per flow.
#[test]
fn compiled_size_is_independent_of_device_count() {
    let policy = Policy::parse(FLEET).unwrap();
    let c = policy.compile();
    let before = c.stats();
    let coll = dev("c1", &["tag:collector"], "10.64.0.3");
    for n in [10u32, 10_000] {
        let names: Vec<String> = (0..n).map(|i| format!("sensor-{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a40_0000u32 + 10 + i as u32));
            let s = Subject {
                device: Some(name),
                tags: &["tag:sensor"],
                addr,
            };
            assert!(c.allows(&s, &coll, Proto::Tcp, 443));
            assert!(!c.allows(&coll, &s, Proto::Tcp, 443));
        }
        assert_eq!(policy.compile().stats(), before, "{n} devices");
    }
    // The size is the policy's: its tags, devices and prefixes, and the pairs its grants make.
    assert_eq!(before.principals, 5, "{before:?}"); // 4 tags + laptop
    assert_eq!(before.prefixes, 3, "{before:?}"); // site, v6site, 10.9/16 (plc unused)
    assert_eq!(before.pairs, 8, "{before:?}");
    // Pairs joined by the same grants share one port set (sensor → v6site and → 10.9/16).
    assert_eq!(before.port_sets, 6, "{before:?}");
}

#[test]
fn group_size_counts_tags_not_devices() {
    // A group of 3 tags used on both sides makes 3 × 3 pairs, however many devices carry them.
    let c = compile(
        r#"{ "tagOwners": { "tag:a": [], "tag:b": [], "tag:c": [] },
             "groups": { "group:g": ["tag:a", "tag:b", "tag:c"] },
             "grants": [{ "src": ["group:g"], "dst": ["group:g"], "ip": ["tcp:1"] }] }"#,
    );
    assert_eq!(c.stats().pairs, 9);
    assert_eq!(c.stats().principals, 3);
}

#[test]
fn tests_section_passes_and_fails_with_lines() {
    let text = r#"{
  "tagOwners": { "tag:sensor": [], "tag:collector": [] },
  "grants": [{ "src": ["tag:sensor"], "dst": ["tag:collector"], "ip": ["tcp:443"] }],
  "tests": [
    { "src": "tag:sensor", "accept": ["tag:collector:443"], "deny": ["tag:collector:80"] },
    { "src": "tag:collector",
      "accept": ["tag:sensor:443"],
      "deny": ["tag:collector:443"] },
    { "src": "tag:sensor", "proto": "udp", "deny": [
        "tag:collector:443"] },
    { "src": "tag:sensor", "deny": ["tag:collector:442",
        "tag:collector:443"] },
  ],
}"#;
    let p = Policy::parse(text).unwrap();
    assert_eq!(p.test_counts(), (4, 7));
    let failures = p.run_tests(&TestEnv::new()).unwrap_err();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!((failures[0].line, failures[1].line), (7, 12));
    assert!(failures[0].expected_accept);
    assert!(!failures[1].expected_accept);
    assert_eq!(
        failures[0].to_string(),
        "line 7: test tag:collector -> tag:sensor:443 (tcp): expected accept, but the policy \
         denies it"
    );
    assert_eq!(
        failures[1].to_string(),
        "line 12: test tag:sensor -> tag:collector:443 (tcp): expected deny, but the policy \
         allows it"
    );
}

#[test]
fn test_env_gives_real_addresses_and_tags() {
    // A grant to the device pool by CIDR: the samples of an empty environment are outside it,
    // the hub's real addresses are inside it.
    let text = r#"{
  "tagOwners": { "tag:ops": [], "tag:sensor": [] },
  "groups": { "group:named": ["gw-1"] },
  "grants": [{ "src": ["tag:ops"], "dst": ["10.64.0.0/16"], "ip": ["tcp:22"] }],
  "tests": [{ "src": "tag:ops", "accept": ["tag:sensor:22", "gw-1:22", "10.64.9.9:22"] }],
}"#;
    let p = Policy::parse(text).unwrap();
    let failures = p.run_tests(&TestEnv::new()).unwrap_err();
    assert_eq!(
        failures.iter().map(|f| f.line).collect::<Vec<_>>(),
        vec![5, 5]
    );
    let mut env = TestEnv::new();
    env.tag("tag:sensor", ip("10.64.0.2"))
        .device("gw-1", ip("10.64.0.3"), &["tag:sensor"]);
    assert_eq!(p.run_tests(&env), Ok(()));
}

#[test]
fn address_in_a_test_is_the_device_with_that_address() {
    let text = r#"{
  "tagOwners": { "tag:ops": [], "tag:db": [] },
  "grants": [{ "src": ["tag:ops"], "dst": ["tag:db"], "ip": ["tcp:5432"] }],
  "tests": [{ "src": "tag:ops", "accept": ["10.64.0.7:5432"] }],
}"#;
    let p = Policy::parse(text).unwrap();
    assert!(
        p.run_tests(&TestEnv::new()).is_err(),
        "a bare address is a site"
    );
    let mut env = TestEnv::new();
    env.device("db-1", ip("10.64.0.7"), &["tag:db"]);
    assert_eq!(p.run_tests(&env), Ok(()));
}

#[test]
fn sample_policy_passes_its_own_tests() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.hujson");
    let summary = test_file(&path).unwrap();
    assert!(
        summary.ends_with("policy valid (8 grants); 10 tests, 33 assertions passed"),
        "{summary}"
    );
    // And the features it is meant to show are all there.
    let p = Policy::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(p.auto_approves("10.1.7.0/24".parse().unwrap(), &["tag:router"]));
    assert!(p.auto_approves("fd00:10:0:1::/64".parse().unwrap(), &["tag:gateway"]));
    assert_eq!(
        p.devices().collect::<Vec<_>>(),
        vec!["gw-berlin", "laptop-anna"]
    );
    assert_eq!(p.hosts().count(), 5);
}

#[test]
fn test_file_reports_file_and_line() {
    let dir = std::env::temp_dir().join(format!("ferrowg-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.hujson");
    std::fs::write(&bad, "{\n  \"acls\": [],\n}\n").unwrap();
    let err = test_file(&bad).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}:2: key \"acls\": unknown key (known here: tagOwners, hosts, groups, grants, \
             autoApprovers, tests)",
            bad.display()
        )
    );
    let failing = dir.join("failing.hujson");
    std::fs::write(
        &failing,
        "{\n\"tagOwners\": {\"tag:a\": []},\n\"tests\": [{\"src\": \"tag:a\",\n\"accept\": [\"tag:a:1\"]}]}",
    )
    .unwrap();
    let err = test_file(&failing).unwrap_err();
    assert_eq!(
        err,
        format!(
            "{}:4: test tag:a -> tag:a:1 (tcp): expected accept, but the policy denies it",
            failing.display()
        )
    );
    let big = dir.join("big.hujson");
    std::fs::write(&big, vec![b' '; ferrowg_policy::MAX_POLICY_BYTES + 1]).unwrap();
    assert!(test_file(&big)
        .unwrap_err()
        .contains("larger than the limit"));
    assert!(test_file(&dir.join("missing")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The compiled matrix against the direct reading of the grants, on seeded random subjects.
#[test]
fn compiled_matches_reference() {
    let p = Policy::parse(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet.hujson"),
        )
        .unwrap(),
    )
    .unwrap();
    let c = p.compile();
    let names = [None, Some("laptop-anna"), Some("gw-berlin"), Some("other")];
    let tags: [&[&str]; 5] = [
        &[],
        &["tag:sensor"],
        &["tag:collector", "tag:db"],
        &["tag:gateway"],
        &["tag:router", "tag:ops"],
    ];
    let addrs = [
        "10.1.0.5",
        "10.1.0.200",
        "10.0.0.123",
        "10.201.2.1",
        "10.201.3.1",
        "10.64.0.1",
        "fd00:10::1",
        "fd00:11::1",
    ];
    let protos = [
        (Proto::Tcp, 443),
        (Proto::Tcp, 502),
        (Proto::Tcp, 8050),
        (Proto::Udp, 123),
        (Proto::Udp, 5683),
        (Proto::Icmp, 0),
        (Proto::Other(47), 0),
        (Proto::Tcp, 8086),
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize % n
    };
    let (mut allowed, mut total) = (0, 0);
    for _ in 0..20_000 {
        let s = Subject {
            device: names[next(4)],
            tags: tags[next(5)],
            addr: ip(addrs[next(8)]),
        };
        let d = Subject {
            device: names[next(4)],
            tags: tags[next(5)],
            addr: ip(addrs[next(8)]),
        };
        let (proto, port) = protos[next(8)];
        let got = c.allows(&s, &d, proto, port);
        assert_eq!(
            got,
            p.allows_reference(&s, &d, proto, port),
            "{s:?} -> {d:?} {proto:?} {port}"
        );
        allowed += usize::from(got);
        total += 1;
    }
    // Both answers occur, so the comparison is not vacuous.
    assert!(
        allowed > total / 20 && allowed < total - total / 20,
        "{allowed} of {total}"
    );
}
