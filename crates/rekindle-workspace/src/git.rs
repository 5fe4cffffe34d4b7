//! A small wrapper over the `git` command line, hermetic: fixed author, no hooks, no signing, no
//! user config, so commits are reproducible and nothing from the user's setup leaks in. Ignore
//! files count for nothing: every file in the folder is committed and every change is seen, so a
//! `.gitignore` written by generated code cannot hide a file from commits or drift.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
#[error("git {command} failed: {detail}")]
pub struct GitError {
    pub command: String,
    pub detail: String,
}

/// How a file differs from the last commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DriftChange {
    #[serde(rename = "modified")]
    Modified,
    #[serde(rename = "added")]
    Added,
    #[serde(rename = "deleted")]
    Deleted,
    #[serde(rename = "mode changed")]
    ModeChanged,
    #[serde(rename = "modified, mode changed")]
    ModifiedAndModeChanged,
}

impl DriftChange {
    pub fn words(self) -> &'static str {
        match self {
            DriftChange::Modified => "modified",
            DriftChange::Added => "added",
            DriftChange::Deleted => "deleted",
            DriftChange::ModeChanged => "mode changed",
            DriftChange::ModifiedAndModeChanged => "modified, mode changed",
        }
    }
}

impl std::fmt::Display for DriftChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words())
    }
}

/// A repository at `dir`: a working folder with `.git` in it, or (see [`Repo::bare`]) a bare
/// repository that is its own git folder.
#[derive(Clone, Debug)]
pub struct Repo {
    pub dir: PathBuf,
    bare: bool,
}

/// A commit as rekindle reads it back: its id, tree and `Key: value` trailers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub tree: String,
    /// The first parent, if any.
    pub parent: Option<String>,
    pub subject: String,
    pub trailers: Vec<(String, String)>,
}

impl Commit {
    pub fn trailer(&self, key: &str) -> Option<&str> {
        self.trailers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Fields separated by 0x1f, commits by 0x1e.
const COMMIT_FORMAT: &str = "--format=%H%x1f%T%x1f%P%x1f%s%x1f%(trailers:only,unfold)%x1e";

pub const AUTHOR: &str = "rekindle";
pub const EMAIL: &str = "rekindle@localhost";

impl Repo {
    pub fn new(dir: impl Into<PathBuf>) -> Repo {
        Repo {
            dir: dir.into(),
            bare: false,
        }
    }

    /// A bare repository: `dir` is the git folder, there is no working folder.
    pub fn bare(dir: impl Into<PathBuf>) -> Repo {
        Repo {
            dir: dir.into(),
            bare: true,
        }
    }

    fn git_dir(&self) -> PathBuf {
        if self.bare {
            self.dir.clone()
        } else {
            self.dir.join(".git")
        }
    }

    /// A git command pinned to this repository: `GIT_DIR` and `GIT_WORK_TREE` name it, the
    /// folder above it is a ceiling, and every other `GIT_*` variable of the caller is dropped, so
    /// a folder whose `.git` was removed can never make git act on an enclosing repository.
    fn cmd(&self) -> Command {
        let mut c = Command::new("git");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GIT_") {
                c.env_remove(name);
            }
        }
        let dir = std::path::absolute(&self.dir).unwrap_or_else(|_| self.dir.clone());
        if self.bare {
            c.env("GIT_DIR", &dir);
        } else {
            c.env("GIT_DIR", dir.join(".git"))
                .env("GIT_WORK_TREE", &dir);
        }
        if let Some(parent) = dir.parent() {
            c.env("GIT_CEILING_DIRECTORIES", parent);
        }
        c.current_dir(&self.dir)
            .env("GIT_AUTHOR_NAME", AUTHOR)
            .env("GIT_AUTHOR_EMAIL", EMAIL)
            .env("GIT_COMMITTER_NAME", AUTHOR)
            .env("GIT_COMMITTER_EMAIL", EMAIL)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.autocrlf=false",
                "-c",
                "init.defaultBranch=main",
            ]);
        c
    }

    fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.cmd().args(args).output().map_err(|e| GitError {
            command: args.join(" "),
            detail: if e.kind() == std::io::ErrorKind::NotFound {
                "git is not installed".into()
            } else {
                e.to_string()
            },
        })?;
        if !out.status.success() {
            return Err(GitError {
                command: args.join(" "),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn exists(&self) -> bool {
        if self.bare {
            self.dir.join("HEAD").is_file() && self.dir.join("objects").is_dir()
        } else {
            self.dir.join(".git").is_dir()
        }
    }

    /// Creates the repository (and folder) if needed.
    pub fn init(&self) -> Result<(), GitError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| GitError {
            command: "init".into(),
            detail: format!("cannot create {}: {e}", self.dir.display()),
        })?;
        if !self.exists() {
            if self.bare {
                // No template: no sample hooks or other files nobody reads.
                self.run(&["init", "-q", "--bare", "--template="])?;
            } else {
                self.run(&["init", "-q"])?;
            }
        }
        Ok(())
    }

    /// Stages everything and commits, even when nothing changed; returns the commit id.
    pub fn commit_all(
        &self,
        subject: &str,
        trailers: &[(&str, String)],
    ) -> Result<String, GitError> {
        self.run(&["add", "-A", "--force"])?;
        let mut msg = format!("{subject}\n\n");
        for (k, v) in trailers {
            msg.push_str(&format!("{k}: {v}\n"));
        }
        self.run(&["commit", "-q", "--allow-empty", "--no-verify", "-m", &msg])?;
        self.head().map(|h| h.unwrap_or_default())
    }

    pub fn head(&self) -> Result<Option<String>, GitError> {
        match self.run(&["rev-parse", "--verify", "-q", "HEAD"]) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(_) => Ok(None),
        }
    }

    /// The tree the working folder would commit now (staged as a side effect).
    pub fn worktree_tree(&self) -> Result<String, GitError> {
        self.run(&["add", "-A", "--force"])?;
        Ok(self.run(&["write-tree"])?.trim().to_string())
    }

    /// Whether the working folder differs from HEAD (untracked files included).
    pub fn is_dirty(&self) -> Result<bool, GitError> {
        Ok(!self.changes()?.is_empty())
    }

    /// Paths that differ from HEAD, as `git status --porcelain` reports them.
    pub fn changes(&self) -> Result<Vec<(String, String)>, GitError> {
        Ok(self
            .run(&[
                "status",
                "--porcelain",
                "--untracked-files=all",
                "--ignored",
            ])?
            .lines()
            .filter(|l| l.len() > 3)
            .map(|l| (l[..2].trim().to_string(), l[3..].to_string()))
            .collect())
    }

    /// Every difference between the working folder and HEAD, by path.
    pub fn drift(&self) -> Result<Vec<(DriftChange, String)>, GitError> {
        let mut out = Vec::new();
        if self.head()?.is_none() {
            return Ok(out);
        }
        for line in self.run(&["diff", "--raw", "HEAD"])?.lines() {
            // :100644 100755 <old> <new> M\tpath
            let Some((meta, path)) = line.split_once('\t') else {
                continue;
            };
            let f: Vec<&str> = meta.trim_start_matches(':').split_whitespace().collect();
            if f.len() < 5 {
                continue;
            }
            let mode = f[0] != f[1] && f[1] != "000000" && f[0] != "000000";
            let change = match f[4].chars().next() {
                Some('D') => DriftChange::Deleted,
                Some('A') => DriftChange::Added,
                _ => {
                    let content = self
                        .run(&["diff", "--numstat", "HEAD", "--", path])
                        .map(|n| !n.starts_with("0\t0\t"))
                        .unwrap_or(true);
                    match (content, mode) {
                        (true, true) => DriftChange::ModifiedAndModeChanged,
                        (false, true) => DriftChange::ModeChanged,
                        _ => DriftChange::Modified,
                    }
                }
            };
            out.push((change, path.to_string()));
        }
        for path in self.run(&["ls-files", "--others"])?.lines() {
            out.push((DriftChange::Added, path.to_string()));
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// Throws away every change since `commit` (or HEAD): rekindle's own unfinished work.
    pub fn reset_hard(&self, commit: Option<&str>) -> Result<(), GitError> {
        if self.head()?.is_some() {
            self.run(&["reset", "-q", "--hard", commit.unwrap_or("HEAD")])?;
        }
        self.run(&["clean", "-q", "-f", "-d", "-x"])?;
        Ok(())
    }

    /// Makes the working folder and the index hold `tree` exactly, without moving HEAD (so
    /// `reset_hard(None)` goes back to the last commit).
    pub fn checkout_tree(&self, tree: &str) -> Result<(), GitError> {
        self.run(&["read-tree", "--reset", "-u", tree])?;
        self.run(&["clean", "-q", "-f", "-d", "-x"])?;
        Ok(())
    }

    /// Commits from the oldest to HEAD, with trailers.
    pub fn log(&self) -> Result<Vec<Commit>, GitError> {
        if self.head()?.is_none() {
            return Ok(Vec::new());
        }
        self.commits(&["log", "--reverse", COMMIT_FORMAT])
    }

    /// One commit, with its trailers.
    pub fn commit(&self, id: &str) -> Result<Commit, GitError> {
        self.commits(&["log", "-1", COMMIT_FORMAT, id])?
            .pop()
            .ok_or_else(|| GitError {
                command: format!("log -1 {id}"),
                detail: "no such commit".into(),
            })
    }

    fn commits(&self, args: &[&str]) -> Result<Vec<Commit>, GitError> {
        let out = self.run(args)?;
        Ok(out
            .split('\u{1e}')
            .filter(|c| !c.trim().is_empty())
            .filter_map(|c| {
                let mut f = c.trim_start_matches('\n').split('\u{1f}');
                let id = f.next()?.to_string();
                let tree = f.next()?.to_string();
                let parent = f.next()?.split_whitespace().next().map(str::to_string);
                let subject = f.next()?.to_string();
                let trailers = f
                    .next()
                    .unwrap_or("")
                    .lines()
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                Some(Commit {
                    id,
                    tree,
                    parent,
                    subject,
                    trailers,
                })
            })
            .collect())
    }

    /// Makes a commit of `tree` on top of `parent` without touching the working folder (used to
    /// replay reused functionalities onto a re-rendered one).
    pub fn commit_tree(
        &self,
        tree: &str,
        parent: Option<&str>,
        message: &str,
    ) -> Result<String, GitError> {
        let mut args = vec!["commit-tree", tree];
        if let Some(p) = parent {
            args.extend(["-p", p]);
        }
        args.extend(["-m", message]);
        Ok(self.run(&args)?.trim().to_string())
    }

    /// Points the current branch at `commit` and makes the working folder match it. The previous
    /// head stays reachable under `refs/rekindle/previous/…`, so nothing committed is lost.
    pub fn move_head(&self, commit: &str) -> Result<(), GitError> {
        if let Some(old) = self.head()? {
            if old != commit {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                self.run(&[
                    "update-ref",
                    &format!("refs/rekindle/previous/{stamp}"),
                    &old,
                ])?;
            }
        }
        self.run(&["reset", "-q", "--hard", commit])?;
        self.run(&["clean", "-q", "-f", "-d", "-x"])?;
        Ok(())
    }

    /// The paths that differ between commits `a` and `b`.
    pub fn changed_between(&self, a: &str, b: &str) -> Result<Vec<String>, GitError> {
        Ok(self
            .run(&["diff", "--name-only", "-z", "--no-renames", a, b])?
            .split('\0')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The full message of `commit`.
    pub fn message(&self, commit: &str) -> Result<String, GitError> {
        self.run(&["log", "-1", "--format=%B", commit])
    }

    /// `git diff` of the working folder against HEAD, untracked files included (for saving hand
    /// edits as a patch before they are overwritten).
    pub fn diff_all(&self) -> Result<String, GitError> {
        self.run(&["add", "-A", "--force", "--intent-to-add"]).ok();
        let d = self.run(&["diff", "--binary", "HEAD"])?;
        self.run(&["reset", "-q"]).ok();
        Ok(d)
    }

    /// Writes the files of `commit` into `dest` (which must exist), without touching this
    /// repository's index or working folder.
    pub fn export(&self, commit: &str, dest: &Path) -> Result<(), GitError> {
        let tar = dest.join(".rekindle-export.tar");
        let tar_arg = tar.to_string_lossy().into_owned();
        self.run(&["archive", "--format=tar", "-o", &tar_arg, commit])?;
        let out = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&tar)
            .arg("-C")
            .arg(dest)
            .output()
            .map_err(|e| GitError {
                command: "tar -xf".into(),
                detail: e.to_string(),
            })?;
        let _ = std::fs::remove_file(&tar);
        if !out.status.success() {
            return Err(GitError {
                command: "tar -xf".into(),
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }

    /// The repository whose working folder holds `file`, and the file's path inside it.
    pub fn containing(file: &Path) -> Option<(Repo, String)> {
        let abs = std::path::absolute(file).ok()?;
        let mut dir = abs.parent()?;
        loop {
            if dir.join(".git").is_dir() {
                let rel = abs.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
                return Some((Repo::new(dir), rel));
            }
            dir = dir.parent()?;
        }
    }

    /// The commit that last changed line `line` (1-based) of `path`; all zeros when the line is
    /// not committed.
    pub fn blame_line(&self, path: &str, line: usize) -> Result<Option<String>, GitError> {
        let range = format!("{line},{line}");
        let out = self.run(&["blame", "--porcelain", "-L", &range, "--", path])?;
        Ok(out.split_whitespace().next().map(str::to_string))
    }

    /// The last commit that changed `path`.
    pub fn last_commit_of(&self, path: &str) -> Result<Option<String>, GitError> {
        let out = self.run(&["log", "-1", "--format=%H", "--", path])?;
        Ok(Some(out.trim().to_string()).filter(|s| !s.is_empty()))
    }

    /// The files HEAD holds, by path.
    pub fn ls_files(&self) -> Result<Vec<String>, GitError> {
        Ok(self
            .run(&["ls-files", "-z"])?
            .split('\0')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Removes the index lock a killed git left behind.
    pub fn clear_index_lock(&self) {
        let _ = std::fs::remove_file(self.git_dir().join("index.lock"));
    }

    /// Sends commits to the repository `to` (a local path) under the given refs, overwriting
    /// them: each pair is (commit, ref).
    pub fn push(&self, to: &Path, refs: &[(String, String)]) -> Result<(), GitError> {
        if refs.is_empty() {
            return Ok(());
        }
        let to = std::path::absolute(to).unwrap_or_else(|_| to.to_path_buf());
        let specs: Vec<String> = refs.iter().map(|(c, r)| format!("+{c}:{r}")).collect();
        let mut args = vec!["push", "-q", "--no-verify"];
        let to = to.to_string_lossy();
        args.push(&to);
        args.extend(specs.iter().map(String::as_str));
        self.run(&args).map(drop)
    }

    /// Fetches `refs` of the repository `from` (a local path) into this one, under the same
    /// names; an error when `from` does not hold one of them.
    pub fn fetch(&self, from: &Path, refs: &[String]) -> Result<(), GitError> {
        let from = std::path::absolute(from).unwrap_or_else(|_| from.to_path_buf());
        let specs: Vec<String> = refs.iter().map(|r| format!("+{r}:{r}")).collect();
        let from = from.to_string_lossy();
        let mut args = vec!["fetch", "-q", "--no-tags", "--no-write-fetch-head", &from];
        args.extend(specs.iter().map(String::as_str));
        self.run(&args).map(drop)
    }

    /// The object `name` resolves to (a ref, `id^{tree}`...), if it does.
    pub fn resolve(&self, name: &str) -> Option<String> {
        self.run(&["rev-parse", "-q", "--verify", name])
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The refs under `prefix` (`refs/trees/`), by full name.
    pub fn refs(&self, prefix: &str) -> Result<Vec<String>, GitError> {
        Ok(self
            .run(&["for-each-ref", "--format=%(refname)", prefix])?
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Deletes `refs` and drops the objects nothing else reaches.
    pub fn delete_refs_and_prune(&self, refs: &[String]) -> Result<(), GitError> {
        if refs.is_empty() {
            return Ok(());
        }
        for r in refs {
            self.run(&["update-ref", "-d", r])?;
        }
        self.run(&["gc", "-q", "--prune=now"]).map(drop)
    }

    /// The tree id of `commit`.
    pub fn tree_of(&self, commit: &str) -> Result<String, GitError> {
        Ok(self
            .run(&["rev-parse", &format!("{commit}^{{tree}}")])?
            .trim()
            .to_string())
    }
}

/// Whether `git` can be run at all.
pub fn available() -> bool {
    version().is_some()
}

/// What `git --version` says, when git can be run.
pub fn version() -> Option<String> {
    Command::new("git")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_with_trailers_and_reads_them_back() {
        let d = tempfile::tempdir().unwrap();
        let r = Repo::new(d.path().join("code"));
        r.init().unwrap();
        std::fs::write(r.dir.join("a.py"), "print(1)\n").unwrap();
        assert!(r.is_dirty().unwrap());
        let id = r
            .commit_all(
                "functionality 1",
                &[
                    ("Rekindle-Functionality", "1".into()),
                    ("Rekindle-Render-Key", "abc".into()),
                ],
            )
            .unwrap();
        assert!(!r.is_dirty().unwrap());
        let log = r.log().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].id, id);
        assert_eq!(log[0].trailer("Rekindle-Render-Key"), Some("abc"));
        assert_eq!(log[0].tree, r.tree_of(&id).unwrap());
        std::fs::write(r.dir.join("b.py"), "x").unwrap();
        std::fs::write(r.dir.join("a.py"), "changed").unwrap();
        assert_eq!(r.changes().unwrap().len(), 2);
        r.reset_hard(None).unwrap();
        assert!(!r.is_dirty().unwrap());
        assert_eq!(
            std::fs::read_to_string(r.dir.join("a.py")).unwrap(),
            "print(1)\n"
        );
    }
}
