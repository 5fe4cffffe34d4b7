//! `rekindle attest`: an in-toto Statement v1 with an SLSA provenance v1 predicate for the
//! rendered code. Subjects are the generated files of the entry module with their SHA-256; the
//! recorded inputs are the spec files, linked resources, prompt templates, model settings and the
//! cache entries every functionality used.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::Path;

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

use rekindle_workspace::git::output as git;

/// The statement for the build of `project`, or why there is none.
pub fn statement(
    project: &rekindle_spec::project::Project,
    opts: &rekindle_render::Options,
    fingerprint: &Value,
    lock: Option<&rekindle_ledger::lock::Lock>,
) -> Result<Value, String> {
    let entry = project
        .render_order
        .last()
        .ok_or("the spec renders no module")?;
    let module = project.module(entry.module).name.clone();
    let code = std::path::absolute(&opts.build_folder)
        .map_err(|e| e.to_string())?
        .join(&module)
        .join("code");
    let files = git(&code, &["ls-files", "-z"]).ok_or_else(|| {
        format!(
            "{} is not rendered yet: run `rekindle render` first",
            code.display()
        )
    })?;
    if git(&code, &["status", "--porcelain"]).is_some_and(|s| !s.trim().is_empty()) {
        return Err(format!(
            "{} has files changed by hand; an attestation would not describe them",
            code.display()
        ));
    }
    let mut subjects = Vec::new();
    for name in files.split('\0').filter(|n| !n.is_empty()) {
        let bytes =
            std::fs::read(code.join(name)).map_err(|e| format!("cannot read {name}: {e}"))?;
        subjects.push(json!({"name": name, "digest": {"sha256": sha256(&bytes)}}));
    }
    let mut deps = Vec::new();
    for (_, f) in project.sources.files() {
        let uri = if f.path.starts_with(rekindle_spec::library::PREFIX) {
            format!(
                "rekindle:library/{}",
                f.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        } else {
            format!("file:{}", f.path.display())
        };
        deps.push(json!({"uri": uri, "digest": {"sha256": sha256(f.text.as_bytes())}}));
    }
    for rm in &project.render_order {
        let s = &rm.sections;
        let items = s
            .definitions
            .iter()
            .chain(&s.implementation_reqs)
            .chain(&s.test_reqs)
            .chain(&s.functional_specs);
        for item in items.flat_map(|i| std::iter::once(i).chain(i.acceptance_tests.iter())) {
            for l in &item.links {
                let from = &project.sources.get(l.from).path;
                let path = from.parent().unwrap_or(Path::new(".")).join(&l.target);
                if let Ok(bytes) = std::fs::read(&path) {
                    let dep = json!({"uri": format!("file:{}", path.display()), "digest": {"sha256": sha256(&bytes)}, "annotations": {"role": "linked resource"}});
                    if !deps.contains(&dep) {
                        deps.push(dep);
                    }
                }
            }
        }
    }
    deps.push(json!({"uri": "rekindle:prompt-templates", "digest": {"blake3": rekindle_render::prompts::template_version()}}));
    if let Some(lock) = lock {
        for p in &lock.pins {
            for key in &p.cache {
                deps.push(json!({"uri": format!("rekindle:cache/{key}"), "digest": {"blake3": key}, "annotations": {"module": p.module, "functionality": p.id}}));
            }
        }
    }
    let render_id = git(
        &code,
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Rekindle-Render-Id,valueonly)",
        ],
    )
    .unwrap_or_default();
    Ok(json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects,
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://rekindle.invalid/render/v1",
                "externalParameters": {
                    "spec": project.sources.files().next().map(|(_, f)| f.path.display().to_string()),
                    "modules": project.render_order.iter().map(|m| project.module(m.module).name.clone()).collect::<Vec<_>>(),
                },
                "internalParameters": {"models": fingerprint, "templateVersion": rekindle_render::prompts::template_version()},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": format!("rekindle@{}", env!("CARGO_PKG_VERSION"))},
                "metadata": {"invocationId": render_id.trim()},
            },
        },
    }))
}
