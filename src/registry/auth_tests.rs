//! Tests of `WWW-Authenticate` parsing and the credential files.
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
