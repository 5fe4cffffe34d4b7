//! The sandbox every script rekindle runs goes through (unit tests, conformance tests,
//! prepare-environment, and the runs `burn` and `doctor` make), and so all generated code.
//!
//! What a sandboxed script sees: the folders it was given (the module's code folder and a tests
//! folder) writable, with the code folder's `.git` read-only; the script file itself read-only; a
//! private `/tmp` (a size-limited tmpfs) with a private `HOME` in it; the toolchains read-only
//! (`/usr`, `/etc` without its secrets, and the folders on `PATH`, with their version manager's
//! root when one is used, such as `~/.pyenv`); nothing else of the machine: not the user's home,
//! not the project's specs or `.rekindle`, not other modules. No network unless the policy allows
//! it: a fresh network namespace has only its own loopback, so even the host's 127.0.0.1
//! listeners are out of reach. A clean environment from an allow-list, never a secret.
//!
//! **Why bubblewrap.** It is the tool Flatpak and Claude Code use on Linux, packaged by every
//! distribution, small and well reviewed; it runs as a separate process, so nothing forks inside
//! rekindle's multi-threaded runtime. Measured here (2 cores, kernel 6.18, idle), bubblewrap runs
//! `true` in about 13 ms more than a direct start; the `hakoniwa` crate, which builds a similar
//! container in-process, took a median of 32 ms. Landlock plus seccomp alone (Codex's way) would
//! give no PID namespace, and so no reliable end for double-forked processes. `bench/sandbox.sh`
//! measures a whole script run.
//!
//! How each requirement is met:
//! - user, mount, PID, network, IPC, UTS and cgroup namespaces; every capability dropped; no
//!   nested user namespaces; a new session (no terminal to inject keystrokes into);
//! - rekindle's user keeps its uid inside (so the files a script writes are the user's); for
//!   root, the kernel files that check only the owner are read-only or hidden (`/proc/sys`,
//!   `/proc/sysrq-trigger`, `/proc/keys`... as Docker does), and a seccomp filter refuses the
//!   keyrings, which are not namespaced, and a few calls a test never needs
//!   (`sandbox/seccomp.rs`);
//! - the whole process tree ends with the script: bubblewrap's PID 1 exits when the script does,
//!   and the kernel kills everything left in the namespace; on a timeout rekindle kills
//!   bubblewrap, whose PID 1 dies with it (`--die-with-parent`), with the same effect, whatever
//!   the processes did with `setsid` or double forks; the same when rekindle itself is killed;
//! - limits: CPU seconds, file size and memory (data segment) per process are rlimits set before
//!   bubblewrap starts and inherited by everything; processes (and total memory) are a cgroup
//!   (v1 or v2, `sandbox/cgroup.rs`) where rekindle may create one, which is where it runs as
//!   root. Root is exempt from `RLIMIT_NPROC`, so as root without a writable cgroup the process
//!   limit cannot be enforced and the sandbox refuses; as another user `RLIMIT_NPROC` is set
//!   inside the new user namespace (set before it, the kernel would count every process the
//!   user runs elsewhere);
//! - output is bounded by [`crate::scripts`].

pub(crate) mod cgroup;
mod seccomp;

use cgroup::Cgroup;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether scripts run in the sandbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// OS-level isolation; refused where it cannot be set up.
    #[default]
    Enabled,
    /// `--no-sandbox`: scripts run as ordinary processes. The environment allow-list, the output
    /// bound and the timeout still apply; nothing else does.
    Disabled,
}

/// What a script may do. Plain data with defaults, so it can live in `rekindle.toml`, the render
/// key and the journal; which folders are writable is not part of it (they are the folders a run
/// is given).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SandboxPolicy {
    pub mode: Mode,
    /// Network access (a project whose scripts run `npm install` or `pip install` needs it).
    pub network: bool,
    /// Variables passed from rekindle's environment besides [`BASE_ENV`]; a trailing `*` matches
    /// a prefix. A name that looks like a secret is refused; a prefix never matches one.
    pub pass_env: Vec<String>,
    /// Variables set for the script (a secret-looking name is refused here too).
    pub set_env: BTreeMap<String, String>,
    /// More read-only paths, for toolchains the defaults do not find.
    pub readable: Vec<PathBuf>,
    pub limits: Limits,
}

/// Resource limits of one script run; 0 means no limit. Wall time is the script timeout, set
/// elsewhere (`test-script-timeout`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    /// CPU time of each process.
    pub cpu_seconds: u64,
    /// Memory: of each process (its data segment) and, where a cgroup is available, of all of
    /// them together.
    pub memory_mb: u64,
    /// Processes and threads alive at once.
    pub processes: u64,
    /// Size of any one file written.
    pub file_size_mb: u64,
    /// Size of the private temporary folder (a tmpfs that also holds `HOME`).
    pub temp_mb: u64,
    /// Output (stdout and stderr together) before the script is stopped.
    pub output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            cpu_seconds: 600,
            memory_mb: 4096,
            processes: 512,
            file_size_mb: 1024,
            temp_mb: 1024,
            output_bytes: 16 * 1024 * 1024,
        }
    }
}

/// The environment every script gets from rekindle's, when set (`LC_*` is a prefix).
pub const BASE_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TERM",
    "TZ",
    "COLORTERM",
    "NO_COLOR",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
];

/// Set for every script unless the policy sets it otherwise (`set_env`, or `pass_env` passing
/// the variable on): test runs must not leave caches among the generated files (they would be
/// committed as code).
pub const DEFAULT_ENV: &[(&str, &str)] = &[("PYTHONDONTWRITEBYTECODE", "1")];

/// `HOME` and `TMPDIR` inside the sandbox.
pub const SANDBOX_TMP: &str = "/tmp";
pub const SANDBOX_HOME: &str = "/tmp/home";

/// Why the sandbox cannot run here, each with the fix in its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxError {
    /// Not Linux: the sandbox is built on Linux namespaces.
    Unsupported {
        os: &'static str,
    },
    /// bubblewrap is not installed.
    BwrapMissing,
    /// bubblewrap failed to set up the namespaces or mounts; its message.
    Setup {
        detail: String,
        hint: &'static str,
    },
    /// Running as root without a cgroup rekindle may create: processes cannot be limited.
    ProcessLimit {
        detail: String,
    },
    /// A variable that looks like a secret was named in `pass-env` or `set-env`.
    SecretInEnv {
        name: String,
    },
    /// A folder to make writable is `/`, the home folder, or an ancestor of it.
    WritableTooWide {
        path: PathBuf,
    },
    Io {
        detail: String,
    },
}

const NO_SANDBOX: &str = "or, knowing that generated code then runs unconfined, \
     run with --no-sandbox (mode = \"disabled\" in [sandbox] of rekindle.toml)";

impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxError::Unsupported { os } => write!(
                f,
                "the sandbox needs Linux (namespaces); this is {os}. Fix: render on Linux, {NO_SANDBOX}"
            ),
            SandboxError::BwrapMissing => write!(
                f,
                "the sandbox needs bubblewrap (`bwrap`), which is not installed. Fix: install it \
                 (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; \
                 Arch: pacman -S bubblewrap), {NO_SANDBOX}"
            ),
            SandboxError::Setup { detail, hint } => write!(
                f,
                "the sandbox cannot be set up: {detail}. Fix: {hint}, {NO_SANDBOX}"
            ),
            SandboxError::ProcessLimit { detail } => write!(
                f,
                "the sandbox cannot limit processes: rekindle runs as root, which the kernel exempts \
                 from RLIMIT_NPROC, and it cannot create a cgroup ({detail}). Fix: run rekindle as \
                 another user, make the pids cgroup controller writable, or set processes = 0 in \
                 [sandbox.limits] of rekindle.toml"
            ),
            SandboxError::SecretInEnv { name } => write!(
                f,
                "`{name}` looks like a secret, and no secret is ever passed to a script. Fix: \
                 remove it from pass-env/set-env in [sandbox] of rekindle.toml (give tests a \
                 dummy value under another name)"
            ),
            SandboxError::WritableTooWide { path } => write!(
                f,
                "the sandbox will not make {} writable: it is the root, the home folder or one of \
                 its ancestors. Fix: point the build folder at a folder of its own",
                path.display()
            ),
            SandboxError::Io { detail } => write!(f, "the sandbox cannot be set up: {detail}"),
        }
    }
}

impl std::error::Error for SandboxError {}

/// How the sandbox works here, for `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub mode: Mode,
    /// The bubblewrap binary and its version (none when disabled).
    pub bwrap: Option<(PathBuf, String)>,
    /// How the process limit is enforced.
    pub process_limit: ProcessLimit,
    /// Whether a memory cgroup bounds all processes together (else per process only).
    pub memory_cgroup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessLimit {
    None,
    Cgroup,
    Rlimit,
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.mode, &self.bwrap) {
            (Mode::Disabled, _) | (_, None) => write!(f, "disabled: scripts run unconfined"),
            (Mode::Enabled, Some((path, version))) => write!(
                f,
                "works ({version} at {}; processes limited by {}, memory {})",
                path.display(),
                match self.process_limit {
                    ProcessLimit::None => "nothing (no limit set)",
                    ProcessLimit::Cgroup => "a cgroup",
                    ProcessLimit::Rlimit => "RLIMIT_NPROC",
                },
                if self.memory_cgroup {
                    "per process and in total"
                } else {
                    "per process"
                }
            ),
        }
    }
}

/// True for names that look like they hold a credential.
pub fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_KEY")
        || n.ends_with("KEY_ID")
        || [
            "API_KEY",
            "APIKEY",
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "CREDENTIAL",
        ]
        .iter()
        .any(|s| n.contains(s))
        || n.starts_with("AUTH")
        || n.contains("_AUTH")
}

fn env_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

impl SandboxPolicy {
    /// The policy with the sandbox off.
    pub fn disabled() -> SandboxPolicy {
        SandboxPolicy {
            mode: Mode::Disabled,
            ..SandboxPolicy::default()
        }
    }

    /// Refuses secret-looking variable names.
    pub fn validate(&self) -> Result<(), SandboxError> {
        for name in self
            .pass_env
            .iter()
            .filter(|p| !p.ends_with('*'))
            .chain(self.set_env.keys())
        {
            if is_secret(name) {
                return Err(SandboxError::SecretInEnv { name: name.clone() });
            }
        }
        Ok(())
    }

    /// The script's environment, taken from `vars` (rekindle's own): the allow-listed variables
    /// that are not secrets, then `set-env`, then `HOME` and `TMPDIR` (private in the sandbox,
    /// the user's own when it is disabled).
    pub fn environment(
        &self,
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Vec<(OsString, OsString)> {
        let mut out: BTreeMap<OsString, OsString> = BTreeMap::new();
        let mut home = None;
        let mut tmpdir = None;
        for (k, v) in vars {
            let Some(name) = k.to_str() else { continue };
            match name {
                "HOME" => home = Some(v.clone()),
                "TMPDIR" => tmpdir = Some(v.clone()),
                _ => {}
            }
            let allowed = BASE_ENV
                .iter()
                .copied()
                .chain(self.pass_env.iter().map(String::as_str))
                .any(|p| env_matches(p, name));
            if allowed && !is_secret(name) {
                out.insert(k, v);
            }
        }
        for (k, v) in &self.set_env {
            if !is_secret(k) {
                out.insert(k.into(), v.into());
            }
        }
        for (k, v) in DEFAULT_ENV {
            out.entry(k.into()).or_insert_with(|| v.into());
        }
        match self.mode {
            Mode::Enabled => {
                out.insert("HOME".into(), SANDBOX_HOME.into());
                out.insert("TMPDIR".into(), SANDBOX_TMP.into());
            }
            Mode::Disabled => {
                out.extend(home.map(|h| ("HOME".into(), h)));
                out.extend(tmpdir.map(|t| ("TMPDIR".into(), t)));
            }
        }
        out.into_iter().collect()
    }

    /// Whether the sandbox works here with this policy: runs a sandboxed `true` the way scripts
    /// run. `doctor` reports it; `render` calls it before the first script.
    pub fn probe(&self) -> Result<Probe, SandboxError> {
        self.validate()?;
        if self.mode == Mode::Disabled {
            return Ok(Probe {
                mode: Mode::Disabled,
                bwrap: None,
                process_limit: ProcessLimit::None,
                memory_cgroup: false,
            });
        }
        if !cfg!(target_os = "linux") {
            return Err(SandboxError::Unsupported {
                os: std::env::consts::OS,
            });
        }
        let bwrap = bwrap_path()?;
        let version = Command::new(&bwrap)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_else(|_| "bubblewrap".into());
        let dir = tempfile::tempdir().map_err(io_err)?;
        let (mut reader, writer) = std::io::pipe().map_err(io_err)?;
        let mut confined = confine(
            self,
            &[OsString::from("true")],
            dir.path(),
            &[dir.path().to_path_buf()],
            &[],
            writer,
        )?;
        let status = confined
            .spawn()
            .and_then(|mut c| c.wait())
            .map_err(io_err)?;
        let mut output = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut output);
        let code = status.code().unwrap_or(1);
        if let Some(e) = confined.setup_errors(&output, code) {
            return Err(setup_error(e));
        }
        if !status.success() {
            return Err(setup_error(format!(
                "a sandboxed `true` exited with {status}: {output}"
            )));
        }
        Ok(Probe {
            mode: Mode::Enabled,
            bwrap: Some((bwrap, version)),
            process_limit: if self.limits.processes == 0 {
                ProcessLimit::None
            } else if confined.cgroup.as_ref().is_some_and(|c| c.pids) {
                ProcessLimit::Cgroup
            } else {
                ProcessLimit::Rlimit
            },
            memory_cgroup: confined.cgroup.as_ref().is_some_and(|c| c.memory),
        })
    }
}

fn io_err(e: std::io::Error) -> SandboxError {
    SandboxError::Io {
        detail: e.to_string(),
    }
}

/// The error for a bubblewrap failure, with the likeliest fix.
pub(crate) fn setup_error(detail: String) -> SandboxError {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    let hint = if read("/proc/sys/user/max_user_namespaces").is_ok_and(|v| v == "0") {
        "enable user namespaces (sysctl user.max_user_namespaces=15000)"
    } else if read("/proc/sys/kernel/unprivileged_userns_clone").is_ok_and(|v| v == "0") {
        "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
    } else if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").is_ok_and(|v| v == "1")
    {
        "allow user namespaces under AppArmor (an AppArmor profile for bwrap, or sysctl \
         kernel.apparmor_restrict_unprivileged_userns=0)"
    } else if detail.contains("Operation not permitted") || detail.contains("Permission denied") {
        "allow user namespaces here (in a container: run it with --privileged, or with seccomp and \
         AppArmor profiles that permit unshare and mount)"
    } else {
        "check that every folder given to the script exists"
    };
    SandboxError::Setup {
        detail: detail.trim().to_string(),
        hint,
    }
}

fn bwrap_path() -> Result<PathBuf, SandboxError> {
    static FOUND: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/bin")])
                .map(|d| d.join("bwrap"))
                .find(|p| p.is_file())
        })
        .clone()
        .ok_or(SandboxError::BwrapMissing)
}

/// A command ready to spawn, with what must live as long as the run.
pub(crate) struct Confined {
    pub cmd: Command,
    /// The cgroup that holds the run (removed on drop).
    pub cgroup: Option<Cgroup>,
    /// bubblewrap's own stderr, where a shell runs before the script (which joins the script's
    /// stderr to its stdout). Otherwise bubblewrap's messages are in the output.
    setup: Option<std::io::PipeReader>,
    /// The seccomp filter, open until bubblewrap has read it.
    _seccomp: Option<std::io::PipeReader>,
    /// How the run joins its cgroup.
    join: Option<Join>,
}

/// bubblewrap reports its sandbox's first process on `info` and waits on `block` before it
/// starts the script, so rekindle moves both into the cgroup while the mounts are made, and
/// every process the script starts is born inside it.
struct Join {
    info: std::io::PipeReader,
    block: std::io::PipeWriter,
    /// bubblewrap's ends, closed in rekindle once it has started.
    theirs: (std::io::PipeWriter, std::io::PipeReader),
}

/// The `"child-pid": N` of bubblewrap's `--info-fd` JSON.
fn child_pid(info: &str) -> Option<u32> {
    let rest = &info[info.find("\"child-pid\"")? + "\"child-pid\"".len()..];
    let digits: String = rest
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

impl Confined {
    /// Starts the process. The command (and with it the parent's copies of the pipes' write
    /// ends) is dropped, so that the pipes close when the process tree is gone.
    pub fn spawn(&mut self) -> std::io::Result<std::process::Child> {
        let mut cmd = std::mem::replace(&mut self.cmd, Command::new("/"));
        let mut child = cmd.spawn()?;
        drop(cmd);
        if let (Some(join), Some(cgroup)) = (self.join.take(), self.cgroup.as_mut()) {
            let Join {
                mut info,
                mut block,
                theirs,
            } = join;
            drop(theirs);
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(
                &mut std::io::Read::take(&mut info, 64 * 1024),
                &mut text,
            );
            // No report: bubblewrap failed before its sandbox existed, and says why.
            if let Some(inner) = child_pid(&text) {
                let joined = cgroup
                    .join(child.id())
                    .and_then(|()| cgroup.join(inner))
                    .and_then(|()| std::io::Write::write_all(&mut block, b"x"));
                if let Err(e) = joined {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
        }
        Ok(child)
    }

    /// What bubblewrap itself reported if it could not set the sandbox up, given the run's
    /// `output` and exit code; call after the process ended. Without a shell before the script,
    /// bubblewrap's stderr is the script's, and its failure is exit 1 with output that starts
    /// with `bwrap: `: a script that fakes one stops the render, as its exit 69 would.
    pub fn setup_errors(&mut self, output: &str, exit_code: i32) -> Option<String> {
        use std::os::fd::AsRawFd;
        let Some(mut r) = self.setup.take() else {
            return (exit_code == 1 && output.starts_with("bwrap: "))
                .then(|| output.lines().next().unwrap_or_default().to_string());
        };
        // Only what is already there, so nothing left running can make this wait.
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            let fd = r.as_raw_fd();
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            );
        }
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::Read::take(&mut r, 64 * 1024), &mut buf);
        let text = String::from_utf8_lossy(&buf).trim().to_string();
        (exit_code != 0 && !text.is_empty()).then_some(text)
    }
}

/// The shell line that runs inside the namespaces before the script where `RLIMIT_NPROC` must
/// be set there, inside the new user namespace: it also joins the script's stderr to its stdout,
/// so that bubblewrap's own stderr stays apart.
fn inner_shell(nproc: u64) -> String {
    format!("exec 2>&1 || exit 125\nulimit -u {nproc} || exit 125\nexec \"$@\"\n")
}

/// Builds the command that runs `program` (program and arguments) in `cwd` under `policy`, with
/// `writable` folders writable and `readonly` files visible. Both stdout and stderr of the
/// program go to `output`.
pub(crate) fn confine(
    policy: &SandboxPolicy,
    program: &[OsString],
    cwd: &Path,
    writable: &[PathBuf],
    readonly: &[PathBuf],
    output: std::io::PipeWriter,
) -> Result<Confined, SandboxError> {
    use std::os::unix::process::CommandExt;
    policy.validate()?;
    let env = policy.environment(std::env::vars_os());
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for w in writable {
        if w == Path::new("/") || home.as_deref().is_some_and(|h| h.starts_with(w)) {
            return Err(SandboxError::WritableTooWide { path: w.clone() });
        }
    }
    if policy.mode == Mode::Disabled {
        let mut cmd = Command::new(&program[0]);
        cmd.args(&program[1..])
            .current_dir(cwd)
            .env_clear()
            .envs(env)
            .stdout(output.try_clone().map_err(io_err)?)
            .stderr(output);
        return Ok(Confined {
            cmd,
            cgroup: None,
            setup: None,
            _seccomp: None,
            join: None,
        });
    }
    if !cfg!(target_os = "linux") {
        return Err(SandboxError::Unsupported {
            os: std::env::consts::OS,
        });
    }
    let bwrap = bwrap_path()?;
    let limits = &policy.limits;
    let cgroup = Cgroup::create(limits);
    let root = unsafe_free_geteuid() == 0;
    let nproc = match (&cgroup, limits.processes) {
        (_, 0) => None,
        (Some(c), _) if c.pids => None,
        (_, n) if !root => Some(n),
        (_, _) => {
            return Err(SandboxError::ProcessLimit {
                detail: cgroup::unavailable_reason(),
            })
        }
    };
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();

    // Order matters: a later mount goes on top of an earlier one.
    let mut a = Args::default();
    a.args([
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
    ]);
    if policy.network {
        a.args(["--share-net"]);
    }
    for dir in SYSTEM_DIRS.iter().map(Path::new) {
        match std::fs::read_link(dir) {
            Ok(target) => a.args([OsStr::new("--symlink"), target.as_os_str(), dir.as_os_str()]),
            Err(_) if dir.is_dir() => a.at_own_path("--ro-bind", dir),
            Err(_) => {}
        }
    }
    for secret in etc_secrets() {
        if secret.is_dir() {
            a.args([OsStr::new("--tmpfs"), secret.as_os_str()]);
        } else {
            a.args([
                OsStr::new("--ro-bind"),
                OsStr::new("/dev/null"),
                secret.as_os_str(),
            ]);
        }
    }
    if policy.network {
        // /etc/resolv.conf often points into /run.
        for p in ["/run/systemd/resolve", "/run/resolvconf"] {
            a.at_own_path("--ro-bind-try", Path::new(p));
        }
    }
    a.args(["--proc", "/proc", "--dev", "/dev"]);
    // Inside, rekindle's user keeps its uid (root stays uid 0, without capabilities). Kernel
    // files that check only the owner would then obey the script: make them read-only or hide
    // them, as Docker does for its root containers.
    for p in PROC_READ_ONLY.iter().map(Path::new).filter(|p| p.exists()) {
        a.at_own_path("--ro-bind", p);
    }
    for p in PROC_HIDDEN.iter().map(Path::new).filter(|p| p.exists()) {
        if p.is_dir() {
            a.args([OsStr::new("--tmpfs"), p.as_os_str()]);
        } else {
            a.args([
                OsStr::new("--ro-bind"),
                OsStr::new("/dev/null"),
                p.as_os_str(),
            ]);
        }
    }
    let temp_size = (limits.temp_mb * 1024 * 1024).to_string();
    for t in [SANDBOX_TMP, "/dev/shm"] {
        if limits.temp_mb > 0 {
            a.args(["--size", &temp_size]);
        }
        a.args(["--tmpfs", t]);
    }
    a.args(["--dir", SANDBOX_HOME]);
    for p in toolchain_dirs(&path_var, home.as_deref(), writable)
        .iter()
        .chain(&policy.readable)
    {
        a.at_own_path("--ro-bind-try", p);
    }
    for w in writable {
        a.at_own_path("--bind", w);
        // Render state stays rekindle's: the code folder's repository is read-only.
        a.at_own_path("--ro-bind-try", &w.join(".git"));
    }
    for r in readonly {
        a.at_own_path("--ro-bind", r);
    }
    let seccomp = match seccomp::program() {
        Some(program) => {
            let (reader, mut writer) = std::io::pipe().map_err(io_err)?;
            // A few hundred bytes: the pipe holds them all before bubblewrap reads.
            std::io::Write::write_all(&mut writer, program).map_err(io_err)?;
            drop(writer);
            a.args(["--seccomp".to_string(), reader.as_raw_fd().to_string()]);
            Some(reader)
        }
        None => None,
    };
    let join = match cgroup {
        Some(_) => {
            let (info, info_theirs) = std::io::pipe().map_err(io_err)?;
            let (block_theirs, block) = std::io::pipe().map_err(io_err)?;
            a.args([
                "--info-fd".to_string(),
                info_theirs.as_raw_fd().to_string(),
                "--block-fd".to_string(),
                block_theirs.as_raw_fd().to_string(),
            ]);
            Some(Join {
                info,
                block,
                theirs: (info_theirs, block_theirs),
            })
        }
        None => None,
    };
    // Descriptors bubblewrap reads or writes: open across its exec.
    let inherited: Vec<std::os::fd::RawFd> = seccomp
        .iter()
        .map(|r| r.as_raw_fd())
        .chain(
            join.iter()
                .flat_map(|j| [j.theirs.0.as_raw_fd(), j.theirs.1.as_raw_fd()]),
        )
        .collect();
    a.args([OsStr::new("--chdir"), cwd.as_os_str()]);
    a.args(["--remount-ro", "/", "--"]);
    if let Some(n) = nproc {
        a.args(["bash", "-c", &inner_shell(n), "rekindle-sandbox"]);
    }
    a.args(program);

    let (setup, stderr) = if nproc.is_some() {
        let (reader, writer) = std::io::pipe().map_err(io_err)?;
        (Some(reader), writer)
    } else {
        (None, output.try_clone().map_err(io_err)?)
    };
    let mut cmd = Command::new(bwrap);
    cmd.args(a.0)
        .env_clear()
        .envs(env)
        .stdout(output)
        .stderr(stderr);
    let rlimits = [
        (libc::RLIMIT_CPU, limits.cpu_seconds),
        (libc::RLIMIT_FSIZE, limits.file_size_mb * 1024 * 1024),
        (libc::RLIMIT_DATA, limits.memory_mb * 1024 * 1024),
        (libc::RLIMIT_CORE, 0),
    ];
    // SAFETY: the closure runs between fork and exec, so it may only make async-signal-safe
    // calls: setrlimit and fcntl on descriptors opened before the fork. It allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for (resource, value) in rlimits {
                if value == 0 && resource != libc::RLIMIT_CORE {
                    continue;
                }
                let lim = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for &fd in &inherited {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(Confined {
        cmd,
        cgroup,
        setup,
        _seccomp: seccomp,
        join,
    })
}

/// bubblewrap's command line.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn args<S: AsRef<OsStr>>(&mut self, items: impl IntoIterator<Item = S>) {
        self.0
            .extend(items.into_iter().map(|s| s.as_ref().to_os_string()));
    }

    /// `option path path`: a host path mounted at the same path inside.
    fn at_own_path(&mut self, option: &str, path: &Path) {
        self.args([OsStr::new(option), path.as_os_str(), path.as_os_str()]);
    }
}

fn unsafe_free_geteuid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// Read-only at their own paths (or recreated as the same symlink).
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
];

/// Kernel settings and triggers under `/proc`, read-only inside (Docker's list).
const PROC_READ_ONLY: &[&str] = &[
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
];

/// Kernel state under `/proc` that is nobody's business inside (Docker's list, and the
/// keyrings, which are not namespaced).
const PROC_HIDDEN: &[&str] = &[
    "/proc/kcore",
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/latency_stats",
    "/proc/acpi",
    "/proc/scsi",
    "/proc/asound",
];

/// Files and folders of `/etc` that hold secrets; hidden behind an empty file or folder.
fn etc_secrets() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = [
        "/etc/shadow",
        "/etc/shadow-",
        "/etc/gshadow",
        "/etc/gshadow-",
        "/etc/sudoers",
        "/etc/sudoers.d",
        "/etc/ssl/private",
        "/etc/security/opasswd",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|p| p.exists())
    .collect();
    if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
        out.extend(entries.flatten().map(|e| e.path()).filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ssh_host_") && n.ends_with("_key"))
        }));
    }
    out
}

/// Version managers whose whole root a `PATH` entry inside it needs (shims call back into it).
const MANAGER_ROOTS: &[&str] = &[
    ".pyenv", ".rbenv", ".nodenv", ".goenv", ".nvm", ".volta", ".asdf", ".sdkman", ".rustup",
    ".bun", ".deno", ".juliaup",
];

/// The folders on `PATH` to make readable, with what they need: a version manager's root for a
/// path inside it (`~/.pyenv/shims` needs `~/.pyenv`), the parent of a `shims` folder elsewhere,
/// a virtualenv for its `bin`, `~/.rustup` for `~/.cargo/bin`, an installation prefix for a
/// `bin` outside the home folder. Never the home folder or `/`, nor an ancestor of the home
/// folder or of a writable folder (that would show the project); never a relative entry.
pub fn toolchain_dirs(path_var: &OsStr, home: Option<&Path>, writable: &[PathBuf]) -> Vec<PathBuf> {
    let too_wide = |p: &Path| {
        p == Path::new("/")
            || home.is_some_and(|h| h.starts_with(p))
            || writable.iter().any(|w| w.starts_with(p))
            || SYSTEM_DIRS.iter().any(|s| p.starts_with(s))
    };
    let mut out: Vec<PathBuf> = Vec::new();
    let mut add = |p: PathBuf| {
        if !too_wide(&p) && p.is_dir() && !out.iter().any(|o| p.starts_with(o)) {
            out.retain(|o| !o.starts_with(&p));
            out.push(p);
        }
    };
    for entry in std::env::split_paths(path_var) {
        if !entry.is_absolute() {
            continue;
        }
        let in_home = home.and_then(|h| entry.strip_prefix(h).ok().map(|rest| (h, rest)));
        if let Some((h, rest)) = in_home {
            let first = rest
                .components()
                .next()
                .map(|c| c.as_os_str().to_os_string());
            if let Some(first) = first.filter(|f| MANAGER_ROOTS.iter().any(|m| f == *m)) {
                add(h.join(first));
                continue;
            }
            if rest == Path::new(".cargo/bin") {
                add(h.join(".rustup"));
            }
        }
        let parent = entry.parent().map(Path::to_path_buf);
        match parent {
            Some(p) if entry.ends_with("shims") => add(p),
            Some(p) if p.join("pyvenv.cfg").is_file() => add(p),
            Some(p) if entry.ends_with("bin") && in_home.is_none() && !too_wide(&p) => add(p),
            _ => add(entry),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for name in [
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ACCESS_KEY_ID",
            "PGPASSWORD",
            "HF_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "NPM_AUTH",
            "my_api_key",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in [
            "PATH",
            "LANG",
            "LC_ALL",
            "TERM",
            "KEYBOARD",
            "PYENV_VERSION",
        ] {
            assert!(!is_secret(name), "{name}");
        }
    }

    #[test]
    fn environment_is_an_allow_list_without_secrets() {
        let policy = SandboxPolicy {
            pass_env: vec!["JAVA_HOME".into(), "OPENAI_*".into()],
            set_env: [("APP_MODE".to_string(), "test".to_string())].into(),
            ..SandboxPolicy::default()
        };
        let vars = [
            ("PATH", "/usr/bin"),
            ("LC_ALL", "C"),
            ("HOME", "/home/u"),
            ("JAVA_HOME", "/opt/jdk"),
            ("OPENAI_API_KEY", "canary"),
            ("OPENAI_BASE", "x"),
            ("SSH_AUTH_SOCK", "/run/agent"),
            ("CARGO_REGISTRY_TOKEN", "t"),
            ("EDITOR", "vi"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let env: BTreeMap<_, _> = policy.environment(vars.clone()).into_iter().collect();
        let get = |k: &str| env.get(OsStr::new(k)).and_then(|v| v.to_str());
        assert_eq!(get("PATH"), Some("/usr/bin"));
        assert_eq!(get("LC_ALL"), Some("C"));
        assert_eq!(get("JAVA_HOME"), Some("/opt/jdk"));
        assert_eq!(get("OPENAI_BASE"), Some("x"));
        assert_eq!(get("APP_MODE"), Some("test"));
        assert_eq!(get("HOME"), Some(SANDBOX_HOME));
        assert_eq!(get("TMPDIR"), Some(SANDBOX_TMP));
        assert_eq!(get("PYTHONDONTWRITEBYTECODE"), Some("1"));
        for gone in [
            "OPENAI_API_KEY",
            "SSH_AUTH_SOCK",
            "CARGO_REGISTRY_TOKEN",
            "EDITOR",
        ] {
            assert_eq!(get(gone), None, "{gone}");
        }
        let disabled = SandboxPolicy {
            mode: Mode::Disabled,
            ..policy
        };
        let env: BTreeMap<_, _> = disabled.environment(vars).into_iter().collect();
        assert_eq!(env.get(OsStr::new("HOME")).unwrap(), "/home/u");
        assert!(!env.contains_key(OsStr::new("OPENAI_API_KEY")));
    }

    #[test]
    fn a_named_secret_is_refused() {
        let policy = SandboxPolicy {
            pass_env: vec!["OPENAI_API_KEY".into()],
            ..SandboxPolicy::default()
        };
        let e = policy.validate().unwrap_err();
        assert_eq!(
            e,
            SandboxError::SecretInEnv {
                name: "OPENAI_API_KEY".into()
            }
        );
        assert!(e.to_string().contains("pass-env"), "{e}");
        let policy = SandboxPolicy {
            set_env: [("DB_PASSWORD".to_string(), "x".to_string())].into(),
            ..SandboxPolicy::default()
        };
        assert!(policy.validate().is_err());
    }

    #[test]
    fn policy_reads_from_toml_with_defaults() {
        let p: SandboxPolicy = toml::from_str(
            "network = true\npass-env = [\"JAVA_HOME\"]\n[limits]\nprocesses = 64\n",
        )
        .unwrap();
        assert!(p.network);
        assert_eq!(p.mode, Mode::Enabled);
        assert_eq!(p.limits.processes, 64);
        assert_eq!(p.limits.cpu_seconds, Limits::default().cpu_seconds);
        let p: SandboxPolicy = toml::from_str("mode = \"disabled\"").unwrap();
        assert_eq!(p, SandboxPolicy::disabled());
        assert!(toml::from_str::<SandboxPolicy>("netwrk = true").is_err());
    }

    #[test]
    fn the_sandbox_pid_is_read_from_bubblewraps_report() {
        let info = "{\n    \"child-pid\": 4242,\n    \"cgroup-namespace\": 4026531835\n}\n";
        assert_eq!(child_pid(info), Some(4242));
        assert_eq!(child_pid(""), None);
    }

    /// bubblewrap's own failures are told from a script's: exit 1 with `bwrap: ` first.
    #[test]
    fn set_up_failures_are_recognised() {
        let Ok(bwrap) = bwrap_path() else {
            panic!("{}", SandboxError::BwrapMissing);
        };
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut cmd = Command::new(bwrap);
        cmd.args(["--ro-bind", "/nonexistent-rekindle", "/x", "true"])
            .stdout(writer.try_clone().unwrap())
            .stderr(writer);
        let mut confined = Confined {
            cmd,
            cgroup: None,
            setup: None,
            _seccomp: None,
            join: None,
        };
        let status = confined.spawn().unwrap().wait().unwrap();
        let mut output = String::new();
        std::io::Read::read_to_string(&mut reader, &mut output).unwrap();
        let code = status.code().unwrap();
        let detail = confined.setup_errors(&output, code).expect(&output);
        assert!(detail.contains("/nonexistent-rekindle"), "{detail}");
        let e = setup_error(detail);
        assert!(e.to_string().contains("--no-sandbox"), "{e}");
        // A test that fails is not a set-up failure, nor is a passing run.
        assert_eq!(confined.setup_errors("FAILED (failures=1)\n", 1), None);
        assert_eq!(confined.setup_errors("bwrap: done", 0), None);
    }

    #[test]
    fn toolchains_on_path_without_the_home_folder() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        for d in [
            ".pyenv/shims",
            ".pyenv/versions/3.11/bin",
            ".cargo/bin",
            ".rustup",
            ".local/bin",
            "venv/bin",
            "opt/node/bin",
            "project/build",
        ] {
            std::fs::create_dir_all(h.join(d)).unwrap();
        }
        std::fs::write(h.join("venv/pyvenv.cfg"), "").unwrap();
        let path = std::env::join_paths([
            h.join(".pyenv/shims"),
            h.join(".cargo/bin"),
            h.join(".local/bin"),
            h.join("venv/bin"),
            h.to_path_buf(),
            PathBuf::from("relative/bin"),
            PathBuf::from("/usr/bin"),
            PathBuf::from("/"),
        ])
        .unwrap();
        let dirs = toolchain_dirs(&path, Some(h), &[h.join("project/build")]);
        assert_eq!(
            dirs,
            vec![
                h.join(".pyenv"),
                h.join(".rustup"),
                h.join(".cargo/bin"),
                h.join(".local/bin"),
                h.join("venv"),
            ]
        );
        // Outside the home folder, a bin folder brings its installation prefix, unless that is
        // an ancestor of a writable folder.
        let other = tempfile::tempdir().unwrap();
        let o = other.path();
        std::fs::create_dir_all(o.join("node/bin")).unwrap();
        std::fs::create_dir_all(o.join("work/bin")).unwrap();
        let path = std::env::join_paths([o.join("node/bin"), o.join("work/bin")]).unwrap();
        let dirs = toolchain_dirs(&path, Some(h), &[o.join("work/build/code")]);
        assert_eq!(dirs, vec![o.join("node"), o.join("work/bin")]);
    }
}
