//! The tree copy behind `box cp`, the same in both directions.
//!
//! Both sides may be changed by the container while box copies: the container's tree
//! always, the host's when the destination is (or was filled by an earlier copy from) a
//! container. So every step works on an open directory descriptor and one name in it:
//! - a name is one component (never `/`, `.` or `..`), opened with `openat2` and
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` plus `O_NOFOLLOW`: a symlink met anywhere is
//!   copied as a symlink or refused, never followed;
//! - what is read is checked after opening (`fstat` of the open descriptor), so an entry
//!   swapped for a symlink or a fifo between the look and the open fails instead of
//!   leading elsewhere;
//! - a file or symlink is written under a fresh temporary name (`O_CREAT|O_EXCL`) and
//!   renamed over the destination name: whatever was there (a symlink to `~/.bashrc`, a
//!   hard link) is replaced, never written through;
//! - a directory that exists is entered without following it; anything else in its place
//!   is removed first; modes are set with `fchmod` on descriptors we opened, so nothing
//!   outside the destination changes;
//! - names are bytes: whatever the container's names are, they are copied unchanged.
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

use super::{Ctx, Error, Result, fail};

/// Which way the copy goes: what a copied mode keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Container → host: files become yours; setuid, setgid and sticky bits are dropped
    /// and directories stay readable by you.
    ToHost,
    /// Host → container: modes are kept as they are.
    IntoContainer,
}

impl Direction {
    fn file_mode(self, mode: u32) -> u32 {
        match self {
            Direction::ToHost => mode & 0o777,
            Direction::IntoContainer => mode & 0o7777,
        }
    }

    fn dir_mode(self, mode: u32) -> u32 {
        match self {
            Direction::ToHost => (mode & 0o777) | 0o700,
            Direction::IntoContainer => mode & 0o7777,
        }
    }
}

/// How an entry name is shown in an error.
pub fn shown(name: &OsStr) -> String {
    const MAX: usize = 200;
    let s = name.to_string_lossy();
    if s.len() <= MAX {
        return s.into_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn check_name(name: &OsStr) -> Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        fail!("not a plain file name: {:?}", shown(name));
    }
    Ok(())
}

/// `openat2(dir, name)` for one component: no symlink followed, nothing outside `dir`.
pub fn open_beneath(dir: BorrowedFd, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    create_beneath(dir, name, flags, 0)
}

/// `open_beneath` with the mode of a file it creates.
fn create_beneath(dir: BorrowedFd, name: &OsStr, flags: OFlag, mode: u32) -> nix::Result<OwnedFd> {
    let mut how = OpenHow::new()
        .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    if flags.contains(OFlag::O_CREAT) {
        how = how.mode(Mode::from_bits_truncate(mode));
    }
    loop {
        match nix::fcntl::openat2(dir, name, how) {
            // A concurrent rename raced the lookup; the man page says to retry.
            Err(Errno::EAGAIN) => continue,
            r => return r,
        }
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// Copy the entry `src_name` of `src_dir` to `dst_name` in `dst_dir`.
pub fn copy_entry(
    src_dir: BorrowedFd,
    src_name: &OsStr,
    dst_dir: BorrowedFd,
    dst_name: &OsStr,
    dir: Direction,
) -> Result<()> {
    check_name(src_name)?;
    check_name(dst_name)?;
    let st = fstatat(src_dir, src_name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .ctx(|| format!("cannot read {}", shown(src_name)))?;
    let changed = || format!("{} changed while it was being copied", shown(src_name));
    match kind(&st) {
        SFlag::S_IFLNK => {
            let target = nix::fcntl::readlinkat(src_dir, src_name)
                .ctx(|| format!("cannot read the symlink {}", shown(src_name)))?;
            replace_with(dst_dir, dst_name, |tmp| {
                symlinkat(target.as_os_str(), dst_dir, tmp).map_err(io::Error::from)
            })
            .map_err(|e| replace_error(dst_name, e))
        }
        SFlag::S_IFREG => {
            // O_NONBLOCK: a fifo swapped in after the look must not hang the copy.
            let fd = open_beneath(src_dir, src_name, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
                .ctx(changed)?;
            let now = fstat(fd.as_fd()).ctx(changed)?;
            if kind(&now) != SFlag::S_IFREG {
                fail!("{}", changed());
            }
            let mode = dir.file_mode(now.st_mode);
            write_file(dst_dir, dst_name, &mut File::from(fd), mode)
        }
        SFlag::S_IFDIR => {
            let src = open_beneath(src_dir, src_name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                .ctx(changed)?;
            let dst = ensure_dir(dst_dir, dst_name)?;
            copy_dir(src.as_fd(), dst.as_fd(), dir)
        }
        // Devices, fifos and sockets are skipped, as docker does for special files.
        _ => Ok(()),
    }
}

/// Copy what the directory `src` holds into the directory `dst`, and its mode.
pub fn copy_dir(src: BorrowedFd, dst: BorrowedFd, dir: Direction) -> Result<()> {
    let what = || "cannot read a directory to copy".to_string();
    let mode = fstat(src).ctx(what)?.st_mode;
    // The listing reads through a duplicate, closed before descending, so a deep tree
    // costs two descriptors a level.
    let names: Vec<OsString> = {
        let dup = src.try_clone_to_owned().ctx(what)?;
        let listing = nix::dir::Dir::from_fd(dup).ctx(what)?;
        listing
            .into_iter()
            .filter_map(|e| e.ok())
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect()
    };
    for name in &names {
        copy_entry(src, name, dst, name, dir)?;
    }
    fchmod(dst, Mode::from_bits_truncate(dir.dir_mode(mode)))
        .ctx(|| "cannot set the mode of a copied directory".into())?;
    Ok(())
}

/// The directory `name` in `dir`, made if missing; a file or symlink in its place is
/// removed first (never followed).
pub fn ensure_dir(dir: BorrowedFd, name: &OsStr) -> Result<OwnedFd> {
    check_name(name)?;
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if kind(&st) == SFlag::S_IFDIR => {}
        Ok(_) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
            .ctx(|| format!("cannot replace {} with a directory", shown(name)))?,
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e).ctx(|| format!("cannot look at {}", shown(name))),
    }
    match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e).ctx(|| format!("cannot create {}", shown(name))),
    }
    open_beneath(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
        .ctx(|| format!("{} changed while it was being copied", shown(name)))
}

fn write_file(dir: BorrowedFd, name: &OsStr, from: &mut File, mode: u32) -> Result<()> {
    let written = replace_with(dir, name, |tmp| {
        let fd = create_beneath(
            dir,
            tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
            0o600,
        )?;
        let mut to = File::from(fd);
        io::copy(from, &mut to)?;
        fchmod(to.as_fd(), Mode::from_bits_truncate(mode))?;
        Ok(())
    });
    match written {
        // A mount point (a volume's file, /etc/hosts) cannot be renamed over: write it in
        // place, still without following a symlink.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => write_in_place(dir, name, from, mode),
        r => r.map_err(|e| replace_error(name, e)),
    }
}

fn write_in_place(dir: BorrowedFd, name: &OsStr, from: &mut File, mode: u32) -> Result<()> {
    use std::io::Seek;
    let what = || format!("cannot write {}", shown(name));
    let fd = open_beneath(dir, name, OFlag::O_WRONLY | OFlag::O_NONBLOCK).ctx(what)?;
    if kind(&fstat(fd.as_fd()).ctx(what)?) != SFlag::S_IFREG {
        fail!("cannot write {}: not a regular file", shown(name));
    }
    let mut to = File::from(fd);
    to.set_len(0).ctx(what)?;
    from.rewind().ctx(what)?;
    io::copy(from, &mut to).ctx(what)?;
    fchmod(to.as_fd(), Mode::from_bits_truncate(mode)).ctx(what)?;
    Ok(())
}

/// A name for a temporary entry in a destination directory.
fn temp_name() -> OsString {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(".box-cp.{}.{n}", std::process::id()).into()
}

/// Make the new entry under a temporary name with `make`, then rename it over `name`;
/// nothing temporary is left when either fails.
fn replace_with(
    dir: BorrowedFd,
    name: &OsStr,
    make: impl FnOnce(&OsStr) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_name();
    let result = make(&tmp).and_then(|()| {
        nix::fcntl::renameat(dir, tmp.as_os_str(), dir, name).map_err(io::Error::from)
    });
    if result.is_err() {
        let _ = unlinkat(dir, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
    }
    result
}

fn replace_error(name: &OsStr, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST) => Error::Failed(format!(
            "cannot overwrite the directory {} with a file: remove it first",
            shown(name)
        )),
        _ => Error::File {
            what: format!("cannot write {}", shown(name)),
            source: e,
        },
    }
}

/// Raise the soft limit on open files to the hard one: a deep tree costs two descriptors
/// a level.
pub fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn dirfd(p: &std::path::Path) -> OwnedFd {
        nix::fcntl::open(p, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    #[test]
    fn a_symlink_in_the_destination_is_replaced_not_written_through() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(src.join("d")).unwrap();
        fs::create_dir_all(&dst).unwrap();
        fs::write(src.join("f"), "new").unwrap();
        fs::write(src.join("d/authorized_keys"), "key").unwrap();
        let victim = t.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("bashrc"), "mine").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o750)).unwrap();
        // What an earlier copy brought over: symlinks to the user's files.
        symlink(victim.join("bashrc"), dst.join("f")).unwrap();
        symlink(&victim, dst.join("d")).unwrap();

        let (s, d) = (dirfd(&src), dirfd(&dst));
        copy_dir(s.as_fd(), d.as_fd(), Direction::ToHost).unwrap();

        assert_eq!(fs::read_to_string(victim.join("bashrc")).unwrap(), "mine");
        assert!(!victim.join("authorized_keys").exists());
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o750
        );
        assert_eq!(fs::read_to_string(dst.join("f")).unwrap(), "new");
        assert!(fs::symlink_metadata(dst.join("d")).unwrap().is_dir());
        assert_eq!(
            fs::read_to_string(dst.join("d/authorized_keys")).unwrap(),
            "key"
        );
    }

    #[test]
    fn names_are_bytes_and_links_stay_links() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(&dst).unwrap();
        let odd = OsStr::from_bytes(b"a\xffb");
        fs::write(src.join(odd), "odd").unwrap();
        symlink("/etc/passwd", src.join("l")).unwrap();
        fs::write(src.join("s"), "x").unwrap();
        fs::set_permissions(src.join("s"), fs::Permissions::from_mode(0o4755)).unwrap();

        let (s, d) = (dirfd(&src), dirfd(&dst));
        copy_dir(s.as_fd(), d.as_fd(), Direction::ToHost).unwrap();
        assert_eq!(fs::read_to_string(dst.join(odd)).unwrap(), "odd");
        assert_eq!(
            fs::read_link(dst.join("l")).unwrap(),
            std::path::Path::new("/etc/passwd")
        );
        assert_eq!(fs::metadata(dst.join("s")).unwrap().mode() & 0o7777, 0o755);
        // Nothing temporary is left.
        let left: Vec<_> = fs::read_dir(&dst)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.as_bytes().starts_with(b".box-cp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_file_does_not_replace_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(dst.join("x")).unwrap();
        fs::write(src.join("x"), "file").unwrap();
        let (s, d) = (dirfd(&src), dirfd(&dst));
        let e = copy_entry(
            s.as_fd(),
            "x".as_ref(),
            d.as_fd(),
            "x".as_ref(),
            Direction::ToHost,
        )
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot overwrite the directory x"),
            "{e:#}"
        );
        assert!(dst.join("x").is_dir());
    }

    #[test]
    fn long_names_are_shortened_in_messages() {
        let long = "x".repeat(5000);
        assert!(shown(OsStr::new(&long)).len() < 300);
        assert!(check_name(OsStr::new("../x")).is_err());
        assert!(check_name(OsStr::new("..")).is_err());
    }
}
