//! HuJSON as Tailscale's policy files use it: JSON (RFC 8259) plus `//` and `/* */` comments and
//! a trailing comma after the last element of an array or object. The reader keeps the 1-based
//! line of every value and every object key, for error messages, and is total: any text gives a
//! value or an error, never a panic, in time linear in its length and with nesting bounded by
//! [`MAX_DEPTH`].

use crate::error::PolicyError;

/// The deepest nesting of arrays and objects accepted (a policy needs 4).
pub const MAX_DEPTH: usize = 32;

/// A parsed value and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// 1-based line of the value's first character.
    pub line: usize,
    /// What the value is.
    pub kind: Kind,
}

/// The JSON kinds. Numbers are kept as their text: no policy field is numeric.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: keys in file order, duplicates kept (the policy reader refuses them).
    Object(Vec<(Key, Value)>),
}

/// An object key and its line.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// 1-based line of the key.
    pub line: usize,
    /// The key, unescaped.
    pub name: String,
}

impl Kind {
    /// What the value is, for "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Array(_) => "a list",
            Kind::Object(_) => "an object",
        }
    }
}

/// Parses one HuJSON document (a single value, with comments and white space around it).
pub fn parse(text: &str) -> Result<Value, PolicyError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    r.skip_space()?;
    let v = r.value(0)?;
    r.skip_space()?;
    if r.pos < r.s.len() {
        return Err(r.error("unexpected text after the end of the document"));
    }
    Ok(v)
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
}

impl Reader<'_> {
    fn error(&self, message: &str) -> PolicyError {
        PolicyError::at(self.line, message)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    /// Skips white space and comments, counting lines.
    fn skip_space(&mut self) -> Result<(), PolicyError> {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'/' if self.s.get(self.pos + 1) == Some(&b'/') => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'/' if self.s.get(self.pos + 1) == Some(&b'*') => {
                    let start = self.line;
                    self.pos += 2;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(PolicyError::at(start, "comment `/*` is never closed"))
                            }
                            Some(b'*') if self.s.get(self.pos + 1) == Some(&b'/') => {
                                self.pos += 2;
                                break;
                            }
                            Some(b'\n') => {
                                self.line += 1;
                                self.pos += 1;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, PolicyError> {
        let line = self.line;
        let kind = match self.peek() {
            None => return Err(self.error("unexpected end of the document")),
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Kind::Str(self.string()?),
            Some(b'-' | b'0'..=b'9') => Kind::Number(self.number()?),
            Some(b't') => self.word("true", Kind::Bool(true))?,
            Some(b'f') => self.word("false", Kind::Bool(false))?,
            Some(b'n') => self.word("null", Kind::Null)?,
            Some(_) => return Err(self.error("expected a value")),
        };
        Ok(Value { line, kind })
    }

    fn word(&mut self, word: &str, kind: Kind) -> Result<Kind, PolicyError> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(kind)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn enter(&mut self, depth: usize) -> Result<(), PolicyError> {
        if depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.pos += 1; // the opening bracket
        self.skip_space()
    }

    /// After an element: `,` (then maybe the closing bracket: a trailing comma) or `close`.
    /// Returns true when the container is closed.
    fn after_element(&mut self, close: u8, what: &str) -> Result<bool, PolicyError> {
        self.skip_space()?;
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_space()?;
                if self.peek() == Some(close) {
                    self.pos += 1;
                    return Ok(true);
                }
                Ok(false)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.error(&format!("expected `,` or the end of the {what}"))),
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, PolicyError> {
        self.enter(depth)?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Kind::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            if self.after_element(b']', "list")? {
                return Ok(Kind::Array(items));
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Kind, PolicyError> {
        self.enter(depth)?;
        let mut members = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Kind::Object(members));
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let key = Key {
                line: self.line,
                name: self.string()?,
            };
            self.skip_space()?;
            if self.peek() != Some(b':') {
                return Err(PolicyError::key(self.line, &key.name, "expected `:`"));
            }
            self.pos += 1;
            self.skip_space()?;
            let value = self.value(depth + 1)?;
            members.push((key, value));
            if self.after_element(b'}', "object")? {
                return Ok(Kind::Object(members));
            }
        }
    }

    fn number(&mut self) -> Result<String, PolicyError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("malformed number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("malformed number"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("malformed number"));
            }
            self.digits();
        }
        // Only ASCII was consumed, so the slice is valid UTF-8.
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<String, PolicyError> {
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("string is never closed"));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                0..=0x1f => return Err(self.error("control character or line break in a string")),
                _ => out.push(c),
            }
        }
        // The input is a &str and escapes push whole UTF-8 sequences, so this never fails;
        // the error arm keeps the reader total all the same.
        String::from_utf8(out).map_err(|_| self.error("string is not valid UTF-8"))
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), PolicyError> {
        let Some(c) = self.peek() else {
            return Err(self.error("string is never closed"));
        };
        self.pos += 1;
        let ch = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => self.unicode_escape()?,
            _ => return Err(self.error("unknown escape in a string")),
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    /// `\uXXXX` (already past the `u`), with UTF-16 surrogate pairs.
    fn unicode_escape(&mut self) -> Result<char, PolicyError> {
        let hi = self.hex4()?;
        let code = if (0xd800..0xdc00).contains(&hi) {
            if self.s.get(self.pos..self.pos + 2) != Some(b"\\u") {
                return Err(self.error("unpaired surrogate in a \\u escape"));
            }
            self.pos += 2;
            let lo = self.hex4()?;
            if !(0xdc00..0xe000).contains(&lo) {
                return Err(self.error("unpaired surrogate in a \\u escape"));
            }
            0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.error("unpaired surrogate in a \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, PolicyError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                _ => return Err(self.error("malformed \\u escape")),
            };
            v = v * 16 + u32::from(d);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_line(text: &str) -> usize {
        parse(text).unwrap_err().line
    }

    #[test]
    fn comments_and_trailing_commas() {
        let v = parse("// c\n{ /* a\nb */ \"k\": [1, \"x\", true, null,], }\n").unwrap();
        let Kind::Object(members) = v.kind else {
            panic!("not an object")
        };
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].0.name, "k");
        assert_eq!(members[0].0.line, 3);
        let Kind::Array(items) = &members[0].1.kind else {
            panic!("not a list")
        };
        assert_eq!(items.len(), 4);
        assert_eq!(items[1].kind, Kind::Str("x".into()));
    }

    #[test]
    fn lines_of_values() {
        let v = parse("[\n\"a\",\n\n\"b\"\n]").unwrap();
        let Kind::Array(items) = v.kind else { panic!() };
        assert_eq!((items[0].line, items[1].line), (2, 4));
    }

    #[test]
    fn escapes() {
        let v = parse(r#""a\"\\\/\n\u00e9\ud83d\ude00""#).unwrap();
        assert_eq!(v.kind, Kind::Str("a\"\\/\n\u{e9}\u{1f600}".into()));
        assert!(parse(r#""\ud83d""#).is_err());
        assert!(parse(r#""\ude00""#).is_err());
        assert!(parse(r#""\x""#).is_err());
    }

    #[test]
    fn refused_with_lines() {
        assert_eq!(err_line("{\n\"a\": 1,,\n}"), 2);
        assert_eq!(err_line("[1 2]"), 1);
        assert_eq!(err_line("{\n\n/* never closed"), 3);
        assert_eq!(err_line("{\"a\":\n\"line\nbreak\"}"), 2);
        assert_eq!(err_line("{} {}"), 1);
        assert_eq!(err_line("[,]"), 1);
        assert_eq!(err_line("{\"a\" 1}"), 1);
        assert_eq!(err_line("\n\n01"), 3);
        assert_eq!(err_line("[1.]"), 1);
        assert_eq!(err_line(""), 1);
        assert_eq!(err_line("tru"), 1);
    }

    #[test]
    fn depth_is_bounded() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(&ok).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(&deep).unwrap_err().message, "nested too deeply");
        // Far deeper than any stack would take, refused at the limit.
        assert!(parse(&"[".repeat(1 << 20)).is_err());
    }

    #[test]
    fn numbers() {
        for n in ["0", "-1", "1.5e-3", "10E+2"] {
            assert_eq!(parse(n).unwrap().kind, Kind::Number(n.into()));
        }
    }
}
