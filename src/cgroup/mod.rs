//! cgroup v2: detection, delegation, per-container leaves and limits.
//!
//! box only ever uses cgroup v2 and only where the user may write (a delegated subtree).
//! On v1 or hybrid hosts without v2 controllers it runs without limits when none were
//! asked for, and refuses with the fix when a limit was asked for.
//!
//! The life of a container's cgroup, as `run` drives it:
//! ```text
//! let limits = cgroup::Limits::parse(&flags)?;          // validation, before anything else
//! let mut plan = cgroup::prepare(&limits, &id)?;         // before clone (single-threaded)
//! // clone the child (without CLONE_NEWCGROUP), then in the parent:
//! plan.attach(child_pid)?;                               // before releasing the child
//! // the child unshares CLONE_NEWCGROUP only after that, then mounts cgroup2 at
//! // /sys/fs/cgroup when cgroup::mount_in_container()
//! // ... wait for the container ...
//! let oom = plan.oom_killed();
//! plan.cleanup()?;                                       // kills leftovers, removes the leaf
//! ```
mod detect;
mod limits;
mod plan;
mod stats;

pub use detect::{Hierarchy, Summary, detect, mount_in_container};
pub use limits::{
    CpuMax, DEFAULT_CPU_PERIOD, DEFAULT_PIDS_LIMIT, LimitFlags, Limits, Pids, Swap, format_size,
    parse_cpu_list, parse_size, shares_to_weight,
};
pub use plan::{Plan, PodGroup, SUPERVISOR_LEAF, pod_group, prepare, prepare_mode};
pub use stats::{Stats, stats};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidLimit {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    NotDelegated(Missing),
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot move process {pid} into cgroup {path}: {source}")]
    Attach {
        pid: i32,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot get a delegated cgroup from systemd: {0}")]
    Scope(String),
    #[error("--cgroups=split: {0}")]
    Split(String),
    #[error("--cgroup-manager {0}")]
    Manager(String),
}

/// Global `--cgroup-manager`, handed to every box process of the invocation (the
/// detached monitor's `box start --attach` too) in this variable.
pub const MANAGER_ENV: &str = "BOX_CGROUP_MANAGER";

/// podman's `--cgroup-manager`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    /// Not given: delegated cgroups box manages itself, systemd scopes where needed.
    Auto,
    /// box manages cgroup directories itself (a delegated subtree) and never asks systemd.
    Cgroupfs,
    /// As auto, but systemd must be there (checked when given).
    Systemd,
}

impl Manager {
    /// As podman's `info` names it: systemd where box may ask it for scopes.
    pub fn effective_name(self) -> &'static str {
        match self {
            Manager::Cgroupfs => "cgroupfs",
            Manager::Systemd => "systemd",
            Manager::Auto if crate::systemd::booted() => "systemd",
            Manager::Auto => "cgroupfs",
        }
    }
}

/// The manager this process was told to use.
pub fn manager() -> Manager {
    match std::env::var(MANAGER_ENV).as_deref() {
        Ok("cgroupfs") => Manager::Cgroupfs,
        Ok("systemd") => Manager::Systemd,
        _ => Manager::Auto,
    }
}

/// Check `--cgroup-manager NAME` can be honoured here and hand it on (call while
/// single-threaded).
/// podman's rule where systemd cannot manage cgroups: a warning (returned), and cgroupfs.
pub fn set_manager(name: &str) -> Result<Option<String>, Error> {
    let mut warning = None;
    let mut name = name;
    match name {
        "cgroupfs" => {}
        "systemd" => {
            let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
                || std::path::Path::new(&format!(
                    "{}/bus",
                    std::env::var("XDG_RUNTIME_DIR")
                        .unwrap_or_else(|_| format!("/run/user/{}", nix::unistd::getuid()))
                ))
                .exists();
            if !crate::systemd::booted() || !bus {
                warning = Some(
                    "--cgroup-manager systemd: there is no systemd user session here, falling back to --cgroup-manager=cgroupfs (log in to a user session, or enable lingering: loginctl enable-linger)".to_string(),
                );
                name = "cgroupfs";
            }
        }
        other => {
            return Err(Error::Manager(format!("{other}: use cgroupfs or systemd")));
        }
    }
    // SAFETY: the caller is single-threaded (cli::main, before any thread exists).
    unsafe { std::env::set_var(MANAGER_ENV, name) };
    Ok(warning)
}

/// `run/create --cgroups` (podman's): where the container's cgroup goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A cgroup of its own where box can make one (see `plan`).
    #[default]
    Enabled,
    /// No cgroup of its own: it stays in the supervising box's.
    Disabled,
    /// The supervising box stays in the cgroup it was started in (never moved aside or
    /// into a scope); the container gets a transient systemd scope of its own.
    NoConmon,
    /// Below the calling process's cgroup only (e.g. a unit's), split into the
    /// supervisor's leaf and the container's; never a scope elsewhere.
    Split,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "enabled" => Mode::Enabled,
            "disabled" => Mode::Disabled,
            "no-conmon" => Mode::NoConmon,
            "split" => Mode::Split,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Enabled => "enabled",
            Mode::Disabled => "disabled",
            Mode::NoConmon => "no-conmon",
            Mode::Split => "split",
        }
    }
}

/// Limits that cannot be enforced here: which controllers (with the flag asking for each)
/// and how to get them.
#[derive(Debug)]
pub struct Missing {
    pub controllers: Vec<(&'static str, &'static str)>,
    pub fix: String,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags: Vec<&str> = self.controllers.iter().map(|(_, fl)| *fl).collect();
        let ctl: Vec<String> = self
            .controllers
            .iter()
            .map(|(c, fl)| format!("{c} ({fl})"))
            .collect();
        write!(
            f,
            "cannot enforce {}: the cgroup v2 controller{} {} {} not available to you: {}",
            flags.join(", "),
            if ctl.len() == 1 { "" } else { "s" },
            ctl.join(", "),
            if ctl.len() == 1 { "is" } else { "are" },
            self.fix
        )
    }
}
