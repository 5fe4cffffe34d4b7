//! Provenance commands and the journal writer: `journal verify`, `why`, and the observer that
//! records every model call and finished step of a render in the journal.

use rekindle_ledger::journal::{Entry, Journal};
use rekindle_render::{Event, Observer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Passes events on to the printer and records them in the journal.
pub struct Recorder<'a> {
    pub inner: &'a mut dyn Observer,
    pub journal: Journal,
    render_id: String,
    current: (String, usize),
    scripts: Vec<Value>,
    failed: bool,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a mut dyn Observer, journal: Journal) -> Recorder<'a> {
        Recorder {
            inner,
            journal,
            render_id: String::new(),
            current: (String::new(), 0),
            scripts: Vec::new(),
            failed: false,
        }
    }

    fn append(&mut self, kind: &str, data: Value) {
        if let Err(e) = self.journal.append(kind, data) {
            if !self.failed {
                self.failed = true;
                self.inner.event(&Event::Warning {
                    message: format!("the journal could not be written: {e}"),
                });
            }
        }
    }
}

impl Observer for Recorder<'_> {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Start { render_id, .. } => self.render_id = render_id.clone(),
            Event::Functionality { module, id, .. } => {
                self.current = (module.clone(), *id);
                self.scripts.clear();
            }
            Event::Script { kind, outcome, exit_code, seconds } => {
                self.scripts.push(json!({"kind": kind, "outcome": outcome, "exit_code": exit_code, "seconds": seconds}))
            }
            Event::ModelCall { role, key, provider, model, cache_hit, tokens_in, tokens_out, cost, seconds } => {
                let data = json!({
                    "render_id": self.render_id, "module": self.current.0, "functionality": self.current.1,
                    "role": role, "request": key, "provider": provider, "model": model, "cache_hit": cache_hit,
                    "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": cost, "seconds": seconds,
                });
                self.append("model_call", data);
            }
            Event::Committed { module, id, commit, tests_commit, render_key, text, spec_file, spec_lines, files } => {
                let data = json!({
                    "render_id": self.render_id, "module": module, "functionality": id, "text": text,
                    "render_key": render_key, "spec": {"file": spec_file, "lines": spec_lines},
                    "files": files, "tests": self.scripts, "commit": commit, "tests_commit": tests_commit,
                });
                self.append("step", data);
            }
            _ => {}
        }
        self.inner.event(e);
    }

    fn token(&mut self, text: &str) {
        self.inner.token(text);
    }
}

pub fn verify(journal: &Journal, json_out: bool) -> u8 {
    match journal.verify(None) {
        Ok(v) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "journal": journal.path.display().to_string(), "entries": v.entries, "head": v.head})
                );
            } else {
                println!(
                    "journal ok: {} ({} entries, head {})",
                    journal.path.display(),
                    v.entries,
                    &v.head[..16.min(v.head.len())]
                );
            }
            0
        }
        Err(b) => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "journal": journal.path.display().to_string(), "line": b.line, "seq": b.seq, "reason": b.reason})
                );
            } else {
                let seq = b.seq.map(|s| format!(" (entry {s})")).unwrap_or_default();
                eprintln!(
                    "error: journal {} is broken at line {}{seq}: {}",
                    journal.path.display(),
                    b.line,
                    b.reason
                );
            }
            1
        }
    }
}

use rekindle_workspace::git::output as git;

/// The code repository that holds `file`, and the file's path inside it.
fn repo_of(file: &Path) -> Option<(PathBuf, String)> {
    let abs = std::path::absolute(file).ok()?;
    let mut dir = abs.parent()?.to_path_buf();
    loop {
        if dir.join(".git").is_dir() {
            let rel = abs.strip_prefix(&dir).ok()?.to_string_lossy().into_owned();
            return Some((dir, rel));
        }
        dir = dir.parent()?.to_path_buf();
    }
}

/// `rekindle why PATH[:LINE]`.
pub fn why(target: &str, journal: &Journal, json_out: bool) -> u8 {
    let (path, line) = match target.rsplit_once(':') {
        Some((p, l)) if l.parse::<usize>().is_ok() => (p, Some(l.parse::<usize>().unwrap_or(1))),
        _ => (target, None),
    };
    let fail = |msg: String| {
        if json_out {
            println!("{}", json!({"ok": false, "error": msg}));
        } else {
            eprintln!("error: {msg}");
        }
        2
    };
    if !Path::new(path).is_file() {
        return fail(format!("{path} is not a file"));
    }
    let Some((repo, rel)) = repo_of(Path::new(path)) else {
        return fail(format!(
            "{path} is not in a rendered code folder (<build-folder>/<module>/code)"
        ));
    };
    let commit = match line {
        Some(n) => git(
            &repo,
            &[
                "blame",
                "--porcelain",
                "-L",
                &format!("{n},{n}"),
                "--",
                &rel,
            ],
        )
        .and_then(|b| b.split_whitespace().next().map(str::to_string)),
        None => git(&repo, &["log", "-1", "--format=%H", "--", &rel]).map(|s| s.trim().to_string()),
    };
    let Some(commit) = commit.filter(|c| !c.is_empty() && !c.starts_with("0000000")) else {
        return fail(format!(
            "{path}{} was not written by a render (changed by hand and not committed?)",
            line.map(|l| format!(":{l}")).unwrap_or_default()
        ));
    };
    let entries: Vec<Entry> = journal.entries().unwrap_or_default();
    let step = entries.iter().find(|e| {
        e.kind == "step" && e.data.get("commit").and_then(Value::as_str) == Some(commit.as_str())
    });
    let trailers = git(
        &repo,
        &["log", "-1", "--format=%(trailers:only,unfold)", &commit],
    )
    .unwrap_or_default();
    let trailer = |k: &str| {
        trailers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}: ")).map(str::to_string))
    };
    let (Some(module), Some(id)) = (
        trailer("Rekindle-Module"),
        trailer("Rekindle-Functionality"),
    ) else {
        return fail(format!(
            "commit {commit} of {} was not made by rekindle",
            repo.display()
        ));
    };
    let render_id = trailer("Rekindle-Render-Id").unwrap_or_default();
    let calls: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.kind == "model_call"
                && e.data.get("module").and_then(Value::as_str) == Some(module.as_str())
                && e.data
                    .get("functionality")
                    .and_then(Value::as_u64)
                    .map(|v| v.to_string())
                    == Some(id.clone())
                && step.is_none_or(|s| s.data.get("render_id") == e.data.get("render_id"))
        })
        .collect();
    let sum = |k: &str| {
        calls
            .iter()
            .filter_map(|e| e.data.get(k).and_then(Value::as_f64))
            .sum::<f64>()
    };
    let text = step
        .and_then(|s| s.data.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let spec = step
        .and_then(|s| s.data.get("spec"))
        .cloned()
        .unwrap_or(Value::Null);
    if json_out {
        println!(
            "{}",
            json!({
                "ok": true, "path": path, "line": line, "module": module, "functionality": id.parse::<u64>().unwrap_or(0),
                "text": text, "spec": spec, "commit": commit, "render_id": render_id,
                "model_calls": calls.iter().map(|e| json!({"role": e.data.get("role"), "model": e.data.get("model"), "request": e.data.get("request"),
                    "cache_hit": e.data.get("cache_hit"), "tokens_in": e.data.get("tokens_in"), "tokens_out": e.data.get("tokens_out"), "cost": e.data.get("cost")})).collect::<Vec<_>>(),
                "cost": sum("cost"),
            })
        );
        return 0;
    }
    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
    println!("{path}{at} was written by functionality {id} of module {module}");
    if !text.is_empty() {
        println!("  \"{text}\"");
    }
    if let (Some(f), Some(l)) = (spec.get("file").and_then(Value::as_str), spec.get("lines")) {
        println!("  spec: {f}, lines {}-{}", l[0], l[1]);
    }
    println!(
        "  commit {} (render {render_id})",
        &commit[..commit.len().min(12)]
    );
    println!(
        "  model calls: {} ({} tokens in, {} out, ${:.4}, {:.1}s)",
        calls.len(),
        sum("tokens_in"),
        sum("tokens_out"),
        sum("cost"),
        sum("seconds")
    );
    for c in &calls {
        println!(
            "    {} {}{}",
            c.data.get("role").and_then(Value::as_str).unwrap_or(""),
            c.data.get("model").and_then(Value::as_str).unwrap_or(""),
            if c.data.get("cache_hit").and_then(Value::as_bool) == Some(true) {
                " (cache hit)"
            } else {
                ""
            }
        );
    }
    0
}
