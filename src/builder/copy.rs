//! COPY and ADD: the sources, found beneath a root directory (the build context, or
//! another stage's or image's root), become a list of tar entries keyed by their path in
//! the image, then one layer tar: sorted, owners as container ids, mtimes clamped.
//!
//! Every lookup goes through a directory fd: a source is opened with `openat2`
//! `RESOLVE_BENEATH` (a symlink escaping the context fails with EXDEV) or, in a stage's
//! root, `RESOLVE_IN_ROOT`; directories are walked one `O_NOFOLLOW` name at a time, and
//! symlinks inside them are copied as symlinks.
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use flate2::Compression;
use flate2::write::GzEncoder;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use crate::build::ignore::Ignore;
use crate::storage::hash_writer::HashWriter;
use crate::storage::layer::Digests;

/// How sources are looked up beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// The build context: nothing may lead outside it.
    Context,
    /// A container root: absolute symlinks resolve inside it.
    Image,
}

/// What an entry holds.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    Dir,
    /// A regular file beneath the root (components); symlinks are followed (beneath the
    /// root) in the first `prefix` components only: the source as named on the line.
    File {
        rel: Vec<OsString>,
        prefix: usize,
    },
    Bytes(Vec<u8>),
    Symlink(Vec<u8>),
    /// A hard link to another entry of the layer (from an ADDed archive).
    Link(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub data: Data,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
}

/// The layer's entries by path in the image (no leading `/`), sorted.
pub(crate) type Entries = BTreeMap<String, Entry>;

/// One COPY or ADD.
pub(crate) struct Request<'a> {
    /// Source paths as written (after expansion), relative to the root.
    pub sources: &'a [String],
    /// Absolute destination; a trailing `/` means a directory.
    pub dest: &'a str,
    /// Whether a path is a directory in the image being built.
    pub is_dir_in_image: &'a dyn Fn(&str) -> bool,
    /// Whether a path exists in the image being built.
    pub exists_in_image: &'a dyn Fn(&str) -> bool,
    /// `--chown` as numbers; none: root for context files, the source's owner otherwise.
    pub chown: Option<(u64, u64)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
    /// ADD: local tar archives are extracted.
    pub extract: bool,
    pub ignore: Option<&'a Ignore>,
    pub root: Root,
    /// What errors call the root ("the build context", "stage builder").
    pub root_name: &'a str,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Clean a path relative to the root; `..` leading outside it is refused.
fn components(path: &str, root_name: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(format!(
                        "{path}: the path is outside {root_name}: name a file inside it"
                    ));
                }
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

/// shell-style match of one path element (`*`, `?`, `[a-z]`, `[!x]`, `\x`).
pub(crate) fn fnmatch(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| fnmatch(&pat[1..], &name[i..])),
        Some(b'?') => !name.is_empty() && fnmatch(&pat[1..], &name[1..]),
        Some(b'[') => {
            let Some(c) = name.first() else { return false };
            let mut i = 1;
            let negated = matches!(pat.get(1), Some(b'!' | b'^'));
            if negated {
                i += 1;
            }
            let mut hit = false;
            let start = i;
            while i < pat.len() && (pat[i] != b']' || i == start) {
                if i + 2 < pat.len() && pat[i + 1] == b'-' && pat[i + 2] != b']' {
                    hit |= pat[i] <= *c && *c <= pat[i + 2];
                    i += 3;
                } else {
                    hit |= pat[i] == *c;
                    i += 1;
                }
            }
            if i >= pat.len() {
                // No closing bracket: a literal `[`.
                return *c == b'[' && fnmatch(&pat[1..], &name[1..]);
            }
            hit != negated && fnmatch(&pat[i + 1..], &name[1..])
        }
        Some(b'\\') if pat.len() > 1 => {
            name.first() == Some(&pat[1]) && fnmatch(&pat[2..], &name[1..])
        }
        Some(p) => name.first() == Some(p) && fnmatch(&pat[1..], &name[1..]),
    }
}

fn open_dir_at(dir: BorrowedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn list(dir: &OwnedFd) -> nix::Result<Vec<OsString>> {
    let mut d = nix::dir::Dir::from_fd(dir.try_clone().map_err(|_| Errno::EMFILE)?)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Expand the globs of one source into the paths (cleaned components) that exist.
fn expand_glob(root: BorrowedFd, comps: &[String], ignore: Option<&Ignore>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = vec![Vec::new()];
    for c in comps {
        let mut next = Vec::new();
        for prefix in &found {
            if !has_glob(c) {
                let mut p = prefix.clone();
                p.push(c.clone());
                next.push(p);
                continue;
            }
            let dir = if prefix.is_empty() {
                root.try_clone_to_owned().ok()
            } else {
                open_path(
                    root,
                    prefix,
                    Root::Context,
                    OFlag::O_DIRECTORY | OFlag::O_RDONLY,
                )
                .ok()
            };
            let Some(dir) = dir else { continue };
            for n in list(&dir).unwrap_or_default() {
                if fnmatch(c.as_bytes(), n.as_bytes()) {
                    let mut p = prefix.clone();
                    p.push(n.to_string_lossy().into_owned());
                    if ignore.is_none_or(|i| !i.excluded(&p.join("/"))) {
                        next.push(p);
                    }
                }
            }
        }
        found = next;
    }
    found
}

/// Open `comps` beneath `root`, following symlinks only where they stay beneath it.
fn open_path(root: BorrowedFd, comps: &[String], how: Root, flags: OFlag) -> nix::Result<OwnedFd> {
    let path = if comps.is_empty() {
        ".".to_string()
    } else {
        comps.join("/")
    };
    let resolve = match how {
        Root::Context => ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        Root::Image => ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(resolve);
    loop {
        match openat2(root, path.as_str(), how) {
            Err(Errno::EAGAIN) => continue,
            other => return other,
        }
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Parent of an image path (`a/b` → `a`, `a` → ``).
fn parent(p: &str) -> &str {
    p.rfind('/').map_or("", |i| &p[..i])
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

struct Collector<'a> {
    root: BorrowedFd<'a>,
    req: &'a Request<'a>,
    entries: Entries,
    /// sha256 over names, modes, owners, link targets and contents (the cache's content
    /// digest).
    hash: Sha256,
}

/// Collect the entries a COPY or ADD adds. Errors are one line, without `file:line`.
pub(crate) fn collect(root: BorrowedFd, req: &Request) -> Result<(Entries, String), String> {
    let mut c = Collector {
        root,
        req,
        entries: Entries::new(),
        hash: Sha256::new(),
    };
    let mut sources: Vec<(String, Vec<String>)> = Vec::new();
    for s in req.sources {
        let comps = components(s, req.root_name)?;
        if has_glob(s) {
            let found = expand_glob(root, &comps, req.ignore);
            if found.is_empty() {
                return Err(format!("{s}: no file in {} matches", req.root_name));
            }
            sources.extend(found.into_iter().map(|f| (s.clone(), f)));
        } else {
            sources.push((s.clone(), comps));
        }
    }
    let dest_clean = components(req.dest, "the image")?.join("/");
    let dest_is_dir = req.dest.ends_with('/')
        || req.dest.ends_with("/.")
        || sources.len() > 1
        || dest_clean.is_empty()
        || (req.is_dir_in_image)(&dest_clean);
    for (written, comps) in &sources {
        let rel = comps.join("/");
        if req
            .ignore
            .is_some_and(|i| !rel.is_empty() && i.excluded(&rel))
        {
            return Err(format!(
                "{written}: excluded by {} (no such file in {})",
                req.ignore.and_then(|i| i.file.clone()).unwrap_or_default(),
                req.root_name
            ));
        }
        let fd = open_path(root, comps, req.root, OFlag::O_PATH).map_err(|e| match e {
            Errno::ENOENT | Errno::ENOTDIR => {
                format!("{written}: no such file or directory in {}", req.root_name)
            }
            Errno::EXDEV => format!(
                "{written}: a symlink leads outside {}: copy what it points to instead",
                req.root_name
            ),
            e => format!("{written}: {e}"),
        })?;
        let st = fstat(&fd).map_err(|e| format!("{written}: {e}"))?;
        match kind(&st) {
            SFlag::S_IFDIR => {
                let dir = open_path(root, comps, req.root, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
                    .map_err(|e| format!("{written}: {e}"))?;
                c.ensure_dir(&dest_clean, &st);
                c.walk(&dir, comps, comps.len(), &dest_clean)?;
            }
            SFlag::S_IFREG => {
                let name = comps.last().cloned().unwrap_or_default();
                let target = if dest_is_dir {
                    join(&dest_clean, &name)
                } else {
                    dest_clean.clone()
                };
                if req.extract && c.try_extract(comps, &dest_clean, written)? {
                    continue;
                }
                c.parents(&target);
                let rel = comps.iter().map(OsString::from).collect();
                c.add_file(target, &st, rel, comps.len())?;
            }
            _ => {
                return Err(format!(
                    "{written}: not a regular file or directory in {}",
                    req.root_name
                ));
            }
        }
    }
    let digest = format!("sha256:{}", hex::encode(c.hash.finalize()));
    Ok((c.entries, digest))
}

impl Collector<'_> {
    fn owner(&self, st: &FileStat) -> (u64, u64) {
        match (self.req.chown, self.req.root) {
            (Some(o), _) => o,
            (None, Root::Context) => (0, 0),
            (None, Root::Image) => (st.st_uid as u64, st.st_gid as u64),
        }
    }

    fn mode(&self, st: &FileStat) -> u32 {
        self.req.chmod.unwrap_or(st.st_mode & 0o7777)
    }

    fn insert(&mut self, path: String, e: Entry) {
        self.hash.update(path.as_bytes());
        self.hash.update(
            format!(
                "\0{:o}:{}:{}:{}\0",
                e.mode,
                e.uid,
                e.gid,
                match &e.data {
                    Data::Dir => "d".to_string(),
                    Data::Symlink(t) => format!("l{}", String::from_utf8_lossy(t)),
                    Data::Link(t) => format!("h{t}"),
                    _ => format!("f{}", e.size),
                }
            )
            .as_bytes(),
        );
        self.entries.insert(path, e);
    }

    /// Directories above `path` that the image lacks, created 0755 (owned as the copy).
    fn parents(&mut self, path: &str) {
        let mut missing = Vec::new();
        let mut p = parent(path);
        while !p.is_empty() && !self.entries.contains_key(p) && !(self.req.exists_in_image)(p) {
            missing.push(p.to_string());
            p = parent(p);
        }
        let (uid, gid) = self.req.chown.unwrap_or((0, 0));
        for m in missing.into_iter().rev() {
            self.insert(
                m,
                Entry {
                    data: Data::Dir,
                    mode: 0o755,
                    uid,
                    gid,
                    mtime: 0,
                    size: 0,
                },
            );
        }
    }

    /// The destination directory of a directory copy.
    fn ensure_dir(&mut self, dest: &str, st: &FileStat) {
        if dest.is_empty() || (self.req.exists_in_image)(dest) || self.entries.contains_key(dest) {
            return;
        }
        self.parents(dest);
        let (uid, gid) = self.owner(st);
        self.insert(
            dest.to_string(),
            Entry {
                data: Data::Dir,
                mode: self.req.chmod.unwrap_or(0o755),
                uid,
                gid,
                mtime: st.st_mtime.max(0) as u64,
                size: 0,
            },
        );
    }

    fn add_file(
        &mut self,
        target: String,
        st: &FileStat,
        rel: Vec<OsString>,
        prefix: usize,
    ) -> Result<(), String> {
        // The content goes into the cache digest.
        let mut f = self.open_file(&rel, prefix)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut h = Sha256::new();
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("read {target}: {e}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        self.hash.update(h.finalize());
        let (uid, gid) = self.owner(st);
        let e = Entry {
            data: Data::File { rel, prefix },
            mode: self.mode(st),
            uid,
            gid,
            mtime: st.st_mtime.max(0) as u64,
            size: st.st_size as u64,
        };
        self.insert(target, e);
        Ok(())
    }

    fn open_file(&self, rel: &[OsString], prefix: usize) -> Result<File, String> {
        open_rel(self.root, self.req.root, rel, prefix)
            .map_err(|e| format!("{}: {e}", rel.join(OsStr::new("/")).to_string_lossy()))
    }

    /// Walk the directory `dir` (at `comps` beneath the root) into `dest`.
    fn walk(
        &mut self,
        dir: &OwnedFd,
        comps: &[String],
        prefix: usize,
        dest: &str,
    ) -> Result<(), String> {
        let shown = comps.join("/");
        for name in list(dir).map_err(|e| format!("read {shown}: {e}"))? {
            let n = name.to_string_lossy().into_owned();
            let mut child: Vec<String> = comps.to_vec();
            child.push(n.clone());
            let rel = child.join("/");
            let st = fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| format!("{rel}: {e}"))?;
            let is_dir = kind(&st) == SFlag::S_IFDIR;
            if let Some(i) = self.req.ignore
                && i.matches(&rel, is_dir)
            {
                continue;
            }
            let excluded = self.req.ignore.is_some_and(|i| i.excluded(&rel));
            let target = join(dest, &n);
            let (uid, gid) = self.owner(&st);
            let mtime = st.st_mtime.max(0) as u64;
            match kind(&st) {
                SFlag::S_IFDIR => {
                    let sub = open_dir_at(dir.as_fd(), &name).map_err(|e| format!("{rel}: {e}"))?;
                    if !excluded {
                        self.insert(
                            target.clone(),
                            Entry {
                                data: Data::Dir,
                                mode: self.mode(&st),
                                uid,
                                gid,
                                mtime,
                                size: 0,
                            },
                        );
                    }
                    self.walk(&sub, &child, prefix, &target)?;
                }
                _ if excluded => {}
                SFlag::S_IFREG => {
                    let rel: Vec<OsString> = child.iter().map(OsString::from).collect();
                    self.add_file(target, &st, rel, prefix)?;
                }
                SFlag::S_IFLNK => {
                    let t = readlinkat(dir, name.as_os_str()).map_err(|e| format!("{rel}: {e}"))?;
                    self.insert(
                        target,
                        Entry {
                            data: Data::Symlink(t.as_bytes().to_vec()),
                            mode: 0o777,
                            uid,
                            gid,
                            mtime,
                            size: 0,
                        },
                    );
                }
                // Devices, fifos and sockets are not copied (as docker).
                _ => {}
            }
        }
        Ok(())
    }

    /// ADD of a local tar archive: its entries under `dest`. None when it is no archive.
    fn try_extract(&mut self, comps: &[String], dest: &str, written: &str) -> Result<bool, String> {
        let rel: Vec<OsString> = comps.iter().map(OsString::from).collect();
        let mut f = self.open_file(&rel, rel.len())?;
        let mut head = [0u8; 512];
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(format!("read {written}: {e}")),
            }
        }
        let head = &head[..n];
        let reader: Box<dyn Read> = {
            let f = self.open_file(&rel, rel.len())?;
            if head.starts_with(&[0x1f, 0x8b]) {
                Box::new(flate2::read::MultiGzDecoder::new(f))
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                Box::new(
                    zstd::stream::read::Decoder::new(f).map_err(|e| format!("{written}: {e}"))?,
                )
            } else if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z'])
            {
                // No decoder in box: the system's xz or bzip2 decompresses it.
                let tool = if head.starts_with(b"BZh") {
                    "bzip2"
                } else {
                    "xz"
                };
                let child = std::process::Command::new(tool)
                    .arg("-dc")
                    .stdin(f)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| {
                        format!("{written}: cannot run {tool} to decompress it ({e}): install {tool} or gzip the archive")
                    })?;
                Box::new(ChildReader(child))
            } else if head.len() >= 262 && &head[257..262] == b"ustar" {
                Box::new(f)
            } else {
                return Ok(false);
            }
        };
        // A compressed file that is not a tar is copied as it is.
        let mut ar = tar::Archive::new(reader);
        let entries = match ar.entries() {
            Ok(e) => e,
            Err(_) => return Ok(false),
        };
        let mut added = Vec::new();
        for e in entries {
            let mut e = e.map_err(|e| format!("{written}: not a readable tar archive: {e}"))?;
            let path = e.path_bytes().into_owned();
            let path = String::from_utf8_lossy(&path).into_owned();
            let clean = components(&path, written)
                .map_err(|_| format!("{written}: the archive entry {path:?} leads outside it"))?;
            if clean.is_empty() {
                continue;
            }
            let target = join(dest, &clean.join("/"));
            let h = e.header().clone();
            let (uid, gid) = self
                .req
                .chown
                .unwrap_or((h.uid().unwrap_or(0), h.gid().unwrap_or(0)));
            let mode = self.req.chmod.unwrap_or(h.mode().unwrap_or(0o644) & 0o7777);
            let mtime = h.mtime().unwrap_or(0);
            let data = match h.entry_type() {
                EntryType::Directory => Data::Dir,
                EntryType::Symlink => Data::Symlink(
                    e.link_name_bytes()
                        .map(|b| b.into_owned())
                        .unwrap_or_default(),
                ),
                EntryType::Link => {
                    let t = e
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let t = components(&t, written).map_err(|_| {
                        format!("{written}: the archive's hard link {path:?} leads outside it")
                    })?;
                    Data::Link(join(dest, &t.join("/")))
                }
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes)
                        .map_err(|err| format!("{written}: {path}: {err}"))?;
                    Data::Bytes(bytes)
                }
                _ => continue,
            };
            let size = match &data {
                Data::Bytes(b) => {
                    self.hash.update(Sha256::digest(b));
                    b.len() as u64
                }
                _ => 0,
            };
            added.push(target.clone());
            self.insert(
                target,
                Entry {
                    data,
                    mode,
                    uid,
                    gid,
                    mtime,
                    size,
                },
            );
        }
        let dest = dest.to_string();
        if !dest.is_empty()
            && !(self.req.exists_in_image)(&dest)
            && !self.entries.contains_key(&dest)
        {
            self.parents(&join(&dest, "x"));
        }
        for a in added {
            self.parents(&a);
        }
        Ok(true)
    }
}

/// The directories above the entries that the layer does not have yet: in an overlay
/// layer, a directory the tar leaves out would be made with default metadata and hide the
/// image's own (mode and owner of `/root`, say).
pub(crate) fn missing_parents(entries: &Entries) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for path in entries.keys() {
        let mut p = parent(path);
        while !p.is_empty() && !entries.contains_key(p) && out.insert(p.to_string()) {
            p = parent(p);
        }
    }
    out.into_iter().collect()
}

/// Add the directories `missing_parents` named: as the image has them, or new (0755,
/// root) where it has none; a non-directory there is left alone.
pub(crate) fn complete_parents(
    entries: &mut Entries,
    meta: &BTreeMap<String, Option<super::view::Meta>>,
) {
    for (p, m) in meta {
        let e = match m {
            Some(m) if m.is_dir => dir_entry(m.mode, (m.uid, m.gid), m.mtime),
            Some(_) => continue,
            None => dir_entry(0o755, (0, 0), 0),
        };
        entries.entry(p.clone()).or_insert(e);
    }
}

/// A decompressor's output; the process is waited for when dropped.
struct ChildReader(std::process::Child);

impl Read for ChildReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.stdout.as_mut() {
            Some(o) => o.read(buf),
            None => Ok(0),
        }
    }
}

impl Drop for ChildReader {
    fn drop(&mut self) {
        drop(self.0.stdout.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory entry (WORKDIR).
pub(crate) fn dir_entry(mode: u32, owner: (u64, u64), mtime: u64) -> Entry {
    Entry {
        data: Data::Dir,
        mode,
        uid: owner.0,
        gid: owner.1,
        mtime,
        size: 0,
    }
}

/// An entry for `content` (a COPY heredoc or an ADDed download) at `target`.
pub(crate) fn bytes_entry(content: Vec<u8>, mode: u32, owner: (u64, u64), mtime: u64) -> Entry {
    Entry {
        size: content.len() as u64,
        data: Data::Bytes(content),
        mode,
        uid: owner.0,
        gid: owner.1,
        mtime,
    }
}

/// Write `entries` as a gzip layer into `out`; regular files are read from beneath
/// `root` again.
pub(crate) fn write(
    root: BorrowedFd,
    how: Root,
    entries: &Entries,
    out: File,
    timestamp: Option<u64>,
) -> Result<Digests, String> {
    let blob = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, out));
    let tar = HashWriter::new(GzEncoder::new(blob, Compression::default()));
    let mut b = tar::Builder::new(tar);
    for (path, e) in entries {
        let mut h = Header::new_gnu();
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        h.set_mtime(timestamp.map_or(e.mtime, |t| e.mtime.min(t)));
        h.set_size(0);
        let failed = |err: io::Error| format!("write /{path}: {err}");
        match &e.data {
            Data::Dir => {
                h.set_entry_type(EntryType::Directory);
                b.append_data(&mut h, format!("{path}/"), io::empty())
                    .map_err(failed)?;
            }
            Data::Symlink(t) => {
                h.set_entry_type(EntryType::Symlink);
                b.append_link(&mut h, path, OsStr::from_bytes(t))
                    .map_err(failed)?;
            }
            Data::Link(t) => {
                h.set_entry_type(EntryType::Link);
                b.append_link(&mut h, path, t).map_err(failed)?;
            }
            Data::Bytes(bytes) => {
                h.set_entry_type(EntryType::Regular);
                h.set_size(bytes.len() as u64);
                b.append_data(&mut h, path, bytes.as_slice())
                    .map_err(failed)?;
            }
            Data::File { rel, prefix } => {
                let f = open_rel(root, how, rel, *prefix).map_err(|err| {
                    format!(
                        "open {}: {err}",
                        rel.join(OsStr::new("/")).to_string_lossy()
                    )
                })?;
                // The size when listed: a file that changed meanwhile is cut or padded
                // by the tar writer's length, never read past.
                h.set_entry_type(EntryType::Regular);
                h.set_size(e.size);
                b.append_data(
                    &mut h,
                    path,
                    f.take(e.size).chain(io::repeat(0)).take(e.size),
                )
                .map_err(failed)?;
            }
        }
    }
    let tar = b
        .into_inner()
        .map_err(|e| format!("write the layer: {e}"))?;
    let diff_id = format!("sha256:{}", hex::encode(tar.hash.finalize()));
    let blob = tar
        .inner
        .finish()
        .map_err(|e| format!("compress the layer: {e}"))?;
    let digest = format!("sha256:{}", hex::encode(blob.hash.finalize()));
    let file = blob
        .inner
        .into_inner()
        .map_err(|e| format!("write the layer: {}", e.into_error()))?;
    file.sync_all()
        .map_err(|e| format!("write the layer: {e}"))?;
    Ok(Digests {
        diff_id,
        digest,
        size: blob.n,
    })
}

/// Open a listed regular file again: beneath the root, no symlink followed except a
/// named source's own (which must stay beneath the root too).
fn open_rel(root: BorrowedFd, how: Root, rel: &[OsString], prefix: usize) -> nix::Result<File> {
    let comps: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let prefix = prefix.min(comps.len());
    let fd = if prefix == comps.len() {
        open_path(root, &comps, how, OFlag::O_RDONLY)?
    } else {
        let base = open_path(
            root,
            &comps[..prefix],
            how,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )?;
        let how2 = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        openat2(&base, comps[prefix..].join("/").as_str(), how2)?
    };
    let st = fstat(&fd)?;
    if kind(&st) != SFlag::S_IFREG {
        return Err(Errno::EINVAL);
    }
    Ok(File::from(fd))
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
