//! The real thing: the embedded model renders `examples/hello-world` end to end, its conformance
//! tests pass, the result runs, rendering again makes no model call, and `render --locked` in
//! another folder without the model rebuilds the same trees; and `init --from-code` drafts,
//! renders and scores a one-function program. Needs the `local`
//! feature and a fetched model (`rekindle model fetch`; the README's test command and CI fetch it
//! first). Without the model the tests fail; they never skip.
#![cfg(feature = "local")]

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn model() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("REKINDLE_MODEL_PATH") {
        return Some(PathBuf::from(p));
    }
    let dir = rekindle_llm::models::default_dir();
    ["default", "small"]
        .iter()
        .filter_map(|n| rekindle_llm::models::spec(n))
        .map(|s| rekindle_llm::models::path_of(s, &dir))
        .find(|p| p.is_file())
}

/// The model; a missing one fails the test.
fn the_model() -> PathBuf {
    model().expect(
        "no embedded model: run `rekindle model fetch` (or set REKINDLE_MODEL_PATH) before these tests",
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if name == "plain_modules" || name == "build" {
            continue;
        }
        if p.is_dir() {
            copy_dir(&p, &to.join(&name));
        } else {
            std::fs::copy(&p, to.join(&name)).unwrap();
        }
    }
}

/// Runs `cmd` (a rekindle command with `--format json`): (exit code, events, stderr).
fn events_of(cmd: &mut Command) -> (i32, Vec<Value>, String) {
    let out = cmd.output().unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        events,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn render(dir: &Path, model: &Path) -> (i32, Vec<Value>, String) {
    events_of(
        Command::cargo_bin("rekindle")
            .unwrap()
            .current_dir(dir)
            .args([
                "render",
                "hello-world.plain",
                "--yes",
                "--format",
                "json",
                "--provider",
                "local",
                "--model-path",
            ])
            .arg(model),
    )
}

/// The last `summary` event (the default when there is none, so a failed assert can print it).
fn summary(events: &[Value]) -> Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .cloned()
        .unwrap_or_default()
}

fn conformance_passed(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e["event"] == "script" && e["kind"] == "conformance" && e["outcome"] == "passed")
}

#[test]
fn embedded_model_renders_hello_world() {
    let model = the_model();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(
        &examples.join("hello-world"),
        &tmp.path().join("hello-world"),
    );
    copy_dir(&examples.join("scripts"), &tmp.path().join("scripts"));
    let dir = tmp.path().join("hello-world");

    let (code, events, err) = render(&dir, &model);
    let first = summary(&events);
    assert_eq!(
        code,
        0,
        "render failed: {err}\n{}",
        events
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(first["rendered"], 1, "{first}");
    assert!(conformance_passed(&events));

    let out = std::process::Command::new("python3")
        .arg("hello_world.py")
        .current_dir(dir.join("build"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        "hello, world",
        "the rendered program's output"
    );

    let (code, events, err) = render(&dir, &model);
    assert_eq!(code, 0, "{err}");
    let again = summary(&events);
    assert_eq!(
        (again["model_calls"].as_u64(), again["reused"].as_u64()),
        (Some(0), Some(1)),
        "{again}"
    );

    // The project as its owner commits it (specs, config, scripts, rekindle.lock, .rekindle),
    // in another folder a second later, on a machine without the model: `--locked` rebuilds the
    // same trees and runs their tests.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let other = tempfile::tempdir().unwrap();
    let copy = other.path().join("elsewhere/hello-world");
    copy_dir(&dir, &copy);
    copy_dir(
        &tmp.path().join("scripts"),
        &other.path().join("elsewhere/scripts"),
    );
    let home = other.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let gone = other
        .path()
        .join("no-models")
        .join(model.file_name().unwrap());
    let (code, events, err) = events_of(
        Command::cargo_bin("rekindle")
            .unwrap()
            .current_dir(&copy)
            .env("HOME", &home)
            .env_remove("REKINDLE_MODEL_PATH")
            .args([
                "render",
                "hello-world.plain",
                "--locked",
                "--format",
                "json",
            ])
            .args(["--provider", "local", "--model-path"])
            .arg(&gone),
    );
    assert_eq!(code, 0, "{err}");
    let locked = summary(&events);
    assert_eq!(
        (locked["model_calls"].as_u64(), locked["restored"].as_u64()),
        (Some(0), Some(1)),
        "{locked}"
    );
    assert!(conformance_passed(&events));
    let tree = |d: &Path, repo: &str| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "HEAD^{tree}"])
            .current_dir(d.join("plain_modules/hello-world").join(repo))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    for repo in ["code", "tests"] {
        assert_eq!(tree(&copy, repo), tree(&dir, repo), "{repo}");
        assert_eq!(tree(&copy, repo).len(), 40);
    }
}

/// `init --from-code` with the embedded model on a one-function program: the model says what
/// the function does and proposes calls; the spec's acceptance tests hold what the program
/// itself answers to them (checked here with Python, independently of rekindle); the spec
/// checks, renders, and the program's own tests are run against the result and counted.
#[test]
fn embedded_model_drafts_a_spec_from_a_small_program() {
    let model = the_model();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("mathx.py"),
        "def clamp(x, low, high):\n    \"\"\"x limited to the range low..high.\"\"\"\n    return max(low, min(x, high))\n",
    )
    .unwrap();
    std::fs::write(
        src.join("test_mathx.py"),
        "import unittest\nfrom mathx import clamp\n\n\nclass T(unittest.TestCase):\n    def test_inside(self):\n        self.assertEqual(clamp(5, 0, 10), 5)\n\n    def test_below(self):\n        self.assertEqual(clamp(-3, 0, 10), 0)\n\n    def test_above(self):\n        self.assertEqual(clamp(12, 0, 10), 10)\n",
    )
    .unwrap();
    let out = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(tmp.path())
        .args([
            "init",
            "proj",
            "--from-code",
            "src",
            "--yes",
            "--format",
            "json",
            "--provider",
            "local",
            "--model-path",
        ])
        .arg(&model)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    let spec = std::fs::read_to_string(tmp.path().join("proj/proj.plain")).unwrap();
    assert!(
        spec.contains("- :Mathx: should define the function `clamp(x, low, high)`."),
        "{spec}\n{stderr}"
    );
    // Every acceptance test `CALL` returns `R`: Python's own answer to CALL is R.
    let mut checked = 0;
    for line in spec.lines() {
        let Some(rest) = line.trim().strip_prefix("- `") else {
            continue;
        };
        let Some((call, result)) = rest.split_once("` returns `") else {
            continue;
        };
        let result = result.trim_end_matches("`.");
        let py = std::process::Command::new("python3")
            .args([
                "-c",
                &format!("from mathx import clamp; print(repr({call}))"),
            ])
            .current_dir(&src)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&py.stdout).trim(),
            result,
            "{call} in {spec}"
        );
        checked += 1;
    }
    assert!(
        checked >= 1,
        "no acceptance test from a call: {spec}\n{stderr}"
    );
    let check = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(tmp.path().join("proj"))
        .args(["check", "proj.plain"])
        .output()
        .unwrap();
    assert!(check.status.success(), "{spec}");
    // The render finished and the program's three tests ran against it.
    assert_eq!(said["tests"].as_u64(), Some(3), "{said}\n{stderr}");
    eprintln!(
        "from-code: {} of 3 of the program's tests pass",
        said["passed"]
    );
    let verify = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(tmp.path().join("proj"))
        .args(["journal", "verify", "--spec", "proj.plain"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
