//! `rekindle render`: wires settings, providers, the cache and the observer to the render loop.

use crate::models::{self, ProviderArgs, Role};
use rekindle_render::{Event, Observer, RoleModel};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct RenderArgs {
    /// Re-render from this functionality of the entry module on.
    #[arg(long, value_name = "N")]
    pub from: Option<usize>,
    /// Render only these functionalities of the entry module, e.g. 2..4 (or 3 for one).
    #[arg(long, value_name = "A..B")]
    pub range: Option<String>,
    /// Answer only from the response cache; fail on the first request it does not hold.
    #[arg(long)]
    pub offline: bool,
    /// Replay rekindle.lock: answer only from the cache and check that every functionality comes
    /// out with the locked render key and trees.
    #[arg(long)]
    pub locked: bool,
    /// Overwrite generated files changed by hand, after saving the edits as patches.
    #[arg(long)]
    pub force: bool,
    /// Answer every question (such as a cost confirmation) with yes.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// The build folder (default: config.yaml's build-folder, else plain_modules beside the spec).
    #[arg(long, value_name = "DIR")]
    pub build_folder: Option<PathBuf>,
    /// Most tokens a model may write per reply.
    #[arg(long, value_name = "N", default_value = "2048")]
    pub max_tokens: u32,
    #[command(flatten)]
    pub provider: ProviderArgs,
}

pub fn parse_range(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--range takes A..B or N (functionality numbers), not `{s}`");
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

/// Prints events: JSON lines, or a readable log (with a live status line on a terminal).
pub struct Printer {
    pub json: bool,
    pub tty: bool,
    status: String,
    tokens: usize,
    started: std::time::Instant,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            tty: !json && std::io::stderr().is_terminal(),
            status: String::new(),
            tokens: 0,
            started: std::time::Instant::now(),
        }
    }

    fn line(&mut self, text: String) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
        if self.tty && !self.status.is_empty() {
            let _ = write!(err, "{}", self.status);
        }
        let _ = err.flush();
    }

    fn set_status(&mut self, s: String) {
        self.status = s;
        self.tokens = 0;
        self.started = std::time::Instant::now();
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", self.status);
            let _ = err.flush();
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, e: &Event) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", serde_json::to_string(e).unwrap_or_default());
            let _ = out.flush();
            return;
        }
        match e {
            Event::Start {
                modules,
                functionalities,
                ..
            } => self.line(format!(
                "rendering {} module{} ({} functionalit{})",
                modules.len(),
                if modules.len() == 1 { "" } else { "s" },
                functionalities,
                if *functionalities == 1 { "y" } else { "ies" }
            )),
            Event::Module { module, .. } => self.line(format!("module {module}")),
            Event::Functionality {
                module,
                id,
                of,
                status,
                reason,
            } => match *status {
                "reused" => self.line(format!("  {id}/{of} reused (unchanged)")),
                _ => {
                    self.line(format!(
                        "  {id}/{of} rendering: {}",
                        reason.as_deref().unwrap_or("")
                    ));
                    self.set_status(format!("  {module} {id}/{of}"));
                }
            },
            Event::Phase {
                module,
                id,
                phase,
                attempt,
            } => {
                let a = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                if !self.tty {
                    self.line(format!("    {}{a}", phase.replace('_', " ")));
                }
                self.set_status(format!("  {module} {id}: {}{a}", phase.replace('_', " ")));
            }
            Event::ModelCall {
                role,
                model,
                cache_hit,
                tokens_in,
                tokens_out,
                cost,
                seconds,
                ..
            } => {
                let how = if *cache_hit {
                    "cache hit".to_string()
                } else {
                    format!(
                        "{tokens_in} in / {tokens_out} out, {:.1}s{}",
                        seconds,
                        if *cost > 0.0 {
                            format!(", ${cost:.4}")
                        } else {
                            String::new()
                        }
                    )
                };
                self.line(format!("    model ({role}, {model}): {how}"));
            }
            Event::Script {
                kind,
                outcome,
                exit_code,
                seconds,
            } => self.line(
                format!("    {kind} tests: {outcome:?} (exit {exit_code}, {seconds:.1}s)")
                    .to_lowercase(),
            ),
            Event::Committed {
                id, commit, files, ..
            } => self.line(format!(
                "  {id} done: commit {} ({} file{} changed)",
                &commit[..commit.len().min(10)],
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            )),
            Event::Failed { reason, .. } => self.line(format!("error: {reason}")),
            Event::Warning { message } => self.line(format!("warning: {message}")),
            Event::Summary(s) => {
                self.status.clear();
                self.line(format!(
                    "{}: {} rendered, {} reused; {} model calls, {} cache hits, {} tokens in, {} out, ${:.4}, {:.1}s",
                    if s.ok { "done" } else { "failed" },
                    s.rendered,
                    s.reused,
                    s.model_calls,
                    s.cache_hits,
                    s.tokens_in,
                    s.tokens_out,
                    s.cost,
                    s.seconds
                ))
            }
        }
    }

    fn token(&mut self, text: &str) {
        if !self.tty {
            return;
        }
        self.tokens += text.len().div_ceil(4).max(1);
        let secs = self.started.elapsed().as_secs_f64().max(0.1);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}  ~{:.0} tok/s",
            self.status,
            self.tokens as f64 / secs
        );
        let _ = err.flush();
    }
}

/// A hash of every spec file the project read, for commits.
pub fn spec_hash(project: &rekindle_spec::project::Project) -> String {
    let mut files: Vec<(String, &str)> = project
        .sources
        .files()
        .map(|(_, f)| (f.path.display().to_string(), f.text.as_str()))
        .collect();
    files.sort();
    let mut h = blake3::Hasher::new();
    for (p, t) in files {
        h.update(p.as_bytes());
        h.update(&[0]);
        h.update(t.as_bytes());
        h.update(&[0]);
    }
    h.finalize().to_hex()[..16].to_string()
}

/// The providers a render uses, each built once, and which role uses which.
pub struct Built {
    pub providers: Vec<Box<dyn rekindle_llm::Provider>>,
    /// (provider name, model) of each provider.
    pub names: Vec<(String, String)>,
    /// Indices of the code, fix and tests providers.
    pub roles: [usize; 3],
    /// The escalation provider and after how many failed fixes it takes over.
    pub escalate: Option<(usize, u32)>,
}

/// Builds the providers of the three roles (and the escalation step), each once.
pub fn build_models(
    settings: &rekindle_config::Settings,
    args: &ProviderArgs,
    cache_only: bool,
) -> Result<Built, String> {
    let mut built = Built {
        providers: Vec::new(),
        names: Vec::new(),
        roles: [0; 3],
        escalate: None,
    };
    let index = |spec: rekindle_llm::providers::ProviderSpec,
                 built: &mut Built|
     -> Result<usize, String> {
        if let Some(i) = built
            .names
            .iter()
            .position(|(n, m)| *n == spec.name && *m == spec.model_name())
        {
            return Ok(i);
        }
        let p = rekindle_llm::providers::build_for(&spec, cache_only).map_err(|e| e.to_string())?;
        built.providers.push(p);
        built.names.push((spec.name.clone(), spec.model_name()));
        Ok(built.providers.len() - 1)
    };
    let mut roles = [0usize; 3];
    for (i, role) in [Role::Code, Role::Fix, Role::Tests].into_iter().enumerate() {
        roles[i] = index(models::select(settings, args, role)?, &mut built)?;
    }
    let m = &settings.toml.models;
    let escalate = match (&m.escalate_to, &args.provider) {
        (Some(_), None) => {
            let after = m.escalate_after.unwrap_or(2);
            Some((
                index(
                    models::select_escalating(settings, args, Role::Fix, after)?,
                    &mut built,
                )?,
                after,
            ))
        }
        _ => None,
    };
    built.roles = roles;
    built.escalate = escalate;
    Ok(built)
}

pub fn role_model(built: &Built, i: usize) -> RoleModel<'_> {
    RoleModel {
        provider: built.providers[i].as_ref(),
        model: built.names[i].1.clone(),
        label: built.names[i].0.clone(),
    }
}

/// Asks for confirmation on a terminal before spending money; never asks otherwise.
pub fn confirm(question: &str, yes: bool) -> bool {
    if yes || !std::io::stdin().is_terminal() {
        return true;
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

pub fn default_patches_dir(spec: &Path) -> PathBuf {
    spec.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(".rekindle")
        .join("patches")
}

pub fn timeout(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// The render options for `file`, from its settings and the command line.
pub fn options(
    file: &Path,
    settings: &rekindle_config::Settings,
    r: &RenderArgs,
    project: &rekindle_spec::project::Project,
) -> rekindle_render::Options {
    let mut opts = rekindle_render::Options::new(
        r.build_folder
            .clone()
            .unwrap_or_else(|| settings.build_folder.clone()),
    );
    opts.copy_to = settings.copy_build.then(|| settings.build_dest.clone());
    opts.unittests_script = settings.unittests_script.clone();
    opts.conformance_tests_script = settings.conformance_tests_script.clone();
    opts.prepare_environment_script = settings.prepare_environment_script.clone();
    opts.script_timeout = timeout(settings.test_script_timeout);
    opts.from = r.from;
    opts.force = r.force;
    opts.patches_dir = default_patches_dir(file);
    opts.sampling.max_tokens = r.max_tokens;
    opts.spec_hash = spec_hash(project);
    opts
}

/// The model settings of a render, without building (or loading) any provider.
pub fn fingerprint(
    settings: &rekindle_config::Settings,
    args: &ProviderArgs,
    opts: &rekindle_render::Options,
) -> Result<serde_json::Value, String> {
    let one = |role| models::select(settings, args, role).map(|s| (s.kind, s.model_name()));
    let roles = [one(Role::Code)?, one(Role::Fix)?, one(Role::Tests)?];
    let m = &settings.toml.models;
    let escalate = match (&m.escalate_to, &args.provider) {
        (Some(_), None) => {
            let after = m.escalate_after.unwrap_or(2);
            let s = models::select_escalating(settings, args, Role::Fix, after)?;
            Some(((s.kind, s.model_name()), after))
        }
        _ => None,
    };
    Ok(rekindle_render::fingerprint(
        roles,
        escalate,
        &opts.sampling,
    ))
}

/// The lock of the current build: pins from the build folder, cache keys from the journal (or the
/// previous lock, for functionalities this journal never saw rendered).
pub fn lock_of(
    built: &[rekindle_render::Built],
    journal: &rekindle_ledger::journal::Journal,
    previous: Option<&rekindle_ledger::lock::Lock>,
) -> rekindle_ledger::lock::Lock {
    use serde_json::Value;
    let entries = journal.entries().unwrap_or_default();
    let pins = built
        .iter()
        .map(|b| {
            let same = |e: &rekindle_ledger::journal::Entry| {
                e.data.get("module").and_then(Value::as_str) == Some(b.module.as_str())
                    && e.data.get("functionality").and_then(Value::as_u64) == Some(b.id as u64)
            };
            let render_id = entries
                .iter()
                .rev()
                .find(|e| {
                    e.kind == "step"
                        && same(e)
                        && e.data.get("render_key").and_then(Value::as_str)
                            == Some(b.render_key.as_str())
                })
                .and_then(|e| e.data.get("render_id").cloned());
            let mut cache: Vec<String> = match &render_id {
                Some(rid) => entries
                    .iter()
                    .filter(|e| {
                        e.kind == "model_call" && same(e) && e.data.get("render_id") == Some(rid)
                    })
                    .filter_map(|e| {
                        e.data
                            .get("request")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect(),
                None => previous
                    .and_then(|l| {
                        l.pins.iter().find(|p| {
                            p.module == b.module && p.id == b.id && p.render_key == b.render_key
                        })
                    })
                    .map(|p| p.cache.clone())
                    .unwrap_or_default(),
            };
            cache.dedup();
            rekindle_ledger::lock::Pin {
                module: b.module.clone(),
                id: b.id,
                render_key: b.render_key.clone(),
                tree: b.tree.clone(),
                tests_tree: b.tests_tree.clone(),
                cache,
            }
        })
        .collect();
    rekindle_ledger::lock::Lock { pins }
}
