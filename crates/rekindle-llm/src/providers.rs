//! Building a provider from settings: a named provider from rekindle.toml, or one described
//! entirely on the command line.

use crate::anthropic::Anthropic;
use crate::error::LlmError;
use crate::http::{HttpSettings, RetryPolicy, Timeouts};
use crate::openai::OpenAi;
use crate::secret::Secret;
use crate::{Provider, ProviderKind};
use std::path::PathBuf;
use std::time::Duration;

pub const OPENAI_URL: &str = "https://api.openai.com/v1";
pub const ANTHROPIC_URL: &str = "https://api.anthropic.com";

/// Everything needed to reach one model.
#[derive(Clone, Debug)]
pub struct ProviderSpec {
    /// The name in rekindle.toml, or the kind for an ad-hoc provider.
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The environment variable holding the key (never the key itself).
    pub api_key_env: Option<String>,
    pub model_path: Option<PathBuf>,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

impl ProviderSpec {
    pub fn new(name: impl Into<String>, kind: ProviderKind) -> ProviderSpec {
        ProviderSpec {
            name: name.into(),
            kind,
            base_url: None,
            model: None,
            api_key_env: None,
            model_path: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }

    pub fn base_url(&self) -> String {
        self.base_url.clone().unwrap_or_else(|| {
            match self.kind {
                ProviderKind::Openai => OPENAI_URL,
                ProviderKind::Anthropic => ANTHROPIC_URL,
                ProviderKind::Local => "local",
            }
            .to_string()
        })
    }

    pub fn key_env(&self) -> Option<String> {
        self.api_key_env.clone().or_else(|| match self.kind {
            ProviderKind::Openai => Some("OPENAI_API_KEY".into()),
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY".into()),
            ProviderKind::Local => None,
        })
    }

    /// The model to name in requests.
    pub fn model_name(&self) -> String {
        match (&self.model, self.kind) {
            (Some(m), _) => m.clone(),
            (None, ProviderKind::Local) => self
                .model_path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "default".into()),
            (None, ProviderKind::Openai) => "gpt-4o-mini".into(),
            (None, ProviderKind::Anthropic) => "claude-3-5-haiku-latest".into(),
        }
    }
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

/// Builds the provider. Hosted endpoints need their key variable set; local servers on loopback
/// may run without one.
pub fn build(spec: &ProviderSpec) -> Result<Box<dyn Provider>, LlmError> {
    let http = HttpSettings {
        base_url: spec.base_url(),
        timeouts: spec.timeouts,
        retry: spec.retry,
    };
    let key_env = spec.key_env();
    let key = key_env.as_deref().and_then(Secret::from_env);
    let need_key = spec.kind != ProviderKind::Local && !is_loopback(&http.base_url);
    if key.is_none() && need_key {
        let var = key_env.clone().unwrap_or_default();
        return Err(LlmError::Config {
            detail: format!(
                "provider '{}' needs an API key: set the environment variable {var} (or name another variable with api-key-env)",
                spec.name
            ),
        });
    }
    match spec.kind {
        ProviderKind::Openai => Ok(Box::new(OpenAi::new(http, key, key_env)?)),
        ProviderKind::Anthropic => Ok(Box::new(Anthropic::new(http, key, key_env)?)),
        ProviderKind::Local => local(spec),
    }
}

#[cfg(feature = "local")]
fn local(spec: &ProviderSpec) -> Result<Box<dyn Provider>, LlmError> {
    let path = match &spec.model_path {
        Some(p) => p.clone(),
        None => {
            let m = crate::models::spec("default").ok_or_else(|| LlmError::Local {
                detail: "no default model is known".into(),
            })?;
            crate::models::path_of(m, &crate::models::default_dir())
        }
    };
    // `REKINDLE_LOCAL_LOOKUP=1` turns prompt lookup decoding on (it is off by default): for
    // benchmarks that compare the engine with and without it, and machines where a batch is
    // cheaper per token than a single token (the reply is the same up to llama.cpp's arithmetic).
    let lookup = std::env::var("REKINDLE_LOCAL_LOOKUP").is_ok_and(|v| v == "1");
    Ok(Box::new(
        crate::local::LocalProvider::load(&path)?.with_lookup(lookup),
    ))
}

#[cfg(not(feature = "local"))]
fn local(_spec: &ProviderSpec) -> Result<Box<dyn Provider>, LlmError> {
    Err(LlmError::Config {
        detail: "this rekindle was built without the embedded model engine: rebuild with `cargo build --release --features local`, or use --provider openai/anthropic".into(),
    })
}

/// A stand-in for a provider when only the cache may answer (`--offline`, `--locked`): it has the
/// real provider's kind and model, so cache keys are the same, but never loads or calls anything.
pub struct CacheOnly {
    pub kind: ProviderKind,
    pub name: String,
}

#[async_trait::async_trait]
impl Provider for CacheOnly {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn describe(&self) -> String {
        format!("{} (cache only)", self.name)
    }

    async fn complete(
        &self,
        _req: &crate::Request,
        _sink: &mut dyn crate::TokenSink,
    ) -> Result<crate::Response, LlmError> {
        Err(LlmError::Config {
            detail: format!(
                "{} may not be called: only the response cache may answer",
                self.name
            ),
        })
    }
}

/// Builds `spec`'s provider, or its cache-only stand-in.
pub fn build_for(spec: &ProviderSpec, cache_only: bool) -> Result<Box<dyn Provider>, LlmError> {
    if cache_only {
        return Ok(Box::new(CacheOnly {
            kind: spec.kind,
            name: spec.name.clone(),
        }));
    }
    build(spec)
}

/// Seconds from config into a duration.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
