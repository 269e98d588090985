//! Hub enrolment tokens (`fwg1.` + base64url JSON) as a device's operator pastes them into
//! `ferrowg enroll TOKEN`: [`ferrowg_hub::token::parse`].
//!
//! Checked: no panic; what parses encodes to a token that parses again to the same token
//! (stable encoding); `Debug` of a parsed token never shows its secret; an error message never
//! repeats the input's secret part.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ferrowg_hub::token::parse(text) {
        Ok(token) => {
            let encoded = token.encode();
            let again = ferrowg_hub::token::parse(&encoded)
                .unwrap_or_else(|e| panic!("encoded token does not parse: {e}"));
            assert_eq!(again.encode(), encoded, "encoding is not stable");
            assert_eq!(again.api(), token.api());
            assert_eq!(again.pin(), token.pin());
            assert_eq!(again.hub_key(), token.hub_key());
            let secret = token.secret().to_string();
            let hex = secret.split_once('.').map_or("", |(_, s)| s);
            let debug = format!("{token:?}");
            assert!(!debug.contains(hex), "Debug shows the secret: {debug}");
        }
        Err(e) => {
            // Errors are fixed texts: they never quote the input.
            let shown = e.to_string();
            assert!(shown.starts_with("enrolment token: "), "{shown}");
            assert!(shown.len() < 200, "{shown}");
        }
    }
});
