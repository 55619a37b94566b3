//! `-v SRC:DEST:idmap` (and `--mount type=bind|volume,...,idmap`): SRC mounted idmapped
//! into the container's user namespace, so ids on disk are shifted by the container's
//! mapping (uid 0 on disk is the container's root, and what the container's root creates
//! is uid 0 on disk). `idmap=uids=DISK-HOST-SIZE#..;gids=..` (podman's) maps by a user
//! namespace of its own instead, made for the purpose by `mapping_namespaces`.
//!
//! The kernel lets only a process privileged over the source's filesystem (for a host
//! filesystem: root of the initial user namespace) clone a mount and idmap it, so box's
//! own process makes each mount after the child's maps are written (P6 in `create`) and
//! hands it over the channel as a detached mount (`ToChild::IdmappedMount` + fd); the
//! child attaches it at C5 like any bind. As crun does. Rootless, the kernel refuses:
//! `probe` finds that out at create, before anything is written.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;

use super::Error;
use super::sys::{self, Forked, clone_tree, mount_setattr_idmap};
use crate::spec::{IdmapMount, Mount, Spec};
use crate::userns::IdMaps;

/// What to do when the kernel refuses.
const HINT: &str = "idmapped mounts of host directories need root (rootless, use :U to chown the source to the container's user instead)";

/// Whether this process may make idmapped mounts at all (cloning a mount is the first
/// thing that needs the privilege): `flag` is the option as given, for the error.
pub fn probe(flag: &str, source: &Path) -> Result<(), Error> {
    let at = if source.is_absolute() && source.exists() {
        source
    } else {
        Path::new("/")
    };
    clone_tree(None, at, false)
        .map(drop)
        .map_err(|e| refused(flag, e))
}

fn refused(flag: &str, e: Errno) -> Error {
    Error::Invalid(format!(
        "{flag}: the kernel refused an idmapped mount ({}): {HINT}",
        e.desc()
    ))
}

/// The user namespaces of the binds with a mapping of their own (`None`: the
/// container's), in `settings.idmap_mounts` order. Each is made by a child that is
/// killed once its namespace is open, so this forks: call it while single-threaded
/// (P1).
pub fn mapping_namespaces(spec: &Spec) -> Result<Vec<Option<OwnedFd>>, Error> {
    spec.settings
        .idmap_mounts
        .iter()
        .map(|i| match i.uids.is_empty() {
            true => Ok(None),
            false => namespace_with(i).map(Some),
        })
        .collect()
}

/// A user namespace mapped as `i` says (written directly: only root gets here).
fn namespace_with(i: &IdmapMount) -> Result<OwnedFd, Error> {
    // SAFETY: single-threaded (the caller's duty); the child only pauses until killed.
    let parent = nix::unistd::getpid();
    let pid = match unsafe { sys::clone_process(libc::CLONE_NEWUSER) } {
        Ok(Forked::Child) => {
            // Dies with box, should box die before it kills this child.
            // SAFETY: prctl and getppid are plain system calls.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            if nix::unistd::getppid() != parent {
                // SAFETY: _exit in a forked child.
                unsafe { libc::_exit(1) };
            }
            loop {
                // SAFETY: pause is async-signal-safe; SIGKILL ends it.
                unsafe { libc::pause() };
            }
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(e) => return Err(Error::Sys("create a user namespace for idmap=", e)),
    };
    let maps = IdMaps {
        uid: i.uids.clone(),
        gid: i.gids.clone(),
        root: true,
    };
    let ns = maps.write_for(pid).map_err(Error::from).and_then(|()| {
        open(
            format!("/proc/{pid}/ns/user").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Sys("open the user namespace for idmap=", e))
    });
    let _ = kill(pid, Signal::SIGKILL);
    let _ = waitpid(pid, None);
    ns.map_err(|e| {
        Error::Invalid(format!(
            "-v ...:{target}:{}: {e}",
            i.option(),
            target = i.target
        ))
    })
}

/// The detached idmapped mounts of a container's `:idmap` binds, in `spec.mounts` order:
/// (target, mount). `userns` is the container's user namespace, its maps written;
/// `own` the binds' own namespaces (from `mapping_namespaces`).
pub fn make_mounts(
    spec: &Spec,
    userns: BorrowedFd,
    own: &[Option<OwnedFd>],
) -> Result<Vec<(String, OwnedFd)>, Error> {
    let mut out = Vec::new();
    for m in &spec.mounts {
        let Mount::Bind {
            source,
            target,
            readonly,
        } = m
        else {
            continue;
        };
        let Some(n) = spec
            .settings
            .idmap_mounts
            .iter()
            .position(|i| &i.target == target)
        else {
            continue;
        };
        let ns = match own.get(n) {
            Some(Some(fd)) => fd.as_fd(),
            _ => userns,
        };
        let flag = format!(
            "-v {}:{target}:{}",
            source.display(),
            spec.settings.idmap_mounts[n].option()
        );
        let tree = clone_tree(None, source, true).map_err(|e| refused(&flag, e))?;
        let ro = if *readonly {
            libc::MOUNT_ATTR_RDONLY
        } else {
            0
        };
        mount_setattr_idmap(tree.as_fd(), ro, ns, true).map_err(|e| match e {
            Errno::EINVAL => Error::Invalid(format!(
                "{flag}: the kernel refused to idmap {} ({}): its filesystem (or one mounted below it) does not support idmapped mounts: use :U instead",
                source.display(),
                e.desc()
            )),
            e => refused(&flag, e),
        })?;
        out.push((target.clone(), tree));
    }
    Ok(out)
}
