//! Key text as users and the UAPI give it: base64 (wg(8), files, `wg pubkey` input through
//! [`PrivateKey::from_base64_input`]) and hex (UAPI), for every key type.
//!
//! Checked: no panic; every type accepts exactly the same texts; a key that decodes encodes
//! back to the same text (base64 is canonical; hex comes back in lowercase); the input reader
//! takes exactly 44 base64 characters then only white space or NULs, and agrees with
//! `from_base64` on them; hex and base64 of one key decode to the same bytes.
#![no_main]

use ferrowg_keys::key::{Key, PresharedKey, PrivateKey, PublicKey, KEY_LEN_BASE64};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let b = Key::from_base64(text);
        assert_eq!(PrivateKey::from_base64(text).is_ok(), b.is_ok());
        assert_eq!(PresharedKey::from_base64(text).is_ok(), b.is_ok());
        assert_eq!(
            PublicKey::from_base64(text).map(|k| *k.as_bytes()).ok(),
            b.as_ref().ok().map(|k| *k.as_bytes())
        );
        if let Ok(k) = &b {
            assert_eq!(k.to_base64(), text);
            let hex = k.to_hex();
            assert_eq!(Key::from_hex(&hex).as_ref(), Ok(k));
        }
        let h = Key::from_hex(text);
        assert_eq!(PrivateKey::from_hex(text).is_ok(), h.is_ok());
        assert_eq!(PresharedKey::from_hex(text).is_ok(), h.is_ok());
        assert_eq!(
            PublicKey::from_hex(text).map(|k| *k.as_bytes()).ok(),
            h.as_ref().ok().map(|k| *k.as_bytes())
        );
        if let Ok(k) = &h {
            assert_eq!(k.to_hex(), text.to_ascii_lowercase());
            assert_eq!(Key::from_base64(&k.to_base64()).as_ref(), Ok(k));
        }
    }
    match PrivateKey::from_base64_input(data) {
        Ok(k) => {
            let (head, rest) = data.split_at(KEY_LEN_BASE64);
            let head = std::str::from_utf8(head).expect("base64 is ASCII");
            assert_eq!(PrivateKey::from_base64(head).as_ref(), Ok(&k));
            assert!(rest
                .iter()
                .all(|&c| c == 0 || b" \t\n\x0b\x0c\r".contains(&c)));
        }
        Err(_) => {
            if data.len() >= KEY_LEN_BASE64 {
                let (head, rest) = data.split_at(KEY_LEN_BASE64);
                let clean = rest
                    .iter()
                    .all(|&c| c == 0 || b" \t\n\x0b\x0c\r".contains(&c));
                let ok = std::str::from_utf8(head).is_ok_and(|h| Key::from_base64(h).is_ok());
                assert!(!(clean && ok), "input reader refused a valid key");
            }
        }
    }
});
