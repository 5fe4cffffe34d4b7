//! Reading a failed test run: which lines of the shown files its output points at, the first
//! failure in one line, and who is to blame for a failing check. A check whose values the
//! specification never gives, or that calls the code on inputs the specification never gives
//! where the code raises an error of the values, blames the test; a check with the
//! specification's own values blames the code. Pure functions of the output, the files shown and
//! the specification's text: the steps ([`crate::steps`]) decide what to do with the verdicts.

use crate::checked;
use crate::draft;
use crate::prompts::Context;
use crate::steps::TESTS;
use rekindle_workspace::files::FileText;

/// The first failure a Python traceback in `output` reports, in one line: the deepest line of
/// `files` it points at (as [`pointed_at`] names them) and the exception raised there, e.g.
/// "test_solution.py line 7: `self.assertEqual(f([5, 3]), [3, 5])` raised AssertionError:
/// Lists differ: [5, 3] != [3, 5]". None when no traceback points into `files`.
pub(crate) fn first_failure(output: &str, files: &[FileText]) -> Option<String> {
    let tb = output.split("Traceback (most recent call last):").nth(1)?;
    let at = all_pointed_at(tb, files).pop()?;
    let (place, source) = at.split_once(": ")?;
    let error = tb.lines().map(str::trim).find(|l| is_exception_line(l))?;
    let error = if error.chars().count() > 240 {
        format!("{}…", error.chars().take(240).collect::<String>())
    } else {
        error.to_string()
    };
    Some(format!("{place}: `{source}` raised {error}"))
}

/// Whether `line` is the last line of a Python traceback: an exception's (dotted) name ending in
/// Error, Exception or Exit, alone or followed by a colon.
fn is_exception_line(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or("");
    let last = name.rsplit('.').next().unwrap_or("");
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && ["Error", "Exception", "Exit"]
            .iter()
            .any(|e| last.ends_with(e))
        && (line.len() == name.len() || line[name.len()..].starts_with(':'))
}

/// The lines of `files` that `output` points at, as `path line N: text`: Python's
/// `File "path", line N` and the `path:N` of most other tools, for the files the prompt shows
/// (by their shown path, or that path after `./`). At most five, in the order they appear.
pub(crate) fn pointed_at(output: &str, files: &[FileText]) -> Vec<String> {
    let mut at = all_pointed_at(output, files);
    at.truncate(5);
    at
}

/// Every line of `files` that `output` points at, as [`pointed_at`] names them.
pub(crate) fn all_pointed_at(output: &str, files: &[FileText]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for f in files {
        let names = [f.path.clone(), format!("./{}", f.path)];
        for name in &names {
            for (at, _) in output.match_indices(name.as_str()) {
                // The name must stand alone: not the tail of a longer word or relative path.
                // The tail of an absolute path is the file run from a copy of the folder (test
                // scripts that copy the code to a temporary folder first).
                let head = &output[..at];
                let before = head.chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                if before == Some('/') {
                    let token = head
                        .rfind(|c: char| !(c.is_alphanumeric() || "_-./".contains(c)))
                        .map_or(head, |i| &head[i + 1..]);
                    if !token.starts_with('/') {
                        continue;
                    }
                }
                let rest = &output[at + name.len()..];
                let digits = rest
                    .strip_prefix("\", line ")
                    .or_else(|| rest.strip_prefix(':'))
                    .map(|r| {
                        r.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let Ok(n) = digits.parse::<usize>() else {
                    continue;
                };
                if let Some(text) = n.checked_sub(1).and_then(|i| f.content.lines().nth(i)) {
                    let item = format!("{} line {n}: {}", f.path, text.trim());
                    if !found.iter().any(|(_, s)| *s == item) {
                        found.push((at, item));
                    }
                }
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, s)| s).collect()
}

/// The test files among `files` that a failed assertion in `output` is raised in, when the
/// output points at no other file (no line of the program is in its tracebacks); else none.
pub(crate) fn assertion_in_tests_alone(output: &str, files: &[FileText]) -> Vec<String> {
    if !failed_assertion(output) {
        return vec![];
    }
    let mut paths: Vec<String> = Vec::new();
    for at in all_pointed_at(output, files) {
        let Some(path) = at.split(" line ").next() else {
            continue;
        };
        if !is_test_path(path) {
            return vec![];
        }
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_string());
        }
    }
    paths
}

/// One failing check: a line of a test file a failed assertion's traceback points at, and its
/// literals sorted by whether the specification gives them ([`failing_checks`]).
#[derive(Debug)]
struct Check {
    path: String,
    line: usize,
    /// Literals the specification gives: a number (not 0 or 1) some number of it equals, or a
    /// string of three or more characters it holds.
    given: Vec<String>,
    /// Literals it does not give.
    made_up: Vec<String>,
}

/// The checks `output` reports failing: a failed assertion, and every line of `files` its
/// tracebacks point at in a test file. None when a traceback points at a program file (the
/// code raised it) or there is no failed assertion. 0 and 1 (exit codes, counts), short or
/// blank strings, and strings interpolating other values (`f"{x}"`, `"$out"`) are neither given
/// nor made up.
fn failing_checks(output: &str, files: &[FileText], spec: &str) -> Option<Vec<Check>> {
    if !failed_assertion(output) {
        return None;
    }
    let numbers = numbers_in(spec);
    let given = |lit: &Literal| spec_gives(spec, &numbers, lit);
    let shown = shown_calls(spec, files);
    let mut checks = Vec::new();
    for at in all_pointed_at(output, files) {
        let Some((path, text)) = at.split_once(" line ") else {
            continue;
        };
        if !is_test_path(path) {
            return None;
        }
        let Some((n, source)) = text.split_once(": ") else {
            continue;
        };
        let (mut given_here, mut made_up) = (Vec::new(), Vec::new());
        for l in literals(source) {
            match given(&l) {
                Some(true) => given_here.push(l.to_string()),
                Some(false) => made_up.push(l.to_string()),
                None => {}
            }
        }
        if made_up.is_empty() {
            made_up.extend(unshown_calls(source, &shown));
        }
        checks.push(Check {
            path: path.to_string(),
            line: n.parse().unwrap_or(0),
            given: given_here,
            made_up,
        });
    }
    Some(checks)
}

/// The calls the specification shows of functions the program defines (`def name(` in a
/// program file among `files`): for each name, the argument lists the spec calls it with
/// ([`same_arguments`] compares them). A `def` line of the spec is a signature, no call.
fn shown_calls(spec: &str, files: &[FileText]) -> Vec<(String, Vec<String>)> {
    let defined: Vec<String> = files
        .iter()
        .filter(|f| !is_test_path(&f.path))
        .flat_map(|f| f.content.lines())
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix("async ").unwrap_or(l).strip_prefix("def ")?;
            let name = rest.split('(').next()?.trim();
            (!name.is_empty() && rest.contains('(')).then(|| name.to_string())
        })
        .collect();
    let mut shown: Vec<(String, Vec<String>)> = Vec::new();
    for line in spec.lines() {
        let t = line.trim_start();
        if t.starts_with("def ") || t.starts_with("async def ") {
            continue;
        }
        for (name, args) in calls(line) {
            if !defined.contains(&name) {
                continue;
            }
            match shown.iter_mut().find(|(n, _)| *n == name) {
                Some((_, all)) => all.push(args),
                None => shown.push((name, vec![args])),
            }
        }
    }
    shown
}

/// The calls in a failing check's `source` line of a function the specification shows called
/// ([`shown_calls`]) with arguments it never gives it: the check is then the model's own case,
/// whatever values it borrows from the spec, or when it has none but 0, 1 and short strings
/// (`string_sequence(1) == '0'`, where HumanEval/15 shows 0 and 5). Asked only of a check none
/// of whose literals is made up already. HumanEval/29 with the 0.5B (9d3ee7d) checked
/// `filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'abc') == ['abc', 'array']`: every value
/// is the spec's (its example uses the prefix `'a'`), so the wrong check was kept as an example
/// and the right code was "fixed" until the render gave up. Each as written.
fn unshown_calls(source: &str, shown: &[(String, Vec<String>)]) -> Vec<String> {
    calls(source)
        .into_iter()
        .filter(|(name, args)| unshown(shown, name, args))
        .map(|(name, args)| format!("{name}({args})"))
        .collect()
}

/// Whether the specification shows `name` called ([`shown_calls`]), and never with `args`.
fn unshown(shown: &[(String, Vec<String>)], name: &str, args: &str) -> bool {
    shown
        .iter()
        .any(|(n, all)| n == name && !all.iter().any(|a| same_arguments(a, args)))
}

/// The calls in `line`: a name (the last part of a dotted one) and the text between its
/// brackets, when they close on the line ([`draft::balanced_end`]); calls inside the arguments
/// too. Quoted strings hold no calls.
fn calls(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if let Some(q) = quote {
            if c == '\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            quote = Some(c);
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = at;
            while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_') {
                i += 1;
            }
            let end = chars.get(i).map_or(line.len(), |(a, _)| *a);
            if chars.get(i).is_some_and(|(_, c)| *c == '(') {
                if let Some(len) = draft::balanced_end(&line[end..]) {
                    out.push((
                        line[start..end].to_string(),
                        line[end + 1..end + len - 1].to_string(),
                    ));
                }
            }
            continue;
        }
        i += 1;
    }
    out
}

/// Whether two argument lists are the same as code: alike but for white space outside quoted
/// strings and the quote marks a string is written with.
fn same_arguments(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> String {
        let mut out = String::new();
        let mut quote: Option<char> = None;
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match quote {
                Some(q) => {
                    if c == '\\' {
                        out.push(c);
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    } else if c == q {
                        quote = None;
                        out.push('\'');
                    } else {
                        out.push(c);
                    }
                }
                None if c == '\'' || c == '"' => {
                    quote = Some(c);
                    out.push('\'');
                }
                None if c.is_whitespace() => {}
                None => out.push(c),
            }
        }
        out
    }
    norm(a) == norm(b)
}

/// Whether the specification `spec` (whose numbers are `numbers`) gives `lit`: Some(true) when
/// it does (a number, not 0 or 1, some number of it equals; a string of three or more
/// characters it holds whole), Some(false) when it does not, None when the literal is neither
/// (0 and 1, which exit codes and counts use; short or blank strings; strings interpolating
/// other values, `f"{x}"`, `"$out"`).
fn spec_gives(spec: &str, numbers: &[f64], lit: &Literal) -> Option<bool> {
    match lit {
        Literal::Number(n) => {
            let x = n.parse::<f64>().ok()?;
            if x == 0.0 || x == 1.0 {
                None
            } else {
                Some(numbers.iter().any(|y| (x - y).abs() < 1e-9))
            }
        }
        Literal::Text(t) => {
            let t = without_blank_ends(t);
            if t.is_empty() || t.contains(['{', '$']) {
                None
            } else if holds_whole(spec, t) {
                (t.chars().count() >= 3).then_some(true)
            } else {
                Some(false)
            }
        }
    }
}

/// `values` in their order, each once.
fn distinct(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether the functionality to implement now gives values of its own, in its text or its
/// acceptance tests: a number other than 0 and 1, or a quoted string of three characters or
/// more ([`spec_gives`] of the text itself). Checks whose values the spec does not give are
/// judged the test's only then: the examples it gives are what the tests that stay check.
pub(crate) fn gives_examples(cx: &Context) -> bool {
    std::iter::once(&cx.current)
        .chain(&cx.acceptance_tests)
        .any(|t| {
            let numbers = numbers_in(t);
            literals(t)
                .iter()
                .any(|l| spec_gives(t, &numbers, l) == Some(true))
        })
}

/// White space as a string literal writes it escaped: newline, return, tab.
pub(crate) const BLANK_ESCAPES: [&str; 3] = ["\\n", "\\r", "\\t"];

/// `text`, a string literal as written, without the white space at its ends, written out or as
/// an escape (`\n`, `\r`, `\t`): a test's `"wc-lite: cannot open missing.txt\n"` is the spec's
/// "wc-lite: cannot open missing.txt" printed with its newline (word-count at 55a734c lost the
/// check as a made-up value).
fn without_blank_ends(text: &str) -> &str {
    let mut t = text.trim();
    loop {
        let before = t.len();
        for escape in BLANK_ESCAPES {
            t = t.strip_prefix(escape).unwrap_or(t);
            t = t.strip_suffix(escape).unwrap_or(t);
        }
        t = t.trim();
        if t.len() == before {
            return t;
        }
    }
}

/// Errors a program raises because of the values it is given, not because it cannot run:
/// what it does with those values is what the specification decides.
const VALUE_ERRORS: [&str; 5] = [
    "ZeroDivisionError",
    "ValueError",
    "IndexError",
    "KeyError",
    "OverflowError",
];

/// A failing check that calls the code with inputs the specification never gives, where the
/// code raised an error of the values ([`VALUE_ERRORS`], or any it raises itself with `raise`):
/// the model made up a case the specification leaves open and decided what the code should do
/// there. HumanEval/21 (`rescale_to_unit`, "a list of at least two elements") lost every
/// attempt at c0c3423 and e9ab361 to tests of `rescale_to_unit([1.0, 1.0])`, where its right
/// code divides by zero (as the canonical solution does). Every traceback of `output` must be
/// such a failure, with no failed assertion, and the test line must pass the called function
/// at least one literal, none of them the spec's: a call with no values (`longest([])`) may be
/// a case the spec words, unless the spec shows the function called and never so
/// ([`unshown`]; the call is then its value). The first one, with the call's literals as
/// its values and the error as raised.
pub(crate) fn unspecified_input(output: &str, files: &[FileText], spec: &str) -> Option<Invented> {
    if failed_assertion(output) {
        return None;
    }
    let numbers = numbers_in(spec);
    let shown = shown_calls(spec, files);
    let mut first = None;
    for tb in output.split("Traceback (most recent call last):").skip(1) {
        let at = all_pointed_at(tb, files);
        let (deepest, source) = at.last()?.split_once(": ")?;
        let program = deepest.split(" line ").next()?;
        if is_test_path(program) {
            return None;
        }
        let error = tb.lines().map(str::trim).find(|l| is_exception_line(l))?;
        let name = error.split(':').next().unwrap_or("");
        let name = name.rsplit('.').next().unwrap_or(name);
        if !VALUE_ERRORS.contains(&name) && !source.trim_start().starts_with("raise ") {
            return None;
        }
        let test = at
            .iter()
            .rev()
            .find(|a| a.split(" line ").next().is_some_and(is_test_path))?;
        let (place, line) = test.split_once(": ")?;
        let (path, n) = place.split_once(" line ")?;
        let function = called_function(tb, files)?;
        let args = call_arguments(line, &function)?;
        let values = literals(&args);
        // A call with no values is the model's own case when the spec shows the function
        // called, and never so (`max_element([])` where HumanEval/35 shows lists of numbers);
        // one the spec does not show called may be a case it words.
        let made_up_call = values.is_empty() && unshown(&shown, &function, &args);
        if (values.is_empty() && !made_up_call)
            || values
                .iter()
                .any(|v| spec_gives(spec, &numbers, v) == Some(true))
        {
            return None;
        }
        if first.is_none() {
            first = Some(Invented {
                path: path.to_string(),
                line: n.parse().ok()?,
                values: distinct(
                    values
                        .iter()
                        .map(ToString::to_string)
                        .chain(made_up_call.then(|| format!("{function}({args})"))),
                ),
                raised: Some(error.to_string()),
            });
        }
    }
    first
}

/// The function of the program a Python traceback `tb` first enters from a test: the name after
/// `in` of its first frame in a program file among `files`.
fn called_function(tb: &str, files: &[FileText]) -> Option<String> {
    let programs: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !is_test_path(p))
        .collect();
    tb.lines().map(str::trim).find_map(|l| {
        let rest = l.strip_prefix("File \"")?;
        let (file, rest) = rest.split_once('"')?;
        let ours = programs
            .iter()
            .any(|p| file == *p || file.ends_with(&format!("/{p}")));
        let name = rest.rsplit_once(", in ")?.1.trim();
        (ours && !name.starts_with('<')).then(|| name.to_string())
    })
}

/// The text between the brackets of the first call to `name` in `line` (not the tail of a
/// longer name; a method call counts), when they close on it; brackets in quoted strings do
/// not count ([`draft::balanced_end`]).
fn call_arguments(line: &str, name: &str) -> Option<String> {
    let call = format!("{name}(");
    let (at, _) = line.match_indices(&call).find(|(i, _)| {
        !line[..*i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })?;
    let open = at + name.len();
    let end = draft::balanced_end(&line[open..])?;
    Some(line[open + 1..open + end - 1].to_string())
}

/// Whether `text` holds `part` as a whole: somewhere with nothing of a word or a bracket
/// around it (white space, a quote or a mark of punctuation, or the text's start or end). A
/// string of a test that is only a piece of a value the spec gives is the test's own:
/// HumanEval/6's `parse_nested_parens('()()') == [2]` (wrong: the depth is 1) took its `'()()'`
/// from the spec's `'(()()) ((())) () ((())()())'`; counted as the spec's, it made the check
/// an example of the spec, kept the test, and failed a sample whose code was right (c0c3423).
fn holds_whole(text: &str, part: &str) -> bool {
    checked::occurs_between(text, part, |c| {
        c.is_none_or(|c| c.is_whitespace() || "'\"`,.;:!?".contains(c))
    })
}

/// The test file to write anew, and the values it made up, when every failing check
/// ([`failing_checks`]) compares with a value that `spec` does not give. None when a failing
/// check uses only the specification's own values: then the code is to blame.
pub(crate) fn invented_values(output: &str, files: &[FileText], spec: &str) -> Option<Invented> {
    let checks = failing_checks(output, files, spec)?;
    if checks.is_empty() || checks.iter().any(|c| c.made_up.is_empty()) {
        return None;
    }
    Some(Invented {
        path: checks[0].path.clone(),
        line: checks[0].line,
        values: distinct(checks.iter().flat_map(|c| c.made_up.iter().cloned())),
        raised: None,
    })
}

/// Whether every failing check ([`failing_checks`]) compares with values the specification
/// gives, and with none it does not: an example of the spec, so the test is right and the code
/// is not. A check must hold two such values at least (what goes in and what should come out):
/// one that holds only the expected value leaves its inputs to lines before it, which may not
/// be the spec's (shopping-cart at ed8c3ad: `total()` against the spec's 150 after adding 3 of
/// an item where the spec adds 1, kept as an example, and the right code was "fixed").
pub(crate) fn spec_valued(output: &str, files: &[FileText], spec: &str) -> bool {
    failing_checks(output, files, spec).is_some_and(|checks| {
        !checks.is_empty()
            && checks
                .iter()
                .all(|c| c.made_up.is_empty() && c.given.len() >= 2)
    })
}

/// A failing check with values the specification does not give ([`invented_values`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Invented {
    /// The test file, as prompts name it.
    pub(crate) path: String,
    /// The first failing check's line (1-based).
    pub(crate) line: usize,
    /// Every made-up value of the failing checks.
    pub(crate) values: Vec<String>,
    /// The error the code raised on them ([`unspecified_input`]); None when the check compared
    /// the code's answer with a made-up one.
    pub(crate) raised: Option<String>,
}

/// `content` without its line `n` (1-based), when that line is one whole statement (its
/// brackets balance) beside a sibling statement (a whole line at the same indentation just
/// before or after it): the block it stands in keeps a statement, so the file still parses.
/// When the line is the only statement of a Python test function (`def test…():` on one line,
/// with its decorators) that has a sibling of its own, the test function goes with it, and its
/// name is returned too.
pub(crate) fn without_line(content: &str, n: usize) -> Option<(String, Option<String>)> {
    let lines: Vec<&str> = content.lines().collect();
    let i = n.checked_sub(1)?;
    let line = *lines.get(i)?;
    if line.trim().is_empty() || !balanced(line) {
        return None;
    }
    let sibling = |l: Option<&&str>| l.is_some_and(|l| indent(l) == indent(line) && balanced(l));
    let before = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
    let after = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
    let (range, name) = if sibling(before) || sibling(after) {
        (i..i + 1, None)
    } else {
        let (range, name) = test_function_of(&lines, i)?;
        (range, Some(name))
    };
    let mut kept = lines;
    kept.drain(range);
    let mut out = kept.join("\n");
    if content.ends_with('\n') {
        out.push('\n');
    }
    Some((out, name))
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

/// The lines of the Python test function whose only statement is line `i` (its decorators and
/// the blank lines before it included), and its name, when the function has a sibling (a line
/// at its own indentation before or after it), so the block it stands in keeps a statement.
fn test_function_of(lines: &[&str], i: usize) -> Option<(std::ops::Range<usize>, String)> {
    let blank = |l: &&str| l.trim().is_empty();
    let h = lines[..i]
        .iter()
        .rposition(|l| !blank(l) && indent(l) < indent(lines[i]))?;
    let header = lines[h].trim();
    let name = header
        .strip_prefix("async ")
        .unwrap_or(header)
        .strip_prefix("def ")?
        .split('(')
        .next()?
        .trim();
    if !name.starts_with("test") || !header.ends_with(':') || !balanced(header) {
        return None;
    }
    // Its body is line i alone.
    if lines[h + 1..i].iter().any(|l| !blank(l)) {
        return None;
    }
    let end = lines[i + 1..]
        .iter()
        .position(|l| !blank(l) && indent(l) <= indent(lines[h]))
        .map_or(lines.len(), |p| i + 1 + p);
    if lines[i + 1..end].iter().any(|l| !blank(l)) {
        return None;
    }
    let mut start = h;
    while start > 0
        && lines[start - 1].trim().starts_with('@')
        && indent(lines[start - 1]) == indent(lines[h])
    {
        start -= 1;
    }
    // A comment is no statement: a class left with a comment alone does not parse.
    let at_level = |l: Option<&&str>| {
        l.is_some_and(|l| indent(l) == indent(lines[h]) && !l.trim().starts_with('#'))
    };
    let before = lines[..start]
        .iter()
        .rev()
        .find(|l| !blank(l) && indent(l) <= indent(lines[h]));
    let after = lines[end..].iter().find(|l| !blank(l));
    if !at_level(before) && !at_level(after) {
        return None;
    }
    while start > 0 && blank(&lines[start - 1]) {
        start -= 1;
    }
    // The blank lines before it go with it, those after it stay.
    Some((start..i + 1, name.to_string()))
}

/// Whether the brackets of `line` outside its quoted strings balance, and it has no string
/// left open.
fn balanced(line: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            },
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0 && quote.is_none()
}

/// A literal of a line of code.
#[derive(Debug, PartialEq)]
enum Literal {
    Number(String),
    Text(String),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Number(n) => f.write_str(n),
            Literal::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// The number and string literals of one line of code, in order: numbers that are not part of
/// a name (`test_2`), and the contents of single- or double-quoted strings (numbers inside a
/// string belong to it). An unterminated string ends the scan.
fn literals(line: &str) -> Vec<Literal> {
    scan(line, true)
}

/// Every number written in `text` (digits with an optional decimal part, not part of a name),
/// wherever it stands: in prose, in quotes, in code.
fn numbers_in(text: &str) -> Vec<f64> {
    scan(text, false)
        .into_iter()
        .filter_map(|l| match l {
            Literal::Number(n) => n.parse().ok(),
            Literal::Text(_) => None,
        })
        .collect()
}

/// The literals of `text`: numbers not part of a name, and, when `strings`, quoted strings (a
/// quote is then no ordinary character: the numbers inside belong to the string, and an
/// unterminated string ends the scan).
fn scan(text: &str, strings: bool) -> Vec<Literal> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if strings && (c == '\'' || c == '"') {
            let mut j = i + 1;
            let mut quoted = String::new();
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    quoted.push(chars[j]);
                    j += 1;
                }
                quoted.push(chars[j]);
                j += 1;
            }
            if j >= chars.len() {
                break;
            }
            out.push(Literal::Text(quoted));
            i = j + 1;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let token: String = chars[i..j].iter().collect();
            out.push(Literal::Number(token.trim_end_matches('.').to_string()));
            i = j;
        } else if c.is_alphanumeric() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether a path as prompts show it is a test: a conformance test, or a file whose name says
/// it is one.
pub(crate) fn is_test_path(path: &str) -> bool {
    path.starts_with(TESTS) || path.rsplit('/').next().is_some_and(|n| n.contains("test"))
}

/// Whether test output reports a failed assertion (`AssertionError`, `AssertionFailedError`),
/// not an error. Not a bare `assert`, which a traceback's source lines show as often as not.
pub(crate) fn failed_assertion(output: &str) -> bool {
    output.to_ascii_lowercase().contains("assertion")
}

/// Whether a file name is documentation: a README, or Markdown or reStructuredText.
pub(crate) fn is_doc_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("readme") || name.ends_with(".md") || name.ends_with(".rst")
}

/// Whether a path of the code folder is part of the program: not a test, and not documentation
/// (a README, a text file).
pub(crate) fn is_program_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !is_doc_name(name) && !name.to_ascii_lowercase().ends_with(".txt") && !is_test_path(path)
}

/// The program's files among `files` (as prompts name them).
pub(crate) fn program_paths(files: &[FileText]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| is_program_path(p))
        .collect()
}

/// Two numbers on one line of `output` that differ, but only by floating-point rounding
/// (`0.09999999999999964 != 0.1`): the mark of a test comparing computed floats for equality.
pub(crate) fn rounding(output: &str) -> Option<(String, String)> {
    for line in output.lines() {
        let numbers = decimals(line);
        for (i, (ta, a)) in numbers.iter().enumerate() {
            for (tb, b) in &numbers[i + 1..] {
                let scale = a.abs().max(b.abs());
                if a != b && scale > 0.0 && (a - b).abs() <= scale * 1e-9 {
                    return Some((ta.clone(), tb.clone()));
                }
            }
        }
    }
    None
}

/// The decimal numbers (with a fraction or an exponent) of `line`, as written and as values.
fn decimals(line: &str) -> Vec<(String, f64)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let from = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let mut decimal = false;
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            decimal = true;
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
            let mut k = j + 1;
            if k < b.len() && (b[k] == b'-' || b[k] == b'+') {
                k += 1;
            }
            if k < b.len() && b[k].is_ascii_digit() {
                decimal = true;
                j = k;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
        }
        if decimal {
            let text = &line[from..j];
            if let Ok(v) = text.parse::<f64>() {
                out.push((text.to_string(), v));
            }
        }
        i = j.max(i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_check_alone_in_its_test_function_goes_with_the_function() {
        let test = "import unittest\nfrom solution import f\n\n\nclass T(unittest.TestCase):\n    def test_spec(self):\n        self.assertEqual(f(8), [2, 2, 2])\n\n    @unittest.skipIf(False, \"never\")\n    def test_made_up(self):\n        self.assertEqual(f(100), [2, 5, 5, 5])\n\n    def test_other(self):\n        self.assertEqual(f(25), [5, 5])\n\n\nif __name__ == '__main__':\n    unittest.main()\n";
        let (out, name) = without_line(test, 11).unwrap();
        assert_eq!(name.as_deref(), Some("test_made_up"));
        assert_eq!(
            out,
            "import unittest\nfrom solution import f\n\n\nclass T(unittest.TestCase):\n    def test_spec(self):\n        self.assertEqual(f(8), [2, 2, 2])\n\n    def test_other(self):\n        self.assertEqual(f(25), [5, 5])\n\n\nif __name__ == '__main__':\n    unittest.main()\n"
        );
        // The last function of a class, and a top-level pytest function.
        let (out, name) = without_line(test, 14).unwrap();
        assert_eq!(name.as_deref(), Some("test_other"));
        assert!(
            out.contains("test_made_up") && !out.contains("f(25)"),
            "{out}"
        );
        let pytest = "from solution import f\n\ndef test_a():\n    assert f(1) == 2\n";
        assert_eq!(
            without_line(pytest, 4),
            Some((
                "from solution import f\n".to_string(),
                Some("test_a".to_string())
            ))
        );
        // Not the only function of its class: the class would be left without a body.
        let alone = "class T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(f(1), 2)\n";
        assert_eq!(without_line(alone, 3), None);
        let commented = "class T(unittest.TestCase):\n    # the one test\n    def test_a(self):\n        self.assertEqual(f(1), 2)\n";
        assert_eq!(without_line(commented, 4), None);
        // Not a test function, nor one with another statement, nor a header on two lines.
        let helper = "class T:\n    def helper(self):\n        return f(1) == 2\n    def test_b(self):\n        pass\n";
        assert_eq!(without_line(helper, 3), None);
        let two = "class T:\n    def test_a(self):\n        x = f(1)\n\n        if x:\n            self.assertEqual(x, 2)\n    def test_b(self):\n        pass\n";
        assert_eq!(without_line(two, 6), None);
        let wrapped = "class T:\n    def test_a(\n        self):\n        self.assertEqual(f(1), 2)\n    def test_b(self):\n        pass\n";
        assert_eq!(without_line(wrapped, 4), None);
    }

    #[test]
    fn the_first_failure_names_the_deepest_line_and_its_exception() {
        let test = FileText {
            path: "conformance_tests/test_solution.py".into(),
            content: "import unittest\nfrom solution import sort_third\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(sort_third([5, 3]), [3, 5])\n    def test_b(self):\n        self.assertEqual(sort_third([]), [])\n".into(),
        };
        let code = FileText {
            path: "solution.py".into(),
            content: "def sort_third(l):\n    return l[0] + missing\n".into(),
        };
        let files = [code, test];
        // Two failures, as unittest prints them: the first one is named.
        let out = "FF\n======================================================================\nFAIL: test_a (test_solution.T.test_a)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"/tmp/run-7/conformance_tests/test_solution.py\", line 6, in test_a\n    self.assertEqual(sort_third([5, 3]), [3, 5])\nAssertionError: Lists differ: [5, 3] != [3, 5]\n\nFirst differing element 0:\n5\n3\n\n======================================================================\nERROR: test_b (test_solution.T.test_b)\nTraceback (most recent call last):\n  File \"/tmp/run-7/conformance_tests/test_solution.py\", line 8, in test_b\n    self.assertEqual(sort_third([]), [])\n  File \"/tmp/run-7/solution.py\", line 2, in sort_third\n    return l[0] + missing\nIndexError: list index out of range\n\nRan 2 tests in 0.001s\n\nFAILED (failures=1, errors=1)\n";
        assert_eq!(
            first_failure(out, &files).as_deref(),
            Some("conformance_tests/test_solution.py line 6: `self.assertEqual(sort_third([5, 3]), [3, 5])` raised AssertionError: Lists differ: [5, 3] != [3, 5]")
        );
        // An error raised in the code: the code's line, the deepest of the traceback.
        let second = &out[out.find("ERROR: test_b").unwrap()..];
        assert_eq!(
            first_failure(second, &files).as_deref(),
            Some("solution.py line 2: `return l[0] + missing` raised IndexError: list index out of range")
        );
        // No traceback, or one that points at no file shown: nothing to name.
        assert_eq!(first_failure("FAILED (failures=1)\n", &files), None);
        assert_eq!(
            first_failure("Traceback (most recent call last):\n  File \"/usr/lib/python3/x.py\", line 1\nValueError: x\n", &files),
            None
        );
        for (line, is) in [
            ("AssertionError", true),
            ("AssertionError: 3 != 4", true),
            ("json.decoder.JSONDecodeError: Expecting value", true),
            ("SystemExit: 2", true),
            ("KeyboardInterrupt", false),
            ("Error in the third line: x", false),
            ("FAILED (failures=1)", false),
            ("self.assertEqual(a, b)", false),
        ] {
            assert_eq!(is_exception_line(line), is, "{line}");
        }
    }

    #[test]
    fn floats_that_differ_by_rounding_are_told_apart_from_other_numbers() {
        // As Python's unittest prints a float compared for equality.
        let out = "FAIL: test_t (test_solution.T.test_t)\nTraceback (most recent call last):\n  File \"test_solution.py\", line 6, in test_t\n    self.assertEqual(truncate_number(1.1), 0.1)\nAssertionError: 0.10000000000000009 != 0.1\n\nRan 1 test in 0.001s";
        assert_eq!(
            rounding(out),
            Some(("0.10000000000000009".into(), "0.1".into()))
        );
        assert_eq!(
            rounding("AssertionError: -2.0000000000000004 != -2.0"),
            Some(("-2.0000000000000004".into(), "-2.0".into()))
        );
        assert_eq!(
            rounding("expected 1e-3 got 0.0010000000000000002")
                .unwrap()
                .0,
            "1e-3"
        );
        // Different values, equal values written alike, integers, timings, versions: no.
        for line in [
            "AssertionError: 0.5 != 0.25",
            "AssertionError: 1.0 != 1.0",
            "AssertionError: 3 != 4",
            "Ran 3 tests in 0.002s (0.0020001s)",
            "python3.11/unittest/case.py and python3.11.0",
        ] {
            assert_eq!(rounding(line), None, "{line}");
        }
    }

    #[test]
    fn failures_point_at_the_lines_of_the_shown_files() {
        let files = vec![
            FileText {
                path: "test_app.py".into(),
                content: "import unittest\nclass T:\n    def test(self):\n        self.assertEqual(f(), 2)\n".into(),
            },
            FileText {
                path: "conformance_tests/test_cli.py".into(),
                content: "a\nb\nassert run() == 'x'\n".into(),
            },
        ];
        let out = "Traceback (most recent call last):\n  File \"./test_app.py\", line 4, in test\n    self.assertEqual(f(), 2)\nAssertionError: 1 != 2\n  File \"/usr/lib/python3/unittest/case.py\", line 9\nconformance_tests/test_cli.py:3: AssertionError\nother_test_app.py:1: x\nlib/test_app.py:2: y\n";
        assert_eq!(
            pointed_at(out, &files),
            [
                "test_app.py line 4: self.assertEqual(f(), 2)",
                "conformance_tests/test_cli.py line 3: assert run() == 'x'"
            ]
        );
        // A test script that runs a copy of the code folder: its absolute paths end in the
        // shown path.
        let copied = "  File \"/tmp/python_code/test_app.py\", line 2, in <module>\nNameError: name 'time' is not defined\n";
        assert_eq!(pointed_at(copied, &files), ["test_app.py line 2: class T:"]);
        assert!(pointed_at("no lines here", &files).is_empty());
    }

    #[test]
    fn a_call_of_the_specs_function_with_arguments_it_never_shows_is_made_up() {
        // HumanEval/29 as the 0.5B tested it: every value is the spec's, the prefix is not.
        let spec = "  ```python\n  def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:\n      \"\"\" Filter an input list of strings only for ones that start with a given prefix.\n      >>> filter_by_prefix([], 'a')\n      []\n      >>> filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'a')\n      ['abc', 'array']\n      \"\"\"\n  ```\n";
        let files = vec![
            FileText {
                path: "solution.py".into(),
                content: "def filter_by_prefix(strings, prefix):\n    return [s for s in strings if s.startswith(prefix)]\n".into(),
            },
            FileText {
                path: "test_solution.py".into(),
                content: "import unittest\nclass T(unittest.TestCase):\n    def test_f(self):\n        self.assertEqual(filter_by_prefix([\"abc\", \"bcd\",\"cde\", \"array\"],  \"a\"), ['abc', 'array'])\n        self.assertEqual(filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'abc'), ['abc', 'array'])\n        self.assertEqual(sorted(filter_by_prefix(['abc', 'array'], 'a')), ['abc', 'array'])\n        self.assertEqual(filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'ab'), ['abc', 'array', 'abz'])\n".into(),
            },
        ];
        let failing = |line: usize| {
            format!("FAIL: test_f (test_solution.T.test_f)\nTraceback (most recent call last):\n  File \"test_solution.py\", line {line}, in test_f\n    ...\nAssertionError: Lists differ: ['abc'] != ['abc', 'array']\n")
        };
        // The spec's own call, written with other quotes and spaces, is its example.
        assert!(spec_valued(&failing(4), &files, spec));
        assert_eq!(invented_values(&failing(4), &files, spec), None);
        // The same values with the prefix 'abc': the model's own case.
        assert!(!spec_valued(&failing(5), &files, spec));
        assert_eq!(
            invented_values(&failing(5), &files, spec),
            Some(Invented {
                path: "test_solution.py".to_string(),
                line: 5,
                values: vec!["filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'abc')".to_string()],
                raised: None,
            })
        );
        // A call inside another function's (which the program does not define) counts alone.
        assert_eq!(
            invented_values(&failing(6), &files, spec).map(|i| i.values),
            Some(vec!["filter_by_prefix(['abc', 'array'], 'a')".to_string()])
        );
        // A made-up literal says it already: the call is not added.
        assert_eq!(
            invented_values(&failing(7), &files, spec).map(|i| i.values),
            Some(vec!["\"ab\"".to_string(), "\"abz\"".to_string()])
        );
        // With no program file that defines it, the spec's calls say nothing.
        assert!(spec_valued(&failing(5), &files[1..], spec));
    }

    #[test]
    fn a_failing_check_with_values_the_spec_never_gives_blames_the_test() {
        let spec = "- :Solution: should define `mean_absolute_deviation`, written in Python 3.\n\n```python\n>>> mean_absolute_deviation([1.0, 2.0, 3.0, 4.0])\n1.0\n```\n";
        let files = vec![
            FileText {
                path: "solution.py".into(),
                content: "def mean_absolute_deviation(numbers):\n    return sum(numbers) / 0\n"
                    .into(),
            },
            FileText {
                path: "conformance_tests/test_solution.py".into(),
                content: "import unittest\nclass T(unittest.TestCase):\n    def test_mad(self):\n        self.assertEqual(mean_absolute_deviation([1.0, 2.0, 3.0, 4.0, 5.0]), 1.5)\n        self.assertEqual(mean_absolute_deviation([1.0, 2.0, 3.0, 4.0]), 1.0)\n        self.assertEqual(mean_absolute_deviation([3, 4]), 0.5, 'rounding')\n".into(),
            },
        ];
        let failing = |line: usize, error: &str| {
            format!("F\n======\nFAIL: test_mad (test_solution.T.test_mad)\nTraceback (most recent call last):\n  File \"/tmp/run-0.0123/conformance_tests/test_solution.py\", line {line}, in test_mad\n    ...\n{error}\n\nRan 1 test in 0.001s\n")
        };
        // 5.0 and 1.5 are the model's own; 1.0 to 4.0 (and 3, from "Python 3") are the spec's.
        assert_eq!(
            invented_values(&failing(4, "AssertionError: 1.2 != 1.5"), &files, spec),
            Some(Invented {
                path: "conformance_tests/test_solution.py".to_string(),
                line: 4,
                values: vec!["5.0".to_string(), "1.5".to_string()],
                raised: None,
            })
        );
        // A string the spec does not hold is made up too; 0.5 is not, as a number, 0.50.
        assert_eq!(
            invented_values(
                &failing(6, "AssertionError: 0.25 != 0.5"),
                &files,
                &format!("{spec} 0.50")
            ),
            Some(Invented {
                path: "conformance_tests/test_solution.py".to_string(),
                line: 6,
                values: vec!["\"rounding\"".to_string()],
                raised: None,
            })
        );
        // A failing check with the spec's own values puts the failure on the code.
        assert_eq!(
            invented_values(&failing(5, "AssertionError: 1.2 != 1.0"), &files, spec),
            None
        );
        assert!(spec_valued(
            &failing(5, "AssertionError: 1.2 != 1.0"),
            &files,
            spec
        ));
        // A check with a made-up value, or with none the spec gives (0 and 1, a short string
        // the spec happens to hold), is no example of the spec.
        assert!(!spec_valued(
            &failing(4, "AssertionError: 1.2 != 1.5"),
            &files,
            spec
        ));
        let bare = vec![
            files[0].clone(),
            FileText {
                path: "test_solution.py".into(),
                content: "import unittest\nclass T(unittest.TestCase):\n    def test_mad(self):\n        self.assertEqual(mean_absolute_deviation([1, 0]), 1)\n        self.assertEqual(mean_absolute_deviation(['on']), 0)\n".into(),
            },
        ];
        let bare_failing = |line: usize| {
            format!("FAIL: test_mad (test_solution.T.test_mad)\nTraceback (most recent call last):\n  File \"test_solution.py\", line {line}, in test_mad\n    ...\nAssertionError: 2 != 1\n")
        };
        assert!(!spec_valued(&bare_failing(4), &bare, spec));
        assert!(!spec_valued(&bare_failing(5), &bare, spec));
        // Nor are they made up, but the call is, with arguments the spec never gives it.
        assert_eq!(
            invented_values(&bare_failing(4), &bare, spec).map(|i| i.values),
            Some(vec!["mean_absolute_deviation([1, 0])".to_string()])
        );
        assert_eq!(invented_values(&bare_failing(4), &bare[1..], spec), None);
        // One given value alone (the expected one) is no example either: the inputs stand on
        // other lines, and they may not be the spec's.
        let cart_spec =
            "After `add(\"apple\", 50)` and `add(\"apple\", 60, 2)`, `total()` returns 150.";
        let cart = vec![FileText {
            path: "test_cart.py".into(),
            content: "import unittest\nclass T(unittest.TestCase):\n    def test_add(self):\n        cart.add(\"apple\", 50, 3)\n        cart.add(\"apple\", 60, 2)\n        self.assertEqual(cart.total(), 150)\n        self.assertEqual(cart.total(\"apple\"), 150)\n".into(),
        }];
        let cart_failing = |line: usize| {
            format!("FAIL: test_add (test_cart.T.test_add)\nTraceback (most recent call last):\n  File \"test_cart.py\", line {line}, in test_add\n    ...\nAssertionError: 250 != 150\n")
        };
        assert!(!spec_valued(&cart_failing(6), &cart, cart_spec));
        assert!(spec_valued(&cart_failing(7), &cart, cart_spec));
        // A string that is only a piece of one the spec gives is the test's own.
        let parens_spec = ">>> parse_nested_parens('(()()) ((())) () ((())()())')\n[2, 3, 1, 3]\n";
        let parens = vec![FileText {
            path: "test_solution.py".into(),
            content: "import unittest\nclass T(unittest.TestCase):\n    def test_p(self):\n        self.assertEqual(parse_nested_parens('(()()) ((())) () ((())()())'), [2, 3, 1, 3])\n        self.assertEqual(parse_nested_parens('()()'), [2])\n".into(),
        }];
        let parens_failing = |line: usize| {
            format!("FAIL: test_p (test_solution.T.test_p)\nTraceback (most recent call last):\n  File \"test_solution.py\", line {line}, in test_p\n    ...\nAssertionError: Lists differ: [1] != [2]\n")
        };
        assert!(!spec_valued(&parens_failing(5), &parens, parens_spec));
        assert_eq!(
            invented_values(&parens_failing(5), &parens, parens_spec).map(|i| i.values),
            Some(vec!["\"()()\"".to_string()])
        );
        assert!(spec_valued(&parens_failing(4), &parens, parens_spec));
        // So does an error raised in the code, and any error that is no failed assertion.
        let through_code = format!(
            "{}  File \"solution.py\", line 2, in mean_absolute_deviation\nZeroDivisionError: division by zero (AssertionError)\n",
            failing(4, "")
        );
        assert_eq!(invented_values(&through_code, &files, spec), None);
        assert!(!spec_valued(&through_code, &files, spec));
        assert_eq!(
            invented_values(
                &failing(4, "NameError: name 'x' is not defined"),
                &files,
                spec
            ),
            None
        );
        // The check goes when a sibling statement stays in its block.
        let test = &files[1].content;
        let (without, method) = without_line(test, 4).unwrap();
        assert!(!without.contains("5.0"), "{without}");
        assert_eq!(without.lines().count(), test.lines().count() - 1);
        assert_eq!(method, None);
        assert_eq!(
            without_line("def t():\n    assert f(2) == 5\nrun()\n", 2),
            None
        );
        assert_eq!(
            without_line("    assert f(2,\n        3) == 5\n    g()\n", 1),
            None
        );
        assert_eq!(
            without_line("    g()\n    assert f(')') == 5\n", 2),
            Some(("    g()\n".to_string(), None))
        );
        // Numbers in names are no literals; numbers in strings belong to the string.
        assert_eq!(
            literals("self.assertEqual(test_2(x, 0.25), 'a 7 b'); f(\"it's\", 10.)"),
            [
                Literal::Number("0.25".into()),
                Literal::Text("a 7 b".into()),
                Literal::Text("it's".into()),
                Literal::Number("10".into()),
            ]
        );
    }

    #[test]
    fn a_string_printed_with_its_newline_is_the_specs_string() {
        let spec = "Given the argument \"missing.txt\", :App: prints \"wc-lite: cannot open missing.txt\" to standard error.";
        let numbers: Vec<f64> = vec![];
        let judge = |t: &str| spec_gives(spec, &numbers, &Literal::Text(t.to_string()));
        assert_eq!(judge("wc-lite: cannot open missing.txt\\n"), Some(true));
        assert_eq!(
            judge("\\t wc-lite: cannot open missing.txt \\r\\n"),
            Some(true)
        );
        // What stands inside the string still counts: a newline in its middle is no end.
        assert_eq!(judge("wc-lite:\\ncannot open missing.txt"), Some(false));
        assert_eq!(judge("wc-lite: cannot open other.txt\\n"), Some(false));
        // Only blank ends: neither the spec's nor made up.
        assert_eq!(judge("\\n"), None);
        assert_eq!(without_blank_ends(" \\n\\nx y\\t\\n "), "x y");
    }

    fn raised_through(n: usize, line: &str, code: &str, error: &str) -> String {
        format!("E\n======================================================================\nERROR: test_r (test_solution.T.test_r)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"/tmp/run-0.0317/code/test_solution.py\", line {n}, in test_r\n    {line}\n                     ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/tmp/run-0.0317/code/solution.py\", line 4, in rescale_to_unit\n    {code}\n           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/tmp/run-0.0317/code/solution.py\", line 4, in <listcomp>\n    {code}\n            ~~~~~~~~~^~~~~~~~~~~\n{error}\n\n----------------------------------------------------------------------\nRan 1 test in 0.001s\n\nFAILED (errors=1)\n")
    }

    #[test]
    fn an_error_the_code_raises_on_inputs_the_spec_never_gives_blames_the_test() {
        let spec = "Given list of numbers (of at least two elements), apply a linear transform to that list, such that the smallest number will become 0 and the largest will become 1\n>>> rescale_to_unit([1.0, 2.0, 3.0, 4.0, 5.0])\n[0.0, 0.25, 0.5, 0.75, 1.0]\n";
        let lines = [
            "self.assertEqual(rescale_to_unit([1.0, 2.0, 3.0, 4.0, 5.0]), [0.0, 0.25, 0.5, 0.75, 1.0])",
            "self.assertEqual(rescale_to_unit([1.0, 1.0]), [0.5, 0.5])",
            "self.assertEqual(rescale_to_unit([]), [])",
            "self.assertEqual(rescale_to_unit([7.5, 7.5]), [0.0, 0.0])",
        ];
        let files = vec![
            FileText {
                path: "solution.py".into(),
                content: "from typing import List\ndef rescale_to_unit(numbers):\n    lo, hi = min(numbers), max(numbers)\n    return [(n - lo) / (hi - lo) for n in numbers]\n".into(),
            },
            FileText {
                path: "test_solution.py".into(),
                content: format!("import unittest\nclass T(unittest.TestCase):\n    def test_r(self):\n        {}\n", lines.join("\n        ")),
            },
        ];
        let divide = "return [(n - lo) / (hi - lo) for n in numbers]";
        let zero = "ZeroDivisionError: float division by zero";
        // Equal values, which the spec never gives (0 and 1 are no one's values): the case and
        // what the code should do there are the test's own.
        assert_eq!(
            unspecified_input(&raised_through(5, lines[1], divide, zero), &files, spec),
            Some(Invented {
                path: "test_solution.py".to_string(),
                line: 5,
                values: vec!["1.0".to_string()],
                raised: Some(zero.to_string()),
            })
        );
        // The expected values do not count, only what the code was called with: 0.5 is the
        // spec's, 7.5 is not.
        assert_eq!(
            unspecified_input(&raised_through(7, lines[3], divide, zero), &files, spec)
                .map(|i| i.values),
            Some(vec!["7.5".to_string()])
        );
        // The spec's own example raising is the code's fault.
        assert_eq!(
            unspecified_input(&raised_through(4, lines[0], divide, zero), &files, spec),
            None
        );
        // A call with no values may be a case the spec words ("None for an empty list"): so
        // when the spec never shows the function called, or shows it called so.
        let empty = "ValueError: min() arg is an empty sequence";
        let worded = spec.replace(">>> rescale_to_unit([1.0, 2.0, 3.0, 4.0, 5.0])", "");
        assert_eq!(
            unspecified_input(&raised_through(6, lines[2], divide, empty), &files, &worded),
            None
        );
        let shown_empty = format!("{spec}>>> rescale_to_unit( [ ] )\n[]\n");
        assert_eq!(
            unspecified_input(
                &raised_through(6, lines[2], divide, empty),
                &files,
                &shown_empty
            ),
            None
        );
        // Shown called with other values only, the empty list is the test's own case.
        assert_eq!(
            unspecified_input(&raised_through(6, lines[2], divide, empty), &files, spec),
            Some(Invented {
                path: "test_solution.py".to_string(),
                line: 6,
                values: vec!["rescale_to_unit([])".to_string()],
                raised: Some(empty.to_string()),
            })
        );
        // An error that is no error of the values is the code's, whatever it was called with;
        // any error the code raises itself is a decision about the values.
        let name = "NameError: name 'lo' is not defined";
        assert_eq!(
            unspecified_input(&raised_through(5, lines[1], divide, name), &files, spec),
            None
        );
        let refuse = "raise TypeError(\"the numbers must differ\")";
        let mut refusing = files.clone();
        refusing[0].content = refusing[0].content.replace(divide, refuse);
        assert_eq!(
            unspecified_input(
                &raised_through(5, lines[1], refuse, "TypeError: the numbers must differ"),
                &refusing,
                spec
            )
            .map(|i| i.raised),
            Some(Some("TypeError: the numbers must differ".to_string()))
        );
        // Every failure must be such a case: one more that is the code's keeps the blame there.
        let both = format!(
            "{}{}",
            raised_through(5, lines[1], divide, zero),
            raised_through(4, lines[0], divide, zero)
        );
        assert_eq!(unspecified_input(&both, &files, spec), None);
        // A failed assertion, or an error raised in the test itself, is judged otherwise.
        let failed = format!(
            "{}AssertionError: 1 != 2\n",
            raised_through(5, lines[1], divide, zero)
        );
        assert_eq!(unspecified_input(&failed, &files, spec), None);
        let in_test = "Traceback (most recent call last):\n  File \"test_solution.py\", line 5, in test_r\n    self.assertEqual(rescale_to_unit([1.0, 1.0]), [0.5, 0.5])\nZeroDivisionError: division by zero\n";
        assert_eq!(unspecified_input(in_test, &files, spec), None);
        // The arguments are those of the call into the code, brackets in strings and all.
        assert_eq!(
            call_arguments("self.assertEqual(f(g('(x')), [1]); f(2)", "f").as_deref(),
            Some("g('(x')")
        );
        assert_eq!(call_arguments("self.assertEqual(pf(2), 3)", "f"), None);
        assert_eq!(call_arguments("f(2", "f"), None);
        assert_eq!(
            called_function(&raised_through(5, lines[1], divide, zero), &files).as_deref(),
            Some("rescale_to_unit")
        );
    }

    #[test]
    fn the_program_is_what_is_neither_a_test_nor_documentation() {
        for p in ["app.py", "pkg/__init__.py", "main.sh", "src/lib.rs"] {
            assert!(is_program_path(p), "{p}");
        }
        for p in [
            "README.md",
            "docs/Readme",
            "notes.txt",
            "test_app.py",
            "conformance_tests/test_cli.py",
            "guide.rst",
        ] {
            assert!(!is_program_path(p), "{p}");
        }
    }
}
