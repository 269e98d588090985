//! The errors of the configuration parser: which file, line and field, and what is wrong.

use core::fmt;

use ferrowg_keys::key::KeyError;

/// A section of a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[Interface]`.
    Interface,
    /// `[Peer]`.
    Peer,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interface => "[Interface]",
            Self::Peer => "[Peer]",
        })
    }
}

/// A configuration error: `file:line: what`, e.g.
/// `wg0.conf:7: AllowedIPs: "10.0.0.0/33" is not a valid prefix`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {kind}")]
pub struct ConfigError {
    /// The file name as given to [`parse`](super::parse()).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// What is wrong with a line. Field names are spelled canonically (`AllowedIPs`), whatever case
/// the file used; values are quoted as found, after wg's whitespace removal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A value that does not parse, e.g. `AllowedIPs: "10.0.0.0/33" is not a valid prefix`.
    #[error("{field}: {value:?} is not {expected}")]
    InvalidValue {
        /// The key.
        field: &'static str,
        /// The offending value (for lists, the offending entry).
        value: String,
        /// What was expected, starting with an article.
        expected: &'static str,
    },
    /// A public key that does not decode.
    #[error("{field}: {value:?} is not a valid key: {error}")]
    InvalidPublicKey {
        /// The key name.
        field: &'static str,
        /// The text found.
        value: String,
        /// Why it does not decode.
        error: KeyError,
    },
    /// A private or preshared key that does not decode; its text is not repeated.
    #[error("{field}: not a valid key: {error}")]
    InvalidSecretKey {
        /// The key name.
        field: &'static str,
        /// Why it does not decode.
        error: KeyError,
    },
    /// A `PrivateKey` PKCS#11 URI that does not parse; its text is not repeated (it may hold a
    /// PIN).
    #[error("{field}: not a valid PKCS#11 URI: {error}")]
    InvalidKeyUri {
        /// The key name.
        field: &'static str,
        /// What is wrong with it.
        error: ferrowg_keys::pkcs11::UriError,
    },
    /// `Key =` with nothing after it (wg rejects these as unrecognized lines).
    #[error("{field}: empty value")]
    EmptyValue {
        /// The key.
        field: &'static str,
    },
    /// A key that does not belong in this section (or this dialect).
    #[error("unknown key {key:?} in {section} section")]
    UnknownKey {
        /// The key as written (whitespace removed).
        key: String,
        /// The section it is in.
        section: Section,
    },
    /// A section header other than `[Interface]` and `[Peer]`.
    #[error("unknown section {0:?}")]
    UnknownSection(String),
    /// A key before any section header.
    #[error("{0:?} is not inside an [Interface] or [Peer] section")]
    OutsideSection(String),
    /// A line that is neither `Key = Value`, a section header, a comment nor blank.
    #[error("expected \"Key = Value\" or a section header, found {0:?}")]
    Syntax(String),
    /// A `[Peer]` section (the line of its header) without `PublicKey`.
    #[error("[Peer] section has no PublicKey")]
    MissingPublicKey,
    /// Bytes that are not UTF-8 outside of a comment.
    #[error("line is not valid UTF-8")]
    NotUtf8,
}

/// A value that does not parse: `field: "value" is not expected`.
pub(super) fn invalid(field: &'static str, value: &str, expected: &'static str) -> ConfigErrorKind {
    ConfigErrorKind::InvalidValue {
        field,
        value: value.to_owned(),
        expected,
    }
}
