//! The one error a policy file can be refused with: where (line, key) and why.

use std::fmt;

/// Why a policy file was refused, with the 1-based line of the offending key or value.
///
/// `Display` gives `line 12: key "foo": unknown key`, or `line 12: message` when no key is
/// involved; `line` is 0 only for a fault of the whole file (its size), which prints without a
/// line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line of the offending key or value (0: the whole file).
    pub line: usize,
    /// The key the fault is at or about, when there is one.
    pub key: Option<String>,
    /// What is wrong, for a human.
    pub message: String,
}

impl PolicyError {
    /// An error at `line` about no particular key.
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        PolicyError {
            line,
            key: None,
            message: message.into(),
        }
    }

    /// An error at `line` about `key`.
    pub(crate) fn key(line: usize, key: &str, message: impl Into<String>) -> Self {
        PolicyError {
            line,
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        if let Some(key) = &self.key {
            write!(f, "key {key:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_line_and_key() {
        let e = PolicyError::key(12, "foo", "unknown key");
        assert_eq!(e.to_string(), "line 12: key \"foo\": unknown key");
        assert_eq!(PolicyError::at(3, "bad").to_string(), "line 3: bad");
        assert_eq!(PolicyError::at(0, "too big").to_string(), "too big");
    }
}
