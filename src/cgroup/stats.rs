//! Usage read from a container's cgroup files (`box stats`, `box inspect`).
use std::path::Path;

use serde::Serialize;

use super::Error;

/// What the cgroup files say; a field is None when its controller is not enabled there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// memory.current (bytes)
    pub memory_current: Option<u64>,
    /// memory.max (None = unlimited or no memory controller)
    pub memory_max: Option<u64>,
    /// memory.peak (kernel >= 5.19)
    pub memory_peak: Option<u64>,
    /// memory.events: times the limit was hit (`max`), OOM situations (`oom`), processes
    /// the OOM killer killed (`oom_kill`)
    pub memory_events_max: Option<u64>,
    pub memory_events_oom: Option<u64>,
    pub memory_events_oom_kill: Option<u64>,
    /// cpu.stat (microseconds; usage is there even without the cpu controller)
    pub cpu_usage_usec: Option<u64>,
    pub cpu_user_usec: Option<u64>,
    pub cpu_system_usec: Option<u64>,
    pub cpu_nr_periods: Option<u64>,
    pub cpu_nr_throttled: Option<u64>,
    pub cpu_throttled_usec: Option<u64>,
    /// cpu.max as written, e.g. "50000 100000"
    pub cpu_max: Option<String>,
    /// pids.current, pids.max (None = unlimited or no pids controller)
    pub pids_current: Option<u64>,
    pub pids_max: Option<u64>,
    /// pids.events max: forks refused by pids.max
    pub pids_events_max: Option<u64>,
}

impl Stats {
    /// Whether the OOM killer killed a process in this cgroup.
    pub fn oom_killed(&self) -> bool {
        self.memory_events_oom_kill.unwrap_or(0) > 0
    }
}

/// Read the usage of the cgroup directory `path` (an absolute path under the cgroup2 mount).
pub fn stats(path: &Path) -> Result<Stats, Error> {
    if !path.join("cgroup.procs").exists() {
        return Err(Error::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a cgroup directory"),
        });
    }
    let read = |f: &str| std::fs::read_to_string(path.join(f)).ok();
    let num = |f: &str| read(f).and_then(|t| parse_max(&t));
    let mem_events = read("memory.events").map(|t| keyed(&t));
    let cpu = read("cpu.stat").map(|t| keyed(&t));
    let pids_events = read("pids.events").map(|t| keyed(&t));
    let get = |m: &Option<Vec<(String, u64)>>, k: &str| {
        m.as_ref()
            .and_then(|m| m.iter().find(|(n, _)| n == k).map(|(_, v)| *v))
    };
    Ok(Stats {
        memory_current: num("memory.current"),
        memory_max: num("memory.max"),
        memory_peak: num("memory.peak"),
        memory_events_max: get(&mem_events, "max"),
        memory_events_oom: get(&mem_events, "oom"),
        memory_events_oom_kill: get(&mem_events, "oom_kill"),
        cpu_usage_usec: get(&cpu, "usage_usec"),
        cpu_user_usec: get(&cpu, "user_usec"),
        cpu_system_usec: get(&cpu, "system_usec"),
        cpu_nr_periods: get(&cpu, "nr_periods"),
        cpu_nr_throttled: get(&cpu, "nr_throttled"),
        cpu_throttled_usec: get(&cpu, "throttled_usec"),
        cpu_max: read("cpu.max").map(|t| t.trim().to_string()),
        pids_current: num("pids.current"),
        pids_max: num("pids.max"),
        pids_events_max: get(&pids_events, "max"),
    })
}

/// A single number, or None for "max" and garbage.
fn parse_max(t: &str) -> Option<u64> {
    t.trim().parse().ok()
}

/// "key value" lines (memory.events, cpu.stat, pids.events).
pub(crate) fn keyed(t: &str) -> Vec<(String, u64)> {
    t.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fake_cgroup() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).unwrap();
        w("cgroup.procs", "");
        w("memory.current", "1234\n");
        w("memory.max", "67108864\n");
        w(
            "memory.events",
            "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
        w(
            "cpu.stat",
            "usage_usec 200\nuser_usec 150\nsystem_usec 50\nnr_periods 10\nnr_throttled 4\nthrottled_usec 900\n",
        );
        w("cpu.max", "50000 100000\n");
        w("pids.current", "3\n");
        w("pids.max", "max\n");
        w("pids.events", "max 7\n");
        let s = stats(d.path()).unwrap();
        assert_eq!(s.memory_current, Some(1234));
        assert_eq!(s.memory_max, Some(64 << 20));
        assert_eq!(s.memory_events_oom_kill, Some(1));
        assert!(s.oom_killed());
        assert_eq!(s.cpu_nr_throttled, Some(4));
        assert_eq!(s.cpu_max.as_deref(), Some("50000 100000"));
        assert_eq!(s.pids_current, Some(3));
        assert_eq!(s.pids_max, None, "max is unlimited");
        assert_eq!(s.pids_events_max, Some(7));
        assert_eq!(s.memory_peak, None);
    }

    #[test]
    fn not_a_cgroup() {
        let d = tempfile::tempdir().unwrap();
        assert!(stats(&d.path().join("nope")).is_err());
    }
}
