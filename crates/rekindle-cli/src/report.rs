//! Printing: diagnostics to stderr (text) or as JSON values, and the plan as text.

use rekindle_diag::diag::{render, to_json};
use rekindle_diag::{Diagnostic, SourceDb};
use rekindle_plan::Plan;
use std::fmt::Write;

pub fn print(db: &SourceDb, diags: &[Diagnostic], color: bool) {
    for d in diags {
        eprintln!("{}\n", render(db, d, color));
    }
}

pub fn json(db: &SourceDb, diags: &[Diagnostic]) -> Vec<serde_json::Value> {
    diags
        .iter()
        .map(|d| serde_json::to_value(to_json(db, d)).unwrap_or_default())
        .collect()
}

fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max - 1).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let total: usize = plan.modules.iter().map(|m| m.functionalities.len()).sum();
    let _ = writeln!(
        out,
        "render plan: {} module{}, {} functionalit{}\n",
        plan.modules.len(),
        if plan.modules.len() == 1 { "" } else { "s" },
        total,
        if total == 1 { "y" } else { "ies" }
    );
    for (i, m) in plan.modules.iter().enumerate() {
        let _ = writeln!(out, "{}. module {} ({})", i + 1, m.name, m.file);
        if !m.requires.is_empty() {
            let _ = writeln!(out, "   requires: {}", m.requires.join(", "));
        }
        let _ = writeln!(
            out,
            "   {} definitions, {} implementation reqs, {} test reqs",
            m.definitions, m.implementation_reqs, m.test_reqs
        );
        for f in &m.functionalities {
            let _ = writeln!(
                out,
                "   {:>3}. {}  [{}:{}]",
                f.id,
                first_line(&f.text, 90),
                f.file,
                f.line
            );
            for t in &f.acceptance_tests {
                let _ = writeln!(out, "        acceptance: {}", first_line(t, 80));
            }
        }
        out.push('\n');
    }
    out
}
