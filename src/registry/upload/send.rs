//! The requests of a push: the auth flow, bodies from files, answers turned into errors.
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

use ureq::SendBody;
use ureq::http::{self, Response};

use super::{Error, MAX_TRIES, Pusher};
use crate::registry::auth;
use crate::registry::transport::error_detail;

/// A request body: nothing, bytes, or a range of a file (re-readable for a retry).
#[derive(Clone, Copy)]
pub(super) enum Payload<'b> {
    Empty,
    Bytes(&'b [u8]),
    File {
        file: &'b File,
        start: u64,
        end: u64,
        progress: &'b dyn Fn(u64),
    },
}

struct RangeReader<'b> {
    file: &'b File,
    pos: u64,
    end: u64,
    progress: &'b dyn Fn(u64),
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "the blob file shrank while uploading",
            ));
        }
        self.pos += n as u64;
        (self.progress)(self.pos);
        Ok(n)
    }
}

impl Pusher<'_> {
    pub(super) fn retrying<T>(&self, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut tries = 0;
        loop {
            match f() {
                Err(e) if e.is_transient() && tries + 1 < MAX_TRIES => {
                    tries += 1;
                    std::thread::sleep(self.backoff * 2u32.pow(tries - 1));
                }
                r => return r,
            }
        }
    }

    /// One request with the auth flow: the cached authorization for the push scope; on a
    /// 401, a fresh one from the challenge and the request once more. 401 and 403 after
    /// that are errors with the `box login` hint. Authorization only goes to the
    /// registry's own origin.
    pub(super) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        from: Option<&str>,
        what: &str,
    ) -> Result<Response<ureq::Body>, Error> {
        let scope = self.scope(from);
        let registry = &self.target.registry;
        let mut authz = self
            .client
            .authorization(registry, self.repo(), &scope, None, what)?;
        let mut renewed = false;
        loop {
            let own = url.starts_with(&format!("{}/", self.base));
            let resp = self.send_once(
                method,
                url,
                headers,
                payload,
                authz.as_deref().filter(|_| own),
                what,
            )?;
            match resp.status().as_u16() {
                401 if !renewed => {
                    let challenges = auth::challenges_of(&resp);
                    drop(resp);
                    authz = self.client.authorization(
                        registry,
                        self.repo(),
                        &scope,
                        Some(&challenges),
                        what,
                    )?;
                    renewed = true;
                }
                401 => {
                    return Err(crate::registry::Error::Unauthorized {
                        registry: registry.clone(),
                        what: format!("push of {what}{}", error_detail(resp)),
                    }
                    .into());
                }
                403 => {
                    return Err(crate::registry::Error::Denied {
                        registry: registry.clone(),
                        what: format!("push of {what}{}", error_detail(resp)),
                    }
                    .into());
                }
                _ => return Ok(resp),
            }
        }
    }

    pub(super) fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        authz: Option<&str>,
        what: &str,
    ) -> Result<Response<ureq::Body>, Error> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = authz {
            b = b.header("Authorization", a);
        }
        let host = self.target.api_host();
        let agent = self.client.agent_for(url);
        let bad_request = |e: http::Error| {
            Error::from(crate::registry::Error::InvalidRegistry {
                input: url.chars().take(200).collect(),
                reason: e.to_string(),
            })
        };
        let result = match payload {
            Payload::Empty => agent.run(b.body(()).map_err(bad_request)?),
            Payload::Bytes(bytes) => agent.run(b.body(bytes).map_err(bad_request)?),
            Payload::File {
                file,
                start,
                end,
                progress,
            } => {
                let mut reader = RangeReader {
                    file,
                    pos: start,
                    end,
                    progress,
                };
                let body = SendBody::from_reader(&mut reader);
                agent.run(b.body(body).map_err(bad_request)?)
            }
        };
        result.map_err(|e| self.client.transport_error(e, host, what).into())
    }

    pub(super) fn location(
        &self,
        resp: &Response<ureq::Body>,
        url: &str,
        what: &str,
    ) -> Result<String, Error> {
        match resp.headers().get("location").and_then(|v| v.to_str().ok()) {
            Some(loc) => Ok(resolve_location(url, loc)),
            None => Err(Error::NoLocation {
                registry: self.target.registry.clone(),
                what: what.to_string(),
                status: resp.status().as_u16(),
            }),
        }
    }

    pub(super) fn check_digest(
        &self,
        resp: &Response<ureq::Body>,
        what: &str,
        expected: &str,
    ) -> Result<(), Error> {
        match resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(actual) if actual.trim() != expected => Err(Error::DigestMismatch {
                registry: self.target.registry.clone(),
                what: what.to_string(),
                expected: expected.to_string(),
                actual: actual.trim().chars().take(200).collect(),
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn status(&self, status: u16, what: &str, resp: Response<ureq::Body>) -> Error {
        crate::registry::Error::Status {
            registry: self.target.registry.clone(),
            status,
            what: what.to_string(),
            detail: error_detail(resp),
        }
        .into()
    }

    pub(super) fn rejected(&self, status: u16, digest: &str, resp: Response<ureq::Body>) -> Error {
        if status >= 500 || status == 429 || status == 408 {
            return self.status(status, &format!("blob {digest}"), resp);
        }
        Error::BlobRejected {
            registry: self.target.registry.clone(),
            digest: digest.to_string(),
            status,
            detail: detail_suffix(resp),
        }
    }
}

/// `: code message` of an error body, after the status.
pub(super) fn detail_suffix(resp: Response<ureq::Body>) -> String {
    let d = error_detail(resp);
    match d.trim().strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
        Some(inner) => format!(": {inner}"),
        None => String::new(),
    }
}

/// `url` with `key=value` added to its query.
pub(super) fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

/// A Location header against the URL it answered: absolute, or a path on the same origin.
pub(super) fn resolve_location(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if let Some(net) = loc.strip_prefix("//") {
        return format!("{scheme}://{net}");
    }
    if loc.starts_with('/') {
        return format!("{scheme}://{authority}{loc}");
    }
    let path = rest[authority.len()..]
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{scheme}://{authority}{dir}/{loc}")
}

/// The last byte of a `Range: 0-N` (or `bytes=0-N`) header.
pub(super) fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    v.split_once('-')?.1.trim().parse().ok()
}
