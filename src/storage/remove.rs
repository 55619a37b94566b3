//! Removing trees that hold files owned by subordinate ids (layers, container upper dirs).
//!
//! As an ordinary user those files can only be removed from inside a user namespace mapped
//! like a container: `remove_trees` spawns `box __internal remove PATH...` through
//! `userns::spawn_helper`; `helper_main` is that helper's body. As root it removes directly.
use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::Error;
use crate::userns;

/// Remove `path` (file or tree) without following symlinks, making directories writable
/// on the way when their mode forbids it. A missing path is fine.
pub fn remove_tree_direct(path: &Path) -> Result<(), Error> {
    remove_path(path).map_err(|source| Error::Io {
        what: format!("remove {}", path.display()),
        source,
    })
}

/// [`remove_tree_direct`] with the plain I/O error (overlay's work/work is mode 0: a
/// directory whose mode forbids reading, writing or searching it is made 0700 first, which
/// works where we own it or are root of its user namespace).
///
/// The walk is iterative and holds at most four descriptors however deep the tree is (a
/// container can make a tree deeper than any fd limit or PATH_MAX): it descends with
/// `openat(O_NOFOLLOW)` of each child, keeps only the names and (dev, ino) of the levels
/// above, and climbs back with `openat(cur, "..")`, checked to be the directory it came
/// from (else it walks down again from the root by name). It never follows a symlink and
/// never leaves the tree under `path`. Entries that vanish meanwhile (another process
/// removing the same tree) are fine.
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !md.is_dir() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let root = match open_dir(CWD, path) {
        Ok(fd) => fd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    remove_contents(root)?;
    match fs::remove_dir(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

const CWD: BorrowedFd<'static> = nix::fcntl::AT_FDCWD;

/// One directory on the way down: its name in its parent, its identity, and the
/// subdirectories of it still to remove.
struct Level {
    name: OsString,
    id: (u64, u64),
    pending: Vec<OsString>,
}

fn id_of(fd: BorrowedFd) -> std::io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Open directory `name` under `dir` for reading without following a symlink; a directory
/// whose mode keeps us out (or keeps us from deleting in it) is made 0700 first.
fn open_dir<P: ?Sized + nix::NixPath>(dir: BorrowedFd, name: &P) -> std::io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Err(Errno::EACCES) => {
            // Not readable: chmod that very inode (an O_PATH descriptor needs no permission
            // on it; /proc/self/fd/N leads to it and nowhere else), then open it for real.
            let p = openat(dir, name, flags | OFlag::O_PATH, Mode::empty())?;
            let proc = format!("/proc/self/fd/{}", p.as_raw_fd());
            fs::set_permissions(&proc, fs::Permissions::from_mode(0o700))?;
            openat(
                CWD,
                proc.as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?
        }
        r => r?,
    };
    let st = nix::sys::stat::fstat(fd.as_fd())?;
    if st.st_mode & 0o300 != 0o300 {
        // Not writable or searchable: where we may not chmod, unlinking fails below with
        // the error that says so.
        let _ = nix::sys::stat::fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700));
    }
    Ok(fd)
}

/// Delete what directory `dir` holds that is not a directory; return its subdirectories.
fn scan(dir: BorrowedFd) -> std::io::Result<Vec<OsString>> {
    let mut names = Vec::new();
    {
        let mut d = Dir::openat(
            dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        for e in d.iter() {
            let e = e?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let is_dir = match e.file_type() {
                Some(t) => t == Type::Directory,
                None => {
                    match nix::sys::stat::fstatat(dir, e.file_name(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    {
                        Ok(st) => st.st_mode & libc::S_IFMT == libc::S_IFDIR,
                        Err(Errno::ENOENT) => continue,
                        Err(err) => return Err(err.into()),
                    }
                }
            };
            names.push((OsString::from_vec(name.to_vec()), is_dir));
        }
    }
    let mut dirs = Vec::new();
    for (name, is_dir) in names {
        if is_dir {
            dirs.push(name);
            continue;
        }
        match unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(dirs)
}

/// Remove everything under the directory `root` (not `root` itself), iteratively.
fn remove_contents(root: OwnedFd) -> std::io::Result<()> {
    let mut stack = vec![Level {
        name: OsString::new(),
        id: id_of(root.as_fd())?,
        pending: Vec::new(),
    }];
    let mut cur = openat(
        root.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    loop {
        let top = stack.last_mut().expect("the root level stays");
        if top.pending.is_empty() {
            top.pending = scan(cur.as_fd())?;
        }
        let Some(name) = top.pending.pop() else {
            // `cur` is empty: climb to its parent and remove it there.
            if stack.len() == 1 {
                return Ok(());
            }
            let done = stack.pop().expect("more than the root");
            let (parent, same) = climb(cur.as_fd(), root.as_fd(), &mut stack)?;
            cur = parent;
            if same {
                match unlinkat(cur.as_fd(), done.name.as_os_str(), UnlinkatFlags::RemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            continue;
        };
        match open_dir(cur.as_fd(), name.as_os_str()) {
            Ok(child) => {
                let id = id_of(child.as_fd())?;
                stack.push(Level {
                    name,
                    id,
                    pending: Vec::new(),
                });
                cur = child;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            // No longer a directory (replaced meanwhile): remove what it is now.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) => {
                match unlinkat(cur.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The directory of `stack`'s last level, from `cur` (its child) through "..", checked by
/// identity. When that is not it (the child was moved), walk down from `root` by name; a
/// level that is gone cuts the stack there. Returns the descriptor and whether the stack is
/// unchanged (so `cur`'s name in it is still valid).
fn climb(
    cur: BorrowedFd,
    root: BorrowedFd,
    stack: &mut Vec<Level>,
) -> std::io::Result<(OwnedFd, bool)> {
    let want = stack.last().expect("a level").id;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if let Ok(p) = openat(cur, "..", flags, Mode::empty())
        && id_of(p.as_fd()).is_ok_and(|id| id == want)
    {
        return Ok((p, true));
    }
    let mut fd = openat(root, ".", flags, Mode::empty())?;
    for i in 1..stack.len() {
        match open_dir(fd.as_fd(), stack[i].name.as_os_str()) {
            Ok(c) if id_of(c.as_fd()).is_ok_and(|id| id == stack[i].id) => fd = c,
            _ => {
                stack.truncate(i);
                return Ok((fd, false));
            }
        }
    }
    Ok((fd, false))
}

/// Remove trees that may hold subordinate-owned files. `data` is the data directory every
/// path must be under. Spawns the userns helper when not root; call it from a
/// single-threaded moment (no download or progress threads alive).
pub fn remove_trees(data: &Path, paths: &[PathBuf]) -> Result<(), Error> {
    if paths.is_empty() {
        return Ok(());
    }
    for p in paths {
        check_under(data, p)?;
    }
    if nix::unistd::geteuid().is_root() {
        for p in paths {
            remove_tree_direct(p)?;
        }
        return Ok(());
    }
    // Whatever we can remove ourselves (our own files) goes first; the rest needs the ns.
    let rest: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| remove_tree_direct(p).is_err())
        .collect();
    if rest.is_empty() {
        return Ok(());
    }
    let maps = userns::IdMaps::for_current_user(userns::Mode::Auto)?;
    let mut args: Vec<std::ffi::OsString> = vec!["remove".into()];
    args.extend(rest.iter().map(|p| p.as_os_str().to_owned()));
    let mut cmd = userns::helper_command(&args);
    cmd.env("BOX_ROOT", data)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = userns::spawn_helper(&maps, cmd)?;
    let out = child.wait_with_output().map_err(|e| Error::Io {
        what: "wait for the remove helper".into(),
        source: e,
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Helper(format!(
            "remove helper failed: {}",
            msg.trim().trim_start_matches("box: ")
        )));
    }
    Ok(())
}

/// `path` must be absolute, free of `..`, and strictly under `data`.
fn check_under(data: &Path, path: &Path) -> Result<(), Error> {
    let ok = path.is_absolute()
        && !path.components().any(|c| matches!(c, Component::ParentDir))
        && path.starts_with(data)
        && path != data;
    if ok {
        Ok(())
    } else {
        Err(Error::Helper(format!(
            "refusing to remove {}: not under {}",
            path.display(),
            data.display()
        )))
    }
}

/// Body of `box __internal remove PATH...`: enter the namespace, remove each path.
pub fn helper_main(data: &Path, paths: &[PathBuf]) -> Result<(), Error> {
    userns::helper_enter()?;
    for p in paths {
        check_under(data, p)?;
        // The parent of the path must not be a symlink that leads elsewhere.
        if let Some(parent) = p.parent() {
            let real = fs::canonicalize(parent).map_err(|e| Error::Io {
                what: format!("resolve {}", parent.display()),
                source: e,
            })?;
            let real_data = fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
            if !real.starts_with(&real_data) {
                return Err(Error::Helper(format!(
                    "refusing to remove {}: it resolves outside {}",
                    p.display(),
                    data.display()
                )));
            }
        }
        remove_tree_direct(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_read_only_trees_and_refuses_outside() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), "x").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree_direct(&t.path().join("a")).unwrap();
        assert!(!t.path().join("a").exists());
        assert!(check_under(t.path(), Path::new("/etc")).is_err());
        assert!(check_under(t.path(), &t.path().join("../x")).is_err());
        assert!(check_under(t.path(), &t.path().join("x")).is_ok());
    }

    /// Deeper than PATH_MAX and than a 1024-fd limit, with a mode-0 directory at the
    /// bottom and symlinks to a directory outside that must survive.
    #[test]
    fn removes_deep_trees_iteratively_without_following_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "x").unwrap();
        let top = t.path().join("top");
        fs::create_dir(&top).unwrap();
        let mut dir = fs::File::open(&top).unwrap();
        for i in 0..3000 {
            use std::os::fd::AsFd;
            if i % 500 == 0 {
                nix::unistd::symlinkat(outside.as_path(), dir.as_fd(), "link").unwrap();
                nix::sys::stat::mkdirat(dir.as_fd(), "side", Mode::from_bits_truncate(0o755))
                    .unwrap();
            }
            nix::sys::stat::mkdirat(dir.as_fd(), "d", Mode::from_bits_truncate(0o755)).unwrap();
            let fd = openat(
                dir.as_fd(),
                "d",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .unwrap();
            dir = fs::File::from(fd);
        }
        nix::sys::stat::mkdirat(dir.as_fd(), "w", Mode::empty()).unwrap();
        drop(dir);
        // 3000 levels: more than the 1024 descriptors a recursive walk could hold open (the
        // descriptor count itself is not asserted: other tests share the process).
        remove_tree_direct(&top).unwrap();
        assert!(!top.exists());
        assert_eq!(fs::read_to_string(outside.join("keep")).unwrap(), "x");
        // A symlink as the path itself is removed, not followed.
        std::os::unix::fs::symlink(&outside, t.path().join("l")).unwrap();
        remove_tree_direct(&t.path().join("l")).unwrap();
        assert!(outside.join("keep").exists());
    }
}
