//! One functionality's steps: implement, unit tests with bounded fixes, conformance tests with
//! fixes of the code or of the tests, regression runs of earlier conformance tests, and one fresh
//! restart when fixes run out. Each model reply is checked (file blocks, paths inside the folder)
//! before anything is written.

use crate::blame::{
    assertion_in_tests_alone, failed_assertion, first_failure, gives_examples, invented_values,
    is_doc_name, is_program_path, is_test_path, pointed_at, program_paths, rounding, spec_valued,
    unspecified_input, without_line, Invented,
};
use crate::checked;
use crate::error::{io, RenderError};
use crate::events::{Event, Phase, ScriptKind};
use crate::imports::{missing_import, with_import};
use crate::options::Role;
use crate::prompts::{self, Context};
use crate::run::Renderer;
use crate::stripped::never_holds;
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
    /// A reply that is not file blocks, names a path outside its folders, writes what its
    /// step may not or gives a placeholder for a file is asked for once more, with the reason
    /// ([`Refusal::follow_up`]). A request this functionality's
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
        let mut after_placeholders = false;
        for attempt in 0..2 {
            let response = self
                .call(module, id, role, failures, &mut req, tries)
                .await?;
            let mut text = response.text;
            let finish = &response.finish_reason;
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
                            finish: response.finish_reason,
                            after_placeholders,
                        })
                    }
                    Err(p) => p,
                },
                Err(e) => Refusal::Other(e.to_string()),
            };
            if attempt == 1 {
                return Err(RenderError::Reply {
                    module: module.to_string(),
                    id,
                    detail: problem.to_string(),
                });
            }
            after_placeholders = matches!(problem, Refusal::Placeholders(_));
            req.messages.push(Message::assistant(text));
            req.messages.push(Message::user(problem.follow_up()));
        }
        unreachable!("the loop returns on its second pass")
    }

    /// Sends `req` to `role`'s model as one call of the functionality's budget (made a request
    /// not sent before, [`Tries::vary`]) and reports it.
    async fn call(
        &mut self,
        module: &str,
        id: usize,
        role: Role,
        failures: u32,
        req: &mut Request,
        tries: &mut Tries,
    ) -> Result<rekindle_llm::Response, RenderError> {
        if tries.calls_left() == 0 {
            return Err(RenderError::OutOfCalls {
                module: module.to_string(),
                id,
                calls: tries.calls,
            });
        }
        let m = self.models.get(role, failures);
        tries.calls += 1;
        tries.vary(req);
        let outcome = {
            let mut sink = Sink {
                obs: &mut *self.obs,
            };
            self.session.call(m.provider, req, &mut sink).await?
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
        Ok(outcome.response)
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
        // Whether the last attempt ended on a reply that could not be used.
        let mut unusable = false;
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
            // After a reply that could not be used, the next attempt is sampled at once: told
            // why, greedily, the 0.5B wrote the same placeholder again (HumanEval/0, /2 and /3
            // at cb21203).
            let sampled = restart >= 2 || unusable;
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
                Ok(Some(failure)) => {
                    unusable = false;
                    last = Some(failure)
                }
                // A reply still unusable after its reformat request ends the attempt, not the
                // functionality, and the next attempt is sampled. Asked again in the same
                // conversation, the 0.5B copies the format's placeholder (`<the whole file>`)
                // again (28 of HumanEval's first 40 at e9ab361 ended there, after 2 calls).
                Err(RenderError::Reply { detail, .. }) => {
                    unusable = true;
                    last = Some((
                        format!("its reply could not be used: {detail}"),
                        String::new(),
                    ))
                }
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
    /// test of the code folder), when the check is one line beside another, or the only line
    /// of a test function beside another ([`without_line`]; the function goes with it): the
    /// model worked the expected value out itself, and asked to write the test anew it
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
        let Some((content, function)) = without_line(&file.content, inv.line) else {
            return Ok(None);
        };
        let Some((mut change, scope)) = rewritten(&inv.path, content, &d.code, tests) else {
            return Ok(None);
        };
        // Not when the line is the tests' only check of a value an acceptance test gives: no
        // functionality passes on tests that no longer check it.
        if let Some(tests) = scope.tests {
            if keep_checks(cx, tests, &mut change.tests).is_some() {
                return Ok(None);
            }
        }
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
        let what = match function {
            None => format!(
                "The check `{line}` ({} line {}) was removed",
                inv.path, inv.line
            ),
            Some(name) => format!(
                "The test {name}, whose one check was `{line}` ({} line {}), was removed",
                inv.path, inv.line
            ),
        };
        Ok(Some(format!("{what}: {why}.")))
    }

    /// Mends, without a call, what `output` shows a file of `shown` gets wrong in a way that has
    /// one answer: the import it lacks ([`Renderer::add_import`]), or checks that strip the
    /// program's output and compare it with text ending in a newline, which can never hold
    /// ([`never_holds`]: the `.strip()` goes). What the memory says, when it mends one.
    #[allow(clippy::too_many_arguments)]
    fn mend(
        &mut self,
        module: &str,
        k: usize,
        d: &ModuleLayout,
        tests: Option<&Path>,
        shown: &[FileText],
        output: &str,
        tries: &mut Tries,
    ) -> Result<Option<String>, RenderError> {
        if let Some(note) = self.add_import(module, k, d, tests, shown, output, tries)? {
            return Ok(Some(note));
        }
        let Some(u) = never_holds(output, shown) else {
            return Ok(None);
        };
        let Some((change, scope)) = rewritten(&u.path, u.content, &d.code, tests) else {
            return Ok(None);
        };
        self.apply(module, k, &scope, &change)?;
        let lines: Vec<String> = u.lines.iter().map(usize::to_string).collect();
        Ok(Some(format!(
            "`.strip()` was taken away in {} (line{} {}): a check compared the stripped output with text ending in a newline, which can never hold; tests compare the whole output as printed.",
            u.path,
            if lines.len() == 1 { "" } else { "s" },
            lines.join(", ")
        )))
    }

    /// Adds the import that `output` shows a file of `shown` lacks ([`missing_import`]: a name the
    /// program defines, a standard module, a name of `typing`), without a call, once per file and
    /// name in an attempt. `tests` is the conformance tests' folder, for their files. What the
    /// memory says, when it adds one.
    #[allow(clippy::too_many_arguments)]
    fn add_import(
        &mut self,
        module: &str,
        k: usize,
        d: &ModuleLayout,
        tests: Option<&Path>,
        shown: &[FileText],
        output: &str,
        tries: &mut Tries,
    ) -> Result<Option<String>, RenderError> {
        let Some(m) = missing_import(output, shown) else {
            return Ok(None);
        };
        let Some(file) = shown.iter().find(|f| f.path == m.path) else {
            return Ok(None);
        };
        if !tries.imported.insert((m.path.clone(), m.name.clone())) {
            return Ok(None);
        }
        let content = with_import(&file.content, &m.line);
        let Some((change, scope)) = rewritten(&m.path, content, &d.code, tests) else {
            return Ok(None);
        };
        self.apply(module, k, &scope, &change)?;
        let whose = match &m.defined_in {
            Some(p) => format!(", which {p} defines,"),
            None => String::new(),
        };
        Ok(Some(format!(
            "`{}` was added to {}: it used {}{whose} without importing it.",
            m.line, m.path, m.name
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
        // The reply gave the program back as it was (a small model copies the files it is
        // shown; tests and documentation it changed do not count): one follow-up, in the same
        // conversation, says so.
        if !files.is_empty() && !reply.changes_program(&d.code) {
            msgs.push(Message::assistant(reply.text.clone()));
            msgs.push(Message::user(prompts::unchanged(
                cx,
                &program_paths(&files),
            )));
            let again = self
                .optional(module, k, Role::Code, msgs, scope, tries)
                .await?;
            if let Some(again) = again.filter(|r| r.changes_program(&d.code)) {
                reply = again;
            }
        }
        // A program file that only repeats code the specification shows (a signature and its
        // docstring, no body, as the 0.5B often answers) is asked for as code to complete, in
        // a conversation of its own.
        let spec = cx.text();
        for copy in reply.copies_spec_code(&spec) {
            match self.complete(module, k, &copy, &spec, tries).await? {
                Some(content) => reply.replace(&copy.path, content),
                None => self.obs.event(&Event::Warning {
                    message: format!(
                        "functionality {k}: {} only repeats code the specification shows, and asked to complete it the model gave no code of its own; it stays as it is",
                        copy.path
                    ),
                }),
            }
        }
        // A model that answered the reply format with placeholders, and then wrote the code
        // the specification shows with a few lines of its own (a body of one line, `pass`, a
        // comment), writes better code asked to complete the specification's code alone: on
        // HumanEval's first 40 the 0.5B's 13 such files (9d3ee7d) passed the problems' own
        // tests 5 times as written and 9 times completed so (`complete.j2`, greedy). The
        // completion replaces the file; when it gives no code of its own, the file stays.
        if reply.after_placeholders {
            for sketch in reply.sketches_spec_code(&spec) {
                if let Some(content) = self
                    .complete(module, k, &sketch.shown, &spec, tries)
                    .await?
                {
                    self.obs.event(&Event::Warning {
                        message: format!(
                            "functionality {k}: {} repeated the code the specification shows with {} line{} of its own, written after a reply of placeholders; the specification's code was asked for completed, and the completion replaced it",
                            sketch.shown.path,
                            sketch.own,
                            if sketch.own == 1 { "" } else { "s" },
                        ),
                    });
                    reply.replace(&sketch.shown.path, content);
                }
            }
        }
        self.apply(module, k, &scope, &reply.changes)
    }

    /// `copy`, a program file that only repeats code the specification (`spec`) shows, completed
    /// by the code model in a conversation of its own ([`prompts::complete`]); `None` when the
    /// reply holds no code block or repeats the specification again.
    async fn complete(
        &mut self,
        module: &str,
        k: usize,
        copy: &FileText,
        spec: &str,
        tries: &mut Tries,
    ) -> Result<Option<String>, RenderError> {
        let model = self.models.get(Role::Code, 0).model.clone();
        let mut req = Request::new(model, prompts::complete(copy));
        req.sampling = self.opts.sampling.clone();
        // The file twice over (about three bytes a token) and room for the bodies.
        let cap = (copy.content.len() / 3 * 2 + COMPLETION_MIN_TOKENS as usize) as u32;
        req.sampling.max_tokens = req.sampling.max_tokens.min(cap);
        req.constraint = Some(Constraint::Text);
        req.template_version = prompts::template_version().to_string();
        let response = self.call(module, k, Role::Code, 0, &mut req, tries).await?;
        Ok(crate::completion::completed(&copy.content, &response.text)
            .filter(|c| !only_spec_lines(c, spec)))
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
                // A name used and never imported, or a check that strips the output and can
                // never hold: mended without a call, and the same tests run again.
                if !regression {
                    if let Some(note) =
                        self.mend(module, k, d, Some(&folder), &shown, &output, tries)?
                    {
                        self.remember(k, tries, note);
                        continue;
                    }
                }
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
            // Mends and removals without a call come first and do not count against the fixes.
            let output = self.output_for_prompt(&run.output, d, &d.conformance_tests(k));
            let (files, _) = self.snapshot(&d.code);
            let files = named(CODE, &files);
            if let Some(note) = self.mend(module, k, d, None, &files, &output, tries)? {
                self.phase(module, k, Phase::FixUnitTests, attempt + 1);
                self.remember(k, tries, note);
                continue;
            }
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

/// A shown file (`path` as prompts name it) written with `content` by the render itself, without
/// a call: the change and the scope it applies in, the conformance tests' folder `tests` for
/// their files, the code folder for the others. None for a conformance test with no folder.
fn rewritten<'a>(
    path: &str,
    content: String,
    code: &'a Path,
    tests: Option<&'a Path>,
) -> Option<(Routed, Scope<'a>)> {
    Some(match (path.strip_prefix(TESTS), tests) {
        (Some(_), None) => return None,
        (Some(rest), Some(tests)) => (
            Routed {
                code: vec![],
                tests: vec![Change::Write {
                    path: rest.to_string(),
                    content,
                }],
            },
            Scope::tests(code, tests),
        ),
        (None, _) => (
            Routed {
                code: vec![Change::Write {
                    path: path.to_string(),
                    content,
                }],
                tests: vec![],
            },
            Scope::code(code),
        ),
    })
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

/// Made-up checks dropped from a functionality's tests in one attempt, at most (a test run
/// each, no call; the 1.5B wrote ten for HumanEval/4, one a line, each failing).
const MAX_DROPPED_CHECKS: u32 = 20;

/// Replies to a conformance-tests call stay short: a runaway test file is the commonest way a
/// small model wastes a call.
const TESTS_MAX_TOKENS: u32 = 1024;
/// The least a fix reply may hold, whatever the size of the files it fixes.
const FIX_MIN_TOKENS: u32 = 768;
/// Room a completion has for the bodies, beyond the file it completes.
const COMPLETION_MIN_TOKENS: u32 = 768;

/// Whether every non-blank line of `content`, trimmed, is a line of `spec` (trimmed), and it has
/// one at least: code the specification shows, repeated.
fn only_spec_lines(content: &str, spec: &str) -> bool {
    let given: HashSet<&str> = spec.lines().map(str::trim).collect();
    only_given_lines(content, &given)
}

fn only_given_lines(content: &str, given: &HashSet<&str>) -> bool {
    let mut lines = content.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next();
    first.is_some_and(|l| given.contains(l)) && lines.all(|l| given.contains(l))
}

/// Code paths have no prefix: the code folder is where the program and its tests run.
const CODE: &str = "";
/// Conformance tests are written under this prefix (a name no program's own folder is likely to
/// have; `tests/` is, and `code/` made a model import `code.app`).
pub(crate) const TESTS: &str = "conformance_tests/";

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
    /// Whether the model first answered with placeholders (the format's `<the whole file>`)
    /// and this is its answer to the follow-up.
    after_placeholders: bool,
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
    fn copies_spec_code(&self, spec: &str) -> Vec<FileText> {
        let given: HashSet<&str> = spec.lines().map(str::trim).collect();
        let mut copied = Vec::new();
        for (path, content) in self.program_writes() {
            if !only_given_lines(content, &given) {
                return Vec::new();
            }
            copied.push(FileText {
                path: path.clone(),
                content: content.clone(),
            });
        }
        copied
    }

    /// The program files the reply writes that repeat code the specification (`spec`) shows
    /// with a few lines of their own: at most [`SKETCH_MAX_OWN_LINES`] non-blank lines, fewer
    /// than the spec's lines the file repeats, which are three at least. Each as the file
    /// without its own lines (what is left is shown for completion), with their number.
    fn sketches_spec_code(&self, spec: &str) -> Vec<Sketch> {
        let given: HashSet<&str> = spec.lines().map(str::trim).collect();
        let is_given = |l: &&str| given.contains(l.trim());
        let mut out = Vec::new();
        for (path, content) in self.program_writes() {
            let (repeated, own): (Vec<&str>, Vec<&str>) = content
                .lines()
                .filter(|l| !l.trim().is_empty())
                .partition(is_given);
            let (repeated, own) = (repeated.len(), own.len());
            if own == 0 || own > SKETCH_MAX_OWN_LINES || own >= repeated || repeated < 3 {
                continue;
            }
            let shown: String = content
                .lines()
                .filter(|l| l.trim().is_empty() || is_given(l))
                .map(|l| format!("{l}\n"))
                .collect();
            out.push(Sketch {
                shown: FileText {
                    path: path.clone(),
                    content: format!("{}\n", shown.trim_end()),
                },
                own,
            });
        }
        out
    }

    /// The program files the reply writes (not tests, not documentation): path and content.
    fn program_writes(&self) -> impl Iterator<Item = (&String, &String)> {
        self.changes.code.iter().filter_map(|c| match c {
            Change::Write { path, content } if is_program_path(path) => Some((path, content)),
            _ => None,
        })
    }

    /// Writes `content` to the code path `path` instead of what the reply gave for it.
    fn replace(&mut self, path: &str, content: String) {
        for c in &mut self.changes.code {
            if let Change::Write {
                path: p,
                content: old,
            } = c
            {
                if p == path {
                    *old = content;
                    return;
                }
            }
        }
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

/// A program file that repeats code the specification shows with a few lines of its own
/// ([`Reply::sketches_spec_code`]).
struct Sketch {
    /// The file without its own lines.
    shown: FileText,
    /// How many non-blank lines of its own it had.
    own: usize,
}

/// The most lines of its own a program file may add to the code the specification shows and
/// still be asked for completed after a reply of placeholders (the 0.5B's bodies: a return
/// statement, `pass` and a comment, five lines for HumanEval/0's loop).
const SKETCH_MAX_OWN_LINES: usize = 5;

/// Why a reply's blocks may not be applied.
#[derive(Debug)]
enum Refusal {
    /// The blocks (paths as the reply wrote them) whose content is only a placeholder, such as
    /// the format's `<the whole file>`.
    Placeholders(Vec<String>),
    Other(String),
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::Other(reason)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Placeholders(paths) if paths.len() == 1 => write!(
                f,
                "the block for {} holds a placeholder, not the file's content",
                paths[0]
            ),
            Refusal::Placeholders(paths) => write!(
                f,
                "the blocks for {} hold placeholders, not the files' content",
                paths.join(", ")
            ),
            Refusal::Other(reason) => f.write_str(reason),
        }
    }
}

impl Refusal {
    /// The follow-up that asks for the reply again. A reply of placeholders is not shown the
    /// format again (it has the format; the format's placeholder is what it copied) but asked
    /// for the code of the first program file among them (the files that go with it, its
    /// tests, come with it), or of the first of them when none is a program file.
    fn follow_up(&self) -> String {
        match self {
            Refusal::Placeholders(paths) => {
                let first = paths.iter().find(|p| is_program_path(p)).or(paths.first());
                prompts::placeholder(first.map_or("", String::as_str))
            }
            Refusal::Other(_) => prompts::reformat(&self.to_string()),
        }
    }
}

/// Sorts a reply's blocks into the folders of `scope`; why, when the reply may not be
/// applied. A block that repeats a file it may not change, unchanged, is dropped, and so is
/// documentation (a README, a Markdown file) unless `docs` says the specification names some.
fn route(
    text: &str,
    blocks: &[FileBlock],
    scope: &Scope<'_>,
    scripts: &[String],
    docs: bool,
) -> Result<Routed, Refusal> {
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
    // Every block that holds only a placeholder: the reason names them all, and the
    // follow-up picks the program file among them.
    let mut placeholders = Vec::new();
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
            )
            .into());
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
                    placeholders.push(raw.to_string());
                    continue;
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
            }
            .into());
        }
        if tests {
            out.tests.push(change);
        } else {
            out.code.push(change);
        }
    }
    if !placeholders.is_empty() {
        return Err(Refusal::Placeholders(placeholders));
    }
    if out.code.is_empty() && out.tests.is_empty() && dropped > 0 {
        return Err(Refusal::Other(
            "the reply only repeats files this step does not write, or writes documentation nobody asked for"
                .into(),
        ));
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
    /// The imports added in this attempt, as (file, name): each once.
    imported: HashSet<(String, String)>,
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
        self.imported.clear();
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
    fn write(path: &str, content: &str) -> FileBlock {
        FileBlock::Write {
            path: path.into(),
            content: content.into(),
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
            after_placeholders: false,
        };
        let copy = "def f(x):\n    \"\"\"Twice x.\"\"\"\n\n";
        // Reindented and with blank lines, still a copy; a test file beside it does not count.
        assert_eq!(
            reply(&[
                ("solution.py", copy),
                ("test_solution.py", "import solution\n")
            ])
            .copies_spec_code(spec)
            .iter()
            .map(|f| (f.path.as_str(), f.content.as_str()))
            .collect::<Vec<_>>(),
            [("solution.py", copy)]
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
    fn a_program_that_repeats_the_specs_code_with_a_few_lines_is_a_sketch() {
        let spec = "- :Solution: should define `f`.\n\n  ```python\n  from typing import List\n\n\n  def f(xs: List[int]) -> int:\n      \"\"\"Sum of xs.\n      >>> f([1, 2])\n      3\n      \"\"\"\n  ```\n";
        let reply = |content: &str| Reply {
            changes: Routed {
                code: vec![
                    Change::Write {
                        path: "solution.py".into(),
                        content: content.into(),
                    },
                    Change::Write {
                        path: "test_solution.py".into(),
                        content: "from solution import f\n".into(),
                    },
                ],
                tests: vec![],
            },
            text: String::new(),
            finish: FinishReason::Stop,
            after_placeholders: true,
        };
        let skeleton = "from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    \"\"\"Sum of xs.\n    >>> f([1, 2])\n    3\n    \"\"\"\n";
        let sketched = |content: &str| -> Vec<(String, String, usize)> {
            reply(content)
                .sketches_spec_code(spec)
                .into_iter()
                .map(|s| (s.shown.path, s.shown.content, s.own))
                .collect()
        };
        // A stub body and a comment: the file without them (blank lines at the end too).
        assert_eq!(
            sketched(&format!(
                "{skeleton}    # Your implementation goes here\n    return []\n\n"
            )),
            [("solution.py".to_string(), skeleton.to_string(), 2)]
        );
        // Five lines of its own are a sketch still; six are the model's code.
        let body = |n: usize| {
            format!(
                "{skeleton}{}",
                "    x = 1\n".repeat(n - 1) + "    return sum(xs)\n"
            )
        };
        assert_eq!(sketched(&body(5))[0].2, 5);
        assert!(sketched(&body(6)).is_empty());
        // A copy with no line of its own is not a sketch (it is completed as a copy), nor is a
        // file that repeats fewer than three of the spec's lines, or no more than it adds.
        assert!(sketched(skeleton).is_empty());
        assert!(sketched("from typing import List\n\ndef g():\n    return 1\n").is_empty());
        assert!(sketched(
            "def f(xs: List[int]) -> int:\n    \"\"\"Sum of xs.\n    t = 0\n    for x in xs:\n        t += x\n    return t\n"
        )
        .is_empty());
    }

    #[test]
    fn a_reply_of_placeholders_is_asked_for_its_code_not_shown_the_format_again() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("code");
        std::fs::create_dir_all(&code).unwrap();
        let scope = Scope::code(&code);
        let scripts = vec!["run_tests.sh".to_string()];
        // As the 0.5B writes them: every block the format's placeholder, a made-up test file
        // among them, and one block of real content.
        let blocks = [
            write("solution.py", "<the whole file>\n"),
            write("test_solution.py", "<the whole file>\n"),
            write("__init__.py", "<the whole file>  \n"),
            write("notes.txt", "a real line\n"),
        ];
        let e = route("", &blocks, &scope, &scripts, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the blocks for solution.py, test_solution.py, __init__.py hold placeholders, not the files' content"
        );
        let ask = e.follow_up();
        assert_eq!(
            ask,
            "That reply holds no code: where the file's content belongs it only says what \
             should be there. Reply again with the actual, complete code of solution.py, every \
             function with its body written out, in file blocks."
        );
        assert!(!ask.contains('<'), "{ask}");
        // Only tests given as placeholders: those are named.
        let e = route("", &blocks[1..2], &scope, &scripts, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the block for test_solution.py holds a placeholder, not the file's content"
        );
        assert!(e.follow_up().contains("complete code of test_solution.py,"));
        // Any other refusal is answered with the format, and the reason.
        let e = route("", &[write("../x.py", "x\n")], &scope, &scripts, false).unwrap_err();
        let ask = e.follow_up();
        assert!(ask.starts_with("Your reply could not be used: "), "{ask}");
        assert!(ask.contains("--- FILE: <relative path>"), "{ask}");
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
        assert!(e.unwrap_err().to_string().contains("would change the code"));
        let e = route(
            "",
            &[write("app.py", "print(1)\n")],
            &tests_only,
            &scripts,
            false,
        );
        assert!(e.unwrap_err().to_string().contains("only repeats"));
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
        assert!(e.unwrap_err().to_string().contains("earlier functionality"));
        // Documentation is dropped unless the specification names some; a reply of nothing
        // else is not a reply.
        let blocks = [write("README.md", "# App\n"), write("app.py", "print(3)\n")];
        let r = route("", &blocks, &both, &scripts, false).unwrap();
        assert_eq!((r.code.len(), r.code[0].path()), (1, "app.py"));
        let r = route("", &blocks, &both, &scripts, true).unwrap();
        assert_eq!(r.code.len(), 2);
        let e = route("", &blocks[..1], &both, &scripts, false);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("documentation nobody asked for"));
        // Test scripts, placeholders and escapes are refused.
        for (path, content, want) in [
            ("run_tests.sh", "exit 0\n", "test scripts"),
            ("conformance_tests/run_tests.sh", "exit 0\n", "test scripts"),
            ("app.py", "<the whole file>\n", "placeholder"),
            ("../../x", "x\n", "relative to the code folder"),
        ] {
            let e = route("", &[write(path, content)], &both, &scripts, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{path}: {e}");
        }
    }
}
