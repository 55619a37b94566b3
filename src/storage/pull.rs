//! Pulling an image into the store (`box pull`, and `box run`/`create` through `ensure`).
//!
//! resolve → for each layer not in the store: download its blob (unless present) on a
//! bounded pool of threads, and hand it to the unpack helper as soon as it is complete
//! (unpacking overlaps the other downloads) → commit each layer under the store lock →
//! write the image record and move the names.
//!
//! Threads: the unpack helper is spawned while the process is single-threaded; then the
//! download workers and one reader of the helper's answers send what happens to the
//! calling thread, the one collector that owns the pull's state (no shared mutable state
//! but the work queue's index and the cancel flag). Every thread is joined before
//! `fetch_layers` returns, so the caller may fork again afterwards.
//!
//! Locks: a layer's work lock is only ever taken without waiting while the pull holds
//! others; layers another box process holds are waited for after ours are committed and
//! released (two pulls that wanted each other's layers while holding their own would wait
//! forever).
//!
//! What the user sees goes through `Progress`, which the command implements (bars on a
//! TTY, plain lines otherwise).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::time::{Duration, Instant};

use oci_spec::image::Descriptor;

use super::unpack::{Job, JobResult, Unpacker};
use super::{FileLock, Image, LayerBlob, LayerRecord, Store, digest_hex};
use crate::paths::Paths;
use crate::registry::{self, Client, Platform, Reference};

/// Download threads at most.
const POOL: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] super::Error),
    #[error(transparent)]
    Registry(#[from] registry::Error),
    #[error("image {0} is not in the store and the pull policy is never: run `box pull {0}` first")]
    NotPresent(String),
    #[error("pull {reference}: {source}")]
    Pull {
        reference: String,
        source: Box<Error>,
    },
    #[error(
        "the manifest lists {layers} layers but the config {diff_ids} diff_ids: the image is broken in the registry"
    )]
    LayerCount { layers: usize, diff_ids: usize },
    #[error("bad diff_id in the config: {0}")]
    BadDiffId(#[source] super::Error),
    #[error("start the unpack helper: {0}")]
    StartHelper(#[source] super::Error),
    #[error("download layer {layer}: {source}")]
    Download {
        layer: String,
        source: registry::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The unpack helper's message for a layer it could not unpack.
    #[error("{0}")]
    Unpack(String),
}

/// When to pull (`--pull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Only when the image is absent (or of another platform).
    #[default]
    Missing,
    /// Always.
    Always,
    /// Never: an absent image is an error.
    Never,
    /// When the registry's manifest differs from the local one.
    Newer,
}

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `os/arch[/variant]`; `None`: the host's platform.
    pub platform: Option<String>,
    /// Verify TLS; `None`: as registries.toml says.
    pub tls_verify: Option<bool>,
}

/// What a pull reports about itself as a whole.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Resolving the reference in its registry.
    Resolving(&'a Reference),
    /// A layer (the first 12 hex of its blob digest) already in the store.
    LayerExists(&'a str),
    /// A layer another box process stored while this pull waited for it.
    LayerStoredElsewhere(&'a str),
    /// Every layer is stored: writing the image record.
    WritingManifest,
    /// Something the user should know; the pull goes on.
    Warning(&'a str),
    /// Details for `--log-level debug`.
    Debug(&'a str),
}

/// What happens to one layer being fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent {
    /// Its blob is being downloaded (`LayerProgress::advance` counts the bytes).
    Downloading,
    /// Its blob was already in the store.
    BlobPresent,
    /// Its blob is downloaded, verified and stored.
    Downloaded { elapsed: Duration },
    /// Handed to the unpack helper.
    Extracting,
    /// Unpacked (committed once every layer of this round is).
    Extracted,
    /// Another box process committed it meanwhile.
    AlreadyExists,
    /// Another box process is fetching it: waited for after this pull's own layers.
    Busy,
    /// Its download or unpack failed.
    Failed,
}

/// Where a pull reports progress. Called from the download threads.
pub trait Progress: Sync {
    fn event(&self, event: Event<'_>);
    /// A layer to fetch: `name` is the first 12 hex of its blob digest, `size` the blob's.
    fn layer(&self, name: &str, size: u64) -> Box<dyn LayerProgress>;
}

/// One layer's progress (moves between threads with the layer).
pub trait LayerProgress: Send {
    /// `bytes` more of the blob downloaded.
    fn advance(&self, bytes: u64);
    fn event(&self, event: LayerEvent);
}

/// The image `reference` names, pulled first according to `policy`.
/// Joins every thread it starts.
pub fn ensure(
    paths: &Paths,
    reference: &str,
    policy: Policy,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Image, Error> {
    let store = Store::open(paths)?;
    let platform = opts.platform.as_deref();
    let local = store
        .find_image(reference)?
        .filter(|i| platform.is_none_or(|p| platform_matches(i, p)));
    match (policy, local) {
        (Policy::Never, None) => Err(Error::NotPresent(reference.to_string())),
        (Policy::Missing | Policy::Never, Some(image)) => Ok(image),
        (Policy::Newer, Some(image)) => {
            let r = Reference::parse(reference)?;
            let plat = match platform {
                Some(p) => Platform::parse(p)?,
                None => Platform::host(),
            };
            let client = registry::client_for(paths, opts.tls_verify);
            match client.resolve(&r, &plat) {
                Ok(res) if image.manifest_digest.as_deref() == Some(&res.manifest_digest) => {
                    Ok(image)
                }
                Ok(_) => pull(paths, reference, opts, progress),
                Err(e) => {
                    progress.event(Event::Warning(&format!(
                        "cannot check {reference} for a newer image ({e}); using the local one"
                    )));
                    Ok(image)
                }
            }
        }
        _ => pull(paths, reference, opts, progress),
    }
}

fn platform_matches(image: &Image, platform: &str) -> bool {
    let Ok(p) = Platform::parse(platform) else {
        return true;
    };
    let arch = image.config.architecture().to_string();
    let os = image.config.os().to_string();
    let variant = image.config.variant().clone();
    os == p.os && arch == p.architecture && (p.variant.is_none() || variant == p.variant)
}

/// Pull `name` into the store and return its record. Joins every thread it starts.
pub fn pull(
    paths: &Paths,
    name: &str,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Image, Error> {
    let reference = Reference::parse(name)?;
    let platform = match opts.platform.as_deref() {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let store = Store::open(paths)?;
    let warn = |s: &str| progress.event(Event::Warning(s));

    // Leftovers of killed pulls go first (single-threaded here).
    match store.detach_stale_tmp() {
        Ok(stale) => {
            if let Err(e) = super::remove::remove_trees(store.data_dir(), &stale) {
                warn(&format!("cannot clean leftovers of an earlier pull: {e}"));
            }
        }
        Err(e) => warn(&format!("cannot clean leftovers of an earlier pull: {e}")),
    }

    let _marker = store.mark_pull()?;
    let client = registry::client_for(paths, opts.tls_verify);
    let in_pull = |e: Error| Error::Pull {
        reference: reference.to_string(),
        source: Box::new(e),
    };
    progress.event(Event::Resolving(&reference));
    let resolved = client
        .resolve(&reference, &platform)
        .map_err(|e| in_pull(e.into()))?;

    let config_digest = resolved.manifest.config().digest().to_string();
    let id = digest_hex(&config_digest)?.to_string();
    store.put_blob(&config_digest, &resolved.config_bytes)?;
    store.put_blob(&resolved.manifest_digest, &resolved.manifest_bytes)?;

    let diff_ids: Vec<String> = resolved.config.rootfs().diff_ids().clone();
    let descs: Vec<Descriptor> = resolved.manifest.layers().clone();
    if diff_ids.len() != descs.len() {
        return Err(in_pull(Error::LayerCount {
            layers: descs.len(),
            diff_ids: diff_ids.len(),
        }));
    }
    for d in diff_ids.iter() {
        digest_hex(d).map_err(|e| in_pull(Error::BadDiffId(e)))?;
    }

    // The layers to fetch: one per missing diff_id.
    let mut wanted: Vec<(Descriptor, String)> = Vec::new();
    for (desc, diff_id) in descs.iter().zip(&diff_ids) {
        if store.has_layer(diff_id) {
            progress.event(Event::LayerExists(&short(desc)));
        } else if !wanted.iter().any(|(_, d)| d == diff_id) {
            wanted.push((desc.clone(), diff_id.clone()));
        }
    }
    // Layers another box process is fetching are left to it and waited for afterwards,
    // holding no lock of our own then: two pulls that wanted each other's layers while
    // holding their own would wait forever.
    while !wanted.is_empty() {
        let fetch = Fetch {
            store: &store,
            client: &client,
            reference: &reference,
            progress,
        };
        let busy = fetch_layers(&fetch, &wanted).map_err(in_pull)?;
        for (desc, diff_id) in &busy {
            let hex = digest_hex(diff_id)?;
            // Its holder is done once we get it; the lock file goes as `release` does it.
            let lock = store.lock_work(&format!("layer-{hex}"))?;
            let _ = std::fs::remove_file(lock.path());
            drop(lock);
            if store.has_layer(diff_id) {
                progress.event(Event::LayerStoredElsewhere(&short(desc)));
            }
        }
        // What the other process failed to store is ours to fetch again.
        wanted = busy
            .into_iter()
            .filter(|(_, d)| !store.has_layer(d))
            .collect();
    }

    progress.event(Event::WritingManifest);
    let image = Image {
        id,
        names: Vec::new(),
        repo_digests: vec![format!("{}@{}", reference.name(), resolved.repo_digest())],
        manifest_digest: Some(resolved.manifest_digest.clone()),
        manifest_media_type: Some(resolved.manifest_media_type.clone()),
        config: resolved.config.clone(),
        diff_ids,
        layers: descs
            .iter()
            .map(|d| LayerBlob {
                digest: d.digest().to_string(),
                media_type: d.media_type().to_string(),
                size: d.size(),
            })
            .collect(),
        stored: 0,
        size: 0,
        layer_root: None,
    };
    let names = if reference.digest.is_none() {
        vec![format!(
            "{}:{}",
            reference.name(),
            reference.tag.as_deref().unwrap_or("latest")
        )]
    } else {
        Vec::new()
    };
    let image = store.commit_image(image, &names)?;
    crate::events::image(paths, "pull", &image.id, name);
    Ok(image)
}

/// The first 12 hex of a layer's blob digest.
fn short(desc: &Descriptor) -> String {
    let d = desc.digest().to_string();
    let hex = d.split_once(':').map(|(_, h)| h).unwrap_or(&d);
    hex.chars().take(12).collect()
}

/// What the layer fetchers share (read-only).
struct Fetch<'a> {
    store: &'a Store,
    client: &'a Client,
    reference: &'a Reference,
    progress: &'a dyn Progress,
}

/// A layer handed to the unpack helper, waiting for its answer.
struct Pending {
    diff_id: String,
    blob_digest: String,
    work: PathBuf,
    progress: Box<dyn LayerProgress>,
    lock: FileLock,
}

impl Pending {
    /// Where the helper unpacks it (the key of its answer).
    fn dest(&self) -> PathBuf {
        self.work.join("diff")
    }
}

/// What the workers and the helper's reader tell the collector.
enum Msg {
    /// A layer about to be submitted to the helper (sent first, so that the collector
    /// knows it before the helper's answer can arrive).
    Submitted(Pending),
    /// Submitting failed: the helper is gone.
    SubmitFailed { dest: PathBuf, error: Error },
    /// The helper's answer for one layer.
    Unpacked(JobResult),
    /// Another process holds the work lock of `wanted[i]`.
    Busy(usize),
    /// Fetching a layer failed.
    Failed(Error),
    /// A worker stopped (sent when its sender drops, even if it panicked).
    WorkerDone,
}

/// A worker's sender, which says `WorkerDone` when the worker stops.
struct WorkerTx(Sender<Msg>);

impl Drop for WorkerTx {
    fn drop(&mut self) {
        let _ = self.0.send(Msg::WorkerDone);
    }
}

/// What the collector gathered, owned by the calling thread.
#[derive(Default)]
struct Collected {
    pending: HashMap<PathBuf, Pending>,
    finished: Vec<(JobResult, Pending)>,
    busy: Vec<(Descriptor, String)>,
    garbage: Vec<PathBuf>,
    errors: Vec<Error>,
}

/// Download and unpack `wanted` layers: a bounded pool downloads; each finished blob goes
/// to the unpack helper at once; the calling thread collects what the workers and the
/// helper report and commits the unpacked layers. Returns the layers whose work lock
/// another process holds (not waited for here: see `pull`).
fn fetch_layers(
    f: &Fetch<'_>,
    wanted: &[(Descriptor, String)],
) -> Result<Vec<(Descriptor, String)>, Error> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // Spawned before any thread exists: the helper is forked from a single thread.
    let mut unpacker = Unpacker::spawn(f.store).map_err(Error::StartHelper)?;
    if let Some(why) = &unpacker.owners_squashed {
        let reason = match why {
            crate::userns::Error::NoSubids { line, file, .. } => format!(
                "no subordinate ids in {file} (to keep the owners, as root add the line '{line}' to /etc/subuid and /etc/subgid, then remove the image and pull it again)"
            ),
            other => other.to_string(),
        };
        f.progress.event(Event::Warning(&format!(
            "{reason}: the image's files are stored as yours (the owners in the image are lost), and containers need --userns=single"
        )));
    }
    let results = unpacker.take_results();

    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let mut c = Collected::default();
    let (tx, rx) = mpsc::channel::<Msg>();
    std::thread::scope(|s| {
        let workers = POOL.min(wanted.len());
        for _ in 0..workers {
            let tx = WorkerTx(tx.clone());
            let (unpacker, next, cancel) = (&unpacker, &next, &cancel);
            s.spawn(move || work(f, wanted, unpacker, next, cancel, &tx.0));
        }
        let reader_tx = tx.clone();
        s.spawn(move || {
            for r in results {
                if reader_tx.send(Msg::Unpacked(r)).is_err() {
                    break;
                }
            }
        });
        drop(tx);

        // The collector: until every worker stopped and the helper answered everything.
        let mut running = workers;
        for msg in rx {
            match msg {
                Msg::Submitted(p) => {
                    c.pending.insert(p.dest(), p);
                }
                Msg::Unpacked(r) => {
                    let Some(p) = c.pending.remove(&r.dest) else {
                        continue;
                    };
                    if r.ok {
                        p.progress.event(LayerEvent::Extracted);
                        c.finished.push((r, p));
                    } else {
                        cancel.store(true, Ordering::SeqCst);
                        c.garbage.push(p.work.clone());
                        p.progress.event(LayerEvent::Failed);
                        c.errors.push(Error::Unpack(
                            r.error.unwrap_or_else(|| "unpack failed".into()),
                        ));
                        release(p);
                    }
                }
                Msg::SubmitFailed { dest, error } => {
                    if let Some(p) = c.pending.remove(&dest) {
                        p.progress.event(LayerEvent::Failed);
                        c.garbage.push(p.work.clone());
                        release(p);
                    }
                    c.errors.push(error);
                }
                Msg::Busy(i) => c.busy.push(wanted[i].clone()),
                Msg::Failed(e) => c.errors.push(e),
                Msg::WorkerDone => {
                    running -= 1;
                    if running == 0 {
                        // Nothing more to submit: the helper finishes its jobs and exits.
                        unpacker.close();
                    }
                }
            }
        }
    });
    let helper = unpacker.wait();
    // Jobs the helper never answered.
    for (_, p) in std::mem::take(&mut c.pending) {
        p.progress.event(LayerEvent::Failed);
        c.garbage.push(p.work.clone());
        release(p);
    }
    // One syncfs for every new layer, then each is renamed into place (and its work lock
    // released, so that parallel pulls waiting for it find it committed).
    if !c.finished.is_empty() {
        sync_store(f.store);
    }
    let mut warnings = Vec::new();
    let mut skipped_devices = Vec::new();
    for (r, p) in std::mem::take(&mut c.finished) {
        match commit(f.store, &r, &p) {
            Ok(mut g) => {
                c.garbage.append(&mut g);
                for w in &r.stats.warnings {
                    match w.strip_prefix("skipped device node ") {
                        Some(rest) => {
                            skipped_devices.push(rest.split(':').next().unwrap_or(rest).to_string())
                        }
                        None => warnings.push(w.clone()),
                    }
                }
                for n in &r.stats.notes {
                    f.progress.event(Event::Debug(n));
                }
            }
            Err(e) => {
                c.garbage.push(p.work.clone());
                c.errors.push(e);
            }
        }
        release(p);
    }
    if !skipped_devices.is_empty() {
        skipped_devices.sort();
        skipped_devices.dedup();
        f.progress.event(Event::Warning(&format!(
            "skipped {} device node(s) that cannot be created rootless ({}); containers get their own /dev",
            skipped_devices.len(),
            skipped_devices.join(", ")
        )));
    }
    for w in warnings {
        f.progress.event(Event::Warning(&w));
    }
    // Single-threaded again: remove what lost a race or failed.
    if let Err(e) = super::remove::remove_trees(f.store.data_dir(), &c.garbage) {
        f.progress.event(Event::Warning(&format!(
            "cannot remove temporary files: {e}"
        )));
    }
    if !c.errors.is_empty() {
        return Err(c.errors.remove(0));
    }
    helper?;
    Ok(c.busy)
}

/// One download worker: take the next wanted layer until none is left or the pull is
/// cancelled; fetch it and submit it to the helper.
fn work(
    f: &Fetch<'_>,
    wanted: &[(Descriptor, String)],
    unpacker: &Unpacker,
    next: &AtomicUsize,
    cancel: &AtomicBool,
    tx: &Sender<Msg>,
) {
    let fail = |msg: Msg| {
        cancel.store(true, Ordering::SeqCst);
        let _ = tx.send(msg);
    };
    while !cancel.load(Ordering::SeqCst) {
        let i = next.fetch_add(1, Ordering::SeqCst);
        let Some((desc, diff_id)) = wanted.get(i) else {
            break;
        };
        match fetch_one(f, desc, diff_id) {
            Ok(Fetched::Busy) => {
                let _ = tx.send(Msg::Busy(i));
            }
            Ok(Fetched::Unpack(p)) => {
                let job = Job {
                    blob: f.store.blob_path(&p.blob_digest).unwrap_or_default(),
                    media_type: desc.media_type().to_string(),
                    diff_id: p.diff_id.clone(),
                    dest: p.dest(),
                };
                p.progress.event(LayerEvent::Extracting);
                let _ = tx.send(Msg::Submitted(p));
                if let Err(e) = unpacker.submit(&job) {
                    fail(Msg::SubmitFailed {
                        dest: job.dest,
                        error: e.into(),
                    });
                }
            }
            Ok(Fetched::Exists) => {}
            Err(e) => fail(Msg::Failed(e)),
        }
    }
}

/// What `fetch_one` did with a layer.
enum Fetched {
    /// Downloaded (or found as a blob), its work lock held: unpack it.
    Unpack(Pending),
    /// Another process committed the layer meanwhile.
    Exists,
    /// Another process holds the layer's work lock: wait for it later.
    Busy,
}

/// Take the layer's work lock (without waiting), download its blob when needed and
/// prepare the unpack.
fn fetch_one(f: &Fetch<'_>, desc: &Descriptor, diff_id: &str) -> Result<Fetched, Error> {
    let store = f.store;
    let digest = desc.digest().to_string();
    let progress = f.progress.layer(&short(desc), desc.size());
    let hex = digest_hex(diff_id)?;
    let Some(lock) = store.try_lock_work(&format!("layer-{hex}"))? else {
        progress.event(LayerEvent::Busy);
        return Ok(Fetched::Busy);
    };
    if store.has_layer(diff_id) {
        let _ = std::fs::remove_file(lock.path());
        progress.event(LayerEvent::AlreadyExists);
        return Ok(Fetched::Exists);
    }
    // A failed download leaves nothing in tmp/: neither its lock file nor a partial blob.
    let prepare = || -> Result<PathBuf, Error> {
        if store.has_blob(&digest) {
            progress.event(LayerEvent::BlobPresent);
        } else {
            let blob_hex = digest_hex(&digest)?;
            let part = store.tmp_dir().join(format!("blob-{blob_hex}.part"));
            progress.event(LayerEvent::Downloading);
            let started = Instant::now();
            f.client
                .download_blob(f.reference, desc, &part, &|n| progress.advance(n))
                .map_err(|e| {
                    progress.event(LayerEvent::Failed);
                    let _ = std::fs::remove_file(&part);
                    Error::Download {
                        layer: short(desc),
                        source: e,
                    }
                })?;
            let dest = store.blob_path(&digest)?;
            std::fs::rename(&part, &dest).map_err(|e| Error::Io {
                what: format!("store blob {}", dest.display()),
                source: e,
            })?;
            progress.event(LayerEvent::Downloaded {
                elapsed: started.elapsed(),
            });
        }
        let work = store.tmp_path(&format!("layer-{hex}-{}", super::unique()));
        std::fs::create_dir(&work).map_err(|e| Error::Io {
            what: format!("create {}", work.display()),
            source: e,
        })?;
        Ok(work)
    };
    let work = match prepare() {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(lock.path());
            return Err(e);
        }
    };
    Ok(Fetched::Unpack(Pending {
        diff_id: diff_id.to_string(),
        blob_digest: digest,
        work,
        progress,
        lock,
    }))
}

/// Drop a layer's work lock, removing its file first (whoever waits on it rechecks).
fn release(p: Pending) {
    let _ = std::fs::remove_file(p.lock.path());
    drop(p);
}

/// Flush the new layers to disk before they become visible (one syncfs for all).
fn sync_store(store: &Store) {
    if std::env::var("BOX_UNPACK_SYNC").is_ok_and(|v| v == "0") {
        return;
    }
    if let Ok(f) = std::fs::File::open(store.root()) {
        let _ = nix::unistd::syncfs(&f);
    }
}

fn commit(store: &Store, r: &JobResult, p: &Pending) -> Result<Vec<PathBuf>, Error> {
    let record = LayerRecord {
        diff_id: p.diff_id.clone(),
        size: r.stats.size,
        compressed_digest: Some(p.blob_digest.clone()),
        created: super::now_secs(),
    };
    Ok(store.commit_layer(&p.work, &record)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records what a pull reports.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    struct NoLayer;
    impl LayerProgress for NoLayer {
        fn advance(&self, _: u64) {}
        fn event(&self, _: LayerEvent) {}
    }

    impl Progress for Recorder {
        fn event(&self, event: Event<'_>) {
            self.0.lock().unwrap().push(format!("{event:?}"));
        }
        fn layer(&self, name: &str, _: u64) -> Box<dyn LayerProgress> {
            self.0.lock().unwrap().push(format!("layer {name}"));
            Box::new(NoLayer)
        }
    }

    fn paths(t: &std::path::Path) -> Paths {
        Paths {
            data: t.join("data"),
            runtime: t.join("run"),
            config: t.join("config"),
        }
    }

    /// A one-layer image named `name` committed to the store of `paths`.
    fn stored_image(paths: &Paths, name: &str) -> Image {
        let store = Store::open(paths).unwrap();
        let layer = format!("sha256:{}", "1".repeat(64));
        let lp = store.layer_path(&layer);
        std::fs::create_dir_all(lp.join("diff")).unwrap();
        let record = LayerRecord {
            diff_id: layer.clone(),
            size: 1,
            compressed_digest: None,
            created: 0,
        };
        std::fs::write(lp.join("layer.json"), serde_json::to_vec(&record).unwrap()).unwrap();
        let config = serde_json::from_str(&format!(
            r#"{{"architecture":"{}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#,
            Platform::host().architecture
        ))
        .unwrap();
        let image = Image {
            id: "a".repeat(64),
            names: Vec::new(),
            repo_digests: Vec::new(),
            manifest_digest: None,
            manifest_media_type: None,
            config,
            diff_ids: vec![layer],
            layers: Vec::new(),
            stored: 0,
            size: 0,
            layer_root: None,
        };
        store.commit_image(image, &[name.to_string()]).unwrap()
    }

    #[test]
    fn policy_never_without_the_image_names_the_fix() {
        let t = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        let err = ensure(
            &paths(t.path()),
            "127.0.0.1:9/none:1",
            Policy::Never,
            &Options::default(),
            &rec,
        )
        .unwrap_err();
        assert!(matches!(err, Error::NotPresent(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "image 127.0.0.1:9/none:1 is not in the store and the pull policy is never: run `box pull 127.0.0.1:9/none:1` first"
        );
        assert!(rec.0.lock().unwrap().is_empty());
    }

    #[test]
    fn a_stored_image_is_used_without_a_registry() {
        let t = tempfile::tempdir().unwrap();
        let paths = paths(t.path());
        // Port 9 (discard) on loopback: nothing answers, so any request would fail.
        let name = "127.0.0.1:9/test/local:1";
        let image = stored_image(&paths, name);
        let rec = Recorder::default();
        for policy in [Policy::Missing, Policy::Never] {
            let got = ensure(&paths, name, policy, &Options::default(), &rec).unwrap();
            assert_eq!(got.id, image.id);
        }
        // Of another platform, it does not count as present.
        let other = Options {
            platform: Some("linux/s390x".into()),
            tls_verify: None,
        };
        let err = ensure(&paths, name, Policy::Never, &other, &rec).unwrap_err();
        assert!(matches!(err, Error::NotPresent(_)), "{err:?}");
        assert!(rec.0.lock().unwrap().is_empty(), "{:?}", rec.0);
    }

    #[test]
    fn errors_read_as_one_line_without_repeats() {
        let inner = Error::Download {
            layer: "0123456789ab".into(),
            source: registry::Error::ManifestUnknown {
                reference: "x".into(),
            },
        };
        let err = anyhow::Error::new(Error::Pull {
            reference: "127.0.0.1:5000/a:1".into(),
            source: Box::new(inner),
        });
        assert_eq!(
            crate::exit::one_line(&err),
            "pull 127.0.0.1:5000/a:1: download layer 0123456789ab: manifest unknown: x does not exist in the registry"
        );
        assert_eq!(crate::exit::code_of(&err), crate::exit::BOX_ERROR);
    }
}
