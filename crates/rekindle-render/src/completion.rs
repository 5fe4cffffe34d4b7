//! Reading a completion: the reply to [`crate::prompts::complete`], which shows a program file
//! that only repeats code the specification shows (signatures and docstrings, no body) and asks
//! for it completed in one fenced code block. Pure: the render decides what to do with it.

/// The file `shown` completed by `reply`: the reply's first closed fenced block, as the whole
/// file when it repeats a line of `shown` (other than an import), else as what follows `shown`
/// (a small model often writes only the body that was missing). Import lines of `shown` (at the
/// top level, `import …` or `from …`) that the block leaves out are put first. `None` when the
/// reply has no closed fenced block or an empty one.
pub(crate) fn completed(shown: &str, reply: &str) -> Option<String> {
    let block = first_block(reply)?;
    if block.trim().is_empty() {
        return None;
    }
    let shown_lines: Vec<&str> = shown
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_import(l))
        .collect();
    let whole = block.lines().any(|l| shown_lines.contains(&l.trim()));
    let mut body = if whole {
        block.to_string()
    } else {
        format!("{}{block}", with_newline(shown))
    };
    let missing: Vec<&str> = shown
        .lines()
        .filter(|l| is_import(l) && !body.lines().any(|b| b.trim_end() == l.trim_end()))
        .collect();
    if !missing.is_empty() {
        body = format!("{}\n{body}", missing.join("\n"));
    }
    Some(with_newline(&body))
}

/// A top-level import line (Python's and JavaScript's `import …`, Python's `from … import …`).
fn is_import(line: &str) -> bool {
    line.starts_with("import ") || (line.starts_with("from ") && line.contains(" import "))
}

fn with_newline(s: &str) -> String {
    if s.ends_with('\n') || s.is_empty() {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// The content of the first fenced block (``` or longer, with or without a language) that is
/// closed by a fence line of its own.
fn first_block(text: &str) -> Option<&str> {
    let mut start: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        let ticks = t.len() - t.trim_start_matches('`').len();
        match start {
            None if ticks >= 3 => start = Some((offset + line.len(), ticks)),
            Some((from, open)) if ticks >= open && t.len() == ticks => {
                return Some(&text[from..offset]);
            }
            _ => {}
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOWN: &str = "from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    \"\"\" Sum of xs.\n    >>> f([1, 2])\n    3\n    \"\"\"\n";

    #[test]
    fn a_whole_file_in_a_block_is_the_file() {
        let reply = "Here it is:\n\n```python\nfrom typing import List\n\n\ndef f(xs: List[int]) -> int:\n    \"\"\" Sum of xs.\"\"\"\n    return sum(xs)\n```\n\nThis sums the list.";
        assert_eq!(
            completed(SHOWN, reply).as_deref(),
            Some("from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    \"\"\" Sum of xs.\"\"\"\n    return sum(xs)\n")
        );
    }

    #[test]
    fn a_body_alone_follows_the_shown_code() {
        let reply = "```python\n    return sum(xs)\n```";
        assert_eq!(
            completed(SHOWN, reply).as_deref(),
            Some(format!("{SHOWN}    return sum(xs)\n").as_str())
        );
    }

    #[test]
    fn imports_the_block_leaves_out_go_first() {
        let reply = "```\ndef f(xs: List[int]) -> int:\n    return sum(xs)\n```\n";
        assert_eq!(
            completed(SHOWN, reply).as_deref(),
            Some("from typing import List\ndef f(xs: List[int]) -> int:\n    return sum(xs)\n")
        );
        // An import line alone in common does not make the block the whole file.
        let reply = "```python\nfrom typing import List\n    return sum(xs)\n```";
        let got = completed(SHOWN, reply).unwrap();
        assert!(got.starts_with(SHOWN), "{got}");
    }

    #[test]
    fn no_closed_block_is_no_completion() {
        assert_eq!(completed(SHOWN, "def f(xs):\n    return sum(xs)\n"), None);
        assert_eq!(
            completed(SHOWN, "```python\ndef f(xs):\n    return 1\n"),
            None
        );
        assert_eq!(completed(SHOWN, "```python\n\n```"), None);
        // A longer opening fence is closed only by one as long.
        assert_eq!(
            completed(SHOWN, "````md\n```python\nx = 1\n```\n````").as_deref(),
            Some(format!("{SHOWN}```python\nx = 1\n```\n").as_str())
        );
    }
}
