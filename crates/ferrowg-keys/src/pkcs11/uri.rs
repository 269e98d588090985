//! PKCS#11 URIs (RFC 7512): the names of keys in tokens.
//!
//! ```text
//! pkcs11:token=wg;object=wg0?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/wg0.pin
//! ```
//!
//! The path part (before `?`, attributes separated by `;`) says which token and which object;
//! the query part (after `?`, separated by `&`) says how to reach it: the module to load and
//! where the PIN comes from. Values are percent-decoded (RFC 7512 §2.3); `id` is binary, every
//! other value must decode to UTF-8. Vendor attributes (`x-…`) are accepted and ignored, as
//! RFC 7512 §2.3 allows; any other unknown attribute, a repeated attribute, a character that
//! has to be percent-encoded, or `pin-value` together with `pin-source` is an error that names
//! the attribute.
//!
//! A PIN given inline (`pin-value=`) is a secret: it is zeroed on drop, left out of `Display`
//! and `Debug`, never part of an error, and only written back out when asked to, best into
//! memory that is zeroed on drop ([`Pkcs11Uri::to_uri_secret`]).

use core::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Where the PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSpec {
    /// `pin-value=`: the PIN itself.
    Value(Zeroizing<String>),
    /// `pin-source=`: a file holding the PIN (a `file:` URI or an absolute path).
    Source(PathBuf),
}

impl fmt::Debug for PinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSpec::Value(_) => f.write_str("Value(<redacted>)"),
            PinSpec::Source(p) => f.debug_tuple("Source").field(p).finish(),
        }
    }
}

/// `type=`: the class of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    /// `private`: a private key (the only class a WireGuard static key can be).
    Private,
    /// `public`: a public key.
    Public,
    /// `cert`: a certificate.
    Cert,
    /// `secret-key`: a symmetric key.
    SecretKey,
    /// `data`: a data object.
    Data,
}

impl ObjectType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "private" => Self::Private,
            "public" => Self::Public,
            "cert" => Self::Cert,
            "secret-key" => Self::SecretKey,
            "data" => Self::Data,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::Public => "public",
            Self::Cert => "cert",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }
}

/// A parsed PKCS#11 URI. Every field is `None` when the URI does not mention it (and then
/// matches anything).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: Option<String>,
    /// `manufacturer=`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `serial=`: the token serial number.
    pub serial: Option<String>,
    /// `model=`: the token model.
    pub model: Option<String>,
    /// `library-manufacturer=`.
    pub library_manufacturer: Option<String>,
    /// `library-description=`.
    pub library_description: Option<String>,
    /// `library-version=`: major and minor.
    pub library_version: Option<(u8, u8)>,
    /// `slot-description=`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer=`.
    pub slot_manufacturer: Option<String>,
    /// `slot-id=`.
    pub slot_id: Option<u64>,
    /// `object=`: the object label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id=`: the object id (`CKA_ID`), binary.
    pub id: Option<Vec<u8>>,
    /// `type=`.
    pub object_type: Option<ObjectType>,
    /// `pin-value=` or `pin-source=`.
    pub pin: Option<PinSpec>,
    /// `module-name=`: a module looked up in the system's PKCS#11 module directories.
    pub module_name: Option<String>,
    /// `module-path=`: the module's file.
    pub module_path: Option<PathBuf>,
}

/// Why a PKCS#11 URI was refused. Never contains the value of `pin-value`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The text does not start with `pkcs11:`.
    #[error("a PKCS#11 URI starts with \"pkcs11:\"")]
    Scheme,
    /// An attribute without `=`.
    #[error("attribute {0:?} has no '='")]
    NoEquals(String),
    /// An attribute name RFC 7512 does not define (and that is not an `x-` vendor attribute).
    #[error("unknown attribute {name:?} in the {part} part")]
    UnknownAttribute {
        /// The name.
        name: String,
        /// `path` or `query`.
        part: &'static str,
    },
    /// An attribute given twice.
    #[error("attribute {0:?} is given twice")]
    Repeated(&'static str),
    /// A `%` not followed by two hex digits.
    #[error("attribute {0:?}: '%' must be followed by two hex digits")]
    BadPercent(&'static str),
    /// A character that must be percent-encoded in this part of the URI.
    #[error("attribute {attr:?}: character {ch:?} must be percent-encoded (as %{code:02X})")]
    MustEncode {
        /// The attribute.
        attr: &'static str,
        /// The character.
        ch: char,
        /// Its byte value (first byte of its UTF-8 encoding).
        code: u8,
    },
    /// A value that is not UTF-8 after decoding.
    #[error("attribute {0:?} is not UTF-8 after percent-decoding")]
    NotUtf8(&'static str),
    /// A malformed value (number, version, type, pin-source).
    #[error("attribute {attr:?}: {reason}")]
    InvalidValue {
        /// The attribute.
        attr: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Both `pin-value` and `pin-source` (RFC 7512 §2.3 forbids it).
    #[error("pin-value and pin-source must not both be given")]
    TwoPins,
}

const PATH_ATTRS: &[&str] = &[
    "token",
    "manufacturer",
    "serial",
    "model",
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
    "object",
    "id",
    "type",
];
const QUERY_ATTRS: &[&str] = &["pin-source", "pin-value", "module-name", "module-path"];

/// RFC 3986 unreserved characters.
fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// `pk11-pchar` without the percent sign.
fn path_char(c: u8) -> bool {
    unreserved(c)
        || matches!(
            c,
            b':' | b'['
                | b']'
                | b'@'
                | b'!'
                | b'$'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b'='
        )
}

/// `pk11-qchar` without the percent sign.
fn query_char(c: u8) -> bool {
    path_char(c) || matches!(c, b'/' | b'?' | b'|')
}

fn decode(attr: &'static str, raw: &str, allowed: fn(u8) -> bool) -> Result<Vec<u8>, UriError> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |x: u8| (x as char).to_digit(16);
            match (
                b.get(i + 1).and_then(|&x| hex(x)),
                b.get(i + 2).and_then(|&x| hex(x)),
            ) {
                (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                _ => return Err(UriError::BadPercent(attr)),
            }
            i += 3;
        } else if allowed(c) {
            out.push(c);
            i += 1;
        } else {
            let ch = raw[i..].chars().next().unwrap_or('?');
            return Err(UriError::MustEncode { attr, ch, code: c });
        }
    }
    Ok(out)
}

fn text(attr: &'static str, raw: &str, allowed: fn(u8) -> bool) -> Result<String, UriError> {
    String::from_utf8(decode(attr, raw, allowed)?).map_err(|_| UriError::NotUtf8(attr))
}

/// Appends `bytes` percent-encoded, with no temporary strings (the bytes may be a PIN).
fn encode(out: &mut String, bytes: &[u8], allowed: fn(u8) -> bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in bytes {
        if allowed(c) {
            out.push(c as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(c >> 4)] as char);
            out.push(HEX[usize::from(c & 15)] as char);
        }
    }
}

/// The `pin-source` value for `path`: `file://` + an absolute path, `file:` + a relative one;
/// [`pin_source`] reads either back to `path`.
fn pin_source_uri(path: &Path) -> String {
    let text = path.display();
    if path.is_absolute() {
        format!("file://{text}")
    } else {
        format!("file:{text}")
    }
}

/// A `file:` URI (`file:/p`, `file:///p`, `file://localhost/p`) or an absolute path.
fn pin_source(value: &str) -> Result<PathBuf, UriError> {
    let bad = |reason| UriError::InvalidValue {
        attr: "pin-source",
        reason,
    };
    let path = if let Some(rest) = value.strip_prefix("file:") {
        let rest = rest
            .strip_prefix("//localhost")
            .or_else(|| rest.strip_prefix("//"))
            .unwrap_or(rest);
        rest
    } else if value.starts_with('|') {
        return Err(bad(
            "running a command for the PIN is not supported; use a file",
        ));
    } else if value.contains(':') && !value.starts_with('/') {
        return Err(bad("only file: URIs and file paths are supported"));
    } else {
        value
    };
    if path.is_empty() {
        return Err(bad("empty file name"));
    }
    Ok(PathBuf::from(path))
}

impl Pkcs11Uri {
    /// Parses a URI (`pkcs11:` is matched case-insensitively, attribute names are not).
    pub fn parse(s: &str) -> Result<Self, UriError> {
        let rest = match s.get(..7) {
            Some(p) if p.eq_ignore_ascii_case("pkcs11:") => &s[7..],
            _ => return Err(UriError::Scheme),
        };
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut uri = Pkcs11Uri::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            uri.path_attr(attr, &mut seen)?;
        }
        for attr in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|a| !a.is_empty())
        {
            uri.query_attr(attr, &mut seen)?;
        }
        Ok(uri)
    }

    fn name<'a>(
        attr: &'a str,
        known: &[&'static str],
        part: &'static str,
        seen: &mut Vec<&'static str>,
    ) -> Result<Option<(&'static str, &'a str)>, UriError> {
        let (name, value) = attr
            .split_once('=')
            .ok_or_else(|| UriError::NoEquals(attr.chars().take(40).collect()))?;
        if name.starts_with("x-") {
            return Ok(None);
        }
        let Some(&known) = known.iter().find(|k| **k == name) else {
            return Err(UriError::UnknownAttribute {
                name: name.chars().take(40).collect(),
                part,
            });
        };
        if seen.contains(&known) {
            return Err(UriError::Repeated(known));
        }
        seen.push(known);
        Ok(Some((known, value)))
    }

    fn path_attr(&mut self, attr: &str, seen: &mut Vec<&'static str>) -> Result<(), UriError> {
        let Some((name, raw)) = Self::name(attr, PATH_ATTRS, "path", seen)? else {
            return Ok(());
        };
        let t = || text(name, raw, path_char);
        let bad = |reason| UriError::InvalidValue { attr: name, reason };
        match name {
            "token" => self.token = Some(t()?),
            "manufacturer" => self.manufacturer = Some(t()?),
            "serial" => self.serial = Some(t()?),
            "model" => self.model = Some(t()?),
            "library-manufacturer" => self.library_manufacturer = Some(t()?),
            "library-description" => self.library_description = Some(t()?),
            "slot-description" => self.slot_description = Some(t()?),
            "slot-manufacturer" => self.slot_manufacturer = Some(t()?),
            "object" => self.object = Some(t()?),
            "id" => self.id = Some(decode(name, raw, path_char)?),
            "library-version" => {
                let v = t()?;
                let (major, minor) = v.split_once('.').unwrap_or((&v, "0"));
                let num = |s: &str| {
                    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                        .then(|| s.parse::<u8>().ok())
                        .flatten()
                };
                match (num(major), num(minor)) {
                    (Some(a), Some(b)) => self.library_version = Some((a, b)),
                    _ => return Err(bad("expected MAJOR or MAJOR.MINOR (each 0-255)")),
                }
            }
            "slot-id" => {
                let v = t()?;
                if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(bad("expected a decimal number"));
                }
                self.slot_id = Some(v.parse().map_err(|_| bad("number too large"))?);
            }
            _ => {
                let v = t()?;
                self.object_type =
                    Some(ObjectType::parse(&v).ok_or_else(|| {
                        bad("expected private, public, cert, secret-key or data")
                    })?);
            }
        }
        Ok(())
    }

    fn query_attr(&mut self, attr: &str, seen: &mut Vec<&'static str>) -> Result<(), UriError> {
        let Some((name, raw)) = Self::name(attr, QUERY_ATTRS, "query", seen)? else {
            return Ok(());
        };
        match name {
            "pin-value" => {
                if self.pin.is_some() {
                    return Err(UriError::TwoPins);
                }
                let bytes = Zeroizing::new(decode(name, raw, query_char)?);
                let pin = std::str::from_utf8(&bytes).map_err(|_| UriError::NotUtf8(name))?;
                self.pin = Some(PinSpec::Value(Zeroizing::new(pin.to_owned())));
            }
            "pin-source" => {
                if self.pin.is_some() {
                    return Err(UriError::TwoPins);
                }
                self.pin = Some(PinSpec::Source(pin_source(&text(name, raw, query_char)?)?));
            }
            "module-name" => {
                let v = text(name, raw, query_char)?;
                if v.is_empty() || v.contains('/') {
                    return Err(UriError::InvalidValue {
                        attr: name,
                        reason: "a module name has no '/'; use module-path for a file",
                    });
                }
                self.module_name = Some(v);
            }
            _ => {
                let v = text(name, raw, query_char)?;
                if v.is_empty() {
                    return Err(UriError::InvalidValue {
                        attr: name,
                        reason: "empty file name",
                    });
                }
                self.module_path = Some(PathBuf::from(v));
            }
        }
        Ok(())
    }

    /// The URI as text, percent-encoded, attributes in RFC 7512's order. `pin-value` is
    /// written only when `with_pin_value` is true; the caller then holds a PIN in a `String`
    /// it must wipe: prefer [`Pkcs11Uri::to_uri_secret`].
    pub fn to_uri_string(&self, with_pin_value: bool) -> String {
        (*self.write_uri(with_pin_value)).clone()
    }

    /// The URI as text with its `pin-value` (for handing the URI to the daemon or writing a
    /// configuration file), in memory that is zeroed on drop.
    pub fn to_uri_secret(&self) -> Zeroizing<String> {
        self.write_uri(true)
    }

    /// The text of the URI. The query, which may hold the PIN, is built in buffers sized up
    /// front and zeroed on drop, so no copy of the PIN is left in freed memory.
    fn write_uri(&self, with_pin_value: bool) -> Zeroizing<String> {
        let mut s = String::from("pkcs11:");
        let mut path: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut add = |name, v: Option<&str>| {
            if let Some(v) = v {
                path.push((name, v.as_bytes().to_vec()));
            }
        };
        add("token", self.token.as_deref());
        add("manufacturer", self.manufacturer.as_deref());
        add("serial", self.serial.as_deref());
        add("model", self.model.as_deref());
        add("library-manufacturer", self.library_manufacturer.as_deref());
        add("library-description", self.library_description.as_deref());
        let version = self.library_version.map(|(a, b)| format!("{a}.{b}"));
        add("library-version", version.as_deref());
        add("slot-description", self.slot_description.as_deref());
        add("slot-manufacturer", self.slot_manufacturer.as_deref());
        let slot = self.slot_id.map(|n| n.to_string());
        add("slot-id", slot.as_deref());
        add("object", self.object.as_deref());
        if let Some(id) = &self.id {
            path.push(("id", id.clone()));
        }
        if let Some(t) = self.object_type {
            path.push(("type", t.as_str().as_bytes().to_vec()));
        }
        for (i, (name, v)) in path.iter().enumerate() {
            if i > 0 {
                s.push(';');
            }
            s.push_str(name);
            s.push('=');
            if *name == "id" {
                // Ids are binary: always fully percent-encoded, as p11tool prints them.
                for c in v {
                    s.push_str(&format!("%{c:02X}"));
                }
            } else {
                encode(&mut s, v, path_char);
            }
        }
        let mut query: Vec<(&str, Zeroizing<Vec<u8>>)> = Vec::new();
        match &self.pin {
            Some(PinSpec::Source(p)) => query.push((
                "pin-source",
                // An absolute path as `file://` + path (`file:///etc/pin`): `file:` + a path
                // that starts with `//` would read back as a host name.
                Zeroizing::new(pin_source_uri(p).into_bytes()),
            )),
            Some(PinSpec::Value(v)) if with_pin_value => {
                query.push(("pin-value", Zeroizing::new(v.as_bytes().to_vec())))
            }
            _ => {}
        }
        if let Some(m) = &self.module_name {
            query.push(("module-name", Zeroizing::new(m.as_bytes().to_vec())));
        }
        if let Some(m) = &self.module_path {
            let m = m.to_string_lossy().as_bytes().to_vec();
            query.push(("module-path", Zeroizing::new(m)));
        }
        // Each value at most triples when percent-encoded.
        let len = s.len()
            + query
                .iter()
                .map(|(name, v)| 2 + name.len() + 3 * v.len())
                .sum::<usize>();
        let mut out = Zeroizing::new(String::with_capacity(len));
        out.push_str(&s);
        for (i, (name, v)) in query.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(name);
            out.push('=');
            // `&` and `;` separate attributes and `%` escapes: never raw in a value.
            encode(&mut out, v, query_char);
        }
        out
    }

    /// True when the URI carries the PIN inline (`pin-value`).
    pub fn has_pin_value(&self) -> bool {
        matches!(self.pin, Some(PinSpec::Value(_)))
    }

    /// Makes relative `module-path` and `pin-source` file names absolute against `cwd`, so the
    /// daemon (which runs elsewhere) finds the same files.
    pub fn absolutize(&mut self, cwd: &Path) {
        if let Some(p) = self.module_path.as_mut().filter(|p| p.is_relative()) {
            *p = cwd.join(&*p);
        }
        if let Some(PinSpec::Source(p)) = self.pin.as_mut() {
            if p.is_relative() {
                *p = cwd.join(&*p);
            }
        }
    }

    /// A short human name for logs and errors: `token "wg", object "wg0"` (no PIN).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token {t:?}"));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object {o:?}"));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            parts.push(format!("id {hex}"));
        }
        if parts.is_empty() {
            "any object in any token".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// The URI without its `pin-value`.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.write_uri(false))
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

impl core::str::FromStr for Pkcs11Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// True when `s` looks like a PKCS#11 URI (where a key file name or base64 key could also go).
pub fn is_pkcs11_uri(s: &str) -> bool {
    s.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("pkcs11:"))
}

#[cfg(test)]
#[path = "uri_tests.rs"]
mod tests;
