//! What the sandbox costs per script run: `scripts::run` on a script that exits 0, sandboxed,
//! sandboxed without the per-run cgroup (no process or total memory limit: what joining the
//! cgroup costs), and with the sandbox disabled, interleaved so machine noise hits all alike.
//! Prints medians, min and max in ms and the difference of medians, sandboxed minus disabled
//! (issue 9's budget: at most 50 ms).
//!
//!   cargo bench -p rekindle-workspace --bench sandbox          # 30 rounds after 3 warm-up
//!   ROUNDS=51 cargo bench -p rekindle-workspace --bench sandbox

use rekindle_workspace::sandbox::SandboxPolicy;
use rekindle_workspace::scripts::{self, Outcome};
use std::time::{Duration, Instant};

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let warmup: usize = std::env::var("WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    let tests = dir.path().join("tests");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::create_dir_all(&tests).unwrap();
    let script = dir.path().join("run_tests.sh");
    std::fs::write(&script, "#!/usr/bin/env bash\nexit 0\n").unwrap();
    let sandboxed = SandboxPolicy::default();
    match sandboxed.probe() {
        Ok(p) => eprintln!("sandbox: {p}"),
        Err(e) => panic!("{e}"),
    }
    let disabled = SandboxPolicy::disabled();
    // The same without the cgroup (no process or total memory limit): what the cgroup costs.
    let mut no_cgroup = SandboxPolicy::default();
    no_cgroup.limits.processes = 0;
    no_cgroup.limits.memory_mb = 0;
    let once = |policy: &SandboxPolicy| {
        let t = Instant::now();
        let r = scripts::run(
            &script,
            &[&code, &tests],
            &code,
            Duration::from_secs(30),
            policy,
        )
        .unwrap();
        assert_eq!(r.outcome, Outcome::Passed, "{}", r.output);
        t.elapsed().as_secs_f64() * 1000.0
    };
    let policies = [
        ("sandboxed", &sandboxed),
        ("sandboxed, no cgroup limits", &no_cgroup),
        ("--no-sandbox", &disabled),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); policies.len()];
    for i in 0..warmup + rounds {
        for (k, (_, policy)) in policies.iter().enumerate() {
            let ms = once(policy);
            if i >= warmup {
                times[k].push(ms);
            }
        }
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let median = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        (median, v[0], v[v.len() - 1])
    };
    println!("script run that exits 0, {rounds} rounds (ms)   median     min     max");
    let mut medians = Vec::new();
    for ((name, _), v) in policies.iter().zip(&mut times) {
        let (med, min, max) = stats(v);
        medians.push(med);
        println!("{name:<40} {med:9.1} {min:7.1} {max:7.1}");
    }
    println!(
        "sandbox cost (difference of medians)     {:9.1}",
        medians[0] - medians[2]
    );
}
