//! Configuration files as `wg setconf`/`addconf`/`syncconf` and `wg-quick` read them
//! ([`parse`] in both dialects), and `wg-quick strip` ([`strip`]).
//!
//! Checked: no panic; a file that parsed, printed back ([`Config::to_wg_conf`] for the wg
//! dialect, [`Config::to_quick_conf`] for wg-quick), parses to the same configuration; the wg
//! dialect accepts nothing the wg-quick dialect refuses; `strip` succeeds exactly when the
//! wg-quick parse does, and its output is a wg file whose configuration is the wg-quick one
//! without the wg-quick keys.
#![no_main]

use ferrowg_conf::config::{parse, strip, Config, Dialect, QuickInterface};
use libfuzzer_sys::fuzz_target;

fn reparse(text: &str, dialect: Dialect, want: &Config) {
    match parse("again", text.as_bytes(), dialect) {
        Ok(c) => assert_eq!(&c, want, "printed as {text:?}"),
        Err(e) => panic!("printed {text:?} does not parse: {e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let wg = parse("fuzz.conf", data, Dialect::Wg);
    let quick = parse("fuzz.conf", data, Dialect::WgQuick);
    if let Ok(c) = &wg {
        assert_eq!(c.interface.quick, QuickInterface::default());
        reparse(&c.to_wg_conf(), Dialect::Wg, c);
        assert!(quick.is_ok(), "wg accepts what wg-quick refuses");
    }
    if let Ok(c) = &quick {
        reparse(&c.to_quick_conf(), Dialect::WgQuick, c);
    }
    match strip("fuzz.conf", data) {
        Ok(out) => {
            let q = quick
                .as_ref()
                .expect("strip accepted what wg-quick refuses");
            let mut want = q.clone();
            want.interface.quick = QuickInterface::default();
            match parse("stripped", &out, Dialect::Wg) {
                Ok(c) => assert_eq!(c, want, "stripped to {:?}", String::from_utf8_lossy(&out)),
                Err(e) => panic!("stripped file does not parse: {e}"),
            }
        }
        Err(_) => assert!(quick.is_err(), "strip refused what wg-quick accepts"),
    }
});
