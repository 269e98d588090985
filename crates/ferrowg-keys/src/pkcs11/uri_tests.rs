//! Tests of RFC 7512 URI parsing and printing (`uri.rs`).

use super::*;

fn p(s: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn e(s: &str) -> UriError {
    Pkcs11Uri::parse(s).unwrap_err()
}

#[test]
fn rfc7512_examples() {
    // RFC 7512 §3, the examples that name keys and modules.
    let u = p("pkcs11:object=my-pubkey;type=public");
    assert_eq!(u.object.as_deref(), Some("my-pubkey"));
    assert_eq!(u.object_type, Some(ObjectType::Public));
    let u = p("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");
    assert_eq!(u.pin, Some(PinSpec::Source("/etc/token".into())));
    let u = p("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
               manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
               type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=\
               ?pin-source=file:/etc/token_pin");
    assert_eq!(u.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
    assert_eq!(u.manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(
        u.id,
        Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91])
    );
    assert_eq!(u.serial.as_deref(), Some(""));
    let u = p("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
    assert_eq!(u.module_name.as_deref(), Some("mypkcs11"));
    let u = p("pkcs11:object=my-sign-key;type=private\
               ?module-path=/mnt/libmypkcs11.so.1");
    assert_eq!(u.module_path, Some(PathBuf::from("/mnt/libmypkcs11.so.1")));
    let u = p(
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.\
               ?pin-value=the-pin",
    );
    assert!(matches!(&u.pin, Some(PinSpec::Value(v)) if v.as_str() == "the-pin"));
    let u = p("pkcs11:slot-description=Sun%20Metaslot");
    assert_eq!(u.slot_description.as_deref(), Some("Sun Metaslot"));
    let u = p("pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;\
               library-description=Soft%20Token%20Library;library-version=1.23");
    assert_eq!(u.library_version, Some((1, 23)));
    let u = p("pkcs11:token=My%20token%25%20created%20by%20Joe;\
               library-version=3;id=%69%95%3E%5C%F4%BD%EC%91;object=my-certificate;type=cert");
    assert_eq!(u.token.as_deref(), Some("My token% created by Joe"));
    assert_eq!(u.library_version, Some((3, 0)));
    let u = p(
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=public",
    );
    assert_eq!(u.token.as_deref(), Some("A name with a substring %;"));
    let u = p("pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=public");
    assert_eq!(
        u.token.as_deref(),
        Some("Name with a small A with acute: á")
    );
    // RFC 7512's vendor example uses unprefixed names; we accept only `x-` ones.
    assert!(matches!(
        e("pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a"),
        UriError::UnknownAttribute { .. }
    ));
}

#[test]
fn empty_and_scheme() {
    assert_eq!(p("pkcs11:"), Pkcs11Uri::default());
    assert_eq!(p("PKCS11:object=a").object.as_deref(), Some("a"));
    assert_eq!(e("pkcs1:object=a"), UriError::Scheme);
    assert_eq!(e(""), UriError::Scheme);
    assert_eq!(e("/etc/wireguard/wg0.key"), UriError::Scheme);
    assert!(is_pkcs11_uri("Pkcs11:x"));
    assert!(!is_pkcs11_uri("pkcs1"));
}

#[test]
fn errors_name_the_attribute() {
    assert_eq!(e("pkcs11:token=a;token=b"), UriError::Repeated("token"));
    assert_eq!(
        e("pkcs11:tokn=a"),
        UriError::UnknownAttribute {
            name: "tokn".into(),
            part: "path"
        }
    );
    assert_eq!(
        e("pkcs11:object=a?token=b"),
        UriError::UnknownAttribute {
            name: "token".into(),
            part: "query"
        }
    );
    assert_eq!(e("pkcs11:object"), UriError::NoEquals("object".into()));
    assert_eq!(e("pkcs11:object=a%2"), UriError::BadPercent("object"));
    assert_eq!(e("pkcs11:object=a%zz"), UriError::BadPercent("object"));
    assert_eq!(
        e("pkcs11:object=a b"),
        UriError::MustEncode {
            attr: "object",
            ch: ' ',
            code: 0x20
        }
    );
    assert_eq!(
        e("pkcs11:object=a/b"),
        UriError::MustEncode {
            attr: "object",
            ch: '/',
            code: b'/'
        }
    );
    assert_eq!(e("pkcs11:object=%C3"), UriError::NotUtf8("object"));
    assert_eq!(
        e("pkcs11:object=a?pin-value=1&pin-source=/x"),
        UriError::TwoPins
    );
    for (text, attr) in [
        ("pkcs11:slot-id=x", "slot-id"),
        ("pkcs11:library-version=1.2.3", "library-version"),
        ("pkcs11:type=secret", "type"),
        ("pkcs11:?pin-source=|/bin/echo", "pin-source"),
        ("pkcs11:?pin-source=https://x/pin", "pin-source"),
        ("pkcs11:?module-name=/usr/lib/x.so", "module-name"),
    ] {
        let got = e(text);
        assert!(
            matches!(&got, UriError::InvalidValue { attr: a, .. } if *a == attr),
            "{text}: {got:?}"
        );
    }
}

#[test]
fn vendor_attributes_are_ignored() {
    let u = p("pkcs11:x-foo=1;object=k?x-bar=2&module-path=/m.so");
    assert_eq!(u.object.as_deref(), Some("k"));
    assert_eq!(u.module_path, Some(PathBuf::from("/m.so")));
}

#[test]
fn pin_sources() {
    for (text, path) in [
        ("file:/etc/pin", "/etc/pin"),
        ("file:///etc/pin", "/etc/pin"),
        ("file://localhost/etc/pin", "/etc/pin"),
        ("/etc/pin", "/etc/pin"),
        ("pin.txt", "pin.txt"),
    ] {
        let u = p(&format!("pkcs11:object=k?pin-source={text}"));
        assert_eq!(u.pin, Some(PinSpec::Source(path.into())), "{text}");
    }
    // Found by fuzzing: a path that starts with `//` prints and reads back unchanged.
    for text in ["//1'", "/etc/pin", "//localhost/x", "pin.txt"] {
        let u = p(&format!("pkcs11:object=k?pin-source={text}"));
        let again = p(&u.to_uri_string(true));
        assert_eq!(again.pin, Some(PinSpec::Source(text.into())), "{text}");
    }
    let mut u = p("pkcs11:object=k?pin-source=pin.txt&module-path=lib/m.so");
    u.absolutize(Path::new("/srv"));
    assert_eq!(u.pin, Some(PinSpec::Source("/srv/pin.txt".into())));
    assert_eq!(u.module_path, Some(PathBuf::from("/srv/lib/m.so")));
}

#[test]
fn round_trips_and_hides_the_pin() {
    let text = "pkcs11:token=wg%20test;object=wg0%3Bx;id=%01%FF;type=private\
                ?pin-value=12%2634&module-path=/usr/lib/softhsm/libsofthsm2.so";
    let u = p(text);
    assert!(u.has_pin_value());
    let full = u.to_uri_string(true);
    assert_eq!(p(&full), u);
    assert!(full.contains("pin-value=12%2634"), "{full}");
    let shown = u.to_string();
    assert!(!shown.contains("pin"), "{shown}");
    assert!(!format!("{u:?}").contains("12"), "{u:?}");
    assert_eq!(
        shown,
        "pkcs11:token=wg%20test;object=wg0%3Bx;id=%01%FF;type=private\
         ?module-path=/usr/lib/softhsm/libsofthsm2.so"
    );
    let u = p("pkcs11:object=k?pin-source=file:/etc/p&module-name=softhsm2");
    assert_eq!(p(&u.to_string()), u);
    assert_eq!(u.describe(), "object \"k\"");
}

#[test]
fn the_pin_is_written_into_wiped_memory_sized_up_front() {
    // Every byte of this PIN is percent-encoded: the longest text a PIN can make.
    let u = p("pkcs11:object=k?pin-value=%26%25%3B%20%23&module-path=/m.so");
    let secret = u.to_uri_secret();
    assert_eq!(secret.as_str(), u.to_uri_string(true));
    assert!(
        secret.contains("pin-value=%26%25%3B%20%23"),
        "{}",
        secret.as_str()
    );
    assert_eq!(p(&secret), u);
    // The buffer was never reallocated (which would leave a copy behind): its capacity
    // is the bound computed before writing, not a grown one.
    let bound = "pkcs11:object=k".len() + (2 + 9 + 3 * 5) + (2 + 11 + 3 * 5);
    assert_eq!(secret.capacity(), bound);
}

#[test]
fn errors_never_carry_the_pin() {
    for bad in [
        "pkcs11:object=k?pin-value=sec%ret",
        "pkcs11:object=k?pin-value=secret&pin-value=secret",
        "pkcs11:object=k?pin-value=secret&pin-source=/x",
        "pkcs11:object=k?pin-value=sec ret",
    ] {
        let msg = e(bad).to_string();
        assert!(!msg.contains("secret") && !msg.contains("sec"), "{msg}");
    }
}
