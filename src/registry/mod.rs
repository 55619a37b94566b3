//! OCI distribution client: references, auth, manifests and verified blob downloads.
//!
//! - [`Reference`]: docker-normalised image references (a pure parser).
//! - [`Platform`]: `os/arch[/variant]`, and the choice of an entry in an image index.
//! - [`Client`] (`client.rs`): Distribution API v2 over ureq, its configuration and
//!   endpoints (mirrors and insecure registries from box's `registries.toml`), one file per
//!   concern: `resolve.rs` (manifests and indexes, [`Client::resolve`], the config),
//!   `blob.rs` (streamed, verified, resumed blobs, [`Client::download_blob`]), `transport.rs`
//!   (agents, https/http, redirects, retries, timeouts, stall watch, status mapping).
//! - [`auth`]: `WWW-Authenticate` parsing, the auth.json credential files, and the client's
//!   bearer/basic token flow (challenge → token request → cache) and `check_login`.
//! - [`upload`]: pushing blobs (mounts, monolithic and chunked uploads) and manifests.
//!
//! No storage knowledge: callers decide where verified bytes go.
//!
//! Timeouts: connect 10 s; a registry silent for 30 s mid-request (`BOX_REGISTRY_TIMEOUT`
//! seconds, for tests) fails the attempt, and so does a manifest, config or blob body that
//! does not grow by 16 KiB within 30 s (`BOX_REGISTRY_STALL_TIMEOUT` seconds: a registry
//! trickling a byte a second). Transient failures (connect errors, 5xx, 429, truncated
//! bodies) are retried with exponential back-off, 4 attempts at most, of which at most 2
//! may be timeouts or stalls.
pub mod auth;
mod blob;
mod client;
pub mod conf;
mod digest;
mod platform;
mod reference;
mod resolve;
#[cfg(test)]
mod testserver;
mod transport;
pub mod upload;

use std::path::{Path, PathBuf};

pub use client::{Client, ClientConfig};
pub use digest::verify_digest;
pub use platform::Platform;
pub use reference::{DOCKER_HUB, DOCKER_HUB_API, Reference, api_host};
pub use resolve::{MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, Resolved};

/// The User-Agent box sends.
pub const USER_AGENT: &str = concat!("box/", env!("CARGO_PKG_VERSION"));

/// Everything that can go wrong talking to a registry. Messages are one line, lowercase,
/// and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },
    #[error("invalid platform {input:?}: {reason}: use os/arch[/variant], e.g. linux/arm64/v8")]
    InvalidPlatform { input: String, reason: String },
    #[error(
        "invalid registry {input:?}: {reason}: give a host[:port] such as quay.io or 127.0.0.1:5000"
    )]
    InvalidRegistry { input: String, reason: String },

    #[error("manifest unknown: {reference} does not exist in the registry")]
    ManifestUnknown { reference: String },
    #[error(
        "blob unknown: {digest} of {repository} is missing from the registry: the image is incomplete there, push it again"
    )]
    BlobUnknown { repository: String, digest: String },
    #[error(
        "unauthorized: {what}: the repository does not exist or needs credentials: run box login {registry}"
    )]
    Unauthorized { registry: String, what: String },
    #[error(
        "denied: {what}: your credentials for {registry} do not allow this: check them with box login {registry}"
    )]
    Denied { registry: String, what: String },
    #[error(
        "{registry} rejected the username or password{detail}: check them and run box login {registry}"
    )]
    CredentialsRejected { registry: String, detail: String },
    #[error(
        "{registry} answered {status} to {what}{detail}: try again later or check the registry"
    )]
    Status {
        registry: String,
        status: u16,
        what: String,
        detail: String,
    },
    #[error(
        "{registry} asks for unsupported authentication {scheme:?}: only Bearer and Basic work"
    )]
    UnsupportedAuth { registry: String, scheme: String },
    #[error("token request to {realm} failed: {reason}")]
    Token { realm: String, reason: String },

    #[error("cannot resolve {host}: check the registry name and your DNS")]
    UnknownHost { host: String },
    #[error("cannot reach {host}: {reason}: check the address and your network")]
    Connect { host: String, reason: String },
    #[error(
        "{host} did not answer in time ({phase}): the registry hangs or the network is down, try again"
    )]
    Timeout { host: String, phase: String },
    #[error(
        "{host} stalled sending {what}: only {got} bytes in the last {secs} s: the registry or the network is too slow; try again later, or allow more with BOX_REGISTRY_STALL_TIMEOUT=SECONDS"
    )]
    Stalled {
        host: String,
        what: String,
        got: u64,
        secs: f64,
    },
    #[error("connection to {host} broke while reading {what}: {reason}: try again")]
    Transfer {
        host: String,
        what: String,
        reason: String,
    },
    #[error(
        "tls with {host} failed: {reason}: if the registry has no valid certificate, list it with insecure = true in {conf} or pass --tls-verify=false"
    )]
    Tls {
        host: String,
        reason: String,
        conf: String,
    },
    #[error("refusing {what}: {reason}")]
    Insecure { what: String, reason: String },
    #[error("{host} sent a bad redirect for {what}: {reason}")]
    Redirect {
        host: String,
        what: String,
        reason: String,
    },

    #[error("invalid manifest for {reference}: {reason}")]
    InvalidManifest { reference: String, reason: String },
    #[error("{reference} is a {media_type}, not a container image: nothing to pull")]
    NotAnImage {
        reference: String,
        media_type: String,
    },
    #[error(
        "{reference} has no image for {wanted}: available: {available}: choose one with --platform"
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("invalid image config of {reference}: {reason}")]
    InvalidConfig { reference: String, reason: String },
    #[error(
        "digest mismatch for {what}: expected {expected}, got {actual}: the registry sent corrupt data, nothing was kept; try again"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "size mismatch for {what}: expected {expected} bytes, got {actual}: the registry sent corrupt data, nothing was kept; try again"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} is larger than {limit} bytes: refusing it")]
    TooLarge { what: String, limit: u64 },
    #[error("unsupported digest {digest:?}: only sha256 and sha512 are supported")]
    UnsupportedDigest { digest: String },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid credentials file {path}: {reason}: fix or remove it")]
    AuthFile { path: PathBuf, reason: String },
    #[error(
        "invalid {path}: {reason}: fix it (format: [[registry]] location = \"host[:port]\", insecure = true, mirrors = [\"host\"])"
    )]
    Conf { path: PathBuf, reason: String },
}

impl Error {
    /// Failures worth retrying after a pause: connection trouble, timeouts, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::Timeout { .. }
            | Error::Stalled { .. }
            | Error::Transfer { .. } => true,
            Error::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The standard client of box: box's auth.json first (the one `box login` writes), then the
/// containers and docker credential files, and box's registries.toml.
pub fn client_for(paths: &crate::paths::Paths, tls_verify: Option<bool>) -> Client {
    Client::new(ClientConfig::standard(paths, tls_verify))
}
