//! Loading a spec with its settings for every command that reads one, and printing what is
//! wrong with it.

use crate::args::{Color, Format, RenderArgs, SpecArgs};
use crate::exit::{CliError, ExitStatus};
use crate::report;
use rekindle_config::{Overrides, Settings};
use rekindle_diag::{Diagnostic, SourceDb};
use rekindle_spec::project::{self, Project};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// A spec loaded with its settings.
pub struct Loaded {
    pub project: Project,
    pub settings: Settings,
    /// Config-file problems, rendered with their own sources.
    pub config_db: SourceDb,
    pub config_diags: Vec<Diagnostic>,
}

impl Loaded {
    pub fn config_failed(&self) -> bool {
        self.config_diags.iter().any(Diagnostic::is_error)
    }

    /// Errors in the spec (not counting warnings).
    pub fn spec_errors(&self) -> usize {
        self.project
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count()
    }

    /// Every diagnostic as JSON, the config file's first.
    pub fn json_diagnostics(&self) -> Vec<serde_json::Value> {
        let mut diags = report::json(&self.config_db, &self.config_diags);
        diags.extend(report::json(
            &self.project.sources,
            &self.project.diagnostics,
        ));
        diags
    }

    pub fn print_diagnostics(&self, color: bool) {
        report::print(&self.config_db, &self.config_diags, color);
        report::print(&self.project.sources, &self.project.diagnostics, color);
    }
}

pub fn load(file: &Path, args: &SpecArgs) -> Loaded {
    load_with(file, args, None)
}

/// [`load`], with what a rendering command's flags say over config.yaml (the test scripts and
/// their timeout, as plain2code's flags of the same names do).
pub fn load_with(file: &Path, args: &SpecArgs, render: Option<&RenderArgs>) -> Loaded {
    let overrides = Overrides {
        config: args.config.clone(),
        config_name: args.config_name.clone(),
        template_dirs: args.template_dirs.clone(),
        unittests_script: render.and_then(|r| r.unittests_script.clone()),
        conformance_tests_script: render.and_then(|r| r.conformance_tests_script.clone()),
        prepare_environment_script: render.and_then(|r| r.prepare_environment_script.clone()),
        test_script_timeout: render.and_then(|r| r.test_script_timeout),
        base_folder: render.and_then(|r| r.base_folder.clone()),
        build_folder: render.and_then(|r| r.build_folder.clone()),
        build_dest: render.and_then(|r| r.build_dest.clone()),
        conformance_tests_dest: render.and_then(|r| r.conformance_tests_dest.clone()),
    };
    let mut config_db = SourceDb::default();
    let mut config_diags = Vec::new();
    let settings = rekindle_config::load(file, &overrides, &mut config_db, &mut config_diags);
    let opts = settings.project_options();
    let project = project::load(file, &opts, &rekindle_spec::loader::RealFs);
    Loaded {
        project,
        settings,
        config_db,
        config_diags,
    }
}

pub fn color(args: &SpecArgs) -> bool {
    match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// Usage problems found before any spec is read.
pub fn precheck(file: &Path) -> Result<(), CliError> {
    if !file.exists() {
        return Err(CliError::usage(format!(
            "`{}` does not exist",
            file.display()
        )));
    }
    if file.is_dir() {
        return Err(CliError::usage(format!(
            "`{}` is a folder; name a .plain file",
            file.display()
        )));
    }
    Ok(())
}

/// "N error(s)" for the closing line of a failed check.
pub fn errors_line(file: &Path, n: usize) -> String {
    format!(
        "error: {} has {n} error{}",
        file.display(),
        if n == 1 { "" } else { "s" }
    )
}

/// Loads `file` for a command that needs a valid spec: prints its problems; a broken config is
/// exit 2, spec errors exit 1.
pub fn load_valid(file: &Path, args: &SpecArgs) -> Result<(Project, Settings), CliError> {
    load_valid_with(file, args, None)
}

/// [`load_valid`] for a rendering command (see [`load_with`]).
pub fn load_valid_with(
    file: &Path,
    args: &SpecArgs,
    render: Option<&RenderArgs>,
) -> Result<(Project, Settings), CliError> {
    precheck(file)?;
    let l = load_with(file, args, render);
    let config_failed = l.config_failed();
    let failed = l.project.has_errors();
    if args.format == Format::Json && (failed || config_failed) {
        println!(
            "{}",
            serde_json::json!({"ok": false, "diagnostics": l.json_diagnostics()})
        );
    } else {
        l.print_diagnostics(color(args));
    }
    if config_failed {
        return Err(CliError::Reported(ExitStatus::Error));
    }
    if failed {
        if args.format == Format::Text {
            eprintln!("{}", errors_line(file, l.spec_errors()));
        }
        return Err(CliError::Reported(ExitStatus::Failure));
    }
    Ok((l.project, l.settings))
}

/// Settings for commands that may run without a spec.
pub fn settings_for(file: Option<&Path>) -> (Settings, SourceDb, Vec<Diagnostic>) {
    let mut db = SourceDb::default();
    let mut diags = Vec::new();
    let s = match file {
        Some(f) => rekindle_config::load(f, &Overrides::default(), &mut db, &mut diags),
        None => {
            rekindle_config::load_in(Path::new("."), &Overrides::default(), &mut db, &mut diags)
        }
    };
    (s, db, diags)
}

/// `spec`, or the one .plain file in the current folder.
pub fn spec_or_default(spec: Option<&Path>) -> PathBuf {
    spec.map(Path::to_path_buf).unwrap_or_else(|| {
        let mut plain: Vec<PathBuf> = std::fs::read_dir(".")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "plain"))
            .collect();
        plain.sort();
        plain
            .into_iter()
            .next()
            .unwrap_or_else(|| PathBuf::from("spec.plain"))
    })
}
