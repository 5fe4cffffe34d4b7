//! Render keys: a hash of everything that goes into rendering one functionality — its own spec
//! text and acceptance tests, the shared definitions and reqs, linked resources, prompt
//! templates, model settings, test scripts, and the tree the previous functionality left. Equal
//! keys mean the earlier result can be reused without asking any model.
//!
//! Texts are normalized (whitespace runs folded) so that reflowing a paragraph or editing a
//! `>` comment changes nothing. The texts of earlier functionalities are deliberately *not* in
//! the key: they reach this functionality only through the code they produced (the parent
//! tree), which is what makes early cutoff possible.
//!
//! Pure: the caller supplies what needs I/O (the prompt templates' version, the scripts' hashes,
//! the parent tree); the spec supplies the linked resources it already read.

use rekindle_llm::{ProviderKind, Sampling};
use rekindle_spec::concepts;
use rekindle_spec::model::Item;
use rekindle_spec::project::{Project, RenderModule};
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
    "a test script or the sandbox settings changed",
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

    /// The parts as one line, as the key-parts commit trailer records them.
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

/// The model settings that go into every render key: each role's provider kind and model, the
/// escalation step, and the sampling parameters.
pub fn model_settings(
    roles: [(ProviderKind, &str); 3],
    escalate: Option<((ProviderKind, &str), u32)>,
    sampling: &Sampling,
) -> serde_json::Value {
    let one =
        |(kind, model): &(ProviderKind, &str)| serde_json::json!({"kind": kind, "model": model});
    serde_json::json!({
        "code": one(&roles[0]), "fix": one(&roles[1]), "tests": one(&roles[2]),
        "escalate": escalate.as_ref().map(|(m, n)| serde_json::json!({"model": one(m), "after": n})),
        "sampling": sampling,
    })
}

/// A linked resource of a functionality, as the spec resolved it.
#[derive(Clone, Copy, Debug)]
pub struct LinkedResource<'a> {
    /// The link's text.
    pub name: &'a str,
    /// The link's target as written.
    pub target: &'a str,
    pub content: &'a str,
    pub blake3: &'a str,
}

/// Everything besides the spec that every key of one render depends on.
#[derive(Clone, Debug)]
pub struct KeyContext<'a> {
    pub template_version: &'a str,
    /// [`model_settings`].
    pub models: &'a serde_json::Value,
    /// (script role, BLAKE3 of the script).
    pub scripts: Vec<(String, String)>,
}

/// Computes the keys of one project's functionalities.
pub struct Keyer<'a> {
    pub project: &'a Project,
    pub context: KeyContext<'a>,
}

impl<'a> Keyer<'a> {
    /// The definitions a module's prompts show, in the reference's order.
    pub fn definitions(&self, rm: &RenderModule) -> Vec<String> {
        concepts::sorted_definitions(&self.project.bodies, &rm.sections)
            .iter()
            .map(|i| i.text.clone())
            .collect()
    }

    /// The resources linked from the module's shared sections and from functionality `k` and its
    /// acceptance tests, each once, in order of appearance.
    pub fn resources(&self, rm: &'a RenderModule, k: usize) -> Vec<LinkedResource<'a>> {
        let s = &rm.sections;
        let f = &s.functional_specs[k - 1];
        let shared = s
            .definitions
            .iter()
            .chain(&s.implementation_reqs)
            .chain(&s.test_reqs);
        let own = std::iter::once(f).chain(f.acceptance_tests.iter());
        let mut out: Vec<LinkedResource<'a>> = Vec::new();
        for item in shared.chain(own) {
            for l in &item.links {
                if out.iter().any(|r| r.target == l.target) {
                    continue;
                }
                let Some(r) = self.project.resource(l) else {
                    continue;
                };
                out.push(LinkedResource {
                    name: &l.text,
                    target: &l.target,
                    content: &r.content,
                    blake3: &r.blake3,
                });
            }
        }
        out
    }

    /// The key of functionality `k` (1-based) of `rm`, built on `parent_tree`.
    pub fn key(&self, rm: &RenderModule, defs: &[String], k: usize, parent_tree: &str) -> KeyParts {
        let s = &rm.sections;
        let f = &s.functional_specs[k - 1];
        let norm =
            |v: &[std::sync::Arc<Item>]| v.iter().map(|i| normalize(&i.text)).collect::<Vec<_>>();
        parts(&KeyInput {
            template_version: self.context.template_version,
            models: self.context.models,
            module: &self.project.module(rm.module).name,
            definitions: defs.iter().map(|d| normalize(d)).collect(),
            implementation_reqs: norm(&s.implementation_reqs),
            test_reqs: norm(&s.test_reqs),
            resources: self
                .resources(rm, k)
                .into_iter()
                .map(|r| (r.target.to_string(), r.blake3.to_string()))
                .collect(),
            current: normalize(&f.text),
            acceptance_tests: norm(&f.acceptance_tests),
            scripts: self.context.scripts.clone(),
            parent_tree,
        })
    }
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
