//! `rekindle burn`: the deletion test. Rebuild from the specs alone — no response cache, no build
//! folder — into a scratch folder, then run the original build's conformance tests and the new
//! ones against the rebuilt code, and say per functionality whether the specs reproduce a passing
//! system.

use rekindle_workspace::sandbox::SandboxPolicy;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Row {
    pub module: String,
    pub id: usize,
    /// The original build's conformance tests against the rebuilt code (None: there were none).
    pub original_tests: Option<bool>,
    /// The rebuild's own conformance tests.
    pub new_tests: Option<bool>,
}

fn passes(
    script: &Path,
    code: &Path,
    tests: &Path,
    timeout: std::time::Duration,
    sandbox: &SandboxPolicy,
) -> Option<bool> {
    if !tests.is_dir() {
        return None;
    }
    let run =
        rekindle_workspace::scripts::run(script, &[code, tests], code, timeout, sandbox).ok()?;
    Some(run.outcome == rekindle_workspace::scripts::Outcome::Passed)
}

/// Runs both sets of conformance tests for every functionality of `project` against the code in
/// `scratch`.
pub fn compare(
    project: &rekindle_spec::project::Project,
    original: &Path,
    scratch: &Path,
    script: &Path,
    timeout: std::time::Duration,
    sandbox: &SandboxPolicy,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for rm in &project.render_order {
        let module = project.module(rm.module).name.clone();
        let code = scratch.join(&module).join("code");
        for k in 1..=rm.sections.functional_specs.len() {
            let folder = format!("f{k:02}");
            rows.push(Row {
                module: module.clone(),
                id: k,
                original_tests: passes(
                    script,
                    &code,
                    &original.join(&module).join("tests").join(&folder),
                    timeout,
                    sandbox,
                ),
                new_tests: passes(
                    script,
                    &code,
                    &scratch.join(&module).join("tests").join(&folder),
                    timeout,
                    sandbox,
                ),
            });
        }
    }
    rows
}
