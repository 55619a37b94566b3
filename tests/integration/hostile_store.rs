//! Hostile input against the store and the registry client (robustness items of the
//! security issue): a container's very deep directory tree, leftovers in
//! `containers/.trash`, `system df` counting, the driver probe's leftovers, a huge bearer
//! token, a registry that trickles, and config/manifest size caps.
use std::time::Duration;

use crate::harness::{self, TestBox, images};
use crate::hostile::{assert_check_clean, assert_store_clean, entries, hostile_ref};

/// Depth of the tree the container makes: its host path is longer than PATH_MAX (4096), it
/// is deeper than the descriptor limit box runs with below (busybox sh cannot `cd` into a
/// path longer than PATH_MAX, so not much deeper).
const DEPTH: u32 = 2000;
/// The soft descriptor limit box runs with in the deep-tree tests (a common default is
/// 1024; the test process's own may be higher).
const NOFILE: u32 = 256;

fn trash(tb: &TestBox) -> std::path::PathBuf {
    tb.root().join("containers/.trash")
}

/// The container makes a tree `DEPTH` levels deep under /d with a subordinate-owned file
/// and a mode-0 directory at the bottom.
fn deep_script() -> String {
    format!(
        "cd / && i=0 && while [ $i -lt {DEPTH} ]; do mkdir d && cd d || exit 1; i=$((i+1)); done && \
         touch f && chown 1000:1000 f . && mkdir w && chmod 000 w"
    )
}

#[track_caller]
fn assert_gone(tb: &TestBox, name: &str) {
    let ps = tb.cmd(["ps", "-a", "--format", "{{.Names}}"]).run();
    ps.assert_success();
    assert!(
        !ps.out().lines().any(|l| l == name),
        "{name} is listed:\n{ps}"
    );
    assert_eq!(
        entries(&trash(tb)),
        Vec::<String>::new(),
        "containers/.trash is not empty"
    );
    assert_check_clean(tb, name);
}

#[test]
fn hostile_store_a_very_deep_tree_is_removed() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let image = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    let out = tb
        .cmd(["run", "--name", "deep", &image, "sh", "-c", &deep_script()])
        .timeout(Duration::from_secs(300))
        .run();
    out.assert_success();
    let rm = tb
        .sh(&format!("ulimit -n {NOFILE} && exec \"$BOX\" rm deep"))
        .timeout(Duration::from_secs(300))
        .run();
    harness::note(&format!("rm of a {DEPTH}-deep tree: {:.1?}", rm.duration));
    rm.assert_success();
    assert_gone(&tb, "deep");

    // The same with --rm: the watcher deletes the tree after box returns.
    let run = tb
        .sh(&format!(
            "ulimit -n {NOFILE} && exec \"$BOX\" run --rm --name deeprm \"$1\" sh -c \"$2\""
        ))
        .arg(&image)
        .arg(deep_script())
        .timeout(Duration::from_secs(300))
        .run();
    run.assert_success();
    harness::lab::until(
        "the watcher empties containers/.trash",
        Duration::from_secs(120),
        || entries(&trash(&tb)).is_empty(),
    );
    assert_gone(&tb, "deeprm");
}

/// Simulate a removal killed between the retire (rename into .trash) and the delete.
fn retire_by_hand(tb: &TestBox, name: &str) -> std::path::PathBuf {
    let id = tb
        .cmd(["inspect", "--format", "{{.Id}}", name])
        .run()
        .assert_success()
        .out()
        .to_string();
    assert_eq!(id.len(), 64, "an id: {id}");
    let containers = tb.root().join("containers");
    let trash = containers.join(".trash");
    if !trash.exists() {
        std::fs::create_dir(&trash).unwrap();
        let u = tb.user();
        std::os::unix::fs::chown(&trash, Some(u.uid), Some(u.gid)).unwrap();
    }
    let dest = containers.join(".trash").join(&id);
    std::fs::rename(containers.join(&id), &dest).unwrap();
    std::fs::remove_file(containers.join("names").join(name)).unwrap();
    dest
}

fn df_containers_total(tb: &TestBox) -> String {
    let df = tb.cmd(["system", "df"]).run();
    df.assert_success();
    df.out()
        .lines()
        .find(|l| l.starts_with("Containers"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no Containers row:\n{df}"))
        .to_string()
}

#[test]
fn hostile_store_trash_leftovers_are_seen_and_reclaimed() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let image = env.image(images::ALPINE);
    let script = "mkdir -p /x/y && touch /x/y/f && chown -R 1000:1000 /x && chmod 000 /x/y";
    for name in ["left1", "left2"] {
        tb.cmd(["run", "--name", name, &image, "sh", "-c", script])
            .run()
            .assert_success();
    }
    assert_eq!(df_containers_total(&tb), "2", "two containers");
    let first = retire_by_hand(&tb, "left1");
    let second = retire_by_hand(&tb, "left2");
    // Neither names/ nor .trash/ is a container.
    assert_eq!(df_containers_total(&tb), "0", "no container is left");

    let check = tb.cmd(["system", "check"]).run();
    check.assert_success();
    for p in [&first, &second] {
        assert!(
            check.stdout.contains(&format!("leftover: {}", p.display())),
            "system check reports {}:\n{check}",
            p.display()
        );
    }
    harness::note(&format!("check: {}", check.out().replace('\n', " | ")));
    assert!(first.exists() && second.exists(), "a check removes nothing");

    // prune reclaims it...
    let prune = tb.cmd(["system", "prune", "-f"]).run();
    prune.assert_success();
    assert!(
        !first.exists() && !second.exists(),
        "system prune empties the trash:\n{prune}"
    );

    // ...and so does check --repair.
    tb.cmd(["run", "--name", "left3", &image, "sh", "-c", script])
        .run()
        .assert_success();
    let third = retire_by_hand(&tb, "left3");
    let repair = tb.cmd(["system", "check", "--repair"]).run();
    repair.assert_success();
    assert!(
        !third.exists(),
        "check --repair empties the trash:\n{repair}"
    );
    assert_gone(&tb, "left3");
}

#[test]
fn hostile_store_df_counts_only_containers() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let image = env.image(images::ALPINE);
    tb.cmd(["create", "--name", "one", &image, "true"])
        .run()
        .assert_success();
    tb.cmd(["run", "--rm", &image, "true"])
        .run()
        .assert_success();
    assert_eq!(df_containers_total(&tb), "1");
}

#[test]
fn hostile_store_info_leaves_no_probe_dir() {
    let env = require_env!();
    let tb = env.test_box();
    tb.cmd(["info"]).run().assert_success();
    let left: Vec<String> = entries(&tb.runroot())
        .into_iter()
        .filter(|e| e.starts_with(".probe-"))
        .collect();
    assert!(
        left.is_empty(),
        "box info left {left:?} in {}",
        tb.runroot().display()
    );
}

/// `box pull -q` of a hostile registry scenario with short timeouts: exit 125, one line
/// naming the image, nothing left behind.
fn pull_fails(scenario: &str) -> Option<(TestBox, crate::harness::Outcome)> {
    let env = harness::env()?;
    let tb = env.test_box();
    let reference = hostile_ref(env, scenario);
    let out = tb
        .cmd(["pull", "-q", &reference])
        .env("BOX_REGISTRY_TIMEOUT", crate::hostile::REGISTRY_TIMEOUT)
        .env("BOX_REGISTRY_STALL_TIMEOUT", "2")
        .timeout(Duration::from_secs(120))
        .run();
    out.assert_code(125).assert_one_line_error();
    assert!(
        out.err().starts_with("box: ") && out.err().contains(&reference),
        "the error names the image:\n{out}"
    );
    harness::note(&format!("{scenario}: {:.1?}: {}", out.duration, out.err()));
    assert_store_clean(&tb, scenario);
    Some((tb, out))
}

#[test]
fn hostile_store_trickling_blob_stalls() {
    require_env!();
    let Some((tb, out)) = pull_fails("trickle") else {
        return;
    };
    let (status, body) = crate::hostile::http_get(
        crate::hostile::hostile_registry(tb.env()),
        "/v2/hostile/trickle/manifests/latest",
    );
    assert_eq!(status, 200);
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let digest = m["layers"][0]["digest"].as_str().unwrap();
    out.stderr_contains("stalled")
        .stderr_contains(&format!("blob {digest}"))
        .stderr_contains("BOX_REGISTRY_STALL_TIMEOUT");
}

#[test]
fn hostile_store_trickling_manifest_stalls() {
    require_env!();
    let Some((_tb, out)) = pull_fails("tricklemanifest") else {
        return;
    };
    out.stderr_contains("stalled")
        .stderr_contains("manifest of")
        .stderr_contains("BOX_REGISTRY_STALL_TIMEOUT");
}

#[test]
fn hostile_store_huge_token_is_refused() {
    require_env!();
    let Some((_tb, out)) = pull_fails("bigtoken") else {
        return;
    };
    out.stderr_contains("token")
        .stderr_contains("too large")
        .stderr_lacks("try again");
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

/// A tar of `files` (name, bytes), in order.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tiny layer and an image config for it, padded with `pad` bytes of whitespace (still
/// valid JSON).
fn layer_and_config(pad: usize) -> (Vec<u8>, Vec<u8>) {
    let layer = tar_of(&[("hello", b"hello\n")]);
    let mut config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .unwrap();
    config.extend(std::iter::repeat_n(b' ', pad));
    (layer, config)
}

/// An OCI archive whose config is `pad` bytes longer than needed.
fn oci_archive(pad: usize) -> Vec<u8> {
    let (layer, config) = layer_and_config(pad);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(&layer), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha256(&manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "latest"}}],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha256(b)[7..]);
    let (lp, cp, mp) = (blob(&layer), blob(&config), blob(&manifest));
    tar_of(&[
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        ("index.json", &index),
        (&mp, &manifest),
        (&cp, &config),
        (&lp, &layer),
    ])
}

/// A docker-archive whose manifest.json is `pad` bytes longer than needed.
fn docker_archive(pad: usize) -> Vec<u8> {
    let (layer, config) = layer_and_config(0);
    let mut manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["localhost/padded:latest"],
        "Layers": ["layer.tar"],
    }]))
    .unwrap();
    manifest.extend(std::iter::repeat_n(b' ', pad));
    tar_of(&[
        ("manifest.json", &manifest),
        ("config.json", &config),
        ("layer.tar", &layer),
    ])
}

#[test]
fn hostile_store_load_caps_config_and_manifest_sizes() {
    let env = require_env!();
    let tb = env.test_box();
    // Small ones load: the archives themselves are fine.
    for (name, bytes) in [
        ("ok-oci.tar", oci_archive(0)),
        ("ok-docker.tar", docker_archive(0)),
    ] {
        let p = tb.write(name, bytes);
        tb.cmd(["load", "-q", "-i"]).arg(&p).run().assert_success();
    }
    tb.cmd(["rmi", "-a", "-f"]).run().assert_success();
    let config_limit = 16usize << 20;
    let manifest_limit = 4usize << 20;
    let cases = [
        (
            "big-config.tar",
            oci_archive(config_limit),
            "config sha256:",
        ),
        (
            "big-manifest.tar",
            docker_archive(manifest_limit),
            "manifest.json",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = tb.write(name, bytes);
        let out = tb.cmd(["load", "-q", "-i"]).arg(&p).run();
        out.assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle)
            .stderr_contains("larger than");
        harness::note(&format!("{name}: {}", out.err()));
        assert_store_clean(&tb, name);
    }
}
