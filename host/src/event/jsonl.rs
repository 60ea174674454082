//! Reading audit events from JSON lines (one event object per line).

use std::io::{self, BufRead, Read};

use super::AuditEvent;

/// Longest accepted input line. Bounds the memory one malformed or hostile line can take.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A line that is not a valid event. The reader continues after it; the caller decides
/// whether to stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct MalformedLine {
    /// 1-based line number in the input.
    pub line: u64,
    /// What is wrong, including the column for JSON syntax errors.
    pub message: String,
}

/// Iterates over the events of a JSON-lines stream. Blank lines are skipped.
///
/// Each item is `Ok(Ok((line, event)))`, `Ok(Err(malformed))` for a bad line (reading
/// continues with the next one), or `Err(io)` when the input itself cannot be read.
pub struct JsonLinesReader<R> {
    input: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> JsonLinesReader<R> {
    /// Wraps a buffered reader.
    pub fn new(input: R) -> Self {
        Self {
            input,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// Reads the next physical line into `buf`; returns false at end of input.
    fn read_line(&mut self) -> io::Result<bool> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let n = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        if self.buf.len() > MAX_LINE_BYTES && self.buf.last() != Some(&b'\n') {
            // Discard the rest of the overlong line so the next item starts on a new line.
            let mut sink = Vec::new();
            loop {
                sink.clear();
                let n = (&mut self.input)
                    .take(1 << 16)
                    .read_until(b'\n', &mut sink)?;
                if n == 0 || sink.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        Ok(true)
    }

    /// Parses the line in `buf`.
    fn parse(&self) -> Result<AuditEvent, MalformedLine> {
        let malformed = |message: String| MalformedLine {
            line: self.line,
            message,
        };
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(malformed(format!(
                "line is longer than the {MAX_LINE_BYTES}-byte limit"
            )));
        }
        let event: AuditEvent =
            serde_json::from_slice(&self.buf).map_err(|e| malformed(e.to_string()))?;
        event.validate().map_err(|e| malformed(e.to_string()))?;
        Ok(event)
    }
}

impl<R: BufRead> Iterator for JsonLinesReader<R> {
    type Item = io::Result<Result<(u64, AuditEvent), MalformedLine>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.read_line() {
                Err(e) => return Some(Err(e)),
                Ok(false) => return None,
                Ok(true) if self.buf.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(true) => return Some(Ok(self.parse().map(|e| (self.line, e)))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_bad_lines_by_number_and_continues() {
        let input = "\
{\"id\":\"a\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\"}

not json
{\"id\":\"b\",\"occurred_at\":\"2026-01-01T00:00:00Z\"}
{\"id\":\"c\",\"occurred_at\":\"2026-01-01T00:00:00Z\",\"kind\":\"k\"}
";
        let items: Vec<_> = JsonLinesReader::new(input.as_bytes())
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].as_ref().unwrap().0, 1);
        assert_eq!(items[1].as_ref().unwrap_err().line, 3);
        let missing = items[2].as_ref().unwrap_err();
        assert_eq!(missing.line, 4);
        assert!(missing.message.contains("kind"), "{}", missing.message);
        assert_eq!(items[3].as_ref().unwrap().1.id, "c");
    }
}
