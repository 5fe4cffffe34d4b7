//! `config.yaml` as the reference reads it: its keys in both spellings (`build-folder`,
//! `build_folder`), unknown keys refused, relative paths resolved against the file's folder.

use rekindle_diag::{Diagnostic, SourceDb, Span};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// The values read, paths already resolved.
#[derive(Clone, Debug, Default)]
pub struct ReferenceConfig {
    pub template_dir: Option<PathBuf>,
    pub base_folder: Option<PathBuf>,
    pub build_folder: Option<PathBuf>,
    pub build_dest: Option<PathBuf>,
    pub copy_build: Option<bool>,
    pub conformance_tests_dest: Option<PathBuf>,
    pub copy_conformance_tests: Option<bool>,
    pub unittests_script: Option<PathBuf>,
    pub conformance_tests_script: Option<PathBuf>,
    pub prepare_environment_script: Option<PathBuf>,
    pub test_script_timeout: Option<u64>,
    pub verbose: Option<bool>,
    /// plain2code's render flags written as keys, which rekindle's flags of the same names
    /// override.
    pub flags: FlagDefaults,
    /// Where each path setting was written (its value on its line), by its dashed key, for
    /// messages about the folder it names.
    pub locations: Vec<(&'static str, Span)>,
}

/// plain2code's render flags as config.yaml keys: defaults for the flags of the same names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagDefaults {
    /// `render-range` as written (`2,4` or `3`).
    pub render_range: Option<String>,
    pub render_from: Option<usize>,
    pub force_render: bool,
    pub dry_run: bool,
    pub full_plain: bool,
    pub log_to_file: Option<bool>,
    pub log_file_name: Option<String>,
}

type S<T> = Option<Spanned<T>>;

/// A value YAML may read as a number or a string (`render-range: 3`, `render-range: 2,4`).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    #[serde(alias = "v")]
    verbose: S<bool>,
    #[serde(alias = "base_folder")]
    base_folder: S<String>,
    #[serde(alias = "build_folder")]
    build_folder: S<String>,
    #[serde(alias = "log_to_file")]
    log_to_file: S<bool>,
    #[serde(alias = "log_file_name")]
    log_file_name: S<String>,
    #[serde(alias = "config_name")]
    config_name: S<String>,
    #[serde(alias = "render_range")]
    render_range: S<NumberOrText>,
    #[serde(alias = "render_from")]
    render_from: S<u64>,
    #[serde(alias = "force_render")]
    force_render: S<bool>,
    #[serde(alias = "unittests_script")]
    unittests_script: S<String>,
    #[serde(alias = "conformance_tests_folder")]
    conformance_tests_folder: S<String>,
    #[serde(alias = "conformance_tests_script")]
    conformance_tests_script: S<String>,
    #[serde(alias = "prepare_environment_script")]
    prepare_environment_script: S<String>,
    #[serde(alias = "test_script_timeout")]
    test_script_timeout: S<u64>,
    api: S<String>,
    #[serde(alias = "api_key")]
    api_key: S<String>,
    #[serde(alias = "full_plain")]
    full_plain: S<bool>,
    #[serde(alias = "dry_run")]
    dry_run: S<bool>,
    #[serde(alias = "replay_with")]
    replay_with: S<String>,
    #[serde(alias = "template_dir")]
    template_dir: S<String>,
    #[serde(alias = "copy_build")]
    copy_build: S<bool>,
    #[serde(alias = "build_dest")]
    build_dest: S<String>,
    #[serde(alias = "copy_conformance_tests")]
    copy_conformance_tests: S<bool>,
    #[serde(alias = "conformance_tests_dest")]
    conformance_tests_dest: S<String>,
    #[serde(alias = "render_machine_graph")]
    render_machine_graph: S<bool>,
    #[serde(alias = "logging_config_path")]
    logging_config_path: S<String>,
    headless: S<bool>,
}

pub const KEYS: &[&str] = &[
    "verbose",
    "v",
    "base-folder",
    "build-folder",
    "log-to-file",
    "log-file-name",
    "config-name",
    "render-range",
    "render-from",
    "force-render",
    "unittests-script",
    "conformance-tests-folder",
    "conformance-tests-script",
    "prepare-environment-script",
    "test-script-timeout",
    "api",
    "api-key",
    "full-plain",
    "dry-run",
    "replay-with",
    "template-dir",
    "copy-build",
    "build-dest",
    "copy-conformance-tests",
    "conformance-tests-dest",
    "render-machine-graph",
    "logging-config-path",
    "headless",
];

/// Span of a 1-based YAML line and column in `text`.
pub(crate) fn span_at(db: &SourceDb, file: rekindle_diag::FileId, line: u64, col: u64) -> Span {
    let src = db.get(file);
    let l = (line.max(1) as usize - 1).min(src.line_count().saturating_sub(1));
    let start = src.line_start(l);
    let text = src.line_text(l);
    let c: usize = text
        .chars()
        .take(col.max(1) as usize - 1)
        .map(char::len_utf8)
        .sum();
    Span::new(file, start + c, start + text.len().max(c + 1))
}

pub fn read(path: &Path, db: &mut SourceDb, diags: &mut Vec<Diagnostic>) -> ReferenceConfig {
    let text = match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => {
            diags.push(Diagnostic::error(
                "E0803",
                format!("`{}` is not UTF-8 text", path.display()),
            ));
            return ReferenceConfig::default();
        }
        Err(e) => {
            diags.push(Diagnostic::error(
                "E0803",
                format!("cannot read `{}`: {e}", path.display()),
            ));
            return ReferenceConfig::default();
        }
    };
    let file = db.add(path.to_path_buf(), text.clone());
    if text.trim().is_empty() {
        return ReferenceConfig::default();
    }
    let raw: Raw = match serde_saphyr::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            let msg = msg.lines().next().unwrap_or("").to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let span = e
                .location()
                .filter(|l| l.line() > 0)
                .map(|l| span_at(db, file, l.line(), l.column()))
                .unwrap_or(Span::new(file, 0, 0));
            let mut d =
                Diagnostic::error("E0804", format!("invalid config.yaml: {msg}")).at(span, "here");
            if msg.contains("unknown field") {
                d = d.help(format!("the keys are: {}", KEYS.join(", ")));
            }
            diags.push(d);
            return ReferenceConfig::default();
        }
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let resolve = |v: &S<String>| v.as_ref().map(|s| dir.join(&s.value));
    if let Some(k) = &raw.api_key {
        diags.push(
            Diagnostic::warning("W0801", "`api-key` in config.yaml is ignored")
                .at(
                    span_at(db, file, k.referenced.line(), 1),
                    "a key in a file can leak",
                )
                .help("set the key in an environment variable instead, such as OPENAI_API_KEY"),
        );
    }
    // plain2code's keys that rekindle cannot honour: said once, with what to use instead.
    for (key, v, instead) in [
        ("api", raw.api.as_ref().map(|v| v.referenced), "`--provider` and `--base-url` (or `[providers]` in rekindle.toml): rekindle calls the model itself"),
        ("replay-with", raw.replay_with.as_ref().map(|v| v.referenced), "`rekindle render --locked` (rekindle.lock) or `--offline` (the response cache)"),
        ("render-machine-graph", raw.render_machine_graph.as_ref().map(|v| v.referenced), "`rekindle plan` shows what a render will do and why"),
        ("logging-config-path", raw.logging_config_path.as_ref().map(|v| v.referenced), "`--log-to-file`, `--verbose` and `--format json`"),
        ("config-name", raw.config_name.as_ref().map(|v| v.referenced), "`--config-name` on the command line: this file was already chosen"),
        ("conformance-tests-folder", raw.conformance_tests_folder.as_ref().map(|v| v.referenced), "`copy-conformance-tests` and `conformance-tests-dest`: rekindle keeps each module's conformance tests in its build folder (plain2code 0.3.12 has no such key either)"),
    ] {
        if let Some(at) = v {
            diags.push(
                Diagnostic::warning("W0802", format!("`{key}` in config.yaml is ignored"))
                    .at(span_at(db, file, at.line(), 1), "rekindle has no such setting")
                    .help(format!("use {instead}")),
            );
        }
    }
    // `headless` needs nothing: rekindle prints a plain log whenever its output is not a terminal.
    let _ = &raw.headless;
    let flags = FlagDefaults {
        render_range: raw.render_range.map(|v| match v.value {
            NumberOrText::Number(n) => n.to_string(),
            NumberOrText::Text(t) => t,
        }),
        render_from: raw.render_from.map(|v| v.value as usize),
        force_render: raw.force_render.is_some_and(|v| v.value),
        dry_run: raw.dry_run.is_some_and(|v| v.value),
        full_plain: raw.full_plain.is_some_and(|v| v.value),
        log_to_file: raw.log_to_file.map(|v| v.value),
        log_file_name: raw.log_file_name.map(|v| v.value),
    };
    let mut locations = Vec::new();
    for (key, v) in [
        ("base-folder", &raw.base_folder),
        ("build-folder", &raw.build_folder),
        ("build-dest", &raw.build_dest),
        ("conformance-tests-dest", &raw.conformance_tests_dest),
    ] {
        if let Some(v) = v {
            let at = span_at(db, file, v.referenced.line(), v.referenced.column());
            locations.push((key, at));
        }
    }
    ReferenceConfig {
        template_dir: resolve(&raw.template_dir),
        base_folder: resolve(&raw.base_folder),
        build_folder: resolve(&raw.build_folder),
        build_dest: resolve(&raw.build_dest),
        copy_build: raw.copy_build.map(|v| v.value),
        conformance_tests_dest: resolve(&raw.conformance_tests_dest),
        copy_conformance_tests: raw.copy_conformance_tests.map(|v| v.value),
        unittests_script: resolve(&raw.unittests_script),
        conformance_tests_script: resolve(&raw.conformance_tests_script),
        prepare_environment_script: resolve(&raw.prepare_environment_script),
        test_script_timeout: raw.test_script_timeout.map(|v| v.value),
        verbose: raw.verbose.map(|v| v.value),
        flags,
        locations,
    }
}

impl ReferenceConfig {
    /// Where `key` (dashed, as in [`KEYS`]) was written, if it was.
    pub fn location(&self, key: &str) -> Option<Span> {
        self.locations
            .iter()
            .find(|(k, _)| *k == key)
            .map(|&(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> (ReferenceConfig, Vec<Diagnostic>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        std::fs::write(&p, text).unwrap();
        let mut db = SourceDb::default();
        let mut d = Vec::new();
        let c = read(&p, &mut db, &mut d);
        (c, d)
    }

    #[test]
    fn both_spellings_and_relative_paths() {
        let (c, d) = read_str("build_folder: out\nbuild-dest: dist\ntest-script-timeout: 5\n");
        assert!(d.is_empty(), "{d:?}");
        assert!(c.build_folder.unwrap().ends_with("out"));
        assert_eq!(c.test_script_timeout, Some(5));
    }

    #[test]
    fn unknown_key_is_located() {
        let (_, d) = read_str("verbose: true\nbuild-foldr: x\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "E0804");
        assert!(d[0].message.contains("build-foldr"), "{}", d[0].message);
        assert!(d[0].primary.is_some());
    }

    #[test]
    fn an_api_key_is_ignored_with_a_warning_that_never_repeats_it() {
        let (_, d) = read_str("build-folder: out\napi-key: sk-not-for-files\n");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].code, "W0801");
        assert!(!d[0].is_error());
        assert!(!format!("{d:?}").contains("sk-not-for-files"));
    }

    #[test]
    fn flag_keys_are_read_in_both_spellings_and_as_numbers() {
        let (c, d) = read_str(
            "render_range: 3\nforce-render: true\nlog_file_name: r.log\nbase-folder: seed\nv: true\n",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.flags.render_range.as_deref(), Some("3"));
        assert!(c.flags.force_render && !c.flags.dry_run);
        assert_eq!(c.flags.log_file_name.as_deref(), Some("r.log"));
        assert!(c.base_folder.unwrap().ends_with("seed"));
        assert_eq!(c.verbose, Some(true));
        let (c, _) = read_str("render-range: 2,4\n");
        assert_eq!(c.flags.render_range.as_deref(), Some("2,4"));
    }

    #[test]
    fn wrong_type_is_an_error() {
        let (_, d) = read_str("test-script-timeout: soon\n");
        assert_eq!(d[0].code, "E0804");
    }
}
