//! User networks as boxtest: the records (`network create|ls|inspect|exists|rm|prune`), their
//! checks (overlapping subnets, bad gateways, reserved and taken names), and the honest
//! refusal to run a container on one (not supported yet), leaving nothing behind.
use crate::harness::lab::Lab;

#[test]
fn network_records_and_their_checks() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "backend"])
        .run()
        .assert_success()
        .stdout_is("backend\n");
    tb.cmd([
        "network",
        "create",
        "--subnet",
        "10.90.0.0/24",
        "--gateway",
        "10.90.0.254",
        "--internal",
        "--label",
        "tier=db",
        "dbnet",
    ])
    .run()
    .assert_success();
    tb.cmd([
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Subnets}} {{.Internal}}",
    ])
    .run()
    .assert_success()
    .stdout_is("backend 10.89.0.0/24 false\ndbnet 10.90.0.0/24 true\n");
    tb.cmd([
        "network",
        "inspect",
        "--format",
        "{{.network_interface}} {{(index .subnets 0).gateway}}",
        "dbnet",
    ])
    .run()
    .assert_success()
    .stdout_is("box1 10.90.0.254\n");
    tb.cmd(["network", "ls", "-q", "--filter", "label=tier=db"])
        .run()
        .assert_success()
        .stdout_is("dbnet\n");
    tb.cmd(["network", "exists", "backend"])
        .run()
        .assert_success();
    tb.cmd(["network", "exists", "nope"]).run().assert_code(1);

    // Bad input: one line, exit 125, nothing recorded.
    for (args, needle) in [
        (
            vec!["--subnet", "10.89.0.0/16", "clash"],
            "overlaps network backend",
        ),
        (
            vec!["--subnet", "10.91.0.1/24", "clash"],
            "host bits are set",
        ),
        (
            vec![
                "--subnet",
                "10.91.0.0/24",
                "--gateway",
                "10.92.0.1",
                "clash",
            ],
            "--gateway",
        ),
        (vec!["backend"], "exists already"),
        (vec!["host"], "reserved"),
        (vec!["--subnet", "fd00::/64", "clash"], "IPv6"),
    ] {
        let mut argv = vec!["network", "create"];
        argv.extend(args);
        tb.cmd(&argv)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
    tb.cmd(["network", "exists", "clash"]).run().assert_code(1);

    // Containers cannot join one yet: said plainly, and nothing is created.
    tb.cmd(["run", "--rm", "--network", "backend", &lab.image, "true"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("cannot join user networks yet");
    tb.cmd(["create", "--network", "nosuch", &lab.image, "true"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unknown network \"nosuch\"");
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");

    tb.cmd(["network", "rm", "backend"])
        .run()
        .assert_success()
        .stdout_is("backend\n");
    tb.cmd(["network", "rm", "backend"])
        .run()
        .assert_code(125)
        .stderr_contains("no such network: backend");
    tb.cmd(["network", "prune", "-f"]).run().assert_success();
    tb.cmd(["network", "ls", "-q"])
        .run()
        .assert_success()
        .stdout_is("");
}
