//! Registry authentication: `WWW-Authenticate` challenges and credential files.
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

use super::Error;
use super::reference::DOCKER_HUB;

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

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
