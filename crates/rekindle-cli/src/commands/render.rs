//! `rekindle render`: render what is stale, record it in the journal, and write (or, with
//! `--locked`, check) rekindle.lock.

use super::runtime;
use crate::args::{Format, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::printer::Printer;
use crate::{load, setup};
use rekindle_ledger::journal::Journal;
use rekindle_ledger::lock::Lock;
use rekindle_ledger::recorder::Recorder;
use rekindle_llm::session::Mode;
use rekindle_render::RenderError;
use rekindle_workspace::layout::ProjectLayout;
use std::path::Path;

pub fn parse_range(s: &str) -> Result<(usize, usize), CliError> {
    let bad = || {
        CliError::usage(format!(
            "--range takes A..B or N (functionality numbers), not `{s}`"
        ))
    };
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (a.trim(), b.trim().trim_start_matches('=')),
        None => match s.split_once(',') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s.trim(), s.trim()),
        },
    };
    let a: usize = a.parse().map_err(|_| bad())?;
    let b: usize = b.parse().map_err(|_| bad())?;
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

pub fn run(file: &Path, args: &SpecArgs, r: &RenderArgs) -> CmdResult {
    let (project, settings) = load::load_valid(file, args)?;
    let json = args.format == Format::Json;
    setup::check_folders(&settings, r, None)?;
    let range = r.range.as_deref().map(parse_range).transpose()?;
    if r.from.is_some() && range.is_some() {
        return Err(CliError::usage(
            "--from and --range cannot be used together",
        ));
    }
    if !rekindle_workspace::git::available() {
        return Err(CliError::usage(
            "git is not installed; rekindle commits every rendered functionality",
        ));
    }
    let layout = ProjectLayout::for_spec(file);
    let lock_path = layout.lock();
    let lock = Lock::read(&lock_path).map_err(CliError::usage)?;
    if r.locked && lock.is_none() {
        return Err(CliError::usage(format!(
            "--locked: there is no {}; render once without --locked to write it",
            lock_path.display()
        )));
    }
    let cache_only = r.offline || r.locked;
    let built = setup::build_models(&settings, &r.provider, cache_only).map_err(CliError::usage)?;
    let hosted = built.hosted();
    if !hosted.is_empty()
        && !cache_only
        && !setup::confirm(
            &format!(
                "This render may call hosted models ({}), which can cost money. Continue?",
                hosted.join(", ")
            ),
            r.yes,
        )
    {
        eprintln!("cancelled");
        return Ok(ExitStatus::Failure);
    }
    let models = built.model_set();
    let session = setup::session(
        &settings,
        Some(rekindle_llm::cache::Cache::new(settings.cache_dir())),
        if cache_only {
            Mode::Offline
        } else {
            Mode::Normal
        },
    );
    let mut opts = setup::options(file, &settings, r, &project);
    opts.range = range;
    setup::check_sandbox(&opts, json)?;
    // Ctrl-C: take the running test script down too; the next render resumes cleanly.
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
                rekindle_workspace::scripts::kill_running();
                eprintln!("\ninterrupted: the next `rekindle render` resumes at the first unfinished functionality");
                std::process::exit(130);
            }
        }
    });
    let journal = Journal::new(layout.journal());
    let mut printer = Printer::new(json);
    let mut recorder = Recorder::new(&mut printer, journal.clone());
    let result = runtime().block_on(rekindle_render::render(
        &project,
        &opts,
        &models,
        &session,
        &mut recorder,
    ));
    if let Err(e) = result {
        if !json {
            if let RenderError::Failed { output, .. } | RenderError::Environment { output, .. } = &e
            {
                let cut = rekindle_workspace::scripts::cut_for_prompt(output, 4000);
                eprintln!("last test output:\n{cut}");
            }
        }
        // The failure event has said what went wrong.
        return Err(CliError::Reported(if e.is_failure() {
            ExitStatus::Failure
        } else {
            ExitStatus::Error
        }));
    }
    let built = rekindle_render::built(&project, &opts.build_folder).map_err(CliError::usage)?;
    let now = Lock::of_build(&built, &journal, lock.as_ref())
        .map_err(|e| CliError::failure(format!("the render finished, but {e}")))?;
    if r.locked {
        if let Some(diff) = lock.as_ref().and_then(|l| l.compare(&now.pins)) {
            return Err(CliError::failure(format!("--locked: {diff}")));
        }
        if !json {
            eprintln!(
                "locked: every functionality matches {}",
                lock_path.display()
            );
        }
        return Ok(ExitStatus::Success);
    }
    now.write(&lock_path)
        .map_err(|e| CliError::failure(format!("the render finished, but {e}")))?;
    Ok(ExitStatus::Success)
}
