//! Per-user content-addressed store: blobs, image records, unpacked layers, locks.
//!
//! Layout under `<data>/storage/` (see docs/ARCHITECTURE.md):
//! ```text
//! storage.lock                 flock: shared for readers, exclusive for writers
//! blobs/sha256/<hex>           verified blobs (compressed layers, configs, manifests)
//! layers/<diff_id hex>/diff    one unpacked layer in overlay format (see `whiteout`)
//! layers/<diff_id hex>/layer.json
//! images/<config hex>.json     one `Image` record
//! tmp/                         every write starts here (names start with the writer's pid)
//! ```
//! The store lock is only held for short critical sections (renames and record updates);
//! downloads and unpacking happen outside it, and every commit rechecks presence under it.
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::paths::Paths;

pub mod archive;
pub mod check;
pub(crate) mod hash_writer;
pub mod inspect;
pub mod layer;
pub mod names;
pub mod pull;
pub mod push;
pub mod read;
pub mod remove;
pub mod unpack;
pub mod usage;
pub mod whiteout;

pub use crate::lock::FileLock;
use crate::lock::{self, Mode};
pub use inspect::inspect_image;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    #[error("image record {path} is corrupt: {reason} (run `box system check --repair`)")]
    Corrupt { path: PathBuf, reason: String },
    #[error("image not found: {0}")]
    NotFound(String),
    #[error("{0} matches more than one image: use more characters of the id or the full name")]
    Ambiguous(String),
    #[error("invalid image name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid digest {0:?}: expected sha256:<64 hex>")]
    InvalidDigest(String),
    #[error("layer entry {entry:?}: {reason}")]
    Entry { entry: String, reason: String },
    #[error("layer {diff_id}: the uncompressed content has digest {actual}, not its diff_id")]
    DiffIdMismatch { diff_id: String, actual: String },
    #[error("layer {diff_id}: {source}")]
    Layer { diff_id: String, source: Box<Error> },
    #[error("{0}")]
    Helper(String),
    #[error(transparent)]
    Userns(#[from] crate::userns::Error),
    #[error(
        "image {image} is missing layer {diff_id} (run `box system check --repair`, then pull it again)"
    )]
    MissingLayer { image: String, diff_id: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// A compressed layer as the registry (or an archive) described it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// One image record (`images/<id>.json`). The id is the hex of the config digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// 64 hex: sha256 of the config blob (docker's image id).
    pub id: String,
    /// Fully qualified `registry/repository:tag` names.
    #[serde(default)]
    pub names: Vec<String>,
    /// `registry/repository@sha256:...` for every repository it was pulled from.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Digest of the (platform-specific) manifest it was pulled with.
    #[serde(default)]
    pub manifest_digest: Option<String>,
    #[serde(default)]
    pub manifest_media_type: Option<String>,
    pub config: ImageConfiguration,
    /// Uncompressed layer digests, bottom to top.
    pub diff_ids: Vec<String>,
    /// The compressed layer blobs, parallel to `diff_ids` (empty for imported images).
    #[serde(default)]
    pub layers: Vec<LayerBlob>,
    /// Seconds since the epoch when the record was first written.
    #[serde(default)]
    pub stored: u64,
    /// Unpacked bytes of all layers.
    #[serde(default)]
    pub size: u64,
    /// `<store>/layers` of the store it was read from (not serialized).
    #[serde(skip)]
    pub layer_root: Option<PathBuf>,
}

impl Image {
    /// Which of this image's names `arg` (as typed: `alpine`, `myapp:1`) means, if any.
    pub fn name_given(&self, arg: &str) -> Option<String> {
        names::candidates(arg)
            .into_iter()
            .find(|n| self.names.contains(n))
    }

    /// `sha256:<id>`.
    pub fn digest_id(&self) -> String {
        format!("sha256:{}", self.id)
    }

    /// The first 12 hex of the id.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// The unpacked layer directories, bottom to top, ready for overlay `lowerdir` (which
    /// lists them top first: reverse this). A layer repeated in the image keeps only its
    /// topmost place, which gives the same union.
    pub fn layer_dirs(&self, store: &Store) -> Vec<PathBuf> {
        let mut seen = BTreeSet::new();
        let mut out: Vec<PathBuf> = Vec::new();
        for d in self.diff_ids.iter().rev() {
            if seen.insert(d.as_str()) {
                out.push(store.layer_diff(d));
            }
        }
        out.reverse();
        out
    }

    /// The config's creation time (RFC 3339), if any.
    pub fn created(&self) -> Option<String> {
        self.config.created().clone()
    }
}

/// What `layers/<hex>/layer.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerRecord {
    pub diff_id: String,
    /// Unpacked size (sum of file sizes).
    pub size: u64,
    /// The compressed blob it came from, when known.
    #[serde(default)]
    pub compressed_digest: Option<String>,
    #[serde(default)]
    pub created: u64,
}

/// The hex part of a `sha256:<hex>` digest, validated (it becomes a file name).
pub fn digest_hex(digest: &str) -> Result<&str, Error> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| Error::InvalidDigest(digest.to_string()))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(hex)
    } else {
        Err(Error::InvalidDigest(digest.to_string()))
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The per-user store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    data: PathBuf,
    lock_timeout: Duration,
}

impl Store {
    /// Open (creating when missing) the store of `paths`.
    pub fn open(paths: &Paths) -> Result<Store, Error> {
        crate::paths::ensure_private_dir(&paths.data).map_err(|e| Error::Io {
            what: "prepare the data directory".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Store::open_at(&paths.store(), &paths.data)
    }

    /// Open the store rooted at `root` (`data` is the directory helpers may touch).
    pub fn open_at(root: &Path, data: &Path) -> Result<Store, Error> {
        let store = Store {
            root: root.to_path_buf(),
            data: data.to_path_buf(),
            lock_timeout: lock::default_timeout(),
        };
        for dir in [
            store.root.clone(),
            store.root.join("blobs/sha256"),
            store.root.join("layers"),
            store.root.join("images"),
            store.root.join("tmp"),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err(format!("create {}", dir.display())))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The data directory the store lives in (the remove helper only works under it).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    /// `blobs/sha256/<hex>` for a digest (validated).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, Error> {
        Ok(self.blobs_dir().join(digest_hex(digest)?))
    }
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    /// `layers/<hex>` for a diff_id. Panics on nothing: an invalid digest maps to a path
    /// that never exists.
    pub fn layer_path(&self, diff_id: &str) -> PathBuf {
        match digest_hex(diff_id) {
            Ok(hex) => self.layers_dir().join(hex),
            Err(_) => self.layers_dir().join("invalid"),
        }
    }
    /// `layers/<hex>/diff`: the unpacked content.
    pub fn layer_diff(&self, diff_id: &str) -> PathBuf {
        self.layer_path(diff_id).join("diff")
    }
    /// Whether a layer is fully committed (layer.json is written before the rename).
    pub fn has_layer(&self, diff_id: &str) -> bool {
        digest_hex(diff_id).is_ok() && self.layer_path(diff_id).join("layer.json").is_file()
    }
    pub fn layer_record(&self, diff_id: &str) -> Option<LayerRecord> {
        let text = fs::read(self.layer_path(diff_id).join("layer.json")).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn lock_shared(&self) -> Result<FileLock, Error> {
        Ok(FileLock::acquire(
            &self.root.join("storage.lock"),
            Mode::Shared,
            self.lock_timeout,
        )?)
    }
    pub fn lock_exclusive(&self) -> Result<FileLock, Error> {
        Ok(FileLock::acquire(
            &self.root.join("storage.lock"),
            Mode::Exclusive,
            self.lock_timeout,
        )?)
    }
    /// A per-item work lock under tmp/ (e.g. one layer being downloaded and unpacked).
    pub fn lock_work(&self, key: &str) -> Result<FileLock, Error> {
        Ok(FileLock::acquire(
            &self.tmp_dir().join(format!("{key}.lock")),
            Mode::Exclusive,
            Duration::from_secs(3600),
        )?)
    }

    /// `lock_work` without waiting: `None` while another process holds it.
    pub fn try_lock_work(&self, key: &str) -> Result<Option<FileLock>, Error> {
        Ok(FileLock::try_acquire(
            &self.tmp_dir().join(format!("{key}.lock")),
            Mode::Exclusive,
        )?)
    }

    /// A fresh name under tmp/ owned by this process: `<pid>-<what>`.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        self.tmp_dir()
            .join(format!("{}-{}", std::process::id(), what))
    }

    /// Write `bytes` to `dest` atomically: tmp file, fsync, rename.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), Error> {
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.tmp_path(&format!("w-{name}-{}", unique()));
        let res = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, dest)?;
            if let Some(dir) = dest.parent() {
                let _ = fs::File::open(dir).and_then(|d| d.sync_all());
            }
            Ok(())
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res.map_err(io_err(format!("write {}", dest.display())))
    }

    /// Store a blob whose digest the caller verified (configs, manifests).
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, Error> {
        let dest = self.blob_path(digest)?;
        if !dest.is_file() {
            self.write_atomic(&dest, bytes)?;
        }
        Ok(dest)
    }

    pub(crate) fn image_path(&self, id: &str) -> PathBuf {
        self.images_dir().join(format!("{id}.json"))
    }

    fn read_image(&self, path: &Path) -> Result<Image, Error> {
        let bytes = fs::read(path).map_err(io_err(format!("read {}", path.display())))?;
        let mut image: Image = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if image.id != stem || image.id.len() != 64 {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                reason: format!("id {} does not match the file name", image.id),
            });
        }
        image.layer_root = Some(self.layers_dir());
        Ok(image)
    }

    /// Every image record, with the unreadable ones reported separately.
    pub fn images_and_errors(&self) -> Result<(Vec<Image>, Vec<Error>), Error> {
        let dir = self.images_dir();
        let mut images = Vec::new();
        let mut errors = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(format!("read {}", dir.display())))? {
            let entry = entry.map_err(io_err(format!("read {}", dir.display())))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match self.read_image(&path) {
                Ok(i) => images.push(i),
                Err(e) => errors.push(e),
            }
        }
        images.sort_by(|a, b| b.stored.cmp(&a.stored).then(a.id.cmp(&b.id)));
        Ok((images, errors))
    }

    /// Every readable image record, newest first.
    pub fn images(&self) -> Result<Vec<Image>, Error> {
        let _lock = self.lock_shared()?;
        Ok(self.images_and_errors()?.0)
    }

    /// Find an image by name (`alpine` matches `docker.io/library/alpine:latest`), by
    /// `name@sha256:...`, or by id or unique id prefix (with or without `sha256:`).
    pub fn find_image(&self, name_or_id: &str) -> Result<Option<Image>, Error> {
        let _lock = self.lock_shared()?;
        let images = self.images_and_errors()?.0;
        find_in(&images, name_or_id)
    }

    /// Like `find_image`, but a missing image is an error.
    pub fn get_image(&self, name_or_id: &str) -> Result<Image, Error> {
        self.find_image(name_or_id)?
            .ok_or_else(|| Error::NotFound(name_or_id.to_string()))
    }

    /// Write a new or updated image record and give it `names` (which move away from any
    /// other image that had them). Every layer must be present. Takes the exclusive lock.
    pub fn commit_image(&self, mut image: Image, names: &[String]) -> Result<Image, Error> {
        let _lock = self.lock_exclusive()?;
        for d in &image.diff_ids {
            if !self.has_layer(d) {
                return Err(Error::MissingLayer {
                    image: image.id.clone(),
                    diff_id: d.clone(),
                });
            }
        }
        let (images, _) = self.images_and_errors()?;
        if let Some(old) = images.iter().find(|i| i.id == image.id) {
            // Keep what the old record knew.
            for n in &old.names {
                if !image.names.contains(n) {
                    image.names.push(n.clone());
                }
            }
            for d in &old.repo_digests {
                if !image.repo_digests.contains(d) {
                    image.repo_digests.push(d.clone());
                }
            }
            if old.stored != 0 {
                image.stored = old.stored;
            }
        }
        if image.stored == 0 {
            image.stored = now_secs();
        }
        image.size = image
            .diff_ids
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter_map(|d| self.layer_record(d).map(|r| r.size))
            .sum();
        for n in names {
            if !image.names.contains(n) {
                image.names.push(n.clone());
            }
        }
        self.move_names_locked(&images, &image.id, names)?;
        self.write_image_locked(&image)?;
        Ok(image)
    }

    /// Take `names` away from every image other than `keep`. Caller holds the lock.
    fn move_names_locked(
        &self,
        images: &[Image],
        keep: &str,
        names: &[String],
    ) -> Result<(), Error> {
        for other in images.iter().filter(|i| i.id != keep) {
            if other.names.iter().any(|n| names.contains(n)) {
                let mut other = other.clone();
                other.names.retain(|n| !names.contains(n));
                self.write_image_locked(&other)?;
            }
        }
        Ok(())
    }

    fn write_image_locked(&self, image: &Image) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(image).map_err(|e| Error::Io {
            what: "encode image record".into(),
            source: std::io::Error::other(e),
        })?;
        self.write_atomic(&self.image_path(&image.id), &bytes)
    }

    /// Add a name to an image (moving it away from any other image); a short name is local:
    /// `localhost/NAME:TAG`, as podman names it.
    pub fn tag(&self, image_id: &str, name: &str) -> Result<(), Error> {
        let name = names::local(name)?;
        if name.contains('@') {
            return Err(Error::InvalidName {
                name,
                reason: "a tag cannot contain a digest".into(),
            });
        }
        let _lock = self.lock_exclusive()?;
        let (images, _) = self.images_and_errors()?;
        let mut image = images
            .iter()
            .find(|i| i.id == image_id)
            .cloned()
            .ok_or_else(|| Error::NotFound(image_id.to_string()))?;
        self.move_names_locked(&images, image_id, std::slice::from_ref(&name))?;
        if !image.names.contains(&name) {
            image.names.push(name);
            self.write_image_locked(&image)?;
        }
        Ok(())
    }

    /// Remove one name from an image; returns whether the image had it.
    pub fn untag(&self, image_id: &str, name: &str) -> Result<bool, Error> {
        match self.remove_names(image_id, Some(std::slice::from_ref(&name.to_string()))) {
            Ok(removed) => Ok(!removed.is_empty()),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove `names` (every name when None) from an image in one record write; returns the
    /// names it had among them. The image stays, nameless if need be.
    pub fn remove_names(
        &self,
        image_id: &str,
        names: Option<&[String]>,
    ) -> Result<Vec<String>, Error> {
        let _lock = self.lock_exclusive()?;
        let (images, _) = self.images_and_errors()?;
        let Some(mut image) = images.into_iter().find(|i| i.id == image_id) else {
            return Err(Error::NotFound(image_id.to_string()));
        };
        let (removed, kept): (Vec<String>, Vec<String>) = std::mem::take(&mut image.names)
            .into_iter()
            .partition(|n| names.is_none_or(|names| names.contains(n)));
        image.names = kept;
        if !removed.is_empty() {
            self.write_image_locked(&image)?;
        }
        Ok(removed)
    }

    /// Move an unpacked layer into place. `work` is a tmp/ directory of ours holding
    /// `diff/`; `layer.json` is written into it, then it is renamed to `layers/<hex>` under
    /// the exclusive lock unless the layer appeared meanwhile. Returns the directories to
    /// remove with `remove::remove_trees` (the loser's copy, or an incomplete old one).
    pub fn commit_layer(&self, work: &Path, record: &LayerRecord) -> Result<Vec<PathBuf>, Error> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Io {
            what: "encode layer record".into(),
            source: std::io::Error::other(e),
        })?;
        let lj = work.join("layer.json");
        (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&lj)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })()
        .map_err(io_err(format!("write {}", lj.display())))?;
        let _lock = self.lock_exclusive()?;
        if self.has_layer(&record.diff_id) {
            return Ok(vec![work.to_path_buf()]);
        }
        let dest = self.layer_path(&record.diff_id);
        let mut garbage = Vec::new();
        if fs::symlink_metadata(&dest).is_ok() {
            let aside = self.tmp_path(&format!("rm-{}", unique()));
            fs::rename(&dest, &aside).map_err(io_err(format!("move {} aside", dest.display())))?;
            garbage.push(aside);
        }
        fs::rename(work, &dest).map_err(io_err(format!("commit layer {}", dest.display())))?;
        let _ = fs::File::open(self.layers_dir()).and_then(|d| d.sync_all());
        Ok(garbage)
    }

    /// Delete image records and then every layer no remaining image uses. Returns the
    /// layer directories that were detached (renamed under tmp/, to be removed by the
    /// caller with `remove::remove_trees`, since they hold subordinate-owned files).
    pub fn delete_images(&self, ids: &[String]) -> Result<Vec<PathBuf>, Error> {
        let _lock = self.lock_exclusive()?;
        for id in ids {
            let p = self.image_path(id);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(format!("remove {}", p.display()))(e)),
            }
        }
        let detached = self.detach_unused_layers_locked()?;
        self.remove_unused_blobs_locked();
        Ok(detached)
    }

    /// Delete blobs no image record references (configs, manifests, layer blobs); returns
    /// the bytes freed. Caller holds the exclusive lock. Keeps everything when a record
    /// cannot be read.
    pub fn remove_unused_blobs_locked(&self) -> u64 {
        let Ok((images, errors)) = self.images_and_errors() else {
            return 0;
        };
        if !errors.is_empty() {
            return 0;
        }
        let mut used = BTreeSet::new();
        for i in &images {
            used.insert(i.id.clone());
            for d in i
                .manifest_digest
                .iter()
                .chain(i.layers.iter().map(|l| &l.digest))
            {
                if let Ok(h) = digest_hex(d) {
                    used.insert(h.to_string());
                }
            }
        }
        let cutoff = self.oldest_live_pull();
        let mut freed = 0;
        if let Ok(rd) = fs::read_dir(self.blobs_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !used.contains(&name) && !self.newer_than_pulls(&e.path(), cutoff) {
                    freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        freed
    }

    /// Rename every layer that no image record references to tmp/ (caller holds the lock).
    pub fn detach_unused_layers_locked(&self) -> Result<Vec<PathBuf>, Error> {
        let (images, errors) = self.images_and_errors()?;
        if !errors.is_empty() {
            // A record we cannot read may reference any layer: keep them all.
            return Ok(Vec::new());
        }
        let used: BTreeSet<String> = images
            .iter()
            .flat_map(|i| i.diff_ids.iter())
            .filter_map(|d| digest_hex(d).ok().map(str::to_string))
            .collect();
        let cutoff = self.oldest_live_pull();
        let mut detached = Vec::new();
        let dir = self.layers_dir();
        for entry in fs::read_dir(&dir).map_err(io_err(format!("read {}", dir.display())))? {
            let entry = entry.map_err(io_err(format!("read {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if used.contains(&name)
                || self.newer_than_pulls(&entry.path().join("layer.json"), cutoff)
            {
                continue;
            }
            let dest = self.tmp_path(&format!("rm-{name}-{}", unique()));
            fs::rename(entry.path(), &dest)
                .map_err(io_err(format!("detach layer {}", entry.path().display())))?;
            detached.push(dest);
        }
        Ok(detached)
    }
}

/// While alive, tells garbage collection (rmi, prune) in other processes that a pull is
/// writing blobs and layers that no image record references yet.
#[derive(Debug)]
pub struct PullMarker(PathBuf);

impl Drop for PullMarker {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

impl Store {
    /// Announce a pull in progress (`tmp/<pid>-pull-*`, removed on drop or, after a crash,
    /// by the next pull's cleanup).
    pub fn mark_pull(&self) -> Result<PullMarker, Error> {
        let p = self.tmp_path(&format!("pull-{}", unique()));
        fs::write(&p, b"").map_err(io_err(format!("create {}", p.display())))?;
        Ok(PullMarker(p))
    }

    /// The start time of the oldest pull still running (in any process).
    fn oldest_live_pull(&self) -> Option<std::time::SystemTime> {
        let rd = fs::read_dir(self.tmp_dir()).ok()?;
        rd.flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.split_once('-').is_some_and(|(pid, rest)| {
                    rest.starts_with("pull-")
                        && pid.parse::<i32>().is_ok_and(|p| {
                            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok()
                        })
                })
            })
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .min()
    }

    fn newer_than_pulls(&self, p: &Path, cutoff: Option<std::time::SystemTime>) -> bool {
        let Some(cutoff) = cutoff else { return false };
        let cutoff = cutoff - Duration::from_secs(2);
        fs::symlink_metadata(p)
            .and_then(|m| m.modified())
            .map(|m| m >= cutoff)
            .unwrap_or(true)
    }
}

/// A name unique within this process.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:08x}", N.fetch_add(1, Ordering::Relaxed), nanos)
}

/// The image `name_or_id` designates among `images`.
pub fn find_in(images: &[Image], name_or_id: &str) -> Result<Option<Image>, Error> {
    let s = name_or_id.trim();
    if s.is_empty() {
        return Ok(None);
    }
    // Exact names first: a repository called "abc" beats an id prefix "abc".
    if let Ok(norm) = names::normalize(s) {
        if norm.contains('@') {
            if let Some(i) = images.iter().find(|i| i.repo_digests.contains(&norm)) {
                return Ok(Some(i.clone()));
            }
            // name:tag@digest: the digest decides.
            let (repo, digest) = norm.split_once('@').unwrap_or((&norm, ""));
            let repo = names::strip_tag(repo);
            if let Some(i) = images.iter().find(|i| {
                i.manifest_digest.as_deref() == Some(digest)
                    && i.repo_digests
                        .iter()
                        .any(|d| d.starts_with(&format!("{repo}@")))
            }) {
                return Ok(Some(i.clone()));
            }
        } else {
            for name in names::candidates(s) {
                if let Some(i) = images.iter().find(|i| i.names.contains(&name)) {
                    return Ok(Some(i.clone()));
                }
            }
        }
    }
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hex = hex.to_ascii_lowercase();
        let found: Vec<&Image> = images.iter().filter(|i| i.id.starts_with(&hex)).collect();
        match found.len() {
            0 => {}
            1 => return Ok(Some(found[0].clone())),
            _ => return Err(Error::Ambiguous(s.to_string())),
        }
    }
    // podman's last resort for a short name: a local image whose repository ends with it.
    let mut found: Vec<&Image> = images
        .iter()
        .filter(|i| i.names.iter().any(|n| names::short_suffix_match(s, n)))
        .collect();
    found.dedup_by(|a, b| a.id == b.id);
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0].clone())),
        _ => Err(Error::Ambiguous(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn config() -> ImageConfiguration {
        serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"created":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap()
    }

    fn image(id_byte: char, names: &[&str]) -> Image {
        Image {
            id: id_byte.to_string().repeat(64),
            names: names.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            manifest_digest: None,
            manifest_media_type: None,
            config: config(),
            diff_ids: vec![],
            layers: vec![],
            stored: 0,
            size: 0,
            layer_root: None,
        }
    }

    #[test]
    fn find_by_short_name_and_id() {
        let imgs = vec![
            image('a', &["docker.io/library/alpine:latest"]),
            image('b', &["127.0.0.1:5000/test/layers:latest"]),
        ];
        assert_eq!(find_in(&imgs, "alpine").unwrap().unwrap().id, imgs[0].id);
        assert_eq!(
            find_in(&imgs, "docker.io/library/alpine")
                .unwrap()
                .unwrap()
                .id,
            imgs[0].id
        );
        assert_eq!(
            find_in(&imgs, "127.0.0.1:5000/test/layers")
                .unwrap()
                .unwrap()
                .id,
            imgs[1].id
        );
        assert_eq!(find_in(&imgs, "bbbb").unwrap().unwrap().id, imgs[1].id);
        assert_eq!(
            find_in(&imgs, &format!("sha256:{}", "a".repeat(64)))
                .unwrap()
                .unwrap()
                .id,
            imgs[0].id
        );
        assert!(find_in(&imgs, "alpine:3.20").unwrap().is_none());
        assert!(find_in(&imgs, "c").unwrap().is_none());
        // A short name finds a local image whose repository ends with it (podman).
        assert_eq!(find_in(&imgs, "layers").unwrap().unwrap().id, imgs[1].id);
        assert_eq!(
            find_in(&imgs, "test/layers:latest").unwrap().unwrap().id,
            imgs[1].id
        );
        assert!(find_in(&imgs, "layers:2").unwrap().is_none());
        assert!(find_in(&imgs, "ayers").unwrap().is_none());
        let two = vec![
            image('a', &["127.0.0.1:5000/one/app:latest"]),
            image('b', &["127.0.0.1:5000/two/app:latest"]),
        ];
        assert!(matches!(find_in(&two, "app"), Err(Error::Ambiguous(_))));
        assert_eq!(find_in(&two, "one/app").unwrap().unwrap().id, two[0].id);
    }

    #[test]
    fn tags_move_between_images_and_layers_are_refcounted() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open_at(&t.path().join("storage"), t.path()).unwrap();
        let layer = format!("sha256:{}", "1".repeat(64));
        let lp = store.layer_path(&layer);
        fs::create_dir_all(lp.join("diff")).unwrap();
        fs::write(
            lp.join("layer.json"),
            serde_json::to_vec(&LayerRecord {
                diff_id: layer.clone(),
                size: 10,
                compressed_digest: None,
                created: 0,
            })
            .unwrap(),
        )
        .unwrap();
        let mut a = image('a', &[]);
        a.diff_ids = vec![layer.clone()];
        let mut b = image('b', &[]);
        b.diff_ids = vec![layer.clone()];
        let a = store
            .commit_image(a, &["docker.io/library/x:1".into()])
            .unwrap();
        assert_eq!(a.size, 10);
        store
            .commit_image(b, &["docker.io/library/x:1".into()])
            .unwrap();
        let a = store.get_image(&"a".repeat(12)).unwrap();
        assert!(a.names.is_empty(), "the tag moved: {:?}", a.names);
        assert_eq!(
            store.get_image("x:1").unwrap().id,
            "b".repeat(64),
            "x:1 names b"
        );
        store.tag(&a.id, "y").unwrap();
        assert_eq!(store.get_image("y").unwrap().id, a.id);

        // Removing one user keeps the shared layer; removing both detaches it.
        assert!(
            store
                .delete_images(std::slice::from_ref(&a.id))
                .unwrap()
                .is_empty()
        );
        assert!(store.has_layer(&layer));
        let gone = store.delete_images(&["b".repeat(64)]).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(!store.has_layer(&layer));
        remove::remove_tree_direct(&gone[0]).unwrap();
    }

    #[test]
    fn layer_dirs_keep_topmost_duplicate() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open_at(&t.path().join("s"), t.path()).unwrap();
        let l = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        let mut i = image('a', &[]);
        i.diff_ids = vec![l('1'), l('2'), l('1'), l('3')];
        let dirs = i.layer_dirs(&store);
        assert_eq!(
            dirs,
            vec![
                store.layer_diff(&l('2')),
                store.layer_diff(&l('1')),
                store.layer_diff(&l('3'))
            ]
        );
    }
}
