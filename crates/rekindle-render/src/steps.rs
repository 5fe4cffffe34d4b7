//! One functionality's steps: implement, unit tests with bounded fixes, conformance tests with
//! fixes of the code or of the tests, regression runs of earlier conformance tests, and one fresh
//! restart when fixes run out. Each model reply is checked (file blocks, paths inside the folder)
//! before anything is written.

use crate::checked;
use crate::draft;
use crate::error::{io, RenderError};
use crate::events::{Event, Phase, ScriptKind};
use crate::options::Role;
use crate::prompts::{self, Context};
use crate::run::Renderer;
use rekindle_llm::file_blocks::{self, FileBlock};
use rekindle_llm::{Constraint, FinishReason, Message, Request, TokenSink};
use rekindle_workspace::files::{self, Change, FileText};
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::ModuleLayout;
use rekindle_workspace::scripts::{self, Outcome};
use std::collections::HashSet;
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
            output: crate::events::output_tail(&run.output, 40, 4096),
        });
        Ok(run)
    }

    /// Asks `role`'s model and reads its reply into changes of the folders `scope` allows.
    /// A reply that is not file blocks, names a path outside its folders or writes what its
    /// step may not is asked for once more, with the reason. A request this functionality's
    /// attempt already sent is not sent again as it is: it is sampled instead, with a seed
    /// derived from it (recorded in the request, so the cache and the journal keep it).
    #[allow(clippy::too_many_arguments)]
    async fn ask(
        &mut self,
        module: &str,
        id: usize,
        role: Role,
        failures: u32,
        messages: Vec<Message>,
        scope: Scope<'_>,
        tries: &mut Tries,
    ) -> Result<Reply, RenderError> {
        let m = self.models.get(role, failures);
        let mut req = Request::new(m.model.clone(), messages);
        req.sampling = self.opts.sampling.clone();
        if role == Role::Tests {
            req.sampling.max_tokens = req.sampling.max_tokens.min(TESTS_MAX_TOKENS);
        }
        if role == Role::Fix {
            // A fix rewrites files it was shown: room for all of them twice over (about three
            // bytes a token), and no more, so a reply that runs away stops early.
            let shown: usize = std::iter::once(scope.code)
                .chain(scope.tests)
                .map(|d| {
                    files::snapshot(d, self.opts.prompt_budget)
                        .0
                        .iter()
                        .map(|f| f.content.len())
                        .sum::<usize>()
                })
                .sum();
            let cap = (shown / 3 * 2 + 256).max(FIX_MIN_TOKENS as usize) as u32;
            req.sampling.max_tokens = req.sampling.max_tokens.min(cap);
        }
        if scope.tests.is_none() {
            // Conformance tests in a step that has none would be dropped: stop there instead.
            req.sampling
                .stop
                .push(format!("{}{TESTS}", file_blocks::OPEN));
        }
        if scope.one_file {
            // One block asked for: whatever follows it would be dropped.
            req.sampling.stop.push(file_blocks::CLOSE.to_string());
        }
        if !tries.docs {
            // A README nobody asked for would be dropped: stop where it starts (a small model
            // writes it last, retelling the prompt).
            for name in ["README", "readme", "Readme"] {
                req.sampling
                    .stop
                    .push(format!("{}{name}", file_blocks::OPEN));
            }
        }
        req.constraint = Some(Constraint::FileBlocks);
        req.template_version = prompts::template_version().to_string();
        for attempt in 0..2 {
            if tries.calls_left() == 0 {
                return Err(RenderError::OutOfCalls {
                    module: module.to_string(),
                    id,
                    calls: tries.calls,
                });
            }
            tries.calls += 1;
            tries.vary(&mut req);
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
                cached_tokens: r.usage.cached_tokens,
                finish_reason: outcome.response.finish_reason.clone(),
                cut: outcome.response.cut.clone(),
                temperature: req.sampling.temperature,
                cost: r.cost,
                seconds: r.duration_ms as f64 / 1000.0,
            });
            let mut text = outcome.response.text;
            let finish = &outcome.response.finish_reason;
            if *finish == FinishReason::Length || (scope.one_file && *finish == FinishReason::Stop)
            {
                // Cut by the token cap, or by a stop string at the end of the one block asked
                // for: the open block ends at its last whole line.
                text = rekindle_llm::runaway::close_cut_block(&text);
            }
            let problem = match file_blocks::parse(&text) {
                Ok(blocks) => match route(&text, &blocks, &scope, &self.script_names(), tries.docs)
                {
                    Ok(changes) => {
                        return Ok(Reply {
                            changes,
                            text,
                            finish: outcome.response.finish_reason,
                        })
                    }
                    Err(p) => p,
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

    /// Functionality `k`'s conformance tests, as changes of its folder (`scope`), not yet
    /// written. Tests that leave out most of the values an acceptance test quotes check
    /// something else (an earlier functionality, two literals of their own): the model is told
    /// which, once, in the same conversation; an acceptance test still left out is then asked
    /// for alone, in a new conversation that shows only the program (a small model repeats its
    /// answer, or copies a unit test it is shown), in a file of its own. With them, the
    /// acceptance tests still left out (the attempt fails on them).
    async fn write_conformance(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        scope: Scope<'_>,
        tries: &mut Tries,
    ) -> Result<(Routed, Vec<checked::Unchecked>), RenderError> {
        // Every file of the code folder, its unit tests too: shown the program alone (tried at
        // c64290b), the 1.5B named shopping-cart's test `conformance_tests/cart.py`, which
        // shadowed the program, where shown `test_cart.py` it wrote `test_cart.py`.
        let (files, _) = self.snapshot(&d.code);
        let files = named(CODE, &files);
        let mut msgs = prompts::conformance(cx, &files);
        let reply = self
            .ask(module, k, Role::Tests, 0, msgs.clone(), scope, tries)
            .await?;
        let setup = checked::setup(cx);
        let left_out =
            |tests: &[Change]| checked::unchecked(&cx.acceptance_tests, &setup, &written(tests));
        let first = left_out(&reply.changes.tests);
        if first.is_empty() {
            return Ok((reply.changes, first));
        }
        msgs.push(Message::assistant(reply.text.clone()));
        msgs.push(Message::user(prompts::unchecked(&first)));
        let mut tests = match self
            .optional(module, k, Role::Tests, msgs, scope, tries)
            .await?
        {
            Some(again) if left_out(&again.changes.tests).len() < first.len() => again.changes,
            _ => reply.changes,
        };
        let program: Vec<FileText> = files
            .into_iter()
            .filter(|f| is_program_path(&f.path))
            .collect();
        let alone = Scope {
            one_file: true,
            ..scope
        };
        let still = left_out(&tests.tests);
        // How a test runs the program: a test file of the latest earlier functionality (its
        // tests pass), shown as an example. A copy of it is no answer: it leaves the
        // acceptance test out, and is not added.
        let example: Option<FileText> = if still.is_empty() {
            None
        } else {
            (1..k).rev().find_map(|j| {
                let (files, _) = files::snapshot(&d.conformance_tests(j), self.opts.prompt_budget);
                files
                    .into_iter()
                    .find(|f| !f.path.starts_with("__") && !f.content.trim().is_empty())
                    .map(|f| FileText {
                        path: format!("{TESTS}{}", f.path),
                        content: f.content,
                    })
            })
        };
        for u in still {
            let taken: Vec<String> = tests
                .tests
                .iter()
                .map(|c| format!("{TESTS}{}", c.path()))
                .collect();
            let msgs = prompts::acceptance_test(cx, &program, &u.test, &taken, example.as_ref());
            let Some(one) = self
                .optional(module, k, Role::Tests, msgs, alone, tries)
                .await?
            else {
                continue;
            };
            let new = one.changes.tests;
            let covers = checked::unchecked(std::slice::from_ref(&u.test), &setup, &written(&new))
                .is_empty();
            if covers {
                for c in new {
                    add_alongside(&mut tests.tests, c);
                }
            }
        }
        let last = left_out(&tests.tests);
        self.obs.event(&Event::Warning {
            message: format!(
                "functionality {k}: its conformance tests left out {} of {} acceptance tests and were asked for again ({} left out now)",
                first.len(),
                cx.acceptance_tests.len(),
                last.len(),
            ),
        });
        Ok((tests, last))
    }

    /// A question whose answer the loop can do without (a follow-up, a second try): a reply
    /// still unusable after its reformat request is `None`, with a warning, not an error.
    async fn optional(
        &mut self,
        module: &str,
        id: usize,
        role: Role,
        messages: Vec<Message>,
        scope: Scope<'_>,
        tries: &mut Tries,
    ) -> Result<Option<Reply>, RenderError> {
        match self.ask(module, id, role, 0, messages, scope, tries).await {
            Ok(reply) => Ok(Some(reply)),
            Err(RenderError::Reply { detail, .. }) => {
                self.obs.event(&Event::Warning {
                    message: format!(
                        "functionality {id}: an answer the render can do without could not be used ({detail}); it goes on without it"
                    ),
                });
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The file names of the test scripts, which no reply may write.
    fn script_names(&self) -> Vec<String> {
        [
            &self.opts.unittests_script,
            &self.opts.conformance_tests_script,
            &self.opts.prepare_environment_script,
        ]
        .into_iter()
        .flatten()
        .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect()
    }

    /// Writes a reply's changes (each folder's all or nothing).
    fn apply(
        &self,
        module: &str,
        id: usize,
        scope: &Scope<'_>,
        changes: &Routed,
    ) -> Result<(), RenderError> {
        let refused = |r: files::Refused| RenderError::Reply {
            module: module.to_string(),
            id,
            detail: r.to_string(),
        };
        if !changes.code.is_empty() {
            files::apply(scope.code, &changes.code, &self.opts.limits).map_err(refused)?;
        }
        if let Some(tests) = scope.tests {
            if !changes.tests.is_empty() {
                files::apply(tests, &changes.tests, &self.opts.limits).map_err(refused)?;
            }
        }
        Ok(())
    }

    fn snapshot(&self, root: &Path) -> (Vec<FileText>, Vec<String>) {
        files::snapshot(root, self.opts.prompt_budget)
    }

    /// One functionality, with its fixes and its fresh restarts (`Options::restarts`), within
    /// its call budget (`Options::call_budget`).
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
        let mut tries = Tries {
            docs: cx.names_documentation(),
            call_budget: self.opts.call_budget,
            ..Tries::default()
        };
        let mut made = 0;
        // Whether the call budget ended the attempts, and whether it cut the last one short.
        let (mut spent, mut cut) = (false, false);
        for restart in 0..=self.opts.restarts {
            if restart > 0 {
                // A restart needs two calls to pass: its implementation and its conformance
                // tests.
                if tries.calls_left() < 2 {
                    spent = true;
                    break;
                }
                code.reset_hard(None)?;
                tests.reset_hard(None)?;
                tries.restart();
            }
            // The first restart is asked greedily, told why the first attempt failed. A later one
            // is sampled (seeded from its request) from the first prompt as it was: where greedy
            // replies keep one wrong idea a sample may hold another (HumanEval/6 and /37 at
            // ed8c3ad: 2 of 5 samples of the first prompt right), while a prompt quoting the
            // failing line had the sample write that line again (HumanEval/37).
            // A restart gets no fix call: it stands or falls as written. A sample's fixes passed
            // in none of 7 tries (HumanEval/6, /21, /26, /37 at 512f259); of the 17 told
            // restarts that passed in the benchmark runs kept from earlier sessions, 12 did so
            // with no fix; and the call saved pays for another sample.
            let sampled = restart >= 2;
            tries.sample_next = sampled;
            tries.fix_budget = if restart == 0 {
                self.opts.fix_attempts
            } else {
                0
            };
            let earlier = last
                .as_ref()
                .filter(|_| !sampled)
                .map(|(reason, _)| reason.clone());
            made += 1;
            match self
                .attempt(module, k, cx, d, restart, earlier.as_deref(), &mut tries)
                .await
            {
                Ok(None) => return Ok(()),
                Ok(Some(failure)) => last = Some(failure),
                Err(RenderError::OutOfCalls { .. }) => {
                    cut = true;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let budget = self.opts.call_budget;
        let Some((reason, output)) = last else {
            return Err(RenderError::Failed {
                module: module.to_string(),
                id: k,
                reason: format!(
                    "its budget of {budget} model calls ran out before its first attempt finished"
                ),
                output: String::new(),
            });
        };
        let mut why = Vec::new();
        match (made, cut) {
            (1, _) => {}
            (n, false) => why.push(format!("the last of {n} attempts")),
            (n, true) => why.push(format!("{n} attempts, the last cut short")),
        }
        if cut {
            why.push(format!("all {budget} of its model calls made"));
        } else if spent {
            why.push(format!(
                "{} of its {budget} model calls made, too few left for another attempt",
                tries.calls
            ));
        }
        let reason = if why.is_empty() {
            reason
        } else {
            format!("{reason} ({})", why.join("; "))
        };
        Err(RenderError::Failed {
            module: module.to_string(),
            id: k,
            reason,
            output,
        })
    }

    /// Drops the failing check `inv` from the test file it names, one of `shown` (the files as
    /// prompts name them: a conformance test under [`TESTS`], of the folder `tests`, or a unit
    /// test of the code folder), when the check is one line beside another ([`without_line`]):
    /// the model worked the expected value out itself, and asked to write the test anew it
    /// keeps the value (HumanEval/4 at 69f165b, three times); or it called the code on inputs
    /// the specification never gives ([`unspecified_input`]). A conformance check stays when
    /// the tests would no longer name a value an acceptance test gives ([`keep_checks`]). What
    /// the memory says, when it drops one.
    #[allow(clippy::too_many_arguments)]
    fn drop_check(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        tests: Option<&Path>,
        shown: &[FileText],
        inv: &Invented,
    ) -> Result<Option<String>, RenderError> {
        let Some(file) = shown.iter().find(|f| f.path == inv.path) else {
            return Ok(None);
        };
        let Some(content) = without_line(&file.content, inv.line) else {
            return Ok(None);
        };
        let (change, scope) = match (inv.path.strip_prefix(TESTS), tests) {
            (Some(_), None) => return Ok(None),
            (Some(rest), Some(tests)) => {
                let mut changes = vec![Change::Write {
                    path: rest.to_string(),
                    content,
                }];
                // Not when the line is the tests' only check of a value an acceptance test
                // gives: no functionality passes on tests that no longer check it.
                if keep_checks(cx, tests, &mut changes).is_some() {
                    return Ok(None);
                }
                (
                    Routed {
                        code: vec![],
                        tests: changes,
                    },
                    Scope::tests(&d.code, tests),
                )
            }
            (None, _) => (
                Routed {
                    code: vec![Change::Write {
                        path: inv.path.clone(),
                        content,
                    }],
                    tests: vec![],
                },
                Scope::code(&d.code),
            ),
        };
        let line = file.content.lines().nth(inv.line - 1).unwrap_or("").trim();
        self.apply(module, k, &scope, &change)?;
        let values = inv.values.join(", ");
        let why = match &inv.raised {
            None => format!(
                "it compared with values the specification does not give ({values}), and the code disagreed"
            ),
            Some(error) => format!(
                "it called the code with values the specification does not give ({values}), and the code raised {error}; what the code does there the specification leaves open"
            ),
        };
        Ok(Some(format!(
            "The check `{line}` ({} line {}) was removed: {why}.",
            inv.path, inv.line
        )))
    }

    /// Says `note`, something the render did to a functionality's files without a call, as a
    /// warning, and keeps it in the functionality's memory for the prompts after it. The failure
    /// it answers no longer asks for a sampled fix: the next call, whatever it is, is asked as
    /// usual (word-count at c64290b: a unit test removed after a fix that changed nothing left
    /// the flag set, and the conformance tests were sampled).
    fn remember(&mut self, k: usize, tries: &mut Tries, note: String) {
        self.obs.event(&Event::Warning {
            message: format!("functionality {k}: {note}"),
        });
        tries.memory.tried.push(note);
        tries.sample_next = false;
    }

    /// Whether every one of `paths` (of the code folder) is new since the last commit: written
    /// by this functionality, not kept from an earlier one.
    fn written_here(&self, code: &Path, paths: &[String]) -> Result<bool, RenderError> {
        let new: Vec<String> = Repo::new(code)
            .changes()?
            .into_iter()
            .filter(|(status, _)| status == "??" || status == "A")
            .map(|(_, path)| path)
            .collect();
        Ok(paths.iter().all(|p| new.contains(p)))
    }

    /// Runs the prepare-environment script, if there is one; exit 69 is an environment error.
    fn prepare_environment(
        &mut self,
        module: &str,
        k: usize,
        d: &ModuleLayout,
    ) -> Result<(), RenderError> {
        if let Some(prep) = self.opts.prepare_environment_script.clone() {
            self.phase(module, k, Phase::PrepareEnvironment, 1);
            let run = self.script(ScriptKind::Prepare, &prep, &[&d.code], &d.code)?;
            if run.outcome == Outcome::Environment {
                return Err(environment(module, k, &prep, run));
            }
        }
        Ok(())
    }

    /// Runs the conformance tests in `folder` against the module's code.
    fn conformance(
        &mut self,
        script: &Path,
        d: &ModuleLayout,
        folder: &Path,
    ) -> Result<scripts::Run, RenderError> {
        self.script(ScriptKind::Conformance, script, &[&d.code, folder], &d.code)
    }

    /// The tests of a functionality restored by `render --locked`, as a render runs them but
    /// with no fixes: the unit tests, then its conformance tests and every earlier one's.
    pub(crate) fn verify_restored(
        &mut self,
        module: &str,
        k: usize,
        d: &ModuleLayout,
    ) -> Result<(), RenderError> {
        let failed = |reason: String, run: scripts::Run| RenderError::Failed {
            module: module.to_string(),
            id: k,
            reason: format!(
                "restored from rekindle.lock with the locked trees, but {reason} (exit {})",
                run.exit_code
            ),
            output: run.output,
        };
        if let Some(script) = self.opts.unittests_script.clone() {
            self.phase(module, k, Phase::UnitTests, 1);
            let run = self.script(ScriptKind::Unit, &script, &[&d.code], &d.code)?;
            match run.outcome {
                Outcome::Passed => {}
                Outcome::Environment => return Err(environment(module, k, &script, run)),
                Outcome::Failed | Outcome::TimedOut => {
                    return Err(failed("its unit tests fail".into(), run))
                }
            }
        }
        let Some(script) = self.opts.conformance_tests_script.clone() else {
            return Ok(());
        };
        self.prepare_environment(module, k, d)?;
        self.phase(module, k, Phase::ConformanceTests, 1);
        for j in (1..=k).rev() {
            let folder = d.conformance_tests(j);
            if !folder.is_dir() {
                continue;
            }
            let run = self.conformance(&script, d, &folder)?;
            match run.outcome {
                Outcome::Passed => {}
                Outcome::Environment => return Err(environment(module, k, &script, run)),
                Outcome::Failed | Outcome::TimedOut => {
                    let what = if j == k {
                        "its conformance tests fail".to_string()
                    } else {
                        format!("the conformance tests of functionality {j} fail after it")
                    };
                    return Err(failed(what, run));
                }
            }
        }
        Ok(())
    }

    /// Asks for the functionality's implementation (`earlier_failure` says why an earlier one
    /// was given up) and writes it into the code folder.
    async fn implement(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        earlier_failure: Option<&str>,
        tries: &mut Tries,
    ) -> Result<(), RenderError> {
        let (files, left_out) = self.snapshot(&d.code);
        let mut msgs = prompts::implement(cx, &named(CODE, &files), &left_out, earlier_failure);
        let scope = Scope::code(&d.code);
        let mut reply = self
            .ask(module, k, Role::Code, 0, msgs.clone(), scope, tries)
            .await?;
        // One follow-up at most, in the same conversation, told what is missing:
        // - the reply gave the program back as it was (a small model copies the files it is
        //   shown; tests and documentation it changed do not count);
        // - its program only repeats code the specification shows (a signature and its
        //   docstring, no body), when the answer is also taken only if it writes code of its own.
        let spec = cx.text();
        let (told, after_copy) = if !files.is_empty() && !reply.changes_program(&d.code) {
            (Some(prompts::unchanged(cx, &program_paths(&files))), false)
        } else {
            let copied = reply.copies_spec_code(&spec);
            ((!copied.is_empty()).then(|| prompts::copied(&copied)), true)
        };
        if let Some(told) = told {
            msgs.push(Message::assistant(reply.text.clone()));
            msgs.push(Message::user(told));
            let again = self
                .optional(module, k, Role::Code, msgs, scope, tries)
                .await?;
            if let Some(again) = again.filter(|r| {
                r.changes_program(&d.code) && (!after_copy || r.copies_spec_code(&spec).is_empty())
            }) {
                reply = again;
            }
        }
        self.apply(module, k, &scope, &reply.changes)
    }

    /// One attempt: `Ok(None)` on success, `Ok(Some((reason, output)))` when tests still fail.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        restart: u32,
        earlier_failure: Option<&str>,
        tries: &mut Tries,
    ) -> Result<Option<(String, String)>, RenderError> {
        self.phase(module, k, Phase::Implement, restart + 1);
        self.implement(module, k, cx, d, earlier_failure, tries)
            .await?;
        let mut failures = 0u32;
        if let Some(failure) = self
            .unit_tests(module, k, cx, d, &mut failures, tries)
            .await?
        {
            return Ok(Some(failure));
        }
        let Some(script) = self.opts.conformance_tests_script.clone() else {
            return Ok(None);
        };
        self.prepare_environment(module, k, d)?;
        let folder = d.conformance_tests(k);
        std::fs::create_dir_all(&folder).map_err(io)?;
        self.phase(module, k, Phase::ConformanceTests, 1);
        let scope = Scope::tests(&d.code, &folder);
        let (tests, left_out) = self
            .write_conformance(module, k, cx, d, scope, tries)
            .await?;
        self.apply(module, k, &scope, &tests)?;
        if !left_out.is_empty() {
            // Tests that do not check an acceptance test would pass a functionality nobody
            // tested (a test of the previous functionality passes on code that never does this
            // one): the attempt fails instead, and says which test and which values.
            let which: Vec<String> = left_out
                .iter()
                .map(|u| {
                    let mut why: Vec<String> = Vec::new();
                    if !u.missing.is_empty() {
                        let missing: Vec<String> =
                            u.missing.iter().map(|m| format!("\"{m}\"")).collect();
                        why.push(format!("no test names {}", missing.join(", ")));
                    }
                    why.extend(u.results.iter().map(|r| format!("no line checks that {r}")));
                    format!("\"{}\" ({})", u.test.trim(), why.join("; "))
                })
                .collect();
            let reason = format!(
                "its conformance tests do not check the acceptance test{} {}",
                if which.len() == 1 { "" } else { "s" },
                which.join("; ")
            );
            return Ok(Some((reason.clone(), reason)));
        }
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
                let run = self.conformance(&script, d, &folder)?;
                match run.outcome {
                    Outcome::Passed => break,
                    Outcome::Environment => return Err(environment(module, k, &script, run)),
                    Outcome::Failed | Outcome::TimedOut => {}
                }
                if !regression {
                    if let Some((name, j)) = self.retest(d, k, &folder, &script, &run.output)? {
                        // The file tests an earlier functionality again, and says otherwise than
                        // that functionality's own tests, which pass: the earlier ones are right
                        // by definition, so this one goes (not a fix attempt) and the memory
                        // says so.
                        let gone = Routed {
                            code: vec![],
                            tests: vec![Change::Delete { path: name.clone() }],
                        };
                        self.apply(module, k, &Scope::tests(&d.code, &folder), &gone)?;
                        self.remember(k, tries, format!(
                            "The conformance test file {TESTS}{name} was removed: it tested functionality {j} again (a file of that name is among its tests, which pass) and failed."
                        ));
                        continue;
                    }
                }
                let output = self.output_for_prompt(&run.output, d, &folder);
                let (files, _) = self.snapshot(&d.code);
                let (test_files, _) = files::snapshot(&folder, self.opts.prompt_budget);
                let (files, test_files) = (named(CODE, &files), named(TESTS, &test_files));
                let shown: Vec<FileText> = files.iter().chain(&test_files).cloned().collect();
                // A failing check that compares with values the specification never gives
                // (the model worked out `mean_absolute_deviation([1.0, …, 5.0]) == 1.5` itself):
                // the test is as suspect as the code.
                // So is one that calls the code with inputs the specification never gives,
                // where the code raised an error of the values.
                // Only when the functionality gives examples of its own, which the tests that
                // stay check: with none (word-count f2, "read standard input"), every value is
                // the model's, and dropping what fails passed code that printed `1 0 0`.
                let judged = !regression && gives_examples(cx);
                let spec = cx.text();
                let invented = if judged {
                    invented_values(&output, &shown, &spec)
                } else {
                    None
                };
                let unspecified = if judged && invented.is_none() {
                    unspecified_input(&output, &shown, &spec)
                } else {
                    None
                };
                if let Some(inv) = invented
                    .as_ref()
                    .or(unspecified.as_ref())
                    .filter(|_| tries.dropped < MAX_DROPPED_CHECKS)
                {
                    if let Some(note) =
                        self.drop_check(module, k, cx, d, Some(&folder), &shown, inv)?
                    {
                        // No call: the check goes, the same tests run again.
                        tries.dropped += 1;
                        self.remember(k, tries, note);
                        continue;
                    }
                }
                if !tries.may_fix(attempt) {
                    let what = if regression {
                        format!("the conformance tests of functionality {j} fail after it")
                    } else {
                        "its conformance tests still fail".to_string()
                    };
                    let check = if invented.is_none() {
                        first_failure(&output, &shown)
                    } else {
                        None
                    };
                    return Ok(Some((
                        given_up(&what, attempt, run.exit_code, check),
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
                tries.failed("conformance", &output, &shown);
                // An earlier functionality's tests are right by definition: never rewritten.
                // This one's is, when the model kept the code, or when the failure is raised in
                // the test alone and is the test's own: floats compared for equality, or an
                // error that is no failed assertion (a name never imported, a syntax error).
                let own_error = !failed_assertion(&output);
                let wrong_code = tries.wrong_code(&output);
                let (target, code_kept) = if let Some((path, _)) = &wrong_code {
                    (Some(path.clone()), false)
                } else if regression {
                    (None, false)
                } else if let Some(Invented { path, values, .. }) = invented {
                    // On HumanEval's first 40 (0022e1f), three renders whose first code was
                    // right failed on such tests: their fixes rewrote the right code.
                    tries.memory.hint = Some(format!(
                        "The failing check compares with values the specification does not give ({}): expected values a model works out itself are often wrong. Check only the examples the specification gives, with exactly its values.",
                        values.join(", ")
                    ));
                    let kept = tries.last_fix_changed_nothing;
                    (Some(tries.rewriting(path)), kept)
                } else if let Some(path) = tries.wrong_test() {
                    (Some(path), true)
                } else if tries.rounding.is_some() || own_error {
                    (tries.failing_test_alone(), false)
                } else {
                    (None, false)
                };
                let msgs = match (&target, &wrong_code) {
                    (Some(path), Some((_, raised))) => prompts::rewrite_code(
                        cx,
                        &shown,
                        path,
                        raised,
                        run.exit_code,
                        &output,
                        &tries.memory,
                    ),
                    (Some(path), None) => prompts::rewrite_test(
                        cx,
                        &without(&shown, path),
                        path,
                        code_kept,
                        run.exit_code,
                        &output,
                        &tries.memory,
                    ),
                    (None, _) => prompts::fix_conformance(
                        cx,
                        &files,
                        &test_files,
                        run.exit_code,
                        &output,
                        regression,
                        &tries.memory,
                    ),
                };
                let scope = Scope {
                    code: &d.code,
                    may_code: true,
                    tests: Some(&folder),
                    may_tests: !regression,
                    one_file: target.is_some(),
                };
                let mut reply = self
                    .ask(module, k, Role::Fix, failures, msgs, scope, tries)
                    .await?;
                if let Some(path) = &target {
                    reply.keep_only(path);
                }
                let dropped = if regression {
                    None
                } else {
                    keep_checks(cx, &folder, &mut reply.changes.tests)
                };
                tries.fixed("conformance tests", &reply, &scope);
                if let Some(note) = dropped {
                    self.remember(k, tries, note);
                }
                self.apply(module, k, &scope, &reply.changes)?;
                if !reply.changes.code.is_empty() {
                    if let Some(failure) = self
                        .unit_tests(module, k, cx, d, &mut failures, tries)
                        .await?
                    {
                        return Ok(Some(failure));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A test file of functionality `k`'s conformance tests (in `folder`) that tests an earlier
    /// functionality again: the failure `output` names it, a file of the same name is among the
    /// conformance tests of an earlier functionality `j`, and those pass on the code as it is.
    /// Only while `folder` has other test files (the functionality keeps tests of its own).
    /// The file's name and `j`.
    fn retest(
        &mut self,
        d: &ModuleLayout,
        k: usize,
        folder: &Path,
        script: &Path,
        output: &str,
    ) -> Result<Option<(String, usize)>, RenderError> {
        let names: Vec<String> = std::fs::read_dir(folder)
            .map_err(io)?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("__"))
            .collect();
        if names.len() < 2 {
            return Ok(None);
        }
        for name in &names {
            if !output.contains(name.as_str()) {
                continue;
            }
            let Some(j) = (1..k)
                .rev()
                .find(|&j| d.conformance_tests(j).join(name).is_file())
            else {
                continue;
            };
            let run = self.conformance(script, d, &d.conformance_tests(j))?;
            if run.outcome == Outcome::Passed {
                return Ok(Some((name.clone(), j)));
            }
        }
        Ok(None)
    }

    /// Script output as prompts show it: the build's absolute folders written as the prompts
    /// write them (`conformance_tests`, `.` for the code folder, `<build>`, `<project>`),
    /// timings, temporary names and addresses as placeholders (so the same failure asks the
    /// same question in another folder or at another time), cut to the budget.
    fn output_for_prompt(&self, output: &str, d: &ModuleLayout, tests: &Path) -> String {
        let mut folders = vec![
            (tests, "conformance_tests"),
            (d.code.as_path(), "."),
            (self.opts.build_folder.as_path(), "<build>"),
        ];
        if let Some(p) = &self.opts.project_dir {
            folders.push((p.as_path(), "<project>"));
        }
        let out = scripts::normalise_for_prompt(output, &folders);
        scripts::cut_for_prompt(&out, self.opts.output_budget)
    }

    /// Runs the unit tests and fixes failures; `Some` when they still fail.
    async fn unit_tests(
        &mut self,
        module: &str,
        k: usize,
        cx: &Context,
        d: &ModuleLayout,
        failures: &mut u32,
        tries: &mut Tries,
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
            // Removals without a call come first and do not count against the fixes.
            let output = self.output_for_prompt(&run.output, d, &d.conformance_tests(k));
            let (files, _) = self.snapshot(&d.code);
            let files = named(CODE, &files);
            tries.failed("unit", &output, &files);
            // A failed assertion raised in unit test files this functionality wrote, and in no
            // line of the program: the model's test disagrees with the model's code. Its own
            // unit tests are not ground truth, and on the quality benchmark a call to fix such
            // a failure made the unit tests pass once in 18 calls (HumanEval's first 40,
            // ed88121), rewriting correct code as often as not: the files go without a call,
            // and the conformance tests, written against the spec and checked against its
            // acceptance tests, decide. Tests kept from earlier functionalities are not removed:
            // they passed on the code before this one, so their failure is a regression.
            // Unless the failing checks are the spec's own examples (every one compares with
            // values the spec gives): then the test is right, and the code is what to fix.
            let spec = cx.text();
            let example = spec_valued(&output, &files, &spec);
            let own = assertion_in_tests_alone(&output, &files);
            if !example && !own.is_empty() && self.written_here(&d.code, &own)? {
                self.phase(module, k, Phase::FixUnitTests, attempt + 1);
                let gone = Routed {
                    code: own
                        .iter()
                        .map(|path| Change::Delete { path: path.clone() })
                        .collect(),
                    tests: vec![],
                };
                self.apply(module, k, &Scope::code(&d.code), &gone)?;
                let note = format!(
                    "The unit test file{} {} {} removed: {} failed an assertion that no line of the code is part of, and the conformance tests decide whether the code is right.",
                    if own.len() == 1 { "" } else { "s" },
                    own.join(", "),
                    if own.len() == 1 { "was" } else { "were" },
                    if own.len() == 1 { "it" } else { "they" },
                );
                self.remember(k, tries, note);
                continue;
            }
            // A check that calls the code with inputs the spec never gives, where the code
            // raised an error of the values: the case is the model's own, and the spec leaves
            // what the code does there open. The check goes without a call.
            if let Some(inv) = unspecified_input(&output, &files, &spec)
                .filter(|_| tries.dropped < MAX_DROPPED_CHECKS && gives_examples(cx))
            {
                if self.written_here(&d.code, std::slice::from_ref(&inv.path))? {
                    if let Some(note) = self.drop_check(module, k, cx, d, None, &files, &inv)? {
                        self.phase(module, k, Phase::FixUnitTests, attempt + 1);
                        tries.dropped += 1;
                        self.remember(k, tries, note);
                        continue;
                    }
                }
            }
            if let Some(path) = tries.unwritable_test() {
                self.phase(module, k, Phase::FixUnitTests, attempt + 1);
                // The model judged the code right, then could not write this unit test so that
                // it passes: the model's own test is not ground truth (the conformance tests,
                // written against the spec, still are). It goes, and the memory says so.
                let gone = Routed {
                    code: vec![Change::Delete { path: path.clone() }],
                    tests: vec![],
                };
                self.apply(module, k, &Scope::code(&d.code), &gone)?;
                self.remember(k, tries, format!(
                    "The unit test file {path} was removed: the code was judged right and the test could not be written to pass."
                ));
                continue;
            }
            if !tries.may_fix(attempt) {
                let check = if invented_values(&output, &files, &spec).is_none() {
                    first_failure(&output, &files)
                } else {
                    None
                };
                return Ok(Some((
                    given_up("its unit tests still fail", attempt, run.exit_code, check),
                    run.output,
                )));
            }
            attempt += 1;
            *failures += 1;
            self.phase(module, k, Phase::FixUnitTests, attempt);
            // An error raised in the code after a fix that kept the code: that file is asked
            // for alone, written anew (the model that kept it would keep it again).
            // A failure raised in a unit test file alone is first taken as the test's own
            // mistake (the model's unit tests are not ground truth; the conformance tests,
            // written against the spec, still are): the test is written anew, the code kept.
            let wrong_code = tries.wrong_code(&output);
            let (target, code_kept) = if let Some((path, _)) = &wrong_code {
                (Some(path.clone()), false)
            } else if example {
                tries.memory.hint = Some(
                    "The failing check compares with values the specification itself gives: the test is right and the code is wrong. Change the code so that it gives exactly those values; keep the test.".to_string(),
                );
                (None, false)
            } else {
                match tries.wrong_test() {
                    Some(path) => (Some(path), true),
                    None => (tries.failing_test_alone(), false),
                }
            };
            let msgs = match (&target, &wrong_code) {
                (Some(path), Some((_, raised))) => prompts::rewrite_code(
                    cx,
                    &files,
                    path,
                    raised,
                    run.exit_code,
                    &output,
                    &tries.memory,
                ),
                (Some(path), None) => {
                    let others = without(&files, path);
                    prompts::rewrite_test(
                        cx,
                        &others,
                        path,
                        code_kept,
                        run.exit_code,
                        &output,
                        &tries.memory,
                    )
                }
                (None, _) => prompts::fix_unit(cx, &files, run.exit_code, &output, &tries.memory),
            };
            let scope = Scope {
                one_file: target.is_some(),
                ..Scope::code(&d.code)
            };
            let mut reply = self
                .ask(module, k, Role::Fix, *failures, msgs, scope, tries)
                .await?;
            if let Some(path) = &target {
                reply.keep_only(path);
            }
            tries.fixed("unit tests", &reply, &scope);
            self.apply(module, k, &scope, &reply.changes)?;
        }
    }
}

/// Adds `change` to `tests` without losing one of them: a new file at a path another already
/// takes is written beside it under a free name (`test_roman.py` → `test_roman_2.py`), since
/// each answers its own acceptance test (roman-numerals at 55a734c: both tests of functionality
/// 1, asked for one at a time, came back as `conformance_tests/test_roman.py`; the second
/// replaced the first, and the attempt failed on the test it lost).
fn add_alongside(tests: &mut Vec<Change>, change: Change) {
    let taken = |tests: &[Change], p: &str| tests.iter().any(|t| t.path() == p);
    match change {
        Change::Write { path, content } if taken(tests, &path) => {
            let (dir, name) = path
                .rsplit_once('/')
                .map_or(("", path.as_str()), |(d, n)| (d, n));
            let (stem, ext) = match name.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
                _ => (name, String::new()),
            };
            let path = (2..)
                .map(|n| {
                    let name = format!("{stem}_{n}{ext}");
                    if dir.is_empty() {
                        name
                    } else {
                        format!("{dir}/{name}")
                    }
                })
                .find(|p| !taken(tests, p))
                .unwrap_or(path);
            tests.push(Change::Write { path, content });
        }
        other => {
            tests.retain(|t| t.path() != other.path());
            tests.push(other);
        }
    }
}

/// Why an attempt was given up: `what` fails after `fixes` fixes, and the first failure
/// ([`first_failure`]) when there is one to name. It is the error the render reports, and the
/// restart's implementation prompt says it: told only "the tests still fail", the 1.5B wrote
/// the same mistake again.
fn given_up(what: &str, fixes: u32, exit_code: i32, check: Option<String>) -> String {
    let after = match fixes {
        0 => String::new(),
        1 => " after 1 fix".to_string(),
        n => format!(" after {n} fixes"),
    };
    match check {
        Some(check) => format!("{what}{after} (exit {exit_code}): {check}"),
        None => format!("{what}{after} (exit {exit_code})"),
    }
}

/// The first failure a Python traceback in `output` reports, in one line: the deepest line of
/// `files` it points at (as [`pointed_at`] names them) and the exception raised there, e.g.
/// "test_solution.py line 7: `self.assertEqual(f([5, 3]), [3, 5])` raised AssertionError:
/// Lists differ: [5, 3] != [3, 5]". None when no traceback points into `files`.
fn first_failure(output: &str, files: &[FileText]) -> Option<String> {
    let tb = output.split("Traceback (most recent call last):").nth(1)?;
    let at = all_pointed_at(tb, files).pop()?;
    let (place, source) = at.split_once(": ")?;
    let error = tb.lines().map(str::trim).find(|l| is_exception_line(l))?;
    let error = if error.chars().count() > 240 {
        format!("{}…", error.chars().take(240).collect::<String>())
    } else {
        error.to_string()
    };
    Some(format!("{place}: `{source}` raised {error}"))
}

/// Whether `line` is the last line of a Python traceback: an exception's (dotted) name ending in
/// Error, Exception or Exit, alone or followed by a colon.
fn is_exception_line(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or("");
    let last = name.rsplit('.').next().unwrap_or("");
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && ["Error", "Exception", "Exit"]
            .iter()
            .any(|e| last.ends_with(e))
        && (line.len() == name.len() || line[name.len()..].starts_with(':'))
}

/// Made-up checks dropped from a functionality's tests in one attempt, at most (a test run
/// each, no call; the 1.5B wrote ten for HumanEval/4, one a line, each failing).
const MAX_DROPPED_CHECKS: u32 = 20;

/// Replies to a conformance-tests call stay short: a runaway test file is the commonest way a
/// small model wastes a call.
const TESTS_MAX_TOKENS: u32 = 1024;
/// The least a fix reply may hold, whatever the size of the files it fixes.
const FIX_MIN_TOKENS: u32 = 768;

/// Code paths have no prefix: the code folder is where the program and its tests run.
const CODE: &str = "";
/// Conformance tests are written under this prefix (a name no program's own folder is likely to
/// have; `tests/` is, and `code/` made a model import `code.app`).
const TESTS: &str = "conformance_tests/";

/// Drops a fix's changes of the conformance tests in `folder` when the tests would no longer
/// name a value of an acceptance test that they name now (a small model "fixes" a test by making
/// it expect what the code does): the values an acceptance test gives are not the model's to
/// change. What the memory should say, when it drops them.
fn keep_checks(cx: &Context, folder: &Path, changes: &mut Vec<Change>) -> Option<String> {
    if changes.is_empty() || cx.acceptance_tests.is_empty() {
        return None;
    }
    // Every text file, whatever its size: the judgement needs all of them, not a prompt's worth.
    let (mut now, _) = files::snapshot(folder, usize::MAX);
    let setup = checked::setup(cx);
    let named = |files: &[FileText]| {
        let texts: Vec<&str> = files.iter().map(|f| f.content.as_str()).collect();
        checked::named(&cx.acceptance_tests, &setup, &texts)
    };
    let before = named(&now);
    for c in changes.iter() {
        now.retain(|f| f.path != c.path());
        if let Change::Write { path, content } = c {
            now.push(FileText {
                path: path.clone(),
                content: content.clone(),
            });
        }
    }
    let after = named(&now);
    let lost: Vec<String> = before
        .iter()
        .filter(|w| !after.contains(w))
        .map(|w| format!("\"{w}\""))
        .collect();
    if lost.is_empty() {
        return None;
    }
    let paths: Vec<String> = changes
        .iter()
        .map(|c| format!("{TESTS}{}", c.path()))
        .collect();
    changes.clear();
    Some(format!(
        "Its change of {} was not kept: the tests would no longer check {}, which the acceptance tests give.",
        paths.join(", "),
        lost.join(", ")
    ))
}

/// The contents a reply's changes write.
fn written(changes: &[Change]) -> Vec<&str> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Write { content, .. } => Some(content.as_str()),
            Change::Delete { .. } => None,
        })
        .collect()
}

/// `files` but `path`: a test to be written anew is not shown, or the model copies it.
fn without(files: &[FileText], path: &str) -> Vec<FileText> {
    files.iter().filter(|f| f.path != path).cloned().collect()
}

/// Files as prompts show them: code at the root, conformance tests under `conformance_tests/`.
fn named(prefix: &str, files: &[FileText]) -> Vec<FileText> {
    files
        .iter()
        .map(|f| FileText {
            path: format!("{prefix}{}", f.path),
            content: f.content.clone(),
        })
        .collect()
}

/// The folders one reply may write. Code paths are relative to the code folder; conformance
/// tests are under `conformance_tests/`. In the step that writes tests, a path without the prefix
/// is a test unless it names a file of the code; in a conformance fix it is code, unless the reply
/// starts with a `WRONG: tests` line (as hosted models were once told). A step without a tests
/// folder ignores `conformance_tests/` blocks.
#[derive(Clone, Copy)]
struct Scope<'a> {
    code: &'a Path,
    may_code: bool,
    /// The conformance tests folder of the step, if it has one.
    tests: Option<&'a Path>,
    may_tests: bool,
    /// The step asks for one file (a test written anew): generation stops at its end.
    one_file: bool,
}

impl<'a> Scope<'a> {
    fn code(code: &'a Path) -> Scope<'a> {
        Scope {
            code,
            may_code: true,
            tests: None,
            may_tests: false,
            one_file: false,
        }
    }

    /// The step that writes a functionality's conformance tests (in `tests`): tests only.
    fn tests(code: &'a Path, tests: &'a Path) -> Scope<'a> {
        Scope {
            code,
            may_code: false,
            tests: Some(tests),
            may_tests: true,
            one_file: false,
        }
    }
}

/// A reply's changes, by folder, with paths relative to it.
#[derive(Debug, Default)]
struct Routed {
    code: Vec<Change>,
    tests: Vec<Change>,
}

struct Reply {
    changes: Routed,
    /// The reply as the model gave it (a block cut by the token cap closed).
    text: String,
    #[allow(dead_code)]
    finish: FinishReason,
}

impl Reply {
    /// Whether applying the reply changes a file of the program in `code`: not a test, not
    /// documentation.
    fn changes_program(&self, code: &Path) -> bool {
        self.changes
            .code
            .iter()
            .any(|c| is_program_path(c.path()) && changes(code, c))
    }

    /// The program files the reply writes, when every one of them only repeats code the
    /// specification (`spec`) shows: each of its lines, trimmed, is a line of the spec. A small
    /// model copies a function's signature and docstring with no body (the 0.5B did in 20 of
    /// HumanEval's first 40 first replies, with the reply format told in words rather than
    /// shown). Empty when the reply writes a line of its own, or no program file.
    fn copies_spec_code(&self, spec: &str) -> Vec<String> {
        let given: HashSet<&str> = spec.lines().map(str::trim).collect();
        let mut copied = Vec::new();
        for c in &self.changes.code {
            let Change::Write { path, content } = c else {
                continue;
            };
            if !is_program_path(path) {
                continue;
            }
            let lines: Vec<&str> = content
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if lines.is_empty() || !lines.iter().all(|l| given.contains(l)) {
                return Vec::new();
            }
            copied.push(path.clone());
        }
        copied
    }

    /// Keeps only the change of `path` (as prompts name it: `conformance_tests/…` for a test).
    fn keep_only(&mut self, path: &str) {
        match path.strip_prefix(TESTS) {
            Some(rel) => {
                self.changes.code.clear();
                self.changes.tests.retain(|c| c.path() == rel);
            }
            None => {
                self.changes.tests.clear();
                self.changes.code.retain(|c| c.path() == path);
            }
        }
    }
}

/// Sorts a reply's blocks into the folders of `scope`; the reason when the reply may not be
/// applied. A block that repeats a file it may not change, unchanged, is dropped, and so is
/// documentation (a README, a Markdown file) unless `docs` says the specification names some.
fn route(
    text: &str,
    blocks: &[FileBlock],
    scope: &Scope<'_>,
    scripts: &[String],
    docs: bool,
) -> Result<Routed, String> {
    let verdict_tests = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| {
            l.to_ascii_lowercase()
                .replace(' ', "")
                .starts_with("wrong:test")
        });
    let mut out = Routed::default();
    let mut dropped = 0;
    for b in blocks {
        let raw = b.path();
        let (tests, rel) = if let Some(r) = raw.strip_prefix(TESTS) {
            if scope.tests.is_none() {
                // Conformance tests written before their step: that step writes them.
                dropped += 1;
                continue;
            }
            (true, r)
        } else if scope.tests.is_some() && !scope.may_code {
            // The tests step: a path without the prefix is a test, unless it names a file of
            // the code (repeated, or changed against the rules).
            (!scope.code.join(raw).is_file(), raw)
        } else {
            (scope.may_tests && verdict_tests, raw)
        };
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if !docs && is_doc_name(name) {
            dropped += 1;
            continue;
        }
        if scripts.iter().any(|s| s == name) {
            return Err(format!(
                "{raw} is one of the project's test scripts, which rekindle runs and no reply may write"
            ));
        }
        let root = match (tests, scope.tests) {
            (true, Some(t)) => t,
            _ => scope.code,
        };
        files::check_path(root, rel).map_err(|refused| {
            format!("{refused}; every path must be relative to the code folder, or to `{TESTS}`")
        })?;
        let change = match b {
            FileBlock::Write { content, .. } => {
                if is_placeholder(content) {
                    return Err(format!(
                        "the block for {raw} holds a placeholder, not the file's content"
                    ));
                }
                Change::Write {
                    path: rel.to_string(),
                    content: content.clone(),
                }
            }
            FileBlock::Delete { .. } => Change::Delete {
                path: rel.to_string(),
            },
        };
        let allowed = if tests {
            scope.may_tests
        } else {
            scope.may_code
        };
        if !allowed {
            if !changes(root, &change) {
                dropped += 1;
                continue;
            }
            return Err(if tests {
                format!("{raw} is a test of an earlier functionality, which is right as it is: change the code instead")
            } else {
                format!("this step writes tests only, under `{TESTS}`: {raw} would change the code")
            });
        }
        if tests {
            out.tests.push(change);
        } else {
            out.code.push(change);
        }
    }
    if out.code.is_empty() && out.tests.is_empty() && dropped > 0 {
        return Err(
            "the reply only repeats files this step does not write, or writes documentation nobody asked for"
                .into(),
        );
    }
    Ok(out)
}

/// A block whose content is only the format's placeholder, such as `<the whole file>`.
fn is_placeholder(content: &str) -> bool {
    let t = content.trim();
    !t.contains('\n') && t.starts_with('<') && t.ends_with('>') && t.contains(' ')
}

/// Whether applying `change` under `root` would change anything.
fn changes(root: &Path, change: &Change) -> bool {
    let at = root.join(change.path());
    match change {
        Change::Write { content, .. } => {
            std::fs::read(&at).map_or(true, |b| b != content.as_bytes())
        }
        Change::Delete { .. } => at.exists(),
    }
}

/// Makes `req` sampled, with a seed derived from its messages and `n` (so the same render asks
/// the same question again).
pub(crate) fn sample(req: &mut Request, n: u64) {
    let key = blake3::hash(rekindle_llm::cache::canonical_json(&req.messages).as_bytes());
    let b = key.as_bytes();
    let seed = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    req.sampling.temperature = 0.7;
    // No top-p: the right token can be in the tail it cuts. HumanEval/37's `even[i // 2]` came
    // in 4 of 20 samples of the first prompt without it and in none of 20 with top-p 0.95
    // (HumanEval/6: 5 and 7 of 20; `probe-samples20-ids-6-37-*.json`).
    req.sampling.top_p = None;
    req.sampling.seed = Some(seed ^ n);
}

/// The lines of `files` that `output` points at, as `path line N: text`: Python's
/// `File "path", line N` and the `path:N` of most other tools, for the files the prompt shows
/// (by their shown path, or that path after `./`). At most five, in the order they appear.
fn pointed_at(output: &str, files: &[FileText]) -> Vec<String> {
    let mut at = all_pointed_at(output, files);
    at.truncate(5);
    at
}

/// Every line of `files` that `output` points at, as [`pointed_at`] names them.
fn all_pointed_at(output: &str, files: &[FileText]) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for f in files {
        let names = [f.path.clone(), format!("./{}", f.path)];
        for name in &names {
            for (at, _) in output.match_indices(name.as_str()) {
                // The name must stand alone: not the tail of a longer word or relative path.
                // The tail of an absolute path is the file run from a copy of the folder (test
                // scripts that copy the code to a temporary folder first).
                let head = &output[..at];
                let before = head.chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                if before == Some('/') {
                    let token = head
                        .rfind(|c: char| !(c.is_alphanumeric() || "_-./".contains(c)))
                        .map_or(head, |i| &head[i + 1..]);
                    if !token.starts_with('/') {
                        continue;
                    }
                }
                let rest = &output[at + name.len()..];
                let digits = rest
                    .strip_prefix("\", line ")
                    .or_else(|| rest.strip_prefix(':'))
                    .map(|r| {
                        r.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                let Ok(n) = digits.parse::<usize>() else {
                    continue;
                };
                if let Some(text) = n.checked_sub(1).and_then(|i| f.content.lines().nth(i)) {
                    let item = format!("{} line {n}: {}", f.path, text.trim());
                    if !found.iter().any(|(_, s)| *s == item) {
                        found.push((at, item));
                    }
                }
            }
        }
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, s)| s).collect()
}

/// The test files among `files` that a failed assertion in `output` is raised in, when the
/// output points at no other file (no line of the program is in its tracebacks); else none.
fn assertion_in_tests_alone(output: &str, files: &[FileText]) -> Vec<String> {
    if !failed_assertion(output) {
        return vec![];
    }
    let mut paths: Vec<String> = Vec::new();
    for at in all_pointed_at(output, files) {
        let Some(path) = at.split(" line ").next() else {
            continue;
        };
        if !is_test_path(path) {
            return vec![];
        }
        if !paths.iter().any(|p| p == path) {
            paths.push(path.to_string());
        }
    }
    paths
}

/// One failing check: a line of a test file a failed assertion's traceback points at, and its
/// literals sorted by whether the specification gives them ([`failing_checks`]).
#[derive(Debug)]
struct Check {
    path: String,
    line: usize,
    /// Literals the specification gives: a number (not 0 or 1) some number of it equals, or a
    /// string of three or more characters it holds.
    given: Vec<String>,
    /// Literals it does not give.
    made_up: Vec<String>,
}

/// The checks `output` reports failing: a failed assertion, and every line of `files` its
/// tracebacks point at in a test file. None when a traceback points at a program file (the
/// code raised it) or there is no failed assertion. 0 and 1 (exit codes, counts), short or
/// blank strings, and strings interpolating other values (`f"{x}"`, `"$out"`) are neither given
/// nor made up.
fn failing_checks(output: &str, files: &[FileText], spec: &str) -> Option<Vec<Check>> {
    if !failed_assertion(output) {
        return None;
    }
    let numbers = numbers_in(spec);
    let given = |lit: &Literal| spec_gives(spec, &numbers, lit);
    let mut checks = Vec::new();
    for at in all_pointed_at(output, files) {
        let Some((path, text)) = at.split_once(" line ") else {
            continue;
        };
        if !is_test_path(path) {
            return None;
        }
        let Some((n, source)) = text.split_once(": ") else {
            continue;
        };
        let (mut given_here, mut made_up) = (Vec::new(), Vec::new());
        for l in literals(source) {
            match given(&l) {
                Some(true) => given_here.push(l.to_string()),
                Some(false) => made_up.push(l.to_string()),
                None => {}
            }
        }
        checks.push(Check {
            path: path.to_string(),
            line: n.parse().unwrap_or(0),
            given: given_here,
            made_up,
        });
    }
    Some(checks)
}

/// Whether the specification `spec` (whose numbers are `numbers`) gives `lit`: Some(true) when
/// it does (a number, not 0 or 1, some number of it equals; a string of three or more
/// characters it holds whole), Some(false) when it does not, None when the literal is neither
/// (0 and 1, which exit codes and counts use; short or blank strings; strings interpolating
/// other values, `f"{x}"`, `"$out"`).
fn spec_gives(spec: &str, numbers: &[f64], lit: &Literal) -> Option<bool> {
    match lit {
        Literal::Number(n) => {
            let x = n.parse::<f64>().ok()?;
            if x == 0.0 || x == 1.0 {
                None
            } else {
                Some(numbers.iter().any(|y| (x - y).abs() < 1e-9))
            }
        }
        Literal::Text(t) => {
            let t = without_blank_ends(t);
            if t.is_empty() || t.contains(['{', '$']) {
                None
            } else if holds_whole(spec, t) {
                (t.chars().count() >= 3).then_some(true)
            } else {
                Some(false)
            }
        }
    }
}

/// `values` in their order, each once.
fn distinct(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Whether the functionality to implement now gives values of its own, in its text or its
/// acceptance tests: a number other than 0 and 1, or a quoted string of three characters or
/// more ([`spec_gives`] of the text itself). Checks whose values the spec does not give are
/// judged the test's only then: the examples it gives are what the tests that stay check.
fn gives_examples(cx: &Context) -> bool {
    std::iter::once(&cx.current)
        .chain(&cx.acceptance_tests)
        .any(|t| {
            let numbers = numbers_in(t);
            literals(t)
                .iter()
                .any(|l| spec_gives(t, &numbers, l) == Some(true))
        })
}

/// `text`, a string literal as written, without the white space at its ends, written out or as
/// an escape (`\n`, `\r`, `\t`): a test's `"wc-lite: cannot open missing.txt\n"` is the spec's
/// "wc-lite: cannot open missing.txt" printed with its newline (word-count at 55a734c lost the
/// check as a made-up value).
fn without_blank_ends(text: &str) -> &str {
    let mut t = text.trim();
    loop {
        let before = t.len();
        for escape in ["\\n", "\\r", "\\t"] {
            t = t.strip_prefix(escape).unwrap_or(t);
            t = t.strip_suffix(escape).unwrap_or(t);
        }
        t = t.trim();
        if t.len() == before {
            return t;
        }
    }
}

/// Errors a program raises because of the values it is given, not because it cannot run:
/// what it does with those values is what the specification decides.
const VALUE_ERRORS: [&str; 5] = [
    "ZeroDivisionError",
    "ValueError",
    "IndexError",
    "KeyError",
    "OverflowError",
];

/// A failing check that calls the code with inputs the specification never gives, where the
/// code raised an error of the values ([`VALUE_ERRORS`], or any it raises itself with `raise`):
/// the model made up a case the specification leaves open and decided what the code should do
/// there. HumanEval/21 (`rescale_to_unit`, "a list of at least two elements") lost every
/// attempt at c0c3423 and e9ab361 to tests of `rescale_to_unit([1.0, 1.0])`, where its right
/// code divides by zero (as the canonical solution does). Every traceback of `output` must be
/// such a failure, with no failed assertion, and the test line must pass the called function
/// at least one literal, none of them the spec's: a call with no values (`longest([])`) may be
/// a case the spec words. The first one, with the call's literals as its values and the
/// error as raised.
fn unspecified_input(output: &str, files: &[FileText], spec: &str) -> Option<Invented> {
    if failed_assertion(output) {
        return None;
    }
    let numbers = numbers_in(spec);
    let mut first = None;
    for tb in output.split("Traceback (most recent call last):").skip(1) {
        let at = all_pointed_at(tb, files);
        let (deepest, source) = at.last()?.split_once(": ")?;
        let program = deepest.split(" line ").next()?;
        if is_test_path(program) {
            return None;
        }
        let error = tb.lines().map(str::trim).find(|l| is_exception_line(l))?;
        let name = error.split(':').next().unwrap_or("");
        let name = name.rsplit('.').next().unwrap_or(name);
        if !VALUE_ERRORS.contains(&name) && !source.trim_start().starts_with("raise ") {
            return None;
        }
        let test = at
            .iter()
            .rev()
            .find(|a| a.split(" line ").next().is_some_and(is_test_path))?;
        let (place, line) = test.split_once(": ")?;
        let (path, n) = place.split_once(" line ")?;
        let args = call_arguments(line, &called_function(tb, files)?)?;
        let values = literals(&args);
        if values.is_empty()
            || values
                .iter()
                .any(|v| spec_gives(spec, &numbers, v) == Some(true))
        {
            return None;
        }
        if first.is_none() {
            first = Some(Invented {
                path: path.to_string(),
                line: n.parse().ok()?,
                values: distinct(values.iter().map(ToString::to_string)),
                raised: Some(error.to_string()),
            });
        }
    }
    first
}

/// The function of the program a Python traceback `tb` first enters from a test: the name after
/// `in` of its first frame in a program file among `files`.
fn called_function(tb: &str, files: &[FileText]) -> Option<String> {
    let programs: Vec<&str> = files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !is_test_path(p))
        .collect();
    tb.lines().map(str::trim).find_map(|l| {
        let rest = l.strip_prefix("File \"")?;
        let (file, rest) = rest.split_once('"')?;
        let ours = programs
            .iter()
            .any(|p| file == *p || file.ends_with(&format!("/{p}")));
        let name = rest.rsplit_once(", in ")?.1.trim();
        (ours && !name.starts_with('<')).then(|| name.to_string())
    })
}

/// The text between the brackets of the first call to `name` in `line` (not the tail of a
/// longer name; a method call counts), when they close on it; brackets in quoted strings do
/// not count ([`draft::balanced_end`]).
fn call_arguments(line: &str, name: &str) -> Option<String> {
    let call = format!("{name}(");
    let (at, _) = line.match_indices(&call).find(|(i, _)| {
        !line[..*i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })?;
    let open = at + name.len();
    let end = draft::balanced_end(&line[open..])?;
    Some(line[open + 1..open + end - 1].to_string())
}

/// Whether `text` holds `part` as a whole: somewhere with nothing of a word or a bracket
/// around it (white space, a quote or a mark of punctuation, or the text's start or end). A
/// string of a test that is only a piece of a value the spec gives is the test's own:
/// HumanEval/6's `parse_nested_parens('()()') == [2]` (wrong: the depth is 1) took its `'()()'`
/// from the spec's `'(()()) ((())) () ((())()())'`; counted as the spec's, it made the check
/// an example of the spec, kept the test, and failed a sample whose code was right (c0c3423).
fn holds_whole(text: &str, part: &str) -> bool {
    checked::occurs_between(text, part, |c| {
        c.is_none_or(|c| c.is_whitespace() || "'\"`,.;:!?".contains(c))
    })
}

/// The test file to write anew, and the values it made up, when every failing check
/// ([`failing_checks`]) compares with a value that `spec` does not give. None when a failing
/// check uses only the specification's own values: then the code is to blame.
fn invented_values(output: &str, files: &[FileText], spec: &str) -> Option<Invented> {
    let checks = failing_checks(output, files, spec)?;
    if checks.is_empty() || checks.iter().any(|c| c.made_up.is_empty()) {
        return None;
    }
    Some(Invented {
        path: checks[0].path.clone(),
        line: checks[0].line,
        values: distinct(checks.iter().flat_map(|c| c.made_up.iter().cloned())),
        raised: None,
    })
}

/// Whether every failing check ([`failing_checks`]) compares with values the specification
/// gives, and with none it does not: an example of the spec, so the test is right and the code
/// is not. A check must hold two such values at least (what goes in and what should come out):
/// one that holds only the expected value leaves its inputs to lines before it, which may not
/// be the spec's (shopping-cart at ed8c3ad: `total()` against the spec's 150 after adding 3 of
/// an item where the spec adds 1, kept as an example, and the right code was "fixed").
fn spec_valued(output: &str, files: &[FileText], spec: &str) -> bool {
    failing_checks(output, files, spec).is_some_and(|checks| {
        !checks.is_empty()
            && checks
                .iter()
                .all(|c| c.made_up.is_empty() && c.given.len() >= 2)
    })
}

/// A failing check with values the specification does not give ([`invented_values`]).
#[derive(Debug, PartialEq)]
struct Invented {
    /// The test file, as prompts name it.
    path: String,
    /// The first failing check's line (1-based).
    line: usize,
    /// Every made-up value of the failing checks.
    values: Vec<String>,
    /// The error the code raised on them ([`unspecified_input`]); None when the check compared
    /// the code's answer with a made-up one.
    raised: Option<String>,
}

/// `content` without its line `n` (1-based), when that line is one whole statement (its
/// brackets balance) beside a sibling statement (a whole line at the same indentation just
/// before or after it): the block it stands in keeps a statement, so the file still parses.
fn without_line(content: &str, n: usize) -> Option<String> {
    let lines: Vec<&str> = content.lines().collect();
    let i = n.checked_sub(1)?;
    let line = *lines.get(i)?;
    if line.trim().is_empty() || !balanced(line) {
        return None;
    }
    let indent = |l: &str| l.len() - l.trim_start().len();
    let sibling = |l: Option<&&str>| l.is_some_and(|l| indent(l) == indent(line) && balanced(l));
    let before = lines[..i].iter().rev().find(|l| !l.trim().is_empty());
    let after = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
    if !sibling(before) && !sibling(after) {
        return None;
    }
    let mut kept = lines;
    kept.remove(i);
    let mut out = kept.join("\n");
    if content.ends_with('\n') {
        out.push('\n');
    }
    Some(out)
}

/// Whether the brackets of `line` outside its quoted strings balance, and it has no string
/// left open.
fn balanced(line: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == '\\' {
                    chars.next();
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            },
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0 && quote.is_none()
}

/// A literal of a line of code.
#[derive(Debug, PartialEq)]
enum Literal {
    Number(String),
    Text(String),
}

impl std::fmt::Display for Literal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Literal::Number(n) => f.write_str(n),
            Literal::Text(t) => write!(f, "{t:?}"),
        }
    }
}

/// The number and string literals of one line of code, in order: numbers that are not part of
/// a name (`test_2`), and the contents of single- or double-quoted strings (numbers inside a
/// string belong to it). An unterminated string ends the scan.
fn literals(line: &str) -> Vec<Literal> {
    scan(line, true)
}

/// Every number written in `text` (digits with an optional decimal part, not part of a name),
/// wherever it stands: in prose, in quotes, in code.
fn numbers_in(text: &str) -> Vec<f64> {
    scan(text, false)
        .into_iter()
        .filter_map(|l| match l {
            Literal::Number(n) => n.parse().ok(),
            Literal::Text(_) => None,
        })
        .collect()
}

/// The literals of `text`: numbers not part of a name, and, when `strings`, quoted strings (a
/// quote is then no ordinary character: the numbers inside belong to the string, and an
/// unterminated string ends the scan).
fn scan(text: &str, strings: bool) -> Vec<Literal> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if strings && (c == '\'' || c == '"') {
            let mut j = i + 1;
            let mut quoted = String::new();
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' && j + 1 < chars.len() {
                    quoted.push(chars[j]);
                    j += 1;
                }
                quoted.push(chars[j]);
                j += 1;
            }
            if j >= chars.len() {
                break;
            }
            out.push(Literal::Text(quoted));
            i = j + 1;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let token: String = chars[i..j].iter().collect();
            out.push(Literal::Number(token.trim_end_matches('.').to_string()));
            i = j;
        } else if c.is_alphanumeric() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Whether a path as prompts show it is a test: a conformance test, or a file whose name says
/// it is one.
fn is_test_path(path: &str) -> bool {
    path.starts_with(TESTS) || path.rsplit('/').next().is_some_and(|n| n.contains("test"))
}

/// Whether test output reports a failed assertion (`AssertionError`, `AssertionFailedError`),
/// not an error. Not a bare `assert`, which a traceback's source lines show as often as not.
fn failed_assertion(output: &str) -> bool {
    output.to_ascii_lowercase().contains("assertion")
}

/// Whether a file name is documentation: a README, or Markdown or reStructuredText.
fn is_doc_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("readme") || name.ends_with(".md") || name.ends_with(".rst")
}

/// Whether a path of the code folder is part of the program: not a test, and not documentation
/// (a README, a text file).
fn is_program_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !is_doc_name(name) && !name.to_ascii_lowercase().ends_with(".txt") && !is_test_path(path)
}

/// The program's files among `files` (as prompts name them).
fn program_paths(files: &[FileText]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| is_program_path(p))
        .collect()
}

/// Two numbers on one line of `output` that differ, but only by floating-point rounding
/// (`0.09999999999999964 != 0.1`): the mark of a test comparing computed floats for equality.
fn rounding(output: &str) -> Option<(String, String)> {
    for line in output.lines() {
        let numbers = decimals(line);
        for (i, (ta, a)) in numbers.iter().enumerate() {
            for (tb, b) in &numbers[i + 1..] {
                let scale = a.abs().max(b.abs());
                if a != b && scale > 0.0 && (a - b).abs() <= scale * 1e-9 {
                    return Some((ta.clone(), tb.clone()));
                }
            }
        }
    }
    None
}

/// The decimal numbers (with a fraction or an exponent) of `line`, as written and as values.
fn decimals(line: &str) -> Vec<(String, f64)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'));
        if !starts {
            i += 1;
            continue;
        }
        let from = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let mut decimal = false;
        if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
            decimal = true;
            j += 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
        }
        if j < b.len() && (b[j] == b'e' || b[j] == b'E') {
            let mut k = j + 1;
            if k < b.len() && (b[k] == b'-' || b[k] == b'+') {
                k += 1;
            }
            if k < b.len() && b[k].is_ascii_digit() {
                decimal = true;
                j = k;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
        }
        if decimal {
            let text = &line[from..j];
            if let Ok(v) = text.parse::<f64>() {
                out.push((text.to_string(), v));
            }
        }
        i = j.max(i + 1);
    }
    out
}

/// What one functionality's render has tried: the requests it sent (never sent twice as they
/// are), and what its fixes did, for the prompts of later fixes.
#[derive(Default)]
struct Tries {
    seen: HashSet<String>,
    memory: prompts::Memory,
    /// The last failure's output, digits masked, and whether the fix after it changed nothing.
    last_failure: Option<String>,
    last_fix_changed_nothing: bool,
    /// Sample the next request (seeded) even if it was never sent.
    sample_next: bool,
    /// Fix calls this attempt may make after a failed run, per phase.
    fix_budget: u32,
    fixes: u32,
    /// Test files rewritten on the model's own verdict that the code is right.
    rewrites: u32,
    /// The test file the last fix rewrote.
    rewritten: Option<String>,
    /// Two numbers of the last failure that differ only by floating-point rounding.
    rounding: Option<(String, String)>,
    /// The test files written anew because a failure was raised in them alone.
    rewritten_alone: HashSet<String>,
    /// The specification names a documentation file: replies may write documentation.
    docs: bool,
    /// Made-up checks dropped in this attempt.
    dropped: u32,
    /// Model calls this functionality made, every attempt and cache hits included.
    calls: u32,
    /// The most it may make (`Options::call_budget`).
    call_budget: u32,
}

impl Tries {
    /// A fresh restart: the memory of fixes goes; the requests sent stay.
    fn restart(&mut self) {
        self.memory = prompts::Memory::default();
        self.last_failure = None;
        self.last_fix_changed_nothing = false;
        self.sample_next = false;
        self.fixes = 0;
        self.rewrites = 0;
        self.rewritten = None;
        self.rounding = None;
        self.rewritten_alone.clear();
        self.dropped = 0;
    }

    /// Model calls this functionality may still make.
    fn calls_left(&self) -> u32 {
        self.call_budget.saturating_sub(self.calls)
    }

    /// Whether a phase that made `fixes` fix calls in this attempt may make another: its fix
    /// budget allows it and a call is left.
    fn may_fix(&self, fixes: u32) -> bool {
        fixes < self.fix_budget && self.calls_left() > 0
    }

    /// Makes `req` one not sent before: an exact repeat is sampled instead, seeded from the
    /// request itself, so the same render asks the same questions again.
    fn vary(&mut self, req: &mut Request) {
        if std::mem::take(&mut self.sample_next) {
            sample(req, 0);
        }
        for n in 1u64..16 {
            let key = blake3::hash(rekindle_llm::cache::canonical_json(&*req).as_bytes());
            if self.seen.insert(key.to_hex().to_string()) {
                return;
            }
            sample(req, n);
        }
    }

    /// A test run failed with `output` (as the prompt shows it): sets the hint of the next fix
    /// and the lines of `files` the output points at. After a fix that changed nothing, the next
    /// fix is sampled: asked greedily again, the model would answer the same.
    fn failed(&mut self, kind: &str, output: &str, files: &[FileText]) {
        self.memory.at = pointed_at(output, files);
        self.sample_next = self.last_fix_changed_nothing;
        let shape = output
            .lines()
            .map(rekindle_llm::runaway::shape)
            .collect::<Vec<_>>()
            .join("\n");
        let same = self.last_failure.as_deref() == Some(shape.as_str());
        self.memory.hint = match (same, self.last_fix_changed_nothing) {
            (_, true) => Some(format!(
                "The last fix changed nothing, and the {kind} tests fail as before. Do something else this time: if the code does what the specification says, the failing test is wrong and is what to change."
            )),
            (true, false) => Some(format!(
                "The {kind} tests fail exactly as before the last fix: that fix did not address the failure. Look at the failing assertion again and change what it shows to be wrong."
            )),
            (false, false) => None,
        };
        self.rounding = rounding(output);
        if let Some((a, b)) = &self.rounding {
            let advice = format!(
                "`{a}` and `{b}` in the output differ only by floating-point rounding: a test must compare such numbers within a tolerance (as Python's assertAlmostEqual does), never for equality."
            );
            self.memory.hint = Some(match self.memory.hint.take() {
                Some(h) => format!("{advice}\n\n{h}"),
                None => advice,
            });
        }
        self.last_failure = Some(shape);
    }

    /// The program file to write anew instead of asking for a fix, and the line the failure is
    /// raised at: after a fix that changed nothing, when `output` is an error (no failed
    /// assertion) raised in the code: the innermost line it points at (the last, as tracebacks
    /// list them) is a line of the program. The model kept the code, but an error raised in the
    /// code says the code is wrong, not the test.
    fn wrong_code(&mut self, output: &str) -> Option<(String, String)> {
        if !self.last_fix_changed_nothing || failed_assertion(output) {
            return None;
        }
        let raised = self.memory.at.last()?;
        let path = raised.split(" line ").next()?;
        if !is_program_path(path) {
            return None;
        }
        self.rewrites += 1;
        Some((path.to_string(), raised.clone()))
    }

    /// The test file to rewrite instead of asking for a fix: after a fix that changed nothing
    /// (the model kept the code, so by its own judgement the code is right), the first file the
    /// failure points at whose name says it is a test.
    /// The first rewrite is asked greedily; a later one (the rewrite before it changed nothing)
    /// is sampled.
    fn wrong_test(&mut self) -> Option<String> {
        if !self.last_fix_changed_nothing {
            return None;
        }
        let path = self.memory.at.iter().find_map(|a| {
            let path = a.split(" line ").next()?;
            is_test_path(path).then(|| path.to_string())
        })?;
        if self.rewrites == 0 {
            self.sample_next = false;
        }
        Some(self.rewriting(path))
    }

    /// The test file to write anew when the failure points at test files only (no line of the
    /// code is in its traceback): the first of them, once per file and attempt.
    fn failing_test_alone(&mut self) -> Option<String> {
        if self.memory.at.is_empty() {
            return None;
        }
        let paths: Vec<&str> = self
            .memory
            .at
            .iter()
            .filter_map(|a| a.split(" line ").next())
            .collect();
        if !paths.iter().all(|p| is_test_path(p)) {
            return None;
        }
        // Once per file and attempt: a unit test rewritten earlier does not keep a conformance
        // test from being rewritten.
        let path = paths[0].to_string();
        if !self.rewritten_alone.insert(path.clone()) {
            return None;
        }
        Some(self.rewriting(path))
    }

    /// Notes that the test file `path` is asked for anew, and gives it back.
    fn rewriting(&mut self, path: String) -> String {
        self.rewrites += 1;
        self.rewritten = Some(path.clone());
        path
    }

    /// A unit test file rewritten on the model's verdict that still fails where it failed:
    /// the model cannot write it (for [`Renderer::unit_tests`], which removes it).
    fn unwritable_test(&mut self) -> Option<String> {
        let path = self.rewritten.take()?;
        let still = self
            .memory
            .at
            .iter()
            .any(|a| a.split(" line ").next() == Some(path.as_str()));
        still.then_some(path)
    }

    /// Notes what a fix reply did, before it is applied.
    fn fixed(&mut self, what: &str, reply: &Reply, scope: &Scope<'_>) {
        self.fixes += 1;
        // Files it changed that existed, and files it added.
        let (mut changed, mut added) = (Vec::new(), Vec::new());
        let mut look = |root: &Path, prefix: &str, cs: &[Change]| {
            for c in cs {
                if changes(root, c) {
                    let name = format!("{prefix}{}", c.path());
                    if root.join(c.path()).exists() {
                        changed.push(name);
                    } else {
                        added.push(name);
                    }
                }
            }
        };
        look(scope.code, CODE, &reply.changes.code);
        if let Some(t) = scope.tests {
            look(t, TESTS, &reply.changes.tests);
        }
        // A fix that leaves every file it was shown as it was (at most adding new ones nothing
        // uses yet) kept the code: by the model's own judgement, the code is right.
        self.last_fix_changed_nothing = changed.is_empty();
        let n = self.fixes;
        self.memory
            .tried
            .push(match (changed.is_empty(), added.is_empty()) {
                (true, true) => {
                    format!(
                        "Fix {n} (failing {what}) changed nothing: it gave the files as they were."
                    )
                }
                (true, false) => format!(
                    "Fix {n} (failing {what}) changed none of the files; it only added {}.",
                    added.join(", ")
                ),
                _ => format!("Fix {n} (failing {what}) changed {}.", changed.join(", ")),
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_names_the_deepest_line_and_its_exception() {
        let test = FileText {
            path: "conformance_tests/test_solution.py".into(),
            content: "import unittest\nfrom solution import sort_third\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(sort_third([5, 3]), [3, 5])\n    def test_b(self):\n        self.assertEqual(sort_third([]), [])\n".into(),
        };
        let code = FileText {
            path: "solution.py".into(),
            content: "def sort_third(l):\n    return l[0] + missing\n".into(),
        };
        let files = [code, test];
        // Two failures, as unittest prints them: the first one is named.
        let out = "FF\n======================================================================\nFAIL: test_a (test_solution.T.test_a)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"/tmp/run-7/conformance_tests/test_solution.py\", line 6, in test_a\n    self.assertEqual(sort_third([5, 3]), [3, 5])\nAssertionError: Lists differ: [5, 3] != [3, 5]\n\nFirst differing element 0:\n5\n3\n\n======================================================================\nERROR: test_b (test_solution.T.test_b)\nTraceback (most recent call last):\n  File \"/tmp/run-7/conformance_tests/test_solution.py\", line 8, in test_b\n    self.assertEqual(sort_third([]), [])\n  File \"/tmp/run-7/solution.py\", line 2, in sort_third\n    return l[0] + missing\nIndexError: list index out of range\n\nRan 2 tests in 0.001s\n\nFAILED (failures=1, errors=1)\n";
        assert_eq!(
            first_failure(out, &files).as_deref(),
            Some("conformance_tests/test_solution.py line 6: `self.assertEqual(sort_third([5, 3]), [3, 5])` raised AssertionError: Lists differ: [5, 3] != [3, 5]")
        );
        // An error raised in the code: the code's line, the deepest of the traceback.
        let second = &out[out.find("ERROR: test_b").unwrap()..];
        assert_eq!(
            first_failure(second, &files).as_deref(),
            Some("solution.py line 2: `return l[0] + missing` raised IndexError: list index out of range")
        );
        // No traceback, or one that points at no file shown: nothing to name.
        assert_eq!(first_failure("FAILED (failures=1)\n", &files), None);
        assert_eq!(
            first_failure("Traceback (most recent call last):\n  File \"/usr/lib/python3/x.py\", line 1\nValueError: x\n", &files),
            None
        );
        for (line, is) in [
            ("AssertionError", true),
            ("AssertionError: 3 != 4", true),
            ("json.decoder.JSONDecodeError: Expecting value", true),
            ("SystemExit: 2", true),
            ("KeyboardInterrupt", false),
            ("Error in the third line: x", false),
            ("FAILED (failures=1)", false),
            ("self.assertEqual(a, b)", false),
        ] {
            assert_eq!(is_exception_line(line), is, "{line}");
        }
    }

    #[test]
    fn floats_that_differ_by_rounding_are_told_apart_from_other_numbers() {
        // As Python's unittest prints a float compared for equality.
        let out = "FAIL: test_t (test_solution.T.test_t)\nTraceback (most recent call last):\n  File \"test_solution.py\", line 6, in test_t\n    self.assertEqual(truncate_number(1.1), 0.1)\nAssertionError: 0.10000000000000009 != 0.1\n\nRan 1 test in 0.001s";
        assert_eq!(
            rounding(out),
            Some(("0.10000000000000009".into(), "0.1".into()))
        );
        assert_eq!(
            rounding("AssertionError: -2.0000000000000004 != -2.0"),
            Some(("-2.0000000000000004".into(), "-2.0".into()))
        );
        assert_eq!(
            rounding("expected 1e-3 got 0.0010000000000000002")
                .unwrap()
                .0,
            "1e-3"
        );
        // Different values, equal values written alike, integers, timings, versions: no.
        for line in [
            "AssertionError: 0.5 != 0.25",
            "AssertionError: 1.0 != 1.0",
            "AssertionError: 3 != 4",
            "Ran 3 tests in 0.002s (0.0020001s)",
            "python3.11/unittest/case.py and python3.11.0",
        ] {
            assert_eq!(rounding(line), None, "{line}");
        }
    }

    #[test]
    fn a_repeated_request_is_sampled_with_a_seed_of_its_own() {
        let mut tries = Tries::default();
        let req = Request::new("m", vec![Message::user("fix it")]);
        let mut a = req.clone();
        tries.vary(&mut a);
        assert_eq!(a, req, "a first request goes out as it is");
        let mut b = req.clone();
        tries.vary(&mut b);
        assert!(b.sampling.temperature > 0.0);
        let mut c = req.clone();
        tries.vary(&mut c);
        assert!(c.sampling.seed.is_some() && c.sampling.seed != b.sampling.seed);
        // The same history gives the same seeds: a render asks the same questions again.
        let mut again = Tries::default();
        let (mut a2, mut b2) = (req.clone(), req.clone());
        again.vary(&mut a2);
        again.vary(&mut b2);
        assert_eq!(b2, b);
    }

    #[test]
    fn failures_point_at_the_lines_of_the_shown_files() {
        let files = vec![
            FileText {
                path: "test_app.py".into(),
                content: "import unittest\nclass T:\n    def test(self):\n        self.assertEqual(f(), 2)\n".into(),
            },
            FileText {
                path: "conformance_tests/test_cli.py".into(),
                content: "a\nb\nassert run() == 'x'\n".into(),
            },
        ];
        let out = "Traceback (most recent call last):\n  File \"./test_app.py\", line 4, in test\n    self.assertEqual(f(), 2)\nAssertionError: 1 != 2\n  File \"/usr/lib/python3/unittest/case.py\", line 9\nconformance_tests/test_cli.py:3: AssertionError\nother_test_app.py:1: x\nlib/test_app.py:2: y\n";
        assert_eq!(
            pointed_at(out, &files),
            [
                "test_app.py line 4: self.assertEqual(f(), 2)",
                "conformance_tests/test_cli.py line 3: assert run() == 'x'"
            ]
        );
        // A test script that runs a copy of the code folder: its absolute paths end in the
        // shown path.
        let copied = "  File \"/tmp/python_code/test_app.py\", line 2, in <module>\nNameError: name 'time' is not defined\n";
        assert_eq!(pointed_at(copied, &files), ["test_app.py line 2: class T:"]);
        assert!(pointed_at("no lines here", &files).is_empty());
    }

    #[test]
    fn a_failing_check_with_values_the_spec_never_gives_blames_the_test() {
        let spec = "- :Solution: should define `mean_absolute_deviation`, written in Python 3.\n\n```python\n>>> mean_absolute_deviation([1.0, 2.0, 3.0, 4.0])\n1.0\n```\n";
        let files = vec![
            FileText {
                path: "solution.py".into(),
                content: "def mean_absolute_deviation(numbers):\n    return sum(numbers) / 0\n"
                    .into(),
            },
            FileText {
                path: "conformance_tests/test_solution.py".into(),
                content: "import unittest\nclass T(unittest.TestCase):\n    def test_mad(self):\n        self.assertEqual(mean_absolute_deviation([1.0, 2.0, 3.0, 4.0, 5.0]), 1.5)\n        self.assertEqual(mean_absolute_deviation([1.0, 2.0, 3.0, 4.0]), 1.0)\n        self.assertEqual(mean_absolute_deviation([3, 4]), 0.5, 'rounding')\n".into(),
            },
        ];
        let failing = |line: usize, error: &str| {
            format!("F\n======\nFAIL: test_mad (test_solution.T.test_mad)\nTraceback (most recent call last):\n  File \"/tmp/run-0.0123/conformance_tests/test_solution.py\", line {line}, in test_mad\n    ...\n{error}\n\nRan 1 test in 0.001s\n")
        };
        // 5.0 and 1.5 are the model's own; 1.0 to 4.0 (and 3, from "Python 3") are the spec's.
        assert_eq!(
            invented_values(&failing(4, "AssertionError: 1.2 != 1.5"), &files, spec),
            Some(Invented {
                path: "conformance_tests/test_solution.py".to_string(),
                line: 4,
                values: vec!["5.0".to_string(), "1.5".to_string()],
                raised: None,
            })
        );
        // A string the spec does not hold is made up too; 0.5 is not, as a number, 0.50.
        assert_eq!(
            invented_values(
                &failing(6, "AssertionError: 0.25 != 0.5"),
                &files,
                &format!("{spec} 0.50")
            ),
            Some(Invented {
                path: "conformance_tests/test_solution.py".to_string(),
                line: 6,
                values: vec!["\"rounding\"".to_string()],
                raised: None,
            })
        );
        // A failing check with the spec's own values puts the failure on the code.
        assert_eq!(
            invented_values(&failing(5, "AssertionError: 1.2 != 1.0"), &files, spec),
            None
        );
        assert!(spec_valued(
            &failing(5, "AssertionError: 1.2 != 1.0"),
            &files,
            spec
        ));
        // A check with a made-up value, or with none the spec gives (0 and 1, a short string
        // the spec happens to hold), is no example of the spec.
        assert!(!spec_valued(
            &failing(4, "AssertionError: 1.2 != 1.5"),
            &files,
            spec
        ));
        let bare = vec![
            files[0].clone(),
            FileText {
                path: "test_solution.py".into(),
                content: "import unittest\nclass T(unittest.TestCase):\n    def test_mad(self):\n        self.assertEqual(mean_absolute_deviation([1, 0]), 1)\n        self.assertEqual(mean_absolute_deviation(['on']), 0)\n".into(),
            },
        ];
        let bare_failing = |line: usize| {
            format!("FAIL: test_mad (test_solution.T.test_mad)\nTraceback (most recent call last):\n  File \"test_solution.py\", line {line}, in test_mad\n    ...\nAssertionError: 2 != 1\n")
        };
        assert!(!spec_valued(&bare_failing(4), &bare, spec));
        assert!(!spec_valued(&bare_failing(5), &bare, spec));
        // One given value alone (the expected one) is no example either: the inputs stand on
        // other lines, and they may not be the spec's.
        let cart_spec =
            "After `add(\"apple\", 50)` and `add(\"apple\", 60, 2)`, `total()` returns 150.";
        let cart = vec![FileText {
            path: "test_cart.py".into(),
            content: "import unittest\nclass T(unittest.TestCase):\n    def test_add(self):\n        cart.add(\"apple\", 50, 3)\n        cart.add(\"apple\", 60, 2)\n        self.assertEqual(cart.total(), 150)\n        self.assertEqual(cart.total(\"apple\"), 150)\n".into(),
        }];
        let cart_failing = |line: usize| {
            format!("FAIL: test_add (test_cart.T.test_add)\nTraceback (most recent call last):\n  File \"test_cart.py\", line {line}, in test_add\n    ...\nAssertionError: 250 != 150\n")
        };
        assert!(!spec_valued(&cart_failing(6), &cart, cart_spec));
        assert!(spec_valued(&cart_failing(7), &cart, cart_spec));
        // A string that is only a piece of one the spec gives is the test's own.
        let parens_spec = ">>> parse_nested_parens('(()()) ((())) () ((())()())')\n[2, 3, 1, 3]\n";
        let parens = vec![FileText {
            path: "test_solution.py".into(),
            content: "import unittest\nclass T(unittest.TestCase):\n    def test_p(self):\n        self.assertEqual(parse_nested_parens('(()()) ((())) () ((())()())'), [2, 3, 1, 3])\n        self.assertEqual(parse_nested_parens('()()'), [2])\n".into(),
        }];
        let parens_failing = |line: usize| {
            format!("FAIL: test_p (test_solution.T.test_p)\nTraceback (most recent call last):\n  File \"test_solution.py\", line {line}, in test_p\n    ...\nAssertionError: Lists differ: [1] != [2]\n")
        };
        assert!(!spec_valued(&parens_failing(5), &parens, parens_spec));
        assert_eq!(
            invented_values(&parens_failing(5), &parens, parens_spec).map(|i| i.values),
            Some(vec!["\"()()\"".to_string()])
        );
        assert!(spec_valued(&parens_failing(4), &parens, parens_spec));
        assert_eq!(invented_values(&bare_failing(4), &bare, spec), None);
        // So does an error raised in the code, and any error that is no failed assertion.
        let through_code = format!(
            "{}  File \"solution.py\", line 2, in mean_absolute_deviation\nZeroDivisionError: division by zero (AssertionError)\n",
            failing(4, "")
        );
        assert_eq!(invented_values(&through_code, &files, spec), None);
        assert!(!spec_valued(&through_code, &files, spec));
        assert_eq!(
            invented_values(
                &failing(4, "NameError: name 'x' is not defined"),
                &files,
                spec
            ),
            None
        );
        // The check goes when a sibling statement stays in its block.
        let test = &files[1].content;
        let without = without_line(test, 4).unwrap();
        assert!(!without.contains("5.0"), "{without}");
        assert_eq!(without.lines().count(), test.lines().count() - 1);
        assert_eq!(
            without_line("def t():\n    assert f(2) == 5\nrun()\n", 2),
            None
        );
        assert_eq!(
            without_line("    assert f(2,\n        3) == 5\n    g()\n", 1),
            None
        );
        assert_eq!(
            without_line("    g()\n    assert f(')') == 5\n", 2).as_deref(),
            Some("    g()\n")
        );
        // Numbers in names are no literals; numbers in strings belong to the string.
        assert_eq!(
            literals("self.assertEqual(test_2(x, 0.25), 'a 7 b'); f(\"it's\", 10.)"),
            [
                Literal::Number("0.25".into()),
                Literal::Text("a 7 b".into()),
                Literal::Text("it's".into()),
                Literal::Number("10".into()),
            ]
        );
    }

    #[test]
    fn a_string_printed_with_its_newline_is_the_specs_string() {
        let spec = "Given the argument \"missing.txt\", :App: prints \"wc-lite: cannot open missing.txt\" to standard error.";
        let numbers: Vec<f64> = vec![];
        let judge = |t: &str| spec_gives(spec, &numbers, &Literal::Text(t.to_string()));
        assert_eq!(judge("wc-lite: cannot open missing.txt\\n"), Some(true));
        assert_eq!(
            judge("\\t wc-lite: cannot open missing.txt \\r\\n"),
            Some(true)
        );
        // What stands inside the string still counts: a newline in its middle is no end.
        assert_eq!(judge("wc-lite:\\ncannot open missing.txt"), Some(false));
        assert_eq!(judge("wc-lite: cannot open other.txt\\n"), Some(false));
        // Only blank ends: neither the spec's nor made up.
        assert_eq!(judge("\\n"), None);
        assert_eq!(without_blank_ends(" \\n\\nx y\\t\\n "), "x y");
    }

    #[test]
    fn a_test_asked_for_alone_under_a_taken_name_is_written_beside_the_other() {
        let write = |path: &str, content: &str| Change::Write {
            path: path.to_string(),
            content: content.to_string(),
        };
        let mut tests = vec![
            write("test_roman.py", "1994"),
            write("test_roman_2.py", "x"),
        ];
        add_alongside(&mut tests, write("test_roman.py", "4"));
        add_alongside(&mut tests, write("sub/test_a.py", "a"));
        add_alongside(&mut tests, write("sub/test_a.py", "b"));
        add_alongside(&mut tests, write("check", "c"));
        add_alongside(&mut tests, write("check", "d"));
        let paths: Vec<(&str, &str)> = tests
            .iter()
            .map(|c| match c {
                Change::Write { path, content } => (path.as_str(), content.as_str()),
                Change::Delete { path } => (path.as_str(), ""),
            })
            .collect();
        assert_eq!(
            paths,
            [
                ("test_roman.py", "1994"),
                ("test_roman_2.py", "x"),
                ("test_roman_3.py", "4"),
                ("sub/test_a.py", "a"),
                ("sub/test_a_2.py", "b"),
                ("check", "c"),
                ("check_2", "d"),
            ]
        );
        // A deletion is no new test: it replaces what it names.
        add_alongside(
            &mut tests,
            Change::Delete {
                path: "check".to_string(),
            },
        );
        assert_eq!(tests.iter().filter(|c| c.path() == "check").count(), 1);
    }

    /// A Python unittest error report: the test file's line `n` (text `line`) calls into
    /// `solution.py`, whose line 4 (`code`) raises `error`.
    fn raised_through(n: usize, line: &str, code: &str, error: &str) -> String {
        format!("E\n======================================================================\nERROR: test_r (test_solution.T.test_r)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"/tmp/run-0.0317/code/test_solution.py\", line {n}, in test_r\n    {line}\n                     ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/tmp/run-0.0317/code/solution.py\", line 4, in rescale_to_unit\n    {code}\n           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/tmp/run-0.0317/code/solution.py\", line 4, in <listcomp>\n    {code}\n            ~~~~~~~~~^~~~~~~~~~~\n{error}\n\n----------------------------------------------------------------------\nRan 1 test in 0.001s\n\nFAILED (errors=1)\n")
    }

    #[test]
    fn an_error_the_code_raises_on_inputs_the_spec_never_gives_blames_the_test() {
        let spec = "Given list of numbers (of at least two elements), apply a linear transform to that list, such that the smallest number will become 0 and the largest will become 1\n>>> rescale_to_unit([1.0, 2.0, 3.0, 4.0, 5.0])\n[0.0, 0.25, 0.5, 0.75, 1.0]\n";
        let lines = [
            "self.assertEqual(rescale_to_unit([1.0, 2.0, 3.0, 4.0, 5.0]), [0.0, 0.25, 0.5, 0.75, 1.0])",
            "self.assertEqual(rescale_to_unit([1.0, 1.0]), [0.5, 0.5])",
            "self.assertEqual(rescale_to_unit([]), [])",
            "self.assertEqual(rescale_to_unit([7.5, 7.5]), [0.0, 0.0])",
        ];
        let files = vec![
            FileText {
                path: "solution.py".into(),
                content: "from typing import List\ndef rescale_to_unit(numbers):\n    lo, hi = min(numbers), max(numbers)\n    return [(n - lo) / (hi - lo) for n in numbers]\n".into(),
            },
            FileText {
                path: "test_solution.py".into(),
                content: format!("import unittest\nclass T(unittest.TestCase):\n    def test_r(self):\n        {}\n", lines.join("\n        ")),
            },
        ];
        let divide = "return [(n - lo) / (hi - lo) for n in numbers]";
        let zero = "ZeroDivisionError: float division by zero";
        // Equal values, which the spec never gives (0 and 1 are no one's values): the case and
        // what the code should do there are the test's own.
        assert_eq!(
            unspecified_input(&raised_through(5, lines[1], divide, zero), &files, spec),
            Some(Invented {
                path: "test_solution.py".to_string(),
                line: 5,
                values: vec!["1.0".to_string()],
                raised: Some(zero.to_string()),
            })
        );
        // The expected values do not count, only what the code was called with: 0.5 is the
        // spec's, 7.5 is not.
        assert_eq!(
            unspecified_input(&raised_through(7, lines[3], divide, zero), &files, spec)
                .map(|i| i.values),
            Some(vec!["7.5".to_string()])
        );
        // The spec's own example raising is the code's fault.
        assert_eq!(
            unspecified_input(&raised_through(4, lines[0], divide, zero), &files, spec),
            None
        );
        // A call with no values may be a case the spec words ("None for an empty list").
        let empty = "ValueError: min() arg is an empty sequence";
        assert_eq!(
            unspecified_input(&raised_through(6, lines[2], divide, empty), &files, spec),
            None
        );
        // An error that is no error of the values is the code's, whatever it was called with;
        // any error the code raises itself is a decision about the values.
        let name = "NameError: name 'lo' is not defined";
        assert_eq!(
            unspecified_input(&raised_through(5, lines[1], divide, name), &files, spec),
            None
        );
        let refuse = "raise TypeError(\"the numbers must differ\")";
        let mut refusing = files.clone();
        refusing[0].content = refusing[0].content.replace(divide, refuse);
        assert_eq!(
            unspecified_input(
                &raised_through(5, lines[1], refuse, "TypeError: the numbers must differ"),
                &refusing,
                spec
            )
            .map(|i| i.raised),
            Some(Some("TypeError: the numbers must differ".to_string()))
        );
        // Every failure must be such a case: one more that is the code's keeps the blame there.
        let both = format!(
            "{}{}",
            raised_through(5, lines[1], divide, zero),
            raised_through(4, lines[0], divide, zero)
        );
        assert_eq!(unspecified_input(&both, &files, spec), None);
        // A failed assertion, or an error raised in the test itself, is judged otherwise.
        let failed = format!(
            "{}AssertionError: 1 != 2\n",
            raised_through(5, lines[1], divide, zero)
        );
        assert_eq!(unspecified_input(&failed, &files, spec), None);
        let in_test = "Traceback (most recent call last):\n  File \"test_solution.py\", line 5, in test_r\n    self.assertEqual(rescale_to_unit([1.0, 1.0]), [0.5, 0.5])\nZeroDivisionError: division by zero\n";
        assert_eq!(unspecified_input(in_test, &files, spec), None);
        // The arguments are those of the call into the code, brackets in strings and all.
        assert_eq!(
            call_arguments("self.assertEqual(f(g('(x')), [1]); f(2)", "f").as_deref(),
            Some("g('(x')")
        );
        assert_eq!(call_arguments("self.assertEqual(pf(2), 3)", "f"), None);
        assert_eq!(call_arguments("f(2", "f"), None);
        assert_eq!(
            called_function(&raised_through(5, lines[1], divide, zero), &files).as_deref(),
            Some("rescale_to_unit")
        );
    }

    fn write(path: &str, content: &str) -> FileBlock {
        FileBlock::Write {
            path: path.into(),
            content: content.into(),
        }
    }

    #[test]
    fn the_program_is_what_is_neither_a_test_nor_documentation() {
        for p in ["app.py", "pkg/__init__.py", "main.sh", "src/lib.rs"] {
            assert!(is_program_path(p), "{p}");
        }
        for p in [
            "README.md",
            "docs/Readme",
            "notes.txt",
            "test_app.py",
            "conformance_tests/test_cli.py",
            "guide.rst",
        ] {
            assert!(!is_program_path(p), "{p}");
        }
    }

    #[test]
    fn a_program_that_only_repeats_the_specs_lines_is_a_copy() {
        let spec = "- :Solution: should define `f`.\n\n  ```python\n  def f(x):\n      \"\"\"Twice x.\"\"\"\n  ```\n";
        let reply = |files: &[(&str, &str)]| Reply {
            changes: Routed {
                code: files
                    .iter()
                    .map(|(path, content)| Change::Write {
                        path: path.to_string(),
                        content: content.to_string(),
                    })
                    .collect(),
                tests: vec![],
            },
            text: String::new(),
            finish: FinishReason::Stop,
        };
        let copy = "def f(x):\n    \"\"\"Twice x.\"\"\"\n\n";
        // Reindented and with blank lines, still a copy; a test file beside it does not count.
        assert_eq!(
            reply(&[
                ("solution.py", copy),
                ("test_solution.py", "import solution\n")
            ])
            .copies_spec_code(spec),
            ["solution.py"]
        );
        // One line of its own, in any program file, and it is not.
        let own = "def f(x):\n    \"\"\"Twice x.\"\"\"\n    return 2 * x\n";
        assert!(reply(&[("solution.py", own)])
            .copies_spec_code(spec)
            .is_empty());
        assert!(reply(&[("solution.py", copy), ("helper.py", "y = 1\n")])
            .copies_spec_code(spec)
            .is_empty());
        // No program file, or an empty one: nothing copied.
        assert!(reply(&[("test_solution.py", copy)])
            .copies_spec_code(spec)
            .is_empty());
        assert!(reply(&[("solution.py", "\n")])
            .copies_spec_code(spec)
            .is_empty());
    }

    #[test]
    fn replies_are_routed_by_their_path_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        let tests = dir.path().join("tests");
        std::fs::create_dir_all(&code).unwrap();
        std::fs::create_dir_all(&tests).unwrap();
        std::fs::write(code.join("app.py"), "print(1)\n").unwrap();
        let scripts = vec!["run_tests.sh".to_string()];
        let both = Scope {
            code: &code,
            may_code: true,
            tests: Some(&tests),
            may_tests: true,
            one_file: false,
        };
        let r = route(
            "",
            &[
                write("app.py", "x\n"),
                write("conformance_tests/test_a.py", "t\n"),
            ],
            &both,
            &scripts,
            false,
        )
        .unwrap();
        assert_eq!(
            (r.code[0].path(), r.tests[0].path()),
            ("app.py", "test_a.py")
        );
        // Without the prefix, a conformance fix writes the code, unless a hosted model's verdict
        // line says the tests.
        let r = route(
            "WRONG: tests\n",
            &[write("a.py", "x\n")],
            &both,
            &scripts,
            false,
        )
        .unwrap();
        assert_eq!((r.code.len(), r.tests.len()), (0, 1));
        // A code-only step drops conformance tests written before their step; `tests/` there is
        // a folder of the code.
        let r = route(
            "",
            &[
                write("conformance_tests/t.py", "x\n"),
                write("tests/u.py", "y\n"),
            ],
            &Scope::code(&code),
            &scripts,
            false,
        )
        .unwrap();
        assert_eq!((r.code.len(), r.code[0].path()), (1, "tests/u.py"));
        // The tests step: unprefixed paths are tests, but a file of the code may only be
        // repeated unchanged (dropped), not changed.
        let tests_only = Scope {
            may_code: false,
            ..both
        };
        let r = route(
            "",
            &[write("app.py", "print(1)\n"), write("test_t.py", "t\n")],
            &tests_only,
            &scripts,
            false,
        )
        .unwrap();
        assert_eq!((r.code.len(), r.tests[0].path()), (0, "test_t.py"));
        let e = route(
            "",
            &[write("app.py", "print(2)\n")],
            &tests_only,
            &scripts,
            false,
        );
        assert!(e.unwrap_err().contains("would change the code"));
        let e = route(
            "",
            &[write("app.py", "print(1)\n")],
            &tests_only,
            &scripts,
            false,
        );
        assert!(e.unwrap_err().contains("only repeats"));
        // A regression fix may not change the earlier tests.
        let regression = Scope {
            may_tests: false,
            ..both
        };
        let e = route(
            "",
            &[write("conformance_tests/t.py", "y\n")],
            &regression,
            &scripts,
            false,
        );
        assert!(e.unwrap_err().contains("earlier functionality"));
        // Documentation is dropped unless the specification names some; a reply of nothing
        // else is not a reply.
        let blocks = [write("README.md", "# App\n"), write("app.py", "print(3)\n")];
        let r = route("", &blocks, &both, &scripts, false).unwrap();
        assert_eq!((r.code.len(), r.code[0].path()), (1, "app.py"));
        let r = route("", &blocks, &both, &scripts, true).unwrap();
        assert_eq!(r.code.len(), 2);
        let e = route("", &blocks[..1], &both, &scripts, false);
        assert!(e.unwrap_err().contains("documentation nobody asked for"));
        // Test scripts, placeholders and escapes are refused.
        for (path, content, want) in [
            ("run_tests.sh", "exit 0\n", "test scripts"),
            ("conformance_tests/run_tests.sh", "exit 0\n", "test scripts"),
            ("app.py", "<the whole file>\n", "placeholder"),
            ("../../x", "x\n", "relative to the code folder"),
        ] {
            let e = route("", &[write(path, content)], &both, &scripts, false).unwrap_err();
            assert!(e.contains(want), "{path}: {e}");
        }
    }
}
