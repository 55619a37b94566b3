//! The tar entry writer: every entry created relative to the layer root's fd (parents
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, or one `O_NOFOLLOW`
//! component at a time without openat2), sparse files kept sparse, OCI whiteouts turned
//! into overlay ones, then ownership, modes, xattrs and times; directories' metadata last.
use std::cell::Cell;
use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::{Options, PATH_MAX, Stats, entry_components, shown_name};
use crate::storage::{Error, whiteout};
use crate::units::binary_size as human;

struct DirMeta {
    comps: Vec<OsString>,
    meta: Meta,
}

#[derive(Clone)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) struct Writer {
    root: OwnedFd,
    opts: Options,
    stats: Stats,
    dirs: Vec<DirMeta>,
    /// The last parent directory opened: (components, fd).
    cache: Option<(Vec<OsString>, OwnedFd)>,
    buf: Vec<u8>,
    /// Bytes of the tar stream read so far (see `HashReader`).
    consumed: Rc<Cell<u64>>,
    /// Free bytes on the layer's filesystem when the unpack started.
    free: u64,
    /// Sum of the (apparent) sizes of the regular files so far.
    declared: u64,
}

static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Writer {
    /// A writer for the layer whose root directory is `root`. `consumed` counts the tar
    /// stream's bytes (to tell sparse holes from data); `free` bounds the files' sizes.
    pub(super) fn new(root: OwnedFd, opts: Options, consumed: Rc<Cell<u64>>, free: u64) -> Writer {
        Writer {
            root,
            opts,
            stats: Stats::default(),
            dirs: Vec::new(),
            cache: None,
            buf: vec![0u8; 128 * 1024],
            consumed,
            free,
            declared: 0,
        }
    }

    /// The layer root.
    pub(super) fn root(&self) -> &OwnedFd {
        &self.root
    }

    /// What the entries written so far produced.
    pub(super) fn into_stats(self) -> Stats {
        self.stats
    }

    pub(super) fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Error> {
        let kind = entry.header().entry_type();
        use tar::EntryType as T;
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            return Ok(());
        }
        // Bound names before anything is built from them (components, messages).
        let raw_path = {
            let p = entry.path_bytes();
            if p.len() > PATH_MAX {
                return Err(Error::Entry {
                    entry: shown_name(&p),
                    reason: format!(
                        "the path is {} bytes long, more than PATH_MAX ({PATH_MAX})",
                        p.len()
                    ),
                });
            }
            p.into_owned()
        };
        let shown = shown_name(&raw_path);
        let fail = |reason: String| Error::Entry {
            entry: shown.clone(),
            reason,
        };
        if let Some(link) = entry.link_name_bytes()
            && link.len() > PATH_MAX
        {
            return Err(fail(format!(
                "the link name is {} bytes long, more than PATH_MAX ({PATH_MAX})",
                link.len()
            )));
        }
        let path = PathBuf::from(OsStr::from_bytes(&raw_path));
        let comps = entry_components(&path).map_err(&fail)?;
        let meta = read_meta(entry).map_err(|e| fail(e.to_string()))?;

        let Some((name, parent_comps)) = comps.split_last() else {
            // The layer root itself ("./").
            if kind == T::Directory {
                self.dirs.push(DirMeta {
                    comps: Vec::new(),
                    meta,
                });
                return Ok(());
            }
            return Err(fail("the layer root must be a directory".into()));
        };
        let name = name.clone();
        let parent = self.parent(parent_comps).map_err(&fail)?;
        let name_bytes = name.as_bytes();

        // Whiteouts.
        if name_bytes == whiteout::OCI_OPAQUE_MARKER.as_bytes() {
            whiteout::set_opaque(&parent).map_err(|e| {
                fail(format!(
                    "cannot mark the directory opaque (user xattrs): {e}"
                ))
            })?;
            return Ok(());
        }
        if let Some(hidden) = name_bytes.strip_prefix(whiteout::OCI_WHITEOUT_PREFIX.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
                return Err(fail("invalid whiteout name".into()));
            }
            let hidden = OsStr::from_bytes(hidden);
            self.remove_existing(&parent, hidden, false)
                .map_err(|e| fail(e.to_string()))?;
            nix::sys::stat::mknodat(&parent, hidden, SFlag::S_IFCHR, Mode::empty(), 0)
                .map_err(|e| fail(format!("cannot create the whiteout device: {e}")))?;
            return Ok(());
        }

        match kind {
            T::Directory => {
                let exists_as_dir = self
                    .remove_existing(&parent, &name, true)
                    .map_err(|e| fail(e.to_string()))?;
                if !exists_as_dir {
                    nix::sys::stat::mkdirat(
                        &parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| fail(format!("mkdir: {e}")))?;
                }
                let mut dir_comps = parent_comps.to_vec();
                dir_comps.push(name);
                self.dirs.push(DirMeta {
                    comps: dir_comps,
                    meta,
                });
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                // The apparent size, holes of sparse files included: what the layer's
                // files may take once written (or read back by anything that copies them).
                let size = entry.size();
                self.declared = self.declared.saturating_add(size);
                if self.declared > self.free {
                    return Err(fail(format!(
                        "the file is {} ({size} bytes) and the layer's files add up to {} so far, more than the {} free on the store's filesystem: free up space or do not use this image",
                        human(size),
                        human(self.declared),
                        human(self.free)
                    )));
                }
                self.remove_existing(&parent, &name, false)
                    .map_err(|e| fail(e.to_string()))?;
                let fd = nix::fcntl::openat(
                    &parent,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(|e| fail(format!("create: {e}")))?;
                let file = File::from(fd);
                let sparse = kind == T::GNUSparse;
                // `pos` is the offset in the file, `written` the bytes of data written.
                let mut pos = 0u64;
                let mut written = 0u64;
                loop {
                    let before = self.consumed.get();
                    let n = match entry.read(&mut self.buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(fail(format!("read: {e}"))),
                    };
                    if sparse && self.consumed.get() == before {
                        // A hole of a sparse file: zeros tar-rs made up, not stream bytes.
                        // Leave it a hole; the final length is set below.
                        pos += n as u64;
                        continue;
                    }
                    file.write_all_at(&self.buf[..n], pos)
                        .map_err(|e| fail(format!("write: {e}")))?;
                    pos += n as u64;
                    written += n as u64;
                }
                if sparse {
                    file.set_len(pos)
                        .map_err(|e| fail(format!("set the length: {e}")))?;
                }
                self.stats.size += pos;
                if written >= 128 * 1024 {
                    // Start writeback now, so that the final syncfs has little left to do.
                    // SAFETY: a valid fd; offsets 0/0 mean the whole file.
                    unsafe {
                        libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
                    }
                }
                self.apply_fd(&file, &meta, &shown)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fail("symlink without a target".into()))?
                    .into_owned();
                self.remove_existing(&parent, &name, false)
                    .map_err(|e| fail(e.to_string()))?;
                nix::unistd::symlinkat(OsStr::from_bytes(&target), &parent, name.as_os_str())
                    .map_err(|e| fail(format!("symlink: {e}")))?;
                self.apply_at(&parent, &name, &meta, &shown)?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| fail("hardlink without a target".into()))?
                    .into_owned();
                let tcomps = entry_components(Path::new(OsStr::from_bytes(&target)))
                    .map_err(|r| fail(format!("hardlink target: {r}")))?;
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(fail("hardlink to the layer root".into()));
                };
                let tparent_fd = self
                    .open_beneath(tparent)
                    .map_err(|e| fail(format!("hardlink target: {}", describe(e))))?;
                if tcomps == comps {
                    return Ok(());
                }
                self.remove_existing(&parent, &name, false)
                    .map_err(|e| fail(e.to_string()))?;
                nix::unistd::linkat(
                    &tparent_fd,
                    tname.as_os_str(),
                    &parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )
                .map_err(|e| fail(format!("hardlink to {}: {e}", shown_name(&target))))?;
            }
            T::Fifo | T::Char | T::Block => {
                self.remove_existing(&parent, &name, false)
                    .map_err(|e| fail(e.to_string()))?;
                let (sflag, dev) = match kind {
                    T::Fifo => (SFlag::S_IFIFO, 0),
                    _ => {
                        let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                        let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                        let f = if kind == T::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        (f, nix::sys::stat::makedev(major as u64, minor as u64))
                    }
                };
                match nix::sys::stat::mknodat(
                    &parent,
                    name.as_os_str(),
                    sflag,
                    Mode::from_bits_truncate(meta.mode & 0o777),
                    dev,
                ) {
                    Ok(()) => self.apply_at(&parent, &name, &meta, &shown)?,
                    Err(Errno::EPERM) | Err(Errno::EACCES) if kind != T::Fifo => {
                        self.stats.warnings.push(format!(
                            "skipped device node {shown}: device nodes cannot be created rootless"
                        ));
                    }
                    Err(e) => return Err(fail(format!("mknod: {e}"))),
                }
            }
            other => {
                self.stats.notes.push(format!(
                    "skipped {shown}: unsupported tar entry type {other:?}"
                ));
            }
        }
        Ok(())
    }

    /// Open (creating missing directories) the parent directory `comps` beneath the root.
    fn parent(&mut self, comps: &[OsString]) -> Result<OwnedFd, String> {
        if let Some((c, fd)) = &self.cache
            && c.as_slice() == comps
        {
            return fd.try_clone().map_err(|e| e.to_string());
        }
        let fd = match self.open_beneath(comps) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => self.mkdir_p(comps).map_err(describe)?,
            Err(e) => return Err(describe(e)),
        };
        self.cache = Some((comps.to_vec(), fd.try_clone().map_err(|e| e.to_string())?));
        Ok(fd)
    }

    /// Open the directory `comps` beneath the root without following any symlink.
    fn open_beneath(&self, comps: &[OsString]) -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        if comps.is_empty() {
            return self.root.try_clone().map_err(|_| Errno::EMFILE);
        }
        if !NO_OPENAT2.load(Ordering::Relaxed) {
            let mut joined = OsString::new();
            for (i, c) in comps.iter().enumerate() {
                if i > 0 {
                    joined.push("/");
                }
                joined.push(c);
            }
            use nix::fcntl::{OpenHow, ResolveFlag};
            let how = OpenHow::new().flags(flags).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_XDEV,
            );
            match nix::fcntl::openat2(&self.root, joined.as_os_str(), how) {
                Err(Errno::ENOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                Err(Errno::EAGAIN) => {} // a concurrent rename; walk by hand
                other => return other,
            }
        }
        let mut cur = self.root.try_clone().map_err(|_| Errno::EMFILE)?;
        for c in comps {
            cur = nix::fcntl::openat(&cur, c.as_os_str(), flags, Mode::empty())?;
        }
        Ok(cur)
    }

    fn mkdir_p(&self, comps: &[OsString]) -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let mut cur = self.root.try_clone().map_err(|_| Errno::EMFILE)?;
        for c in comps {
            match nix::sys::stat::mkdirat(&cur, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            cur = nix::fcntl::openat(&cur, c.as_os_str(), flags, Mode::empty())?;
        }
        Ok(cur)
    }

    /// Make room for a new entry `name` in `parent`. Returns true when a directory is
    /// there and `keep_dir` asked to keep it.
    fn remove_existing(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        keep_dir: bool,
    ) -> io::Result<bool> {
        let st = match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(errno_io(e)),
        };
        let is_dir = (st.st_mode & libc::S_IFMT) == libc::S_IFDIR;
        if is_dir && keep_dir {
            return Ok(true);
        }
        self.cache = None;
        if is_dir {
            remove_all_at(parent, name)?;
        } else {
            nix::unistd::unlinkat(parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                .map_err(errno_io)?;
        }
        Ok(false)
    }

    /// An owner the user namespace cannot map (EINVAL) is no error with
    /// `ignore_chown_errors`: the file stays the user's own.
    fn chown_result(&self, r: nix::Result<()>) -> nix::Result<()> {
        match r {
            Err(Errno::EINVAL) if self.opts.ignore_chown_errors => Ok(()),
            r => r,
        }
    }

    fn chown_err(&self, e: Errno, meta: &Meta) -> String {
        if e == Errno::EINVAL {
            format!(
                "owned by {}:{}, which is outside your subordinate id range (add a larger range to /etc/subuid and /etc/subgid)",
                meta.uid, meta.gid
            )
        } else {
            format!("chown {}:{}: {e}", meta.uid, meta.gid)
        }
    }

    /// Ownership, mode, xattrs and times for an open regular file or directory.
    fn apply_fd<F: AsFd>(&mut self, fd: F, meta: &Meta, shown: &str) -> Result<(), Error> {
        let fail = |reason: String| Error::Entry {
            entry: shown.to_string(),
            reason,
        };
        if self.opts.chown {
            let r = nix::unistd::fchown(
                &fd,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            );
            self.chown_result(r)
                .map_err(|e| fail(self.chown_err(e, meta)))?;
        }
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(meta.mode & 0o7777))
            .map_err(|e| fail(format!("chmod: {e}")))?;
        for (k, v) in &meta.xattrs {
            self.set_xattr(fd.as_fd(), k, v, shown);
        }
        nix::sys::stat::futimens(&fd, &meta.mtime, &meta.mtime)
            .map_err(|e| fail(format!("set times: {e}")))?;
        Ok(())
    }

    /// Ownership, mode and times for a symlink, fifo or device (by name, no follow).
    fn apply_at(
        &mut self,
        parent: &OwnedFd,
        name: &OsStr,
        meta: &Meta,
        shown: &str,
    ) -> Result<(), Error> {
        let fail = |reason: String| Error::Entry {
            entry: shown.to_string(),
            reason,
        };
        if self.opts.chown {
            let r = nix::unistd::fchownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            );
            self.chown_result(r)
                .map_err(|e| fail(self.chown_err(e, meta)))?;
        }
        let st = nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| fail(format!("stat: {e}")))?;
        if (st.st_mode & libc::S_IFMT) != libc::S_IFLNK {
            nix::sys::stat::fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(meta.mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| fail(format!("chmod: {e}")))?;
        }
        nix::sys::stat::utimensat(
            parent,
            name,
            &meta.mtime,
            &meta.mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| fail(format!("set times: {e}")))?;
        Ok(())
    }

    fn set_xattr(
        &mut self,
        fd: std::os::fd::BorrowedFd<'_>,
        key: &[u8],
        value: &[u8],
        shown: &str,
    ) {
        let key_s = shown_name(key);
        // Overlay's own metadata must come from whiteout markers, never from an image.
        if key.starts_with(b"trusted.")
            || key.starts_with(b"user.overlay.")
            || key.starts_with(b"user.fuseoverlayfs.")
        {
            self.stats
                .notes
                .push(format!("{shown}: dropped xattr {key_s}"));
            return;
        }
        let Ok(ckey) = CString::new(key) else {
            return;
        };
        // SAFETY: valid fd, NUL-terminated key, value pointer/len from a slice.
        let r = unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                ckey.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            let msg = format!("{shown}: cannot set xattr {key_s}: {e}");
            if key.starts_with(b"user.") {
                self.stats.warnings.push(msg);
            } else {
                self.stats.notes.push(msg);
            }
        }
    }

    /// Directory metadata last, deepest first, so mtimes survive their contents.
    pub(super) fn finish_dirs(&mut self) -> Result<(), Error> {
        let mut dirs = std::mem::take(&mut self.dirs);
        // Later entries for the same directory win; keep the last one of each.
        let mut seen = HashSet::new();
        dirs.reverse();
        dirs.retain(|d| seen.insert(d.comps.clone()));
        dirs.sort_by_key(|d| std::cmp::Reverse(d.comps.len()));
        self.cache = None;
        for d in dirs {
            let shown = if d.comps.is_empty() {
                "./".to_string()
            } else {
                shown_name(PathBuf::from_iter(&d.comps).as_os_str().as_bytes())
            };
            let fd = match self.open_beneath(&d.comps) {
                Ok(fd) => fd,
                // Replaced by a later non-directory entry, or removed by a whiteout.
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => continue,
                Err(e) => {
                    return Err(Error::Entry {
                        entry: shown,
                        reason: describe(e),
                    });
                }
            };
            self.apply_fd(&fd, &d.meta, &shown)?;
        }
        Ok(())
    }
}

fn describe(e: Errno) -> String {
    match e {
        Errno::ELOOP | Errno::EXDEV => {
            "a parent directory is a symlink; refusing to write through it".into()
        }
        Errno::ENOTDIR => {
            "a parent is a symlink or not a directory; refusing to write through it".into()
        }
        Errno::ENOENT => "no such file or directory in the layer".into(),
        e => e.to_string(),
    }
}

/// Remove `name` in `parent` recursively without following symlinks.
fn remove_all_at(parent: &OwnedFd, name: &OsStr) -> io::Result<()> {
    let fd = nix::fcntl::openat(
        parent,
        name,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(errno_io)?;
    let children: Vec<(OsString, bool)> = {
        let mut dir = nix::dir::Dir::from_fd(fd.try_clone()?).map_err(errno_io)?;
        dir.iter()
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name().to_bytes();
                n != b"." && n != b".."
            })
            .map(|e| {
                (
                    OsStr::from_bytes(e.file_name().to_bytes()).to_os_string(),
                    e.file_type() == Some(nix::dir::Type::Directory),
                )
            })
            .collect()
    };
    for (child, is_dir) in children {
        if is_dir {
            remove_all_at(&fd, &child)?;
        } else {
            nix::unistd::unlinkat(
                &fd,
                child.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map_err(errno_io)?;
        }
    }
    nix::unistd::unlinkat(parent, name, nix::unistd::UnlinkatFlags::RemoveDir).map_err(errno_io)
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode().unwrap_or(0o644),
        uid: h.uid().unwrap_or(0),
        gid: h.gid().unwrap_or(0),
        mtime: TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0),
        xattrs: Vec::new(),
    };
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            let key = ext.key_bytes();
            let value = ext.value_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                meta.xattrs.push((name.to_vec(), value.to_vec()));
                continue;
            }
            let num = || std::str::from_utf8(value).ok().map(str::trim);
            match key {
                b"uid" => {
                    if let Some(v) = num().and_then(|s| s.parse().ok()) {
                        meta.uid = v;
                    }
                }
                b"gid" => {
                    if let Some(v) = num().and_then(|s| s.parse().ok()) {
                        meta.gid = v;
                    }
                }
                b"mtime" => {
                    if let Some(s) = num() {
                        let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
                        if let Ok(secs) = secs.parse::<i64>() {
                            let mut nanos: String = frac.chars().take(9).collect();
                            while nanos.len() < 9 {
                                nanos.push('0');
                            }
                            let nanos = nanos.parse::<i64>().unwrap_or(0);
                            meta.mtime = TimeSpec::new(secs, nanos);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if meta.uid > u32::MAX as u64 || meta.gid > u32::MAX as u64 {
        return Err(io::Error::other("uid or gid out of range"));
    }
    Ok(meta)
}
