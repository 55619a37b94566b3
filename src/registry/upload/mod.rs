//! Pushing to a registry (the distribution spec's push): blob checks (`HEAD`),
//! cross-repository mounts, monolithic and chunked uploads that resume after a failure,
//! and manifests.
//!
//! A blob of at most [`chunk_size`] bytes (`BOX_PUSH_CHUNK_SIZE`, default 8 MiB) is sent
//! monolithically (`POST`, then one `PUT ?digest=`); a larger one in chunks of that size
//! (`PATCH` with `Content-Range`, then an empty `PUT ?digest=`). After a transient failure
//! a chunked upload asks the registry how much it has (`GET` of the upload) and goes on
//! from there; a monolithic one starts a new upload. The digest the registry reports
//! (`Docker-Content-Digest`) must be the one pushed.
use std::fs::File;
use std::time::Duration;

mod send;

use super::{Client, Reference};
use send::{Payload, detail_suffix, parse_range_end, with_query};

/// Blobs larger than this are uploaded in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;
/// Attempts of a blob upload or manifest push that fails transiently.
const MAX_TRIES: u32 = 4;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] super::Error),
    #[error(
        "{registry} rejected the manifest of {reference}{detail}: the image is not valid there; try another --format (oci or v2s2)"
    )]
    ManifestRejected {
        registry: String,
        reference: String,
        detail: String,
    },
    #[error(
        "{registry} refused blob {digest} ({status}{detail}): the registry may not accept this content or be out of space; check it and push again"
    )]
    BlobRejected {
        registry: String,
        digest: String,
        status: u16,
        detail: String,
    },
    #[error(
        "{registry} stored {what} as {actual}, not {expected}: the upload was corrupted on the way; push again"
    )]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{registry} answered {status} to {what} without a Location: is it a registry?")]
    NoLocation {
        registry: String,
        what: String,
        status: u16,
    },
    /// An upload session the registry lost or disagrees about: start a new one.
    #[error("the registry lost the upload of blob {digest}: push again")]
    OutOfStep { digest: String },
}

impl Error {
    /// Worth another attempt: connection trouble, timeouts, 5xx, 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Registry(e) => e.is_transient(),
            Error::OutOfStep { .. } => true,
            _ => false,
        }
    }
}

/// What happened to a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPushed {
    /// The repository had it.
    Exists,
    /// Mounted from this repository of the same registry.
    Mounted(String),
    /// Uploaded: in this many requests carrying data (1 when monolithic).
    Uploaded { chunks: u32 },
}

/// The chunk size: `BOX_PUSH_CHUNK_SIZE` bytes (for tests), else [`DEFAULT_CHUNK_SIZE`].
pub fn chunk_size() -> u64 {
    std::env::var("BOX_PUSH_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(DEFAULT_CHUNK_SIZE)
}

/// A push session to one repository (`&Pusher` is shared between upload threads).
pub struct Pusher<'a> {
    client: &'a Client,
    target: Reference,
    base: String,
    chunk: u64,
    backoff: Duration,
}

impl<'a> Pusher<'a> {
    /// A session for pushing to `target`'s repository (connects lazily; an insecure registry
    /// is probed here).
    pub fn new(client: &'a Client, target: &Reference) -> Result<Pusher<'a>, Error> {
        let base = client.api_base(target.api_host())?;
        Ok(Pusher {
            client,
            target: target.clone(),
            base,
            chunk: chunk_size(),
            backoff: Duration::from_millis(500),
        })
    }

    /// A different chunk size (tests).
    #[doc(hidden)]
    pub fn with_chunk_size(mut self, chunk: u64) -> Pusher<'a> {
        self.chunk = chunk.max(1);
        self
    }

    /// A shorter back-off between attempts (tests).
    #[doc(hidden)]
    pub fn with_backoff(mut self, backoff: Duration) -> Pusher<'a> {
        self.backoff = backoff;
        self
    }

    fn repo(&self) -> &str {
        &self.target.repository
    }

    fn scope(&self, from: Option<&str>) -> String {
        let mut s = format!("repository:{}:pull,push", self.repo());
        if let Some(f) = from {
            s.push_str(&format!(" repository:{f}:pull"));
        }
        s
    }

    /// Push blob `digest` (`size` bytes of `file`) unless the repository has it: mounted
    /// from `mount_from` (a repository of the same registry) when the registry can,
    /// else uploaded. `progress(n)`: `n` bytes of the blob are on the registry.
    pub fn push_blob(
        &self,
        digest: &str,
        size: u64,
        file: &File,
        mount_from: Option<&str>,
        progress: &dyn Fn(u64),
    ) -> Result<BlobPushed, Error> {
        if self.retrying(|| self.blob_exists(digest))? {
            progress(size);
            return Ok(BlobPushed::Exists);
        }
        let mount_from = mount_from.filter(|f| *f != self.repo());
        let mut tries = 0;
        let mut session: Option<String> = None;
        let mut mount = mount_from;
        let mut chunks = 0;
        loop {
            let attempt = (|| -> Result<BlobPushed, Error> {
                let resumed = session.is_some();
                let loc = match session.take() {
                    Some(l) => l,
                    None => match self.start_upload(digest, mount)? {
                        Start::Mounted => {
                            progress(size);
                            return Ok(BlobPushed::Mounted(mount.unwrap_or_default().into()));
                        }
                        Start::Session(l) => {
                            mount = None;
                            l
                        }
                    },
                };
                if size <= self.chunk {
                    chunks += 1;
                    self.put_monolithic(&loc, digest, size, file, progress)?;
                } else {
                    let blob = (digest, size, file);
                    self.upload_chunks(&mut session, loc, resumed, blob, progress, &mut chunks)?;
                }
                Ok(BlobPushed::Uploaded { chunks })
            })();
            match attempt {
                Err(e) if e.is_transient() && tries + 1 < MAX_TRIES => {
                    tries += 1;
                    std::thread::sleep(self.backoff * 2u32.pow(tries - 1));
                }
                r => return r,
            }
        }
    }

    /// Put `bytes` as the manifest `media_type` under the target's tag (or digest); its
    /// digest, which the registry confirmed.
    pub fn put_manifest(&self, media_type: &str, bytes: &[u8]) -> Result<String, Error> {
        let digest = super::digest::sha256_of(bytes);
        let shown = self.target.to_string();
        let what = format!("manifest of {shown}");
        let url = format!(
            "{}/v2/{}/manifests/{}",
            self.base,
            self.repo(),
            self.target.manifest_ref()
        );
        let resp = self.retrying(|| {
            let resp = self.send(
                "PUT",
                &url,
                &[("Content-Type", media_type)],
                Payload::Bytes(bytes),
                None,
                &what,
            )?;
            match resp.status().as_u16() {
                200..=299 => Ok(resp),
                s @ (400 | 404 | 413 | 415 | 422) => Err(Error::ManifestRejected {
                    registry: self.target.registry.clone(),
                    reference: shown.clone(),
                    detail: format!(" ({s}{})", detail_suffix(resp)),
                }),
                s => Err(self.status(s, &what, resp)),
            }
        })?;
        self.check_digest(&resp, &what, &digest)?;
        Ok(digest)
    }

    // ---------------------------------------------------------------- steps

    fn blob_exists(&self, digest: &str) -> Result<bool, Error> {
        let what = format!("blob {digest}");
        let url = format!("{}/v2/{}/blobs/{digest}", self.base, self.repo());
        let resp = self.send("HEAD", &url, &[], Payload::Empty, None, &what)?;
        match resp.status().as_u16() {
            200..=299 | 307 | 302 => Ok(true),
            404 => Ok(false),
            s => Err(self.status(s, &what, resp)),
        }
    }

    fn start_upload(&self, digest: &str, from: Option<&str>) -> Result<Start, Error> {
        let what = format!("upload of blob {digest}");
        let mut url = format!("{}/v2/{}/blobs/uploads/", self.base, self.repo());
        if let Some(f) = from {
            url.push_str(&format!("?mount={digest}&from={f}"));
        }
        let resp = self.send("POST", &url, &[], Payload::Bytes(&[]), from, &what)?;
        match resp.status().as_u16() {
            201 if from.is_some() => Ok(Start::Mounted),
            202 => Ok(Start::Session(self.location(&resp, &url, &what)?)),
            s => Err(self.rejected(s, digest, resp)),
        }
    }

    fn put_monolithic(
        &self,
        loc: &str,
        digest: &str,
        size: u64,
        file: &File,
        progress: &dyn Fn(u64),
    ) -> Result<(), Error> {
        let what = format!("blob {digest}");
        let url = with_query(loc, "digest", digest);
        let len = size.to_string();
        let payload = Payload::File {
            file,
            start: 0,
            end: size,
            progress,
        };
        let headers = [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", len.as_str()),
        ];
        let resp = self.send("PUT", &url, &headers, payload, None, &what)?;
        match resp.status().as_u16() {
            201 | 204 | 200 => self.check_digest(&resp, &what, digest),
            s => Err(self.rejected(s, digest, resp)),
        }
    }

    /// The chunks of `blob` (digest, size, file) from where the registry is: 0 for a new
    /// session, what it reports for a `resumed` one. On a failure worth retrying, the
    /// session to resume is left in `session`.
    fn upload_chunks(
        &self,
        session: &mut Option<String>,
        mut loc: String,
        resumed: bool,
        (digest, size, file): (&str, u64, &File),
        progress: &dyn Fn(u64),
        chunks: &mut u32,
    ) -> Result<(), Error> {
        let what = format!("blob {digest}");
        let mut offset = if resumed {
            match self.upload_offset(&loc, &what) {
                Ok(n) if n <= size => n,
                // the session is gone or makes no sense: a new one
                Ok(_) | Err(Error::Registry(super::Error::Status { status: 404, .. })) => {
                    return Err(Error::OutOfStep {
                        digest: digest.to_string(),
                    });
                }
                Err(e) => {
                    *session = Some(loc);
                    return Err(e);
                }
            }
        } else {
            0
        };
        progress(offset);
        while offset < size {
            let end = (offset + self.chunk).min(size);
            let range = format!("{offset}-{}", end - 1);
            let len = (end - offset).to_string();
            let headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range.as_str()),
                ("Content-Length", len.as_str()),
            ];
            let payload = Payload::File {
                file,
                start: offset,
                end,
                progress,
            };
            *chunks += 1;
            let resp = match self.send("PATCH", &loc, &headers, payload, None, &what) {
                Ok(r) => r,
                Err(e) => {
                    // keep the session: the next attempt asks where the registry is
                    *session = Some(loc);
                    return Err(e);
                }
            };
            match resp.status().as_u16() {
                202 | 204 => {
                    loc = self.location(&resp, &loc, &what).unwrap_or(loc);
                    offset = end;
                }
                s if s >= 500 || s == 429 => {
                    let e = self.status(s, &what, resp);
                    *session = Some(loc);
                    return Err(e);
                }
                416 => {
                    return Err(Error::OutOfStep {
                        digest: digest.to_string(),
                    });
                }
                s => return Err(self.rejected(s, digest, resp)),
            }
        }
        let url = with_query(&loc, "digest", digest);
        let resp = match self.send("PUT", &url, &[], Payload::Bytes(&[]), None, &what) {
            Ok(r) => r,
            Err(e) => {
                *session = Some(loc);
                return Err(e);
            }
        };
        match resp.status().as_u16() {
            201 | 204 | 200 => self.check_digest(&resp, &what, digest),
            s if s >= 500 || s == 429 => {
                let e = self.status(s, &what, resp);
                *session = Some(loc);
                Err(e)
            }
            s => Err(self.rejected(s, digest, resp)),
        }
    }

    /// How many bytes the upload at `loc` holds: `Range: 0-N` → N+1; none, or `0-0`
    /// (which distribution also sends for an empty upload) → 0.
    fn upload_offset(&self, loc: &str, what: &str) -> Result<u64, Error> {
        let resp = self.send("GET", loc, &[], Payload::Empty, None, what)?;
        match resp.status().as_u16() {
            200..=299 => Ok(resp
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_range_end)
                .map_or(0, |end| if end == 0 { 0 } else { end + 1 })),
            s => Err(self.status(s, what, resp)),
        }
    }
}

enum Start {
    Mounted,
    Session(String),
}

#[cfg(test)]
mod tests;
