//! The seccomp filter bubblewrap installs before it starts the script: system calls a test never
//! needs and that reach past the namespaces fail with `EPERM`. Most of them need capabilities
//! the sandbox does not have anyway; the point is the ones that do not, chiefly the keyrings,
//! which are not namespaced (uid 0 inside is root's keyring outside). Compiled with
//! `seccompiler` (rust-vmm's, used by Firecracker) to the raw BPF bubblewrap reads.

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
use std::collections::BTreeMap;

/// Refused inside the sandbox (Docker's default profile refuses these too).
const REFUSED: &[libc::c_long] = &[
    // Keyrings: not namespaced.
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    // Kernel attack surface and information leaks.
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Host administration (capabilities would be needed anyway).
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_setns,
    libc::SYS_open_by_handle_at,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
];

const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;

/// The filter as the bytes bubblewrap's `--seccomp` reads (`struct sock_filter` in native byte
/// order), or None on an architecture `seccompiler` does not know.
pub fn program() -> Option<&'static [u8]> {
    static PROGRAM: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(compile).as_deref()
}

fn compile() -> Option<Vec<u8>> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).ok()?;
    // `c_long` is `i64` where seccompiler has a target; the conversion keeps other targets building.
    #[allow(clippy::useless_conversion)]
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = REFUSED
        .iter()
        .map(|&nr| (i64::from(nr), Vec::new()))
        .collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .ok()?;
    let compiled: BpfProgram = filter.try_into().ok()?;
    let mut out = Vec::with_capacity((compiled.len() + 3) * 8);
    let mut push = |code: u16, jt: u8, jf: u8, k: u32| {
        out.extend_from_slice(&code.to_ne_bytes());
        out.extend_from_slice(&[jt, jf]);
        out.extend_from_slice(&k.to_ne_bytes());
    };
    if std::env::consts::ARCH == "x86_64" {
        // x32 system calls carry the same architecture with bit 30 set in the number: refuse
        // them all, or they would get past the numbers above.
        push(BPF_LD_W_ABS, 0, 0, 0);
        push(BPF_JMP_JGE_K, 0, 1, 0x4000_0000);
        push(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }
    for f in compiled {
        push(f.code, f.jt, f.jf, f.k);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn compiles_here() {
        let p = super::program().expect("a filter for this architecture");
        assert_eq!(p.len() % 8, 0);
        assert!(p.len() / 8 > super::REFUSED.len());
    }
}
