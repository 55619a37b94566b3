//! Blob download: streamed into a file, size and digest verified while writing; a prefix an
//! earlier attempt left is re-hashed and resumed with a Range request; transient failures
//! are retried, and a resumed download that fails verification restarts once from scratch.
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use oci_spec::image::Descriptor;

use super::Error;
use super::client::{Client, Endpoint};
use super::digest::Hasher;
use super::reference::Reference;
use super::transport::{BUF_SIZE, Retry, StallWatch, body_error, header};

impl Client {
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

/// The first byte of `Content-Range: bytes N-M/T`.
pub(super) fn content_range_start(v: &str) -> Option<u64> {
    v.trim()
        .strip_prefix("bytes")?
        .trim()
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}
