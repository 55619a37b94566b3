//! A directory tree as a tar stream (see the module doc). Every step is one name
//! relative to an open directory, opened with `O_NOFOLLOW`: a container changing its
//! files while they are written can make the archive inconsistent, never make it read a
//! file outside the tree.
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use flate2::Compression;
use flate2::write::GzEncoder;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode as FileMode, fstat, fstatat};
use sha2::Digest;
use tar::{EntryType, Header};

use super::{Error, io_err, sys_err};
use crate::storage::hash_writer::HashWriter as Hashing;
use crate::storage::whiteout::{OCI_OPAQUE_MARKER, OCI_WHITEOUT_PREFIX, is_opaque_fd};

/// What the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An overlay upper directory, written as an OCI layer.
    Layer,
    /// A merged root filesystem, as the container sees it: other mounts on it (/proc,
    /// /dev, volumes) appear as empty directories.
    Export,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub mode: Mode,
    /// Clamp every mtime to this Unix time (`--timestamp`, SOURCE_DATE_EPOCH).
    pub timestamp: Option<u64>,
}

/// Files box creates in the root filesystem as mount targets (for its bind mounts): an
/// empty one in an upper directory is box's, not the container's, and stays out of a layer.
const MOUNT_TARGETS: &[&str] = &[
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "run/.containerenv",
];

/// What [`write_layer`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digests {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// `sha256:` of the gzip blob.
    pub digest: String,
    /// Bytes of the gzip blob.
    pub size: u64,
}

fn hashing<W>(inner: W) -> Hashing<W> {
    Hashing::new(inner)
}

/// Write the tree at `root` as a gzip-compressed tar into `out`, computing the diff_id
/// and the blob digest on the way.
pub fn write_layer(root: BorrowedFd, out: File, opts: &Options) -> Result<Digests, Error> {
    let blob = hashing(io::BufWriter::with_capacity(256 * 1024, out));
    let tar = hashing(GzEncoder::new(blob, Compression::default()));
    let tar = write_tree(root, tar, opts)?;
    let diff_id = format!("sha256:{}", hex::encode(tar.hash.finalize()));
    let blob = tar.inner.finish().map_err(io_err("compress the layer"))?;
    let digest = format!("sha256:{}", hex::encode(blob.hash.finalize()));
    let file = blob
        .inner
        .into_inner()
        .map_err(|e| io_err("write the layer")(e.into_error()))?;
    file.sync_all().map_err(io_err("write the layer"))?;
    Ok(Digests {
        diff_id,
        digest,
        size: blob.n,
    })
}

/// Write the tree at `root` as a tar stream into `out`; returns `out` once the archive is
/// finished.
pub fn write_tree<W: Write>(root: BorrowedFd, out: W, opts: &Options) -> Result<W, Error> {
    let dir = openat(
        root,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        FileMode::empty(),
    )
    .map_err(sys_err("open the root directory"))?;
    let mut w = Walker {
        tar: tar::Builder::new(out),
        opts: *opts,
        links: HashMap::new(),
        root_mnt: mount_id(dir.as_fd()),
    };
    w.tar.follow_symlinks(false);
    w.dir(&dir, OsStr::new(""))?;
    w.tar.into_inner().map_err(io_err("write the archive"))
}

struct Walker<W: Write> {
    tar: tar::Builder<W>,
    opts: Options,
    /// (dev, ino) → the path first written, for hard links.
    links: HashMap<(u64, u64), OsString>,
    root_mnt: Option<u64>,
}

/// The names in a directory, sorted by bytes.
fn list(dir: &OwnedFd, shown: &str) -> Result<Vec<OsString>, Error> {
    let dup = dir
        .try_clone()
        .map_err(io_err(format!("read directory /{shown}")))?;
    let mut d = nix::dir::Dir::from_fd(dup).map_err(sys_err(format!("read directory /{shown}")))?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e.map_err(sys_err(format!("read directory /{shown}")))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

fn mount_id(fd: BorrowedFd) -> Option<u64> {
    // SAFETY: statx writes into `buf`; the path is a valid empty C string.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut buf,
        )
    };
    (r == 0 && buf.stx_mask & libc::STATX_MNT_ID != 0).then_some(buf.stx_mnt_id)
}

/// The xattrs of an open file worth keeping (overlay's own bookkeeping is dropped).
fn xattrs(fd: BorrowedFd) -> Vec<(String, Vec<u8>)> {
    let raw = fd.as_raw_fd();
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::flistxattr(raw, names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(s) = std::str::from_utf8(name) else {
            continue;
        };
        if ["user.overlay.", "trusted.overlay.", "user.fuseoverlayfs."]
            .iter()
            .any(|p| s.starts_with(p))
        {
            continue;
        }
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let mut val = vec![0u8; 64 * 1024];
        // SAFETY: the buffer is valid for its length; cname is NUL-terminated.
        let n = unsafe { libc::fgetxattr(raw, cname.as_ptr(), val.as_mut_ptr().cast(), val.len()) };
        if n >= 0 {
            val.truncate(n as usize);
            out.push((s.to_string(), val));
        }
    }
    out.sort();
    out
}

impl<W: Write> Walker<W> {
    fn header(&self, st: &FileStat, kind: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        let mtime = st.st_mtime.max(0) as u64;
        h.set_mtime(self.opts.timestamp.map_or(mtime, |t| mtime.min(t)));
        h.set_size(0);
        h
    }

    /// An empty regular file owned by root: a whiteout or the opaque marker.
    fn marker(&mut self, st: &FileStat, path: &OsStr) -> Result<(), Error> {
        let mut h = self.header(st, EntryType::Regular);
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_gid(0);
        self.append(&mut h, path, io::empty())
    }

    fn append(&mut self, h: &mut Header, path: &OsStr, data: impl Read) -> Result<(), Error> {
        self.tar
            .append_data(h, path, data)
            .map_err(io_err(format!("write /{}", path.to_string_lossy())))
    }

    fn pax(&mut self, attrs: &[(String, Vec<u8>)], path: &OsStr) -> Result<(), Error> {
        if attrs.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = attrs
            .iter()
            .map(|(k, _)| format!("SCHILY.xattr.{k}"))
            .collect();
        self.tar
            .append_pax_extensions(
                keys.iter()
                    .map(String::as_str)
                    .zip(attrs.iter().map(|(_, v)| v.as_slice())),
            )
            .map_err(io_err(format!("write /{}", path.to_string_lossy())))
    }

    fn dir(&mut self, dir: &OwnedFd, prefix: &OsStr) -> Result<(), Error> {
        for name in list(dir, &prefix.to_string_lossy())? {
            let mut path = OsString::from(prefix);
            path.push(&name);
            let shown = path.to_string_lossy().into_owned();
            let st = match fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Removed meanwhile (a running container).
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(sys_err(format!("stat /{shown}"))(e)),
            };
            match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => self.subdir(dir, &name, &path)?,
                libc::S_IFREG
                    if self.opts.mode == Mode::Layer
                        && st.st_size == 0
                        && MOUNT_TARGETS
                            .iter()
                            .any(|t| path.as_bytes() == t.as_bytes()) => {}
                libc::S_IFREG => self.file(dir, &name, &path, &st)?,
                libc::S_IFLNK => {
                    let target = readlinkat(dir, name.as_os_str())
                        .map_err(sys_err(format!("read the link /{shown}")))?;
                    let mut h = self.header(&st, EntryType::Symlink);
                    self.tar
                        .append_link(&mut h, &path, &target)
                        .map_err(io_err(format!("write /{shown}")))?;
                }
                libc::S_IFCHR if st.st_rdev == 0 && self.opts.mode == Mode::Layer => {
                    let mut wh = OsString::from(prefix);
                    wh.push(OCI_WHITEOUT_PREFIX);
                    wh.push(&name);
                    self.marker(&st, &wh)?;
                }
                kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                    let t = match kind {
                        libc::S_IFCHR => EntryType::Char,
                        libc::S_IFBLK => EntryType::Block,
                        _ => EntryType::Fifo,
                    };
                    let mut h = self.header(&st, t);
                    if kind != libc::S_IFIFO {
                        let rdev = st.st_rdev;
                        let _ = h.set_device_major(libc::major(rdev));
                        let _ = h.set_device_minor(libc::minor(rdev));
                    }
                    self.append(&mut h, &path, io::empty())?;
                }
                _ => {} // sockets are not archived
            }
        }
        Ok(())
    }

    fn subdir(&mut self, dir: &OwnedFd, name: &OsStr, path: &OsStr) -> Result<(), Error> {
        let shown = path.to_string_lossy();
        let fd = match openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FileMode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(sys_err(format!("open /{shown}"))(e)),
        };
        let st = fstat(&fd).map_err(sys_err(format!("stat /{shown}")))?;
        let mut h = self.header(&st, EntryType::Directory);
        self.pax(&xattrs(fd.as_fd()), path)?;
        let mut with_slash = path.to_os_string();
        with_slash.push("/");
        self.append(&mut h, &with_slash, io::empty())?;
        match self.opts.mode {
            Mode::Export if mount_id(fd.as_fd()) != self.root_mnt => return Ok(()),
            Mode::Layer if is_opaque_fd(&fd) => {
                let mut m = with_slash.clone();
                m.push(OCI_OPAQUE_MARKER);
                self.marker(&st, &m)?;
            }
            _ => {}
        }
        self.dir(&fd, &with_slash)
    }

    fn file(
        &mut self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &OsStr,
        st: &FileStat,
    ) -> Result<(), Error> {
        let shown = path.to_string_lossy().into_owned();
        let key = (st.st_dev, st.st_ino);
        if st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = self.header(st, EntryType::Link);
                return self
                    .tar
                    .append_link(&mut h, path, &first)
                    .map_err(io_err(format!("write /{shown}")));
            }
            self.links.insert(key, path.to_os_string());
        }
        let fd = match openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            FileMode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(sys_err(format!("open /{shown}"))(e)),
        };
        let st = fstat(&fd).map_err(sys_err(format!("stat /{shown}")))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::Invalid(format!(
                "/{shown} changed while it was archived: try again (or use --pause)"
            )));
        }
        let mut h = self.header(&st, EntryType::Regular);
        let size = st.st_size.max(0) as u64;
        h.set_size(size);
        self.pax(&xattrs(fd.as_fd()), path)?;
        // A file that shrinks meanwhile is padded, one that grows is cut: the header's
        // size is what is written.
        let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
        self.append(&mut h, path, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn layer(root: &std::path::Path, ts: Option<u64>) -> (Digests, Vec<(String, EntryType, u64)>) {
        let out = root.parent().unwrap().join("blob");
        let fd = nix::fcntl::open(root, OFlag::O_RDONLY, FileMode::empty()).unwrap();
        let opts = Options {
            mode: Mode::Layer,
            timestamp: ts,
        };
        let d = write_layer(fd.as_fd(), File::create(&out).unwrap(), &opts).unwrap();
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&out).unwrap()));
        let entries = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.entry_type(),
                    h.mtime().unwrap(),
                )
            })
            .collect();
        (d, entries)
    }

    #[test]
    fn whiteouts_opaque_links_sorted_and_reproducible() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("upper");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("opq")).unwrap();
        fs::write(root.join("b"), "b").unwrap();
        fs::write(root.join("a"), "a").unwrap();
        fs::hard_link(root.join("a"), root.join("c")).unwrap();
        std::os::unix::fs::symlink("a", root.join("l")).unwrap();
        let whiteout = nix::sys::stat::mknod(
            &root.join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            FileMode::from_bits_truncate(0o600),
            0,
        )
        .is_ok();
        let opaque =
            crate::storage::whiteout::set_opaque(File::open(root.join("opq")).unwrap()).is_ok();
        let (d1, entries) = layer(&root, Some(1000));
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        let mut want = vec!["a", "b", "c", "etc/"];
        if whiteout {
            want.push("etc/.wh.motd");
        }
        want.extend(["l", "opq/"]);
        if opaque {
            want.push("opq/.wh..wh..opq");
        }
        assert_eq!(names, want);
        assert_eq!(entries[2].1, EntryType::Link, "c is a hard link to a");
        assert!(entries.iter().all(|e| e.2 <= 1000), "mtimes clamped");
        let (d2, _) = layer(&root, Some(1000));
        assert_eq!(d1, d2, "the same tree gives the same blob");
    }
}
