//! Registry authentication: `WWW-Authenticate` challenges, the credential files, and the
//! client's token flow: [`Client`]'s authorized GET sends the cached `Authorization` first;
//! on a 401 it answers the challenge once, with a bearer token fetched from the challenge's
//! realm (scoped; Basic credentials sent along when there are any; at most
//! [`MAX_TOKEN_SIZE`]) or with Basic credentials, and caches the answer per (host, scope).
//! `box login` checks credentials with [`Client::check_login`].
//!
//! Credential files use the docker / containers format
//! `{"auths": {"host[:port][/namespace]": {"auth": "base64(user:password)"}}}`. Keys may carry
//! a scheme and docker's `/v1/` path (`https://index.docker.io/v1/`); docker.io, index.docker.io
//! and registry-1.docker.io are one registry.
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use ureq::Body;
use ureq::http::Response;

use super::Error;
use super::client::{Client, Endpoint};
use super::reference::DOCKER_HUB;
use super::transport::{Policy, error_detail, is_loopback, read_bounded, split_url};

/// One challenge of a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// Lowercase scheme: "bearer", "basic", …
    pub scheme: String,
    /// Parameters, names lowercased; the first of duplicated names wins.
    pub params: BTreeMap<String, String>,
    /// A token68 credential (`Negotiate abc==`), rare for registries.
    pub token68: Option<String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` value into its challenges (RFC 7235), leniently: unknown
/// syntax is skipped, never a panic. A pure function: it is a fuzz target.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let s: Vec<char> = header.chars().collect();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_space = |c: char| c == ' ' || c == '\t';
    let is_tchar = |c: char| {
        c.is_ascii_alphanumeric()
            || "!#$%&'*+-.^_`|~/:".contains(c)
            || (!c.is_ascii() && !c.is_whitespace())
    };
    let skip = |i: &mut usize, pred: &dyn Fn(char) -> bool| {
        while *i < s.len() && pred(s[*i]) {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < s.len() && is_tchar(s[*i]) {
            *i += 1;
        }
        s[start..*i].iter().collect()
    };

    while i < s.len() {
        skip(&mut i, &|c| is_space(c) || c == ',');
        let scheme = token(&mut i);
        if scheme.is_empty() {
            // junk: skip one char and try again
            if i < s.len() {
                i += 1;
            }
            continue;
        }
        let mut ch = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            ..Challenge::default()
        };
        skip(&mut i, &is_space);
        // auth-params or a token68
        let mut first = true;
        loop {
            let save = i;
            skip(&mut i, &is_space);
            let name = token(&mut i);
            if name.is_empty() {
                i = save;
                break;
            }
            skip(&mut i, &is_space);
            if i < s.len() && s[i] == '=' {
                // token68 like `abc==`: '=' runs up to the end or a comma
                let mut j = i;
                while j < s.len() && s[j] == '=' {
                    j += 1;
                }
                let mut k = j;
                skip(&mut k, &is_space);
                let ends = k >= s.len() || s[k] == ',';
                if first && ends {
                    ch.token68 = Some(format!("{name}{}", "=".repeat(j - i)));
                    i = j;
                    skip(&mut i, &is_space);
                    if i < s.len() && s[i] == ',' {
                        i += 1;
                    }
                    break;
                }
                i += 1; // '='
                skip(&mut i, &is_space);
                let value = if i < s.len() && s[i] == '"' {
                    i += 1;
                    let mut v = String::new();
                    while i < s.len() && s[i] != '"' {
                        if s[i] == '\\' && i + 1 < s.len() {
                            i += 1;
                        }
                        v.push(s[i]);
                        i += 1;
                    }
                    if i < s.len() {
                        i += 1; // the closing quote
                    }
                    v
                } else {
                    let start = i;
                    while i < s.len() && s[i] != ',' && !is_space(s[i]) {
                        i += 1;
                    }
                    s[start..i].iter().collect()
                };
                ch.params.entry(name.to_ascii_lowercase()).or_insert(value);
                first = false;
                skip(&mut i, &is_space);
                if i < s.len() && s[i] == ',' {
                    i += 1;
                    continue;
                }
                if i >= s.len() {
                    break;
                }
                // junk after a value: no comma; treat what follows as the next challenge
                break;
            } else if first && (i >= s.len() || s[i] == ',') {
                // a bare token68 without padding
                ch.token68 = Some(name);
                if i < s.len() {
                    i += 1;
                }
                break;
            } else {
                // a new challenge starts here
                i = save;
                break;
            }
        }
        out.push(ch);
    }
    out
}

/// The challenges of a 401 answer's `WWW-Authenticate` headers.
pub(crate) fn challenges_of<B>(resp: &ureq::http::Response<B>) -> Vec<Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_www_authenticate)
        .collect()
}

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic …` header.
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// The registry part of an auth.json key: scheme, docker's `/v1/` path and docker.io aliases
/// removed. Returns (registry, namespace path).
fn normalise_key(key: &str) -> (String, String) {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match k.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (k, ""),
    };
    let host = match host.to_ascii_lowercase().as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host.to_string(),
    };
    let path = match path {
        "v1" | "v2" => "",
        p => p,
    };
    (host, path.to_string())
}

/// The registry name `box login` stores credentials under: `host[:port]`, docker.io for
/// Docker Hub's aliases. Accepts `https://host/`, `index.docker.io/v1/` and the like.
pub fn normalise_registry_arg(input: &str) -> Result<String, Error> {
    let (host, path) = normalise_key(input.trim());
    let bad = |reason: String| Error::InvalidRegistry {
        input: input.chars().take(200).collect(),
        reason,
    };
    if !path.is_empty() {
        return Err(bad(
            "box login takes a registry, not an image or a path".into()
        ));
    }
    super::reference::normalise_registry(&host).map_err(bad)
}

fn read_json(path: &Path) -> Result<Option<Value>, Error> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&data).map_err(|e| Error::AuthFile {
        path: path.to_path_buf(),
        reason: format!("not JSON ({e})"),
    })?;
    if !v.is_object() {
        return Err(Error::AuthFile {
            path: path.to_path_buf(),
            reason: "not a JSON object".into(),
        });
    }
    Ok(Some(v))
}

fn decode_entry(path: &Path, key: &str, entry: &Value) -> Result<Option<Credentials>, Error> {
    let bad = |reason: &str| Error::AuthFile {
        path: path.to_path_buf(),
        reason: format!("entry {key:?}: {reason}"),
    };
    let Some(auth) = entry.get("auth").and_then(Value::as_str) else {
        return Ok(None);
    };
    if auth.is_empty() {
        return Ok(None);
    }
    let raw = STANDARD
        .decode(auth.trim())
        .or_else(|_| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(auth.trim().trim_end_matches('='))
        })
        .map_err(|_| bad("\"auth\" is not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| bad("\"auth\" is not UTF-8"))?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| bad("\"auth\" is not base64 of user:password"))?;
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

/// Credentials for `registry` (and `repository`, for namespace-scoped keys) from the first
/// of `files` that has an entry; the most specific key of that file wins.
pub fn lookup(
    files: &[PathBuf],
    registry: &str,
    repository: Option<&str>,
) -> Result<Option<Credentials>, Error> {
    let (want_host, _) = normalise_key(registry);
    for file in files {
        let Some(v) = read_json(file)? else { continue };
        let Some(auths) = v.get("auths").and_then(Value::as_object) else {
            continue;
        };
        let mut best: Option<(usize, Credentials)> = None;
        for (key, entry) in auths {
            let (host, path) = normalise_key(key);
            if !host.eq_ignore_ascii_case(&want_host) {
                continue;
            }
            let specificity = if path.is_empty() {
                0
            } else {
                match repository {
                    Some(r) if r == path || r.starts_with(&format!("{path}/")) => path.len(),
                    _ => continue,
                }
            };
            if best.as_ref().is_some_and(|(s, _)| *s >= specificity) {
                continue;
            }
            if let Some(c) = decode_entry(file, key, entry)? {
                best = Some((specificity, c));
            }
        }
        if let Some((_, c)) = best {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Store `creds` for `registry` in `path` (created 0600 in a 0700 directory), keeping every
/// other entry and field; written to a temp file and renamed into place.
pub fn store(path: &Path, registry: &str, creds: &Credentials) -> Result<(), Error> {
    let mut root = read_json(path)?.unwrap_or_else(|| Value::Object(Map::new()));
    let obj = root.as_object_mut().expect("checked object");
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("object");
    let (want, _) = normalise_key(registry);
    auths.retain(|k, _| normalise_key(k) != (want.clone(), String::new()));
    let encoded = STANDARD.encode(format!("{}:{}", creds.username, creds.password));
    let mut entry = Map::new();
    entry.insert("auth".into(), Value::String(encoded));
    auths.insert(want, Value::Object(entry));
    write_private(path, &root)
}

/// Remove `registry`'s entries from `path`; false when there was none.
pub fn remove(path: &Path, registry: &str) -> Result<bool, Error> {
    let Some(mut root) = read_json(path)? else {
        return Ok(false);
    };
    let Some(auths) = root.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(false);
    };
    let (want, _) = normalise_key(registry);
    let before = auths.len();
    auths.retain(|k, _| normalise_key(k).0 != want);
    if auths.len() == before {
        return Ok(false);
    }
    write_private(path, &root)?;
    Ok(true)
}

/// Remove every entry of `path`; the registries that had one.
pub fn remove_all(path: &Path) -> Result<Vec<String>, Error> {
    let Some(mut root) = read_json(path)? else {
        return Ok(Vec::new());
    };
    let Some(auths) = root.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(Vec::new());
    };
    let removed: Vec<String> = auths.keys().cloned().collect();
    auths.clear();
    write_private(path, &root)?;
    Ok(removed)
}

/// The keys of `path`'s `auths`, as written (sorted): the registries with stored
/// credentials. Read only, for completion: a missing, half-written or malformed file has
/// none.
pub fn registries(path: &Path) -> Vec<String> {
    let mut keys: Vec<String> = match read_json(path) {
        Ok(Some(v)) => v
            .get("auths")
            .and_then(Value::as_object)
            .map(|auths| auths.keys().cloned().collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    keys.sort();
    keys
}

/// Write JSON to `path` atomically with mode 0600, creating its directory with 0700.
fn write_private(path: &Path, value: &Value) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("create", dir, e))?;
    let mut data = serde_json::to_vec_pretty(value).expect("json serialises");
    data.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&data)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("replace", path, e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// ---------------------------------------------------------------- the token flow

/// Bearer tokens longer than this are refused: registries reject request headers much
/// smaller than a megabyte (Go's default limit is 1 MiB for all of them, nginx's 8 KiB a
/// line); real tokens are a few KiB.
pub const MAX_TOKEN_SIZE: usize = 64 << 10;

impl Client {
    /// Check `creds` against `registry` (GET /v2/ with the auth flow): Ok when the registry
    /// accepts them (or asks for no authentication at all).
    pub fn check_login(&self, registry: &str, creds: &Credentials) -> Result<(), Error> {
        let registry = normalise_registry_arg(registry)?;
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

    /// GET `/v2/<path>` on an endpoint with the auth flow: the cached token first; on a 401 a
    /// new token (or Basic credentials) from the challenge, once.
    pub(super) fn get_v2(
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
                    let challenges = challenges_of(&resp);
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

    fn credentials(&self, ep: &Endpoint) -> Result<Option<Credentials>, Error> {
        let key = (ep.cred_key.clone(), ep.repository.clone());
        if let Some(c) = self.creds.lock().expect("creds lock").get(&key) {
            return Ok(c.clone());
        }
        let repo = (!ep.repository.is_empty()).then_some(ep.repository.as_str());
        let c = lookup(&self.auth_files, &ep.cred_key, repo)?;
        self.creds
            .lock()
            .expect("creds lock")
            .insert(key, c.clone());
        Ok(c)
    }

    /// Answer a 401's challenges: an `Authorization` header value.
    pub(super) fn authenticate(
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
}

pub(super) fn percent_encode(s: &str) -> String {
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
#[path = "auth_tests.rs"]
mod tests;
