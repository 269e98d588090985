//! PKCS#11 URIs (RFC 7512) as a local user gives them (`PrivateKey = pkcs11:…`, the UAPI's
//! `ferrowg_private_key_uri=`): [`Pkcs11Uri::parse`].
//!
//! Checked: no panic; what parses prints ([`Pkcs11Uri::to_uri_string`] with the PIN) and
//! parses again to the same value; the form without the PIN (`Display`) parses to the same
//! value less its `pin-value`; neither printed form, `Debug`, nor any error message repeats the PIN.
#![no_main]

use ferrowg_keys::pkcs11::uri::PinSpec;
use ferrowg_keys::pkcs11::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let uri = match Pkcs11Uri::parse(text) {
        Ok(u) => u,
        Err(e) => {
            // An error never carries a pin-value's value. Checked for PINs of 6+ digits, which
            // cannot appear by accident in the fixed parts of a message (the value's
            // characters do not matter to whether it flows into an error).
            if let Some(pin) = text.split("pin-value=").nth(1) {
                let pin = pin.split(['&', '?', ';']).next().unwrap_or("");
                if pin.len() >= 6 && pin.bytes().all(|c| c.is_ascii_digit()) {
                    let shown = e.to_string();
                    let debug = format!("{e:?}");
                    // Unless the rest of the URI holds the same digits (errors quote other
                    // attributes, escaped as Debug escapes them).
                    let rest = text.replacen(&format!("pin-value={pin}"), "pin-value=", 1);
                    let named = rest.contains(pin) || format!("{rest:?}").contains(pin);
                    assert!(
                        named || (!shown.contains(pin) && !debug.contains(pin)),
                        "error repeats the PIN: {shown}"
                    );
                }
            }
            return;
        }
    };
    let printed = uri.to_uri_string(true);
    let again = Pkcs11Uri::parse(&printed)
        .unwrap_or_else(|e| panic!("printed {printed:?} does not parse: {e}"));
    assert_eq!(again, uri, "printed as {printed:?}");
    assert_eq!(again.to_uri_string(true), printed, "printing is not stable");

    let public = uri.to_string();
    let mut want = uri.clone();
    // Display and Debug drop the PIN: the Display form parses to the URI without its
    // `pin-value` (checked structurally: a value of another attribute may well contain the
    // text "pin-value" or the PIN's characters), and Debug is Display in a wrapper.
    assert_eq!(format!("{uri:?}"), format!("Pkcs11Uri({public})"));
    if let Some(PinSpec::Value(_)) = &uri.pin {
        want.pin = None;
    }
    let shown = Pkcs11Uri::parse(&public)
        .unwrap_or_else(|e| panic!("Display form {public:?} does not parse: {e}"));
    assert_eq!(shown, want);
});
