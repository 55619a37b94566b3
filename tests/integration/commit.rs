//! Containers into images, as boxtest: `box commit` (the new image runs with the changes,
//! its layer blob read independently with tar: owners, whiteouts), `box diff` (containers
//! and images), `box history`, `box export` (owners as the container sees them, refused on a
//! terminal), and the one-line errors.
use std::process::Command;

use crate::harness::lab::Lab;

const CHANGES: &str = "echo hi > /new; rm /etc/motd; mkdir /d && touch /d/x; chown 1000:1000 /d/x";

/// `tar -tv` of a file, as root (independent of box).
fn tar_list(args: &[&str], file: &std::path::Path) -> String {
    let out = Command::new("tar")
        .args(args)
        .arg(file)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar {args:?} {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `tar -tv` line of `name` (the last column).
fn line_of<'a>(listing: &'a str, name: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().last() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not in the archive:\n{listing}"))
}

#[test]
fn commit_diff_history_export() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        &lab.image,
        "sh",
        "-c",
        CHANGES,
    ])
    .assert_success();

    let diff = lab.run(&["diff", "c1"]);
    diff.assert_success()
        .stdout_is("A /d\nA /d/x\nC /etc\nD /etc/motd\nA /new\n");
    let json = lab.run(&["container", "diff", "--format", "json", "c1"]);
    json.assert_success();
    let v: serde_json::Value = serde_json::from_str(json.out()).unwrap();
    assert_eq!(v["deleted"], serde_json::json!(["/etc/motd"]), "{json}");
    assert_eq!(v["changed"], serde_json::json!(["/etc"]), "{json}");

    let commit = lab.run(&[
        "commit",
        "-m",
        "my changes",
        "-a",
        "Jane <jane@example.com>",
        "-c",
        "ENV GREETING=hello",
        "-c",
        "LABEL stage=test",
        "c1",
        "committed:1",
    ]);
    commit.assert_success();
    let id = commit.out().trim().to_string();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );

    // The new image runs with the changes.
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "committed:1",
        "sh",
        "-c",
        "cat /new; test -e /etc/motd || echo gone; stat -c %u:%g /d/x; echo $GREETING",
    ])
    .assert_success()
    .stdout_is("hi\ngone\n1000:1000\nhello\n");
    lab.run(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"stage\"}} {{.Author}}",
        "committed:1",
    ])
    .assert_success()
    .stdout_is("test Jane <jane@example.com>\n");

    // Its layer blob, read from the store with tar: container owners, an OCI whiteout.
    let record = lab.tb.root().join(format!("storage/images/{id}.json"));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let digest = record["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = lab
        .tb
        .root()
        .join("storage/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let listing = tar_list(&["--numeric-owner", "-tvzf"], &blob);
    assert!(
        line_of(&listing, "d/x").contains(" 1000/1000 "),
        "{listing}"
    );
    assert!(line_of(&listing, "new").contains(" 0/0 "), "{listing}");
    assert!(
        line_of(&listing, "etc/.wh.motd").starts_with('-'),
        "{listing}"
    );
    assert!(!listing.contains("etc/motd\n"), "{listing}");
    // The image's diff is its top layer's.
    lab.run(&["image", "diff", "committed:1"])
        .assert_success()
        .stdout_is("A /d\nA /d/x\nC /etc\nD /etc/motd\nA /new\n");

    // History: the new entry on top.
    let hist = lab.run(&["history", "committed:1"]);
    hist.assert_success();
    let lines: Vec<&str> = hist.out().lines().collect();
    assert!(lines[0].starts_with("IMAGE "), "{hist}");
    assert!(lines[1].starts_with(&id[..12]), "{hist}");
    assert!(lines[1].contains("my changes"), "{hist}");
    assert!(
        lines[1].contains("sh -c echo hi > /new; rm /etc/motd; mkdir /d ..."),
        "{hist}"
    );
    lab.run(&[
        "image",
        "history",
        "--no-trunc",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "committed:1",
    ])
    .assert_success()
    .stdout_contains(&format!("{id}|sh -c {CHANGES}|my changes\n"));
    let q = lab.run(&["history", "-q", "committed:1"]);
    q.assert_success();
    assert_eq!(q.out().lines().next(), Some(&id[..12]), "{q}");

    // Export: the merged root, owners as the container sees them.
    let exported = lab.tb.work().join("c1.tar");
    lab.run(&["export", "-o", exported.to_str().unwrap(), "c1"])
        .assert_success();
    let listing = tar_list(&["--numeric-owner", "-tvf"], &exported);
    assert!(
        line_of(&listing, "d/x").contains(" 1000/1000 "),
        "{listing}"
    );
    assert!(
        line_of(&listing, "bin/busybox").contains(" 0/0 "),
        "{listing}"
    );
    assert!(!listing.contains("etc/motd"), "{listing}");
    // To a pipe.
    lab.tb
        .sh("\"$BOX\" container export c1 | tar --numeric-owner -tvf - d/x")
        .run()
        .assert_success()
        .stdout_contains(" 1000/1000 ");
}

#[test]
fn commit_of_a_running_container_and_errors() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(
        &["--name", "live"],
        &["sh", "-c", "echo up > /up && exec sleep 300"],
    );
    crate::harness::lab::until("the file", std::time::Duration::from_secs(10), || {
        lab.run(&["exec", "live", "test", "-f", "/up"]).success()
    });
    let commit = lab.run(&["commit", "-q", "--pause", "live", "live:1"]);
    commit.assert_success();
    lab.run(&["run", "--rm", "--network", "none", "live:1", "cat", "/up"])
        .assert_success()
        .stdout_is("up\n");
    let out = lab.tb.work().join("live.tar");
    lab.run(&["export", "-o", out.to_str().unwrap(), "live"])
        .assert_success();
    let listing = tar_list(&["-tvf"], &out);
    line_of(&listing, "up");
    // /proc is a mount of its own: there, but empty.
    line_of(&listing, "proc/");
    assert!(!listing.contains("proc/self"), "{listing}");
    lab.run(&["rm", "-f", "live"]).assert_success();

    lab.run(&["commit", "nosuch", "x:1"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("no such container: nosuch");
    // vfs keeps no upper directory: refused, saying why; export still works.
    lab.run(&[
        "--storage-driver",
        "vfs",
        "create",
        "--name",
        "vf",
        "--network",
        "none",
        &lab.image,
        "true",
    ])
    .assert_success();
    lab.run(&["commit", "vf", "vf:1"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("vfs storage driver");
    lab.run(&["diff", "vf"])
        .assert_code(125)
        .stderr_contains("vfs storage driver");
    let vfs_tar = lab.tb.work().join("v.tar");
    lab.run(&["export", "-o", vfs_tar.to_str().unwrap(), "vf"])
        .assert_success();
    line_of(&tar_list(&["-tvf"], &vfs_tar), "bin/busybox");
    lab.run(&["diff", "nosuch"])
        .assert_code(125)
        .assert_one_line_error();
    lab.run(&["export", "-o", "/tmp/x.tar", "nosuch"])
        .assert_code(125)
        .assert_one_line_error();
    // A terminal on stdout is refused (script(1) gives box one).
    let Some(script) = crate::harness::which("script") else {
        crate::harness::skip("script(1) is not installed: cannot give box a terminal");
        return;
    };
    let tty = lab
        .tb
        .sh(&format!(
            "{} -qec '\"$BOX\" export nosuch; echo code=$?' /dev/null",
            script.display()
        ))
        .run();
    assert!(
        tty.out()
            .contains("refusing to write a tar archive to a terminal"),
        "{tty}"
    );
    assert!(tty.out().contains("code=125"), "{tty}");
}
