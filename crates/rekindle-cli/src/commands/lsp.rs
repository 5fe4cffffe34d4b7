//! `rekindle lsp`: the language server (`rekindle-lsp`) on stdin and stdout, with what a hover
//! on a functionality says about its renders: its state (as `rekindle status` computes it, with
//! the default models), why it is stale, and the files its last render wrote (from the journal).

use crate::args::RenderArgs;
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::setup;
use rekindle_ledger::journal::Journal;
use rekindle_ledger::record::Record;
use rekindle_plan::stale::State;
use rekindle_workspace::layout::ProjectLayout;
use std::path::Path;

pub fn run() -> CmdResult {
    rekindle_lsp::stdio(Box::new(Renders)).map_err(|e| CliError::usage(format!("lsp: {e}")))?;
    Ok(ExitStatus::Success)
}

struct Renders;

impl rekindle_lsp::RenderInfo for Renders {
    fn functionality(&self, spec: &Path, module: &str, id: usize) -> Option<String> {
        let mut out = Vec::new();
        if let Some(state) = state(spec, module, id) {
            out.push(state);
        }
        let journal = Journal::new(ProjectLayout::for_spec(spec).journal());
        let last = journal.records().into_iter().rev().find_map(|r| match r {
            Record::Step(s) if s.module == module && s.functionality == id => Some(s),
            _ => None,
        });
        if let Some(step) = last {
            let files: Vec<String> = step
                .files
                .iter()
                .map(|f| match f.blake3 {
                    Some(_) => format!("`{}`", f.path),
                    None => format!("`{}` (deleted)", f.path),
                })
                .collect();
            out.push(format!(
                "last render: commit `{}`, wrote {}",
                &step.commit[..step.commit.len().min(10)],
                if files.is_empty() {
                    "no file".to_string()
                } else {
                    files.join(", ")
                }
            ));
        }
        (!out.is_empty()).then(|| out.join("\n\n"))
    }
}

/// "up to date", or "stale" with its reasons, as `rekindle status` says it.
fn state(spec: &Path, module: &str, id: usize) -> Option<String> {
    // The render flags' own defaults (`--max-tokens` is part of the model settings).
    let r = RenderArgs::defaults();
    let args = crate::args::SpecArgs::plain();
    let l = crate::load::load(spec, &args);
    if l.project.has_errors() || l.config_failed() {
        return None;
    }
    let opts = setup::options(spec, &l.settings, &r, &l.project);
    if !opts.build_folder.exists() {
        return None;
    }
    let models = setup::model_settings(&l.settings, &r.provider, &opts).ok()?;
    let status = rekindle_render::status(&l.project, &opts, &models).ok()?;
    let m = status.modules.iter().find(|m| m.module == module)?;
    let f = m.functionalities.iter().find(|f| f.id == id)?;
    let mut text = format!("render state: **{}**", f.state.words());
    if f.state != State::UpToDate {
        for why in &f.reasons {
            text.push_str(&format!("\n- {why}"));
        }
    }
    Some(text)
}
