//! The cgroup of one sandboxed run: where rekindle may create one (as root), it bounds the
//! processes and the memory of the whole run, which rlimits cannot do for root. Moving a process
//! into it costs about 10 ms on cgroup v1 (the move waits for an RCU grace period), so it is done
//! while bubblewrap sets the sandbox up, which waits for it before it starts the script.

use super::Limits;
use std::path::{Path, PathBuf};

/// A cgroup holding one run: its process count and memory, in the v2 hierarchy or the v1
/// `pids` and `memory` ones. Removed when dropped (the run's processes are gone by then).
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    procs: Vec<std::fs::File>,
    pub pids: bool,
    pub memory: bool,
    /// The file whose `oom_kill` count tells that the memory limit killed something.
    events: Option<PathBuf>,
}

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

pub(super) fn unavailable_reason() -> String {
    let v2 = Path::new(CGROUP_ROOT).join("cgroup.controllers");
    if v2.is_file() {
        "cannot create a child of the cgroup v2 root with the pids controller".into()
    } else if Path::new(CGROUP_ROOT).join("pids").is_dir() {
        "the cgroup v1 pids hierarchy is not writable".into()
    } else {
        "no pids cgroup controller is mounted".into()
    }
}

impl Cgroup {
    /// A fresh cgroup with the limits, or None where none can be made (not root, read-only
    /// cgroup file system, controllers missing).
    pub(super) fn create(limits: &Limits) -> Option<Cgroup> {
        if limits.processes == 0 && limits.memory_mb == 0 {
            return None;
        }
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "rekindle-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let root = Path::new(CGROUP_ROOT);
        let mut cg = Cgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
            pids: false,
            memory: false,
            events: None,
        };
        let memory = limits.memory_mb * 1024 * 1024;
        if root.join("cgroup.controllers").is_file() {
            let controllers = std::fs::read_to_string(root.join("cgroup.controllers")).ok()?;
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            if !has("pids") {
                return None;
            }
            // The root cgroup may hold processes and still enable controllers for children.
            let want = if has("memory") {
                "+pids +memory"
            } else {
                "+pids"
            };
            let _ = std::fs::write(root.join("cgroup.subtree_control"), want);
            sweep(root);
            let dir = root.join(&name);
            std::fs::create_dir(&dir).ok()?;
            cg.dirs.push(dir.clone());
            if limits.processes > 0 {
                cg.pids =
                    std::fs::write(dir.join("pids.max"), limits.processes.to_string()).is_ok();
            }
            if memory > 0 && has("memory") {
                cg.memory = std::fs::write(dir.join("memory.max"), memory.to_string()).is_ok();
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                cg.events = Some(dir.join("memory.events"));
            }
            cg.procs.push(open_procs(&dir)?);
        } else {
            let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
            let path_of = |controller: &str| {
                own.lines().find_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
                    ctrls
                        .split(',')
                        .any(|c| c == controller)
                        .then(|| path.trim_start_matches('/').to_string())
                })
            };
            if limits.processes > 0 {
                let parent = root.join("pids").join(path_of("pids")?);
                sweep(&parent);
                let dir = parent.join(&name);
                std::fs::create_dir(&dir).ok()?;
                cg.dirs.push(dir.clone());
                cg.pids =
                    std::fs::write(dir.join("pids.max"), limits.processes.to_string()).is_ok();
                cg.procs.push(open_procs(&dir)?);
            }
            if memory > 0 {
                if let Some(parent) = path_of("memory").map(|p| root.join("memory").join(p)) {
                    sweep(&parent);
                    let dir = parent.join(&name);
                    if std::fs::create_dir(&dir).is_ok() {
                        cg.dirs.push(dir.clone());
                        cg.memory =
                            std::fs::write(dir.join("memory.limit_in_bytes"), memory.to_string())
                                .is_ok();
                        let _ = std::fs::write(
                            dir.join("memory.memsw.limit_in_bytes"),
                            memory.to_string(),
                        );
                        cg.events = Some(dir.join("memory.oom_control"));
                        cg.procs.extend(open_procs(&dir));
                    }
                }
            }
        }
        Some(cg)
    }

    /// Moves the process `pid` into the cgroup (in every hierarchy).
    pub(super) fn join(&mut self, pid: u32) -> std::io::Result<()> {
        for f in &mut self.procs {
            std::io::Write::write_all(f, pid.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// Whether the memory limit killed a process of this run.
    pub fn oom_killed(&self) -> bool {
        let Some(text) = self
            .events
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        else {
            return false;
        };
        text.lines().any(|l| {
            l.strip_prefix("oom_kill ")
                .and_then(|n| n.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        })
    }
}

/// Removes, once per process and folder, the empty cgroups of rekindle processes that are gone
/// (killed before they could remove their own).
fn sweep(parent: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        if swept.iter().any(|p| p == parent) {
            return;
        }
        swept.push(parent.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rekindle-"))
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            // Fails, harmlessly, if anything is still inside.
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

fn open_procs(dir: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.procs"))
        .ok()
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for dir in &self.dirs {
            // Normally empty by now (the namespace died with the script); whatever is left is
            // killed, and the last processes may take a moment to be reaped.
            for attempt in 0..1000 {
                if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                if attempt >= 20 {
                    let procs =
                        std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                        // SAFETY: kill only sends a signal; these processes belong to this run.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
}
