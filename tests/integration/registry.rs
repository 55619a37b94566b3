//! The registry client against Debian's docker-registry on 127.0.0.1 (images pushed by
//! skopeo), and `box login` / `box logout` as boxtest against a second docker-registry that
//! requires htpasswd (Basic) authentication.
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
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

/// A docker-registry that requires htpasswd (Basic) auth; killed on drop and, through
/// PR_SET_PDEATHSIG, when the test's thread ends.
struct AuthRegistry {
    addr: String,
    child: Child,
}

impl AuthRegistry {
    fn start(dir: &Path, user: &str, password: &str) -> AuthRegistry {
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let hash = bcrypt::hash_with_result(password, 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).unwrap();
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
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 auth:\n  htpasswd:\n    realm: box-test\n    path: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let mut cmd = Command::new(harness::which("docker-registry").expect("docker-registry"));
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null()))
            .stderr(Stdio::from(log));
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn docker-registry");
        let mut reg = AuthRegistry {
            addr: format!("127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = reg.child.try_wait() {
                panic!(
                    "docker-registry exited ({status}): {}",
                    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
            }
            if std::net::TcpStream::connect(&reg.addr).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn login_and_logout_against_a_basic_auth_registry() {
    let env = require_env!();
    let n = std::process::id();
    let reg = AuthRegistry::start(
        &env.base_dir().join(format!("authreg-{n}")),
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
