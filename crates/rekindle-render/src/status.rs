//! What `render` would do, without doing anything: per module, which functionalities are up to
//! date, which stale and why (decided by `rekindle_plan::stale`, the same decision the loop
//! makes), and which generated files were changed by hand.

use crate::error::{io, RenderError};
use crate::history;
use crate::options::Options;
use crate::prompts;
use rekindle_plan::keys::{KeyContext, Keyer};
use rekindle_plan::stale::{self, FunctionalityState};
use rekindle_spec::project::Project;
use rekindle_workspace::git::{DriftChange, Repo};
use rekindle_workspace::layout::BuildLayout;
use serde::Serialize;

/// A generated file changed by hand.
#[derive(Clone, Debug, Serialize)]
pub struct Drift {
    /// The repository it is in.
    pub folder: String,
    pub path: String,
    pub change: DriftChange,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModuleState {
    pub module: String,
    pub functionalities: Vec<FunctionalityState>,
    pub drift: Vec<Drift>,
    /// A render was interrupted here; the next one discards its unfinished work.
    pub interrupted: bool,
}

/// The whole answer, with the counts `status` reports.
#[derive(Clone, Debug)]
pub struct Status {
    pub modules: Vec<ModuleState>,
}

impl Status {
    fn count(&self, f: impl Fn(&FunctionalityState) -> bool) -> usize {
        self.modules
            .iter()
            .flat_map(|m| &m.functionalities)
            .filter(|s| f(s))
            .count()
    }

    /// Functionalities a render must render (stale or never rendered).
    pub fn pending(&self) -> usize {
        self.count(|f| f.state.pending())
    }

    /// Functionalities reused only if the stale ones before them produce the same code again.
    pub fn reusable(&self) -> usize {
        self.count(|f| f.state == stale::State::Reusable)
    }

    pub fn hand_edits(&self) -> usize {
        self.modules.iter().map(|m| m.drift.len()).sum()
    }

    /// Whether a render would do nothing, no file was changed by hand and no render was
    /// interrupted.
    pub fn clean(&self) -> bool {
        self.pending() == 0
            && self.reusable() == 0
            && self.hand_edits() == 0
            && !self.modules.iter().any(|m| m.interrupted)
    }
}

/// The state of every module of `project` in the build folder of `opts`; `models` are the model
/// settings a render would use (`rekindle_plan::keys::model_settings`).
pub fn status(
    project: &Project,
    opts: &Options,
    models: &serde_json::Value,
) -> Result<Status, RenderError> {
    let layout = BuildLayout::new(std::path::absolute(&opts.build_folder).map_err(io)?);
    let keyer = Keyer {
        project,
        context: KeyContext {
            template_version: prompts::template_version(),
            models,
            scripts: opts.script_hashes(),
        },
    };
    let mut out = Vec::new();
    let mut base_key = Some(history::Base::first(opts.base_folder.as_deref())?.tree_key);
    let mut previous_module: Option<String> = None;
    for rm in &project.render_order {
        let module = project.module(rm.module).name.clone();
        let d = layout.module(&module);
        let code = Repo::new(&d.code);
        let tests = Repo::new(&d.tests);
        let interrupted = d.marker.exists();
        // Changes are reported even under a marker: a stale marker must not hide a hand edit
        // (the next render would discard everything the working folders hold).
        let mut drift = Vec::new();
        for repo in [&code, &tests] {
            if repo.exists() {
                for (change, path) in repo.drift()? {
                    drift.push(Drift {
                        folder: repo.dir.display().to_string(),
                        path,
                        change,
                    });
                }
            }
        }
        let h = if code.exists() {
            Some(history::read(&module, &code)?)
        } else {
            None
        };
        let base = h.as_ref().and_then(|h| h.base.as_ref());
        let base_ok = base
            .zip(base_key.as_ref())
            .is_some_and(|(b, k)| history::base_of(b).as_deref() == Some(k.as_str()));
        let done = h
            .as_ref()
            .map(|h| h.done.iter().map(|(k, d)| (*k, d.recorded())).collect())
            .unwrap_or_default();
        let functionalities = stale::module_states(
            &keyer,
            rm,
            base.filter(|_| base_ok).map(|b| b.tree.as_str()),
            previous_module.as_deref(),
            &done,
        );
        let all_current = functionalities
            .iter()
            .all(|f| f.state == stale::State::UpToDate);
        let last_tree = done
            .get(&rm.sections.functional_specs.len())
            .map(|r| r.tree.clone());
        base_key = if all_current { last_tree } else { None };
        previous_module = Some(module.clone());
        out.push(ModuleState {
            module,
            functionalities,
            drift,
            interrupted,
        });
    }
    Ok(Status { modules: out })
}
