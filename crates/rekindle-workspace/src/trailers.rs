//! The trailers rekindle writes into every commit it makes, and reads back to know what is
//! rendered: the one owner of their names and their order in a commit message.
//!
//! A finished functionality's commit carries `Rekindle-Module`, `Rekindle-Functionality`,
//! `Rekindle-Render-Key`, `Rekindle-Key-Parts`, `Rekindle-Spec-Hash`, `Rekindle-Render-Id` and
//! (in the code repository) `Rekindle-Tests-Commit`, and `Rekindle-Journal-Head`: the head of
//! the provenance journal when the commit was made, an anchor `journal verify` checks. A module's base commit (functionality 0)
//! carries `Rekindle-Base`, the tree it was made from, and the tests repository's base commit.

use crate::git::Commit;

const MODULE: &str = "Rekindle-Module";
const FUNCTIONALITY: &str = "Rekindle-Functionality";
const RENDER_KEY: &str = "Rekindle-Render-Key";
const KEY_PARTS: &str = "Rekindle-Key-Parts";
const SPEC_HASH: &str = "Rekindle-Spec-Hash";
const RENDER_ID: &str = "Rekindle-Render-Id";
const BASE: &str = "Rekindle-Base";
const TESTS_COMMIT: &str = "Rekindle-Tests-Commit";
const JOURNAL_HEAD: &str = "Rekindle-Journal-Head";

/// What a rekindle commit says about itself. `functionality` 0 is a module's base commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trailers {
    pub module: String,
    pub functionality: usize,
    pub render_key: Option<String>,
    pub key_parts: Option<String>,
    pub spec_hash: Option<String>,
    pub render_id: Option<String>,
    /// The tree (or "empty") a base commit was made from.
    pub base: Option<String>,
    pub tests_commit: Option<String>,
    /// The journal's head when the commit was made.
    pub journal_head: Option<String>,
}

impl Trailers {
    /// The trailers of `commit`, or `None` when rekindle did not make it.
    pub fn of(commit: &Commit) -> Option<Trailers> {
        let get = |k: &str| commit.trailer(k).map(str::to_string);
        Some(Trailers {
            module: get(MODULE)?,
            functionality: commit.trailer(FUNCTIONALITY)?.parse().ok()?,
            render_key: get(RENDER_KEY),
            key_parts: get(KEY_PARTS),
            spec_hash: get(SPEC_HASH),
            render_id: get(RENDER_ID),
            base: get(BASE),
            tests_commit: get(TESTS_COMMIT),
            journal_head: get(JOURNAL_HEAD),
        })
    }

    /// `Key: value` pairs in the order they are written.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (MODULE, self.module.clone()),
            (FUNCTIONALITY, self.functionality.to_string()),
        ];
        let optional = [
            (RENDER_KEY, &self.render_key),
            (KEY_PARTS, &self.key_parts),
            (SPEC_HASH, &self.spec_hash),
            (RENDER_ID, &self.render_id),
            (BASE, &self.base),
            (TESTS_COMMIT, &self.tests_commit),
            (JOURNAL_HEAD, &self.journal_head),
        ];
        out.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.clone()))),
        );
        out
    }

    /// A whole commit message: the subject (and body), a blank line, the trailers.
    pub fn message(&self, subject: &str) -> String {
        let mut m = format!("{subject}\n\n");
        for (k, v) in self.pairs() {
            m.push_str(&format!("{k}: {v}\n"));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_through_a_commit() {
        let t = Trailers {
            module: "app".into(),
            functionality: 2,
            render_key: Some("k".into()),
            key_parts: Some("spec=a;parent=b".into()),
            spec_hash: Some("s".into()),
            render_id: Some("r".into()),
            base: None,
            tests_commit: Some("t".into()),
            journal_head: Some("h".into()),
        };
        let msg = t.message("rekindle: functionality 2 of module app");
        assert_eq!(
            msg,
            "rekindle: functionality 2 of module app\n\nRekindle-Module: app\nRekindle-Functionality: 2\nRekindle-Render-Key: k\nRekindle-Key-Parts: spec=a;parent=b\nRekindle-Spec-Hash: s\nRekindle-Render-Id: r\nRekindle-Tests-Commit: t\nRekindle-Journal-Head: h\n"
        );
        let commit = Commit {
            id: "c".into(),
            tree: "t".into(),
            parent: None,
            subject: String::new(),
            trailers: t
                .pairs()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        };
        assert_eq!(Trailers::of(&commit), Some(t));
        let foreign = Commit {
            trailers: vec![("Signed-off-by".into(), "x".into())],
            ..commit
        };
        assert_eq!(Trailers::of(&foreign), None);
    }
}
