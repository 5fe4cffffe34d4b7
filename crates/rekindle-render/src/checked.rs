//! Which acceptance tests a set of written conformance tests leaves out, judged by the values
//! the acceptance tests quote.
//!
//! An acceptance test says what to check with quoted values: `Running "python roman.py XLII"
//! prints "42"`. A conformance test that checks it names those values somewhere; tests that
//! leave one of them out (a copy of an earlier functionality's test, an assertion that compares
//! two literals of their own) check something else. The judgement is lenient on
//! purpose: a value counts as named wherever it appears in the written files, and values that
//! the rest of the specification already gives (the command that starts the program) are setup
//! rather than what a test checks, so they are not asked for. The one exception is the
//! program's file name in a command an acceptance test quotes (`roman.py` in `"python roman.py
//! XLII"`): a test that never names it does not run the program as the acceptance test says
//! (a small model imports it and calls `main("XLII")`), so it leaves that test out whatever
//! else it names.
//!
//! One judgement is strict: what an acceptance test says a call returns (`` `total()` returns
//! 202 ``) must be checked on a line that names the call, or a variable a line before gave its
//! result to. Naming every value is not enough: the 1.5B checked
//! `apply_discount(10) == 202` for that test (shopping-cart at b394d0b and 87d69cb), so the
//! tests passed on a `total()` that never learnt the discount.

use crate::prompts::Context;
use serde::Serialize;

/// An acceptance test most of whose values the written tests do not name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Unchecked {
    /// The acceptance test as the specification gives it.
    pub test: String,
    /// Its quoted values (as quoted there) that appear in no written file.
    pub missing: Vec<String>,
    /// What it says calls return that no line of the written files checks, as it says it
    /// (`` `total()` returns 202 ``).
    pub results: Vec<String>,
}

/// The acceptance tests in `tests` that the `written` files leave out: more than half of their
/// values appear in none of them, or the program file they run does not. `setup` is the rest
/// of the specification the prompts show (definitions and requirements): a value it names is
/// not asked for, except a file name (the program a quoted command runs), which must be named.
pub(crate) fn unchecked(tests: &[String], setup: &str, written: &[&str]) -> Vec<Unchecked> {
    let setup_words = words(setup);
    tests
        .iter()
        .filter_map(|test| {
            // The program's file, which the test must name, and the values proper, most of
            // which it must.
            let program = |w: &String| setup_words.contains(w) && is_file_name(w);
            let values: Vec<String> = values(test)
                .into_iter()
                .filter(|w| !setup_words.contains(w) || program(w))
                .collect();
            let missing: Vec<String> = values
                .iter()
                .filter(|w| !written.iter().any(|f| names(f, w)))
                .cloned()
                .collect();
            let proper = values.iter().filter(|w| !program(w)).count();
            let proper_missing = missing.iter().filter(|w| !program(w)).count();
            let program_left_out = missing.iter().any(program);
            let results: Vec<String> = results(test)
                .into_iter()
                .filter(|r| !written.iter().any(|f| checks(f, r)))
                .map(|r| r.said)
                .collect();
            (proper_missing * 2 > proper || program_left_out || !results.is_empty()).then(|| {
                Unchecked {
                    test: test.clone(),
                    missing,
                    results,
                }
            })
        })
        .collect()
}

/// What an acceptance test says one call returns.
#[derive(Debug, PartialEq, Eq)]
struct Returned {
    /// The function or method called (`total` of `` `cart.total()` ``).
    name: String,
    /// The value, as a test would write it (`202`, `apple`).
    value: String,
    /// As the acceptance test says it.
    said: String,
}

/// The calls `test` says return a value: a call in backquotes (`` `total()` ``,
/// `` `cart.count()` ``), then "returns", then a number, `True`, `False`, `None`, or a quoted
/// value. Anything else after "returns" ("the number of items") is no value to check.
fn results(test: &str) -> Vec<Returned> {
    let mut out = Vec::new();
    let mut rest = test;
    while let Some(open) = rest.find('`') {
        let Some((code, len)) = quoted(&rest[open..]) else {
            break;
        };
        let code = code.trim();
        rest = &rest[open + len..];
        let Some(name) = called(code) else { continue };
        let Some(tail) = rest.trim_start().strip_prefix("returns ") else {
            continue;
        };
        let tail = tail.trim_start();
        let (value, said_value) = match quoted(tail) {
            Some((value, len)) => (value.to_string(), tail[..len].to_string()),
            None => {
                let word: String = tail
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != ',' && *c != ';')
                    .collect();
                let word = word.trim_end_matches('.').to_string();
                let number = word.trim_start_matches('-');
                let is_number = !number.is_empty()
                    && number.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && number.chars().next().is_some_and(|c| c.is_ascii_digit());
                if !(is_number || matches!(word.as_str(), "True" | "False" | "None")) {
                    continue;
                }
                (word.clone(), word)
            }
        };
        if value.trim().is_empty() {
            continue;
        }
        out.push(Returned {
            said: format!("`{code}` returns {said_value}"),
            name,
            value,
        });
    }
    out
}

/// The name a backquoted call calls: `total` of `total()` and of `cart.total()`; `None` for
/// code that is no call.
fn called(code: &str) -> Option<String> {
    let (head, _) = code.split_once('(')?;
    if !code.ends_with(')') {
        return None;
    }
    let name = head.rsplit('.').next()?;
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    (ident(name) && head.split('.').all(ident)).then(|| name.to_string())
}

/// Whether `file` checks `r`: a line names its value and its call, or its value and a variable
/// an earlier line of the file gave a result of that call to (`t = cart.total()`).
fn checks(file: &str, r: &Returned) -> bool {
    let lines: Vec<&str> = file.lines().collect();
    // A value of one word (`202`, `-2.5`, `True`) is matched whole: 2025 is no check of 202.
    let one_word = r
        .value
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
    lines.iter().enumerate().any(|(i, line)| {
        let value = if one_word {
            has_word(line, &r.value)
        } else {
            names(line, &r.value)
        };
        if !value {
            return false;
        }
        if has_word(line, &r.name) {
            return true;
        }
        let call = format!("{}(", r.name);
        lines[..i].iter().any(|earlier| {
            let Some((left, right)) = earlier.split_once('=') else {
                return false;
            };
            let var = left.trim();
            !right.starts_with('=')
                && right.contains(&call)
                && !var.is_empty()
                && var
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                && has_word(line, var)
        })
    })
}

/// Whether `word` stands in `line` as a whole word (not within a longer name).
fn has_word(line: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    occurs_between(line, word, |c| !c.is_some_and(is_name))
}

/// Whether `text` holds `part` somewhere that `edge` accepts the character before it and the
/// one after it (`None` at the text's start or end).
pub(crate) fn occurs_between(text: &str, part: &str, edge: impl Fn(Option<char>) -> bool) -> bool {
    text.match_indices(part).any(|(i, _)| {
        edge(text[..i].chars().next_back()) && edge(text[i + part.len()..].chars().next())
    })
}

/// Whether a value word is a file name (`roman.py`, `wc_lite.py`): a dot between a name and an
/// extension with a letter in it, so that `1.5` and `10.0` are not.
fn is_file_name(w: &str) -> bool {
    let Some((name, ext)) = w.rsplit_once('.') else {
        return false;
    };
    name.chars().any(char::is_alphabetic)
        && ext.chars().all(|c| c.is_ascii_alphanumeric())
        && ext.chars().any(|c| c.is_ascii_alphabetic())
}

/// The values of the acceptance tests in `tests` that the `written` files name (those `setup`
/// gives aside, but for file names), each once.
pub(crate) fn named(tests: &[String], setup: &str, written: &[&str]) -> Vec<String> {
    let setup_words = words(setup);
    let mut out: Vec<String> = Vec::new();
    for w in tests.iter().flat_map(|t| values(t)) {
        let value = !setup_words.contains(&w) || is_file_name(&w);
        if value && !out.contains(&w) && written.iter().any(|f| names(f, &w)) {
            out.push(w);
        }
    }
    out
}

/// The specification the prompts show beside the functionality: its definitions and
/// requirements.
pub(crate) fn setup(cx: &Context) -> String {
    cx.definitions
        .iter()
        .chain(&cx.implementation_reqs)
        .chain(&cx.test_reqs)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The words of the values `text` quotes ("…", “…” or `…`), in order, each once. A concept
/// (`:App:`) is not a value, and a word is what a test would write whatever its quoting:
/// `add("apple", 50)` is the words `add`, `apple` and `50`.
fn values(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(QUOTES) {
        let Some((inside, len)) = quoted(&rest[i..]) else {
            break;
        };
        for w in words(&without_concepts(inside)) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
        rest = &rest[i + len..];
    }
    out
}

/// The quotes a value is written in: "…", “…” or `…`.
const QUOTES: [char; 3] = ['"', '“', '`'];

/// The quoted span `text` starts with: what is inside it, and the length of the whole span.
/// `None` when `text` starts with no quote, or its quote is never closed.
fn quoted(text: &str) -> Option<(&str, usize)> {
    let open = text.chars().next().filter(|c| QUOTES.contains(c))?;
    let close = if open == '“' { '”' } else { open };
    let inside = &text[open.len_utf8()..];
    let end = inside.find(close)?;
    Some((&inside[..end], open.len_utf8() + end + close.len_utf8()))
}

/// `text` without its concepts (`:Name:`).
fn without_concepts(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(':') {
        let after = &rest[i + 1..];
        let name_len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with(':') {
            out.push_str(&rest[..i]);
            rest = &after[name_len + 1..];
        } else {
            out.push_str(&rest[..=i]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The words of `text`: runs of letters, digits and `._-\` (a file name, a number, an escape
/// such as `\n` stay whole), without a sentence's final full stop.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '\\')))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `file` names the value word `w`: as written or, when it holds escapes (`b\nc\n`),
/// with each of its pieces present (a test may write the newlines themselves).
fn names(file: &str, w: &str) -> bool {
    if file.contains(w) {
        return true;
    }
    let pieces: Vec<&str> = w
        .split('\\')
        .enumerate()
        .map(|(i, p)| if i == 0 { p } else { p.get(1..).unwrap_or("") })
        .filter(|p| !p.is_empty())
        .collect();
    w.contains('\\') && !pieces.is_empty() && pieces.iter().all(|p| file.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roman() -> (Vec<String>, &'static str) {
        (
            vec![
                r#"Running "python roman.py XLII" prints "42"."#.to_string(),
                r#"Running "python roman.py 3 IX" prints "III" and then "9", each on its own line."#
                    .to_string(),
            ],
            r#":MainExecutableFile: of :App: should be called "roman.py". :App: is started with the command "python :MainExecutableFile:"."#,
        )
    }

    #[test]
    fn a_test_of_another_functionality_leaves_out_the_values_it_does_not_name() {
        let (tests, setup) = roman();
        let earlier = "import subprocess, sys\n\nclass T(unittest.TestCase):\n    def test_1994(self):\n        r = subprocess.run([sys.executable, 'roman.py', '1994'], capture_output=True, text=True)\n        self.assertEqual(r.stdout, 'MCMXCIV\\n')\n";
        let got = unchecked(&tests, setup, &[earlier]);
        // "python" and "roman.py" are the setup's; the values are what is left.
        assert_eq!(
            got,
            vec![
                Unchecked {
                    test: tests[0].clone(),
                    missing: vec!["XLII".into(), "42".into()],
                    results: vec![],
                },
                Unchecked {
                    test: tests[1].clone(),
                    missing: vec!["3".into(), "IX".into(), "III".into()],
                    results: vec![],
                },
            ]
        );
    }

    #[test]
    fn tests_that_name_every_value_leave_nothing_out_in_any_file() {
        let (tests, setup) = roman();
        let a = "r = run([sys.executable, 'roman.py', 'XLII'])\nassertEqual(r.stdout, '42\\n')";
        let b =
            "r = run([sys.executable, 'roman.py', '3', 'IX'])\nassertEqual(r.stdout, 'III\\n9\\n')";
        assert_eq!(unchecked(&tests, setup, &[a, b]), vec![]);
        // A value left out of one acceptance test only names that one.
        let got = unchecked(&tests, setup, &[a]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].test, tests[1]);
    }

    #[test]
    fn escapes_in_a_value_are_found_written_either_way() {
        let tests = vec![r#"For a file holding "a b\nc\n", :App: prints "2 3 6"."#.to_string()];
        let escaped = r#"f.write("a b\nc\n"); self.assertEqual(out, "2 3 6\n")"#;
        let real_newlines = "f.write('''a b\nc\n'''); self.assertEqual(out, '2 3 6\\n')";
        assert_eq!(unchecked(&tests, "", &[escaped]), vec![]);
        assert_eq!(unchecked(&tests, "", &[real_newlines]), vec![]);
        let got = unchecked(&tests, "", &["self.assertEqual(out, '1 1 1')"]);
        assert_eq!(got[0].missing, [r"b\nc\n", "2", "3", "6"]);
    }

    #[test]
    fn concepts_curly_quotes_and_unquoted_tests_ask_for_nothing_else() {
        let tests = vec![
            ":App: exits with status code 0.".to_string(),
            "Running :App: prints “hello, world” and `:App:` nothing else.".to_string(),
        ];
        let got = unchecked(&tests, "", &["print('nothing')"]);
        assert_eq!(
            got,
            vec![Unchecked {
                test: tests[1].clone(),
                missing: vec!["hello".into(), "world".into()],
                results: vec![],
            }]
        );
        assert_eq!(unchecked(&tests, "", &["'hello, world\\n'"]), vec![]);
        // An unclosed quote is no value.
        assert_eq!(unchecked(&[r#"prints "42"#.to_string()], "", &[""]), vec![]);
    }

    #[test]
    fn a_value_written_as_code_is_named_in_either_quoting() {
        let tests = vec![
            "After `add(\"apple\", 50, 3)` and `add(\"pear\", 75)`, `total()` returns 225."
                .to_string(),
        ];
        let single =
            "cart.add('apple', 50, 3)\ncart.add('pear', 75)\nself.assertEqual(cart.total(), 225)";
        assert_eq!(unchecked(&tests, "", &[single]), vec![]);
        let got = unchecked(&tests, "", &["cart.add('kiwi', 10)"]);
        // 225 is not quoted: only quoted values are asked for.
        assert_eq!(got[0].missing, ["apple", "50", "3", "pear", "75", "total"]);
    }

    #[test]
    fn tests_that_name_most_values_leave_out_no_test_for_a_placeholder() {
        let tests = vec![
            "Running `python wc_lite.py --lines FILE` on a file of two lines prints 2.".to_string(),
        ];
        let setup = r#":MainExecutableFile: of :App: should be called "wc_lite.py". :App: is started with "python :MainExecutableFile:"."#;
        let run =
            "def run(args):\n    return subprocess.run([sys.executable, 'wc_lite.py', *args])\n";
        let test =
            format!("{run}r = run(['--lines', sample()])\nself.assertEqual(r.stdout, b'2\\n')");
        assert_eq!(unchecked(&tests, setup, &[&test]), vec![]);
        // Half is not most: one of two values named is enough, none is not.
        let got = unchecked(
            &tests,
            setup,
            &[&format!("{run}r = run(['--words', sample()])")],
        );
        assert_eq!(got[0].missing, ["--lines", "FILE"]);
    }

    #[test]
    fn the_values_named_are_those_of_any_test_found_in_any_file() {
        let (tests, setup) = roman();
        let a = "r = run([sys.executable, 'roman.py', 'XLII'])\nassertEqual(r.stdout, 'XLII\\n')";
        assert_eq!(named(&tests, setup, &[a]), ["roman.py", "XLII"]);
        assert_eq!(
            named(&tests, setup, &[a, "'42'"]),
            ["roman.py", "XLII", "42"]
        );
    }

    #[test]
    fn a_test_that_imports_the_program_instead_of_running_it_leaves_its_command_out() {
        // Seen with the real model: every value named, the program never run.
        let (tests, setup) = roman();
        let imported = "from roman import main\n\nclass T(unittest.TestCase):\n    def test_xlii(self):\n        self.assertEqual(main('XLII'), '42')\n";
        let got = unchecked(&tests[..1], setup, &[imported]);
        assert_eq!(
            got,
            vec![Unchecked {
                test: tests[0].clone(),
                missing: vec!["roman.py".into()],
                results: vec![],
            }]
        );
        // A program file the setup does not give is a value like any other; numbers with a
        // fraction are no file names.
        assert!(is_file_name("wc_lite.py") && is_file_name("missing.txt"));
        assert!(!is_file_name("10.0") && !is_file_name("1.5e3") && !is_file_name(".py"));
        let plain = vec![r#"Running "python tool.py 1.5" prints "3.0"."#.to_string()];
        assert_eq!(
            unchecked(&plain, "", &["run('tool.py', '1.5') == '3.0'"]),
            vec![]
        );
    }

    fn discount() -> Vec<String> {
        vec![
            "After `add(\"apple\", 50, 3)`, `add(\"pear\", 75)` and `apply_discount(10)`, `total()` returns 202."
                .to_string(),
        ]
    }

    #[test]
    fn what_a_call_returns_is_checked_on_a_line_of_that_call() {
        let tests = discount();
        let setup = "cart.add('apple', 50, 3)\ncart.add('pear', 75)\n";
        // As the 1.5B wrote it: every value named, the discount's own result checked.
        let wrong = format!("{setup}self.assertEqual(cart.apply_discount(10), 202)\n");
        assert_eq!(
            unchecked(&tests, "", &[&wrong]),
            vec![Unchecked {
                test: tests[0].clone(),
                // One value of ten is no reason on its own; the result is.
                missing: vec!["total".into()],
                results: vec!["`total()` returns 202".into()],
            }]
        );
        let right =
            format!("{setup}cart.apply_discount(10)\nself.assertEqual(cart.total(), 202)\n");
        assert_eq!(unchecked(&tests, "", &[&right]), vec![]);
        // Through a variable the call's result went to, in the same file.
        let through = format!(
            "{setup}cart.apply_discount(10)\nresult = cart.total()\nself.assertEqual(result, 202)\n"
        );
        assert_eq!(unchecked(&tests, "", &[&through]), vec![]);
        // Nor with a number the value is part of.
        let longer =
            format!("{setup}cart.apply_discount(10)\nself.assertEqual(cart.total(), 2025)\n");
        assert_eq!(unchecked(&tests, "", &[&longer])[0].results.len(), 1);
        // Not through a variable of another call, nor a name the call's is part of.
        let other = format!(
            "{setup}result = cart.apply_discount(10)\nself.assertEqual(result, 202)\nself.assertEqual(cart.total_before(), 225)\n"
        );
        assert_eq!(unchecked(&tests, "", &[&other])[0].results.len(), 1);
        let elsewhere = format!("{setup}cart.apply_discount(10)\nx = cart.total()\n");
        assert_eq!(
            unchecked(&tests, "", &[&elsewhere, "self.assertEqual(x, 202)"])[0].results,
            ["`total()` returns 202"]
        );
    }

    #[test]
    fn only_a_call_followed_by_returns_and_a_value_says_a_result() {
        let got = |t: &str| -> Vec<(String, String)> {
            results(t).into_iter().map(|r| (r.name, r.value)).collect()
        };
        assert_eq!(
            got("After `remove(\"apple\")`, `total()` returns 75 and `cart.count()` returns 1."),
            [("total".into(), "75".into()), ("count".into(), "1".into())]
        );
        assert_eq!(
            got("`name()` returns \"Ada\", `ok()` returns True, `neg()` returns -2.5;"),
            [
                ("name".into(), "Ada".into()),
                ("ok".into(), "True".into()),
                ("neg".into(), "-2.5".into())
            ]
        );
        // A description, a call not followed by "returns", code that is no call, no value.
        assert!(got("`total()` returns the sum of the prices.").is_empty());
        assert!(got("`total()` of a new cart returns 0.").is_empty());
        assert!(got("`x + 1` returns 2, `1()` returns 3, `f(` returns 4").is_empty());
        assert!(got("`total()` returns").is_empty());
        assert!(got("`total()` returns \"\"").is_empty());
    }
}
