//! Where the cgroup and network modules plug into container creation. Each hook is called
//! at a fixed point of `create` (see the step diagram there):
//!
//! - [`cgroup_prepare`] before the clone, [`CgroupHook::attach`] in the parent before the
//!   child is released (P5), [`CgroupHook::cleanup`] after the container exited (also from
//!   the cleanup watcher when box was killed);
//! - [`network_setup`] in the parent once the child's network namespace exists (P5); the
//!   returned handle stops the helper (pasta/slirp4netns) when dropped;
//! - [`network_dns`] gives the nameservers /etc/resolv.conf falls back to.
//!
//! Until the cgroup and network modules land these are placeholders: limits are refused,
//! `--network pasta|slirp4netns` is refused, and the default network runs as `none`.
use nix::unistd::Pid;

use super::Error;
use super::spec::{Network, Spec};

/// The container's cgroup, while it lives.
#[derive(Debug, Clone, Default)]
pub struct CgroupHook {
    _private: (),
}

/// Before the clone: the cgroup the container will run in, with `spec.resources` applied.
pub fn cgroup_prepare(spec: &Spec, _id: &str) -> Result<CgroupHook, Error> {
    if !spec.resources.is_empty() {
        return Err(Error::NotImplemented(
            "resource limits (--memory, --cpus, --pids-limit, ...)".into(),
        ));
    }
    Ok(CgroupHook::default())
}

impl CgroupHook {
    /// Parent, before releasing the child: move it into the cgroup.
    pub fn attach(&self, _pid: Pid) -> Result<(), Error> {
        Ok(())
    }
    /// After the container exited: remove the cgroup.
    pub fn cleanup(&self) {}
}

/// The running network helper; dropping it stops the helper.
#[derive(Debug, Default)]
pub struct NetHook {
    _private: (),
}

/// Checks made before anything is created.
pub fn network_check(spec: &Spec) -> Result<(), Error> {
    match spec.network {
        Network::Pasta | Network::Slirp4netns => Err(Error::NotImplemented(format!(
            "--network {}",
            if spec.network == Network::Pasta {
                "pasta"
            } else {
                "slirp4netns"
            }
        ))),
        _ if !spec.publish.is_empty() => Err(Error::NotImplemented("publishing ports (-p)".into())),
        _ => Ok(()),
    }
}

/// Parent, after the clone (the child's network namespace exists), before the release.
pub fn network_setup(spec: &Spec, _pid: Pid, debug: bool) -> Result<NetHook, Error> {
    network_check(spec)?;
    if spec.network == Network::Default && debug {
        eprintln!("box: debug: user-mode networking is not there yet; running with --network none");
    }
    Ok(NetHook::default())
}

/// Nameservers for /etc/resolv.conf when the host has only loopback ones.
pub fn network_dns(_spec: &Spec) -> Vec<String> {
    Vec::new()
}
