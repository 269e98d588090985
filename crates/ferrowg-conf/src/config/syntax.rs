//! How wg(8) and wg-quick(8) cut a configuration file into lines, keys and values: getline's
//! lines, wg-quick's `parse_options` split (comment cut at `#`, key and value trimmed; its keys
//! count only inside a section headed exactly `[Interface]`) and case-insensitive key names.

use crate::grammar::is_wg_space;

/// The lines of a file as getline(3) and bash `read` see them: split at `\n`, a last line
/// without `\n` included when not empty.
pub(super) fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let trimmed = input.strip_suffix(b"\n").unwrap_or(input);
    let empty = input.is_empty();
    trimmed.split(|&b| b == b'\n').filter(move |_| !empty)
}

/// A line as wg-quick's `parse_options` splits it.
pub(super) struct QuickLine<'a> {
    /// The part before `#`, before the first `=`, trimmed (the whole trimmed text if no `=`).
    pub key: &'a str,
    /// The part after the first `=` and before `#`, trimmed; `None` without `=`.
    pub value: Option<&'a str>,
    /// The part after the first `=` of the whole line, `#` included, trimmed (hooks use it).
    pub unstripped_value: Option<&'a str>,
}

impl QuickLine<'_> {
    /// wg-quick's `interface_section` flag after this line, given its value before: a section
    /// header sets it when it is `[Interface]` (any case) and clears it otherwise.
    pub(super) fn in_interface(&self, before: bool) -> bool {
        if self.key.starts_with('[') {
            self.key.eq_ignore_ascii_case("[Interface]")
        } else {
            before
        }
    }

    /// The wg-quick key this line sets, with its value: only inside `[Interface]`, and only
    /// with an `=`.
    pub(super) fn quick_key(&self, in_interface: bool) -> Option<(&'static str, &str)> {
        let value = self.value.filter(|_| in_interface)?;
        Some((match_key(self.key, &QUICK_KEYS)?, value))
    }
}

fn trim_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_wg_space(c as u8))
}

/// Splits a line (or its part before `#`) as wg-quick's `parse_options` does.
pub(super) fn quick_line(line: &str) -> QuickLine<'_> {
    let stripped = line.split('#').next().unwrap_or("");
    let (key, value) = match stripped.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (stripped, None),
    };
    QuickLine {
        key: trim_space(key),
        value: value.map(trim_space),
        unstripped_value: line.split_once('=').map(|(_, v)| trim_space(v)),
    }
}

/// The wg-quick keys, canonically spelled.
const QUICK_KEYS: [&str; 9] = [
    "Address",
    "DNS",
    "MTU",
    "Table",
    "PreUp",
    "PostUp",
    "PreDown",
    "PostDown",
    "SaveConfig",
];

/// The canonical spelling of `key` among `keys`: key names are case-insensitive in both tools.
pub(super) fn match_key(key: &str, keys: &[&'static str]) -> Option<&'static str> {
    keys.iter().copied().find(|k| k.eq_ignore_ascii_case(key))
}
