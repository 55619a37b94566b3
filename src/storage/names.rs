//! Image names as the store keeps them: `registry/repository:tag` with docker's defaults
//! (`alpine` → `docker.io/library/alpine:latest`), or `registry/repository@sha256:...`.
use super::Error;

/// Normalize a user-given image name. Digests are kept (`repo@sha256:...`, with any tag
/// dropped); otherwise the tag defaults to `latest`.
pub fn normalize(name: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    let (rest, digest) = match name.split_once('@') {
        Some((r, d)) => {
            super::digest_hex(d).map_err(|_| bad("the digest must be sha256:<64 hex>"))?;
            (r, Some(d))
        }
        None => (name, None),
    };
    let (repo, tag) = split_tag(rest);
    if repo.is_empty() {
        return Err(bad("empty repository"));
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    let domain = if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0).to_string()
    } else {
        "docker.io".to_string()
    };
    let domain = if domain == "index.docker.io" || domain == "registry-1.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    if parts.iter().any(|p| {
        p.is_empty()
            || !p
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    }) {
        return Err(bad(
            "repository names use lowercase letters, digits, '.', '_', '-' and '/'",
        ));
    }
    if domain == "docker.io" && parts.len() == 1 {
        parts.insert(0, "library");
    }
    let path = parts.join("/");
    if let Some(t) = tag
        && (t.is_empty()
            || t.len() > 128
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(bad("tags use letters, digits, '.', '_' and '-'"));
    }
    Ok(match digest {
        Some(d) => format!("{domain}/{path}@{d}"),
        None => format!("{domain}/{path}:{}", tag.unwrap_or("latest")),
    })
}

/// Whether `name` names no registry (`alpine`, `team/app:1`): a short name.
fn is_short(name: &str) -> bool {
    let repo = split_tag(name.split_once('@').map_or(name, |(r, _)| r)).0;
    match repo.split_once('/') {
        Some((first, _)) => !(first.contains('.') || first.contains(':') || first == "localhost"),
        None => true,
    }
}

/// A name given to a local image (`box tag`, `box import`, `box commit`): as podman does, a
/// short name is `localhost/NAME:TAG`, not an invention of docker.io's.
pub fn local(name: &str) -> Result<String, Error> {
    if is_short(name) {
        normalize(&format!("localhost/{name}"))
    } else {
        normalize(name)
    }
}

/// The names a reference can mean in the store, best first: `alpine` is
/// `docker.io/library/alpine:latest`, else `localhost/alpine:latest` (what `local` gave it).
pub fn candidates(name: &str) -> Vec<String> {
    let mut c: Vec<String> = normalize(name).into_iter().collect();
    if is_short(name)
        && let Ok(l) = local(name)
    {
        c.push(l);
    }
    c
}

/// Whether stored name `stored` is what short name `short` means by podman's last resort for
/// a local image: its repository ends with `/REPO` and the tags agree (`alpine` finds
/// `127.0.0.1:5000/library/alpine:latest`, `library/alpine:3` finds `quay.io/library/alpine:3`).
pub fn short_suffix_match(short: &str, stored: &str) -> bool {
    if !is_short(short) || short.contains('@') {
        return false;
    }
    let (repo, tag) = split_tag(short);
    let (stored_repo, stored_tag) = repo_and_tag(stored);
    stored_repo.ends_with(&format!("/{repo}")) && stored_tag == tag.unwrap_or("latest")
}

/// `repo:tag` → (`repo`, Some(`tag`)); a colon before the last `/` is a port.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// `registry/repo:tag` → `registry/repo`.
pub fn strip_tag(s: &str) -> &str {
    split_tag(s).0
}

/// Split a stored name into (repository, tag) for display.
pub fn repo_and_tag(name: &str) -> (String, String) {
    if let Some((r, d)) = name.split_once('@') {
        return (r.to_string(), d.to_string());
    }
    let (r, t) = split_tag(name);
    (r.to_string(), t.unwrap_or("latest").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults() {
        assert_eq!(
            normalize("alpine").unwrap(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            normalize("alpine:3.20").unwrap(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(normalize("user/app").unwrap(), "docker.io/user/app:latest");
        assert_eq!(
            normalize("127.0.0.1:5000/test/layers").unwrap(),
            "127.0.0.1:5000/test/layers:latest"
        );
        assert_eq!(normalize("localhost/x:y").unwrap(), "localhost/x:y");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize(&format!("quay.io/a/b:t@{d}")).unwrap(),
            format!("quay.io/a/b@{d}")
        );
        assert!(normalize("Alpine").is_err());
        assert!(normalize("a@sha256:12").is_err());
        assert!(normalize("a:").is_err());
        assert_eq!(
            repo_and_tag("127.0.0.1:5000/a:v1"),
            ("127.0.0.1:5000/a".into(), "v1".into())
        );
    }
}
