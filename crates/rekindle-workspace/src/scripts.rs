//! Test scripts with the reference's interface: argument 1 the code folder, argument 2 the
//! conformance tests folder; exit 0 pass, 69 the environment is unusable, anything else failure.
//! A script that runs past its timeout is killed with its whole process group and counts as 124.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const EXIT_ENVIRONMENT: i32 = 69;
pub const EXIT_TIMEOUT: i32 = 124;
/// Output kept in memory per run: the start and the end survive, the middle is dropped.
const KEEP: usize = 512 * 1024;

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
    /// stdout and stderr interleaved as written.
    pub output: String,
    pub duration: Duration,
}

#[derive(Debug)]
pub struct ScriptError {
    pub script: String,
    pub detail: String,
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

/// Kills the script running now, if any, with its whole process group.
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

/// Runs `script` with `args` in `cwd`, at most `timeout`.
pub fn run(
    script: &Path,
    args: &[&Path],
    cwd: &Path,
    timeout: Duration,
) -> Result<Run, ScriptError> {
    let err = |detail: String| ScriptError {
        script: script.display().to_string(),
        detail,
    };
    if !script.is_file() {
        return Err(err("no such file".into()));
    }
    let script = script.canonicalize().map_err(|e| err(e.to_string()))?;
    let mut cmd = if is_executable(&script) {
        Command::new(&script)
    } else {
        let mut c = Command::new("bash");
        c.arg(&script);
        c
    };
    let (mut reader, writer) = std::io::pipe().map_err(|e| err(e.to_string()))?;
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(|e| err(e.to_string()))?)
        .stderr(writer)
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
    drop(cmd);
    let pgid = child.id() as i32;
    RUNNING.store(pgid, std::sync::atomic::Ordering::SeqCst);
    let collector = std::thread::spawn(move || {
        let mut head: Vec<u8> = Vec::new();
        let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
        let mut dropped = 0usize;
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if head.len() < KEEP {
                    head.push(b);
                } else {
                    tail.push_back(b);
                    if tail.len() > KEEP {
                        tail.pop_front();
                        dropped += 1;
                    }
                }
            }
        }
        let mut out = String::from_utf8_lossy(&head).into_owned();
        if dropped > 0 {
            out.push_str(&format!("\n[… {dropped} bytes of output dropped …]\n"));
        }
        let tail: Vec<u8> = tail.into_iter().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        out
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(_) => break None,
        }
        if started.elapsed() >= timeout {
            timed_out = true;
            kill_group(pgid, libc::SIGTERM);
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(2) {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            kill_group(pgid, libc::SIGKILL);
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Leftover background processes would keep the output pipe open.
    kill_group(pgid, libc::SIGKILL);
    RUNNING.store(0, std::sync::atomic::Ordering::SeqCst);
    let output = collector.join().unwrap_or_default();
    let duration = started.elapsed();
    let exit_code = if timed_out {
        EXIT_TIMEOUT
    } else {
        status.and_then(|s| s.code()).unwrap_or(1)
    };
    let outcome = match exit_code {
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
            run(&s, &[], d.path(), Duration::from_secs(10))
                .unwrap()
                .outcome,
            Outcome::Environment
        );
        let s = script(d.path(), "exit 3");
        let r = run(&s, &[], d.path(), Duration::from_secs(10)).unwrap();
        assert_eq!((r.outcome, r.exit_code), (Outcome::Failed, 3));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let d = tempfile::tempdir().unwrap();
        // A child that would outlive its parent and keep the pipe open.
        let s = script(d.path(), "sleep 300 & echo started; sleep 300");
        let t = Instant::now();
        let r = run(&s, &[], d.path(), Duration::from_millis(500)).unwrap();
        assert_eq!((r.outcome, r.exit_code), (Outcome::TimedOut, 124));
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(r.output.contains("started"));
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
