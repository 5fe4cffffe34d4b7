//! Where things live. The one owner of every path rekindle keeps on disk: the build folder
//! (per module: the code repository, the conformance tests repository with one folder per
//! functionality, the in-progress marker) and the project's own `.rekindle` folder (journal,
//! patches, response cache) with `rekindle.lock` beside the spec. Nobody else spells these names.
//!
//! ```text
//! <build-folder>/.rekindle.lock            held by the one render using the build folder
//! <build-folder>/<module>/code             git repository: the generated code
//! <build-folder>/<module>/tests/fNN        conformance tests of functionality NN (repository at tests/)
//! <build-folder>/<module>/.rendering       present while a functionality is being rendered
//! <spec folder>/rekindle.lock              pins of every functionality (`rekindle render --locked`)
//! <spec folder>/.rekindle/journal.jsonl    the provenance journal (its head in journal.jsonl.head)
//! <spec folder>/.rekindle/patches/         hand edits saved by `render --force`
//! <spec folder>/.rekindle/cache/           the default response cache
//! <spec folder>/.rekindle/trees.git/       the tree store: every tree rekindle.lock pins
//! <build-dest>/.rekindle-manifest          the files rekindle copied there (only those are replaced)
//! ```

use std::path::{Path, PathBuf};

/// The build folder of a project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildLayout {
    pub root: PathBuf,
}

/// One module's folders inside the build folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleLayout {
    /// The git repository holding the generated code.
    pub code: PathBuf,
    /// The git repository holding every functionality's conformance tests.
    pub tests: PathBuf,
    /// Present while a functionality is being rendered; its work is discarded by the next run.
    pub marker: PathBuf,
}

const CODE: &str = "code";
/// Where generated code lives, in words for messages.
pub const CODE_FOLDER_PATTERN: &str = "<build-folder>/<module>/code";
const TESTS: &str = "tests";
const MARKER: &str = ".rendering";
const BUILD_LOCK: &str = ".rekindle.lock";
/// The list of files rekindle copied into a destination folder (`build-dest`).
pub const COPY_MANIFEST: &str = ".rekindle-manifest";

/// The manifest of the files rekindle copied into `dest`: the only files a later copy may
/// replace or remove.
pub fn copy_manifest(dest: &Path) -> PathBuf {
    dest.join(COPY_MANIFEST)
}

impl BuildLayout {
    pub fn new(root: impl Into<PathBuf>) -> BuildLayout {
        BuildLayout { root: root.into() }
    }

    pub fn module(&self, name: &str) -> ModuleLayout {
        let base = self.root.join(name);
        ModuleLayout {
            code: base.join(CODE),
            tests: base.join(TESTS),
            marker: base.join(MARKER),
        }
    }

    /// Where hand edits are saved when no project is named (library use; the CLI saves them in
    /// [`ProjectLayout::patches`]).
    pub fn patches(&self) -> PathBuf {
        self.root.join(".rekindle-patches")
    }

    /// The file a render holds locked so that two renders never share a build folder.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(BUILD_LOCK)
    }
}

impl ModuleLayout {
    /// The folder of functionality `k`'s conformance tests (1-based).
    pub fn conformance_tests(&self, k: usize) -> PathBuf {
        self.tests.join(format!("f{k:02}"))
    }
}

/// The files rekindle keeps beside a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectLayout {
    /// The spec's folder.
    pub dir: PathBuf,
}

impl ProjectLayout {
    /// The layout of the project whose entry spec is `spec`.
    pub fn for_spec(spec: &Path) -> ProjectLayout {
        ProjectLayout {
            dir: spec
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        }
    }

    /// The project's own folder of records, beside the spec.
    pub fn rekindle_dir(&self) -> PathBuf {
        self.dir.join(".rekindle")
    }

    pub fn journal(&self) -> PathBuf {
        self.rekindle_dir().join("journal.jsonl")
    }

    pub fn patches(&self) -> PathBuf {
        self.rekindle_dir().join("patches")
    }

    /// The response cache when rekindle.toml names none.
    pub fn default_cache(&self) -> PathBuf {
        self.rekindle_dir().join("cache")
    }

    pub fn lock(&self) -> PathBuf {
        self.dir.join("rekindle.lock")
    }

    /// The tree store (a bare git repository) holding every tree the lock pins.
    /// Conversations about the specs (`rekindle converse`), one file each, named by the BLAKE3
    /// of its content.
    pub fn conversations(&self) -> PathBuf {
        self.rekindle_dir().join("conversations")
    }

    pub fn trees(&self) -> PathBuf {
        self.rekindle_dir().join("trees.git")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_where_the_documentation_says() {
        let b = BuildLayout::new("/b");
        let m = b.module("app");
        assert_eq!(m.code, Path::new("/b/app/code"));
        assert_eq!(m.tests, Path::new("/b/app/tests"));
        assert_eq!(m.marker, Path::new("/b/app/.rendering"));
        assert_eq!(m.conformance_tests(3), Path::new("/b/app/tests/f03"));
        assert_eq!(m.conformance_tests(12), Path::new("/b/app/tests/f12"));
        assert_eq!(b.lock_file(), Path::new("/b/.rekindle.lock"));
        assert_eq!(
            copy_manifest(Path::new("/d")),
            Path::new("/d/.rekindle-manifest")
        );
        let p = ProjectLayout::for_spec(Path::new("app.plain"));
        assert_eq!(p.journal(), Path::new("./.rekindle/journal.jsonl"));
        assert_eq!(p.lock(), Path::new("./rekindle.lock"));
        let p = ProjectLayout::for_spec(Path::new("/p/app.plain"));
        assert_eq!(p.patches(), Path::new("/p/.rekindle/patches"));
        assert_eq!(p.default_cache(), Path::new("/p/.rekindle/cache"));
        assert_eq!(p.trees(), Path::new("/p/.rekindle/trees.git"));
    }
}
