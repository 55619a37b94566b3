//! Offline image transport: import, load, save (the commands keep the flags and output).
//!
//! - `import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.
//! - `save`: docker-archive (`manifest.json` + config + layer blobs, as `docker save`
//!   writes since 25.0: `blobs/sha256/<hex>` paths, layers kept compressed) or oci-archive
//!   (an OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/`).
//! - `load`: either format (also the classic docker layout with `<id>/layer.tar` and
//!   symlinked duplicate layers). The archive is extracted into the store's tmp/ (regular
//!   files only, names checked), every blob is verified, the layers go through the same
//!   unpack helper as a pull.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::unpack::{Compression, Job};
use super::{Image, LayerBlob, LayerRecord, Store, names};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] super::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    /// An I/O error the step's own message already explains.
    #[error(transparent)]
    PlainIo(#[from] io::Error),
    #[error("{what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    PlainJson(#[from] serde_json::Error),
    /// What is wrong with an archive, a tarball or a `--change`.
    #[error("{0}")]
    Invalid(String),
    #[error("read the archive: {0}")]
    Archive(#[source] Box<Error>),
    /// The unpack helper's message for a layer it could not unpack.
    #[error("{0}")]
    Unpack(String),
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// `Error::Io` with `what` failed.
fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// `Error::Json` with `what` failed.
fn json_err(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
    let what = what.into();
    move |source| Error::Json { what, source }
}

/// `Error::Invalid`.
fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

/// What failed, for errors without a message of their own (like anyhow's `context`): an
/// absent value is `Error::Invalid`, an I/O or JSON error gets `what` in front.
trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Result<T> {
        self.ok_or_else(|| invalid(what))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| invalid(what()))
    }
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(io_err(what))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| io_err(what())(e))
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(json_err(what))
    }
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| json_err(what())(e))
    }
}

macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::storage::archive::Error::Invalid(format!($($t)*)))
    };
}

mod load;
mod save;

pub use load::load;
pub use save::{save, save_plan};

/// The archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `manifest.json` + config + layer blobs (and the OCI layout files too).
    DockerArchive,
    /// An OCI image layout.
    OciArchive,
}

/// An image and the names it has in an archive.
#[derive(Debug, Clone)]
pub struct Named {
    pub image: Image,
    pub names: Vec<String>,
}

/// Where `import` reads the root filesystem tarball.
#[derive(Debug, Clone, Copy)]
pub enum Tarball<'a> {
    Stdin,
    Path(&'a Path),
}

/// What `import` puts in the image config besides the layer.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile-style instructions (`CMD ["/bin/sh"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    /// The history entry's comment.
    pub message: Option<String>,
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Make a root filesystem tarball (plain, gzip or zstd) a one-layer image named
/// `reference`. `warn` gets what the user should know (skipped device nodes).
pub fn import(
    store: &Store,
    reference: &str,
    tarball: Tarball<'_>,
    opts: &ImportOptions,
    warn: &dyn Fn(&str),
) -> Result<Image> {
    let name = names::local(reference)?;
    let work = TmpDir::new(store, "import")?;
    let file = work.path.join("layer");
    // Copy the tarball into the store (a pipe cannot be read twice).
    {
        let mut out = File::create(&file).map_err(io_err("create a temporary file"))?;
        match tarball {
            Tarball::Stdin => {
                io::copy(&mut io::stdin().lock(), &mut out)
                    .map_err(io_err("read the tarball from stdin"))?;
            }
            Tarball::Path(p) => {
                let mut f = File::open(p).map_err(io_err(format!("open {}", p.display())))?;
                io::copy(&mut f, &mut out).map_err(io_err(format!("read {}", p.display())))?;
            }
        }
    }
    let layers = ingest_layers(store, vec![(file, None)], warn)?;
    let (diff_id, blob) = layers
        .into_iter()
        .next()
        .ok_or_else(|| invalid("no layer"))?;

    let mut cfg = json!({});
    for change in &opts.changes {
        apply_change(&mut cfg, change)?;
    }
    let now = crate::units::rfc3339_seconds(super::now_secs());
    let config = json!({
        "created": now,
        "architecture": crate::registry::Platform::host().architecture,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{
            "created": now,
            "created_by": "box import",
            "comment": opts.message.clone().unwrap_or_default(),
        }],
    });
    store_image(store, &config, vec![diff_id], vec![blob], None, &[name])
}

/// `--change 'CMD ["/bin/sh"]'` and friends, docker-style.
pub(crate) fn apply_change(cfg: &mut Value, change: &str) -> Result<()> {
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| invalid(format!("--change {change:?}: expected INSTRUCTION VALUE")))?;
    let rest = rest.trim();
    let list = || -> Value {
        match serde_json::from_str::<Vec<String>>(rest) {
            Ok(v) => json!(v),
            Err(_) => json!(["/bin/sh", "-c", rest]),
        }
    };
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => cfg["Cmd"] = list(),
        "ENTRYPOINT" => cfg["Entrypoint"] = list(),
        "WORKDIR" => cfg["WorkingDir"] = json!(rest),
        "USER" => cfg["User"] = json!(rest),
        "STOPSIGNAL" => cfg["StopSignal"] = json!(rest),
        "HEALTHCHECK" => {
            let hc = crate::spec::health::parse_instruction(rest)
                .map_err(|e| invalid(format!("--change: {e}")))?;
            cfg["Healthcheck"] = serde_json::to_value(hc).unwrap_or_default();
        }
        "ENV" => {
            let kv = match rest.split_once('=') {
                Some((k, v)) => format!("{}={}", k.trim(), v.trim()),
                None => {
                    let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                    format!("{k}={}", v.trim())
                }
            };
            let mut env: Vec<Value> = cfg["Env"].as_array().cloned().unwrap_or_default();
            // A variable set again replaces the image's value (`box commit -c 'ENV PATH=..'`).
            let key = kv.split('=').next().unwrap_or_default().to_string();
            env.retain(|e| e.as_str().and_then(|e| e.split('=').next()) != Some(key.as_str()));
            env.push(json!(kv));
            cfg["Env"] = json!(env);
        }
        "EXPOSE" => {
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                if !cfg["ExposedPorts"].is_object() {
                    cfg["ExposedPorts"] = json!({});
                }
                cfg["ExposedPorts"][p] = json!({});
            }
        }
        "LABEL" => {
            let (k, v) = rest
                .split_once('=')
                .ok_or_else(|| invalid(format!("--change {change:?}: LABEL KEY=VALUE")))?;
            if !cfg["Labels"].is_object() {
                cfg["Labels"] = json!({});
            }
            cfg["Labels"][k.trim()] = json!(v.trim().trim_matches('"'));
        }
        "VOLUME" => {
            if !cfg["Volumes"].is_object() {
                cfg["Volumes"] = json!({});
            }
            cfg["Volumes"][rest] = json!({});
        }
        other => bail!(
            "--change {other}: unsupported (use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR or STOPSIGNAL)"
        ),
    }
    Ok(())
}

/// A directory of ours under the store's tmp/, removed (through the helper when needed)
/// on drop.
struct TmpDir {
    path: PathBuf,
    data: PathBuf,
}

impl TmpDir {
    fn new(store: &Store, what: &str) -> Result<TmpDir> {
        let path = store.tmp_path(&format!("{what}-{}", super::unique()));
        std::fs::create_dir(&path).map_err(io_err(format!("create {}", path.display())))?;
        Ok(TmpDir {
            path,
            data: store.data_dir().to_path_buf(),
        })
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = super::remove::remove_trees(&self.data, std::slice::from_ref(&self.path));
    }
}

/// Turn local layer files (ours, under tmp/) into blobs and committed layers. Each comes
/// with its expected diff_id when known. Returns (diff_id, blob) per input, in order.
pub(crate) fn ingest_layers(
    store: &Store,
    files: Vec<(PathBuf, Option<String>)>,
    warn: &dyn Fn(&str),
) -> Result<Vec<(String, LayerBlob)>> {
    let mut out: Vec<(String, LayerBlob)> = Vec::new();
    let mut jobs: Vec<(usize, Job, PathBuf)> = Vec::new();
    // Each diff_id is unpacked once, however many entries have it.
    let mut queued = std::collections::HashSet::new();
    for (i, (file, diff_id)) in files.into_iter().enumerate() {
        let (hex, size, compression) = hash_and_sniff(&file)?;
        let digest = format!("sha256:{hex}");
        let media_type = match compression {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        };
        let blob_path = store.blob_path(&digest)?;
        if blob_path.is_file() {
            let _ = std::fs::remove_file(&file);
        } else {
            std::fs::rename(&file, &blob_path)
                .map_err(io_err(format!("store blob {}", blob_path.display())))?;
        }
        let blob = LayerBlob {
            digest: digest.clone(),
            media_type: media_type.to_string(),
            size,
        };
        out.push((diff_id.clone().unwrap_or_default(), blob));
        if let Some(d) = &diff_id
            && (store.has_layer(d) || !queued.insert(d.clone()))
        {
            continue;
        }
        let work = store.tmp_path(&format!("layer-{}", super::unique()));
        std::fs::create_dir(&work).map_err(io_err(format!("create {}", work.display())))?;
        jobs.push((
            i,
            Job {
                blob: blob_path,
                media_type: media_type.to_string(),
                diff_id: diff_id.unwrap_or_default(),
                dest: work.join("diff"),
            },
            work,
        ));
    }
    if jobs.is_empty() {
        return Ok(out);
    }
    let just_jobs: Vec<Job> = jobs.iter().map(|(_, j, _)| j.clone()).collect();
    let results = super::unpack::unpack_all(store, &just_jobs);
    let mut garbage: Vec<PathBuf> = Vec::new();
    let mut first_err: Option<Error> = None;
    match results {
        Err(e) => first_err = Some(e.into()),
        Ok(results) => {
            if let Ok(f) = File::open(store.root()) {
                let _ = nix::unistd::syncfs(&f);
            }
            for (i, job, work) in &jobs {
                let r = results.iter().find(|r| r.dest == job.dest);
                match r {
                    Some(r) if r.ok => {
                        for w in &r.stats.warnings {
                            warn(w);
                        }
                        let record = LayerRecord {
                            diff_id: r.stats.diff_id.clone(),
                            size: r.stats.size,
                            compressed_digest: Some(out[*i].1.digest.clone()),
                            created: super::now_secs(),
                        };
                        out[*i].0 = r.stats.diff_id.clone();
                        match store.commit_layer(work, &record) {
                            Ok(mut g) => garbage.append(&mut g),
                            Err(e) => {
                                garbage.push(work.clone());
                                first_err.get_or_insert(e.into());
                            }
                        }
                    }
                    other => {
                        garbage.push(work.clone());
                        let msg = other
                            .and_then(|r| r.error.clone())
                            .unwrap_or_else(|| "the unpack helper gave no answer".into());
                        first_err.get_or_insert(Error::Unpack(msg));
                    }
                }
            }
        }
    }
    if first_err.is_some() {
        garbage.extend(
            jobs.iter()
                .map(|(_, _, w)| w.clone())
                .filter(|w| w.exists()),
        );
    }
    super::remove::remove_trees(store.data_dir(), &garbage)?;
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Ingest the layer files `sources` of an extracted archive under `work`, each with its
/// expected diff_id: every distinct (file, diff_id) is staged once, however often the
/// archive lists it, as a hard link (no copy: the extracted file may serve several images)
/// and unpacked once. Returns (diff_id, blob) per entry of `sources`, in order.
fn ingest_archive_layers(
    store: &Store,
    work: &Path,
    sources: Vec<(PathBuf, String)>,
    warn: &dyn Fn(&str),
) -> Result<Vec<(String, LayerBlob)>> {
    let mut staged: Vec<(PathBuf, Option<String>)> = Vec::new();
    let mut seen: HashMap<(PathBuf, String), usize> = HashMap::new();
    let mut order = Vec::with_capacity(sources.len());
    for (src, diff_id) in sources {
        let key = (src, diff_id);
        let i = match seen.get(&key) {
            Some(&i) => i,
            None => {
                let (src, diff_id) = &key;
                let dst = work.join(format!("in-{}", super::unique()));
                if std::fs::hard_link(src, &dst).is_err() {
                    std::fs::copy(src, &dst)
                        .map_err(io_err(format!("read layer {}", src.display())))?;
                }
                staged.push((dst, Some(diff_id.clone())));
                seen.insert(key, staged.len() - 1);
                staged.len() - 1
            }
        };
        order.push(i);
    }
    let layers = ingest_layers(store, staged, warn)?;
    Ok(order.into_iter().map(|i| layers[i].clone()).collect())
}

/// sha256 hex, size and compression of a file.
fn hash_and_sniff(p: &Path) -> Result<(String, u64, Compression)> {
    let mut f = File::open(p).map_err(io_err(format!("open {}", p.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    let mut head = Vec::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 8 {
            head.extend_from_slice(&buf[..n.min(8)]);
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(h.finalize()), size, Compression::sniff(&head)))
}

/// Write the config blob and the image record; `manifest` is (digest, media type).
pub(crate) fn store_image(
    store: &Store,
    config: &Value,
    diff_ids: Vec<String>,
    layers: Vec<LayerBlob>,
    manifest: Option<(String, String)>,
    image_names: &[String],
) -> Result<Image> {
    let bytes = serde_json::to_vec(config)?;
    store_image_bytes(store, &bytes, diff_ids, layers, manifest, image_names)
}

/// Like `store_image`, with the config's exact bytes (its digest is the image id). Images
/// without a manifest (imported ones) get an OCI manifest, so that `save` can write it.
fn store_image_bytes(
    store: &Store,
    config_bytes: &[u8],
    diff_ids: Vec<String>,
    layers: Vec<LayerBlob>,
    manifest: Option<(String, String)>,
    image_names: &[String],
) -> Result<Image> {
    let id = hex::encode(Sha256::digest(config_bytes));
    store.put_blob(&format!("sha256:{id}"), config_bytes)?;
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(config_bytes).context("the image config is invalid")?;
    let manifest = match manifest {
        Some(m) => Some(m),
        None => {
            let m = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": format!("sha256:{id}"), "size": config_bytes.len()},
                "layers": layers.iter().map(|l| json!({"mediaType": l.media_type, "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
            });
            let mb = serde_json::to_vec(&m)?;
            let d = format!("sha256:{}", hex::encode(Sha256::digest(&mb)));
            store.put_blob(&d, &mb)?;
            Some((d, OCI_MANIFEST.to_string()))
        }
    };
    let (manifest_digest, manifest_media_type) = manifest.unzip();
    let image = Image {
        id,
        names: Vec::new(),
        repo_digests: Vec::new(),
        manifest_digest,
        manifest_media_type,
        config,
        diff_ids,
        layers,
        stored: 0,
        size: 0,
        layer_root: None,
    };
    Ok(store.commit_image(image, image_names)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes() {
        let mut c = json!({});
        apply_change(&mut c, r#"CMD ["/bin/sh"]"#).unwrap();
        apply_change(&mut c, "ENV A=1").unwrap();
        apply_change(&mut c, "EXPOSE 80").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        assert_eq!(c["Cmd"][0], "/bin/sh");
        assert_eq!(c["Env"][0], "A=1");
        apply_change(&mut c, "ENV A 2").unwrap();
        assert_eq!(c["Env"], json!(["A=2"]), "set again, replaced");
        assert!(c["ExposedPorts"]["80/tcp"].is_object());
        assert!(apply_change(&mut c, "RUN x").is_err());
    }
}
