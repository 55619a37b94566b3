//! `push`: an image of the store to a registry.
//!
//! The config and the layer blobs as the store keeps them (a layer stored uncompressed, or
//! in another compression than `--compression-format` asks for, is recompressed into
//! tmp/ first, its content checked against its diff_id; the manifest then names the new
//! blob), pushed by a few threads through [`registry::upload::Pusher`]: blobs the
//! repository has are skipped, blobs another repository of the registry has (the image
//! was pulled from it) are mounted. Then the manifest: the stored one, byte for byte, when
//! nothing changed, else one written for the format asked for.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::hash_writer::HashWriter;
use super::unpack::Compression;
use super::{Image, Store, names};
use crate::paths::Paths;
use crate::registry::upload::{self, BlobPushed, Pusher};
use crate::registry::{self, Reference};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Upload threads.
const THREADS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] super::Error),
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error(transparent)]
    Upload(#[from] upload::Error),
    #[error(
        "image {0} has no name to push it to: give a destination, e.g. box push {0} registry.example.com/ns/app:tag"
    )]
    NoDestination(String),
    #[error("cannot push to {0}: a destination names a tag, not a digest")]
    DigestDestination(String),
    #[error(
        "{what} {digest} of image {image} is missing from the store: pull or load the image again"
    )]
    MissingBlob {
        image: String,
        what: &'static str,
        digest: String,
    },
    #[error(
        "docker v2s2 manifests cannot name zstd-compressed layers (layer {0}): use --format oci or --compression-format gzip"
    )]
    ZstdInV2s2(String),
    #[error(
        "layer {digest} does not unpack to its diff_id {diff_id}: the store is damaged; run box system check --repair"
    )]
    Corrupt { digest: String, diff_id: String },
    #[error("cannot {what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// The manifest format to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    V2s2,
}

/// The compression of pushed layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub tls_verify: Option<bool>,
    /// None: the image's own format when known, else OCI.
    pub format: Option<Format>,
    /// None: layers keep their compression (gzip for uncompressed ones).
    pub compression: Option<LayerCompression>,
}

/// What [`push`] reports.
pub enum Event<'a> {
    /// Pushing to this reference.
    Pushing(&'a str),
    WritingManifest,
}

/// How a blob ended.
pub enum BlobDone<'a> {
    Exists,
    Mounted(&'a str),
    /// In this many requests carrying data (1: monolithic).
    Uploaded {
        chunks: u32,
    },
}

pub trait Progress: Sync {
    fn event(&self, event: Event<'_>);
    /// A blob to push: `config` or a layer; `name` the first 12 hex of its digest.
    fn blob(&self, config: bool, name: &str, size: u64) -> Box<dyn BlobProgress>;
}

pub trait BlobProgress: Send + Sync {
    /// Recompressed: now `name`, `size` bytes.
    fn recompressed(&self, name: &str, size: u64);
    /// `n` bytes of the blob are on the registry.
    fn position(&self, n: u64);
    fn done(&self, how: BlobDone<'_>);
    fn failed(&self);
}

/// The result: the reference pushed to and the manifest digest.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: String,
    pub digest: String,
}

/// One blob to push and what the manifest says of it.
struct Job {
    config: bool,
    /// Digest, size and media type (layers: OCI vocabulary) as stored.
    digest: String,
    size: u64,
    file: File,
    /// Layers: the compression to push in, when it differs from the stored one.
    recompress: Option<LayerCompression>,
    compression: Compression,
    diff_id: String,
}

/// What ends up in the manifest for a blob.
#[derive(Debug, Clone)]
struct Done {
    digest: String,
    size: u64,
    compression: Compression,
}

/// Push `image` (a name or id) to `destination` (default: the name it was given by).
/// Joins every thread it starts.
pub fn push(
    paths: &Paths,
    image: &str,
    destination: Option<&str>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Pushed, Error> {
    let store = Store::open(paths)?;
    let img = store.get_image(image)?;
    let dest = destination_of(&img, image, destination)?;
    let jobs = plan(&store, &img, opts)?;
    let format = match opts.format {
        Some(f) => f,
        None if img.manifest_media_type.as_deref() == Some(DOCKER_MANIFEST) => Format::V2s2,
        None => Format::Oci,
    };
    if format == Format::V2s2 {
        for j in jobs.iter().filter(|j| !j.config) {
            let zstd = match j.recompress {
                Some(c) => c == LayerCompression::Zstd,
                None => j.compression == Compression::Zstd,
            };
            if zstd {
                return Err(Error::ZstdInV2s2(j.digest.clone()));
            }
        }
    }
    let mount_from = mount_source(&img, &dest);
    progress.event(Event::Pushing(&dest.to_string()));

    let client = registry::client_for(paths, opts.tls_verify);
    let pusher = Pusher::new(&client, &dest)?;
    let done = upload_all(&store, &pusher, &jobs, mount_from.as_deref(), progress)?;

    let (media_type, bytes) = manifest(&store, &img, format, &jobs, &done)?;
    progress.event(Event::WritingManifest);
    let digest = pusher.put_manifest(media_type, &bytes)?;
    Ok(Pushed {
        reference: dest.to_string(),
        digest,
    })
}

/// DESTINATION, or the name the image was asked for by (when it is one of its names).
fn destination_of(img: &Image, asked: &str, dest: Option<&str>) -> Result<Reference, Error> {
    let name = match dest {
        Some(d) => d.to_string(),
        None => match names::normalize(asked) {
            Ok(n) if img.names.contains(&n) => n,
            _ if img.names.len() == 1 && asked.len() >= 3 && img.id.starts_with(asked) => {
                img.names[0].clone()
            }
            _ => return Err(Error::NoDestination(asked.to_string())),
        },
    };
    let r = Reference::parse(&name)?;
    if r.digest.is_some() {
        return Err(Error::DigestDestination(name));
    }
    Ok(r)
}

/// A repository of the destination's registry the image was pulled from (or is named in).
fn mount_source(img: &Image, dest: &Reference) -> Option<String> {
    img.repo_digests
        .iter()
        .chain(&img.names)
        .filter_map(|n| Reference::parse(n).ok())
        .find(|r| r.registry == dest.registry && r.repository != dest.repository)
        .map(|r| r.repository)
}

/// The config and each distinct layer, their files open (a later `rmi` cannot take them).
fn plan(store: &Store, img: &Image, opts: &Options) -> Result<Vec<Job>, Error> {
    let missing = |what: &'static str, digest: &str| Error::MissingBlob {
        image: img.short_id().to_string(),
        what,
        digest: digest.to_string(),
    };
    let open = |digest: &str, what: &'static str| -> Result<(File, u64), Error> {
        let f = File::open(store.blob_path(digest)?).map_err(|_| missing(what, digest))?;
        let size = f
            .metadata()
            .map_err(io_err(format!("read blob {digest}")))?
            .len();
        Ok((f, size))
    };
    let config_digest = img.digest_id();
    let (file, size) = open(&config_digest, "config")?;
    let mut jobs = vec![Job {
        config: true,
        digest: config_digest,
        size,
        file,
        recompress: None,
        compression: Compression::None,
        diff_id: String::new(),
    }];
    if img.layers.len() != img.diff_ids.len() {
        let d = img.diff_ids.first().cloned().unwrap_or_default();
        return Err(missing("the compressed blob of layer", &d));
    }
    for (blob, diff_id) in img.layers.iter().zip(&img.diff_ids) {
        if jobs.iter().any(|j| j.digest == blob.digest) {
            continue;
        }
        let (file, size) = open(&blob.digest, "layer")?;
        let mut head = [0u8; 8];
        let n = file.read_at(&mut head, 0).unwrap_or(0);
        let compression = Compression::sniff(&head[..n]);
        let wanted = match (opts.compression, compression) {
            (Some(c), _) => c,
            (None, Compression::Zstd) => LayerCompression::Zstd,
            (None, _) => LayerCompression::Gzip,
        };
        let same = matches!(
            (wanted, compression),
            (LayerCompression::Gzip, Compression::Gzip)
                | (LayerCompression::Zstd, Compression::Zstd)
        );
        jobs.push(Job {
            config: false,
            digest: blob.digest.clone(),
            size,
            file,
            recompress: (!same).then_some(wanted),
            compression,
            diff_id: diff_id.clone(),
        });
    }
    Ok(jobs)
}

/// Push every job with a few threads (all joined before returning); the blobs as pushed,
/// in job order.
fn upload_all(
    store: &Store,
    pusher: &Pusher<'_>,
    jobs: &[Job],
    mount_from: Option<&str>,
    progress: &dyn Progress,
) -> Result<Vec<Done>, Error> {
    let bars: Vec<Box<dyn BlobProgress>> = jobs
        .iter()
        .map(|j| progress.blob(j.config, short(&j.digest), j.size))
        .collect();
    let next = Mutex::new(0usize);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<Done, Error>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..THREADS.min(jobs.len()) {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("job lock");
                        *n += 1;
                        *n - 1
                    };
                    if i >= jobs.len() || failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let r = push_one(store, pusher, &jobs[i], mount_from, &*bars[i]);
                    if r.is_err() {
                        bars[i].failed();
                        failed.store(true, Ordering::SeqCst);
                    }
                    results.lock().expect("results lock")[i] = Some(r);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(jobs.len());
    let mut first_err = None;
    for r in results.into_inner().expect("results lock") {
        match r {
            Some(Ok(d)) => out.push(d),
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
            None => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn push_one(
    store: &Store,
    pusher: &Pusher<'_>,
    job: &Job,
    mount_from: Option<&str>,
    bar: &dyn BlobProgress,
) -> Result<Done, Error> {
    let recompressed = match job.recompress {
        Some(c) => {
            let r = recompress(store, job, c)?;
            bar.recompressed(short(&r.digest), r.size);
            Some(r)
        }
        None => None,
    };
    let (digest, size, file, mount_from, compression) = match &recompressed {
        Some(r) => (&r.digest, r.size, &r.file, None, r.compression),
        None => (
            &job.digest,
            job.size,
            &job.file,
            mount_from,
            job.compression,
        ),
    };
    let how = pusher.push_blob(digest, size, file, mount_from, &|n| bar.position(n))?;
    bar.done(match &how {
        BlobPushed::Exists => BlobDone::Exists,
        BlobPushed::Mounted(from) => BlobDone::Mounted(from),
        BlobPushed::Uploaded { chunks } => BlobDone::Uploaded { chunks: *chunks },
    });
    Ok(Done {
        digest: digest.clone(),
        size,
        compression,
    })
}

/// A recompressed layer: an unlinked file under tmp/ (nothing is left behind).
struct Recompressed {
    digest: String,
    size: u64,
    file: File,
    compression: Compression,
}

fn recompress(store: &Store, job: &Job, to: LayerCompression) -> Result<Recompressed, Error> {
    let path: PathBuf = store.tmp_path(&format!("push-{}", super::unique()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_err(format!("create {}", path.display())))?;
    // unlinked at once: the descriptor is all we need
    let _ = std::fs::remove_file(&path);
    let what = format!("recompress layer {}", job.digest);
    let src = io::BufReader::with_capacity(256 << 10, FileReader::new(&job.file));
    let mut decoded: Box<dyn Read> = match job.compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(src)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(src).map_err(io_err(&what))?),
        Compression::None => Box::new(src),
    };
    let writer = file.try_clone().map_err(io_err(&what))?;
    let out = HashWriter {
        inner: io::BufWriter::with_capacity(256 << 10, writer),
        hash: Sha256::new(),
        n: 0,
    };
    let mut diff = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let out = match to {
        LayerCompression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            copy_hashing(&mut decoded, &mut enc, &mut diff, &mut buf).map_err(io_err(&what))?;
            enc.finish().map_err(io_err(&what))?
        }
        LayerCompression::Zstd => {
            let mut enc = zstd::Encoder::new(out, 3).map_err(io_err(&what))?;
            copy_hashing(&mut decoded, &mut enc, &mut diff, &mut buf).map_err(io_err(&what))?;
            enc.finish().map_err(io_err(&what))?
        }
    };
    let actual = format!("sha256:{}", hex::encode(diff.finalize()));
    if actual != job.diff_id {
        return Err(Error::Corrupt {
            digest: job.digest.clone(),
            diff_id: job.diff_id.clone(),
        });
    }
    let HashWriter { inner, hash, n } = out;
    inner
        .into_inner()
        .map_err(|e| e.into_error())
        .map_err(io_err(&what))?;
    Ok(Recompressed {
        digest: format!("sha256:{}", hex::encode(hash.finalize())),
        size: n,
        file,
        compression: match to {
            LayerCompression::Gzip => Compression::Gzip,
            LayerCompression::Zstd => Compression::Zstd,
        },
    })
}

fn copy_hashing(
    r: &mut dyn Read,
    w: &mut dyn Write,
    hash: &mut Sha256,
    buf: &mut [u8],
) -> io::Result<()> {
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hash.update(&buf[..n]);
        w.write_all(&buf[..n])?;
    }
}

/// Reads a shared `File` from the start with `pread` (its offset is not ours).
struct FileReader<'a> {
    file: &'a File,
    pos: u64,
}

impl<'a> FileReader<'a> {
    fn new(file: &'a File) -> FileReader<'a> {
        FileReader { file, pos: 0 }
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The manifest to put: (media type, bytes).
fn manifest(
    store: &Store,
    img: &Image,
    format: Format,
    jobs: &[Job],
    done: &[Done],
) -> Result<(&'static str, Vec<u8>), Error> {
    let media_type = match format {
        Format::Oci => OCI_MANIFEST,
        Format::V2s2 => DOCKER_MANIFEST,
    };
    let unchanged = jobs.iter().all(|j| j.recompress.is_none());
    if unchanged
        && img.manifest_media_type.as_deref() == Some(media_type)
        && let Some(d) = &img.manifest_digest
        && let Ok(bytes) = std::fs::read(store.blob_path(d)?)
    {
        return Ok((media_type, bytes));
    }
    let stored: Option<Value> = img
        .manifest_digest
        .as_ref()
        .and_then(|d| std::fs::read(store.blob_path(d).ok()?).ok())
        .and_then(|b| serde_json::from_slice(&b).ok());
    let blob_of = |digest: &str| -> &Done {
        let i = jobs.iter().position(|j| j.digest == digest).unwrap_or(0);
        &done[i]
    };
    let layer_type = |c: Compression| match (format, c) {
        (Format::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
        (Format::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        (Format::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
        (Format::V2s2, Compression::None) => "application/vnd.docker.image.rootfs.diff.tar",
        (Format::V2s2, _) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
    };
    let config = &done[0];
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": match format {
                Format::Oci => "application/vnd.oci.image.config.v1+json",
                Format::V2s2 => "application/vnd.docker.container.image.v1+json",
            },
            "digest": config.digest,
            "size": config.size,
        },
        "layers": img.layers.iter().map(|l| {
            let b = blob_of(&l.digest);
            json!({"mediaType": layer_type(b.compression), "digest": b.digest, "size": b.size})
        }).collect::<Vec<_>>(),
    });
    if format == Format::Oci
        && let Some(a) = stored.as_ref().and_then(|s| s.get("annotations"))
    {
        m["annotations"] = a.clone();
    }
    Ok((
        media_type,
        serde_json::to_vec(&m)
            .map_err(io::Error::from)
            .map_err(io_err("write the manifest"))?,
    ))
}

fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    &hex[..12.min(hex.len())]
}
