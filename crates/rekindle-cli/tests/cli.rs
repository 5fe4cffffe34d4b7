//! CLI behaviour: exit codes, diagnostics as users see them (snapshots), JSON shapes, and the
//! hostile inputs the parser must answer clearly.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

const GOOD: &str = "***definitions***\n\n- :App: is an app.\n\n***implementation reqs***\n\n- :App: is written in Python.\n\n***functional specs***\n\n- Show :App:.\n\n  ***acceptance tests***\n\n  - :App: prints hello.\n\n- Quit.\n";

fn rekindle(dir: &Path) -> Command {
    let mut c = Command::cargo_bin("rekindle").unwrap();
    c.current_dir(dir).env("NO_COLOR", "1");
    c
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Runs `check FILE` and returns (exit code, stderr).
fn check(dir: &Path, file: &str) -> (i32, String) {
    let out = rekindle(dir).args(["check", file]).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn valid_spec_checks_and_plans() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "app.plain", GOOD);
    let (code, err) = check(d.path(), "app.plain");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("ok: app.plain (1 module, 2 functionalities)"),
        "{err}"
    );
    let out = rekindle(d.path())
        .args(["plan", "app.plain", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &plan["modules"][0]["functionalities"];
    assert_eq!(f[0]["id"], 1);
    assert_eq!(f[0]["text"], "Show :App:.");
    assert_eq!(f[0]["acceptance_tests"][0], ":App: prints hello.");
    assert_eq!(f[1]["text"], "Quit.");
    assert_eq!(f[1]["line"], 17);
}

#[test]
fn encodings_and_line_endings_are_accepted() {
    let d = tempfile::tempdir().unwrap();
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(GOOD.as_bytes());
    write(d.path(), "bom.plain", bom);
    write(d.path(), "crlf.plain", GOOD.replace('\n', "\r\n"));
    write(
        d.path(),
        "tabs.plain",
        GOOD.replace("- Quit.", "-\tQuit.\n\t- with a tab"),
    );
    for f in ["bom.plain", "crlf.plain", "tabs.plain"] {
        let (code, err) = check(d.path(), f);
        assert_eq!(code, 0, "{f}: {err}");
    }
}

#[test]
fn invalid_utf8_is_located() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "bad.plain",
        GOOD.as_bytes()
            .iter()
            .copied()
            .flat_map(|b| if b == b'Q' { vec![0xFF, b'Q'] } else { vec![b] })
            .collect::<Vec<u8>>(),
    );
    let (code, err) = check(d.path(), "bad.plain");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn yaml_bomb_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut y =
        String::from("---\na: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        y.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    y.push_str("---\n");
    y.push_str(GOOD);
    write(d.path(), "bomb.plain", y);
    let (code, err) = check(d.path(), "bomb.plain");
    assert_eq!(code, 1);
    assert!(err.contains("error[E0203]"), "{err}");
    assert!(err.contains("bomb.plain:"), "{err}");
}

#[test]
fn huge_line_and_deep_nesting_get_answers() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "long.plain",
        GOOD.replace("- Quit.", &format!("- Quit {}", "word ".repeat(2_000_000))),
    );
    let (code, err) = check(d.path(), "long.plain");
    assert_eq!(code, 0, "{err}");
    let nested: String = (0..10_000)
        .map(|i| format!("{}- level {i}\n", "  ".repeat(i)))
        .collect();
    write(d.path(), "nested.plain", format!("{GOOD}{nested}"));
    let (code, err) = check(d.path(), "nested.plain");
    assert_eq!(code, 1);
    assert!(err.contains("error[E0104]"), "{err}");
    write(
        d.path(),
        "nested2.plain",
        format!("{GOOD}{}x\n", "- ".repeat(10_000)),
    );
    let (code, err) = check(d.path(), "nested2.plain");
    assert_eq!(code, 1);
    assert!(
        err.contains("error[E0411]") && err.contains("nested2.plain:18:"),
        "{err}"
    );
}

#[test]
fn include_of_itself_is_a_cycle() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "self.plain",
        format!("{GOOD}- Again {{% include \"self.plain\" %}}\n"),
    );
    let (code, err) = check(d.path(), "self.plain");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn several_errors_at_once_with_help() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "many.plain",
        "# Title\n\n***definitions***\n\n- :App: is an app.\n- :App: is another.\n\n***implementation reqs***\n\n- Uses :Ap:.\n\n***functional spec***\n\n- Show [spec](missing.yaml).\n",
    );
    let (code, err) = check(d.path(), "many.plain");
    assert_eq!(code, 1);
    insta::assert_snapshot!(err);
}

#[test]
fn json_diagnostics_carry_locations() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "x.plain",
        GOOD.replace("Show :App:", "Show :Nope:"),
    );
    let out = rekindle(d.path())
        .args(["check", "x.plain", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let diag = &v["files"][0]["diagnostics"][0];
    assert_eq!(diag["code"], "E0504");
    assert_eq!(diag["location"]["file"], "x.plain");
    assert_eq!(diag["location"]["line"], 11);
    assert_eq!(diag["location"]["column"], 8);
}

#[test]
fn usage_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let (code, err) = check(d.path(), "absent.plain");
    assert_eq!(code, 2, "{err}");
    let out = rekindle(d.path()).args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn broken_config_is_located_and_exits_2() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "app.plain", GOOD);
    write(
        d.path(),
        "config.yaml",
        "build-folder: out\nbuild-foldr: x\n",
    );
    let (code, err) = check(d.path(), "app.plain");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("config.yaml:2:1"), "{err}");
    assert!(err.contains("build-foldr"), "{err}");
}

#[test]
fn resource_links_stay_in_the_project() {
    let d = tempfile::tempdir().unwrap();
    let proj = d.path().join("proj");
    std::fs::create_dir(&proj).unwrap();
    write(d.path(), "secret.txt", "key");
    write(&proj, "ui.yaml", "screen: main\n");
    write(&proj, "bin.dat", b"\x00\x01\x02");
    write(
        &proj,
        "app.plain",
        GOOD.replace(
            "- Quit.",
            "- Quit; see [ui](ui.yaml).\n- Leak [s](../secret.txt).\n- Bin [b](bin.dat).\n- Web [w](https://example.com).\n- Spec [p](app.plain).",
        ),
    );
    let (code, err) = check(&proj, "app.plain");
    assert_eq!(code, 1);
    for code in ["E0603", "E0606", "E0601", "E0604"] {
        assert!(
            err.contains(&format!("error[{code}]")),
            "{code} missing: {err}"
        );
    }
    assert!(!err.contains("ui.yaml` does not exist"), "{err}");
}

/// As in Codeplain's published projects: a spec in a git repository whose template (in a template
/// folder) links `../src/ingest.py` beside the spec's folder. Inside the repository it is part of
/// the project; the same layout outside any repository is refused as outside the project.
#[test]
fn a_template_links_the_repository_source_beside_the_spec_folder() {
    for in_repository in [true, false] {
        let d = tempfile::tempdir().unwrap();
        let spec_dir = d.path().join("specs");
        std::fs::create_dir_all(spec_dir.join("template")).unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        write(
            &d.path().join("src"),
            "ingest.py",
            "def ingest():\n    pass\n",
        );
        write(&spec_dir, "config.yaml", "template-dir: template\n");
        write(
            &spec_dir,
            "app.plain",
            "---\nimport:\n  - base\n---\n\n***functional specs***\n\n- Ingest the files.\n",
        );
        write(
            &spec_dir.join("template"),
            "base.plain",
            "***implementation reqs***\n\n- The program extends [the ingest module](../src/ingest.py).\n",
        );
        if in_repository {
            let ok = std::process::Command::new("git")
                .args(["init", "-q"])
                .current_dir(d.path())
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let (code, err) = check(&spec_dir, "app.plain");
        if in_repository {
            assert_eq!(code, 0, "{err}");
        } else {
            assert_eq!(code, 1, "{err}");
            assert!(
                err.contains("error[E0603]")
                    && err.contains("`../src/ingest.py` is outside the project"),
                "{err}"
            );
        }
    }
}

#[test]
fn expand_merges_imports_and_templates() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "part.plain",
        "thing\n  - detail {{ v | code_variable }}\n",
    );
    write(
        d.path(),
        "app.plain",
        "---\nimport:\n  - python-console-app-template\n---\n\n***implementation reqs***\n\n- :MainExecutableFile: is app.py.\n\n***functional specs***\n\n- Do {% include \"part.plain\", v: \"x\" %}\n> - commented {% include \"nope.plain\" %}\n",
    );
    let out = rekindle(d.path())
        .args(["expand", "app.plain"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!(text);
}

/// The outputs of `check` and `plan` (text and JSON) on the examples and fixtures must not change
/// by accident.
#[test]
fn golden_check_and_plan_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = [
        ("../../examples/hello-world", "hello-world.plain"),
        ("../../examples/word-count", "word-count.plain"),
        ("tests/fixtures/golden", "app.plain"),
        ("tests/fixtures/golden", "broken.plain"),
    ];
    let commands: [&[&str]; 4] = [
        &["check"],
        &["check", "--format", "json"],
        &["plan"],
        &["plan", "--format", "json"],
    ];
    let mut all = String::new();
    for (dir, file) in cases {
        for args in commands {
            let out = rekindle(&root.join(dir))
                .args(args)
                .arg(file)
                .output()
                .unwrap();
            all.push_str(&format!(
                "=== {} {file}\nexit {}\n--- stdout\n{}--- stderr\n{}\n",
                args.join(" "),
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    insta::assert_snapshot!(all);
}

/// An include that leaves the project's roots (here a temporary folder in no git repository) is
/// refused at its line, and nothing of the refused file reaches the output: not /etc/passwd,
/// not a file in a sibling folder.
#[test]
fn includes_outside_the_project_are_refused_unread() {
    let d = tempfile::tempdir().unwrap();
    let proj = d.path().join("proj");
    let other = d.path().join("other");
    std::fs::create_dir_all(&proj).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let sibling =
        "- root:SIBLING-SECRET is a line of someone else's file.\n- Another SIBLING-SECRET item.\n";
    write(&other, "secret.plain", sibling);
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for (target, refused) in [
        ("../../../../../../etc/passwd", passwd.as_str()),
        ("../other/secret.plain", sibling),
    ] {
        let include = format!("- Quit {{% include \"{target}\" %}}");
        write(&proj, "app.plain", GOOD.replace("- Quit.", &include));
        for format in ["text", "json"] {
            let out = rekindle(&proj)
                .args(["check", "app.plain", "--format", format])
                .output()
                .unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(1), "{target}: {all}");
            if format == "text" {
                assert!(all.contains("error[E0313]"), "{target}: {all}");
                assert!(all.contains("app.plain:17:"), "{target}: {all}");
            } else {
                assert!(all.contains("\"code\":\"E0313\""), "{target}: {all}");
                assert!(all.contains("\"line\":17"), "{target}: {all}");
            }
            assert!(!all.contains("root:"), "{target}: {all}");
            assert!(!all.contains("SIBLING-SECRET"), "{target}: {all}");
            for line in refused.lines().filter(|l| l.trim().len() > 3) {
                assert!(!all.contains(line), "{target}: `{line}` leaked: {all}");
            }
        }
    }
}
