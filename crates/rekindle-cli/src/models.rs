//! Choosing a model provider from rekindle.toml and the command line (which wins).

use rekindle_config::{ProviderToml, Settings};
use rekindle_llm::http::{RetryPolicy, Timeouts};
use rekindle_llm::meter::{Budget, Price, PriceTable};
use rekindle_llm::providers::ProviderSpec;
use rekindle_llm::ProviderKind;
use std::time::Duration;

pub use crate::args::ProviderArgs;
pub use rekindle_render::Role;

fn kind_of(s: &str) -> Option<ProviderKind> {
    match s {
        "openai" => Some(ProviderKind::Openai),
        "anthropic" => Some(ProviderKind::Anthropic),
        "local" => Some(ProviderKind::Local),
        _ => None,
    }
}

fn from_toml(name: &str, p: &ProviderToml) -> Result<ProviderSpec, String> {
    let kind = kind_of(&p.kind)
        .ok_or_else(|| format!("provider `{name}` has unknown kind `{}`", p.kind))?;
    let mut spec = ProviderSpec::new(name, kind);
    spec.base_url = p.base_url.clone();
    spec.model = p.model.clone();
    spec.api_key_env = p.api_key_env.clone();
    spec.model_path = p.model_path.clone();
    let d = Timeouts::default();
    spec.timeouts = Timeouts {
        connect: p
            .connect_timeout
            .map(Duration::from_secs)
            .unwrap_or(d.connect),
        total: p.timeout.map(Duration::from_secs).unwrap_or(d.total),
        idle: p.idle_timeout.map(Duration::from_secs).unwrap_or(d.idle),
    };
    if let Some(a) = p.attempts {
        spec.retry = RetryPolicy {
            attempts: a.max(1),
            ..RetryPolicy::default()
        };
    }
    Ok(spec)
}

/// The provider for `role`: `--provider`, else `[models]` in rekindle.toml, else the embedded
/// local model.
pub fn select(
    settings: &Settings,
    args: &ProviderArgs,
    role: Role,
) -> Result<ProviderSpec, String> {
    let m = &settings.toml.models;
    let by_role = match role {
        Role::Code => &m.code,
        Role::Fix => &m.fix,
        Role::Tests => &m.tests,
    };
    let name = args
        .provider
        .clone()
        .or_else(|| by_role.clone())
        .or_else(|| m.default.clone())
        .unwrap_or_else(|| "local".to_string());
    let mut spec = match settings.toml.providers.get(&name) {
        Some(p) => from_toml(&name, p)?,
        None => match kind_of(&name) {
            Some(kind) => ProviderSpec::new(&name, kind),
            None => {
                return Err(format!(
                    "unknown provider `{name}`: define [providers.{name}] in rekindle.toml, or use openai, anthropic or local"
                ))
            }
        },
    };
    if args.base_url.is_some() {
        spec.base_url = args.base_url.clone();
    }
    if args.model.is_some() {
        spec.model = args.model.clone();
    }
    if args.model_path.is_some() {
        spec.model_path = args.model_path.clone();
    }
    if args.api_key_env.is_some() {
        spec.api_key_env = args.api_key_env.clone();
    }
    Ok(spec)
}

pub fn budget(settings: &Settings) -> Budget {
    let b = &settings.toml.budget;
    Budget {
        max_calls: b.max_calls,
        max_tokens: b.max_tokens,
        max_cost: b.max_cost,
    }
}

pub fn prices(settings: &Settings) -> PriceTable {
    PriceTable(
        settings
            .toml
            .prices
            .iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    Price {
                        input: p.input,
                        output: p.output,
                        cached_input: p.cached_input,
                    },
                )
            })
            .collect(),
    )
}

/// The provider for `role` after `failures` failed attempts at one functionality: the role's
/// own provider, or `[models] escalate-to` once `escalate-after` (default 2) attempts have failed.
/// A provider pinned with `--provider` is never escalated away from.
pub fn select_escalating(
    settings: &Settings,
    args: &ProviderArgs,
    role: Role,
    failures: u32,
) -> Result<ProviderSpec, String> {
    let m = &settings.toml.models;
    match &m.escalate_to {
        Some(to) if args.provider.is_none() && failures >= m.escalate_after.unwrap_or(2) => {
            let pinned = ProviderArgs {
                provider: Some(to.clone()),
                ..args.clone()
            };
            select(settings, &pinned, role)
        }
        _ => select(settings, args, role),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rekindle.toml"), toml).unwrap();
        let mut db = rekindle_diag::SourceDb::default();
        let mut diags = Vec::new();
        let s = rekindle_config::load_in(
            dir.path(),
            &rekindle_config::Overrides::default(),
            &mut db,
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        s
    }

    const TOML: &str = r#"
[providers.small]
kind = "local"
model-path = "models/small.gguf"

[providers.big]
kind = "openai"
base-url = "http://127.0.0.1:9/v1"
model = "big-model"
api-key-env = "BIG_KEY"

[models]
default = "small"
tests = "big"
escalate-to = "big"
escalate-after = 2
"#;

    #[test]
    fn roles_and_the_escalation_ladder() {
        let s = settings(TOML);
        let none = ProviderArgs::default();
        assert_eq!(select(&s, &none, Role::Code).unwrap().name, "small");
        assert_eq!(
            select(&s, &none, Role::Tests).unwrap().model_name(),
            "big-model"
        );
        assert_eq!(
            select_escalating(&s, &none, Role::Fix, 1).unwrap().name,
            "small"
        );
        let up = select_escalating(&s, &none, Role::Fix, 2).unwrap();
        assert_eq!(
            (up.name.as_str(), up.api_key_env.as_deref()),
            ("big", Some("BIG_KEY"))
        );
        // The command line wins, and pins the provider.
        let cli = ProviderArgs {
            provider: Some("openai".into()),
            model: Some("m".into()),
            ..ProviderArgs::default()
        };
        let pinned = select_escalating(&s, &cli, Role::Fix, 5).unwrap();
        assert_eq!(
            (pinned.name.as_str(), pinned.model_name().as_str()),
            ("openai", "m")
        );
        assert!(select(
            &s,
            &ProviderArgs {
                provider: Some("nope".into()),
                ..ProviderArgs::default()
            },
            Role::Code
        )
        .unwrap_err()
        .contains("[providers.nope]"));
    }
}
