//! The observer that records a render in the journal: every model call and every finished step,
//! attributed to its functionality and render, passed on to the next observer (the printer).

use crate::journal::Journal;
use crate::record::{ModelCall, Record, ScriptRun, SpecLines, Step};
use rekindle_render::{Event, Observer};

pub struct Recorder<'a> {
    pub inner: &'a mut dyn Observer,
    pub journal: Journal,
    render_id: String,
    sandboxed: bool,
    current: (String, usize),
    scripts: Vec<ScriptRun>,
    failed: bool,
}

impl<'a> Recorder<'a> {
    pub fn new(inner: &'a mut dyn Observer, journal: Journal) -> Recorder<'a> {
        Recorder {
            inner,
            journal,
            render_id: String::new(),
            sandboxed: false,
            current: (String::new(), 0),
            scripts: Vec::new(),
            failed: false,
        }
    }

    fn append(&mut self, record: Record) {
        if let Err(e) = self.journal.append(&record) {
            if !self.failed {
                self.failed = true;
                self.inner.event(&Event::Warning {
                    message: format!("the journal could not be written: {e}"),
                });
            }
        }
    }
}

impl Observer for Recorder<'_> {
    fn anchor(&self) -> Option<String> {
        self.journal.head().ok()
    }

    fn event(&mut self, e: &Event) {
        match e {
            Event::Start {
                render_id,
                sandboxed,
                ..
            } => {
                self.render_id = render_id.clone();
                self.sandboxed = *sandboxed;
            }
            Event::Functionality { module, id, .. } => {
                self.current = (module.clone(), *id);
                self.scripts.clear();
            }
            Event::Script {
                kind,
                outcome,
                exit_code,
                seconds,
                ..
            } => self.scripts.push(ScriptRun {
                kind: *kind,
                outcome: *outcome,
                exit_code: *exit_code,
                seconds: *seconds,
            }),
            Event::ModelCall {
                role,
                key,
                provider,
                model,
                cache_hit,
                tokens_in,
                tokens_out,
                cost,
                seconds,
                ..
            } => self.append(Record::ModelCall(ModelCall {
                render_id: self.render_id.clone(),
                module: self.current.0.clone(),
                functionality: self.current.1,
                role: *role,
                request: key.clone(),
                provider: provider.clone(),
                model: model.clone(),
                cache_hit: *cache_hit,
                tokens_in: *tokens_in,
                tokens_out: *tokens_out,
                cost: *cost,
                seconds: *seconds,
            })),
            Event::Committed {
                module,
                id,
                commit,
                tests_commit,
                render_key,
                text,
                spec_file,
                spec_lines,
                files,
            } => self.append(Record::Step(Step {
                render_id: self.render_id.clone(),
                module: module.clone(),
                functionality: *id,
                text: text.clone(),
                render_key: render_key.clone(),
                spec: SpecLines {
                    file: spec_file.clone(),
                    lines: *spec_lines,
                },
                files: files.clone(),
                tests: self.scripts.clone(),
                commit: commit.clone(),
                tests_commit: tests_commit.clone(),
                sandboxed: self.sandboxed,
            })),
            _ => {}
        }
        self.inner.event(e);
    }

    fn token(&mut self, text: &str) {
        self.inner.token(text);
    }
}
