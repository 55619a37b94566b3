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
}

struct Raw {
    ppid: i32,
    nspid: Vec<i32>,
    uid: u32,
    start: u64,
    cpu_ticks: u64,
    command: String,
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
    let uid = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let start: u64 = f.get(19)?.parse().ok()?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut command = cmdline
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    if command.is_empty() {
        let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
        command = format!("[{comm}]");
    }
    Some(Raw {
        ppid,
        nspid,
        uid,
        start,
        cpu_ticks: utime + stime,
        command,
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
    let user_name = |host_uid: u32| -> String {
        let inside = uid_map.lines().find_map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            let (c, h, n) = (*v.first()?, *v.get(1)?, *v.get(2)?);
            let u = host_uid as u64;
            (u >= h && u < h + n).then(|| c + (u - h))
        });
        match inside {
            Some(u) => passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.get(2) == Some(&u.to_string().as_str())).then(|| f[0].to_string())
                })
                .unwrap_or_else(|| u.to_string()),
            None => "?".into(),
        }
    };
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
        let elapsed = (uptime - r.start as f64 / hz as f64).max(0.0) as u64;
        out.push(Proc {
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
