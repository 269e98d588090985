//! Key management in a token: generating X25519 key pairs (`ferrowg genkey --pkcs11`),
//! importing existing keys (`ferrowg key import`), reading back how a key is protected
//! (`ferrowg key info`) and deleting keys.
//!
//! A generated private key is `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`, not
//! `CKA_EXTRACTABLE`, and may only derive (`CKA_DERIVE`; no sign, decrypt or unwrap). Its
//! public key is computed by the token (X25519 with the base point) and checked against the
//! public object's `CKA_EC_POINT`.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use zeroize::Zeroize;

use super::token::{
    connect, login, object_template, open_session, public_key, read_pin, rv_text, token_err,
    wanted_object, Access, FoundToken, X25519_NAME, X25519_OID,
};
use super::{Pkcs11Error, Pkcs11Uri};

/// How a token spells X25519 key generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X25519Mechanism {
    /// `CKM_EC_MONTGOMERY_KEY_PAIR_GEN`, `CKK_EC_MONTGOMERY` (PKCS#11 3.0).
    Montgomery,
    /// `CKM_EC_EDWARDS_KEY_PAIR_GEN` with curve25519 parameters (SoftHSM 2.6).
    Edwards,
}

/// Picks the generation mechanism from a token's mechanism list (Montgomery preferred).
pub fn choose_mechanism(mechs: &[MechanismType]) -> Option<X25519Mechanism> {
    if mechs.contains(&MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN) {
        Some(X25519Mechanism::Montgomery)
    } else if mechs.contains(&MechanismType::ECC_EDWARDS_KEY_PAIR_GEN) {
        Some(X25519Mechanism::Edwards)
    } else {
        None
    }
}

/// The attributes of a WireGuard private key in a token: stored, PIN-protected, sensitive,
/// never extractable, and usable to derive only (no signing, decryption or unwrapping).
fn protected_private_key() -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Derive(true),
        Attribute::Sign(false),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
    ]
}

/// A read-write session on the URI's token, logged in when the URI gives a PIN; also says
/// whether it did.
fn open_rw_logged_in(uri: &Pkcs11Uri) -> Result<(FoundToken, Session, bool), Pkcs11Error> {
    let (t, session) = open_session(uri, Access::Manage)?;
    let pin = read_pin(uri)?;
    login(&session, pin.as_ref(), &t.label)?;
    Ok((t, session, pin.is_some()))
}

/// A read-write logged-in session on the URI's token, for creating objects.
fn rw_session(uri: &Pkcs11Uri) -> Result<(FoundToken, Session, bool), Pkcs11Error> {
    let (t, session, has_pin) = open_rw_logged_in(uri)?;
    let existing = session
        .find_objects(&object_template(uri, None))
        .map_err(token_err(&t.label, "C_FindObjects"))?;
    if !existing.is_empty() {
        return Err(Pkcs11Error::Exists {
            token: t.label.clone(),
            wanted: wanted_object(uri),
        });
    }
    Ok((t, session, has_pin))
}

/// The attributes both halves of a new key carry: label and id (a random 8-byte id when the
/// URI gives none, so tools can pair the halves).
fn naming(uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut t = Vec::new();
    if let Some(o) = &uri.object {
        t.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    let id = uri.id.clone().unwrap_or_else(|| {
        use rand_core::RngCore;
        let mut id = vec![0u8; 8];
        rand_core::OsRng.fill_bytes(&mut id);
        id
    });
    t.push(Attribute::Id(id));
    t
}

/// `ferrowg genkey --pkcs11`: generates a non-extractable, sensitive X25519 key pair on the
/// token under the URI's label/id (which must be free) and returns its public key.
pub fn generate(uri: &Pkcs11Uri) -> Result<[u8; 32], Pkcs11Error> {
    let (t, session, _) = rw_session(uri)?;
    let mechs = t
        .ctx
        .get_mechanism_list(t.slot)
        .map_err(token_err(&t.label, "C_GetMechanismList"))?;
    let Some(kind) = choose_mechanism(&mechs) else {
        return Err(Pkcs11Error::NoMechanism { token: t.label });
    };
    let names = naming(uri);
    // Both parameter spellings exist in the wild: try the usual one for the mechanism first.
    let (mechanism, key_type, params) = match kind {
        X25519Mechanism::Montgomery => (
            Mechanism::EccMontgomeryKeyPairGen,
            Some(KeyType::EC_MONTGOMERY),
            [X25519_OID.to_vec(), X25519_NAME.to_vec()],
        ),
        X25519Mechanism::Edwards => (
            Mechanism::EccEdwardsKeyPairGen,
            None,
            [X25519_NAME.to_vec(), X25519_OID.to_vec()],
        ),
    };
    let mut last = None;
    for p in params {
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::EcParams(p),
        ];
        // Derive only: no signing, decryption or unwrapping with the WireGuard key.
        let mut private = protected_private_key();
        if let Some(k) = key_type {
            public.push(Attribute::KeyType(k));
            private.push(Attribute::KeyType(k));
        }
        public.extend(names.iter().cloned());
        private.extend(names.iter().cloned());
        match session.generate_key_pair(&mechanism, &public, &private) {
            Ok((pubh, privh)) => return finish_generated(&session, &t.label, pubh, privh),
            Err(e) => last = Some(e),
        }
    }
    let e = last.map(|e| rv_text(&e)).unwrap_or_default();
    Err(Pkcs11Error::Token {
        token: t.label,
        op: "C_GenerateKeyPair",
        rv: e,
    })
}

/// Computes the new key's public key with the token and checks it against `CKA_EC_POINT`.
fn finish_generated(
    session: &Session,
    token: &str,
    pubh: ObjectHandle,
    privh: ObjectHandle,
) -> Result<[u8; 32], Pkcs11Error> {
    let result = public_key(session, privh, token).and_then(|pk| match ec_point(session, pubh) {
        Some(point) if point != pk => Err(Pkcs11Error::Token {
            token: token.to_owned(),
            op: "key generation",
            rv: "CKA_EC_POINT differs from X25519(key, 9)".into(),
        }),
        _ => Ok(pk),
    });
    if result.is_err() {
        let _ = session.destroy_object(privh);
        let _ = session.destroy_object(pubh);
    }
    result
}

/// The raw 32-byte u-coordinate in a public key's `CKA_EC_POINT` (raw or DER OCTET STRING).
fn ec_point(session: &Session, pubh: ObjectHandle) -> Option<[u8; 32]> {
    let attrs = session
        .get_attributes(pubh, &[AttributeType::EcPoint])
        .ok()?;
    attrs.into_iter().find_map(|a| match a {
        Attribute::EcPoint(p) => match p.as_slice() {
            [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest.try_into().ok(),
            raw if raw.len() == 32 => raw.try_into().ok(),
            _ => None,
        },
        _ => None,
    })
}

/// Imports an existing X25519 private key (e.g. a `wg genkey` key) into the token as a
/// sensitive, non-extractable object. Returns its public key as the token computes it.
pub fn import(uri: &Pkcs11Uri, private: &[u8; 32]) -> Result<[u8; 32], Pkcs11Error> {
    let (t, session, _) = rw_session(uri)?;
    let mut last = None;
    // PKCS#11 3.0 spelling first, then SoftHSM's.
    for (key_type, params) in [
        (KeyType::EC_MONTGOMERY, X25519_OID),
        (KeyType::EC_EDWARDS, X25519_OID),
    ] {
        let mut template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(key_type),
            Attribute::EcParams(params.to_vec()),
            Attribute::Value(private.to_vec()),
        ];
        template.extend(protected_private_key());
        template.extend(naming(uri));
        let created = session.create_object(&template);
        for a in &mut template {
            if let Attribute::Value(v) = a {
                v.zeroize();
            }
        }
        match created {
            Ok(h) => return public_key(&session, h, &t.label),
            Err(e) => last = Some(e),
        }
    }
    Err(Pkcs11Error::Token {
        token: t.label,
        op: "C_CreateObject",
        rv: last.map(|e| rv_text(&e)).unwrap_or_default(),
    })
}

/// What a token says about a private key's protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttributes {
    /// `CKA_KEY_TYPE`, as cryptoki names it.
    pub key_type: String,
    /// `CKA_SENSITIVE`.
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE`.
    pub extractable: Option<bool>,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: Option<bool>,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: Option<bool>,
    /// `CKA_LOCAL` (generated on the token).
    pub local: Option<bool>,
    /// `Err(reason)` when reading `CKA_VALUE` failed (as it must), `Ok(())` if it was readable
    /// (the value itself is zeroed and dropped, never returned).
    pub value_read: Result<(), String>,
}

/// Reads the protection attributes of the URI's key, and tries to read its value.
pub fn key_attributes(uri: &Pkcs11Uri) -> Result<KeyAttributes, Pkcs11Error> {
    let pin = read_pin(uri)?;
    let conn = connect(uri, pin.as_ref())?;
    let (s, k) = (conn.session(), conn.key);
    let attrs = s
        .get_attributes(
            k,
            &[
                AttributeType::KeyType,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::AlwaysSensitive,
                AttributeType::NeverExtractable,
                AttributeType::Local,
            ],
        )
        .map_err(token_err(&conn.token, "C_GetAttributeValue"))?;
    let mut out = KeyAttributes {
        key_type: String::new(),
        sensitive: None,
        extractable: None,
        always_sensitive: None,
        never_extractable: None,
        local: None,
        value_read: Err(String::new()),
    };
    for a in attrs {
        match a {
            Attribute::KeyType(t) => out.key_type = t.to_string(),
            Attribute::Sensitive(b) => out.sensitive = Some(b),
            Attribute::Extractable(b) => out.extractable = Some(b),
            Attribute::AlwaysSensitive(b) => out.always_sensitive = Some(b),
            Attribute::NeverExtractable(b) => out.never_extractable = Some(b),
            Attribute::Local(b) => out.local = Some(b),
            _ => {}
        }
    }
    out.value_read = match s.get_attributes(k, &[AttributeType::Value]) {
        Err(e) => Err(rv_text(&e)),
        Ok(list) => {
            let mut readable = false;
            for a in list {
                if let Attribute::Value(mut v) = a {
                    readable = true;
                    v.zeroize();
                }
            }
            if readable {
                Ok(())
            } else {
                Err("CKA_VALUE unavailable (CKR_ATTRIBUTE_SENSITIVE)".into())
            }
        }
    };
    Ok(out)
}

/// Deletes the URI's key pair (private and public objects with its label/id).
pub fn delete(uri: &Pkcs11Uri) -> Result<usize, Pkcs11Error> {
    let (t, session, _) = open_rw_logged_in(uri)?;
    let found = session
        .find_objects(&object_template(uri, None))
        .map_err(token_err(&t.label, "C_FindObjects"))?;
    for h in &found {
        session
            .destroy_object(*h)
            .map_err(token_err(&t.label, "C_DestroyObject"))?;
    }
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_choice_prefers_montgomery() {
        use MechanismType as M;
        assert_eq!(
            choose_mechanism(&[M::ECC_EDWARDS_KEY_PAIR_GEN, M::ECC_MONTGOMERY_KEY_PAIR_GEN]),
            Some(X25519Mechanism::Montgomery)
        );
        // SoftHSM 2.6 lists only the Edwards generator.
        assert_eq!(
            choose_mechanism(&[M::ECDH1_DERIVE, M::ECC_EDWARDS_KEY_PAIR_GEN]),
            Some(X25519Mechanism::Edwards)
        );
        assert_eq!(choose_mechanism(&[M::ECC_KEY_PAIR_GEN]), None);
    }
}
