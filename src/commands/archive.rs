//! Offline image transport: import, load, save.
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
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::Ctx;
use crate::cli::args::{ArchiveFormat, ImportArgs, LoadArgs, SaveArgs};
use crate::storage::unpack::{Compression, Job, PATH_MAX, shown_name};
use crate::storage::{self, Image, LayerBlob, LayerRecord, Store, digest_hex, names};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

pub fn import(ctx: &Ctx, args: ImportArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let name = names::normalize(&args.reference)?;
    let work = TmpDir::new(&store, "import")?;
    let file = work.path.join("layer");
    // Copy the tarball into the store (a pipe cannot be read twice).
    {
        let mut out = File::create(&file).context("create a temporary file")?;
        if args.tarball == Path::new("-") {
            io::copy(&mut io::stdin().lock(), &mut out).context("read the tarball from stdin")?;
        } else {
            let mut f = File::open(&args.tarball)
                .with_context(|| format!("open {}", args.tarball.display()))?;
            io::copy(&mut f, &mut out)
                .with_context(|| format!("read {}", args.tarball.display()))?;
        }
    }
    let layers = ingest_layers(&store, vec![(file, None)])?;
    let (diff_id, blob) = layers.into_iter().next().context("no layer")?;

    let mut cfg = json!({});
    for change in &args.change {
        apply_change(&mut cfg, change)?;
    }
    let now = crate::units::rfc3339_seconds(storage::now_secs());
    let config = json!({
        "created": now,
        "architecture": crate::registry::Platform::host().architecture,
        "os": "linux",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{
            "created": now,
            "created_by": "box import",
            "comment": args.message.clone().unwrap_or_default(),
        }],
    });
    let image = store_image(&store, &config, vec![diff_id], vec![blob], None, &[name])?;
    println!("sha256:{}", image.id);
    Ok(0)
}

/// `--change 'CMD ["/bin/sh"]'` and friends, docker-style.
fn apply_change(cfg: &mut Value, change: &str) -> Result<()> {
    let (instr, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .with_context(|| format!("--change {change:?}: expected INSTRUCTION VALUE"))?;
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
        "ENV" => {
            let kv = match rest.split_once('=') {
                Some((k, v)) => format!("{}={}", k.trim(), v.trim()),
                None => {
                    let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
                    format!("{k}={}", v.trim())
                }
            };
            let env = cfg["Env"].as_array().cloned().unwrap_or_default();
            let mut env: Vec<Value> = env;
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
                .with_context(|| format!("--change {change:?}: LABEL KEY=VALUE"))?;
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
        let path = store.tmp_path(&format!("{what}-{}", storage::unique()));
        std::fs::create_dir(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TmpDir {
            path,
            data: store.data_dir().to_path_buf(),
        })
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = storage::remove::remove_trees(&self.data, std::slice::from_ref(&self.path));
    }
}

/// Turn local layer files (ours, under tmp/) into blobs and committed layers. Each comes
/// with its expected diff_id when known. Returns (diff_id, blob) per input, in order.
fn ingest_layers(
    store: &Store,
    files: Vec<(PathBuf, Option<String>)>,
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
                .with_context(|| format!("store blob {}", blob_path.display()))?;
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
        let work = store.tmp_path(&format!("layer-{}", storage::unique()));
        std::fs::create_dir(&work).with_context(|| format!("create {}", work.display()))?;
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
    let results = storage::unpack::unpack_all(store, &just_jobs);
    let mut garbage: Vec<PathBuf> = Vec::new();
    let mut first_err: Option<anyhow::Error> = None;
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
                            eprintln!("box: warning: {w}");
                        }
                        let record = LayerRecord {
                            diff_id: r.stats.diff_id.clone(),
                            size: r.stats.size,
                            compressed_digest: Some(out[*i].1.digest.clone()),
                            created: storage::now_secs(),
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
                        first_err.get_or_insert(anyhow::anyhow!("{msg}"));
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
    storage::remove::remove_trees(store.data_dir(), &garbage)?;
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
                let dst = work.join(format!("in-{}", storage::unique()));
                if std::fs::hard_link(src, &dst).is_err() {
                    std::fs::copy(src, &dst)
                        .with_context(|| format!("read layer {}", src.display()))?;
                }
                staged.push((dst, Some(diff_id.clone())));
                seen.insert(key, staged.len() - 1);
                staged.len() - 1
            }
        };
        order.push(i);
    }
    let layers = ingest_layers(store, staged)?;
    Ok(order.into_iter().map(|i| layers[i].clone()).collect())
}

/// sha256 hex, size and compression of a file.
fn hash_and_sniff(p: &Path) -> Result<(String, u64, Compression)> {
    let mut f = File::open(p).with_context(|| format!("open {}", p.display()))?;
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
fn store_image(
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

pub fn save(ctx: &Ctx, args: SaveArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let mut images: Vec<(Image, Vec<String>)> = Vec::new();
    for name in &args.images {
        let image = store.get_image(name)?;
        // A name given names the image in the archive; an id keeps all its names.
        let tags = match names::normalize(name) {
            Ok(n) if image.names.contains(&n) => vec![n],
            _ => image.names.clone(),
        };
        match images.iter_mut().find(|(i, _)| i.id == image.id) {
            Some((_, t)) => t.extend(tags),
            None => images.push((image, tags)),
        }
    }
    if args.output.is_none() && std::io::IsTerminal::is_terminal(&io::stdout()) {
        bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
    }
    let sink: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(io::BufWriter::new(
            File::create(p).with_context(|| format!("create {}", p.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    let mut tar = tar::Builder::new(sink);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut written = std::collections::BTreeSet::new();
    let mut add_blob = |tar: &mut tar::Builder<Box<dyn Write>>, digest: &str| -> Result<String> {
        let hex = digest_hex(digest)?.to_string();
        let name = format!("blobs/sha256/{hex}");
        if written.insert(hex.clone()) {
            let p = store.blob_path(digest)?;
            let mut f = File::open(&p).with_context(|| {
                format!("blob {digest} is missing from the store: pull the image again")
            })?;
            tar.append_file(&name, &mut f)
                .with_context(|| format!("write {name}"))?;
        }
        Ok(name)
    };
    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    for (image, tags) in &images {
        let config = add_blob(&mut tar, &image.digest_id())?;
        let mut layer_paths = Vec::new();
        if image.layers.len() != image.diff_ids.len() {
            bail!(
                "image {} has no layer blobs recorded: it cannot be saved",
                image.short_id()
            );
        }
        for l in &image.layers {
            layer_paths.push(add_blob(&mut tar, &l.digest)?);
        }
        let manifest = image
            .manifest_digest
            .clone()
            .context("the image has no manifest")?;
        add_blob(&mut tar, &manifest)?;
        let manifest_size = std::fs::metadata(store.blob_path(&manifest)?)?.len();
        docker_manifest.push(json!({
            "Config": config,
            "RepoTags": tags,
            "Layers": layer_paths,
        }));
        let mt = image
            .manifest_media_type
            .clone()
            .unwrap_or_else(|| OCI_MANIFEST.into());
        if tags.is_empty() {
            index.push(json!({"mediaType": mt, "digest": manifest, "size": manifest_size}));
        }
        for t in tags {
            let (_, tag) = names::repo_and_tag(t);
            index.push(json!({
                "mediaType": mt,
                "digest": manifest,
                "size": manifest_size,
                "annotations": {
                    "io.containerd.image.name": t,
                    "org.opencontainers.image.ref.name": tag,
                },
            }));
        }
    }
    let add_json = |tar: &mut tar::Builder<Box<dyn Write>>, name: &str, v: &Value| -> Result<()> {
        let bytes = serde_json::to_vec(v)?;
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, name, &bytes[..])?;
        Ok(())
    };
    add_json(
        &mut tar,
        "oci-layout",
        &json!({"imageLayoutVersion": "1.0.0"}),
    )?;
    add_json(
        &mut tar,
        "index.json",
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index}),
    )?;
    if args.format == ArchiveFormat::DockerArchive {
        add_json(&mut tar, "manifest.json", &json!(docker_manifest))?;
    }
    let mut sink = tar.into_inner().context("finish the archive")?;
    sink.flush().context("write the archive")?;
    Ok(0)
}

pub fn load(ctx: &Ctx, args: LoadArgs) -> Result<u8> {
    let store = Store::open(&ctx.paths)?;
    let work = TmpDir::new(&store, "load")?;
    let reader: Box<dyn Read> = match &args.input {
        Some(p) => Box::new(File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => Box::new(io::stdin().lock()),
    };
    let links = extract(reader, &work.path).context("read the archive")?;
    let resolve = |name: &str| -> Result<PathBuf> {
        let mut name = normalize_rel(name)?;
        for _ in 0..8 {
            match links.get(&name) {
                Some(t) => name = t.clone(),
                None => break,
            }
        }
        Ok(work.path.join(name))
    };

    let mut loaded: Vec<(Image, Vec<String>)> = Vec::new();
    if work.path.join("manifest.json").is_file() {
        let m: Vec<Value> = serde_json::from_slice(&read_capped(
            &work.path.join("manifest.json"),
            crate::registry::MAX_MANIFEST_SIZE,
            "manifest.json",
        )?)
        .context("manifest.json is not a docker-archive manifest")?;
        for entry in m {
            let config_path = resolve(
                entry["Config"]
                    .as_str()
                    .context("manifest.json: no Config")?,
            )?;
            let config_bytes = read_capped(
                &config_path,
                crate::registry::MAX_CONFIG_SIZE,
                "the image config",
            )?;
            let config: Value =
                serde_json::from_slice(&config_bytes).context("the image config is invalid")?;
            let diff_ids = config_diff_ids(&config)?;
            let layers = entry["Layers"]
                .as_array()
                .context("manifest.json: no Layers")?;
            if layers.len() != diff_ids.len() {
                bail!(
                    "manifest.json lists {} layers, the config {} diff_ids",
                    layers.len(),
                    diff_ids.len()
                );
            }
            let mut sources = Vec::new();
            for (l, d) in layers.iter().zip(&diff_ids) {
                let src = resolve(l.as_str().context("manifest.json: bad layer")?)?;
                sources.push((src, d.clone()));
            }
            let layers = ingest_archive_layers(&store, &work.path, sources)?;
            let tags: Vec<String> = entry["RepoTags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .filter_map(|t| names::normalize(t).ok())
                        .collect()
                })
                .unwrap_or_default();
            let blobs = layers.into_iter().map(|(_, b)| b).collect();
            let image = store_image_bytes(&store, &config_bytes, diff_ids, blobs, None, &tags)?;
            loaded.push((image, tags));
        }
    } else if work.path.join("index.json").is_file() {
        let index: Value = serde_json::from_slice(&read_capped(
            &work.path.join("index.json"),
            crate::registry::MAX_MANIFEST_SIZE,
            "index.json",
        )?)
        .context("index.json is invalid")?;
        for m in index["manifests"]
            .as_array()
            .context("index.json has no manifests")?
        {
            let mdigest = m["digest"]
                .as_str()
                .context("index.json: manifest without digest")?;
            let mbytes = read_verified(
                &work.path,
                mdigest,
                "manifest",
                crate::registry::MAX_MANIFEST_SIZE,
            )?;
            let manifest: Value = serde_json::from_slice(&mbytes).context("invalid manifest")?;
            if manifest["layers"].is_null() {
                eprintln!("box: warning: skipping {mdigest}: nested indexes are not supported");
                continue;
            }
            let cdigest = manifest["config"]["digest"]
                .as_str()
                .context("manifest without config")?;
            let config_bytes = read_verified(
                &work.path,
                cdigest,
                "config",
                crate::registry::MAX_CONFIG_SIZE,
            )?;
            let config: Value = serde_json::from_slice(&config_bytes)?;
            let diff_ids = config_diff_ids(&config)?;
            let mut sources = Vec::new();
            for (l, d) in manifest["layers"]
                .as_array()
                .context("manifest without layers")?
                .iter()
                .zip(&diff_ids)
            {
                let digest = l["digest"].as_str().context("layer without digest")?;
                let hex = digest_hex(digest)?;
                sources.push((work.path.join("blobs/sha256").join(hex), d.clone()));
            }
            let layers = ingest_archive_layers(&store, &work.path, sources)?;
            for ((_, b), l) in layers
                .iter()
                .zip(manifest["layers"].as_array().into_iter().flatten())
            {
                if Some(b.digest.as_str()) != l["digest"].as_str() {
                    bail!("layer blob {} does not match its digest", l["digest"]);
                }
            }
            let name = m["annotations"]["io.containerd.image.name"]
                .as_str()
                .or(m["annotations"]["org.opencontainers.image.ref.name"].as_str())
                .and_then(|n| names::normalize(n).ok())
                .filter(|n| n.contains('/'));
            let tags: Vec<String> = name.into_iter().collect();
            let mt = manifest["mediaType"]
                .as_str()
                .unwrap_or(OCI_MANIFEST)
                .to_string();
            store.put_blob(mdigest, &mbytes)?;
            let blobs = layers.into_iter().map(|(_, b)| b).collect();
            let image = store_image_bytes(
                &store,
                &config_bytes,
                diff_ids,
                blobs,
                Some((mdigest.to_string(), mt)),
                &tags,
            )?;
            loaded.push((image, tags));
        }
    } else {
        bail!("not a docker-archive or oci-archive: no manifest.json or index.json");
    }
    for (image, tags) in loaded {
        if !args.quiet || tags.is_empty() {
            if tags.is_empty() {
                println!("Loaded image ID: sha256:{}", image.id);
            }
            for t in tags {
                println!("Loaded image: {t}");
            }
        }
    }
    drop(work);
    Ok(0)
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

/// A blob of an extracted OCI layout (a manifest or config: at most `limit` bytes), its
/// digest checked.
fn read_verified(root: &Path, digest: &str, kind: &str, limit: u64) -> Result<Vec<u8>> {
    let hex = digest_hex(digest)?;
    let path = root.join("blobs/sha256").join(hex);
    if !path.is_file() {
        bail!("blob {digest} is missing from the archive");
    }
    let bytes = read_capped(&path, limit, &format!("{kind} {digest}"))?;
    if hex::encode(Sha256::digest(&bytes)) != hex {
        bail!("blob {digest} in the archive does not match its digest");
    }
    Ok(bytes)
}

/// A manifest or config of an archive: refused when larger than `limit` (the registry
/// client's caps), so that a hostile archive cannot make box read it whole.
fn read_capped(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("read {what} of the archive"))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("read {what} of the archive"))?;
    if bytes.len() as u64 > limit {
        bail!("{what} in the archive is larger than {limit} bytes: refusing it");
    }
    Ok(bytes)
}

/// `a/./b` → `a/b`; `..` and absolute names are refused.
fn normalize_rel(name: &str) -> Result<String> {
    let mut parts = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => bail!(
                "archive entry {:?}: absolute or '..' path",
                shown_name(name.as_bytes())
            ),
        }
    }
    if parts.is_empty() {
        bail!(
            "archive entry {:?}: empty name",
            shown_name(name.as_bytes())
        );
    }
    Ok(parts.join("/"))
}

/// Extract the regular files of an archive under `dest` (directories created as needed,
/// nothing else written); symlinks are returned as name → target (both normalized).
fn extract(reader: impl Read, dest: &Path) -> Result<HashMap<String, String>> {
    let mut links = HashMap::new();
    let mut ar = tar::Archive::new(reader);
    for e in ar.entries()? {
        let mut e = e?;
        // Bounded names, and messages of one short line (see `unpack::shown_name`).
        let too_long = |what: &str, name: &[u8]| {
            anyhow::anyhow!(
                "archive entry {:?}: the {what} is {} bytes long, more than PATH_MAX ({PATH_MAX})",
                shown_name(name),
                name.len()
            )
        };
        if e.path_bytes().len() > PATH_MAX {
            return Err(too_long("path", &e.path_bytes()));
        }
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let shown = shown_name(raw.as_bytes());
        if let Some(link) = e.link_name_bytes()
            && link.len() > PATH_MAX
        {
            return Err(too_long("link name", &link));
        }
        match e.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let name = normalize_rel(&raw)?;
                let p = dest.join(&name);
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                // create_new: never through an existing file or link.
                let _ = std::fs::remove_file(&p);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)?;
                io::copy(&mut e, &mut f)?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let name = normalize_rel(&raw)?;
                let target = e
                    .link_name()?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let base = Path::new(&name).parent().unwrap_or(Path::new(""));
                let joined = if e.header().entry_type() == tar::EntryType::Link {
                    PathBuf::from(&target)
                } else {
                    base.join(&target)
                };
                // Resolve `..` lexically inside the archive.
                let mut parts: Vec<String> = Vec::new();
                for c in joined.components() {
                    match c {
                        Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
                        Component::ParentDir => {
                            if parts.pop().is_none() {
                                bail!("archive entry {shown:?}: link leaves the archive");
                            }
                        }
                        Component::CurDir => {}
                        _ => bail!("archive entry {shown:?}: absolute link"),
                    }
                }
                links.insert(name, parts.join("/"));
            }
            _ => {}
        }
    }
    Ok(links)
}

/// `rootfs.diff_ids` of an image config.
fn config_diff_ids(config: &Value) -> Result<Vec<String>> {
    Ok(config["rootfs"]["diff_ids"]
        .as_array()
        .context("the image config has no rootfs.diff_ids")?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect())
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
        assert!(c["ExposedPorts"]["80/tcp"].is_object());
        assert!(apply_change(&mut c, "RUN x").is_err());
    }

    #[test]
    fn archive_names_stay_inside() {
        assert_eq!(normalize_rel("./a/b").unwrap(), "a/b");
        assert!(normalize_rel("../a").is_err());
        assert!(normalize_rel("/a").is_err());
    }
}
