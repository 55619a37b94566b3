//! Manifest resolution: a reference's manifest (an index resolved to the entry for the
//! platform), its digest checked against the reference or `Docker-Content-Digest`, Docker
//! media types mapped to OCI ones, and the image config fetched and verified.
use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, MediaType};
use serde_json::Value;

use super::Error;
use super::client::{Client, Endpoint};
use super::digest::{Hasher, sha256_of};
use super::platform::{self, Platform};
use super::reference::Reference;
use super::transport::{header, read_bounded_watched};

/// Manifests and indexes larger than this are refused.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Image configs larger than this are refused.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(super) const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub(super) const DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub(super) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// A resolved image: the platform manifest and its config, both verified.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of `manifest_bytes` (the platform manifest, not the index).
    pub manifest_digest: String,
    /// The manifest exactly as the registry sent it.
    pub manifest_bytes: Vec<u8>,
    /// Its media type as sent (OCI manifest or Docker v2s2).
    pub manifest_media_type: String,
    /// Parsed, with Docker media types mapped to their OCI equivalents
    /// (rootfs.diff.tar.gzip → ImageLayerGzip, container.image.v1 → ImageConfig).
    pub manifest: ImageManifest,
    pub config_bytes: Vec<u8>,
    pub config: ImageConfiguration,
    /// Digest of the index / manifest list the reference pointed to, when it was one.
    pub index_digest: Option<String>,
}

impl Resolved {
    /// The digest the reference resolved to: the index's when there was one, else the
    /// manifest's (docker's "repo digest").
    pub fn repo_digest(&self) -> &str {
        self.index_digest
            .as_deref()
            .unwrap_or(&self.manifest_digest)
    }
}

impl Client {
    /// Fetch the manifest of `reference` (choosing the entry for `platform` in an index), then
    /// its config; verify digests and sizes.
    pub fn resolve(&self, reference: &Reference, platform: &Platform) -> Result<Resolved, Error> {
        let endpoints = self.endpoints(reference)?;
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.retrying(|| self.resolve_at(ep, reference, platform)) {
                Ok(r) => return Ok(r),
                Err(e) if i < last => {
                    let _ = e; // a mirror failed: fall back to the next endpoint
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("endpoints is never empty")
    }

    fn resolve_at(
        &self,
        ep: &Endpoint,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Resolved, Error> {
        let shown = reference.to_string();
        let (bytes, media_type, header_digest) =
            self.fetch_manifest(ep, reference.manifest_ref(), &shown)?;
        let top_digest = match &reference.digest {
            Some(d) => {
                super::digest::verify_digest(&format!("manifest of {shown}"), d, &bytes)?;
                d.clone()
            }
            None => {
                let computed = sha256_of(&bytes);
                if let Some(h) = header_digest {
                    let actual = if h.starts_with("sha256:") {
                        computed.clone()
                    } else {
                        let mut hh = Hasher::for_digest(&h)?;
                        hh.update(&bytes);
                        hh.finish()
                    };
                    if actual != h {
                        return Err(Error::DigestMismatch {
                            what: format!("manifest of {shown} (Docker-Content-Digest)"),
                            expected: h,
                            actual,
                        });
                    }
                }
                computed
            }
        };

        let (manifest_bytes, manifest_media_type, manifest_digest, index_digest) = match media_type
            .as_str()
        {
            OCI_INDEX | DOCKER_LIST => {
                let index: platform::Index =
                    serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
                        reference: shown.clone(),
                        reason: format!("bad image index: {e}"),
                    })?;
                let entry = platform::select(&index.manifests, platform).map_err(|avail| {
                    Error::NoMatchingPlatform {
                        reference: shown.clone(),
                        wanted: platform.to_string(),
                        available: if avail.is_empty() {
                            "none".into()
                        } else {
                            avail.join(", ")
                        },
                    }
                })?;
                if entry.size > MAX_MANIFEST_SIZE {
                    return Err(Error::TooLarge {
                        what: format!("manifest {} of {shown}", entry.digest),
                        limit: MAX_MANIFEST_SIZE,
                    });
                }
                Hasher::for_digest(&entry.digest)?;
                let what = format!("{platform} manifest of {shown}");
                let (mbytes, mtype, _) = self.fetch_manifest(ep, &entry.digest, &shown)?;
                if mbytes.len() as u64 != entry.size {
                    return Err(Error::SizeMismatch {
                        what,
                        expected: entry.size,
                        actual: mbytes.len() as u64,
                    });
                }
                super::digest::verify_digest(&what, &entry.digest, &mbytes)?;
                // the content's own mediaType wins; a manifest without one (sniffed as OCI)
                // takes the type its index entry gives
                let mtype = match entry.media_type.as_deref() {
                    Some(t @ DOCKER_MANIFEST) if mtype == OCI_MANIFEST => t.to_string(),
                    _ => mtype,
                };
                if matches!(mtype.as_str(), OCI_INDEX | DOCKER_LIST) {
                    return Err(Error::InvalidManifest {
                        reference: shown,
                        reason: "an index whose entry is another index: nested indexes are not supported".into(),
                    });
                }
                (mbytes, mtype, entry.digest.clone(), Some(top_digest))
            }
            _ => (bytes, media_type, top_digest, None),
        };

        match manifest_media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => {}
            DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => {
                return Err(Error::InvalidManifest {
                    reference: shown,
                    reason: "docker schema 1 manifests are not supported: push the image again with a current tool".into(),
                });
            }
            other => {
                return Err(Error::NotAnImage {
                    reference: shown,
                    media_type: other.to_string(),
                });
            }
        }
        let mut manifest: ImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| Error::InvalidManifest {
                reference: shown.clone(),
                reason: e.to_string(),
            })?;
        if manifest.schema_version() != 2 {
            return Err(Error::InvalidManifest {
                reference: shown,
                reason: format!("schemaVersion {} (expected 2)", manifest.schema_version()),
            });
        }
        normalise_media_types(&mut manifest);

        let config_desc = manifest.config().clone();
        match config_desc.media_type() {
            MediaType::ImageConfig => {}
            other => {
                return Err(Error::NotAnImage {
                    reference: shown,
                    media_type: format!("artifact with config type {other}"),
                });
            }
        }
        let config_bytes = self.fetch_small_blob(
            ep,
            &config_desc,
            MAX_CONFIG_SIZE,
            &format!("config of {shown}"),
        )?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_bytes).map_err(|e| Error::InvalidConfig {
                reference: shown.clone(),
                reason: e.to_string(),
            })?;
        let diff_ids = config.rootfs().diff_ids().len();
        if diff_ids != manifest.layers().len() {
            return Err(Error::InvalidConfig {
                reference: shown,
                reason: format!(
                    "it lists {diff_ids} layer diff_ids but the manifest has {} layers",
                    manifest.layers().len()
                ),
            });
        }
        Ok(Resolved {
            manifest_digest,
            manifest_bytes,
            manifest_media_type,
            manifest,
            config_bytes,
            config,
            index_digest,
        })
    }

    /// GET a manifest: (bytes, media type, Docker-Content-Digest header).
    fn fetch_manifest(
        &self,
        ep: &Endpoint,
        reference: &str,
        shown: &str,
    ) -> Result<(Vec<u8>, String, Option<String>), Error> {
        let what = format!("manifest of {shown}");
        let path = format!("{}/manifests/{reference}", ep.repository);
        let resp = self.get_v2(
            ep,
            &path,
            Some(ACCEPT_MANIFESTS),
            None,
            &what,
            Some(&ep.scope()),
        )?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            404 => {
                return Err(Error::ManifestUnknown {
                    reference: shown.to_string(),
                });
            }
            _ => return Err(self.status_error(ep, status, &what, resp)),
        }
        let content_type = header(&resp, "content-type").map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let header_digest = header(&resp, "docker-content-digest").map(str::to_string);
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok())
            && len > MAX_MANIFEST_SIZE
        {
            return Err(Error::TooLarge {
                what,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let bytes = read_bounded_watched(
            resp.into_body(),
            MAX_MANIFEST_SIZE,
            &ep.host,
            &what,
            self.timing.stall,
        )?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| Error::InvalidManifest {
            reference: shown.to_string(),
            reason: format!(
                "the registry sent {} bytes of {} that are not JSON: is {} really a registry?",
                bytes.len(),
                content_type.as_deref().unwrap_or("untyped data"),
                ep.host
            ),
        })?;
        let header_digest = header_digest.filter(|d| Hasher::for_digest(d).is_ok());
        Ok((
            bytes,
            manifest_media_type(&json, content_type.as_deref()),
            header_digest,
        ))
    }

    /// A blob small enough for memory (the config), size- and digest-checked.
    fn fetch_small_blob(
        &self,
        ep: &Endpoint,
        desc: &Descriptor,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, Error> {
        let digest = desc.digest().to_string();
        if desc.size() > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        let path = format!("{}/blobs/{digest}", ep.repository);
        let resp = self.get_v2(ep, &path, None, None, what, Some(&ep.scope()))?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(Error::BlobUnknown {
                    repository: ep.repository.clone(),
                    digest,
                });
            }
            s => return Err(self.status_error(ep, s, what, resp)),
        }
        let bytes = match read_bounded_watched(
            resp.into_body(),
            desc.size(),
            &ep.host,
            what,
            self.timing.stall,
        ) {
            Err(Error::TooLarge { .. }) => {
                return Err(Error::SizeMismatch {
                    what: what.to_string(),
                    expected: desc.size(),
                    actual: desc.size() + 1,
                });
            }
            r => r?,
        };
        if bytes.len() as u64 != desc.size() {
            return Err(Error::SizeMismatch {
                what: what.to_string(),
                expected: desc.size(),
                actual: bytes.len() as u64,
            });
        }
        super::digest::verify_digest(what, &digest, &bytes)?;
        Ok(bytes)
    }
}

/// The media type of a manifest: its `mediaType` field, else a known Content-Type, else its shape.
pub(super) fn manifest_media_type(json: &Value, content_type: Option<&str>) -> String {
    if let Some(t) = json.get("mediaType").and_then(Value::as_str) {
        return t.to_string();
    }
    match content_type {
        Some(
            t @ (OCI_MANIFEST
            | OCI_INDEX
            | DOCKER_MANIFEST
            | DOCKER_LIST
            | DOCKER_SCHEMA1
            | DOCKER_SCHEMA1_SIGNED),
        ) => t.to_string(),
        _ if json.get("schemaVersion").and_then(Value::as_u64) == Some(1) => {
            DOCKER_SCHEMA1.to_string()
        }
        _ if json.get("manifests").is_some() => OCI_INDEX.to_string(),
        _ if json.get("config").is_some() || json.get("layers").is_some() => {
            OCI_MANIFEST.to_string()
        }
        _ => content_type.unwrap_or("unknown").to_string(),
    }
}

/// Docker v2s2 media types → OCI ones, so callers deal with one vocabulary.
fn normalise_media_types(m: &mut ImageManifest) {
    m.set_media_type(Some(MediaType::ImageManifest));
    let mut config = m.config().clone();
    if config.media_type().to_string() == DOCKER_CONFIG
        || config.media_type().to_string() == OCI_CONFIG
    {
        config.set_media_type(MediaType::ImageConfig);
    }
    m.set_config(config);
    for layer in m.layers_mut() {
        let mapped = match layer.media_type().to_string().as_str() {
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                MediaType::ImageLayerNonDistributableGzip
            }
            "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
            "application/vnd.docker.image.rootfs.diff.tar.zstd" => MediaType::ImageLayerZstd,
            _ => continue,
        };
        layer.set_media_type(mapped);
    }
}
