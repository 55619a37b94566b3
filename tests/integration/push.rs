//! `box push` as boxtest against the harness's docker-registry (and the auth registries of
//! registry.rs), checked with skopeo and umoci.
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::{self, TestBox, images};
use crate::registry::{Auth, AuthRegistry};

pub(crate) fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `skopeo inspect` (or `--raw`) of a reference in a plain-http registry.
pub(crate) fn inspect(reference: &str, raw: bool, creds: Option<&str>) -> Value {
    let r = format!("docker://{reference}");
    let mut args = vec!["inspect", "--tls-verify=false"];
    if raw {
        args.push("--raw");
    }
    if let Some(c) = creds {
        args.extend(["--creds", c]);
    }
    args.push(&r);
    serde_json::from_str(&skopeo(&args)).unwrap()
}

/// Copy `reference` into an OCI layout with skopeo (which verifies every digest), unpack it
/// with umoci and return the bundle's rootfs.
pub(crate) fn unpack(tb: &TestBox, reference: &str, name: &str) -> std::path::PathBuf {
    let layout = tb.work().join(format!("{name}-layout"));
    let bundle = tb.work().join(format!("{name}-bundle"));
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:x", layout.display()),
    ]);
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:x", layout.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bundle.join("rootfs")
}

fn alpine_release(rootfs: &Path) -> String {
    std::fs::read_to_string(rootfs.join("etc/alpine-release")).unwrap()
}

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn push_a_pulled_image_mounts_then_skips_and_round_trips() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let reg = env.registry();
    let src = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &src]).run().assert_success();
    let original = inspect(&src, false, None);

    // pulled from library/alpine of the same registry: both blobs are mounted
    let dest = format!("{reg}/pushed/alpine:1");
    tb.cmd(["tag", &src, &dest]).run().assert_success();
    let out = tb
        .cmd(["push", &dest, "--digestfile", "digest"])
        .env("BOX_NO_PROGRESS", "1")
        .run();
    out.assert_success();
    assert_eq!(
        lines_with(out.err(), "mounted from library/alpine"),
        2,
        "{}",
        out.err()
    );
    assert!(out.out().is_empty(), "{}", out.out());
    let pushed = inspect(&dest, false, None);
    // nothing changed: the same manifest, byte for byte
    assert_eq!(pushed["Digest"], original["Digest"]);
    assert_eq!(pushed["Layers"], original["Layers"]);
    let digest = std::fs::read_to_string(tb.work().join("digest")).unwrap();
    assert_eq!(digest, pushed["Digest"].as_str().unwrap());

    // again: every blob is there
    let out = tb.cmd(["push", &dest]).run();
    out.assert_success();
    assert_eq!(
        lines_with(out.err(), "skipped: already exists"),
        2,
        "{}",
        out.err()
    );
    assert_eq!(lines_with(out.err(), "mounted"), 0, "{}", out.err());
    // and with -q, nothing at all
    tb.cmd([
        "image",
        "push",
        "-q",
        &dest,
        &format!("{reg}/quiet/alpine:1"),
    ])
    .run()
    .assert_success()
    .stdout_is("");

    let rootfs = unpack(&tb, &dest, "pushed");
    assert!(alpine_release(&rootfs).starts_with("3.20"));

    podman_runs(&tb, &dest);
}

/// When podman is installed: it pulls and runs what box pushed (its own store under the
/// test's directory). Skipped, visibly, otherwise.
fn podman_runs(tb: &TestBox, reference: &str) {
    if harness::which("podman").is_none() {
        harness::note("podman is not installed: the podman pull/run check is skipped");
        return;
    }
    let root = tb.work().join("podman-root");
    let runroot = tb.work().join("podman-run");
    let podman = |args: &[&str]| {
        Command::new("podman")
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(args)
            .output()
            .expect("run podman")
    };
    // podman verifies every digest as it pulls
    let out = podman(&["pull", "-q", "--tls-verify=false", reference]);
    assert!(
        out.status.success(),
        "podman pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podman(&[
        "run",
        "--rm",
        "--network=none",
        reference,
        "cat",
        "/etc/alpine-release",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("error setting rlimit") {
        harness::note(&format!(
            "podman pulled the image but cannot run containers on this host: {}",
            stderr.trim()
        ));
        return;
    }
    assert!(out.status.success(), "podman run: {stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("3.20"), "{text}");
}

/// The alpine layer blob of the test images, as a tarball boxtest can import (the imported
/// image has no repository to mount from).
fn import_alpine(tb: &TestBox) -> (String, String) {
    let layout = tb.env().images_dir().join("alpine");
    let read = |d: &str| {
        let hex = d.strip_prefix("sha256:").unwrap();
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let manifest: Value =
        serde_json::from_slice(&read(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let config: Value =
        serde_json::from_slice(&read(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let diff_id = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    tb.write("alpine.tar.gz", read(&layer));
    tb.cmd(["import", "alpine.tar.gz", "imp:1"])
        .run()
        .assert_success();
    (layer, diff_id)
}

#[test]
fn push_uploads_whole_chunked_and_recompressed() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let reg = env.registry();
    let (layer, diff_id) = import_alpine(&tb);
    let short = &layer["sha256:".len().."sha256:".len() + 12];

    // monolithic
    let dest = format!("{reg}/mono/imp:1");
    let out = tb.cmd(["push", "imp:1", &dest]).run();
    out.assert_success();
    assert!(
        out.err().contains(&format!("Copying blob {short} done (")),
        "{}",
        out.err()
    );
    assert_eq!(inspect(&dest, false, None)["Layers"][0], layer.as_str());

    // chunked: 1 MB chunks of a 3.5 MB layer
    let dest = format!("{reg}/chunked/imp:1");
    let start = std::time::Instant::now();
    let out = tb
        .cmd(["push", "imp:1", &dest])
        .env("BOX_PUSH_CHUNK_SIZE", "1000000")
        .run();
    out.assert_success();
    harness::note(&format!(
        "chunked push of the alpine image took {:.2}s",
        start.elapsed().as_secs_f64()
    ));
    assert!(
        out.err().contains(&format!("Copying blob {short} done ("))
            && out.err().contains("in 4 chunks"),
        "{}",
        out.err()
    );
    assert_eq!(inspect(&dest, false, None)["Layers"][0], layer.as_str());
    let rootfs = unpack(&tb, &dest, "chunked");
    assert!(alpine_release(&rootfs).starts_with("3.20"));

    // zstd: a new blob that decompresses to the same diff_id
    let dest = format!("{reg}/zstd/imp:1");
    let out = tb
        .cmd(["push", "--compression-format", "zstd", "imp:1", &dest])
        .run();
    out.assert_success();
    assert!(
        out.err()
            .contains(&format!("Recompressed blob {short} as ")),
        "{}",
        out.err()
    );
    let raw = inspect(&dest, true, None);
    let l = &raw["layers"][0];
    assert_eq!(
        l["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let zdigest = l["digest"].as_str().unwrap();
    assert_ne!(zdigest, layer);
    let layout = tb.work().join("zstd-layout");
    skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{dest}"),
        &format!("oci:{}:x", layout.display()),
    ]);
    let blob = std::fs::read(layout.join("blobs/sha256").join(&zdigest[7..])).unwrap();
    let plain = zstd::decode_all(&blob[..]).unwrap();
    assert_eq!(
        format!("sha256:{}", hex::encode(Sha256::digest(&plain))),
        diff_id
    );

    // Docker v2s2
    let dest = format!("{reg}/v2s2/imp:1");
    tb.cmd(["push", "--format", "v2s2", "imp:1", &dest])
        .run()
        .assert_success();
    let raw = inspect(&dest, true, None);
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    // zstd cannot be named by v2s2
    tb.cmd([
        "push",
        "--format",
        "docker",
        "--compression-format",
        "zstd",
        "imp:1",
        &dest,
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("--format oci");
}

#[test]
fn push_needs_login_on_authenticating_registries() {
    let env = require_env!(alpine);
    let n = std::process::id();
    for (kind, auth) in [("basic", Auth::Basic), ("token", Auth::Token)] {
        let reg = AuthRegistry::start(
            &env.base_dir().join(format!("push-{kind}reg-{n}")),
            auth,
            "alice",
            "s3cret",
        );
        let addr = reg.addr.as_str();
        let tb = env.test_box();
        tb.cmd(["pull", "-q", &env.image(images::ALPINE)])
            .run()
            .assert_success();
        let dest = format!("{addr}/private/alpine:1");
        tb.cmd(["tag", &env.image(images::ALPINE), &dest])
            .run()
            .assert_success();
        tb.cmd(["push", &dest])
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(&format!("box login {addr}"));
        tb.cmd(["login", "-u", "alice", "--password-stdin", addr])
            .stdin("s3cret\n")
            .run()
            .assert_success();
        let out = tb.cmd(["push", &dest, "--digestfile", "d"]).run();
        out.assert_success();
        let creds = Some("alice:s3cret");
        let pushed = inspect(&dest, false, creds);
        let digest = std::fs::read_to_string(tb.work().join("d")).unwrap();
        assert_eq!(pushed["Digest"], digest.as_str(), "{kind}");
        // another repository of the same registry: mounted (the token covers both)
        let out = tb
            .cmd(["push", &dest, &format!("{addr}/private/copy:1")])
            .run();
        out.assert_success();
        assert_eq!(
            lines_with(out.err(), "mounted from private/alpine"),
            2,
            "{kind}: {}",
            out.err()
        );
        assert_eq!(
            inspect(&format!("{addr}/private/copy:1"), false, creds)["Digest"],
            digest.as_str()
        );
    }
}

#[test]
fn push_fails_cleanly() {
    let env = require_env!();
    let tb = env.test_box();
    let reg = env.registry();
    tb.cmd(["push", "nosuchimage", &format!("{reg}/x/y:1")])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("image not found: nosuchimage");
    tb.cmd(["pull", "-q", &env.image(images::LAYERS)])
        .run()
        .assert_success();
    let id = tb.cmd(["images", "-q"]).run().out().trim().to_string();
    tb.cmd([
        "push",
        &env.image(images::LAYERS),
        &format!("{reg}/x/y@sha256:{}", "a".repeat(64)),
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("not a digest");
    // an id with one name pushes to that name; make it two names: then a destination is needed
    tb.cmd(["tag", &env.image(images::LAYERS), "other/name:2"])
        .run()
        .assert_success();
    tb.cmd(["push", &id])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("give a destination");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    tb.cmd([
        "push",
        &env.image(images::LAYERS),
        &format!("127.0.0.1:{port}/x/y:1"),
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains(&format!("cannot reach 127.0.0.1:{port}"));
    assert!(!tb.work().join("d").exists());
}
