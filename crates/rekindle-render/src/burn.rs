//! The deletion test's comparison: after a rebuild from the specs alone into a scratch folder,
//! run the original build's conformance tests and the rebuild's own against the rebuilt code,
//! functionality by functionality.

use rekindle_spec::project::Project;
use rekindle_workspace::layout::BuildLayout;
use rekindle_workspace::sandbox::SandboxPolicy;
use rekindle_workspace::scripts::{self, Outcome};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Serialize)]
pub struct BurnRow {
    pub module: String,
    pub id: usize,
    /// The original build's conformance tests against the rebuilt code (None: there were none).
    pub original_tests: Option<bool>,
    /// The rebuild's own conformance tests.
    pub new_tests: Option<bool>,
}

impl BurnRow {
    /// No conformance test that exists failed.
    pub fn passed(&self) -> bool {
        self.original_tests != Some(false) && self.new_tests != Some(false)
    }
}

/// How the conformance script is run: with which timeout, in which sandbox.
pub struct Runner<'a> {
    pub script: &'a Path,
    pub timeout: Duration,
    pub sandbox: &'a SandboxPolicy,
}

fn passes(r: &Runner<'_>, code: &Path, tests: &Path) -> Option<bool> {
    if !tests.is_dir() {
        return None;
    }
    let run = scripts::run(r.script, &[code, tests], code, r.timeout, r.sandbox).ok()?;
    Some(run.outcome == Outcome::Passed)
}

/// Runs both sets of conformance tests for every functionality of `project` against the code
/// rebuilt in `scratch`; `original` is the build folder being tested.
pub fn compare(
    project: &Project,
    original: &Path,
    scratch: &Path,
    runner: &Runner<'_>,
) -> Vec<BurnRow> {
    let (original, scratch) = (BuildLayout::new(original), BuildLayout::new(scratch));
    let mut rows = Vec::new();
    for rm in &project.render_order {
        let module = project.module(rm.module).name.clone();
        let (old, new) = (original.module(&module), scratch.module(&module));
        for k in 1..=rm.sections.functional_specs.len() {
            rows.push(BurnRow {
                module: module.clone(),
                id: k,
                original_tests: passes(runner, &new.code, &old.conformance_tests(k)),
                new_tests: passes(runner, &new.code, &new.conformance_tests(k)),
            });
        }
    }
    rows
}
