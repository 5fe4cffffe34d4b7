//! Server-sent events, fed bytes as they arrive from the network, however the chunks split them
//! (mid-line, mid-UTF-8 character, mid-`\r\n`).

/// One event: its `event:` name (if any) and its `data:` lines joined by newlines.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// The largest event accepted, in bytes. A model's reply streams as many small events (a token
/// or a few each); an event this large is a broken or hostile server, and without a bound an
/// event that never ends would grow in memory for as long as the server keeps sending.
pub const MAX_EVENT: usize = 4 * 1024 * 1024;

/// An event (or the start of one) passed the bound.
#[derive(Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: usize,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a server-sent event passed {} bytes", self.limit)
    }
}

pub struct Parser {
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no blank line (so each byte is scanned about once).
    scanned: usize,
    max_event: usize,
}

impl Default for Parser {
    fn default() -> Parser {
        Parser::with_limit(MAX_EVENT)
    }
}

impl Parser {
    /// A parser that refuses events larger than `max_event` bytes.
    pub fn with_limit(max_event: usize) -> Parser {
        Parser {
            buf: Vec::new(),
            scanned: 0,
            max_event,
        }
    }

    /// Adds bytes and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, TooLarge> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf, self.scanned) {
            if end > self.max_event {
                return Err(TooLarge {
                    limit: self.max_event,
                });
            }
            let block: Vec<u8> = self.buf.drain(..end + sep).collect();
            self.scanned = 0;
            if let Some(e) = parse_block(&block[..end]) {
                events.push(e);
            }
        }
        if self.buf.len() > self.max_event {
            return Err(TooLarge {
                limit: self.max_event,
            });
        }
        // A separator (at most 4 bytes) may start in the last 3 bytes and end in the next push.
        self.scanned = self.buf.len().saturating_sub(3);
        Ok(events)
    }

    /// Whatever is left when the stream ends (a final event without a blank line after it).
    pub fn finish(&mut self) -> Option<Event> {
        let block = std::mem::take(&mut self.buf);
        self.scanned = 0;
        parse_block(&block)
    }
}

/// Position of the first blank line (`\n\n`, `\r\n\r\n`, `\r\r`) and the separator's length.
fn find_blank_line(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < b.len() {
        if b[i] == b'\n' && b.get(i + 1) == Some(&b'\n') {
            return Some((i, 2));
        }
        if b[i..].starts_with(b"\r\n\r\n") {
            return Some((i, 4));
        }
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\r') {
            return Some((i, 2));
        }
        if b[i] == b'\n' && b[i + 1..].starts_with(b"\r\n") {
            return Some((i, 3));
        }
        i += 1;
    }
    None
}

fn parse_block(block: &[u8]) -> Option<Event> {
    let text = String::from_utf8_lossy(block);
    let mut name = None;
    let mut data: Vec<&str> = Vec::new();
    for line in text.split(['\n']).map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => data.push(value),
            "event" => name = Some(value.to_string()),
            _ => {}
        }
    }
    if data.is_empty() && name.is_none() {
        return None;
    }
    Some(Event {
        name,
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_any_split() {
        let stream = "event: a\ndata: {\"x\":\"h\u{e9}llo\"}\n\n: comment\r\ndata: two\r\ndata: lines\r\n\r\ndata: [DONE]\n\n";
        let bytes = stream.as_bytes();
        for size in 1..bytes.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                got.extend(p.push(chunk).unwrap());
            }
            got.extend(p.finish());
            assert_eq!(got.len(), 3, "chunk size {size}");
            assert_eq!(got[0].name.as_deref(), Some("a"));
            assert_eq!(got[0].data, "{\"x\":\"h\u{e9}llo\"}");
            assert_eq!(got[1].data, "two\nlines");
            assert_eq!(got[2].data, "[DONE]");
        }
    }

    #[test]
    fn events_are_bounded() {
        // Many small events are fine, however long the stream.
        let mut p = Parser::with_limit(64);
        for _ in 0..1000 {
            assert_eq!(p.push(b"data: small\n\n").unwrap().len(), 1);
        }
        // One event larger than the bound, complete in one push.
        let big = format!("data: {}\n\n", "x".repeat(100));
        assert_eq!(
            Parser::with_limit(64).push(big.as_bytes()),
            Err(TooLarge { limit: 64 })
        );
        // An event that never ends is refused once it passes the bound, not kept growing.
        let mut p = Parser::with_limit(64);
        p.push(b"data: ").unwrap();
        let mut refused = false;
        for _ in 0..100 {
            if p.push(b"xxxxxxxx").is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
        assert!(p.buf.len() <= 64 + 8);
        assert!(TooLarge { limit: 64 }.to_string().contains("64 bytes"));
    }

    #[test]
    fn a_large_event_in_tiny_chunks_is_read_in_linear_time() {
        let payload = "y".repeat(MAX_EVENT / 2);
        let stream = format!("data: {payload}\r\n\r\n");
        let mut p = Parser::default();
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            got.extend(p.push(chunk).unwrap());
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), payload.len());
        // Rescanning the buffer on every push would take minutes.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
