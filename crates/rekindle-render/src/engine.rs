//! The loop itself. See the crate documentation for the shape; this file holds the order of
//! phases, the bounds on fixing, and how state is kept in git so any interruption is safe.
//!
//! Layout of the build folder, per module:
//!
//! ```text
//! <build-folder>/<module>/code             git repository: the generated code
//! <build-folder>/<module>/tests/fNN        conformance tests of functionality NN (own git repository at tests/)
//! <build-folder>/<module>/.rendering       present while a functionality is being rendered
//! ```
//!
//! Every finished functionality is one commit in `code` (and one in `tests`) with trailers
//! `Rekindle-Module`, `Rekindle-Functionality`, `Rekindle-Render-Key`, `Rekindle-Spec-Hash`,
//! `Rekindle-Render-Id` and `Rekindle-Tests-Commit`. Commit 0 of each module is its base: the
//! previous module's code, or nothing.

use crate::events::{Event, Observer, Summary};
use crate::keys::{self, KeyInput};
use crate::prompts::{self, Context, Resource};
use rekindle_llm::file_blocks::{self, FileBlock};
use rekindle_llm::session::Session;
use rekindle_llm::{Constraint, LlmError, Message, Provider, Request, Sampling, TokenSink};
use rekindle_spec::concepts;
use rekindle_spec::project::{Project, RenderModule};
use rekindle_workspace::files::{self, Change, FileText, Limits};
use rekindle_workspace::git::{Commit, GitError, Repo};
use rekindle_workspace::sandbox::SandboxPolicy;
use rekindle_workspace::scripts::{self, Outcome};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The part a model plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    fn get(&self, role: Role, failures: u32) -> &RoleModel<'_> {
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

    fn fingerprint(&self, sampling: &Sampling) -> serde_json::Value {
        let one =
            |m: &RoleModel<'_>| serde_json::json!({"kind": m.provider.kind(), "model": m.model});
        serde_json::json!({
            "code": one(&self.code), "fix": one(&self.fix), "tests": one(&self.tests),
            "escalate": self.escalate.as_ref().map(|(m, n)| serde_json::json!({"model": one(m), "after": n})),
            "sampling": sampling,
        })
    }
}

/// The model settings that go into every render key: each role's provider kind and model, the
/// escalation step, and the sampling parameters.
pub fn fingerprint(
    roles: [(rekindle_llm::ProviderKind, String); 3],
    escalate: Option<((rekindle_llm::ProviderKind, String), u32)>,
    sampling: &Sampling,
) -> serde_json::Value {
    let one = |(kind, model): &(rekindle_llm::ProviderKind, String)| serde_json::json!({"kind": kind, "model": model});
    serde_json::json!({
        "code": one(&roles[0]), "fix": one(&roles[1]), "tests": one(&roles[2]),
        "escalate": escalate.as_ref().map(|(m, n)| serde_json::json!({"model": one(m), "after": n})),
        "sampling": sampling,
    })
}

#[derive(Clone, Debug)]
pub struct Options {
    pub build_folder: PathBuf,
    /// Copy the last module's code here after a successful render (`copy-build`).
    pub copy_to: Option<PathBuf>,
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
    pub patches_dir: PathBuf,
    /// Fix attempts after a failed unit or conformance run, per phase.
    pub fix_attempts: u32,
    /// Fresh restarts of a functionality after its fixes ran out.
    pub restarts: u32,
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
}

impl Options {
    pub fn new(build_folder: PathBuf) -> Options {
        Options {
            patches_dir: build_folder.join(".rekindle-patches"),
            build_folder,
            copy_to: None,
            unittests_script: None,
            conformance_tests_script: None,
            prepare_environment_script: None,
            script_timeout: Duration::from_secs(120),
            from: None,
            range: None,
            force: false,
            fix_attempts: 3,
            restarts: 1,
            sampling: Sampling::default(),
            prompt_budget: 48 * 1024,
            output_budget: 6 * 1024,
            spec_hash: String::new(),
            limits: Limits::default(),
            sandbox: SandboxPolicy::default(),
        }
    }
}

#[derive(Debug)]
pub enum RenderError {
    /// A functionality could not be made to pass its tests.
    Failed {
        module: String,
        id: usize,
        reason: String,
        output: String,
    },
    /// A test script exited 69: the environment cannot run tests.
    Environment {
        module: String,
        id: usize,
        script: String,
        output: String,
    },
    /// Generated files were changed by hand; rendering would overwrite them.
    HandEdits {
        module: String,
        folder: PathBuf,
        paths: Vec<String>,
    },
    /// The model's reply could not be used, even after asking again.
    Reply {
        module: String,
        id: usize,
        detail: String,
    },
    Model(LlmError),
    Git(GitError),
    Io(String),
    Usage(String),
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RenderError::Failed { module, id, reason, .. } => {
                write!(f, "functionality {id} of module {module} failed: {reason}")
            }
            RenderError::Environment { module, id, script, .. } => write!(
                f,
                "{script} exited 69 (the environment cannot run the tests) while rendering functionality {id} of module {module}"
            ),
            RenderError::HandEdits { module, folder, paths } => write!(
                f,
                "generated files of module {module} were changed by hand ({}): {}; change the spec instead, or render with --force to save the edits as a patch and overwrite them",
                folder.display(),
                paths.join(", ")
            ),
            RenderError::Reply { module, id, detail } => {
                write!(f, "the model's reply for functionality {id} of module {module} could not be used: {detail}")
            }
            RenderError::Model(e) => write!(f, "{e}"),
            RenderError::Git(e) => write!(f, "{e}"),
            RenderError::Io(e) => write!(f, "{e}"),
            RenderError::Usage(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RenderError {}

impl From<GitError> for RenderError {
    fn from(e: GitError) -> RenderError {
        RenderError::Git(e)
    }
}

impl From<LlmError> for RenderError {
    fn from(e: LlmError) -> RenderError {
        RenderError::Model(e)
    }
}

fn io(e: impl std::fmt::Display) -> RenderError {
    RenderError::Io(e.to_string())
}

/// One functionality's state as read back from git.
#[derive(Clone, Debug)]
struct Done {
    commit: Commit,
    key: String,
    parts: Option<keys::KeyParts>,
    tests_commit: Option<String>,
}

struct Dirs {
    code: PathBuf,
    tests: PathBuf,
    marker: PathBuf,
}

fn dirs(build: &Path, module: &str) -> Dirs {
    let base = build.join(module);
    Dirs {
        code: base.join("code"),
        tests: base.join("tests"),
        marker: base.join(".rendering"),
    }
}

fn stamp() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{:04x}", t.as_secs(), fastrand::u16(..))
}

fn hash_file(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| blake3::hash(&b).to_hex().to_string())
        .unwrap_or_else(|_| "missing".into())
}

/// Holds the build folder for one render at a time.
struct BuildLock {
    _file: std::fs::File,
}

fn lock(build: &Path) -> Result<BuildLock, RenderError> {
    use std::os::unix::io::AsRawFd;
    std::fs::create_dir_all(build).map_err(io)?;
    let path = build.join(".rekindle.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a file descriptor we own; released when the file is closed.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        return Err(RenderError::Usage(format!(
            "another rekindle render is using {}; wait for it to finish",
            build.display()
        )));
    }
    Ok(BuildLock { _file: file })
}

struct Sink<'a> {
    obs: &'a mut dyn Observer,
}

impl TokenSink for Sink<'_> {
    fn token(&mut self, text: &str) {
        self.obs.token(text);
    }
}

/// Renders what is stale in `project`.
pub async fn render(
    project: &Project,
    opts: &Options,
    models: &ModelSet<'_>,
    session: &Session,
    obs: &mut dyn Observer,
) -> Result<Summary, RenderError> {
    if project.has_errors() {
        return Err(RenderError::Usage(
            "the spec has errors; run `rekindle check` to see them".into(),
        ));
    }
    let started = Instant::now();
    // Scripts get absolute folders: they run from the code folder, not from here.
    let mut opts = opts.clone();
    opts.build_folder = std::path::absolute(&opts.build_folder).map_err(io)?;
    if let Some(c) = &opts.copy_to {
        opts.copy_to = Some(std::path::absolute(c).map_err(io)?);
    }
    let opts = &opts;
    let _lock = lock(&opts.build_folder)?;
    let render_id = stamp();
    let total: usize = project
        .render_order
        .iter()
        .map(|m| m.sections.functional_specs.len())
        .sum();
    obs.event(&Event::Start {
        render_id: render_id.clone(),
        modules: project
            .render_order
            .iter()
            .map(|m| project.module(m.module).name.clone())
            .collect(),
        functionalities: total,
    });
    let mut r = Renderer {
        project,
        opts,
        models,
        session,
        obs,
        render_id,
        fingerprint: models.fingerprint(&opts.sampling),
        summary: Summary::default(),
    };
    let result = r.run().await;
    let t = session.totals();
    let mut summary = std::mem::take(&mut r.summary);
    summary.model_calls = t.model_calls;
    summary.cache_hits = t.cache_hits;
    summary.tokens_in = t.tokens_in;
    summary.tokens_out = t.tokens_out;
    summary.cost = t.cost;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.ok = result.is_ok();
    for w in session.take_warnings() {
        r.obs.event(&Event::Warning { message: w });
    }
    if let Err(e) = &result {
        let (module, id) = match e {
            RenderError::Failed { module, id, .. }
            | RenderError::Environment { module, id, .. }
            | RenderError::Reply { module, id, .. } => (module.clone(), *id),
            _ => (String::new(), 0),
        };
        r.obs.event(&Event::Failed {
            module,
            id,
            reason: e.to_string(),
        });
    }
    r.obs.event(&Event::Summary(summary.clone()));
    result.map(|()| summary)
}

struct Renderer<'a, 'm> {
    project: &'a Project,
    opts: &'a Options,
    models: &'a ModelSet<'m>,
    session: &'a Session,
    obs: &'a mut dyn Observer,
    render_id: String,
    fingerprint: serde_json::Value,
    summary: Summary,
}

/// Where a module starts: the previous module's final code folder, if any.
struct Base {
    from: Option<PathBuf>,
    tree_key: String,
}

impl Renderer<'_, '_> {
    async fn run(&mut self) -> Result<(), RenderError> {
        let order = &self.project.render_order;
        let mut base = Base {
            from: None,
            tree_key: "empty".into(),
        };
        for (i, rm) in order.iter().enumerate() {
            let entry = i + 1 == order.len();
            let (code_dir, final_tree) = self.module(rm, &base, entry).await?;
            base = Base {
                from: Some(code_dir),
                tree_key: final_tree,
            };
        }
        if let (Some(dest), Some(from)) = (&self.opts.copy_to, &base.from) {
            files::replace_contents(from, dest)
                .map_err(|e| io(format!("cannot copy the build to {}: {e}", dest.display())))?;
        }
        Ok(())
    }

    fn name(&self, rm: &RenderModule) -> String {
        self.project.module(rm.module).name.clone()
    }

    /// Brings a module's repositories to a clean state: rekindle's own unfinished work is thrown
    /// away; hand edits stop the render unless `--force`, which saves them first.
    fn recover(
        &mut self,
        module: &str,
        d: &Dirs,
        code: &Repo,
        tests: &Repo,
    ) -> Result<(), RenderError> {
        if d.marker.exists() {
            let _ = std::fs::remove_file(code.dir.join(".git/index.lock"));
            let _ = std::fs::remove_file(tests.dir.join(".git/index.lock"));
            code.reset_hard(None)?;
            tests.reset_hard(None)?;
            std::fs::remove_file(&d.marker).map_err(io)?;
            self.obs.event(&Event::Warning {
                message: format!("module {module}: an interrupted render was found; its unfinished work was discarded"),
            });
            return Ok(());
        }
        for repo in [code, tests] {
            if repo.head()?.is_none() || !repo.is_dirty()? {
                continue;
            }
            let paths: Vec<String> = repo.changes()?.into_iter().map(|(_, p)| p).collect();
            if !self.opts.force {
                return Err(RenderError::HandEdits {
                    module: module.to_string(),
                    folder: repo.dir.clone(),
                    paths,
                });
            }
            let patch = repo.diff_all()?;
            std::fs::create_dir_all(&self.opts.patches_dir).map_err(io)?;
            let file = self.opts.patches_dir.join(format!(
                "{module}-{}-{}.patch",
                repo.dir
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                stamp()
            ));
            std::fs::write(&file, patch).map_err(io)?;
            self.obs.event(&Event::Warning {
                message: format!(
                    "module {module}: hand edits to {} saved as {} before rendering",
                    paths.join(", "),
                    file.display()
                ),
            });
            repo.reset_hard(None)?;
        }
        Ok(())
    }

    fn history(
        &self,
        module: &str,
        code: &Repo,
    ) -> Result<(Option<Commit>, HashMap<usize, Done>), RenderError> {
        read_history(module, code)
    }

    fn trailers(
        &self,
        module: &str,
        id: usize,
        parts: &keys::KeyParts,
        tests_commit: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let mut t = vec![
            ("Rekindle-Module", module.to_string()),
            ("Rekindle-Functionality", id.to_string()),
            ("Rekindle-Render-Key", parts.key()),
            ("Rekindle-Key-Parts", parts.trailer()),
            ("Rekindle-Spec-Hash", self.opts.spec_hash.clone()),
            ("Rekindle-Render-Id", self.render_id.clone()),
        ];
        if let Some(tc) = tests_commit {
            t.push(("Rekindle-Tests-Commit", tc.to_string()));
        }
        t
    }

    /// Makes sure the module's base commit holds the previous module's final code.
    fn ensure_base(
        &mut self,
        module: &str,
        code: &Repo,
        tests: &Repo,
        base: &Base,
        existing: Option<&Commit>,
    ) -> Result<(Commit, String), RenderError> {
        if let Some(c) = existing {
            if c.trailer("Rekindle-Base") == Some(base.tree_key.as_str()) {
                let tests_base = c.trailer("Rekindle-Tests-Commit").unwrap_or("").to_string();
                return Ok((c.clone(), tests_base));
            }
        }
        // A new base: the previous module's code (or nothing), as a fresh root commit.
        match &base.from {
            Some(from) => files::replace_contents(from, &code.dir).map_err(io)?,
            None => files::clear(&code.dir).map_err(io)?,
        }
        files::clear(&tests.dir).map_err(io)?;
        let tests_tree = tests.worktree_tree()?;
        let tests_base = tests.commit_tree(&tests_tree, None, &format!("rekindle: base of module {module}\n\nRekindle-Module: {module}\nRekindle-Functionality: 0\n"))?;
        tests.move_head(&tests_base)?;
        let tree = code.worktree_tree()?;
        let msg = format!(
            "rekindle: base of module {module}\n\nRekindle-Module: {module}\nRekindle-Functionality: 0\nRekindle-Base: {}\nRekindle-Tests-Commit: {tests_base}\n",
            base.tree_key
        );
        let id = code.commit_tree(&tree, None, &msg)?;
        code.move_head(&id)?;
        let c = code
            .log()?
            .pop()
            .ok_or_else(|| io("the base commit vanished"))?;
        Ok((c, tests_base))
    }

    async fn module(
        &mut self,
        rm: &RenderModule,
        base: &Base,
        entry: bool,
    ) -> Result<(PathBuf, String), RenderError> {
        let module = self.name(rm);
        let n = rm.sections.functional_specs.len();
        self.obs.event(&Event::Module {
            module: module.clone(),
            functionalities: n,
        });
        let d = dirs(&self.opts.build_folder, &module);
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        code.init()?;
        tests.init()?;
        self.recover(&module, &d, &code, &tests)?;
        let (base_commit, done) = self.history(&module, &code)?;
        let (base_commit, tests_base) =
            self.ensure_base(&module, &code, &tests, base, base_commit.as_ref())?;
        if let (Some(from), true) = (self.opts.from, entry) {
            if from > n + 1 || from == 0 {
                return Err(RenderError::Usage(format!(
                    "--from {from}: module {module} has functionalities 1 to {n}"
                )));
            }
        }
        if let (Some((a, b)), true) = (self.opts.range, entry) {
            if a == 0 || a > b || b > n {
                return Err(RenderError::Usage(format!(
                    "--range {a}..{b}: module {module} has functionalities 1 to {n}"
                )));
            }
        }
        let mut prev_commit = base_commit.id.clone();
        let mut prev_tree = base_commit.tree.clone();
        let mut prev_tests = tests_base;
        let defs: Vec<String> = concepts::sorted_definitions(&self.project.bodies, &rm.sections)
            .iter()
            .map(|i| i.text.clone())
            .collect();
        for k in 1..=n {
            let f = &rm.sections.functional_specs[k - 1];
            let parts = self.key(rm, &module, k, &defs, &prev_tree);
            let key = parts.key();
            let forced = entry
                && (self.opts.from.is_some_and(|from| k >= from)
                    || self.opts.range.is_some_and(|(a, b)| k >= a && k <= b));
            if let Some(old) = done.get(&k).filter(|o| o.key == key && !forced) {
                // Reuse; replay the commit onto a re-rendered parent when needed.
                let (c, t) = if old.commit.parent.as_deref() == Some(prev_commit.as_str()) {
                    (
                        old.commit.id.clone(),
                        old.tests_commit.clone().unwrap_or_default(),
                    )
                } else {
                    let t = match &old.tests_commit {
                        Some(tc) => {
                            let tree = tests.tree_of(tc)?;
                            tests.commit_tree(&tree, Some(&prev_tests), &tests.message(tc)?)?
                        }
                        None => prev_tests.clone(),
                    };
                    let trailers = self.trailers(&module, k, &parts, Some(&t));
                    let msg = message(&module, k, &trailers);
                    (
                        code.commit_tree(&old.commit.tree, Some(&prev_commit), &msg)?,
                        t,
                    )
                };
                self.summary.reused += 1;
                self.obs.event(&Event::Functionality {
                    module: module.clone(),
                    id: k,
                    of: n,
                    status: "reused",
                    reason: None,
                });
                prev_commit = c;
                prev_tree = old.commit.tree.clone();
                prev_tests = t;
                continue;
            }
            if entry {
                if let Some((_, b)) = self.opts.range {
                    if k > b {
                        break;
                    }
                }
            }
            let reason = match done.get(&k) {
                None => "not rendered yet".to_string(),
                Some(_) if forced => "asked for (--from/--range)".to_string(),
                Some(old) => old
                    .parts
                    .as_ref()
                    .map(|p| parts.explain(p).join("; "))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "its render key changed".to_string()),
            };
            self.obs.event(&Event::Functionality {
                module: module.clone(),
                id: k,
                of: n,
                status: "rendering",
                reason: Some(reason),
            });
            // Start from the state the previous functionality left.
            code.move_head(&prev_commit)?;
            if !prev_tests.is_empty() {
                tests.move_head(&prev_tests)?;
            }
            std::fs::write(&d.marker, &self.render_id).map_err(io)?;
            let cx = self.context(rm, &defs, k);
            let result = self.functionality(&module, k, &cx, &d).await;
            if let Err(e) = result {
                // Leave the repositories as the last finished functionality left them.
                code.reset_hard(None)?;
                tests.reset_hard(None)?;
                let _ = std::fs::remove_file(&d.marker);
                return Err(e);
            }
            let t_trailers = self.trailers(&module, k, &parts, None);
            let tests_commit = tests.commit_all(
                &format!("rekindle: conformance tests of functionality {k} of module {module}"),
                &t_trailers,
            )?;
            let trailers = self.trailers(&module, k, &parts, Some(&tests_commit));
            let changed: Vec<String> = code.changes()?.into_iter().map(|(_, p)| p).collect();
            let subject = format!(
                "rekindle: functionality {k} of module {module}\n\n{}",
                first_line(&f.text)
            );
            let commit = code.commit_all(&subject, &trailers)?;
            std::fs::remove_file(&d.marker).map_err(io)?;
            self.summary.rendered += 1;
            let pos = rekindle_spec::diag::position(&self.project.sources, f.span);
            let files = changed
                .into_iter()
                .map(|path| {
                    let full = d.code.join(&path);
                    let blake3 = std::fs::read(&full)
                        .ok()
                        .map(|b| blake3::hash(&b).to_hex().to_string());
                    crate::events::FileHash { path, blake3 }
                })
                .collect();
            self.obs.event(&Event::Committed {
                module: module.clone(),
                id: k,
                commit: commit.clone(),
                tests_commit: tests_commit.clone(),
                render_key: key.clone(),
                text: first_line(&f.text),
                spec_file: pos.file,
                spec_lines: [pos.line, pos.end_line],
                files,
            });
            prev_tree = code.tree_of(&commit)?;
            prev_commit = commit;
            prev_tests = tests_commit;
        }
        // The branch ends at the last functionality (the spec may have lost some).
        if code.head()?.as_deref() != Some(prev_commit.as_str()) {
            code.move_head(&prev_commit)?;
        }
        if !prev_tests.is_empty() && tests.head()?.as_deref() != Some(prev_tests.as_str()) {
            tests.move_head(&prev_tests)?;
        }
        Ok((d.code, prev_tree))
    }

    fn keyer(&self) -> Keyer<'_> {
        Keyer {
            project: self.project,
            opts: self.opts,
            fingerprint: &self.fingerprint,
        }
    }

    fn resources(&self, rm: &RenderModule, k: usize) -> Vec<(Resource, String)> {
        self.keyer().resources(rm, k)
    }

    fn key(
        &self,
        rm: &RenderModule,
        module: &str,
        k: usize,
        defs: &[String],
        parent_tree: &str,
    ) -> keys::KeyParts {
        self.keyer().key(rm, module, k, defs, parent_tree)
    }

    fn context(&self, rm: &RenderModule, defs: &[String], k: usize) -> Context {
        let s = &rm.sections;
        let f = &s.functional_specs[k - 1];
        Context {
            definitions: defs.to_vec(),
            implementation_reqs: s
                .implementation_reqs
                .iter()
                .map(|i| i.text.clone())
                .collect(),
            test_reqs: s.test_reqs.iter().map(|i| i.text.clone()).collect(),
            resources: self.resources(rm, k).into_iter().map(|(r, _)| r).collect(),
            previous: s.functional_specs[..k - 1]
                .iter()
                .map(|i| i.text.clone())
                .collect(),
            current: f.text.clone(),
            acceptance_tests: f.acceptance_tests.iter().map(|t| t.text.clone()).collect(),
        }
    }

    fn phase(&mut self, module: &str, id: usize, phase: &'static str, attempt: u32) {
        self.obs.event(&Event::Phase {
            module: module.to_string(),
            id,
            phase,
            attempt,
        });
    }

    fn script(
        &mut self,
        kind: &'static str,
        script: &Path,
        args: &[&Path],
        cwd: &Path,
    ) -> Result<scripts::Run, RenderError> {
        let run = scripts::run(
            script,
            args,
            cwd,
            self.opts.script_timeout,
            &self.opts.sandbox,
        )
        .map_err(io)?;
        self.obs.event(&Event::Script {
            kind,
            outcome: run.outcome,
            exit_code: run.exit_code,
            seconds: run.duration.as_secs_f64(),
        });
        Ok(run)
    }

    /// Asks `role`'s model; returns the reply's text and its file blocks. A reply that is not
    /// file blocks, or names a path outside the folder, is asked for once more.
    async fn ask(
        &mut self,
        module: &str,
        id: usize,
        role: Role,
        failures: u32,
        messages: Vec<Message>,
        root: &Path,
    ) -> Result<(String, Vec<FileBlock>), RenderError> {
        let m = self.models.get(role, failures);
        let mut req = Request::new(m.model.clone(), messages);
        req.sampling = self.opts.sampling.clone();
        req.constraint = Some(Constraint::FileBlocks);
        req.template_version = prompts::template_version().to_string();
        for attempt in 0..2 {
            let outcome = {
                let mut sink = Sink {
                    obs: &mut *self.obs,
                };
                self.session.call(m.provider, &req, &mut sink).await?
            };
            let r = &outcome.record;
            self.obs.event(&Event::ModelCall {
                role: role.name(),
                key: r.key.clone(),
                provider: r.provider.clone(),
                model: r.model.clone(),
                cache_hit: r.cache_hit,
                tokens_in: r.usage.input_tokens,
                tokens_out: r.usage.output_tokens,
                cost: r.cost,
                seconds: r.duration_ms as f64 / 1000.0,
            });
            let text = outcome.response.text;
            let problem = match file_blocks::parse(&text) {
                Ok(blocks) => match blocks
                    .iter()
                    .find_map(|b| files::check_path(root, b.path()).err())
                {
                    None => return Ok((text, blocks)),
                    Some(refused) => {
                        format!("{refused}; every path must be relative to the project folder")
                    }
                },
                Err(e) => e.to_string(),
            };
            if attempt == 1 {
                return Err(RenderError::Reply {
                    module: module.to_string(),
                    id,
                    detail: problem,
                });
            }
            req.messages.push(Message::assistant(text));
            req.messages
                .push(Message::user(prompts::reformat(&problem)));
        }
        unreachable!("the loop returns on its second pass")
    }

    fn apply(
        &self,
        module: &str,
        id: usize,
        root: &Path,
        blocks: &[FileBlock],
    ) -> Result<Vec<String>, RenderError> {
        let changes: Vec<Change> = blocks
            .iter()
            .map(|b| match b {
                FileBlock::Write { path, content } => Change::Write {
                    path: path.clone(),
                    content: content.clone(),
                },
                FileBlock::Delete { path } => Change::Delete { path: path.clone() },
            })
            .collect();
        files::apply(root, &changes, &self.opts.limits).map_err(|r| RenderError::Reply {
            module: module.to_string(),
            id,
            detail: r.to_string(),
        })
    }

    fn snapshot(&self, root: &Path) -> (Vec<FileText>, Vec<String>) {
        files::snapshot(root, self.opts.prompt_budget)
    }

    /// One functionality, with its fixes and one fresh restart.
    async fn functionality(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &Dirs,
    ) -> Result<(), RenderError> {
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        let mut last: Option<(String, String)> = None;
        for restart in 0..=self.opts.restarts {
            if restart > 0 {
                code.reset_hard(None)?;
                tests.reset_hard(None)?;
            }
            let earlier = last.as_ref().map(|(reason, _)| reason.clone());
            match self
                .attempt(module, k, cx, d, restart, earlier.as_deref())
                .await?
            {
                None => return Ok(()),
                Some(failure) => last = Some(failure),
            }
        }
        let (reason, output) = last.unwrap_or_default();
        Err(RenderError::Failed {
            module: module.to_string(),
            id: k,
            reason,
            output,
        })
    }

    /// One attempt: `Ok(None)` on success, `Ok(Some((reason, output)))` when tests still fail.
    async fn attempt(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &Dirs,
        restart: u32,
        earlier_failure: Option<&str>,
    ) -> Result<Option<(String, String)>, RenderError> {
        self.phase(module, k, "implement", restart + 1);
        let (files, left_out) = self.snapshot(&d.code);
        let msgs = prompts::implement(cx, &files, &left_out, earlier_failure);
        let (_, blocks) = self.ask(module, k, Role::Code, 0, msgs, &d.code).await?;
        self.apply(module, k, &d.code, &blocks)?;
        let mut failures = 0u32;
        if let Some(failure) = self.unit_tests(module, k, cx, d, &mut failures).await? {
            return Ok(Some(failure));
        }
        let Some(script) = self.opts.conformance_tests_script.clone() else {
            return Ok(None);
        };
        if let Some(prep) = self.opts.prepare_environment_script.clone() {
            self.phase(module, k, "prepare_environment", 1);
            let run = self.script("prepare", &prep, &[&d.code], &d.code)?;
            if run.outcome == Outcome::Environment {
                return Err(environment(module, k, &prep, run));
            }
        }
        let folder = d.tests.join(format!("f{k:02}"));
        std::fs::create_dir_all(&folder).map_err(io)?;
        self.phase(module, k, "conformance_tests", 1);
        let (files, _) = self.snapshot(&d.code);
        let runner = script
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (_, blocks) = self
            .ask(
                module,
                k,
                Role::Tests,
                0,
                prompts::conformance(cx, &files, &runner),
                &folder,
            )
            .await?;
        self.apply(module, k, &folder, &blocks)?;
        let folders: Vec<(usize, PathBuf)> = (1..=k)
            .rev()
            .map(|j| (j, d.tests.join(format!("f{j:02}"))))
            .collect();
        // This functionality's tests first, then every earlier one (regression).
        for (j, folder) in folders {
            if !folder.is_dir() {
                continue;
            }
            let regression = j != k;
            let mut attempt = 0;
            loop {
                let run = self.script("conformance", &script, &[&d.code, &folder], &d.code)?;
                match run.outcome {
                    Outcome::Passed => break,
                    Outcome::Environment => return Err(environment(module, k, &script, run)),
                    Outcome::Failed | Outcome::TimedOut => {}
                }
                if attempt >= self.opts.fix_attempts {
                    let what = if regression {
                        format!("the conformance tests of functionality {j} fail after it")
                    } else {
                        "its conformance tests still fail".to_string()
                    };
                    return Ok(Some((
                        format!("{what} after {attempt} fixes (exit {})", run.exit_code),
                        run.output,
                    )));
                }
                attempt += 1;
                failures += 1;
                self.phase(
                    module,
                    k,
                    if regression {
                        "fix_regression"
                    } else {
                        "fix_conformance"
                    },
                    attempt,
                );
                let (files, _) = self.snapshot(&d.code);
                let (test_files, _) = files::snapshot(&folder, self.opts.prompt_budget);
                let output = scripts::cut_for_prompt(&run.output, self.opts.output_budget);
                let msgs = prompts::fix_conformance(
                    cx,
                    &files,
                    &test_files,
                    run.exit_code,
                    &output,
                    regression,
                    attempt,
                );
                let (text, blocks) = self
                    .ask(module, k, Role::Fix, failures, msgs, &d.code)
                    .await?;
                let tests_wrong = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| {
                        l.to_ascii_lowercase()
                            .replace(' ', "")
                            .starts_with("wrong:test")
                    });
                if tests_wrong && !regression {
                    self.apply(module, k, &folder, &blocks)?;
                } else {
                    self.apply(module, k, &d.code, &blocks)?;
                    if let Some(failure) = self.unit_tests(module, k, cx, d, &mut failures).await? {
                        return Ok(Some(failure));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Runs the unit tests and fixes failures; `Some` when they still fail.
    async fn unit_tests(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &Dirs,
        failures: &mut u32,
    ) -> Result<Option<(String, String)>, RenderError> {
        let Some(script) = self.opts.unittests_script.clone() else {
            return Ok(None);
        };
        let mut attempt = 0;
        loop {
            self.phase(module, k, "unit_tests", attempt + 1);
            let run = self.script("unit", &script, &[&d.code], &d.code)?;
            match run.outcome {
                Outcome::Passed => return Ok(None),
                Outcome::Environment => return Err(environment(module, k, &script, run)),
                Outcome::Failed | Outcome::TimedOut => {}
            }
            if attempt >= self.opts.fix_attempts {
                return Ok(Some((
                    format!(
                        "its unit tests still fail after {attempt} fixes (exit {})",
                        run.exit_code
                    ),
                    run.output,
                )));
            }
            attempt += 1;
            *failures += 1;
            self.phase(module, k, "fix_unit_tests", attempt);
            let (files, _) = self.snapshot(&d.code);
            let output = scripts::cut_for_prompt(&run.output, self.opts.output_budget);
            let msgs = prompts::fix_unit(cx, &files, run.exit_code, &output, attempt);
            let (_, blocks) = self
                .ask(module, k, Role::Fix, *failures, msgs, &d.code)
                .await?;
            self.apply(module, k, &d.code, &blocks)?;
        }
    }
}

/// One functionality's state, for `rekindle status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FunctionalityState {
    pub id: usize,
    pub text: String,
    /// `up_to_date`, `stale`, `not_rendered`, or `reusable` (stale only if an earlier stale
    /// functionality's new code differs from its old code).
    pub state: &'static str,
    pub reasons: Vec<String>,
    pub spec_file: String,
    pub spec_lines: [usize; 2],
}

/// A generated file changed by hand.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Drift {
    pub folder: String,
    pub path: String,
    pub change: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ModuleState {
    pub module: String,
    pub functionalities: Vec<FunctionalityState>,
    pub drift: Vec<Drift>,
    /// A render was interrupted here; the next one discards its unfinished work.
    pub interrupted: bool,
}

/// What `render` would do, without doing anything: per module, which functionalities are up to
/// date, which stale and why, and which generated files were changed by hand.
pub fn status(
    project: &Project,
    opts: &Options,
    fingerprint: &serde_json::Value,
) -> Result<Vec<ModuleState>, RenderError> {
    let build = std::path::absolute(&opts.build_folder).map_err(io)?;
    let keyer = Keyer {
        project,
        opts,
        fingerprint,
    };
    let mut out = Vec::new();
    let mut base_key = Some("empty".to_string());
    let mut previous_module: Option<String> = None;
    for rm in &project.render_order {
        let module = project.module(rm.module).name.clone();
        let d = dirs(&build, &module);
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        let interrupted = d.marker.exists();
        let mut drift = Vec::new();
        if !interrupted {
            for (repo, folder) in [(&code, "code"), (&tests, "tests")] {
                if repo.exists() {
                    for (change, path) in repo.drift()? {
                        drift.push(Drift {
                            folder: repo.dir.display().to_string(),
                            path,
                            change,
                        });
                    }
                }
                let _ = folder;
            }
        }
        let (base, done) = if code.exists() {
            read_history(&module, &code)?
        } else {
            (None, HashMap::new())
        };
        let base_ok = base
            .as_ref()
            .zip(base_key.as_ref())
            .is_some_and(|(b, k)| b.trailer("Rekindle-Base") == Some(k.as_str()));
        let defs: Vec<String> = concepts::sorted_definitions(&project.bodies, &rm.sections)
            .iter()
            .map(|i| i.text.clone())
            .collect();
        let mut prev_tree = base.as_ref().filter(|_| base_ok).map(|b| b.tree.clone());
        let mut first_stale: Option<usize> = None;
        let mut functionalities = Vec::new();
        let mut last_tree = None;
        for (i, f) in rm.sections.functional_specs.iter().enumerate() {
            let k = i + 1;
            let pos = rekindle_spec::diag::position(&project.sources, f.span);
            let old = done.get(&k);
            let (state, reasons) = match (&prev_tree, old) {
                (_, None) => ("not_rendered", vec!["not rendered yet".to_string()]),
                (None, Some(_)) => (
                    "stale",
                    vec![match &previous_module {
                        Some(m) if !base_ok => format!("the module before it ({m}) changed"),
                        _ => "an earlier functionality changed".to_string(),
                    }],
                ),
                (Some(pt), Some(o)) => {
                    let parts = keyer.key(rm, &module, k, &defs, pt);
                    if parts.key() == o.key {
                        if first_stale.is_some() {
                            (
                                "reusable",
                                vec![format!(
                                    "reused if functionality {} produces the same code again",
                                    first_stale.unwrap_or(0)
                                )],
                            )
                        } else {
                            ("up_to_date", Vec::new())
                        }
                    } else {
                        let why = o
                            .parts
                            .as_ref()
                            .map(|p| parts.explain(p).into_iter().map(str::to_string).collect())
                            .unwrap_or_else(|| vec!["its render key changed".to_string()]);
                        ("stale", why)
                    }
                }
            };
            if state == "stale" && first_stale.is_none() {
                first_stale = Some(k);
            }
            // Follow the old chain: with early cutoff, later functionalities may still be reused.
            prev_tree = old.map(|o| o.commit.tree.clone());
            last_tree = prev_tree.clone();
            functionalities.push(FunctionalityState {
                id: k,
                text: first_line(&f.text),
                state,
                reasons,
                spec_file: pos.file,
                spec_lines: [pos.line, pos.end_line],
            });
        }
        let all_current = functionalities.iter().all(|f| f.state == "up_to_date");
        base_key = if all_current { last_tree } else { None };
        previous_module = Some(module.clone());
        out.push(ModuleState {
            module,
            functionalities,
            drift,
            interrupted,
        });
    }
    Ok(out)
}

/// Reads finished functionalities from the code repository's history, oldest first.
fn read_history(
    module: &str,
    code: &Repo,
) -> Result<(Option<Commit>, HashMap<usize, Done>), RenderError> {
    let mut base = None;
    let mut done = HashMap::new();
    for c in code.log()? {
        if c.trailer("Rekindle-Module") != Some(module) {
            continue;
        }
        let Some(id) = c
            .trailer("Rekindle-Functionality")
            .and_then(|v| v.parse::<usize>().ok())
        else {
            continue;
        };
        if id == 0 {
            base = Some(c);
            done.clear();
            continue;
        }
        let key = c.trailer("Rekindle-Render-Key").unwrap_or("").to_string();
        let tests_commit = c.trailer("Rekindle-Tests-Commit").map(str::to_string);
        let parts = c
            .trailer("Rekindle-Key-Parts")
            .and_then(keys::KeyParts::parse);
        done.insert(
            id,
            Done {
                commit: c,
                key,
                parts,
                tests_commit,
            },
        );
    }
    Ok((base, done))
}

/// A finished functionality as the build folder holds it (for the lock).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Built {
    pub module: String,
    pub id: usize,
    pub render_key: String,
    pub tree: String,
    pub tests_tree: String,
    pub commit: String,
}

/// Every finished functionality of the current build, in render order.
pub fn built(project: &Project, opts: &Options) -> Result<Vec<Built>, RenderError> {
    let build = std::path::absolute(&opts.build_folder).map_err(io)?;
    let mut out = Vec::new();
    for rm in &project.render_order {
        let module = project.module(rm.module).name.clone();
        let d = dirs(&build, &module);
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        if !code.exists() {
            continue;
        }
        let (_, done) = read_history(&module, &code)?;
        for k in 1..=rm.sections.functional_specs.len() {
            let Some(o) = done.get(&k) else { continue };
            let tests_tree = match &o.tests_commit {
                Some(c) => tests.tree_of(c)?,
                None => String::new(),
            };
            out.push(Built {
                module: module.clone(),
                id: k,
                render_key: o.key.clone(),
                tree: o.commit.tree.clone(),
                tests_tree,
                commit: o.commit.id.clone(),
            });
        }
    }
    Ok(out)
}

/// What render keys are computed from, without models or side effects (shared by rendering and
/// `status`).
struct Keyer<'a> {
    project: &'a Project,
    opts: &'a Options,
    fingerprint: &'a serde_json::Value,
}

impl Keyer<'_> {
    fn resources(&self, rm: &RenderModule, k: usize) -> Vec<(Resource, String)> {
        let s = &rm.sections;
        let f = &s.functional_specs[k - 1];
        let shared = s
            .definitions
            .iter()
            .chain(&s.implementation_reqs)
            .chain(&s.test_reqs);
        let own = std::iter::once(f).chain(f.acceptance_tests.iter());
        let mut out: Vec<(Resource, String)> = Vec::new();
        for item in shared.chain(own) {
            for l in &item.links {
                let from = &self.project.sources.get(l.from).path;
                let path = from.parent().unwrap_or(Path::new(".")).join(&l.target);
                if out.iter().any(|(r, _)| r.path == l.target) {
                    continue;
                }
                let content = std::fs::read_to_string(&path).unwrap_or_default();
                let hash = blake3::hash(content.as_bytes()).to_hex().to_string();
                out.push((
                    Resource {
                        name: l.text.clone(),
                        path: l.target.clone(),
                        content,
                    },
                    hash,
                ));
            }
        }
        out
    }

    fn key(
        &self,
        rm: &RenderModule,
        module: &str,
        k: usize,
        defs: &[String],
        parent_tree: &str,
    ) -> keys::KeyParts {
        let s = &rm.sections;
        let f = &s.functional_specs[k - 1];
        let norm = |v: &[std::sync::Arc<rekindle_spec::model::Item>]| {
            v.iter()
                .map(|i| keys::normalize(&i.text))
                .collect::<Vec<_>>()
        };
        let scripts = [
            ("unit", &self.opts.unittests_script),
            ("conformance", &self.opts.conformance_tests_script),
            ("prepare", &self.opts.prepare_environment_script),
        ]
        .iter()
        .filter_map(|(n, p)| p.as_ref().map(|p| (n.to_string(), hash_file(p))))
        .collect();
        keys::parts(&KeyInput {
            template_version: prompts::template_version(),
            models: self.fingerprint,
            module,
            definitions: defs.iter().map(|d| keys::normalize(d)).collect(),
            implementation_reqs: norm(&s.implementation_reqs),
            test_reqs: norm(&s.test_reqs),
            resources: self
                .resources(rm, k)
                .into_iter()
                .map(|(r, h)| (r.path, h))
                .collect(),
            current: keys::normalize(&f.text),
            acceptance_tests: norm(&f.acceptance_tests),
            scripts,
            parent_tree,
        })
    }
}

fn environment(module: &str, id: usize, script: &Path, run: scripts::Run) -> RenderError {
    RenderError::Environment {
        module: module.to_string(),
        id,
        script: script.display().to_string(),
        output: run.output,
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect()
}

fn message(module: &str, k: usize, trailers: &[(&str, String)]) -> String {
    let mut m = format!("rekindle: functionality {k} of module {module}\n\n");
    for (key, v) in trailers {
        m.push_str(&format!("{key}: {v}\n"));
    }
    m
}
