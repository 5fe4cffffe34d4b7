//! Writes a loaded module back out as one self-contained ***plain file: templates expanded,
//! imports and exported definitions merged in. What `rekindle expand` prints.

use crate::model::{Item, SectionKind};
use crate::project::{Project, RenderModule};
use std::fmt::Write;

fn push_item(out: &mut String, item: &Item, indent: usize) {
    let pad = " ".repeat(indent);
    for (i, line) in item.text.lines().enumerate() {
        if i == 0 {
            let _ = writeln!(out, "{pad}- {line}");
        } else if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{pad}  {line}");
        }
    }
}

/// The expanded text of `rm`.
pub fn expanded_text(project: &Project, rm: &RenderModule) -> String {
    let module = project.module(rm.module);
    let mut out = String::new();
    let requires: Vec<&str> = rm
        .requires
        .iter()
        .map(|&r| project.module(r).name.as_str())
        .collect();
    if module.front.description.is_some() || !requires.is_empty() {
        out.push_str("---\n");
        if let Some(d) = &module.front.description {
            let _ = writeln!(
                out,
                "description: {}",
                serde_json::to_string(d).unwrap_or_default()
            );
        }
        if !requires.is_empty() {
            out.push_str("requires:\n");
            for r in requires {
                let _ = writeln!(out, "  - {r}");
            }
        }
        out.push_str("---\n\n");
    }
    let s = &rm.sections;
    for kind in [
        SectionKind::Definitions,
        SectionKind::ImplementationReqs,
        SectionKind::TestReqs,
        SectionKind::FunctionalSpecs,
    ] {
        let items = s.list(kind);
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "***{}***\n", kind.heading());
        for item in items {
            push_item(&mut out, item, 0);
            if !item.acceptance_tests.is_empty() {
                out.push_str("\n  ***acceptance tests***\n\n");
                for t in &item.acceptance_tests {
                    push_item(&mut out, t, 2);
                }
            }
            out.push('\n');
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}
