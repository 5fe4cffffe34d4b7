//! Checks that can never hold: a Python test that strips what the program printed
//! (`result.stdout.strip()`) and compares it with text ending in a newline
//! (`self.assertEqual(result.stdout.strip(), 'IV\n')`). The stripped side has no blank end, the
//! other has one, whatever the program does. The 1.5B model writes it often (`examples/hello-world`
//! in the issue that asked for the quality benchmark; roman-numerals f1 at 9d3ee7d, where both
//! unit tests failed so and the file went, and the conformance tests written next imported
//! `main` instead of running the program). The template asks for the whole output, with its
//! final newline: so the render takes the `.strip()` away, without a call, on every such line
//! of the file, and the tests run again. Pure functions of the output and the files shown.

use crate::blame::{all_pointed_at, failed_assertion, is_test_path, BLANK_ESCAPES};
use rekindle_workspace::files::FileText;

/// A test file with its stripped comparisons unstripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unstripped {
    pub path: String,
    pub content: String,
    /// The 1-based numbers of the lines changed.
    pub lines: Vec<usize>,
}

/// The methods whose call takes a string's blank ends away.
const STRIPS: [&str; 2] = [".strip()", ".rstrip()"];

/// The first test file a failed assertion of `output` points at on a line that compares a
/// stripped value with text ending in blank, with every such line of the file unstripped.
pub(crate) fn never_holds(output: &str, files: &[FileText]) -> Option<Unstripped> {
    if !failed_assertion(output) {
        return None;
    }
    for at in all_pointed_at(output, files) {
        let Some((path, rest)) = at.split_once(" line ") else {
            continue;
        };
        let Some((_, text)) = rest.split_once(": ") else {
            continue;
        };
        if !path.ends_with(".py") || !is_test_path(path) || unstrip(text).is_none() {
            continue;
        }
        let file = files.iter().find(|f| f.path == path)?;
        let mut lines = Vec::new();
        let mut content = String::with_capacity(file.content.len());
        for (i, line) in file.content.split_inclusive('\n').enumerate() {
            match unstrip(line) {
                Some(fixed) => {
                    content.push_str(&fixed);
                    lines.push(i + 1);
                }
                None => content.push_str(line),
            }
        }
        return Some(Unstripped {
            path: path.to_string(),
            content,
            lines,
        });
    }
    None
}

/// `line` without its `.strip()`, when it is a check (`assertEqual`, `assert … ==`) comparing
/// the one stripped value it holds with a string literal that ends in blank: the literal right
/// after the stripped value (`x.strip(), 'a\n'`, `x.strip() == 'a\n'`) or right before it
/// (`'a\n', x.strip()`).
fn unstrip(line: &str) -> Option<String> {
    let t = line.trim_start();
    let check = t.starts_with("self.assertEqual(")
        || t.starts_with("self.assertEquals(")
        || (t.starts_with("assert ") && t.contains("=="));
    if !check {
        return None;
    }
    let mut found = STRIPS
        .iter()
        .flat_map(|s| line.match_indices(s).map(|(i, s)| (i, s.len())));
    let (at, len) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let (before, after) = (&line[..at], &line[at + len..]);
    let blank_after = after
        .trim_start()
        .strip_prefix(',')
        .or_else(|| after.trim_start().strip_prefix("=="))
        .and_then(|rest| first_string(rest.trim_start()))
        .is_some_and(ends_blank);
    let blank_before = || {
        let at = last_separator(before)?;
        last_string(before[..at].trim_end()).map(ends_blank)
    };
    if !(blank_after || blank_before().unwrap_or(false)) {
        return None;
    }
    Some(format!("{before}{after}"))
}

/// Where the last operand of `head` begins: the byte index of the comma or `==` before it,
/// outside strings and at the depth of brackets where `head` ends.
fn last_separator(head: &str) -> Option<usize> {
    let mut commas: Vec<Option<usize>> = vec![None];
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let bytes = head.as_bytes();
    for (i, c) in head.char_indices() {
        if let Some(q) = quote {
            match c {
                '\\' if !escaped => escaped = true,
                c if c == q && !escaped => quote = None,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => commas.push(None),
            ')' | ']' | '}' => {
                commas.pop();
                if commas.is_empty() {
                    commas.push(None);
                }
            }
            ',' => *commas.last_mut()? = Some(i),
            '=' if bytes.get(i + 1) == Some(&b'=') => *commas.last_mut()? = Some(i),
            _ => {}
        }
    }
    commas.pop().flatten()
}

/// The contents of the quoted string `text` starts with, as written (escapes kept).
fn first_string(text: &str) -> Option<&str> {
    let q = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &text[1..];
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == q && !escaped => return Some(&body[..i]),
            _ => escaped = false,
        }
    }
    None
}

/// The contents of the quoted string `text` ends with, as written.
fn last_string(text: &str) -> Option<&str> {
    let q = text
        .chars()
        .next_back()
        .filter(|c| *c == '\'' || *c == '"')?;
    let body = &text[..text.len() - 1];
    let open = body.rfind(q)?;
    (!body[..open].ends_with('\\')).then_some(&body[open + 1..])
}

/// Whether a string literal's contents, as written, end in blank: an escaped newline, return or
/// tab, or a space.
fn ends_blank(body: &str) -> bool {
    BLANK_ESCAPES.iter().any(|e| body.ends_with(e)) || body.ends_with(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &str) -> FileText {
        FileText {
            path: path.to_string(),
            content: content.to_string(),
        }
    }

    const TEST: &str = "import subprocess\nimport unittest\n\n\nclass TestRoman(unittest.TestCase):\n    def test_1994(self):\n        result = subprocess.run(['python', 'roman.py', '1994'], capture_output=True, text=True)\n        self.assertEqual(result.stdout.strip(), 'MCMXCIV\\n', \"Test failed for input 1994\")\n\n    def test_4(self):\n        self.assertEqual('IV\\n', run('4').rstrip())\n\n    def test_9(self):\n        assert run('9').strip() == \"IX\\n\"\n\n    def test_stays(self):\n        self.assertEqual(run('1').strip(), 'I')\n        self.assertEqual(\"\\n\".join(['a', 'b']).strip(), 'a\\nb')\n";

    fn output(line: usize, text: &str) -> String {
        format!(
            "F\n======================================================================\nFAIL: test_1994 (test_roman.TestRoman.test_1994)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"/tmp/x/code/test_roman.py\", line {line}, in test_1994\n    {text}\nAssertionError: 'MCMXCIV' != 'MCMXCIV\\n'\n- MCMXCIV\n+ MCMXCIV\n?        +\n\n----------------------------------------------------------------------\nRan 4 tests in 0.102s\n\nFAILED (failures=1)\n"
        )
    }

    #[test]
    fn a_stripped_output_compared_with_a_newline_loses_its_strip_on_every_such_line() {
        let files = [
            file("roman.py", "print('x')\n"),
            file("test_roman.py", TEST),
        ];
        let out = output(8, "self.assertEqual(result.stdout.strip(), 'MCMXCIV\\n')");
        let u = never_holds(&out, &files).expect("the check can never hold");
        assert_eq!(u.path, "test_roman.py");
        assert_eq!(u.lines, vec![8, 11, 14]);
        let lines: Vec<&str> = u.content.lines().collect();
        assert_eq!(
            lines[7],
            "        self.assertEqual(result.stdout, 'MCMXCIV\\n', \"Test failed for input 1994\")"
        );
        assert_eq!(lines[10], "        self.assertEqual('IV\\n', run('4'))");
        assert_eq!(lines[13], "        assert run('9') == \"IX\\n\"");
        // Checks that can hold stay as they are: no blank end, or the blank inside the stripped
        // value.
        assert_eq!(lines[16], "        self.assertEqual(run('1').strip(), 'I')");
        assert_eq!(
            lines[17],
            "        self.assertEqual(\"\\n\".join(['a', 'b']).strip(), 'a\\nb')"
        );
        assert_eq!(
            unstrip("    assert 'IX\\n' == run('9').strip()\n").as_deref(),
            Some("    assert 'IX\\n' == run('9')\n")
        );
        assert_eq!(
            u.content.len(),
            TEST.len() - ".strip()".len() * 2 - ".rstrip()".len()
        );
    }

    #[test]
    fn a_check_that_can_hold_or_a_failure_elsewhere_is_left_alone() {
        let files = [
            file("roman.py", "print('x')\n"),
            file("test_roman.py", TEST),
        ];
        // The failing line can hold: nothing to repair, even though other lines could be.
        let out = output(17, "self.assertEqual(run('1').strip(), 'I')");
        assert_eq!(never_holds(&out, &files), None);
        // An error, not a failed assertion.
        let error = output(8, "x").replace("AssertionError", "TypeError");
        assert_eq!(never_holds(&error, &files), None);
        // The same line in the program, not in a test.
        let program = [file("roman.py", TEST)];
        let out = output(8, "x").replace("test_roman.py", "roman.py");
        assert_eq!(never_holds(&out, &program), None);
        for line in [
            "self.assertEqual(result.stdout.strip('\\n'), 'a\\n')",
            "self.assertEqual(a.strip(), b.strip() + '\\n')",
            "print(result.stdout.strip(), 'a\\n')",
            "self.assertIn(result.stdout.strip(), 'a\\n')",
        ] {
            assert_eq!(unstrip(line), None, "{line}");
        }
    }
}
