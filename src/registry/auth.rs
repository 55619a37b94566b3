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
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn one(h: &str) -> Challenge {
        let v = parse_www_authenticate(h);
        assert_eq!(v.len(), 1, "{h}: {v:?}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn docker_hub_bearer() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(c.param("scope"), Some("repository:library/alpine:pull"));
    }

    #[test]
    fn lenient_forms() {
        // spaces, unquoted values, odd case, escapes
        let c = one(
            r#"  bearer   Realm = "http://127.0.0.1:1/t" , service=reg ,scope="a:b\"c:pull,push" "#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1/t"));
        assert_eq!(c.param("service"), Some("reg"));
        assert_eq!(c.param("scope"), Some("a:b\"c:pull,push"));
        let b = one(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (b.scheme.as_str(), b.param("realm")),
            ("basic", Some("Registry Realm"))
        );
        assert_eq!(one("Basic").params.len(), 0);
        // an unterminated quote takes the rest
        assert_eq!(one(r#"Bearer realm="abc"#).param("realm"), Some("abc"));
        // an empty value
        assert_eq!(one(r#"Bearer realm="", service="#).param("realm"), Some(""));
    }

    #[test]
    fn several_challenges() {
        let v = parse_www_authenticate(
            r#"Basic realm="x", Bearer realm="https://t/x",service="s", Negotiate abc==, NTLM"#,
        );
        let schemes: Vec<&str> = v.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate", "ntlm"], "{v:?}");
        assert_eq!(v[1].param("service"), Some("s"));
        assert_eq!(v[2].token68.as_deref(), Some("abc=="));
    }

    #[test]
    fn never_panics() {
        for h in [
            "",
            ",",
            "=",
            "\"",
            "a=",
            "=a",
            "Bearer ,",
            "Bearer =",
            "Bearer a",
            "Bearer a=\"",
            "Bearer a=\"\\",
            "Bearer a=b c=d",
            "é",
            "Bearer é=ü",
            ",,,Basic,,,",
            "Bearer realm=\"x\"junk",
            "Bearer\trealm=x",
            "a b c d",
            "\"\"\"",
            "Bearer a==b",
            "x=y, z",
        ] {
            let _ = parse_www_authenticate(h);
        }
        let alphabet: Vec<char> = "B a=\",\\r".chars().collect();
        fn rec(buf: &mut String, a: &[char], d: usize) {
            let _ = parse_www_authenticate(buf);
            if d == 0 {
                return;
            }
            for &c in a {
                buf.push(c);
                rec(buf, a, d - 1);
                buf.pop();
            }
        }
        rec(&mut String::new(), &alphabet, 6);
    }

    fn write(path: &Path, s: &str) {
        fs::write(path, s).unwrap();
    }

    #[test]
    fn lookup_order_and_docker_hub_keys() {
        let t = tempfile::tempdir().unwrap();
        let mine = t.path().join("box/auth.json");
        let containers = t.path().join("containers.json");
        let docker = t.path().join("docker.json");
        let b64 = |s: &str| STANDARD.encode(s);
        write(
            &docker,
            &format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"quay.io":{{"auth":"{}"}}}},"credsStore":"desktop"}}"#,
                b64("hubuser:hubpass"),
                b64("q:p:with:colons")
            ),
        );
        write(
            &containers,
            &format!(r#"{{"auths":{{"quay.io":{{"auth":"{}"}}}}}}"#, b64("cq:cp")),
        );
        let files = vec![mine.clone(), containers.clone(), docker.clone()];
        let hub = lookup(&files, "docker.io", Some("library/alpine"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hubuser", "hubpass")
        );
        assert_eq!(
            lookup(&files, "quay.io", None).unwrap().unwrap().username,
            "cq"
        );
        assert_eq!(
            lookup(std::slice::from_ref(&docker), "quay.io", None)
                .unwrap()
                .unwrap()
                .password,
            "p:with:colons"
        );
        assert!(lookup(&files, "ghcr.io", None).unwrap().is_none());

        // box's own file wins once written; it is private
        store(
            &mine,
            "docker.io",
            &Credentials {
                username: "me".into(),
                password: "pw".into(),
            },
        )
        .unwrap();
        assert_eq!(
            lookup(&files, "docker.io", None).unwrap().unwrap().username,
            "me"
        );
        assert_eq!(
            fs::metadata(&mine).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(mine.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        let text = fs::read_to_string(&mine).unwrap();
        assert!(text.contains("\"docker.io\""), "{text}");
        assert!(!text.contains("pw"), "stored base64, not plain: {text}");

        // remove → falls through to the next files again
        assert!(remove(&mine, "index.docker.io").unwrap());
        assert!(!remove(&mine, "docker.io").unwrap());
        assert_eq!(
            lookup(&files, "docker.io", None).unwrap().unwrap().username,
            "hubuser"
        );
    }

    #[test]
    fn store_keeps_other_entries_and_fields() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("auth.json");
        write(
            &f,
            r#"{"auths":{"a.io":{"auth":"eDp5"},"https://b.io":{"auth":"eDp5"}},"other":1}"#,
        );
        let c = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        store(&f, "https://b.io/", &c).unwrap();
        store(&f, "127.0.0.1:5000", &c).unwrap();
        let v: Value = serde_json::from_str(&fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(v["other"], 1);
        let keys: Vec<&String> = v["auths"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["127.0.0.1:5000", "a.io", "b.io"]);
        assert_eq!(
            lookup(std::slice::from_ref(&f), "b.io", None)
                .unwrap()
                .unwrap(),
            c
        );
        let mut removed = remove_all(&f).unwrap();
        removed.sort();
        assert_eq!(removed, ["127.0.0.1:5000", "a.io", "b.io"]);
        assert!(
            lookup(std::slice::from_ref(&f), "a.io", None)
                .unwrap()
                .is_none()
        );
        // no temp files left behind
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn namespace_keys_and_bad_files() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("auth.json");
        let b64 = |s: &str| STANDARD.encode(s);
        write(
            &f,
            &format!(
                r#"{{"auths":{{"r.io":{{"auth":"{}"}},"r.io/team":{{"auth":"{}"}},"r.io/team/app":{{"auth":"{}"}}}}}}"#,
                b64("host:1"),
                b64("team:2"),
                b64("app:3")
            ),
        );
        let who = |repo: &str| {
            lookup(std::slice::from_ref(&f), "r.io", Some(repo))
                .unwrap()
                .unwrap()
                .username
        };
        assert_eq!(who("team/app"), "app");
        assert_eq!(who("team/other"), "team");
        assert_eq!(who("teamx/app"), "host");
        assert_eq!(who("x"), "host");

        write(&f, "{not json");
        let e = lookup(std::slice::from_ref(&f), "r.io", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid credentials file") && e.contains("fix or remove"),
            "{e}"
        );
        write(&f, r#"{"auths":{"r.io":{"auth":"!!!"}}}"#);
        assert!(
            lookup(std::slice::from_ref(&f), "r.io", None)
                .unwrap_err()
                .to_string()
                .contains("base64")
        );
        write(&f, "");
        assert!(lookup(&[f], "r.io", None).unwrap().is_none());
    }

    #[test]
    fn registries_are_the_keys_written() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("auth.json");
        assert!(registries(&f).is_empty());
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        store(&f, "quay.io", &creds).unwrap();
        store(&f, "127.0.0.1:5000", &creds).unwrap();
        assert_eq!(registries(&f), ["127.0.0.1:5000", "quay.io"]);
        write(&f, r#"{"auths":{"a.io":"#);
        assert!(registries(&f).is_empty(), "half-written: none");
        write(&f, r#"{"auths":[]}"#);
        assert!(registries(&f).is_empty());
    }

    #[test]
    fn registry_args() {
        assert_eq!(
            normalise_registry_arg("https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert_eq!(normalise_registry_arg("docker.io").unwrap(), "docker.io");
        assert_eq!(
            normalise_registry_arg("127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            normalise_registry_arg("http://127.0.0.1:5000/").unwrap(),
            "127.0.0.1:5000"
        );
        assert!(normalise_registry_arg("quay.io/team/app").is_err());
        assert!(normalise_registry_arg("bad host").is_err());
    }
}
