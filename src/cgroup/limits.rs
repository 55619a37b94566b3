//! Resource limits from the command line, validated and converted to cgroup v2 values.
//!
//! Semantics follow docker/podman:
//! - sizes: `1024`, `64k`, `64m`, `1g`, `1.5g`, `64MiB`, `64mb` (binary units).
//! - `--memory-swap` is memory *plus* swap: `memory.swap.max = swap - memory`; `-1` is unlimited
//!   swap; unset with `--memory` means as much swap as memory (`memory.swap.max = memory`);
//!   `--memory-swap` without `--memory` is refused.
//! - `--cpus N` → `cpu.max = N*100000 100000`; `--cpu-quota/--cpu-period` → `cpu.max` directly;
//!   `--cpus` together with either is refused.
//! - `--cpu-shares` (2..262144, v1) → `cpu.weight` with the conversion runc and crun use
//!   (1024 → 100); `--cpu-weight` (1..10000) is written as is.
//! - `--pids-limit N`; `0` or `-1` mean unlimited. Without it the container gets
//!   [`DEFAULT_PIDS_LIMIT`] where the pids controller is delegated (like podman).
use serde::{Deserialize, Serialize};

use super::Error;

/// The limit flags of `box run`/`box create` as given (`--memory 64m`, `--cpus 0.5`, ...):
/// what [`Limits::parse`] checks and converts. Also how container records written before
/// limits were stored converted kept them (`resources` in config.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitFlags {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<f64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpu_weight: Option<u64>,
    pub pids_limit: Option<i64>,
    pub cpuset_cpus: Option<String>,
}

/// podman's default `pids.max` where the pids controller is usable.
pub const DEFAULT_PIDS_LIMIT: u64 = 2048;
/// The CFS period when none was given (microseconds).
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;
/// docker's minimum for `--memory`.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// `memory.swap.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Swap {
    /// `max`
    Unlimited,
    /// bytes of swap (not memory plus swap)
    Bytes(u64),
}

/// `cpu.max`: `quota period` (`quota` None = `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuMax {
    pub quota: Option<u64>,
    pub period: u64,
}

/// `pids.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pids {
    /// Not given: [`DEFAULT_PIDS_LIMIT`] where pids is delegated, nothing elsewhere.
    Default,
    /// `--pids-limit 0` or `-1`: `max`.
    Unlimited,
    Max(u64),
}

/// The limits asked for on the command line, in cgroup v2 terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// `memory.max` in bytes.
    pub memory: Option<u64>,
    /// `memory.swap.max`.
    pub swap: Option<Swap>,
    /// Whether `--memory-swap` was given (then a missing swap controller is an error; the
    /// implicit swap = memory default is skipped where swap accounting is off).
    pub swap_explicit: bool,
    /// `cpu.max`.
    pub cpu_max: Option<CpuMax>,
    /// `cpu.weight`.
    pub cpu_weight: Option<u64>,
    /// `pids.max`.
    pub pids: Pids,
    /// `cpuset.cpus`.
    pub cpuset_cpus: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: None,
            swap: None,
            swap_explicit: false,
            cpu_max: None,
            cpu_weight: None,
            pids: Pids::Default,
            cpuset_cpus: None,
        }
    }
}

impl Limits {
    /// Validate and convert the limit flags of `box run`/`box create`.
    pub fn parse(o: &LimitFlags) -> Result<Limits, Error> {
        let mut l = Limits::default();
        if let Some(m) = &o.memory {
            let bytes = parse_size(m).map_err(|e| invalid("--memory", m, &e))?;
            if bytes < MIN_MEMORY {
                return Err(invalid("--memory", m, "the minimum is 6m"));
            }
            l.memory = Some(bytes);
        }
        match (&o.memory_swap, l.memory) {
            (None, Some(m)) => l.swap = Some(Swap::Bytes(m)),
            (None, None) => {}
            (Some(s), mem) => {
                let total = if s.trim() == "-1" {
                    None
                } else {
                    Some(parse_size(s).map_err(|e| invalid("--memory-swap", s, &e))?)
                };
                let Some(mem) = mem else {
                    return Err(invalid(
                        "--memory-swap",
                        s,
                        "it needs --memory too (it is memory plus swap)",
                    ));
                };
                l.swap_explicit = true;
                l.swap = Some(match total {
                    None => Swap::Unlimited,
                    // docker: 0 means "not set"
                    Some(0) => Swap::Bytes(mem),
                    Some(t) if t < mem => {
                        return Err(invalid(
                            "--memory-swap",
                            s,
                            "it is memory plus swap, so it must be at least --memory (or -1)",
                        ));
                    }
                    Some(t) => Swap::Bytes(t - mem),
                });
            }
        }

        if let Some(cpus) = o.cpus {
            if o.cpu_quota.is_some() || o.cpu_period.is_some() {
                return Err(Error::InvalidLimit {
                    flag: "--cpus",
                    value: cpus.to_string(),
                    reason: "it cannot be combined with --cpu-quota or --cpu-period".into(),
                });
            }
            let max = available_cpus() as f64;
            if !(cpus >= 0.01 && cpus <= max && cpus.is_finite()) {
                return Err(Error::InvalidLimit {
                    flag: "--cpus",
                    value: cpus.to_string(),
                    reason: format!("the range is 0.01 to {max} (the CPUs of this host)"),
                });
            }
            let quota = (cpus * DEFAULT_CPU_PERIOD as f64).round() as u64;
            l.cpu_max = Some(CpuMax {
                quota: Some(quota.max(1000)),
                period: DEFAULT_CPU_PERIOD,
            });
        } else if o.cpu_quota.is_some() || o.cpu_period.is_some() {
            let period = o.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD);
            if !(1000..=1_000_000).contains(&period) {
                return Err(Error::InvalidLimit {
                    flag: "--cpu-period",
                    value: period.to_string(),
                    reason: "the range is 1000 to 1000000 microseconds".into(),
                });
            }
            let quota = match o.cpu_quota {
                None | Some(-1) | Some(0) => None,
                Some(q) if q >= 1000 => Some(q as u64),
                Some(q) => {
                    return Err(Error::InvalidLimit {
                        flag: "--cpu-quota",
                        value: q.to_string(),
                        reason: "it must be at least 1000 microseconds (or -1 for no limit)".into(),
                    });
                }
            };
            l.cpu_max = Some(CpuMax { quota, period });
        }

        match (o.cpu_shares, o.cpu_weight) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidLimit {
                    flag: "--cpu-shares",
                    value: String::new(),
                    reason: "use either --cpu-shares or --cpu-weight, not both".into(),
                });
            }
            (Some(s), None) => {
                if !(2..=262_144).contains(&s) {
                    return Err(Error::InvalidLimit {
                        flag: "--cpu-shares",
                        value: s.to_string(),
                        reason: "the range is 2 to 262144".into(),
                    });
                }
                l.cpu_weight = Some(shares_to_weight(s));
            }
            (None, Some(w)) => {
                if !(1..=10_000).contains(&w) {
                    return Err(Error::InvalidLimit {
                        flag: "--cpu-weight",
                        value: w.to_string(),
                        reason: "the range is 1 to 10000".into(),
                    });
                }
                l.cpu_weight = Some(w);
            }
            (None, None) => {}
        }

        l.pids = match o.pids_limit {
            None => Pids::Default,
            Some(0) | Some(-1) => Pids::Unlimited,
            Some(n) if n > 0 => Pids::Max(n as u64),
            Some(n) => {
                return Err(Error::InvalidLimit {
                    flag: "--pids-limit",
                    value: n.to_string(),
                    reason: "use a positive number, or -1 for no limit".into(),
                });
            }
        };

        if let Some(c) = &o.cpuset_cpus {
            let c = c.trim();
            parse_cpu_list(c).map_err(|e| invalid("--cpuset-cpus", c, &e))?;
            l.cpuset_cpus = Some(c.to_string());
        }
        Ok(l)
    }

    /// The flags that ask for these limits again (for generated units), in the
    /// shortest form: `--memory 64m`, `--cpus 0.5`.
    pub fn flags(&self) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        if let Some(m) = self.memory {
            f.push(("--memory", format_size(m)));
            if self.swap_explicit {
                let swap = match self.swap {
                    Some(Swap::Unlimited) => "-1".to_string(),
                    Some(Swap::Bytes(s)) => format_size(m + s),
                    None => format_size(m),
                };
                f.push(("--memory-swap", swap));
            }
        }
        match self.cpu_max {
            Some(CpuMax {
                quota: Some(q),
                period: DEFAULT_CPU_PERIOD,
            }) => f.push(("--cpus", (q as f64 / DEFAULT_CPU_PERIOD as f64).to_string())),
            Some(CpuMax { quota, period }) => {
                f.push(("--cpu-quota", quota.map_or(-1, |q| q as i64).to_string()));
                f.push(("--cpu-period", period.to_string()));
            }
            None => {}
        }
        if let Some(w) = self.cpu_weight {
            f.push(("--cpu-weight", w.to_string()));
        }
        match self.pids {
            Pids::Default => {}
            Pids::Unlimited => f.push(("--pids-limit", "-1".into())),
            Pids::Max(n) => f.push(("--pids-limit", n.to_string())),
        }
        if let Some(c) = &self.cpuset_cpus {
            f.push(("--cpuset-cpus", c.clone()));
        }
        f
    }

    /// No limit was asked for (the implicit pids default does not count).
    pub fn is_empty(&self) -> bool {
        self.required().is_empty()
    }

    /// The controllers the explicitly requested limits need, each with the flag that needs
    /// it, e.g. `("memory", "--memory")`.
    pub fn required(&self) -> Vec<(&'static str, &'static str)> {
        let mut r = Vec::new();
        if self.memory.is_some() {
            r.push(("memory", "--memory"));
        }
        if self.cpu_max.is_some_and(|c| c.quota.is_some()) {
            r.push(("cpu", "--cpus"));
        } else if self.cpu_weight.is_some() {
            r.push(("cpu", "--cpu-shares"));
        }
        if let Pids::Max(_) = self.pids {
            r.push(("pids", "--pids-limit"));
        }
        if self.cpuset_cpus.is_some() {
            r.push(("cpuset", "--cpuset-cpus"));
        }
        r
    }

    /// The (file, value) pairs to write into the container's cgroup, given the controllers
    /// enabled there. Implicit defaults whose controller or file is missing are skipped;
    /// explicit limits always appear (a failing write then reports the problem).
    pub(crate) fn writes(
        &self,
        controllers: &[String],
        has_file: &dyn Fn(&str) -> bool,
    ) -> Vec<(&'static str, String)> {
        let has = |c: &str| controllers.iter().any(|x| x == c);
        let mut w = Vec::new();
        if let Some(c) = &self.cpuset_cpus {
            w.push(("cpuset.cpus", c.clone()));
        }
        if let Some(m) = self.memory {
            w.push(("memory.max", m.to_string()));
        }
        if let Some(s) = self.swap
            && (self.swap_explicit || has_file("memory.swap.max"))
        {
            w.push((
                "memory.swap.max",
                match s {
                    Swap::Unlimited => "max".to_string(),
                    Swap::Bytes(b) => b.to_string(),
                },
            ));
        }
        if let Some(c) = self.cpu_max {
            let q = c.quota.map_or("max".to_string(), |q| q.to_string());
            w.push(("cpu.max", format!("{q} {}", c.period)));
        }
        if let Some(wt) = self.cpu_weight {
            w.push(("cpu.weight", wt.to_string()));
        }
        match self.pids {
            Pids::Max(n) => w.push(("pids.max", n.to_string())),
            Pids::Unlimited if has("pids") => w.push(("pids.max", "max".into())),
            Pids::Default if has("pids") => w.push(("pids.max", DEFAULT_PIDS_LIMIT.to_string())),
            _ => {}
        }
        w
    }
}

fn invalid(flag: &'static str, value: &str, reason: &str) -> Error {
    Error::InvalidLimit {
        flag,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn available_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(
            // available_parallelism honours the affinity mask and cgroup quota; a container may
            // still ask for every online CPU.
            nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
                .ok()
                .flatten()
                .unwrap_or(1) as usize,
        )
}

/// docker's RAMInBytes: a number (fractions allowed) with an optional binary unit
/// b, k, m, g, t, p (case-insensitive, optionally followed by `b` or `ib`).
/// Bytes in the shortest unit `parse_size` reads back exactly: `64m`, `1g`, `1536k`.
pub fn format_size(bytes: u64) -> String {
    for (unit, shift) in [("g", 30), ("m", 20), ("k", 10)] {
        if bytes != 0 && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err("expected a size such as 64m or 1g".into());
    }
    let n: f64 = num
        .parse()
        .map_err(|_| "expected a size such as 64m or 1g".to_string())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b').filter(|u| !u.is_empty()))
        .unwrap_or(&unit);
    let mult: u64 = match unit {
        "" | "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return Err(format!("unknown unit {unit:?}: use b, k, m, g, t or p")),
    };
    let v = n * mult as f64;
    if !v.is_finite() || v >= u64::MAX as f64 {
        return Err("too large".into());
    }
    Ok(v as u64)
}

/// Validate a cpu list such as `0-3,5` and return the CPUs it names.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    if s.is_empty() {
        return Err("expected a list such as 0-1 or 0,2".into());
    }
    for part in s.split(',') {
        let bad = || format!("{part:?} is not a cpu or a range such as 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().map_err(|_| bad())?;
                let b: u32 = b.trim().parse().map_err(|_| bad())?;
                if a > b || b - a > 65536 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    Ok(cpus)
}

/// cgroup v1 cpu.shares (2..262144, default 1024) → v2 cpu.weight (1..10000, default 100),
/// the conversion runc and crun use: a quadratic in log2(shares) through (2,1), (1024,100),
/// (262144,10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LimitFlags {
        LimitFlags::default()
    }

    #[test]
    fn flags_round_trip() {
        let mut o = opts();
        o.memory = Some("64m".into());
        o.memory_swap = Some("96m".into());
        o.cpus = Some(0.5);
        o.pids_limit = Some(16);
        let l = Limits::parse(&o).unwrap();
        let f = l.flags();
        assert_eq!(
            f,
            [
                ("--memory", "64m".to_string()),
                ("--memory-swap", "96m".to_string()),
                ("--cpus", "0.5".to_string()),
                ("--pids-limit", "16".to_string()),
            ]
        );
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Limits>(&json).unwrap(), l);
        assert_eq!(format_size(1536 << 10), "1536k");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("64mb").unwrap(), 64 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("10b").unwrap(), 10);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert!(parse_size("").is_err());
        assert!(parse_size("m").is_err());
        assert!(parse_size("12x").is_err());
        assert!(parse_size("-5m").is_err());
        assert!(parse_size("99999999999p").is_err());
    }

    #[test]
    fn memory_and_swap() {
        let mut o = opts();
        o.memory = Some("64m".into());
        let l = Limits::parse(&o).unwrap();
        assert_eq!(l.memory, Some(64 << 20));
        assert_eq!(
            l.swap,
            Some(Swap::Bytes(64 << 20)),
            "unset swap = as much as memory"
        );
        assert!(!l.swap_explicit);
        assert_eq!(l.required(), vec![("memory", "--memory")]);

        o.memory_swap = Some("-1".into());
        assert_eq!(Limits::parse(&o).unwrap().swap, Some(Swap::Unlimited));
        o.memory_swap = Some("64m".into());
        assert_eq!(Limits::parse(&o).unwrap().swap, Some(Swap::Bytes(0)));
        o.memory_swap = Some("100m".into());
        let l = Limits::parse(&o).unwrap();
        assert_eq!(l.swap, Some(Swap::Bytes(36 << 20)));
        assert!(l.swap_explicit);
        o.memory_swap = Some("32m".into());
        let e = Limits::parse(&o).unwrap_err().to_string();
        assert!(e.contains("at least --memory"), "{e}");

        let mut o = opts();
        o.memory_swap = Some("1g".into());
        let e = Limits::parse(&o).unwrap_err().to_string();
        assert!(e.contains("needs --memory"), "{e}");

        let mut o = opts();
        o.memory = Some("1m".into());
        assert!(Limits::parse(&o).is_err(), "below docker's 6m minimum");
    }

    #[test]
    fn cpus() {
        let mut o = opts();
        o.cpus = Some(0.5);
        let l = Limits::parse(&o).unwrap();
        assert_eq!(
            l.cpu_max,
            Some(CpuMax {
                quota: Some(50_000),
                period: 100_000
            })
        );
        assert_eq!(l.required(), vec![("cpu", "--cpus")]);
        let w = l.writes(&[], &|_| true);
        assert!(w.contains(&("cpu.max", "50000 100000".into())));

        o.cpu_quota = Some(20_000);
        assert!(Limits::parse(&o).is_err(), "--cpus with --cpu-quota");
        o.cpus = Some(0.0);
        o.cpu_quota = None;
        assert!(Limits::parse(&o).is_err());
        o.cpus = Some(100_000.0);
        assert!(Limits::parse(&o).is_err());

        let mut o = opts();
        o.cpu_quota = Some(20_000);
        o.cpu_period = Some(50_000);
        let l = Limits::parse(&o).unwrap();
        assert_eq!(
            l.writes(&[], &|_| true),
            vec![("cpu.max", "20000 50000".into())]
        );
        o.cpu_quota = Some(10);
        assert!(Limits::parse(&o).is_err());
        o.cpu_quota = Some(-1);
        o.cpu_period = Some(10);
        assert!(Limits::parse(&o).is_err());
        o.cpu_period = None;
        let l = Limits::parse(&o).unwrap();
        assert!(l.is_empty(), "an unlimited quota is no limit");
        assert_eq!(
            l.writes(&[], &|_| true),
            vec![("cpu.max", "max 100000".into())]
        );
    }

    #[test]
    fn shares_and_weight() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert!(shares_to_weight(512) < 100 && shares_to_weight(512) > 1);
        assert!(shares_to_weight(4096) > 100);
        let mut o = opts();
        o.cpu_shares = Some(1024);
        let l = Limits::parse(&o).unwrap();
        assert_eq!(l.cpu_weight, Some(100));
        assert_eq!(l.required(), vec![("cpu", "--cpu-shares")]);
        o.cpu_weight = Some(10);
        assert!(Limits::parse(&o).is_err(), "both");
        o.cpu_shares = None;
        assert_eq!(Limits::parse(&o).unwrap().cpu_weight, Some(10));
        o.cpu_weight = Some(10_001);
        assert!(Limits::parse(&o).is_err());
        let mut o = opts();
        o.cpu_shares = Some(1);
        assert!(Limits::parse(&o).is_err());
    }

    #[test]
    fn pids() {
        let mut o = opts();
        let l = Limits::parse(&o).unwrap();
        assert!(l.is_empty());
        assert_eq!(l.pids, Pids::Default);
        let pids = vec!["pids".to_string()];
        assert_eq!(
            l.writes(&pids, &|_| true),
            vec![("pids.max", "2048".into())]
        );
        assert!(
            l.writes(&[], &|_| true).is_empty(),
            "no default without pids"
        );
        o.pids_limit = Some(16);
        let l = Limits::parse(&o).unwrap();
        assert!(!l.is_empty());
        assert_eq!(l.writes(&[], &|_| true), vec![("pids.max", "16".into())]);
        o.pids_limit = Some(-1);
        let l = Limits::parse(&o).unwrap();
        assert!(l.is_empty());
        assert_eq!(l.writes(&pids, &|_| true), vec![("pids.max", "max".into())]);
        o.pids_limit = Some(0);
        assert_eq!(Limits::parse(&o).unwrap().pids, Pids::Unlimited);
        o.pids_limit = Some(-2);
        assert!(Limits::parse(&o).is_err());
    }

    #[test]
    fn cpuset() {
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("2-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
        let mut o = opts();
        o.cpuset_cpus = Some("0".into());
        let l = Limits::parse(&o).unwrap();
        assert_eq!(l.required(), vec![("cpuset", "--cpuset-cpus")]);
        assert_eq!(l.writes(&[], &|_| true), vec![("cpuset.cpus", "0".into())]);
    }

    #[test]
    fn implicit_swap_skipped_without_swap_accounting() {
        let mut o = opts();
        o.memory = Some("64m".into());
        let l = Limits::parse(&o).unwrap();
        let w = l.writes(&["memory".into()], &|f| f != "memory.swap.max");
        assert_eq!(w, vec![("memory.max", (64u64 << 20).to_string())]);
        o.memory_swap = Some("128m".into());
        let l = Limits::parse(&o).unwrap();
        let w = l.writes(&["memory".into()], &|f| f != "memory.swap.max");
        assert!(
            w.iter().any(|(f, _)| *f == "memory.swap.max"),
            "explicit stays"
        );
    }
}
