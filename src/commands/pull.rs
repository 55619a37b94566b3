//! `box pull`: fetch an image into the store, and `ensure_image` for `box run`/`create`.
//!
//! resolve → for each layer not in the store: download its blob (unless present) on a
//! bounded pool of threads, and hand it to the unpack helper as soon as it is complete
//! (unpacking overlaps the other downloads) → commit each layer under the store lock →
//! write the image record and move the names. Every thread is joined before returning.
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Descriptor;

use crate::cli::Ctx;
use crate::cli::args::{LogLevel, PullArgs, PullPolicy};
use crate::registry::{self, Client, Platform, Reference};
use crate::storage::unpack::{Job, JobResult, Unpacker};
use crate::storage::{self, FileLock, Image, LayerBlob, LayerRecord, Store, digest_hex};

/// Download threads at most.
const POOL: usize = 5;

pub fn pull(ctx: &Ctx, args: PullArgs) -> Result<u8> {
    let image = pull_image(
        ctx,
        &args.image,
        args.pull.platform.as_deref(),
        args.pull.quiet,
        args.pull.tls_verify,
    )?;
    println!("{}", image.id);
    Ok(0)
}

/// The image `reference` names, pulled first according to `policy` (`Missing`: only when
/// absent or of another platform; `Always`; `Never`: fail when absent; `Newer`: when the
/// registry's manifest differs from the local one). Progress goes to stderr unless `quiet`.
/// Joins every thread it starts.
pub fn ensure_image(
    ctx: &Ctx,
    reference: &str,
    policy: PullPolicy,
    platform: Option<&str>,
    quiet: bool,
) -> Result<Image> {
    let store = Store::open(&ctx.paths)?;
    let local = store
        .find_image(reference)?
        .filter(|i| platform.is_none_or(|p| platform_matches(i, p)));
    match (policy, local) {
        (PullPolicy::Never, None) => Err(anyhow::Error::new(crate::exit::Coded::new(
            crate::exit::BOX_ERROR,
            format!(
                "image {reference} is not in the store and the pull policy is never: run `box pull {reference}` first"
            ),
        ))),
        (PullPolicy::Missing | PullPolicy::Never, Some(image)) => Ok(image),
        (PullPolicy::Newer, Some(image)) => {
            let r = Reference::parse(reference)?;
            let plat = match platform {
                Some(p) => Platform::parse(p)?,
                None => Platform::host(),
            };
            let client = registry::client_for(&ctx.paths, None);
            match client.resolve(&r, &plat) {
                Ok(res) if image.manifest_digest.as_deref() == Some(&res.manifest_digest) => {
                    Ok(image)
                }
                Ok(_) => pull_image(ctx, reference, platform, quiet, None),
                Err(e) => {
                    if !quiet {
                        eprintln!(
                            "box: warning: cannot check {reference} for a newer image ({e}); using the local one"
                        );
                    }
                    Ok(image)
                }
            }
        }
        _ => pull_image(ctx, reference, platform, quiet, None),
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

/// Pull `name` into the store and return its record.
pub fn pull_image(
    ctx: &Ctx,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
    tls_verify: Option<bool>,
) -> Result<Image> {
    let reference = Reference::parse(name)?;
    let platform = match platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let store = Store::open(&ctx.paths)?;
    let out = Output::new(quiet, ctx.global.log_level);

    // Leftovers of killed pulls go first (single-threaded here).
    match store.detach_stale_tmp() {
        Ok(stale) => {
            if let Err(e) = storage::remove::remove_trees(store.data_dir(), &stale) {
                out.warn(&format!("cannot clean leftovers of an earlier pull: {e}"));
            }
        }
        Err(e) => out.warn(&format!("cannot clean leftovers of an earlier pull: {e}")),
    }

    let _marker = store.mark_pull()?;
    let client = registry::client_for(&ctx.paths, tls_verify);
    out.line(&format!("Trying to pull {reference}..."));
    let resolved = client
        .resolve(&reference, &platform)
        .with_context(|| format!("pull {reference}"))?;

    let config_digest = resolved.manifest.config().digest().to_string();
    let id = digest_hex(&config_digest)?.to_string();
    store.put_blob(&config_digest, &resolved.config_bytes)?;
    store.put_blob(&resolved.manifest_digest, &resolved.manifest_bytes)?;

    let diff_ids: Vec<String> = resolved.config.rootfs().diff_ids().clone();
    let descs: Vec<Descriptor> = resolved.manifest.layers().clone();
    if diff_ids.len() != descs.len() {
        anyhow::bail!(
            "pull {reference}: the manifest lists {} layers but the config {} diff_ids: the image is broken in the registry",
            descs.len(),
            diff_ids.len()
        );
    }
    for d in diff_ids.iter() {
        digest_hex(d).with_context(|| format!("pull {reference}: bad diff_id in the config"))?;
    }

    // The layers to fetch: one per missing diff_id.
    let mut wanted: Vec<(Descriptor, String)> = Vec::new();
    for (desc, diff_id) in descs.iter().zip(&diff_ids) {
        if store.has_layer(diff_id) {
            out.line(&format!(
                "Copying blob {} skipped: already exists",
                short(desc)
            ));
        } else if !wanted.iter().any(|(_, d)| d == diff_id) {
            wanted.push((desc.clone(), diff_id.clone()));
        }
    }
    // Layers another box process is fetching are left to it and waited for afterwards,
    // holding no lock of our own then: two pulls that wanted each other's layers while
    // holding their own would wait forever.
    while !wanted.is_empty() {
        let busy = fetch_layers(&store, &client, &reference, &wanted, &out)
            .with_context(|| format!("pull {reference}"))?;
        for (desc, diff_id) in &busy {
            let hex = digest_hex(diff_id)?;
            // Its holder is done once we get it; the lock file goes as `release` does it.
            let lock = store.lock_work(&format!("layer-{hex}"))?;
            let _ = std::fs::remove_file(lock.path());
            drop(lock);
            if store.has_layer(diff_id) {
                out.line(&format!(
                    "Copying blob {} done by another box process",
                    short(desc)
                ));
            }
        }
        // What the other process failed to store is ours to fetch again.
        wanted = busy
            .into_iter()
            .filter(|(_, d)| !store.has_layer(d))
            .collect();
    }

    out.line("Writing manifest to image destination");
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
    Ok(image)
}

fn short(desc: &Descriptor) -> String {
    let d = desc.digest().to_string();
    let hex = d.split_once(':').map(|(_, h)| h).unwrap_or(&d);
    hex.chars().take(12).collect()
}

/// What one submitted unpack job is waiting for.
struct Pending {
    diff_id: String,
    blob_digest: String,
    work: PathBuf,
    bar: Bar,
    lock: FileLock,
}

/// Download and unpack `wanted` layers: a bounded pool downloads; each finished blob goes
/// to the unpack helper at once; a collector commits what the helper reports. Returns the
/// layers whose work lock another process holds (not waited for here: see `pull_image`).
fn fetch_layers(
    store: &Store,
    client: &Client,
    reference: &Reference,
    wanted: &[(Descriptor, String)],
    out: &Output,
) -> Result<Vec<(Descriptor, String)>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // Spawned before any thread exists: the helper is forked from a single thread.
    let mut unpacker = Unpacker::spawn(store).context("start the unpack helper")?;
    if let Some(why) = &unpacker.owners_squashed {
        let reason = match why {
            crate::userns::Error::NoSubids { line, file, .. } => format!(
                "no subordinate ids in {file} (to keep the owners, as root add the line '{line}' to /etc/subuid and /etc/subgid, then remove the image and pull it again)"
            ),
            other => other.to_string(),
        };
        out.warn(&format!(
            "{reason}: the image's files are stored as yours (the owners in the image are lost), and containers need --userns=single"
        ));
    }
    let results = unpacker.take_results();

    let next = AtomicUsize::new(0);
    let cancel = AtomicBool::new(false);
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let pending: Mutex<HashMap<PathBuf, Pending>> = Mutex::new(HashMap::new());
    let garbage: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    let finished: Mutex<Vec<(JobResult, Pending)>> = Mutex::new(Vec::new());
    let busy: Mutex<Vec<(Descriptor, String)>> = Mutex::new(Vec::new());
    let fail = |e: anyhow::Error| {
        cancel.store(true, Ordering::SeqCst);
        errors.lock().unwrap().push(e);
    };

    std::thread::scope(|s| {
        // Collector: gather what the helper finished; failures stop the other workers.
        let collector = s.spawn(|| {
            for r in results {
                let Some(p) = pending.lock().unwrap().remove(&r.dest) else {
                    continue;
                };
                if r.ok {
                    p.bar.done("Extracted");
                    finished.lock().unwrap().push((r, p));
                } else {
                    garbage.lock().unwrap().push(p.work.clone());
                    p.bar.fail();
                    fail(anyhow::anyhow!(
                        "{}",
                        r.error.clone().unwrap_or_else(|| "unpack failed".into())
                    ));
                    release(p);
                }
            }
        });

        let workers: Vec<_> = (0..POOL.min(wanted.len()))
            .map(|_| {
                s.spawn(|| {
                    loop {
                        if cancel.load(Ordering::SeqCst) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some((desc, diff_id)) = wanted.get(i) else {
                            break;
                        };
                        match fetch_one(store, client, reference, desc, diff_id, out) {
                            Ok(Fetched::Busy) => {
                                busy.lock().unwrap().push((desc.clone(), diff_id.clone()));
                            }
                            Ok(Fetched::Unpack(p)) => {
                                let job = Job {
                                    blob: store.blob_path(&p.blob_digest).unwrap_or_default(),
                                    media_type: desc.media_type().to_string(),
                                    diff_id: p.diff_id.clone(),
                                    dest: p.work.join("diff"),
                                };
                                p.bar.message("Extracting");
                                let work = p.work.clone();
                                pending.lock().unwrap().insert(job.dest.clone(), p);
                                if let Err(e) = unpacker.submit(&job) {
                                    if let Some(p) = pending.lock().unwrap().remove(&job.dest) {
                                        p.bar.fail();
                                    }
                                    garbage.lock().unwrap().push(work);
                                    fail(e.into());
                                }
                            }
                            Ok(Fetched::Exists) => {}
                            Err(e) => fail(e),
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        unpacker.close();
        let _ = collector.join();
    });
    let helper = unpacker.wait();
    // Jobs the helper never answered.
    for (_, p) in pending.into_inner().unwrap() {
        p.bar.fail();
        garbage.lock().unwrap().push(p.work);
        let _ = std::fs::remove_file(p.lock.path());
    }
    // One syncfs for every new layer, then each is renamed into place (and its work lock
    // released, so that parallel pulls waiting for it find it committed).
    let finished = finished.into_inner().unwrap();
    if !finished.is_empty() {
        sync_store(store);
    }
    let mut warnings = Vec::new();
    let mut skipped_devices = Vec::new();
    for (r, p) in finished {
        match commit(store, &r, &p) {
            Ok(mut g) => {
                garbage.lock().unwrap().append(&mut g);
                for w in &r.stats.warnings {
                    match w.strip_prefix("skipped device node ") {
                        Some(rest) => {
                            skipped_devices.push(rest.split(':').next().unwrap_or(rest).to_string())
                        }
                        None => warnings.push(w.clone()),
                    }
                }
                for n in &r.stats.notes {
                    out.debug(n);
                }
            }
            Err(e) => {
                garbage.lock().unwrap().push(p.work.clone());
                errors.lock().unwrap().push(e);
            }
        }
        release(p);
    }
    out.finish();
    if !skipped_devices.is_empty() {
        skipped_devices.sort();
        skipped_devices.dedup();
        out.warn(&format!(
            "skipped {} device node(s) that cannot be created rootless ({}); containers get their own /dev",
            skipped_devices.len(),
            skipped_devices.join(", ")
        ));
    }
    for w in warnings {
        out.warn(&w);
    }
    // Single-threaded again: remove what lost a race or failed.
    let garbage = garbage.into_inner().unwrap();
    if let Err(e) = storage::remove::remove_trees(store.data_dir(), &garbage) {
        out.warn(&format!("cannot remove temporary files: {e}"));
    }
    let mut errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        return Err(errors.remove(0));
    }
    helper?;
    Ok(busy.into_inner().unwrap())
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
fn fetch_one(
    store: &Store,
    client: &Client,
    reference: &Reference,
    desc: &Descriptor,
    diff_id: &str,
    out: &Output,
) -> Result<Fetched> {
    let digest = desc.digest().to_string();
    let bar = out.bar(&short(desc), desc.size());
    let hex = digest_hex(diff_id)?;
    let Some(lock) = store.try_lock_work(&format!("layer-{hex}"))? else {
        bar.done("Waiting for another box process");
        return Ok(Fetched::Busy);
    };
    if store.has_layer(diff_id) {
        let _ = std::fs::remove_file(lock.path());
        bar.done("Already exists");
        return Ok(Fetched::Exists);
    }
    // A failed download leaves nothing in tmp/: neither its lock file nor a partial blob.
    let prepare = || -> Result<PathBuf> {
        if store.has_blob(&digest) {
            bar.set_position(desc.size());
        } else {
            let blob_hex = digest_hex(&digest)?;
            let part = store.tmp_dir().join(format!("blob-{blob_hex}.part"));
            bar.message("Downloading");
            let started = Instant::now();
            client
                .download_blob(reference, desc, &part, &|n| bar.inc(n))
                .map_err(|e| {
                    bar.fail();
                    let _ = std::fs::remove_file(&part);
                    anyhow::Error::new(e).context(format!("download layer {}", short(desc)))
                })?;
            let dest = store.blob_path(&digest)?;
            std::fs::rename(&part, &dest)
                .with_context(|| format!("store blob {}", dest.display()))?;
            out.plain(&format!(
                "Copying blob {} done ({}, {:.1}s)",
                short(desc),
                crate::units::human_size(desc.size()),
                started.elapsed().as_secs_f64()
            ));
        }
        let work = store.tmp_path(&format!("layer-{hex}-{}", storage::unique()));
        std::fs::create_dir(&work).with_context(|| format!("create {}", work.display()))?;
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
        bar,
        lock,
    }))
}

/// Drop a layer's work lock, removing its file first (whoever waits on it rechecks).
fn release(p: Pending) {
    let lock_path = p.lock.path().to_path_buf();
    let _ = std::fs::remove_file(&lock_path);
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

fn commit(store: &Store, r: &JobResult, p: &Pending) -> Result<Vec<PathBuf>> {
    if !r.ok {
        anyhow::bail!(
            "{}",
            r.error.clone().unwrap_or_else(|| "unpack failed".into())
        );
    }
    let record = LayerRecord {
        diff_id: p.diff_id.clone(),
        size: r.stats.size,
        compressed_digest: Some(p.blob_digest.clone()),
        created: storage::now_secs(),
    };
    Ok(store.commit_layer(&p.work, &record)?)
}

/// Where pull progress goes: bars on a TTY, plain lines otherwise, nothing with -q.
pub struct Output {
    quiet: bool,
    mp: Option<MultiProgress>,
    debug: bool,
}

impl Output {
    pub fn new(quiet: bool, level: LogLevel) -> Output {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("BOX_NO_PROGRESS").is_none();
        let mp = (!quiet && tty)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        Output {
            quiet,
            mp,
            debug: level >= LogLevel::Debug,
        }
    }

    /// A status line (shown on a TTY and in plain mode).
    pub fn line(&self, s: &str) {
        if self.quiet {
            return;
        }
        match &self.mp {
            Some(mp) => {
                let _ = mp.println(s);
            }
            None => eprintln!("{s}"),
        }
    }

    /// A line only for non-TTY output (bars say it on a TTY).
    pub fn plain(&self, s: &str) {
        if !self.quiet && self.mp.is_none() {
            eprintln!("{s}");
        }
    }

    pub fn warn(&self, s: &str) {
        if self.quiet {
            return;
        }
        let msg = format!("box: warning: {s}");
        match &self.mp {
            Some(mp) => {
                let _ = mp.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    pub fn debug(&self, s: &str) {
        if self.debug {
            let msg = format!("box: debug: {s}");
            match &self.mp {
                Some(mp) => {
                    let _ = mp.println(msg);
                }
                None => eprintln!("{msg}"),
            }
        }
    }

    pub fn bar(&self, name: &str, total: u64) -> Bar {
        match &self.mp {
            Some(mp) => {
                let pb = mp.add(ProgressBar::new(total));
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} {wide_msg} [{bar:25.cyan/blue}] {bytes:>9}/{total_bytes:<9} {binary_bytes_per_sec:>11}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                pb.set_prefix(name.to_string());
                pb.set_message("Waiting");
                Bar {
                    pb: Some(pb),
                    name: name.to_string(),
                    plain: false,
                    last: Arc::new(Mutex::new(Instant::now())),
                }
            }
            None => {
                if !self.quiet {
                    eprintln!("Copying blob {name}");
                }
                Bar {
                    pb: None,
                    name: name.to_string(),
                    plain: !self.quiet,
                    last: Arc::new(Mutex::new(Instant::now())),
                }
            }
        }
    }

    /// Leave the finished bars on the screen, like docker's "Pull complete" lines.
    pub fn finish(&self) {}
}

/// One layer's progress.
pub struct Bar {
    pb: Option<ProgressBar>,
    name: String,
    plain: bool,
    last: Arc<Mutex<Instant>>,
}

impl Bar {
    pub fn inc(&self, n: u64) {
        if let Some(pb) = &self.pb {
            pb.inc(n);
        }
    }
    pub fn set_position(&self, n: u64) {
        if let Some(pb) = &self.pb {
            pb.set_position(n);
        }
    }
    pub fn message(&self, m: &str) {
        if let Some(pb) = &self.pb {
            if m == "Extracting" {
                // The download is over: stop showing a (decaying) rate.
                pb.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} {wide_msg} [{bar:25.cyan/blue}] {total_bytes:>9}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
            }
            pb.set_message(m.to_string());
        } else if self.plain && m == "Extracting" {
            let mut last = self.last.lock().unwrap();
            *last = Instant::now();
            eprintln!("Extracting {}", self.name);
        }
    }
    pub fn done(&self, m: &str) {
        if let Some(pb) = &self.pb {
            pb.set_message(m.to_string());
            pb.finish();
        } else if self.plain {
            let took = self.last.lock().unwrap().elapsed();
            if m == "Already exists" {
                eprintln!("Copying blob {} skipped: already exists", self.name);
            } else {
                eprintln!("Extracted {} ({:.1}s)", self.name, took.as_secs_f64());
            }
        }
    }
    pub fn fail(&self) {
        if let Some(pb) = &self.pb {
            pb.abandon_with_message("Failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_output_is_silent_when_quiet() {
        let o = Output::new(true, LogLevel::Warn);
        let b = o.bar("abc", 10);
        b.inc(5);
        b.done("Pull complete");
    }
}
