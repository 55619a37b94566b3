//! `box cp`: copy between the host and a container, running or not, inside its user
//! namespace (see `cp_ns`); the tree itself is copied by `cp_tree`.
//!
//! Container paths are resolved with `openat2(RESOLVE_IN_ROOT)` against the container's
//! root directory, so `..` and symlinks inside the container can never lead out of it.
//! Host paths are the user's: DEST's parent (and DEST itself when it is an existing
//! directory, or written `DEST/`) are opened by name once, and everything below is
//! reached through directory descriptors without following a symlink (`cp_tree`), so
//! symlinks a container left there (by an earlier copy, or in a volume it shares) are
//! replaced, never written through. Files copied in belong to the container's root;
//! files copied out belong to you. Symlinks are copied as symlinks, never followed.
//!
//! As docker: a directory copied to a missing DEST becomes DEST; to an existing
//! directory, a subdirectory of it; `SRC/.` copies what the directory holds.
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};

use super::cp_tree::{self, Direction};
use super::{Ctx, Result, fail};
use crate::container::Containers;
use crate::paths::Paths;

/// `CONTAINER:PATH` or a host path.
#[derive(Debug, PartialEq, Eq)]
enum Side {
    Host(PathBuf),
    Container(String, String),
}

fn parse_side(s: &str) -> Side {
    if s.starts_with('/') || s.starts_with('.') || s == "-" {
        return Side::Host(PathBuf::from(s));
    }
    match s.split_once(':') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => {
            Side::Container(name.to_string(), path.to_string())
        }
        _ => Side::Host(PathBuf::from(s)),
    }
}

/// `openat2(RESOLVE_IN_ROOT)`: `path` as the container sees it from `root`.
fn open_in_root(root: BorrowedFd, path: &str, flags: OFlag) -> io::Result<OwnedFd> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    let path = if path.is_empty() { "." } else { path };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    loop {
        match nix::fcntl::openat2(root, path, how) {
            // EAGAIN: a concurrent rename raced the lookup; retry as the man page says.
            Err(nix::errno::Errno::EAGAIN) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Copy between host and container as `box cp SRC DEST` asks.
pub fn copy(paths: &Paths, c: &Containers, src: &str, dest: &str) -> Result<()> {
    if src == "-" || dest == "-" {
        fail!("cannot stream a tar archive (-): give a host path to copy to or from");
    }
    match (parse_side(src), parse_side(dest)) {
        (Side::Container(name, path), Side::Host(host)) => {
            let rec = c.find(&name)?;
            super::cp_ns::in_container(paths, &rec, |root| from_container(root, &path, &host))
                .ctx(|| format!("copying {src} to {}", host.display()))
        }
        (Side::Host(host), Side::Container(name, path)) => {
            let rec = c.find(&name)?;
            super::cp_ns::in_container(paths, &rec, |root| into_container(&host, root, &path))
                .ctx(|| format!("copying {} to {dest}", host.display()))
        }
        (Side::Host(_), Side::Host(_)) => {
            fail!("one of SRC and DEST must be CONTAINER:PATH")
        }
        (Side::Container(..), Side::Container(..)) => {
            fail!("copying between containers is not supported: copy through the host")
        }
    }
}

/// `(parent, name)` of a path with its trailing slashes removed; `("/", "")` for `/`.
fn split_parent(path: &str) -> (String, String) {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.into()
            },
            name.to_string(),
        ),
        None if path.starts_with('/') => ("/".into(), String::new()),
        None => (".".into(), trimmed.to_string()),
    }
}

/// Whether a path names what a directory holds (`DIR/.`, or `/` itself).
fn names_contents(path: &[u8]) -> bool {
    path.ends_with(b"/.") || path == b"." || (!path.is_empty() && path.iter().all(|b| *b == b'/'))
}

/// What is copied: one entry of a directory, or everything a directory holds.
enum Source {
    Entry {
        dir: OwnedFd,
        name: OsString,
        is_dir: bool,
    },
    Contents(OwnedFd),
}

impl Source {
    fn is_dir(&self) -> bool {
        match self {
            Source::Entry { is_dir, .. } => *is_dir,
            Source::Contents(_) => true,
        }
    }

    fn stat(dir: OwnedFd, name: OsString, shown: &str) -> Result<Source> {
        let st = fstatat(dir.as_fd(), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
            .ctx(|| format!("no such file: {shown}"))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFDIR;
        Ok(Source::Entry { dir, name, is_dir })
    }
}

/// Where it goes: an entry (made or replaced) in a directory, or into a directory.
enum Dest {
    Entry(OwnedFd, OsString),
    Into(OwnedFd),
}

fn transfer(src: &Source, dest: &Dest, dir: Direction) -> Result<()> {
    match (src, dest) {
        (Source::Entry { dir: sd, name, .. }, Dest::Entry(dd, dname)) => {
            cp_tree::copy_entry(sd.as_fd(), name, dd.as_fd(), dname, dir)
        }
        (Source::Entry { dir: sd, name, .. }, Dest::Into(dd)) => {
            cp_tree::copy_entry(sd.as_fd(), name, dd.as_fd(), name, dir)
        }
        (Source::Contents(s), Dest::Into(d)) => cp_tree::copy_dir(s.as_fd(), d.as_fd(), dir),
        (Source::Contents(s), Dest::Entry(dd, dname)) => {
            let d = cp_tree::ensure_dir(dd.as_fd(), dname)?;
            cp_tree::copy_dir(s.as_fd(), d.as_fd(), dir)
        }
    }
}

// ---------------------------------------------------------------- container → host

fn from_container(root: BorrowedFd, path: &str, host: &Path) -> Result<()> {
    cp_tree::raise_nofile_limit();
    let src = container_source(root, path)?;
    let dest = host_dest(host, &src)?;
    transfer(&src, &dest, Direction::ToHost)
}

fn container_source(root: BorrowedFd, path: &str) -> Result<Source> {
    if names_contents(path.as_bytes()) {
        let fd = open_in_root(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            .ctx(|| format!("no such directory in the container: {path}"))?;
        return Ok(Source::Contents(fd));
    }
    let (parent, name) = split_parent(path);
    let dir = open_in_root(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .ctx(|| format!("no such directory in the container: {parent}"))?;
    Source::stat(dir, name.into(), &format!("{path} in the container"))
}

/// DEST on the host. Only what the user typed is resolved by name: an existing directory
/// (not a symlink, unless written `DEST/`) receives the source; anything else is
/// replaced in its parent directory.
fn host_dest(host: &Path, src: &Source) -> Result<Dest> {
    let shown = host.display();
    let bytes = host.as_os_str().as_bytes();
    let explicit_dir = bytes.ends_with(b"/") || names_contents(bytes);
    let open_dir = |p: &Path| {
        nix::fcntl::open(
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let existing = match std::fs::symlink_metadata(host) {
        Ok(md) => Some(md.is_dir() || (explicit_dir && host.is_dir())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).ctx(|| format!("cannot look at {shown}")),
    };
    match existing {
        Some(true) => {
            let fd = open_dir(host).ctx(|| format!("cannot open {shown}"))?;
            Ok(match src {
                Source::Contents(_) => Dest::Into(fd),
                Source::Entry { name, .. } => Dest::Entry(fd, name.clone()),
            })
        }
        Some(false) if explicit_dir => fail!("{shown} is not a directory"),
        Some(false) if src.is_dir() => fail!(
            "cannot copy a directory onto {shown}, which is not a directory: remove it or give another destination"
        ),
        None if explicit_dir && !src.is_dir() => {
            fail!("no such directory: {shown} (create it first, or leave out the trailing /)")
        }
        _ => {
            let Some(name) = host.file_name() else {
                fail!("{shown} names no file: give a file or directory name");
            };
            let parent = match host.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let fd = open_dir(parent).ctx(|| format!("no such directory: {}", parent.display()))?;
            Ok(Dest::Entry(fd, name.to_os_string()))
        }
    }
}

// ---------------------------------------------------------------- host → container

fn into_container(host: &Path, root: BorrowedFd, path: &str) -> Result<()> {
    cp_tree::raise_nofile_limit();
    let src = host_source(host)?;
    let dest = container_dest(root, path, &src)?;
    transfer(&src, &dest, Direction::IntoContainer)
}

/// SRC on the host: its parent is opened by name, the entry itself is not followed.
fn host_source(host: &Path) -> Result<Source> {
    let shown = host.display();
    let open_dir = |p: &Path| {
        nix::fcntl::open(
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let name = match host.file_name() {
        Some(n) if !names_contents(host.as_os_str().as_bytes()) => n,
        _ => {
            let fd = open_dir(host).ctx(|| format!("no such directory: {shown}"))?;
            return Ok(Source::Contents(fd));
        }
    };
    let parent = match host.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = open_dir(parent).ctx(|| format!("no such directory: {}", parent.display()))?;
    Source::stat(dir, name.to_os_string(), &shown.to_string())
}

/// DEST in the container, resolved in its root: an existing directory receives the
/// source, anything else is made or replaced in its parent.
fn container_dest(root: BorrowedFd, path: &str, src: &Source) -> Result<Dest> {
    if let Ok(fd) = open_in_root(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        return Ok(match src {
            Source::Contents(_) => Dest::Into(fd),
            Source::Entry { name, .. } => Dest::Entry(fd, name.clone()),
        });
    }
    if path.ends_with('/') && !src.is_dir() {
        fail!("no such directory in the container: {path}");
    }
    let (parent, name) = split_parent(path);
    if name.is_empty() || name == "." || name == ".." {
        fail!("{path} names no file in the container: give a file or directory name");
    }
    let dir = open_in_root(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .ctx(|| format!("no such directory in the container: {parent}"))?;
    if src.is_dir()
        && let Ok(st) = fstatat(dir.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        && SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) == SFlag::S_IFREG
    {
        fail!("cannot copy a directory onto the file {path} in the container: remove it first");
    }
    Ok(Dest::Entry(dir, OsStr::new(&name).to_os_string()))
}
#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn sides() {
        assert_eq!(parse_side("./a:b"), Side::Host("./a:b".into()));
        assert_eq!(parse_side("/x"), Side::Host("/x".into()));
        assert_eq!(
            parse_side("web:/etc/hosts"),
            Side::Container("web".into(), "/etc/hosts".into())
        );
        assert_eq!(parse_side("file"), Side::Host("file".into()));
    }

    #[test]
    fn copies_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hosts"), "inside").unwrap();
        fs::write(t.path().join("secret"), "outside").unwrap();
        // Absolute and relative symlinks pointing out of the root.
        std::os::unix::fs::symlink("/etc/hosts", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("etc/rel")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        let rootfd =
            nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let out = t.path().join("out");
        fs::create_dir(&out).unwrap();

        from_container(rootfd.as_fd(), "/etc/hosts", &out.join("h")).unwrap();
        assert_eq!(fs::read_to_string(out.join("h")).unwrap(), "inside");
        // A path through a symlink to "/" stays in the root.
        from_container(rootfd.as_fd(), "/up/../../etc/hosts", &out.join("h2")).unwrap();
        assert_eq!(fs::read_to_string(out.join("h2")).unwrap(), "inside");
        // Symlinks are copied as links, not followed.
        from_container(rootfd.as_fd(), "/etc/rel", &out.join("l")).unwrap();
        assert!(
            fs::symlink_metadata(out.join("l"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A directory tree.
        from_container(rootfd.as_fd(), "/etc", &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("etc/hosts")).unwrap(), "inside");

        // Into the container: writing through /up/ lands in the root, not on the host.
        let src = t.path().join("app.conf");
        fs::write(&src, "conf").unwrap();
        into_container(&src, rootfd.as_fd(), "/up/app.conf").unwrap();
        assert_eq!(fs::read_to_string(root.join("app.conf")).unwrap(), "conf");
        into_container(&src, rootfd.as_fd(), "/etc").unwrap();
        assert_eq!(
            fs::read_to_string(root.join("etc/app.conf")).unwrap(),
            "conf"
        );
        // Writing onto a symlink replaces the link, and nothing outside.
        into_container(&src, rootfd.as_fd(), "/etc/rel").unwrap();
        assert_eq!(fs::read_to_string(root.join("etc/rel")).unwrap(), "conf");
        assert_eq!(
            fs::read_to_string(t.path().join("secret")).unwrap(),
            "outside"
        );
    }
}
