//! One functionality's steps: implement, unit tests with bounded fixes, conformance tests with
//! fixes of the code or of the tests, regression runs of earlier conformance tests, and one fresh
//! restart when fixes run out. Each model reply is checked (file blocks, paths inside the folder)
//! before anything is written.

use crate::error::{io, RenderError};
use crate::events::{Event, Phase, ScriptKind};
use crate::options::Role;
use crate::prompts::{self, Context};
use crate::run::Renderer;
use rekindle_llm::file_blocks::{self, FileBlock};
use rekindle_llm::{Constraint, Message, Request, TokenSink};
use rekindle_workspace::files::{self, Change, FileText};
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::ModuleLayout;
use rekindle_workspace::scripts::{self, Outcome};
use std::path::{Path, PathBuf};

struct Sink<'a> {
    obs: &'a mut dyn crate::events::Observer,
}

impl TokenSink for Sink<'_> {
    fn token(&mut self, text: &str) {
        self.obs.token(text);
    }
}

impl Renderer<'_, '_> {
    pub(crate) fn phase(&mut self, module: &str, id: usize, phase: Phase, attempt: u32) {
        self.obs.event(&Event::Phase {
            module: module.to_string(),
            id,
            phase,
            attempt,
        });
    }

    fn script(
        &mut self,
        kind: ScriptKind,
        script: &Path,
        args: &[&Path],
        cwd: &Path,
    ) -> Result<scripts::Run, RenderError> {
        let run = scripts::run(
            script,
            args,
            cwd,
            self.opts.script_timeout,
            &self.opts.sandbox,
        )
        .map_err(io)?;
        self.obs.event(&Event::Script {
            kind,
            outcome: run.outcome,
            exit_code: run.exit_code,
            seconds: run.duration.as_secs_f64(),
        });
        Ok(run)
    }

    /// Asks `role`'s model; returns the reply's text and its file blocks. A reply that is not
    /// file blocks, or names a path outside the folder, is asked for once more.
    async fn ask(
        &mut self,
        module: &str,
        id: usize,
        role: Role,
        failures: u32,
        messages: Vec<Message>,
        root: &Path,
    ) -> Result<(String, Vec<FileBlock>), RenderError> {
        let m = self.models.get(role, failures);
        let mut req = Request::new(m.model.clone(), messages);
        req.sampling = self.opts.sampling.clone();
        req.constraint = Some(Constraint::FileBlocks);
        req.template_version = prompts::template_version().to_string();
        for attempt in 0..2 {
            let outcome = {
                let mut sink = Sink {
                    obs: &mut *self.obs,
                };
                self.session.call(m.provider, &req, &mut sink).await?
            };
            let r = &outcome.record;
            self.obs.event(&Event::ModelCall {
                role,
                key: r.key.clone(),
                provider: r.provider.clone(),
                model: r.model.clone(),
                cache_hit: r.cache_hit,
                tokens_in: r.usage.input_tokens,
                tokens_out: r.usage.output_tokens,
                cost: r.cost,
                seconds: r.duration_ms as f64 / 1000.0,
            });
            let text = outcome.response.text;
            let problem = match file_blocks::parse(&text) {
                Ok(blocks) => match blocks
                    .iter()
                    .find_map(|b| files::check_path(root, b.path()).err())
                {
                    None => return Ok((text, blocks)),
                    Some(refused) => {
                        format!("{refused}; every path must be relative to the project folder")
                    }
                },
                Err(e) => e.to_string(),
            };
            if attempt == 1 {
                return Err(RenderError::Reply {
                    module: module.to_string(),
                    id,
                    detail: problem,
                });
            }
            req.messages.push(Message::assistant(text));
            req.messages
                .push(Message::user(prompts::reformat(&problem)));
        }
        unreachable!("the loop returns on its second pass")
    }

    fn apply(
        &self,
        module: &str,
        id: usize,
        root: &Path,
        blocks: &[FileBlock],
    ) -> Result<Vec<String>, RenderError> {
        let changes: Vec<Change> = blocks
            .iter()
            .map(|b| match b {
                FileBlock::Write { path, content } => Change::Write {
                    path: path.clone(),
                    content: content.clone(),
                },
                FileBlock::Delete { path } => Change::Delete { path: path.clone() },
            })
            .collect();
        files::apply(root, &changes, &self.opts.limits).map_err(|r| RenderError::Reply {
            module: module.to_string(),
            id,
            detail: r.to_string(),
        })
    }

    fn snapshot(&self, root: &Path) -> (Vec<FileText>, Vec<String>) {
        files::snapshot(root, self.opts.prompt_budget)
    }

    /// One functionality, with its fixes and one fresh restart.
    pub(crate) async fn functionality(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
    ) -> Result<(), RenderError> {
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        let mut last: Option<(String, String)> = None;
        for restart in 0..=self.opts.restarts {
            if restart > 0 {
                code.reset_hard(None)?;
                tests.reset_hard(None)?;
            }
            let earlier = last.as_ref().map(|(reason, _)| reason.clone());
            match self
                .attempt(module, k, cx, d, restart, earlier.as_deref())
                .await?
            {
                None => return Ok(()),
                Some(failure) => last = Some(failure),
            }
        }
        let (reason, output) = last.unwrap_or_default();
        Err(RenderError::Failed {
            module: module.to_string(),
            id: k,
            reason,
            output,
        })
    }

    /// One attempt: `Ok(None)` on success, `Ok(Some((reason, output)))` when tests still fail.
    async fn attempt(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        restart: u32,
        earlier_failure: Option<&str>,
    ) -> Result<Option<(String, String)>, RenderError> {
        self.phase(module, k, Phase::Implement, restart + 1);
        let (files, left_out) = self.snapshot(&d.code);
        let msgs = prompts::implement(cx, &files, &left_out, earlier_failure);
        let (_, blocks) = self.ask(module, k, Role::Code, 0, msgs, &d.code).await?;
        self.apply(module, k, &d.code, &blocks)?;
        let mut failures = 0u32;
        if let Some(failure) = self.unit_tests(module, k, cx, d, &mut failures).await? {
            return Ok(Some(failure));
        }
        let Some(script) = self.opts.conformance_tests_script.clone() else {
            return Ok(None);
        };
        if let Some(prep) = self.opts.prepare_environment_script.clone() {
            self.phase(module, k, Phase::PrepareEnvironment, 1);
            let run = self.script(ScriptKind::Prepare, &prep, &[&d.code], &d.code)?;
            if run.outcome == Outcome::Environment {
                return Err(environment(module, k, &prep, run));
            }
        }
        let folder = d.conformance_tests(k);
        std::fs::create_dir_all(&folder).map_err(io)?;
        self.phase(module, k, Phase::ConformanceTests, 1);
        let (files, _) = self.snapshot(&d.code);
        let runner = script
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (_, blocks) = self
            .ask(
                module,
                k,
                Role::Tests,
                0,
                prompts::conformance(cx, &files, &runner),
                &folder,
            )
            .await?;
        self.apply(module, k, &folder, &blocks)?;
        let folders: Vec<(usize, PathBuf)> =
            (1..=k).rev().map(|j| (j, d.conformance_tests(j))).collect();
        // This functionality's tests first, then every earlier one (regression).
        for (j, folder) in folders {
            if !folder.is_dir() {
                continue;
            }
            let regression = j != k;
            let mut attempt = 0;
            loop {
                let run = self.script(
                    ScriptKind::Conformance,
                    &script,
                    &[&d.code, &folder],
                    &d.code,
                )?;
                match run.outcome {
                    Outcome::Passed => break,
                    Outcome::Environment => return Err(environment(module, k, &script, run)),
                    Outcome::Failed | Outcome::TimedOut => {}
                }
                if attempt >= self.opts.fix_attempts {
                    let what = if regression {
                        format!("the conformance tests of functionality {j} fail after it")
                    } else {
                        "its conformance tests still fail".to_string()
                    };
                    return Ok(Some((
                        format!("{what} after {attempt} fixes (exit {})", run.exit_code),
                        run.output,
                    )));
                }
                attempt += 1;
                failures += 1;
                self.phase(
                    module,
                    k,
                    if regression {
                        Phase::FixRegression
                    } else {
                        Phase::FixConformance
                    },
                    attempt,
                );
                let (files, _) = self.snapshot(&d.code);
                let (test_files, _) = files::snapshot(&folder, self.opts.prompt_budget);
                let output = scripts::cut_for_prompt(&run.output, self.opts.output_budget);
                let msgs = prompts::fix_conformance(
                    cx,
                    &files,
                    &test_files,
                    run.exit_code,
                    &output,
                    regression,
                    attempt,
                );
                let (text, blocks) = self
                    .ask(module, k, Role::Fix, failures, msgs, &d.code)
                    .await?;
                let tests_wrong = text
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| {
                        l.to_ascii_lowercase()
                            .replace(' ', "")
                            .starts_with("wrong:test")
                    });
                if tests_wrong && !regression {
                    self.apply(module, k, &folder, &blocks)?;
                } else {
                    self.apply(module, k, &d.code, &blocks)?;
                    if let Some(failure) = self.unit_tests(module, k, cx, d, &mut failures).await? {
                        return Ok(Some(failure));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Runs the unit tests and fixes failures; `Some` when they still fail.
    async fn unit_tests(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        failures: &mut u32,
    ) -> Result<Option<(String, String)>, RenderError> {
        let Some(script) = self.opts.unittests_script.clone() else {
            return Ok(None);
        };
        let mut attempt = 0;
        loop {
            self.phase(module, k, Phase::UnitTests, attempt + 1);
            let run = self.script(ScriptKind::Unit, &script, &[&d.code], &d.code)?;
            match run.outcome {
                Outcome::Passed => return Ok(None),
                Outcome::Environment => return Err(environment(module, k, &script, run)),
                Outcome::Failed | Outcome::TimedOut => {}
            }
            if attempt >= self.opts.fix_attempts {
                return Ok(Some((
                    format!(
                        "its unit tests still fail after {attempt} fixes (exit {})",
                        run.exit_code
                    ),
                    run.output,
                )));
            }
            attempt += 1;
            *failures += 1;
            self.phase(module, k, Phase::FixUnitTests, attempt);
            let (files, _) = self.snapshot(&d.code);
            let output = scripts::cut_for_prompt(&run.output, self.opts.output_budget);
            let msgs = prompts::fix_unit(cx, &files, run.exit_code, &output, attempt);
            let (_, blocks) = self
                .ask(module, k, Role::Fix, *failures, msgs, &d.code)
                .await?;
            self.apply(module, k, &d.code, &blocks)?;
        }
    }
}

fn environment(module: &str, id: usize, script: &Path, run: scripts::Run) -> RenderError {
    RenderError::Environment {
        module: module.to_string(),
        id,
        script: script.display().to_string(),
        output: run.output,
    }
}
