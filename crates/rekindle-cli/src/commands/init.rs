//! `rekindle init`: a new project that checks and renders out of the box: a spec importing a
//! built-in template, config.yaml, the template's test scripts, rekindle.toml and `.gitignore`
//! entries. Asks only on a terminal; never overwrites a file.

use crate::args::Format;
use crate::exit::{CliError, CmdResult, ExitStatus};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// A built-in template `init` can start a project from: the scripts that test its code.
struct Starter {
    template: &'static str,
    language: &'static str,
    unit: (&'static str, &'static str),
    conformance: (&'static str, &'static str),
}

const STARTERS: &[Starter] = &[
    Starter {
        template: "python-console-app-template",
        language: "Python",
        unit: (
            "run_unittests_python.sh",
            include_str!("../../../../examples/scripts/run_unittests_python.sh"),
        ),
        conformance: (
            "run_conformance_tests_python.sh",
            include_str!("../../../../examples/scripts/run_conformance_tests_python.sh"),
        ),
    },
    Starter {
        template: "golang-console-app-template",
        language: "Go",
        unit: (
            "run_unittests_golang.sh",
            include_str!("../../init/run_unittests_golang.sh"),
        ),
        conformance: (
            "run_conformance_tests_golang.sh",
            include_str!("../../init/run_conformance_tests_golang.sh"),
        ),
    },
];

const PROVIDERS: &[&str] = &["local", "openai", "anthropic"];

/// What `.gitignore` gets: the build and the response cache are regenerated; the journal, the
/// lock and the tree store are the project's record and stay in version control.
const IGNORED: &[&str] = &["plain_modules/", ".rekindle/cache/", "rekindle.log"];

pub struct InitArgs<'a> {
    pub dir: Option<&'a Path>,
    pub template: Option<&'a str>,
    pub name: Option<&'a str>,
    pub provider: Option<&'a str>,
    pub yes: bool,
    pub format: Format,
    /// Draft the spec from this program instead of the example functionality.
    pub from_code: Option<&'a Path>,
    /// The model for --from-code.
    pub model: crate::args::ProviderArgs,
}

pub fn run(a: &InitArgs<'_>) -> CmdResult {
    if a.template == Some("list") {
        return list(a.format);
    }
    let dir = a.dir.map(Path::to_path_buf).unwrap_or_else(|| ".".into());
    let asking = !a.yes && std::io::stdin().is_terminal() && a.format == Format::Text;
    let mut ask = Asker { on: asking };
    let starter = match a.template {
        Some(t) => starter(t)?,
        None => {
            let names: Vec<&str> = STARTERS.iter().map(|s| s.template).collect();
            let chosen = ask.choose("Template", &names, 0);
            starter(&chosen)?
        }
    };
    let default_name = project_name(&dir);
    let name = match a.name {
        Some(n) => n.to_string(),
        None => ask.text("Project name", &default_name),
    };
    let module = identifier(&name).ok_or_else(|| {
        CliError::usage(format!(
            "`{name}` cannot name a project: use letters, digits, `-` and `_`, starting with a letter"
        ))
    })?;
    let provider = match a.provider {
        Some(p) => p.to_string(),
        None => ask.choose("Model provider", PROVIDERS, 0),
    };
    if !PROVIDERS.contains(&provider.as_str()) {
        return Err(CliError::usage(format!(
            "--provider {provider}: init knows {}; other providers go in rekindle.toml by hand (docs/config.md)",
            PROVIDERS.join(", ")
        )));
    }
    let sources = a
        .from_code
        .map(super::from_code::read_sources)
        .transpose()?;
    let spec_name = format!("{name}.plain");
    let files: Vec<(PathBuf, String, bool)> = vec![
        (dir.join(&spec_name), spec(starter, &name, &module), false),
        (dir.join("config.yaml"), config(starter), false),
        (
            dir.join("scripts").join(starter.unit.0),
            starter.unit.1.to_string(),
            true,
        ),
        (
            dir.join("scripts").join(starter.conformance.0),
            starter.conformance.1.to_string(),
            true,
        ),
        (dir.join("rekindle.toml"), toml(&provider), false),
    ];
    let taken: Vec<String> = files
        .iter()
        .filter(|(p, _, _)| std::fs::symlink_metadata(p).is_ok())
        .map(|(p, _, _)| p.display().to_string())
        .collect();
    if !taken.is_empty() {
        return Err(CliError::usage(format!(
            "init writes no file that is already there, and these are: {}; pick another folder, or move them",
            taken.join(", ")
        )));
    }
    let mut written = Vec::new();
    for (path, text, executable) in &files {
        if let Err(e) = create_new(path, text, *executable) {
            // Only what this run created goes again: the folder is as it was.
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(CliError::usage(format!(
                "cannot write {}: {e}",
                path.display()
            )));
        }
        written.push(path.clone());
    }
    let ignore = dir.join(".gitignore");
    let added = gitignore(&ignore).map_err(|e| {
        CliError::usage(format!(
            "the project is written, but {} could not be updated: {e}",
            ignore.display()
        ))
    })?;
    if let Some(sources) = &sources {
        if a.format == Format::Text {
            eprintln!(
                "created the project in {}; drafting its spec from {} ({} code file(s), {} test file(s))",
                dir.display(),
                a.from_code.map(|p| p.display().to_string()).unwrap_or_default(),
                sources.code.len(),
                sources.tests.len()
            );
        }
        return super::from_code::run(&super::from_code::FromCode {
            sources,
            spec: &dir.join(&spec_name),
            model: &a.model,
            json: a.format == Format::Json,
        });
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "spec": dir.join(&spec_name).display().to_string(),
                "template": starter.template,
                "provider": provider,
                "created": written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "gitignore_added": added,
            })
        ),
        Format::Text => {
            eprintln!(
                "created a {} project in {}:",
                starter.language,
                dir.display()
            );
            for p in &written {
                eprintln!("  {}", p.display());
            }
            if !added.is_empty() {
                eprintln!("  {} (+ {})", ignore.display(), added.join(", "));
            }
            let cd = if dir == Path::new(".") {
                String::new()
            } else {
                format!("cd {} && ", dir.display())
            };
            eprintln!("next:");
            eprintln!("  {cd}rekindle check {spec_name}");
            if provider == "local" {
                eprintln!("  rekindle model fetch      # the embedded model, once per machine");
            }
            eprintln!("  {cd}rekindle render {spec_name}");
        }
    }
    Ok(ExitStatus::Success)
}

fn list(format: Format) -> CmdResult {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!(STARTERS
                .iter()
                .map(|s| serde_json::json!({"template": s.template, "language": s.language}))
                .collect::<Vec<_>>())
        ),
        Format::Text => {
            for s in STARTERS {
                println!("{:<30} {}", s.template, s.language);
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn starter(name: &str) -> Result<&'static Starter, CliError> {
    STARTERS.iter().find(|s| s.template == name).ok_or_else(|| {
        let names: Vec<&str> = STARTERS.iter().map(|s| s.template).collect();
        CliError::usage(format!(
            "--template {name}: init can start from {} (`rekindle init --template list`)",
            names.join(", ")
        ))
    })
}

/// The folder's name, as a project name.
fn project_name(dir: &Path) -> String {
    std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| identifier(n).is_some())
        .unwrap_or_else(|| "app".to_string())
}

/// `name` as a file and module name (`my-tool` → `my_tool`), if it can be one.
fn identifier(name: &str) -> Option<String> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then(|| name.replace('-', "_").to_ascii_lowercase())
}

fn spec(s: &Starter, name: &str, module: &str) -> String {
    let (main, how_run, reqs) = match s.language {
        "Go" => (
            "main.go".to_string(),
            "`go run .`".to_string(),
            format!(
                "- :App: is a Go module named \"{module}\" (go.mod, go 1.21) whose package main is in :MainExecutableFile:.\n"
            ),
        ),
        _ => (
            format!("{module}.py"),
            format!("`python {module}.py`"),
            String::new(),
        ),
    };
    let reqs = if reqs.is_empty() {
        String::new()
    } else {
        format!("{reqs}\n")
    };
    let template = s.template;
    [
        "---".to_string(),
        format!("description: '{name}: a ***plain project'"),
        "import:".to_string(),
        format!("  - {template}"),
        "---".to_string(),
        String::new(),
        format!("> Written by `rekindle init`. Say what {name} does under ***functional specs***, one functionality"),
        format!("> per item, each with acceptance tests that show it works. `rekindle plan {name}.plain` shows what a"),
        "> render will do; `rekindle render` writes and tests the code in plain_modules/.".to_string(),
        String::new(),
        "***implementation reqs***".to_string(),
        String::new(),
        format!("- :MainExecutableFile: of :App: should be called \"{main}\"."),
        String::new(),
        format!("{reqs}***test reqs***"),
        String::new(),
        format!("- :ConformanceTests: start :App: as {how_run} and compare what it prints with the expected text exactly."),
        String::new(),
        "***functional specs***".to_string(),
        String::new(),
        format!("- :App: should print \"Hello from {name}!\" followed by a newline."),
        String::new(),
        "  ***acceptance tests***".to_string(),
        String::new(),
        format!("  - Running :App: prints exactly \"Hello from {name}!\" and a newline, and exits with status 0."),
        String::new(),
    ]
    .join("\n")
}

fn config(s: &Starter) -> String {
    format!(
        "# plain2code's configuration, which rekindle reads too (docs/config.md).\n\
unittests-script: scripts/{}\n\
conformance-tests-script: scripts/{}\n\
build-folder: plain_modules\n\
test-script-timeout: 120\n",
        s.unit.0, s.conformance.0
    )
}

fn toml(provider: &str) -> String {
    let how = match provider {
        "local" => "the embedded model (`rekindle model fetch` once); nothing leaves this machine",
        "openai" => "OpenAI's API; the key comes from OPENAI_API_KEY, never from a file",
        _ => "Anthropic's API; the key comes from ANTHROPIC_API_KEY, never from a file",
    };
    format!(
        "# rekindle's own settings (docs/config.md).\n\n[models]\n# {how}.\ndefault = \"{provider}\"\n"
    )
}

/// Writes `text` to `path`, which must not exist (not even as a link), creating its folder.
fn create_new(path: &Path, text: &str, executable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o755 } else { 0o644 })
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Adds the entries `.gitignore` lacks (creating it if needed), keeping what it holds; returns
/// the entries added.
fn gitignore(path: &Path) -> std::io::Result<Vec<String>> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let have: Vec<&str> = old.lines().map(str::trim).collect();
    let missing: Vec<String> = IGNORED
        .iter()
        .filter(|e| !have.contains(e) && !have.contains(&e.trim_end_matches('/')))
        .map(|e| e.to_string())
        .collect();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut text = old.clone();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(
        "# rekindle: regenerated; the journal, rekindle.lock and .rekindle/trees.git stay\n",
    );
    for m in &missing {
        text.push_str(m);
        text.push('\n');
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(missing)
}

/// Questions on a terminal; the default answer otherwise.
struct Asker {
    on: bool,
}

impl Asker {
    fn text(&mut self, question: &str, default: &str) -> String {
        if !self.on {
            return default.to_string();
        }
        eprint!("{question} [{default}]: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let line = line.trim();
        if line.is_empty() {
            default.to_string()
        } else {
            line.to_string()
        }
    }

    fn choose(&mut self, question: &str, options: &[&str], default: usize) -> String {
        if !self.on {
            return options[default].to_string();
        }
        for (i, o) in options.iter().enumerate() {
            eprintln!("  {}. {o}", i + 1);
        }
        let answer = self.text(question, options[default]);
        match answer.parse::<usize>() {
            Ok(n) if (1..=options.len()).contains(&n) => options[n - 1].to_string(),
            _ => answer,
        }
    }
}
