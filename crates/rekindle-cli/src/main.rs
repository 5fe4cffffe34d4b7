//! `rekindle`: parses arguments, calls the library crates, prints. No spec logic lives here.
//!
//! Exit codes: 0 success, 1 the work failed (spec errors), 2 usage or environment errors.

mod report;

use clap::{Parser, Subcommand, ValueEnum};
use rekindle_config::Overrides;
use rekindle_diag::{Diagnostic, SourceDb};
use rekindle_spec::project::{self, Project};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rekindle",
    version,
    about = "A spec compiler for AI-generated code: renders ***plain specs into tested code."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

/// Options every spec-reading command shares.
#[derive(clap::Args, Clone)]
struct SpecArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    format: Format,
    /// A folder searched for modules and includes after the spec's folder (repeatable).
    #[arg(long = "template-dir", value_name = "DIR")]
    template_dirs: Vec<PathBuf>,
    /// The reference's config file to read (default: config.yaml beside the spec or here).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The config file's name to look for.
    #[arg(long, value_name = "NAME")]
    config_name: Option<String>,
    /// Colour diagnostics.
    #[arg(long, value_enum, default_value = "auto")]
    color: Color,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and validate specs; report every problem with its location.
    Check {
        /// The .plain files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        args: SpecArgs,
    },
    /// Show the render plan: modules in render order, each functionality with its acceptance tests.
    Plan {
        file: PathBuf,
        #[command(flatten)]
        args: SpecArgs,
    },
    /// Print the spec with templates, imports and exported definitions expanded.
    Expand {
        file: PathBuf,
        /// Expand this required module instead of the entry module.
        #[arg(long, value_name = "NAME")]
        module: Option<String>,
        #[command(flatten)]
        args: SpecArgs,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let code = match cli.command {
        Command::Check { files, args } => check(&files, &args),
        Command::Plan { file, args } => plan(&file, &args),
        Command::Expand { file, module, args } => expand(&file, module.as_deref(), &args),
    };
    ExitCode::from(code)
}

/// A spec loaded with its settings, or the reason it could not be (exit code 2).
struct Loaded {
    project: Project,
    /// Config-file problems, rendered with their own sources.
    config_db: SourceDb,
    config_diags: Vec<Diagnostic>,
}

fn load(file: &Path, args: &SpecArgs) -> Loaded {
    let overrides = Overrides {
        config: args.config.clone(),
        config_name: args.config_name.clone(),
        template_dirs: args.template_dirs.clone(),
        ..Overrides::default()
    };
    let mut config_db = SourceDb::default();
    let mut config_diags = Vec::new();
    let settings = rekindle_config::load(file, &overrides, &mut config_db, &mut config_diags);
    let opts = project::Options {
        search_dirs: settings.template_dirs.clone(),
        roots: settings.roots.clone(),
        builtin_library: settings.builtin_library,
        max_resource_bytes: settings.max_resource_bytes,
        ..project::Options::default()
    };
    let project = project::load(file, &opts, &rekindle_spec::loader::RealFs);
    Loaded {
        project,
        config_db,
        config_diags,
    }
}

fn color(args: &SpecArgs) -> bool {
    match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Usage problems found before any spec is read: exit 2.
fn precheck(file: &Path) -> Option<String> {
    if !file.exists() {
        return Some(format!("`{}` does not exist", file.display()));
    }
    if file.is_dir() {
        return Some(format!(
            "`{}` is a folder; name a .plain file",
            file.display()
        ));
    }
    None
}

fn usage_error(msg: &str, format: Format) -> u8 {
    if format == Format::Json {
        println!("{}", serde_json::json!({"ok": false, "error": msg}));
    } else {
        eprintln!("error: {msg}");
    }
    2
}

fn check(files: &[PathBuf], args: &SpecArgs) -> u8 {
    let mut worst = 0u8;
    let mut json_files = Vec::new();
    let color = color(args);
    for file in files {
        if let Some(msg) = precheck(file) {
            worst = worst.max(usage_error(&msg, args.format));
            continue;
        }
        let l = load(file, args);
        let config_failed = l.config_diags.iter().any(Diagnostic::is_error);
        let errors = l
            .project
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        let warnings = l.project.diagnostics.len() - errors;
        match args.format {
            Format::Json => {
                let mut diags = report::json(&l.config_db, &l.config_diags);
                diags.extend(report::json(&l.project.sources, &l.project.diagnostics));
                json_files.push(serde_json::json!({
                    "file": file.display().to_string(),
                    "ok": errors == 0 && !config_failed,
                    "errors": errors,
                    "warnings": warnings,
                    "diagnostics": diags,
                }));
            }
            Format::Text => {
                report::print(&l.config_db, &l.config_diags, color);
                report::print(&l.project.sources, &l.project.diagnostics, color);
                if errors == 0 && !config_failed {
                    let n: usize = l
                        .project
                        .render_order
                        .iter()
                        .map(|m| m.sections.functional_specs.len())
                        .sum();
                    eprintln!(
                        "ok: {} ({} module{}, {} functionalit{}{})",
                        file.display(),
                        l.project.render_order.len(),
                        if l.project.render_order.len() == 1 {
                            ""
                        } else {
                            "s"
                        },
                        n,
                        if n == 1 { "y" } else { "ies" },
                        if warnings > 0 {
                            format!(", {warnings} warning(s)")
                        } else {
                            String::new()
                        }
                    );
                } else if errors > 0 {
                    eprintln!(
                        "error: {} has {errors} error{}",
                        file.display(),
                        if errors == 1 { "" } else { "s" }
                    );
                }
            }
        }
        if config_failed {
            worst = worst.max(2);
        } else if errors > 0 {
            worst = worst.max(1);
        }
        // The process is about to end; freeing a large project only costs time.
        std::mem::forget(l);
    }
    if args.format == Format::Json {
        let ok = worst == 0;
        println!("{}", serde_json::json!({"ok": ok, "files": json_files}));
    }
    worst
}

/// Loads `file` for plan/expand; on errors prints them and returns the exit code.
fn load_valid(file: &Path, args: &SpecArgs) -> Result<Project, u8> {
    if let Some(msg) = precheck(file) {
        return Err(usage_error(&msg, args.format));
    }
    let l = load(file, args);
    let config_failed = l.config_diags.iter().any(Diagnostic::is_error);
    let failed = l.project.has_errors();
    if args.format == Format::Json && (failed || config_failed) {
        let mut diags = report::json(&l.config_db, &l.config_diags);
        diags.extend(report::json(&l.project.sources, &l.project.diagnostics));
        println!("{}", serde_json::json!({"ok": false, "diagnostics": diags}));
    } else {
        let color = color(args);
        report::print(&l.config_db, &l.config_diags, color);
        report::print(&l.project.sources, &l.project.diagnostics, color);
    }
    if config_failed {
        return Err(2);
    }
    if failed {
        if args.format == Format::Text {
            let n = l
                .project
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .count();
            eprintln!(
                "error: {} has {n} error{}",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
        }
        return Err(1);
    }
    Ok(l.project)
}

fn plan(file: &Path, args: &SpecArgs) -> u8 {
    let project = match load_valid(file, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let plan = rekindle_plan::plan(&project);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&plan).unwrap_or_default()
            );
        }
        Format::Text => {
            let _ = write!(out, "{}", report::plan_text(&plan));
        }
    }
    std::mem::forget(project);
    0
}

fn expand(file: &Path, module: Option<&str>, args: &SpecArgs) -> u8 {
    let project = match load_valid(file, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let rm = match module {
        None => project.render_order.last(),
        Some(name) => project
            .render_order
            .iter()
            .find(|rm| project.module(rm.module).name == name),
    };
    let Some(rm) = rm else {
        return usage_error(
            &format!(
                "`{}` is not one of the modules this spec renders",
                module.unwrap_or("")
            ),
            args.format,
        );
    };
    let text = rekindle_spec::expand::expanded_text(&project, rm);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"module": project.module(rm.module).name, "text": text})
        ),
        Format::Text => print!("{text}"),
    }
    0
}
