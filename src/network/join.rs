//! `--network container:NAME`: what joining another container's network means.
//!
//! Each box container has its own user namespace, and a network namespace is owned by the
//! user namespace it was created in: a container in a sibling user namespace has no
//! capability over the target's netns, so `setns(netns)` alone fails with EPERM. The joiner
//! enters the target's *user and network* namespaces (as podman's rootless containers share
//! one user namespace): box opens both here, the run side `setns`es the child (or clones it
//! without CLONE_NEWUSER|CLONE_NEWNET after the parent entered them) and starts no helper.
//! The joiner also uses the target's /etc/hosts and /etc/resolv.conf.
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::unistd::Pid;

use super::{Error, Plan};
use crate::container::{Containers, Status};
use crate::paths::Paths;

/// The namespaces and files of the container whose network another one joins.
#[derive(Debug)]
pub struct JoinTarget {
    pub id: String,
    pub name: String,
    /// The target's PID 1.
    pub pid: Pid,
    /// `/proc/PID/ns/user`, opened (the fd pins the namespace against pid reuse).
    pub userns: OwnedFd,
    /// `/proc/PID/ns/net`, opened.
    pub netns: OwnedFd,
    /// `/proc/PID/ns/uts` and `/proc/PID/ns/ipc`, opened: a pod's members join those of
    /// its infra container too.
    pub utsns: OwnedFd,
    pub ipcns: OwnedFd,
    /// The target's `userdata/hosts` and `userdata/resolv.conf`, to bind-mount as they are.
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    /// The target's network plan (its mode and published ports, for `inspect`).
    pub plan: Plan,
    /// The target's `--userns` mode: the joiner lives in the same user namespace, so it
    /// must have the same id mapping.
    pub userns_mode: crate::userns::Mode,
}

impl JoinTarget {
    /// Whether the target runs in our own (the host's) network namespace: `--network
    /// host`, or joined to a container that does. The joiner then keeps the host's too (it
    /// cannot enter a namespace its user namespace does not own, and needs not).
    pub fn uses_host_network(&self) -> bool {
        let ours = std::fs::metadata("/proc/self/ns/net");
        let theirs = nix::sys::stat::fstat(&self.netns);
        match (ours, theirs) {
            (Ok(o), Ok(t)) => {
                use std::os::unix::fs::MetadataExt;
                o.ino() == t.st_ino && o.dev() == t.st_dev
            }
            _ => self.plan.mode == super::Mode::Host,
        }
    }
}

/// Resolve `container:NAME` (name or id) to a running container's namespaces. The pid is
/// checked against the recorded start time, and checked again after the namespace files
/// are open, so a recycled pid is never joined.
pub fn join_target(paths: &Paths, name: &str) -> Result<JoinTarget, Error> {
    let containers = Containers::open(paths).map_err(|e| Error::JoinTarget {
        name: name.to_string(),
        why: e.to_string(),
    })?;
    let rec = containers.find(name).map_err(|e| Error::JoinTarget {
        name: name.to_string(),
        why: e.to_string(),
    })?;
    let state = rec.state().map_err(|e| Error::JoinTarget {
        name: name.to_string(),
        why: e.to_string(),
    })?;
    let not_running = || Error::JoinNotRunning {
        name: name.to_string(),
    };
    if state.effective_status() != Status::Running {
        return Err(not_running());
    }
    let pid = state.pid.ok_or_else(not_running)?;
    let open = |ns: &str| -> Result<OwnedFd, Error> {
        let path = format!("/proc/{pid}/ns/{ns}");
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(|e| Error::JoinTarget {
                name: name.to_string(),
                why: format!("cannot open {path}: {e}"),
            })
    };
    let userns = open("user")?;
    let netns = open("net")?;
    let utsns = open("uts")?;
    let ipcns = open("ipc")?;
    // Still the same process now that the namespaces are held open.
    if !state.is_alive() {
        return Err(not_running());
    }
    Ok(JoinTarget {
        id: rec.id().to_string(),
        name: rec.name().to_string(),
        pid: Pid::from_raw(pid),
        userns,
        netns,
        utsns,
        ipcns,
        hosts: rec.userdata_dir().join("hosts"),
        resolv_conf: rec.userdata_dir().join("resolv.conf"),
        plan: rec.config.spec.network.clone(),
        userns_mode: rec.config.spec.userns,
    })
}

/// The containers that joined `target`'s network (`--network container:NAME`, NAME
/// resolving to it): removing `target` would leave them unable to start.
pub fn dependents(
    containers: &Containers,
    target: &crate::container::Record,
) -> Result<Vec<crate::container::Record>, crate::container::Error> {
    let mut out = Vec::new();
    for rec in containers.list()? {
        if rec.id() == target.id() {
            continue;
        }
        let Some(name) = rec.config.spec.network_container() else {
            continue;
        };
        if containers.find(name).is_ok_and(|t| t.id() == target.id()) {
            out.push(rec);
        }
    }
    Ok(out)
}
