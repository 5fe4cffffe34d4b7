//! Test scripts with the reference's interface: argument 1 the code folder, argument 2 the
//! conformance tests folder; exit 0 pass, 69 the environment is unusable, anything else failure.
//! Every script runs under a [`SandboxPolicy`] (see [`crate::sandbox`]): the folders it is given
//! are the only ones it can write. A script that runs past its timeout is killed with every
//! process it started and counts as 124; one whose output passes the policy's bound is stopped.

use crate::sandbox::{self, Mode, SandboxError, SandboxPolicy};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const EXIT_ENVIRONMENT: i32 = 69;
pub const EXIT_TIMEOUT: i32 = 124;
/// Output kept in memory per run: the start and the end survive, the middle is dropped.
const KEEP: usize = 512 * 1024;
/// How long output is still read after the script ended (processes it left running outside a
/// sandbox may hold the pipe open for ever).
const DRAIN: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    /// Exit 69: the script says the environment cannot run tests; no fix will help.
    Environment,
    TimedOut,
}

#[derive(Clone, Debug)]
pub struct Run {
    pub outcome: Outcome,
    pub exit_code: i32,
    /// stdout and stderr interleaved as written, with rekindle's notes (a limit reached) last.
    pub output: String,
    pub duration: Duration,
}

#[derive(Debug)]
pub struct ScriptError {
    pub script: String,
    pub detail: String,
    /// Set when the sandbox could not be set up (the detail is its message, cause and fix).
    pub sandbox: Option<SandboxError>,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot run {}: {}", self.script, self.detail)
    }
}

impl std::error::Error for ScriptError {}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// The process group of the script running now (0 when none), so that an interrupted rekindle
/// can take its script down with it.
static RUNNING: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Kills the script running now, if any, with its whole process group (in the sandbox: with
/// every process it started).
pub fn kill_running() {
    let pgid = RUNNING.swap(0, std::sync::atomic::Ordering::SeqCst);
    if pgid > 0 {
        kill_group(pgid, libc::SIGKILL);
    }
}

fn kill_group(pgid: i32, signal: i32) {
    // SAFETY: killpg only sends a signal; a stale group id fails harmlessly with ESRCH.
    unsafe {
        libc::killpg(pgid, signal);
    }
}

/// Output as it is collected: bounded in memory whatever the script writes.
#[derive(Default)]
struct Collected {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: usize,
    total: u64,
    /// The script wrote more than the policy allows and was stopped.
    overflow: bool,
}

impl Collected {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = KEEP.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..room]);
        self.tail.extend(&bytes[room..]);
        if self.tail.len() > KEEP {
            let extra = self.tail.len() - KEEP;
            self.tail.drain(..extra);
            self.dropped += extra;
        }
    }

    fn text(&self) -> String {
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            out.push_str(&format!(
                "\n[… {} bytes of output dropped …]\n",
                self.dropped
            ));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    }
}

/// Added to a failed run's output that shows a network error while the sandbox has no network.
pub const NO_NETWORK_NOTE: &str =
    "\n[the sandbox has no network; if the project's scripts need it \
     (to install packages, say), allow it with network = true in [sandbox] of rekindle.toml]\n";

/// Whether output reads like a failed name lookup or connection.
fn looks_offline(output: &str) -> bool {
    [
        "Temporary failure in name resolution",
        "Name or service not known",
        "Could not resolve host",
        "getaddrinfo",
        "EAI_AGAIN",
        "ENOTFOUND",
        "Network is unreachable",
        "ENETUNREACH",
        "NewConnectionError",
    ]
    .iter()
    .any(|s| output.contains(s))
}

/// Runs `script` with `args` in `cwd`, at most `timeout`, under `policy`. The folders among
/// `args` and `cwd` are what the script may write (the reference's interface hands a script the
/// module's code folder and a tests folder); the script file itself is readable.
pub fn run(
    script: &Path,
    args: &[&Path],
    cwd: &Path,
    timeout: Duration,
    policy: &SandboxPolicy,
) -> Result<Run, ScriptError> {
    let err = |detail: String, sandbox: Option<SandboxError>| ScriptError {
        script: script.display().to_string(),
        detail,
        sandbox,
    };
    if !script.is_file() {
        return Err(err("no such file".into(), None));
    }
    let script = script
        .canonicalize()
        .map_err(|e| err(e.to_string(), None))?;
    let cwd = cwd
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", cwd.display()), None))?;
    // Canonical, so that the paths mean the same inside the sandbox as outside.
    let args: Vec<PathBuf> = args
        .iter()
        .map(|a| a.canonicalize().unwrap_or_else(|_| a.to_path_buf()))
        .collect();
    let mut writable: Vec<PathBuf> = vec![cwd.clone()];
    for a in &args {
        if a.exists() && !writable.contains(a) {
            writable.push(a.clone());
        }
    }
    let mut program: Vec<OsString> = Vec::new();
    if !is_executable(&script) {
        program.push("bash".into());
    }
    program.push(script.clone().into());
    program.extend(args.iter().map(|a| a.clone().into_os_string()));

    let (mut reader, writer) = std::io::pipe().map_err(|e| err(e.to_string(), None))?;
    let mut confined = sandbox::confine(policy, &program, &cwd, &writable, &[script], writer)
        .map_err(|e| err(e.to_string(), Some(e)))?;
    confined.cmd.stdin(Stdio::null()).process_group(0);
    let started = Instant::now();
    let mut child = confined.spawn().map_err(|e| err(e.to_string(), None))?;
    let pgid = child.id() as i32;
    RUNNING.store(pgid, std::sync::atomic::Ordering::SeqCst);

    let limit = policy.limits.output_bytes;
    let collected = Arc::new(Mutex::new(Collected::default()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    {
        let collected = Arc::clone(&collected);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut c = collected.lock().unwrap_or_else(|p| p.into_inner());
                c.push(&buf[..n]);
                if limit > 0 && c.total > limit {
                    c.overflow = true;
                    kill_group(pgid, libc::SIGKILL);
                    break;
                }
            }
            let _ = done_tx.send(());
        });
    }

    // A thread waits for the exit, so that it is seen at once, not at the next poll.
    let (exit_tx, exit_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = exit_tx.send(child.wait().ok());
    });
    let mut timed_out = false;
    let status = match exit_rx.recv_timeout(timeout) {
        Ok(status) => status,
        Err(_) => {
            timed_out = true;
            kill_group(pgid, libc::SIGTERM);
            if exit_rx.recv_timeout(Duration::from_secs(2)).is_err() {
                kill_group(pgid, libc::SIGKILL);
                let _ = exit_rx.recv();
            }
            None
        }
    };
    // Leftover background processes in the group would keep the output pipe open.
    kill_group(pgid, libc::SIGKILL);
    RUNNING.store(0, std::sync::atomic::Ordering::SeqCst);
    let drained = done_rx.recv_timeout(DRAIN).is_ok();
    let duration = started.elapsed();
    let c = collected.lock().unwrap_or_else(|p| p.into_inner());
    let mut output = c.text();
    let exit_code = if timed_out {
        EXIT_TIMEOUT
    } else {
        status.and_then(|s| s.code()).unwrap_or(1)
    };
    if !timed_out && !c.overflow {
        if let Some(detail) = confined.setup_errors(&output, exit_code) {
            let e = sandbox::setup_error(detail);
            return Err(err(e.to_string(), Some(e)));
        }
    }
    if c.overflow {
        output.push_str(&format!(
            "\n[rekindle stopped the script: its output passed {limit} bytes (sandbox limit output-bytes)]\n"
        ));
    }
    if confined.cgroup.as_ref().is_some_and(|cg| cg.oom_killed()) {
        output.push_str(&format!(
            "\n[a process was killed: the script reached the memory limit of {} MiB (sandbox limit memory-mb)]\n",
            policy.limits.memory_mb
        ));
    }
    if !drained {
        output.push_str(
            "\n[processes the script left running kept its output open; the rest was not read]\n",
        );
    }
    if exit_code != 0 && policy.mode == Mode::Enabled && !policy.network && looks_offline(&output) {
        output.push_str(NO_NETWORK_NOTE);
    }
    let outcome = match exit_code {
        _ if c.overflow => Outcome::Failed,
        0 => Outcome::Passed,
        EXIT_ENVIRONMENT => Outcome::Environment,
        _ if timed_out => Outcome::TimedOut,
        _ => Outcome::Failed,
    };
    Ok(Run {
        outcome,
        exit_code,
        output,
        duration,
    })
}

/// Script output as a prompt shows it wherever and whenever the project is rendered. The
/// absolute `folders` are written by the names prompts use (the longest first, so a folder
/// inside another keeps its own name); other temporary paths, durations, timestamps and memory
/// addresses become placeholders. Prompts are hashed into cache keys: without this, the same
/// failing test asks another question in another folder or a second later, and the cache (and a
/// locked replay) misses.
pub fn normalise_for_prompt(output: &str, folders: &[(&Path, &str)]) -> String {
    use regex::Regex;
    use std::sync::LazyLock;
    static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
        [
            // A temporary folder's own name (`/tmp/tmpk3j_x1/…`, `/tmp/python_app`).
            (r#"(/(?:var/)?tmp)/[^/\s'":,)\]]+"#, "$1/<tmp>"),
            // 2026-11-26 21:46:57.123, 2026-11-26T21:46:57Z
            (
                r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
                "<timestamp>",
            ),
            // Ran 3 tests in 0.002s; 1 passed in 0.05s; (12ms); 1.5 seconds
            (
                r"\b\d+\.\d+ ?(?:s|ms|us|µs|sec|secs|seconds)\b|\b\d+ ?ms\b",
                "<time>",
            ),
            // <object at 0x7f3a2b1c9d00>
            (r"\b0x[0-9a-fA-F]{6,}\b", "0x<addr>"),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("a fixed pattern"), r))
        .collect()
    });
    let mut named: Vec<(String, &str)> = folders
        .iter()
        .map(|(p, n)| (p.display().to_string(), *n))
        .filter(|(p, _)| p.len() > 1)
        .collect();
    named.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    let mut out = output.to_string();
    for (abs, name) in &named {
        // Only whole path components: `/b/code` is not the start of `/b/code2`.
        let re = Regex::new(&format!(r"{}(/|\b|$)", regex::escape(abs))).expect("an escaped path");
        let with = format!("{}$1", name.replace('$', "$$"));
        out = re.replace_all(&out, with.as_str()).into_owned();
    }
    for (re, with) in PATTERNS.iter() {
        out = re.replace_all(&out, *with).into_owned();
    }
    out
}

/// Cuts long output for a prompt: whole lines from the start and (mostly) the end, where test
/// runners print their summary and the failure that matters.
pub fn cut_for_prompt(output: &str, max_bytes: usize) -> String {
    if output.len() <= max_bytes {
        return output.to_string();
    }
    let head_budget = max_bytes / 4;
    let tail_budget = max_bytes - head_budget;
    let lines: Vec<&str> = output.lines().collect();
    let mut head = Vec::new();
    let mut used = 0;
    for l in &lines {
        if used + l.len() + 1 > head_budget {
            break;
        }
        used += l.len() + 1;
        head.push(*l);
    }
    let mut tail = Vec::new();
    used = 0;
    for l in lines.iter().skip(head.len()).rev() {
        if used + l.len() + 1 > tail_budget {
            break;
        }
        used += l.len() + 1;
        tail.push(*l);
    }
    tail.reverse();
    let cut = lines.len() - head.len() - tail.len();
    let mut out = head.join("\n");
    out.push_str(&format!("\n[… {cut} lines cut …]\n"));
    out.push_str(&tail.join("\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_reads_the_same_in_another_folder_and_at_another_time() {
        let at = |root: &str, secs: &str, tmp: &str, addr: &str| {
            let code = format!("{root}/plain_modules/app/code");
            let tests = format!("{root}/plain_modules/app/tests/f01");
            let out = format!(
                "Traceback (most recent call last):\n  File \"{tests}/test_app.py\", line 7, in test_x\n    from main import f\n  File \"{code}/main.py\", line 2\nAssertionError: <main.Thing object at {addr}> != 3\n  File \"/tmp/{tmp}/main.py\", line 2\n{root}/plain_modules/app/code2/x.py stays apart\n2026-11-26 21:4{}:57,123 INFO started\n----\nRan 3 tests in {secs}s\n\nFAILED (failures=1)\n=== 1 failed, 2 passed in {secs}s ===\n(12ms)\n",
                &secs[3..4]
            );
            normalise_for_prompt(
                &out,
                &[
                    (Path::new(&code), "."),
                    (Path::new(&tests), "conformance_tests"),
                    (Path::new(&format!("{root}/plain_modules")), "<build>"),
                ],
            )
        };
        let a = at("/home/u/proj", "0.002", "python_app", "0x7f3a2b1c9d00");
        let b = at("/srv/ci/other", "0.017", "tmpk3j_x1", "0x55d0c0ffee00");
        assert_eq!(a, b);
        // What stays and what goes, written out by hand.
        assert!(
            a.contains("File \"conformance_tests/test_app.py\", line 7"),
            "{a}"
        );
        assert!(a.contains("File \"./main.py\", line 2"), "{a}");
        assert!(a.contains("File \"/tmp/<tmp>/main.py\""), "{a}");
        assert!(a.contains("<build>/app/code2/x.py stays apart"), "{a}");
        assert!(a.contains("<main.Thing object at 0x<addr>> != 3"), "{a}");
        assert!(a.contains("<timestamp> INFO started"), "{a}");
        assert!(a.contains("Ran 3 tests in <time>\n"), "{a}");
        assert!(a.contains("1 failed, 2 passed in <time> ==="), "{a}");
        assert!(a.contains("(<time>)"), "{a}");
        // Numbers that are not timings are the test's business: they stay.
        let kept = normalise_for_prompt("assert 0.1 + 0.2 == 0.3\nexpected 5 got 12\n", &[]);
        assert_eq!(kept, "assert 0.1 + 0.2 == 0.3\nexpected 5 got 12\n");
    }

    fn sandboxed() -> SandboxPolicy {
        SandboxPolicy::default()
    }

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let p = dir.join("s.sh");
        std::fs::write(&p, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        p
    }

    #[test]
    fn exit_codes_and_arguments() {
        let d = tempfile::tempdir().unwrap();
        let s = script(
            d.path(),
            "echo \"code=$1 tests=$2\"; echo err >&2; exit ${EXIT:-0}",
        );
        let r = run(
            &s,
            &[Path::new("c"), Path::new("t")],
            d.path(),
            Duration::from_secs(10),
            &sandboxed(),
        )
        .unwrap();
        assert_eq!(r.outcome, Outcome::Passed);
        assert!(
            r.output.contains("code=c tests=t") && r.output.contains("err"),
            "{}",
            r.output
        );
        let s = script(d.path(), "exit 69");
        assert_eq!(
            run(&s, &[], d.path(), Duration::from_secs(10), &sandboxed())
                .unwrap()
                .outcome,
            Outcome::Environment
        );
        let s = script(d.path(), "exit 3");
        let r = run(&s, &[], d.path(), Duration::from_secs(10), &sandboxed()).unwrap();
        assert_eq!((r.outcome, r.exit_code), (Outcome::Failed, 3));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let d = tempfile::tempdir().unwrap();
        // A child that would outlive its parent and keep the pipe open.
        let s = script(d.path(), "sleep 300 & echo started; sleep 300");
        let t = Instant::now();
        let r = run(&s, &[], d.path(), Duration::from_millis(500), &sandboxed()).unwrap();
        assert_eq!((r.outcome, r.exit_code), (Outcome::TimedOut, 124));
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(r.output.contains("started"));
    }

    #[test]
    fn a_network_failure_names_the_setting() {
        let d = tempfile::tempdir().unwrap();
        let s = script(
            d.path(),
            "python3 -c \"import socket; socket.getaddrinfo('pypi.org', 443)\"",
        );
        let r = run(&s, &[], d.path(), Duration::from_secs(30), &sandboxed()).unwrap();
        assert_eq!(r.outcome, Outcome::Failed, "{}", r.output);
        assert!(r.output.ends_with(NO_NETWORK_NOTE), "{}", r.output);
        // A failure that is not about the network gets no such note.
        let s = script(d.path(), "echo 'AssertionError: 1 != 2'; exit 1");
        let r = run(&s, &[], d.path(), Duration::from_secs(30), &sandboxed()).unwrap();
        assert!(!r.output.contains("network"), "{}", r.output);
    }

    #[test]
    fn cutting_keeps_head_and_tail() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let cut = cut_for_prompt(&text, 400);
        assert!(cut.len() <= 450, "{}", cut.len());
        assert!(cut.starts_with("line 0\n") && cut.ends_with("line 999"));
        assert!(cut.contains("lines cut"));
    }
}
