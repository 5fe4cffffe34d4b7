//! The model side of drafting a spec from existing code (`rekindle init --from-code`): small
//! questions about one function or class at a time (what it does; calls that show it), which a
//! small model answers well, where one question about the whole program gets a spec that does
//! not check. Outlining the code, running the example calls and writing the spec are the
//! caller's.

use crate::options::RoleModel;
use rekindle_llm::session::Session;
use rekindle_llm::Message;

const SYSTEM: &str = "You read Python code and say precisely what it does, for a specification that another programmer implements from without seeing the code. Answer only what is asked, briefly.";

/// What a unit of code is, as the questions name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Function,
    Class,
    /// The `if __name__ == "__main__":` block of a script.
    Main,
}

/// The question "what does this do?" about one unit.
pub fn describe(kind: Kind, name: &str, source: &str) -> Vec<Message> {
    let what = match kind {
        Kind::Function => format!("the function `{name}` does: what it returns (or prints) for each kind of input, edge cases included"),
        Kind::Class => format!("the class `{name}` is for and what each of its public methods does"),
        Kind::Main => format!("running the file `{name}` as a program does: what it reads (arguments, standard input, files) and what it prints"),
    };
    vec![
        Message::system(SYSTEM),
        Message::user(format!(
            "```python\n{}\n```\n\nIn at most three sentences of plain English, say what {what}. No code blocks, no headings, no lists.",
            source.trim_end()
        )),
    ]
}

/// The question "which calls show what this function does?".
pub fn examples(name: &str, source: &str) -> Vec<Message> {
    vec![
        Message::system(SYSTEM),
        Message::user(format!(
            "```python\n{}\n```\n\nWrite three example calls of `{name}` with literal arguments that together show what it does, one of them an edge case (such as empty input). One call per line, as a Python expression like `{name}(...)`, and nothing else.",
            source.trim_end()
        )),
    ]
}

const SYSTEM_SPEC: &str = "You write the functional requirements of software specifications: short, precise sentences in plain English that say what a program does, never how its code does it.";

/// The question "which functionality does this hand edit add?", beside the functionalities the
/// spec has (so the answer is said the way they are), starting with `subject` when the spec has
/// one (its usual concept, like `:App:`).
pub fn edit_requirement(
    functionalities: &[String],
    edit: &str,
    subject: Option<&str>,
) -> Vec<Message> {
    let mut listed = String::new();
    for f in functionalities {
        listed.push_str(&format!("- {}\n", f.trim().replace('\n', " ")));
    }
    let start = match subject {
        Some(s) => format!(" that starts with `{s} should`"),
        None => String::new(),
    };
    vec![
        Message::system(SYSTEM_SPEC),
        Message::user(format!(
            "The spec of a program lists these functionalities:\n\n{listed}\nSomeone then changed the program's code by hand:\n\n```diff\n{}\n```\n\nWrite the one new functionality the spec needs so that a program written from it has this change: one sentence{start} that says what the program now does, in the way the functionalities above are written. Nothing else.",
            edit.trim_end()
        )),
    ]
}

/// The question "which acceptance test shows this functionality?".
pub fn edit_acceptance_test(requirement: &str, edit: &str) -> Vec<Message> {
    vec![
        Message::system(SYSTEM_SPEC),
        Message::user(format!(
            "A program's spec gains this functionality:\n\n{requirement}\n\nThe code change that made it:\n\n```diff\n{}\n```\n\nWrite one acceptance test for the functionality as one plain English sentence (no code) with a concrete input (or command) and the exact output the program must give for it, like: Running the program with the argument 3 prints \"three\". Nothing else.",
            edit.trim_end()
        )),
    ]
}

/// The question "what does this functionality say now?", for a hand edit that changed what it
/// said: its conformance test fails on the edited code (`failure`, that test's output). The
/// answer starts with `subject` when the functionality does (its concept, like `:App:`).
pub fn edit_changed_requirement(
    requirement: &str,
    edit: &str,
    failure: &str,
    subject: Option<&str>,
) -> Vec<Message> {
    let start = match subject {
        Some(s) => format!(", starting with `{s} should`"),
        None => String::new(),
    };
    vec![
        Message::system(SYSTEM_SPEC),
        Message::user(format!(
            "A program's spec says:\n\n{}\n\nSomeone then changed the program's code by hand:\n\n```diff\n{}\n```\n\nso that a test of that sentence now fails:\n\n```\n{}\n```\n\nRewrite the sentence so that it says what the program does after the change{start}, keeping its words where they still hold. One sentence, nothing else.",
            requirement.trim(),
            edit.trim_end(),
            crate::events::output_tail(failure, 20, 4096)
        )),
    ]
}

/// The question "what does this acceptance test say now?", once the functionality it belongs
/// to says `requirement`; `failure` is the output of the functionality's conformance tests on
/// the edited code (it shows what the program does now).
pub fn edit_changed_acceptance_test(
    requirement: &str,
    test: &str,
    edit: &str,
    failure: &str,
) -> Vec<Message> {
    vec![
        Message::system(SYSTEM_SPEC),
        Message::user(format!(
            "A program's spec now says:\n\n{}\n\nThe code was changed by hand like this:\n\n```diff\n{}\n```\n\nand the tests written for the old spec now fail like this:\n\n```\n{}\n```\n\nOne of the spec's acceptance tests reads:\n\n{}\n\nIf it no longer holds for the changed program, rewrite it so that it does, with the exact output the program gives now; if the change does not affect it, write it unchanged. One plain English sentence (no code), nothing else.",
            requirement.trim(),
            edit.trim_end(),
            crate::events::output_tail(failure, 20, 4096),
            test.trim()
        )),
    ]
}

/// One greedy reply of at most `max_tokens`, free text watched by the runaway guard.
pub async fn ask(
    model: &RoleModel<'_>,
    session: &Session,
    messages: Vec<Message>,
    max_tokens: u32,
) -> Result<String, String> {
    crate::converse::call(model, session, messages, max_tokens, None, "draft-v1")
        .await
        .map(|(text, _)| text)
}

/// The description in a reply, made safe to stand in a spec's list item: one paragraph, no
/// fences, headings, list markers, quote markers or template braces, at most 700 characters
/// (cut at a sentence end when there is one).
pub fn sentences(reply: &str) -> String {
    let mut words = Vec::new();
    let mut fenced = false;
    for line in reply.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.trim_start_matches(['-', '*', '>', ' ']);
        words.push(
            t.replace("{{", "{ {")
                .replace("}}", "} }")
                .replace("***", "*"),
        );
    }
    let text = words.join(" ");
    // A sentence that only introduces what a fence held ("… the following test:") says nothing.
    if text.trim_end().ends_with(':') {
        return String::new();
    }
    const MAX: usize = 700;
    if text.len() <= MAX {
        return text;
    }
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    match text[..cut].rfind(". ") {
        Some(end) => text[..=end].to_string(),
        None => format!("{}…", &text[..cut]),
    }
}

/// The calls of `name` in a reply, at most `max`, each `name(...)` with balanced brackets
/// (quotes respected), distinct, in order. Lines like `>>> name(2) == 4` give `name(2)`.
pub fn calls(reply: &str, name: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let open = format!("{name}(");
    for line in reply.lines() {
        let Some(at) = find_call(line, &open) else {
            continue;
        };
        let Some(end) = balanced_end(&line[at + name.len()..]) else {
            continue;
        };
        let call = line[at..at + name.len() + end].to_string();
        if !out.contains(&call) {
            out.push(call);
        }
        if out.len() == max {
            break;
        }
    }
    out
}

/// Where `open` (`name(`) starts in `line` as a name of its own (not the tail of `my_name(`).
fn find_call(line: &str, open: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = line[from..].find(open) {
        let at = from + p;
        let before = line[..at].chars().next_back();
        if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            return Some(at);
        }
        from = at + open.len();
    }
    None
}

/// The length of the bracketed group `s` starts with (`(`), through its closing bracket.
pub(crate) fn balanced_end(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
                if depth < 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_taken_whole_from_noisy_lines() {
        let reply = "Here are examples:\n1. `word_count(\"a b  c\")`  # 3\n>>> word_count('') == 0\nmy_word_count(1)\nword_count(\"x)y\")\nword_count(\"a b  c\")\nword_count(\"unclosed\"\n";
        assert_eq!(
            calls(reply, "word_count", 5),
            vec![
                "word_count(\"a b  c\")".to_string(),
                "word_count('')".to_string(),
                "word_count(\"x)y\")".to_string(),
            ]
        );
        assert_eq!(calls(reply, "word_count", 1).len(), 1);
        assert_eq!(
            calls("f([1, (2, 3)], k={'a': ')'})", "f", 3),
            vec!["f([1, (2, 3)], k={'a': ')'})".to_string()]
        );
    }

    #[test]
    fn descriptions_become_one_safe_paragraph() {
        let reply = "# Summary\n- Returns the number of words.\n\n```python\nx = 1\n```\n> Uses {{ split }} and ***bold***.";
        assert_eq!(
            sentences(reply),
            "Returns the number of words. Uses { { split } } and *bold*."
        );
        assert_eq!(
            sentences("Use this test:\n```python\nassert f()\n```\n"),
            ""
        );
        let long = "This is a sentence. ".repeat(60);
        let s = sentences(&long);
        assert!(s.len() <= 700 && s.ends_with('.'), "{s}");
    }
}
