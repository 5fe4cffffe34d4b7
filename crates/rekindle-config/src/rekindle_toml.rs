//! `rekindle.toml`: rekindle's own settings, beside the spec (or in the current folder).
//! Documented in docs/config.md. Unknown keys are errors so that typos do not pass silently.

use rekindle_diag::{Diagnostic, SourceDb, Span};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RekindleToml {
    #[serde(default)]
    pub spec: SpecSettings,
    /// Named model providers.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderToml>,
    #[serde(default)]
    pub models: ModelsToml,
    #[serde(default)]
    pub budget: BudgetToml,
    /// Model name → prices in US dollars per million tokens.
    #[serde(default)]
    pub prices: BTreeMap<String, PriceToml>,
    #[serde(default)]
    pub cache: CacheToml,
    /// `[sandbox]`: what test scripts, and so generated code, may do (network, environment,
    /// extra readable paths, `[sandbox.limits]`). Part of every render key.
    #[serde(default)]
    pub sandbox: rekindle_workspace::sandbox::SandboxPolicy,
}

/// `[providers.NAME]`: one way to reach a model.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderToml {
    /// `openai` (any OpenAI-compatible endpoint), `anthropic` or `local`.
    pub kind: String,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The environment variable that holds the key. Keys are never written in this file.
    pub api_key_env: Option<String>,
    /// For `local`: the GGUF file (default: the fetched default model).
    pub model_path: Option<PathBuf>,
    /// Seconds.
    pub connect_timeout: Option<u64>,
    pub timeout: Option<u64>,
    pub idle_timeout: Option<u64>,
    /// Attempts in all for transient failures.
    pub attempts: Option<u32>,
}

/// `[models]`: which provider plays which role, and when to escalate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModelsToml {
    /// The provider for every role not named below.
    pub default: Option<String>,
    pub code: Option<String>,
    pub fix: Option<String>,
    pub tests: Option<String>,
    /// The escalation ladder: after `escalate-after` failed fixes of one functionality, use
    /// this provider instead.
    pub escalate_to: Option<String>,
    pub escalate_after: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BudgetToml {
    pub max_calls: Option<u64>,
    pub max_tokens: Option<u64>,
    pub max_cost: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PriceToml {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CacheToml {
    /// Where model replies are cached (default `.rekindle/cache` beside the spec).
    pub dir: Option<PathBuf>,
}

/// `[spec]`: how specs are found and what they may link.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SpecSettings {
    /// Module search folders, after the spec's own folder and config.yaml's `template-dir`.
    #[serde(default)]
    pub template_dirs: Vec<PathBuf>,
    /// Further folders linked resources may come from.
    #[serde(default)]
    pub roots: Vec<PathBuf>,
    /// Whether the built-in template library is searched last.
    #[serde(default = "yes")]
    pub builtin_library: bool,
    /// The largest linked resource, in bytes.
    #[serde(default = "one_mib")]
    pub max_resource_bytes: u64,
}

fn yes() -> bool {
    true
}

fn one_mib() -> u64 {
    1 << 20
}

impl Default for SpecSettings {
    fn default() -> SpecSettings {
        SpecSettings {
            template_dirs: Vec::new(),
            roots: Vec::new(),
            builtin_library: true,
            max_resource_bytes: one_mib(),
        }
    }
}

pub fn read(path: &Path, db: &mut SourceDb, diags: &mut Vec<Diagnostic>) -> RekindleToml {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(
                "E0811",
                format!("cannot read `{}`: {e}", path.display()),
            ));
            return RekindleToml::default();
        }
    };
    let file = db.add(path.to_path_buf(), text.clone());
    match toml::from_str::<RekindleToml>(&text) {
        Ok(mut t) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            for p in t
                .spec
                .template_dirs
                .iter_mut()
                .chain(t.spec.roots.iter_mut())
            {
                *p = dir.join(&*p);
            }
            t
        }
        Err(e) => {
            let span = e
                .span()
                .map(|r| Span::new(file, r.start, r.end))
                .unwrap_or(Span::new(file, 0, 0));
            diags.push(
                Diagnostic::error("E0812", format!("invalid rekindle.toml: {}", e.message()))
                    .at(span, "here")
                    .help("see docs/config.md for the keys rekindle.toml takes"),
            );
            RekindleToml::default()
        }
    }
}
