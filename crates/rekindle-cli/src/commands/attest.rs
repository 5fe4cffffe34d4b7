//! `rekindle attest`: an in-toto / SLSA provenance statement for the rendered code.

use crate::args::{RenderArgs, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::{load, setup};
use rekindle_ledger::lock::Lock;
use rekindle_workspace::layout::ProjectLayout;
use std::path::Path;

pub fn run(file: &Path, args: &SpecArgs, r: &RenderArgs) -> CmdResult {
    let (project, settings) = load::load_valid(file, args)?;
    let opts = setup::options(file, &settings, r, &project);
    let models = setup::model_settings(&settings, &r.provider, &opts).map_err(CliError::usage)?;
    let lock = Lock::read(&ProjectLayout::for_spec(file).lock())
        .ok()
        .flatten();
    let statement =
        rekindle_ledger::attest::statement(&project, &opts.build_folder, &models, lock.as_ref())
            .map_err(CliError::failure)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&statement).unwrap_or_default()
    );
    Ok(ExitStatus::Success)
}
