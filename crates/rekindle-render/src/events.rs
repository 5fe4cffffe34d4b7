//! What a render reports while it runs: one value per step, printed as a live line on a terminal
//! or as one JSON object per line with `--format json`.

use crate::options::Role;
use serde::{Deserialize, Serialize};

/// What happens to a functionality in this render.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionalityStatus {
    /// Unchanged: its earlier result is kept.
    Reused,
    Rendering,
    /// `render --locked`: its code and tests are taken from the tree store, then tested.
    Restored,
}

/// A step of rendering one functionality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Implement,
    UnitTests,
    FixUnitTests,
    PrepareEnvironment,
    ConformanceTests,
    FixConformance,
    FixRegression,
}

impl Phase {
    /// The phase in words, as the log shows it.
    pub fn words(self) -> &'static str {
        match self {
            Phase::Implement => "implement",
            Phase::UnitTests => "unit tests",
            Phase::FixUnitTests => "fix unit tests",
            Phase::PrepareEnvironment => "prepare environment",
            Phase::ConformanceTests => "conformance tests",
            Phase::FixConformance => "fix conformance",
            Phase::FixRegression => "fix regression",
        }
    }
}

/// Which of the project's scripts ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    Unit,
    Conformance,
    Prepare,
}

impl ScriptKind {
    pub fn name(self) -> &'static str {
        match self {
            ScriptKind::Unit => "unit",
            ScriptKind::Conformance => "conformance",
            ScriptKind::Prepare => "prepare",
        }
    }

    /// What the log calls a run of the script.
    pub fn words(self) -> &'static str {
        match self {
            ScriptKind::Unit => "unit tests",
            ScriptKind::Conformance => "conformance tests",
            ScriptKind::Prepare => "prepare environment",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        render_id: String,
        modules: Vec<String>,
        functionalities: usize,
        /// Whether test scripts run in the sandbox (`false`: `--no-sandbox`).
        sandboxed: bool,
    },
    Module {
        module: String,
        functionalities: usize,
    },
    /// A functionality is reused (unchanged) or about to be rendered.
    Functionality {
        module: String,
        id: usize,
        of: usize,
        status: FunctionalityStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Phase {
        module: String,
        id: usize,
        phase: Phase,
        attempt: u32,
    },
    ModelCall {
        role: Role,
        /// The request's hash (its response-cache key).
        key: String,
        provider: String,
        model: String,
        cache_hit: bool,
        tokens_in: u64,
        tokens_out: u64,
        /// Input tokens the provider did not have to read again (a reused prompt prefix).
        cached_tokens: u64,
        /// Why the reply ended: `stop`, `length` (the token cap), `repetition` (cut by the
        /// engine's runaway guard).
        finish_reason: rekindle_llm::FinishReason,
        /// What the runaway guard saw repeat, when it cut the reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cut: Option<String>,
        /// 0 for greedy decoding; a repeated request is sampled instead.
        temperature: f32,
        cost: f64,
        seconds: f64,
    },
    Script {
        kind: ScriptKind,
        outcome: rekindle_workspace::scripts::Outcome,
        exit_code: i32,
        seconds: f64,
        /// The end of what the script printed (its last lines, at most a few KB), as it
        /// printed it; the log shows it under `--verbose`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        output: String,
    },
    Committed {
        module: String,
        id: usize,
        commit: String,
        tests_commit: String,
        render_key: String,
        /// The functionality's first line, and where it is written.
        text: String,
        spec_file: String,
        spec_lines: [usize; 2],
        /// Files the functionality changed, with the BLAKE3 of their new content (`None`: deleted).
        files: Vec<FileHash>,
    },
    Failed {
        module: String,
        id: usize,
        reason: String,
    },
    Warning {
        message: String,
    },
    Summary(Summary),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHash {
    pub path: String,
    pub blake3: Option<String>,
}

/// The run's totals; the last event of every render.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub rendered: usize,
    pub reused: usize,
    /// Taken from the tree store by `render --locked`.
    pub restored: usize,
    pub model_calls: u64,
    pub cache_hits: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost: f64,
    pub seconds: f64,
    pub ok: bool,
}

/// Receives events and streamed model text.
pub trait Observer: Send {
    fn event(&mut self, e: &Event);
    fn token(&mut self, _text: &str) {}
    /// The head of the record this observer keeps (the provenance journal's), written into
    /// each render commit as an anchor; `None` when it keeps none.
    fn anchor(&self) -> Option<String> {
        None
    }
}

/// The end of a script's output for [`Event::Script`]: its last `lines` lines, cut to at most
/// `bytes` bytes (at a character boundary), with a note when anything was left out.
pub fn output_tail(output: &str, lines: usize, bytes: usize) -> String {
    let trimmed = output.trim_end();
    let all: Vec<&str> = trimmed.lines().collect();
    let kept = &all[all.len().saturating_sub(lines)..];
    let mut text = kept.join("\n");
    let mut cut = kept.len() < all.len();
    if text.len() > bytes {
        let mut start = text.len() - bytes;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text = text[start..].to_string();
        cut = true;
    }
    if cut {
        format!("[… the start is left out]\n{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::output_tail;

    #[test]
    fn the_tail_keeps_the_last_lines_and_says_when_it_cut() {
        assert_eq!(output_tail("a\nb\n\n", 5, 100), "a\nb");
        let long: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        let t = output_tail(&long, 3, 1000);
        assert_eq!(t, "[… the start is left out]\nline 48\nline 49\nline 50");
        // Cut by size at a character boundary: "é" is two bytes.
        let t = output_tail("ééé", 10, 3);
        assert_eq!(t, "[… the start is left out]\né");
        assert_eq!(output_tail("", 10, 10), "");
    }
}
