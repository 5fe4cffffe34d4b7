//! What `render` and `burn` share before the loop starts: the providers of each role (each
//! built once), the session, the render options from settings and flags, and the cost question.
//! `status` and `attest` use the same options and model settings without building providers.

use crate::args::{ProviderArgs, RenderArgs};
use crate::models::{self, Role};
use rekindle_render::{ModelSet, RoleModel};
use rekindle_workspace::layout::ProjectLayout;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

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

/// The hosted providers (which may cost money) a render with `args` would call: every role and
/// the escalation step, without building any provider (no key is needed to ask).
pub fn hosted_names(
    settings: &rekindle_config::Settings,
    args: &ProviderArgs,
) -> Result<Vec<String>, String> {
    let mut specs = Vec::new();
    for role in [Role::Code, Role::Fix, Role::Tests] {
        specs.push(models::select(settings, args, role)?);
    }
    let m = &settings.toml.models;
    if let (Some(_), None) = (&m.escalate_to, &args.provider) {
        let after = m.escalate_after.unwrap_or(2);
        specs.push(models::select_escalating(settings, args, Role::Fix, after)?);
    }
    let mut names: Vec<String> = specs
        .into_iter()
        .filter(|s| s.kind != rekindle_llm::ProviderKind::Local)
        .map(|s| s.name)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// `--local-only`: refuses, before any provider is built, when `what` (a render, a
/// conversation) would call a hosted model.
pub fn refuse_hosted(
    settings: &rekindle_config::Settings,
    args: &ProviderArgs,
    what: &str,
) -> Result<(), crate::exit::CliError> {
    let hosted = hosted_names(settings, args).map_err(crate::exit::CliError::usage)?;
    if hosted.is_empty() {
        return Ok(());
    }
    Err(crate::exit::CliError::usage(format!(
        "--local-only: {what} would call hosted models ({}), which can cost money; use the local model (--provider local), or allow hosted models",
        hosted.join(", ")
    )))
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
    opts.copy_to = (settings.copy_build || r.copy_build).then(|| settings.build_dest.clone());
    opts.base_folder = settings
        .base_folder
        .as_deref()
        .map(rekindle_config::paths::resolve);
    opts.copy_tests_to = (settings.copy_conformance_tests || r.copy_conformance_tests)
        .then(|| settings.conformance_tests_dest.clone());
    opts.unittests_script = settings.unittests_script.clone();
    opts.conformance_tests_script = settings.conformance_tests_script.clone();
    opts.prepare_environment_script = settings.prepare_environment_script.clone();
    opts.script_timeout = timeout(settings.test_script_timeout);
    opts.from = r.from;
    opts.force = r.force;
    opts.force_render = r.force_render;
    opts.patches_dir = ProjectLayout::for_spec(file).patches();
    opts.project_dir = std::path::absolute(ProjectLayout::for_spec(file).dir).ok();
    opts.sampling.max_tokens = r.max_tokens;
    opts.call_budget = r.call_budget;
    opts.spec_hash = spec_hash(project);
    opts.sandbox = settings.toml.sandbox.clone();
    if r.no_sandbox {
        opts.sandbox.mode = rekindle_workspace::sandbox::Mode::Disabled;
    }
    opts
}

/// The model settings of a render (as in every render key), without building or loading any
/// provider.
pub fn model_settings(
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
    fn r((k, m): &(rekindle_llm::ProviderKind, String)) -> (rekindle_llm::ProviderKind, &str) {
        (*k, m.as_str())
    }
    Ok(rekindle_plan::keys::model_settings(
        [r(&roles[0]), r(&roles[1]), r(&roles[2])],
        escalate.as_ref().map(|(m, n)| (r(m), *n)),
        &opts.sampling,
    ))
}

impl Built {
    /// The role models a render uses.
    pub fn model_set(&self) -> ModelSet<'_> {
        ModelSet {
            code: role_model(self, self.roles[0]),
            fix: role_model(self, self.roles[1]),
            tests: role_model(self, self.roles[2]),
            escalate: self.escalate.map(|(i, after)| (role_model(self, i), after)),
        }
    }

    /// The names of the providers that are hosted (and so may cost money).
    pub fn hosted(&self) -> Vec<&str> {
        self.providers
            .iter()
            .zip(&self.names)
            .filter(|(p, _)| p.kind() != rekindle_llm::ProviderKind::Local)
            .map(|(_, (n, _))| n.as_str())
            .collect()
    }
}

/// Refuses a `--build-folder` (or `burn --into`) that is, or holds, the project: rendering clears
/// what is there. config.yaml's folders were checked when it was read.
pub fn check_folders(
    settings: &rekindle_config::Settings,
    r: &RenderArgs,
    into: Option<&Path>,
) -> Result<(), crate::exit::CliError> {
    let flags = [
        ("--build-folder", r.build_folder.as_deref()),
        ("--into", into),
    ];
    for (key, path) in flags {
        if let Some(msg) = path.and_then(|p| rekindle_config::paths::problem(settings, key, p)) {
            return Err(crate::exit::CliError::usage(msg));
        }
    }
    Ok(())
}

/// Refuses to run scripts where the sandbox cannot be set up (the message names the cause and
/// the fix); says so when it was turned off.
pub fn check_sandbox(
    opts: &rekindle_render::Options,
    json: bool,
) -> Result<(), crate::exit::CliError> {
    let probe = opts.sandbox.probe().map_err(crate::exit::CliError::usage)?;
    if opts.sandbox.mode == rekindle_workspace::sandbox::Mode::Disabled && !json {
        eprintln!("warning: the sandbox is off ({probe}): generated code runs with your files, network and environment");
    }
    Ok(())
}

/// A session over the response cache (`None`: no cache, as `burn` wants) with the project's
/// budget and prices.
pub fn session(
    settings: &rekindle_config::Settings,
    cache: Option<rekindle_llm::cache::Cache>,
    mode: rekindle_llm::session::Mode,
) -> rekindle_llm::session::Session {
    rekindle_llm::session::Session::new(
        cache,
        mode,
        models::budget(settings),
        models::prices(settings),
    )
}
