//! Render keys: a hash of everything that goes into rendering one functionality — its own spec
//! text and acceptance tests, the shared definitions and reqs, linked resources, prompt
//! templates, model settings, test scripts, and the tree the previous functionality left. Equal
//! keys mean the earlier result can be reused without asking any model.
//!
//! Texts are normalized (whitespace runs folded) so that reflowing a paragraph or editing a
//! `>` comment changes nothing. The texts of earlier functionalities are deliberately *not* in
//! the key: they reach this functionality only through the code they produced (the parent
//! tree), which is what makes early cutoff possible.

use serde::Serialize;

pub fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Serialize)]
pub struct KeyInput<'a> {
    pub template_version: &'a str,
    /// Provider kind, model and sampling of every role.
    pub models: &'a serde_json::Value,
    pub module: &'a str,
    pub definitions: Vec<String>,
    pub implementation_reqs: Vec<String>,
    pub test_reqs: Vec<String>,
    /// (link target, BLAKE3 of the content).
    pub resources: Vec<(String, String)>,
    pub current: String,
    pub acceptance_tests: Vec<String>,
    /// (script role, BLAKE3 of the script).
    pub scripts: Vec<(String, String)>,
    pub parent_tree: &'a str,
}

fn h<T: Serialize>(v: &T) -> String {
    let json = rekindle_llm::cache::canonical_json(v);
    blake3::hash(json.as_bytes()).to_hex()[..16].to_string()
}

/// The key split by where its inputs come from, so that a change can be explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyParts {
    pub spec: String,
    pub shared: String,
    pub resources: String,
    pub templates: String,
    pub models: String,
    pub scripts: String,
    pub parent: String,
}

const NAMES: [&str; 7] = [
    "spec",
    "shared",
    "resources",
    "templates",
    "models",
    "scripts",
    "parent",
];

/// Why a part differs, in the order of [`NAMES`].
const REASONS: [&str; 7] = [
    "its spec text or acceptance tests changed",
    "the definitions, implementation reqs or test reqs changed",
    "a linked resource changed",
    "rekindle's prompt templates changed",
    "the model settings changed",
    "a test script changed",
    "the code left by the functionality before it changed",
];

impl KeyParts {
    fn fields(&self) -> [&String; 7] {
        [
            &self.spec,
            &self.shared,
            &self.resources,
            &self.templates,
            &self.models,
            &self.scripts,
            &self.parent,
        ]
    }

    pub fn key(&self) -> String {
        blake3::hash(self.trailer().as_bytes()).to_hex().to_string()
    }

    /// The value of the `Rekindle-Key-Parts` trailer.
    pub fn trailer(&self) -> String {
        NAMES
            .iter()
            .zip(self.fields())
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    pub fn parse(trailer: &str) -> Option<KeyParts> {
        let mut m = std::collections::HashMap::new();
        for kv in trailer.split(';') {
            let (k, v) = kv.split_once('=')?;
            m.insert(k.trim(), v.trim().to_string());
        }
        let mut get = |k: &str| m.remove(k);
        Some(KeyParts {
            spec: get("spec")?,
            shared: get("shared")?,
            resources: get("resources")?,
            templates: get("templates")?,
            models: get("models")?,
            scripts: get("scripts")?,
            parent: get("parent")?,
        })
    }

    /// What changed since `old`, in words.
    pub fn explain(&self, old: &KeyParts) -> Vec<&'static str> {
        self.fields()
            .into_iter()
            .zip(old.fields())
            .zip(REASONS)
            .filter(|((new, old), _)| new != old)
            .map(|(_, why)| why)
            .collect()
    }
}

pub fn parts(input: &KeyInput<'_>) -> KeyParts {
    KeyParts {
        spec: h(&(&input.module, &input.current, &input.acceptance_tests)),
        shared: h(&(
            &input.definitions,
            &input.implementation_reqs,
            &input.test_reqs,
        )),
        resources: h(&input.resources),
        templates: input.template_version.to_string(),
        models: h(input.models),
        scripts: h(&input.scripts),
        parent: input.parent_tree.to_string(),
    }
}

pub fn render_key(input: &KeyInput<'_>) -> String {
    parts(input).key()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_matter() {
        assert_eq!(normalize("a  b\n  c\t"), normalize("a b c"));
        let models = serde_json::json!({});
        let mk = |current: &str, parent: &'static str| {
            render_key(&KeyInput {
                template_version: "t",
                models: &models,
                module: "m",
                definitions: vec![],
                implementation_reqs: vec![],
                test_reqs: vec![],
                resources: vec![],
                current: normalize(current),
                acceptance_tests: vec![],
                scripts: vec![],
                parent_tree: parent,
            })
        };
        assert_eq!(mk("Show  it", "a"), mk("Show\nit", "a"));
        assert_ne!(mk("Show it", "a"), mk("Show it", "b"));
        assert_ne!(mk("Show it", "a"), mk("Show that", "a"));
    }

    #[test]
    fn parts_round_trip_and_explain() {
        let models = serde_json::json!({});
        let input = KeyInput {
            template_version: "t",
            models: &models,
            module: "m",
            definitions: vec![],
            implementation_reqs: vec![],
            test_reqs: vec![],
            resources: vec![],
            current: "x".into(),
            acceptance_tests: vec![],
            scripts: vec![],
            parent_tree: "p",
        };
        let a = parts(&input);
        assert_eq!(KeyParts::parse(&a.trailer()), Some(a.clone()));
        let mut b = a.clone();
        b.spec = "other".into();
        b.parent = "q".into();
        assert_eq!(b.explain(&a).len(), 2);
        assert_ne!(a.key(), b.key());
    }
}
