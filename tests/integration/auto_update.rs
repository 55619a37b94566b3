//! `box auto-update` without systemd, as boxtest: which containers of systemd units
//! (`BOX_SYSTEMD_UNIT`, `io.containers.autoupdate`) have a newer image in the registry or
//! locally (`--dry-run`), and that an update without a user manager fails cleanly.
//! (Restarts and rollbacks under a real systemd: tests/vm.)
use std::process::Command;

use crate::harness::images;
use crate::harness::lab::Lab;

fn copy(from: &str, to: &str) {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{from}"))
        .arg(format!("docker://{to}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dry_run_finds_newer_images_in_the_registry_and_locally() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let app = env.image(&format!("au-{}/app:latest", std::process::id()));
    copy(&env.image(images::ALPINE), &app);
    lab.run(&["pull", "-q", "--tls-verify=false", &app])
        .assert_success();
    let unit = |name: &str, policy: &str| {
        lab.tb
            .cmd([
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                name,
                "-l",
                &format!("io.containers.autoupdate={policy}"),
                &app,
                "sleep",
                "300",
            ])
            .env("BOX_SYSTEMD_UNIT", format!("{name}.service"))
            .run()
            .assert_success();
    };
    unit("reg", "registry");
    unit("loc", "local");
    let fmt = "{{.Unit}} {{.ContainerName}} {{.Policy}} {{.Updated}}";
    lab.run(&[
        "auto-update",
        "--dry-run",
        "--tls-verify=false",
        "--format",
        fmt,
    ])
    .assert_success()
    .stdout_is("loc.service loc local false\nreg.service reg registry false");
    // The table, as podman's.
    lab.run(&["auto-update", "--dry-run", "--tls-verify=false"])
        .assert_success()
        .stdout_contains("UNIT")
        .stdout_contains("UPDATED");

    // Another image under the name in the registry: the registry container is pending.
    copy(&env.image(images::LAYERS), &app);
    lab.run(&[
        "auto-update",
        "--dry-run",
        "--tls-verify=false",
        "--format",
        fmt,
    ])
    .assert_success()
    .stdout_is("loc.service loc local false\nreg.service reg registry pending");
    // And locally: pulled, the local one is pending too.
    lab.run(&["pull", "-q", "--tls-verify=false", &app])
        .assert_success();
    lab.run(&[
        "auto-update",
        "--dry-run",
        "--tls-verify=false",
        "--format",
        fmt,
    ])
    .assert_success()
    .stdout_is("loc.service loc local pending\nreg.service reg registry pending");

    // A labelled container outside any unit: said, one line, 125 at the end.
    lab.run(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "stray",
        "-l",
        "io.containers.autoupdate=registry",
        &app,
        "sleep",
        "300",
    ])
    .assert_success();
    let out = lab.run(&[
        "auto-update",
        "--dry-run",
        "--tls-verify=false",
        "--format",
        fmt,
    ]);
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("stray");

    // A real update needs the user's systemd: without it, failed (and said), exit 125.
    lab.run(&["rm", "-f", "stray"]).assert_success();
    let out = lab.run(&["auto-update", "--tls-verify=false", "--format", fmt]);
    out.assert_code(125);
    assert!(
        out.out().contains("reg.service reg registry failed"),
        "{out}"
    );
}
