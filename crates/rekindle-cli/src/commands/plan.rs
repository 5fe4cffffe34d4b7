//! `rekindle plan`: modules in render order, each functionality with its acceptance tests.

use crate::args::{Format, SpecArgs};
use crate::exit::{CmdResult, ExitStatus};
use crate::{load, report};
use std::io::Write;
use std::path::Path;

pub fn run(file: &Path, args: &SpecArgs) -> CmdResult {
    let (project, _) = load::load_valid(file, args)?;
    let plan = rekindle_plan::plan(&project);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&plan).unwrap_or_default()
            );
        }
        Format::Text => {
            let _ = write!(out, "{}", report::plan_text(&plan));
        }
    }
    std::mem::forget(project);
    Ok(ExitStatus::Success)
}
