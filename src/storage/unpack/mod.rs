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
//!
//! Files: this one is the public API (`unpack`, `unpack_file`, the options, statistics and
//! name bounds); `writer.rs` writes the tar's entries beneath the layer root (openat2,
//! sparse files, whiteouts, ownership, xattrs); `helper.rs` is the `__internal unpack`
//! helper process and its JSON-lines protocol (`Job`, `JobResult`, `Unpacker`).
use std::cell::Cell;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};
use std::rc::Rc;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Error;
use writer::Writer;

mod helper;
mod writer;

pub use helper::{Job, JobResult, Unpacker, helper_main, serve, unpack_all};

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
    /// Unpack into `dest` although it exists (`volume import`); layers always go into a
    /// fresh directory, and an existing one is an error.
    pub into_existing: bool,
    /// `--storage-opt overlay.ignore_chown_errors=true`: an owner outside the user's
    /// subordinate ids leaves the file the user's own instead of failing.
    pub ignore_chown_errors: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            chown: true,
            sync: true,
            into_existing: false,
            ignore_chown_errors: false,
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

    match nix::unistd::mkdir(dest, Mode::from_bits_truncate(0o755)) {
        Err(nix::errno::Errno::EEXIST) if opts.into_existing => {}
        r => r.map_err(|e| Error::Io {
            what: format!("create {}", dest.display()),
            source: e.into(),
        })?,
    }
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
    let mut w = Writer::new(root, opts.clone(), consumed, free);
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
        nix::unistd::syncfs(w.root()).map_err(|e| Error::Io {
            what: format!("sync {}", dest.display()),
            source: e.into(),
        })?;
    }
    let mut stats = w.into_stats();
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

#[cfg(test)]
mod tests;
