//! The one door to the file system: reading specs, includes and linked resources. Tests and the
//! fuzzer substitute an in-memory implementation.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

pub trait Fs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn is_file(&self, path: &Path) -> bool;
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// The real location of `path` with links resolved; used to keep resources inside the project.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// Whether anything (a file or a folder) is at `path`; used to find the enclosing git
    /// repository (its `.git`).
    fn exists(&self, path: &Path) -> bool;
    /// The user's home folder, which is never a root of a project.
    fn home(&self) -> Option<PathBuf>;
}

/// The real disk.
pub struct RealFs;

impl Fs for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        std::fs::metadata(path).map(|m| m.len())
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn exists(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok()
    }
    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    }
}

/// Files held in memory, keyed by normalized path. Directories are implied.
#[derive(Default, Clone)]
pub struct MemFs {
    pub files: HashMap<PathBuf, Vec<u8>>,
    /// What [`Fs::home`] answers (none unless a test sets it).
    pub home: Option<PathBuf>,
}

impl MemFs {
    pub fn add(&mut self, path: impl AsRef<Path>, text: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(normalize(path.as_ref()), text.into());
        self
    }
}

impl Fs for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(&normalize(path))
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        self.read(path).map(|b| b.len() as u64)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let p = normalize(path);
        if self.exists(&p) {
            Ok(p)
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, "no such file"))
        }
    }
    fn exists(&self, path: &Path) -> bool {
        let p = normalize(path);
        self.files.contains_key(&p) || self.files.keys().any(|k| k.starts_with(&p))
    }
    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
}

/// Lexically folds `.` and `..` (no disk access).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
