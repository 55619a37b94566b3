//! Where the cgroup and network modules plug into container creation. Each hook is called
//! at a fixed point of `create` (see the step diagram there):
//!
//! - `cgroup::prepare` before the clone (after every other check), [`CgroupHook::attach`] in the
//!   parent before the child is released (P5), [`CgroupHook::cleanup`] after the container
//!   exited (also from the cleanup watcher when box was killed). The child enters a new
//!   cgroup namespace only after it was attached (step C3), so its /sys/fs/cgroup is rooted
//!   at its own leaf.
//! - pasta: [`network_defer`] in the parent once the child's network namespace exists and
//!   its id maps are written (P5) opens the namespaces (the child is still dumpable), and
//!   [`network_start`] starts pasta and waits until the namespace is configured (P7, while
//!   the released child mounts its root; it waits for that before its command). The holder
//!   of the user networks' namespace starts its pasta only once it runs
//!   (`usernet::helper_ready`). slirp4netns, which takes the pid, is started and waited
//!   for by [`network_setup`] at P5. The handle stops the helper when dropped.
use nix::unistd::Pid;

use super::Error;
use crate::network;

/// The container's cgroup, while it lives (`cgroup::Plan::none()` without one).
#[derive(Debug)]
pub struct CgroupHook {
    plan: crate::cgroup::Plan,
}

impl From<crate::cgroup::Plan> for CgroupHook {
    fn from(plan: crate::cgroup::Plan) -> CgroupHook {
        CgroupHook { plan }
    }
}

impl CgroupHook {
    /// Parent, before releasing the child: move it into the cgroup.
    pub fn attach(&self, pid: Pid) -> Result<(), Error> {
        Ok(self.plan.attach(pid.as_raw())?)
    }

    /// The container's cgroup directory, if it has one of its own.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.plan.path()
    }

    /// Whether the OOM killer killed a process of the container.
    pub fn oom_killed(&self) -> bool {
        self.plan.oom_killed()
    }

    /// After the container exited: kill leftovers and remove the cgroup; say so on stderr
    /// when the OOM killer struck (the watcher's stderr is /dev/null).
    pub fn cleanup(&mut self) {
        let oom = self.plan.oom_killed();
        let _ = self.plan.cleanup();
        if oom {
            eprintln!("box: the container was OOM-killed: it reached its memory limit (--memory)");
        }
    }
}

/// Parent, after the clone and the id maps, before the release: start the helper and
/// wait until the container's network namespace is configured.
pub fn network_setup(
    plan: &network::Plan,
    options: &[String],
    pid: Pid,
) -> Result<network::Handle, Error> {
    Ok(network::setup_with(plan, options, pid)?)
}

/// The same in two steps: the container's namespaces opened for pasta now (P5), pasta
/// started with [`network_start`] at P7, or once the container runs (the user networks'
/// holder, `usernet::helper_ready`).
pub fn network_defer(
    plan: &network::Plan,
    options: &[String],
    pid: Pid,
) -> Result<network::Deferred, Error> {
    Ok(network::defer(plan, options, pid)?)
}

/// P7: start the deferred pasta and wait until the container's namespace is configured.
pub fn network_start(later: network::Deferred) -> Result<network::Handle, Error> {
    Ok(later.start().and_then(network::Starting::wait)?)
}
