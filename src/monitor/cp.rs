//! `box cp`: copy between the host and a container, running or not, inside its user
//! namespace (see `cp_ns`).
//!
//! Every container path is resolved with `openat2(RESOLVE_IN_ROOT)` against the
//! container's root directory, so `..` and symlinks (absolute or relative) inside the
//! container can never lead out of it; what is created inside is created relative to
//! directory fds with O_NOFOLLOW. Files copied in belong to the container's root; files
//! copied out belong to you. Symlinks are copied as symlinks, never followed.
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};

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

fn openat2(dir: BorrowedFd, path: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    use nix::fcntl::{OpenHow, ResolveFlag};
    let path = if path.is_empty() { "." } else { path };
    let mut how = OpenHow::new()
        .flags(OFlag::from_bits_truncate(flags) | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    if flags & libc::O_CREAT != 0 {
        how = how.mode(Mode::from_bits_truncate(mode));
    }
    loop {
        match nix::fcntl::openat2(dir, path, how) {
            // EAGAIN: a concurrent rename raced the lookup; retry as the man page says.
            Err(nix::errno::Errno::EAGAIN) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

/// Copy between host and container as `box cp SRC DEST` asks.
pub fn copy(paths: &Paths, c: &Containers, src: &str, dest: &str) -> Result<()> {
    if src == "-" || dest == "-" {
        bail!("cannot stream a tar archive (-): give a host path to copy to or from");
    }
    match (parse_side(src), parse_side(dest)) {
        (Side::Container(name, path), Side::Host(host)) => {
            let rec = c.find(&name)?;
            super::cp_ns::in_container(paths, &rec, |root| from_container(root, &path, &host))
                .with_context(|| format!("copying {src} to {}", host.display()))
        }
        (Side::Host(host), Side::Container(name, path)) => {
            let rec = c.find(&name)?;
            super::cp_ns::in_container(paths, &rec, |root| into_container(&host, root, &path))
                .with_context(|| format!("copying {} to {dest}", host.display()))
        }
        (Side::Host(_), Side::Host(_)) => {
            bail!("one of SRC and DEST must be CONTAINER:PATH")
        }
        (Side::Container(..), Side::Container(..)) => {
            bail!("copying between containers is not supported: copy through the host")
        }
    }
}

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
        None => (".".into(), trimmed.to_string()),
    }
}

// ---------------------------------------------------------------- container → host

fn from_container(root: BorrowedFd, path: &str, host: &Path) -> Result<()> {
    let (parent, name) = split_parent(path);
    let dir = openat2(root, &parent, libc::O_PATH | libc::O_DIRECTORY, 0)
        .with_context(|| format!("no such directory in the container: {parent}"))?;
    let name = if name.is_empty() {
        ".".to_string()
    } else {
        name
    };
    let st = fstatat(dir.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .with_context(|| format!("no such file in the container: {path}"))?;
    let target = if host.is_dir() {
        let base = if name == "." {
            "root".to_string()
        } else {
            name.clone()
        };
        host.join(base)
    } else {
        host.to_path_buf()
    };
    copy_out(dir.as_fd(), &name, st, &target)
}

fn copy_out(dir: BorrowedFd, name: &str, st: libc::stat, target: &Path) -> Result<()> {
    let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let mode = st.st_mode & 0o7777;
    if kind == SFlag::S_IFLNK {
        let link = nix::fcntl::readlinkat(dir, name)?;
        let _ = fs::remove_file(target);
        std::os::unix::fs::symlink(&link, target)
            .with_context(|| format!("creating {}", target.display()))?;
    } else if kind == SFlag::S_IFREG {
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("cannot read {name} in the container"))?;
        let mut from = fs::File::from(fd);
        let mut to =
            fs::File::create(target).with_context(|| format!("creating {}", target.display()))?;
        io::copy(&mut from, &mut to)?;
        let _ = to.set_permissions(fs::Permissions::from_mode(mode & 0o777));
    } else if kind == SFlag::S_IFDIR {
        if !target.is_dir() {
            fs::create_dir(target).with_context(|| format!("creating {}", target.display()))?;
        }
        let sub = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("cannot read directory {name} in the container"))?;
        let entries = nix::dir::Dir::from_fd(sub.try_clone()?)?;
        let names: Vec<String> = entries
            .into_iter()
            .flatten()
            .map(|e| String::from_utf8_lossy(e.file_name().to_bytes()).into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        for n in names {
            let st = fstatat(sub.as_fd(), n.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?;
            copy_out(sub.as_fd(), &n, st, &target.join(&n))?;
        }
        let _ = fs::set_permissions(target, fs::Permissions::from_mode((mode & 0o777) | 0o700));
    }
    // Devices, fifos and sockets are skipped, as docker does for special files.
    Ok(())
}

// ---------------------------------------------------------------- host → container

fn into_container(host: &Path, root: BorrowedFd, path: &str) -> Result<()> {
    let md = fs::symlink_metadata(host).with_context(|| format!("{}", host.display()))?;
    // An existing directory receives the source under its own name.
    let (dir, name) = match openat2(root, path, libc::O_PATH | libc::O_DIRECTORY, 0) {
        Ok(d) if !path.trim_end_matches('/').is_empty() || path == "/" => {
            let base = host
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .context("the source has no file name")?;
            (d, base)
        }
        _ => {
            let (parent, name) = split_parent(path);
            let d = openat2(root, &parent, libc::O_PATH | libc::O_DIRECTORY, 0)
                .with_context(|| format!("no such directory in the container: {parent}"))?;
            (d, name)
        }
    };
    copy_in(host, &md, dir.as_fd(), &name)
}

fn copy_in(host: &Path, md: &fs::Metadata, dir: BorrowedFd, name: &str) -> Result<()> {
    let mode = Mode::from_bits_truncate(md.mode() & 0o7777);
    let ft = md.file_type();
    if ft.is_symlink() {
        let link = fs::read_link(host)?;
        let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        nix::unistd::symlinkat(link.as_os_str().as_bytes(), dir, name)
            .with_context(|| format!("creating the symlink {name}"))?;
    } else if ft.is_file() {
        let fd = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            mode,
        )
        .with_context(|| format!("cannot write {name} in the container"))?;
        let mut to = fs::File::from(fd);
        let mut from = fs::File::open(host)?;
        io::copy(&mut from, &mut to)?;
        let _ = to.set_permissions(fs::Permissions::from_mode(md.mode() & 0o7777));
    } else if ft.is_dir() {
        match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("creating directory {name}")),
        }
        let sub = nix::fcntl::openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("{name} in the container is not a directory"))?;
        for e in fs::read_dir(host)? {
            let e = e?;
            let md = fs::symlink_metadata(e.path())?;
            copy_in(
                &e.path(),
                &md,
                sub.as_fd(),
                &e.file_name().to_string_lossy(),
            )?;
        }
        let _ = nix::sys::stat::fchmod(sub.as_fd(), Mode::from_bits_truncate(md.mode() & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // Writing onto a symlink replaces nothing outside.
        assert!(into_container(&src, rootfd.as_fd(), "/etc/rel").is_err());
        assert_eq!(
            fs::read_to_string(t.path().join("secret")).unwrap(),
            "outside"
        );
    }
}
