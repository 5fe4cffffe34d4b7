//! An in-toto Statement v1 with an SLSA provenance v1 predicate for the rendered code. Subjects
//! are the generated files of the entry module with their SHA-256; the recorded inputs are the
//! spec files, linked resources, prompt templates, model settings and the model replies every
//! functionality used (by request key, with the SHA-256 of the reply's text).

use crate::lock::Lock;
use rekindle_spec::project::Project;
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::BuildLayout;
use rekindle_workspace::trailers::Trailers;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error("the spec renders no module")]
    NoModule,
    #[error("{} is not rendered yet: run `rekindle render` first", .0.display())]
    NotRendered(PathBuf),
    #[error("{} has files changed by hand; an attestation would not describe them", .0.display())]
    HandEdits(PathBuf),
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// An attestation names what each model reply said; a pinned reply that is gone or damaged
    /// cannot be named.
    #[error("the reply {key} that rekindle.lock pins cannot be read from the response cache ({detail}); an attestation must name what each reply said: render again to restore it")]
    Reply { key: String, detail: String },
    #[error("{0}")]
    Io(std::io::Error),
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The statement for the build of `project` in `build_folder`; `models` are the model settings
/// in every render key; the replies `lock` pins are read from `cache`.
pub fn statement(
    project: &Project,
    build_folder: &Path,
    models: &Value,
    lock: Option<&Lock>,
    cache: &rekindle_llm::cache::Cache,
) -> Result<Value, AttestError> {
    let entry = project.render_order.last().ok_or(AttestError::NoModule)?;
    let module = project.module(entry.module).name.clone();
    let layout = BuildLayout::new(std::path::absolute(build_folder).map_err(AttestError::Io)?);
    let code = Repo::new(layout.module(&module).code);
    let not_rendered = || AttestError::NotRendered(code.dir.clone());
    if !code.exists() {
        return Err(not_rendered());
    }
    let files = code.ls_files().map_err(|_| not_rendered())?;
    if code.is_dirty().unwrap_or(false) {
        return Err(AttestError::HandEdits(code.dir.clone()));
    }
    let mut subjects = Vec::new();
    for name in files {
        let bytes =
            std::fs::read(code.dir.join(&name)).map_err(|e| AttestError::Read(name.clone(), e))?;
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
    for r in project.resources() {
        let dep = json!({"uri": format!("file:{}", r.path.display()), "digest": {"sha256": sha256(r.content.as_bytes())}, "annotations": {"role": "linked resource"}});
        if !deps.contains(&dep) {
            deps.push(dep);
        }
    }
    let templates = rekindle_render::prompts::template_version();
    deps.push(json!({"uri": "rekindle:prompt-templates", "digest": {"blake3": templates}}));
    if let Some(lock) = lock {
        for p in &lock.pins {
            for key in &p.cache {
                // The key names the request; the digest is of the reply's text, as it was used.
                let reply = match cache.get(key) {
                    Ok(Some(payload)) => payload.response.text,
                    Ok(None) => {
                        return Err(AttestError::Reply {
                            key: key.clone(),
                            detail: "no such entry".into(),
                        })
                    }
                    Err(e) => {
                        return Err(AttestError::Reply {
                            key: key.clone(),
                            detail: e.to_string(),
                        })
                    }
                };
                deps.push(json!({"uri": format!("rekindle:cache/{key}"), "digest": {"sha256": sha256(reply.as_bytes())}, "annotations": {"module": p.module, "functionality": p.id, "role": "model reply", "request": key}}));
            }
        }
    }
    let render_id = code
        .head()
        .ok()
        .flatten()
        .and_then(|h| code.commit(&h).ok())
        .as_ref()
        .and_then(Trailers::of)
        .and_then(|t| t.render_id)
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
                "internalParameters": {"models": models, "templateVersion": templates},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": format!("rekindle@{}", env!("CARGO_PKG_VERSION"))},
                "metadata": {"invocationId": render_id},
            },
        },
    }))
}
