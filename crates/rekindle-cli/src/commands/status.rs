//! `rekindle status`: stale functionalities and why; generated files changed by hand.

use crate::args::{Format, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_plan::stale::State;
use std::path::Path;

pub fn run(file: &Path, check: bool, args: &SpecArgs, r: &RenderArgs) -> CmdResult {
    let (project, settings) = load::load_valid_with(file, args, Some(r))?;
    let opts = setup::options(file, &settings, r, &project);
    let models = setup::model_settings(&settings, &r.provider, &opts).map_err(CliError::usage)?;
    let status = rekindle_render::status(&project, &opts, &models).map_err(CliError::usage)?;
    let (pending, reusable, drift) = (status.pending(), status.reusable(), status.hand_edits());
    let calls_each = if settings.conformance_tests_script.is_some() {
        2
    } else {
        1
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"modules": status.modules, "stale": pending, "reusable": reusable, "hand_edits": drift, "min_model_calls": pending * calls_each})
        ),
        Format::Text => {
            for m in &status.modules {
                println!(
                    "module {}{}",
                    m.module,
                    if m.interrupted {
                        " (an interrupted render will be cleaned up)"
                    } else {
                        ""
                    }
                );
                for f in &m.functionalities {
                    println!(
                        "  {:>3} {:<12} {}  [{}:{}]",
                        f.id,
                        f.state.words(),
                        f.text,
                        f.spec_file,
                        f.spec_lines[0]
                    );
                    if f.state != State::UpToDate {
                        for why in &f.reasons {
                            println!("        {why}");
                        }
                    }
                }
                let what = if m.interrupted {
                    // Unfinished work, or a hand edit made since: the next render discards both.
                    "changed since the last finished functionality (discarded by the next render)"
                } else {
                    "changed by hand"
                };
                for d in &m.drift {
                    println!("  {what}: {} {} (in {})", d.change, d.path, d.folder);
                }
            }
            println!(
                "{pending} to render ({} model calls at least), {reusable} reusable after them, {drift} file{} changed by hand",
                pending * calls_each,
                if drift == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if check && !status.clean() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
