//! `rekindle burn`: the deletion test. Rebuild from the specs alone (no response cache, no build
//! folder) into a scratch folder, run the original and the new conformance tests against the
//! rebuilt code, and say whether the specs alone reproduce a passing system.

use super::runtime;
use crate::args::{Format, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::printer::Printer;
use crate::{load, setup};
use rekindle_llm::session::Mode;
use std::path::Path;

pub fn run(file: &Path, into: Option<&Path>, args: &SpecArgs, r: &RenderArgs) -> CmdResult {
    let (project, settings) = load::load_valid_with(file, args, Some(r))?;
    let json = args.format == Format::Json;
    setup::check_folders(&settings, r, into)?;
    let Some(script) = settings.conformance_tests_script.clone() else {
        return Err(CliError::usage(
            "burn needs conformance-tests-script in config.yaml: it is what proves the rebuild",
        ));
    };
    let original = std::path::absolute(
        r.build_folder
            .clone()
            .unwrap_or_else(|| settings.build_folder.clone()),
    )
    .unwrap_or_default();
    if !original.is_dir() {
        return Err(CliError::usage(format!(
            "{} does not exist: render first, then burn",
            original.display()
        )));
    }
    let built = setup::build_models(&settings, &r.provider, false).map_err(CliError::usage)?;
    let n: usize = project
        .render_order
        .iter()
        .map(|m| m.sections.functional_specs.len())
        .sum();
    let hosted = built.hosted();
    let calls = n * 2;
    let cost_note = if hosted.is_empty() {
        "local models, no cost".to_string()
    } else {
        format!("hosted models ({}) at their prices", hosted.join(", "))
    };
    if !json {
        eprintln!("burn: rebuilding {n} functionalit{} from the specs alone, no cache: at least {calls} model calls, {cost_note}", if n == 1 { "y" } else { "ies" });
    }
    if !setup::confirm("Spend that?", r.yes || hosted.is_empty()) {
        eprintln!("cancelled");
        return Ok(ExitStatus::Failure);
    }
    let scratch_dir;
    let scratch = match into {
        Some(d) => d.to_path_buf(),
        None => {
            scratch_dir = tempfile::tempdir().map_err(CliError::usage)?;
            scratch_dir.path().to_path_buf()
        }
    };
    let models = built.model_set();
    let session = setup::session(&settings, None, Mode::Normal);
    let mut opts = setup::options(file, &settings, r, &project);
    setup::check_sandbox(&opts, json)?;
    opts.build_folder = scratch.clone();
    opts.copy_to = None;
    opts.from = None;
    let mut printer = Printer::new(json);
    printer.verbose = r.verbose || settings.verbose;
    let result = runtime().block_on(rekindle_render::render(
        &project,
        &opts,
        &models,
        &session,
        &mut printer,
    ));
    if let Err(e) = &result {
        if !json {
            eprintln!("burn: the specs alone did not render: {e}");
        }
        return Ok(ExitStatus::Failure);
    }
    let rows = rekindle_render::burn::compare(
        &project,
        &original,
        &std::path::absolute(&scratch).unwrap_or(scratch.clone()),
        &rekindle_render::burn::Runner {
            script: &script,
            timeout: setup::timeout(settings.test_script_timeout),
            sandbox: &opts.sandbox,
        },
    );
    let ok = rows.iter().all(|r| r.passed());
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "burn", "ok": ok, "functionalities": rows, "summary": session.totals()})
        );
    } else {
        use rekindle_render::burn::Verdict;
        let mark = |v: Verdict| match v {
            Verdict::Passed => "pass",
            Verdict::Failed => "FAIL",
            Verdict::CouldNotRun => "COULD NOT RUN",
            Verdict::None => "none",
        };
        println!(
            "{:<20} {:>3}  {:<14} {:<9}",
            "module", "#", "original tests", "new tests"
        );
        for row in &rows {
            println!(
                "{:<20} {:>3}  {:<14} {:<9}",
                row.module,
                row.id,
                mark(row.original_tests),
                mark(row.new_tests)
            );
            if let Some(why) = &row.why_not_run {
                println!("    {why}");
            }
        }
        println!(
            "{}",
            if ok {
                "the specs alone reproduce a passing system"
            } else if rows.iter().any(|r| r.could_not_run()) {
                "the specs alone are NOT shown to reproduce a passing system: some conformance tests could not run"
            } else {
                "the specs alone do NOT reproduce a passing system: the failing functionalities depend on something the specs do not say"
            }
        );
    }
    Ok(if ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
