//! `save`: write images as a docker-archive or an oci-archive.
use std::fs::File;
use std::io::Write;

use serde_json::{Value, json};

use super::{Format, Named, OCI_MANIFEST, Result, invalid, io_err};
use crate::storage::{Store, digest_hex, names};

/// The images `names` (names or ids) designate, each with the names it gets in an archive:
/// a name given names its image; an id keeps all its names. An image named twice is saved
/// once with both names.
pub fn save_plan(store: &Store, names: &[String]) -> Result<Vec<Named>> {
    let mut images: Vec<Named> = Vec::new();
    for name in names {
        let image = store.get_image(name)?;
        let tags = match image.name_given(name) {
            Some(n) => vec![n],
            None => image.names.clone(),
        };
        match images.iter_mut().find(|n| n.image.id == image.id) {
            Some(n) => n.names.extend(tags),
            None => images.push(Named { image, names: tags }),
        }
    }
    Ok(images)
}

/// Write `images` as an archive of `format` to `sink`: docker-archive (`manifest.json` +
/// config + layer blobs, as `docker save` writes since 25.0: `blobs/sha256/<hex>` paths,
/// layers kept compressed) or oci-archive (an OCI image layout). Both carry the layout.
pub fn save(store: &Store, images: &[Named], format: Format, sink: Box<dyn Write>) -> Result<()> {
    let mut tar = tar::Builder::new(sink);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut written = std::collections::BTreeSet::new();
    let mut add_blob = |tar: &mut tar::Builder<Box<dyn Write>>, digest: &str| -> Result<String> {
        let hex = digest_hex(digest)?.to_string();
        let name = format!("blobs/sha256/{hex}");
        if written.insert(hex.clone()) {
            let p = store.blob_path(digest)?;
            let mut f = File::open(&p).map_err(io_err(format!(
                "blob {digest} is missing from the store: pull the image again"
            )))?;
            tar.append_file(&name, &mut f)
                .map_err(io_err(format!("write {name}")))?;
        }
        Ok(name)
    };
    let mut docker_manifest = Vec::new();
    let mut index = Vec::new();
    for Named { image, names: tags } in images {
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
            .ok_or_else(|| invalid("the image has no manifest"))?;
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
    if format == Format::DockerArchive {
        add_json(&mut tar, "manifest.json", &json!(docker_manifest))?;
    }
    let mut sink = tar.into_inner().map_err(io_err("finish the archive"))?;
    sink.flush().map_err(io_err("write the archive"))?;
    Ok(())
}
