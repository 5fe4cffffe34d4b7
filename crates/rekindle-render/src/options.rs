//! What a render is asked to do: the models of each role, the build folder and scripts, the
//! bounds on fixing, and which functionalities to force.

use rekindle_llm::{Provider, Sampling};
use rekindle_workspace::files::Limits;
use rekindle_workspace::sandbox::{Mode, SandboxPolicy};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The part a model plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Code,
    Fix,
    Tests,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Code, Role::Fix, Role::Tests];

    pub fn name(self) -> &'static str {
        match self {
            Role::Code => "code",
            Role::Fix => "fix",
            Role::Tests => "tests",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A provider and the model name to ask it for.
pub struct RoleModel<'a> {
    pub provider: &'a dyn Provider,
    pub model: String,
    /// Where it is, for messages and the key (no secrets).
    pub label: String,
}

pub struct ModelSet<'a> {
    pub code: RoleModel<'a>,
    pub fix: RoleModel<'a>,
    pub tests: RoleModel<'a>,
    /// Used for fixes once this many fix attempts of one functionality have failed.
    pub escalate: Option<(RoleModel<'a>, u32)>,
}

impl ModelSet<'_> {
    pub(crate) fn get(&self, role: Role, failures: u32) -> &RoleModel<'_> {
        if role == Role::Fix {
            if let Some((m, after)) = &self.escalate {
                if failures >= *after {
                    return m;
                }
            }
        }
        match role {
            Role::Code => &self.code,
            Role::Fix => &self.fix,
            Role::Tests => &self.tests,
        }
    }

    /// The model settings that go into every render key.
    pub fn settings(&self, sampling: &Sampling) -> serde_json::Value {
        fn one<'x>(m: &'x RoleModel<'_>) -> (rekindle_llm::ProviderKind, &'x str) {
            (m.provider.kind(), m.model.as_str())
        }
        rekindle_plan::keys::model_settings(
            [one(&self.code), one(&self.fix), one(&self.tests)],
            self.escalate.as_ref().map(|(m, n)| (one(m), *n)),
            sampling,
        )
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub build_folder: PathBuf,
    /// Files the first module's code starts from (plain2code's `base-folder`), committed as its
    /// base; the first functionality's render key covers them through the base tree.
    pub base_folder: Option<PathBuf>,
    /// Copy the last module's code here after a successful render (`copy-build`).
    pub copy_to: Option<PathBuf>,
    /// Copy the last module's conformance tests here after a successful render
    /// (`copy-conformance-tests`).
    pub copy_tests_to: Option<PathBuf>,
    pub unittests_script: Option<PathBuf>,
    pub conformance_tests_script: Option<PathBuf>,
    pub prepare_environment_script: Option<PathBuf>,
    pub script_timeout: Duration,
    /// Re-render from this functionality of the entry module on (1-based).
    pub from: Option<usize>,
    /// Render only these functionalities of the entry module (inclusive).
    pub range: Option<(usize, usize)>,
    /// Overwrite hand edits, after saving them as patches under `patches_dir`.
    pub force: bool,
    /// Render every functionality of every module again, changed or not (plain2code's
    /// `--force-render`); replies still come from the cache when the requests are the same.
    pub force_render: bool,
    pub patches_dir: PathBuf,
    /// Fix calls after a failed unit or conformance run, per phase and attempt (removals and
    /// drops that need no call do not count). One by default: on the quality benchmark's runs
    /// kept from session 11 (HumanEval's first 40 and the multi set) a first fix made the tests
    /// pass in 7 of 65 tries, a second or third in none of 74, while a fresh restart did in 5
    /// of 22.
    pub fix_attempts: u32,
    /// Fresh restarts of a functionality after its first attempt failed, at most (the call
    /// budget usually ends them first): the first greedy and told why, the later ones sampled,
    /// none with a fix call (see `Renderer::functionality`). Five by default.
    pub restarts: u32,
    /// Model calls one functionality may make, cache hits included (so a re-render takes the
    /// same path). A restart starts only while two are left (its implementation and its
    /// conformance tests); a fix is asked only while one is. Seven by default: on the
    /// benchmark runs kept from earlier sessions (the 1.5B and 0.5B, HumanEval and the multi
    /// set), 247 of the 305 functionalities that did not fail took 2 calls and 24 took 3, while
    /// 12 passed in 8 to 11 calls and 53 failed after 8 or more.
    pub call_budget: u32,
    pub sampling: Sampling,
    /// Bytes of current code shown in prompts.
    pub prompt_budget: usize,
    /// Bytes of script output shown in prompts.
    pub output_budget: usize,
    /// A hash of the spec files, recorded in commits.
    pub spec_hash: String,
    pub limits: Limits,
    /// What every script may do (the sandbox).
    pub sandbox: SandboxPolicy,
    /// The spec's folder (absolute), written `<project>` in script output shown to the model.
    pub project_dir: Option<PathBuf>,
    /// `render --locked`: what the lock pins. Every functionality that is not reused is
    /// restored from the tree store instead of rendered.
    pub locked: Option<Locked>,
}

/// What `render --locked` restores functionalities from.
#[derive(Clone, Debug)]
pub struct Locked {
    pub pins: Vec<LockedPin>,
    /// The tree store (`.rekindle/trees.git`).
    pub store: PathBuf,
}

/// One functionality as rekindle.lock pins it.
#[derive(Clone, Debug)]
pub struct LockedPin {
    pub module: String,
    pub id: usize,
    pub render_key: String,
    pub tree: String,
    pub tests_tree: String,
}

impl Options {
    pub fn new(build_folder: PathBuf) -> Options {
        Options {
            patches_dir: rekindle_workspace::layout::BuildLayout::new(&build_folder).patches(),
            build_folder,
            copy_to: None,
            copy_tests_to: None,
            base_folder: None,
            unittests_script: None,
            conformance_tests_script: None,
            prepare_environment_script: None,
            script_timeout: Duration::from_secs(120),
            from: None,
            range: None,
            force: false,
            force_render: false,
            fix_attempts: 1,
            restarts: 5,
            call_budget: 7,
            sampling: Sampling::default(),
            prompt_budget: 48 * 1024,
            output_budget: 6 * 1024,
            spec_hash: String::new(),
            limits: Limits::default(),
            sandbox: SandboxPolicy::default(),
            project_dir: None,
            locked: None,
        }
    }

    /// What the scripts are and may do, for render keys: (role, BLAKE3 of the script), and the
    /// sandbox policy when it is not the default one (whether the sandbox is on for this run is
    /// not part of it: `--no-sandbox` changes how tests run, not what they test).
    pub fn script_hashes(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = [
            ("unit", &self.unittests_script),
            ("conformance", &self.conformance_tests_script),
            ("prepare", &self.prepare_environment_script),
        ]
        .iter()
        .filter_map(|(n, p)| p.as_ref().map(|p| (n.to_string(), hash_file(p))))
        .collect();
        let keyed = SandboxPolicy {
            mode: Mode::Enabled,
            ..self.sandbox.clone()
        };
        if keyed != SandboxPolicy::default() {
            let json = rekindle_llm::cache::canonical_json(&keyed);
            out.push((
                "sandbox".into(),
                blake3::hash(json.as_bytes()).to_hex().to_string(),
            ));
        }
        out
    }
}

fn hash_file(p: &std::path::Path) -> String {
    std::fs::read(p)
        .map(|b| blake3::hash(&b).to_hex().to_string())
        .unwrap_or_else(|_| "missing".into())
}
