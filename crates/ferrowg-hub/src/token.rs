//! The enrolment token a device is given: everything `ferrowg enroll` needs to reach the hub
//! and prove it may enrol, in one copy-pasteable string.
//!
//! ```text
//! fwg1.BASE64URL(JSON)     JSON = {"api": "https://HOST:PORT", "pin": "sha256:…",
//!                                  "hub_key": "<WireGuard public key, base64>",
//!                                  "secret": "<credential: 16 hex . 64 hex>"}
//! ```
//!
//! The base64url has no padding. The JSON's keys are exactly these four. The secret is the
//! store's [`Credential`] text; the hub keeps only its hash. [`parse`] is total: every input
//! gives a token or a [`TokenError`] that says which part is wrong and never repeats the input.
//! `Debug` never shows the secret.

use core::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ferrowg_hub_store::Credential;
use ferrowg_keys::key::PublicKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::tls::Pin;

/// The version prefix of every token.
pub const PREFIX: &str = "fwg1.";

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 2048;

/// Longest API URL a token may carry, in bytes.
pub const MAX_API_LEN: usize = 300;

/// A parsed enrolment token.
#[derive(Clone)]
pub struct EnrolToken {
    api: String,
    pin: Pin,
    hub_key: PublicKey,
    secret: Credential,
}

/// Why a token did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than [`MAX_TOKEN_LEN`].
    #[error("enrolment token: longer than {MAX_TOKEN_LEN} bytes")]
    TooLong,
    /// Does not start with `fwg1.`.
    #[error("enrolment token: does not start with `fwg1.` (is it a ferrowg hub token?)")]
    Prefix,
    /// The part after the prefix is not unpadded base64url.
    #[error("enrolment token: not base64url after `fwg1.` (was it cut or wrapped when copied?)")]
    Base64,
    /// The decoded part is not the token's JSON object.
    #[error("enrolment token: malformed content (expected keys api, pin, hub_key, secret)")]
    Json,
    /// `api` is not `https://HOST:PORT`.
    #[error("enrolment token: `api` is not an https://HOST:PORT URL")]
    Api,
    /// `pin` is not a TLS pin.
    #[error("enrolment token: `pin` is not a sha256: pin")]
    Pin,
    /// `hub_key` is not a WireGuard public key.
    #[error("enrolment token: `hub_key` is not a WireGuard public key")]
    HubKey,
    /// `secret` is not a token credential.
    #[error("enrolment token: `secret` is malformed")]
    Secret,
}

/// The JSON inside a token.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    api: &'a str,
    pin: &'a str,
    hub_key: &'a str,
    secret: &'a str,
}

impl EnrolToken {
    /// A token for the hub at `api` (`https://HOST:PORT`) with certificate `pin` and WireGuard
    /// key `hub_key`, carrying `secret`. [`TokenError::Api`] if `api` is not such a URL.
    pub fn new(
        api: &str,
        pin: Pin,
        hub_key: PublicKey,
        secret: Credential,
    ) -> Result<EnrolToken, TokenError> {
        check_api(api)?;
        Ok(EnrolToken {
            api: api.to_owned(),
            pin,
            hub_key,
            secret,
        })
    }

    /// The API's URL, `https://HOST:PORT`.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// The API certificate's pin.
    pub fn pin(&self) -> Pin {
        self.pin
    }

    /// The hub's WireGuard public key.
    pub fn hub_key(&self) -> &PublicKey {
        &self.hub_key
    }

    /// The credential to present to `POST /api/v1/enroll`.
    pub fn secret(&self) -> &Credential {
        &self.secret
    }

    /// The token as text (`fwg1.…`); it holds the secret.
    pub fn encode(&self) -> Zeroizing<String> {
        let secret = Zeroizing::new(self.secret.to_string());
        let hub_key = self.hub_key.to_base64();
        let pin = self.pin.to_string();
        let wire = Wire {
            api: &self.api,
            pin: &pin,
            hub_key: &hub_key,
            secret: &secret,
        };
        // Serialising four strings into a Vec cannot fail.
        let json = Zeroizing::new(serde_json::to_vec(&wire).unwrap_or_default());
        Zeroizing::new(format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode(json.as_slice())
        ))
    }
}

impl fmt::Debug for EnrolToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrolToken")
            .field("api", &self.api)
            .field("pin", &self.pin)
            .field("hub_key", &self.hub_key.to_base64())
            .field("token_id", &self.secret.id())
            .finish_non_exhaustive()
    }
}

/// Parses a token, surrounding white space ignored.
pub fn parse(text: &str) -> Result<EnrolToken, TokenError> {
    let text = text.trim();
    if text.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    let b64 = text.strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
    let json = Zeroizing::new(
        URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| TokenError::Base64)?,
    );
    let wire: Wire<'_> = serde_json::from_slice(&json).map_err(|_| TokenError::Json)?;
    let pin = wire.pin.parse().map_err(|_| TokenError::Pin)?;
    let hub_key = PublicKey::from_base64(wire.hub_key)
        .ok()
        .filter(|k| k.as_bytes() != &[0; 32])
        .ok_or(TokenError::HubKey)?;
    let secret = wire.secret.parse().map_err(|_| TokenError::Secret)?;
    EnrolToken::new(wire.api, pin, hub_key, secret)
}

/// `https://HOST:PORT` with a non-empty host of printable ASCII (no `/`, `@`, `?`, `#`, `\`,
/// `"`) and a port from 1 to 65535.
pub fn check_api(api: &str) -> Result<(), TokenError> {
    if api.len() > MAX_API_LEN {
        return Err(TokenError::Api);
    }
    let rest = api.strip_prefix("https://").ok_or(TokenError::Api)?;
    let (host, port) = rest.rsplit_once(':').ok_or(TokenError::Api)?;
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_graphic() && !matches!(b, b'/' | b'@' | b'?' | b'#' | b'\\' | b'"')
        });
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(TokenError::Api)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str =
        "0123456789abcdef.00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn sample() -> EnrolToken {
        let pin = crate::tls::Pin::of(b"certificate");
        let key = PublicKey::from_bytes([7; 32]);
        EnrolToken::new(
            "https://hub.example.com:8443",
            pin,
            key,
            SECRET.parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_debug_hides_the_secret() {
        let t = sample();
        let text = t.encode();
        assert!(text.starts_with(PREFIX));
        let back = parse(&format!("  {}\n", text.as_str())).unwrap();
        assert_eq!(back.encode(), text);
        assert_eq!(back.api(), "https://hub.example.com:8443");
        assert_eq!(back.secret().to_string(), SECRET);
        let debug = format!("{back:?}");
        assert!(debug.contains("0123456789abcdef"));
        assert!(!debug.contains("00112233445566778899"), "{debug}");
    }

    fn wire(api: &str, pin: &str, key: &str, secret: &str) -> String {
        let json = serde_json::json!({"api": api, "pin": pin, "hub_key": key, "secret": secret});
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json.to_string()))
    }

    #[test]
    fn each_part_is_checked() {
        let pin = Pin::of(b"c").to_string();
        let key = PublicKey::from_bytes([7; 32]).to_base64();
        let zero = PublicKey::from_bytes([0; 32]).to_base64();
        let api = "https://h:1";
        let cases = [
            ("fwg2.abc".to_owned(), TokenError::Prefix),
            ("fwg1.a=b".to_owned(), TokenError::Base64),
            (
                format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode("[]")),
                TokenError::Json,
            ),
            ("x".repeat(MAX_TOKEN_LEN + 1), TokenError::TooLong),
            (wire("http://h:1", &pin, &key, SECRET), TokenError::Api),
            (wire("https://h", &pin, &key, SECRET), TokenError::Api),
            (wire("https://h:0", &pin, &key, SECRET), TokenError::Api),
            (wire("https://u@h:1", &pin, &key, SECRET), TokenError::Api),
            (wire("https://h:1/x", &pin, &key, SECRET), TokenError::Api),
            (wire(api, "sha256:x", &key, SECRET), TokenError::Pin),
            (wire(api, &pin, "nokey", SECRET), TokenError::HubKey),
            (wire(api, &pin, &zero, SECRET), TokenError::HubKey),
            (wire(api, &pin, &key, "abc.def"), TokenError::Secret),
        ];
        for (text, want) in cases {
            assert_eq!(parse(&text).err(), Some(want), "{text}");
        }
        assert!(parse(&wire(api, &pin, &key, SECRET)).is_ok());
        assert!(parse(&wire("https://[fd00::1]:8443", &pin, &key, SECRET)).is_ok());
    }
}
