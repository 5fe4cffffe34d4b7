//! The render plan: what `rekindle render` would do for a loaded project — modules in render
//! order, each functionality with its acceptance tests and where it is written ([`plan`]), the
//! render keys that decide reuse ([`keys`]), and the one decision "is this functionality stale,
//! and why" that both `render` and `status` make ([`stale`]). Pure: no I/O; what the build
//! recorded is read by the caller and passed in.

pub mod keys;
pub mod stale;

use rekindle_spec::diag::position;
use rekindle_spec::project::Project;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Plan {
    pub modules: Vec<PlanModule>,
}

#[derive(Debug, Serialize)]
pub struct PlanModule {
    pub name: String,
    pub file: String,
    pub requires: Vec<String>,
    pub definitions: usize,
    pub implementation_reqs: usize,
    pub test_reqs: usize,
    pub functionalities: Vec<PlanFunctionality>,
}

#[derive(Debug, Serialize)]
pub struct PlanFunctionality {
    /// 1-based position in the module, as the reference numbers them.
    pub id: usize,
    pub text: String,
    pub acceptance_tests: Vec<String>,
    pub file: String,
    pub line: usize,
    pub end_line: usize,
}

pub fn plan(project: &Project) -> Plan {
    let modules = project
        .render_order
        .iter()
        .map(|rm| {
            let m = project.module(rm.module);
            let s = &rm.sections;
            PlanModule {
                name: m.name.clone(),
                file: project.sources.get(m.file).path.display().to_string(),
                requires: rm
                    .requires
                    .iter()
                    .map(|&r| project.module(r).name.clone())
                    .collect(),
                definitions: s.definitions.len(),
                implementation_reqs: s.implementation_reqs.len(),
                test_reqs: s.test_reqs.len(),
                functionalities: s
                    .functional_specs
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let pos = position(&project.sources, f.span);
                        PlanFunctionality {
                            id: i + 1,
                            text: f.text.clone(),
                            acceptance_tests: f
                                .acceptance_tests
                                .iter()
                                .map(|t| t.text.clone())
                                .collect(),
                            file: pos.file,
                            line: pos.line,
                            end_line: pos.end_line,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    Plan { modules }
}
