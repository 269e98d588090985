//! Every way a policy file is refused, each with the exact line and key of the fault.

use ferrowg_policy::{Policy, PolicyError, MAX_POLICY_BYTES};

/// The error `text` is refused with.
fn refused(text: &str) -> PolicyError {
    match Policy::parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Checks line, key and a fragment of the message.
#[track_caller]
fn check(text: &str, line: usize, key: Option<&str>, fragment: &str) {
    let e = refused(text);
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.key.as_deref(), key, "{e}");
    assert!(e.message.contains(fragment), "{e} lacks {fragment:?}");
}

/// Tags, groups and hosts the snippets below can use.
const HEAD: &str = r#"{
  "tagOwners": { "tag:a": [], "tag:b": [] },
  "groups": { "group:g": ["tag:a", "dev-1"] },
  "hosts": { "site": "10.1.0.0/24" },
  // snippets start on the next line, line 6
"#;

fn with_head(rest: &str) -> String {
    format!("{HEAD}{rest}\n}}")
}

#[test]
fn unknown_keys() {
    check("{\n\n  \"acls\": [],\n}", 3, Some("acls"), "unknown key");
    check(
        &with_head(
            "\"grants\": [{ \"src\": [\"*\"], \"dst\": [\"*\"], \"ip\": [\"*\"],\n \"app\": {} }],",
        ),
        7,
        Some("app"),
        "unknown key (known here: src, dst, ip)",
    );
    check(
        &with_head("\"tests\": [{ \"src\": \"tag:a\",\n\n \"allow\": [] }],"),
        8,
        Some("allow"),
        "unknown key",
    );
    check(
        &with_head("\"autoApprovers\": {\n \"exitNode\": [\"tag:a\"] },"),
        7,
        Some("exitNode"),
        "unknown key",
    );
    // Keys are case-sensitive, as in Tailscale.
    check("{ \"Grants\": [] }", 1, Some("Grants"), "unknown key");
}

#[test]
fn duplicate_keys() {
    check(
        "{\n\"hosts\": {},\n\"hosts\": {}\n}",
        3,
        Some("hosts"),
        "duplicate key",
    );
    check(
        "{ \"hosts\": {\n \"x\": \"10.0.0.1\",\n \"x\": \"10.0.0.2\" } }",
        3,
        Some("x"),
        "duplicate key",
    );
    check(
        &with_head("\"grants\": [{ \"src\": [\"*\"],\n \"src\": [\"*\"] }],"),
        7,
        Some("src"),
        "duplicate key",
    );
}

#[test]
fn malformed_prefixes() {
    check(
        "{ \"hosts\": {\n\n \"x\":\n \"10.1.0.0/33\" } }",
        4,
        Some("x"),
        "prefix length",
    );
    check(
        "{ \"hosts\": {\n \"x\": \"10.1.0.5/24\" } }",
        2,
        Some("x"),
        "did you mean 10.1.0.0/24",
    );
    check(
        "{ \"hosts\": {\n \"x\": \"10.1.0\" } }",
        2,
        Some("x"),
        "not an IP address",
    );
    check(
        "{ \"hosts\": {\n \"10.0.0.1\": \"10.0.0.1\" } }",
        2,
        Some("10.0.0.1"),
        "host name",
    );
    check(
        "{ \"hosts\": {\n \"x\": 10 } }",
        2,
        Some("x"),
        "expected a string, found a number",
    );
    check(
        &with_head(
            "\"grants\": [{ \"src\": [\"*\"],\n \"dst\": [\"fd00::1/129\"], \"ip\": [\"*\"] }],",
        ),
        7,
        Some("dst"),
        "prefix length",
    );
    check(
        &with_head("\"autoApprovers\": { \"routes\": {\n \"10.0.0.0/99\": [\"tag:a\"] } },"),
        7,
        Some("10.0.0.0/99"),
        "not a route",
    );
}

#[test]
fn malformed_ports() {
    for (spec, fragment) in [
        ("tcp:70000", "over 65535"),
        ("tcp:90-80", "ends before it starts"),
        ("sctp:1", "unknown protocol"),
        ("icmp:8", "only tcp and udp have ports"),
        ("tcp:", "is not a port"),
    ] {
        check(
            &with_head(&format!(
                "\"grants\": [{{ \"src\": [\"*\"], \"dst\": [\"*\"], \"ip\": [\n\"*\",\n \"{spec}\"] }}],"
            )),
            8,
            Some("ip"),
            fragment,
        );
    }
    check(
        &with_head("\"grants\": [{ \"src\": [\"*\"], \"dst\": [\"*\"],\n \"ip\": [] }],"),
        7,
        Some("ip"),
        "empty list",
    );
}

#[test]
fn undeclared_tags() {
    check(
        "{ \"groups\": {\n \"group:x\": [\n\"tag:nope\"] } }",
        3,
        Some("group:x"),
        "not declared",
    );
    check(
        &with_head("\"grants\": [{\n \"src\": [\"tag:a\",\n \"tag:c\"], \"dst\": [\"*\"], \"ip\": [\"*\"] }],"),
        8,
        Some("src"),
        "tag \"tag:c\" is not declared in tagOwners",
    );
    check(
        &with_head("\"autoApprovers\": { \"routes\": { \"10.0.0.0/8\": [\n\"tag:z\"] } },"),
        7,
        Some("10.0.0.0/8"),
        "not declared",
    );
    check(
        &with_head("\"tests\": [{ \"src\":\n \"tag:z\" }],"),
        7,
        Some("src"),
        "not declared",
    );
    check(
        &with_head("\"tests\": [{ \"src\": \"tag:a\", \"deny\": [\n \"tag:z:22\"] }],"),
        7,
        Some("deny"),
        "not declared",
    );
    check(
        "{ \"tagOwners\": {\n \"sensor\": [] } }",
        2,
        Some("sensor"),
        "tag:NAME",
    );
}

#[test]
fn unknown_groups_hosts_devices() {
    check(
        &with_head(
            "\"grants\": [{ \"src\": [\"*\"],\n \"dst\": [\"group:nope\"], \"ip\": [\"*\"] }],",
        ),
        7,
        Some("dst"),
        "unknown group",
    );
    check(
        &with_head("\"grants\": [{ \"src\": [\"*\"],\n \"dst\": [\"sitee\"], \"ip\": [\"*\"] }],"),
        7,
        Some("dst"),
        "unknown host or device \"sitee\"",
    );
    check(
        &with_head("\"grants\": [{ \"src\": [\"*\"],\n \"dst\": [\"autogroup:internet\"], \"ip\": [\"*\"] }],"),
        7,
        Some("dst"),
        "is not `*`, a tag",
    );
    check(
        &with_head("\"tests\": [{ \"src\": \"tag:a\", \"accept\": [\n \"dev-2:22\"] }],"),
        7,
        Some("accept"),
        "unknown tag, host or device",
    );
    check(
        "{ \"tagOwners\": { \"tag:a\": [\n \"group:admins\"] } }",
        2,
        Some("tag:a"),
        "not a known group",
    );
}

#[test]
fn group_members() {
    check(
        "{ \"groups\": { \"group:x\": [\n \"group:y\"] } }",
        2,
        Some("group:x"),
        "cannot contain a group",
    );
    check(
        "{ \"hosts\": { \"site\": \"10.0.0.0/8\" }, \"groups\": { \"group:x\": [\n \"site\"] } }",
        2,
        Some("group:x"),
        "is a host",
    );
    check(
        "{ \"groups\": { \"group:x\": [\n \"10.0.0.1\"] } }",
        2,
        Some("group:x"),
        "hosts",
    );
    check(
        "{ \"groups\": {\n \"admins\": [] } }",
        2,
        Some("admins"),
        "group:NAME",
    );
}

#[test]
fn missing_and_mistyped_values() {
    check(
        &with_head("\"grants\": [\n { \"src\": [\"*\"], \"dst\": [\"*\"] }],"),
        7,
        Some("ip"),
        "missing key",
    );
    check(
        &with_head("\"grants\": [{ \"src\": \"tag:a\", \"dst\": [\"*\"], \"ip\": [\"*\"] }],"),
        6,
        Some("src"),
        "expected a list of strings, found a string",
    );
    check(
        &with_head("\"grants\": [{ \"src\": [],\n \"dst\": [\"*\"], \"ip\": [\"*\"] }],"),
        6,
        Some("src"),
        "empty list",
    );
    check(
        &with_head("\"grants\": {},"),
        6,
        Some("grants"),
        "expected a list",
    );
    check("[]", 1, Some("policy"), "expected an object");
    check(
        &with_head("\"tests\": [{\n \"accept\": [] }],"),
        6,
        Some("src"),
        "missing key",
    );
}

#[test]
fn malformed_tests() {
    let t = |entry: &str| {
        with_head(&format!(
            "\"tests\": [{{ \"src\": \"tag:a\",\n {entry} }}],"
        ))
    };
    check(
        &t("\"accept\": [\"tag:b\"]"),
        7,
        Some("accept"),
        "not a port",
    );
    check(
        &t("\"accept\": [\"site\"]"),
        7,
        Some("accept"),
        "not TARGET:PORT",
    );
    check(
        &t("\"accept\": [\"site:*\"]"),
        7,
        Some("accept"),
        "not a port",
    );
    check(
        &t("\"proto\": \"sctp\""),
        7,
        Some("proto"),
        "tcp, udp or icmp",
    );
    check(
        &t("\"deny\": [\"group:g:22\"]"),
        7,
        Some("deny"),
        "one tag, device, host or address",
    );
    check(
        &t("\"deny\": [\"10.1.0.0/24:22\"]"),
        7,
        Some("deny"),
        "not a prefix",
    );
    // Accepted forms, for contrast.
    for ok in [
        "\"accept\": [\"[fd00::1]:22\", \"fd00::1:22\", \"site:22\", \"dev-1:22\", \"10.1.0.1:0\"]",
        "\"proto\": \"icmp\", \"deny\": [\"site:*\", \"tag:b:*\"]",
    ] {
        Policy::parse(&t(ok)).unwrap();
    }
}

#[test]
fn syntax_errors() {
    check(
        "{\n \"hosts\": {\n \"x\": \"10.0.0.1\" \"y\": 1 } }",
        3,
        None,
        "expected `,`",
    );
    check("{\n /* open\n\n", 2, None, "never closed");
    check("{\n \"hosts\": {}\n}\n}", 4, None, "after the end");
    check("{\n\"hosts\": { \"x\": \"a\nb\" } }", 2, None, "line break");
    check(&"[".repeat(100), 1, None, "nested too deeply");
}

#[test]
fn size_is_bounded() {
    let mut text = String::from("{}");
    text.push_str(&" ".repeat(MAX_POLICY_BYTES - 2));
    assert!(
        Policy::parse(&text).is_ok(),
        "exactly the limit is accepted"
    );
    text.push(' ');
    let e = refused(&text);
    assert_eq!(e.line, 0);
    assert!(
        e.to_string().starts_with("the policy is 1048577 bytes"),
        "{e}"
    );
}

#[test]
fn expansion_is_bounded() {
    // 1100 tags in a group used as both source and destination: 1,210,000 pairs.
    let tags: Vec<String> = (0..1100).map(|i| format!("\"tag:t{i}\"")).collect();
    let owners: Vec<String> = tags.iter().map(|t| format!("{t}: []")).collect();
    let text = format!(
        "{{ \"tagOwners\": {{ {} }},\n \"groups\": {{ \"group:all\": [{}] }},\n \"grants\": [\n\
         {{ \"src\": [\"group:all\"], \"dst\": [\"group:all\"], \"ip\": [\"*\"] }}] }}",
        owners.join(", "),
        tags.join(", ")
    );
    let e = refused(&text);
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("the limit is 1048576"), "{e}");
    // 1000 × 1000 × 1 range fits.
    let fits = text
        .replace("\"ip\": [\"*\"]", "\"ip\": [\"icmp\"]")
        .replace(&tags[1000..].join(", "), "\"tag:t0\"");
    let stats = Policy::parse(&fits).unwrap().compile().stats();
    assert_eq!((stats.pairs, stats.port_sets), (1_000_000, 1));
}

#[test]
fn group_references_are_bounded() {
    // A group of 1000 tags named over and over in one list: the 1049th reference passes
    // 1,048,576 members in all, though the set it builds stays at 1000.
    let tags: Vec<String> = (0..1000).map(|i| format!("\"tag:t{i}\"")).collect();
    let owners: Vec<String> = tags.iter().map(|t| format!("{t}: []")).collect();
    let mut text = format!(
        "{{ \"tagOwners\": {{ {} }},\n \"groups\": {{ \"group:all\": [{}] }},\n\
         \"grants\": [{{ \"dst\": [\"*\"], \"ip\": [\"icmp\"], \"src\": [\n",
        owners.join(", "),
        tags.join(", ")
    );
    text.push_str(&"\"group:all\",\n".repeat(1100));
    text.push_str("] }] }");
    check(&text, 3 + 1049, Some("src"), "the limit is 1048576");
    // Up to the limit it parses.
    let fits = text.replacen(
        &"\"group:all\",\n".repeat(1100),
        &"\"group:all\",\n".repeat(1048),
        1,
    );
    Policy::parse(&fits).unwrap();
}
