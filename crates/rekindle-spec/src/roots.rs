//! The project's roots: the only folders a spec may draw text from, whether through a link (a
//! resource that goes into prompts) or an `{% include %}`. Defined here once:
//!
//! - the entry spec's folder;
//! - the template folders (`template-dir` in config.yaml, `[spec] template-dirs` in
//!   rekindle.toml, `--template-dir`);
//! - `[spec] roots` from rekindle.toml;
//! - the git repository the spec's folder is in, unless that repository is the user's home
//!   folder or `/` (where it would let a spec reach every file);
//! - the built-in library, which is not on disk and is always allowed.
//!
//! Folders are compared canonically (links resolved), through [`Fs`], so a `../` or a symbolic
//! link cannot lead out of them.

use crate::loader::{normalize, Fs};
use std::path::{Component, Path, PathBuf};

/// The canonical root folders of a project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    dirs: Vec<PathBuf>,
}

impl Roots {
    /// The roots of the project whose entry spec is in `entry_dir`, with its template folders
    /// (`search_dirs`) and the extra `roots` of rekindle.toml. Folders that do not exist are
    /// left out.
    pub fn new(fs: &dyn Fs, entry_dir: &Path, search_dirs: &[PathBuf], extra: &[PathBuf]) -> Roots {
        let mut dirs: Vec<PathBuf> = Vec::new();
        let entry = fs.canonicalize(entry_dir).ok();
        let repo = entry.as_deref().and_then(|e| enclosing_repository(fs, e));
        for d in entry
            .into_iter()
            .chain(
                search_dirs
                    .iter()
                    .chain(extra)
                    .filter_map(|d| fs.canonicalize(d).ok()),
            )
            .chain(repo)
        {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        Roots { dirs }
    }

    /// Whether the canonical path `real` is inside one of the roots.
    pub fn contains(&self, real: &Path) -> bool {
        self.dirs.iter().any(|r| inside(real, r))
    }

    /// The root folders, canonical, the entry spec's first.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }
}

/// `path` is `root` or below it. An in-memory root may be relative, even empty (the current
/// folder); a relative path that climbs out of it with `..` is outside.
fn inside(path: &Path, root: &Path) -> bool {
    if path.components().next() == Some(Component::ParentDir)
        && root.components().next() != Some(Component::ParentDir)
    {
        return false;
    }
    path.starts_with(root)
}

/// The git repository (the folder holding `.git`) nearest above the canonical folder `dir`, or
/// `None` when there is none or it is the home folder or `/`.
pub fn enclosing_repository(fs: &dyn Fs, dir: &Path) -> Option<PathBuf> {
    let home = fs
        .home()
        .map(|h| fs.canonicalize(&h).unwrap_or_else(|_| normalize(&h)));
    for d in dir.ancestors() {
        if !fs.exists(&d.join(".git")) {
            continue;
        }
        let everything = d.parent().is_none() || Some(d) == home.as_deref();
        return (!everything).then(|| d.to_path_buf());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::MemFs;

    #[test]
    fn the_enclosing_repository_is_a_root_unless_it_is_home_or_slash() {
        let mut fs = MemFs::default();
        fs.add("/r/.git/HEAD", "ref")
            .add("/r/app/spec/main.plain", "x")
            .add("/r/shared/t.plain", "x")
            .add("/elsewhere/t.plain", "x");
        let roots = Roots::new(&fs, Path::new("/r/app/spec"), &[], &[]);
        assert_eq!(roots.dirs(), [Path::new("/r/app/spec"), Path::new("/r")]);
        assert!(roots.contains(Path::new("/r/shared/t.plain")));
        assert!(!roots.contains(Path::new("/elsewhere/t.plain")));

        fs.home = Some("/r".into());
        let roots = Roots::new(&fs, Path::new("/r/app/spec"), &[], &[]);
        assert_eq!(roots.dirs(), [Path::new("/r/app/spec")]);

        let mut fs = MemFs::default();
        fs.add("/.git/HEAD", "ref").add("/p/main.plain", "x");
        let roots = Roots::new(&fs, Path::new("/p"), &[], &[]);
        assert_eq!(roots.dirs(), [Path::new("/p")]);
    }

    #[test]
    fn template_folders_and_extra_roots_count() {
        let mut fs = MemFs::default();
        fs.add("/p/main.plain", "x")
            .add("/t/lib.plain", "x")
            .add("/data/a.txt", "x");
        let roots = Roots::new(&fs, Path::new("/p"), &["/t".into()], &["/data".into()]);
        assert!(roots.contains(Path::new("/t/lib.plain")));
        assert!(roots.contains(Path::new("/data/a.txt")));
        assert!(!roots.contains(Path::new("/tx/a.txt")));
    }

    #[test]
    fn a_relative_root_does_not_reach_up() {
        let mut fs = MemFs::default();
        fs.add("main.plain", "x").add("../up.plain", "x");
        let roots = Roots::new(&fs, Path::new("."), &[], &[]);
        assert!(roots.contains(Path::new("sub/x.plain")));
        assert!(!roots.contains(Path::new("../up.plain")));
    }
}
