//! Endpoints, allowed IPs and the scalar values of wg's grammar, in each dialect that reads
//! them: configuration files and `wg set` ([`AllowedIp::parse_config`],
//! [`AllowedIp::parse_config_list`], [`Endpoint::parse_config`], [`HostEndpoint::parse`] (also
//! ferrowg's UAPI extension), [`grammar::fwmark`],
//! [`grammar::keepalive`]) and the UAPI ([`AllowedIp::parse_uapi`], [`parse_uapi_endpoint`],
//! [`grammar::decimal`]).
//!
//! Checked: no panic; what parses prints back (wg(8)'s `inet_ntop` form for the file dialect,
//! Go's form for the UAPI) and parses to the same value; masks stay within the family; a
//! decimal is what `u64` prints, up to leading zeros; `strip_wg_spaces` leaves no wg space.
#![no_main]

use ferrowg_conf::addr::{parse_uapi_endpoint, AllowedIp, Endpoint, HostEndpoint, Ntop};
use ferrowg_conf::addr::MAX_HOST_NAME;
use ferrowg_conf::grammar;
use libfuzzer_sys::fuzz_target;

fn max_cidr(a: &AllowedIp) -> u8 {
    if a.addr.is_ipv4() {
        32
    } else {
        128
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(a) = AllowedIp::parse_config(text) {
        assert!(a.cidr <= max_cidr(&a));
        let shown = a.ntop().to_string();
        assert_eq!(AllowedIp::parse_config(&shown), Some(a), "{shown}");
        let m = a.masked();
        assert_eq!(m.masked(), m);
        assert_eq!(m.cidr, a.cidr);
    }
    if let Ok(list) = AllowedIp::parse_config_list(text) {
        let shown: Vec<String> = list.iter().map(|a| a.ntop().to_string()).collect();
        assert_eq!(
            AllowedIp::parse_config_list(&shown.join(",")).as_deref(),
            Ok(&list[..])
        );
    }
    if let Some(a) = AllowedIp::parse_uapi(text) {
        assert!(a.cidr <= max_cidr(&a));
        // wireguard-go writes Go's form and wg(8) writes inet_ntop's: the daemon reads both.
        assert_eq!(AllowedIp::parse_uapi(&a.to_string()), Some(a));
        assert_eq!(AllowedIp::parse_uapi(&a.ntop().to_string()), Some(a));
    }
    if let Some(e) = Endpoint::parse_config(text) {
        let shown = e.to_string();
        assert_eq!(Endpoint::parse_config(&shown).as_ref(), Some(&e), "{shown}");
    }
    if let Some(h) = HostEndpoint::parse(text) {
        assert!(!h.host().is_empty() && h.host().len() <= MAX_HOST_NAME);
        let shown = h.to_string();
        assert_eq!(HostEndpoint::parse(&shown).as_ref(), Some(&h), "{shown}");
        assert_eq!(HostEndpoint::new(h.host(), h.port()).as_ref(), Some(&h));
        assert_eq!(Endpoint::parse_config(text).and_then(|e| e.host_endpoint()), Some(h));
    }
    if let Some(sa) = parse_uapi_endpoint(text) {
        assert_eq!(parse_uapi_endpoint(&Ntop(sa).to_string()), Some(sa));
        assert_eq!(parse_uapi_endpoint(&sa.to_string()), Some(sa));
        assert_eq!(
            Endpoint::parse_config(&Ntop(sa).to_string()),
            Some(Endpoint::Addr(sa))
        );
    }
    if let Some(n) = grammar::decimal::<u64>(text) {
        let digits = text.trim_start_matches('0');
        assert_eq!(if digits.is_empty() { "0" } else { digits }, n.to_string());
        assert_eq!(grammar::decimal::<u32>(text), u32::try_from(n).ok());
        assert_eq!(grammar::port(text), u16::try_from(n).ok());
    }
    if let Some(m) = grammar::fwmark(text) {
        assert_eq!(grammar::fwmark(&format!("0x{m:x}")), Some(m));
        assert_eq!(grammar::fwmark(&m.to_string()), Some(m));
    }
    if let Some(k) = grammar::keepalive(text) {
        assert_eq!(grammar::keepalive(&k.to_string()), Some(k));
    }
    let stripped = grammar::strip_wg_spaces(text);
    assert!(!stripped.bytes().any(grammar::is_wg_space));
    assert_eq!(grammar::strip_wg_spaces(&stripped), stripped);
});
