//! Open documents and positions: the editor's text of each open file (changes applied as they
//! come, in UTF-16 positions, as the protocol counts them), file URIs, and the file system the
//! spec loader reads through.

use lsp_types::{Position, Range, TextDocumentContentChangeEvent, Uri};
use rekindle_spec::loader::{normalize, Fs, RealFs};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The open documents by absolute path.
#[derive(Default)]
pub struct Docs {
    open: HashMap<PathBuf, String>,
}

impl Docs {
    pub fn open(&mut self, path: PathBuf, text: String) {
        self.open.insert(path, text);
    }

    pub fn close(&mut self, path: &Path) {
        self.open.remove(path);
    }

    pub fn get(&self, path: &Path) -> Option<&str> {
        self.open.get(path).map(String::as_str)
    }

    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.open.keys()
    }

    /// Applies the editor's changes in order: a range replaced, or the whole text.
    pub fn change(&mut self, path: &Path, changes: Vec<TextDocumentContentChangeEvent>) {
        let Some(text) = self.open.get_mut(path) else {
            return;
        };
        for c in changes {
            match c.range {
                None => *text = c.text,
                Some(r) => {
                    let start = offset(text, r.start);
                    let end = offset(text, r.end).max(start);
                    text.replace_range(start..end, &c.text);
                }
            }
        }
    }
}

/// The loader's view: an open document's text over what is on disk.
pub struct Overlay<'a> {
    pub docs: &'a Docs,
}

impl Overlay<'_> {
    fn doc(&self, path: &Path) -> Option<&str> {
        let abs = std::path::absolute(path).ok()?;
        self.docs.get(&normalize(&abs))
    }
}

impl Fs for Overlay<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        match self.doc(path) {
            Some(t) => Ok(t.as_bytes().to_vec()),
            None => RealFs.read(path),
        }
    }
    fn is_file(&self, path: &Path) -> bool {
        self.doc(path).is_some() || RealFs.is_file(path)
    }
    fn len(&self, path: &Path) -> std::io::Result<u64> {
        match self.doc(path) {
            Some(t) => Ok(t.len() as u64),
            None => RealFs.len(path),
        }
    }
    fn canonicalize(&self, path: &Path) -> std::io::Result<PathBuf> {
        RealFs.canonicalize(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.doc(path).is_some() || RealFs.exists(path)
    }
    fn home(&self) -> Option<PathBuf> {
        RealFs.home()
    }
}

/// The byte offset of an LSP position (UTF-16 column) in `text`, clamped to the text.
pub fn offset(text: &str, p: Position) -> usize {
    let mut line_start = 0;
    for _ in 0..p.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let mut units = 0u32;
    for (i, ch) in text[line_start..line_end].char_indices() {
        if units >= p.character {
            return line_start + i;
        }
        units += ch.len_utf16() as u32;
    }
    line_end
}

/// Line starts of a text, for turning byte offsets into LSP positions.
pub struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(text: &'a str) -> Lines<'a> {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let mut end = offset;
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let character = self.text[start..end]
            .chars()
            .map(|c| c.len_utf16() as u32)
            .sum();
        Position {
            line: line as u32,
            character,
        }
    }

    pub fn range(&self, start: usize, end: usize) -> Range {
        Range {
            start: self.position(start),
            end: self.position(end.max(start)),
        }
    }
}

/// The absolute, folded path of a `file:` URI.
pub fn path_of(uri: &Uri) -> Option<PathBuf> {
    let s = uri.as_str();
    let rest = s.strip_prefix("file://")?;
    // `file://host/path` is not a local file; `file:///path` is.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return None;
    }
    let bytes = percent_decode(path)?;
    let text = String::from_utf8(bytes).ok()?;
    Some(normalize(Path::new(&text)))
}

/// The `file:` URI of an absolute path.
pub fn uri_of(path: &Path) -> Option<Uri> {
    let abs = std::path::absolute(path).ok()?;
    let mut s = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&s).ok()
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_positions_round_trip() {
        let text = "a\n\u{1F600}é:X:\nlast";
        let lines = Lines::new(text);
        // The emoji is two UTF-16 units, é one.
        let at = text.find(":X:").unwrap();
        let p = lines.position(at);
        assert_eq!((p.line, p.character), (1, 3));
        assert_eq!(offset(text, p), at);
        assert_eq!(offset(text, Position::new(9, 0)), text.len());
        assert_eq!(offset(text, Position::new(0, 99)), 1);
    }

    #[test]
    fn changes_apply_in_order() {
        let mut d = Docs::default();
        let p = PathBuf::from("/x/app.plain");
        d.open(p.clone(), "hello\nworld\n".into());
        d.change(
            &p,
            vec![
                TextDocumentContentChangeEvent {
                    range: Some(Range::new(Position::new(1, 0), Position::new(1, 5))),
                    range_length: None,
                    text: "there".into(),
                },
                TextDocumentContentChangeEvent {
                    range: Some(Range::new(Position::new(0, 5), Position::new(0, 5))),
                    range_length: None,
                    text: ",".into(),
                },
            ],
        );
        assert_eq!(d.get(&p), Some("hello,\nthere\n"));
    }

    #[test]
    fn file_uris_round_trip() {
        let p = Path::new("/tmp/a dir/spéc.plain");
        let u = uri_of(p).unwrap();
        assert_eq!(u.as_str(), "file:///tmp/a%20dir/sp%C3%A9c.plain");
        assert_eq!(path_of(&u).unwrap(), p);
        assert!(path_of(&Uri::from_str("https://example.com/x").unwrap()).is_none());
    }
}
