//! Image references with docker's normalisation rules.
//!
//! `alpine` → `docker.io/library/alpine:latest`, `user/app:tag` → `docker.io/user/app:tag`,
//! `host:port/ns/app@sha256:…`, `localhost/x`, tag and digest together. A pure function of its
//! input: it is a fuzz target.
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use super::Error;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's distribution API host.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const DEFAULT_TAG: &str = "latest";
/// docker's limit on `registry/repository`.
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A fully normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host with optional port, lowercase: "docker.io", "127.0.0.1:5000", "[::1]:5000".
    pub registry: String,
    /// Repository path: "library/alpine", "user/app".
    pub repository: String,
    /// "latest" when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// "sha256:<64 hex>" or "sha512:<128 hex>".
    pub digest: Option<String>,
}

impl Reference {
    /// Parse and normalise a reference as docker does.
    pub fn parse(input: &str) -> Result<Reference, Error> {
        let bad = |reason: String| Error::InvalidReference {
            input: input.chars().take(300).collect(),
            reason,
        };
        if input.is_empty() {
            return Err(bad(
                "it is empty: give an image name like alpine or alpine:3.20".into(),
            ));
        }
        if input.len() > 2 * MAX_NAME_LEN + MAX_TAG_LEN + 200 {
            return Err(bad("it is too long".into()));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(format!(
                "it contains {c:?}: remove spaces and control characters"
            )));
        }
        if input.contains("://") {
            return Err(bad(
                "remove the scheme: write host[:port]/repository[:tag]".into()
            ));
        }

        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => (rest, Some(parse_digest(d).map_err(bad)?)),
            None => (input, None),
        };
        let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[after_slash..].rfind(':') {
            Some(i) => (&rest[..after_slash + i], Some(&rest[after_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(bad)?;
        }
        if name.is_empty() {
            return Err(bad("the repository name is empty".into()));
        }

        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_host(first) => (first, path),
            _ => (DOCKER_HUB, name),
        };
        let registry = normalise_registry(registry).map_err(bad)?;
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        check_repository(&repository).map_err(bad)?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad(format!(
                "the name is longer than {MAX_NAME_LEN} characters"
            )));
        }

        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form docker prints: `alpine:latest`, `user/app:1`, `127.0.0.1:5000/x:y`.
    pub fn familiar(&self) -> String {
        let first = self.repository.split('/').next().unwrap_or_default();
        let mut s = if self.registry == DOCKER_HUB && !looks_like_host(first) {
            match self.repository.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        push_suffix(&mut s, self);
        s
    }

    /// The host to talk the distribution API to: docker.io → registry-1.docker.io.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What goes after `/manifests/`: the digest when there is one, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The same repository, pinned to `digest` (the tag is kept for display).
    pub fn with_digest(&self, digest: &str) -> Reference {
        Reference {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }
}

/// The distribution API host of a registry name: docker.io → registry-1.docker.io.
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

fn push_suffix(s: &mut String, r: &Reference) {
    if let Some(t) = &r.tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = &r.digest {
        s.push('@');
        s.push_str(d);
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_suffix(&mut s, self);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// docker's rule: the first component is a host when it has a dot or a colon, is
/// `localhost`, or has an uppercase letter (repositories never do).
fn looks_like_host(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.starts_with('[')
        || first.chars().any(|c| c.is_ascii_uppercase())
}

/// Validate `host[:port]` (or `[v6]:port`) and map docker.io's aliases to `docker.io`.
pub(crate) fn normalise_registry(registry: &str) -> Result<String, String> {
    let lower = registry.to_ascii_lowercase();
    let (host, port) = if let Some(v6) = lower.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(format!("registry {registry:?} has an unclosed '['"));
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("registry {registry:?} is not a valid IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("registry {registry:?} has junk after ']'")),
            },
        };
        (None, port)
    } else {
        match lower.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(lower.as_str()), None),
        }
    };
    if let Some(host) = host {
        let ok = !host.is_empty()
            && host.split('.').all(|c| {
                !c.is_empty()
                    && c.len() <= 63
                    && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !c.starts_with('-')
                    && !c.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "registry host {registry:?} is not a valid host name or address"
            ));
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !valid {
            return Err(format!(
                "registry {registry:?} has an invalid port: use 1-65535"
            ));
        }
    }
    // Host names are case-insensitive, but docker keeps the case (an uppercase first
    // component is what makes it a host), so only docker.io's aliases are rewritten.
    Ok(match lower.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => registry.to_string(),
    })
}

/// path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
fn check_repository(repo: &str) -> Result<(), String> {
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!(
            "repository names must be lowercase: use {:?}",
            repo.to_ascii_lowercase()
        ));
    }
    for comp in repo.split('/') {
        if comp.is_empty() {
            return Err(
                "the repository has an empty path component (\"//\" or a trailing \"/\")".into(),
            );
        }
        let b = comp.as_bytes();
        let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let mut i = 0;
        let mut ok = alnum(b[0]);
        while ok && i < b.len() {
            // a run of alphanumerics
            while i < b.len() && alnum(b[i]) {
                i += 1;
            }
            if i == b.len() {
                break;
            }
            // a separator, then at least one alphanumeric
            let sep_start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &comp[sep_start..i];
            let sep_ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|c| c == b'-');
            ok = sep_ok && i < b.len();
        }
        if !ok {
            let bad = comp
                .chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c)));
            return Err(match bad {
                Some(c) => format!("the repository contains {c:?}: use a-z, 0-9, '.', '_' and '-'"),
                None => format!(
                    "repository component {comp:?} must start and end with a letter or digit, \
                     with single '.', '_', '__' or '-' runs between them"
                ),
            });
        }
    }
    Ok(())
}

/// tag := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("the tag after ':' is empty".into());
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("the tag is longer than {MAX_TAG_LEN} characters"));
    }
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if !word(b[0]) || !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        return Err(format!(
            "tag {tag:?} is invalid: use letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

/// `algorithm:hex`, sha256 (64 lowercase hex) or sha512 (128).
pub(crate) fn parse_digest(d: &str) -> Result<String, String> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err(format!(
            "digest {d:?} must look like sha256:<64 hex digits>"
        ));
    };
    let len = match algo {
        "sha256" => 64,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "digest algorithm {algo:?} is not supported: use sha256"
            ));
        }
    };
    if hex.len() != len || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "digest {d:?} must have {len} hex digits after {algo}:"
        ));
    }
    if hex.bytes().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("digest {d:?} must be lowercase hex"));
    }
    Ok(d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn err(s: &str) -> String {
        match Reference::parse(s) {
            Ok(r) => panic!("{s:?} parsed as {r}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn docker_hub_short_names() {
        let r = p("alpine");
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/alpine");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert_eq!(r.digest, None);
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.familiar(), "alpine:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(r.manifest_ref(), "latest");

        assert_eq!(
            p("alpine:3.20").to_string(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(
            p("library/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            p("docker.io/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            p("index.docker.io/library/alpine:edge").to_string(),
            "docker.io/library/alpine:edge"
        );
        assert_eq!(
            p("registry-1.docker.io/alpine").to_string(),
            "docker.io/library/alpine:latest"
        );
        let u = p("user/app:v1.2-rc_3");
        assert_eq!(u.to_string(), "docker.io/user/app:v1.2-rc_3");
        assert_eq!(u.familiar(), "user/app:v1.2-rc_3");
        assert_eq!(p("user/sub/app").familiar(), "user/sub/app:latest");
        assert_eq!(p("docker.io/library/a/b").familiar(), "library/a/b:latest");
    }

    #[test]
    fn hosts_ports_and_localhost() {
        let r = p("127.0.0.1:5000/library/nope:latest");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "library/nope");
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.familiar(), "127.0.0.1:5000/library/nope:latest");

        let l = p("localhost/x");
        assert_eq!(
            (l.registry.as_str(), l.repository.as_str()),
            ("localhost", "x")
        );
        assert_eq!(l.to_string(), "localhost/x:latest");
        let l = p("localhost:5000/x:1");
        assert_eq!(l.registry, "localhost:5000");

        let q = p("quay.io/coreos/etcd");
        assert_eq!(
            (q.registry.as_str(), q.repository.as_str()),
            ("quay.io", "coreos/etcd")
        );
        let g = p("ghcr.io/o/r/deep/path:t");
        assert_eq!(g.repository, "o/r/deep/path");

        let v6 = p("[::1]:5000/app:t");
        assert_eq!(v6.registry, "[::1]:5000");
        assert_eq!(v6.repository, "app");
        assert_eq!(p("[::1]/app").registry, "[::1]");
        // an uppercase first component is a host (case kept, as docker does), a dotted one too
        assert_eq!(p("MyHost/app").registry, "MyHost");
        assert_eq!(p("DOCKER.IO/alpine").registry, "docker.io");
        // a docker.io repository whose first component looks like a host keeps the prefix
        assert_eq!(
            p("docker.io/localhost/x").familiar(),
            "docker.io/localhost/x:latest"
        );
        assert_eq!(
            p("my-registry.example.com:443/a").registry,
            "my-registry.example.com:443"
        );
    }

    #[test]
    fn digests_and_tags() {
        let r = p(&format!("127.0.0.1:5000/ns/app@{D}"));
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(D));
        assert_eq!(r.manifest_ref(), D);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/ns/app@{D}"));

        let both = p(&format!("alpine:3.20@{D}"));
        assert_eq!(both.tag.as_deref(), Some("3.20"));
        assert_eq!(both.digest.as_deref(), Some(D));
        assert_eq!(both.manifest_ref(), D);
        assert_eq!(both.familiar(), format!("alpine:3.20@{D}"));
        assert_eq!(
            both.to_string(),
            format!("docker.io/library/alpine:3.20@{D}")
        );

        let s512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(p(&format!("x@{s512}")).digest.unwrap(), s512);

        assert_eq!(p("localhost:5000/app").tag.as_deref(), Some("latest"));
        assert_eq!(p("a:_x").tag.as_deref(), Some("_x"));
        assert_eq!(p(&format!("a:{}", "t".repeat(128))).tag.unwrap().len(), 128);
        assert_eq!(p("ns/a_b.c__d-e---f").repository, "ns/a_b.c__d-e---f");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "alpine",
            "user/app:tag",
            "localhost/x",
            "127.0.0.1:5000/ns/app:1",
            "[::1]:5000/a/b",
            &format!("quay.io/a/b:c@{D}"),
            &format!("alpine@{D}"),
            "MyHost/app",
            "docker.io/localhost/x",
        ] {
            let r = p(s);
            assert_eq!(p(&r.to_string()), r, "{s}");
            assert_eq!(p(&r.familiar()), r, "{s}");
        }
    }

    #[test]
    fn invalid_references_have_clear_errors() {
        assert!(err("").contains("empty"));
        assert!(err("Alpine").contains("lowercase"), "{}", err("Alpine"));
        assert!(err("docker.io/Library/alpine").contains("lowercase"));
        assert!(err("alpine:").contains("tag"));
        assert!(err("alpine:.x").contains("tag"));
        assert!(err("alpine:a/b").contains("lowercase") || !err("alpine:a b").is_empty());
        assert!(err(&format!("a:{}", "t".repeat(129))).contains("longer"));
        assert!(err("alpine@sha256:abc").contains("64 hex"));
        assert!(
            err("alpine@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789")
                .contains("lowercase")
        );
        assert!(err("alpine@md5:0123456789abcdef0123456789abcdef").contains("not supported"));
        assert!(err("alpine@").contains("digest"));
        assert!(err("a b").contains("' '"));
        assert!(err("https://quay.io/a").contains("scheme"));
        assert!(err("host:99999/a").contains("port"));
        assert!(err("host:/a").contains("port"));
        assert!(err("host:port/a").contains("port"));
        assert!(err("[::1/a").contains("'['"));
        assert!(err("[zz]:5000/a").contains("IPv6"));
        assert!(err("-bad.host/a").contains("host"));
        assert!(err("a..b/c").contains("host"));
        assert!(err("a//b").contains("empty path"));
        assert!(err("a/").contains("empty path"));
        assert!(err("/a").contains("empty"));
        assert!(err("-a").contains("start and end"));
        assert!(err("a-").contains("start and end"));
        assert!(err("a...b").contains("start and end"));
        assert!(err("a___b").contains("start and end"));
        assert!(err("a._b").contains("start and end"));
        assert!(err("a$b").contains("'$'"));
        assert!(err(":tag").contains("empty"));
        assert!(err(&format!("a/{}", "b".repeat(260))).contains("longer"));
        assert!(err("a\u{0}b").contains("control") || err("a\u{0}b").contains("\\0"));
        // every message is one line
        for s in ["", "Alpine", "a b", "a\nb", "x@y", "h:0/a", "é"] {
            assert!(!err(s).contains('\n'), "{s:?}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let samples = [
            ":",
            "@",
            "/",
            "::",
            "@@",
            ":@",
            "a:@",
            "a@:",
            "[",
            "]",
            "[]",
            "[]/a",
            "[::1]x/a",
            "a:b:c",
            "a/b:c:d",
            "a@sha256:",
            "é/a",
            "a/é",
            "ø:1",
            "localhost:",
            "localhost:/x",
            "a:1@sha256",
            "\u{feff}a",
            "a/b@sha256:0123",
            "::1/a",
            "1.2.3.4:5/_",
        ];
        for s in samples {
            let _ = Reference::parse(s);
        }
        // exhaustive short strings over an interesting alphabet
        let alphabet: Vec<char> = "a:/@.[]-_A1".chars().collect();
        let mut buf = String::new();
        fn rec(buf: &mut String, alphabet: &[char], depth: usize) {
            if let Ok(r) = Reference::parse(buf) {
                // whatever parses re-parses to itself
                assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{buf:?}");
            }
            if depth == 0 {
                return;
            }
            for &c in alphabet {
                buf.push(c);
                rec(buf, alphabet, depth - 1);
                buf.pop();
            }
        }
        rec(&mut buf, &alphabet, 5);
    }
}
