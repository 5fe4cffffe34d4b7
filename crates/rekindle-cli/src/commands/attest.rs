//! `rekindle attest`: an in-toto / SLSA provenance statement for the rendered code.

use crate::args::{RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_ledger::lock::Lock;
use rekindle_workspace::layout::ProjectLayout;
use std::path::Path;

pub fn run(file: &Path, args: &SpecArgs, r: &RenderArgs) -> CmdResult {
    let (project, settings) = load::load_valid_with(file, args, Some(r))?;
    let opts = setup::options(file, &settings, r, &project);
    let models = setup::model_settings(&settings, &r.provider, &opts).map_err(CliError::usage)?;
    let lock_path = ProjectLayout::for_spec(file).lock();
    let lock = Lock::read(&lock_path).map_err(|e| {
        CliError::usage(format!(
            "{e} ({}): an attestation lists the replies the lock pins; mend the lock or render again",
            lock_path.display()
        ))
    })?;
    let cache = rekindle_llm::cache::Cache::new(settings.cache_dir());
    let statement = rekindle_ledger::attest::statement(
        &project,
        &opts.build_folder,
        &models,
        lock.as_ref(),
        &cache,
    )
    .map_err(CliError::failure)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&statement).unwrap_or_default()
    );
    Ok(ExitStatus::Success)
}
