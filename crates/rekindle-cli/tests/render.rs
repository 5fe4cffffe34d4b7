//! `rekindle render` end to end against a scripted model on 127.0.0.1 that plays a (very small)
//! programmer: it writes `main.sh`, one `echo` per functionality, and conformance tests that
//! check the output. Test scripts are real bash scripts; the build folders are real git
//! repositories.

use assert_cmd::Command;
use rekindle_testkit::{openai_reply, Reply, Seen, Server};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const UNIT: &str = r#"#!/usr/bin/env bash
cd "$1" || exit 69
[ -f unit_env_broken ] && { echo "no interpreter"; exit 69; }
for t in unit_*.sh; do [ -e "$t" ] || continue; bash "$t" || { echo "unit test $t failed"; exit 1; }; done
exit 0
"#;

const CONFORMANCE: &str = r#"#!/usr/bin/env bash
code="$1"; tests="$2"
cd "$code" || exit 69
n=0
for t in "$tests"/*.sh; do [ -e "$t" ] || continue; n=$((n+1)); bash "$t" || { echo "conformance test $t failed"; exit 1; }; done
[ "$n" -gt 0 ] || { echo "no tests in $tests"; exit 1; }
exit 0
"#;

/// How the fake model behaves; tests adjust it between runs.
#[derive(Default, Clone)]
struct Behaviour {
    /// Words whose first implementation is broken (an `exit 1` unit test) until a fix.
    broken_unit: Vec<String>,
    /// Words whose unit tests are never fixed.
    unfixable: Vec<String>,
    /// Words whose first implementation prints the wrong thing (fixed as code).
    wrong_code: Vec<String>,
    /// Words whose first conformance test is wrong (fixed as test).
    wrong_test: Vec<String>,
    /// Replies (in order) that are not file blocks before the real one.
    garbage: usize,
    /// Replies that write outside the build folder before the real one.
    escapes: usize,
    /// Replies whose blocks hold only the format's placeholder before the real one.
    placeholders: usize,
    /// Map a word to the word actually printed (for early cutoff: two spellings, one output).
    alias: Vec<(String, String)>,
}

fn word_of(prompt: &str) -> String {
    let after = prompt
        .split("# The functionality to implement now")
        .nth(1)
        .unwrap_or("");
    let line = after.trim_start().lines().next().unwrap_or("");
    line.trim_start_matches("Print")
        .trim()
        .trim_end_matches('.')
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

fn current_main(prompt: &str) -> String {
    prompt
        .split("--- FILE: main.sh\n")
        .nth(1)
        .and_then(|r| r.split("--- END FILE").next())
        .unwrap_or("#!/usr/bin/env bash\n")
        .to_string()
}

fn blocks(files: &[(&str, String)]) -> String {
    files
        .iter()
        .map(|(p, c)| format!("--- FILE: {p}\n{c}--- END FILE\n"))
        .collect()
}

fn respond(b: &Arc<Mutex<Behaviour>>, s: &Seen) -> Reply {
    // A follow-up asking for the right format carries its context in the first message.
    let prompt = if s.last_user().contains("Your reply could not be used")
        || s.last_user().starts_with("That reply holds no code")
    {
        s.first_user()
    } else {
        s.last_user()
    };
    let mut b = b.lock().unwrap();
    if b.garbage > 0 {
        b.garbage -= 1;
        return openai_reply("Sure! I would write main.sh like this: echo hi");
    }
    if b.placeholders > 0 {
        b.placeholders -= 1;
        return openai_reply(
            "--- FILE: main.sh\n<the whole file>\n--- END FILE\n--- FILE: test_main.sh\n<the whole file>\n--- END FILE\n",
        );
    }
    if b.escapes > 0 {
        b.escapes -= 1;
        return openai_reply("--- FILE: ../escaped.sh\necho gotcha\n--- END FILE\n");
    }
    let mut word = word_of(&prompt);
    for (from, to) in &b.alias {
        if word == *from {
            word = to.clone();
        }
    }
    let printed = |w: &str| format!("echo {w}\n");
    if prompt.contains("# Unit test failure") {
        if b.unfixable.contains(&word) {
            return openai_reply(&blocks(&[(&format!("unit_{word}.sh"), "exit 1\n".into())]));
        }
        b.broken_unit.retain(|w| *w != word);
        return openai_reply(&blocks(&[(&format!("unit_{word}.sh"), "exit 0\n".into())]));
    }
    if prompt.contains("# Conformance test failure") {
        if b.wrong_test.contains(&word) {
            b.wrong_test.retain(|w| *w != word);
            let t = format!("bash main.sh | grep -qx {word}\n");
            return openai_reply(&blocks(&[("conformance_tests/check.sh", t)]));
        }
        b.wrong_code.retain(|w| *w != word);
        let main =
            current_main(&prompt).replace(&printed(&format!("wrong-{word}")), &printed(&word));
        return openai_reply(&blocks(&[("main.sh", main)]));
    }
    if prompt.contains("Write conformance tests") {
        let expect = if b.wrong_test.contains(&word) {
            format!("not-{word}")
        } else {
            word.clone()
        };
        let t = format!("bash main.sh | grep -qx {expect}\n");
        return openai_reply(&blocks(&[("check.sh", t)]));
    }
    // Implement.
    let mut main = current_main(&prompt);
    let out = if b.wrong_code.contains(&word) {
        format!("wrong-{word}")
    } else {
        word.clone()
    };
    main.push_str(&printed(&out));
    let unit = if b.broken_unit.contains(&word) || b.unfixable.contains(&word) {
        "exit 1\n"
    } else {
        "exit 0\n"
    };
    openai_reply(&blocks(&[
        ("main.sh", main),
        (&format!("unit_{word}.sh"), unit.to_string()),
    ]))
}

struct Project {
    dir: tempfile::TempDir,
    server: Server,
    _rt: tokio::runtime::Runtime,
    behaviour: Arc<Mutex<Behaviour>>,
}

fn spec(words: &[&str]) -> String {
    let mut s = String::from("***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n");
    for w in words {
        s.push_str(&format!("- Print {w}.\n\n"));
    }
    s
}

impl Project {
    fn new(words: &[&str], behaviour: Behaviour) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.plain"), spec(words)).unwrap();
        std::fs::write(dir.path().join("unit.sh"), UNIT).unwrap();
        std::fs::write(dir.path().join("conformance.sh"), CONFORMANCE).unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            "unittests-script: unit.sh\nconformance-tests-script: conformance.sh\ntest-script-timeout: 5\n",
        )
        .unwrap();
        let (server, rt) = Server::start_blocking(vec![]);
        let behaviour = Arc::new(Mutex::new(behaviour));
        let b = behaviour.clone();
        server.set_responder(move |s| respond(&b, s));
        Project {
            dir,
            server,
            _rt: rt,
            behaviour,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn code(&self) -> PathBuf {
        self.path().join("plain_modules/app/code")
    }

    /// `rekindle COMMAND app.plain` in the project, against its scripted model (and with no key
    /// in the environment).
    fn command(&self, command: &str) -> Command {
        let url = format!("{}/v1", self.server.url());
        let mut c = Command::cargo_bin("rekindle").unwrap();
        c.current_dir(self.path())
            .env_remove("OPENAI_API_KEY")
            .args([command, "app.plain", "--provider", "openai", "--base-url"])
            .arg(url)
            .args(["--model", "fake"]);
        c
    }

    /// `rekindle render` with `extra` (JSON events unless `extra` names a format):
    /// (exit code, events, stderr).
    fn render(&self, extra: &[&str]) -> (i32, Vec<Value>, String) {
        let out = self
            .command("render")
            .args(if extra.contains(&"--format") {
                &[][..]
            } else {
                &["--format", "json"][..]
            })
            .args(extra)
            .output()
            .unwrap();
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

    /// `rekindle COMMAND app.plain` with `extra`: (exit code, stdout, stderr).
    fn run(&self, command: &str, extra: &[&str]) -> (i32, String, String) {
        let out = self.command(command).args(extra).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn calls(&self) -> usize {
        self.server.seen().len()
    }
}

fn summary(events: &[Value]) -> &Value {
    events
        .iter()
        .rev()
        .find(|e| e["event"] == "summary")
        .expect("a summary event")
}

fn output_of(code: &Path) -> String {
    let out = std::process::Command::new("bash")
        .arg("main.sh")
        .current_dir(code)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn renders_then_reuses_everything() {
    let p = Project::new(&["hello", "world", "again"], Behaviour::default());
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}\n{events:?}");
    let s = summary(&events);
    assert_eq!(
        (
            s["rendered"].as_u64(),
            s["reused"].as_u64(),
            s["model_calls"].as_u64()
        ),
        (Some(3), Some(0), Some(6)),
        "{s}"
    );
    for k in [
        "rendered",
        "reused",
        "model_calls",
        "cache_hits",
        "tokens_in",
        "tokens_out",
        "cost",
        "seconds",
    ] {
        assert!(s.get(k).is_some(), "summary lacks {k}");
    }
    assert_eq!(output_of(&p.code()), "hello\nworld\nagain\n");
    let log = git(&p.code(), &["log", "--format=%(trailers:key=Rekindle-Functionality,valueonly)%x00%(trailers:key=Rekindle-Module,valueonly)"]);
    assert_eq!(log.matches("Rekindle").count(), 0);
    assert!(log.contains("3\n\u{0}app"), "{log}");
    let trailers = git(&p.code(), &["log", "-1", "--format=%B"]);
    for t in [
        "Rekindle-Module: app",
        "Rekindle-Functionality: 3",
        "Rekindle-Render-Key: ",
        "Rekindle-Spec-Hash: ",
        "Rekindle-Render-Id: ",
        "Rekindle-Tests-Commit: ",
    ] {
        assert!(trailers.contains(t), "missing {t} in {trailers}");
    }
    let before = p.calls();
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (
            s["rendered"].as_u64(),
            s["reused"].as_u64(),
            s["model_calls"].as_u64()
        ),
        (Some(0), Some(3), Some(0))
    );
    assert_eq!(
        p.calls(),
        before,
        "a no-change render must not talk to the model"
    );
}

#[test]
fn edits_resume_at_the_edited_functionality_with_early_cutoff() {
    let p = Project::new(&["one", "two", "three"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    // Whitespace and comments change nothing.
    let text = std::fs::read_to_string(p.path().join("app.plain")).unwrap();
    let reflowed = text.replace("- Print two.", "> a comment\n- Print   two.");
    std::fs::write(p.path().join("app.plain"), &reflowed).unwrap();
    let before = p.calls();
    let (code, events, _) = p.render(&[]);
    assert_eq!(code, 0);
    assert_eq!(summary(&events)["reused"], 3);
    assert_eq!(p.calls(), before);
    // A real edit of 2 whose result is byte-identical: 2 re-rendered, 3 reused (early cutoff).
    p.behaviour
        .lock()
        .unwrap()
        .alias
        .push(("deux".into(), "two".into()));
    std::fs::write(
        p.path().join("app.plain"),
        reflowed.replace("Print   two.", "Print deux."),
    )
    .unwrap();
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(1), Some(2)),
        "{s}"
    );
    let statuses: Vec<(u64, String)> = events
        .iter()
        .filter(|e| e["event"] == "functionality")
        .map(|e| {
            (
                e["id"].as_u64().unwrap(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "reused".into()),
            (2, "rendering".into()),
            (3, "reused".into())
        ]
    );
    assert_eq!(output_of(&p.code()), "one\ntwo\nthree\n");
    // A real edit with a different result: 2 and 3 are re-rendered, 1 reused.
    std::fs::write(p.path().join("app.plain"), spec(&["one", "zwei", "three"])).unwrap();
    let (code, events, _) = p.render(&[]);
    assert_eq!(code, 0);
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert_eq!(output_of(&p.code()), "one\nzwei\nthree\n");
    assert_eq!(git(&p.code(), &["status", "--porcelain"]), "");
}

#[test]
fn a_unit_test_fix_that_succeeds() {
    let p = Project::new(
        &["alpha"],
        Behaviour {
            broken_unit: vec!["alpha".into()],
            ..Behaviour::default()
        },
    );
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(events
        .iter()
        .any(|e| e["event"] == "phase" && e["phase"] == "fix_unit_tests"));
    assert_eq!(summary(&events)["model_calls"], 3);
}

/// Two functionalities, the second of which no fix or restart makes pass.
fn second_unfixable() -> Project {
    Project::new(
        &["good", "bad"],
        Behaviour {
            unfixable: vec!["bad".into()],
            ..Behaviour::default()
        },
    )
}

/// The reason of the render's `failed` event.
fn failed_reason(events: &[Value]) -> &str {
    let failed = events
        .iter()
        .find(|e| e["event"] == "failed")
        .expect("a failed event");
    failed["reason"].as_str().expect("a reason")
}

/// The model calls the summary counts, cache hits included.
fn calls_asked(events: &[Value]) -> u64 {
    let s = summary(events);
    s["model_calls"].as_u64().unwrap() + s["cache_hits"].as_u64().unwrap()
}

#[test]
fn fixes_that_run_out_fail_clearly() {
    let p = second_unfixable();
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 1, "{err}");
    let reason = failed_reason(&events);
    assert!(
        reason.contains("functionality 2 of module app failed: its unit tests still fail (exit 1)"),
        "{reason}"
    );
    assert!(
        reason.ends_with("(the last of 5 attempts; 6 of its 7 model calls made, too few left for another attempt)"),
        "{reason}"
    );
    // 2 (implement + tests for 1) + for 2: implement and 1 fix, the told restart's implement,
    // then three sampled ones of implement only: 6 of its 7 calls, one too few for another.
    assert_eq!(calls_asked(&events), 2 + 2 + 1 + 3);
    // Functionality 1 stays committed; the build is clean.
    assert_eq!(output_of(&p.code()), "good\n");
    assert_eq!(git(&p.code(), &["status", "--porcelain"]), "");
    // The text report names the functionality and shows the last test output.
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error: functionality 2 of module app failed"),
        "{err}"
    );
    assert!(err.contains("unit test unit_bad.sh failed"), "{err}");
}

/// `--call-budget` sets how many model calls a functionality may make: with 4, the failing one
/// gets its first attempt (implement, fix) and the told restart, and no sample.
#[test]
fn the_call_budget_flag_ends_a_failing_functionality_sooner() {
    let p = second_unfixable();
    let (code, events, err) = p.render(&["--call-budget", "4"]);
    assert_eq!(code, 1, "{err}");
    let reason = failed_reason(&events);
    assert!(
        reason.ends_with("(the last of 2 attempts; 3 of its 4 model calls made, too few left for another attempt)"),
        "{reason}"
    );
    assert_eq!(calls_asked(&events), 2 + 3);
    let (code, _, err) = p.render(&["--call-budget", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--call-budget"), "{err}");
}

#[test]
fn conformance_failures_fixed_in_code_and_in_tests() {
    let p = Project::new(
        &["first", "second"],
        Behaviour {
            wrong_code: vec!["first".into()],
            wrong_test: vec!["second".into()],
            ..Behaviour::default()
        },
    );
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    let fixes = events
        .iter()
        .filter(|e| e["event"] == "phase" && e["phase"] == "fix_conformance")
        .count();
    assert_eq!(fixes, 2);
    assert_eq!(output_of(&p.code()), "first\nsecond\n");
    let test2 =
        std::fs::read_to_string(p.path().join("plain_modules/app/tests/f02/check.sh")).unwrap();
    assert!(test2.contains("grep -qx second"), "{test2}");
}

#[test]
fn exit_69_stops_with_the_environment_error() {
    let p = Project::new(&["x"], Behaviour::default());
    std::fs::create_dir_all(p.code()).unwrap();
    std::fs::write(
        p.path().join("unit.sh"),
        UNIT.replace("[ -f unit_env_broken ]", "true"),
    )
    .unwrap();
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exited 69"), "{err}");
    assert!(err.contains("no interpreter"), "{err}");
}

#[test]
fn a_hanging_script_times_out() {
    let p = Project::new(&["slow"], Behaviour::default());
    std::fs::write(p.path().join("unit.sh"), "#!/usr/bin/env bash\nsleep 600\n").unwrap();
    std::fs::write(
        p.path().join("config.yaml"),
        "unittests-script: unit.sh\ntest-script-timeout: 1\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (code, events, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("exit 124"), "{err}");
    let _ = events;
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[test]
fn malformed_replies_get_one_corrective_retry() {
    let p = Project::new(
        &["fine"],
        Behaviour {
            garbage: 1,
            ..Behaviour::default()
        },
    );
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&events)["model_calls"], 3);
    let retry = &p.server.seen()[1];
    assert!(
        retry.last_user().contains("Your reply could not be used"),
        "{}",
        retry.last_user()
    );
    // Unusable again after the retry: the attempt ends, and the next one asks the first
    // question afresh, sampled (asked greedily again, a small model repeats its reply).
    let p = Project::new(
        &["fine"],
        Behaviour {
            garbage: 2,
            ..Behaviour::default()
        },
    );
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&events)["model_calls"], 4);
    let seen = p.server.seen();
    let (first, restart) = (seen[0].json(), seen[2].json());
    assert_eq!(
        restart["messages"], first["messages"],
        "the first prompt, as it was"
    );
    assert_eq!(first["temperature"].as_f64(), Some(0.0));
    let t = restart["temperature"].as_f64().unwrap_or(0.0);
    assert!(t > 0.5, "sampled: {restart}");
    assert!(restart["seed"].is_u64(), "seeded: {restart}");
    // Never usable: the attempts end when too few calls are left for another, and the render
    // fails saying why.
    let p = Project::new(
        &["fine"],
        Behaviour {
            garbage: usize::MAX,
            ..Behaviour::default()
        },
    );
    let (code, events, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("could not be used: the reply holds no file block"),
        "{err}"
    );
    assert!(err.contains("the last of 3 attempts"), "{err}");
    assert_eq!(p.server.seen().len(), 6, "{events:?}");
}

/// A reply that gives the format's placeholder for its files is asked, in the same
/// conversation, for the code of its program file (not its test), without the format (and its
/// placeholder) shown again.
#[test]
fn a_reply_of_placeholders_is_asked_for_the_code() {
    let p = Project::new(
        &["fine"],
        Behaviour {
            placeholders: 1,
            ..Behaviour::default()
        },
    );
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&events)["model_calls"], 3);
    let seen = p.server.seen();
    let ask = seen[1].last_user();
    assert!(ask.starts_with("That reply holds no code"), "{ask}");
    assert!(ask.contains("complete code of main.sh,"), "{ask}");
    assert!(!ask.contains("test_main.sh"), "{ask}");
    assert!(!ask.contains("<the whole file>"), "{ask}");
    let (first, again) = (seen[0].json(), seen[1].json());
    let n = first["messages"].as_array().unwrap().len();
    assert_eq!(
        again["messages"].as_array().unwrap()[..n],
        first["messages"].as_array().unwrap()[..],
        "the same conversation"
    );
    assert_eq!(again["temperature"].as_f64(), Some(0.0));
    assert_eq!(
        std::fs::read_to_string(p.path().join("plain_modules/app/code/main.sh")).unwrap(),
        "#!/usr/bin/env bash\necho fine\n"
    );
}

#[test]
fn replies_cannot_write_outside_the_build_folder() {
    let p = Project::new(
        &["safe"],
        Behaviour {
            escapes: usize::MAX,
            ..Behaviour::default()
        },
    );
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`../escaped.sh`"), "{err}");
    for dir in [
        p.path().to_path_buf(),
        p.path().join("plain_modules"),
        p.path().join("plain_modules/app"),
    ] {
        assert!(!dir.join("escaped.sh").exists());
    }
}

#[test]
fn interrupted_render_resumes() {
    let p = Project::new(&["a", "b", "c"], Behaviour::default());
    // Kill rekindle while functionality 2's conformance tests run. The script sits in the
    // sandbox and sees nothing of the project, so the signal to hang comes in an allow-listed
    // variable (`LC_*`), given to the first render only (the script, part of every render key,
    // stays the same), and the hanging process says it started through its command line.
    let tag = format!("rekindle-hang-{}", std::process::id());
    std::fs::write(
        p.path().join("conformance.sh"),
        CONFORMANCE.replace(
            "code=\"$1\"; tests=\"$2\"",
            "code=\"$1\"; tests=\"$2\"\nif [ -n \"${LC_REKINDLE_TEST_HANG:-}\" ]; then case \"$tests\" in */f02) (exec -a \"$LC_REKINDLE_TEST_HANG\" sleep 600);; esac; fi",
        ),
    )
    .unwrap();
    let url = format!("{}/v1", p.server.url());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rekindle"))
        .current_dir(p.path())
        .env("LC_REKINDLE_TEST_HANG", &tag)
        .args([
            "render",
            "app.plain",
            "--format",
            "json",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "fake",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let hanging = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).starts_with(&tag))
        })
    };
    let t = std::time::Instant::now();
    while !hanging() && t.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        hanging(),
        "the render never reached functionality 2's tests"
    );
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // The sandbox dies with rekindle, and the script with it.
    let t = std::time::Instant::now();
    while hanging() && t.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!hanging(), "the script outlived rekindle");
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    assert!(events.iter().any(|e| e["event"] == "warning"
        && e["message"]
            .as_str()
            .unwrap()
            .contains("interrupted render")));
    assert_eq!(output_of(&p.code()), "a\nb\nc\n");
}

#[test]
fn hand_edits_are_refused_then_saved_with_force() {
    let p = Project::new(&["keep"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    std::fs::write(p.code().join("main.sh"), "echo edited by hand\n").unwrap();
    std::fs::write(p.path().join("app.plain"), spec(&["keep", "more"])).unwrap();
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("changed by hand") && err.contains("main.sh"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(p.code().join("main.sh")).unwrap(),
        "echo edited by hand\n"
    );
    let (code, events, err) = p.render(&["--force"]);
    assert_eq!(code, 0, "{err}");
    let warning = events.iter().find(|e| e["event"] == "warning").unwrap();
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains(".rekindle/patches/"),
        "{warning}"
    );
    let patches: Vec<_> = std::fs::read_dir(p.path().join(".rekindle/patches"))
        .unwrap()
        .collect();
    assert_eq!(patches.len(), 1);
    let patch = std::fs::read_to_string(patches[0].as_ref().unwrap().path()).unwrap();
    assert!(patch.contains("+echo edited by hand"), "{patch}");
}

#[test]
fn offline_render_replays_from_the_cache() {
    let p = Project::new(&["cached"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    std::fs::remove_dir_all(p.path().join("plain_modules")).unwrap();
    let before = p.calls();
    let (code, events, err) = p.render(&["--offline"]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (s["model_calls"].as_u64(), s["cache_hits"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(p.calls(), before);
}

#[test]
fn from_and_range_choose_what_to_render() {
    let p = Project::new(&["r1", "r2", "r3", "r4"], Behaviour::default());
    // --range renders only what it names (and what it needs before it).
    let (code, events, err) = p.render(&["--range", "1..2"]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    assert_eq!(output_of(&p.code()), "r1\nr2\n");
    // The rest, normally.
    let (code, events, _) = p.render(&[]);
    assert_eq!(code, 0);
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(2), Some(2))
    );
    // --from re-renders from there on, even though nothing changed (from the cache).
    let (code, events, _) = p.render(&["--from", "3"]);
    assert_eq!(code, 0);
    let s = summary(&events);
    assert_eq!(
        (
            s["rendered"].as_u64(),
            s["reused"].as_u64(),
            s["model_calls"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{s}"
    );
    // plain2code's spellings mean the same: --render-range A,B and --render-from N.
    // (2 and 3 rendered again; 1 and 4, unchanged, reused.)
    let (code, events, err) = p.render(&["--render-range", "2,3"]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
    let rendered: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "functionality" && e["status"] == "rendering")
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(rendered, [2, 3]);
    let (code, events, _) = p.render(&["--render-from", "4"]);
    assert_eq!(code, 0);
    let s = summary(&events);
    assert_eq!(
        (s["rendered"].as_u64(), s["reused"].as_u64()),
        (Some(1), Some(3)),
        "{s}"
    );
    // --force-render: everything again, though nothing changed (the replies from the cache).
    let (code, events, _) = p.render(&["--force-render"]);
    assert_eq!(code, 0);
    let s = summary(&events);
    assert_eq!(
        (
            s["rendered"].as_u64(),
            s["reused"].as_u64(),
            s["model_calls"].as_u64()
        ),
        (Some(4), Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(output_of(&p.code()), "r1\nr2\nr3\nr4\n");
    // Bad values are usage errors.
    assert_eq!(p.render(&["--render-from", "9"]).0, 2);
    assert_eq!(p.render(&["--from", "9"]).0, 2);
    assert_eq!(p.render(&["--range", "3..2"]).0, 2);
    assert_eq!(p.render(&["--from", "2", "--range", "1..2"]).0, 2);
}

/// plain2code reads every flag from config.yaml too (a key per flag); so does rekindle:
/// `render-range`, `render-from`, `force-render`, `dry-run`, `full-plain`, `log-to-file` and
/// `log-file-name` mean what the flags mean, the command line wins, and the keys rekindle
/// cannot honour are named in a warning with what to use instead.
#[test]
fn plain2codes_keys_in_config_yaml_mean_what_its_flags_mean() {
    let p = Project::new(&["k1", "k2", "k3", "k4"], Behaviour::default());
    let base = std::fs::read_to_string(p.path().join("config.yaml")).unwrap();
    let config = |extra: &str| {
        std::fs::write(p.path().join("config.yaml"), format!("{base}{extra}")).unwrap();
    };
    assert_eq!(p.render(&[]).0, 0);
    let rendered = |events: &[Value]| -> Vec<u64> {
        events
            .iter()
            .filter(|e| e["event"] == "functionality" && e["status"] == "rendering")
            .filter_map(|e| e["id"].as_u64())
            .collect()
    };
    for (extra, flags, ids) in [
        ("render-range: 2,3\n", &[][..], &[2u64, 3][..]),
        ("render-range: 3\n", &[], &[3]),
        ("render_from: 4\n", &[], &[4]),
        ("force-render: true\n", &[], &[1, 2, 3, 4]),
        // The command line wins over the key.
        ("render-range: 2,3\n", &["--render-from", "4"], &[4]),
    ] {
        config(extra);
        let (code, events, err) = p.render(flags);
        assert_eq!(code, 0, "{extra}: {err}");
        assert_eq!(rendered(&events), ids, "{extra} {flags:?}");
    }
    config("render-range: 1,2\nrender-from: 3\n");
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("config.yaml sets both render-range and render-from"),
        "{err}"
    );

    // dry-run and full-plain print what plan and expand print, and render nothing.
    config("");
    let calls = p.calls();
    for (key, command) in [("dry-run", "plan"), ("full-plain", "expand")] {
        let out = Command::cargo_bin("rekindle")
            .unwrap()
            .current_dir(p.path())
            .args([command, "app.plain"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        let expected = String::from_utf8_lossy(&out.stdout).into_owned();
        config(&format!("{key}: true\n"));
        let (code, printed, err) = p.run("render", &[]);
        assert_eq!(code, 0, "{key}: {err}");
        assert_eq!(printed, expected, "{key}");
        assert!(!expected.is_empty(), "{command} printed nothing");
    }
    assert_eq!(p.calls(), calls);

    // The log file, as the flags write it.
    for (extra, file, written) in [
        ("log-to-file: true\n", "rekindle.log", true),
        ("log-file-name: keyed.log\n", "keyed.log", true),
        (
            "log-to-file: false\nlog-file-name: off.log\n",
            "off.log",
            false,
        ),
    ] {
        config(extra);
        let (code, _, err) = p.render(&["--format", "text"]);
        assert_eq!(code, 0, "{extra}: {err}");
        let log = std::fs::read_to_string(p.path().join(file)).unwrap_or_default();
        assert_eq!(log.contains("4/4 reused"), written, "{extra}: {log}");
    }

    // What rekindle cannot honour is said, with what to use; the render goes on.
    config("api: http://localhost:1\nreplay-with: old\nrender-machine-graph: true\nlogging-config-path: l.yaml\nconfig-name: c.yaml\nheadless: true\nv: false\nconformance_tests_folder: ct\n");
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 0, "{err}");
    for (key, instead) in [
        ("api", "--base-url"),
        ("replay-with", "--locked"),
        ("render-machine-graph", "rekindle plan"),
        ("logging-config-path", "--log-to-file"),
        ("config-name", "--config-name"),
        ("conformance-tests-folder", "conformance-tests-dest"),
    ] {
        let said = format!("warning[W0802]: `{key}` in config.yaml is ignored");
        assert!(err.contains(&said), "no `{said}` in {err}");
        assert!(err.contains(instead), "{key}: {err}");
    }
    assert_eq!(err.matches("W0802").count(), 6, "{err}");
}

/// `rekindle converse` with a scripted model: a proposal that does not check goes back to the
/// model with the diagnostics, the corrected one is accepted (--yes) and written, the
/// conversation is stored and journaled, `why` on the new spec line and on the code rendered from
/// it names the conversation, and an edited conversation file is caught by `journal verify`.
#[test]
fn a_conversation_adds_a_functionality_and_why_names_it() {
    let p = Project::new(&["c1"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let b = p.behaviour.clone();
    p.server.set_responder(move |s| {
        let diff = |line: &str| {
            format!("I added it.\n\n```diff\n--- a/app.plain\n+++ b/app.plain\n@@ -15,2 +15,4 @@\n - Print c1.\n \n+{line}\n+\n```\n")
        };
        if s.first_user().contains("# Spec files") {
            if s.last_user().contains("could not be used") {
                return openai_reply(&diff("- Print c2."));
            }
            // First a proposal that uses a concept nobody defined.
            return openai_reply(&diff("- Print c2 with :Gizmo:."));
        }
        respond(&b, s)
    });
    let calls = p.calls();
    // Without --yes and without a terminal, the proposal is only reported.
    let (code, _, err) = p.run("converse", &["--message", "Also print c2."]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("1 reported and not applied"), "{err}");
    assert!(!std::fs::read_to_string(p.path().join("app.plain"))
        .unwrap()
        .contains("c2"));
    let (code, _, err) = p.run("converse", &["--message", "Also print c2.", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("edit accepted"), "{err}");
    let spec_text = std::fs::read_to_string(p.path().join("app.plain")).unwrap();
    assert!(
        spec_text.ends_with("- Print c1.\n\n- Print c2.\n\n"),
        "{spec_text}"
    );
    // The invalid proposal went back once: 2 calls; the second conversation asked the same
    // questions, which the response cache answered.
    assert_eq!(p.calls() - calls, 2);
    let (code, _, err) = rekindle_in(p.path(), &["check", "app.plain"]);
    assert_eq!(code, 0, "{err}");
    let stored: Vec<PathBuf> = std::fs::read_dir(p.path().join(".rekindle/conversations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    let accepted = stored
        .iter()
        .find(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains("\"verdict\": \"accepted\"")
        })
        .expect("the conversation with the accepted edit");
    let id = accepted.file_stem().unwrap().to_string_lossy().to_string();
    let c: Value = serde_json::from_str(&std::fs::read_to_string(accepted).unwrap()).unwrap();
    let roles: Vec<&str> = c["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "check", "assistant"]);
    assert!(
        c["turns"][2]["text"].as_str().unwrap().contains(":Gizmo:"),
        "{c}"
    );
    let verify = rekindle_in(p.path(), &["journal", "verify", "--spec", "app.plain"]);
    assert_eq!(verify.0, 0, "{verify:?}");
    assert!(
        verify.1.contains("2 conversation(s) stored as recorded"),
        "{verify:?}"
    );

    // why on the spec: the new line names the conversation and what was asked; an old one not.
    let line = spec_text.lines().position(|l| l == "- Print c2.").unwrap() + 1;
    let (code, out, err) = rekindle_in(p.path(), &["why", &format!("app.plain:{line}")]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&id[..16]) && out.contains("turn 4") && out.contains("Also print c2."),
        "{out}"
    );
    let old = spec_text.lines().position(|l| l == "- Print c1.").unwrap() + 1;
    let (_, out, _) = rekindle_in(p.path(), &["why", &format!("app.plain:{old}")]);
    assert!(
        out.contains("was not written through a conversation"),
        "{out}"
    );

    // Rendered, the code it led to traces back to the conversation too.
    let (code, _, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(output_of(&p.code()), "c1\nc2\n");
    let main = std::fs::read_to_string(p.code().join("main.sh")).unwrap();
    let echo = main.lines().position(|l| l == "echo c2").unwrap() + 1;
    let (code, out, err) = rekindle_in(
        p.path(),
        &[
            "why",
            &format!("plain_modules/app/code/main.sh:{echo}"),
            "--spec",
            "app.plain",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("functionality 2")
            && out.contains(&format!("intent: conversation {}", &id[..16])),
        "{out}"
    );

    // An edited conversation breaks verification.
    let text = std::fs::read_to_string(accepted).unwrap();
    std::fs::write(accepted, text.replace("Also print c2.", "Also print c3.")).unwrap();
    let verify = rekindle_in(p.path(), &["journal", "verify", "--spec", "app.plain"]);
    assert_eq!(verify.0, 1, "{verify:?}");
    assert!(
        verify.2.contains("was changed after it was stored"),
        "{verify:?}"
    );
}

/// A diff that does not apply is asked for again as the whole file, which is accepted; the
/// conversation stores the change as a diff all the same.
#[test]
fn a_proposal_that_does_not_apply_is_asked_for_as_the_whole_file() {
    let p = Project::new(&["w1"], Behaviour::default());
    let spec_text = std::fs::read_to_string(p.path().join("app.plain")).unwrap();
    let whole = format!("{spec_text}- Print w2.\n");
    p.server.set_responder(move |s| {
        if s.last_user().contains("complete new content") {
            return openai_reply(&format!("--- FILE: app.plain\n{whole}--- END FILE\n"));
        }
        // Context lines that are not in the file.
        openai_reply("```diff\n--- a/app.plain\n+++ b/app.plain\n@@ -3 +3,2 @@\n - Print nothing.\n+- Print w2.\n```\n")
    });
    let (code, _, err) = p.run("converse", &["--message", "Also print w2.", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let now = std::fs::read_to_string(p.path().join("app.plain")).unwrap();
    assert!(now.ends_with("- Print w1.\n\n- Print w2.\n"), "{now}");
    let stored = std::fs::read_dir(p.path().join(".rekindle/conversations"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let c: Value = serde_json::from_str(&std::fs::read_to_string(stored).unwrap()).unwrap();
    let verdicts: Vec<&str> = c["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["does_not_apply", "accepted"]);
    let diff = c["edits"][1]["diff"].as_str().unwrap();
    assert!(
        diff.starts_with("--- a/app.plain\n+++ b/app.plain\n") && diff.contains("\n+- Print w2.\n"),
        "{diff}"
    );
}

/// `rekindle adopt`: a hand edit (one more line printed) is shown to the model, which proposes
/// a functionality for it; the spec is re-rendered (the edit saved as a patch first) and the edit
/// is retired because the new functionality's conformance test fails on the code before the
/// edit. A proposal whose test passes on that code too does not retire it.
#[test]
fn adopt_turns_a_hand_edit_into_a_functionality_whose_test_captures_it() {
    for (word, captured) in [("extra", true), ("a1", false)] {
        let p = Project::new(&["a1"], Behaviour::default());
        assert_eq!(p.render(&[]).0, 0);
        let main = p.code().join("main.sh");
        let text = std::fs::read_to_string(&main).unwrap();
        std::fs::write(&main, format!("{text}echo extra\n")).unwrap();
        let b = p.behaviour.clone();
        let proposal = format!(
            "```diff\n--- a/app.plain\n+++ b/app.plain\n@@ -15,1 +15,3 @@\n - Print a1.\n+\n+- Print {word}.\n```\n"
        );
        // The staged questions first. For "extra" the answer names a concept the spec does not
        // define, so it does not check and the model is asked for a diff; for "a1" it is used.
        let staged = if captured {
            "- :Printer: should print extra.".to_string()
        } else {
            format!("Print {word}.")
        };
        p.server.set_responder(move |s| {
            let first = s.first_user();
            if first.contains("Write the one new functionality") {
                assert!(
                    first.contains("+echo extra") && first.contains("- Print a1."),
                    "the model is shown the edit and the functionalities: {first}"
                );
                return openai_reply(&staged);
            }
            if first.contains("Write one acceptance test for the functionality") {
                return openai_reply("It prints the line.");
            }
            if first.contains("# Spec files") {
                assert!(first.contains("+echo extra"), "the model is shown the edit");
                return openai_reply(&proposal);
            }
            respond(&b, s)
        });
        let (code, out, err) = adopt(&p);
        let spec_text = std::fs::read_to_string(p.path().join("app.plain")).unwrap();
        assert!(
            spec_text.contains(&format!("- Print {word}.")),
            "{spec_text}"
        );
        let retired = p.path().join(".rekindle/patches/retired");
        if captured {
            assert_eq!(code, 0, "{out}\n{err}");
            assert!(
                err.contains(
                    "adopted: functionality 2's conformance tests fail on the code before the edit"
                ),
                "{err}"
            );
            // The code now comes from the spec, and the edit is kept among the retired.
            assert_eq!(output_of(&p.code()), "a1\nextra\n");
            assert_eq!(std::fs::read_dir(&retired).unwrap().count(), 1);
        } else {
            assert_eq!(code, 1, "{out}\n{err}");
            assert!(err.contains("not adopted: no conformance test of a functionality rendered anew fails on the code before the edit"), "{err}");
            assert!(err.contains("the hand edit is saved as"), "{err}");
            assert!(!retired.exists());
        }
        let c = the_conversation(&p);
        assert_eq!(c["purpose"], "adopt");
        let verdicts = verdicts(&c);
        if captured {
            assert_eq!(verdicts, ["fails_check", "accepted"]);
        } else {
            assert_eq!(verdicts, ["accepted"]);
            assert!(
                spec_text.ends_with("- Print a1.\n\n- Print a1.\n\n  ***acceptance tests***\n\n  - It prints the line.\n"),
                "{spec_text}"
            );
        }
        let verify = rekindle_in(p.path(), &["journal", "verify", "--spec", "app.plain"]);
        assert_eq!(verify.0, 0, "{verify:?}");
    }
}

/// `rekindle adopt` with a hand edit that changes what a functionality says (its conformance
/// test fails on the edited code): the model is asked to rewrite that functionality's sentence
/// and each of its acceptance tests (not for a new functionality that would contradict it), the
/// changed functionality is rendered anew, and its new test captures the edit.
#[test]
fn adopt_rewrites_the_functionality_a_hand_edit_changes() {
    let p = Project::new(&["a1", "b2"], Behaviour::default());
    let before = "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n- Print a1.\n\n  ***acceptance tests***\n\n  - It prints a1.\n\n- Print b2.\n";
    std::fs::write(p.path().join("app.plain"), before).unwrap();
    assert_eq!(p.render(&[]).0, 0);
    let main = p.code().join("main.sh");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("echo a1\n", "echo A1\n")).unwrap();
    let b = p.behaviour.clone();
    p.server.set_responder(move |s| {
        let first = s.first_user();
        if first
            .contains("Rewrite the sentence so that it says what the program does after the change")
        {
            // The functionality, the edit and the failing test's output.
            let shown = first.contains("Print a1.")
                && first.contains("-echo a1\n+echo A1")
                && first.contains("conformance test")
                && first.contains("failed");
            return openai_reply(if shown {
                "Print A1."
            } else {
                "unexpected question"
            });
        }
        if first.contains("One of the spec's acceptance tests reads") {
            // The new sentence, the old test, and the failure that shows the new output.
            let shown = first.contains("Print A1.")
                && first.contains("It prints a1.")
                && first.contains("failed");
            return openai_reply(if shown {
                "It prints A1."
            } else {
                "unexpected question"
            });
        }
        if first.contains("Write the one new functionality") || first.contains("# Spec files") {
            return openai_reply("- :Undefined: should not be asked.");
        }
        respond(&b, s)
    });
    let (code, out, err) = adopt(&p);
    let spec_text = std::fs::read_to_string(p.path().join("app.plain")).unwrap();
    assert_eq!(spec_text, before.replace("a1.", "A1."), "{out}\n{err}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains(
            "adopted: functionality 1's conformance tests fail on the code before the edit"
        ),
        "{err}"
    );
    assert_eq!(output_of(&p.code()), "A1\nb2\n");
    assert_eq!(verdicts(&the_conversation(&p)), ["accepted"]);
    let verify = rekindle_in(p.path(), &["journal", "verify", "--spec", "app.plain"]);
    assert_eq!(verify.0, 0, "{verify:?}");
}

/// `rekindle adopt --yes` in the project, against its scripted model: (exit code, stdout,
/// stderr).
fn adopt(p: &Project) -> (i32, String, String) {
    let url = format!("{}/v1", p.server.url());
    rekindle_in(
        p.path(),
        &[
            "adopt",
            "--spec",
            "app.plain",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "fake",
            "--yes",
        ],
    )
}

/// The project's one stored conversation.
fn the_conversation(p: &Project) -> Value {
    let stored: Vec<PathBuf> = std::fs::read_dir(p.path().join(".rekindle/conversations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    serde_json::from_str(&std::fs::read_to_string(&stored[0]).unwrap()).unwrap()
}

/// The verdicts of a conversation's proposed edits, in order.
fn verdicts(c: &Value) -> Vec<String> {
    c["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["verdict"].as_str().unwrap().to_string())
        .collect()
}

fn rekindle_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn why_names_the_functionality_spec_lines_and_model_calls() {
    let p = Project::new(&["hello", "world", "again"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    // main.sh: line 1 the shebang, then one echo per functionality.
    let (code, out, err) = rekindle_in(
        p.path(),
        &[
            "why",
            "plain_modules/app/code/main.sh:3",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["functionality"], 2, "{v}");
    assert_eq!(v["module"], "app");
    assert_eq!(v["text"], "Print world.");
    assert_eq!(v["spec"]["file"], "app.plain");
    assert_eq!(v["spec"]["lines"], serde_json::json!([13, 13]));
    assert_eq!(v["model_calls"].as_array().unwrap().len(), 2, "{v}");
    let (code, out, _) = rekindle_in(p.path(), &["why", "plain_modules/app/code/main.sh:2"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("functionality 1 of module app") && out.contains("\"Print hello.\""),
        "{out}"
    );
    assert!(out.contains("spec: app.plain, lines 11-11"), "{out}");
    // A line nobody rendered.
    std::fs::write(
        p.code().join("main.sh"),
        "#!/usr/bin/env bash\necho hello\necho world\necho again\necho mine\n",
    )
    .unwrap();
    let (code, _, err) = rekindle_in(p.path(), &["why", "plain_modules/app/code/main.sh:5"]);
    assert_eq!(code, 2);
    assert!(err.contains("not written by a render"), "{err}");
}

#[test]
fn journal_verify_finds_tampering() {
    let p = Project::new(&["j1", "j2"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let (code, out, err) = rekindle_in(p.path(), &["journal", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("journal ok") && out.contains("(6 entries"),
        "{out}"
    );
    let journal = p.path().join(".rekindle/journal.jsonl");
    let good = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "edit",
            good.replacen("\"tokens_in\":", "\"tokens_in\":1", 1),
        ),
        (
            "delete",
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 1)
                .map(|(_, l)| format!("{l}\n"))
                .collect(),
        ),
        ("reorder", {
            let mut l = lines.clone();
            l.swap(2, 3);
            l.iter().map(|l| format!("{l}\n")).collect()
        }),
        (
            "truncate",
            lines[..lines.len() - 1]
                .iter()
                .map(|l| format!("{l}\n"))
                .collect(),
        ),
    ];
    for (what, text) in cases {
        std::fs::write(&journal, text).unwrap();
        let (code, _, err) = rekindle_in(p.path(), &["journal", "verify"]);
        assert_eq!(code, 1, "{what} went unnoticed");
        assert!(err.contains("is broken at line"), "{what}: {err}");
    }
    std::fs::write(&journal, good).unwrap();
    assert_eq!(rekindle_in(p.path(), &["journal", "verify"]).0, 0);
}

/// The journal's head is anchored in rekindle.lock and in every render commit: a journal whose
/// whole chain was recomputed, or whose tail was cut together with its head file, still chains,
/// and the anchors catch it.
#[test]
fn journal_anchors_catch_a_rewritten_or_cut_journal() {
    let p = Project::new(&["a1", "a2"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let (code, out, err) = rekindle_in(p.path(), &["journal", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rekindle.lock: 1 anchor(s) found"), "{out}");
    // Two functionalities: two commits anchored in each repository.
    assert!(
        out.contains("plain_modules/app/code: 2 anchor(s) found")
            && out.contains("plain_modules/app/tests: 2 anchor(s) found"),
        "{out}"
    );
    let journal = p.path().join(".rekindle/journal.jsonl");
    let head_file = p.path().join(".rekindle/journal.jsonl.head");
    let good = std::fs::read_to_string(&journal).unwrap();
    let good_head = std::fs::read_to_string(&head_file).unwrap();
    // A whole-chain rewrite: one entry changed, every hash after it recomputed, the head file
    // updated, so that the chain itself verifies.
    let mut prev = "0".repeat(64);
    let mut text = String::new();
    let mut edited = false;
    for line in good.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        let m = v.as_object_mut().unwrap();
        if let (false, Some(n)) = (edited, m.get("tokens_in").and_then(Value::as_u64)) {
            m.insert("tokens_in".into(), Value::from(n + 1));
            edited = true;
        }
        m.insert("prev".into(), Value::from(prev.clone()));
        m.remove("hash");
        let hash = blake3::hash(rekindle_llm::cache::canonical_json(&v).as_bytes())
            .to_hex()
            .to_string();
        v.as_object_mut()
            .unwrap()
            .insert("hash".into(), Value::from(hash.clone()));
        text.push_str(&rekindle_llm::cache::canonical_json(&v));
        text.push('\n');
        prev = hash;
    }
    assert!(edited, "{good}");
    std::fs::write(&journal, &text).unwrap();
    std::fs::write(&head_file, format!("{prev}\n")).unwrap();
    let (code, out, err) = rekindle_in(p.path(), &["journal", "verify"]);
    assert_eq!(code, 1, "a rewritten chain went unnoticed: {out}");
    assert!(
        err.contains("not the journal that was anchored")
            && err.contains("rekindle.lock: 1 of 1 anchors are not in the journal")
            && err.contains("plain_modules/app/code: 2 of 2 anchors"),
        "{err}"
    );
    // A cut tail with the head file deleted.
    let lines: Vec<&str> = good.lines().collect();
    let cut: String = lines[..lines.len() - 2]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&journal, cut).unwrap();
    std::fs::remove_file(&head_file).unwrap();
    let (code, out, err) = rekindle_in(p.path(), &["journal", "verify"]);
    assert_eq!(code, 1, "a cut tail went unnoticed: {out}");
    assert!(err.contains("rekindle.lock: 1 of 1 anchors"), "{err}");
    // The journal as it was, and the build folder gone: what could not be checked is said.
    std::fs::write(&journal, &good).unwrap();
    std::fs::write(&head_file, &good_head).unwrap();
    std::fs::remove_dir_all(p.path().join("plain_modules")).unwrap();
    let (code, out, err) = rekindle_in(p.path(), &["journal", "verify"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rekindle.lock: 1 anchor(s) found")
            && out.contains("not checked: the build folder")
            && out.contains("does not exist"),
        "{out}"
    );
}

#[test]
fn status_explains_staleness_and_lists_hand_edits() {
    let p = Project::new(&["s1", "s2", "s3"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let url = format!("{}/v1", p.server.url());
    let status = |extra: &[&str]| {
        let model = if extra.contains(&"--model") {
            vec![]
        } else {
            vec!["--model", "fake"]
        };
        let mut args = vec![
            "status",
            "app.plain",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--format",
            "json",
        ];
        args.extend(model);
        args.extend_from_slice(extra);
        let (code, out, err) = rekindle_in(p.path(), &args);
        (
            code,
            serde_json::from_str::<Value>(&out).unwrap_or_else(|_| panic!("{out}\n{err}")),
        )
    };
    let (code, v) = status(&["--check"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["stale"], 0);
    // Another model: everything is stale, for that reason.
    let (_, v) = status(&["--model", "other"]);
    assert_eq!(
        v["modules"][0]["functionalities"][0]["reasons"][0], "the model settings changed",
        "{v}"
    );
    // Edit functionality 2.
    std::fs::write(p.path().join("app.plain"), spec(&["s1", "changed", "s3"])).unwrap();
    let (code, v) = status(&["--check"]);
    assert_eq!(code, 1);
    let f = &v["modules"][0]["functionalities"];
    assert_eq!(
        (
            f[0]["state"].as_str(),
            f[1]["state"].as_str(),
            f[2]["state"].as_str()
        ),
        (Some("up_to_date"), Some("stale"), Some("reusable")),
        "{v}"
    );
    assert_eq!(
        f[1]["reasons"][0],
        "its spec text or acceptance tests changed"
    );
    assert_eq!(v["min_model_calls"], 2);
    // Hand edits of every kind.
    std::fs::write(p.path().join("app.plain"), spec(&["s1", "s2", "s3"])).unwrap();
    let code_dir = p.code();
    std::fs::write(code_dir.join("main.sh"), "echo edited\n").unwrap();
    std::fs::write(code_dir.join("extra.txt"), "new\n").unwrap();
    std::fs::remove_file(code_dir.join("unit_s1.sh")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        code_dir.join("unit_s2.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let (code, v) = status(&["--check"]);
    assert_eq!(code, 1);
    let drift: Vec<(String, String)> = v["modules"][0]["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().to_string(),
                d["change"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        drift,
        [
            ("extra.txt".to_string(), "added".to_string()),
            ("main.sh".to_string(), "modified".to_string()),
            ("unit_s1.sh".to_string(), "deleted".to_string()),
            ("unit_s2.sh".to_string(), "mode changed".to_string()),
        ]
    );
}

#[test]
fn locked_render_reproduces_the_build_without_any_model() {
    let p = Project::new(&["l1", "l2", "l3"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let lock = std::fs::read_to_string(p.path().join("rekindle.lock")).unwrap();
    assert_eq!(lock.matches("[[functionality]]").count(), 3, "{lock}");
    // A fresh copy: specs, config, scripts, the lock and the cache; no build folder, no journal.
    let copy = tempfile::tempdir().unwrap();
    for f in [
        "app.plain",
        "config.yaml",
        "unit.sh",
        "conformance.sh",
        "rekindle.lock",
    ] {
        std::fs::copy(p.path().join(f), copy.path().join(f)).unwrap();
    }
    copy_tree(
        &p.path().join(".rekindle/cache"),
        &copy.path().join(".rekindle/cache"),
    );
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port())
    };
    let locked = |dir: &Path| {
        rekindle_in(
            dir,
            &[
                "render",
                "app.plain",
                "--locked",
                "--provider",
                "openai",
                "--base-url",
                &dead,
                "--model",
                "fake",
            ],
        )
    };
    let (code, _, err) = locked(copy.path());
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("locked: every functionality matches"), "{err}");
    assert_eq!(
        output_of(&copy.path().join("plain_modules/app/code")),
        "l1\nl2\nl3\n"
    );
    assert_eq!(
        git(
            &copy.path().join("plain_modules/app/code"),
            &["rev-parse", "HEAD^{tree}"]
        ),
        git(&p.code(), &["rev-parse", "HEAD^{tree}"])
    );
    // No tree store was copied: the pinned replies were replayed from the cache, and it says so.
    assert!(
        err.contains("does not hold the trees of functionality 1 of module app; replaying"),
        "{err}"
    );
    // A changed spec is not what the lock pins: a clear failure, still without traffic.
    std::fs::write(copy.path().join("app.plain"), spec(&["l1", "other", "l3"])).unwrap();
    let (code, _, err) = locked(copy.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "--locked: functionality 2 of module app: the render key differs from the lock"
        ),
        "{err}"
    );
    // A tampered lock is caught.
    std::fs::write(copy.path().join("app.plain"), spec(&["l1", "l2", "l3"])).unwrap();
    let tampered = lock.replacen("tree = \"", "tree = \"0", 1);
    std::fs::write(copy.path().join("rekindle.lock"), tampered).unwrap();
    let (code, _, err) = locked(copy.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("functionality 1 of module app: the rebuilt code differs"),
        "{err}"
    );
}

/// A unit test script whose failures print what changes from run to run: the time the tests
/// took, the absolute path of the code folder, a temporary folder's name.
const NOISY_UNIT: &str = r#"#!/usr/bin/env bash
cd "$1" || exit 69
[ -n "$LC_REKINDLE_FAIL_UNIT_TESTS" ] && { echo "told to fail"; exit 1; }
scratch=$(mktemp -d)
for t in unit_*.sh; do
  [ -e "$t" ] || continue
  if ! bash "$t"; then
    echo "FAIL: $t"
    echo "  File \"$PWD/$t\", line 1, in <module>"
    echo "  copied to $scratch/$t"
    printf 'Ran 1 test in 0.%03ds\n' $((RANDOM % 1000))
    rm -rf "$scratch"
    exit 1
  fi
done
rm -rf "$scratch"
exit 0
"#;

/// The files a project's owner commits: specs, config, scripts, the lock and `.rekindle` (the
/// cache, the tree store and the journal; `with_store: false` leaves the store out).
fn copy_project(from: &Path, to: &Path, with_store: bool) {
    std::fs::create_dir_all(to).unwrap();
    for f in [
        "app.plain",
        "config.yaml",
        "unit.sh",
        "conformance.sh",
        "rekindle.lock",
    ] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    copy_tree(&from.join(".rekindle"), &to.join(".rekindle"));
    if !with_store {
        std::fs::remove_dir_all(to.join(".rekindle/trees.git")).unwrap();
    }
}

/// `render --locked` rebuilds a build whose unit tests failed first (so its fix prompts held
/// timings, absolute paths and temporary names) in another folder, later, with no model
/// reachable: from the tree store, and (without the store) by replaying the cached replies.
#[test]
fn a_locked_build_is_rebuilt_elsewhere_and_later_without_any_model() {
    let p = Project::new(
        &["red", "green", "blue"],
        Behaviour {
            broken_unit: vec!["red".into(), "green".into(), "blue".into()],
            ..Behaviour::default()
        },
    );
    std::fs::write(p.path().join("unit.sh"), NOISY_UNIT).unwrap();
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    // Each functionality: implement, one unit-test fix, conformance tests.
    assert_eq!(summary(&events)["model_calls"], 9, "{events:?}");
    let fixes: Vec<String> = p
        .server
        .seen()
        .iter()
        .map(|s| s.last_user())
        .filter(|u| u.contains("# Unit test failure"))
        .collect();
    assert_eq!(fixes.len(), 3);
    // What the model was shown does not depend on where or when the tests ran.
    let root = std::fs::canonicalize(p.path()).unwrap();
    for f in &fixes {
        assert!(f.contains("Ran 1 test in <time>"), "{f}");
        assert!(f.contains("File \"./unit_"), "{f}");
        assert!(f.contains("copied to /tmp/<tmp>/unit_"), "{f}");
        assert!(!f.contains(&root.display().to_string()), "{f}");
    }
    let lock = std::fs::read_to_string(p.path().join("rekindle.lock")).unwrap();
    assert!(lock.contains("code = \"openai fake\""), "{lock}");
    let trees = |dir: &Path| {
        let m = dir.join("plain_modules/app");
        (
            git(&m.join("code"), &["rev-parse", "HEAD^{tree}"]),
            git(&m.join("tests"), &["rev-parse", "HEAD^{tree}"]),
            git(&m.join("code"), &["log", "--format=%T"]),
        )
    };
    let original = trees(p.path());
    assert_eq!(
        original.2.lines().count(),
        4,
        "a base and three functionalities"
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let elsewhere = tempfile::tempdir().unwrap();
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}/v1", l.local_addr().unwrap().port())
    };
    let locked = |dir: &Path, model: &str| {
        rekindle_in(
            dir,
            &[
                "render",
                "app.plain",
                "--locked",
                "--format",
                "json",
                "--provider",
                "openai",
                "--base-url",
                &dead,
                "--model",
                model,
            ],
        )
    };
    for with_store in [true, false] {
        let copy = elsewhere.path().join(if with_store {
            "with-store/a/b"
        } else {
            "cache-only"
        });
        copy_project(p.path(), &copy, with_store);
        let (code, out, err) = locked(&copy, "fake");
        assert_eq!(code, 0, "with_store {with_store}: {err}\n{out}");
        assert_eq!(trees(&copy), original, "with_store {with_store}");
        assert_eq!(
            output_of(&copy.join("plain_modules/app/code")),
            "red\ngreen\nblue\n"
        );
        let events: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let s = summary(&events);
        assert_eq!(
            (s["model_calls"].as_u64(), s["ok"].as_bool()),
            (Some(0), Some(true)),
            "{s}"
        );
        let restored = events
            .iter()
            .filter(|e| e["event"] == "functionality" && e["status"] == "restored")
            .count();
        let scripts = |kind: &str| {
            events
                .iter()
                .filter(|e| e["event"] == "script" && e["kind"] == kind && e["outcome"] == "passed")
                .count()
        };
        if with_store {
            // Restored, then tested as a render tests: unit tests, then its conformance
            // tests and every earlier one's (1 + 2 + 3).
            assert_eq!((restored, s["restored"].as_u64()), (3, Some(3)), "{s}");
            assert_eq!((scripts("unit"), scripts("conformance")), (3, 6));
        } else {
            assert_eq!((restored, s["restored"].as_u64()), (0, Some(0)), "{s}");
            // The fixes were replayed too: their prompts hit the cache.
            assert_eq!(s["cache_hits"].as_u64(), Some(9), "{s}");
        }
    }

    // Flags naming another model than the lock's are named as such.
    let copy = elsewhere.path().join("with-store/a/b");
    std::fs::remove_dir_all(copy.join("plain_modules")).unwrap();
    let (code, out, err) = locked(&copy, "other");
    let said = format!("{out}{err}");
    assert_eq!(code, 2, "{said}");
    assert!(
        said.contains("rendered with other models than this render names (code: the lock has openai fake, this render names openai other;"),
        "{said}"
    );

    // Restored code whose tests fail is reported as such, and nothing of it is kept. (The
    // script sits in the sandbox: the signal to fail comes in an allow-listed variable.)
    let out = Command::cargo_bin("rekindle")
        .unwrap()
        .current_dir(&copy)
        .env("LC_REKINDLE_FAIL_UNIT_TESTS", "1")
        .args(["render", "app.plain", "--locked", "--provider", "openai"])
        .args(["--base-url", &dead, "--model", "fake"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("functionality 1 of module app failed: restored from rekindle.lock with the locked trees, but its unit tests fail (exit 1)"),
        "{err}"
    );
    assert!(err.contains("told to fail"), "{err}");
    assert!(!copy.join("plain_modules/app/code/main.sh").exists());
}

/// plain2code's script flags override config.yaml's: the unit tests script, and the timeout.
#[test]
fn script_flags_override_the_config() {
    let p = Project::new(&["s1"], Behaviour::default());
    std::fs::write(
        p.path().join("broken-env.sh"),
        "#!/usr/bin/env bash\necho \"no interpreter, said the flag's script\"\nexit 69\n",
    )
    .unwrap();
    let (code, events, err) =
        p.render(&["--unittests-script", "broken-env.sh", "--format", "text"]);
    assert_eq!(code, 2, "{err}");
    let _ = events;
    assert!(err.contains("broken-env.sh exited 69"), "{err}");
    assert!(
        err.contains("no interpreter, said the flag's script"),
        "{err}"
    );
    // A unit script that outlives a one-second timeout is stopped and counted as a failure.
    std::fs::write(p.path().join("slow.sh"), "#!/usr/bin/env bash\nsleep 30\n").unwrap();
    let (code, events, err) = p.render(&[
        "--unittests-script",
        "slow.sh",
        "--test-script-timeout",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    let timed_out = events
        .iter()
        .filter(|e| e["event"] == "script" && e["outcome"] == "timed_out")
        .count();
    assert!(timed_out >= 1, "{events:?}");
    assert_eq!(p.render(&["--test-script-timeout", "0"]).0, 2);
}

/// plain2code's copy flags: --copy-build to --build-dest and --copy-conformance-tests to
/// --conformance-tests-dest after a successful render, replacing only what rekindle put there.
#[test]
fn copy_flags_copy_the_build_and_the_conformance_tests() {
    let p = Project::new(&["c1", "c2"], Behaviour::default());
    std::fs::create_dir_all(p.path().join("out")).unwrap();
    std::fs::write(p.path().join("out/mine.txt"), "the user's\n").unwrap();
    let (code, _, err) = p.render(&[
        "--copy-build",
        "--build-dest",
        "out",
        "--copy-conformance-tests",
        "--conformance-tests-dest",
        "ct",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(output_of(&p.path().join("out")), "c1\nc2\n");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/mine.txt")).unwrap(),
        "the user's\n"
    );
    for k in ["f01", "f02"] {
        let check = p.path().join("ct").join(k).join("check.sh");
        assert!(check.is_file(), "{} is missing", check.display());
    }
    assert!(!p.path().join("ct/.git").exists() && !p.path().join("out/.git").exists());
    // Without the flags (and nothing in config.yaml), nothing is copied.
    let q = Project::new(&["c1"], Behaviour::default());
    assert_eq!(q.render(&["--build-dest", "out"]).0, 0);
    assert!(!q.path().join("out").exists() && !q.path().join("dist_conformance_tests").exists());
    // A destination that would overwrite the project is refused before anything runs.
    let (code, _, err) = q.render(&["--copy-build", "--build-dest", ".", "--format", "text"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--build-dest"), "{err}");
}

/// plain2code's log flags: --log-to-file writes the render's log beside the spec (rekindle.log,
/// or --log-file-name), --no-log-to-file and the default write none, --headless is accepted.
#[test]
fn log_flags_write_the_log_beside_the_spec() {
    let p = Project::new(&["g1"], Behaviour::default());
    let (code, _, err) = p.render(&["--headless", "--format", "text"]);
    assert_eq!(code, 0, "{err}");
    assert!(!p.path().join("rekindle.log").exists());
    std::fs::write(p.path().join("app.plain"), spec(&["g1", "g2"])).unwrap();
    let (code, _, err) = p.render(&["--log-to-file", "--format", "text"]);
    assert_eq!(code, 0, "{err}");
    let log = std::fs::read_to_string(p.path().join("rekindle.log")).unwrap();
    assert!(
        log.contains("1/2 reused") && log.contains("done: 1 rendered, 1 reused"),
        "{log}"
    );
    // The named file, and JSON lines under --format json.
    let (code, _, err) = p.render(&["--log-file-name", "mine.log"]);
    assert_eq!(code, 0, "{err}");
    let log = std::fs::read_to_string(p.path().join("mine.log")).unwrap();
    let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "summary", "{log}");
    // A name that is not a plain file name is refused.
    let (code, _, err) = p.render(&["--log-file-name", "../elsewhere.log", "--format", "text"]);
    assert_eq!(code, 2, "{err}");
    assert!(!p.path().join("../elsewhere.log").exists());
}

/// plain2code's `--conformance-tests-script` and `--prepare-environment-script` override
/// config.yaml's; `--verbose` (or config.yaml's `verbose: true`) shows what each script printed,
/// each model call's request key and the files each functionality wrote, which the plain log
/// leaves out.
#[test]
fn conformance_and_prepare_flags_and_verbose() {
    let p = Project::new(&["v1"], Behaviour::default());
    std::fs::write(
        p.path().join("prep.sh"),
        "#!/usr/bin/env bash\necho \"prepared by the flag's script in $(basename \"$1\")\"\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("conf-flag.sh"),
        CONFORMANCE.replace(
            "\nexit 0\n",
            "\necho \"checked by the flag's script\"\nexit 0\n",
        ),
    )
    .unwrap();
    let flags = [
        "--prepare-environment-script",
        "prep.sh",
        "--conformance-tests-script",
        "conf-flag.sh",
    ];
    let (code, events, err) = p.render(&flags);
    assert_eq!(code, 0, "{err}");
    let output_of_kind = |kind: &str| -> String {
        events
            .iter()
            .filter(|e| e["event"] == "script" && e["kind"] == kind)
            .map(|e| e["output"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(
        output_of_kind("prepare").contains("prepared by the flag's script in code"),
        "{events:?}"
    );
    assert!(
        output_of_kind("conformance").contains("checked by the flag's script"),
        "{events:?}"
    );
    // The plain log leaves the output out; --verbose shows it, and more.
    let plain = p.render(&[&flags[..], &["--force-render", "--format", "text"]].concat());
    assert_eq!(plain.0, 0, "{}", plain.2);
    assert!(
        !plain.2.contains("checked by the flag's script"),
        "{}",
        plain.2
    );
    assert!(!plain.2.contains("request "), "{}", plain.2);
    let verbose = p.render(
        &[
            &flags[..],
            &["--force-render", "--verbose", "--format", "text"],
        ]
        .concat(),
    );
    assert_eq!(verbose.0, 0, "{}", verbose.2);
    let key = events
        .iter()
        .find(|e| e["event"] == "model_call")
        .and_then(|e| e["key"].as_str())
        .expect("a model call")
        .to_string();
    for said in [
        "      | prepared by the flag's script in code",
        "      | checked by the flag's script",
        &format!("request {key}"),
        "      wrote main.sh",
    ] {
        assert!(verbose.2.contains(said), "no `{said}` in:\n{}", verbose.2);
    }
    // config.yaml's `verbose: true` is the same as the flag.
    let config = std::fs::read_to_string(p.path().join("config.yaml")).unwrap();
    std::fs::write(
        p.path().join("config.yaml"),
        format!("{config}verbose: true\n"),
    )
    .unwrap();
    let from_config = p.render(&[&flags[..], &["--force-render", "--format", "text"]].concat());
    assert_eq!(from_config.0, 0, "{}", from_config.2);
    assert!(
        from_config
            .2
            .contains("      | checked by the flag's script"),
        "{}",
        from_config.2
    );
}

/// plain2code's `--base-folder` (or config.yaml's `base-folder`): its files are the code the
/// first module starts from (its base commit), the model is shown them, a change to them
/// renders again, and a folder outside the project's roots, the build folder or a missing one
/// is refused before anything runs.
#[test]
fn base_folder_is_the_code_a_render_starts_from() {
    let p = Project::new(&["b1", "b2"], Behaviour::default());
    std::fs::create_dir_all(p.path().join("base/lib")).unwrap();
    let greet = "greet() { echo base-greeting; }\n";
    std::fs::write(p.path().join("base/lib/greet.sh"), greet).unwrap();
    let (code, events, err) = p.render(&["--base-folder", "base"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&events)["rendered"], 2);
    assert_eq!(
        std::fs::read_to_string(p.code().join("lib/greet.sh")).unwrap(),
        greet
    );
    assert_eq!(output_of(&p.code()), "b1\nb2\n");
    let root = git(&p.code(), &["rev-list", "--max-parents=0", "HEAD"]);
    let in_base = git(&p.code(), &["ls-tree", "-r", "--name-only", root.trim()]);
    assert_eq!(in_base, "lib/greet.sh\n");
    let first = p.server.seen()[0].first_user();
    assert!(first.contains(greet), "{first}");
    // The same base from config.yaml: nothing to do.
    let config = std::fs::read_to_string(p.path().join("config.yaml")).unwrap();
    std::fs::write(
        p.path().join("config.yaml"),
        format!("{config}base-folder: base\n"),
    )
    .unwrap();
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    let s = summary(&events);
    assert_eq!(
        (s["reused"].as_u64(), s["model_calls"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    // A changed base is a new starting point: every functionality renders again on it.
    let changed = "greet() { echo another-greeting; }\n";
    std::fs::write(p.path().join("base/lib/greet.sh"), changed).unwrap();
    let (code, events, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&events)["rendered"], 2, "{events:?}");
    assert_eq!(
        std::fs::read_to_string(p.code().join("lib/greet.sh")).unwrap(),
        changed
    );
    // Refused: outside the project's roots, the build folder, a folder that is not there.
    let q = Project::new(&["b1"], Behaviour::default());
    for (dir, said) in [
        (
            "/etc",
            "error[E0807]: `base-folder` is outside the project's roots",
        ),
        (
            "plain_modules",
            "error[E0806]: `base-folder` is the build folder",
        ),
        ("missing", "error[E0807]: `base-folder` does not exist"),
    ] {
        std::fs::create_dir_all(q.path().join("plain_modules")).unwrap();
        let (code, _, err) = q.render(&["--base-folder", dir, "--format", "text"]);
        assert_eq!(code, 2, "{dir}: {err}");
        assert!(err.contains(said), "{dir}: {err}");
        assert!(
            err.contains(&format!("--base-folder {dir}")),
            "{dir}: {err}"
        );
    }
    assert_eq!(q.calls(), 0);
}

/// plain2code's FILE, `--config-name`, `--template-dir`, `--build-folder` and `--version` mean
/// the same in rekindle.
#[test]
fn plain2codes_file_config_template_and_build_flags() {
    let p = Project::new(&["t1"], Behaviour::default());
    // config.yaml would fail the render; --config-name picks other.yaml.
    let config = std::fs::read_to_string(p.path().join("config.yaml")).unwrap();
    std::fs::write(p.path().join("other.yaml"), config).unwrap();
    std::fs::write(
        p.path().join("config.yaml"),
        "unittests-script: broken.sh\nconformance-tests-script: conformance.sh\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("broken.sh"),
        "#!/usr/bin/env bash\necho 'config.yaml was read'\nexit 69\n",
    )
    .unwrap();
    // The spec imports a module from a template folder named only on the command line.
    std::fs::create_dir_all(p.path().join("tpl")).unwrap();
    std::fs::write(
        p.path().join("tpl/shared.plain"),
        "***implementation reqs***\n\n- Every script starts with a shebang line.\n",
    )
    .unwrap();
    std::fs::write(
        p.path().join("app.plain"),
        format!("---\nimport:\n  - shared\n---\n\n{}", spec(&["t1"])),
    )
    .unwrap();
    let (code, _, err) = p.render(&["--config-name", "other.yaml", "--format", "text"]);
    assert_eq!(
        code, 1,
        "without the template folder the import is missing: {err}"
    );
    assert!(err.contains("shared"), "{err}");
    let (code, events, err) = p.render(&[
        "--config-name",
        "other.yaml",
        "--template-dir",
        "tpl",
        "--build-folder",
        "out",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary(&events)["rendered"], 1);
    assert_eq!(output_of(&p.path().join("out/app/code")), "t1\n");
    assert!(!p.path().join("plain_modules").exists());
    let first = p.server.seen()[0].first_user();
    assert!(
        first.contains("Every script starts with a shebang line."),
        "{first}"
    );
    // Without --config-name, config.yaml is read.
    let (code, _, err) = p.render(&[
        "--template-dir",
        "tpl",
        "--build-folder",
        "out2",
        "--format",
        "text",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("config.yaml was read"), "{err}");
    let out = Command::cargo_bin("rekindle")
        .unwrap()
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("rekindle {}", env!("CARGO_PKG_VERSION"))
    );
}

/// plain2code's `--dry-run` prints what `plan` prints and `--full-plain` what `expand` prints;
/// neither calls the model or creates a build folder.
#[test]
fn dry_run_and_full_plain_print_and_render_nothing() {
    let p = Project::new(&["d1", "d2"], Behaviour::default());
    for (flag, command) in [("--dry-run", "plan"), ("--full-plain", "expand")] {
        let ours = Command::cargo_bin("rekindle")
            .unwrap()
            .current_dir(p.path())
            .args(["render", "app.plain", flag])
            .output()
            .unwrap();
        let theirs = Command::cargo_bin("rekindle")
            .unwrap()
            .current_dir(p.path())
            .args([command, "app.plain"])
            .output()
            .unwrap();
        assert_eq!(ours.status.code(), Some(0), "{flag}");
        let out = String::from_utf8_lossy(&ours.stdout);
        assert_eq!(out, String::from_utf8_lossy(&theirs.stdout), "{flag}");
        assert!(out.contains("Print d2."), "{flag}: {out}");
    }
    assert_eq!(p.calls(), 0);
    assert!(!p.path().join("plain_modules").exists());
}

/// plain2code's flags that rekindle does not honour are refused before anything runs (no model
/// call, no build folder), each with what to use instead; a key given on the command line is
/// never echoed.
#[test]
fn plain2codes_unsupported_flags_are_refused_with_what_to_use() {
    let p = Project::new(&["x1"], Behaviour::default());
    let key = "sk-do-not-echo-me-0123456789";
    for (flags, says) in [
        (
            vec!["--api-key", key],
            "reads API keys from the environment only",
        ),
        (
            vec!["--api", "https://api.example"],
            "--provider and --base-url",
        ),
        (vec!["--replay-with", "old"], "with --locked"),
        (vec!["--render-machine-graph"], "`rekindle plan` shows"),
        (
            vec!["--logging-config-path", "log.yaml"],
            "--log-to-file keeps",
        ),
        (vec!["--status"], "no account or credits"),
    ] {
        for command in ["render", "status", "burn", "attest"] {
            let out = Command::cargo_bin("rekindle")
                .unwrap()
                .current_dir(p.path())
                .arg(command)
                .arg("app.plain")
                .args(&flags)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {flags:?}: {err}");
            assert!(
                err.contains(flags[0]) && err.contains(says),
                "{command} {flags:?}: {err}"
            );
            assert!(!err.contains(key) && !String::from_utf8_lossy(&out.stdout).contains(key));
        }
    }
    assert_eq!(p.calls(), 0);
    assert!(!p.path().join("plain_modules").exists());
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn attest_names_the_generated_files_and_every_input() {
    let p = Project::new(&["a1", "a2"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let (code, out, err) = p.run("attest", &[]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
    let main = v["subject"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "main.sh")
        .unwrap()
        .clone();
    assert_eq!(
        main["digest"]["sha256"],
        sha256sum(&p.code().join("main.sh"))
    );
    let deps = v["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert!(
        deps.iter().any(|d| d["uri"] == "file:app.plain"),
        "{deps:?}"
    );
    assert!(deps.iter().any(|d| d["uri"] == "rekindle:prompt-templates"));
    let cached = deps
        .iter()
        .filter(|d| d["uri"].as_str().unwrap().starts_with("rekindle:cache/"))
        .count();
    assert_eq!(cached, 4, "two model calls per functionality: {deps:?}");
    // Each names its reply by the SHA-256 of the reply's text, as the cache entry holds it.
    for d in deps
        .iter()
        .filter(|d| d["uri"].as_str().unwrap().starts_with("rekindle:cache/"))
    {
        let key = d["uri"]
            .as_str()
            .unwrap()
            .strip_prefix("rekindle:cache/")
            .unwrap();
        let entry = p.path().join(format!(
            ".rekindle/cache/v1/{}/{}.json",
            &key[..2],
            &key[2..]
        ));
        let v: Value = serde_json::from_slice(&std::fs::read(&entry).unwrap()).unwrap();
        let text = v["payload"]["response"]["text"].as_str().unwrap();
        assert!(text.contains("--- FILE: "), "{text}");
        use sha2::Digest;
        assert_eq!(
            d["digest"]["sha256"].as_str().unwrap(),
            hex(&sha2::Sha256::digest(text.as_bytes())),
            "{d}"
        );
    }
    // A pinned reply gone from the cache cannot be named: attest refuses.
    let key = deps
        .iter()
        .find_map(|d| d["uri"].as_str().unwrap().strip_prefix("rekindle:cache/"))
        .unwrap()
        .to_string();
    let entry = p.path().join(format!(
        ".rekindle/cache/v1/{}/{}.json",
        &key[..2],
        &key[2..]
    ));
    let saved = std::fs::read(&entry).unwrap();
    std::fs::remove_file(&entry).unwrap();
    let (code, _, err) = p.run("attest", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&key) && err.contains("cannot be read"),
        "{err}"
    );
    std::fs::write(&entry, saved).unwrap();
    // Files changed by hand cannot be attested.
    std::fs::write(p.code().join("main.sh"), "echo mine\n").unwrap();
    let (code, _, err) = p.run("attest", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("changed by hand"), "{err}");
}

#[test]
fn burn_rebuilds_from_the_specs_alone() {
    let p = Project::new(&["b1", "b2"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let burn = || p.run("burn", &["--yes"]);
    let before = p.calls();
    let (code, out, err) = burn();
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("the specs alone reproduce a passing system"),
        "{out}"
    );
    assert!(err.contains("at least 4 model calls"), "{err}");
    assert_eq!(
        p.calls() - before,
        4,
        "no cache: every call goes to the model"
    );
    // The build folder itself is untouched.
    assert_eq!(output_of(&p.code()), "b1\nb2\n");
    // A model that now reads functionality 2 differently: its own tests pass, the original fail.
    p.behaviour
        .lock()
        .unwrap()
        .alias
        .push(("b2".into(), "bee-two".into()));
    let (code, out, _) = burn();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("do NOT reproduce"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("app") && l.contains("  2  "))
        .unwrap();
    assert!(row.contains("FAIL") && row.contains("pass"), "{row}");
    // Tests that could not run prove nothing: the original build's tests meet an environment
    // the script refuses (exit 69), and the burn fails, saying so, although nothing failed.
    p.behaviour.lock().unwrap().alias.clear();
    let original = p.path().display().to_string();
    std::fs::write(
        p.path().join("conformance.sh"),
        CONFORMANCE.replacen(
            "code=\"$1\"; tests=\"$2\"\n",
            &format!("code=\"$1\"; tests=\"$2\"\ncase \"$tests\" in {original}/*) echo \"the test database is not reachable\"; exit 69;; esac\n"),
            1,
        ),
    )
    .unwrap();
    let (code, out, _) = burn();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("some conformance tests could not run"),
        "{out}"
    );
    assert_eq!(out.matches("COULD NOT RUN").count(), 2, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("the test database is not reachable"), "{out}");
}

/// Plays a model for examples/word-count: every functionality appends a marked line to
/// `wc_lite.py` and gets a conformance test that checks its line is there.
fn word_count_model(s: &Seen) -> Reply {
    let prompt = s.last_user();
    let current = prompt
        .split("--- FILE: wc_lite.py\n")
        .nth(1)
        .and_then(|r| r.split("--- END FILE").next())
        .unwrap_or("import sys\n")
        .to_string();
    let k = current.matches("# functionality ").count() + 1;
    if prompt.contains("Write conformance tests") {
        let k = k - 1;
        // The acceptance tests it stands for, named in a comment: a test that names none of
        // their values would leave them out, and the functionality would fail.
        let given: String = prompt
            .split("It must pass these acceptance tests:\n")
            .nth(1)
            .unwrap_or("")
            .lines()
            .take_while(|l| l.starts_with("- "))
            .map(|l| format!("# {l}\n"))
            .collect();
        let test = format!(
            "{given}import unittest\n\nclass T(unittest.TestCase):\n    def test_line(self):\n        with open('wc_lite.py') as f:\n            self.assertIn('# functionality {k}', f.read())\n"
        );
        return openai_reply(&blocks(&[(&format!("test_f{k}.py"), test)]));
    }
    openai_reply(&blocks(&[(
        "wc_lite.py",
        format!("{current}# functionality {k}\n"),
    )]))
}

#[test]
fn why_on_the_multi_functionality_example_names_functionality_2() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&examples.join("word-count"), &tmp.path().join("word-count"));
    copy_tree(&examples.join("scripts"), &tmp.path().join("scripts"));
    let dir = tmp.path().join("word-count");
    let (server, _rt) = Server::start_blocking(vec![]);
    server.set_responder(word_count_model);
    let url = format!("{}/v1", server.url());
    let (code, out, err) = rekindle_in(
        &dir,
        &[
            "render",
            "word-count.plain",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "fake",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let file = dir.join("plain_modules/word-count/code/wc_lite.py");
    let text = std::fs::read_to_string(&file).unwrap();
    let line = text.lines().position(|l| l == "# functionality 2").unwrap() + 1;
    let (code, out, err) = rekindle_in(
        &dir,
        &[
            "why",
            &format!("build/wc_lite.py:{line}"),
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["functionality"], 2, "{v}");
    assert_eq!(v["module"], "word-count");
    assert_eq!(
        v["text"],
        "When no argument is given, :App: should read :Input: from standard input."
    );
    assert_eq!(v["spec"]["file"], "word-count.plain");
}

#[test]
fn a_damaged_lock_is_named_not_trusted() {
    let p = Project::new(&["d1"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    std::fs::write(
        p.path().join("rekindle.lock"),
        "version = 1\n[[functionality]]\nmodule = \"app\"\nid = one\n",
    )
    .unwrap();
    let (code, _, err) = p.render(&["--locked", "--format", "text"]);
    assert_eq!(code, 2, "{err}");
    // The TOML reader's own words follow the line: here, that `one` is not a value.
    assert!(
        err.contains("error: rekindle.lock line 4: ") && err.contains("quoted"),
        "{err}"
    );
}

/// A link with a fragment or a query names the file without them: `check` accepts it, its
/// content reaches the prompt under the link's name, and `attest` lists the file's digest.
#[test]
fn a_link_with_a_fragment_brings_its_file_into_the_prompt() {
    let p = Project::new(&["f1"], Behaviour::default());
    let notes = "## format\nEvery line the tool prints ends with a newline.\n";
    std::fs::write(p.path().join("notes.md"), notes).unwrap();
    let text = spec(&["f1"]).replace(
        "- :Tool: is written in bash.",
        "- :Tool: is written in bash, as [the notes](notes.md#format) and [the same notes](notes.md?v=2) say.",
    );
    std::fs::write(p.path().join("app.plain"), text).unwrap();
    let (code, _, err) = rekindle_in(p.path(), &["check", "app.plain"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(p.render(&[]).0, 0);
    let first = p.server.seen()[0].last_user();
    assert!(
        first.contains("## the notes (notes.md#format)") && first.contains(notes),
        "{first}"
    );
    assert!(
        first.contains("## the same notes (notes.md?v=2)"),
        "{first}"
    );
    let (code, out, err) = p.run("attest", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&sha256sum(&p.path().join("notes.md"))),
        "{out}"
    );
}

/// A journal that cannot be read would make a lock that pins no cached replies: the render
/// says so and fails, and the lock it had stays as it was.
#[test]
fn a_lock_is_not_written_from_a_journal_that_cannot_be_read() {
    let p = Project::new(&["j1"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let lock = std::fs::read_to_string(p.path().join("rekindle.lock")).unwrap();
    assert!(lock.contains("cache = ["), "{lock}");
    let journal = p.path().join(".rekindle/journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let damaged = text.replacen('{', "{{", 1);
    std::fs::write(&journal, damaged).unwrap();
    // Nothing is stale, so nothing is appended: only the lock needs the journal.
    let (code, out, err) = p.render(&["--format", "text"]);
    assert_eq!(code, 1, "{out:?}{err}");
    assert!(
        err.contains("the render finished, but the journal cannot be read")
            && err.contains("rekindle journal verify"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("rekindle.lock")).unwrap(),
        lock
    );
}

#[test]
fn cache_gc_keeps_what_the_lock_pins() {
    let p = Project::new(&["g1"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let (code, out, err) = rekindle_in(
        p.path(),
        &[
            "cache",
            "gc",
            "--older-than",
            "0",
            "--spec",
            "app.plain",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["gc"]["removed"].as_u64(), v["gc"]["kept"].as_u64()),
        (Some(0), Some(2)),
        "{v}"
    );
    // A damaged lock pins nothing gc can see: it refuses, and the cache keeps every entry.
    let lock = p.path().join("rekindle.lock");
    let good = std::fs::read_to_string(&lock).unwrap();
    std::fs::write(
        &lock,
        good.replacen("[[functionality]]", "[[functionality]\n", 1),
    )
    .unwrap();
    let (code, out, err) = rekindle_in(
        p.path(),
        &["cache", "gc", "--older-than", "0", "--spec", "app.plain"],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("rekindle.lock line") && err.contains("mend or remove the lock"),
        "{err}"
    );
    let entries = walk_files(&p.path().join(".rekindle/cache"));
    assert_eq!(entries, 2, "nothing was collected");
    std::fs::remove_file(&lock).unwrap();
    let (_, out, _) = rekindle_in(
        p.path(),
        &[
            "cache",
            "gc",
            "--older-than",
            "0",
            "--spec",
            "app.plain",
            "--format",
            "json",
        ],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["gc"]["removed"], 2, "{v}");
}

/// A file's SHA-256 as coreutils' `sha256sum` computes it: independent of rekindle's own code.
fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How many files are under `dir`, at any depth.
fn walk_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk_files(&p)
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Replaces what changes by design from run to run (folders, commit ids, hashes, render ids,
/// timings) so that snapshots hold only what must stay the same.
fn mask(text: &str, dir: &Path) -> String {
    let mut out = text.replace(&dir.display().to_string(), "[DIR]");
    if let Ok(real) = dir.canonicalize() {
        out = out.replace(&real.display().to_string(), "[DIR]");
    }
    let rules = [
        (r"\b[0-9a-f]{64}\b", "[HASH]"),
        (r"\b[0-9a-f]{40}\b", "[COMMIT]"),
        (r"\b[0-9a-f]{12}\b", "[SHORT]"),
        (r"\b[0-9]{9,}-[0-9a-f]{4}\b", "[RENDER_ID]"),
        (r#""seconds":[0-9.e-]+"#, r#""seconds":"[SECS]""#),
        (r"[0-9]+\.[0-9]s\)", "[SECS]s)"),
    ];
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// The outputs of `status` (text and JSON) and `why` (text and JSON) must not change by
/// accident: snapshots over a rendered project, a stale one, one edited by hand.
/// `why` names each model call by the start of its key, and `cache show` prints that call's
/// conversation (system prompt, the functionality's text in the user message) and its reply,
/// from the entry the render stored; a key that is no key, or that no entry has, is a usage
/// error naming the fix; a damaged entry is said to be damaged.
#[test]
fn cache_show_prints_the_conversation_of_a_call_why_names() {
    let p = Project::new(&["first", "second"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let (code, why, err) = rekindle_in(p.path(), &["why", "plain_modules/app/code/main.sh:3"]);
    assert_eq!(code, 0, "{err}");
    let line = why
        .lines()
        .find(|l| l.trim_start().starts_with("code m "))
        .unwrap_or_else(|| panic!("{why}"));
    let short = line.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(short.len(), 12, "{line}");
    let (code, out, err) = rekindle_in(p.path(), &["cache", "show", &short]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("key {short}")), "{out}");
    for part in [
        "\n=== system\n",
        "\n=== user\n",
        "Print second",
        "\n=== reply\n--- FILE: main.sh\n",
    ] {
        assert!(out.contains(part), "{part:?} in\n{out}");
    }
    let (code, json, err) = rekindle_in(
        p.path(),
        &["cache", "show", &short[..8], "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["entry"]["key"].as_str().unwrap().starts_with(&short));
    let messages = v["entry"]["request"]["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(messages
        .iter()
        .any(|m| m["content"].as_str().unwrap().contains("Print second")));
    let (code, _, err) = rekindle_in(p.path(), &["cache", "show", "xyz"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("`xyz` is not the start of a cache key: give at least 6 of its hex digits"),
        "{err}"
    );
    let absent = if short.starts_with("ffffff") {
        "eeeeee"
    } else {
        "ffffff"
    };
    let (code, _, err) = rekindle_in(p.path(), &["cache", "show", absent]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("has a key starting with `{absent}`")),
        "{err}"
    );
    // A damaged entry is reported as damaged, with its file, not as missing.
    let shard = p.path().join(".rekindle/cache/v1").join(&short[..2]);
    let entry = std::fs::read_dir(&shard)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&short[2..])
        })
        .unwrap_or_else(|| panic!("no entry for {short} in {}", shard.display()));
    std::fs::write(&entry, "{\"version\": 1").unwrap();
    let (code, _, err) = rekindle_in(p.path(), &["cache", "show", &short]);
    assert_ne!(code, 0);
    assert!(
        err.contains("damaged cache entry") && err.contains("not a cache entry"),
        "{err}"
    );
    assert!(!err.contains("has a key starting with"), "{err}");
}

#[test]
fn golden_status_and_why_outputs() {
    let p = Project::new(&["g1", "g2", "g3"], Behaviour::default());
    assert_eq!(p.render(&[]).0, 0);
    let url = format!("{}/v1", p.server.url());
    let run = |args: &[&str]| {
        let (code, out, err) = rekindle_in(p.path(), args);
        mask(
            &format!("exit {code}\n--- stdout\n{out}--- stderr\n{err}"),
            p.path(),
        )
    };
    let status = |json: bool| {
        let mut args = vec![
            "status",
            "app.plain",
            "--provider",
            "openai",
            "--base-url",
            &url,
            "--model",
            "fake",
        ];
        if json {
            args.extend(["--format", "json"]);
        }
        run(&args)
    };
    let mut shots = Vec::new();
    shots.push(("status rendered", status(false)));
    shots.push(("status rendered json", status(true)));
    for target in [
        "plain_modules/app/code/main.sh:3",
        "plain_modules/app/code/main.sh",
    ] {
        shots.push(("why", run(&["why", target])));
        shots.push(("why json", run(&["why", target, "--format", "json"])));
    }
    shots.push((
        "why missing",
        run(&["why", "plain_modules/app/code/nope.sh:1"]),
    ));
    std::fs::write(p.path().join("app.plain"), spec(&["g1", "changed", "g3"])).unwrap();
    shots.push(("status stale", status(false)));
    shots.push(("status stale json", status(true)));
    std::fs::write(p.path().join("app.plain"), spec(&["g1", "g2", "g3"])).unwrap();
    std::fs::write(p.code().join("main.sh"), "echo edited\n").unwrap();
    std::fs::write(p.code().join("extra.txt"), "new\n").unwrap();
    shots.push(("status hand edits", status(false)));
    shots.push(("status hand edits json", status(true)));
    shots.push((
        "why hand edit",
        run(&["why", "plain_modules/app/code/main.sh:1"]),
    ));
    let all: String = shots
        .iter()
        .map(|(name, out)| format!("=== {name}\n{out}\n"))
        .collect();
    insta::assert_snapshot!(all);
}

/// Every file under `dir` with its bytes (a link as its target), `.git` folders included.
fn tree(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let to = std::fs::read_link(&p).unwrap();
                out.insert(rel, to.as_os_str().as_encoded_bytes().to_vec());
            } else if ft.is_dir() {
                out.insert(rel, Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

const SCRIPTS_CONFIG: &str =
    "unittests-script: unit.sh\nconformance-tests-script: conformance.sh\ntest-script-timeout: 5\n";

/// `build-dest: .` (or `./`, `..`, a link to the project folder) with `copy-build: true` once
/// deleted the project's own files; now `render` and `status` stop before doing anything, with
/// exit 2 and a message naming the setting and its line, and every file of the project (spec,
/// config, scripts, `.rekindle`, lock, build folder) is still there byte for byte.
#[test]
fn a_build_dest_that_holds_the_project_stops_before_anything_is_touched() {
    let p = Project::new(&["hello"], Behaviour::default());
    let (code, _, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(p.path().join(".rekindle/journal.jsonl").is_file());
    std::os::unix::fs::symlink(p.path(), p.path().join("here")).unwrap();
    for dest in [".", "./", "..", "here", "here/../.."] {
        let config = format!("{SCRIPTS_CONFIG}copy-build: true\nbuild-dest: {dest}\n");
        std::fs::write(p.path().join("config.yaml"), &config).unwrap();
        let before = tree(p.path());
        let calls = p.calls();
        let (code, _, err) = p.render(&["--format", "text"]);
        assert_eq!(code, 2, "build-dest: {dest}\n{err}");
        assert!(err.contains("error[E0805]"), "{dest}: {err}");
        assert!(err.contains("`build-dest`"), "{dest}: {err}");
        assert!(err.contains("config.yaml:5:"), "{dest}: {err}");
        assert_eq!(p.calls(), calls, "{dest}: a model was called");
        assert!(
            tree(p.path()) == before,
            "build-dest: {dest} changed the project"
        );
        let (code, _, err) = rekindle_in(p.path(), &["status", "app.plain"]);
        assert_eq!(code, 2, "{dest}: {err}");
        assert!(err.contains("`build-dest`"), "{dest}: {err}");
        assert!(
            tree(p.path()) == before,
            "status with build-dest: {dest} changed the project"
        );
    }
}

/// Copying the build into `build-dest` touches only what rekindle put there: a file of the
/// user's in the way stops the copy (named in the message, left as it was), other files of the
/// user's stay, and what an earlier copy wrote is replaced.
#[test]
fn copying_the_build_leaves_the_users_files_alone() {
    let p = Project::new(&["hello"], Behaviour::default());
    let config = format!("{SCRIPTS_CONFIG}copy-build: true\nbuild-dest: dist\n");
    std::fs::write(p.path().join("config.yaml"), config).unwrap();
    let dist = p.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("main.sh"), "the user's own main.sh\n").unwrap();
    std::fs::write(dist.join("NOTES.md"), "mine\n").unwrap();
    let (code, _, err) = p.render(&["--format", "text"]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("main.sh") && err.contains("in the way"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dist.join("main.sh")).unwrap(),
        "the user's own main.sh\n"
    );
    std::fs::remove_file(dist.join("main.sh")).unwrap();
    let (code, _, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(output_of(&dist), "hello\n");
    assert_eq!(
        std::fs::read_to_string(dist.join("NOTES.md")).unwrap(),
        "mine\n"
    );
    let manifest = std::fs::read_to_string(dist.join(".rekindle-manifest")).unwrap();
    assert!(manifest.lines().any(|l| l == "main.sh"), "{manifest}");
    assert!(!manifest.contains("NOTES.md"), "{manifest}");
    // The next copy replaces what the last one wrote.
    std::fs::write(p.path().join("app.plain"), spec(&["hello", "world"])).unwrap();
    let (code, _, err) = p.render(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(output_of(&dist), "hello\nworld\n");
    assert_eq!(
        std::fs::read_to_string(dist.join("NOTES.md")).unwrap(),
        "mine\n"
    );
}
