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

/// What one set of conformance tests said about the rebuilt code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The functionality has no such tests.
    None,
    Passed,
    /// Failed or timed out.
    Failed,
    /// The script could not run them (it could not be started, or it said the environment
    /// cannot run tests): nothing was proven, so the burn fails.
    CouldNotRun,
}

#[derive(Debug, Serialize)]
pub struct BurnRow {
    pub module: String,
    pub id: usize,
    /// The original build's conformance tests against the rebuilt code.
    pub original_tests: Verdict,
    /// The rebuild's own conformance tests.
    pub new_tests: Verdict,
    /// Why a set could not run, from the script or the error starting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not_run: Option<String>,
}

impl BurnRow {
    /// Every set of conformance tests that exists ran and passed.
    pub fn passed(&self) -> bool {
        [self.original_tests, self.new_tests]
            .iter()
            .all(|v| matches!(v, Verdict::None | Verdict::Passed))
    }

    /// A set of conformance tests could not run.
    pub fn could_not_run(&self) -> bool {
        [self.original_tests, self.new_tests].contains(&Verdict::CouldNotRun)
    }
}

/// How the conformance script is run: with which timeout, in which sandbox.
pub struct Runner<'a> {
    pub script: &'a Path,
    pub timeout: Duration,
    pub sandbox: &'a SandboxPolicy,
}

fn verdict(r: &Runner<'_>, code: &Path, tests: &Path) -> (Verdict, Option<String>) {
    if !tests.is_dir() {
        return (Verdict::None, None);
    }
    match scripts::run(r.script, &[code, tests], code, r.timeout, r.sandbox) {
        Ok(run) => match run.outcome {
            Outcome::Passed => (Verdict::Passed, None),
            Outcome::Failed | Outcome::TimedOut => (Verdict::Failed, None),
            Outcome::Environment => (
                Verdict::CouldNotRun,
                Some(format!(
                    "{} says the environment cannot run tests (exit 69): {}",
                    r.script.display(),
                    last_line(&run.output)
                )),
            ),
        },
        Err(e) => (
            Verdict::CouldNotRun,
            Some(format!("{} could not be run: {e}", r.script.display())),
        ),
    }
}

fn last_line(output: &str) -> &str {
    output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
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
            let (original_tests, why_a) = verdict(runner, &new.code, &old.conformance_tests(k));
            let (new_tests, why_b) = verdict(runner, &new.code, &new.conformance_tests(k));
            rows.push(BurnRow {
                module: module.clone(),
                id: k,
                original_tests,
                new_tests,
                why_not_run: why_a.or(why_b),
            });
        }
    }
    rows
}
