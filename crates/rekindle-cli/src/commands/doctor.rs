//! `rekindle doctor`: git, configuration, test scripts, the model file, and one tiny request to
//! each provider a render may use.

use super::runtime;
use crate::args::{Format, ProviderArgs};
use crate::exit::{CmdResult, ExitStatus};
use crate::load;
use std::path::Path;

pub fn run(file: Option<&Path>, args: &ProviderArgs, format: Format) -> CmdResult {
    let (settings, db, diags) = load::settings_for(file);
    let problems: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let at = d
                .primary
                .as_ref()
                .map(|l| {
                    let p = rekindle_diag::diag::position(&db, l.span);
                    format!("{}:{}: ", p.file, p.line)
                })
                .unwrap_or_default();
            format!("{at}{}", d.message)
        })
        .collect();
    let report = runtime().block_on(crate::doctor::run(&settings, args, problems));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Text => crate::doctor::print_text(&report),
    }
    Ok(if report.ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
