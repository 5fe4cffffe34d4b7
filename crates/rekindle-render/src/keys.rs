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

pub fn render_key(input: &KeyInput<'_>) -> String {
    let json = rekindle_llm::cache::canonical_json(&(1u32, input));
    blake3::hash(json.as_bytes()).to_hex().to_string()
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
}
