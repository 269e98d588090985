//! The control socket's client side: a `get=1` reply and a `set=1` status from a daemon, read
//! as `ferrowg show`/`wg` read them ([`read_get_response`], [`parse_get_response`],
//! [`parse_set_response`]).
//!
//! Checked: no panic; the bounded reader agrees with the unbounded parser whenever the reply
//! fits the limits; a reply that parsed, written again by [`write_get_response`] (the daemon's
//! writer) and parsed, gives the same state; a status that parsed as success is exactly
//! `errno=0` (leading zeros allowed).
#![no_main]

use ferrowg_conf::uapi::reply::{
    parse_get_response, parse_set_response, read_get_response, write_get_response, GetError,
};
use ferrowg_conf::uapi::Limits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = parse_get_response(data);
    let limits = Limits {
        max_line: 256,
        max_total: 4096,
    };
    let bounded = read_get_response(&mut &data[..], &limits);
    let fits =
        data.len() <= limits.max_total && data.split(|&b| b == b'\n').all(|l| l.len() <= 256);
    if fits {
        assert_eq!(bounded, full);
    } else {
        assert!(bounded.is_ok() == full.is_ok() || bounded == Err(GetError::Truncated));
    }
    if let Ok(state) = &full {
        let text = write_get_response(state);
        let again = parse_get_response(text.as_bytes());
        assert_eq!(again.as_ref(), Ok(state), "written as {text:?}");
    }
    if parse_set_response(data).is_ok() {
        let line = data
            .strip_suffix(b"\n\n")
            .expect("status ends with an empty line");
        let n = line.strip_prefix(b"errno=").expect("errno=");
        let n = n.strip_prefix(b"-").unwrap_or(n);
        assert!(!n.is_empty() && n.iter().all(|&c| c == b'0'), "{line:?}");
    }
});
