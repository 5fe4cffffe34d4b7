//! `rekindle.lock`: a diff-friendly TOML file, meant to be committed, that pins every
//! functionality to its render key, the trees it produced, and the cached replies it used, so
//! that `render --locked` can reproduce the build with no model and prove it did. This module
//! owns the format; serde and `toml` read and write it.

use crate::journal::Journal;
use crate::record::Record;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format version this rekindle reads and writes.
const VERSION: u32 = 1;

const HEADER: &str = "# rekindle.lock: every functionality pinned to its render key, the code and tests trees it\n# produced, and the cached model replies it used. Commit it with the specs and .rekindle/\n# (cache/ and trees.git/); `rekindle render --locked` then rebuilds the same trees anywhere,\n# without any model, and runs their tests. `journal-head` anchors the provenance journal\n# (`rekindle journal verify`).\n";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Pin {
    pub module: String,
    pub id: usize,
    pub render_key: String,
    pub tree: String,
    pub tests_tree: String,
    /// Response-cache keys of the model calls that produced it.
    #[serde(default)]
    pub cache: Vec<String>,
}

/// The models a lock's render used, as every render key holds them: each role's provider kind
/// and model, the escalation, the sampling. `render --locked` with flags naming other models
/// says which differ instead of failing on a render key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockModels {
    pub code: String,
    pub fix: String,
    pub tests: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<String>,
    /// The sampling parameters, as canonical JSON.
    pub sampling: String,
}

impl LockModels {
    /// From the model settings of a render (`rekindle_plan::keys::model_settings`).
    pub fn of(settings: &serde_json::Value) -> LockModels {
        let role = |v: &serde_json::Value| {
            format!(
                "{} {}",
                v["kind"].as_str().unwrap_or("?"),
                v["model"].as_str().unwrap_or("?")
            )
        };
        LockModels {
            code: role(&settings["code"]),
            fix: role(&settings["fix"]),
            tests: role(&settings["tests"]),
            escalate: settings["escalate"].as_object().map(|e| {
                format!(
                    "{} after {}",
                    role(&e["model"]),
                    e["after"].as_u64().unwrap_or(0)
                )
            }),
            sampling: settings["sampling"].to_string(),
        }
    }

    /// What differs from `now`, in words (`code: local a, not openai b`).
    pub fn differences(&self, now: &LockModels) -> Vec<String> {
        let none = || "none".to_string();
        [
            ("code", Some(&self.code), Some(&now.code)),
            ("fix", Some(&self.fix), Some(&now.fix)),
            ("tests", Some(&self.tests), Some(&now.tests)),
            ("escalate", self.escalate.as_ref(), now.escalate.as_ref()),
            ("sampling", Some(&self.sampling), Some(&now.sampling)),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(role, a, b)| {
            format!(
                "{role}: the lock has {}, this render names {}",
                a.cloned().unwrap_or_else(none),
                b.cloned().unwrap_or_else(none)
            )
        })
        .collect()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// The provenance journal's head when the lock was written: an anchor, committed with the
    /// spec, that `journal verify` finds in the chain (a rewritten journal does not hold it).
    pub journal_head: Option<String>,
    /// The models of the render that wrote the lock (`None` in locks written before they were
    /// recorded).
    pub models: Option<LockModels>,
    pub pins: Vec<Pin>,
}

/// The file as TOML sees it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: toml::Spanned<u32>,
    #[serde(
        default,
        rename = "journal-head",
        skip_serializing_if = "Option::is_none"
    )]
    journal_head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    models: Option<LockModels>,
    #[serde(default, rename = "functionality")]
    pins: Vec<Pin>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The text is not a lock this version reads; `line` is 1-based.
    #[error("rekindle.lock line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// The journal says which cached replies each render used; without it a lock would pin
    /// none of them, and `render --locked` would have nothing to replay.
    #[error("the journal cannot be read ({detail}), so the lock cannot pin the replies the render used; run `rekindle journal verify`")]
    Journal { detail: String },
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Lock {
    pub fn to_text(&self) -> String {
        let file = File {
            version: toml::Spanned::new(0..0, VERSION),
            journal_head: self.journal_head.clone(),
            models: self.models.clone(),
            pins: self.pins.clone(),
        };
        let body = toml::to_string_pretty(&file).unwrap_or_default();
        format!("{HEADER}{body}")
    }

    /// Reads a lock; the error names the line.
    pub fn parse(text: &str) -> Result<Lock, LockError> {
        let file: File = toml::from_str(text).map_err(|e| LockError::Syntax {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        if *file.version.get_ref() != VERSION {
            return Err(LockError::Syntax {
                line: line_of(text, file.version.span().start),
                message: format!("unknown version; this rekindle reads version {VERSION}"),
            });
        }
        Ok(Lock {
            journal_head: file.journal_head,
            models: file.models,
            pins: file.pins,
        })
    }

    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Lock::parse(&t).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Writes atomically.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.to_text())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| LockError::Write {
                path: path.display().to_string(),
                source,
            })
    }

    /// The lock of a build: pins from the build folder, cache keys from the journal (or the
    /// previous lock, for functionalities this journal never saw rendered by a model: rendered
    /// elsewhere, or restored by `render --locked`).
    pub fn of_build(
        built: &[rekindle_render::Built],
        journal: &Journal,
        previous: Option<&Lock>,
        models: LockModels,
    ) -> Result<Lock, LockError> {
        let entries = journal.entries().map_err(|e| LockError::Journal {
            detail: e.to_string(),
        })?;
        // No journal here (a copy made without it): the anchor the lock had stays.
        let journal_head = match entries.last() {
            Some(e) => Some(e.hash.clone()),
            None => previous.and_then(|l| l.journal_head.clone()),
        };
        let records: Vec<Record> = entries.into_iter().map(|e| e.record).collect();
        let pins = built
            .iter()
            .map(|b| {
                let render_id = records.iter().rev().find_map(|r| match r {
                    Record::Step(s)
                        if s.module == b.module
                            && s.functionality == b.id
                            && s.render_key == b.render_key =>
                    {
                        Some(s.render_id.as_str())
                    }
                    _ => None,
                });
                let mut cache: Vec<String> = render_id
                    .map(|rid| {
                        records
                            .iter()
                            .filter_map(|r| match r {
                                Record::ModelCall(c)
                                    if c.module == b.module
                                        && c.functionality == b.id
                                        && c.render_id == rid =>
                                {
                                    Some(c.request.clone())
                                }
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if cache.is_empty() {
                    cache = previous
                        .and_then(|l| {
                            l.pins.iter().find(|p| {
                                p.module == b.module && p.id == b.id && p.render_key == b.render_key
                            })
                        })
                        .map(|p| p.cache.clone())
                        .unwrap_or_default();
                }
                cache.dedup();
                Pin {
                    module: b.module.clone(),
                    id: b.id,
                    render_key: b.render_key.clone(),
                    tree: b.tree.clone(),
                    tests_tree: b.tests_tree.clone(),
                    cache,
                }
            })
            .collect();
        Ok(Lock {
            journal_head,
            models: Some(models),
            pins,
        })
    }

    /// The first difference between what was pinned and what was built, in words.
    pub fn compare(&self, built: &[Pin]) -> Option<String> {
        for p in &self.pins {
            let Some(b) = built.iter().find(|b| b.module == p.module && b.id == p.id) else {
                return Some(format!(
                    "functionality {} of module {} was not built",
                    p.id, p.module
                ));
            };
            if b.render_key != p.render_key {
                return Some(format!(
                    "functionality {} of module {}: the render key differs from the lock (the spec, resources, templates, models or scripts changed)",
                    p.id, p.module
                ));
            }
            if b.tree != p.tree || b.tests_tree != p.tests_tree {
                return Some(format!(
                    "functionality {} of module {}: the rebuilt {} differs from the locked tree",
                    p.id,
                    p.module,
                    if b.tree != p.tree {
                        "code"
                    } else {
                        "conformance tests"
                    }
                ));
            }
        }
        built
            .iter()
            .find(|b| {
                !self
                    .pins
                    .iter()
                    .any(|p| p.module == b.module && p.id == b.id)
            })
            .map(|b| {
                format!(
                    "functionality {} of module {} is not in the lock",
                    b.id, b.module
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> LockModels {
        LockModels::of(&serde_json::json!({
            "code": {"kind": "local", "model": "qwen-1.5b"},
            "fix": {"kind": "local", "model": "qwen-1.5b"},
            "tests": {"kind": "local", "model": "qwen-1.5b"},
            "escalate": null,
            "sampling": {"temperature": 0.0},
        }))
    }

    fn lock() -> Lock {
        Lock {
            journal_head: Some("h".into()),
            models: Some(models()),
            pins: vec![Pin {
                module: "app \"quoted\"".into(),
                id: 1,
                render_key: "k".into(),
                tree: "t".into(),
                tests_tree: "tt".into(),
                cache: vec!["c1".into(), "c2".into()],
            }],
        }
    }

    #[test]
    fn round_trip_and_compare() {
        let lock = lock();
        let text = lock.to_text();
        assert!(text.starts_with("# rekindle.lock"), "{text}");
        assert!(text.contains("[[functionality]]") && text.contains("render-key = \"k\""));
        assert!(text.contains("journal-head = \"h\"\n"), "{text}");
        assert_eq!(Lock::parse(&text).unwrap(), lock);
        assert!(lock.compare(&lock.pins).is_none());
        let mut other = lock.pins.clone();
        other[0].tree = "x".into();
        assert!(lock.compare(&other).unwrap().contains("code differs"));
    }

    #[test]
    fn other_models_are_named_role_by_role() {
        let a = models();
        assert_eq!(a.code, "local qwen-1.5b");
        assert!(a.differences(&a).is_empty());
        let b = LockModels::of(&serde_json::json!({
            "code": {"kind": "openai", "model": "gpt-x"},
            "fix": {"kind": "local", "model": "qwen-1.5b"},
            "tests": {"kind": "local", "model": "qwen-1.5b"},
            "escalate": {"model": {"kind": "anthropic", "model": "big"}, "after": 2},
            "sampling": {"temperature": 0.0},
        }));
        assert_eq!(
            a.differences(&b),
            vec![
                "code: the lock has local qwen-1.5b, this render names openai gpt-x".to_string(),
                "escalate: the lock has none, this render names anthropic big after 2".to_string(),
            ]
        );
    }

    #[test]
    fn the_format_of_the_first_version_still_reads() {
        let text = "# comment\nversion = 1\n\n[[functionality]]\nmodule = \"app\"\nid = 2\nrender-key = \"k\"\ntree = \"t\"\ntests-tree = \"tt\"\ncache = [\n  \"c1\",\n]\n";
        let l = Lock::parse(text).unwrap();
        assert_eq!((l.pins[0].id, l.pins[0].cache.len()), (2, 1));
        assert_eq!(l.journal_head, None);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Lock::parse("version = 1\nid = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = Lock::parse("# x\n\nversion = 2\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("unknown version"), "{e}");
        let e = Lock::parse("version = 1\n[[functionality]]\nmodule = \"a\"\nid = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 4"), "{e}");
    }
}
