//! Source files and spans: every diagnostic and every spec item points back into a file held here.

use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceDb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end.max(start) as u32,
        }
    }
}

/// One loaded file: its path as the user should see it and its text after decoding
/// (byte-order mark removed, CRLF folded to LF so offsets and lines agree).
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> SourceFile {
        let line_starts = line_starts(&text);
        SourceFile {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let offset = offset.min(self.text.len() as u32);
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line] as usize;
        let end = floor_char_boundary(&self.text, offset as usize);
        let col = self.text[start..end.max(start)].chars().count();
        (line + 1, col + 1)
    }

    /// Byte offset where 0-based `line` starts, or the end of the text.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line)
            .map(|&s| s as usize)
            .unwrap_or(self.text.len())
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The text of 0-based `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_start(line);
        let end = self
            .line_starts
            .get(line + 1)
            .map(|&s| s as usize - 1)
            .unwrap_or(self.text.len());
        &self.text[start..end.max(start)]
    }
}

pub(crate) fn line_starts(text: &str) -> Vec<u32> {
    let mut starts = Vec::with_capacity(text.len() / 40 + 1);
    starts.push(0);
    starts.extend(memchr_newlines(text.as_bytes()).map(|i| i as u32 + 1));
    starts
}

fn memchr_newlines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', bytes)
}

pub fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// All files read while loading a project, addressed by [`FileId`].
#[derive(Debug, Default)]
pub struct SourceDb {
    files: Vec<SourceFile>,
}

impl SourceDb {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile::new(path, text));
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// Lends a file's text out (leaving it empty) so it can be read while the database grows;
    /// give it back with [`SourceDb::restore_text`].
    pub fn take_text(&mut self, id: FileId) -> String {
        std::mem::take(&mut self.files[id.0 as usize].text)
    }

    pub fn restore_text(&mut self, id: FileId, text: String) {
        self.files[id.0 as usize].text = text;
    }

    pub fn find(&self, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.path == path)
            .map(|i| FileId(i as u32))
    }

    pub fn files(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(i as u32), f))
    }
}

/// Why bytes could not become spec text.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not UTF-8: the offset of the first bad byte.
    InvalidUtf8 {
        offset: usize,
        line: usize,
        column: usize,
    },
    /// A NUL byte: almost certainly a binary file.
    Binary { offset: usize },
}

/// Turns file bytes into spec text: UTF-8 only, a leading byte-order mark dropped, CRLF and lone CR
/// folded to LF.
pub fn decode(bytes: &[u8]) -> Result<String, DecodeError> {
    decode_owned(bytes.to_vec()).map_err(|(e, _)| e)
}

/// [`decode`] without copying valid input; on failure the bytes come back with the error.
pub fn decode_owned(mut bytes: Vec<u8>) -> Result<String, (DecodeError, Vec<u8>)> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    if let Some(offset) = memchr::memchr(0, &bytes) {
        return Err((DecodeError::Binary { offset }, bytes));
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let before = &bytes[..offset];
            let line = memchr::memchr_iter(b'\n', before).count() + 1;
            let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
            let column = String::from_utf8_lossy(&before[line_start..])
                .chars()
                .count()
                + 1;
            return Err((
                DecodeError::InvalidUtf8 {
                    offset,
                    line,
                    column,
                },
                bytes,
            ));
        }
    };
    if memchr::memchr(b'\r', text.as_bytes()).is_none() {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_normalizes() {
        assert_eq!(decode(b"\xEF\xBB\xBFa\r\nb\rc").unwrap(), "a\nb\nc");
        assert_eq!(
            decode(b"ab\n\xffc"),
            Err(DecodeError::InvalidUtf8 {
                offset: 3,
                line: 2,
                column: 1
            })
        );
        assert!(matches!(decode(b"a\0"), Err(DecodeError::Binary { .. })));
    }

    #[test]
    fn line_col_counts_chars() {
        let f = SourceFile::new("x".into(), "ab\nçd\n".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_text(1), "çd");
    }
}
