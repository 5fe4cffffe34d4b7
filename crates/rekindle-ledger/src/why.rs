//! `why`: which functionality, spec lines, commit and model calls produced a generated file or
//! line. Git blame of the code repository names the commit; its trailers name the functionality;
//! the journal adds the step's text and spec lines and every model call of that render.

use crate::journal::{Journal, JournalError};
use crate::record::{ModelCall, Record, SpecLines};
use rekindle_workspace::git::{GitError, Repo};
use rekindle_workspace::trailers::Trailers;
use std::path::{Path, PathBuf};

/// The answer for one file or line.
#[derive(Clone, Debug, PartialEq)]
pub struct Why {
    pub module: String,
    pub functionality: usize,
    /// The functionality's first line (empty when the journal lacks the step).
    pub text: String,
    pub spec: Option<SpecLines>,
    pub commit: String,
    pub render_id: String,
    /// The model calls of that functionality in that render.
    pub calls: Vec<ModelCall>,
}

impl Why {
    pub fn cost(&self) -> f64 {
        self.calls.iter().map(|c| c.cost).sum()
    }

    pub fn seconds(&self) -> f64 {
        self.calls.iter().map(|c| c.seconds).sum()
    }

    pub fn tokens(&self) -> (u64, u64) {
        self.calls
            .iter()
            .fold((0, 0), |(i, o), c| (i + c.tokens_in, o + c.tokens_out))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    #[error("{0} is not a file")]
    NotAFile(String),
    #[error(
        "{0} is not in a rendered code folder ({pattern})",
        pattern = rekindle_workspace::layout::CODE_FOLDER_PATTERN
    )]
    NotRendered(String),
    #[error("{0} was not written by a render (changed by hand and not committed?)")]
    NotWritten(String),
    #[error("commit {commit} of {} was not made by rekindle", repo.display())]
    Foreign { commit: String, repo: PathBuf },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

/// Why `path` (or its line `line`, 1-based) exists.
pub fn why(path: &str, line: Option<usize>, journal: &Journal) -> Result<Why, WhyError> {
    let at = format!(
        "{path}{}",
        line.map(|l| format!(":{l}")).unwrap_or_default()
    );
    if !Path::new(path).is_file() {
        return Err(WhyError::NotAFile(path.to_string()));
    }
    let (repo, rel) =
        Repo::containing(Path::new(path)).ok_or_else(|| WhyError::NotRendered(path.to_string()))?;
    let commit = match line {
        Some(n) => repo.blame_line(&rel, n),
        None => repo.last_commit_of(&rel),
    }
    .ok()
    .flatten()
    .filter(|c| !c.starts_with("0000000"))
    .ok_or(WhyError::NotWritten(at))?;
    let foreign = || WhyError::Foreign {
        commit: commit.clone(),
        repo: repo.dir.clone(),
    };
    let trailers = repo
        .commit(&commit)
        .ok()
        .as_ref()
        .and_then(Trailers::of)
        .ok_or_else(foreign)?;
    let records = journal.records();
    let step = records.iter().find_map(|r| match r {
        Record::Step(s) if s.commit == commit => Some(s),
        _ => None,
    });
    let calls = records
        .iter()
        .filter_map(|r| match r {
            Record::ModelCall(c)
                if c.module == trailers.module
                    && c.functionality == trailers.functionality
                    && step.is_none_or(|s| s.render_id == c.render_id) =>
            {
                Some(c.clone())
            }
            _ => None,
        })
        .collect();
    Ok(Why {
        module: trailers.module,
        functionality: trailers.functionality,
        text: step.map(|s| s.text.clone()).unwrap_or_default(),
        spec: step.map(|s| s.spec.clone()),
        commit,
        render_id: trailers.render_id.unwrap_or_default(),
        calls,
    })
}
