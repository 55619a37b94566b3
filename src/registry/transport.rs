//! HTTP transport of the registry client: the ureq agents (connect and read timeouts, no
//! proxy for loopback), the https/http choice per registry, redirects, retries with back-off,
//! the stall watch on bodies, bounded reads, and ureq failures and error statuses mapped to
//! [`Error`].
//!
//! Transport rules: https with the system's CA roots everywhere, except plain http for
//! loopback registries (127.0.0.0/8, ::1, localhost) and registries listed `insecure` (those
//! try https without verification first, then http). Redirects are followed by hand so that
//! `Authorization` never leaves the registry's origin and https never silently becomes http.
use std::io::Read;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, Body};

use super::Error;
use super::client::{Client, Endpoint};
use super::reference::{DOCKER_HUB, DOCKER_HUB_API};

/// A body that has not grown by this much within the stall timeout has stalled.
pub(super) const STALL_MIN_PROGRESS: u64 = 16 << 10;
const MAX_REDIRECTS: usize = 10;
/// Attempts of an operation that fails transiently (connect errors, 5xx, 429, truncation)…
const MAX_TRIES: u32 = 4;
/// …of which at most this many may be timeouts: a hanging registry tends to keep hanging.
const MAX_TIMEOUTS: u32 = 2;
pub(super) const BUF_SIZE: usize = 128 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Policy {
    /// https only, certificate verified.
    Https,
    /// plain http only (loopback).
    Http,
    /// https without verification, then http (insecure registries, --tls-verify=false).
    Insecure,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Timing {
    pub(super) connect: Duration,
    pub(super) read: Duration,
    pub(super) backoff: Duration,
    /// How long a body may go without `STALL_MIN_PROGRESS` new bytes (`BOX_REGISTRY_STALL_TIMEOUT`).
    pub(super) stall: Duration,
}

impl Client {
    pub(super) fn retrying<T>(&self, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
        let mut retry = Retry::default();
        loop {
            match f() {
                Err(e) if retry.again(&e, self.timing.backoff) => {}
                r => return r,
            }
        }
    }

    pub(super) fn policy(&self, host: &str) -> Policy {
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

    /// One request to an endpoint, choosing https/http by policy (with the http fallback of
    /// insecure registries).
    pub(super) fn get_with_scheme(
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
    pub(super) fn fetch(
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

    fn map_ureq(&self, e: ureq::Error, host: &str, what: &str) -> Error {
        map_ureq(e, host, what, &self.conf_path)
    }

    pub(super) fn status_error(
        &self,
        ep: &Endpoint,
        status: u16,
        what: &str,
        resp: Response<Body>,
    ) -> Error {
        Error::Status {
            registry: ep.host.clone(),
            status,
            what: what.to_string(),
            detail: error_detail(resp),
        }
    }
}

/// `BOX_REGISTRY_TIMEOUT`: seconds a registry may stay silent mid-request (default 30).
pub(super) fn read_timeout_from_env() -> Option<Duration> {
    let v = std::env::var("BOX_REGISTRY_TIMEOUT").ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// `BOX_REGISTRY_STALL_TIMEOUT`: seconds a manifest, config or blob body may take to grow
/// by 16 KiB (default 30): a registry trickling bytes cannot hold a pull forever.
pub(super) fn stall_timeout_from_env() -> Option<Duration> {
    let v = std::env::var("BOX_REGISTRY_STALL_TIMEOUT").ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs > 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs))
}

/// Watches a body for stalls: it must grow by `STALL_MIN_PROGRESS` bytes (or end) within
/// each `limit`.
pub(super) struct StallWatch {
    limit: Duration,
    mark: u64,
    since: std::time::Instant,
}

impl StallWatch {
    pub(super) fn new(limit: Duration, have: u64) -> StallWatch {
        StallWatch {
            limit,
            mark: have,
            since: std::time::Instant::now(),
        }
    }

    /// After the body reached `have` bytes.
    pub(super) fn check(&mut self, have: u64, host: &str, what: &str) -> Result<(), Error> {
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
pub(super) struct Retry {
    failures: u32,
    timeouts: u32,
}

impl Retry {
    /// After failure `e`: sleep and return true when another attempt is worth it.
    pub(super) fn again(&mut self, e: &Error, backoff: Duration) -> bool {
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
pub(super) fn body_error(e: std::io::Error, host: &str, what: &str) -> Error {
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
pub(super) fn read_bounded_watched(
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
pub(super) fn read_bounded(
    body: Body,
    limit: u64,
    host: &str,
    what: &str,
) -> Result<Vec<u8>, Error> {
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

pub(super) fn header<'a>(resp: &'a Response<Body>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `: CODE: message` from a registry's `{"errors":[…]}` body (bounded), or "".
pub(super) fn error_detail(resp: Response<Body>) -> String {
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
pub(super) fn split_url(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (String::new(), String::new());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    (scheme.to_ascii_lowercase(), authority.to_ascii_lowercase())
}

/// scheme://host:port with default ports made explicit.
pub(super) fn origin_of(url: &str) -> String {
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
pub(super) fn join_url(base: &str, loc: &str) -> String {
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
        challenges: Option<&[super::auth::Challenge]>,
        what: &str,
    ) -> Result<Option<String>, Error> {
        let host = super::reference::api_host(registry).to_string();
        let key = (host.clone(), scope.to_string());
        let Some(challenges) = challenges else {
            return Ok(self.tokens.lock().expect("tokens lock").get(&key).cloned());
        };
        let challenges: Vec<super::auth::Challenge> = challenges
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
