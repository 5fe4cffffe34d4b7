//! Render state kept in git: which functionalities of a module are finished, with which key,
//! read back from commit trailers; the module's base commit; replaying reused commits onto a
//! re-rendered parent; and bringing a module back to a clean state after an interruption or a
//! hand edit. Also the lock that keeps two renders out of one build folder.

use crate::error::{io, RenderError};
use crate::events::{Event, Observer};
use rekindle_plan::keys::KeyParts;
use rekindle_plan::stale::Recorded;
use rekindle_spec::project::Project;
use rekindle_workspace::git::{Commit, Repo};
use rekindle_workspace::layout::{BuildLayout, ModuleLayout};
use rekindle_workspace::trailers::Trailers;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One finished functionality as read back from git.
#[derive(Clone, Debug)]
pub(crate) struct Done {
    pub commit: Commit,
    pub key: String,
    pub parts: Option<KeyParts>,
    pub tests_commit: Option<String>,
}

impl Done {
    pub fn recorded(&self) -> Recorded {
        Recorded {
            key: self.key.clone(),
            parts: self.parts.clone(),
            tree: self.commit.tree.clone(),
        }
    }
}

/// A module's history: its base commit and its finished functionalities by number.
pub(crate) struct History {
    pub base: Option<Commit>,
    pub done: HashMap<usize, Done>,
}

/// Reads finished functionalities from the code repository's history, oldest first.
pub(crate) fn read(module: &str, code: &Repo) -> Result<History, RenderError> {
    let mut base = None;
    let mut done = HashMap::new();
    for c in code.log()? {
        let Some(t) = Trailers::of(&c).filter(|t| t.module == module) else {
            continue;
        };
        if t.functionality == 0 {
            base = Some(c);
            done.clear();
            continue;
        }
        done.insert(
            t.functionality,
            Done {
                key: t.render_key.unwrap_or_default(),
                parts: t.key_parts.as_deref().and_then(KeyParts::parse),
                tests_commit: t.tests_commit,
                commit: c,
            },
        );
    }
    Ok(History { base, done })
}

/// The base commit's own trailers: the tree (or "empty") it was made from.
pub(crate) fn base_of(commit: &Commit) -> Option<String> {
    Trailers::of(commit).and_then(|t| t.base)
}

/// The trailers of a finished functionality's commit.
pub(crate) fn step_trailers(
    module: &str,
    id: usize,
    parts: &KeyParts,
    spec_hash: &str,
    render_id: &str,
    tests_commit: Option<&str>,
    journal_head: Option<String>,
) -> Trailers {
    Trailers {
        module: module.to_string(),
        functionality: id,
        render_key: Some(parts.key()),
        key_parts: Some(parts.trailer()),
        spec_hash: Some(spec_hash.to_string()),
        render_id: Some(render_id.to_string()),
        base: None,
        tests_commit: tests_commit.map(str::to_string),
        journal_head,
    }
}

pub(crate) fn subject(module: &str, k: usize) -> String {
    format!("rekindle: functionality {k} of module {module}")
}

/// Where a module starts: the previous module's final code folder, if any.
pub(crate) struct Base {
    pub from: Option<PathBuf>,
    pub tree_key: String,
}

/// Makes sure the module's base commit holds the previous module's final code; returns it and
/// the tests repository's base commit.
impl Base {
    /// The first module's base: nothing, or the files of `base_folder`, known by their digest
    /// (so a changed base folder makes a new base commit, and with it new render keys).
    pub(crate) fn first(base_folder: Option<&Path>) -> Result<Base, RenderError> {
        match base_folder {
            None => Ok(Base {
                from: None,
                tree_key: "empty".into(),
            }),
            Some(dir) => {
                let digest = rekindle_workspace::files::digest_folder(dir).map_err(|e| {
                    io(format!(
                        "cannot read the base folder {}: {e}",
                        dir.display()
                    ))
                })?;
                Ok(Base {
                    from: Some(dir.to_path_buf()),
                    tree_key: format!("folder:{digest}"),
                })
            }
        }
    }
}

pub(crate) fn ensure_base(
    module: &str,
    code: &Repo,
    tests: &Repo,
    base: &Base,
    existing: Option<&Commit>,
) -> Result<(Commit, String), RenderError> {
    if let Some(c) = existing {
        if base_of(c).as_deref() == Some(base.tree_key.as_str()) {
            let tests_base = Trailers::of(c)
                .and_then(|t| t.tests_commit)
                .unwrap_or_default();
            return Ok((c.clone(), tests_base));
        }
    }
    // A new base: the previous module's code (or nothing), as a fresh root commit.
    use rekindle_workspace::files;
    match &base.from {
        Some(from) => files::replace_worktree(from, &code.dir).map_err(io)?,
        None => files::clear(&code.dir).map_err(io)?,
    }
    files::clear(&tests.dir).map_err(io)?;
    let subject = format!("rekindle: base of module {module}");
    let tests_tree = tests.worktree_tree()?;
    let mut t = Trailers {
        module: module.to_string(),
        functionality: 0,
        ..Trailers::default()
    };
    let tests_base = tests.commit_tree(&tests_tree, None, &t.message(&subject))?;
    tests.move_head(&tests_base)?;
    let tree = code.worktree_tree()?;
    t.base = Some(base.tree_key.clone());
    t.tests_commit = Some(tests_base.clone());
    let id = code.commit_tree(&tree, None, &t.message(&subject))?;
    code.move_head(&id)?;
    let c = code
        .log()?
        .pop()
        .ok_or_else(|| io("the base commit vanished"))?;
    Ok((c, tests_base))
}

/// Brings a module's repositories to a clean state: rekindle's own unfinished work is thrown
/// away; hand edits stop the render unless `force`, which saves them under `patches` first.
pub(crate) fn recover(
    module: &str,
    d: &ModuleLayout,
    code: &Repo,
    tests: &Repo,
    force: Option<&Path>,
    obs: &mut dyn Observer,
) -> Result<(), RenderError> {
    if d.marker.exists() {
        code.clear_index_lock();
        tests.clear_index_lock();
        code.reset_hard(None)?;
        tests.reset_hard(None)?;
        std::fs::remove_file(&d.marker).map_err(io)?;
        obs.event(&Event::Warning {
            message: format!(
                "module {module}: an interrupted render was found; its unfinished work was discarded"
            ),
        });
        return Ok(());
    }
    for repo in [code, tests] {
        if repo.head()?.is_none() || !repo.is_dirty()? {
            continue;
        }
        let paths: Vec<String> = repo.changes()?.into_iter().map(|(_, p)| p).collect();
        let Some(patches) = force else {
            return Err(RenderError::HandEdits {
                module: module.to_string(),
                folder: repo.dir.clone(),
                paths,
            });
        };
        let patch = repo.diff_all()?;
        std::fs::create_dir_all(patches).map_err(io)?;
        let file = patches.join(format!(
            "{module}-{}-{}.patch",
            repo.dir
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
            stamp()
        ));
        std::fs::write(&file, patch).map_err(io)?;
        obs.event(&Event::Warning {
            message: format!(
                "module {module}: hand edits to {} saved as {} before rendering",
                paths.join(", "),
                file.display()
            ),
        });
        repo.reset_hard(None)?;
    }
    Ok(())
}

/// A render id, and the stamp of saved patches: seconds and a random suffix.
pub(crate) fn stamp() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{:04x}", t.as_secs(), fastrand::u16(..))
}

/// Holds the build folder for one render at a time.
pub(crate) struct BuildLock {
    _file: std::fs::File,
}

pub(crate) fn lock(build: &BuildLayout) -> Result<BuildLock, RenderError> {
    use std::os::unix::io::AsRawFd;
    std::fs::create_dir_all(&build.root).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(build.lock_file())
        .map_err(io)?;
    // SAFETY: flock on a file descriptor we own; released when the file is closed.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        return Err(RenderError::Usage(format!(
            "another rekindle render is using {}; wait for it to finish",
            build.root.display()
        )));
    }
    Ok(BuildLock { _file: file })
}

/// A finished functionality as the build folder holds it (for the lock).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Built {
    pub module: String,
    pub id: usize,
    pub render_key: String,
    pub tree: String,
    pub tests_tree: String,
    pub commit: String,
    /// The conformance tests repository's commit (`None`: a commit from before it had one).
    pub tests_commit: Option<String>,
}

/// Keeps the code and tests trees of `built` in the tree store, for `render --locked`.
pub fn keep_trees(
    built: &[Built],
    build_folder: &Path,
    store: &rekindle_workspace::store::TreeStore,
) -> Result<(), RenderError> {
    let layout = BuildLayout::new(std::path::absolute(build_folder).map_err(io)?);
    let mut modules: Vec<&str> = built.iter().map(|b| b.module.as_str()).collect();
    modules.dedup();
    for module in modules {
        let d = layout.module(module);
        let of = built.iter().filter(|b| b.module == module);
        let code: Vec<(String, String)> = of
            .clone()
            .map(|b| (b.commit.clone(), b.tree.clone()))
            .collect();
        let tests: Vec<(String, String)> = of
            .filter_map(|b| Some((b.tests_commit.clone()?, b.tests_tree.clone())))
            .collect();
        store.save(&Repo::new(&d.code), &code)?;
        store.save(&Repo::new(&d.tests), &tests)?;
    }
    Ok(())
}

/// Every finished functionality of the current build, in render order.
pub fn built(project: &Project, build_folder: &Path) -> Result<Vec<Built>, RenderError> {
    let layout = BuildLayout::new(std::path::absolute(build_folder).map_err(io)?);
    let mut out = Vec::new();
    for rm in &project.render_order {
        let module = project.module(rm.module).name.clone();
        let d = layout.module(&module);
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        if !code.exists() {
            continue;
        }
        let h = read(&module, &code)?;
        for k in 1..=rm.sections.functional_specs.len() {
            let Some(o) = h.done.get(&k) else { continue };
            let tests_tree = match &o.tests_commit {
                Some(c) => tests.tree_of(c)?,
                None => String::new(),
            };
            out.push(Built {
                module: module.clone(),
                id: k,
                render_key: o.key.clone(),
                tree: o.commit.tree.clone(),
                tests_tree,
                commit: o.commit.id.clone(),
                tests_commit: o.tests_commit.clone(),
            });
        }
    }
    Ok(out)
}
