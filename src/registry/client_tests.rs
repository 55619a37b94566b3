//! Client tests against an in-process fake registry on 127.0.0.1.
use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use oci_spec::image::{Descriptor, MediaType};

use serde_json::Value;

use super::*;
use crate::registry::Platform;
use crate::registry::auth::{self, percent_encode};
use crate::registry::blob::content_range_start;
use crate::registry::digest::sha256_of;
use crate::registry::resolve::*;
use crate::registry::testserver::{Reply, Request, Server};
use crate::registry::transport::{
    STALL_MIN_PROGRESS, StallWatch, is_loopback, join_url, origin_of, split_url,
};

#[derive(Default)]
enum AuthMode {
    #[default]
    None,
    Basic,
    /// Bearer tokens from /token; `private` repos need the user's credentials.
    Bearer {
        private: bool,
    },
}

#[derive(Default)]
struct State {
    host: OnceLock<String>,
    /// tag or digest → (content type, bytes)
    manifests: Mutex<HashMap<String, (String, Vec<u8>)>>,
    blobs: Mutex<HashMap<String, Vec<u8>>>,
    auth: AuthMode,
    user: (String, String),
    tokens_issued: AtomicU32,
    valid_token: Mutex<Option<String>>,
    ranges: bool,
    /// Answer this many blob requests with 503 first.
    blob_503s: AtomicU32,
    /// Cut the next blob answer after this many bytes.
    truncate_next_at: Mutex<Option<usize>>,
    /// Serve blobs with this byte flipped.
    corrupt: AtomicBool,
    /// Serve blobs with extra bytes appended, without a Content-Length.
    oversize_unsized: AtomicBool,
    /// Redirect blob requests to this URL prefix (the digest appended).
    redirect_blobs: Mutex<Option<String>>,
    hang_blobs: AtomicBool,
}

fn json_error(status: u16, code: &str, msg: &str) -> Reply {
    Reply::with(
        status,
        &[("Content-Type", "application/json")],
        format!(r#"{{"errors":[{{"code":"{code}","message":"{msg}"}}]}}"#),
    )
}

impl State {
    fn host(&self) -> &str {
        self.host.get().unwrap()
    }

    fn challenge(&self, scope: Option<&str>) -> Reply {
        let value = match self.auth {
            AuthMode::Basic => r#"Basic realm="fake""#.to_string(),
            _ => {
                let mut v = format!(
                    r#"Bearer realm="http://{}/token",service="fake-registry""#,
                    self.host()
                );
                if let Some(s) = scope {
                    v.push_str(&format!(r#",scope="{s}""#));
                }
                v
            }
        };
        Reply::with(
            401,
            &[
                ("WWW-Authenticate", &value),
                ("Content-Type", "application/json"),
            ],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
    }

    fn basic(&self) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.user.0, self.user.1))
        )
    }

    fn authorized(&self, req: &Request) -> bool {
        let got = req.header("authorization");
        match self.auth {
            AuthMode::None => true,
            AuthMode::Basic => got == Some(self.basic().as_str()),
            AuthMode::Bearer { .. } => {
                let valid = self.valid_token.lock().unwrap();
                valid
                    .as_deref()
                    .is_some_and(|t| got == Some(&format!("Bearer {t}")))
            }
        }
    }

    fn token(&self, req: &Request) -> Reply {
        let AuthMode::Bearer { private } = self.auth else {
            return Reply::status(404);
        };
        let got = req.header("authorization");
        let has_creds = got == Some(self.basic().as_str());
        if got.is_some() && !has_creds {
            return json_error(401, "UNAUTHORIZED", "bad credentials");
        }
        if private && !has_creds && req.path.contains("scope=") {
            // anonymous tokens carry no access to private repositories
            return Reply::ok(r#"{"token":"useless"}"#);
        }
        let n = self.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        let t = format!("tok{n}");
        *self.valid_token.lock().unwrap() = Some(t.clone());
        Reply::ok(format!(r#"{{"token":"{t}","expires_in":300}}"#))
    }

    fn handle(&self, req: &Request) -> Reply {
        let path = req.path.clone();
        if path.starts_with("/token") {
            return self.token(req);
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Reply::status(404);
        };
        if rest.is_empty() {
            return if self.authorized(req) {
                Reply::ok("{}")
            } else {
                self.challenge(None)
            };
        }
        let (repo, kind, reference) = if let Some((repo, r)) = rest.split_once("/manifests/") {
            (repo, "manifests", r)
        } else if let Some((repo, r)) = rest.split_once("/blobs/") {
            (repo, "blobs", r)
        } else {
            return Reply::status(404);
        };
        if !self.authorized(req) {
            return self.challenge(Some(&format!("repository:{repo}:pull")));
        }
        if kind == "manifests" {
            return match self.manifests.lock().unwrap().get(reference) {
                Some((ct, bytes)) => Reply::with(
                    200,
                    &[
                        ("Content-Type", ct),
                        ("Docker-Content-Digest", &sha256_of(bytes)),
                    ],
                    bytes.clone(),
                ),
                None => json_error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
            };
        }
        if self.blob_503s.load(Ordering::SeqCst) > 0 {
            self.blob_503s.fetch_sub(1, Ordering::SeqCst);
            return json_error(503, "UNAVAILABLE", "try later");
        }
        if self.hang_blobs.load(Ordering::SeqCst) {
            return Reply::Hang(Duration::from_secs(5));
        }
        if let Some(prefix) = self.redirect_blobs.lock().unwrap().clone() {
            return Reply::with(307, &[("Location", &format!("{prefix}{reference}"))], "");
        }
        self.serve_blob(req, reference)
    }

    fn serve_blob(&self, req: &Request, digest: &str) -> Reply {
        let Some(mut data) = self.blobs.lock().unwrap().get(digest).cloned() else {
            return json_error(404, "BLOB_UNKNOWN", "blob unknown");
        };
        if self.corrupt.load(Ordering::SeqCst) {
            let last = data.len() - 1;
            data[last] ^= 0xff;
        }
        if self.oversize_unsized.load(Ordering::SeqCst) {
            data.extend_from_slice(b"and some more");
            return Reply::Unsized {
                status: 200,
                body: data,
            };
        }
        let mut status = 200;
        let mut headers = vec![];
        let total = data.len();
        if self.ranges
            && let Some(start) = req
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok())
        {
            if start >= total {
                return Reply::status(416);
            }
            status = 206;
            headers.push((
                "Content-Range".to_string(),
                format!("bytes {start}-{}/{total}", total - 1),
            ));
            data = data[start..].to_vec();
        }
        if let Some(at) = self.truncate_next_at.lock().unwrap().take() {
            let declared = data.len() as u64;
            data.truncate(at);
            return Reply::Truncated {
                status,
                headers,
                body: data,
                declared,
            };
        }
        Reply::Full {
            status,
            headers,
            body: data,
        }
    }
}

struct Fake {
    state: Arc<State>,
    server: Server,
}

impl Fake {
    fn start(state: State) -> Fake {
        let state = Arc::new(state);
        let s2 = state.clone();
        let server = Server::start(move |req| s2.handle(req));
        state.host.set(server.host.clone()).unwrap();
        Fake { state, server }
    }

    fn reference(&self, repo_and_tag: &str) -> Reference {
        Reference::parse(&format!("{}/{repo_and_tag}", self.server.host)).unwrap()
    }

    fn add_blob(&self, data: &[u8]) -> String {
        let d = sha256_of(data);
        self.state
            .blobs
            .lock()
            .unwrap()
            .insert(d.clone(), data.to_vec());
        d
    }

    fn add_manifest(&self, tag: &str, media_type: &str, bytes: &[u8]) -> String {
        let d = sha256_of(bytes);
        let mut m = self.state.manifests.lock().unwrap();
        m.insert(d.clone(), (media_type.to_string(), bytes.to_vec()));
        if !tag.is_empty() {
            m.insert(tag.to_string(), (media_type.to_string(), bytes.to_vec()));
        }
        d
    }

    /// An image with the given layers: (manifest bytes, its digest).
    fn add_image(
        &self,
        tag: &str,
        arch: &str,
        layers: &[&[u8]],
        docker: bool,
    ) -> (Vec<u8>, String) {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("\"{}\"", sha256_of(&[*l, &b"-diff"[..]].concat())))
            .collect();
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
            diff_ids.join(",")
        );
        let config_digest = self.add_blob(config.as_bytes());
        let (mt, ct, lt) = if docker {
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                OCI_MANIFEST,
                OCI_CONFIG,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        };
        let layer_descs: Vec<String> = layers
            .iter()
            .map(|l| {
                let d = self.add_blob(l);
                format!(
                    r#"{{"mediaType":"{lt}","digest":"{d}","size":{}}}"#,
                    l.len()
                )
            })
            .collect();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{mt}","config":{{"mediaType":"{ct}","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
            config.len(),
            layer_descs.join(",")
        );
        let d = self.add_manifest(tag, mt, manifest.as_bytes());
        (manifest.into_bytes(), d)
    }
}

fn client_with(
    auth_files: Vec<PathBuf>,
    conf: Option<PathBuf>,
    tls_verify: Option<bool>,
) -> Client {
    Client::new(ClientConfig {
        auth_files,
        registries_conf: conf,
        tls_verify,
    })
    .with_timing(
        Duration::from_secs(2),
        Duration::from_secs(5),
        Duration::from_millis(5),
    )
}

fn client() -> Client {
    client_with(vec![], None, None)
}

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

fn layer_desc(data: &[u8]) -> Descriptor {
    Descriptor::new(
        MediaType::ImageLayerGzip,
        data.len() as u64,
        oci_spec::image::Digest::try_from(sha256_of(data)).unwrap(),
    )
}

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// Download into a fresh temp dir: (result, bytes in the file if any, progress sum).
fn download(
    c: &Client,
    r: &Reference,
    data: &[u8],
    prefix: Option<&[u8]>,
) -> (Result<(), Error>, Option<Vec<u8>>, u64) {
    let t = tempfile::tempdir().unwrap();
    let tmp = t.path().join("blob.tmp");
    if let Some(p) = prefix {
        fs::write(&tmp, p).unwrap();
    }
    let sum = std::cell::Cell::new(0u64);
    let res = c.download_blob(r, &layer_desc(data), &tmp, &|n| sum.set(sum.get() + n));
    (res, fs::read(&tmp).ok(), sum.get())
}

// ------------------------------------------------------------------- resolve

#[test]
fn resolves_an_oci_image_by_tag() {
    let f = Fake::start(State::default());
    let (mbytes, mdigest) = f.add_image("1.0", "amd64", &[b"layer one", b"layer two"], false);
    let r = f.reference("ns/app:1.0");
    let res = client().resolve(&r, &amd64()).unwrap();
    assert_eq!(res.manifest_bytes, mbytes);
    assert_eq!(res.manifest_digest, mdigest);
    assert_eq!(res.repo_digest(), mdigest);
    assert_eq!(res.index_digest, None);
    assert_eq!(res.manifest_media_type, OCI_MANIFEST);
    assert_eq!(res.manifest.layers().len(), 2);
    assert_eq!(res.config.architecture().to_string(), "amd64");
    assert_eq!(
        sha256_of(&res.config_bytes),
        res.manifest.config().digest().to_string()
    );

    let reqs = f.server.requests();
    let m = reqs
        .iter()
        .find(|q| q.path == "/v2/ns/app/manifests/1.0")
        .unwrap();
    let accept = m.header("accept").unwrap();
    for t in [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST] {
        assert!(accept.contains(t), "{accept}");
    }
    assert_eq!(m.header("user-agent"), Some(crate::registry::USER_AGENT));
    assert!(crate::registry::USER_AGENT.starts_with("box/"));
}

#[test]
fn docker_v2s2_media_types_are_mapped() {
    let f = Fake::start(State::default());
    f.add_image("latest", "amd64", &[b"l"], true);
    let res = client().resolve(&f.reference("app"), &amd64()).unwrap();
    assert_eq!(res.manifest_media_type, DOCKER_MANIFEST);
    assert_eq!(res.manifest.media_type(), &Some(MediaType::ImageManifest));
    assert_eq!(res.manifest.config().media_type(), &MediaType::ImageConfig);
    assert_eq!(
        res.manifest.layers()[0].media_type(),
        &MediaType::ImageLayerGzip
    );
    // the bytes stay as sent, so the digest is the registry's
    assert!(String::from_utf8_lossy(&res.manifest_bytes).contains("rootfs.diff.tar.gzip"));
}

fn index_json(entries: &[(&str, &str, Option<&str>, &[u8])]) -> Vec<u8> {
    let items: Vec<String> = entries
        .iter()
        .map(|(os, arch, variant, m)| {
            let v = variant.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{},"platform":{{"os":"{os}","architecture":"{arch}"{v}}}}}"#,
                sha256_of(m),
                m.len()
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

#[test]
fn an_index_resolves_to_the_platform_entry() {
    let f = Fake::start(State::default());
    let (arm, arm_d) = f.add_image("", "arm64", &[b"arm layer"], false);
    let (amd, amd_d) = f.add_image("", "amd64", &[b"amd layer"], false);
    let index = index_json(&[
        ("linux", "arm64", Some("v8"), &arm),
        ("linux", "amd64", None, &amd),
    ]);
    let idx_d = f.add_manifest("multi", OCI_INDEX, &index);
    let c = client();
    let r = f.reference("app:multi");

    let res = c.resolve(&r, &amd64()).unwrap();
    assert_eq!(res.manifest_digest, amd_d);
    assert_eq!(res.index_digest.as_deref(), Some(idx_d.as_str()));
    assert_eq!(res.repo_digest(), idx_d);
    assert_eq!(res.config.architecture().to_string(), "amd64");

    let res = c
        .resolve(&r, &Platform::parse("linux/arm64").unwrap())
        .unwrap();
    assert_eq!(res.manifest_digest, arm_d);

    // pulled by the index digest: verified, same result
    let by_digest = f.reference(&format!("app@{idx_d}"));
    assert_eq!(
        c.resolve(&by_digest, &amd64()).unwrap().manifest_digest,
        amd_d
    );

    let e = c
        .resolve(&r, &Platform::parse("linux/riscv64").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has no image for linux/riscv64")
            && e.contains("linux/arm64/v8, linux/amd64")
            && e.contains("--platform"),
        "{e}"
    );
}

#[test]
fn an_index_entry_that_lies_is_refused() {
    let f = Fake::start(State::default());
    let (amd, _) = f.add_image("", "amd64", &[b"x"], false);
    // the entry claims another size
    let mut index = String::from_utf8(index_json(&[("linux", "amd64", None, &amd)])).unwrap();
    index = index.replace(
        &format!("\"size\":{}", amd.len()),
        &format!("\"size\":{}", amd.len() + 1),
    );
    f.add_manifest("bad", OCI_INDEX, index.as_bytes());
    let e = client()
        .resolve(&f.reference("app:bad"), &amd64())
        .unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
}

#[test]
fn pulling_by_digest_verifies_the_manifest() {
    let f = Fake::start(State::default());
    let (_, d) = f.add_image("t", "amd64", &[b"a"], false);
    let c = client();
    assert_eq!(
        c.resolve(&f.reference(&format!("app@{d}")), &amd64())
            .unwrap()
            .manifest_digest,
        d
    );
    // the registry answers the digest with other content
    let other = f
        .state
        .manifests
        .lock()
        .unwrap()
        .get("t")
        .unwrap()
        .1
        .clone();
    let mut tampered = other.clone();
    tampered.extend_from_slice(b" ");
    f.state
        .manifests
        .lock()
        .unwrap()
        .insert(d.clone(), (OCI_MANIFEST.into(), tampered));
    let e = c
        .resolve(&f.reference(&format!("app@{d}")), &amd64())
        .unwrap_err();
    assert!(
        e.to_string().starts_with("digest mismatch for manifest of"),
        "{e}"
    );
}

#[test]
fn manifest_errors_are_clear() {
    let f = Fake::start(State::default());
    let c = client();
    let e = c
        .resolve(&f.reference("library/nope:latest"), &amd64())
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "manifest unknown: {}/library/nope:latest does not exist in the registry",
            f.server.host
        )
    );

    f.add_manifest("html", "text/html", b"<html>hello</html>");
    let e = c
        .resolve(&f.reference("app:html"), &amd64())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not JSON"), "{e}");

    let mut huge = b"{\"pad\":\"".to_vec();
    huge.resize(5 << 20, b'a');
    huge.extend_from_slice(b"\"}");
    f.add_manifest("huge", OCI_MANIFEST, &huge);
    let e = c.resolve(&f.reference("app:huge"), &amd64()).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");

    f.add_manifest(
        "v1",
        DOCKER_SCHEMA1_SIGNED,
        br#"{"schemaVersion":1,"fsLayers":[]}"#,
    );
    let e = c
        .resolve(&f.reference("app:v1"), &amd64())
        .unwrap_err()
        .to_string();
    assert!(e.contains("schema 1"), "{e}");

    let art = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
        sha256_of(b"{}")
    );
    f.add_manifest("helm", OCI_MANIFEST, art.as_bytes());
    let e = c
        .resolve(&f.reference("app:helm"), &amd64())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a container image"), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn a_config_that_does_not_match_is_refused() {
    let f = Fake::start(State::default());
    f.add_image("t", "amd64", &[b"a"], false);
    f.state.corrupt.store(true, Ordering::SeqCst);
    let e = client()
        .resolve(&f.reference("app:t"), &amd64())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("digest mismatch for config of"), "{e}");
    f.state.corrupt.store(false, Ordering::SeqCst);
    f.state.oversize_unsized.store(true, Ordering::SeqCst);
    let e = client()
        .resolve(&f.reference("app:t"), &amd64())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("size mismatch for config of"), "{e}");
}

// ------------------------------------------------------------------- blobs

#[test]
fn downloads_a_blob_with_progress() {
    let f = Fake::start(State::default());
    let data = big(1 << 20);
    f.add_blob(&data);
    let (res, file, sum) = download(&client(), &f.reference("app"), &data, None);
    res.unwrap();
    assert_eq!(file.unwrap(), data);
    assert_eq!(sum, data.len() as u64);
}

#[test]
fn a_corrupt_blob_is_an_error_and_deleted() {
    let f = Fake::start(State::default());
    let data = big(300_000);
    f.add_blob(&data);
    f.state.corrupt.store(true, Ordering::SeqCst);
    let (res, file, _) = download(&client(), &f.reference("app"), &data, None);
    let e = res.unwrap_err().to_string();
    assert!(e.starts_with("digest mismatch for blob sha256:"), "{e}");
    assert!(e.contains("nothing was kept"), "{e}");
    assert!(file.is_none(), "tmp file deleted");
}

#[test]
fn an_oversized_blob_stops_at_the_declared_size() {
    let f = Fake::start(State::default());
    let data = big(200_000);
    f.add_blob(&data);
    // honest Content-Length larger than the descriptor
    let mut longer = data.clone();
    longer.push(0);
    f.state
        .blobs
        .lock()
        .unwrap()
        .insert(sha256_of(&data), longer);
    let (res, file, sum) = download(&client(), &f.reference("app"), &data, None);
    assert!(matches!(res, Err(Error::SizeMismatch { .. })), "{res:?}");
    assert!(file.is_none());
    assert_eq!(sum, 0);
    // no Content-Length: stopped while streaming, never more than size written
    f.state
        .blobs
        .lock()
        .unwrap()
        .insert(sha256_of(&data), data.clone());
    f.state.oversize_unsized.store(true, Ordering::SeqCst);
    let (res, file, sum) = download(&client(), &f.reference("app"), &data, None);
    let e = res.unwrap_err();
    assert!(e.to_string().starts_with("size mismatch for blob"), "{e}");
    assert!(file.is_none());
    assert!(sum <= data.len() as u64);
}

#[test]
fn a_short_content_length_is_a_size_mismatch_not_retried() {
    let f = Fake::start(State::default());
    let data = big(100_000);
    f.add_blob(&data);
    f.state
        .blobs
        .lock()
        .unwrap()
        .insert(sha256_of(&data), data[..99_990].to_vec());
    let (res, file, _) = download(&client(), &f.reference("app"), &data, None);
    assert!(matches!(res, Err(Error::SizeMismatch { .. })), "{res:?}");
    assert!(file.is_none());
    let blob_reqs = f
        .server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .count();
    assert_eq!(blob_reqs, 1);
}

#[test]
fn a_missing_blob_is_blob_unknown() {
    let f = Fake::start(State::default());
    let (res, _, _) = download(&client(), &f.reference("app"), b"never stored", None);
    let e = res.unwrap_err().to_string();
    assert!(
        e.starts_with("blob unknown: sha256:") && e.contains(" of app "),
        "{e}"
    );
}

#[test]
fn a_truncated_body_is_resumed_with_range() {
    let f = Fake::start(State {
        ranges: true,
        ..State::default()
    });
    let data = big(500_000);
    f.add_blob(&data);
    *f.state.truncate_next_at.lock().unwrap() = Some(123_456);
    let (res, file, sum) = download(&client(), &f.reference("app"), &data, None);
    res.unwrap();
    assert_eq!(file.unwrap(), data);
    assert_eq!(sum, data.len() as u64);
    let ranges: Vec<Option<String>> = f
        .server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .map(|r| r.header("range").map(String::from))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=123456-".to_string())]);
}

#[test]
fn a_truncated_body_restarts_when_ranges_are_not_supported() {
    let f = Fake::start(State::default());
    let data = big(400_000);
    f.add_blob(&data);
    *f.state.truncate_next_at.lock().unwrap() = Some(100_000);
    let (res, file, sum) = download(&client(), &f.reference("app"), &data, None);
    res.unwrap();
    assert_eq!(file.unwrap(), data);
    // progress never counts bytes twice
    assert_eq!(sum, data.len() as u64);
}

#[test]
fn an_existing_prefix_is_resumed_or_restarted() {
    let data = big(300_000);
    for ranges in [true, false] {
        let f = Fake::start(State {
            ranges,
            ..State::default()
        });
        f.add_blob(&data);
        let (res, file, sum) =
            download(&client(), &f.reference("app"), &data, Some(&data[..70_000]));
        res.unwrap();
        assert_eq!(file.unwrap(), data);
        assert_eq!(sum, data.len() as u64);
        let blob_reqs: Vec<Request> = f
            .server
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("/blobs/"))
            .collect();
        assert_eq!(blob_reqs.len(), 1);
        assert_eq!(blob_reqs[0].header("range"), Some("bytes=70000-"));
    }
    // a complete, correct file needs no request at all
    let f = Fake::start(State::default());
    let (res, _, sum) = download(&client(), &f.reference("app"), &data, Some(&data));
    res.unwrap();
    assert_eq!(sum, data.len() as u64);
    assert!(f.server.requests().is_empty());
}

#[test]
fn a_bad_prefix_is_thrown_away() {
    let f = Fake::start(State {
        ranges: true,
        ..State::default()
    });
    let data = big(200_000);
    f.add_blob(&data);
    let garbage = vec![0xAAu8; 50_000];
    let (res, file, _) = download(&client(), &f.reference("app"), &data, Some(&garbage));
    res.unwrap();
    assert_eq!(file.unwrap(), data);
    // a prefix longer than the blob is dropped too
    let (res, file, _) = download(&client(), &f.reference("app"), &data, Some(&big(300_000)));
    res.unwrap();
    assert_eq!(file.unwrap(), data);
}

#[test]
fn transient_failures_are_retried_then_reported() {
    let f = Fake::start(State::default());
    let data = big(10_000);
    f.add_blob(&data);
    f.state.blob_503s.store(3, Ordering::SeqCst);
    let (res, file, _) = download(&client(), &f.reference("app"), &data, None);
    res.unwrap();
    assert_eq!(file.unwrap(), data);

    f.state.blob_503s.store(10, Ordering::SeqCst);
    let (res, _, _) = download(&client(), &f.reference("app"), &data, None);
    let e = res.unwrap_err();
    assert!(matches!(e, Error::Status { status: 503, .. }), "{e}");
    assert!(e.to_string().contains("(unavailable try later)"), "{e}");
    assert_eq!(f.state.blob_503s.load(Ordering::SeqCst), 10 - 4, "4 tries");
}

#[test]
fn a_hanging_registry_times_out() {
    let f = Fake::start(State::default());
    let data = big(1000);
    f.add_blob(&data);
    f.state.hang_blobs.store(true, Ordering::SeqCst);
    let start = Instant::now();
    let c = client().with_timing(
        Duration::from_secs(2),
        Duration::from_millis(300),
        Duration::from_millis(5),
    );
    let (res, _, _) = download(&c, &f.reference("app"), &data, None);
    let e = res.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("did not answer in time"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // a hanging registry tends to keep hanging: two attempts, not four
    let blob_reqs = f
        .server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .count();
    assert_eq!(blob_reqs, 2);
}

#[test]
fn redirects_to_another_host_drop_the_authorization() {
    let storage = Fake::start(State::default());
    let data = big(50_000);
    storage.add_blob(&data);
    let reg = Fake::start(State {
        auth: AuthMode::Basic,
        user: ("u".into(), "p".into()),
        ..State::default()
    });
    // localhost vs 127.0.0.1: another origin
    let port = storage.server.host.rsplit(':').next().unwrap().to_string();
    *reg.state.redirect_blobs.lock().unwrap() =
        Some(format!("http://localhost:{port}/v2/app/blobs/"));
    let t = tempfile::tempdir().unwrap();
    let auth = t.path().join("auth.json");
    auth::store(
        &auth,
        &reg.server.host,
        &Credentials {
            username: "u".into(),
            password: "p".into(),
        },
    )
    .unwrap();
    let c = client_with(vec![auth], None, None);
    let (res, file, _) = download(&c, &reg.reference("app"), &data, None);
    res.unwrap();
    assert_eq!(file.unwrap(), data);
    let at_reg: Vec<Request> = reg
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/blobs/"))
        .collect();
    assert_eq!(
        at_reg.last().unwrap().header("authorization"),
        Some(reg.state.basic().as_str())
    );
    let at_storage = storage.server.requests();
    assert_eq!(at_storage.len(), 1);
    assert_eq!(at_storage[0].header("authorization"), None);
}

// ------------------------------------------------------------------- auth

#[test]
fn anonymous_bearer_tokens_are_fetched_and_cached() {
    let f = Fake::start(State {
        auth: AuthMode::Bearer { private: false },
        ..State::default()
    });
    f.add_image("t", "amd64", &[b"a", b"b"], false);
    let c = client();
    let r = f.reference("ns/app:t");
    let res = c.resolve(&r, &amd64()).unwrap();
    for l in res.manifest.layers() {
        let t = tempfile::tempdir().unwrap();
        c.download_blob(&r, l, &t.path().join("b"), &|_| {})
            .unwrap();
    }
    assert_eq!(
        f.state.tokens_issued.load(Ordering::SeqCst),
        1,
        "one token for the repository"
    );
    let tok = f
        .server
        .requests()
        .into_iter()
        .find(|q| q.path.starts_with("/token"))
        .unwrap();
    assert!(tok.path.contains("service=fake-registry"), "{}", tok.path);
    assert!(
        tok.path.contains("scope=repository%3Ans%2Fapp%3Apull"),
        "{}",
        tok.path
    );
    assert_eq!(tok.header("authorization"), None, "anonymous");

    // the registry forgets the token: a 401 fetches a new one
    *f.state.valid_token.lock().unwrap() = None;
    c.resolve(&r, &amd64()).unwrap();
    assert_eq!(f.state.tokens_issued.load(Ordering::SeqCst), 2);
}

#[test]
fn bearer_tokens_use_stored_credentials() {
    let f = Fake::start(State {
        auth: AuthMode::Bearer { private: true },
        user: ("alice".into(), "s3cret".into()),
        ..State::default()
    });
    f.add_image("t", "amd64", &[b"a"], false);
    let r = f.reference("private/app:t");
    let e = client().resolve(&r, &amd64()).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "unauthorized: manifest of {r} (unauthorized authentication required): the repository does not exist or needs credentials: run box login {}",
            f.server.host
        )
    );

    let t = tempfile::tempdir().unwrap();
    let docker = t.path().join("config.json");
    fs::write(
        &docker,
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{}"}}}}}}"#,
            f.server.host,
            base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
        ),
    )
    .unwrap();
    let c = client_with(vec![t.path().join("box-auth.json"), docker], None, None);
    c.resolve(&r, &amd64()).unwrap();
    let tok = f
        .server
        .requests()
        .into_iter()
        .rfind(|q| q.path.starts_with("/token"))
        .unwrap();
    assert_eq!(tok.header("authorization"), Some(f.state.basic().as_str()));

    // wrong credentials are named as such
    let bad = t.path().join("bad.json");
    auth::store(
        &bad,
        &f.server.host,
        &Credentials {
            username: "alice".into(),
            password: "nope".into(),
        },
    )
    .unwrap();
    let e = client_with(vec![bad], None, None)
        .resolve(&r, &amd64())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rejected the username or password") && e.contains("box login"),
        "{e}"
    );
}

#[test]
fn basic_auth_registries() {
    let f = Fake::start(State {
        auth: AuthMode::Basic,
        user: ("bob".into(), "pw".into()),
        ..State::default()
    });
    f.add_image("t", "amd64", &[b"a"], false);
    let r = f.reference("app:t");
    let e = client().resolve(&r, &amd64()).unwrap_err().to_string();
    assert!(
        e.starts_with("unauthorized: ") && e.ends_with(&format!("run box login {}", f.server.host)),
        "{e}"
    );

    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("auth.json");
    let creds = Credentials {
        username: "bob".into(),
        password: "pw".into(),
    };
    auth::store(&a, &f.server.host, &creds).unwrap();
    client_with(vec![a], None, None)
        .resolve(&r, &amd64())
        .unwrap();
}

#[test]
fn check_login_accepts_good_and_rejects_bad_credentials() {
    for mode in [AuthMode::Basic, AuthMode::Bearer { private: true }] {
        let f = Fake::start(State {
            auth: mode,
            user: ("u".into(), "right".into()),
            ..State::default()
        });
        let c = client();
        let good = Credentials {
            username: "u".into(),
            password: "right".into(),
        };
        c.check_login(&f.server.host, &good).unwrap();
        let bad = Credentials {
            username: "u".into(),
            password: "wrong".into(),
        };
        let e = client()
            .check_login(&f.server.host, &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "{} rejected the username or password",
                f.server.host
            )),
            "{e}"
        );
    }
    // a registry without auth accepts anything
    let f = Fake::start(State::default());
    client()
        .check_login(
            &f.server.host,
            &Credentials {
                username: "x".into(),
                password: "y".into(),
            },
        )
        .unwrap();
}

// ------------------------------------------------------------------- transport policy

#[test]
fn mirrors_are_tried_first_then_the_registry() {
    let mirror = Fake::start(State::default());
    let upstream = Fake::start(State::default());
    let (_, d) = upstream.add_image("t", "amd64", &[b"up"], false);
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("registries.toml");
    fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\nmirrors = [\"{}/cache\"]\n",
            upstream.server.host, mirror.server.host
        ),
    )
    .unwrap();
    let c = client_with(vec![], Some(conf), None);
    let r = upstream.reference("app:t");
    // the mirror lacks it: upstream answers
    assert_eq!(c.resolve(&r, &amd64()).unwrap().manifest_digest, d);
    assert!(
        mirror
            .server
            .requests()
            .iter()
            .any(|q| q.path == "/v2/cache/app/manifests/t")
    );
    // the mirror has it: upstream is not asked again
    let (_, md) = mirror.add_image("t", "amd64", &[b"mirrored"], false);
    let before = upstream.server.requests().len();
    assert_eq!(c.resolve(&r, &amd64()).unwrap().manifest_digest, md);
    assert_eq!(upstream.server.requests().len(), before);
}

#[test]
fn a_broken_registries_toml_is_reported() {
    let t = tempfile::tempdir().unwrap();
    let conf = t.path().join("registries.toml");
    fs::write(&conf, "[[registry]]\nlocation = 1\n").unwrap();
    let c = client_with(vec![], Some(conf), None);
    let e = c
        .resolve(&Reference::parse("127.0.0.1:1/a").unwrap(), &amd64())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("invalid ") && e.contains("registries.toml") && e.contains("fix it"),
        "{e}"
    );
}

#[test]
fn insecure_registries_fall_back_from_https_to_http() {
    let f = Fake::start(State::default());
    let (_, d) = f.add_image("t", "amd64", &[b"a"], false);
    let c = client_with(vec![], None, Some(false));
    assert_eq!(
        c.resolve(&f.reference("app:t"), &amd64())
            .unwrap()
            .manifest_digest,
        d
    );
    // --tls-verify=true insists on https even on loopback
    let e = client_with(vec![], None, Some(true))
        .resolve(&f.reference("app:t"), &amd64())
        .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e}");
    assert!(e.to_string().contains("insecure = true"), "{e}");
}

#[test]
fn unreachable_registries_fail_fast_and_clearly() {
    // a closed port on loopback
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = Reference::parse(&format!("127.0.0.1:{port}/app")).unwrap();
    let e = client().resolve(&r, &amd64()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot reach 127.0.0.1:{port}")),
        "{e}"
    );
}

// ------------------------------------------------------------------- pure helpers

#[test]
fn a_client_is_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Client>();
    shareable::<Resolved>();
}

#[test]
fn url_helpers() {
    assert!(is_loopback("127.0.0.1:5000"));
    assert!(is_loopback("127.1.2.3"));
    assert!(is_loopback("localhost:5000"));
    assert!(is_loopback("[::1]:5000"));
    assert!(is_loopback("[::1]"));
    assert!(!is_loopback("10.0.0.1:5000"));
    assert!(!is_loopback("quay.io"));
    assert!(!is_loopback("localhost.example.com"));

    assert_eq!(
        split_url("HTTPS://User@Host:1/x?y"),
        ("https".into(), "host:1".into())
    );
    assert_eq!(origin_of("https://a.io/x"), "https://a.io:443");
    assert_eq!(origin_of("https://a.io:443/y"), "https://a.io:443");
    assert_ne!(
        origin_of("http://127.0.0.1:5000/"),
        origin_of("http://localhost:5000/")
    );

    let base = "https://r.io/v2/app/blobs/sha256:1?x=y";
    assert_eq!(
        join_url(base, "https://cdn.io/a?sig=1"),
        "https://cdn.io/a?sig=1"
    );
    assert_eq!(join_url(base, "//cdn.io/a"), "https://cdn.io/a");
    assert_eq!(join_url(base, "/other"), "https://r.io/other");
    assert_eq!(join_url(base, "rel"), "https://r.io/v2/app/blobs/rel");

    assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
    assert_eq!(content_range_start("bytes */200"), None);
    assert_eq!(
        percent_encode("repository:a/b:pull"),
        "repository%3Aa%2Fb%3Apull"
    );
}

#[test]
fn media_type_detection() {
    let j = |s: &str| serde_json::from_str::<Value>(s).unwrap();
    assert_eq!(
        manifest_media_type(&j(r#"{"mediaType":"x"}"#), Some(OCI_MANIFEST)),
        "x"
    );
    assert_eq!(
        manifest_media_type(&j("{}"), Some(DOCKER_LIST)),
        DOCKER_LIST
    );
    assert_eq!(
        manifest_media_type(&j(r#"{"manifests":[]}"#), Some("application/json")),
        OCI_INDEX
    );
    assert_eq!(
        manifest_media_type(&j(r#"{"config":{}}"#), None),
        OCI_MANIFEST
    );
    assert_eq!(
        manifest_media_type(&j(r#"{"schemaVersion":1}"#), None),
        DOCKER_SCHEMA1
    );
}

#[test]
fn a_body_must_grow_by_16_kib_within_the_stall_timeout() {
    let mut w = StallWatch::new(Duration::from_millis(50), 0);
    assert!(w.check(10, "h", "blob x").is_ok());
    std::thread::sleep(Duration::from_millis(80));
    let e = w.check(20, "h", "blob x").unwrap_err();
    assert!(matches!(e, Error::Stalled { got: 20, .. }), "{e}");
    assert!(e.is_transient() && e.to_string().contains("BOX_REGISTRY_STALL_TIMEOUT"));
    let mut w = StallWatch::new(Duration::from_millis(50), 0);
    std::thread::sleep(Duration::from_millis(80));
    assert!(w.check(STALL_MIN_PROGRESS, "h", "blob x").is_ok());
}
