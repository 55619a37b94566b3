//! Push against an in-process fake registry (the real one is in tests/integration/push.rs).
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::send::resolve_location;
use super::*;
use crate::registry::testserver::{Reply, Request, Server};
use crate::registry::{ClientConfig, digest::sha256_of};

/// A registry's push side in memory: uploads by id, blobs by digest, and knobs.
#[derive(Default)]
struct Fake {
    uploads: HashMap<String, Vec<u8>>,
    blobs: HashMap<String, Vec<u8>>,
    next: u32,
    /// PATCH requests to fail with a 500 (their data is dropped), by 1-based PATCH count.
    fail_patch: Vec<u32>,
    patches: u32,
    /// Accept `mount=` for the digests in `elsewhere` (another repository has them).
    mounts: bool,
    elsewhere: std::collections::HashSet<String>,
    /// Report this digest instead of the real one.
    lie_digest: Option<String>,
    manifests: HashMap<String, Vec<u8>>,
}

fn path_and_query(r: &Request) -> (String, HashMap<String, String>) {
    let (p, q) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let q = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (p.to_string(), q)
}

fn serve(fake: &Mutex<Fake>, r: &Request) -> Reply {
    let mut f = fake.lock().unwrap();
    let (path, q) = path_and_query(r);
    let Some(rest) = path.strip_prefix("/v2/test/app/") else {
        return Reply::status(404);
    };
    match (r.method.as_str(), rest) {
        ("HEAD", b) if b.starts_with("blobs/sha256:") => {
            let d = &b["blobs/".len()..];
            Reply::status(if f.blobs.contains_key(d) { 200 } else { 404 })
        }
        ("POST", "blobs/uploads/") => {
            if let Some(d) = q.get("mount")
                && f.mounts
                && f.elsewhere.contains(d)
            {
                return Reply::with(201, &[("Docker-Content-Digest", d)], "");
            }
            f.next += 1;
            let id = format!("u{}", f.next);
            f.uploads.insert(id.clone(), Vec::new());
            let loc = format!("/v2/test/app/blobs/uploads/{id}?_state=x");
            Reply::with(202, &[("Location", &loc), ("Range", "0-0")], "")
        }
        (m, u) if u.starts_with("blobs/uploads/u") => {
            let id = u["blobs/uploads/".len()..].to_string();
            let Some(have) = f.uploads.get(&id).map(Vec::len) else {
                return Reply::status(404);
            };
            let loc = format!("/v2/test/app/blobs/uploads/{id}?_state=y");
            let range = format!("0-{}", have.saturating_sub(1));
            match m {
                "GET" => Reply::with(204, &[("Location", &loc), ("Range", &range)], ""),
                "PATCH" => {
                    f.patches += 1;
                    if f.fail_patch.contains(&f.patches) {
                        return Reply::status(500);
                    }
                    let cr = r.header("content-range").unwrap_or("");
                    let start: usize = cr.split('-').next().unwrap().parse().unwrap();
                    if start != have {
                        return Reply::status(416);
                    }
                    f.uploads.get_mut(&id).unwrap().extend_from_slice(&r.body);
                    let n = f.uploads[&id].len();
                    let range = format!("0-{}", n - 1);
                    Reply::with(202, &[("Location", &loc), ("Range", &range)], "")
                }
                "PUT" => {
                    let mut data = f.uploads.remove(&id).unwrap();
                    data.extend_from_slice(&r.body);
                    let d = sha256_of(&data);
                    if Some(&d) != q.get("digest") {
                        return Reply::with(
                            400,
                            &[],
                            r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}"#,
                        );
                    }
                    let shown = f.lie_digest.clone().unwrap_or(d.clone());
                    f.blobs.insert(d, data);
                    Reply::with(201, &[("Docker-Content-Digest", &shown)], "")
                }
                _ => Reply::status(405),
            }
        }
        ("PUT", m) if m.starts_with("manifests/") => {
            if !r.body.starts_with(b"{") {
                return Reply::with(
                    400,
                    &[],
                    r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#,
                );
            }
            let d = sha256_of(&r.body);
            f.manifests
                .insert(m["manifests/".len()..].to_string(), r.body.clone());
            Reply::with(201, &[("Docker-Content-Digest", &d)], "")
        }
        _ => Reply::status(404),
    }
}

fn start(fake: Fake) -> (Server, Arc<Mutex<Fake>>) {
    let fake = Arc::new(Mutex::new(fake));
    let f = fake.clone();
    (Server::start(move |r| serve(&f, r)), fake)
}

fn client() -> Client {
    Client::new(ClientConfig::default()).with_timing(
        Duration::from_secs(5),
        Duration::from_secs(5),
        Duration::from_millis(1),
    )
}

fn blob(n: usize) -> (tempfile::NamedTempFile, String) {
    let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&data).unwrap();
    (f, sha256_of(&data))
}

fn pusher<'a>(c: &'a Client, s: &Server, chunk: u64) -> Pusher<'a> {
    let target = Reference::parse(&format!("{}/test/app:1", s.host)).unwrap();
    Pusher::new(c, &target)
        .unwrap()
        .with_chunk_size(chunk)
        .with_backoff(Duration::from_millis(1))
}

fn methods(s: &Server) -> Vec<String> {
    s.requests().iter().map(|r| r.method.clone()).collect()
}

#[test]
fn small_blob_is_one_put_and_then_exists() {
    let (s, fake) = start(Fake::default());
    let c = client();
    let p = pusher(&c, &s, 1000);
    let (f, d) = blob(300);
    let last = Mutex::new(0);
    let r = p
        .push_blob(&d, 300, f.as_file(), None, &|n| *last.lock().unwrap() = n)
        .unwrap();
    assert_eq!(r, BlobPushed::Uploaded { chunks: 1 });
    assert_eq!(*last.lock().unwrap(), 300);
    assert_eq!(methods(&s), ["HEAD", "POST", "PUT"]);
    assert_eq!(fake.lock().unwrap().blobs[&d].len(), 300);
    let r = p.push_blob(&d, 300, f.as_file(), None, &|_| {}).unwrap();
    assert_eq!(r, BlobPushed::Exists);
    assert_eq!(methods(&s).len(), 4);
}

#[test]
fn large_blob_goes_in_chunks_and_resumes_after_a_failed_one() {
    let (s, fake) = start(Fake {
        fail_patch: vec![2],
        ..Fake::default()
    });
    let c = client();
    let p = pusher(&c, &s, 100);
    let (f, d) = blob(350);
    let r = p.push_blob(&d, 350, f.as_file(), None, &|_| {}).unwrap();
    // 4 chunks, one of them sent twice
    assert_eq!(r, BlobPushed::Uploaded { chunks: 5 });
    let m = methods(&s);
    assert_eq!(
        m,
        [
            "HEAD", "POST", "PATCH", "PATCH", "GET", "PATCH", "PATCH", "PATCH", "PUT"
        ]
    );
    let reqs = s.requests();
    assert_eq!(reqs[5].header("content-range"), Some("100-199"));
    assert_eq!(reqs[8].body.len(), 0);
    let f = fake.lock().unwrap();
    assert_eq!(sha256_of(&f.blobs[&d]), d);
    assert_eq!(f.next, 1, "one upload session");
}

#[test]
fn mounts_when_the_registry_can_and_uploads_when_it_cannot() {
    let (f1, d1) = blob(50);
    let (f2, d2) = blob(60);
    let (s, fake) = start(Fake {
        mounts: true,
        elsewhere: [d1.clone()].into(),
        ..Fake::default()
    });
    let c = client();
    let p = pusher(&c, &s, 1000);
    let r = p
        .push_blob(&d1, 50, f1.as_file(), Some("other/app"), &|_| {})
        .unwrap();
    assert_eq!(r, BlobPushed::Mounted("other/app".into()));
    assert_eq!(methods(&s), ["HEAD", "POST"]);
    // 202 to a mount request: the session it opened is used for the upload
    let r = p
        .push_blob(&d2, 60, f2.as_file(), Some("other/app"), &|_| {})
        .unwrap();
    assert_eq!(r, BlobPushed::Uploaded { chunks: 1 });
    let reqs = s.requests();
    assert!(
        reqs[3]
            .path
            .ends_with(&format!("?mount={d2}&from=other/app")),
        "{}",
        reqs[3].path
    );
    assert_eq!(methods(&s)[2..], ["HEAD", "POST", "PUT"]);
    assert_eq!(fake.lock().unwrap().next, 1);
    // never a mount from the target repository itself
    let (f3, d3) = blob(70);
    p.push_blob(&d3, 70, f3.as_file(), Some("test/app"), &|_| {})
        .unwrap();
    assert!(s.requests()[6].path.ends_with("/blobs/uploads/"));
}

#[test]
fn a_wrong_digest_from_the_registry_is_an_error() {
    let (s, _fake) = start(Fake {
        lie_digest: Some(format!("sha256:{}", "0".repeat(64))),
        ..Fake::default()
    });
    let c = client();
    let (f, d) = blob(10);
    let e = pusher(&c, &s, 1000)
        .push_blob(&d, 10, f.as_file(), None, &|_| {})
        .unwrap_err();
    assert!(matches!(e, Error::DigestMismatch { .. }), "{e}");
}

#[test]
fn manifests_are_put_and_rejections_reported() {
    let (s, fake) = start(Fake::default());
    let c = client();
    let p = pusher(&c, &s, 1000);
    let body = br#"{"schemaVersion":2}"#;
    let d = p
        .put_manifest("application/vnd.oci.image.manifest.v1+json", body)
        .unwrap();
    assert_eq!(d, sha256_of(body));
    assert_eq!(fake.lock().unwrap().manifests["1"], body);
    let put = s.requests().pop().unwrap();
    assert_eq!(
        put.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let e = p
        .put_manifest("application/vnd.oci.image.manifest.v1+json", b"nope")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rejected the manifest") && e.contains("manifest_invalid"),
        "{e}"
    );
}

#[test]
fn refused_pushes_name_box_login() {
    let s = Server::start(|_| Reply::with(401, &[("WWW-Authenticate", "Basic realm=\"x\"")], ""));
    let c = client();
    let (f, d) = blob(10);
    let e = pusher(&c, &s, 1000)
        .push_blob(&d, 10, f.as_file(), None, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("box login {}", s.host)), "{e}");
    let s = Server::start(|_| Reply::status(403));
    let e = pusher(&c, &s, 1000)
        .put_manifest("application/vnd.oci.image.manifest.v1+json", b"{}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("denied: ") && e.contains("box login"), "{e}");
}

#[test]
fn locations_and_ranges() {
    assert_eq!(
        resolve_location(
            "http://h:5/v2/a/blobs/uploads/",
            "/v2/a/blobs/uploads/u?s=1"
        ),
        "http://h:5/v2/a/blobs/uploads/u?s=1"
    );
    assert_eq!(
        resolve_location("http://h:5/x", "https://o/y"),
        "https://o/y"
    );
    assert_eq!(
        with_query("http://h/u?s=1", "digest", "d"),
        "http://h/u?s=1&digest=d"
    );
    assert_eq!(
        with_query("http://h/u", "digest", "d"),
        "http://h/u?digest=d"
    );
    assert_eq!(parse_range_end("0-99"), Some(99));
    assert_eq!(parse_range_end("bytes=0-4"), Some(4));
    assert_eq!(parse_range_end("junk"), None);
}
