//! Prints a render's events: JSON lines with `--format json`, else a readable log on stderr
//! (with a live status line on a terminal).

use rekindle_render::events::FunctionalityStatus;
use rekindle_render::{Event, Observer};
use std::io::{IsTerminal, Write};

/// Prints events: JSON lines, or a readable log (with a live status line on a terminal).
pub struct Printer {
    pub json: bool,
    pub tty: bool,
    /// `--verbose`: every phase as a line, each script's output, each model call's request key,
    /// the files each functionality changed.
    pub verbose: bool,
    status: String,
    tokens: usize,
    started: std::time::Instant,
    /// A copy of every line (or JSON event) for `--log-to-file`.
    log: Option<std::io::BufWriter<std::fs::File>>,
}

impl Printer {
    pub fn new(json: bool) -> Printer {
        Printer {
            json,
            tty: !json && std::io::stderr().is_terminal(),
            verbose: false,
            status: String::new(),
            tokens: 0,
            started: std::time::Instant::now(),
            log: None,
        }
    }

    /// Also writes everything printed to `path` (created anew).
    pub fn log_to(mut self, path: &std::path::Path) -> std::io::Result<Printer> {
        self.log = Some(std::io::BufWriter::new(std::fs::File::create(path)?));
        Ok(self)
    }

    fn write_log(&mut self, text: &str) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{text}");
            let _ = f.flush();
        }
    }

    fn line(&mut self, text: String) {
        self.write_log(&text);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
        if self.tty && !self.status.is_empty() {
            let _ = write!(err, "{}", self.status);
        }
        let _ = err.flush();
    }

    fn set_status(&mut self, s: String) {
        self.status = s;
        self.tokens = 0;
        self.started = std::time::Instant::now();
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", self.status);
            let _ = err.flush();
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, e: &Event) {
        if self.json {
            let line = serde_json::to_string(e).unwrap_or_default();
            self.write_log(&line);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            return;
        }
        match e {
            Event::Start {
                modules,
                functionalities,
                ..
            } => self.line(format!(
                "rendering {} module{} ({} functionalit{})",
                modules.len(),
                if modules.len() == 1 { "" } else { "s" },
                functionalities,
                if *functionalities == 1 { "y" } else { "ies" }
            )),
            Event::Module { module, .. } => self.line(format!("module {module}")),
            Event::Functionality {
                module,
                id,
                of,
                status,
                reason,
            } => match status {
                FunctionalityStatus::Reused => self.line(format!("  {id}/{of} reused (unchanged)")),
                FunctionalityStatus::Restored => {
                    self.line(format!("  {id}/{of} restored from rekindle.lock"));
                    self.set_status(format!("  {module} {id}/{of}"));
                }
                FunctionalityStatus::Rendering => {
                    self.line(format!(
                        "  {id}/{of} rendering: {}",
                        reason.as_deref().unwrap_or("")
                    ));
                    self.set_status(format!("  {module} {id}/{of}"));
                }
            },
            Event::Phase {
                module,
                id,
                phase,
                attempt,
            } => {
                let a = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                if !self.tty || self.verbose {
                    self.line(format!("    {}{a}", phase.words()));
                }
                self.set_status(format!("  {module} {id}: {}{a}", phase.words()));
            }
            Event::ModelCall {
                role,
                model,
                key,
                provider,
                cache_hit,
                tokens_in,
                tokens_out,
                cached_tokens,
                finish_reason,
                cut,
                temperature,
                cost,
                seconds,
                ..
            } => {
                let how = if *cache_hit {
                    "cache hit".to_string()
                } else {
                    let reused = if *cached_tokens > 0 {
                        format!(" ({cached_tokens} reused)")
                    } else {
                        String::new()
                    };
                    let ended = match (finish_reason, cut) {
                        (rekindle_llm::FinishReason::Length, _) => {
                            ", cut at the token cap".to_string()
                        }
                        (rekindle_llm::FinishReason::Repetition, Some(why)) => {
                            format!(", cut where it began repeating ({why})")
                        }
                        (rekindle_llm::FinishReason::Repetition, None) => {
                            ", cut where it began repeating".to_string()
                        }
                        _ => String::new(),
                    };
                    let sampled = if *temperature > 0.0 {
                        format!(", sampled at {temperature} (a repeated question)")
                    } else {
                        String::new()
                    };
                    format!(
                        "{tokens_in} in{reused} / {tokens_out} out{ended}{sampled}, {:.1}s{}",
                        seconds,
                        if *cost > 0.0 {
                            format!(", ${cost:.4}")
                        } else {
                            String::new()
                        }
                    )
                };
                self.line(format!("    model ({role}, {model}): {how}"));
                if self.verbose {
                    self.line(format!("      provider {provider}, request {key}"));
                }
            }
            Event::Script {
                kind,
                outcome,
                exit_code,
                seconds,
                output,
            } => {
                let outcome = format!("{outcome:?}").to_lowercase();
                self.line(format!(
                    "    {}: {outcome} (exit {exit_code}, {seconds:.1}s)",
                    kind.words()
                ));
                if self.verbose {
                    for l in output.lines() {
                        self.line(format!("      | {l}"));
                    }
                }
            }
            Event::Committed {
                id, commit, files, ..
            } => {
                self.line(format!(
                    "  {id} done: commit {} ({} file{} changed)",
                    &commit[..commit.len().min(10)],
                    files.len(),
                    if files.len() == 1 { "" } else { "s" }
                ));
                if self.verbose {
                    for f in files {
                        let how = if f.blake3.is_some() {
                            "wrote"
                        } else {
                            "deleted"
                        };
                        self.line(format!("      {how} {}", f.path));
                    }
                }
            }
            Event::Failed { reason, .. } => self.line(format!("error: {reason}")),
            Event::Warning { message } => self.line(format!("warning: {message}")),
            Event::Summary(s) => {
                self.status.clear();
                self.line(format!(
                    "{}: {} rendered, {} reused{}; {} model calls, {} cache hits, {} tokens in, {} out, ${:.4}, {:.1}s",
                    if s.ok { "done" } else { "failed" },
                    s.rendered,
                    s.reused,
                    if s.restored > 0 {
                        format!(", {} restored from rekindle.lock", s.restored)
                    } else {
                        String::new()
                    },
                    s.model_calls,
                    s.cache_hits,
                    s.tokens_in,
                    s.tokens_out,
                    s.cost,
                    s.seconds
                ))
            }
        }
    }

    fn token(&mut self, text: &str) {
        if !self.tty {
            return;
        }
        self.tokens += text.len().div_ceil(4).max(1);
        let secs = self.started.elapsed().as_secs_f64().max(0.1);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}  ~{:.0} tok/s",
            self.status,
            self.tokens as f64 / secs
        );
        let _ = err.flush();
    }
}
