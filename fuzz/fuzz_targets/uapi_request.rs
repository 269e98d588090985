//! The control socket's server side: [`read_request`] on arbitrary bytes, as a local client
//! would send them, request after request on one connection, and [`parse_set`] on the same
//! bytes as a body.
//!
//! Checked: no panic; limits hold (a request that parsed stayed within them); an accepted
//! `set=1` request, written back by [`SetRequest::to_uapi`] (as wg(8) writes it), reads again
//! to the same request, through both readers; and errors always name an errno except for an
//! invalid operation.
#![no_main]

use ferrowg_conf::uapi::request::{parse_set, read_request, Request, RequestError};
use ferrowg_conf::uapi::{Limits, SetRequest};
use libfuzzer_sys::fuzz_target;

fn round_trip(req: &SetRequest) {
    let text = req.to_uapi();
    let limits = Limits::default();
    match read_request(&mut text.as_bytes(), &limits) {
        Ok(Some(Request::Set(again))) => assert_eq!(&again, req, "to_uapi: {text:?}"),
        other => panic!("to_uapi output {text:?} read back as {other:?}"),
    }
    let body = text.strip_prefix("set=1\n").expect("set=1 first");
    assert_eq!(parse_set(body.as_bytes(), &limits).as_ref(), Ok(req));
}

fuzz_target!(|data: &[u8]| {
    // The first two bytes pick small limits, so that the bounds are exercised too.
    let (limits, body) = match data {
        [a, b, rest @ ..] if a & 0x80 != 0 => (
            Limits {
                max_line: usize::from(*a & 0x7f) + 1,
                max_total: usize::from(*b) * 8 + 1,
            },
            rest,
        ),
        _ => (Limits::default(), data),
    };
    let mut reader = body;
    for _ in 0..64 {
        let before = reader.len();
        match read_request(&mut reader, &limits) {
            Ok(None) => break,
            Ok(Some(Request::Get)) => {}
            Ok(Some(Request::Set(req))) => {
                let consumed = before - reader.len();
                // Lines are bounded by max_line each and by max_total together.
                assert!(consumed <= "set=1\n".len() + limits.max_total + limits.max_line + 2);
                round_trip(&req);
            }
            Err(RequestError::InvalidOperation(_)) => break,
            Err(e) => assert!(e.errno().is_some(), "{e:?}"),
        }
        if reader.len() == before {
            break;
        }
    }
    if let Ok(req) = parse_set(body, &limits) {
        round_trip(&req);
    }
});
