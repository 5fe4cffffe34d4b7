//! `rekindle render`: render what is stale, record it in the journal, and write (or, with
//! `--locked`, check) rekindle.lock.

use super::runtime;
use crate::args::{Format, RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::printer::Printer;
use crate::{load, setup};
use rekindle_ledger::journal::Journal;
use rekindle_ledger::lock::{Lock, LockModels};
use rekindle_ledger::recorder::Recorder;
use rekindle_llm::session::Mode;
use rekindle_render::RenderError;
use rekindle_workspace::layout::ProjectLayout;
use rekindle_workspace::store::TreeStore;
use std::collections::HashSet;
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
    let (project, settings) = load::load_valid_with(file, args, Some(r))?;
    let json = args.format == Format::Json;
    // plain2code's render flags may be written in config.yaml; the command line wins.
    let keys = &settings.flags;
    if keys.full_plain {
        return super::expand::run(file, None, args);
    }
    if keys.dry_run {
        return super::plan::run(file, args);
    }
    setup::check_folders(&settings, r, None)?;
    let (range, from) = if r.range.is_some() || r.from.is_some() {
        (r.range.clone(), r.from)
    } else {
        (keys.render_range.clone(), keys.render_from)
    };
    let range = range.as_deref().map(parse_range).transpose()?;
    if from.is_some() && range.is_some() {
        return Err(CliError::usage(if r.range.is_some() || r.from.is_some() {
            "--from and --range cannot be used together"
        } else {
            "config.yaml sets both render-range and render-from; keep one"
        }));
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
    if r.local_only && !cache_only {
        setup::refuse_hosted(&settings, &r.provider, "this render")?;
    }
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
    opts.from = from;
    opts.force_render |= keys.force_render;
    let lock_models = LockModels::of(&models.settings(&opts.sampling));
    if r.locked {
        let lock = lock.as_ref().expect("checked above");
        if let Some(diff) = lock.models.as_ref().map(|m| m.differences(&lock_models)) {
            if !diff.is_empty() {
                return Err(CliError::usage(format!(
                    "--locked: {} was rendered with other models than this render names ({}); drop the flags that name models, or render without --locked to pin these",
                    lock_path.display(),
                    diff.join("; ")
                )));
            }
        }
        opts.locked = Some(rekindle_render::Locked {
            pins: lock
                .pins
                .iter()
                .map(|p| rekindle_render::LockedPin {
                    module: p.module.clone(),
                    id: p.id,
                    render_key: p.render_key.clone(),
                    tree: p.tree.clone(),
                    tests_tree: p.tests_tree.clone(),
                })
                .collect(),
            store: layout.trees(),
        });
    }
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
    printer.verbose = r.verbose || settings.verbose;
    let log_to_file = (r.log_to_file || keys.log_to_file == Some(true)) && !r.no_log_to_file;
    let log_file_name = r.log_file_name.as_ref().or(keys
        .log_file_name
        .as_ref()
        .filter(|_| !r.no_log_to_file && (r.log_to_file || keys.log_to_file != Some(false))));
    let log_name = match (log_file_name, log_to_file) {
        (Some(name), _) => Some(name.as_str()),
        (None, true) => Some("rekindle.log"),
        (None, false) => None,
    };
    if let Some(name) = log_name {
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(CliError::usage(format!(
                "--log-file-name: `{name}` is not a file name; the log is written beside the spec, so name a file, such as rekindle.log"
            )));
        }
        let path = layout.dir.join(name);
        printer = printer.log_to(&path).map_err(|e| {
            CliError::usage(format!(
                "--log-file-name: cannot write {}: {e}",
                path.display()
            ))
        })?;
    }
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
    let finished =
        |e: &dyn std::fmt::Display| CliError::failure(format!("the render finished, but {e}"));
    let now =
        Lock::of_build(&built, &journal, lock.as_ref(), lock_models).map_err(|e| finished(&e))?;
    if r.locked {
        if let Some(diff) = lock.as_ref().and_then(|l| l.compare(&now.pins)) {
            return Err(CliError::failure(format!("--locked: {diff}")));
        }
        if !json {
            eprintln!(
                "locked: every functionality matches {} and its tests pass",
                lock_path.display()
            );
        }
        return Ok(ExitStatus::Success);
    }
    // The store first: a lock never names a tree the store was not given.
    let store = TreeStore::new(layout.trees());
    rekindle_render::keep_trees(&built, &opts.build_folder, &store).map_err(|e| {
        finished(&format_args!(
            "the tree store {} could not keep its trees ({e}); rekindle.lock is unchanged",
            store.dir().display()
        ))
    })?;
    now.write(&lock_path).map_err(|e| finished(&e))?;
    let pinned: HashSet<String> = now
        .pins
        .iter()
        .flat_map(|p| [p.tree.clone(), p.tests_tree.clone()])
        .collect();
    if let Err(e) = store.keep_only(&pinned) {
        // Only space is lost: what the lock pins is all there.
        eprintln!(
            "warning: the tree store {} keeps trees the lock no longer pins: {e}",
            store.dir().display()
        );
    }
    Ok(ExitStatus::Success)
}
