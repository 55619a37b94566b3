//! The Distribution API v2 client: manifests, configs and streamed, verified blobs.
//!
//! Transport rules: https with the system's CA roots everywhere, except plain http for
//! loopback registries (127.0.0.0/8, ::1, localhost) and registries listed `insecure` (those
//! try https without verification first, then http). Redirects are followed by hand so that
//! `Authorization` never leaves the registry's origin and https never silently becomes http.
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest, MediaType};
use serde_json::Value;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::Error;
use super::auth::{self, Challenge, Credentials};
use super::conf::RegistriesConf;
use super::digest::{Hasher, sha256_of};
use super::platform::{self, Platform};
use super::reference::{DOCKER_HUB, DOCKER_HUB_API, Reference};

/// Manifests and indexes larger than this are refused.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Image configs larger than this are refused.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;
/// Bearer tokens longer than this are refused: registries reject request headers much
/// smaller than a megabyte (Go's default limit is 1 MiB for all of them, nginx's 8 KiB a
/// line); real tokens are a few KiB.
pub const MAX_TOKEN_SIZE: usize = 64 << 10;
/// A body that has not grown by this much within the stall timeout has stalled.
const STALL_MIN_PROGRESS: u64 = 16 << 10;
const MAX_REDIRECTS: usize = 10;
/// Attempts of an operation that fails transiently (connect errors, 5xx, 429, truncation)…
const MAX_TRIES: u32 = 4;
/// …of which at most this many may be timeouts: a hanging registry tends to keep hanging.
const MAX_TIMEOUTS: u32 = 2;
const BUF_SIZE: usize = 128 << 10;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// What the client is built from. `auth_files[0]` is box's own auth.json (the one
/// `box login` writes); the others are read after it, in order.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub auth_files: Vec<PathBuf>,
    pub registries_conf: Option<PathBuf>,
    /// Some(true): https with verification even for loopback; Some(false): allow plain http
    /// and unverified TLS for every registry; None: the rules of the module doc.
    pub tls_verify: Option<bool>,
}

impl ClientConfig {
    /// box's standard configuration: auth files box's auth.json, `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, docker's config.json; box's registries.toml.
    pub fn standard(paths: &crate::paths::Paths, tls_verify: Option<bool>) -> ClientConfig {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut auth_files = vec![paths.auth_file()];
        if let Some(f) = env("REGISTRY_AUTH_FILE") {
            auth_files.push(f);
        }
        if let Some(run) = env("XDG_RUNTIME_DIR") {
            auth_files.push(run.join("containers/auth.json"));
        }
        if let Some(d) = env("DOCKER_CONFIG") {
            auth_files.push(d.join("config.json"));
        } else if let Some(home) = env("HOME") {
            auth_files.push(home.join(".docker/config.json"));
        }
        ClientConfig {
            auth_files,
            registries_conf: Some(paths.registries_file()),
            tls_verify,
        }
    }
}

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

/// Where to fetch a repository: the registry itself or one of its mirrors.
#[derive(Debug, Clone)]
struct Endpoint {
    /// API host[:port] (registry-1.docker.io for docker.io).
    host: String,
    /// Repository path on that host (a mirror may add a prefix).
    repository: String,
    /// Name under which credentials are looked up (docker.io, a mirror's host).
    cred_key: String,
}

impl Endpoint {
    fn scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// https only, certificate verified.
    Https,
    /// plain http only (loopback).
    Http,
    /// https without verification, then http (insecure registries, --tls-verify=false).
    Insecure,
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    connect: Duration,
    read: Duration,
    backoff: Duration,
    /// How long a body may go without `STALL_MIN_PROGRESS` new bytes (`BOX_REGISTRY_STALL_TIMEOUT`).
    stall: Duration,
}

/// A registry client. Cheap to share between threads (`&Client` is all the methods need).
pub struct Client {
    auth_files: Vec<PathBuf>,
    conf: Result<RegistriesConf, (PathBuf, String)>,
    conf_path: String,
    tls_verify: Option<bool>,
    timing: Timing,
    /// [verify+proxy, verify+direct, noverify+proxy, noverify+direct]
    agents: [OnceLock<Agent>; 4],
    /// (host, scope) → Authorization header value.
    tokens: Mutex<HashMap<(String, String), String>>,
    /// (credential key, repository) → what the auth files hold.
    creds: Mutex<HashMap<(String, String), Option<Credentials>>>,
    /// Hosts of `Policy::Insecure` found to speak only plain http.
    plain_http: Mutex<HashMap<String, bool>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("auth_files", &self.auth_files)
            .field("tls_verify", &self.tls_verify)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        let conf = match &config.registries_conf {
            Some(p) => RegistriesConf::load(p).map_err(|e| match e {
                Error::Conf { path, reason } => (path, reason),
                other => (p.clone(), other.to_string()),
            }),
            None => Ok(RegistriesConf::default()),
        };
        Client {
            auth_files: config.auth_files,
            conf,
            conf_path: config
                .registries_conf
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "registries.toml".into()),
            tls_verify: config.tls_verify,
            timing: Timing {
                connect: Duration::from_secs(10),
                read: read_timeout_from_env().unwrap_or(Duration::from_secs(30)),
                backoff: Duration::from_millis(500),
                stall: stall_timeout_from_env().unwrap_or(Duration::from_secs(30)),
            },
            agents: Default::default(),
            tokens: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
            plain_http: Mutex::new(HashMap::new()),
        }
    }

    /// Shorter timeouts and back-off (tests).
    #[doc(hidden)]
    pub fn with_timing(mut self, connect: Duration, read: Duration, backoff: Duration) -> Client {
        self.timing = Timing {
            connect,
            read,
            backoff,
            stall: self.timing.stall,
        };
        self
    }

    /// A shorter stall timeout (tests).
    #[doc(hidden)]
    pub fn with_stall_timeout(mut self, stall: Duration) -> Client {
        self.timing.stall = stall;
        self
    }

    fn conf(&self) -> Result<&RegistriesConf, Error> {
        self.conf.as_ref().map_err(|(path, reason)| Error::Conf {
            path: path.clone(),
            reason: reason.clone(),
        })
    }

    // ---------------------------------------------------------------- public operations

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

    /// Stream blob `desc` of `reference`'s repository into `tmp_path`, verifying size and
    /// digest; resume a prefix already in `tmp_path` with a Range request when the registry
    /// allows it. On a mismatch `tmp_path` is deleted; after exhausted retries of a transient
    /// failure the verified-so-far prefix is kept for a later resume. `progress(n)` is told
    /// of every `n` new bytes (their sum never exceeds `desc.size()`).
    pub fn download_blob(
        &self,
        reference: &Reference,
        desc: &Descriptor,
        tmp_path: &Path,
        progress: &dyn Fn(u64),
    ) -> Result<(), Error> {
        let digest = desc.digest().to_string();
        Hasher::for_digest(&digest)?;
        let endpoints = self.endpoints(reference)?;
        let reported = std::cell::Cell::new(0u64);
        let report = |have: u64| {
            if have > reported.get() {
                progress(have - reported.get());
                reported.set(have);
            }
        };
        let last = endpoints.len() - 1;
        for (i, ep) in endpoints.iter().enumerate() {
            match self.download_from(ep, &digest, desc.size(), tmp_path, &report) {
                Ok(()) => return Ok(()),
                Err(_) if i < last => {}
                Err(e) => return Err(e),
            }
        }
        unreachable!("endpoints is never empty")
    }

    /// Check `creds` against `registry` (GET /v2/ with the auth flow): Ok when the registry
    /// accepts them (or asks for no authentication at all).
    pub fn check_login(&self, registry: &str, creds: &Credentials) -> Result<(), Error> {
        let registry = auth::normalise_registry_arg(registry)?;
        let ep = Endpoint {
            host: super::reference::api_host(&registry).to_string(),
            repository: String::new(),
            cred_key: registry.clone(),
        };
        self.creds
            .lock()
            .expect("creds lock")
            .insert((registry.clone(), String::new()), Some(creds.clone()));
        self.tokens.lock().expect("tokens lock").clear();
        self.retrying(|| {
            let what = format!("login to {registry}");
            let resp = self.get_v2(&ep, "", None, None, &what, None)?;
            match resp.status().as_u16() {
                200..=299 => Ok(()),
                401 | 403 => Err(Error::CredentialsRejected {
                    registry: registry.clone(),
                    detail: error_detail(resp),
                }),
                s => Err(Error::Status {
                    registry: registry.clone(),
                    status: s,
                    what,
                    detail: error_detail(resp),
                }),
            }
        })
    }

    // ---------------------------------------------------------------- resolve

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

    // ---------------------------------------------------------------- blobs

    fn download_from(
        &self,
        ep: &Endpoint,
        digest: &str,
        size: u64,
        tmp: &Path,
        report: &dyn Fn(u64),
    ) -> Result<(), Error> {
        let mut fresh_restart_done = false;
        let mut retry = Retry::default();
        loop {
            let resumed = fs::metadata(tmp).map(|m| m.len() > 0).unwrap_or(false);
            match self.download_once(ep, digest, size, tmp, report) {
                Ok(()) => return Ok(()),
                Err(e @ Error::DigestMismatch { .. }) if resumed && !fresh_restart_done => {
                    // the earlier prefix may have been bad: one clean attempt
                    let _ = e;
                    let _ = fs::remove_file(tmp);
                    fresh_restart_done = true;
                }
                Err(e) if retry.again(&e, self.timing.backoff) => {}
                Err(e) => {
                    if !e.is_transient() {
                        let _ = fs::remove_file(tmp);
                    }
                    return Err(e);
                }
            }
        }
    }

    fn download_once(
        &self,
        ep: &Endpoint,
        digest: &str,
        size: u64,
        tmp: &Path,
        report: &dyn Fn(u64),
    ) -> Result<(), Error> {
        let what = format!("blob {digest}");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(tmp)
            .map_err(|e| Error::io("open", tmp, e))?;
        let io_err = |action: &'static str| move |e: std::io::Error| Error::io(action, tmp, e);
        let mut have = file.metadata().map_err(io_err("stat"))?.len();
        let mut hasher = Hasher::for_digest(digest)?;
        if have > size {
            file.set_len(0).map_err(io_err("truncate"))?;
            have = 0;
        }
        if have > 0 {
            // re-hash the prefix an earlier attempt left
            let mut buf = vec![0u8; BUF_SIZE];
            let mut left = have;
            file.seek(SeekFrom::Start(0)).map_err(io_err("seek"))?;
            while left > 0 {
                let n = file
                    .read(&mut buf[..(left.min(BUF_SIZE as u64) as usize)])
                    .map_err(io_err("read"))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            report(have);
            if have == size {
                return finish(file, hasher, digest, &what, tmp);
            }
        }

        let path = format!("{}/blobs/{digest}", ep.repository);
        let mut range = (have > 0).then(|| format!("bytes={have}-"));
        let resp = loop {
            let resp = self.get_v2(ep, &path, None, range.as_deref(), &what, Some(&ep.scope()))?;
            let status = resp.status().as_u16();
            match status {
                206 if range.is_some() => {
                    let start = header(&resp, "content-range").and_then(content_range_start);
                    if start == Some(have) {
                        break resp;
                    }
                    // a range we did not ask for: start over
                }
                200 => {
                    if have > 0 {
                        file.set_len(0).map_err(io_err("truncate"))?;
                        have = 0;
                        hasher = Hasher::for_digest(digest)?;
                    }
                    break resp;
                }
                416 if range.is_some() => {}
                404 => {
                    return Err(Error::BlobUnknown {
                        repository: ep.repository.clone(),
                        digest: digest.to_string(),
                    });
                }
                s => return Err(self.status_error(ep, s, &what, resp)),
            }
            file.set_len(0).map_err(io_err("truncate"))?;
            have = 0;
            hasher = Hasher::for_digest(digest)?;
            range = None;
        };
        // a Content-Length that disagrees with the descriptor is a lie, not a network hiccup
        let encoded =
            header(&resp, "content-encoding").is_some_and(|e| !e.eq_ignore_ascii_case("identity"));
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok())
            && !encoded
            && have + len != size
        {
            return Err(Error::SizeMismatch {
                what,
                expected: size,
                actual: have + len,
            });
        }
        file.seek(SeekFrom::Start(have)).map_err(io_err("seek"))?;
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; BUF_SIZE];
        let mut watch = StallWatch::new(self.timing.stall, have);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = file.sync_data();
                    return Err(body_error(e, &ep.host, &what));
                }
            };
            if have + n as u64 > size {
                return Err(Error::SizeMismatch {
                    what,
                    expected: size,
                    actual: have + n as u64,
                });
            }
            file.write_all(&buf[..n]).map_err(io_err("write"))?;
            hasher.update(&buf[..n]);
            have += n as u64;
            report(have);
            if have < size
                && let Err(e) = watch.check(have, &ep.host, &what)
            {
                let _ = file.sync_data();
                return Err(e);
            }
        }
        if have < size {
            let _ = file.sync_data();
            return Err(Error::Transfer {
                host: ep.host.clone(),
                what,
                reason: format!("the body ended after {have} of {size} bytes"),
            });
        }
        finish(file, hasher, digest, &what, tmp)
    }

    // ---------------------------------------------------------------- http + auth

    fn retrying<T>(&self, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut retry = Retry::default();
        loop {
            match f() {
                Err(e) if retry.again(&e, self.timing.backoff) => {}
                r => return r,
            }
        }
    }

    fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, Error> {
        let conf = self.conf()?;
        let mut out: Vec<Endpoint> = conf
            .mirrors(&reference.registry)
            .into_iter()
            .map(|m| Endpoint {
                repository: match &m.prefix {
                    Some(p) => format!("{p}/{}", reference.repository),
                    None => reference.repository.clone(),
                },
                cred_key: m.host.clone(),
                host: m.host,
            })
            .collect();
        out.push(Endpoint {
            host: reference.api_host().to_string(),
            repository: reference.repository.clone(),
            cred_key: reference.registry.clone(),
        });
        Ok(out)
    }

    fn policy(&self, host: &str) -> Policy {
        match self.tls_verify {
            Some(true) => Policy::Https,
            Some(false) => Policy::Insecure,
            None => {
                let name = if host == DOCKER_HUB_API {
                    DOCKER_HUB
                } else {
                    host
                };
                if self.conf.as_ref().is_ok_and(|c| c.is_insecure(name)) {
                    Policy::Insecure
                } else if is_loopback(host) {
                    Policy::Http
                } else {
                    Policy::Https
                }
            }
        }
    }

    fn agent(&self, verify: bool, host: &str) -> &Agent {
        let direct = is_loopback(host);
        let slot = usize::from(direct) + 2 * usize::from(!verify);
        self.agents[slot].get_or_init(|| {
            let tls = TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .disable_verification(!verify)
                .build();
            let mut b = Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .user_agent(super::USER_AGENT)
                .accept_encoding("identity")
                .timeout_connect(Some(self.timing.connect))
                .timeout_per_read(Some(self.timing.read))
                .timeout_per_write(Some(self.timing.read))
                .tls_config(tls);
            if direct {
                b = b.proxy(None);
            }
            b.build().into()
        })
    }

    /// GET `/v2/<path>` on an endpoint with the auth flow: the cached token first; on a 401 a
    /// new token (or Basic credentials) from the challenge, once.
    fn get_v2(
        &self,
        ep: &Endpoint,
        path: &str,
        accept: Option<&str>,
        range: Option<&str>,
        what: &str,
        scope: Option<&str>,
    ) -> Result<Response<Body>, Error> {
        let key = (ep.host.clone(), scope.unwrap_or("").to_string());
        let mut authz = self.tokens.lock().expect("tokens lock").get(&key).cloned();
        let mut renewed = false;
        loop {
            let resp = self.get_with_scheme(ep, path, accept, range, authz.as_deref(), what)?;
            match resp.status().as_u16() {
                401 if !renewed => {
                    let challenges: Vec<Challenge> = resp
                        .headers()
                        .get_all("www-authenticate")
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .flat_map(auth::parse_www_authenticate)
                        .collect();
                    drop(resp);
                    let header = self.authenticate(ep, scope, &challenges, what)?;
                    self.tokens
                        .lock()
                        .expect("tokens lock")
                        .insert(key.clone(), header.clone());
                    authz = Some(header);
                    renewed = true;
                }
                401 if path.is_empty() => return Ok(resp),
                401 => {
                    let detail = error_detail(resp);
                    return Err(Error::Unauthorized {
                        registry: ep.cred_key.clone(),
                        what: format!("{what}{detail}"),
                    });
                }
                403 if !path.is_empty() => {
                    let detail = error_detail(resp);
                    return Err(Error::Denied {
                        registry: ep.cred_key.clone(),
                        what: format!("{what}{detail}"),
                    });
                }
                _ => return Ok(resp),
            }
        }
    }

    /// One request to an endpoint, choosing https/http by policy (with the http fallback of
    /// insecure registries).
    fn get_with_scheme(
        &self,
        ep: &Endpoint,
        path: &str,
        accept: Option<&str>,
        range: Option<&str>,
        authz: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, Error> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(a) = accept {
            headers.push(("Accept", a.to_string()));
        }
        if let Some(r) = range {
            headers.push(("Range", r.to_string()));
        }
        let url = |scheme: &str| format!("{scheme}://{}/v2/{path}", ep.host);
        match self.policy(&ep.host) {
            Policy::Https => self.fetch(&url("https"), &headers, authz, what),
            Policy::Http => self.fetch(&url("http"), &headers, authz, what),
            Policy::Insecure => {
                let known = self.plain_http.lock().expect("lock").get(&ep.host).copied();
                match known {
                    Some(true) => self.fetch(&url("http"), &headers, authz, what),
                    Some(false) => self.fetch(&url("https"), &headers, authz, what),
                    None => match self.fetch(&url("https"), &headers, authz, what) {
                        Ok(r) => {
                            self.plain_http
                                .lock()
                                .expect("lock")
                                .insert(ep.host.clone(), false);
                            Ok(r)
                        }
                        Err(Error::Tls { .. } | Error::Connect { .. } | Error::Transfer { .. }) => {
                            let r = self.fetch(&url("http"), &headers, authz, what)?;
                            self.plain_http
                                .lock()
                                .expect("lock")
                                .insert(ep.host.clone(), true);
                            Ok(r)
                        }
                        Err(e) => Err(e),
                    },
                }
            }
        }
    }

    /// GET `url`, following redirects by hand: `authz` only goes to the first URL's origin,
    /// https is never downgraded to http except towards loopback or insecure hosts.
    fn fetch(
        &self,
        url: &str,
        headers: &[(&str, String)],
        authz: Option<&str>,
        what: &str,
    ) -> Result<Response<Body>, Error> {
        let origin = origin_of(url);
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let (scheme, host) = split_url(&url);
            let verify = scheme != "https" || self.policy(&host) != Policy::Insecure;
            let mut req = self.agent(verify, &host).get(&url);
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(a) = authz
                && origin_of(&url) == origin
            {
                req = req.header("Authorization", a);
            }
            let resp = req.call().map_err(|e| self.map_ureq(e, &host, what))?;
            let status = resp.status();
            if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let Some(loc) = header(&resp, "location") else {
                return Err(Error::Redirect {
                    host,
                    what: what.to_string(),
                    reason: format!("{status} without a Location header"),
                });
            };
            let next = join_url(&url, loc);
            let (next_scheme, next_host) = split_url(&next);
            match next_scheme.as_str() {
                "https" => {}
                "http"
                    if scheme == "http"
                        || is_loopback(&next_host)
                        || self.policy(&next_host) != Policy::Https => {}
                _ => {
                    return Err(Error::Insecure {
                        what: format!("redirect of {what} to {next}"),
                        reason: "it leaves https for plain http (or an unknown scheme)".into(),
                    });
                }
            }
            url = next;
        }
        Err(Error::Redirect {
            host: split_url(&url).1,
            what: what.to_string(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn credentials(&self, ep: &Endpoint) -> Result<Option<Credentials>, Error> {
        let key = (ep.cred_key.clone(), ep.repository.clone());
        if let Some(c) = self.creds.lock().expect("creds lock").get(&key) {
            return Ok(c.clone());
        }
        let repo = (!ep.repository.is_empty()).then_some(ep.repository.as_str());
        let c = auth::lookup(&self.auth_files, &ep.cred_key, repo)?;
        self.creds
            .lock()
            .expect("creds lock")
            .insert(key, c.clone());
        Ok(c)
    }

    /// Answer a 401's challenges: an `Authorization` header value.
    fn authenticate(
        &self,
        ep: &Endpoint,
        scope: Option<&str>,
        challenges: &[Challenge],
        what: &str,
    ) -> Result<String, Error> {
        let creds = self.credentials(ep)?;
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            return self.fetch_token(ep, bearer, scope, creds.as_ref());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            return match creds {
                Some(c) => Ok(c.basic_header()),
                None => Err(Error::Unauthorized {
                    registry: ep.cred_key.clone(),
                    what: what.to_string(),
                }),
            };
        }
        match challenges.first() {
            Some(c) => Err(Error::UnsupportedAuth {
                registry: ep.cred_key.clone(),
                scheme: c.scheme.clone(),
            }),
            None => Err(Error::Unauthorized {
                registry: ep.cred_key.clone(),
                what: format!("{what} (401 without a WWW-Authenticate challenge)"),
            }),
        }
    }

    fn fetch_token(
        &self,
        ep: &Endpoint,
        ch: &Challenge,
        scope: Option<&str>,
        creds: Option<&Credentials>,
    ) -> Result<String, Error> {
        let realm = ch.param("realm").unwrap_or_default();
        let bad = |reason: String| Error::Token {
            realm: realm.chars().take(200).collect(),
            reason,
        };
        let (scheme, host) = split_url(realm);
        if host.is_empty() || !(scheme == "https" || scheme == "http") {
            return Err(bad(
                "the registry's Bearer challenge has no usable http(s) realm".into(),
            ));
        }
        if scheme == "http"
            && creds.is_some()
            && !is_loopback(&host)
            && self.policy(&ep.host) == Policy::Https
        {
            return Err(Error::Insecure {
                what: format!("sending credentials to token service {realm}"),
                reason: "it is plain http".into(),
            });
        }
        let mut query: Vec<String> = Vec::new();
        if let Some(service) = ch.param("service") {
            query.push(format!("service={}", percent_encode(service)));
        }
        let scope = ch.param("scope").filter(|s| !s.is_empty()).or(scope);
        if let Some(scope) = scope {
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                query.push(format!("scope={}", percent_encode(s)));
            }
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = if query.is_empty() {
            realm.to_string()
        } else {
            format!("{realm}{sep}{}", query.join("&"))
        };
        let basic = creds.map(Credentials::basic_header);
        let what = format!("token for {}", ep.cred_key);
        let resp = self.fetch(&url, &[], basic.as_deref(), &what)?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            401 | 403 if creds.is_some() => {
                return Err(Error::CredentialsRejected {
                    registry: ep.cred_key.clone(),
                    detail: error_detail(resp),
                });
            }
            401 | 403 => {
                return Err(Error::Unauthorized {
                    registry: ep.cred_key.clone(),
                    what: format!("anonymous token refused{}", error_detail(resp)),
                });
            }
            s if s >= 500 || s == 429 => {
                return Err(Error::Status {
                    registry: host,
                    status: s,
                    what,
                    detail: error_detail(resp),
                });
            }
            s => return Err(bad(format!("it answered {s}{}", error_detail(resp)))),
        }
        let body = read_bounded(resp.into_body(), 1 << 20, &host, &what)?;
        let v: Value =
            serde_json::from_slice(&body).map_err(|_| bad("its answer is not JSON".into()))?;
        let token = v
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .or_else(|| v.get("access_token").and_then(Value::as_str))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("its answer has no token".into()))?;
        if token.len() > MAX_TOKEN_SIZE {
            return Err(bad(format!(
                "the token is too large ({} bytes, box accepts {MAX_TOKEN_SIZE}): no registry takes a header that long: the token service is misbehaving, tell the registry's operator",
                token.len()
            )));
        }
        if token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad("the token has invalid characters".into()));
        }
        Ok(format!("Bearer {token}"))
    }

    fn map_ureq(&self, e: ureq::Error, host: &str, what: &str) -> Error {
        map_ureq(e, host, what, &self.conf_path)
    }

    fn status_error(&self, ep: &Endpoint, status: u16, what: &str, resp: Response<Body>) -> Error {
        Error::Status {
            registry: ep.host.clone(),
            status,
            what: what.to_string(),
            detail: error_detail(resp),
        }
    }
}

// ---------------------------------------------------------------- hooks for `upload` (push)

impl Client {
    /// `scheme://host` of `host`'s API by the transport rules of the module doc (an insecure
    /// registry is probed once, as for pulls).
    pub(crate) fn api_base(&self, host: &str) -> Result<String, Error> {
        let scheme = match self.policy(host) {
            Policy::Https => "https",
            Policy::Http => "http",
            Policy::Insecure => {
                let known = self.plain_http.lock().expect("lock").get(host).copied();
                let plain = match known {
                    Some(p) => p,
                    None => {
                        let ep = Endpoint {
                            host: host.to_string(),
                            repository: String::new(),
                            cred_key: host.to_string(),
                        };
                        let what = format!("connect to {host}");
                        drop(self.get_with_scheme(&ep, "", None, None, None, &what)?);
                        let known = self.plain_http.lock().expect("lock").get(host).copied();
                        known.unwrap_or(false)
                    }
                };
                if plain { "http" } else { "https" }
            }
        };
        Ok(format!("{scheme}://{host}"))
    }

    /// The agent for a request to `url`: certificates checked by policy, no proxy for loopback.
    pub(crate) fn agent_for(&self, url: &str) -> &Agent {
        let (scheme, host) = split_url(url);
        let verify = scheme != "https" || self.policy(&host) != Policy::Insecure;
        self.agent(verify, &host)
    }

    /// The `Authorization` value for `scope` on `registry` (`repository` picks the
    /// credentials): the cached one; with the challenges of a 401, a fresh one (a Bearer
    /// token is asked for `scope` itself, whatever scope the challenge names).
    pub(crate) fn authorization(
        &self,
        registry: &str,
        repository: &str,
        scope: &str,
        challenges: Option<&[Challenge]>,
        what: &str,
    ) -> Result<Option<String>, Error> {
        let host = super::reference::api_host(registry).to_string();
        let key = (host.clone(), scope.to_string());
        let Some(challenges) = challenges else {
            return Ok(self.tokens.lock().expect("tokens lock").get(&key).cloned());
        };
        let challenges: Vec<Challenge> = challenges
            .iter()
            .cloned()
            .map(|mut c| {
                if c.scheme == "bearer" {
                    c.params.insert("scope".into(), scope.to_string());
                }
                c
            })
            .collect();
        let ep = Endpoint {
            host,
            repository: repository.to_string(),
            cred_key: registry.to_string(),
        };
        let value = self.authenticate(&ep, Some(scope), &challenges, what)?;
        self.tokens
            .lock()
            .expect("tokens lock")
            .insert(key, value.clone());
        Ok(Some(value))
    }

    /// A transport error of a request to `host`, as the pull side reports them.
    pub(crate) fn transport_error(&self, e: ureq::Error, host: &str, what: &str) -> Error {
        self.map_ureq(e, host, what)
    }
}

/// `BOX_REGISTRY_TIMEOUT`: seconds a registry may stay silent mid-request (default 30).
fn read_timeout_from_env() -> Option<Duration> {
    let v = std::env::var("BOX_REGISTRY_TIMEOUT").ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// `BOX_REGISTRY_STALL_TIMEOUT`: seconds a manifest, config or blob body may take to grow
/// by 16 KiB (default 30): a registry trickling bytes cannot hold a pull forever.
fn stall_timeout_from_env() -> Option<Duration> {
    let v = std::env::var("BOX_REGISTRY_STALL_TIMEOUT").ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// Watches a body for stalls: it must grow by `STALL_MIN_PROGRESS` bytes (or end) within
/// each `limit`.
struct StallWatch {
    limit: Duration,
    mark: u64,
    since: std::time::Instant,
}

impl StallWatch {
    fn new(limit: Duration, have: u64) -> StallWatch {
        StallWatch {
            limit,
            mark: have,
            since: std::time::Instant::now(),
        }
    }

    /// After the body reached `have` bytes.
    fn check(&mut self, have: u64, host: &str, what: &str) -> Result<(), Error> {
        if have >= self.mark + STALL_MIN_PROGRESS {
            self.mark = have;
            self.since = std::time::Instant::now();
            return Ok(());
        }
        if self.since.elapsed() > self.limit {
            return Err(Error::Stalled {
                host: host.to_string(),
                what: what.to_string(),
                got: have - self.mark,
                secs: self.limit.as_secs_f64(),
            });
        }
        Ok(())
    }
}

/// Retry bookkeeping: exponential back-off, bounded tries and timeouts.
#[derive(Default)]
struct Retry {
    failures: u32,
    timeouts: u32,
}

impl Retry {
    /// After failure `e`: sleep and return true when another attempt is worth it.
    fn again(&mut self, e: &Error, backoff: Duration) -> bool {
        if !e.is_transient() {
            return false;
        }
        self.failures += 1;
        if matches!(e, Error::Timeout { .. } | Error::Stalled { .. }) {
            self.timeouts += 1;
        }
        if self.failures >= MAX_TRIES || self.timeouts >= MAX_TIMEOUTS {
            return false;
        }
        std::thread::sleep(backoff * 2u32.pow(self.failures - 1));
        true
    }
}

fn finish(
    file: fs::File,
    hasher: Hasher,
    digest: &str,
    what: &str,
    tmp: &Path,
) -> Result<(), Error> {
    let actual = hasher.finish();
    if actual != digest {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            actual,
        });
    }
    file.sync_all().map_err(|e| Error::io("sync", tmp, e))
}

fn map_ureq(e: ureq::Error, host: &str, what: &str, conf_path: &str) -> Error {
    let host = host.to_string();
    match e {
        ureq::Error::Timeout(t) => Error::Timeout {
            host,
            phase: t.to_string(),
        },
        ureq::Error::HostNotFound => Error::UnknownHost { host },
        ureq::Error::Io(io)
            if io.kind() == std::io::ErrorKind::TimedOut
                || io.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Error::Timeout {
                host,
                phase: "read".into(),
            }
        }
        // rustls reports a peer that does not speak TLS as invalid data
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => Error::Tls {
            host,
            reason: io.to_string().to_lowercase(),
            conf: conf_path.to_string(),
        },
        ureq::Error::Io(io) => Error::Connect {
            host,
            reason: io.to_string().to_lowercase(),
        },
        ureq::Error::ConnectionFailed => Error::Connect {
            host,
            reason: "connection failed".into(),
        },
        ureq::Error::Tls(m) => Error::Tls {
            host,
            reason: m.to_string(),
            conf: conf_path.to_string(),
        },
        ureq::Error::Rustls(r) => Error::Tls {
            host,
            reason: r.to_string().to_lowercase(),
            conf: conf_path.to_string(),
        },
        ureq::Error::BodyExceedsLimit(n) => Error::TooLarge {
            what: what.to_string(),
            limit: n,
        },
        ureq::Error::Protocol(p) => Error::Transfer {
            host,
            what: what.to_string(),
            reason: p.to_string(),
        },
        other => Error::Connect {
            host,
            reason: other.to_string(),
        },
    }
}

/// An error while reading a response body: a timeout, or a transfer that broke.
fn body_error(e: std::io::Error, host: &str, what: &str) -> Error {
    let kind = e.kind();
    match ureq::Error::from(e) {
        ureq::Error::Timeout(t) => Error::Timeout {
            host: host.to_string(),
            phase: t.to_string(),
        },
        ureq::Error::BodyExceedsLimit(n) => Error::TooLarge {
            what: what.to_string(),
            limit: n,
        },
        _ if kind == std::io::ErrorKind::TimedOut || kind == std::io::ErrorKind::WouldBlock => {
            Error::Timeout {
                host: host.to_string(),
                phase: "read".into(),
            }
        }
        ureq::Error::Io(io) => Error::Transfer {
            host: host.to_string(),
            what: what.to_string(),
            reason: io.to_string().to_lowercase(),
        },
        other => Error::Transfer {
            host: host.to_string(),
            what: what.to_string(),
            reason: other.to_string().to_lowercase(),
        },
    }
}

/// [`read_bounded`] that fails with `Stalled` when the body does not grow by
/// `STALL_MIN_PROGRESS` bytes (or end) within each `stall`.
fn read_bounded_watched(
    body: Body,
    limit: u64,
    host: &str,
    what: &str,
    stall: Duration,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut reader = body.into_reader().take(limit + 1);
    let mut watch = StallWatch::new(stall, 0);
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(body_error(e, host, what)),
        };
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        watch.check(out.len() as u64, host, what)?;
    }
    Ok(out)
}

/// Read at most `limit` bytes of a body; more is `TooLarge`.
fn read_bounded(body: Body, limit: u64, host: &str, what: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut reader = body.into_reader().take(limit + 1);
    reader
        .read_to_end(&mut out)
        .map_err(|e| body_error(e, host, what))?;
    if out.len() as u64 > limit {
        return Err(Error::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    Ok(out)
}

fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `: CODE: message` from a registry's `{"errors":[…]}` body (bounded), or "".
pub(crate) fn error_detail(resp: Response<Body>) -> String {
    let Ok(body) = read_bounded(resp.into_body(), 16 << 10, "", "") else {
        return String::new();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return String::new();
    };
    let Some(first) = v
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    else {
        return String::new();
    };
    let code = first
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = first
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text: String = format!("{} {message}", code.to_lowercase())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// The media type of a manifest: its `mediaType` field, else a known Content-Type, else its shape.
fn manifest_media_type(json: &Value, content_type: Option<&str>) -> String {
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

/// Whether `host[:port]` is on loopback: 127.0.0.0/8, ::1 or localhost.
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// (scheme, host[:port]) of a URL, lowercase scheme; empty parts when absent.
fn split_url(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (String::new(), String::new());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    (scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
}

/// scheme://host:port with default ports made explicit.
fn origin_of(url: &str) -> String {
    let (scheme, host) = split_url(url);
    let has_port = if host.starts_with('[') {
        host.contains("]:")
    } else {
        host.contains(':')
    };
    let port = match (has_port, scheme.as_str()) {
        (true, _) => "",
        (false, "https") => ":443",
        (false, "http") => ":80",
        _ => "",
    };
    format!("{scheme}://{host}{port}")
}

/// Resolve a Location header against the URL it answered.
fn join_url(base: &str, loc: &str) -> String {
    if loc.contains("://")
        && loc
            .split("://")
            .next()
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_alphabetic()))
    {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(net) = loc.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if loc.starts_with('/') {
        return format!("{scheme}://{authority}{loc}");
    }
    let path = &rest[authority.len()..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{loc}")
}

/// The first byte of `Content-Range: bytes N-M/T`.
fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes")?
        .trim()
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
