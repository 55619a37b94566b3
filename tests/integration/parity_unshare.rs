//! `box unshare`, `box mount` and `box unmount`, as podman's, as boxtest.
use crate::harness::lab::Lab;

#[test]
fn unshare_runs_as_root_of_the_namespace_and_mounts_containers() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let me = env.user(crate::harness::TestUser::Boxtest);
    lab.run(&["unshare", "id", "-u"])
        .assert_success()
        .stdout_is("0\n");
    let out = lab.run(&["unshare", "cat", "/proc/self/uid_map"]);
    out.assert_success();
    let first: Vec<&str> = out
        .out()
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(first, ["0", &me.uid.to_string(), "1"], "{out}");
    lab.run(&[
        "create",
        "--name",
        "c",
        "--network",
        "none",
        &lab.image,
        "true",
    ])
    .assert_success();
    let id = lab.id("c");
    let out = lab.run(&[
        "unshare",
        "sh",
        "-c",
        "p=$(\"$0\" mount c) && test -f $p/etc/alpine-release && echo mounted; \"$0\" mount; \"$0\" unmount c; \"$0\" mount | wc -l",
        env.box_bin().to_str().unwrap(),
    ]);
    out.assert_success()
        .stdout_contains("mounted\n")
        .stdout_contains(&format!("{} ", &id[..12]))
        .stdout_contains(&format!("{id}\n0\n"));
    // Outside: refused with the way in.
    lab.run(&["mount", "c"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("box unshare");
    lab.run(&["unshare", "sh", "-c", "exit 7"]).assert_code(7);
    lab.run(&["unshare", "no-such-command"]).assert_code(127);
}
