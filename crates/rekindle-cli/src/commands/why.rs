//! `rekindle why PATH[:LINE]`: which functionality, spec lines, commit and model calls produced a
//! generated file or line.

use crate::args::Format;
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::load;
use rekindle_config::Overrides;
use rekindle_diag::SourceDb;
use rekindle_ledger::journal::Journal;
use rekindle_workspace::layout::{BuildLayout, ProjectLayout};
use serde_json::json;
use std::path::Path;

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

pub fn run(target: &str, spec: Option<&Path>, format: Format) -> CmdResult {
    let spec = load::spec_or_default(spec);
    let (path, line) = split(target);
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
            "    {} {}{}",
            c.role,
            c.model,
            if c.cache_hit { " (cache hit)" } else { "" }
        );
    }
    Ok(ExitStatus::Success)
}
