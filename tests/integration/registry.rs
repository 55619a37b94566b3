//! The registry client against Debian's docker-registry on 127.0.0.1 (images pushed by
//! skopeo), and `box login` / `box logout` as boxtest against a second docker-registry that
//! requires htpasswd (Basic) authentication.
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxctr::registry::{Client, ClientConfig, Error, Platform, Reference, Resolved};
use oci_spec::image::MediaType;
use sha2::{Digest, Sha256};

use crate::harness::{self, images};

fn client(auth_files: Vec<PathBuf>) -> Client {
    Client::new(ClientConfig {
        auth_files,
        registries_conf: None,
        tls_verify: None,
    })
}

fn platform(p: &str) -> Platform {
    Platform::parse(p).unwrap()
}

fn reference(s: &str) -> Reference {
    Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Download every layer of `res` through the client; check each file's sha256 and the
/// progress total against the descriptor.
fn download_layers(c: &Client, r: &Reference, res: &Resolved) {
    let dir = tempfile::tempdir().unwrap();
    for (i, layer) in res.manifest.layers().iter().enumerate() {
        let tmp = dir.path().join(format!("layer{i}"));
        let total = std::cell::Cell::new(0u64);
        c.download_blob(r, layer, &tmp, &|n| total.set(total.get() + n))
            .unwrap_or_else(|e| panic!("layer {i} of {r}: {e}"));
        let data = std::fs::read(&tmp).unwrap();
        assert_eq!(data.len() as u64, layer.size(), "layer {i} of {r}");
        assert_eq!(total.get(), layer.size(), "progress of layer {i} of {r}");
        let got = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        assert_eq!(got, layer.digest().to_string(), "layer {i} of {r}");
    }
}

#[test]
fn client_resolves_and_downloads_the_alpine_variants() {
    let env = require_env!(alpine);
    let c = client(vec![]);
    let amd64 = platform("linux/amd64");

    let r = reference(&env.image(images::ALPINE));
    let oci = c.resolve(&r, &amd64).unwrap();
    assert_eq!(
        oci.manifest_media_type,
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(oci.index_digest, None);
    assert_eq!(oci.manifest.layers().len(), 1);
    assert_eq!(
        oci.manifest.layers()[0].media_type(),
        &MediaType::ImageLayerGzip
    );
    assert_eq!(oci.config.architecture().to_string(), "amd64");
    assert_eq!(oci.config.os().to_string(), "linux");
    let cmd = oci.config.config().as_ref().and_then(|c| c.cmd().clone());
    assert_eq!(cmd, Some(vec!["/bin/sh".to_string()]));
    download_layers(&c, &r, &oci);

    // the same image by digest
    let by_digest = reference(&format!(
        "{}/library/alpine@{}",
        env.registry(),
        oci.manifest_digest
    ));
    let again = c.resolve(&by_digest, &amd64).unwrap();
    assert_eq!(again.manifest_bytes, oci.manifest_bytes);

    // Docker schema 2: media types mapped to OCI, the same layer
    let r = reference(&env.image(images::ALPINE_V2S2));
    let v2 = c.resolve(&r, &amd64).unwrap();
    assert_eq!(
        v2.manifest_media_type,
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(v2.manifest.config().media_type(), &MediaType::ImageConfig);
    assert_eq!(
        v2.manifest.layers()[0].media_type(),
        &MediaType::ImageLayerGzip
    );
    assert_eq!(
        v2.manifest.layers()[0].digest(),
        oci.manifest.layers()[0].digest()
    );
    assert_eq!(
        v2.config.rootfs().diff_ids(),
        oci.config.rootfs().diff_ids()
    );
    download_layers(&c, &r, &v2);

    // zstd layers
    let r = reference(&env.image(images::ALPINE_ZSTD));
    let zstd = c.resolve(&r, &amd64).unwrap();
    assert_eq!(
        zstd.manifest.layers()[0].media_type(),
        &MediaType::ImageLayerZstd
    );
    download_layers(&c, &r, &zstd);

    // an index whose first entry is arm64: amd64 is the alpine manifest itself
    let r = reference(&env.image(images::ALPINE_INDEX));
    let idx = c.resolve(&r, &amd64).unwrap();
    assert_eq!(idx.manifest_digest, oci.manifest_digest);
    let index_digest = idx.index_digest.clone().expect("resolved through an index");
    assert_eq!(idx.repo_digest(), index_digest);
    let arm = c.resolve(&r, &platform("linux/arm64")).unwrap();
    assert_eq!(arm.config.architecture().to_string(), "arm64");
    assert_eq!(arm.index_digest.as_deref(), Some(index_digest.as_str()));
    let e = c
        .resolve(&r, &platform("linux/riscv64"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("has no image for linux/riscv64")
            && e.contains("available: linux/arm64/v8, linux/amd64"),
        "{e}"
    );
    // the index by its digest
    let pinned = reference(&format!(
        "{}/library/alpine-index@{index_digest}",
        env.registry()
    ));
    assert_eq!(
        c.resolve(&pinned, &amd64).unwrap().manifest_digest,
        oci.manifest_digest
    );
}

#[test]
fn client_downloads_the_multi_layer_image_and_resumes() {
    let env = require_env!();
    let c = client(vec![]);
    let r = reference(&env.image(images::LAYERS));
    let res = c.resolve(&r, &platform("linux/amd64")).unwrap();
    assert_eq!(res.manifest.layers().len(), 3);
    download_layers(&c, &r, &res);

    // an interrupted download: the prefix stays, the rest comes with a Range request
    let layer = res.manifest.layers()[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    c.download_blob(&r, &layer, &full, &|_| {}).unwrap();
    let data = std::fs::read(&full).unwrap();
    let tmp = dir.path().join("partial");
    std::fs::write(&tmp, &data[..data.len() / 2]).unwrap();
    let added = std::cell::Cell::new(0u64);
    c.download_blob(&r, &layer, &tmp, &|n| added.set(added.get() + n))
        .unwrap();
    assert_eq!(std::fs::read(&tmp).unwrap(), data);
    assert_eq!(added.get(), layer.size());
    // a corrupt prefix is thrown away, the blob still arrives intact
    let mut bad = data[..data.len() / 2].to_vec();
    bad[0] ^= 0xff;
    std::fs::write(&tmp, &bad).unwrap();
    c.download_blob(&r, &layer, &tmp, &|_| {}).unwrap();
    assert_eq!(std::fs::read(&tmp).unwrap(), data);
}

#[test]
fn client_reports_missing_manifests_and_blobs() {
    let env = require_env!();
    let c = client(vec![]);
    let r = reference(&format!("{}/library/nope:latest", env.registry()));
    let e = c.resolve(&r, &platform("linux/amd64")).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "manifest unknown: {}/library/nope:latest does not exist in the registry",
            env.registry()
        )
    );
    let r = reference(&env.image(images::LAYERS));
    let res = c.resolve(&r, &platform("linux/amd64")).unwrap();
    // a descriptor the registry does not have
    let mut ghost = res.manifest.layers()[0].clone();
    ghost.set_digest(
        oci_spec::image::Digest::try_from(format!("sha256:{}", "0".repeat(64))).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let e = c
        .download_blob(&r, &ghost, &dir.path().join("g"), &|_| {})
        .unwrap_err();
    assert!(matches!(e, Error::BlobUnknown { .. }), "{e}");
    // a descriptor that lies about the size: nothing is kept
    let mut short = res.manifest.layers()[0].clone();
    short.set_size(short.size() - 1);
    let tmp = dir.path().join("s");
    let e = c.download_blob(&r, &short, &tmp, &|_| {}).unwrap_err();
    assert!(matches!(e, Error::SizeMismatch { .. }), "{e}");
    assert!(!tmp.exists());
}

/// A token service for docker-registry's `auth: token` (stdlib Python, RS256 via openssl):
/// with the right Basic credentials every requested action is granted; anonymously only
/// `pull` of `public/*` repositories; wrong credentials get a 401.
const TOKEN_SERVER: &str = r#"
import base64, http.server, json, os, subprocess, sys, time
from urllib.parse import urlparse, parse_qs
KEY, CERT, ISSUER, USER, PASSWORD, PORTFILE = sys.argv[1:7]
def b64u(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        u = urlparse(self.path)
        if u.path != "/token":
            return self.reply(404, b"{}")
        q = parse_qs(u.query)
        auth = self.headers.get("Authorization")
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth and auth != want:
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
        access = []
        for scope in " ".join(q.get("scope", [])).split():
            parts = scope.split(":")
            if len(parts) < 3:
                continue
            name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
            if not auth:
                actions = [a for a in actions if a == "pull" and name.startswith("public/")]
            access.append({"type": parts[0], "name": name, "actions": actions})
        now = int(time.time())
        head = {"typ": "JWT", "alg": "RS256", "x5c": [CERT]}
        claims = {"iss": ISSUER, "sub": USER if auth else "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                  "access": access}
        signing = (b64u(json.dumps(head).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=signing,
                             capture_output=True, check=True).stdout
        token = signing.decode() + "." + b64u(sig)
        self.reply(200, json.dumps({"token": token, "expires_in": 300}).encode())
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
"#;

pub(crate) enum Auth {
    /// htpasswd file (bcrypt): Basic auth on every request.
    Basic,
    /// Bearer tokens from [`TOKEN_SERVER`].
    Token,
}

/// Spawn a helper that dies with the test's thread (PR_SET_PDEATHSIG) or on drop.
fn spawn_quiet(mut cmd: Command, log: &Path) -> Child {
    crate::harness::background(&mut cmd, std::fs::File::create(log).unwrap());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()))
}

fn wait_for(what: &str, child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if ready() {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A docker-registry (and token service) requiring authentication as `user`; both are killed
/// on drop.
pub(crate) struct AuthRegistry {
    pub(crate) addr: String,
    children: Vec<Child>,
}

impl AuthRegistry {
    pub(crate) fn start(dir: &Path, auth: Auth, user: &str, password: &str) -> AuthRegistry {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let mut children = Vec::new();
        let auth_config = match auth {
            Auth::Basic => {
                let hash = bcrypt::hash_with_result(password, 4)
                    .unwrap()
                    .format_for_version(bcrypt::Version::TwoY);
                let htpasswd = dir.join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "  htpasswd:\n    realm: box-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            Auth::Token => {
                let (key, cert) = (dir.join("token.key"), dir.join("token.crt"));
                let ok = Command::new("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    ])
                    .args(["-subj", "/CN=box-test-token", "-keyout"])
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert)
                    .stderr(Stdio::null())
                    .status()
                    .expect("run openssl")
                    .success();
                assert!(ok, "openssl could not make the token signing key");
                let der = Command::new("openssl")
                    .args(["x509", "-outform", "DER", "-in"])
                    .arg(&cert)
                    .output()
                    .expect("run openssl")
                    .stdout;
                let script = dir.join("token_server.py");
                std::fs::write(&script, TOKEN_SERVER).unwrap();
                let portfile = dir.join("token.port");
                let mut cmd = Command::new("python3");
                cmd.arg(&script)
                    .arg(&key)
                    .arg(base64::engine::general_purpose::STANDARD.encode(der))
                    .args(["box-issuer", user, password])
                    .arg(&portfile);
                let log = dir.join("token.log");
                let mut child = spawn_quiet(cmd, &log);
                wait_for("the token service", &mut child, &log, || portfile.exists());
                children.push(child);
                let port = std::fs::read_to_string(&portfile).unwrap();
                format!(
                    "  token:\n    realm: http://127.0.0.1:{port}/token\n    service: box-registry\n\
                     \x20   issuer: box-issuer\n    rootcertbundle: {}\n",
                    cert.display()
                )
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\nauth:\n{auth_config}\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display(),
            ),
        )
        .unwrap();
        let mut cmd = Command::new(harness::which("docker-registry").expect("docker-registry"));
        cmd.arg("serve").arg(&config);
        let log = dir.join("registry.log");
        let mut child = spawn_quiet(cmd, &log);
        let addr = format!("127.0.0.1:{port}");
        wait_for("docker-registry", &mut child, &log, || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        children.push(child);
        AuthRegistry { addr, children }
    }

    fn push(&self, layout: &Path, dest: &str, creds: &str) {
        let out = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
            ])
            .args(["--dest-creds", creds])
            .arg(format!("oci:{}", layout.display()))
            .arg(format!("docker://{}/{dest}", self.addr))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn login_and_logout_against_a_basic_auth_registry() {
    let env = require_env!();
    let n = std::process::id();
    let reg = AuthRegistry::start(
        &env.base_dir().join(format!("basicreg-{n}")),
        Auth::Basic,
        "alice",
        "s3cret",
    );
    reg.push(
        &env.images_dir().join("layers:latest"),
        "private/layers:latest",
        "alice:s3cret",
    );
    let addr = reg.addr.as_str();
    let r = reference(&format!("{addr}/private/layers:latest"));
    let amd64 = platform("linux/amd64");

    // anonymous: refused, with the hint
    let e = client(vec![]).resolve(&r, &amd64).unwrap_err().to_string();
    assert!(
        e.starts_with("unauthorized: ") && e.ends_with(&format!("run box login {addr}")),
        "{e}"
    );

    let tb = env.test_box();
    let auth_file = tb.config_dir().join("box/auth.json");

    // a wrong password: one-line error, nothing stored
    tb.cmd(["login", "-u", "alice", "--password-stdin", addr])
        .stdin("wrong\n")
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains(&format!("{addr} rejected the username or password"));
    assert!(!auth_file.exists());

    // missing username without a terminal
    tb.cmd(["login", "--password-stdin", addr])
        .stdin("s3cret\n")
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("--username");

    // the right one
    tb.cmd(["login", "-u", "alice", "--password-stdin", addr])
        .stdin("s3cret\n")
        .run()
        .assert_success()
        .stdout_is("Login Succeeded");
    let md = std::fs::metadata(&auth_file).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o600);
    assert_eq!(md.uid(), tb.user().uid);
    let dir_md = std::fs::metadata(auth_file.parent().unwrap()).unwrap();
    assert_eq!(dir_md.permissions().mode() & 0o777, 0o700);
    let text = std::fs::read_to_string(&auth_file).unwrap();
    assert!(text.contains(addr) && !text.contains("s3cret"), "{text}");

    // the stored credentials pull the private image
    let c = client(vec![auth_file.clone()]);
    let res = c.resolve(&r, &amd64).unwrap();
    download_layers(&c, &r, &res);

    // -p works, with docker's warning
    tb.cmd(["login", "-u", "alice", "-p", "s3cret", addr])
        .run()
        .assert_success()
        .stderr_contains("WARNING! Using --password via the CLI is insecure");

    // logout, twice
    tb.cmd(["logout", addr])
        .run()
        .assert_success()
        .stdout_is(&format!("Removed login credentials for {addr}"));
    tb.cmd(["logout", addr])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains(&format!("not logged in to {addr}"));
    let e = client(vec![auth_file.clone()])
        .resolve(&r, &amd64)
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");

    // --all, and --authfile
    let other = tb.work().join("other-auth.json");
    tb.cmd(["login", "-u", "alice", "--password-stdin", "--authfile"])
        .arg(&other)
        .arg(addr)
        .stdin("s3cret")
        .run()
        .assert_success();
    assert!(other.exists());
    tb.cmd(["login", "-u", "alice", "--password-stdin", addr])
        .stdin("s3cret")
        .run()
        .assert_success();
    tb.cmd(["logout", "--all"])
        .run()
        .assert_success()
        .stdout_is("Removed login credentials for all registries");
    let text = std::fs::read_to_string(&auth_file).unwrap();
    assert!(!text.contains(addr), "{text}");
    assert!(std::fs::read_to_string(&other).unwrap().contains(addr));
}

#[test]
fn login_to_an_unreachable_registry_fails_clearly() {
    let env = require_env!();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tb = env.test_box();
    tb.cmd([
        "login",
        "-u",
        "a",
        "--password-stdin",
        &format!("127.0.0.1:{port}"),
    ])
    .stdin("b")
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains(&format!("cannot reach 127.0.0.1:{port}"));
    // an image reference is not a registry
    tb.cmd([
        "login",
        "-u",
        "a",
        "--password-stdin",
        &env.image(images::LAYERS),
    ])
    .stdin("b")
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("not an image");
    assert!(!tb.config_dir().join("box/auth.json").exists());
}

#[test]
fn token_auth_registry_public_anonymously_private_after_login() {
    let env = require_env!();
    let n = std::process::id();
    let reg = AuthRegistry::start(
        &env.base_dir().join(format!("tokenreg-{n}")),
        Auth::Token,
        "alice",
        "s3cret",
    );
    let layout = env.images_dir().join("layers:latest");
    reg.push(&layout, "public/layers:latest", "alice:s3cret");
    reg.push(&layout, "private/layers:latest", "alice:s3cret");
    let addr = reg.addr.as_str();
    let amd64 = platform("linux/amd64");
    let public = reference(&format!("{addr}/public/layers:latest"));
    let private = reference(&format!("{addr}/private/layers:latest"));

    // anonymous: public pulls, private is refused with the hint
    let anon = client(vec![]);
    let res = anon.resolve(&public, &amd64).unwrap();
    download_layers(&anon, &public, &res);
    let e = anon.resolve(&private, &amd64).unwrap_err().to_string();
    assert!(
        e.starts_with("unauthorized: ") && e.ends_with(&format!("run box login {addr}")),
        "{e}"
    );

    let tb = env.test_box();
    let auth_file = tb.config_dir().join("box/auth.json");
    tb.cmd(["login", "-u", "alice", "--password-stdin", addr])
        .stdin("wrong\n")
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains(&format!("{addr} rejected the username or password"));
    assert!(!auth_file.exists());
    tb.cmd(["login", "-u", "alice", "--password-stdin", addr])
        .stdin("s3cret\n")
        .run()
        .assert_success()
        .stdout_is("Login Succeeded");

    // logged in: the private image, and the public one with the same client
    let c = client(vec![auth_file.clone()]);
    let res = c.resolve(&private, &amd64).unwrap();
    download_layers(&c, &private, &res);
    let again = c.resolve(&public, &amd64).unwrap();
    assert_eq!(
        again.manifest_digest, res.manifest_digest,
        "the same image in both repositories"
    );

    tb.cmd(["logout", addr]).run().assert_success();
    let e = client(vec![auth_file])
        .resolve(&private, &amd64)
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e}");
}
