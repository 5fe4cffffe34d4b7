//! `rekindle expand`: the spec with templates, imports and exported definitions expanded.

use crate::args::{Format, SpecArgs};
use crate::exit::{CliError, CmdResult, ExitStatus};
use crate::load;
use std::path::Path;

pub fn run(file: &Path, module: Option<&str>, args: &SpecArgs) -> CmdResult {
    let (project, _) = load::load_valid(file, args)?;
    let rm = match module {
        None => project.render_order.last(),
        Some(name) => project
            .render_order
            .iter()
            .find(|rm| project.module(rm.module).name == name),
    };
    let Some(rm) = rm else {
        return Err(CliError::usage(format!(
            "`{}` is not one of the modules this spec renders",
            module.unwrap_or("")
        )));
    };
    let text = rekindle_spec::expand::expanded_text(&project, rm);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"module": project.module(rm.module).name, "text": text})
        ),
        Format::Text => print!("{text}"),
    }
    Ok(ExitStatus::Success)
}
