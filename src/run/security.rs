//! Capabilities and the default seccomp profile.
//!
//! # Capabilities
//! The default set is podman's: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE,
//! SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT (CapEff `00000000800405fb`). It becomes the
//! bounding, permitted and effective sets of the container's process. The inheritable and
//! ambient sets stay empty, as docker and podman do since CVE-2022-24769/CVE-2022-27649 (an
//! inheritable set would let a non-root user regain capabilities through file capabilities).
//! As in docker, a non-root `--user` therefore ends with no capabilities after `execve`.
//! These are capabilities *inside* the user namespace: they never grant anything over the
//! host's resources.
//!
//! # Seccomp
//! A deny-list equivalent to docker's default allow-list on the architectures box supports
//! (x86_64, aarch64): every system call docker's profile does not allow for the default
//! capability set returns EPERM; the ones docker allows when a capability is added
//! (`--cap-add SYS_ADMIN` allows mount, unshare, setns, ...) are allowed when that
//! capability is in the set. `clone` with namespace flags is denied (EPERM) and `clone3`
//! answers ENOSYS (so libcs fall back to `clone`, whose flags a filter can inspect), unless
//! SYS_ADMIN is given. `personality` is allowed only with the values docker allows. The
//! ptrace family (ptrace, process_vm_*, kcmp, pidfd_getfd) is allowed, as docker does on
//! kernels >= 4.8. On x86_64 the x32 variants of denied calls are denied too. System calls
//! of another architecture (i386 `int 0x80`) kill the process: i386 binaries need
//! `--security-opt seccomp=unconfined`.
//!
//! A deny-list (rather than docker's ~370-entry allow-list) keeps the filter short for
//! seccompiler's linear BPF and lets new harmless system calls work; the price is that a
//! future dangerous system call must be added here. The new mount API (fsopen, fsmount,
//! move_mount, open_tree, ...) and io_uring (which bypasses seccomp) are on the list.
use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::Error;

/// Capability names by number (CAP_LAST_CAP of kernel 6.x is 40).
pub const CAP_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// podman's default capability set.
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn cap_number(name: &str) -> Option<u32> {
    let n = name.to_ascii_uppercase();
    let n = n.strip_prefix("CAP_").unwrap_or(&n);
    CAP_NAMES.iter().position(|c| *c == n).map(|i| i as u32)
}

fn full_name(n: u32) -> String {
    format!("CAP_{}", CAP_NAMES[n as usize])
}

/// Every capability the running kernel knows, as `CAP_*` names.
pub fn all_cap_names() -> Vec<String> {
    (0..=last_cap().min(CAP_NAMES.len() as u32 - 1))
        .map(full_name)
        .collect()
}

/// The highest capability number of the running kernel.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// docker's rules: `--cap-add ALL` starts from everything (minus drops); `--cap-drop ALL`
/// starts from nothing (plus adds); otherwise default + adds - drops.
pub fn cap_set(add: &[String], drop: &[String]) -> Result<Vec<String>, Error> {
    let parse = |list: &[String], flag: &str| -> Result<(bool, Vec<u32>), Error> {
        let mut all = false;
        let mut caps = Vec::new();
        for c in list {
            if c.eq_ignore_ascii_case("ALL") {
                all = true;
            } else {
                caps.push(cap_number(c).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{flag} {c}: unknown capability (e.g. NET_ADMIN, SYS_PTRACE, ALL)"
                    ))
                })?);
            }
        }
        Ok((all, caps))
    };
    let (add_all, adds) = parse(add, "--cap-add")?;
    let (drop_all, drops) = parse(drop, "--cap-drop")?;
    let mut set: Vec<u32> = if add_all {
        (0..CAP_NAMES.len() as u32).collect()
    } else if drop_all {
        Vec::new()
    } else {
        DEFAULT_CAPS.iter().filter_map(|c| cap_number(c)).collect()
    };
    if !add_all {
        set.extend(adds);
    }
    if !drop_all || add_all {
        set.retain(|c| !drops.contains(c));
    }
    set.sort_unstable();
    set.dedup();
    Ok(set.into_iter().map(full_name).collect())
}

/// Capability names → bit mask (unknown names are ignored: they were validated at create).
pub fn cap_mask(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| cap_number(n))
        .fold(0u64, |m, c| m | (1u64 << c))
}

/// Drop every capability not in `keep` from the bounding set.
pub fn drop_bounding(keep: u64) -> nix::Result<()> {
    for cap in 0..=last_cap() {
        if keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = nix::Error::last();
                // EINVAL: a capability this kernel does not know.
                if e != nix::Error::EINVAL {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Set effective = permitted = `caps`, inheritable and ambient empty.
pub fn set_caps(caps: u64) -> nix::Result<()> {
    const V3: u32 = 0x2008_0522;
    let mut header = CapHeader {
        version: V3,
        pid: 0,
    };
    let lo = caps as u32;
    let hi = (caps >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo,
            inheritable: 0,
        },
        CapData {
            effective: hi,
            permitted: hi,
            inheritable: 0,
        },
    ];
    // SAFETY: header and two data structs, as _LINUX_CAPABILITY_VERSION_3 requires.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if r != 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    Ok(())
}

/// A denied system call: always, or unless one of the capabilities is in the set.
struct Deny {
    nr: i64,
    unless: &'static [&'static str],
}

const fn always(nr: i64) -> Deny {
    Deny { nr, unless: &[] }
}
const fn unless(nr: i64, caps: &'static [&'static str]) -> Deny {
    Deny { nr, unless: caps }
}

fn deny_list() -> Vec<Deny> {
    use libc::*;
    const ADMIN: &[&str] = &["SYS_ADMIN"];
    let mut v = vec![
        always(SYS_add_key),
        always(SYS_keyctl),
        always(SYS_request_key),
        always(SYS_kexec_load),
        always(SYS_kexec_file_load),
        always(SYS_userfaultfd),
        always(SYS_swapon),
        always(SYS_swapoff),
        always(SYS_io_uring_setup),
        always(SYS_io_uring_enter),
        always(SYS_io_uring_register),
        unless(SYS_acct, &["SYS_PACCT"]),
        unless(SYS_bpf, &["SYS_ADMIN", "BPF"]),
        unless(SYS_perf_event_open, &["SYS_ADMIN", "PERFMON"]),
        unless(SYS_clock_adjtime, &["SYS_TIME"]),
        unless(SYS_clock_settime, &["SYS_TIME"]),
        unless(SYS_settimeofday, &["SYS_TIME"]),
        unless(SYS_init_module, &["SYS_MODULE"]),
        unless(SYS_finit_module, &["SYS_MODULE"]),
        unless(SYS_delete_module, &["SYS_MODULE"]),
        unless(SYS_get_mempolicy, &["SYS_NICE"]),
        unless(SYS_set_mempolicy, &["SYS_NICE"]),
        unless(SYS_mbind, &["SYS_NICE"]),
        unless(SYS_move_pages, &["SYS_NICE"]),
        unless(SYS_reboot, &["SYS_BOOT"]),
        unless(SYS_vhangup, &["SYS_TTY_CONFIG"]),
        unless(SYS_open_by_handle_at, &["DAC_READ_SEARCH"]),
        unless(SYS_name_to_handle_at, &["DAC_READ_SEARCH"]),
        unless(SYS_syslog, &["SYSLOG", "SYS_ADMIN"]),
        unless(SYS_lookup_dcookie, ADMIN),
        unless(SYS_mount, ADMIN),
        unless(SYS_umount2, ADMIN),
        unless(SYS_pivot_root, ADMIN),
        unless(SYS_setns, ADMIN),
        unless(SYS_unshare, ADMIN),
        unless(SYS_sethostname, ADMIN),
        unless(SYS_setdomainname, ADMIN),
        unless(SYS_quotactl, ADMIN),
        unless(SYS_quotactl_fd, ADMIN),
        unless(SYS_fanotify_init, ADMIN),
        unless(SYS_fsopen, ADMIN),
        unless(SYS_fsconfig, ADMIN),
        unless(SYS_fsmount, ADMIN),
        unless(SYS_fspick, ADMIN),
        unless(SYS_move_mount, ADMIN),
        unless(SYS_open_tree, ADMIN),
        unless(SYS_mount_setattr, ADMIN),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        always(174), // create_module (gone from libc's table)
        always(177), // get_kernel_syms
        always(178), // query_module
        always(SYS_nfsservctl),
        always(SYS_uselib),
        always(SYS_ustat),
        always(SYS_sysfs),
        always(SYS__sysctl),
        always(SYS_afs_syscall),
        always(SYS_getpmsg),
        always(SYS_putpmsg),
        always(SYS_security),
        always(SYS_tuxcall),
        always(SYS_vserver),
        unless(SYS_iopl, &["SYS_RAWIO"]),
        unless(SYS_ioperm, &["SYS_RAWIO"]),
    ]);
    v
}

/// The two BPF programs of the default profile, for the capability set `caps`: the
/// EPERM deny-list, and the ENOSYS answer for clone3 (None when SYS_ADMIN is given).
pub fn default_profile(caps: u64) -> Result<Vec<BpfProgram>, seccompiler::BackendError> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|_| seccompiler::BackendError::InvalidTargetArch(std::env::consts::ARCH.into()))?;
    let has = |c: &str| cap_number(c).is_some_and(|n| caps & (1u64 << n) != 0);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for d in deny_list() {
        if d.unless.iter().any(|c| has(c)) {
            continue;
        }
        rules.insert(d.nr, vec![]);
    }
    let cond = |arg, op, val| SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, val);
    // personality: only the values docker allows (PER_LINUX, PER_LINUX32, UNAME26 variants,
    // and the 0xffffffff query).
    let allowed_personas = [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff];
    rules.insert(
        libc::SYS_personality,
        vec![SeccompRule::new(
            allowed_personas
                .iter()
                .map(|p| cond(0, SeccompCmpOp::Ne, *p))
                .collect::<Result<_, _>>()?,
        )?],
    );
    if !has("SYS_ADMIN") {
        // clone with any namespace flag. The flags are argument 0 on x86_64 and aarch64.
        let ns_flags = [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWTIME,
        ];
        let chain = ns_flags
            .iter()
            .map(|f| SeccompRule::new(vec![cond(0, SeccompCmpOp::MaskedEq(*f as u64), *f as u64)?]))
            .collect::<Result<Vec<_>, _>>()?;
        rules.insert(libc::SYS_clone, chain);
    }
    #[cfg(target_arch = "x86_64")]
    {
        // x32 ABI: the same calls with bit 30 set, plus the x32-only numbers of
        // kexec_load (528) and move_pages (533).
        const X32: i64 = 0x4000_0000;
        let mut x32: Vec<(i64, Vec<SeccompRule>)> = rules
            .iter()
            .map(|(nr, chain)| (nr | X32, chain.clone()))
            .collect();
        x32.push((528 | X32, vec![]));
        if !has("SYS_NICE") {
            x32.push((533 | X32, vec![]));
        }
        rules.extend(x32);
    }
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )?;
    let mut programs = vec![BpfProgram::try_from(deny)?];
    if !has("SYS_ADMIN") {
        let clone3 = SeccompFilter::new(
            [(libc::SYS_clone3, vec![])].into_iter().collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )?;
        programs.push(BpfProgram::try_from(clone3)?);
    }
    Ok(programs)
}

/// Install a compiled filter. Unlike `seccompiler::apply_filter` this does not set
/// no_new_privs: box sets it only for `--security-opt no-new-privileges`, and installs the
/// filter while it still has CAP_SYS_ADMIN in the user namespace.
pub fn install(program: &BpfProgram) -> nix::Result<()> {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const seccompiler::sock_filter,
    }
    let prog = SockFprog {
        len: program.len() as u16,
        filter: program.as_ptr(),
    };
    // SAFETY: the kernel copies the program; `prog` and `program` outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const SockFprog,
        )
    };
    if r != 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn default_set_is_podmans() {
        let caps = cap_set(&[], &[]).unwrap();
        assert_eq!(cap_mask(&caps), 0x8004_05fb);
    }

    #[test]
    fn add_and_drop_follow_docker() {
        let caps = cap_set(&s(&["net_admin"]), &s(&["CAP_CHOWN"])).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(cap_set(&s(&["KILL"]), &s(&["ALL"])).unwrap(), ["CAP_KILL"]);
        let all_but = cap_set(&s(&["ALL"]), &s(&["SYS_ADMIN"])).unwrap();
        assert_eq!(all_but.len(), CAP_NAMES.len() - 1);
        assert!(cap_set(&s(&["BOGUS"]), &[]).is_err());
    }

    #[test]
    fn profile_compiles() {
        let default = cap_mask(&cap_set(&[], &[]).unwrap());
        let p = default_profile(default).unwrap();
        assert_eq!(p.len(), 2);
        let admin = cap_mask(&cap_set(&s(&["SYS_ADMIN"]), &[]).unwrap());
        let p2 = default_profile(admin).unwrap();
        assert_eq!(p2.len(), 1);
        assert!(p2[0].len() < p[0].len());
    }
}
