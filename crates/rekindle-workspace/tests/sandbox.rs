//! The sandbox against hostile scripts, for real: every test runs bubblewrap and asserts the
//! concrete outcome (the file is absent, the listener accepted nothing, no process survives).
//! Where the sandbox cannot be set up these tests fail; they are never skipped.

use rekindle_workspace::sandbox::{Limits, Mode, ProcessLimit, SandboxError, SandboxPolicy};
use rekindle_workspace::scripts::{self, Outcome, Run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A project as rekindle lays it out: specs, `.rekindle`, the test script, and a build folder
/// with two modules.
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    code: PathBuf,
    tests: PathBuf,
    other_code: PathBuf,
    /// Unique per test, for file names and process markers.
    tag: String,
}

const CANARY_KEY: &str = "canary-7f3a9c1e-do-not-leak";

fn setup() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The parent's environment holds a key, as a user's would.
        std::env::set_var("OPENAI_API_KEY", CANARY_KEY);
        std::env::set_var("GITHUB_TOKEN", CANARY_KEY);
        if let Err(e) = SandboxPolicy::default().probe() {
            panic!("the sandbox must work on this machine: {e}");
        }
    });
}

fn project() -> Project {
    setup();
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tag = format!(
        "rk{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let code = root.join("build/hello/code");
    let tests = root.join("build/hello/tests/f01");
    let other_code = root.join("build/base/code");
    for d in [&code, &tests, &other_code, &root.join(".rekindle")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::create_dir_all(code.join(".git")).unwrap();
    std::fs::write(code.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
    std::fs::write(
        root.join("hello.plain"),
        "***functional specs***\n- say hi\n",
    )
    .unwrap();
    std::fs::write(root.join(".rekindle/journal.jsonl"), "{}\n").unwrap();
    std::fs::write(other_code.join("base.py"), "SECRET = 'other-module'\n").unwrap();
    Project {
        _dir: dir,
        root,
        code,
        tests,
        other_code,
        tag,
    }
}

impl Project {
    fn run(&self, body: &str, policy: &SandboxPolicy, timeout: Duration) -> Run {
        let script = self.root.join("run_tests.sh");
        std::fs::write(&script, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        scripts::run(
            &script,
            &[&self.code, &self.tests],
            &self.code,
            timeout,
            policy,
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn sandboxed() -> SandboxPolicy {
    SandboxPolicy::default()
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

fn kill_marked(marker: &str) {
    for p in processes_with(marker) {
        if let Some(pid) = p.split(':').next().and_then(|p| p.parse::<i32>().ok()) {
            // SAFETY: kill only sends a signal, to a process this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

#[test]
fn writes_outside_the_given_folders_do_not_reach_the_machine() {
    let p = project();
    let in_home = home().join(format!("{}-home-write", p.tag));
    let outside = std::env::temp_dir().join(format!("{}-tmp-write", p.tag));
    let spec_before = std::fs::read(p.root.join("hello.plain")).unwrap();
    let body = format!(
        "echo pwned > '{home}'\n\
         echo pwned > \"$HOME/planted\"\n\
         echo pwned > '{outside}'\n\
         echo pwned > '{spec}'\n\
         echo pwned >> '{journal}'\n\
         echo pwned > '{other}/base.py'\n\
         echo pwned > \"$1/.git/HEAD\"\n\
         rm -rf '{root}/.rekindle'\n\
         exit 0",
        home = in_home.display(),
        outside = outside.display(),
        spec = p.root.join("hello.plain").display(),
        journal = p.root.join(".rekindle/journal.jsonl").display(),
        other = p.other_code.display(),
        root = p.root.display(),
    );
    let r = p.run(&body, &sandboxed(), Duration::from_secs(20));
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    assert!(!in_home.exists(), "a file was written into the user's home");
    assert!(!home().join("planted").exists());
    assert!(!outside.exists(), "a file was written outside the project");
    assert_eq!(
        std::fs::read(p.root.join("hello.plain")).unwrap(),
        spec_before
    );
    assert_eq!(
        std::fs::read_to_string(p.root.join(".rekindle/journal.jsonl")).unwrap(),
        "{}\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.other_code.join("base.py")).unwrap(),
        "SECRET = 'other-module'\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.code.join(".git/HEAD")).unwrap(),
        "ref: refs/heads/main\n",
        "the code folder's repository is read-only"
    );
}

#[test]
fn files_outside_the_project_cannot_be_read() {
    let p = project();
    let canary = format!("{}-secret-content", p.tag);
    let in_home = home().join(format!("{}-home-secret", p.tag));
    std::fs::write(&in_home, &canary).unwrap();
    std::fs::write(p.root.join("hello.plain"), &canary).unwrap();
    std::fs::write(p.other_code.join("base.py"), &canary).unwrap();
    let body = format!(
        "cat '{home_file}' '{spec}' '{other}/base.py' /etc/shadow\n\
         cp '{home_file}' \"$1/copied\"\n\
         ls -la '{home}' '{root}' '{root}/.rekindle'\n\
         exit 0",
        home_file = in_home.display(),
        spec = p.root.join("hello.plain").display(),
        other = p.other_code.display(),
        home = home().display(),
        root = p.root.display(),
    );
    let r = p.run(&body, &sandboxed(), Duration::from_secs(20));
    std::fs::remove_file(&in_home).unwrap();
    assert!(!r.output.contains(&canary), "{}", r.output);
    let shadow = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    if let Some(first) = shadow.lines().next().filter(|l| !l.is_empty()) {
        assert!(
            !r.output.contains(first),
            "/etc/shadow was readable: {}",
            r.output
        );
    }
    assert!(!r.output.contains("journal.jsonl"), "{}", r.output);
    assert!(!p.code.join("copied").exists());
    assert!(
        r.output.contains("No such file or directory"),
        "{}",
        r.output
    );
}

#[test]
fn kernel_settings_are_read_only() {
    let p = project();
    // Non-destructive: `test -w` asks, and the one write puts back the value already there.
    let body =
        "for f in /proc/sys/vm/swappiness /proc/sysrq-trigger /proc/irq/default_smp_affinity \
                /proc/sys/kernel/hostname; do\n\
                  if [ -e \"$f\" ] && [ -w \"$f\" ]; then echo \"WRITABLE $f\"; fi\n\
                done\n\
                v=$(cat /proc/sys/vm/swappiness)\n\
                echo \"$v\" > /proc/sys/vm/swappiness && echo WROTE-SYSCTL\n\
                cat /proc/keys /proc/timer_list 2>&1 | head -3\n\
                exit 0";
    let r = p.run(body, &sandboxed(), Duration::from_secs(20));
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    assert!(!r.output.contains("WRITABLE"), "{}", r.output);
    assert!(!r.output.contains("WROTE-SYSCTL"), "{}", r.output);
    assert!(r.output.contains("Read-only file system"), "{}", r.output);
}

#[test]
fn the_keyrings_and_other_kernel_calls_are_refused() {
    let p = project();
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0): root's keyring outside, were it
    // allowed; and the same call by its x32 number, which a filter must not let through.
    let body = "python3 - <<'EOF'\n\
                import ctypes, os, platform\n\
                libc = ctypes.CDLL(None, use_errno=True)\n\
                nr = {'x86_64': 250, 'aarch64': 219}[platform.machine()]\n\
                calls = [nr] + ([nr | 0x40000000] if platform.machine() == 'x86_64' else [])\n\
                for n in calls:\n\
                \x20   r = libc.syscall(n, 0, -4, 0)\n\
                \x20   print('keyctl', hex(n), r, os.strerror(ctypes.get_errno()))\n\
                EOF";
    let r = p.run(body, &sandboxed(), Duration::from_secs(20));
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    let lines: Vec<&str> = r
        .output
        .lines()
        .filter(|l| l.starts_with("keyctl"))
        .collect();
    assert!(!lines.is_empty(), "{}", r.output);
    for l in lines {
        assert!(l.contains(" -1 Operation not permitted"), "{}", r.output);
    }
}

#[test]
fn no_key_in_the_environment() {
    let p = project();
    let body = "env\ncat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'\n\
                python3 -c 'import os; print(dict(os.environ))'\nexit 0";
    let r = p.run(body, &sandboxed(), Duration::from_secs(20));
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    assert!(r.output.contains("PATH="), "{}", r.output);
    assert!(!r.output.contains(CANARY_KEY), "{}", r.output);
    assert!(!r.output.contains("OPENAI_API_KEY"), "{}", r.output);
    // Without the sandbox the allow-list still applies.
    let r = p.run(body, &SandboxPolicy::disabled(), Duration::from_secs(20));
    assert!(r.output.contains("PATH="), "{}", r.output);
    assert!(!r.output.contains(CANARY_KEY), "{}", r.output);
}

/// Background processes that try to escape: a `setsid` one, a double-forked one, a plain one.
fn escapees(marker: &str) -> String {
    format!(
        "setsid bash -c 'exec -a {marker}-setsid sleep 300' &\n\
         ( ( exec -a {marker}-double sleep 300 ) & ) &\n\
         ( exec -a {marker}-plain sleep 300 ) &\n\
         nohup bash -c 'trap \"\" TERM HUP; exec -a {marker}-nohup sleep 300' >/dev/null 2>&1 &\n\
         sleep 0.3\n"
    )
}

#[test]
fn a_timeout_ends_every_descendant() {
    let p = project();
    let marker = format!("{}-mark", p.tag);
    let body = format!("{}echo started\nsleep 300", escapees(&marker));
    let t = Instant::now();
    let r = p.run(&body, &sandboxed(), Duration::from_secs(1));
    assert_eq!(
        (r.outcome, r.exit_code),
        (Outcome::TimedOut, 124),
        "{}",
        r.output
    );
    assert!(r.output.contains("started"), "{}", r.output);
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let left = processes_with(&marker);
    kill_marked(&marker);
    assert!(left.is_empty(), "survivors: {left:?}");
}

#[test]
fn a_script_that_exits_leaves_nothing_running() {
    let p = project();
    let marker = format!("{}-mark", p.tag);
    let body = format!("{}exit 0", escapees(&marker));
    let t = Instant::now();
    let r = p.run(&body, &sandboxed(), Duration::from_secs(30));
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let left = processes_with(&marker);
    kill_marked(&marker);
    assert!(left.is_empty(), "survivors: {left:?}");
}

#[test]
fn without_the_sandbox_a_detached_process_does_not_hold_the_run() {
    let p = project();
    let marker = format!("{}-mark", p.tag);
    let body = format!("setsid bash -c 'exec -a {marker} sleep 300' &\nsleep 0.2\necho done");
    let t = Instant::now();
    let r = p.run(&body, &SandboxPolicy::disabled(), Duration::from_secs(30));
    kill_marked(&marker);
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    assert!(r.output.contains("done"), "{}", r.output);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

fn connect_script(port: u16) -> String {
    format!(
        "python3 - <<'EOF'\n\
         import socket\n\
         try:\n\
         \x20   socket.create_connection(('127.0.0.1', {port}), timeout=3)\n\
         \x20   print('CONNECTED')\n\
         except OSError as e:\n\
         \x20   print('refused:', e)\n\
         EOF\n\
         (echo hi > /dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo CONNECTED-BASH\n\
         exit 0"
    )
}

#[test]
fn no_network_not_even_the_hosts_loopback() {
    let p = project();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = p.run(&connect_script(port), &sandboxed(), Duration::from_secs(20));
    assert!(r.output.contains("refused:"), "{}", r.output);
    assert!(!r.output.contains("CONNECTED"), "{}", r.output);
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the listener accepted a connection: {other:?}"),
    }
    // The control: with network allowed the same script connects, so the test can see a leak.
    let open = SandboxPolicy {
        network: true,
        ..sandboxed()
    };
    let r = p.run(&connect_script(port), &open, Duration::from_secs(20));
    assert!(r.output.contains("CONNECTED"), "{}", r.output);
}

#[test]
fn the_given_folders_are_writable_and_python_runs() {
    let p = project();
    std::fs::write(
        p.code.join("greet.py"),
        "def greet(name):\n    return f'hello {name}'\n",
    )
    .unwrap();
    std::fs::write(
        p.tests.join("test_greet.py"),
        "import unittest\nfrom greet import greet\n\n\
         class T(unittest.TestCase):\n    def test_greet(self):\n        self.assertEqual(greet('x'), 'hello x')\n",
    )
    .unwrap();
    let body = "set -e\n\
                echo made > \"$1/made.txt\"\n\
                echo made > \"$2/made.txt\"\n\
                echo temp > /tmp/t && cat /tmp/t\n\
                echo home > \"$HOME/h\" && cat \"$HOME/h\"\n\
                cd \"$1\"\n\
                python3 -m unittest discover -s \"$2\" -t \"$2\" 2>&1\n\
                python3 -c 'print(6 * 7)'";
    let r = p.run(body, &sandboxed(), Duration::from_secs(60));
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
    assert!(r.output.contains("temp\nhome\n"), "{}", r.output);
    assert!(
        r.output.contains("Ran 1 test") && r.output.contains("\n42\n"),
        "{}",
        r.output
    );
    assert!(p.code.join("made.txt").is_file() && p.tests.join("made.txt").is_file());
}

#[test]
fn the_reference_example_scripts_pass_in_the_sandbox() {
    let p = project();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scripts");
    std::fs::write(p.code.join("hello.py"), "print('hello')\n").unwrap();
    std::fs::write(
        p.code.join("test_hello.py"),
        "import unittest, subprocess, sys\n\nclass T(unittest.TestCase):\n    def test_runs(self):\n        \
         out = subprocess.run([sys.executable, 'hello.py'], capture_output=True, text=True).stdout\n        \
         self.assertEqual(out, 'hello\\n')\n",
    )
    .unwrap();
    std::fs::write(
        p.tests.join("test_conformance.py"),
        "import unittest, subprocess\n\nclass T(unittest.TestCase):\n    def test_runs(self):\n        \
         out = subprocess.run(['python3', 'hello.py'], capture_output=True, text=True).stdout\n        \
         self.assertEqual(out, 'hello\\n')\n",
    )
    .unwrap();
    let unit = scripts::run(
        &examples.join("run_unittests_python.sh"),
        &[&p.code],
        &p.code,
        Duration::from_secs(60),
        &sandboxed(),
    )
    .unwrap();
    assert_eq!(unit.outcome, Outcome::Passed, "{}", unit.output);
    assert!(unit.output.contains("Ran 1 test"), "{}", unit.output);
    let conformance = scripts::run(
        &examples.join("run_conformance_tests_python.sh"),
        &[&p.code, &p.tests],
        &p.code,
        Duration::from_secs(60),
        &sandboxed(),
    )
    .unwrap();
    assert_eq!(
        conformance.outcome,
        Outcome::Passed,
        "{}",
        conformance.output
    );
}

fn limited(f: impl FnOnce(&mut Limits)) -> SandboxPolicy {
    let mut p = sandboxed();
    f(&mut p.limits);
    p
}

#[test]
fn a_memory_hog_is_stopped() {
    let p = project();
    let policy = limited(|l| l.memory_mb = 256);
    let body = "python3 -c 'b = bytearray(1 << 30); print(\"ALLOCATED\", len(b))'";
    let r = p.run(body, &policy, Duration::from_secs(60));
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.output);
    assert!(!r.output.contains("ALLOCATED"), "{}", r.output);
    assert!(
        r.output.contains("MemoryError") || r.output.contains("memory limit"),
        "{}",
        r.output
    );
}

#[test]
fn processes_are_limited_and_a_fork_bomb_ends() {
    let p = project();
    let policy = limited(|l| l.processes = 48);
    let count = "python3 - <<'EOF'\n\
                 import os, time\n\
                 n = 0\n\
                 for _ in range(200):\n\
                 \x20   try:\n\
                 \x20       pid = os.fork()\n\
                 \x20   except OSError:\n\
                 \x20       break\n\
                 \x20   if pid == 0:\n\
                 \x20       time.sleep(30)\n\
                 \x20       os._exit(0)\n\
                 \x20   n += 1\n\
                 print('forked', n)\n\
                 EOF";
    let r = p.run(count, &policy, Duration::from_secs(60));
    let forked: usize = r
        .output
        .lines()
        .find_map(|l| l.strip_prefix("forked "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", r.output));
    assert!(forked < 48, "forked {forked}");
    assert!(forked > 10, "forked {forked}: {}", r.output);

    let marker = format!("{}-bomb", p.tag);
    let bomb = format!("exec -a {marker} bash -c 'b() {{ b | b & }}; b; sleep 300'");
    let t = Instant::now();
    let r = p.run(&bomb, &policy, Duration::from_secs(3));
    assert_eq!(r.outcome, Outcome::TimedOut, "{}", r.output);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    let left = processes_with(&marker);
    kill_marked(&marker);
    assert!(left.is_empty(), "survivors: {left:?}");
}

#[test]
fn cpu_time_file_size_and_output_are_limited() {
    let p = project();
    let policy = limited(|l| {
        l.cpu_seconds = 1;
        l.file_size_mb = 1;
        l.output_bytes = 200_000;
    });
    let t = Instant::now();
    let r = p.run(
        "python3 -c 'while True: pass'",
        &policy,
        Duration::from_secs(30),
    );
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.output);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());

    let r = p.run(
        "head -c 5000000 /dev/zero > \"$1/big\"; echo status=$?",
        &policy,
        Duration::from_secs(30),
    );
    assert!(!r.output.contains("status=0"), "{}", r.output);
    let size = std::fs::metadata(p.code.join("big")).unwrap().len();
    assert!(size <= 1024 * 1024, "{size}");

    let t = Instant::now();
    let r = p.run("yes rekindle", &policy, Duration::from_secs(30));
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.output.len());
    assert!(
        r.output.contains("output-bytes"),
        "{}",
        &r.output[r.output.len() - 200..]
    );
    assert!(r.output.len() < 300_000, "{}", r.output.len());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn refusals_name_the_cause() {
    let p = project();
    let script = p.root.join("run_tests.sh");
    std::fs::write(&script, "exit 0\n").unwrap();
    let e = scripts::run(&script, &[], &home(), Duration::from_secs(5), &sandboxed()).unwrap_err();
    assert!(
        matches!(e.sandbox, Some(SandboxError::WritableTooWide { .. })),
        "{e}"
    );
    let secret = SandboxPolicy {
        pass_env: vec!["OPENAI_API_KEY".into()],
        ..sandboxed()
    };
    let e = scripts::run(
        &script,
        &[&p.code],
        &p.code,
        Duration::from_secs(5),
        &secret,
    )
    .unwrap_err();
    assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
    assert!(secret.probe().is_err());
    assert_eq!(
        SandboxPolicy::disabled().probe().unwrap().mode,
        Mode::Disabled
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn the_probe_reports_how_limits_are_enforced() {
    setup();
    let probe = sandboxed().probe().unwrap();
    assert_eq!(probe.mode, Mode::Enabled);
    // Root is exempt from RLIMIT_NPROC: a cgroup, or the sandbox would have refused.
    let expected = if is_root() {
        ProcessLimit::Cgroup
    } else {
        ProcessLimit::Rlimit
    };
    assert_eq!(probe.process_limit, expected);
    let text = probe.to_string();
    assert!(text.starts_with("works (bubblewrap"), "{text}");
}

/// Root's limits are a cgroup; another user's are rlimits set inside the user namespace. As
/// root (CI), this runs the tests that depend on it again as `nobody`, so both paths are tested.
#[test]
fn as_another_user_the_sandbox_holds_too() {
    setup();
    if !is_root() {
        return; // every other test here already runs as a user that is not root
    }
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(home.path(), Some(65534), Some(65534)).unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "processes_are_limited_and_a_fork_bomb_ends",
            "a_memory_hog_is_stopped",
            "cpu_time_file_size_and_output_are_limited",
            "a_timeout_ends_every_descendant",
            "the_probe_reports_how_limits_are_enforced",
            "the_given_folders_are_writable_and_python_runs",
            "--test-threads=2",
        ])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home.path())
        .output()
        .expect("setpriv (util-linux) runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("test result: ok. 6 passed"), "{text}");
}
