//! Token credentials: a public identifier that names the stored row and a 32-byte random secret
//! of which only a hash is stored. The identifier is looked up, then the hash of the presented
//! secret is compared with the stored one in constant time, so neither the lookup nor the
//! comparison tells an attacker how close a guess was. A plain hash suffices (no password
//! hashing): the secret is 256 random bits, not something a person chose.

use core::fmt;
use core::str::FromStr;

use blake2::{Blake2s256, Digest};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Field, Reason, Result, StoreError};

/// Length of an identifier in bytes (printed as twice as many hex digits).
const ID_LEN: usize = 8;
/// Length of a secret in bytes.
pub const SECRET_LEN: usize = 32;

/// What a token secret is hashed for: the hash of one kind never verifies as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Enrolment tokens.
    Enrolment,
    /// Admin tokens.
    Admin,
}

/// A token as its holder presents it: `ID.SECRET`, both lowercase hex. The secret is zeroed on
/// drop, never printed by `Debug`, and not comparable with `==` (only [`Credential::matches`]
/// compares it, in constant time).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Credential {
    id: String,
    secret: [u8; SECRET_LEN],
}

impl Credential {
    /// A new credential: a random identifier and a random secret from the operating system.
    pub(crate) fn generate() -> Self {
        let mut id = [0u8; ID_LEN];
        let mut secret = [0u8; SECRET_LEN];
        OsRng.fill_bytes(&mut id);
        OsRng.fill_bytes(&mut secret);
        Self {
            id: hex(&id),
            secret,
        }
    }

    /// The identifier: the stored row's primary key, safe to print and log.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hash that is stored for this secret.
    pub(crate) fn hash(&self, purpose: Purpose) -> [u8; 32] {
        let context: &[u8] = match purpose {
            Purpose::Enrolment => b"ferrowg hub enrolment token v1\0",
            Purpose::Admin => b"ferrowg hub admin token v1\0",
        };
        let mut h = Blake2s256::new();
        h.update(context);
        h.update(self.secret);
        h.finalize().into()
    }

    /// Whether this secret's hash equals `stored`, in constant time. `None` (no token with
    /// this identifier) does the same work and fails, so the time taken does not tell whether
    /// an identifier exists.
    pub(crate) fn matches(&self, purpose: Purpose, stored: Option<&[u8]>) -> bool {
        let found = stored.is_some();
        let stored = stored.unwrap_or(&[0; 32]);
        let mut hash = self.hash(purpose);
        let equal: bool = hash.as_slice().ct_eq(stored).into();
        hash.zeroize();
        std::hint::black_box(equal) && found
    }
}

/// The identifier part of a credential, as stored: 16 lowercase hex digits.
pub(crate) fn check_id(id: &str) -> Result<()> {
    if id.len() == 2 * ID_LEN && id.bytes().all(is_lower_hex) {
        Ok(())
    } else {
        Err(StoreError::invalid(Field::TokenId, Reason::BadFormat))
    }
}

impl fmt::Display for Credential {
    /// The full credential, secret included: only for handing it to its holder once.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secret = hex(&self.secret);
        let r = write!(f, "{}.{}", self.id, secret);
        secret.zeroize();
        r
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl FromStr for Credential {
    type Err = StoreError;

    /// Parses `ID.SECRET`; anything else is [`StoreError::TokenInvalid`].
    fn from_str(text: &str) -> Result<Self> {
        let (id, secret_hex) = text.split_once('.').ok_or(StoreError::TokenInvalid)?;
        check_id(id).map_err(|_| StoreError::TokenInvalid)?;
        let bytes = secret_hex.as_bytes();
        if bytes.len() != 2 * SECRET_LEN || !bytes.iter().copied().all(is_lower_hex) {
            return Err(StoreError::TokenInvalid);
        }
        let mut secret = [0u8; SECRET_LEN];
        for (out, pair) in secret.iter_mut().zip(bytes.chunks_exact(2)) {
            *out = (nibble(pair[0]) << 4) | nibble(pair[1]);
        }
        Ok(Self {
            id: id.to_owned(),
            secret,
        })
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// The value of a lowercase hex digit (callers checked it with `is_lower_hex`).
fn nibble(b: u8) -> u8 {
    if b.is_ascii_digit() {
        b - b'0'
    } else {
        b - b'a' + 10
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_debug_hides_secret() {
        let c = Credential::generate();
        let text = c.to_string();
        assert_eq!(text.len(), 16 + 1 + 64);
        let back: Credential = text.parse().unwrap();
        assert_eq!(back.to_string(), text);
        assert_eq!(back.id(), c.id());
        let debug = format!("{c:?}");
        assert!(debug.contains(c.id()));
        assert!(!debug.contains(&text[17..]));
        assert_ne!(Credential::generate().id(), c.id());
    }

    #[test]
    fn malformed_credentials_are_invalid() {
        let good = Credential::generate().to_string();
        let upper = good.to_uppercase();
        let short = &good[..good.len() - 1];
        let no_dot = good.replace('.', "");
        let bad_id = format!("zz{}", &good[2..]);
        for bad in [upper.as_str(), short, &no_dot, &bad_id, "", ".", "é.é"] {
            assert!(
                matches!(bad.parse::<Credential>(), Err(StoreError::TokenInvalid)),
                "{bad}"
            );
        }
    }

    #[test]
    fn hashes_are_per_purpose_and_compared_exactly() {
        let c = Credential::generate();
        let stored = c.hash(Purpose::Enrolment);
        assert!(c.matches(Purpose::Enrolment, Some(&stored)));
        assert!(!c.matches(Purpose::Admin, Some(&stored)));
        assert!(!c.matches(Purpose::Enrolment, Some(&stored[..31])));
        let other = Credential::generate();
        assert!(!other.matches(Purpose::Enrolment, Some(&stored)));
        assert!(!c.matches(Purpose::Enrolment, None));
    }
}
