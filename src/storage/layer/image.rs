//! A new image from a base image and one more layer (`box commit`).
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Digests, Error};
use crate::storage::archive;
use crate::storage::{Image, Store, names};
use crate::units::rfc3339_seconds as rfc3339;

/// What `commit_image` puts in the new image besides the layer.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Dockerfile-style instructions (`CMD ["/bin/sh"]`, `ENV A=1`, ...).
    pub changes: Vec<String>,
    /// The history entry's comment.
    pub message: Option<String>,
    pub author: Option<String>,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// The creation time (Unix seconds); now when absent.
    pub timestamp: Option<u64>,
    /// The new image's name (none: a dangling image).
    pub name: Option<String>,
}

const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Store the gzip layer `blob` (a file of ours under the store's tmp/, written by
/// `write_layer`, which gave `written`) the way any pulled layer is (blob, then unpacked
/// once through the helper, diff_id checked), and record `base` + that layer as a new
/// image.
pub fn commit_image(
    store: &Store,
    base: &Image,
    blob: PathBuf,
    written: &Digests,
    opts: &CommitOptions,
    warn: &dyn Fn(&str),
) -> Result<Image, Error> {
    let name = opts.name.as_deref().map(names::normalize).transpose()?;
    // Check the config changes before the layer is stored.
    let mut config = serde_json::to_value(&base.config).map_err(|e| {
        Error::Invalid(format!(
            "the image {} has an invalid config: {e}",
            base.short_id()
        ))
    })?;
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    for change in &opts.changes {
        archive::apply_change(&mut config["config"], change)?;
    }
    let ingested =
        archive::ingest_layers(store, vec![(blob, Some(written.diff_id.clone()))], warn)?;
    let Some((diff_id, blob)) = ingested.into_iter().next() else {
        return Err(Error::Invalid("the layer was not stored".into()));
    };
    if blob.digest != written.digest {
        return Err(Error::Invalid(format!(
            "the layer blob changed while it was stored ({} is not {})",
            blob.digest, written.digest
        )));
    }
    let created = rfc3339(opts.timestamp.unwrap_or_else(crate::storage::now_secs));
    config["created"] = json!(created);
    if let Some(a) = &opts.author {
        config["author"] = json!(a);
    }
    if !config["rootfs"].is_object() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    let mut diff_ids = base.diff_ids.clone();
    diff_ids.push(diff_id.clone());
    config["rootfs"]["diff_ids"] = json!(diff_ids);
    let mut entry = json!({"created": created, "created_by": opts.created_by});
    if let Some(a) = &opts.author {
        entry["author"] = json!(a);
    }
    if let Some(m) = &opts.message {
        entry["comment"] = json!(m);
    }
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    history.push(entry);
    config["history"] = Value::Array(history);
    let mut layers = base.layers.clone();
    for l in &mut layers {
        if l.media_type == DOCKER_GZIP {
            l.media_type = OCI_GZIP.into();
        }
    }
    layers.push(blob);
    let names: Vec<String> = name.into_iter().collect();
    Ok(archive::store_image(
        store, &config, diff_ids, layers, None, &names,
    )?)
}
