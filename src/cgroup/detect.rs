//! What cgroup setup this process lives in, as `box info` reports it.
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    /// Only cgroup v2 at /sys/fs/cgroup.
    Unified,
    /// v1 controllers plus an (often controller-less) v2 tree at /sys/fs/cgroup/unified.
    Hybrid,
    /// Only cgroup v1.
    Legacy,
}

/// The cgroup facts about the calling process.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub hierarchy: Hierarchy,
    /// Where the v2 tree is mounted, if anywhere.
    pub v2_mount: Option<PathBuf>,
    /// This process's v2 cgroup (relative to the mount), e.g. /user.slice/.../session-2.scope.
    pub own: Option<String>,
    /// Controllers enabled for this cgroup by its parent (cgroup.controllers).
    pub controllers: Vec<String>,
    /// Whether this user may create child cgroups here (the subtree is delegated).
    pub writable: bool,
}

impl Summary {
    /// The controllers the user can actually use for limits: box uses cgroup v2 only where
    /// it is the one hierarchy (a hybrid host's v2 tree is not used, see `cgroup::prepare`).
    pub fn delegated(&self) -> Vec<String> {
        if self.writable && self.hierarchy == Hierarchy::Unified {
            self.controllers.clone()
        } else {
            Vec::new()
        }
    }
}

pub fn detect() -> Summary {
    detect_at(Path::new("/sys/fs/cgroup"), Path::new("/proc/self/cgroup"))
}

fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

pub(crate) fn detect_at(root: &Path, self_cgroup: &Path) -> Summary {
    let (hierarchy, v2_mount) = if is_cgroup2(root) {
        (Hierarchy::Unified, Some(root.to_path_buf()))
    } else if is_cgroup2(&root.join("unified")) {
        (Hierarchy::Hybrid, Some(root.join("unified")))
    } else {
        (Hierarchy::Legacy, None)
    };
    let own = own_cgroup(self_cgroup);
    let dir = match (&v2_mount, &own) {
        (Some(m), Some(o)) => Some(m.join(o.trim_start_matches('/'))),
        _ => None,
    };
    let controllers = dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("cgroup.controllers")).ok())
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let writable = dir.as_ref().is_some_and(|d| writable(d));
    Summary {
        hierarchy,
        v2_mount,
        own,
        controllers,
        writable,
    }
}

/// The v2 cgroup in a /proc/PID/cgroup file (the `0::` line).
pub(crate) fn own_cgroup(proc_cgroup: &Path) -> Option<String> {
    std::fs::read_to_string(proc_cgroup).ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("0::").map(|s| s.trim_end().to_string()))
    })
}

/// Whether this user may create child cgroups in `dir` and move processes into and out of it.
pub(crate) fn writable(dir: &Path) -> bool {
    use nix::unistd::{AccessFlags, access};
    access(dir, AccessFlags::W_OK).is_ok()
        && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
        && access(&dir.join("cgroup.subtree_control"), AccessFlags::W_OK).is_ok()
}

/// Whether the container should get a cgroup2 mount at /sys/fs/cgroup (inside its own cgroup
/// namespace): only where cgroup v2 is the one hierarchy. On hybrid and v1 hosts box mounts
/// no cgroup filesystem in the container.
pub fn mount_in_container() -> bool {
    is_cgroup2(Path::new("/sys/fs/cgroup"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(hierarchy: Hierarchy, writable: bool) -> Summary {
        Summary {
            hierarchy,
            v2_mount: Some(PathBuf::from("/sys/fs/cgroup")),
            own: Some("/user.slice/user-1000.slice/user@1000.service/app.slice/a.service".into()),
            controllers: vec!["memory".into(), "pids".into()],
            writable,
        }
    }

    #[test]
    fn delegated_only_where_v2_is_the_hierarchy_and_writable() {
        assert_eq!(
            summary(Hierarchy::Unified, true).delegated(),
            ["memory", "pids"]
        );
        assert!(summary(Hierarchy::Unified, false).delegated().is_empty());
        assert!(summary(Hierarchy::Hybrid, true).delegated().is_empty());
    }

    #[test]
    fn own_cgroup_from_proc() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cgroup");
        std::fs::write(&p, "12:pids:/x\n0::/user.slice/session-2.scope\n").unwrap();
        assert_eq!(
            own_cgroup(&p).as_deref(),
            Some("/user.slice/session-2.scope")
        );
        std::fs::write(&p, "4:memory:/x\n").unwrap();
        assert_eq!(own_cgroup(&p), None);
        let s = detect_at(d.path(), &p);
        assert_eq!(
            s.hierarchy,
            Hierarchy::Legacy,
            "a temp dir is no cgroup2 mount"
        );
        assert!(s.delegated().is_empty());
    }
}
