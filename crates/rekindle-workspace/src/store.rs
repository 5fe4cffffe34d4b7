//! The tree store: a bare git repository beside the spec (`.rekindle/trees.git`) that keeps,
//! for every tree rekindle.lock pins, a commit holding that tree under `refs/trees/<tree id>`.
//! `render --locked` takes each functionality's code and conformance tests from here, so a
//! locked build is rebuilt exactly wherever and whenever it runs, with no model and whatever
//! the test scripts print. Git's object ids are the content addresses: a tree fetched from the
//! store is the pinned tree by construction, and it is checked once more after the fetch.
//!
//! The store only ever holds what the lock pins: [`TreeStore::keep_only`] drops the rest.

use crate::git::{GitError, Repo};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const PREFIX: &str = "refs/trees/";

pub struct TreeStore {
    repo: Repo,
}

impl TreeStore {
    pub fn new(dir: impl Into<PathBuf>) -> TreeStore {
        TreeStore {
            repo: Repo::bare(dir),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.repo.dir
    }

    fn name(tree: &str) -> String {
        format!("{PREFIX}{tree}")
    }

    /// Whether the store holds `tree`.
    pub fn has(&self, tree: &str) -> bool {
        self.repo.exists()
            && self
                .repo
                .resolve(&format!("{}^{{tree}}", Self::name(tree)))
                .as_deref()
                == Some(tree)
    }

    /// Keeps the trees of `commits` of the repository `from`, each given as (commit, its tree),
    /// creating the store when needed. Trees already kept are kept as they are.
    pub fn save(&self, from: &Repo, commits: &[(String, String)]) -> Result<(), GitError> {
        let kept: HashSet<String> = if self.repo.exists() {
            self.repo.refs(PREFIX)?.into_iter().collect()
        } else {
            HashSet::new()
        };
        let mut refs: Vec<(String, String)> = Vec::new();
        for (commit, tree) in commits {
            let name = Self::name(tree);
            if !kept.contains(&name) && !refs.iter().any(|(_, r)| *r == name) {
                refs.push((commit.clone(), name));
            }
        }
        if refs.is_empty() {
            return Ok(());
        }
        self.repo.init()?;
        from.push(&self.repo.dir, &refs)
    }

    /// Brings `tree`, which the store holds ([`TreeStore::has`]), into the repository `to`
    /// (under the store's own ref name there), and checks that the tree that arrived is `tree`.
    pub fn restore_into(&self, to: &Repo, tree: &str) -> Result<(), GitError> {
        let name = Self::name(tree);
        to.fetch(&self.repo.dir, std::slice::from_ref(&name))?;
        match to.resolve(&format!("{name}^{{tree}}")) {
            Some(t) if t == tree => Ok(()),
            got => Err(GitError {
                command: format!("fetch {name}"),
                detail: format!(
                    "the tree store gave {} for tree {tree}; the store at {} is damaged",
                    got.unwrap_or_else(|| "nothing".into()),
                    self.repo.dir.display()
                ),
            }),
        }
    }

    /// Drops every tree but `keep`; returns how many went.
    pub fn keep_only(&self, keep: &HashSet<String>) -> Result<usize, GitError> {
        if !self.repo.exists() {
            return Ok(0);
        }
        let gone: Vec<String> = self
            .repo
            .refs(PREFIX)?
            .into_iter()
            .filter(|r| !keep.contains(r.trim_start_matches(PREFIX)))
            .collect();
        self.repo.delete_refs_and_prune(&gone)?;
        Ok(gone.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_with(dir: &Path, files: &[(&str, &str)]) -> (Repo, String) {
        let r = Repo::new(dir);
        r.init().unwrap();
        for (p, c) in files {
            std::fs::write(dir.join(p), c).unwrap();
        }
        let c = r.commit_all("one", &[]).unwrap();
        (r, c)
    }

    #[test]
    fn a_saved_tree_comes_back_in_another_repository_and_unpinned_trees_go() {
        let t = tempfile::tempdir().unwrap();
        let (a, c1) = repo_with(&t.path().join("a"), &[("x.py", "print(1)\n")]);
        std::fs::write(t.path().join("a/y.py"), "print(2)\n").unwrap();
        let c2 = a.commit_all("two", &[]).unwrap();
        let (t1, t2) = (a.tree_of(&c1).unwrap(), a.tree_of(&c2).unwrap());
        let store = TreeStore::new(t.path().join("store.git"));
        assert!(!store.has(&t1));
        store
            .save(&a, &[(c1.clone(), t1.clone()), (c2.clone(), t2.clone())])
            .unwrap();
        assert!(store.has(&t1) && store.has(&t2));
        // Saving again is a no-op, not an error.
        store.save(&a, &[(c2, t2.clone())]).unwrap();

        // Another repository, elsewhere, gets the exact tree: same id, same content.
        let b = Repo::new(t.path().join("elsewhere/b"));
        b.init().unwrap();
        store.restore_into(&b, &t2).unwrap();
        let c = b.commit_tree(&t2, None, "restored").unwrap();
        b.move_head(&c).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("elsewhere/b/y.py")).unwrap(),
            "print(2)\n"
        );
        assert_eq!(b.tree_of("HEAD").unwrap(), t2);
        // A tree it never held is not there: `has` says so, and fetching it is an error.
        let other = "0".repeat(40);
        assert!(!store.has(&other));
        assert!(store.restore_into(&b, &other).is_err());

        assert_eq!(store.keep_only(&HashSet::from([t2.clone()])).unwrap(), 1);
        assert!(!store.has(&t1));
        assert!(store.has(&t2));
    }
}
