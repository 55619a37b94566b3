//! `-v SRC:DEST:idmap` (and `--mount type=bind|volume,...,idmap`): SRC mounted idmapped
//! into the container's user namespace, so ids on disk are shifted by the container's
//! mapping (uid 0 on disk is the container's root, and what the container's root creates
//! is uid 0 on disk).
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

use super::Error;
use super::sys::{clone_tree, mount_setattr_idmap};
use crate::spec::{Mount, Spec};

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

/// The detached idmapped mounts of a container's `:idmap` binds, in `spec.mounts` order:
/// (target, mount). `userns` is the container's user namespace, its maps written.
pub fn make_mounts(spec: &Spec, userns: BorrowedFd) -> Result<Vec<(String, OwnedFd)>, Error> {
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
        if !spec.settings.idmap_targets.contains(target) {
            continue;
        }
        let flag = format!("-v {}:{target}:idmap", source.display());
        let tree = clone_tree(None, source, true).map_err(|e| refused(&flag, e))?;
        let ro = if *readonly {
            libc::MOUNT_ATTR_RDONLY
        } else {
            0
        };
        mount_setattr_idmap(tree.as_fd(), ro, userns, true).map_err(|e| match e {
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
