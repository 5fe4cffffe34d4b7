//! Server-sent events, fed bytes as they arrive from the network, however the chunks split them
//! (mid-line, mid-UTF-8 character, mid-`\r\n`).

/// One event: its `event:` name (if any) and its `data:` lines joined by newlines.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

#[derive(Default)]
pub struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    /// Adds bytes and returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf) {
            let block: Vec<u8> = self.buf.drain(..end + sep).collect();
            if let Some(e) = parse_block(&block[..end]) {
                events.push(e);
            }
        }
        events
    }

    /// Whatever is left when the stream ends (a final event without a blank line after it).
    pub fn finish(&mut self) -> Option<Event> {
        let block = std::mem::take(&mut self.buf);
        parse_block(&block)
    }
}

/// Position of the first blank line (`\n\n`, `\r\n\r\n`, `\r\r`) and the separator's length.
fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
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
                got.extend(p.push(chunk));
            }
            got.extend(p.finish());
            assert_eq!(got.len(), 3, "chunk size {size}");
            assert_eq!(got[0].name.as_deref(), Some("a"));
            assert_eq!(got[0].data, "{\"x\":\"h\u{e9}llo\"}");
            assert_eq!(got[1].data, "two\nlines");
            assert_eq!(got[2].data, "[DONE]");
        }
    }
}
