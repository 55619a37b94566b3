//! What an upper directory (a container's, or an image's top layer) changes relative to
//! the layers below it, as `docker diff` reports it: a path present below and in the
//! upper directory is changed (`C`), one only in the upper directory added (`A`), a
//! whiteout deletes (`D`). Parent directories copied up for a change below them are
//! changed too, as in docker.
use std::ffi::{OsStr, OsString};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode as FileMode, fstatat};
use serde::{Deserialize, Serialize};

use super::{Error, sys_err};
use crate::storage::whiteout::{
    OCI_OPAQUE_MARKER, OCI_WHITEOUT_PREFIX, is_opaque, is_opaque_fd, is_whiteout,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Added,
    Changed,
    Deleted,
}

impl Kind {
    /// The letter docker prints.
    pub fn letter(self) -> char {
        match self {
            Kind::Added => 'A',
            Kind::Changed => 'C',
            Kind::Deleted => 'D',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: Kind,
    /// Absolute, as the container sees it.
    pub path: String,
}

/// Paths podman leaves out of a diff: box's mount points and mount targets.
const MOUNT_POINTS: &[&str] = &[
    "/dev",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/proc",
    "/run",
    "/run/notify",
    "/run/.containerenv",
    "/run/secrets",
    "/sys",
    "/etc/mtab",
];

/// The changes of the tree at `upper` over `lowers` (bottom → top), sorted by path.
pub fn changes(upper: BorrowedFd, lowers: &[PathBuf]) -> Result<Vec<Change>, Error> {
    let dir = openat(
        upper,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .map_err(sys_err("open the upper directory"))?;
    let mut out = Vec::new();
    walk(&dir, &[], false, lowers, &mut out)?;
    out.retain(|c| !MOUNT_POINTS.contains(&c.path.as_str()));
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn shown(parts: &[OsString]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push('/');
        s.push_str(&p.to_string_lossy());
    }
    s
}

fn walk(
    dir: &OwnedFd,
    parts: &[OsString],
    hidden: bool,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<(), Error> {
    let names = {
        let dup = dir
            .try_clone()
            .map_err(|e| super::io_err(format!("read {}", shown(parts)))(e))?;
        let mut d =
            nix::dir::Dir::from_fd(dup).map_err(sys_err(format!("read {}", shown(parts))))?;
        let mut names: Vec<OsString> = Vec::new();
        for e in d.iter() {
            let e = e.map_err(sys_err(format!("read {}", shown(parts))))?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names
    };
    for name in names {
        let bytes = name.as_bytes();
        if bytes == OCI_OPAQUE_MARKER.as_bytes() {
            continue;
        }
        let mut here = parts.to_vec();
        // A `.wh.NAME` file (fuse-overlayfs without mknod) is a whiteout too.
        if let Some(gone) = bytes.strip_prefix(OCI_WHITEOUT_PREFIX.as_bytes()) {
            here.push(OsStr::from_bytes(gone).to_os_string());
            if !hidden {
                out.push(Change {
                    kind: Kind::Deleted,
                    path: shown(&here),
                });
            }
            continue;
        }
        here.push(name.clone());
        let Ok(st) = fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        let fmt = st.st_mode & libc::S_IFMT;
        if fmt == libc::S_IFCHR && st.st_rdev == 0 {
            if !hidden {
                out.push(Change {
                    kind: Kind::Deleted,
                    path: shown(&here),
                });
            }
            continue;
        }
        let kind = if !hidden && exists_below(lowers, &here) {
            Kind::Changed
        } else {
            Kind::Added
        };
        out.push(Change {
            kind,
            path: shown(&here),
        });
        if fmt == libc::S_IFDIR {
            let sub = openat(
                dir,
                name.as_os_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                FileMode::empty(),
            )
            .map_err(sys_err(format!("open {}", shown(&here))))?;
            let opaque = is_opaque_fd(&sub);
            walk(&sub, &here, hidden || opaque, lowers, out)?;
        }
    }
    Ok(())
}

/// Whether `parts` names something in the union of `lowers` (bottom → top). Each layer is
/// looked at one component at a time, through real directories only.
fn exists_below(lowers: &[PathBuf], parts: &[OsString]) -> bool {
    for layer in lowers.iter().rev() {
        let mut p: PathBuf = layer.clone();
        let mut hides_below = false;
        for (i, part) in parts.iter().enumerate() {
            p.push(part);
            let Ok(md) = std::fs::symlink_metadata(&p) else {
                break;
            };
            if is_whiteout(&md) {
                return false;
            }
            if i + 1 == parts.len() {
                return true;
            }
            if !md.is_dir() {
                // A file where a directory is needed hides the path below too.
                return false;
            }
            hides_below |= is_opaque(Path::new(&p));
        }
        if hides_below {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::fd::AsFd;

    fn mkwhiteout(p: &Path) -> bool {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            FileMode::from_bits_truncate(0o600),
            0,
        )
        .is_ok()
    }

    #[test]
    fn added_changed_deleted() {
        let t = tempfile::tempdir().unwrap();
        let lower = t.path().join("lower");
        let upper = t.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/motd"), "x").unwrap();
        fs::write(lower.join("etc/issue"), "x").unwrap();
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("d/x"), "").unwrap();
        fs::write(upper.join("new"), "hi").unwrap();
        fs::write(upper.join("etc/issue"), "y").unwrap();
        if !mkwhiteout(&upper.join("etc/motd")) {
            fs::write(upper.join("etc/.wh.motd"), "").unwrap();
        }
        let fd = nix::fcntl::open(&upper, OFlag::O_RDONLY, FileMode::empty()).unwrap();
        let got: Vec<String> = changes(fd.as_fd(), &[lower])
            .unwrap()
            .iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect();
        assert_eq!(
            got,
            [
                "A /d",
                "A /d/x",
                "C /etc",
                "C /etc/issue",
                "D /etc/motd",
                "A /new"
            ]
        );
    }
}
