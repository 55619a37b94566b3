//! Safe layer unpacking into overlay format.
//!
//! Every file is created relative to an fd of the layer's root directory: parents are
//! opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (or, without openat2, one
//! component at a time with `O_NOFOLLOW`), so no entry can write through a symlink or reach
//! outside the layer. Entries with `..` or absolute paths are rejected outright; hardlink
//! targets are resolved the same way. The sha256 of the uncompressed stream is checked
//! against the layer's diff_id at the end.
//!
//! Hostile input stays bounded: entry paths and link names longer than PATH_MAX are refused
//! before anything is built from them, and messages show at most 100 bytes of a name; GNU
//! sparse files are written sparse (their holes are never stream bytes), and a layer whose
//! files' apparent sizes add up to more than the free space of the store's filesystem is
//! refused before it fills the disk.
//!
//! OCI whiteouts become overlay whiteouts (see `whiteout`). Ownership is applied with
//! fchown, so unpacking inside the container's user namespace (the `__internal unpack`
//! helper) gives files the host ids `box run` expects.
use std::cell::Cell;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Error, whiteout};
use crate::units::binary_size;

/// How the blob is compressed (sniffed from its first bytes; media types lie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Options of one unpack.
#[derive(Debug, Clone)]
pub struct Options {
    /// Apply the tar's uid/gid (needs root in a user namespace or on the host).
    pub chown: bool,
    /// syncfs the layer before returning.
    pub sync: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chown: true,
            sync: true,
        }
    }
}

/// What an unpack produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// `sha256:<hex>` of the uncompressed tar.
    pub diff_id: String,
    /// Sum of regular file sizes.
    pub size: u64,
    /// Things the user should know (skipped device nodes).
    pub warnings: Vec<String>,
    /// Things only `--log-level debug` shows (xattrs that could not be set).
    pub notes: Vec<String>,
}

/// One job for the `__internal unpack` helper: a blob to unpack into `dest` (which must
/// not exist yet; it is created).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub blob: PathBuf,
    #[serde(default)]
    pub media_type: String,
    /// Expected `sha256:<hex>` of the uncompressed tar; empty to only compute it.
    pub diff_id: String,
    pub dest: PathBuf,
}

/// The helper's answer to one job (one JSON line on its stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    pub dest: PathBuf,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub stats: Stats,
}

/// The longest entry path or link name accepted (Linux's PATH_MAX): checked before
/// anything is built from a name, so a hostile name costs no more than its own bytes.
pub const PATH_MAX: usize = 4096;

/// How much of a long entry name an error or warning shows.
const SHOWN_MAX: usize = 100;

/// An entry name from a layer as messages show it: lossy UTF-8, and only its first
/// `SHOWN_MAX` bytes (then "…") so that every message stays one short line.
pub fn shown_name(name: &[u8]) -> String {
    if name.len() <= SHOWN_MAX + 20 {
        return String::from_utf8_lossy(name).into_owned();
    }
    format!(
        "{}… ({} bytes)",
        String::from_utf8_lossy(&name[..SHOWN_MAX]),
        name.len()
    )
}

struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    /// Bytes read from the stream so far. A read of a GNU sparse entry that does not move
    /// it was a hole, which tar-rs fills with zeros that are not in the stream.
    consumed: Rc<Cell<u64>>,
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.consumed.set(self.consumed.get() + n as u64);
        Ok(n)
    }
}

/// Unpack the blob file at `blob` into the new directory `dest`.
pub fn unpack_file(
    blob: &Path,
    dest: &Path,
    expected_diff_id: Option<&str>,
    opts: &Options,
) -> Result<Stats, Error> {
    let f = File::open(blob).map_err(|e| Error::Io {
        what: format!("open blob {}", blob.display()),
        source: e,
    })?;
    unpack(f, dest, expected_diff_id, opts)
}

/// Unpack a (gzip, zstd or plain) layer tar stream into the new directory `dest`.
pub fn unpack<R: Read>(
    reader: R,
    dest: &Path,
    expected_diff_id: Option<&str>,
    opts: &Options,
) -> Result<Stats, Error> {
    let io_ctx = |what: &str| {
        let what = what.to_string();
        move |source| Error::Io { what, source }
    };
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf().map_err(io_ctx("read layer"))?;
    let compression = Compression::sniff(head);
    let decoded: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(io_ctx("start zstd"))?,
        ),
        Compression::None => Box::new(buffered),
    };
    let consumed = Rc::new(Cell::new(0));
    let hashing = HashReader {
        inner: decoded,
        hasher: Sha256::new(),
        consumed: consumed.clone(),
    };

    nix::unistd::mkdir(dest, Mode::from_bits_truncate(0o755)).map_err(|e| Error::Io {
        what: format!("create {}", dest.display()),
        source: e.into(),
    })?;
    let root = nix::fcntl::open(
        dest,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        what: format!("open {}", dest.display()),
        source: e.into(),
    })?;

    // What the layer's files may add up to: the free space of the store's filesystem.
    let free = nix::sys::statvfs::fstatvfs(&root)
        .map(|st| st.blocks_available().saturating_mul(st.fragment_size()))
        .unwrap_or(u64::MAX);

    let mut archive = tar::Archive::new(hashing);
    let mut w = Writer {
        root,
        opts: opts.clone(),
        stats: Stats::default(),
        dirs: Vec::new(),
        cache: None,
        buf: vec![0u8; 128 * 1024],
        consumed,
        free,
        declared: 0,
    };
    {
        let entries = archive.entries().map_err(io_ctx("read layer tar"))?;
        for entry in entries {
            let mut entry = entry.map_err(io_ctx("read layer tar"))?;
            w.entry(&mut entry)?;
        }
    }
    w.finish_dirs()?;
    // Hash the rest of the stream (end-of-archive blocks, padding).
    let mut hashing = archive.into_inner();
    io::copy(&mut hashing, &mut io::sink()).map_err(io_ctx("read layer"))?;
    let actual = format!("sha256:{}", hex::encode(hashing.hasher.finalize()));
    if let Some(expected) = expected_diff_id.filter(|e| !e.is_empty())
        && expected != actual
    {
        return Err(Error::DiffIdMismatch {
            diff_id: expected.to_string(),
            actual,
        });
    }
    if opts.sync {
        nix::unistd::syncfs(&w.root).map_err(|e| Error::Io {
            what: format!("sync {}", dest.display()),
            source: e.into(),
        })?;
    }
    let mut stats = w.stats;
    stats.diff_id = actual;
    Ok(stats)
}

/// Split an entry path into normal components; `..`, absolute paths are errors.
pub fn entry_components(p: &Path) -> Result<Vec<OsString>, String> {
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute path".into());
            }
        }
    }
    Ok(out)
}

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

struct Writer {
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
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Error> {
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
                        binary_size(size),
                        binary_size(self.declared),
                        binary_size(self.free)
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
            nix::unistd::fchown(
                &fd,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
            )
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
            nix::unistd::fchownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
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
    fn finish_dirs(&mut self) -> Result<(), Error> {
        let mut dirs = std::mem::take(&mut self.dirs);
        // Later entries for the same directory win; keep the last one of each.
        let mut seen = std::collections::HashSet::new();
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

/// Body of `box __internal unpack`: enter the user namespace, then read one JSON `Job`
/// per line on stdin and answer one `JobResult` per line on stdout, working on up to
/// `workers` jobs at a time. Every `dest` must be under `<store>/tmp/`.
pub fn helper_main(store_root: &Path) -> Result<(), Error> {
    crate::userns::helper_enter()?;
    // The parent syncs the filesystem once for all layers before committing them.
    let opts = Options {
        sync: false,
        chown: std::env::var_os(SQUASH_ENV).is_none(),
    };
    serve(store_root, &opts)
}

/// The job loop of the helper (no namespace handling; tests call it directly).
pub fn serve(store_root: &Path, opts: &Options) -> Result<(), Error> {
    let tmp = store_root.join("tmp");
    // Unpacking waits on the filesystem more than on the CPU: as many workers as the
    // puller's download pool feeds (more than the cores), not one per core.
    let workers = 4;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = std::sync::Mutex::new(rx);
    let out = std::sync::Mutex::new(io::stdout());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let job = match rx.lock().map(|r| r.recv()) {
                        Ok(Ok(job)) => job,
                        _ => break,
                    };
                    let res = if !job.dest.starts_with(&tmp)
                        || job
                            .dest
                            .components()
                            .any(|c| matches!(c, Component::ParentDir))
                    {
                        Err(Error::Helper(format!(
                            "refusing to unpack into {}: not under {}",
                            job.dest.display(),
                            tmp.display()
                        )))
                    } else {
                        let expected = Some(job.diff_id.as_str()).filter(|d| !d.is_empty());
                        unpack_file(&job.blob, &job.dest, expected, opts)
                    };
                    let result = match res {
                        Ok(stats) => JobResult {
                            dest: job.dest,
                            ok: true,
                            error: None,
                            stats,
                        },
                        Err(e) => JobResult {
                            dest: job.dest,
                            ok: false,
                            error: Some(e.to_string()),
                            stats: Stats::default(),
                        },
                    };
                    if let Ok(line) = serde_json::to_string(&result)
                        && let Ok(mut o) = out.lock()
                    {
                        let _ = writeln!(o, "{line}");
                        let _ = o.flush();
                    }
                }
            });
        }
        let stdin = io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Job>(&line) {
                Ok(job) => {
                    if tx.send(job).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("box: unpack helper: bad job: {e}");
                }
            }
        }
        drop(tx);
    });
    Ok(())
}

/// The parent's side of the unpack helper: a `box __internal unpack` process root in a
/// user namespace mapped like `box run`'s (0 → you, 1.. → your subordinate ids).
///
/// Spawn it while the process is single-threaded; `submit` may then be called from any
/// thread, and `results` read from another.
pub struct Unpacker {
    child: std::process::Child,
    stdin: std::sync::Mutex<Option<std::process::ChildStdin>>,
    stdout: Option<std::process::ChildStdout>,
    /// Why the image's owners cannot be kept (the user has no subordinate ids): the helper
    /// maps only the user, and every file is stored as the user's own (root in a
    /// container) instead of its owner in the image.
    pub owners_squashed: Option<crate::userns::Error>,
}

/// Tells the helper to keep the owners the user namespace has (see `owners_squashed`).
const SQUASH_ENV: &str = "BOX_UNPACK_SQUASH_OWNERS";

impl Unpacker {
    pub fn spawn(store: &super::Store) -> Result<Unpacker, Error> {
        use crate::userns::{IdMaps, Mode};
        use std::process::Stdio;
        // Without subordinate ids the image's owners cannot be kept; `run --userns=single`
        // still works with such a store (podman's ignore_chown_errors).
        let (maps, owners_squashed) = match IdMaps::for_current_user(Mode::Auto) {
            Ok(m) => (m, None),
            Err(e @ crate::userns::Error::NoSubids { .. }) => {
                (IdMaps::for_current_user(Mode::Single)?, Some(e))
            }
            Err(e) => return Err(e.into()),
        };
        let mut cmd = crate::userns::helper_command(&["unpack"]);
        if owners_squashed.is_some() {
            cmd.env(SQUASH_ENV, "1");
        }
        cmd.env("BOX_ROOT", store.data_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = crate::userns::spawn_helper(&maps, cmd)?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        Ok(Unpacker {
            child,
            stdin: std::sync::Mutex::new(stdin),
            stdout,
            owners_squashed,
        })
    }

    /// Queue one job.
    pub fn submit(&self, job: &Job) -> Result<(), Error> {
        let line = serde_json::to_string(job).map_err(|e| Error::Helper(e.to_string()))?;
        let mut guard = self
            .stdin
            .lock()
            .map_err(|_| Error::Helper("unpack helper input poisoned".into()))?;
        let w = guard
            .as_mut()
            .ok_or_else(|| Error::Helper("unpack helper input already closed".into()))?;
        writeln!(w, "{line}")
            .and_then(|_| w.flush())
            .map_err(|e| Error::Helper(format!("the unpack helper died: {e}")))
    }

    /// Close the helper's input: it finishes the queued jobs and exits.
    pub fn close(&self) {
        if let Ok(mut g) = self.stdin.lock() {
            g.take();
        }
    }

    /// The helper's answers, one per submitted job, until it exits.
    pub fn take_results(&mut self) -> impl Iterator<Item = JobResult> + use<> {
        let out = self.stdout.take();
        out.into_iter().flat_map(|o| {
            BufReader::new(o)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str::<JobResult>(&l).ok())
        })
    }

    /// Wait for the helper to exit (closing its input first).
    pub fn wait(mut self) -> Result<(), Error> {
        self.close();
        let status = self.child.wait().map_err(|e| Error::Io {
            what: "wait for the unpack helper".into(),
            source: e,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Helper(format!(
                "the unpack helper failed ({status})"
            )))
        }
    }
}

/// Run `jobs` through a fresh helper and return their results (in completion order).
/// Single-threaded callers only (import, load).
pub fn unpack_all(store: &super::Store, jobs: &[Job]) -> Result<Vec<JobResult>, Error> {
    let mut u = Unpacker::spawn(store)?;
    let results = u.take_results();
    for j in jobs {
        u.submit(j)?;
    }
    u.close();
    let results: Vec<JobResult> = results.collect();
    u.wait()?;
    Ok(results)
}

#[cfg(test)]
mod tests;
