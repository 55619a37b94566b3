//! `load`: extract an archive (regular files only, names checked), verify its blobs and
//! ingest its images.
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    Context, Error, Named, OCI_MANIFEST, Result, TmpDir, ingest_archive_layers, store_image_bytes,
};
use crate::storage::unpack::{PATH_MAX, shown_name};
use crate::storage::{Store, digest_hex, names};

/// Load every image of a docker-archive or oci-archive (also the classic docker layout
/// with `<id>/layer.tar` and symlinked duplicate layers) read from `reader`. The archive
/// is extracted into the store's tmp/ (regular files only, names checked), every blob is
/// verified, the layers go through the same unpack helper as a pull. `warn` gets what the
/// user should know (skipped manifests, device nodes).
pub fn load(store: &Store, reader: impl Read, warn: &dyn Fn(&str)) -> Result<Vec<Named>> {
    let work = TmpDir::new(store, "load")?;
    let links = extract(reader, &work.path).map_err(|e| Error::Archive(Box::new(e)))?;
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

    let mut loaded: Vec<Named> = Vec::new();
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
            let layers = ingest_archive_layers(store, &work.path, sources, warn)?;
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
            let image = store_image_bytes(store, &config_bytes, diff_ids, blobs, None, &tags)?;
            loaded.push(Named { image, names: tags });
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
                warn(&format!(
                    "skipping {mdigest}: nested indexes are not supported"
                ));
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
            let layers = ingest_archive_layers(store, &work.path, sources, warn)?;
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
                store,
                &config_bytes,
                diff_ids,
                blobs,
                Some((mdigest.to_string(), mt)),
                &tags,
            )?;
            loaded.push(Named { image, names: tags });
        }
    } else {
        bail!("not a docker-archive or oci-archive: no manifest.json or index.json");
    }
    drop(work);
    Ok(loaded)
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
    let file = std::fs::File::open(path).with_context(|| format!("read {what} of the archive"))?;
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
            Error::Invalid(format!(
                "archive entry {:?}: the {what} is {} bytes long, more than PATH_MAX ({PATH_MAX})",
                shown_name(name),
                name.len()
            ))
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

    /// A tar of `(name, data)` regular files with raw names.
    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    fn load_err(tar: &[u8]) -> (Error, Vec<String>, Vec<std::path::PathBuf>) {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open_at(&t.path().join("storage"), t.path()).unwrap();
        let warnings = std::cell::RefCell::new(Vec::new());
        let err = load(&store, tar, &|w| warnings.borrow_mut().push(w.to_string())).unwrap_err();
        let left = std::fs::read_dir(store.tmp_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        (err, warnings.into_inner(), left)
    }

    #[test]
    fn bad_archives_are_refused_in_one_line_leaving_nothing() {
        let (err, warnings, left) = load_err(&tar_of(&[("../x", b"x")]));
        assert!(matches!(err, Error::Archive(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            r#"read the archive: archive entry "../x": absolute or '..' path"#
        );
        assert!(
            warnings.is_empty() && left.is_empty(),
            "{warnings:?} {left:?}"
        );

        let (err, _, left) = load_err(&tar_of(&[("a", b"x")]));
        assert_eq!(
            err.to_string(),
            "not a docker-archive or oci-archive: no manifest.json or index.json"
        );
        assert!(left.is_empty(), "{left:?}");

        let (err, _, _) = load_err(&tar_of(&[("manifest.json", b"{")]));
        let msg = crate::exit::one_line(&anyhow::Error::new(err));
        assert!(
            msg.starts_with("manifest.json is not a docker-archive manifest: invalid type: map"),
            "{msg}"
        );
    }

    #[test]
    fn archive_names_stay_inside() {
        assert_eq!(normalize_rel("./a/b").unwrap(), "a/b");
        assert!(normalize_rel("../a").is_err());
        assert!(normalize_rel("/a").is_err());
    }
}
