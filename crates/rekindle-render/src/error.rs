//! How a render fails. Each variant says what the user can do about it; the CLI turns them into
//! messages and exit codes.

use rekindle_llm::LlmError;
use rekindle_workspace::git::GitError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A functionality could not be made to pass its tests.
    #[error("functionality {id} of module {module} failed: {reason}")]
    Failed {
        module: String,
        id: usize,
        reason: String,
        output: String,
    },
    /// A functionality made as many model calls as `Options::call_budget` allows and needed
    /// another. The render turns it into [`RenderError::Failed`], with the last failure.
    #[error("functionality {id} of module {module} spent its {calls} model calls")]
    OutOfCalls {
        module: String,
        id: usize,
        calls: u32,
    },
    /// A test script exited 69: the environment cannot run tests.
    #[error("{script} exited 69 (the environment cannot run the tests) while rendering functionality {id} of module {module}")]
    Environment {
        module: String,
        id: usize,
        script: String,
        output: String,
    },
    /// Generated files were changed by hand; rendering would overwrite them.
    #[error("generated files of module {module} were changed by hand ({}): {}; change the spec instead, or render with --force to save the edits as a patch and overwrite them", folder.display(), paths.join(", "))]
    HandEdits {
        module: String,
        folder: PathBuf,
        paths: Vec<String>,
    },
    /// The model's reply could not be used, even after asking again.
    #[error(
        "the model's reply for functionality {id} of module {module} could not be used: {detail}"
    )]
    Reply {
        module: String,
        id: usize,
        detail: String,
    },
    /// `render --locked` and the lock disagree with the spec or the flags.
    #[error("--locked: {0}")]
    Locked(String),
    #[error(transparent)]
    Model(#[from] LlmError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Usage(String),
}

impl RenderError {
    /// The functionality the error is about, if it is about one.
    pub fn functionality(&self) -> Option<(&str, usize)> {
        match self {
            RenderError::Failed { module, id, .. }
            | RenderError::OutOfCalls { module, id, .. }
            | RenderError::Environment { module, id, .. }
            | RenderError::Reply { module, id, .. } => Some((module, *id)),
            _ => None,
        }
    }

    /// Whether the work failed (spec, model or tests), as opposed to the environment or usage.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            RenderError::Failed { .. }
                | RenderError::OutOfCalls { .. }
                | RenderError::Reply { .. }
                | RenderError::HandEdits { .. }
                | RenderError::Locked(_)
                | RenderError::Model(LlmError::Budget { .. })
                | RenderError::Model(LlmError::CacheMiss { .. })
        )
    }
}

pub(crate) fn io(e: impl std::fmt::Display) -> RenderError {
    RenderError::Io(e.to_string())
}
