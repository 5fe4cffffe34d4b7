//! `rekindle.toml`: rekindle's own settings, beside the spec (or in the current folder).
//! Documented in docs/config.md. Unknown keys are errors so that typos do not pass silently.

use rekindle_diag::{Diagnostic, SourceDb, Span};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RekindleToml {
    #[serde(default)]
    pub spec: SpecSettings,
}

/// `[spec]`: how specs are found and what they may link.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SpecSettings {
    /// Module search folders, after the spec's own folder and config.yaml's `template-dir`.
    #[serde(default)]
    pub template_dirs: Vec<PathBuf>,
    /// Further folders linked resources may come from.
    #[serde(default)]
    pub roots: Vec<PathBuf>,
    /// Whether the built-in template library is searched last.
    #[serde(default = "yes")]
    pub builtin_library: bool,
    /// The largest linked resource, in bytes.
    #[serde(default = "one_mib")]
    pub max_resource_bytes: u64,
}

fn yes() -> bool {
    true
}

fn one_mib() -> u64 {
    1 << 20
}

impl Default for SpecSettings {
    fn default() -> SpecSettings {
        SpecSettings {
            template_dirs: Vec::new(),
            roots: Vec::new(),
            builtin_library: true,
            max_resource_bytes: one_mib(),
        }
    }
}

pub fn read(path: &Path, db: &mut SourceDb, diags: &mut Vec<Diagnostic>) -> RekindleToml {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(
                "E0811",
                format!("cannot read `{}`: {e}", path.display()),
            ));
            return RekindleToml::default();
        }
    };
    let file = db.add(path.to_path_buf(), text.clone());
    match toml::from_str::<RekindleToml>(&text) {
        Ok(mut t) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            for p in t
                .spec
                .template_dirs
                .iter_mut()
                .chain(t.spec.roots.iter_mut())
            {
                *p = dir.join(&*p);
            }
            t
        }
        Err(e) => {
            let span = e
                .span()
                .map(|r| Span::new(file, r.start, r.end))
                .unwrap_or(Span::new(file, 0, 0));
            diags.push(
                Diagnostic::error("E0812", format!("invalid rekindle.toml: {}", e.message()))
                    .at(span, "here")
                    .help("see docs/config.md for the keys rekindle.toml takes"),
            );
            RekindleToml::default()
        }
    }
}
