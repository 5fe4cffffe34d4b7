//! `rekindle why PATH[:LINE]`: which functionality, spec lines, commit and model calls produced a
//! generated file or line.

use crate::args::Format;
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::load;
use rekindle_config::Overrides;
use rekindle_diag::SourceDb;
use rekindle_ledger::conversation::{origins, relative, Origin, Store};
use rekindle_ledger::journal::Journal;
use rekindle_workspace::layout::{BuildLayout, ProjectLayout};
use serde_json::json;
use std::path::{Path, PathBuf};

/// `PATH:LINE` or `PATH`.
fn split(target: &str) -> (&str, Option<usize>) {
    match target.rsplit_once(':') {
        Some((p, l)) if l.parse::<usize>().is_ok() => (p, l.parse().ok()),
        _ => (target, None),
    }
}

/// A path in the `build-dest` copy means the same file in the entry module's code folder.
fn map_build_dest(path: &str, spec: &Path) -> String {
    let mut db = SourceDb::default();
    let settings = rekindle_config::load(spec, &Overrides::default(), &mut db, &mut Vec::new());
    let (Ok(abs), Ok(dest)) = (
        std::path::absolute(path),
        std::path::absolute(&settings.build_dest),
    ) else {
        return path.to_string();
    };
    let Ok(rel) = abs.strip_prefix(&dest) else {
        return path.to_string();
    };
    let module = spec
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = BuildLayout::new(&settings.build_folder)
        .module(&module)
        .code;
    code.join(rel).display().to_string()
}

/// The conversation turns that wrote `lines` (1-based, inclusive) of `spec_file`, in order,
/// without repeats.
fn intents(spec: &Path, spec_file: &str, lines: [usize; 2]) -> Vec<Origin> {
    let layout = ProjectLayout::for_spec(spec);
    let file = if Path::new(spec_file).exists() {
        PathBuf::from(spec_file)
    } else {
        layout.dir.join(spec_file)
    };
    let Ok(text) = std::fs::read_to_string(&file) else {
        return Vec::new();
    };
    let records = Journal::new(layout.journal()).records();
    let store = Store::new(layout.conversations());
    let all = origins(&records, &store, &relative(&layout.dir, &file), &text);
    let mut out: Vec<Origin> = Vec::new();
    for o in all
        .into_iter()
        .skip(lines[0].saturating_sub(1))
        .take(lines[1] + 1 - lines[0].max(1))
        .flatten()
    {
        if !out.contains(&o) {
            out.push(o);
        }
    }
    out
}

fn intent_json(o: &Origin) -> serde_json::Value {
    json!({"conversation": o.conversation, "turn": o.turn, "asked": o.asked})
}

fn said(o: &Origin) -> String {
    format!(
        "conversation {} (turn {}), asked: \"{}\"",
        &o.conversation[..o.conversation.len().min(16)],
        o.turn,
        rekindle_lsp::analysis::clip(o.asked.lines().next().unwrap_or("").trim(), 100)
    )
}

/// `rekindle why SPEC.plain:LINE`: the conversation turn that introduced or last changed it.
fn spec_line(path: &str, line: Option<usize>, format: Format) -> CmdResult {
    let spec = Path::new(path);
    let text = std::fs::read_to_string(spec)
        .map_err(|e| CliError::usage(format!("cannot read {path}: {e}")))?;
    let n = text.lines().count();
    let line =
        line.ok_or_else(|| CliError::usage(format!("name a line of the spec: {path}:LINE")))?;
    if line == 0 || line > n {
        return Err(CliError::usage(format!("{path} has lines 1 to {n}")));
    }
    let found = intents(spec, path, [line, line]).into_iter().next();
    if format == Format::Json {
        println!(
            "{}",
            json!({"ok": true, "path": path, "line": line, "text": text.lines().nth(line - 1),
                   "intent": found.as_ref().map(intent_json)})
        );
        return Ok(ExitStatus::Success);
    }
    match &found {
        Some(o) => println!("{path}:{line} was written by {}", said(o)),
        None => println!(
            "{path}:{line} was not written through a conversation (by hand, or before `rekindle converse` recorded any)"
        ),
    }
    Ok(ExitStatus::Success)
}

pub fn run(target: &str, spec: Option<&Path>, format: Format) -> CmdResult {
    let (path, line) = split(target);
    if path.ends_with(".plain") {
        return spec_line(path, line, format);
    }
    let spec = load::spec_or_default(spec);
    let path = map_build_dest(path, &spec);
    let journal = Journal::new(ProjectLayout::for_spec(&spec).journal());
    let w = rekindle_ledger::why::why(&path, line, &journal).map_err(CliError::usage)?;
    if format == Format::Json {
        println!(
            "{}",
            json!({
                "ok": true, "path": path, "line": line, "module": w.module, "functionality": w.functionality,
                "text": w.text, "spec": w.spec, "commit": w.commit, "render_id": w.render_id,
                "model_calls": w.calls.iter().map(|c| json!({"role": c.role, "model": c.model, "request": c.request,
                    "cache_hit": c.cache_hit, "tokens_in": c.tokens_in, "tokens_out": c.tokens_out, "cost": c.cost})).collect::<Vec<_>>(),
                "cost": w.cost(),
                "intents": w.spec.as_ref().map(|s| intents(&spec, &s.file, s.lines)).unwrap_or_default().iter().map(intent_json).collect::<Vec<_>>(),
            })
        );
        return Ok(ExitStatus::Success);
    }
    let at = line.map(|l| format!(":{l}")).unwrap_or_default();
    println!(
        "{path}{at} was written by functionality {} of module {}",
        w.functionality, w.module
    );
    if !w.text.is_empty() {
        println!("  \"{}\"", w.text);
    }
    if let Some(s) = &w.spec {
        println!("  spec: {}, lines {}-{}", s.file, s.lines[0], s.lines[1]);
        for o in intents(&spec, &s.file, s.lines) {
            println!("  intent: {}", said(&o));
        }
    }
    println!(
        "  commit {} (render {})",
        &w.commit[..w.commit.len().min(12)],
        w.render_id
    );
    let (tokens_in, tokens_out) = w.tokens();
    println!(
        "  model calls: {} ({tokens_in} tokens in, {tokens_out} out, ${:.4}, {:.1}s)",
        w.calls.len(),
        w.cost(),
        w.seconds()
    );
    for c in &w.calls {
        println!(
            "    {} {} {}{}",
            c.role,
            c.model,
            &c.request[..c.request.len().min(12)],
            if c.cache_hit { " (cache hit)" } else { "" }
        );
    }
    if !w.calls.is_empty() {
        println!("  (`rekindle cache show KEY` prints a call's conversation and reply)");
    }
    Ok(ExitStatus::Success)
}
