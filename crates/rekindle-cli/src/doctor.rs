//! `rekindle doctor`: is this machine ready to render? Checks git, the configuration, the test
//! scripts, the model file, and the provider with one tiny request.

use crate::models::{self, ProviderArgs, Role};
use rekindle_config::Settings;
use rekindle_llm::{Message, NoSink, ProviderKind, Request};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

fn check(name: &str, r: Result<String, (String, Option<String>)>) -> Check {
    match r {
        Ok(detail) => Check {
            name: name.into(),
            ok: true,
            detail,
            help: None,
        },
        Err((detail, help)) => Check {
            name: name.into(),
            ok: false,
            detail,
            help,
        },
    }
}

fn git() -> Result<String, (String, Option<String>)> {
    match rekindle_workspace::git::version() {
        Some(v) => Ok(v),
        None => Err((
            "git is not installed".into(),
            Some("install git: rekindle commits every rendered functionality".into()),
        )),
    }
}

fn script(name: &str, path: &Option<std::path::PathBuf>) -> Option<Check> {
    let p = path.as_ref()?;
    Some(check(
        name,
        if !p.is_file() {
            Err((
                format!("{} does not exist", p.display()),
                Some("fix the path in config.yaml (it is relative to the config file)".into()),
            ))
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(p)
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if mode & 0o111 == 0 {
                    Err((
                        format!("{} is not executable", p.display()),
                        Some(format!("chmod +x {}", p.display())),
                    ))
                } else {
                    Ok(p.display().to_string())
                }
            }
            #[cfg(not(unix))]
            Ok(p.display().to_string())
        },
    ))
}

pub async fn run(settings: &Settings, args: &ProviderArgs, config_problems: Vec<String>) -> Report {
    let mut checks = vec![check("git", git())];
    checks.push(check(
        "configuration",
        if config_problems.is_empty() {
            Ok(match (&settings.config_file, &settings.rekindle_toml) {
                (None, None) => "no config.yaml or rekindle.toml (defaults)".to_string(),
                (c, t) => [c, t]
                    .iter()
                    .filter_map(|p| p.as_ref().map(|p| p.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        } else {
            Err((
                config_problems.join("; "),
                Some("fix the files named above".into()),
            ))
        },
    ));
    checks.push(check(
        "sandbox",
        settings
            .toml
            .sandbox
            .probe()
            .map(|p| p.to_string())
            .map_err(|e| (e.to_string(), None)),
    ));
    checks.extend(script("unit tests script", &settings.unittests_script));
    checks.extend(script(
        "conformance tests script",
        &settings.conformance_tests_script,
    ));
    checks.extend(script(
        "prepare environment script",
        &settings.prepare_environment_script,
    ));
    let mut report = Report {
        ok: false,
        checks,
        provider: None,
        model: None,
        latency_ms: None,
    };
    // Each distinct provider the roles use, checked once.
    let mut specs: Vec<(Vec<&str>, rekindle_llm::providers::ProviderSpec)> = Vec::new();
    let wanted = Role::ALL
        .iter()
        .map(|&r| (r.name(), models::select(settings, args, r)))
        .chain(std::iter::once((
            "escalation",
            models::select_escalating(settings, args, Role::Fix, u32::MAX),
        )));
    for (role, spec) in wanted {
        match spec {
            Ok(s) => match specs.iter_mut().find(|(_, x)| x.name == s.name) {
                Some((roles, _)) => {
                    if !roles.contains(&role) {
                        roles.push(role)
                    }
                }
                None => specs.push((vec![role], s)),
            },
            Err(e) => report
                .checks
                .push(check(&format!("provider ({role})"), Err((e, None)))),
        }
    }
    for (roles, spec) in specs {
        check_provider(&mut report, &roles.join(", "), &spec).await;
    }
    report.ok = report.checks.iter().all(|c| c.ok);
    report
}

async fn check_provider(
    report: &mut Report,
    roles: &str,
    spec: &rekindle_llm::providers::ProviderSpec,
) {
    let label = format!("provider {} ({roles})", spec.name);
    if report.provider.is_none() {
        report.provider = Some(spec.name.clone());
        report.model = Some(spec.model_name());
    }
    if spec.kind == ProviderKind::Local {
        let path = spec.model_path.clone().or_else(|| {
            rekindle_llm::models::spec("default")
                .map(|m| rekindle_llm::models::path_of(m, &rekindle_llm::models::default_dir()))
        });
        if let Some(path) = path {
            let known = ["default", "small"]
                .iter()
                .filter_map(|n| rekindle_llm::models::spec(n))
                .find(|m| path.file_name().is_some_and(|f| f == m.file_name));
            let r = if !path.is_file() {
                Err((
                    format!("model file {} is missing", path.display()),
                    Some("run `rekindle model fetch` (or `rekindle model fetch small`), or pass --model-path".into()),
                ))
            } else if let Some(m) = known {
                rekindle_llm::models::check_size(&path, m)
                    .map(|_| format!("{} ({} bytes)", path.display(), m.size))
                    .map_err(|e| {
                        (
                            e,
                            Some("run `rekindle model fetch` again to replace it".into()),
                        )
                    })
            } else {
                Ok(path.display().to_string())
            };
            let failed = r.is_err();
            report.checks.push(check("model file", r));
            if failed {
                return;
            }
        }
    }
    // One quick question: a broken provider should fail fast, not after the full retry ladder.
    let mut spec = spec.clone();
    spec.retry.attempts = spec.retry.attempts.min(2);
    let provider = match rekindle_llm::providers::build(&spec) {
        Ok(p) => p,
        Err(e) => {
            report
                .checks
                .push(check(&label, Err((e.to_string(), None))));
            return;
        }
    };
    let mut req = Request::new(
        spec.model_name(),
        vec![Message::user("Reply with the single word OK.")],
    );
    req.sampling.max_tokens = 8;
    let started = Instant::now();
    let r = provider.complete(&req, &mut NoSink).await;
    let elapsed = started.elapsed();
    match r {
        Ok(resp) => {
            report.latency_ms.get_or_insert(elapsed.as_millis() as u64);
            report.checks.push(check(
                &label,
                Ok(format!(
                    "{}, model {}, answered {:?} in {} ms ({} tokens in, {} out)",
                    provider.describe(),
                    resp.model,
                    resp.text.trim().chars().take(40).collect::<String>(),
                    ms(elapsed),
                    resp.usage.input_tokens,
                    resp.usage.output_tokens
                )),
            ));
        }
        Err(e) => report
            .checks
            .push(check(&label, Err((e.to_string(), None)))),
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

pub fn print_text(r: &Report) {
    for c in &r.checks {
        println!(
            "{} {:<28} {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
        if let Some(h) = &c.help {
            println!("     {:<28} help: {h}", "");
        }
    }
    println!(
        "{}",
        if r.ok {
            "ready to render"
        } else {
            "not ready: fix the failed checks above"
        }
    );
}
