//! Bounded line reading for both ends of the socket: the daemon reading requests and the
//! command line reading replies. No input can make either buffer more than one line's limit.

use std::io::{self, BufRead};

/// The result of one bounded line read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// A complete line is in the buffer, without its `\n`.
    Complete,
    /// End of input before any byte of a line.
    Eof,
    /// End of input in the middle of a line (the partial line is in the buffer).
    Partial,
    /// The line exceeded the limit; it was consumed through its `\n` and discarded.
    TooLong,
}

/// Reads one `\n`-terminated line into `buf` (cleared first), never buffering more than `max`
/// bytes of it. This is the only way input enters the parser, which bounds memory per line.
pub(super) fn read_line_bounded<R: BufRead + ?Sized>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (too_long, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Partial,
            });
        }
        let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if !too_long {
            if buf.len() + chunk.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        let used = found.unwrap_or(available.len());
        reader.consume(used);
        if found.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reader_never_buffers_past_the_limit() {
        // A reader that yields one huge line in small chunks.
        let data = vec![b'a'; 1 << 20];
        let mut reader = io::BufReader::with_capacity(64, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_line_bounded(&mut reader, &mut buf, 100).unwrap(),
            Line::TooLong
        );
        assert!(buf.capacity() <= 256);
        let mut input: &[u8] = b"abc";
        assert_eq!(
            read_line_bounded(&mut input, &mut buf, 100).unwrap(),
            Line::Partial
        );
        assert_eq!(buf, b"abc");
    }
}
