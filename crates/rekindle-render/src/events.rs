//! What a render reports while it runs: one value per step, printed as a live line on a terminal
//! or as one JSON object per line with `--format json`.

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        render_id: String,
        modules: Vec<String>,
        functionalities: usize,
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
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Phase {
        module: String,
        id: usize,
        phase: &'static str,
        attempt: u32,
    },
    ModelCall {
        role: &'static str,
        /// The request's hash (its response-cache key).
        key: String,
        provider: String,
        model: String,
        cache_hit: bool,
        tokens_in: u64,
        tokens_out: u64,
        cost: f64,
        seconds: f64,
    },
    Script {
        kind: &'static str,
        outcome: rekindle_workspace::scripts::Outcome,
        exit_code: i32,
        seconds: f64,
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

#[derive(Clone, Debug, Serialize)]
pub struct FileHash {
    pub path: String,
    pub blake3: Option<String>,
}

/// The run's totals; the last event of every render.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub rendered: usize,
    pub reused: usize,
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
}

/// Collects events (for tests).
#[derive(Default)]
pub struct Collect(pub Vec<Event>);

impl Observer for Collect {
    fn event(&mut self, e: &Event) {
        self.0.push(e.clone());
    }
}
