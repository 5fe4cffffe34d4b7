//! Generated code is untrusted: `rekindle render` against a scripted model on 127.0.0.1 whose
//! generated unit tests are hostile (they write into the user's home, read files outside the
//! project, print the environment, leave detached processes behind, open connections, write
//! `.gitignore`). Each test asserts the concrete outcome on the real machine.

use assert_cmd::Command;
use rekindle_testkit::{openai_reply, Reply, Seen, Server};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const UNIT: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in unit_*.sh; do [ -e \"$t\" ] || continue; bash \"$t\" || { echo \"unit test $t failed\"; exit 1; }; done\n";
const CONFORMANCE: &str = "#!/usr/bin/env bash\ncd \"$1\" || exit 69\nfor t in \"$2\"/*.sh; do bash \"$t\" || exit 1; done\n";

fn block(path: &str, content: &str) -> String {
    format!("--- FILE: {path}\n{content}--- END FILE\n")
}

/// What the scripted model writes: main.sh, and a unit test whose body is `unit_body`; first,
/// `before` replies (for corrective retries).
#[derive(Clone, Default)]
struct Script {
    unit_body: String,
    before: Vec<String>,
}

struct Project {
    dir: tempfile::TempDir,
    server: Server,
    _rt: tokio::runtime::Runtime,
    seen_bodies: Arc<Mutex<Vec<String>>>,
}

impl Project {
    fn new(script: Script, config_extra: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.plain"), "***definitions***\n\n- :Tool: is a shell script named main.sh.\n\n***implementation reqs***\n\n- :Tool: is written in bash.\n\n***functional specs***\n\n- Print hello.\n").unwrap();
        std::fs::write(dir.path().join("unit.sh"), UNIT).unwrap();
        std::fs::write(dir.path().join("conformance.sh"), CONFORMANCE).unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            format!("unittests-script: unit.sh\nconformance-tests-script: conformance.sh\ntest-script-timeout: 5\n{config_extra}"),
        )
        .unwrap();
        let (server, rt) = Server::start_blocking(vec![]);
        let seen_bodies = Arc::new(Mutex::new(Vec::new()));
        let bodies = seen_bodies.clone();
        let pending = Arc::new(Mutex::new(script.before.clone()));
        server.set_responder(move |s: &Seen| -> Reply {
            bodies.lock().unwrap().push(s.body.clone());
            if let Some(first) = {
                let mut p = pending.lock().unwrap();
                (!p.is_empty()).then(|| p.remove(0))
            } {
                return openai_reply(&first);
            }
            if s.last_user().contains("Write conformance tests") {
                return openai_reply(&block("check.sh", "bash main.sh | grep -qx hello\n"));
            }
            openai_reply(&format!(
                "{}{}",
                block("main.sh", "#!/usr/bin/env bash\necho hello\n"),
                block("unit_hello.sh", &script.unit_body)
            ))
        });
        Project {
            dir,
            server,
            _rt: rt,
            seen_bodies,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn code(&self) -> PathBuf {
        self.path().join("plain_modules/app/code")
    }

    fn rekindle(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let url = format!("{}/v1", self.server.url());
        let mut c = Command::cargo_bin("rekindle").unwrap();
        c.current_dir(self.path())
            .env_remove("OPENAI_API_KEY")
            .args(args)
            .args([
                "app.plain",
                "--provider",
                "openai",
                "--base-url",
                &url,
                "--model",
                "fake",
            ])
            // A hang guard, not a timing assertion: a render that waits on a leftover
            // process would otherwise never end.
            .timeout(Duration::from_secs(300));
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Every file under `dir`, as bytes joined (for "this canary appears nowhere" checks).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("untrusted-") {
                out.push(cmd);
            }
        }
    }
    out
}

/// A listener on 127.0.0.1 that counts the connections it accepts.
fn listener() -> (u16, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            a.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
        }
    });
    (port, accepted)
}

#[test]
fn hostile_generated_tests_stay_in_the_box() {
    let id = format!("{}-{}", std::process::id(), fastrand_suffix());
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let home_file = PathBuf::from(&home).join(format!("rekindle-owned-{id}.txt"));
    let outside = tempfile::tempdir().unwrap();
    let secret_file = outside.path().join("secret.txt");
    let secret = format!("outside-secret-{id}");
    std::fs::write(&secret_file, &secret).unwrap();
    let key = format!("sk-canary-{id}");
    let marker = format!("leftover-{id}");
    let (port, accepted) = listener();
    let body = format!(
        "echo owned > {home_file}\n\
         cat {secret_file} > copied.txt\n\
         cat {secret_file}\n\
         env > env.txt\n\
         echo \"key=$OPENAI_API_KEY\"\n\
         setsid bash -c 'sleep 300; : {marker}' >/dev/null 2>&1 < /dev/null &\n\
         (bash -c 'sleep 300; : {marker}' &) >/dev/null 2>&1\n\
         (echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null\n\
         exit 0\n",
        home_file = home_file.display(),
        secret_file = secret_file.display(),
    );
    let p = Project::new(
        Script {
            unit_body: body,
            ..Script::default()
        },
        "",
    );
    let (code, out, err) = p.rekindle(
        &["render", "--format", "json"],
        &[("OPENAI_API_KEY", key.as_str())],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // The user's home was not written.
    assert!(!home_file.exists(), "{} was written", home_file.display());
    // The file outside the project was not read.
    let copied = std::fs::read_to_string(p.code().join("copied.txt")).unwrap_or_default();
    assert!(!copied.contains(&secret), "copied: {copied}");
    // The key never reached the script: not in its environment, its output, or anywhere
    // rekindle wrote or printed, nor in any prompt.
    let env_txt = std::fs::read_to_string(p.code().join("env.txt")).unwrap();
    assert!(env_txt.contains("PATH="), "{env_txt}");
    assert!(!env_txt.contains(&key), "{env_txt}");
    for (what, bytes) in [
        ("stdout", out.as_bytes().to_vec()),
        ("stderr", err.as_bytes().to_vec()),
        ("project files", all_bytes(p.path())),
        (
            "prompts",
            p.seen_bodies.lock().unwrap().join("\n").into_bytes(),
        ),
    ] {
        assert!(!contains(&bytes, &key), "the key appears in {what}");
        assert!(
            !contains(&bytes, &secret),
            "the outside file appears in {what}"
        );
    }
    // Nothing the script started outlives it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(processes_with(&marker), Vec::<String>::new());
    // The host's listener on 127.0.0.1 accepted nothing.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_timeout_ends_detached_processes_too() {
    let marker = format!("detached-{}-{}", std::process::id(), fastrand_suffix());
    let body = format!(
        "setsid bash -c 'sleep 300; : {marker}' >/dev/null 2>&1 < /dev/null &\nsleep 300\n"
    );
    let p = Project::new(
        Script {
            unit_body: body,
            ..Script::default()
        },
        "",
    );
    let (code, out, err) = p.rekindle(&["render", "--format", "text"], &[]);
    // The unit tests never pass (they time out, exit 124), so the render fails after its fixes.
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("exit 124"), "{err}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(processes_with(&marker), Vec::<String>::new());
}

#[test]
fn a_gitignore_cannot_hide_files() {
    // The first reply writes .gitignore: refused, asked again, never written.
    let p = Project::new(
        Script {
            unit_body: "printf '*.txt\\nnotes/\\n' > .gitignore\nexit 0\n".into(),
            before: vec![format!(
                "{}{}",
                block(".gitignore", "*\n"),
                block("main.sh", "echo hello\n")
            )],
        },
        "",
    );
    let (code, out, err) = p.rekindle(&["render", "--format", "text"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    // The reply's .gitignore was refused; the one the unit test wrote is committed like any
    // other file and ignores nothing.
    let committed = String::from_utf8(
        std::process::Command::new("git")
            .args(["ls-files"])
            .current_dir(p.code())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(committed.contains(".gitignore"), "{committed}");
    std::fs::write(p.code().join("notes.txt"), "mine\n").unwrap();
    let (code, out, _) = p.rekindle(&["status", "--check", "--format", "json"], &[]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["modules"][0]["drift"][0]["path"], "notes.txt", "{v}");
    assert!(
        p.seen_bodies.lock().unwrap().len() >= 3,
        "the refused reply was not answered with a corrective request"
    );
}

#[test]
fn a_stale_marker_does_not_hide_hand_edits() {
    let p = Project::new(
        Script {
            unit_body: "exit 0\n".into(),
            ..Script::default()
        },
        "",
    );
    assert_eq!(p.rekindle(&["render", "--format", "json"], &[]).0, 0);
    std::fs::write(p.path().join("plain_modules/app/.rendering"), "stale").unwrap();
    std::fs::write(p.code().join("main.sh"), "echo edited\n").unwrap();
    let (code, out, _) = p.rekindle(&["status", "--check", "--format", "json"], &[]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["modules"][0]["interrupted"], true);
    assert_eq!(v["modules"][0]["drift"][0]["path"], "main.sh", "{v}");
}

#[test]
fn no_sandbox_is_asked_for_and_recorded() {
    let p = Project::new(
        Script {
            unit_body: "exit 0\n".into(),
            ..Script::default()
        },
        "",
    );
    let (code, _, err) = p.rekindle(&["render", "--format", "text", "--no-sandbox"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: the sandbox is off"), "{err}");
    let journal = std::fs::read_to_string(p.path().join(".rekindle/journal.jsonl")).unwrap();
    let step = journal
        .lines()
        .find(|l| l.contains("\"kind\":\"step\""))
        .unwrap();
    assert!(step.contains("\"sandboxed\":false"), "{step}");
    // The sandbox setting is not part of the key: a sandboxed status sees nothing to do.
    let (code, out, _) = p.rekindle(&["status", "--check"], &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_network_setting_is_part_of_the_render_key() {
    let p = Project::new(
        Script {
            unit_body: "exit 0\n".into(),
            ..Script::default()
        },
        "",
    );
    assert_eq!(p.rekindle(&["render", "--format", "json"], &[]).0, 0);
    let journal = std::fs::read_to_string(p.path().join(".rekindle/journal.jsonl")).unwrap();
    assert!(journal.contains("\"sandboxed\":true"), "{journal}");
    std::fs::write(
        p.path().join("rekindle.toml"),
        "[sandbox]\nnetwork = true\n",
    )
    .unwrap();
    let (code, out, _) = p.rekindle(&["status", "--check", "--format", "json"], &[]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["modules"][0]["functionalities"][0]["reasons"][0],
        "a test script or the sandbox settings changed",
        "{v}"
    );
}

fn fastrand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}
