//! Folders rekindle writes into and clears (the build folder, `build-dest`,
//! `conformance-tests-dest`) checked before anything runs: none may be the project's folder, an
//! ancestor of it, or a folder holding the project's specs, config, scripts or `.rekindle`, so
//! that no setting can make a render replace the project it renders.
//!
//! Paths are compared resolved: absolute, with every part that exists on disk canonicalized
//! (so `.`, `..`, `./` and a symbolic link to the project folder are all seen for what they are)
//! and the rest folded lexically.

use crate::{ReferenceConfig, Settings};
use rekindle_diag::Diagnostic;
use std::path::{Component, Path, PathBuf};

/// A diagnostic code: a build or destination folder that would hold the project.
pub const HOLDS_PROJECT: &str = "E0805";
/// A diagnostic code: a destination folder that overlaps the build folder.
pub const OVERLAPS_BUILD: &str = "E0806";
/// A diagnostic code: a `base-folder` that is not a folder or is outside the project's roots.
pub const BAD_BASE: &str = "E0807";

/// `path` absolute, with its existing part canonicalized and the rest folded lexically.
pub fn resolve(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            // `out` is canonical up to here (or ends in names that do not exist, which cannot be
            // links), so its parent is the real parent.
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(real) = out.canonicalize() {
                    out = real;
                }
            }
        }
    }
    out
}

/// A folder of the project that no written-to folder may be or hold.
struct Guarded {
    what: String,
    path: PathBuf,
}

fn guarded(s: &Settings) -> Vec<Guarded> {
    let mut g = Vec::new();
    let mut add = |what: String, path: &Path| {
        g.push(Guarded {
            what,
            path: resolve(path),
        })
    };
    add(
        format!("the project folder ({})", resolve(&s.spec_dir).display()),
        &s.spec_dir,
    );
    let project = rekindle_workspace::layout::ProjectLayout {
        dir: s.spec_dir.clone(),
    };
    add(
        "the project's .rekindle folder (journal, patches, cache)".into(),
        &project.rekindle_dir(),
    );
    add("the response cache".into(), &s.cache_dir());
    let parent = |p: &Path| -> PathBuf {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    if let Some(c) = &s.config_file {
        add(
            format!("the folder of the config file {}", c.display()),
            &parent(c),
        );
    }
    if let Some(t) = &s.rekindle_toml {
        add(format!("the folder of {}", t.display()), &parent(t));
    }
    for (key, script) in [
        ("unittests-script", &s.unittests_script),
        ("conformance-tests-script", &s.conformance_tests_script),
        ("prepare-environment-script", &s.prepare_environment_script),
    ] {
        if let Some(p) = script {
            add(
                format!("the folder of the {key} {}", p.display()),
                &parent(p),
            );
        }
    }
    for t in &s.template_dirs {
        add(
            format!("the template folder {} (it holds specs)", t.display()),
            t,
        );
    }
    g
}

/// What is wrong with `path` as the folder of setting `key`, if anything: the sentence for a
/// message (`` `build-dest` is the project folder (…)``). For values that do not come from a
/// config file (a command-line flag); [`check`] reports those that do.
pub fn problem(settings: &Settings, key: &str, path: &Path) -> Option<String> {
    let resolved = resolve(path);
    refusal(&guarded(settings), key, &resolved).map(|(_, msg)| msg)
}

fn refusal(guarded: &[Guarded], key: &str, resolved: &Path) -> Option<(&'static str, String)> {
    if resolved.parent().is_none() {
        return Some((HOLDS_PROJECT, format!("`{key}` is the root folder `/`")));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        if resolve(Path::new(&home)) == resolved {
            return Some((HOLDS_PROJECT, format!("`{key}` is your home folder")));
        }
    }
    for g in guarded {
        if g.path == resolved {
            return Some((HOLDS_PROJECT, format!("`{key}` is {}", g.what)));
        }
        if g.path.starts_with(resolved) {
            return Some((HOLDS_PROJECT, format!("`{key}` holds {}", g.what)));
        }
    }
    None
}

/// What rekindle does with each folder, for messages; and its default.
fn role(key: &str) -> (&'static str, &'static str) {
    match key {
        "build-folder" => (
            "rekindle creates, rewrites and clears folders in its build folder",
            "plain_modules",
        ),
        "build-dest" => (
            "a render copies the build there, replacing what an earlier copy wrote",
            "dist",
        ),
        _ => (
            "conformance tests are copied there, replacing what an earlier copy wrote",
            "dist_conformance_tests",
        ),
    }
}

/// Checks the folders rekindle writes into; problems are errors pointing at the config line
/// that names the folder (or naming the command-line flag or default it came from).
pub fn check(
    settings: &Settings,
    reference: &ReferenceConfig,
    from_cli: &[&str],
    diags: &mut Vec<Diagnostic>,
) {
    let guarded = guarded(settings);
    let build = resolve(&settings.build_folder);
    // A refused build folder is the one problem to fix; overlaps with it would only repeat it.
    let build_ok = refusal(&guarded, "build-folder", &build).is_none();
    let folders = [
        ("build-folder", &settings.build_folder),
        ("build-dest", &settings.build_dest),
        ("conformance-tests-dest", &settings.conformance_tests_dest),
    ];
    for (key, path) in folders {
        let resolved = resolve(path);
        let found = refusal(&guarded, key, &resolved).or_else(|| {
            if key == "build-folder" || !build_ok {
                None
            } else if build.starts_with(&resolved) {
                Some((
                    OVERLAPS_BUILD,
                    format!(
                        "`{key}` {} the build folder ({})",
                        if build == resolved { "is" } else { "holds" },
                        build.display()
                    ),
                ))
            } else if resolved.starts_with(&build) {
                Some((
                    OVERLAPS_BUILD,
                    format!("`{key}` is inside the build folder ({})", build.display()),
                ))
            } else {
                None
            }
        });
        let Some((code, message)) = found else {
            continue;
        };
        let (what, default) = role(key);
        let d = place(
            Diagnostic::error(code, message),
            reference,
            from_cli,
            key,
            path,
            &resolved,
        );
        diags.push(d.note(what.to_string()).help(format!(
            "give `{key}` a folder of its own, such as `{default}` beside the spec (the default)"
        )));
    }
    if let Some(base) = &settings.base_folder {
        diags.extend(
            base_problem(settings, &build, build_ok, base)
                .map(|d| place(d, reference, from_cli, "base-folder", base, &resolve(base))),
        );
    }
}

/// Where the value of `key` came from: the flag, the config line, or the default.
fn place(
    d: Diagnostic,
    reference: &ReferenceConfig,
    from_cli: &[&str],
    key: &str,
    path: &Path,
    resolved: &Path,
) -> Diagnostic {
    let label = format!("resolves to {}", resolved.display());
    if from_cli.contains(&key) {
        d.note(format!("--{key} {}: {label}", path.display()))
    } else if let Some(at) = reference.location(key) {
        d.at(at, label)
    } else {
        d.note(format!("the default, {}: {label}", path.display()))
    }
}

/// What is wrong with `base` as the `base-folder`, whose files are copied into the build (and
/// so into every prompt): it must be a folder inside the project's roots (the same roots links
/// and includes are held to), apart from the build folder.
fn base_problem(
    settings: &Settings,
    build: &Path,
    build_ok: bool,
    base: &Path,
) -> Option<Diagnostic> {
    let resolved = resolve(base);
    if !resolved.is_dir() {
        let what = if resolved.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        return Some(
            Diagnostic::error(BAD_BASE, format!("`base-folder` {what}"))
                .help("name the folder whose files the first module's code starts from"),
        );
    }
    if build_ok && (build.starts_with(&resolved) || resolved.starts_with(build)) {
        let how = if build == resolved {
            "is"
        } else if build.starts_with(&resolved) {
            "holds"
        } else {
            "is inside"
        };
        return Some(
            Diagnostic::error(
                OVERLAPS_BUILD,
                format!("`base-folder` {how} the build folder ({})", build.display()),
            )
            .help("the base is copied into the build: give it a folder of its own"),
        );
    }
    let roots = rekindle_spec::roots::Roots::new(
        &rekindle_spec::loader::RealFs,
        &settings.spec_dir,
        &settings.template_dirs,
        &settings.roots,
    );
    if !roots.contains(&resolved) {
        let list: Vec<String> = roots
            .dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Some(
            Diagnostic::error(
                BAD_BASE,
                "`base-folder` is outside the project's roots: its files would go into the build and every prompt",
            )
            .note(format!("the roots are: {}", list.join(", ")))
            .help("move it into the project, or add its folder to `roots` under `[spec]` in rekindle.toml"),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, Overrides};
    use rekindle_diag::SourceDb;

    /// A project in a temporary folder: `proj/app.plain` with `config` as its config.yaml.
    fn project(config: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let proj = d.path().join("proj");
        std::fs::create_dir_all(proj.join("scripts")).unwrap();
        std::fs::write(proj.join("app.plain"), "spec").unwrap();
        std::fs::write(proj.join("scripts/unit.sh"), "exit 0").unwrap();
        std::fs::write(proj.join("config.yaml"), config).unwrap();
        (d, proj)
    }

    fn diags_for(proj: &Path) -> (Vec<Diagnostic>, SourceDb) {
        let mut db = SourceDb::default();
        let mut diags = Vec::new();
        load(
            &proj.join("app.plain"),
            &Overrides::default(),
            &mut db,
            &mut diags,
        );
        (diags, db)
    }

    /// The one error for `config`, with the line it points at.
    fn refused(config: &str) -> (Diagnostic, usize) {
        let (_d, proj) = project(config);
        let (diags, db) = diags_for(&proj);
        assert_eq!(diags.len(), 1, "{config}: {diags:?}");
        let d = diags.into_iter().next().unwrap();
        assert!(d.is_error());
        let line =
            rekindle_diag::diag::position(&db, d.primary.as_ref().expect("a location").span).line;
        (d, line)
    }

    #[test]
    fn the_project_folder_itself_is_refused_however_it_is_spelled() {
        for dest in [".", "./", "./scripts/..", "../proj"] {
            let (d, line) = refused(&format!(
                "copy-build: true\nunittests-script: scripts/unit.sh\nbuild-dest: {dest}\n"
            ));
            assert_eq!(d.code, HOLDS_PROJECT, "{dest}");
            assert!(d.message.contains("`build-dest`"), "{}", d.message);
            assert!(d.message.contains("is the project folder"), "{}", d.message);
            assert_eq!(line, 3, "{dest}");
        }
    }

    #[test]
    fn an_ancestor_of_the_project_is_refused() {
        for dest in ["..", "../", "../.."] {
            let (d, line) = refused(&format!("build-folder: {dest}\n"));
            assert_eq!(d.code, HOLDS_PROJECT);
            assert!(
                d.message
                    .contains("`build-folder` holds the project folder"),
                "{}",
                d.message
            );
            assert_eq!(line, 1);
        }
        let (d, _) = refused("conformance-tests-dest: /\n");
        assert!(d.message.contains("root folder"), "{}", d.message);
    }

    #[test]
    fn a_link_to_the_project_folder_is_refused() {
        let (_d, proj) = project("build-dest: out\n");
        std::os::unix::fs::symlink(&proj, proj.join("out")).unwrap();
        let (diags, _) = diags_for(&proj);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].message.contains("is the project folder"),
            "{}",
            diags[0].message
        );
        // A link one level below that climbs back up is caught too.
        let (_d, proj) = project("build-dest: up/proj/\n");
        std::os::unix::fs::symlink(proj.parent().unwrap(), proj.join("up")).unwrap();
        let (diags, _) = diags_for(&proj);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("is the project folder"));
    }

    #[test]
    fn a_folder_holding_specs_scripts_or_records_is_refused() {
        let (d, _) = refused("unittests-script: scripts/unit.sh\nbuild-dest: scripts\n");
        assert!(
            d.message.contains("is the folder of the unittests-script"),
            "{}",
            d.message
        );
        let (d, _) = refused("build-folder: .rekindle\n");
        assert!(d.message.contains(".rekindle"), "{}", d.message);
        // A template folder holds specs (modules).
        let (_d, proj) = project("template-dir: ../templates\nbuild-dest: ../templates/..\n");
        let (diags, _) = diags_for(&proj);
        assert!(diags.iter().any(|d| d.code == HOLDS_PROJECT), "{diags:?}");
        let (_d, proj) = project("template-dir: ../templates\nbuild-dest: ../templates\n");
        std::fs::create_dir(proj.parent().unwrap().join("templates")).unwrap();
        let (diags, _) = diags_for(&proj);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].message.contains("template folder"),
            "{}",
            diags[0].message
        );
    }

    #[test]
    fn destinations_may_not_overlap_the_build_folder() {
        let (d, _) = refused("build-folder: out\nbuild-dest: out\n");
        assert_eq!(d.code, OVERLAPS_BUILD);
        let (d, _) = refused("build-folder: out/b\nbuild-dest: out\n");
        assert_eq!(d.code, OVERLAPS_BUILD);
        let (d, line) = refused("build-folder: out\nbuild-dest: out/app/code\n");
        assert_eq!(d.code, OVERLAPS_BUILD);
        assert_eq!(line, 2);
    }

    #[test]
    fn ordinary_folders_are_fine() {
        for config in [
            "",
            "build-folder: plain_modules\nbuild-dest: build\ncopy-build: true\n",
            "build-folder: ../elsewhere/build\nbuild-dest: ../elsewhere/dist\n",
            "template-dir: ..\nbuild-dest: build\n",
            "unittests-script: scripts/unit.sh\nbuild-dest: scripts/out\n",
        ] {
            let (_d, proj) = project(config);
            let (diags, _) = diags_for(&proj);
            assert!(diags.is_empty(), "{config}: {diags:?}");
        }
    }

    #[test]
    fn a_command_line_value_is_named_as_such() {
        let (_d, proj) = project("");
        let mut db = SourceDb::default();
        let mut diags = Vec::new();
        let cli = Overrides {
            build_folder: Some(proj.clone()),
            ..Overrides::default()
        };
        let s = load(&proj.join("app.plain"), &cli, &mut db, &mut diags);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].notes.iter().any(|n| n.contains("--build-folder")));
        assert!(problem(&s, "build-folder", &proj.join("..")).is_some());
        assert!(problem(&s, "build-folder", &proj.join("plain_modules")).is_none());
    }

    #[test]
    fn resolve_folds_what_does_not_exist() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().canonicalize().unwrap();
        assert_eq!(resolve(&d.path().join("a/b/../c/./")), real.join("a/c"));
        assert_eq!(resolve(&d.path().join("a/../..")), real.parent().unwrap());
    }
}
