//! The store: pull (OCI, v2s2, zstd, index), rootless unpack with ownership, whiteouts,
//! opaque dirs, hostile layers, parallel pulls, crash leftovers, images/tag/rmi/check.
//! Every `box` runs as boxtest; the checks of the layer directories run as root.
use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{TestBox, images};

fn store(tb: &TestBox) -> PathBuf {
    tb.root().join("storage")
}

/// The image record of `id` as written by box.
fn record(tb: &TestBox, id: &str) -> serde_json::Value {
    let p = store(tb).join("images").join(format!("{id}.json"));
    let text = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_slice(&text).unwrap()
}

fn pull(tb: &TestBox, image: &str) -> String {
    let out = tb.cmd(["pull", image]).run();
    out.assert_success();
    let id = out.out().lines().last().unwrap_or("").to_string();
    assert_eq!(id.len(), 64, "pull prints the image id last:\n{out}");
    id
}

fn layer_diff(tb: &TestBox, diff_id: &str) -> PathBuf {
    store(tb)
        .join("layers")
        .join(diff_id.trim_start_matches("sha256:"))
        .join("diff")
}

fn diff_ids(tb: &TestBox, id: &str) -> Vec<String> {
    record(tb, id)["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn subuid_start(user: &str) -> u32 {
    std::fs::read_to_string("/etc/subuid")
        .unwrap()
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(user)).then(|| f.next().unwrap().parse().unwrap())
        })
        .expect("boxtest has a subuid range")
}

#[test]
fn pulls_alpine_as_oci_v2s2_and_zstd_into_one_image() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let oci = pull(&tb, &env.image(images::ALPINE));
    let v2s2 = pull(&tb, &env.image(images::ALPINE_V2S2));
    let zstd = pull(&tb, &env.image(images::ALPINE_ZSTD));
    assert_eq!(oci, v2s2, "same config, same image id");
    assert_eq!(oci, zstd);
    let ids = diff_ids(&tb, &oci);
    assert_eq!(ids.len(), 1);
    assert_eq!(
        entries(&store(&tb).join("layers")).len(),
        1,
        "one layer copy"
    );
    let diff = layer_diff(&tb, &ids[0]);
    let busybox = std::fs::symlink_metadata(diff.join("bin/busybox")).unwrap();
    let user = tb.user();
    assert_eq!(
        busybox.uid(),
        user.uid,
        "root in the image is the user on the host"
    );
    assert!(diff.join("etc/alpine-release").is_file());
    // shadow is root:shadow(42) in alpine: group 42 maps to subgid start + 41.
    let shadow = std::fs::symlink_metadata(diff.join("etc/shadow")).unwrap();
    assert_eq!(shadow.gid(), subuid_start(&user.name) + 41);

    let out = tb.cmd(["images"]).run();
    out.assert_success()
        .stdout_contains("REPOSITORY")
        .stdout_contains("IMAGE ID")
        .stdout_contains(&oci[..12])
        .stdout_contains("v2s2")
        .stdout_contains("zstd");
    tb.cmd(["images", "-q"])
        .run()
        .assert_success()
        .stdout_is(&oci[..12]);
    tb.cmd(["images", "-q", "--no-trunc"])
        .run()
        .assert_success()
        .stdout_is(&format!("sha256:{oci}"));
    let json = tb.cmd(["images", "--format", "json"]).run();
    json.assert_success();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v[0]["Id"], oci);
}

#[test]
fn second_pull_downloads_nothing() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    pull(&tb, &env.image(images::ALPINE));
    let out = tb.cmd(["pull", &env.image(images::ALPINE)]).run();
    out.assert_success().stderr_contains("already exists");
    assert!(
        !out.stderr.contains(" done ("),
        "a blob was downloaded again:\n{out}"
    );
    tb.cmd(["pull", "-q", &env.image(images::ALPINE)])
        .run()
        .assert_success();
    let q = tb.cmd(["pull", "-q", &env.image(images::ALPINE)]).run();
    assert!(
        q.stderr.trim().is_empty(),
        "-q prints nothing on stderr:\n{q}"
    );
}

#[test]
fn index_picks_the_host_platform_or_the_one_asked_for() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let amd = pull(&tb, &env.image(images::ALPINE_INDEX));
    let rec = record(&tb, &amd);
    assert_eq!(rec["config"]["architecture"], "amd64", "{rec}");
    let out = tb
        .cmd([
            "pull",
            "--platform",
            "linux/arm64",
            &env.image(images::ALPINE_INDEX),
        ])
        .run();
    out.assert_success();
    let arm = out.out().lines().last().unwrap().to_string();
    assert_ne!(arm, amd);
    assert_eq!(record(&tb, &arm)["config"]["architecture"], "arm64");
    // The tag moved to the arm64 image; the amd64 one is left without a name.
    let amd_names = record(&tb, &amd)["names"].as_array().unwrap().len();
    assert_eq!(amd_names, 0);
}

#[test]
fn layers_keep_ownership_whiteouts_opaque_dirs_and_links() {
    let env = require_env!();
    let tb = env.test_box();
    let id = pull(&tb, &env.image(images::LAYERS));
    let ids = diff_ids(&tb, &id);
    assert_eq!(ids.len(), 3);
    let (l1, l2, l3) = (
        layer_diff(&tb, &ids[0]),
        layer_diff(&tb, &ids[1]),
        layer_diff(&tb, &ids[2]),
    );
    let sub = subuid_start(&tb.user().name);
    let user = tb.user();

    // Ownership: container uid N>0 is host subuid_start + N - 1; 0 is the user.
    let md = std::fs::symlink_metadata(l3.join("owned/user.txt")).unwrap();
    assert_eq!((md.uid(), md.gid()), (sub + 999, sub + 999));
    let md = std::fs::symlink_metadata(l3.join("owned/odd.txt")).unwrap();
    assert_eq!((md.uid(), md.gid()), (sub + 1233, sub + 5677));
    assert_eq!(md.mode() & 0o7777, 0o640);
    let md = std::fs::symlink_metadata(l1.join("home/user")).unwrap();
    assert_eq!(md.uid(), sub + 999);
    assert_eq!(
        std::fs::symlink_metadata(l1.join("etc/passwd"))
            .unwrap()
            .uid(),
        user.uid
    );

    // Whiteouts are 0/0 character devices; the opaque dir carries the overlay xattr.
    for w in [l2.join("base/remove-me.txt"), l2.join("whdir")] {
        let md = std::fs::symlink_metadata(&w).unwrap();
        assert!(
            md.file_type().is_char_device() && md.rdev() == 0,
            "{}",
            w.display()
        );
    }
    assert!(!l2.join("base/.wh.remove-me.txt").exists());
    assert!(!l2.join("opq/.wh..wh..opq").exists());
    assert!(boxctr::storage::whiteout::is_opaque(&l2.join("opq")));
    assert!(!boxctr::storage::whiteout::is_opaque(&l1.join("opq")));

    // Links, modes, fifo, xattr.
    let t = std::fs::metadata(l3.join("links/target.txt")).unwrap();
    let h = std::fs::metadata(l3.join("links/hardlink.txt")).unwrap();
    assert_eq!((t.ino(), t.nlink()), (h.ino(), 2));
    assert_eq!(
        std::fs::read_link(l3.join("links/abs-symlink")).unwrap(),
        Path::new("/links/target.txt")
    );
    assert_eq!(
        std::fs::read_link(l3.join("links/dangling")).unwrap(),
        Path::new("/nonexistent")
    );
    let suid = std::fs::metadata(l3.join("bin/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    assert_eq!(suid.uid(), user.uid);
    let sgid = std::fs::metadata(l3.join("bin/sgid")).unwrap();
    assert_eq!((sgid.mode() & 0o7777, sgid.gid()), (0o2755, sub + 5677));
    assert_eq!(
        std::fs::metadata(l3.join("sticky"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert!(
        std::fs::symlink_metadata(l3.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let x = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", "user.box.test"])
        .arg(l3.join("xattr.txt"))
        .output();
    if let Ok(x) = x
        && x.status.success()
    {
        assert_eq!(String::from_utf8_lossy(&x.stdout), "hello");
    }
    assert!(l3.join("becomes-file").is_file());
    assert!(entries(&store(&tb).join("tmp")).is_empty());
    tb.cmd(["system", "check"])
        .run()
        .assert_success()
        .stdout_contains("consistent");
}

#[test]
fn hostile_layers_fail_naming_the_entry_and_write_nothing_outside() {
    let env = require_env!();
    let target = Path::new(images::ESCAPE_HARDLINK_TARGET);
    let _ = std::fs::remove_file(images::ESCAPE_MARKER);
    std::fs::write(target, "original\n").unwrap();
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o666)).unwrap();
    let cases = [
        (images::EVIL_DOTDOT, "../escape"),
        (images::EVIL_ABS, "/tmp/box-escape-marker"),
        (images::EVIL_SYMLINK, "link/box-escape-marker"),
        (images::EVIL_HARDLINK, "host-link"),
        (images::EVIL, "escape"),
    ];
    for (image, entry) in cases {
        let tb = env.test_box();
        let out = tb.cmd(["pull", &env.image(image)]).run();
        out.assert_code(125)
            .stderr_contains("layer entry")
            .stderr_contains(entry);
        assert!(
            !Path::new(images::ESCAPE_MARKER).exists(),
            "{image} wrote outside the store"
        );
        assert!(!tb.root().join("escape").exists() && !tb.dir().join("escape").exists());
        assert_eq!(std::fs::read_to_string(target).unwrap(), "original\n");
        // Nothing half-done is visible: no layer, no image, no leftovers.
        assert!(entries(&store(&tb).join("layers")).is_empty(), "{image}");
        assert!(entries(&store(&tb).join("images")).is_empty(), "{image}");
        assert!(entries(&store(&tb).join("tmp")).is_empty(), "{image}");
    }
    let _ = std::fs::remove_file(target);
}

#[test]
fn eight_parallel_pulls_all_succeed_with_one_copy() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    let running: Vec<_> = (0..8)
        .map(|_| tb.cmd(["pull", "-q", &image]).spawn())
        .collect();
    let outs: Vec<_> = running.into_iter().map(|r| r.wait()).collect();
    let mut ids = BTreeSet::new();
    for o in &outs {
        o.assert_success();
        ids.insert(o.out().to_string());
    }
    assert_eq!(ids.len(), 1, "all pulls agree on the image id");
    assert_eq!(
        entries(&store(&tb).join("layers")).len(),
        3,
        "one copy per layer"
    );
    assert_eq!(entries(&store(&tb).join("images")).len(), 1);
    assert!(entries(&store(&tb).join("tmp")).is_empty());
}

#[test]
fn killed_pull_leaves_nothing_visible_and_the_next_pull_completes() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    for delay_ms in [30u64, 120, 300] {
        let mut r = tb.cmd(["pull", "-q", &image]).spawn();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if r.is_running() {
            r.signal(libc::SIGKILL);
        }
        let _ = r.wait();
        // Whatever is visible is complete: every layer dir has its layer.json.
        for l in entries(&store(&tb).join("layers")) {
            let p = store(&tb).join("layers").join(&l);
            assert!(p.join("layer.json").is_file() && p.join("diff").is_dir());
        }
        for i in entries(&store(&tb).join("images")) {
            let id = i.trim_end_matches(".json");
            for d in diff_ids(&tb, id) {
                assert!(layer_diff(&tb, &d).is_dir());
            }
        }
        // Clean the way for the next kill.
        tb.cmd(["rmi", "-a"]).run();
    }
    let r = tb.cmd(["pull", "-q", &image]).spawn();
    std::thread::sleep(Duration::from_millis(60));
    r.signal(libc::SIGKILL);
    let _ = r.wait();
    pull(&tb, &image);
    assert!(
        entries(&store(&tb).join("tmp")).is_empty(),
        "leftovers of the killed pull are cleaned: {:?}",
        entries(&store(&tb).join("tmp"))
    );
    tb.cmd(["system", "check"]).run().assert_success();
}

#[test]
fn tag_rmi_and_shared_layers() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let id = pull(&tb, &env.image(images::ALPINE));
    let layers_id = pull(&tb, &env.image(images::LAYERS));
    tb.cmd(["tag", &id[..12], "mine/alp:v1", "other:2"])
        .run()
        .assert_success();
    tb.cmd(["images"])
        .run()
        .assert_success()
        .stdout_contains("localhost/mine/alp")
        .stdout_contains("v1");
    // Removing one of several names only untags.
    tb.cmd(["rmi", "mine/alp:v1"])
        .run()
        .assert_success()
        .stdout_contains("Untagged: localhost/mine/alp:v1");
    tb.cmd(["images", "mine/alp"])
        .run()
        .assert_success()
        .stdout_lacks("v1");
    assert!(record(&tb, &id)["names"].as_array().unwrap().len() == 2);
    // A tag moves: `other:2` now names the layers image.
    tb.cmd(["tag", &layers_id, "other:2"])
        .run()
        .assert_success();
    let names = record(&tb, &id)["names"].clone();
    assert!(!names.to_string().contains("other:2"), "{names}");

    // Removing by id deletes the image and its layers; the other image is untouched.
    tb.cmd(["rmi", &id])
        .run()
        .assert_success()
        .stdout_contains(&format!("Deleted: sha256:{id}"));
    assert!(!store(&tb).join(format!("images/{id}.json")).exists());
    assert_eq!(entries(&store(&tb).join("layers")).len(), 3);
    tb.cmd(["rmi", "nope"]).run().assert_code(1);
    tb.cmd(["rmi", "other:2"]).run().assert_success();
    tb.cmd(["rmi", &env.image(images::LAYERS)])
        .run()
        .assert_success();
    assert!(entries(&store(&tb).join("layers")).is_empty());
    assert!(entries(&store(&tb).join("images")).is_empty());
    assert!(entries(&store(&tb).join("tmp")).is_empty());
    tb.cmd(["system", "check"]).run().assert_success();
}

#[test]
fn system_check_finds_and_repairs_damage() {
    let env = require_env!();
    let tb = env.test_box();
    let id = pull(&tb, &env.image(images::LAYERS));
    // Corrupt a blob and break a layer.
    let blob = store(&tb).join("blobs/sha256").join(&id);
    std::fs::write(&blob, "garbage").unwrap();
    let first = diff_ids(&tb, &id)[0].clone();
    std::fs::remove_file(
        store(&tb)
            .join("layers")
            .join(first.trim_start_matches("sha256:"))
            .join("layer.json"),
    )
    .unwrap();
    let out = tb.cmd(["system", "check"]).run();
    out.assert_code(125)
        .stdout_contains("corrupt")
        .stdout_contains("missing");
    tb.cmd(["system", "check", "--repair"])
        .run()
        .assert_success()
        .stdout_contains("repaired");
    tb.cmd(["system", "check"]).run().assert_success();
    // The image is gone; pulling it again restores it.
    assert!(!store(&tb).join(format!("images/{id}.json")).exists());
    assert_eq!(pull(&tb, &env.image(images::LAYERS)), id);
    tb.cmd(["system", "check"]).run().assert_success();
}

#[test]
fn prune_and_df() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let amd = pull(&tb, &env.image(images::ALPINE_INDEX));
    // Pulling arm64 under the same name leaves amd64 dangling.
    tb.cmd([
        "pull",
        "-q",
        "--platform",
        "linux/arm64",
        &env.image(images::ALPINE_INDEX),
    ])
    .run()
    .assert_success();
    tb.cmd(["system", "df"])
        .run()
        .assert_success()
        .stdout_contains("Images");
    tb.cmd(["image", "prune", "-f"])
        .run()
        .assert_success()
        .stdout_contains(&amd);
    assert!(!store(&tb).join(format!("images/{amd}.json")).exists());
    assert_eq!(entries(&store(&tb).join("images")).len(), 1);
    tb.cmd(["image", "prune", "-a", "-f"])
        .run()
        .assert_success();
    assert!(entries(&store(&tb).join("images")).is_empty());
    assert!(entries(&store(&tb).join("layers")).is_empty());
    assert!(entries(&store(&tb).join("blobs/sha256")).is_empty());
}

#[test]
fn save_load_and_import_round_trip() {
    let env = require_env!();
    let tb = env.test_box();
    let id = pull(&tb, &env.image(images::LAYERS));
    let docker = tb.work().join("d.tar");
    let oci = tb.work().join("o.tar");
    tb.cmd([
        "save",
        "-o",
        docker.to_str().unwrap(),
        &env.image(images::LAYERS),
    ])
    .run()
    .assert_success();
    tb.cmd([
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        &id,
    ])
    .run()
    .assert_success();
    for archive in [&docker, &oci] {
        tb.cmd(["rmi", "-a"]).run().assert_success();
        assert!(entries(&store(&tb).join("layers")).is_empty());
        tb.cmd(["load", "-i", archive.to_str().unwrap()])
            .run()
            .assert_success()
            .stdout_contains(&env.image(images::LAYERS));
        tb.cmd(["images", "-q", "--no-trunc"])
            .run()
            .assert_success()
            .stdout_is(&format!("sha256:{id}"));
        let l3 = layer_diff(&tb, &diff_ids(&tb, &id)[2]);
        let md = std::fs::symlink_metadata(l3.join("owned/user.txt")).unwrap();
        assert_eq!(md.uid(), subuid_start(&tb.user().name) + 999);
    }

    // A root filesystem tarball becomes a one-layer image.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_uid(1000);
    h.set_gid(1000);
    b.append_data(&mut h, "etc/hello", &b"hello\n"[..]).unwrap();
    let tarball = tb.write("rootfs.tar", b.into_inner().unwrap());
    let out = tb
        .cmd([
            "import",
            "--change",
            r#"CMD ["/bin/cat", "/etc/hello"]"#,
            tarball.to_str().unwrap(),
            "imported:v1",
        ])
        .run();
    out.assert_success();
    let new_id = out.out().trim_start_matches("sha256:").to_string();
    let rec = record(&tb, &new_id);
    assert_eq!(rec["config"]["config"]["Cmd"][1], "/etc/hello");
    let ids = diff_ids(&tb, &new_id);
    assert_eq!(ids.len(), 1);
    let hello = layer_diff(&tb, &ids[0]).join("etc/hello");
    assert_eq!(std::fs::read_to_string(&hello).unwrap(), "hello\n");
    assert_eq!(
        std::fs::symlink_metadata(&hello).unwrap().uid(),
        subuid_start(&tb.user().name) + 999
    );
    tb.cmd(["images", "imported"])
        .run()
        .assert_success()
        .stdout_contains("v1");
    assert!(entries(&store(&tb).join("tmp")).is_empty());
    tb.cmd(["system", "check"]).run().assert_success();
}

#[test]
fn pull_by_digest_and_find_by_digest() {
    let env = require_env!();
    let tb = env.test_box();
    let id = pull(&tb, &env.image(images::LAYERS));
    let repo_digest = record(&tb, &id)["repo_digests"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(repo_digest.contains("@sha256:"), "{repo_digest}");
    tb.cmd(["rmi", "-a"]).run().assert_success();
    assert_eq!(pull(&tb, &repo_digest), id);
    // Pulled by digest: no tag, but the digest reference finds it.
    assert!(record(&tb, &id)["names"].as_array().unwrap().is_empty());
    tb.cmd(["tag", &repo_digest, "bydigest:1"])
        .run()
        .assert_success();
    tb.cmd(["images", "--digests"])
        .run()
        .assert_success()
        .stdout_contains("bydigest");
}
