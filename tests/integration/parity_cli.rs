//! podman/docker command-line parity, as boxtest: `container`/`image`/`volume exists`
//! (0, 1, 125, silent), `untag` (podman's semantics), `version --format`, and the
//! `container` and `image` groups carrying every container and image command.
use std::time::Duration;

use crate::harness::lab::{Lab, until};
use crate::harness::{self, Outcome};

#[track_caller]
fn silent(out: &Outcome, code: i32) {
    out.assert_code(code);
    assert!(
        out.out().is_empty() && out.err().is_empty(),
        "exists prints nothing:\n{out}"
    );
}

/// The names `box images` shows for `image`, as `repo:tag`, sorted.
fn names_of(lab: &Lab, image: &str) -> Vec<String> {
    let out = lab.run(&["image", "inspect", "--format", "{{json .RepoTags}}", image]);
    out.assert_success();
    let mut v: Vec<String> = serde_json::from_str(out.out()).unwrap();
    v.sort();
    v
}

#[test]
fn exists_untag_and_the_group_commands_share_one_store() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let image = lab.image.clone();

    // container exists: by name and id prefix, silent; 1 when missing; 125 on usage errors.
    silent(&lab.run(&["container", "exists", "made"]), 1);
    let out = lab.run(&[
        "container",
        "create",
        "--name",
        "made",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo from-made; exit 3",
    ]);
    out.assert_success();
    let id = out.out().to_string();
    silent(&lab.run(&["container", "exists", "made"]), 0);
    silent(&lab.run(&["container", "exists", &id[..12]]), 0);
    lab.run(&["container", "exists", "a", "b"])
        .assert_code(125)
        .assert_one_line_error();
    lab.run(&["container", "exists"])
        .assert_code(125)
        .assert_one_line_error();

    // The container group: ps/ls/list, start -a (the container's status), wait, rename,
    // inspect, rm: the same commands as the top-level ones.
    for list in ["ps", "ls", "list"] {
        lab.run(&["container", list, "-a", "--format", "{{.Names}}"])
            .assert_success()
            .stdout_contains("made");
    }
    lab.run(&["container", "start", "-a", "made"])
        .assert_code(3)
        .stdout_contains("from-made");
    lab.run(&["container", "wait", "made"])
        .assert_success()
        .stdout_is("3");
    lab.run(&["container", "rename", "made", "renamed"])
        .assert_success();
    silent(&lab.run(&["container", "exists", "made"]), 1);
    lab.run(&[
        "container",
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        "renamed",
    ])
    .assert_success()
    .stdout_is("3");
    lab.run(&["container", "rm", "renamed"]).assert_success();
    silent(&lab.run(&["container", "exists", "renamed"]), 1);
    lab.run(&[
        "container",
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo hi; exit 4",
    ])
    .assert_code(4)
    .stdout_is("hi");
    // A running one: logs, exec, top, kill, through the group.
    let out = lab.run(&[
        "container",
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo up-log; exec sleep 300",
    ]);
    out.assert_success();
    until("the log line", Duration::from_secs(10), || {
        lab.run(&["container", "logs", "up"]).out() == "up-log"
    });
    lab.run(&["container", "exec", "up", "cat", "/etc/alpine-release"])
        .assert_success()
        .stdout_is("3.20.3");
    lab.run(&["container", "top", "up"])
        .assert_success()
        .stdout_contains("sleep 300");
    lab.run(&["container", "kill", "up"]).assert_success();
    lab.run(&["container", "wait", "up"])
        .assert_success()
        .stdout_is("137");
    lab.run(&["container", "prune", "-f"]).assert_success();
    silent(&lab.run(&["container", "exists", "up"]), 1);

    // image exists: name, short id; 1 when missing; 125 for a name that cannot be one.
    silent(&lab.run(&["image", "exists", &image]), 0);
    let short = lab.run(&["images", "-q", &image]);
    short.assert_success();
    let short = short.out().to_string();
    silent(&lab.run(&["image", "exists", &short]), 0);
    silent(&lab.run(&["image", "exists", "nope:1"]), 1);
    lab.run(&["image", "exists", "Bad Name!"])
        .assert_code(125)
        .assert_one_line_error();

    // volume exists.
    silent(&lab.run(&["volume", "exists", "pv"]), 1);
    lab.run(&["volume", "create", "pv"]).assert_success();
    silent(&lab.run(&["volume", "exists", "pv"]), 0);
    lab.run(&["volume", "rm", "pv"]).assert_success();
    silent(&lab.run(&["volume", "exists", "pv"]), 1);

    // image save/load through the group.
    let tar = lab.tb.work().join("alpine.tar");
    let tar = tar.to_str().unwrap();
    lab.run(&["image", "save", "-o", tar, &image])
        .assert_success();
    lab.run(&["image", "load", "-q", "-i", tar])
        .assert_success();
    silent(&lab.run(&["image", "exists", &image]), 0);

    // untag: only the names given; an unknown name fails before any is removed; no names:
    // every name, and the image stays.
    lab.run(&["tag", &image, "one:1", "two:2"]).assert_success();
    let all = names_of(&lab, &short);
    assert_eq!(all.len(), 3, "{all:?}");
    lab.run(&["untag", "one:1", "two:2", "nope:9"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("nope:9");
    assert_eq!(names_of(&lab, &short), all, "a failed untag removed names");
    lab.run(&["image", "untag", "one:1", "two:2"])
        .assert_success()
        .stdout_is("");
    silent(&lab.run(&["image", "exists", "two:2"]), 1);
    silent(&lab.run(&["image", "exists", "one:1"]), 0);
    lab.run(&["untag", "missing:1"])
        .assert_code(125)
        .assert_one_line_error();
    lab.run(&["untag", "one:1"]).assert_success();
    assert!(names_of(&lab, &short).is_empty());
    silent(&lab.run(&["image", "exists", &short]), 0);
    silent(&lab.run(&["image", "exists", &image]), 1);
    lab.run(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
        .assert_success()
        .stdout_contains(&format!("<none>:<none> {short}"));
}

/// `box version`: podman's layout and field names.
#[test]
fn version_like_podman() {
    let env = require_env!();
    let tb = env.test_box();
    let out = tb.cmd(["version"]).run();
    out.assert_success();
    let lines: Vec<&str> = out.out().lines().collect();
    assert_eq!(lines[0], "Client:       box", "{out}");
    assert_eq!(
        lines[1],
        format!("Version:      {}", env!("CARGO_PKG_VERSION")),
        "{out}"
    );
    assert!(lines[2].starts_with("Rust Version: rustc 1."), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("Built:        20")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), "OS/Arch:      linux/amd64", "{out}");
    tb.cmd([
        "version",
        "--format",
        "{{.Client.Version}} {{.Client.OsArch}}",
    ])
    .run()
    .assert_success()
    .stdout_is(&format!("{} linux/amd64", env!("CARGO_PKG_VERSION")));
    for f in ["json", "{{json .}}"] {
        let out = tb.cmd(["version", "-f", f]).run();
        out.assert_success();
        let v: serde_json::Value = serde_json::from_str(out.out()).unwrap();
        assert_eq!(v["Client"]["Version"], env!("CARGO_PKG_VERSION"), "{out}");
        assert_eq!(v["Client"]["Os"], "linux", "{out}");
        assert!(v["Client"]["Built"].as_u64().unwrap() > 0, "{out}");
    }
    tb.cmd(["version", "--format", "{{.Client.Version"])
        .run()
        .assert_code(125)
        .assert_one_line_error();
}

/// The new commands complete: subcommand names, and the names each one takes.
#[test]
fn new_commands_complete() {
    let env = require_env!();
    let tb = env.test_box();
    let complete = |line: &[&str]| -> Vec<String> {
        let mut args = vec!["--", "box"];
        args.extend_from_slice(line);
        let out = tb.cmd(&args).env("BOX_COMPLETE", "fish").run();
        out.assert_success();
        out.out()
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    let top = complete(&[""]);
    for c in ["untag", "version", "container", "image"] {
        assert!(top.contains(&c.to_string()), "box <Tab> lacks {c}: {top:?}");
    }
    // Aliases are offered once typed.
    assert!(complete(&["container", "p"]).contains(&"ps".to_string()));
    let container = complete(&["container", ""]);
    for c in [
        "exists", "run", "create", "start", "stop", "restart", "rm", "list", "logs", "exec", "cp",
        "kill", "wait", "pause", "unpause", "rename", "top", "port", "stats", "inspect", "prune",
    ] {
        assert!(
            container.contains(&c.to_string()),
            "box container <Tab> lacks {c}: {container:?}"
        );
    }
    let image = complete(&["image", ""]);
    for c in [
        "list", "pull", "remove", "prune", "inspect", "tag", "untag", "exists", "save", "load",
        "import",
    ] {
        assert!(
            image.contains(&c.to_string()),
            "box image <Tab> lacks {c}: {image:?}"
        );
    }
    assert!(complete(&["volume", ""]).contains(&"exists".to_string()));
    // Live names: a volume for `volume exists`.
    tb.cmd(["volume", "create", "compl-vol"])
        .run()
        .assert_success();
    let vols = complete(&["volume", "exists", ""]);
    assert!(vols.contains(&"compl-vol".to_string()), "{vols:?}");
    harness::note("box container/image/volume exists complete live names");
}
