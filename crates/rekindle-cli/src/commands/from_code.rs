//! `rekindle init DIR --from-code SRC`: a model drafts the new project's spec from an existing
//! Python program (through the converse loop, so the draft must check and is recorded as a
//! conversation), rekindle renders it, and the program's own tests (`test_*.py`) run against the
//! rendered code: how many pass is the measure of the draft.

mod outline;

use super::converse::{record, talk, Talk};
use crate::args::{ProviderArgs, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_ledger::conversation::{self, Conversation, Edit, Turn};
use rekindle_llm::session::Mode;
use rekindle_render::draft::{self, Kind};
use rekindle_workspace::layout::{BuildLayout, ProjectLayout};
use std::collections::VecDeque;
use std::path::Path;

/// The program: its code files and its test files, as (path relative to SRC, text).
pub struct Sources {
    /// How the spec names the program's folder (as given on the command line).
    pub label: String,
    pub code: Vec<(String, String)>,
    pub tests: Vec<(String, String)>,
}

impl Sources {
    /// Writes the program's code files (not its tests) under `dir`, as they are in SRC.
    fn copy_code(&self, dir: &Path) -> std::io::Result<()> {
        for (rel, text) in &self.code {
            let to = dir.join(rel);
            if let Some(p) = to.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::write(to, text)?;
        }
        Ok(())
    }
}

/// Where the program's tests are put beside the rendered code to run.
const SRC_TESTS: &str = "rekindle_program_tests";

/// The most program text a draft is asked from.
const MAX_BYTES: usize = 64 * 1024;

/// Reads the Python files of `src` (not hidden folders, virtual environments or caches).
pub fn read_sources(src: &Path) -> Result<Sources, CliError> {
    if !src.is_dir() {
        return Err(CliError::usage(format!(
            "--from-code {}: not a folder",
            src.display()
        )));
    }
    let mut files = Vec::new();
    walk(src, src, &mut files);
    files.sort();
    let mut s = Sources {
        label: src.display().to_string(),
        code: Vec::new(),
        tests: Vec::new(),
    };
    let mut total = 0;
    for rel in files {
        let text = std::fs::read_to_string(src.join(&rel)).map_err(|e| {
            CliError::usage(format!("cannot read {}: {e}", src.join(&rel).display()))
        })?;
        total += text.len();
        let name = Path::new(&rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("test_") || name.ends_with("_test.py") {
            s.tests.push((rel, text));
        } else {
            s.code.push((rel, text));
        }
    }
    if s.code.is_empty() {
        return Err(CliError::usage(format!(
            "--from-code {}: no Python code found (*.py other than tests)",
            src.display()
        )));
    }
    if total > MAX_BYTES {
        return Err(CliError::usage(format!(
            "--from-code {}: {total} bytes of Python; init drafts specs from programs of at most {MAX_BYTES} bytes",
            src.display()
        )));
    }
    Ok(s)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || matches!(name.as_str(), "__pycache__" | "venv" | "node_modules")
        {
            continue;
        }
        let Ok(ft) = e.file_type() else {
            continue;
        };
        let p = e.path();
        if ft.is_dir() {
            walk(root, &p, out);
        } else if ft.is_file() && name.ends_with(".py") {
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
}

pub struct FromCode<'a> {
    pub sources: &'a Sources,
    pub spec: &'a Path,
    pub model: &'a ProviderArgs,
    pub json: bool,
}

/// The most example calls kept per function.
const EXAMPLES: usize = 3;

/// A result longer than this is left out of the spec's acceptance tests.
const MAX_RESULT: usize = 160;

pub fn run(f: &FromCode<'_>) -> CmdResult {
    let args = SpecArgs::plain();
    let l = load::load(f.spec, &args);
    let settings = l.settings;
    let dir = ProjectLayout::for_spec(f.spec).dir;
    let rel = conversation::relative(&dir, f.spec);
    let skeleton = std::fs::read_to_string(f.spec)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", f.spec.display())))?;
    let built = setup::build_models(&settings, f.model, false).map_err(CliError::usage)?;
    let models = built.model_set();
    let session = setup::session(
        &settings,
        Some(rekindle_llm::cache::Cache::new(settings.cache_dir())),
        Mode::Normal,
    );
    let mut c = Conversation {
        spec: rel.clone(),
        provider: models.code.label.clone(),
        model: models.code.model.clone(),
        purpose: "init-from-code".into(),
        turns: Vec::new(),
        edits: Vec::new(),
    };
    let modules: Vec<Module> = f
        .sources
        .code
        .iter()
        .map(|(path, text)| Module::new(path, outline::outline(path, text)))
        .filter(|m| !m.outline.units.is_empty())
        .collect();
    let d = Drafting {
        f,
        settings: &settings,
        model: &models.code,
        session: &session,
        dir: &dir,
        rel: &rel,
        skeleton,
    };
    let drafted = if modules.is_empty() {
        // Nothing to ask about unit by unit (a script of top-level statements): the whole spec
        // is asked for at once.
        whole(d, &mut c)?
    } else {
        by_units(d, modules, &mut c)?
    };
    if !drafted {
        let (id, _) = record(f.spec, &c)?;
        return finish(
            f.json,
            &id,
            false,
            None,
            "no draft of the spec checked; the example spec stays",
        );
    }
    // Render the draft with the same model.
    let mut r = RenderArgs::defaults();
    r.provider = f.model.clone();
    r.yes = true;
    let rendered = matches!(
        super::render::run(f.spec, &args, &r),
        Ok(ExitStatus::Success)
    );
    // A render that failed part way has committed the functionalities before the one that
    // failed: the program's tests run against that too, and the outcome says which it was.
    let score = score(f, &settings);
    let outcome = match (&score, rendered) {
        (Ok((passed, total)), true) => {
            format!("{passed} of {total} of the program's own tests pass against the rendered code")
        }
        (Ok((passed, total)), false) => format!(
            "the drafted spec's render failed; {passed} of {total} of the program's own tests pass against the code it committed before it failed"
        ),
        (Err(e), true) => e.clone(),
        (Err(e), false) => format!("the drafted spec's render failed ({e})"),
    };
    c.turns.push(Turn {
        role: "check".into(),
        text: outcome.clone(),
    });
    let (id, _) = record(f.spec, &c)?;
    finish(f.json, &id, rendered, score.ok(), &outcome)
}

/// What both ways of drafting work with: the command, the project's settings and folder, the
/// model, and the spec file (relative to the folder) with its text before the draft.
struct Drafting<'a> {
    f: &'a FromCode<'a>,
    settings: &'a rekindle_config::Settings,
    model: &'a rekindle_render::RoleModel<'a>,
    session: &'a rekindle_llm::session::Session,
    dir: &'a Path,
    rel: &'a str,
    skeleton: String,
}

/// One code file of the program, as the draft names it.
struct Module {
    /// The file, relative to SRC.
    path: String,
    /// Its import name (`pkg.util` for `pkg/util.py`).
    import: String,
    /// The concept that names it in the spec (`:PkgUtil:`).
    concept: String,
    outline: outline::Outline,
}

impl Module {
    fn new(path: &str, outline: outline::Outline) -> Module {
        let import = path
            .trim_end_matches(".py")
            .replace(['/', '\\'], ".")
            .trim_end_matches(".__init__")
            .to_string();
        let concept: String = import
            .split(['.', '_', '-'])
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut cs = w.chars();
                cs.next()
                    .map(|c| c.to_uppercase().chain(cs).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<String>()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let concept = match concept.chars().next() {
            Some(c) if c.is_ascii_alphabetic() => format!(":{concept}:"),
            _ => format!(":Module{concept}:"),
        };
        Module {
            path: path.to_string(),
            import,
            concept,
            outline,
        }
    }
}

/// What the model said of one unit, and the example calls that ran on the program.
struct Answer {
    description: String,
    /// The unit's calls, as indices into the calls run on the program.
    calls: Vec<usize>,
    /// (call, outcome) for the calls the program answered the same twice.
    examples: Vec<(String, Outcome)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// What it returned, and what it printed (Python reprs).
    Returns(String, Option<String>),
    Raises(String),
}

/// The staged draft: for each public function and class, what it does and (functions) a few
/// calls that show it, asked one at a time; the calls run on the program itself (in the
/// sandbox), so the acceptance tests hold what the program really answers; rekindle writes the
/// spec from the answers, checks it and writes it. Whether a draft was written.
fn by_units(d: Drafting<'_>, modules: Vec<Module>, c: &mut Conversation) -> Result<bool, CliError> {
    let Drafting {
        f,
        settings,
        model,
        session,
        dir,
        rel,
        skeleton,
    } = d;
    let ask = |c: &mut Conversation, messages, max| {
        super::converse::question(model, session, c, messages, max, f.json)
    };
    let mut answers: Vec<Vec<Answer>> = Vec::new();
    let mut calls: Vec<(String, String)> = Vec::new();
    for m in &modules {
        let mut per = Vec::new();
        for u in &m.outline.units {
            let name = if u.kind == Kind::Main {
                m.path.as_str()
            } else {
                u.name.as_str()
            };
            let described = ask(c, draft::describe(u.kind, name, &u.source), 200)?;
            let mut mine = Vec::new();
            if u.kind == Kind::Function {
                let reply = ask(c, draft::examples(&u.name, &u.source), 150)?;
                for call in draft::calls(&reply, &u.name, EXAMPLES) {
                    mine.push(calls.len());
                    calls.push((m.import.clone(), call));
                }
            }
            per.push(Answer {
                description: draft::sentences(&described),
                calls: mine,
                examples: Vec::new(),
            });
        }
        answers.push(per);
    }
    // The calls, answered by the program.
    let (results, failed) = match run_calls(f, settings, &calls) {
        Ok(r) => (r, None),
        Err(e) => (vec![None; calls.len()], Some(e)),
    };
    let (mut kept, mut dropped) = (0, 0);
    for a in answers.iter_mut().flatten() {
        for &i in &a.calls {
            match results.get(i) {
                Some(Some(o)) => {
                    a.examples.push((calls[i].1.clone(), o.clone()));
                    kept += 1;
                }
                _ => dropped += 1,
            }
        }
    }
    let mut report = format!(
        "{kept} example call(s) ran on the program and went into acceptance tests; {dropped} left out (did not run, gave different answers twice, or answered at length)"
    );
    if let Some(e) = failed {
        report.push_str(&format!("; {e}"));
    }
    c.turns.push(Turn {
        role: "check".into(),
        text: report.clone(),
    });
    if !f.json {
        eprintln!("{report}");
    }
    let name = Path::new(rel)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let src = f.sources.label.clone();
    // What the model said may not check (a `:word:` it wrote reads as an undefined concept):
    // then the draft without its descriptions, then without its examples too.
    let mut drafts = vec![spec_text(&name, &src, &modules, &answers, true, true)];
    drafts.push(spec_text(&name, &src, &modules, &answers, false, true));
    drafts.push(spec_text(&name, &src, &modules, &answers, false, false));
    let spec_file = f.spec;
    let mut problems = Vec::new();
    for text in drafts {
        let files = vec![(rel.to_string(), text.clone())];
        match super::converse::check(spec_file, settings, dir, &files) {
            Ok(()) => {
                c.turns.push(Turn {
                    role: "rekindle".into(),
                    text: "the spec written from the answers above".into(),
                });
                let before = vec![(rel.to_string(), skeleton)];
                let diff = rekindle_render::converse::unified(rel, &before[0].1, &text);
                let written = super::converse::write(dir, &before, &files)?;
                c.edits.push(Edit {
                    turn: c.turns.len() - 1,
                    diff,
                    verdict: "accepted".into(),
                    files: written,
                });
                return Ok(true);
            }
            Err(p) => problems.push(p),
        }
    }
    c.turns.push(Turn {
        role: "check".into(),
        text: problems.join("\n\n"),
    });
    Ok(false)
}

/// The spec of the program: its modules as concepts, how they are imported and tested, and one
/// functionality per unit, with the calls' answers as acceptance tests.
fn spec_text(
    name: &str,
    src: &str,
    modules: &[Module],
    answers: &[Vec<Answer>],
    described: bool,
    examples: bool,
) -> String {
    let mut s = format!(
        "---\ndescription: '{}: a ***plain spec drafted from {}'\n---\n\n",
        name.replace('\'', "''"),
        src.replace('\'', "''")
    );
    s.push_str(&format!(
        "> Drafted by `rekindle init --from-code` from {src}: one functionality per public function or class,\n\
         > described by the model; the acceptance tests are calls the program itself answered. Read it, say\n\
         > what the model got wrong or left out, then `rekindle render`.\n\n"
    ));
    s.push_str("***definitions***\n\n");
    for m in modules {
        s.push_str(&format!(
            "- {} is the Python module in the file \"{}\".\n\n",
            m.concept, m.path
        ));
    }
    s.push_str("***implementation reqs***\n\n");
    s.push_str("- :Implementation: should be written in Python 3.\n\n");
    let mut imports: Vec<&str> = Vec::new();
    for m in modules {
        for i in &m.outline.imports {
            let i = i.split('#').next().unwrap_or("").trim();
            let local = modules.iter().any(|o| {
                i == format!("import {}", o.import) || i.starts_with(&format!("from {} ", o.import))
            });
            if !local && !i.is_empty() && !imports.contains(&i) {
                imports.push(i);
            }
        }
    }
    if !imports.is_empty() {
        s.push_str(&format!(
            "- :Implementation: may use what the program imports: {}.\n\n",
            imports
                .iter()
                .map(|i| code(i))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for m in modules {
        let names: Vec<&str> = m
            .outline
            .units
            .iter()
            .filter(|u| u.kind != Kind::Main)
            .map(|u| u.name.as_str())
            .collect();
        // Each functionality names its own function: listing them all here would have the first
        // one written (and tested) with every function at once.
        if !names.is_empty() {
            s.push_str(&format!(
                "- {} is a library: other code imports what it defines by name, as {}. Importing it must not print anything or read input.\n\n",
                m.concept,
                code(&format!("from {} import NAME", m.import))
            ));
        }
        let stem = m.import.rsplit('.').next().unwrap_or(&m.import);
        s.push_str(&format!(
            "- :Implementation: should include :UnitTests: of {} written with the unittest framework, in a file named \"test_{stem}.py\" beside it.\n\n",
            m.concept
        ));
        if m.import.contains('.') {
            s.push_str(&format!(
                "- Every folder on the way to {} holds an __init__.py, so it imports as {}.\n\n",
                m.concept,
                code(&m.import)
            ));
        }
    }
    s.push_str("***test reqs***\n\n");
    s.push_str("- :ConformanceTests: should be written in Python with the unittest framework, in files named test_*.py. They are run with \"python -m unittest discover\" with the code folder as the current working directory, so they can import the modules as the implementation reqs say. When :ConformanceTests: live in a subfolder, that folder needs an __init__.py.\n\n- The :ConformanceTests: of a functionality test only the function or class it names.\n\n");
    // How an acceptance test of a call becomes a test: spelled out, because a small model
    // writing them freely forgets imports and invents values.
    let outcomes: Vec<&Outcome> = answers
        .iter()
        .flatten()
        .flat_map(|a| a.examples.iter().map(|(_, o)| o))
        .collect();
    if examples && !outcomes.is_empty() {
        // No function of the program is named here: a named one gets tested in every
        // functionality's conformance tests.
        let first = modules
            .iter()
            .find(|m| m.outline.units.iter().any(|u| u.kind == Kind::Function))
            .map(|m| format!("from {} import NAME", m.import))
            .unwrap_or_default();
        let mut how = vec![
            "an acceptance test `CALL` returns `VALUE` is checked as `self.assertEqual(CALL, VALUE)`".to_string(),
        ];
        if outcomes.iter().any(|o| matches!(o, Outcome::Raises(_))) {
            how.push("`CALL` raises `ERROR` as `with self.assertRaises(ERROR): CALL`".into());
        }
        if outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Returns(_, Some(_))))
        {
            how.push("`CALL` prints `TEXT` by running CALL inside `contextlib.redirect_stdout(io.StringIO())` and comparing what it caught with TEXT".into());
        }
        s.push_str(&format!(
            "- A conformance test file imports only the function its functionality names, like {}; {}.\n\n",
            code(&first),
            how.join("; ")
        ));
    }
    s.push_str("***functional specs***\n\n");
    for (m, per) in modules.iter().zip(answers) {
        for (u, a) in m.outline.units.iter().zip(per) {
            let head = match u.kind {
                Kind::Function => format!(
                    "{} should define the function {}.",
                    m.concept,
                    code(&u.signature)
                ),
                Kind::Class if u.methods.is_empty() => {
                    format!(
                        "{} should define the class {}.",
                        m.concept,
                        code(&u.signature)
                    )
                }
                Kind::Class => format!(
                    "{} should define the class {} with the methods {}.",
                    m.concept,
                    code(&u.signature),
                    u.methods
                        .iter()
                        .map(|x| code(x))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                // What a program does is all in its description: without one, no item.
                Kind::Main if !described || a.description.is_empty() => continue,
                Kind::Main => format!(
                    "When {} is run as a program ({}):",
                    m.concept,
                    code(&format!("python {}", m.path)),
                ),
            };
            let said = if described && !a.description.is_empty() {
                format!(" {}", a.description)
            } else {
                String::new()
            };
            s.push_str(&format!("- {head}{said}\n\n"));
            if examples && !a.examples.is_empty() {
                s.push_str("  ***acceptance tests***\n\n");
                for (call, outcome) in &a.examples {
                    let what = match outcome {
                        Outcome::Returns(r, Some(p)) if r == "None" => {
                            format!("prints {}", code(p))
                        }
                        Outcome::Returns(r, Some(p)) => {
                            format!("prints {} and returns {}", code(p), code(r))
                        }
                        Outcome::Returns(r, None) => format!("returns {}", code(r)),
                        Outcome::Raises(e) => format!("raises {}", code(e)),
                    };
                    s.push_str(&format!("  - {} {what}.\n\n", code(call)));
                }
            }
        }
    }
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}

/// `text` as Markdown inline code.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// Evaluates each call twice on the program's own code (its code files only, in the sandbox):
/// per call, its outcome, or None when it did not run, answered differently the second time or
/// answered at length.
fn run_calls(
    f: &FromCode<'_>,
    settings: &rekindle_config::Settings,
    calls: &[(String, String)],
) -> Result<Vec<Option<Outcome>>, String> {
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let written = (|| -> std::io::Result<()> {
        f.sources.copy_code(tmp.path())?;
        let cases: Vec<serde_json::Value> = calls
            .iter()
            .map(|(m, c)| serde_json::json!({"module": m, "call": c}))
            .collect();
        std::fs::write(
            tmp.path().join(".rekindle-calls.json"),
            serde_json::to_string(&cases)?,
        )?;
        std::fs::write(tmp.path().join(".rekindle-calls.py"), CALLS_PY)?;
        std::fs::write(
            tmp.path().join(".rekindle-calls.sh"),
            "#!/usr/bin/env bash\ncd \"$1\" || exit 69\npython3 .rekindle-calls.py 2>&1\n",
        )?;
        Ok(())
    })();
    written.map_err(|e| e.to_string())?;
    let run = rekindle_workspace::scripts::run(
        &tmp.path().join(".rekindle-calls.sh"),
        &[tmp.path()],
        tmp.path(),
        std::time::Duration::from_secs(settings.test_script_timeout),
        &settings.toml.sandbox,
    )
    .map_err(|e| e.to_string())?;
    let values: Vec<serde_json::Value> =
        std::fs::read_to_string(tmp.path().join(".rekindle-calls.out.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| {
                format!(
                    "the calls did not run: {}",
                    run.output.lines().last().unwrap_or("no output")
                )
            })?;
    Ok((0..calls.len())
        .map(|i| {
            values.get(i).and_then(|v| {
                let repr = v.get("returns").and_then(|r| r.as_str());
                let printed = v.get("prints").and_then(|r| r.as_str());
                let raises = v.get("raises").and_then(|r| r.as_str());
                let short = |r: &str| r.len() <= MAX_RESULT && !r.contains(" at 0x");
                match (repr, raises) {
                    (Some(r), _) if short(r) && printed.is_none_or(short) => {
                        Some(Outcome::Returns(r.to_string(), printed.map(str::to_string)))
                    }
                    (_, Some(e)) => Some(Outcome::Raises(e.to_string())),
                    _ => None,
                }
            })
        })
        .collect())
}

/// Evaluates `.rekindle-calls.json`'s calls in their modules, twice each, into
/// `.rekindle-calls.out.json`: `{"returns": repr, "prints": repr}`, `{"raises": name}`, or `{}`
/// (not the same twice, slower than 5 s, or not a call). Standard input is empty, `sys.argv`
/// holds only the program's name, and what a call prints is caught.
const CALLS_PY: &str = r#"import contextlib, importlib, io, json, signal, sys
sys.path.insert(0, ".")
sys.argv = ["program"]


class Slow(Exception):
    pass


def slow(*_):
    raise Slow()


signal.signal(signal.SIGALRM, slow)
out = []
for case in json.load(open(".rekindle-calls.json")):
    seen = []
    for _ in range(2):
        sys.stdin = io.StringIO("")
        printed = io.StringIO()
        signal.alarm(5)
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                ns = dict(vars(importlib.import_module(case["module"])))
                value = eval(case["call"], ns)
            got = {"returns": repr(value)}
            if printed.getvalue():
                got["prints"] = repr(printed.getvalue())
            seen.append(got)
        except (Slow, SyntaxError, KeyboardInterrupt):
            seen.append({})
        except BaseException as e:
            seen.append({"raises": type(e).__name__})
        finally:
            signal.alarm(0)
    out.append(seen[0] if seen[0] == seen[1] else {})
json.dump(out, open(".rekindle-calls.out.json", "w"))
"#;

/// The single question for a program with nothing to outline: the whole spec at once, through
/// the converse loop (the draft must check). Whether a draft was written.
fn whole(d: Drafting<'_>, c: &mut Conversation) -> Result<bool, CliError> {
    let Drafting {
        f,
        settings,
        model,
        session,
        dir,
        rel,
        skeleton,
    } = d;
    let mut program = String::new();
    for (path, text) in &f.sources.code {
        program.push_str(&format!("--- CODE: {path}\n{text}"));
        if !text.ends_with('\n') {
            program.push('\n');
        }
        program.push_str("--- END CODE\n\n");
    }
    let message = format!(
        "Write {rel} as the ***plain spec of this existing Python program, so that rendering the spec rebuilds it:\n\n{program}\
Keep the front matter and its import. Under ***implementation reqs***, name every code file as the program names it, and every function or class other code or tests use, with its parameters, so that code written from the spec can replace this program file for file. Under ***functional specs***, one functionality per behaviour the program has, in an order where each builds on the ones before, each with ***acceptance tests*** that give concrete inputs and outputs taken from the code. Reply with the complete new {rel} in a file block (--- FILE: {rel} … --- END FILE)."
    );
    let mut t = Talk {
        file: f.spec,
        dir: dir.to_path_buf(),
        settings,
        files: vec![(rel.to_string(), skeleton)],
        yes: true,
        terminal: false,
        json_out: f.json,
        max_tokens: 2048,
        model,
        session,
        since: 0,
    };
    talk(&mut t, &mut VecDeque::from([message]), c)?;
    if c.edits.iter().any(|e| e.verdict == "accepted") {
        return Ok(true);
    }
    c.turns.push(Turn {
        role: "check".into(),
        text: "no draft of the spec checked".into(),
    });
    Ok(false)
}

/// Runs the program's tests against the rendered code (in the sandbox): (passed, ran).
fn score(f: &FromCode<'_>, settings: &rekindle_config::Settings) -> Result<(usize, usize), String> {
    if f.sources.tests.is_empty() {
        return Err("the program has no test_*.py files to score the render with".into());
    }
    let project = load::load(f.spec, &SpecArgs::plain()).project;
    let module = project
        .render_order
        .last()
        .map(|rm| project.module(rm.module).name.clone())
        .ok_or("the spec renders no module")?;
    let code = BuildLayout::new(&settings.build_folder)
        .module(&module)
        .code;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    // What the render committed (not a failed attempt left in the work tree).
    let repo = rekindle_workspace::git::Repo::new(&code);
    let head = repo
        .head()
        .ok()
        .flatten()
        .ok_or("the render committed no code")?;
    repo.export(&head, tmp.path()).map_err(|e| e.to_string())?;
    // How many tests the program has: what they count on the program itself (a test module the
    // rendered code cannot even import counts as one test there).
    let original = tempfile::tempdir().map_err(|e| e.to_string())?;
    f.sources
        .copy_code(original.path())
        .map_err(|e| e.to_string())?;
    let (_, total) = program_tests(f, settings, original.path())?;
    let (passed, _) = program_tests(f, settings, tmp.path())?;
    Ok((passed.min(total), total))
}

/// Runs the program's tests against the code in `dir` (in the sandbox): (passed, ran).
fn program_tests(
    f: &FromCode<'_>,
    settings: &rekindle_config::Settings,
    dir: &Path,
) -> Result<(usize, usize), String> {
    // The program's tests in a folder of their own, so the rendered code's own unit tests do
    // not count; the code folder is the working folder, so they import the rendered modules.
    let own = dir.join(SRC_TESTS);
    for (rel, text) in &f.sources.tests {
        let to = own.join(rel);
        let mut parent = to.parent().map(Path::to_path_buf);
        while let Some(p) = parent.filter(|p| p.starts_with(&own)) {
            std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
            if p != own {
                let init = p.join("__init__.py");
                if !init.exists() {
                    std::fs::write(&init, "").map_err(|e| e.to_string())?;
                }
            }
            parent = p.parent().map(Path::to_path_buf);
        }
        std::fs::write(&to, text).map_err(|e| e.to_string())?;
    }
    let script = dir.join(".rekindle-score.sh");
    std::fs::write(
        &script,
        format!("#!/usr/bin/env bash\ncd \"$1\" || exit 69\npython3 -m unittest discover -s {SRC_TESTS} -t {SRC_TESTS} -p 'test*.py' 2>&1\n"),
    )
    .map_err(|e| e.to_string())?;
    let run = rekindle_workspace::scripts::run(
        &script,
        &[dir],
        dir,
        std::time::Duration::from_secs(settings.test_script_timeout),
        &settings.toml.sandbox,
    )
    .map_err(|e| e.to_string())?;
    parse_unittest(&run.output).ok_or_else(|| {
        format!(
            "the program's tests did not run: {}",
            run.output.lines().last().unwrap_or("")
        )
    })
}

/// (passed, ran) from unittest's summary: `Ran N tests` and `FAILED (failures=F, errors=E)`.
fn parse_unittest(out: &str) -> Option<(usize, usize)> {
    let ran: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("Ran "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())?;
    let count = |key: &str| -> usize {
        out.lines()
            .filter(|l| l.starts_with("FAILED"))
            .flat_map(|l| l.split(['(', ',', ')']))
            .filter_map(|p| p.trim().strip_prefix(key))
            .filter_map(|n| n.parse::<usize>().ok())
            .sum()
    };
    let bad = count("failures=") + count("errors=") + count("skipped=");
    Some((ran.saturating_sub(bad), ran))
}

fn finish(
    json: bool,
    id: &str,
    rendered: bool,
    score: Option<(usize, usize)>,
    outcome: &str,
) -> CmdResult {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": rendered && score.is_some(),
                "rendered": rendered,
                "conversation": id,
                "passed": score.map(|s| s.0),
                "tests": score.map(|s| s.1),
                "outcome": outcome,
            })
        );
    } else {
        eprintln!("{outcome}");
        eprintln!("  conversation {}", &id[..16.min(id.len())]);
    }
    Ok(if rendered && score.is_some() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::parse_unittest;

    #[test]
    fn unittest_summaries_are_read() {
        assert_eq!(
            parse_unittest("...\nRan 3 tests in 0.001s\n\nOK\n"),
            Some((3, 3))
        );
        assert_eq!(
            parse_unittest("Ran 5 tests in 0.1s\n\nFAILED (failures=1, errors=2)\n"),
            Some((2, 5))
        );
        assert_eq!(parse_unittest("Traceback ..."), None);
    }
}
