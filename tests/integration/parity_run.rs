//! podman parity of `box run`/`box create`, as boxtest: what a foreground container logs,
//! `top`'s descriptors, a repeated flag taking the last value, and run/create's flags
//! (one test per flag, several sharing a container where the assertions stay clear).
use crate::harness::lab::Lab;

/// `box run --network none [extra...] IMAGE cmd...`.
fn run_args<'a>(lab: &'a Lab, extra: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "--network", "none"];
    args.extend_from_slice(extra);
    args.push(&lab.image);
    args.extend_from_slice(cmd);
    args
}

#[test]
fn a_foreground_container_is_logged() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let cmd = ["sh", "-c", "echo out; echo err >&2; printf tail"];
    lab.run(&run_args(&lab, &["--name", "fg"], &cmd))
        .assert_success()
        .stdout_is("out\ntail")
        .stderr_contains("err");
    lab.run(&["logs", "fg"])
        .assert_success()
        .stdout_is("out\ntail")
        .stderr_contains("err\n");
    // `start -a` runs it again in the foreground: its output is appended.
    lab.run(&["start", "-a", "fg"])
        .assert_success()
        .stdout_is("out\ntail");
    let out = lab.run(&["logs", "fg"]);
    out.assert_success();
    assert_eq!(out.out().matches("out\n").count(), 2, "{out}");
    // With -t the terminal's output is logged (as stdout, with the pty's line ends).
    lab.run(&run_args(&lab, &["-t", "--name", "tty"], &["echo", "hi"]))
        .assert_success()
        .stdout_contains("hi");
    lab.run(&["logs", "tty"])
        .assert_success()
        .stdout_is("hi\r\n");
}

#[test]
fn top_takes_ps_and_aix_descriptors_with_podmans_headers() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(&["--name", "c"], &["sleep", "300"]);
    for words in [
        &["pid", "user", "args"][..],
        &["%p", "%U", "%a"],
        &["pid,user,args"],
    ] {
        let mut args = vec!["top", "c"];
        args.extend_from_slice(words);
        let out = lab.run(&args);
        out.assert_success();
        let lines: Vec<Vec<&str>> = out
            .out()
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["PID", "USER", "COMMAND"], "{out}");
        assert_eq!(lines[1], ["1", "root", "sleep", "300"], "{out}");
    }
    let out = lab.run(&[
        "top", "c", "hpid", "%C", "etime", "comm", "capeff", "seccomp",
    ]);
    out.assert_success();
    let header: Vec<&str> = out
        .out()
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|s| !s.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "HPID",
            "%CPU",
            "ELAPSED",
            "COMMAND",
            "EFFECTIVE CAPS",
            "SECCOMP"
        ],
        "{out}"
    );
    assert!(out.out().contains("filter"), "{out}");
    lab.run(&["top", "c", "pid", "bogus"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unknown descriptor: bogus");
    lab.run(&["top", "c", "-eo", "pid"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("no ps options (-eo)");
}

#[test]
fn image_inspect_prints_rootfs_as_docker() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let out = lab.run(&["image", "inspect", "-f", "{{.RootFS}}", &lab.image]);
    out.assert_success();
    let s = out.out().trim();
    assert!(
        s.starts_with("{layers [sha256:") && s.ends_with("]}"),
        "{out}"
    );
}

#[test]
fn a_repeated_flag_takes_the_last_value() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let out = lab.run(&run_args(
        &lab,
        &[
            "--rm", "-u", "1", "-u", "2", "-w", "/tmp", "-w", "/", "-e", "A=1", "-e", "B=2",
        ],
        &["sh", "-c", "echo $(id -u) $PWD $A$B"],
    ));
    out.assert_success().stdout_is("2 / 12\n");
}
