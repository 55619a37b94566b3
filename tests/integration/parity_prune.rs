//! Prune commands as podman's (issue 17): each offers only its own flags, asks on a terminal
//! unless -f, and refuses without -f when stdin is not a terminal (`echo n | box system prune`
//! deletes nothing).
use crate::harness::lab::Lab;

#[test]
fn prunes_ask_refuse_without_a_terminal_and_take_only_their_own_flags() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "create",
        "--name",
        "stopped",
        "--network",
        "none",
        &lab.image,
        "true",
    ])
    .assert_success();
    lab.run(&["volume", "create", "unused"]).assert_success();
    for cmd in [
        vec!["container", "prune"],
        vec!["volume", "prune"],
        vec!["image", "prune"],
        vec!["system", "prune"],
    ] {
        lab.tb
            .cmd(&cmd)
            .stdin("y\n")
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("--force");
    }
    lab.run(&["container", "exists", "stopped"])
        .assert_success();
    lab.run(&["volume", "exists", "unused"]).assert_success();
    // Flags another prune has are not offered here.
    lab.run(&["container", "prune", "--volumes"])
        .assert_code(125);
    lab.run(&["volume", "prune", "-a"]).assert_code(125);
    // With -f: done, in one size format.
    lab.run(&["container", "prune", "-f"])
        .assert_success()
        .stdout_contains("Total reclaimed space:");
    lab.run(&["volume", "prune", "-f"])
        .assert_success()
        .stdout_contains("unused")
        .stdout_contains("Total reclaimed space:");
    lab.run(&["container", "exists", "stopped"]).assert_code(1);
    lab.run(&["volume", "exists", "unused"]).assert_code(1);
}

/// `system reset` removes every container (a running one too), image and volume, and the
/// store itself; `system migrate` has nothing to do.
#[test]
fn system_reset_removes_everything_and_migrate_is_a_no_op() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(
        &["--name", "running", "-v", "kept:/data"],
        &["sleep", "300"],
    );
    lab.run(&["system", "migrate"])
        .assert_success()
        .stdout_contains("nothing to migrate");
    lab.run(&["system", "reset"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("--force");
    lab.run(&["container", "exists", "running"])
        .assert_success();
    lab.run(&["system", "reset", "-f"]).assert_success();
    assert!(!lab.tb.root().exists(), "the store is still there");
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
    lab.run(&["images", "-q"]).assert_success().stdout_is("");
    lab.run(&["volume", "ls", "-q"])
        .assert_success()
        .stdout_is("");
}
