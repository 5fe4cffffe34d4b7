//! The prompts, as minijinja templates embedded in the binary. Their text is part of every render
//! key and cache key (through [`template_version`]), so editing a prompt re-renders honestly.

use minijinja::{Environment, UndefinedBehavior};
use rekindle_llm::Message;
use rekindle_workspace::files::FileText;
use serde::Serialize;
use std::sync::OnceLock;

const TEMPLATES: &[(&str, &str)] = &[
    ("system.j2", include_str!("../prompts/system.j2")),
    ("context.j2", include_str!("../prompts/context.j2")),
    ("files.j2", include_str!("../prompts/files.j2")),
    ("tried.j2", include_str!("../prompts/tried.j2")),
    ("implement.j2", include_str!("../prompts/implement.j2")),
    ("fix_unit.j2", include_str!("../prompts/fix_unit.j2")),
    ("conformance.j2", include_str!("../prompts/conformance.j2")),
    (
        "fix_conformance.j2",
        include_str!("../prompts/fix_conformance.j2"),
    ),
    ("reformat.j2", include_str!("../prompts/reformat.j2")),
    ("placeholder.j2", include_str!("../prompts/placeholder.j2")),
    ("unchanged.j2", include_str!("../prompts/unchanged.j2")),
    ("complete.j2", include_str!("../prompts/complete.j2")),
    ("unchecked.j2", include_str!("../prompts/unchecked.j2")),
    (
        "acceptance_test.j2",
        include_str!("../prompts/acceptance_test.j2"),
    ),
    (
        "rewrite_test.j2",
        include_str!("../prompts/rewrite_test.j2"),
    ),
    (
        "test_failure.j2",
        include_str!("../prompts/test_failure.j2"),
    ),
    (
        "rewrite_code.j2",
        include_str!("../prompts/rewrite_code.j2"),
    ),
];

/// A hash of every template: changes whenever any prompt text changes.
pub fn template_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(b"rekindle-prompts-v2");
        for (name, text) in TEMPLATES {
            h.update(name.as_bytes());
            h.update(&[0]);
            h.update(text.as_bytes());
            h.update(&[0]);
        }
        h.finalize().to_hex()[..16].to_string()
    })
}

fn env() -> &'static Environment<'static> {
    static E: OnceLock<Environment<'static>> = OnceLock::new();
    E.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("indent2", |s: String| s.replace('\n', "\n  "));
        for (name, text) in TEMPLATES {
            env.add_template(name, text)
                .expect("embedded prompt templates parse");
        }
        env
    })
}

/// A linked resource as shown in prompts.
#[derive(Clone, Debug, Serialize)]
pub struct Resource {
    pub name: String,
    pub path: String,
    pub content: String,
}

/// What every prompt about one functionality shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Context {
    pub definitions: Vec<String>,
    pub implementation_reqs: Vec<String>,
    pub test_reqs: Vec<String>,
    pub resources: Vec<Resource>,
    pub previous: Vec<String>,
    pub current: String,
    pub acceptance_tests: Vec<String>,
}

impl Context {
    /// The specification's own texts: definitions, reqs, the functionalities, the acceptance
    /// tests (not the linked resources).
    fn sections(&self) -> impl Iterator<Item = &String> {
        self.definitions
            .iter()
            .chain(&self.implementation_reqs)
            .chain(&self.test_reqs)
            .chain(&self.previous)
            .chain(std::iter::once(&self.current))
            .chain(&self.acceptance_tests)
    }

    /// Every text of the specification this context holds, one after another: its sections
    /// and the content of its linked resources.
    pub fn text(&self) -> String {
        self.sections()
            .chain(self.resources.iter().map(|r| &r.content))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the specification mentions a documentation file (a README, a Markdown file), so
    /// that a reply may write one. Otherwise a small model's README, which retells the prompt,
    /// costs hundreds of tokens to write and is shown again in every later prompt.
    pub fn names_documentation(&self) -> bool {
        self.sections()
            .chain(self.resources.iter().map(|r| &r.path))
            .any(|t| {
                let t = t.to_ascii_lowercase();
                t.contains("readme") || t.contains(".md") || t.contains(".rst")
            })
    }
}

fn files_for_prompt(files: &[FileText]) -> Vec<FileText> {
    files
        .iter()
        .map(|f| FileText {
            path: f.path.clone(),
            content: if f.content.ends_with('\n') || f.content.is_empty() {
                f.content.clone()
            } else {
                format!("{}\n", f.content)
            },
        })
        .collect()
}

#[derive(Serialize)]
struct Files<'a> {
    path: &'a str,
    content: &'a str,
}

fn render(name: &str, value: minijinja::Value) -> String {
    env()
        .get_template(name)
        .and_then(|t| t.render(value))
        .expect("prompt templates render with the values rekindle gives them")
}

fn with_system(user: String) -> Vec<Message> {
    vec![
        Message::system(render("system.j2", minijinja::context! {}).trim_end()),
        Message::user(user.trim_end()),
    ]
}

fn v<T: Serialize>(x: T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(x))
}

fn listed(files: &[FileText]) -> Vec<Files<'_>> {
    files
        .iter()
        .map(|f| Files {
            path: &f.path,
            content: &f.content,
        })
        .collect()
}

pub fn implement(
    cx: &Context,
    files: &[FileText],
    left_out: &[String],
    earlier_failure: Option<&str>,
) -> Vec<Message> {
    let files = files_for_prompt(files);
    let ctx = v(cx);
    with_system(render(
        "implement.j2",
        minijinja::context! { files => v(listed(&files)), left_out => v(left_out), earlier_failure => earlier_failure, ..ctx },
    ))
}

/// The follow-up to an implementation reply that left every file of the program (`program`) as
/// it was.
pub fn unchanged(cx: &Context, program: &[String]) -> String {
    render(
        "unchanged.j2",
        minijinja::context! { program => v(program), ..v(cx) },
    )
    .trim_end()
    .to_string()
}

/// A new conversation asking for `file` (a program file that only repeats code the specification
/// shows: signatures and docstrings, no body) completed, as a code block: no system prompt (a
/// model's chat template brings its own), no spec, no file blocks. A small model answers this
/// as the code completion it was trained on. Probed on the 12 such files the 0.5B wrote for
/// HumanEval's first 40 (at e32acf3): 9 of the 12 completions passed HumanEval's tests, where
/// the same words in the implementation's conversation, answered in file blocks, got 6 of 13
/// and a copy again in 6 (the 1.5B: 10 of 12).
pub fn complete(file: &FileText) -> Vec<Message> {
    let shown = files_for_prompt(std::slice::from_ref(file)).remove(0);
    vec![Message::user(
        render(
            "complete.j2",
            minijinja::context! {
                path => file.path.as_str(), content => shown.content, lang => fence_language(&file.path),
            },
        )
        .trim_end(),
    )]
}

/// The Markdown fence's language for a file, from its extension (the extension itself when it
/// is not one of the usual ones; nothing without one).
fn fence_language(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else {
        return "";
    };
    match ext {
        "py" => "python",
        "js" | "mjs" | "cjs" => "javascript",
        "ts" => "typescript",
        "rs" => "rust",
        "sh" => "bash",
        "rb" => "ruby",
        "kt" => "kotlin",
        "h" => "c",
        "cc" | "hpp" | "cxx" => "cpp",
        "cs" => "csharp",
        other => other,
    }
}

/// The follow-up to conformance tests that leave out acceptance tests (`unchecked`).
pub(crate) fn unchecked(unchecked: &[crate::checked::Unchecked]) -> String {
    render(
        "unchecked.j2",
        minijinja::context! { unchecked => v(unchecked) },
    )
    .trim_end()
    .to_string()
}

/// What the fix prompts add to the failure: what earlier fixes of this functionality did, and a
/// hint when the loop has seen the same failure before.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    pub tried: Vec<String>,
    pub hint: Option<String>,
    /// The lines of the shown files that the failure output points at (`path line N: text`).
    pub at: Vec<String>,
}

/// `rest` with what a fix prompt shows of `memory`.
fn with_memory(memory: &Memory, rest: minijinja::Value) -> minijinja::Value {
    minijinja::context! {
        tried => v(&memory.tried), hint => memory.hint.as_deref(), at => v(&memory.at), ..rest
    }
}

pub fn fix_unit(
    cx: &Context,
    files: &[FileText],
    exit_code: i32,
    output: &str,
    memory: &Memory,
) -> Vec<Message> {
    let files = files_for_prompt(files);
    let ctx = v(cx);
    with_system(render(
        "fix_unit.j2",
        minijinja::context! {
            files => v(listed(&files)), exit_code => exit_code, output => output,
            ..with_memory(memory, ctx)
        },
    ))
}

pub fn conformance(cx: &Context, files: &[FileText]) -> Vec<Message> {
    let files = files_for_prompt(files);
    let ctx = v(cx);
    with_system(render(
        "conformance.j2",
        minijinja::context! { files => v(listed(&files)), ..ctx },
    ))
}

/// A conformance test for the one acceptance test `test`, written anew in a file of its own
/// (not one of `taken`), the program's files shown.
/// One acceptance test's conformance test, asked for alone; `example` is a passing conformance
/// test of an earlier functionality, shown for how a test runs the program.
pub fn acceptance_test(
    cx: &Context,
    files: &[FileText],
    test: &str,
    taken: &[String],
    example: Option<&FileText>,
) -> Vec<Message> {
    let files = files_for_prompt(files);
    let example = example.map(|e| files_for_prompt(std::slice::from_ref(e)).remove(0));
    let example = example.as_ref().map(|e| {
        minijinja::context! { path => e.path.as_str(), content => e.content.as_str() }
    });
    let ctx = v(cx);
    with_system(render(
        "acceptance_test.j2",
        minijinja::context! {
            files => v(listed(&files)), test => test, taken => v(taken), example => example,
            ..ctx
        },
    ))
}

pub fn fix_conformance(
    cx: &Context,
    files: &[FileText],
    tests: &[FileText],
    exit_code: i32,
    output: &str,
    regression: bool,
    memory: &Memory,
) -> Vec<Message> {
    let files = files_for_prompt(files);
    let tests = files_for_prompt(tests);
    let ctx = v(cx);
    with_system(render(
        "fix_conformance.j2",
        minijinja::context! {
            files => v(listed(&files)), tests => v(listed(&tests)),
            exit_code => exit_code, output => output, regression => regression,
            ..with_memory(memory, ctx)
        },
    ))
}

/// After a fix that kept the code as it was: the test file `path` (as the prompt names it) is
/// what is wrong; asks for that file alone. `files` holds every file shown, tests included.
/// Asks for the test file `path` anew (it is not among `files`): because the last fix kept the
/// code (`code_kept`), or because the failure is raised in the test file itself.
#[allow(clippy::too_many_arguments)]
pub fn rewrite_test(
    cx: &Context,
    files: &[FileText],
    path: &str,
    code_kept: bool,
    exit_code: i32,
    output: &str,
    memory: &Memory,
) -> Vec<Message> {
    let files = files_for_prompt(files);
    let ctx = v(cx);
    with_system(render(
        "rewrite_test.j2",
        minijinja::context! {
            files => v(listed(&files)), path => path, code_kept => code_kept,
            exit_code => exit_code, output => output,
            ..with_memory(memory, ctx)
        },
    ))
}

/// A fix asked for one program file (`path`), written anew: the failure is an error raised in
/// it at `raised` (`path line N: text`), and the last fix left it as it was.
pub fn rewrite_code(
    cx: &Context,
    files: &[FileText],
    path: &str,
    raised: &str,
    exit_code: i32,
    output: &str,
    memory: &Memory,
) -> Vec<Message> {
    let files = files_for_prompt(files);
    let ctx = v(cx);
    with_system(render(
        "rewrite_code.j2",
        minijinja::context! {
            files => v(listed(&files)), path => path, raised => raised,
            exit_code => exit_code, output => output,
            ..with_memory(memory, ctx)
        },
    ))
}

/// The follow-up that asks a model to repeat its answer in the right format.
pub fn reformat(problem: &str) -> String {
    render("reformat.j2", minijinja::context! { problem => problem })
        .trim_end()
        .to_string()
}

/// The follow-up to a reply whose block for `file` (and maybe others) holds only a placeholder
/// (the 0.5B copies the format's `<the whole file>`). It does not show the format again: asked
/// with `reformat.j2`, which does, the 0.5B wrote the placeholder again in all 22 of its
/// placeholder first replies to HumanEval's first 40; asked with this, in none, and 9 of the
/// 22 answers passed HumanEval's tests. It names one file: naming two (`solution.py,
/// __init__.py`, every program file the reply left as a placeholder), 2 passed and 6 were
/// placeholders again.
pub fn placeholder(file: &str) -> String {
    render("placeholder.j2", minijinja::context! { file => file })
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_file_is_asked_for_as_code_to_complete() {
        let file = |path: &str, content: &str| FileText {
            path: path.into(),
            content: content.into(),
        };
        let one = complete(&file(
            "src/solution.py",
            "def f(x):\n    \"\"\"Twice x.\"\"\"\n",
        ));
        assert_eq!(one.len(), 1, "one user message, no system prompt");
        assert_eq!(one[0].role, rekindle_llm::Role::User);
        assert_eq!(
            one[0].content,
            "Complete the following code of src/solution.py: write the body of every function. \
             Reply with the whole file in one ```python block.\n\n```python\ndef f(x):\n    \
             \"\"\"Twice x.\"\"\"\n```"
        );
        let ts = complete(&file("a.ts", "export function f() {}"));
        assert_eq!(
            ts[0].content,
            "Complete the following code of a.ts: write the body of every function. Reply with \
             the whole file in one ```typescript block.\n\n```typescript\nexport function f() {}\n```"
        );
    }

    #[test]
    fn prompts_render_with_everything_in_them() {
        let cx = Context {
            definitions: vec![":App: is a console app.".into()],
            implementation_reqs: vec!["Python.\n- with a sub point".into()],
            test_reqs: vec![],
            resources: vec![Resource {
                name: "ui".into(),
                path: "ui.yaml".into(),
                content: "screen: main\n".into(),
            }],
            previous: vec!["Start.".into()],
            current: "Print hello.".into(),
            acceptance_tests: vec!["prints hello".into()],
        };
        let files = vec![FileText {
            path: "app.py".into(),
            content: "print(1)".into(),
        }];
        let m = implement(&cx, &files, &[], None);
        assert_eq!(m.len(), 2);
        let u = &m[1].content;
        for want in [
            "- :App: is a console app.",
            "- Python.\n  - with a sub point",
            "## ui (ui.yaml)",
            "1. Start.",
            "# The functionality to implement now\n\nPrint hello.",
            "- prints hello",
            "--- FILE: app.py\nprint(1)\n--- END FILE",
        ] {
            assert!(u.contains(want), "missing {want:?} in:\n{u}");
        }
        assert!(!u.contains("# Test requirements"));
        let memory = Memory {
            tried: vec!["Fix 1 changed code/app.py.".into()],
            hint: Some("Try harder.".into()),
            at: vec!["app.py line 1: print(1)".into()],
        };
        let f = fix_conformance(&cx, &files, &files, 1, "boom", true, &memory);
        let u = &f[1].content;
        assert!(
            u.contains("# Earlier fixes of this functionality\n\n- Fix 1 changed code/app.py.\n")
        );
        assert!(u.ends_with("\n\nTry harder."), "{u}");
        assert!(
            u.contains("The failure points at these lines:\n- app.py line 1: print(1)\n"),
            "{u}"
        );
        assert!(u.contains("of an earlier functionality"));
        let f = fix_unit(&cx, &files, 1, "boom", &Memory::default());
        assert!(!f[1].content.contains("Earlier fixes"));
        assert!(f[1].content.contains("```\nboom\n```"));
        // The code written anew: the file shown, where the error is raised, no hint to change
        // the test.
        let r = rewrite_code(
            &cx,
            &files,
            "app.py",
            "app.py line 1: print(1)",
            1,
            "boom",
            &memory,
        );
        let u = &r[1].content;
        assert!(
            u.contains("--- FILE: app.py\nprint(1)\n--- END FILE"),
            "{u}"
        );
        assert!(
            u.contains("The error is raised in the code, at app.py line 1: print(1),"),
            "{u}"
        );
        assert!(u.ends_with("the whole new content of app.py."), "{u}");
        assert!(!u.contains("Try harder."));
        assert_eq!(template_version().len(), 16);
    }

    #[test]
    fn the_unchecked_follow_up_says_which_values_and_which_results_are_left_out() {
        let u = |test: &str, missing: &[&str], results: &[&str]| crate::checked::Unchecked {
            test: test.into(),
            missing: missing.iter().map(|s| s.to_string()).collect(),
            results: results.iter().map(|s| s.to_string()).collect(),
        };
        let text = unchecked(&[
            u("Running \"x 1\" prints \"2\".", &["1", "2"], &[]),
            u(
                "After `apply_discount(10)`, `total()` returns 202.",
                &[],
                &["`total()` returns 202"],
            ),
        ]);
        assert!(
            text.starts_with("Your tests leave out what these acceptance tests check.\n"),
            "{text}"
        );
        assert!(
            text.contains("- Running \"x 1\" prints \"2\".\n  (not in your tests: \"1\", \"2\")\n"),
            "{text}"
        );
        assert!(
            text.contains("- After `apply_discount(10)`, `total()` returns 202.\n  (no line of your tests checks that `total()` returns 202: check the value that call returns)\n"),
            "{text}"
        );
        assert!(!text.contains("not in your tests: )"), "{text}");
    }

    /// The file block the system prompt shows is one the parser reads, path and content as
    /// the placeholders say.
    #[test]
    fn the_system_prompt_shows_the_format_the_parser_reads() {
        let system = &with_system(String::new())[0].content;
        let start = system.find("--- FILE: ").unwrap();
        let end = system.find("--- END FILE").unwrap() + "--- END FILE".len();
        let blocks = rekindle_llm::file_blocks::parse(&system[start..end]).unwrap();
        assert_eq!(
            blocks,
            vec![rekindle_llm::file_blocks::FileBlock::Write {
                path: "<relative path>".into(),
                content: "<the whole file>\n".into(),
            }]
        );
    }

    #[test]
    fn a_readme_is_documentation_only_when_the_spec_names_one() {
        let mut cx = Context {
            current: "Print hello.".into(),
            ..Context::default()
        };
        assert!(!cx.names_documentation());
        cx.implementation_reqs = vec!["Describe the options in README.md.".into()];
        assert!(cx.names_documentation());
        cx.implementation_reqs.clear();
        cx.acceptance_tests = vec!["docs/usage.rst lists every option.".into()];
        assert!(cx.names_documentation());
    }
}
