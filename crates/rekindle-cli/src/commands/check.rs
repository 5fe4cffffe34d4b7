//! `rekindle check`: parse and validate specs; every problem with its location.

use crate::args::{Format, SpecArgs};
use crate::exit::{CmdResult, ExitStatus};
use crate::load::{self, color};
use std::path::PathBuf;

pub fn run(files: &[PathBuf], args: &SpecArgs) -> CmdResult {
    let mut worst = ExitStatus::Success;
    let mut json_files = Vec::new();
    let color = color(args);
    for file in files {
        if let Err(e) = load::precheck(file) {
            worst = worst.max(e.report(args.format));
            continue;
        }
        let l = load::load(file, args);
        let config_failed = l.config_failed();
        let errors = l.spec_errors();
        let warnings = l.project.diagnostics.len() - errors;
        match args.format {
            Format::Json => {
                json_files.push(serde_json::json!({
                    "file": file.display().to_string(),
                    "ok": errors == 0 && !config_failed,
                    "errors": errors,
                    "warnings": warnings,
                    "diagnostics": l.json_diagnostics(),
                }));
            }
            Format::Text => {
                l.print_diagnostics(color);
                if errors == 0 && !config_failed {
                    let modules = l.project.render_order.len();
                    let n: usize = l
                        .project
                        .render_order
                        .iter()
                        .map(|m| m.sections.functional_specs.len())
                        .sum();
                    eprintln!(
                        "ok: {} ({modules} module{}, {n} functionalit{}{})",
                        file.display(),
                        if modules == 1 { "" } else { "s" },
                        if n == 1 { "y" } else { "ies" },
                        if warnings > 0 {
                            format!(", {warnings} warning(s)")
                        } else {
                            String::new()
                        }
                    );
                } else if errors > 0 {
                    eprintln!("{}", load::errors_line(file, errors));
                }
            }
        }
        if config_failed {
            worst = worst.max(ExitStatus::Error);
        } else if errors > 0 {
            worst = worst.max(ExitStatus::Failure);
        }
        // The process is about to end; freeing a large project only costs time.
        std::mem::forget(l);
    }
    if args.format == Format::Json {
        let ok = worst == ExitStatus::Success;
        println!("{}", serde_json::json!({"ok": ok, "files": json_files}));
    }
    Ok(worst)
}
