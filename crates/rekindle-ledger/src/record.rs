//! What the journal records: one typed value per model call and per finished step. This is a
//! persisted format (the project's journal, see `rekindle_workspace::layout`), so field names
//! are API: serde writes and reads them here and nowhere else.

use rekindle_render::events::{FileHash, ScriptKind};
use rekindle_render::Role;
use rekindle_workspace::scripts::Outcome;
use serde::{Deserialize, Serialize};

/// One journal entry's content; the `kind` field names the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    ModelCall(ModelCall),
    Step(Step),
    /// A conversation about the specs, stored under `.rekindle/conversations/`.
    Conversation(crate::conversation::ConversationEntry),
    /// A kind this version does not know (written by a newer rekindle); kept in the chain.
    #[serde(other)]
    Unknown,
}

/// One request to a model (or the cache), attributed to the functionality it was for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    pub render_id: String,
    pub module: String,
    pub functionality: usize,
    pub role: Role,
    /// The request's hash: its response-cache key.
    pub request: String,
    pub provider: String,
    pub model: String,
    pub cache_hit: bool,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost: f64,
    pub seconds: f64,
}

/// A finished functionality: what it was, where it is written, what it changed, how it was
/// tested, and the commits that hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub render_id: String,
    pub module: String,
    pub functionality: usize,
    /// The functionality's first line.
    pub text: String,
    pub render_key: String,
    pub spec: SpecLines,
    pub files: Vec<FileHash>,
    pub tests: Vec<ScriptRun>,
    pub commit: String,
    pub tests_commit: String,
    /// Whether its test scripts ran in the sandbox (entries written before the sandbox existed
    /// read as `false`, which is what they were).
    #[serde(default)]
    pub sandboxed: bool,
}

/// Where a functionality is written: a spec file and its first and last line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecLines {
    pub file: String,
    pub lines: [usize; 2],
}

/// One run of a test script during a step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScriptRun {
    pub kind: ScriptKind,
    pub outcome: Outcome,
    pub exit_code: i32,
    pub seconds: f64,
}

impl Record {
    /// The (module, functionality) the record is about, if any.
    pub fn functionality(&self) -> Option<(&str, usize)> {
        match self {
            Record::ModelCall(c) => Some((&c.module, c.functionality)),
            Record::Step(s) => Some((&s.module, s.functionality)),
            Record::Conversation(_) | Record::Unknown => None,
        }
    }
}
