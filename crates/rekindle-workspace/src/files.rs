//! The sandbox for model replies: every path is checked before anything is written (relative,
//! no `..`, no `.git`, no symlink on the way, within count and size limits), then files are
//! written atomically. A reply that fails any check writes nothing.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// A change a reply asks for, relative to the folder it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Write { path: String, content: String },
    Delete { path: String },
}

impl Change {
    pub fn path(&self) -> &str {
        match self {
            Change::Write { path, .. } | Change::Delete { path } => path,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_files: usize,
    pub max_file_bytes: usize,
    pub max_total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_files: 64,
            max_file_bytes: 1 << 20,
            max_total_bytes: 8 << 20,
        }
    }
}

/// Why a reply was refused; `path` is the offending path as the model wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "`{}`: {}", self.path, self.reason)
        }
    }
}

/// Where `rel` would land under `root`, if it is allowed there.
pub fn check_path(root: &Path, rel: &str) -> Result<PathBuf, Refused> {
    let refuse = |reason: &str| Refused {
        path: rel.to_string(),
        reason: reason.to_string(),
    };
    if rel.trim().is_empty() {
        return Err(refuse("empty path"));
    }
    if rel.len() > 1024 || rel.contains('\0') {
        return Err(refuse("not a usable path"));
    }
    if rel.contains('\\') {
        return Err(refuse("backslashes are not path separators here; use `/`"));
    }
    let p = Path::new(rel);
    let mut clean = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(name) => {
                let n = name.to_string_lossy();
                if n.eq_ignore_ascii_case(".git") {
                    return Err(refuse("writing into .git is not allowed"));
                }
                if [".gitignore", ".gitattributes", ".gitmodules"]
                    .iter()
                    .any(|g| n.eq_ignore_ascii_case(g))
                {
                    return Err(refuse(
                        "git's own files are rekindle's: a .gitignore or .gitattributes could hide generated files from commits and from hand-edit detection",
                    ));
                }
                if n.len() > 255 {
                    return Err(refuse("a path component is too long"));
                }
                clean.push(name);
            }
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("`..` would leave the build folder")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(
                    "absolute paths are not allowed; write paths relative to the project root",
                ))
            }
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(refuse("empty path"));
    }
    // No symlink anywhere on the way: one could lead out of the build folder.
    let mut at = root.to_path_buf();
    for c in clean.components() {
        at.push(c);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(refuse("the path goes through a symbolic link"));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(root.join(clean))
}

/// Checks every change, then applies them all; on a refusal nothing is written.
/// Returns the relative paths changed.
pub fn apply(root: &Path, changes: &[Change], limits: &Limits) -> Result<Vec<String>, Refused> {
    if changes.len() > limits.max_files {
        return Err(Refused {
            path: String::new(),
            reason: format!(
                "the reply changes {} files; at most {} are allowed",
                changes.len(),
                limits.max_files
            ),
        });
    }
    let mut total = 0usize;
    let mut targets = Vec::with_capacity(changes.len());
    for c in changes {
        let target = check_path(root, c.path())?;
        if let Change::Write { path, content } = c {
            if content.len() > limits.max_file_bytes {
                return Err(Refused {
                    path: path.clone(),
                    reason: format!(
                        "{} bytes, over the limit of {}",
                        content.len(),
                        limits.max_file_bytes
                    ),
                });
            }
            total += content.len();
            if let Ok(m) = std::fs::symlink_metadata(&target) {
                if m.is_dir() {
                    return Err(Refused {
                        path: path.clone(),
                        reason: "a folder is in the way".into(),
                    });
                }
            }
        }
        targets.push(target);
    }
    if total > limits.max_total_bytes {
        return Err(Refused {
            path: String::new(),
            reason: format!(
                "the reply writes {total} bytes; at most {} are allowed",
                limits.max_total_bytes
            ),
        });
    }
    let mut done = Vec::new();
    for (c, target) in changes.iter().zip(targets) {
        let io = |e: std::io::Error| Refused {
            path: c.path().to_string(),
            reason: format!("cannot write: {e}"),
        };
        match c {
            Change::Write { content, .. } => {
                let dir = target.parent().unwrap_or(root);
                std::fs::create_dir_all(dir).map_err(io)?;
                let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
                tmp.write_all(content.as_bytes()).map_err(io)?;
                tmp.persist(&target).map_err(|e| io(e.error))?;
            }
            Change::Delete { .. } => match std::fs::remove_file(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            },
        }
        done.push(c.path().to_string());
    }
    Ok(done)
}

/// A text file of a folder, for prompts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileText {
    pub path: String,
    pub content: String,
}

/// The text files under `root` (not `.git`), sorted by path, within `budget` bytes; files that
/// are binary or did not fit are named in the second list.
pub fn snapshot(root: &Path, budget: usize) -> (Vec<FileText>, Vec<String>) {
    let mut paths = Vec::new();
    walk(root, root, &mut paths);
    paths.sort();
    let mut used = 0;
    let mut files = Vec::new();
    let mut left_out = Vec::new();
    for rel in paths {
        let Ok(bytes) = std::fs::read(root.join(&rel)) else {
            continue;
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) if !t.contains('\0') => t,
            _ => {
                left_out.push(rel);
                continue;
            }
        };
        if used + text.len() > budget {
            left_out.push(rel);
            continue;
        }
        used += text.len();
        files.push(FileText {
            path: rel,
            content: text,
        });
    }
    (files, left_out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == ".git" || name == "__pycache__" || name == "node_modules" {
            continue;
        }
        let Ok(ft) = e.file_type() else {
            continue;
        };
        if ft.is_dir() {
            walk(root, &p, out);
        } else if ft.is_file() {
            if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
}

/// A digest of the files under `dir` as [`replace_worktree`] copies them (not `.git`,
/// `__pycache__`, `node_modules` or symbolic links): their paths, contents and whether each is
/// executable. Two folders that copy the same get the same digest.
pub fn digest_folder(dir: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut paths = Vec::new();
    walk(dir, dir, &mut paths);
    paths.sort();
    let mut h = blake3::Hasher::new();
    for rel in paths {
        let p = dir.join(&rel);
        let exec = std::fs::metadata(&p)?.permissions().mode() & 0o111 != 0;
        let bytes = std::fs::read(&p)?;
        h.update(rel.as_bytes());
        h.update(&[0, u8::from(exec)]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().to_hex().to_string())
}

/// Empties `dir` (creating it if needed), all but its `.git`.
pub fn clear(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_name() == ".git" {
            continue;
        }
        let p = e.path();
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// Copies the files of `from` (not `.git`) into `to`, which is emptied first except for `.git`.
/// Only for rekindle's own repositories (a module's code folder seeded from the previous
/// module's); a folder the user names gets [`replace_contents`].
pub fn replace_worktree(from: &Path, to: &Path) -> std::io::Result<()> {
    clear(to)?;
    let mut paths = Vec::new();
    walk(from, from, &mut paths);
    for rel in paths {
        let dst = to.join(&rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from.join(&rel), dst)?;
    }
    Ok(())
}

const MANIFEST_HEADER: &str =
    "# rekindle: the files it copied into this folder; only these are replaced or removed";

/// The files a previous copy listed in `to`'s manifest; entries that are not plain relative
/// paths inside `to` (a hand-edited or planted manifest) are ignored, never followed.
fn read_manifest(to: &Path) -> std::io::Result<std::collections::BTreeSet<String>> {
    let path = crate::layout::copy_manifest(to);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| check_path(to, l).is_ok() && *l != crate::layout::COPY_MANIFEST)
        .map(str::to_string)
        .collect())
}

fn write_manifest<'a>(to: &Path, files: impl Iterator<Item = &'a String>) -> std::io::Result<()> {
    let mut text = String::from(MANIFEST_HEADER);
    text.push('\n');
    for f in files {
        text.push_str(f);
        text.push('\n');
    }
    let mut tmp = tempfile::NamedTempFile::new_in(to)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(crate::layout::copy_manifest(to))
        .map_err(|e| e.error)?;
    Ok(())
}

fn refused(msg: String) -> std::io::Error {
    std::io::Error::other(msg)
}

/// Copies the files of `from` (not `.git`) into `to`, a folder the user named (`build-dest`),
/// touching only what rekindle put there: `to`'s manifest
/// ([`layout::copy_manifest`](crate::layout::copy_manifest)) lists the files the last copy
/// wrote; of those, the ones `from` no longer has are removed, and only those may be
/// overwritten. Any other file is left alone. A file rekindle did not write that is in the way
/// (with other content) stops the copy before anything changes, with an error naming it.
pub fn replace_contents(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::collections::BTreeSet;
    std::fs::create_dir_all(to)?;
    let before = read_manifest(to)?;
    let mut paths = Vec::new();
    walk(from, from, &mut paths);
    let mut now = BTreeSet::new();
    for rel in paths {
        if rel == crate::layout::COPY_MANIFEST {
            return Err(refused(format!(
                "the build has a file named {rel}, the name of the list rekindle keeps in {}",
                to.display()
            )));
        }
        if rel.contains('\n') || rel.contains('\r') {
            return Err(refused(format!(
                "the build has a file name with a line break: {rel:?}"
            )));
        }
        let dst = check_path(to, &rel).map_err(|r| refused(format!("{}: {r}", to.display())))?;
        if !before.contains(&rel) {
            match std::fs::symlink_metadata(&dst) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Ok(m) if m.is_file() && same_content(&from.join(&rel), &dst) => {}
                Ok(_) => {
                    return Err(refused(format!(
                        "{} is in the way: rekindle did not put it there, so it will not overwrite it; move or remove it (rekindle lists the files it copies in {})",
                        dst.display(),
                        crate::layout::copy_manifest(to).display()
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        now.insert(rel);
    }
    // Listed before anything is written: an interrupted copy leaves no file it wrote unlisted.
    write_manifest(to, before.union(&now))?;
    for gone in before.difference(&now) {
        let p = to.join(gone);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if !m.is_dir() => std::fs::remove_file(&p)?,
            _ => continue,
        }
        // Folders the removal emptied go too, never `to` itself or a folder with anything left.
        let mut dir = p.parent();
        while let Some(d) = dir {
            if d == to || !d.starts_with(to) || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }
    for rel in &now {
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // A link planted where a listed file was is replaced, never followed.
        if std::fs::symlink_metadata(&dst).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&dst)?;
        }
        std::fs::copy(from.join(rel), &dst)?;
    }
    write_manifest(to, now.iter())
}

fn same_content(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(path: &str, content: &str) -> Change {
        Change::Write {
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn hostile_paths_are_refused_and_nothing_is_written() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("code");
        std::fs::create_dir(&root).unwrap();
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            ".git/config",
            "sub/.GIT/hooks/pre-commit",
            ".gitignore",
            "src/.gitignore",
            ".gitattributes",
            "",
            "a\\b",
            "C:/x",
        ] {
            let r = apply(&root, &[w("ok.py", "1"), w(bad, "x")], &Limits::default());
            if bad == "C:/x" {
                // A plain relative name on Unix: allowed.
                assert!(r.is_ok());
                continue;
            }
            assert!(r.is_err(), "{bad} was accepted");
            assert!(
                !root.join("ok.py").exists(),
                "{bad}: a partial write happened"
            );
        }
        std::os::unix::fs::symlink(d.path(), root.join("out")).unwrap();
        let r = apply(&root, &[w("out/escape.txt", "x")], &Limits::default());
        assert!(r.unwrap_err().reason.contains("symbolic link"));
        assert!(!d.path().join("escape.txt").exists());
    }

    #[test]
    fn limits_and_writes() {
        let d = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_files: 2,
            max_file_bytes: 10,
            max_total_bytes: 15,
        };
        assert!(apply(d.path(), &[w("a", "1"), w("b", "2"), w("c", "3")], &limits).is_err());
        assert!(apply(d.path(), &[w("a", "12345678901")], &limits).is_err());
        assert!(apply(
            d.path(),
            &[w("a", "123456789"), w("b", "123456789")],
            &limits
        )
        .is_err());
        let done = apply(
            d.path(),
            &[
                w("src/a.py", "print(1)\n"),
                Change::Delete {
                    path: "gone".into(),
                },
            ],
            &limits,
        )
        .unwrap();
        assert_eq!(done, ["src/a.py", "gone"]);
        assert_eq!(
            std::fs::read_to_string(d.path().join("src/a.py")).unwrap(),
            "print(1)\n"
        );
        let (files, _) = snapshot(d.path(), 1000);
        assert_eq!(files[0].path, "src/a.py");
    }

    fn put(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn read(root: &Path, rel: &str) -> Option<String> {
        std::fs::read_to_string(root.join(rel)).ok()
    }

    #[test]
    fn copies_replace_only_what_rekindle_wrote() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("code"), d.path().join("dest"));
        put(&from, "main.py", "1");
        put(&from, "pkg/util.py", "u");
        put(&from, ".git/config", "x");
        put(&to, "notes.txt", "mine");
        put(&to, "keep/data.csv", "mine too");
        replace_contents(&from, &to).unwrap();
        assert_eq!(read(&to, "main.py").as_deref(), Some("1"));
        assert_eq!(read(&to, "pkg/util.py").as_deref(), Some("u"));
        assert!(!to.join(".git").exists());
        let manifest = read(&to, crate::layout::COPY_MANIFEST).unwrap();
        assert!(manifest.lines().any(|l| l == "main.py"), "{manifest}");
        assert!(manifest.lines().any(|l| l == "pkg/util.py"), "{manifest}");
        assert!(!manifest.contains("notes.txt"), "{manifest}");

        // The next build drops pkg/util.py and changes main.py: the copy follows, and the files
        // rekindle did not write stay byte for byte.
        std::fs::remove_dir_all(from.join("pkg")).unwrap();
        put(&from, "main.py", "2");
        replace_contents(&from, &to).unwrap();
        assert_eq!(read(&to, "main.py").as_deref(), Some("2"));
        assert!(
            !to.join("pkg").exists(),
            "the folder the removal emptied is gone"
        );
        assert_eq!(read(&to, "notes.txt").as_deref(), Some("mine"));
        assert_eq!(read(&to, "keep/data.csv").as_deref(), Some("mine too"));
    }

    #[test]
    fn an_unknown_file_in_the_way_stops_the_copy_before_any_change() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("code"), d.path().join("dest"));
        put(&from, "a.py", "new a");
        put(&from, "b.py", "new b");
        put(&from, "same.py", "same");
        put(&to, "b.py", "the user's b");
        put(&to, "same.py", "same");
        let e = replace_contents(&from, &to).unwrap_err();
        assert!(e.to_string().contains("b.py"), "{e}");
        assert!(e.to_string().contains("in the way"), "{e}");
        assert_eq!(read(&to, "b.py").as_deref(), Some("the user's b"));
        assert!(!to.join("a.py").exists(), "nothing is written on a refusal");
        assert!(!to.join(crate::layout::COPY_MANIFEST).exists());
        // Once the user's file is out of the way the copy goes through; an identical file is
        // taken over rather than refused.
        std::fs::remove_file(to.join("b.py")).unwrap();
        replace_contents(&from, &to).unwrap();
        assert_eq!(read(&to, "b.py").as_deref(), Some("new b"));
        let manifest = read(&to, crate::layout::COPY_MANIFEST).unwrap();
        assert!(manifest.lines().any(|l| l == "same.py"), "{manifest}");
    }

    #[test]
    fn a_planted_manifest_cannot_remove_anything_outside() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("code"), d.path().join("dest"));
        put(&from, "main.py", "1");
        put(d.path(), "precious.txt", "keep");
        put(&to, "inner/precious.txt", "keep");
        std::os::unix::fs::symlink(d.path(), to.join("link")).unwrap();
        put(
            &to,
            crate::layout::COPY_MANIFEST,
            &format!(
                "../precious.txt\n{}\nlink/precious.txt\n/etc/hostname\n",
                d.path().join("precious.txt").display()
            ),
        );
        replace_contents(&from, &to).unwrap();
        assert_eq!(read(d.path(), "precious.txt").as_deref(), Some("keep"));
        assert_eq!(read(&to, "inner/precious.txt").as_deref(), Some("keep"));
        assert!(to.join("link").exists());
        assert_eq!(read(&to, "main.py").as_deref(), Some("1"));
    }

    #[test]
    fn a_module_repository_is_reseeded_whole() {
        let d = tempfile::tempdir().unwrap();
        let (from, to) = (d.path().join("prev"), d.path().join("code"));
        put(&from, "main.py", "1");
        put(&to, "old.py", "0");
        put(&to, ".git/HEAD", "ref");
        replace_worktree(&from, &to).unwrap();
        assert_eq!(read(&to, "main.py").as_deref(), Some("1"));
        assert!(!to.join("old.py").exists());
        assert_eq!(read(&to, ".git/HEAD").as_deref(), Some("ref"));
        assert!(!to.join(crate::layout::COPY_MANIFEST).exists());
    }
}
