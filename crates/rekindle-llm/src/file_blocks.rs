//! The reply format for code: one block per file, simple enough for a 0.5B model to follow and
//! for a grammar to enforce.
//!
//! ```text
//! --- FILE: src/app.py
//! print("hello, world")
//! --- END FILE
//! --- DELETE: src/old.py
//! ```
//!
//! Prose outside blocks is ignored (hosted models add it); a reply must hold at least one block.

/// One file the model wants written, or removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileBlock {
    Write { path: String, content: String },
    Delete { path: String },
}

impl FileBlock {
    pub fn path(&self) -> &str {
        match self {
            FileBlock::Write { path, .. } | FileBlock::Delete { path } => path,
        }
    }
}

pub const OPEN: &str = "--- FILE: ";
pub const CLOSE: &str = "--- END FILE";
pub const DELETE: &str = "--- DELETE: ";

/// Why a reply could not be read as file blocks; `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

/// Reads the blocks of a reply.
pub fn parse(reply: &str) -> Result<Vec<FileBlock>, FormatError> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, String)> = None;
    for (i, raw) in reply.split_inclusive('\n').enumerate() {
        let line = raw.trim_end_matches(['\n', '\r']);
        if let Some((_, path, content)) = &mut open {
            // A new block before the close: the close was forgotten (hosted models do that).
            if line.starts_with(OPEN) && line.len() > OPEN.len() {
                blocks.push(FileBlock::Write {
                    path: std::mem::take(path),
                    content: unfence(path, &std::mem::take(content)),
                });
                open = None;
            }
        }
        if let Some((_, path, content)) = &mut open {
            // A closing fence with the close glued to it (```` ```--- END FILE ````, as the 0.5B
            // writes it): the fence, then the close.
            let glued = line.starts_with("```") && line.trim_start_matches('`').trim_end() == CLOSE;
            if glued {
                content.push_str("```\n");
            }
            if glued || line.trim_end() == CLOSE {
                let content = unfence(path, &std::mem::take(content));
                blocks.push(FileBlock::Write {
                    path: std::mem::take(path),
                    content,
                });
                open = None;
            } else {
                content.push_str(line);
                content.push('\n');
            }
            continue;
        }
        if let Some(p) = line.strip_prefix(OPEN) {
            let path = p.trim().trim_matches('`').to_string();
            if path.is_empty() {
                return Err(FormatError {
                    line: i + 1,
                    message: "a file block without a path".into(),
                });
            }
            open = Some((i + 1, path, String::new()));
        } else if let Some(p) = line.strip_prefix(DELETE) {
            let path = p.trim().trim_matches('`').to_string();
            if path.is_empty() {
                return Err(FormatError {
                    line: i + 1,
                    message: "a delete line without a path".into(),
                });
            }
            blocks.push(FileBlock::Delete { path });
        }
    }
    if let Some((line, path, _)) = open {
        return Err(FormatError {
            line,
            message: format!("the block for {path} is not closed with `{CLOSE}`"),
        });
    }
    if blocks.is_empty() {
        return Err(FormatError {
            line: 0,
            message: format!("the reply holds no file block (`{OPEN}path` … `{CLOSE}`)"),
        });
    }
    Ok(blocks)
}

/// Models like to wrap a file in a Markdown fence (```` ```python ````…```` ``` ````); the fence is
/// not part of the file. A reply cut short (by the token cap or the runaway guard) can leave the
/// opening fence without its close, and a model can close a fence it never opened: when no
/// other line of the block is a fence, that line goes too.
fn unfence(path: &str, content: &str) -> String {
    let mut lines: Vec<&str> = content.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let is_fence = |l: &str| l.trim_start().starts_with("```");
    // Blank lines before the opening fence (the 0.5B leaves one after the block's first line)
    // go with it.
    let blank = lines.iter().take_while(|l| l.trim().is_empty()).count();
    if lines.get(blank).is_some_and(|l| is_fence(l)) {
        lines.drain(..blank);
    }
    // Comment lines, then a fence that opens the code (`# Makes the tests a package.`, then
    // ```` ```python ````, then the code, closed or not): the 1.5B writes conformance
    // `__init__.py` files so (10 of HumanEval's first 40 at 87d69cb), a syntax error
    // to whatever imports them. The comments stay; the fence goes. Not in documentation, where
    // a heading before a fence is the text itself.
    let comments = lines
        .iter()
        .take_while(|l| {
            let t = l.trim_start();
            t.is_empty() || t.starts_with('#') || t.starts_with("//")
        })
        .count();
    if comments > 0 && !is_documentation(path) && lines.get(comments).is_some_and(|l| is_fence(l)) {
        let mut code: Vec<&str> = lines[comments + 1..].to_vec();
        if code.last().is_some_and(|l| l.trim() == "```") {
            code.pop();
        }
        if !code.iter().any(|l| is_fence(l)) {
            let mut out: Vec<&str> = lines[..comments].to_vec();
            out.extend(code);
            return out.join("\n") + "\n";
        }
    }
    let Some(last) = lines.len().checked_sub(1) else {
        return content.to_string();
    };
    let opened = is_fence(lines[0]);
    // A closing fence ends the block: after an opening one, or with the opening line left out
    // (the model closed a fence it thought it had opened).
    let closed = lines[last].trim() == "```" && (!opened || last >= 1);
    let inner = match (opened, closed) {
        (true, true) => &lines[1..last],
        (true, false) => &lines[1..],
        (false, true) => &lines[..last],
        (false, false) => return content.to_string(),
    };
    if inner.iter().any(|l| is_fence(l)) {
        return content.to_string();
    }
    let mut out = inner.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Whether `path` names a documentation file (Markdown, reStructuredText, AsciiDoc, text),
/// whose fences are its own.
fn is_documentation(path: &str) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some("md" | "markdown" | "rst" | "adoc" | "txt")
    )
}

/// Writes blocks in the format: the inverse of [`parse`], which the tests check. (Prompts show
/// existing files through their templates.)
#[cfg(test)]
fn format(blocks: &[FileBlock]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            FileBlock::Write { path, content } => {
                out.push_str(OPEN);
                out.push_str(path);
                out.push('\n');
                out.push_str(content);
                if !content.is_empty() && !content.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(CLOSE);
                out.push('\n');
            }
            FileBlock::Delete { path } => {
                out.push_str(DELETE);
                out.push_str(path);
                out.push('\n');
            }
        }
    }
    out
}

/// A llama.cpp GBNF grammar that admits exactly a sequence of file blocks. A content line may be
/// anything that does not start with `--- ` (spelled out character by character, since GBNF has
/// no negation of strings): so the only way on from a file is `--- END FILE`, and a small model
/// cannot run past it, or start the next file without closing this one.
pub const GRAMMAR: &str = r#"root ::= block+
block ::= "--- FILE: " path "\n" line* "--- END FILE\n"
path ::= [A-Za-z0-9_.] [A-Za-z0-9_./-]*
line ::= "\n" | [^-\n] [^\n]* "\n" | "-" l1
l1 ::= "\n" | [^-\n] [^\n]* "\n" | "-" l2
l2 ::= "\n" | [^-\n] [^\n]* "\n" | "-" l3
l3 ::= "\n" | [^ \n] [^\n]* "\n"
"#;

/// How to ask for the format, for prompts.
pub const INSTRUCTIONS: &str = "Reply with complete files only, each in a file block:\n--- FILE: <relative path>\n<the whole file>\n--- END FILE\nWrite nothing outside file blocks.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let blocks = vec![
            FileBlock::Write {
                path: "a.py".into(),
                content: "print(1)\n".into(),
            },
            FileBlock::Delete {
                path: "b.py".into(),
            },
            FileBlock::Write {
                path: "c/d.txt".into(),
                content: "x\n--- not the end\n".into(),
            },
        ];
        assert_eq!(parse(&format(&blocks)).unwrap(), blocks);
    }

    #[test]
    fn a_forgotten_close_ends_at_the_next_block() {
        let b = parse("--- FILE: a.py\nx\n--- FILE: b.py\ny\n--- END FILE\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0],
            FileBlock::Write {
                path: "a.py".into(),
                content: "x\n".into()
            }
        );
    }

    #[test]
    fn a_wrapping_fence_is_removed() {
        let r = "--- FILE: a.py\n```python\nprint(1)\n```\n\n--- END FILE\n--- FILE: README.md\n# T\n```sh\nrun\n```\nmore\n--- END FILE\n";
        let b = parse(r).unwrap();
        assert_eq!(
            b[0],
            FileBlock::Write {
                path: "a.py".into(),
                content: "print(1)\n".into()
            }
        );
        assert!(matches!(&b[1], FileBlock::Write { content, .. } if content.contains("```sh")));
        // With blank lines before the opening fence, as the 0.5B writes it.
        let r = "--- FILE: a.py\n\n```python\nprint(1)\n```\n\n--- END FILE\n";
        assert_eq!(
            parse(r).unwrap()[0],
            FileBlock::Write {
                path: "a.py".into(),
                content: "print(1)\n".into()
            }
        );
        // Blank lines leading a file with no fence stay.
        let r = "--- FILE: a.txt\n\nx\n--- END FILE\n";
        assert_eq!(
            parse(r).unwrap()[0],
            FileBlock::Write {
                path: "a.txt".into(),
                content: "\nx\n".into()
            }
        );
    }

    #[test]
    fn a_close_glued_to_a_closing_fence_closes_the_block() {
        // HumanEval/13 with the 0.5B at e32acf3: the marker again on its own line after it.
        let r = "--- FILE: a.py\n```python\ndef f():\n    return 1\n```--- END FILE\n--- END FILE\n--- FILE: b.py\nx = 2\n```--- END FILE\n";
        let b = parse(r).unwrap();
        assert_eq!(
            b,
            vec![
                FileBlock::Write {
                    path: "a.py".into(),
                    content: "def f():\n    return 1\n".into()
                },
                FileBlock::Write {
                    path: "b.py".into(),
                    content: "x = 2\n".into()
                },
            ]
        );
        // A line that only mentions the close is content.
        let r = "--- FILE: a.md\nwrite ```--- END FILE``` last\n--- END FILE\n";
        assert!(
            matches!(&parse(r).unwrap()[0], FileBlock::Write { content, .. } if content.contains("last"))
        );
    }

    #[test]
    fn a_fence_left_half_open_or_half_closed_is_removed() {
        // As the runaway guard leaves a test file it cut: the fence opened, never closed.
        let r = "--- FILE: test_a.py\n```python\nimport unittest\nx = 1\n--- END FILE\n";
        let b = parse(r).unwrap();
        assert_eq!(
            b[0],
            FileBlock::Write {
                path: "test_a.py".into(),
                content: "import unittest\nx = 1\n".into()
            }
        );
        // Comment lines, then a fence around the code, closed or not: the fence goes, the
        // comments stay (an `__init__.py` so written is a syntax error to what imports it).
        for close in ["", "```\n"] {
            let r = format!("--- FILE: conformance_tests/__init__.py\n# Makes the tests a package.\n```python\nfrom .test_a import *\n{close}--- END FILE\n");
            assert_eq!(
                parse(&r).unwrap()[0],
                FileBlock::Write {
                    path: "conformance_tests/__init__.py".into(),
                    content: "# Makes the tests a package.\nfrom .test_a import *\n".into()
                }
            );
        }
        // In documentation a heading before a fence is the text; and with another fence
        // further on, the fences are the file's own.
        let doc = "# Usage\n```sh\nrun\n```\n";
        let r = format!("--- FILE: README.md\n{doc}--- END FILE\n");
        assert!(
            matches!(&parse(&r).unwrap()[0], FileBlock::Write { content, .. } if content == doc)
        );
        let two = "# a\n```python\nx = 1\n```\n```python\ny = 2\n";
        let r = format!("--- FILE: a.py\n{two}--- END FILE\n");
        assert!(
            matches!(&parse(&r).unwrap()[0], FileBlock::Write { content, .. } if content == two)
        );
        // A closing fence never opened goes as well (a test file ended so failed to import).
        let r = "--- FILE: test_a.py\nimport unittest\nx = 1\n```\n\n--- END FILE\n";
        assert_eq!(
            parse(r).unwrap()[0],
            FileBlock::Write {
                path: "test_a.py".into(),
                content: "import unittest\nx = 1\n".into()
            }
        );
        // A fence inside the file keeps the first line, and the last.
        let r = "--- FILE: notes.md\nrun\n```sh\nx\n```\n--- END FILE\n";
        assert!(
            matches!(&parse(r).unwrap()[0], FileBlock::Write { content, .. } if content.ends_with("x\n```\n"))
        );
        let r = "--- FILE: notes.md\n```sh\nrun\n```\n```py\nx\n--- END FILE\n";
        assert!(
            matches!(&parse(r).unwrap()[0], FileBlock::Write { content, .. } if content.starts_with("```sh"))
        );
    }

    #[test]
    fn prose_is_ignored_and_errors_are_located() {
        let r = "Sure! Here it is.\n--- FILE: a.py\nx = 1\n--- END FILE\nDone.";
        assert_eq!(parse(r).unwrap().len(), 1);
        assert_eq!(parse("--- FILE: a.py\nx\n").unwrap_err().line, 1);
        assert_eq!(parse("just words").unwrap_err().line, 0);
        assert_eq!(parse("--- FILE:  \n").unwrap_err().line, 1);
    }
}
