//! Image names as a podman user's scripts expect them (issue 17): a local name without a
//! registry is `localhost/NAME:TAG`, a short name finds a local image whose repository ends
//! with it (as podman's lookup), and a container records the image name it was run with.
use crate::harness::lab::Lab;

#[test]
fn tag_without_a_registry_is_local_and_found_by_its_short_name() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&["tag", &lab.image, "myapp:1"]).assert_success();
    lab.run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .assert_success()
        .stdout_contains("localhost/myapp:1")
        .stdout_lacks("docker.io/library/myapp");
    // The short name finds it (run, inspect), as podman's local lookup does.
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "myapp:1",
        "cat",
        "/etc/alpine-release",
    ])
    .assert_success()
    .stdout_is("3.20.3\n");
    lab.run(&["inspect", "--format", "{{.Id}}", "localhost/myapp:1"])
        .assert_success();
}

#[test]
fn a_container_records_the_image_name_it_was_run_with() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let other = format!("{}/other/alpine:v1", env.registry());
    lab.run(&["tag", &lab.image, &other]).assert_success();
    lab.run(&[
        "create",
        "--name",
        "by-other",
        "--network",
        "none",
        &other,
        "true",
    ])
    .assert_success();
    lab.run(&["ps", "-a", "--format", "{{.Image}} {{.Names}}"])
        .assert_success()
        .stdout_contains(&format!("{other} by-other"));
    lab.run(&["inspect", "--format", "{{.ImageName}}", "by-other"])
        .assert_success()
        .stdout_is(&format!("{other}\n"));
    lab.run(&[
        "create",
        "--name",
        "by-first",
        "--network",
        "none",
        &lab.image,
        "true",
    ])
    .assert_success();
    lab.run(&["inspect", "--format", "{{.ImageName}}", "by-first"])
        .assert_success()
        .stdout_is(&format!("{}\n", lab.image));
}

/// As podman: `-p` with `--network host|none` is discarded with a warning (not an error),
/// and `run -t` without a terminal on stdin warns but runs.
#[test]
fn run_warns_where_podman_warns() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for net in ["host", "none"] {
        lab.run(&[
            "run",
            "--rm",
            "--network",
            net,
            "-p",
            "18099:80",
            &lab.image,
            "true",
        ])
        .assert_success()
        .stderr_contains("port mappings have been discarded");
    }
    lab.run(&["run", "--rm", "-t", "--network", "none", &lab.image, "true"])
        .assert_success()
        .stderr_contains("the input device is not a TTY");
}

/// A host port that is taken: exit 126 (podman's code), one line naming it.
#[test]
fn a_taken_host_port_exits_126() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    lab.run(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        &lab.image,
        "true",
    ])
    .assert_code(126)
    .assert_one_line_error()
    .stderr_contains("already in use");
    drop(listener);
}

#[test]
fn a_short_name_finds_a_local_image_whose_repository_ends_with_it() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // The test image is REGISTRY/PATH/NAME:latest: NAME and PATH/NAME find it, without a pull.
    let repo = lab.image.rsplit_once(':').unwrap().0;
    let repo = repo.split_once('/').unwrap().1.to_string();
    let last = repo.rsplit('/').next().unwrap().to_string();
    for short in [last.as_str(), repo.as_str()] {
        lab.run(&["image", "exists", short]).assert_success();
        let out = lab.run(&["run", "--rm", "--network", "none", short, "echo", "ok"]);
        out.assert_success().stdout_is("ok\n");
        assert!(!out.err().contains("Trying to pull"), "{short}: {out}");
        lab.run(&["images", "--format", "{{.Repository}}", short])
            .assert_success()
            .stdout_contains(lab.image.rsplit_once(':').unwrap().0);
    }
    // Another tag or a partial name is not found; two names of one image are one image
    // (two images ending alike are ambiguous: see storage's unit tests).
    lab.run(&["image", "exists", &format!("{last}:nosuch")])
        .assert_code(1);
    lab.run(&["image", "exists", &last[1..]]).assert_code(1);
    lab.run(&["tag", &lab.image, &format!("127.0.0.1:1/other/{last}")])
        .assert_success();
    lab.run(&["image", "exists", &last]).assert_success();
}
