//! `rekindle init DIR --from-code SRC`: a model drafts the new project's spec from an existing
//! Python program (through the converse loop, so the draft must check and is recorded as a
//! conversation), rekindle renders it, and the program's own tests (`test_*.py`) run against the
//! rendered code: how many pass is the measure of the draft.

use super::converse::{record, talk, Talk};
use crate::args::{ProviderArgs, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_ledger::conversation::{self, Conversation, Turn};
use rekindle_llm::session::Mode;
use rekindle_workspace::layout::{BuildLayout, ProjectLayout};
use std::collections::VecDeque;
use std::path::Path;

/// The program: its code files and its test files, as (path relative to SRC, text).
pub struct Sources {
    pub code: Vec<(String, String)>,
    pub tests: Vec<(String, String)>,
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
    let mut c = Conversation {
        spec: rel.clone(),
        provider: models.code.label.clone(),
        model: models.code.model.clone(),
        purpose: "init-from-code".into(),
        turns: Vec::new(),
        edits: Vec::new(),
    };
    let mut t = Talk {
        file: f.spec,
        dir: dir.clone(),
        settings: &settings,
        files: vec![(rel.clone(), skeleton)],
        yes: true,
        terminal: false,
        json_out: f.json,
        max_tokens: 2048,
        model: &models.code,
        session: &session,
    };
    talk(&mut t, &mut VecDeque::from([message]), &mut c)?;
    if !c.edits.iter().any(|e| e.verdict == "accepted") {
        c.turns.push(Turn {
            role: "check".into(),
            text: "no draft of the spec checked".into(),
        });
        let (id, _) = record(f.spec, &c)?;
        return finish(
            f.json,
            &id,
            None,
            "no draft of the spec checked; the example spec stays",
        );
    }
    // Render the draft with the same model.
    let mut r = RenderArgs::defaults();
    r.provider = f.model.clone();
    r.yes = true;
    let rendered = super::render::run(f.spec, &args, &r);
    let score = match rendered {
        Ok(ExitStatus::Success) => score(f, &settings),
        _ => Err("the drafted spec did not render".to_string()),
    };
    let outcome = match &score {
        Ok((passed, total)) => {
            format!("{passed} of {total} of the program's own tests pass against the rendered code")
        }
        Err(e) => e.clone(),
    };
    c.turns.push(Turn {
        role: "check".into(),
        text: outcome.clone(),
    });
    let (id, _) = record(f.spec, &c)?;
    finish(f.json, &id, score.ok(), &outcome)
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
    rekindle_workspace::files::replace_worktree(&code, tmp.path()).map_err(|e| e.to_string())?;
    // The program's tests in a folder of their own, so the rendered code's own unit tests do
    // not count; the code folder is the working folder, so they import the rendered modules.
    let own = tmp.path().join(SRC_TESTS);
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
    let script = tmp.path().join(".rekindle-score.sh");
    std::fs::write(
        &script,
        format!("#!/usr/bin/env bash\ncd \"$1\" || exit 69\npython3 -m unittest discover -s {SRC_TESTS} -t {SRC_TESTS} -p 'test*.py' 2>&1\n"),
    )
    .map_err(|e| e.to_string())?;
    let run = rekindle_workspace::scripts::run(
        &script,
        &[tmp.path()],
        tmp.path(),
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

fn finish(json: bool, id: &str, score: Option<(usize, usize)>, outcome: &str) -> CmdResult {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": score.is_some(),
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
    Ok(if score.is_some() {
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
