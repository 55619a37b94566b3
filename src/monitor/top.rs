//! `box top`: the processes of a container, from /proc (no `ps` binary needed inside).
//!
//! A process belongs to the container when it is in the same pid namespace as the
//! container's PID 1 (same /proc/P/ns/pid), or, where that link cannot be read (processes
//! running as a subordinate uid), when PID 1 is among its ancestors.
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;

use super::{Ctx, Result};

#[derive(Debug, Clone)]
pub struct Proc {
    /// Pid inside the container.
    pub pid: i32,
    pub ppid: i32,
    pub host_pid: i32,
    /// User name or uid inside the container.
    pub user: String,
    pub elapsed: String,
    pub time: String,
    pub command: String,
    /// Every descriptor's value, by its ps(1) name (see `DESCRIPTORS`).
    pub fields: HashMap<&'static str, String>,
}

/// podman's `top` descriptors (ps(1) names) with their headers, and the AIX format
/// descriptors (`%C`, `%U`, ...) that stand for them.
pub const DESCRIPTORS: &[(&str, Option<&str>, &str)] = &[
    ("args", Some("%a"), "COMMAND"),
    ("capamb", None, "AMBIENT CAPS"),
    ("capbnd", None, "BOUNDING CAPS"),
    ("capeff", None, "EFFECTIVE CAPS"),
    ("capinh", None, "INHERITED CAPS"),
    ("capprm", None, "PERMITTED CAPS"),
    ("comm", Some("%c"), "COMMAND"),
    ("etime", Some("%t"), "ELAPSED"),
    ("group", Some("%G"), "GROUP"),
    ("groups", None, "GROUPS"),
    ("hgroup", None, "HGROUP"),
    ("hgroups", None, "HGROUPS"),
    ("hpid", None, "HPID"),
    ("huser", None, "HUSER"),
    ("label", None, "LABEL"),
    ("nice", Some("%n"), "NI"),
    ("pcpu", Some("%C"), "%CPU"),
    ("pgid", Some("%r"), "PGID"),
    ("pid", Some("%p"), "PID"),
    ("ppid", Some("%P"), "PPID"),
    ("rgroup", Some("%g"), "RGROUP"),
    ("rss", None, "RSS"),
    ("ruser", Some("%u"), "RUSER"),
    ("seccomp", None, "SECCOMP"),
    ("state", None, "STATE"),
    ("stime", None, "STIME"),
    ("time", Some("%x"), "TIME"),
    ("tty", Some("%y"), "TTY"),
    ("user", Some("%U"), "USER"),
    ("vsz", Some("%z"), "VSZ"),
];

/// The ps(1) name and header of a descriptor given as a name or an AIX `%X`.
pub fn descriptor(word: &str) -> Option<(&'static str, &'static str)> {
    DESCRIPTORS
        .iter()
        .find(|(name, aix, _)| *name == word || *aix == Some(word))
        .map(|(name, _, header)| (*name, *header))
}

/// A capability set as podman shows it: `none`, `full` or the names.
fn cap_names(mask: u64) -> String {
    let last = crate::run::security::last_cap();
    let full = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    if mask == 0 {
        return "none".into();
    }
    if mask & full == full {
        return "full".into();
    }
    crate::run::security::CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

struct Raw {
    ppid: i32,
    nspid: Vec<i32>,
    /// Real and effective uid and gid (host ids).
    ruid: u32,
    uid: u32,
    rgid: u32,
    gid: u32,
    groups: Vec<u32>,
    /// CapInh, CapPrm, CapEff, CapBnd, CapAmb.
    caps: [u64; 5],
    seccomp: u8,
    start: u64,
    cpu_ticks: u64,
    command: String,
    comm: String,
    state: String,
    pgid: i32,
    tty_nr: u32,
    nice: i64,
    vsize: u64,
    rss_pages: u64,
}

fn read_raw(pid: i32) -> Option<Raw> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
    };
    let ppid = field("PPid:")?.parse().ok()?;
    let nspid = field("NSpid:")?
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let ids = |k: &str| -> Option<Vec<u32>> {
        Some(
            field(k)?
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect(),
        )
    };
    let uids = ids("Uid:")?;
    let gids = ids("Gid:")?;
    let cap = |k: &str| {
        field(k)
            .and_then(|v| u64::from_str_radix(&v, 16).ok())
            .unwrap_or(0)
    };
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut command = cmdline
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let comm = stat[stat.find('(')? + 1..stat.rfind(')')?].to_string();
    if command.is_empty() {
        command = format!("[{comm}]");
    }
    Some(Raw {
        ppid,
        nspid,
        ruid: *uids.first()?,
        uid: *uids.get(1)?,
        rgid: *gids.first()?,
        gid: *gids.get(1)?,
        groups: ids("Groups:").unwrap_or_default(),
        caps: [
            cap("CapInh:"),
            cap("CapPrm:"),
            cap("CapEff:"),
            cap("CapBnd:"),
            cap("CapAmb:"),
        ],
        seccomp: field("Seccomp:").and_then(|v| v.parse().ok()).unwrap_or(0),
        start,
        cpu_ticks: utime + stime,
        command,
        comm,
        state: f.first()?.to_string(),
        pgid: num(2) as i32,
        tty_nr: num(4) as u32,
        nice: num(16),
        vsize: num(20) as u64,
        rss_pages: num(21) as u64,
    })
}

fn ns_ino(pid: i32) -> Option<(u64, u64)> {
    fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn clock(secs: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// A uid or gid of the host as its name (or number) inside the container, through the
/// container's id map and its /etc/passwd or /etc/group.
fn name_inside(map: &str, file: &str, host: u32) -> String {
    let inside = map.lines().find_map(|l| {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (c, h, n) = (*v.first()?, *v.get(1)?, *v.get(2)?);
        let u = host as u64;
        (u >= h && u < h + n).then(|| c + (u - h))
    });
    match inside {
        Some(u) => file
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&u.to_string().as_str())).then(|| f[0].to_string())
            })
            .unwrap_or_else(|| u.to_string()),
        None => "?".into(),
    }
}

/// The boot time of the host, in seconds since the epoch (`btime` of /proc/stat).
fn boot_time() -> u64 {
    fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn page_kib() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64
        / 1024
}

/// A controlling terminal's name as ps(1) shows it (`?` for none).
fn tty_name(nr: u32) -> String {
    let (major, minor) = ((nr >> 8) & 0xfff, (nr & 0xff) | ((nr >> 12) & 0xfff00));
    match major {
        0 => "?".into(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 => format!("tty{minor}"),
        _ => format!("{major}:{minor}"),
    }
}

/// Usage summed over the container's processes, from /proc (for `box stats` where the
/// container has no cgroup of its own): (cpu time in microseconds, resident bytes, count).
pub fn usage(init: i32) -> Result<(u64, u64, u64)> {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let (mut cpu, mut rss, mut n) = (0u64, 0u64, 0u64);
    for p in processes(init)? {
        if let Some(r) = read_raw(p.host_pid) {
            cpu += r.cpu_ticks * 1_000_000 / hz;
        }
        let statm = fs::read_to_string(format!("/proc/{}/statm", p.host_pid)).unwrap_or_default();
        rss += statm
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse::<u64>().ok())
            .unwrap_or(0)
            * page;
        n += 1;
    }
    Ok((cpu, rss, n))
}

/// The processes of the container whose PID 1 has host pid `init`.
pub fn processes(init: i32) -> Result<Vec<Proc>> {
    let init_ns = ns_ino(init);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    let uptime: f64 = fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let mut all: HashMap<i32, Raw> = HashMap::new();
    for e in fs::read_dir("/proc")
        .ctx(|| "reading /proc".into())?
        .flatten()
    {
        if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok())
            && let Some(r) = read_raw(pid)
        {
            all.insert(pid, r);
        }
    }
    let init_depth = all.get(&init).map(|r| r.nspid.len()).unwrap_or(0);
    let uid_map = fs::read_to_string(format!("/proc/{init}/uid_map")).unwrap_or_default();
    let passwd = fs::read_to_string(format!("/proc/{init}/root/etc/passwd")).unwrap_or_default();
    let gid_map = fs::read_to_string(format!("/proc/{init}/gid_map")).unwrap_or_default();
    let group_file = fs::read_to_string(format!("/proc/{init}/root/etc/group")).unwrap_or_default();
    let group_name = |host_gid: u32| name_inside(&gid_map, &group_file, host_gid);
    let user_name = |host_uid: u32| name_inside(&uid_map, &passwd, host_uid);
    let is_descendant = |mut p: i32| {
        for _ in 0..4096 {
            if p == init {
                return true;
            }
            match all.get(&p) {
                Some(r) if r.ppid > 0 => p = r.ppid,
                _ => return false,
            }
        }
        false
    };
    let mut out = Vec::new();
    let mut pids: Vec<&i32> = all.keys().collect();
    pids.sort();
    for &pid in pids {
        let r = &all[&pid];
        let member = match (init_ns, ns_ino(pid)) {
            (Some(a), Some(b)) => a == b,
            _ => r.nspid.len() == init_depth && is_descendant(pid),
        };
        if !member || r.nspid.len() < init_depth || init_depth == 0 {
            continue;
        }
        let inner = |host: i32| {
            all.get(&host)
                .and_then(|x| x.nspid.get(init_depth - 1).copied())
                .unwrap_or(0)
        };
        let elapsed_f = (uptime - r.start as f64 / hz as f64).max(0.0);
        let elapsed = elapsed_f as u64;
        let host_user = |u: u32| {
            nix::unistd::User::from_uid(u.into())
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| u.to_string())
        };
        let host_group = |g: u32| {
            nix::unistd::Group::from_gid(g.into())
                .ok()
                .flatten()
                .map(|g| g.name)
                .unwrap_or_else(|| g.to_string())
        };
        let list = |f: &dyn Fn(u32) -> String| {
            if r.groups.is_empty() {
                "none".to_string()
            } else {
                r.groups.iter().map(|g| f(*g)).collect::<Vec<_>>().join(",")
            }
        };
        let boot = boot_time();
        let started = boot + r.start / hz;
        let mut fields: HashMap<&'static str, String> = HashMap::new();
        fields.insert("args", r.command.clone());
        fields.insert("comm", r.comm.clone());
        for (i, k) in ["capinh", "capprm", "capeff", "capbnd", "capamb"]
            .into_iter()
            .enumerate()
        {
            fields.insert(k, cap_names(r.caps[i]));
        }
        fields.insert("etime", clock(elapsed));
        fields.insert("group", group_name(r.gid));
        fields.insert("rgroup", group_name(r.rgid));
        fields.insert("groups", list(&group_name));
        fields.insert("hgroup", host_group(r.gid));
        fields.insert("hgroups", list(&host_group));
        fields.insert("hpid", pid.to_string());
        fields.insert("huser", host_user(r.uid));
        fields.insert("label", "-".into());
        fields.insert("nice", r.nice.to_string());
        let cpu = if elapsed_f > 0.0 {
            r.cpu_ticks as f64 / hz as f64 / elapsed_f * 100.0
        } else {
            0.0
        };
        fields.insert("pcpu", format!("{cpu:.3}"));
        fields.insert("pgid", inner(r.pgid).to_string());
        fields.insert("pid", inner(pid).to_string());
        fields.insert(
            "ppid",
            if pid == init { 0 } else { inner(r.ppid) }.to_string(),
        );
        fields.insert("rss", (r.rss_pages * page_kib()).to_string());
        fields.insert("ruser", user_name(r.ruid));
        fields.insert(
            "seccomp",
            match r.seccomp {
                0 => "disabled",
                1 => "strict",
                _ => "filter",
            }
            .into(),
        );
        fields.insert("state", r.state.clone());
        fields.insert(
            "stime",
            crate::units::format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(started),
            ),
        );
        fields.insert("time", clock(r.cpu_ticks / hz));
        fields.insert("tty", tty_name(r.tty_nr));
        fields.insert("user", user_name(r.uid));
        fields.insert("vsz", (r.vsize / 1024).to_string());
        out.push(Proc {
            fields,
            pid: inner(pid),
            ppid: if pid == init { 0 } else { inner(r.ppid) },
            host_pid: pid,
            user: user_name(r.uid),
            elapsed: clock(elapsed),
            time: clock(r.cpu_ticks / hz),
            command: r.command.clone(),
        });
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// One reading of a running container's usage, for `box stats`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub stats: crate::cgroup::Stats,
    pub at: std::time::Instant,
}

/// Read `rec`'s usage: from its own cgroup when it has one (with its limits), else the sum
/// of its processes in /proc (no limits to show). None when it is not running.
pub fn sample(rec: &crate::container::Record) -> Option<Sample> {
    let st = super::status::observe(rec);
    if st.status != crate::container::Status::Running {
        return None;
    }
    if let Some(dir) = super::freezer::own_cgroup_dir(&st)
        && let Ok(stats) = crate::cgroup::stats(&dir)
    {
        return Some(Sample {
            stats,
            at: std::time::Instant::now(),
        });
    }
    let (cpu, rss, n) = usage(st.pid?).ok()?;
    let stats = crate::cgroup::Stats {
        cpu_usage_usec: Some(cpu),
        memory_current: Some(rss),
        pids_current: Some(n),
        ..Default::default()
    };
    Some(Sample {
        stats,
        at: std::time::Instant::now(),
    })
}

/// CPU use between two samples, in percent of one CPU (docker's `CPU %`).
pub fn cpu_percent(a: &Sample, b: &Sample) -> Option<f64> {
    match (a.stats.cpu_usage_usec, b.stats.cpu_usage_usec) {
        (Some(x), Some(y)) if b.at > a.at => {
            let wall = b.at.duration_since(a.at).as_micros() as f64;
            Some((y.saturating_sub(x) as f64) / wall * 100.0)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_percent_of_one_cpu_between_samples() {
        let t0 = std::time::Instant::now();
        let at = |usec: Option<u64>, after_ms: u64| super::Sample {
            stats: crate::cgroup::Stats {
                cpu_usage_usec: usec,
                ..Default::default()
            },
            at: t0 + std::time::Duration::from_millis(after_ms),
        };
        let p = super::cpu_percent(&at(Some(1_000), 0), &at(Some(251_000), 500)).unwrap();
        assert!((p - 50.0).abs() < 1e-9, "{p}");
        assert_eq!(super::cpu_percent(&at(Some(0), 0), &at(None, 500)), None);
        assert_eq!(super::cpu_percent(&at(Some(0), 5), &at(Some(9), 5)), None);
    }

    use super::*;

    #[test]
    fn our_own_process_is_listed_as_its_own_init() {
        let me = std::process::id() as i32;
        let r = read_raw(me).unwrap();
        assert!(!r.nspid.is_empty());
        assert_eq!(clock(3725), "01:02:05");
    }
}
