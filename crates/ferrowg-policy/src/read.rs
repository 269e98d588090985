//! Typed reads of HuJSON values for the policy reader: objects with a fixed set of keys (unknown
//! and duplicate keys refused), strings, lists of strings, and the name grammar of tags, groups,
//! hosts and devices. Every error carries the line of the key or value at fault.

use crate::error::PolicyError;
use crate::hujson::{Key, Kind, Value};

/// The members of object `v`, or an error naming `key` (the key `v` is the value of).
pub(crate) fn object<'a>(v: &'a Value, key: &str) -> Result<&'a [(Key, Value)], PolicyError> {
    match &v.kind {
        Kind::Object(m) => Ok(m),
        k => Err(wrong_kind(v, key, "an object", k)),
    }
}

/// The values of object `v`'s members in the order of `known`; a key not in `known` (the error
/// lists them) or seen twice is refused.
pub(crate) fn members<'a, const N: usize>(
    v: &'a Value,
    key: &str,
    known: &[&str; N],
) -> Result<[Option<&'a Value>; N], PolicyError> {
    let mut out = [None; N];
    for (k, value) in object(v, key)? {
        let Some(i) = known.iter().position(|n| *n == k.name) else {
            return Err(PolicyError::key(
                k.line,
                &k.name,
                format!("unknown key (known here: {})", known.join(", ")),
            ));
        };
        if out[i].is_some() {
            return Err(PolicyError::key(k.line, &k.name, "duplicate key"));
        }
        out[i] = Some(value);
    }
    Ok(out)
}

/// Refuses a key seen before in the same object.
pub(crate) fn no_duplicates(members: &[(Key, Value)]) -> Result<(), PolicyError> {
    let mut seen = std::collections::HashSet::new();
    for (k, _) in members {
        if !seen.insert(k.name.as_str()) {
            return Err(PolicyError::key(k.line, &k.name, "duplicate key"));
        }
    }
    Ok(())
}

/// The string `v`, or an error naming `key`.
pub(crate) fn string<'a>(v: &'a Value, key: &str) -> Result<&'a str, PolicyError> {
    match &v.kind {
        Kind::Str(s) => Ok(s),
        k => Err(wrong_kind(v, key, "a string", k)),
    }
}

/// The list of strings `v`, each with its line.
pub(crate) fn strings<'a>(v: &'a Value, key: &str) -> Result<Vec<(usize, &'a str)>, PolicyError> {
    match &v.kind {
        Kind::Array(items) => items
            .iter()
            .map(|item| Ok((item.line, string(item, key)?)))
            .collect(),
        k => Err(wrong_kind(v, key, "a list of strings", k)),
    }
}

/// Like [`strings`], refusing an empty list.
pub(crate) fn nonempty_strings<'a>(
    v: &'a Value,
    key: &str,
) -> Result<Vec<(usize, &'a str)>, PolicyError> {
    let list = strings(v, key)?;
    if list.is_empty() {
        return Err(PolicyError::key(v.line, key, "empty list"));
    }
    Ok(list)
}

/// A required member: its value, or an error at the object's line.
pub(crate) fn required<'a>(
    v: Option<&'a Value>,
    object: &Value,
    key: &str,
) -> Result<&'a Value, PolicyError> {
    v.ok_or_else(|| PolicyError::key(object.line, key, "missing key"))
}

fn wrong_kind(v: &Value, key: &str, want: &str, found: &Kind) -> PolicyError {
    PolicyError::key(
        v.line,
        key,
        format!("expected {want}, found {}", found.describe()),
    )
}

/// Whether `s` is a valid name for a tag, group, host or device: 1 to 63 ASCII letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit (a host name label, plus `_` and `.`).
///
/// The hub uses the same rule for device names and enrolment groups (`--group G` is `tag:G`),
/// so that every device can be named in a policy.
pub fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `PREFIX:NAME` with a valid name, or an error message.
pub(crate) fn prefixed_name<'a>(s: &'a str, prefix: &str) -> Result<&'a str, String> {
    match s.strip_prefix(prefix) {
        Some(name) if valid_name(name) => Ok(name),
        _ => Err(format!(
            "{s:?} is not a valid {prefix}NAME (NAME: 1-63 letters, digits, '-', '_', '.')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hujson::parse;

    #[test]
    fn names() {
        for ok in ["a", "gw-berlin", "sensor_01", "host.example", "0"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "a".repeat(64);
        for bad in ["", "-a", ".a", "a b", "a:b", "a/b", "é", long.as_str()] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(prefixed_name("tag:x", "tag:"), Ok("x"));
        assert!(prefixed_name("tag:", "tag:").is_err());
        assert!(prefixed_name("group:x", "tag:").is_err());
    }

    #[test]
    fn members_refuse_unknown_and_duplicate() {
        let v = parse("{\n\"a\": 1,\n\"b\": 2,\n}").unwrap();
        let e = members(&v, "x", &["a"]).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (3, Some("b")));
        let v = parse("{\"a\": 1,\n\"a\": 2}").unwrap();
        let e = members(&v, "x", &["a"]).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "duplicate key"));
        let v = parse("{\"b\": 1}").unwrap();
        let got = members(&v, "x", &["a", "b"]).unwrap();
        assert!(got[0].is_none() && got[1].is_some());
    }

    #[test]
    fn kinds() {
        let v = parse("[\"a\",\n1]").unwrap();
        let e = strings(&v, "src").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: key \"src\": expected a string, found a number"
        );
        let e = nonempty_strings(&parse("[]").unwrap(), "dst").unwrap_err();
        assert_eq!(e.message, "empty list");
    }
}
