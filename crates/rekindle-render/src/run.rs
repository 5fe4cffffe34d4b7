//! The loop itself: modules in `requires` order, functionalities in order. Each functionality is
//! reused when its render key is unchanged (replaying its commit onto a re-rendered parent when
//! needed), otherwise rendered by [`crate::steps`] and committed with its trailers. Killing the
//! process at any moment leaves either a finished commit or a marker whose work the next run
//! discards.

use crate::error::{io, RenderError};
use crate::events::{Event, FileHash, FunctionalityStatus, Observer, Summary};
use crate::history::{self, Base};
use crate::options::{Locked, LockedPin, ModelSet, Options};
use crate::prompts::{self, Context, Resource};
use rekindle_llm::session::Session;
use rekindle_plan::keys::{KeyContext, KeyParts, Keyer};
use rekindle_plan::stale::{self, first_line};
use rekindle_spec::project::{Project, RenderModule};
use rekindle_workspace::files;
use rekindle_workspace::git::Repo;
use rekindle_workspace::layout::{BuildLayout, ModuleLayout};
use rekindle_workspace::store::TreeStore;
use std::path::PathBuf;
use std::time::Instant;

/// The pin of functionality `k`, which must have been rendered from the same render key.
fn locked_pin<'l>(
    locked: &'l Locked,
    module: &str,
    k: usize,
    key: &str,
) -> Result<&'l LockedPin, RenderError> {
    let pin = locked
        .pins
        .iter()
        .find(|p| p.module == module && p.id == k)
        .ok_or_else(|| {
            RenderError::Locked(format!(
                "functionality {k} of module {module} is not in rekindle.lock; render without --locked to pin it"
            ))
        })?;
    if pin.render_key != key {
        return Err(RenderError::Locked(format!(
            "functionality {k} of module {module}: the render key differs from the lock (the spec, resources, templates, models or scripts changed); render without --locked to pin the change"
        )));
    }
    Ok(pin)
}

/// The files of `dir` at `paths`, with the BLAKE3 of their content (`None`: deleted).
fn file_hashes(dir: &std::path::Path, paths: Vec<String>) -> Vec<FileHash> {
    paths
        .into_iter()
        .map(|path| {
            let blake3 = std::fs::read(dir.join(&path))
                .ok()
                .map(|b| blake3::hash(&b).to_hex().to_string());
            FileHash { path, blake3 }
        })
        .collect()
}

/// Renders what is stale in `project`.
pub async fn render(
    project: &Project,
    opts: &Options,
    models: &ModelSet<'_>,
    session: &Session,
    obs: &mut dyn Observer,
) -> Result<Summary, RenderError> {
    if project.has_errors() {
        return Err(RenderError::Usage(
            "the spec has errors; run `rekindle check` to see them".into(),
        ));
    }
    let started = Instant::now();
    // Scripts get absolute folders: they run from the code folder, not from here.
    let mut opts = opts.clone();
    opts.build_folder = std::path::absolute(&opts.build_folder).map_err(io)?;
    if let Some(c) = &opts.copy_to {
        opts.copy_to = Some(std::path::absolute(c).map_err(io)?);
    }
    if let Some(c) = &opts.copy_tests_to {
        opts.copy_tests_to = Some(std::path::absolute(c).map_err(io)?);
    }
    let opts = &opts;
    let layout = BuildLayout::new(&opts.build_folder);
    let _lock = history::lock(&layout)?;
    let render_id = history::stamp();
    let total: usize = project
        .render_order
        .iter()
        .map(|m| m.sections.functional_specs.len())
        .sum();
    obs.event(&Event::Start {
        render_id: render_id.clone(),
        modules: project
            .render_order
            .iter()
            .map(|m| project.module(m.module).name.clone())
            .collect(),
        functionalities: total,
        sandboxed: opts.sandbox.mode == rekindle_workspace::sandbox::Mode::Enabled,
    });
    let settings = models.settings(&opts.sampling);
    let mut r = Renderer {
        project,
        opts,
        layout,
        models,
        session,
        obs,
        render_id,
        keyer: Keyer {
            project,
            context: KeyContext {
                template_version: prompts::template_version(),
                models: &settings,
                scripts: opts.script_hashes(),
            },
        },
        summary: Summary::default(),
    };
    let result = r.run().await;
    let t = session.totals();
    let mut summary = std::mem::take(&mut r.summary);
    summary.model_calls = t.model_calls;
    summary.cache_hits = t.cache_hits;
    summary.tokens_in = t.tokens_in;
    summary.tokens_out = t.tokens_out;
    summary.cost = t.cost;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.ok = result.is_ok();
    for w in session.take_warnings() {
        r.obs.event(&Event::Warning { message: w });
    }
    if let Err(e) = &result {
        let (module, id) = e.functionality().unwrap_or(("", 0));
        r.obs.event(&Event::Failed {
            module: module.to_string(),
            id,
            reason: e.to_string(),
        });
    }
    r.obs.event(&Event::Summary(summary.clone()));
    result.map(|()| summary)
}

pub(crate) struct Renderer<'a, 'm> {
    pub project: &'a Project,
    pub opts: &'a Options,
    pub layout: BuildLayout,
    pub models: &'a ModelSet<'m>,
    pub session: &'a Session,
    pub obs: &'a mut dyn Observer,
    pub render_id: String,
    pub keyer: Keyer<'a>,
    pub summary: Summary,
}

impl Renderer<'_, '_> {
    async fn run(&mut self) -> Result<(), RenderError> {
        let order = &self.project.render_order;
        let mut base = Base::first(self.opts.base_folder.as_deref())?;
        for (i, rm) in order.iter().enumerate() {
            let entry = i + 1 == order.len();
            let (code_dir, final_tree) = self.module(rm, &base, entry).await?;
            base = Base {
                from: Some(code_dir),
                tree_key: final_tree,
            };
        }
        if let (Some(dest), Some(from)) = (&self.opts.copy_to, &base.from) {
            files::replace_contents(from, dest)
                .map_err(|e| io(format!("cannot copy the build to {}: {e}", dest.display())))?;
        }
        if let (Some(dest), Some(last)) = (&self.opts.copy_tests_to, order.last()) {
            let tests = self
                .layout
                .module(&self.project.module(last.module).name)
                .tests;
            if tests.is_dir() {
                files::replace_contents(&tests, dest).map_err(|e| {
                    io(format!(
                        "cannot copy the conformance tests to {}: {e}",
                        dest.display()
                    ))
                })?;
            }
        }
        Ok(())
    }

    fn trailers(
        &self,
        module: &str,
        id: usize,
        parts: &KeyParts,
        tests_commit: Option<&str>,
    ) -> rekindle_workspace::trailers::Trailers {
        history::step_trailers(
            module,
            id,
            parts,
            &self.opts.spec_hash,
            &self.render_id,
            tests_commit,
            self.obs.anchor(),
        )
    }

    /// Checks `--from` and `--range` against the entry module's functionalities.
    fn check_bounds(&self, module: &str, n: usize) -> Result<(), RenderError> {
        if let Some(from) = self.opts.from {
            if from > n + 1 || from == 0 {
                return Err(RenderError::Usage(format!(
                    "--from {from}: module {module} has functionalities 1 to {n}"
                )));
            }
        }
        if let Some((a, b)) = self.opts.range {
            if a == 0 || a > b || b > n {
                return Err(RenderError::Usage(format!(
                    "--range {a}..{b}: module {module} has functionalities 1 to {n}"
                )));
            }
        }
        Ok(())
    }

    async fn module(
        &mut self,
        rm: &RenderModule,
        base: &Base,
        entry: bool,
    ) -> Result<(PathBuf, String), RenderError> {
        let module = self.project.module(rm.module).name.clone();
        let n = rm.sections.functional_specs.len();
        self.obs.event(&Event::Module {
            module: module.clone(),
            functionalities: n,
        });
        let d = self.layout.module(&module);
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        code.init()?;
        tests.init()?;
        let force = self.opts.force.then_some(self.opts.patches_dir.as_path());
        history::recover(&module, &d, &code, &tests, force, &mut *self.obs)?;
        let h = history::read(&module, &code)?;
        let (base_commit, tests_base) =
            history::ensure_base(&module, &code, &tests, base, h.base.as_ref())?;
        if entry {
            self.check_bounds(&module, n)?;
        }
        let mut prev_commit = base_commit.id.clone();
        let mut prev_tree = base_commit.tree.clone();
        let mut prev_tests = tests_base;
        let defs = self.keyer.definitions(rm);
        for k in 1..=n {
            let f = &rm.sections.functional_specs[k - 1];
            let parts = self.keyer.key(rm, &defs, k, &prev_tree);
            let key = parts.key();
            let forced = self.opts.force_render
                || (entry
                    && (self.opts.from.is_some_and(|from| k >= from)
                        || self.opts.range.is_some_and(|(a, b)| k >= a && k <= b)));
            let old = h.done.get(&k);
            let verdict = stale::judge(old.map(|o| o.recorded()).as_ref(), Ok(&parts), forced);
            if let (None, Some(old)) = (&verdict, old) {
                // Reuse; replay the commit onto a re-rendered parent when needed.
                let (c, t) = if old.commit.parent.as_deref() == Some(prev_commit.as_str()) {
                    (
                        old.commit.id.clone(),
                        old.tests_commit.clone().unwrap_or_default(),
                    )
                } else {
                    let t = match &old.tests_commit {
                        Some(tc) => {
                            let tree = tests.tree_of(tc)?;
                            tests.commit_tree(&tree, Some(&prev_tests), &tests.message(tc)?)?
                        }
                        None => prev_tests.clone(),
                    };
                    let msg = self
                        .trailers(&module, k, &parts, Some(&t))
                        .message(&history::subject(&module, k));
                    (
                        code.commit_tree(&old.commit.tree, Some(&prev_commit), &msg)?,
                        t,
                    )
                };
                self.summary.reused += 1;
                self.obs.event(&Event::Functionality {
                    module: module.clone(),
                    id: k,
                    of: n,
                    status: FunctionalityStatus::Reused,
                    reason: None,
                });
                prev_commit = c;
                prev_tree = old.commit.tree.clone();
                prev_tests = t;
                continue;
            }
            let reasons = verdict.unwrap_or_default();
            if entry {
                if let Some((_, b)) = self.opts.range {
                    if k > b {
                        break;
                    }
                }
            }
            if let Some(locked) = &self.opts.locked {
                let store = TreeStore::new(&locked.store);
                let pin = locked_pin(locked, &module, k, &key)?;
                if store.has(&pin.tree) && (pin.tests_tree.is_empty() || store.has(&pin.tests_tree))
                {
                    let (c, t) = self.restore(
                        &module,
                        (k, n),
                        f,
                        &parts,
                        pin,
                        &store,
                        &d,
                        &prev_commit,
                        &prev_tests,
                    )?;
                    self.summary.restored += 1;
                    prev_tree = code.tree_of(&c)?;
                    prev_commit = c;
                    prev_tests = t;
                    continue;
                }
                // A lock written before the store existed, or a store not copied along: the
                // pinned replies may still be in the cache (prompts do not depend on where or
                // when the tests ran); the comparison with the lock afterwards tells.
                self.obs.event(&Event::Warning {
                    message: format!(
                        "the tree store {} does not hold the trees of functionality {k} of module {module}; replaying its pinned model replies from the cache instead",
                        store.dir().display()
                    ),
                });
            }
            self.obs.event(&Event::Functionality {
                module: module.clone(),
                id: k,
                of: n,
                status: FunctionalityStatus::Rendering,
                reason: Some(
                    reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            });
            // Start from the state the previous functionality left.
            code.move_head(&prev_commit)?;
            if !prev_tests.is_empty() {
                tests.move_head(&prev_tests)?;
            }
            std::fs::write(&d.marker, &self.render_id).map_err(io)?;
            let cx = self.context(rm, &defs, k);
            if let Err(e) = self.functionality(&module, k, &cx, &d).await {
                // Leave the repositories as the last finished functionality left them.
                code.reset_hard(None)?;
                tests.reset_hard(None)?;
                let _ = std::fs::remove_file(&d.marker);
                return Err(e);
            }
            let tests_commit = tests.commit_all(
                &format!("rekindle: conformance tests of functionality {k} of module {module}"),
                &self.trailers(&module, k, &parts, None).pairs(),
            )?;
            let changed: Vec<String> = code.changes()?.into_iter().map(|(_, p)| p).collect();
            let subject = format!(
                "{}\n\n{}",
                history::subject(&module, k),
                first_line(&f.text)
            );
            let commit = code.commit_all(
                &subject,
                &self
                    .trailers(&module, k, &parts, Some(&tests_commit))
                    .pairs(),
            )?;
            std::fs::remove_file(&d.marker).map_err(io)?;
            self.summary.rendered += 1;
            let pos = rekindle_spec::diag::position(&self.project.sources, f.span);
            let files = file_hashes(&d.code, changed);
            self.obs.event(&Event::Committed {
                module: module.clone(),
                id: k,
                commit: commit.clone(),
                tests_commit: tests_commit.clone(),
                render_key: key.clone(),
                text: first_line(&f.text),
                spec_file: pos.file,
                spec_lines: [pos.line, pos.end_line],
                files,
            });
            prev_tree = code.tree_of(&commit)?;
            prev_commit = commit;
            prev_tests = tests_commit;
        }
        // The branch ends at the last functionality (the spec may have lost some).
        if code.head()?.as_deref() != Some(prev_commit.as_str()) {
            code.move_head(&prev_commit)?;
        }
        if !prev_tests.is_empty() && tests.head()?.as_deref() != Some(prev_tests.as_str()) {
            tests.move_head(&prev_tests)?;
        }
        Ok((d.code, prev_tree))
    }

    /// `render --locked`: functionality `k` (of `n`) from the tree store, tested as a render
    /// tests it, then committed on top of the previous one with its trailers. Like a render,
    /// it works under the marker and commits last: a failure or a kill leaves the previous
    /// functionality's commit.
    #[allow(clippy::too_many_arguments)]
    fn restore(
        &mut self,
        module: &str,
        (k, n): (usize, usize),
        f: &rekindle_spec::model::Item,
        parts: &KeyParts,
        pin: &LockedPin,
        store: &TreeStore,
        d: &ModuleLayout,
        prev_commit: &str,
        prev_tests: &str,
    ) -> Result<(String, String), RenderError> {
        self.obs.event(&Event::Functionality {
            module: module.to_string(),
            id: k,
            of: n,
            status: FunctionalityStatus::Restored,
            reason: None,
        });
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        code.move_head(prev_commit)?;
        if !prev_tests.is_empty() {
            tests.move_head(prev_tests)?;
        }
        std::fs::write(&d.marker, &self.render_id).map_err(io)?;
        for (repo, tree) in [(&code, &pin.tree), (&tests, &pin.tests_tree)] {
            if !tree.is_empty() {
                store.restore_into(repo, tree)?;
                repo.checkout_tree(tree)?;
            }
        }
        if let Err(e) = self.verify_restored(module, k, d) {
            code.reset_hard(None)?;
            tests.reset_hard(None)?;
            let _ = std::fs::remove_file(&d.marker);
            return Err(e);
        }
        let t = if pin.tests_tree.is_empty() {
            prev_tests.to_string()
        } else {
            tests.commit_tree(
                &pin.tests_tree,
                (!prev_tests.is_empty()).then_some(prev_tests),
                &self.trailers(module, k, parts, None).message(&format!(
                    "rekindle: conformance tests of functionality {k} of module {module}"
                )),
            )?
        };
        let subject = format!("{}\n\n{}", history::subject(module, k), first_line(&f.text));
        let c = code.commit_tree(
            &pin.tree,
            Some(prev_commit),
            &self.trailers(module, k, parts, Some(&t)).message(&subject),
        )?;
        code.move_head(&c)?;
        if !t.is_empty() {
            tests.move_head(&t)?;
        }
        std::fs::remove_file(&d.marker).map_err(io)?;
        let pos = rekindle_spec::diag::position(&self.project.sources, f.span);
        self.obs.event(&Event::Committed {
            module: module.to_string(),
            id: k,
            commit: c.clone(),
            tests_commit: t.clone(),
            render_key: pin.render_key.clone(),
            text: first_line(&f.text),
            spec_file: pos.file,
            spec_lines: [pos.line, pos.end_line],
            files: file_hashes(&d.code, code.changed_between(prev_commit, &c)?),
        });
        Ok((c, t))
    }

    /// What every prompt about functionality `k` shows.
    fn context(&self, rm: &RenderModule, defs: &[String], k: usize) -> Context {
        let s = &rm.sections;
        let f = &s.functional_specs[k - 1];
        let texts = |v: &[std::sync::Arc<rekindle_spec::model::Item>]| {
            v.iter().map(|i| i.text.clone()).collect::<Vec<_>>()
        };
        Context {
            definitions: defs.to_vec(),
            implementation_reqs: texts(&s.implementation_reqs),
            test_reqs: texts(&s.test_reqs),
            resources: self
                .keyer
                .resources(rm, k)
                .into_iter()
                .map(|r| Resource {
                    name: r.name.to_string(),
                    path: r.target.to_string(),
                    content: r.content.to_string(),
                })
                .collect(),
            previous: texts(&s.functional_specs[..k - 1]),
            current: f.text.clone(),
            acceptance_tests: texts(&f.acceptance_tests),
        }
    }
}
