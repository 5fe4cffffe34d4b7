//! Settings: the reference's `config.yaml` (both key spellings, paths relative to the file) and
//! rekindle's own `rekindle.toml`, merged with command-line values, which win.
//!
//! Problems are diagnostics pointing into the config file, so they render like spec errors.

pub mod paths;
pub mod reference;
pub mod rekindle_toml;

pub use reference::ReferenceConfig;
pub use rekindle_toml::{ProviderToml, RekindleToml};

use rekindle_diag::{Diagnostic, SourceDb};
use std::path::{Path, PathBuf};

/// What the command line says; `None` or empty means "not given".
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub config_name: Option<String>,
    pub template_dirs: Vec<PathBuf>,
    pub base_folder: Option<PathBuf>,
    pub build_folder: Option<PathBuf>,
    pub build_dest: Option<PathBuf>,
    pub conformance_tests_dest: Option<PathBuf>,
    pub unittests_script: Option<PathBuf>,
    pub conformance_tests_script: Option<PathBuf>,
    pub prepare_environment_script: Option<PathBuf>,
    pub test_script_timeout: Option<u64>,
}

/// Everything resolved: absolute or cwd-relative paths, defaults filled in.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `config.yaml` that was read, if any.
    pub config_file: Option<PathBuf>,
    pub rekindle_toml: Option<PathBuf>,
    /// Module search folders after the spec's own: config.yaml's `template-dir`, then
    /// rekindle.toml's, then each `--template-dir`.
    pub template_dirs: Vec<PathBuf>,
    pub roots: Vec<PathBuf>,
    pub builtin_library: bool,
    pub max_resource_bytes: u64,
    /// Files the first module's code starts from (plain2code's `base-folder`): copied into the
    /// build as its base commit.
    pub base_folder: Option<PathBuf>,
    pub build_folder: PathBuf,
    pub build_dest: PathBuf,
    pub copy_build: bool,
    pub conformance_tests_dest: PathBuf,
    pub copy_conformance_tests: bool,
    pub unittests_script: Option<PathBuf>,
    pub conformance_tests_script: Option<PathBuf>,
    pub prepare_environment_script: Option<PathBuf>,
    pub test_script_timeout: u64,
    /// config.yaml's `verbose` (the render log says more).
    pub verbose: bool,
    /// plain2code's render flags as config.yaml keys (`render-range`, `force-render`, ...).
    pub flags: reference::FlagDefaults,
    /// rekindle.toml as read (providers, models, budget, prices, cache).
    pub toml: RekindleToml,
    /// The folder of the spec (or the current folder when there is none).
    pub spec_dir: PathBuf,
}

pub const DEFAULT_TEST_SCRIPT_TIMEOUT: u64 = 120;

/// Finds and reads the config files for the spec at `spec`, then applies `cli`.
/// Config diagnostics land in `diags`, with their files in `db`.
pub fn load(
    spec: &Path,
    cli: &Overrides,
    db: &mut SourceDb,
    diags: &mut Vec<Diagnostic>,
) -> Settings {
    let spec_dir = spec
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    load_in(spec_dir, cli, db, diags)
}

/// [`load`] for commands without a spec: the config files of `spec_dir` (and the current folder).
pub fn load_in(
    spec_dir: &Path,
    cli: &Overrides,
    db: &mut SourceDb,
    diags: &mut Vec<Diagnostic>,
) -> Settings {
    let config_name = cli.config_name.as_deref().unwrap_or("config.yaml");
    let config_file = match &cli.config {
        Some(p) => {
            if !p.is_file() {
                diags.push(Diagnostic::error(
                    "E0801",
                    format!("config file `{}` does not exist", p.display()),
                ));
                None
            } else {
                Some(p.clone())
            }
        }
        None => find_config(spec_dir, config_name, diags),
    };
    let reference = config_file
        .as_deref()
        .map(|p| reference::read(p, db, diags))
        .unwrap_or_default();
    let toml_path = [
        spec_dir.join("rekindle.toml"),
        PathBuf::from("rekindle.toml"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    let toml = toml_path
        .as_deref()
        .map(|p| rekindle_toml::read(p, db, diags))
        .unwrap_or_default();

    let mut template_dirs = Vec::new();
    template_dirs.extend(reference.template_dir.clone());
    template_dirs.extend(toml.spec.template_dirs.iter().cloned());
    template_dirs.extend(cli.template_dirs.iter().cloned());
    let settings = Settings {
        config_file,
        rekindle_toml: toml_path,
        template_dirs,
        roots: toml.spec.roots.clone(),
        builtin_library: toml.spec.builtin_library,
        max_resource_bytes: toml.spec.max_resource_bytes,
        base_folder: cli.base_folder.clone().or(reference.base_folder.clone()),
        build_folder: cli
            .build_folder
            .clone()
            .or(reference.build_folder.clone())
            .unwrap_or_else(|| spec_dir.join("plain_modules")),
        build_dest: cli
            .build_dest
            .clone()
            .or(reference.build_dest.clone())
            .unwrap_or_else(|| spec_dir.join("dist")),
        copy_build: reference.copy_build.unwrap_or(false),
        conformance_tests_dest: cli
            .conformance_tests_dest
            .clone()
            .or(reference.conformance_tests_dest.clone())
            .unwrap_or_else(|| spec_dir.join("dist_conformance_tests")),
        copy_conformance_tests: reference.copy_conformance_tests.unwrap_or(false),
        unittests_script: cli
            .unittests_script
            .clone()
            .or(reference.unittests_script.clone()),
        conformance_tests_script: cli
            .conformance_tests_script
            .clone()
            .or(reference.conformance_tests_script.clone()),
        prepare_environment_script: cli
            .prepare_environment_script
            .clone()
            .or(reference.prepare_environment_script.clone()),
        test_script_timeout: cli
            .test_script_timeout
            .or(reference.test_script_timeout)
            .unwrap_or(DEFAULT_TEST_SCRIPT_TIMEOUT),
        verbose: reference.verbose.unwrap_or(false),
        flags: reference.flags.clone(),
        spec_dir: spec_dir.to_path_buf(),
        toml,
    };
    let mut from_cli = Vec::new();
    if cli.base_folder.is_some() {
        from_cli.push("base-folder");
    }
    if cli.build_folder.is_some() {
        from_cli.push("build-folder");
    }
    if cli.build_dest.is_some() {
        from_cli.push("build-dest");
    }
    if cli.conformance_tests_dest.is_some() {
        from_cli.push("conformance-tests-dest");
    }
    paths::check(&settings, &reference, &from_cli, diags);
    settings
}

impl Settings {
    /// How the front end finds modules and what it allows, as these settings say: the template
    /// folders, the extra roots, the built-in library, the largest resource.
    pub fn project_options(&self) -> rekindle_spec::project::Options {
        rekindle_spec::project::Options {
            search_dirs: self.template_dirs.clone(),
            roots: self.roots.clone(),
            builtin_library: self.builtin_library,
            max_resource_bytes: self.max_resource_bytes,
            ..rekindle_spec::project::Options::default()
        }
    }

    /// Where model replies are cached: rekindle.toml's `[cache] dir`, else `.rekindle/cache`
    /// beside the spec.
    pub fn cache_dir(&self) -> PathBuf {
        self.toml.cache.dir.clone().unwrap_or_else(|| {
            rekindle_workspace::layout::ProjectLayout {
                dir: self.spec_dir.clone(),
            }
            .default_cache()
        })
    }
}

/// The reference looks beside the spec, then in the current folder; two different files are
/// ambiguous.
fn find_config(spec_dir: &Path, name: &str, diags: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    let beside = spec_dir.join(name);
    let here = PathBuf::from(name);
    let (b, h) = (beside.is_file(), here.is_file());
    if b && h {
        let same = match (beside.canonicalize(), here.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        };
        if !same {
            diags.push(
                Diagnostic::error(
                    "E0802",
                    format!(
                        "two config files: `{}` and `{}`",
                        beside.display(),
                        here.display()
                    ),
                )
                .help("remove one of them, or choose one with --config"),
            );
            return None;
        }
    }
    if b {
        Some(beside)
    } else if h {
        Some(here)
    } else {
        None
    }
}
