//! Telling a reply that has started to repeat itself, while it is being generated.
//!
//! A small model at greedy decoding falls into loops: the same file again, a test file numbered
//! on and on (`test_17.py`), or one line pattern (`self.assertEqual(f(10.00000001), …)`) until the
//! token cap. [`Guard`] reads the reply's complete lines as they arrive and says where to cut it;
//! the engine stops generating there. What comes before the cut is kept: whole blocks, and the
//! open block up to the line where its repetition began (a test file cut between two statements
//! is usually still a test file).
//!
//! Lines are compared two ways. Lines *alike* are the same text once white space is collapsed
//! and a part repeated back to back is written once, so `assertEqual(f(1.01), 1)` and
//! `assertEqual(f(1.0001), 1)` are alike: a loop that grows a literal. Lines of one *shape* are
//! alike once their numbers are masked too, so `if n >= 1000:` and `if n >= 900:` have one shape;
//! and lines of one *stem* have one shape up to their first string or comment, so
//! `print(f(1001))  # MI` and `print(f(1002))  # MII` have one stem.
//! A file may hold few lines alike, and twice as many of one stem: code that spells out a table
//! (`if n >= 1000: … if n >= 900: …`, thirteen times for Roman numerals) is repetitive by nature,
//! but its numbers differ, where a loop's numbers grow by repeating a digit or count on, and a
//! count goes on (`print(f(1001))`, `print(f(1002))`, …) well past any table.

use crate::file_blocks::{CLOSE, OPEN};
use std::collections::HashMap;

/// How many lines alike a block may hold; of a long line (a test's assertion with its
/// arguments), fewer: each costs tens of tokens, and a test needs few of them.
pub const MAX_SAME_LINE: u32 = 8;
pub const MAX_SAME_LONG_LINE: u32 = 5;
/// A line this long (trimmed) or longer is long.
pub const LONG_SHAPE: usize = 40;
/// How many times more lines of one stem than lines alike a block may hold.
pub const SHAPE_FACTOR: u32 = 2;

/// How many lines alike `line` a block may hold.
pub fn max_same(line: &str) -> u32 {
    if line.trim().len() >= LONG_SHAPE {
        MAX_SAME_LONG_LINE
    } else {
        MAX_SAME_LINE
    }
}

/// How many lines of the stem of `line` a block may hold.
pub fn max_same_stem(line: &str) -> u32 {
    max_same(line) * SHAPE_FACTOR
}
/// Lines shorter than this (after trimming) are not counted: `}`, `else:`, `pass`, blank lines.
pub const MIN_LINE: usize = 8;
/// A line still being written that is this long, and whose last [`LINE_TAIL`] bytes already
/// occur [`LINE_TAIL_TIMES`] times in it, is one sentence said over and over.
pub const LONG_LINE: usize = 512;
pub const LINE_TAIL: usize = 48;
pub const LINE_TAIL_TIMES: usize = 3;
/// How many blank lines in a row a reply may hold (code rarely has more than two).
pub const MAX_BLANK_RUN: u32 = 6;
/// How many times in a row one line, written exactly alike (indentation included), may follow
/// itself: short lines (```` ``` ````, `}`) are not counted as shapes, but a run of them is a
/// loop all the same.
pub const MAX_SAME_RUN: u32 = 8;
/// How many blocks of one path shape a reply may hold (`test_1.py`, `test_2.py`, …).
pub const MAX_SAME_PATH: u32 = 3;
/// A block of at least this many counted lines, this share of which (in tenths) are shaped like
/// the lines of one earlier block, is a copy of it under another name.
pub const COPY_MIN_LINES: usize = 4;
pub const COPY_TENTHS: usize = 7;

/// Where and why a reply was cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Byte offset in the text: everything from here on is dropped.
    pub at: usize,
    /// Whether a file block is open at `at` (the engine closes it).
    pub in_block: bool,
    pub why: String,
}

/// Reads a growing reply line by line.
#[derive(Debug, Default)]
pub struct Guard {
    scanned: usize,
    paths: HashMap<String, u32>,
    exact_paths: std::collections::HashSet<String>,
    in_block: bool,
    /// The open block's counted lines, by [`alike`] and by [`stem`].
    alike: HashMap<String, u32>,
    stems: HashMap<String, u32>,
    /// Where the open block starts, and the shapes of its counted lines in order.
    block_start: usize,
    block: Vec<String>,
    /// The shapes of every closed block's counted lines.
    closed: Vec<std::collections::HashSet<String>>,
    /// The blank lines in a row just read, and where the first of them starts.
    blank_run: u32,
    blank_start: usize,
    /// The last non-blank line, how many times in a row it came, and where the first began.
    last_line: String,
    same_run: u32,
    same_start: usize,
}

/// A line's shape: digits masked, runs of white space collapsed, and a unit of up to
/// [`SQUEEZE_UNIT`] characters repeated back to back written once, so that a line that grows
/// by repeating a part of itself (`f('()()')`, `f('()()()')`, `[1, 1, 1]`) keeps its shape.
pub fn shape(line: &str) -> String {
    squeeze(&masked(line, true))
}

/// A line as [`shape`] writes it, but with its digits kept: `f(10.0001)` is `f(10.01)`, like
/// `f(10.01)` and `f(10.00000001)`, while `f(900)` and `f(500)` stay apart.
pub fn alike(line: &str) -> String {
    squeeze(&masked(line, false))
}

/// The [`shape`] of `line` up to its first string or comment (a quote, `#` or `//`), when that
/// part is a counted line's length ([`MIN_LINE`]) or longer; else the whole shape.
pub fn stem(line: &str) -> String {
    let masked = masked(line, true);
    let end = ['"', '\'', '`', '#']
        .iter()
        .filter_map(|c| masked.find(*c))
        .chain(masked.find("//"))
        .min()
        .unwrap_or(masked.len());
    let head = masked[..end].trim_end();
    squeeze(if head.len() >= MIN_LINE {
        head
    } else {
        &masked
    })
}

/// `line` trimmed, runs of white space written as one space, and (when `digits` is set) each
/// run of digits written as `0`.
fn masked(line: &str, digits: bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut digit = false;
    let mut space = false;
    for c in line.trim().chars() {
        if digits && c.is_ascii_digit() {
            if !digit {
                out.push('0');
            }
            digit = true;
            space = false;
        } else if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
            digit = false;
        } else {
            out.push(c);
            digit = false;
            space = false;
        }
    }
    out
}

/// The longest unit [`shape`] squeezes.
pub const SQUEEZE_UNIT: usize = 8;

/// `s` with every run of one unit repeated back to back (`ababab`) written once (`ab`).
fn squeeze(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    'at: while i < c.len() {
        for unit in 1..=SQUEEZE_UNIT {
            if i + 2 * unit > c.len() {
                break;
            }
            if c[i..i + unit] == c[i + unit..i + 2 * unit] {
                let mut end = i + 2 * unit;
                while end + unit <= c.len() && c[end..end + unit] == c[i..i + unit] {
                    end += unit;
                }
                out.extend(&c[i..i + unit]);
                i = end;
                continue 'at;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

impl Guard {
    pub fn new() -> Guard {
        Guard::default()
    }

    /// Looks at the complete lines of `text` not seen yet; `Some` once the reply repeats itself.
    /// `text` must be the same growing string at every call.
    pub fn check(&mut self, text: &str) -> Option<Cut> {
        if let Some(cut) = self.long_line(text) {
            return Some(cut);
        }
        while let Some(nl) = text[self.scanned..].find('\n') {
            let start = self.scanned;
            let line = &text[start..start + nl];
            self.scanned = start + nl + 1;
            if line.trim().is_empty() {
                if self.blank_run == 0 {
                    self.blank_start = start;
                }
                self.blank_run += 1;
                if self.blank_run > MAX_BLANK_RUN {
                    let at = self.blank_start;
                    return Some(self.cut(
                        at,
                        format!("more than {MAX_BLANK_RUN} blank lines in a row"),
                    ));
                }
                continue;
            }
            self.blank_run = 0;
            if line == self.last_line {
                self.same_run += 1;
                if self.same_run > MAX_SAME_RUN {
                    let at = self.same_start;
                    return Some(self.cut(
                        at,
                        format!(
                            "the line `{}` more than {MAX_SAME_RUN} times in a row",
                            brief(line)
                        ),
                    ));
                }
            } else {
                self.last_line = line.to_string();
                self.same_run = 1;
                self.same_start = start;
            }
            if let Some(path) = line.strip_prefix(OPEN) {
                let path = path.trim();
                if !self.exact_paths.insert(path.to_string()) {
                    return Some(self.cut(start, format!("a second block for {path}")));
                }
                let n = self.paths.entry(shape(path)).or_default();
                *n += 1;
                if *n > MAX_SAME_PATH {
                    return Some(self.cut(
                        start,
                        format!("more than {MAX_SAME_PATH} files named like {path}"),
                    ));
                }
                self.in_block = true;
                self.alike.clear();
                self.stems.clear();
                self.block.clear();
                self.block_start = start;
                continue;
            }
            if line.trim_end() == CLOSE {
                self.in_block = false;
                let this: std::collections::HashSet<String> = self.block.drain(..).collect();
                if this.len() >= COPY_MIN_LINES {
                    if let Some(_earlier) = self.closed.iter().find(|e| {
                        this.iter().filter(|l| e.contains(*l)).count() * 10
                            >= this.len() * COPY_TENTHS
                    }) {
                        return Some(Cut {
                            at: self.block_start,
                            in_block: false,
                            why: "a file that copies an earlier one under another name".into(),
                        });
                    }
                }
                self.closed.push(this);
                continue;
            }
            if !self.in_block || line.trim().len() < MIN_LINE {
                continue;
            }
            let shape = shape(line);
            self.block.push(shape.clone());
            let max = max_same(line);
            if over(&mut self.alike, alike(line), max) {
                let why = format!(
                    "a line like `{}` more than {max} times in one file",
                    brief(line)
                );
                return Some(self.cut(start, why));
            }
            let max = max_same_stem(line);
            if over(&mut self.stems, stem(line), max) {
                let why = format!(
                    "a line shaped like `{}` more than {max} times in one file",
                    brief(line)
                );
                return Some(self.cut(start, why));
            }
        }
        None
    }

    /// The line being written, when it has grown long by repeating itself: cut at its start.
    fn long_line(&self, text: &str) -> Option<Cut> {
        let line = &text[self.scanned..];
        if line.len() < LONG_LINE || line.contains('\n') {
            return None;
        }
        let mut from = line.len() - LINE_TAIL;
        while !line.is_char_boundary(from) {
            from -= 1;
        }
        let tail = &line[from..];
        (line.matches(tail).count() >= LINE_TAIL_TIMES)
            .then(|| self.cut(self.scanned, "one line that repeats itself".into()))
    }

    fn cut(&self, at: usize, why: String) -> Cut {
        Cut {
            at,
            in_block: self.in_block,
            why,
        }
    }
}

/// Counts one more `key` in `counts`; whether it has now come more than `max` times.
fn over(counts: &mut HashMap<String, u32>, key: String, max: u32) -> bool {
    let n = counts.entry(key).or_default();
    *n += 1;
    *n > max
}

/// `line` trimmed, and cut to its first 60 characters when longer, for a message.
fn brief(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// `text` cut at `cut`, with the open block (if any) closed so that every block kept is whole.
pub fn apply(text: &str, cut: &Cut) -> String {
    let mut kept = text[..cut.at].to_string();
    if cut.in_block {
        if !kept.is_empty() && !kept.ends_with('\n') {
            kept.push('\n');
        }
        drop_open_headers(&mut kept);
        kept.push_str(CLOSE);
        kept.push('\n');
    }
    kept
}

/// `kept`, a reply cut inside a file block, without the lines at its end that open a Python
/// block they never get to write (`def test_x(self):`, `class T:`, a decorator), when the
/// block is a Python file: a file that ends on one does not parse, and its tests would fail on
/// that alone (HumanEval/6 at c0c3423: its conformance tests ran away, were cut after a `def`
/// line, and failed with an IndentationError, which ended the attempt).
fn drop_open_headers(kept: &mut String) {
    let Some(open) = kept.rfind(OPEN) else {
        return;
    };
    let path = kept[open + OPEN.len()..]
        .lines()
        .next()
        .unwrap_or("")
        .trim();
    if !path.ends_with(".py") {
        return;
    }
    let body = kept[open..].find('\n').map_or(kept.len(), |i| open + i + 1);
    loop {
        let end = kept.trim_end().len();
        if end <= body {
            return;
        }
        let start = kept[..end].rfind('\n').map_or(0, |i| i + 1).max(body);
        let line = kept[start..end].trim();
        let header = !line.starts_with('#') && (line.ends_with(':') || line.starts_with('@'));
        if !header {
            return;
        }
        kept.truncate(start);
    }
}

/// A reply the token cap cut inside a file block, with that block closed at its last complete
/// line (the partial line is dropped); any other text unchanged. What was written stays usable:
/// the tests that run on it, or the next fix, say whether the cut file works.
pub fn close_cut_block(text: &str) -> String {
    let mut open = false;
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if l.starts_with(OPEN) {
            open = true;
        } else if l.trim_end() == CLOSE {
            open = false;
        }
    }
    if !open {
        return text.to_string();
    }
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    let mut kept = text[..whole].to_string();
    drop_open_headers(&mut kept);
    kept.push_str(CLOSE);
    kept.push('\n');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file_blocks;

    fn feed(reply: &str) -> Option<Cut> {
        // Fed in small pieces, as tokens arrive.
        let mut g = Guard::new();
        let mut text = String::new();
        for c in reply.chars() {
            text.push(c);
            if let Some(cut) = g.check(&text) {
                return Some(cut);
            }
        }
        None
    }

    #[test]
    fn an_ordinary_reply_passes() {
        let mut r = String::from("--- FILE: test_app.py\nimport unittest\n");
        for (i, name) in ["one", "two", "three", "four"].iter().enumerate() {
            r.push_str(&format!(
                "    def test_{name}(self):\n        self.assertEqual(f({i}), {i})\n"
            ));
        }
        r.push_str("--- END FILE\n--- FILE: app.py\ndef f(x):\n    return x\n--- END FILE\n");
        assert_eq!(feed(&r), None);
    }

    #[test]
    fn a_line_pattern_repeated_is_cut_after_the_limit_and_the_block_closed() {
        let mut r = String::from(
            "--- FILE: app.py\nx = 1\n--- END FILE\n--- FILE: test_t.py\nimport unittest\n",
        );
        let mut expected_kept = r.clone();
        for i in 0..40 {
            let line = format!(
                "        self.assertEqual(truncate(10.{}1), 0.{}1)\n",
                "0".repeat(i + 4),
                "0".repeat(i + 4)
            );
            assert!(line.trim().len() >= LONG_SHAPE);
            if i < MAX_SAME_LONG_LINE as usize {
                expected_kept.push_str(&line);
            }
            r.push_str(&line);
        }
        let cut = feed(&r).expect("cut");
        assert!(cut.in_block);
        let kept = apply(&r, &cut);
        assert_eq!(kept, format!("{expected_kept}--- END FILE\n"));
        let blocks = file_blocks::parse(&kept).unwrap();
        assert_eq!(blocks.len(), 2);
    }

    #[test]
    fn short_lines_of_one_shape_may_come_more_often_than_long_ones() {
        let mut r = String::from("--- FILE: grid.py\nGRID = [\n");
        for i in 0..7 {
            r.push_str(&format!("    [{i}, {i}, {i}],\n"));
        }
        r.push_str("]\n--- END FILE\n");
        assert_eq!(feed(&r), None, "seven rows of a table");
        // Long lines alike: a literal that grows by one digit each time.
        let mut long = String::from("--- FILE: test_g.py\n");
        for i in 1..8 {
            long.push_str(&format!(
                "        self.assertEqual(cell_value_of_grid(1, 2.{}5), 3)\n",
                "0".repeat(i)
            ));
        }
        long.push_str("--- END FILE\n");
        let cut = feed(&long).expect("cut");
        let kept = apply(&long, &cut);
        assert_eq!(
            kept.matches("assertEqual").count(),
            MAX_SAME_LONG_LINE as usize
        );
    }

    #[test]
    fn code_that_spells_out_a_table_is_not_cut_but_a_count_that_goes_on_is() {
        // Seen with the real model: Roman numerals as thirteen `if` blocks, which the guard cut
        // at the ninth when it counted lines by shape alone.
        let table = [
            (1000, "M"),
            (900, "CM"),
            (500, "D"),
            (400, "CD"),
            (100, "C"),
            (90, "XC"),
            (50, "L"),
            (40, "XL"),
            (10, "X"),
            (9, "IX"),
            (5, "V"),
            (4, "IV"),
            (1, "I"),
        ];
        let mut r =
            String::from("--- FILE: roman.py\ndef to_roman(decimal_number):\n    numeral = \"\"\n");
        for (value, letters) in table {
            r.push_str(&format!(
                "    if decimal_number >= {value}:\n        numeral += \"{letters}\"\n        decimal_number -= {value}\n"
            ));
        }
        r.push_str("    return numeral\n--- END FILE\n");
        assert_eq!(feed(&r), None, "{r}");
        // The same shape counting on is cut once it has come twice as often as lines alike may.
        let head = "--- FILE: test_sq.py\nimport unittest\n";
        let mut r = head.to_string();
        let mut kept = head.to_string();
        for i in 1..40 {
            let line = format!("        self.assertEqual(square_of({i}), {})\n", i * i);
            assert!(line.trim().len() < LONG_SHAPE);
            if i <= MAX_SAME_LINE * SHAPE_FACTOR {
                kept.push_str(&line);
            }
            r.push_str(&line);
        }
        let cut = feed(&r).expect("cut");
        assert!(cut.why.contains("shaped like"), "{}", cut.why);
        assert_eq!(apply(&r, &cut), format!("{kept}--- END FILE\n"));
        assert_eq!(kept.matches("square_of").count(), 16);
        // Seen with the real model: example calls counting on, each with its answer in a
        // comment, until the token cap. Their comments differ; their stems do not.
        let head = "--- FILE: roman.py\ndef to_roman(n):\n    return ''\n\n";
        let mut r = head.to_string();
        for n in 1001..1100 {
            let tail = ["I", "II", "III", "IV", "V"][n % 5];
            r.push_str(&format!("print(to_roman({n}))  # Output: M{tail}\n"));
        }
        let cut = feed(&r).expect("cut");
        let kept = apply(&r, &cut);
        assert_eq!(kept.matches("print(").count(), 16, "{kept}");
        assert!(cut.why.contains("print(to_roman(1017))"), "{}", cut.why);
    }

    #[test]
    fn a_short_line_repeated_in_a_row_is_cut_where_the_run_starts() {
        // Seen with the real model: an `__init__.py` that closed its fence, then wrote ```
        // lines until the token cap.
        let head = "--- FILE: conformance_tests/__init__.py\nfrom .test_solution import *\n";
        let r = format!("{head}{}", "```\n".repeat(200));
        let cut = feed(&r).expect("cut");
        assert_eq!(cut.at, head.len());
        assert_eq!(apply(&r, &cut), format!("{head}--- END FILE\n"));
        // Closing braces at different depths are different lines.
        let mut ok = String::from("--- FILE: a.js\n");
        for d in (0..12).rev() {
            ok.push_str(&format!("{}}}\n", "  ".repeat(d)));
        }
        ok.push_str("--- END FILE\n");
        assert_eq!(feed(&ok), None);
    }

    #[test]
    fn a_run_of_blank_lines_is_cut_where_it_starts() {
        // Seen with the real model: a fix that echoed a heading of its prompt, then wrote
        // newlines until the token cap.
        let head =
            "--- FILE: test_a.py\nimport unittest\n\n\nclass T(unittest.TestCase):\n    pass\n";
        let r = format!("{head}{}", "\n".repeat(300));
        let cut = feed(&r).expect("cut");
        assert_eq!(cut.at, head.len());
        assert!(cut.in_block);
        let kept = apply(&r, &cut);
        assert_eq!(kept, format!("{head}--- END FILE\n"));
        // Two or three blank lines, as code has them, are not a run.
        let ok = "--- FILE: a.py\nx = 1\n\n\n\ny = 2\n--- END FILE\n\n\n";
        assert_eq!(feed(ok), None);
    }

    /// HumanEval/6 at c0c3423: conformance tests whose methods grow by one group each; the
    /// guard cut at the `def` line of the next one, which left a method with no body.
    #[test]
    fn a_python_block_cut_after_a_header_keeps_no_header_without_its_body() {
        let mut r = "--- FILE: conformance_tests/test_solution.py\nimport unittest\nfrom solution import f\n\nclass T(unittest.TestCase):\n".to_string();
        let mut name = "test_paren".to_string();
        let mut arg = "()".to_string();
        let mut want = "1".to_string();
        for _ in 0..30 {
            r.push_str(&format!(
                "    def {name}(self):\n        self.assertEqual(f('{arg}'), [{want}])\n\n"
            ));
            name.push_str("_and_paren");
            arg.push_str(" ()");
            want.push_str(", 1");
        }
        let cut = feed(&r).expect("cut");
        assert!(cut.in_block);
        assert!(
            r[..cut.at].trim_end().ends_with("(self):"),
            "the guard cuts at a header here: {}",
            &r[..cut.at]
        );
        let kept = apply(&r, &cut);
        let blocks = file_blocks::parse(&kept).unwrap();
        let file_blocks::FileBlock::Write { content: body, .. } = &blocks[0] else {
            panic!("{blocks:?}")
        };
        let last = body.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
        assert!(last.trim_start().starts_with("self.assertEqual("), "{body}");
        let defs = body
            .lines()
            .filter(|l| l.trim_start().starts_with("def "))
            .count();
        let asserts = body.lines().filter(|l| l.contains("assertEqual")).count();
        assert_eq!(defs, asserts, "{body}");
        // Cut by the token cap the same way: the class and method headers with nothing under
        // them go, the imports stay.
        let capped = "--- FILE: test_a.py\nimport unittest\n\n@decorated\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.asse";
        assert_eq!(
            close_cut_block(capped),
            "--- FILE: test_a.py\nimport unittest\n\n--- END FILE\n"
        );
        // Not in other files, nor for a comment that ends with a colon.
        let yaml = "--- FILE: config.yaml\nbuild:\n  steps:\n    - ru";
        assert_eq!(
            close_cut_block(yaml),
            "--- FILE: config.yaml\nbuild:\n  steps:\n--- END FILE\n"
        );
        let commented = "--- FILE: a.py\nx = 1\n# then:\ny = ";
        assert_eq!(
            close_cut_block(commented),
            "--- FILE: a.py\nx = 1\n# then:\n--- END FILE\n"
        );
    }

    #[test]
    fn numbered_files_and_a_second_block_for_one_path_are_cut() {
        let mut r = String::new();
        for i in 1..=20 {
            r.push_str(&format!(
                "--- FILE: tests/test_{i}.py\nprint({i})\n--- END FILE\n"
            ));
        }
        let cut = feed(&r).expect("cut");
        assert!(!cut.in_block);
        let kept = apply(&r, &cut);
        assert_eq!(
            file_blocks::parse(&kept).unwrap().len(),
            MAX_SAME_PATH as usize
        );
        let r = "--- FILE: a.py\nx\n--- END FILE\n--- FILE: a.py\nx\n--- END FILE\n";
        let cut = feed(r).unwrap();
        assert_eq!(&r[..cut.at], "--- FILE: a.py\nx\n--- END FILE\n");
    }

    #[test]
    fn a_block_cut_by_the_cap_is_closed_at_its_last_whole_line() {
        let cut =
            "--- FILE: a.py\nx = 1\n--- END FILE\n--- FILE: t.py\nimport unittest\nclass T(unit";
        let closed = close_cut_block(cut);
        assert_eq!(
            closed,
            "--- FILE: a.py\nx = 1\n--- END FILE\n--- FILE: t.py\nimport unittest\n--- END FILE\n"
        );
        assert_eq!(file_blocks::parse(&closed).unwrap().len(), 2);
        let whole = "--- FILE: a.py\nx = 1\n--- END FILE\n";
        assert_eq!(close_cut_block(whole), whole);
    }

    #[test]
    fn a_file_copied_under_another_name_is_cut_whole() {
        let test = |name: &str| {
            format!("--- FILE: {name}\nimport unittest\nclass TestApp(unittest.TestCase):\n    def test_main(self):\n        self.assertEqual(run(), 'hello')\nif __name__ == '__main__':\n    unittest.main()\n--- END FILE\n")
        };
        let first = format!(
            "--- FILE: app.py\nprint('hello')\n--- END FILE\n{}",
            test("test_app.py")
        );
        let r = format!("{first}{}{}", test("test_main.py"), test("test_exit.py"));
        let cut = feed(&r).expect("cut");
        assert_eq!((cut.at, cut.in_block), (first.len(), false));
        assert_eq!(apply(&r, &cut), first);
        // Files that share their boilerplate but test different things are not copies.
        let other = "--- FILE: test_b.py\nimport unittest\nclass TestB(unittest.TestCase):\n    def test_sum(self):\n        self.assertEqual(add(), 'x')\n        self.assertTrue(valid(add()))\nif __name__ == '__main__':\n    unittest.main()\n--- END FILE\n";
        assert_eq!(feed(&format!("{first}{other}")), None);
    }

    #[test]
    fn a_line_that_repeats_itself_is_cut_at_its_start() {
        let head = "--- FILE: a.py\nx = 1\n--- END FILE\n--- FILE: t.py\nimport unittest\n";
        let r = format!(
            "{head}{}",
            "The test case is simple and needs no more code. ".repeat(40)
        );
        let cut = feed(&r).expect("cut");
        assert_eq!((cut.at, cut.in_block), (head.len(), true));
        assert_eq!(file_blocks::parse(&apply(&r, &cut)).unwrap().len(), 2);
        // A long line that does not repeat is a long line.
        let long: String = (0..200)
            .map(|i| format!("{i:03}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            feed(&format!("--- FILE: d.py\nDATA = [{long}]\n--- END FILE\n")),
            None
        );
    }

    #[test]
    fn shapes_mask_digits_and_spaces() {
        assert_eq!(shape("  f(10.25,   3) "), "f(0.0, 0)");
        // A part repeated back to back is written once, however often it repeats.
        let a = "self.assertEqual(parse_nested_parens('  ()  ()  ()'), [1, 1, 1, 1])";
        let b =
            "self.assertEqual(parse_nested_parens('  ()  ()  ()  ()  ()'), [1, 1, 1, 1, 1, 1, 1])";
        assert_eq!(shape(a), shape(b));
        assert_ne!(
            shape(a),
            shape("self.assertEqual(parse_nested_parens(''), [])")
        );
        assert_eq!(squeeze("abababx"), "abx");
        assert_eq!(squeeze("aab"), "ab");
        assert_eq!(shape("x1 = 22"), "x0 = 0");
        assert_eq!(alike("  f(10.0001,   3) "), "f(10.01, 3)");
        assert_eq!(alike("f(10.0000001, 3)"), alike("f(10.01, 3)"));
        assert_ne!(alike("if n >= 900:"), alike("if n >= 500:"));
        assert_eq!(shape("if n >= 900:"), shape("if n >= 500:"));
        assert_eq!(stem("print(f(1001))  # MI"), shape("print(f(0))"));
        assert_eq!(
            stem("self.assertEqual(f(4), 'IV')"),
            shape("self.assertEqual(f(0),")
        );
        assert_eq!(
            stem("x += 'M'"),
            "x += 'M'",
            "a short stem is the whole shape"
        );
        assert_eq!(stem("print(f(2))  # 4"), stem("print(f(3))  # 9"));
        assert_eq!(stem("total_url = a // b"), "total_url = a");
    }
}
