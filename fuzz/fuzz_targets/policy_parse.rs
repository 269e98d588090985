//! Hub access policies (HuJSON, a strict subset of Tailscale's policy file) as an operator
//! gives them to `ferrowg hub policy set`/`test`: [`Policy::parse`], then [`Policy::compile`],
//! [`Compiled::allows`], [`Policy::run_tests`] and [`Policy::auto_approves`] on what parsed.
//!
//! Checked: no panic; an error names a line of the text (1 to its line count); a policy that
//! parsed compiles, and the compiled matrix answers exactly as the direct reading of the grants
//! (`Policy::allows_reference`) for subjects made from the policy's own tags, devices and hosts
//! and a few fixed addresses, on several protocols and ports.
#![no_main]

use std::net::IpAddr;

use ferrowg_policy::{Policy, Prefix, Proto, Subject, TestEnv};
use libfuzzer_sys::fuzz_target;

/// The most tags, devices and hosts taken from a policy to make subjects.
const TAKE: usize = 4;

const PROBES: [(Proto, u16); 7] = [
    (Proto::Tcp, 0),
    (Proto::Tcp, 443),
    (Proto::Udp, 53),
    (Proto::Udp, 65535),
    (Proto::Icmp, 0),
    (Proto::Other(47), 0),
    (Proto::Other(6), 22),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = match Policy::parse(text) {
        Ok(p) => p,
        Err(e) => {
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&e.line),
                "line {} outside 1..={lines}: {e}",
                e.line
            );
            let _ = e.to_string();
            return;
        }
    };
    let compiled = policy.compile();
    let _ = compiled.stats();

    let tags: Vec<&str> = policy.tags().take(TAKE).collect();
    let devices: Vec<&str> = policy.devices().take(TAKE).collect();
    let mut addrs: Vec<IpAddr> = ["10.64.0.1", "192.168.1.1", "fd00::1", "0.0.0.0", "::"]
        .iter()
        .map(|a| a.parse().expect("a fixed address"))
        .collect();
    addrs.extend(policy.hosts().take(TAKE).map(|(_, p)| p.addr()));

    let mut subjects: Vec<Subject> = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let tag = tags.get(i % tags.len().max(1));
        let device = devices.get(i % devices.len().max(1)).copied();
        subjects.push(Subject {
            device: None,
            tags: &[],
            addr: *addr,
        });
        subjects.push(Subject {
            device,
            tags: tag.map(std::slice::from_ref).unwrap_or(&[]),
            addr: *addr,
        });
    }
    for s in &subjects {
        for d in &subjects {
            for (proto, port) in PROBES {
                assert_eq!(
                    compiled.allows(s, d, proto, port),
                    policy.allows_reference(s, d, proto, port),
                    "{s:?} -> {d:?} {proto:?} {port}"
                );
            }
        }
    }

    let _ = policy.run_tests(&TestEnv::new());
    let mut env = TestEnv::new();
    for (i, t) in tags.iter().enumerate() {
        env.tag(t, addrs[i % addrs.len()]);
    }
    for (i, d) in devices.iter().enumerate() {
        env.device(d, addrs[(i + 1) % addrs.len()], &tags);
    }
    let _ = policy.run_tests(&env);
    for (_, p) in policy.hosts().take(TAKE) {
        let _ = policy.auto_approves(p, &tags);
        if let Some(wider) = Prefix::new(p.addr(), p.prefix_len().saturating_sub(1)) {
            let _ = policy.auto_approves(wider, &tags);
        }
    }
});
