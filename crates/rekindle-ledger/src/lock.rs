//! `rekindle.lock`: a diff-friendly text file, meant to be committed, that pins every
//! functionality to its render key, the trees it produced, and the cached replies it used, so
//! that `render --locked` can reproduce the build with no model and prove it did.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub module: String,
    pub id: usize,
    pub render_key: String,
    pub tree: String,
    pub tests_tree: String,
    /// Response-cache keys of the model calls that produced it.
    pub cache: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    pub pins: Vec<Pin>,
}

pub fn path_for(spec: &Path) -> PathBuf {
    spec.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join("rekindle.lock")
}

impl Lock {
    pub fn to_text(&self) -> String {
        let mut out = String::from("# rekindle.lock: every functionality pinned to its render key, the code and tests trees it\n# produced, and the cached model replies it used. Commit it with the specs and .rekindle/cache;\n# `rekindle render --locked` then rebuilds the same code without any model.\nversion = 1\n");
        for p in &self.pins {
            out.push_str(&format!(
                "\n[[functionality]]\nmodule = \"{}\"\nid = {}\nrender-key = \"{}\"\ntree = \"{}\"\ntests-tree = \"{}\"\ncache = [\n{}]\n",
                p.module,
                p.id,
                p.render_key,
                p.tree,
                p.tests_tree,
                p.cache.iter().map(|c| format!("  \"{c}\",\n")).collect::<String>()
            ));
        }
        out
    }

    /// Reads a lock; the error names the line.
    pub fn parse(text: &str) -> Result<Lock, String> {
        let mut pins: Vec<Pin> = Vec::new();
        let mut in_cache = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let bad = |what: &str| format!("rekindle.lock line {}: {what}", i + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if in_cache {
                if line == "]" {
                    in_cache = false;
                } else {
                    let v = line.trim_end_matches(',').trim_matches('"');
                    pins.last_mut()
                        .ok_or_else(|| bad("cache entry outside a functionality"))?
                        .cache
                        .push(v.to_string());
                }
                continue;
            }
            if line == "[[functionality]]" {
                pins.push(Pin {
                    module: String::new(),
                    id: 0,
                    render_key: String::new(),
                    tree: String::new(),
                    tests_tree: String::new(),
                    cache: Vec::new(),
                });
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| bad("expected `key = value`"))?;
            let (k, v) = (k.trim(), v.trim());
            if k == "version" {
                if v != "1" {
                    return Err(bad("unknown version; this rekindle reads version 1"));
                }
                continue;
            }
            let p = pins
                .last_mut()
                .ok_or_else(|| bad("a value outside [[functionality]]"))?;
            let s = v.trim_matches('"').to_string();
            match k {
                "module" => p.module = s,
                "id" => p.id = v.parse().map_err(|_| bad("id is not a number"))?,
                "render-key" => p.render_key = s,
                "tree" => p.tree = s,
                "tests-tree" => p.tests_tree = s,
                "cache" if v == "[" => in_cache = true,
                "cache" if v == "[]" => {}
                _ => return Err(bad(&format!("unknown key `{k}`"))),
            }
        }
        Ok(Lock { pins })
    }

    pub fn read(path: &Path) -> Result<Option<Lock>, String> {
        match std::fs::read_to_string(path) {
            Ok(t) => Lock::parse(&t).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes atomically.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let tmp = path.with_extension("lock.tmp");
        std::fs::write(&tmp, self.to_text())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
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

    #[test]
    fn round_trip_and_compare() {
        let lock = Lock {
            pins: vec![Pin {
                module: "app".into(),
                id: 1,
                render_key: "k".into(),
                tree: "t".into(),
                tests_tree: "tt".into(),
                cache: vec!["c1".into(), "c2".into()],
            }],
        };
        let text = lock.to_text();
        assert_eq!(Lock::parse(&text).unwrap(), lock);
        assert!(lock.compare(&lock.pins).is_none());
        let mut other = lock.pins.clone();
        other[0].tree = "x".into();
        assert!(lock.compare(&other).unwrap().contains("code differs"));
        assert!(Lock::parse("version = 1\nid = 3\n")
            .unwrap_err()
            .contains("line 2"));
    }
}
