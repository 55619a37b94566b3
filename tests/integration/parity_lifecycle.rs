//! podman parity of the lifecycle commands, as boxtest: rm -t/-i/-f/--depend and the
//! refusal to remove a container others joined, stop/kill/start/restart --all, --filter,
//! --cidfile, --ignore, start -a -i, wait --condition and on a created container, the
//! SIGKILL fallback warning and the `stopping` state, and what stop/kill/rm print.
use std::time::{Duration, Instant};

use crate::harness::lab::{Lab, until};

const SLEEP: &[&str] = &["sleep", "300"];
/// A shell that ignores SIGTERM, as PID 1 of its container.
const DEAF: &[&str] = &["sh", "-c", "trap '' TERM; while true; do sleep 1; done"];
/// One that exits on SIGTERM (within a second: the shell waits for its `sleep 1`).
const POLITE: &[&str] = &[
    "sh",
    "-c",
    "trap 'exit 0' TERM; while true; do sleep 1; done",
];

/// `web` (no network) and `client`, which joined web's network.
fn joined(lab: &Lab) -> (String, String) {
    let web = lab.detach(&["--name", "web"], SLEEP);
    let out = lab.run(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "container:web",
        &lab.image,
        "sleep",
        "300",
    ]);
    out.assert_success();
    (web, out.out().trim().to_string())
}

#[test]
fn rm_refuses_a_container_others_joined() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    joined(&lab);
    for args in [&["rm", "-f", "web"][..], &["rm", "-f", "-t", "0", "web"]] {
        lab.run(args)
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("dependent containers (client)")
            .stderr_contains("box rm --depend web");
    }
    assert_eq!(lab.status("web"), "running");
    // Once the dependent is gone, web goes.
    lab.run(&["rm", "-f", "client"])
        .assert_success()
        .stdout_is("client\n");
    lab.run(&["rm", "-f", "web"])
        .assert_success()
        .stdout_is("web\n");
}

#[test]
fn rm_depend_removes_the_dependents_first() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let (web, client) = joined(&lab);
    // Running ones still need -f.
    lab.run(&["rm", "--depend", "web"])
        .assert_code(2)
        .stderr_contains("is running");
    lab.run(&["rm", "--depend", "-f", "web"])
        .assert_success()
        .stdout_is(&format!("{client}\n{web}\n"));
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
}

#[test]
fn rm_all_removes_joined_containers_too() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    joined(&lab);
    lab.run(&["rm", "-a", "-f"]).assert_success();
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
}

#[test]
fn rm_of_a_missing_container_with_force_or_ignore_is_not_an_error() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&["rm", "nope"])
        .assert_code(1)
        .assert_one_line_error();
    lab.run(&["rm", "-f", "nope"])
        .assert_success()
        .stdout_is("");
    lab.run(&["create", "--name", "there", &lab.image, "true"])
        .assert_success();
    lab.run(&["rm", "-i", "nope", "there"])
        .assert_success()
        .stdout_is("there\n");
}

#[test]
fn rm_force_time_sends_the_stop_signal_first() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(&["--name", "deaf"], DEAF);
    let start = Instant::now();
    lab.run(&["rm", "-f", "-t", "1", "deaf"])
        .assert_success()
        .stdout_is("deaf\n");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "rm -f -t 1 waited {:?} for SIGTERM",
        start.elapsed()
    );
    // A container that exits on SIGTERM goes at once.
    lab.detach(&["--name", "polite"], POLITE);
    lab.run(&["rm", "-f", "-t", "30", "polite"])
        .assert_success()
        .stdout_is("polite\n");
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
}

#[test]
fn stop_resorting_to_sigkill_says_so_and_is_stopping_meanwhile() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let id = lab.detach(&["--name", "deaf"], DEAF);
    let stop = lab.tb.cmd(["stop", "-t", "3", "deaf"]).spawn();
    until("the stopping state", Duration::from_secs(3), || {
        lab.status("deaf") == "stopping"
    });
    lab.run(&["ps", "--format", "{{.Names}} {{.State}} {{.Status}}"])
        .assert_success()
        .stdout_is("deaf stopping Stopping\n");
    lab.run(&["ps", "-q", "--filter", "status=stopping"])
        .assert_success()
        .stdout_is(&format!("{}\n", &id[..12]));
    lab.run(&["inspect", "--format", "{{.State.Running}}", "deaf"])
        .assert_success()
        .stdout_is("false\n");
    let out = stop.wait();
    out.assert_success().stdout_is("deaf\n").stderr_contains(
        "StopSignal SIGTERM failed to stop container deaf in 3 seconds, resorting to SIGKILL",
    );
    assert_eq!(lab.status("deaf"), "exited");
    // A container that obeys its stop signal: no warning.
    lab.detach(&["--name", "polite"], POLITE);
    lab.run(&["stop", "-t", "5", "polite"])
        .assert_success()
        .stdout_is("polite\n")
        .stderr_lacks("SIGKILL");
}

#[test]
fn stop_kill_rm_print_what_was_typed() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let a = lab.detach(&["--name", "aa"], SLEEP);
    let b = lab.detach(&["--name", "bb"], SLEEP);
    lab.run(&["kill", "-s", "USR1", &a[..12], "bb"])
        .assert_success()
        .stdout_is(&format!("{}\nbb\n", &a[..12]));
    lab.run(&["stop", "-t", "0", &b[..7], "aa"])
        .assert_success()
        .stdout_is(&format!("{}\naa\n", &b[..7]));
    lab.run(&["rm", &a, "bb"])
        .assert_success()
        .stdout_is(&format!("{a}\nbb\n"));
}

#[test]
fn stop_all_filter_cidfile_and_ignore() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let one = lab.detach(&["--name", "one", "--label", "tier=x"], SLEEP);
    let two = lab.detach(&["--name", "two"], SLEEP);
    let three = lab.detach(&["--name", "three"], SLEEP);
    // --filter: the full ids of the matches.
    lab.run(&["stop", "-t", "0", "--filter", "label=tier=x"])
        .assert_success()
        .stdout_is(&format!("{one}\n"));
    assert_eq!(lab.status("one"), "exited");
    assert_eq!(lab.status("two"), "running");
    lab.run(&["stop", "--filter", "name=nomatch"])
        .assert_success()
        .stdout_is("");
    lab.run(&["stop", "--filter", "name=two", "two"])
        .assert_code(125);
    // --cidfile: the id it holds.
    let cid = lab.tb.write("two.cid", format!("{two}\n"));
    lab.run(&["stop", "-t", "0", "--cidfile", cid.to_str().unwrap()])
        .assert_success()
        .stdout_is(&format!("{two}\n"));
    lab.run(&["stop", "--cidfile", "/nonexistent.cid"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("cidfile");
    // --ignore: a missing container is no error.
    lab.run(&["stop", "nope"])
        .assert_code(125)
        .assert_one_line_error();
    lab.run(&["stop", "-i", "-t", "0", "nope", "three"])
        .assert_success()
        .stdout_is("three\n");
    // --all: every container, stopped ones too, by full id (as podman).
    let out = lab.run(&["stop", "-a", "-t", "0"]);
    out.assert_success();
    let mut ids: Vec<&str> = out.out().lines().collect();
    ids.sort();
    let mut want = vec![one.as_str(), two.as_str(), three.as_str()];
    want.sort();
    assert_eq!(ids, want, "{out}");
    lab.run(&["stop", "-a", "one"]).assert_code(125);
}

#[test]
fn kill_all_and_cidfile() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let one = lab.detach(&["--name", "one"], SLEEP);
    let two = lab.detach(&["--name", "two"], SLEEP);
    lab.run(&["create", "--name", "idle", &lab.image, "true"])
        .assert_success();
    let cid = lab.tb.write("one.cid", &one);
    lab.run(&["kill", "--cidfile", cid.to_str().unwrap()])
        .assert_success()
        .stdout_is(&format!("{one}\n"));
    until("one exited", Duration::from_secs(5), || {
        lab.status("one") == "exited"
    });
    // --all: only the running ones.
    lab.run(&["kill", "-a"])
        .assert_success()
        .stdout_is(&format!("{two}\n"));
    // (kill returns once the signal is sent, not when the container is gone)
    until("two exited", Duration::from_secs(5), || {
        lab.status("two") == "exited"
    });
    lab.run(&["kill", "-a"]).assert_success().stdout_is("");
}

#[test]
fn start_all_and_filter() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let mut ids = Vec::new();
    for name in ["s1", "s2"] {
        let out = lab.run(&[
            "create",
            "--network",
            "none",
            "--name",
            name,
            &lab.image,
            "sleep",
            "300",
        ]);
        out.assert_success();
        ids.push(out.out().trim().to_string());
    }
    lab.run(&["start", "--filter", "name=s2"])
        .assert_success()
        .stdout_is(&format!("{}\n", ids[1]));
    assert_eq!(lab.status("s1"), "created");
    assert_eq!(lab.status("s2"), "running");
    let out = lab.run(&["start", "--all"]);
    out.assert_success();
    let mut got: Vec<&str> = out.out().lines().collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids, "{out}");
    assert_eq!(lab.status("s1"), "running");
    lab.run(&["start", "--all", "s1"]).assert_code(125);
}

#[test]
fn start_attach_interactive_gives_stdin() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "create",
        "--network",
        "none",
        "--name",
        "cat",
        &lab.image,
        "cat",
    ])
    .assert_success();
    lab.tb
        .cmd(["start", "-a", "cat"])
        .stdin("hello\n")
        .run()
        .assert_success()
        .stdout_is("");
    lab.tb
        .cmd(["start", "-a", "-i", "cat"])
        .stdin("hello\n")
        .run()
        .assert_success()
        .stdout_is("hello\n");
}

#[test]
fn wait_on_a_created_container_and_conditions() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "create",
        "--network",
        "none",
        "--name",
        "cc",
        &lab.image,
        "sh",
        "-c",
        "sleep 1; exit 3",
    ])
    .assert_success();
    // Never started: 0 at once (podman), and -1 for a condition other than stopped/exited.
    lab.tb
        .cmd(["wait", "cc"])
        .timeout(Duration::from_secs(10))
        .run()
        .assert_success()
        .stdout_is("0\n");
    lab.run(&["wait", "--condition", "created", "cc"])
        .assert_success()
        .stdout_is("-1\n");
    lab.run(&["wait", "--condition", "bogus", "cc"])
        .assert_failure();
    let running = lab
        .tb
        .cmd(["wait", "--condition", "running", "-i", "50ms", "cc"])
        .spawn();
    lab.run(&["start", "cc"]).assert_success();
    running.wait().assert_success().stdout_is("-1\n");
    lab.run(&["wait", "--condition", "exited", "cc"])
        .assert_success()
        .stdout_is("3\n");
}

#[test]
fn restart_all_restarts_every_container() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let up = lab.detach(&["--name", "up"], SLEEP);
    let done = lab.detach(&["--name", "done"], &["true"]);
    until("done exited", Duration::from_secs(5), || {
        lab.status("done") == "exited"
    });
    let done_started = lab
        .run(&["inspect", "--format", "{{.State.StartedAt}}", "done"])
        .out()
        .to_string();
    let out = lab.run(&["restart", "-a", "-t", "0"]);
    out.assert_success();
    let mut got: Vec<&str> = out.out().lines().collect();
    got.sort();
    let mut want = vec![up.as_str(), done.as_str()];
    want.sort();
    assert_eq!(got, want, "{out}");
    assert_eq!(lab.status("up"), "running");
    until("done ran again", Duration::from_secs(5), || {
        lab.run(&["inspect", "--format", "{{.State.StartedAt}}", "done"])
            .out()
            != done_started
    });
}

/// The rm family's exit statuses, as podman documents them (rm, rmi, volume rm, pod rm,
/// network rm): 1 when a thing named does not exist and nothing else failed (0 with -f), 2
/// when one is running or in use; every failure said, the one that decides the status last.
#[test]
fn rm_family_exit_statuses_are_podmans() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for (args, code) in [
        (&["rm", "nope"][..], 1),
        (&["rmi", "nope:1"], 1),
        (&["rmi", "-f", "nope:1"], 0),
        (&["volume", "rm", "nope"], 1),
        (&["volume", "rm", "-f", "nope"], 0),
        (&["pod", "rm", "nope"], 1),
        (&["pod", "rm", "-f", "nope"], 0),
        (&["network", "rm", "nope"], 1),
        (&["network", "rm", "-f", "nope"], 0),
        // Not of the rm family: a missing container is box's error.
        (&["stop", "nope"], 125),
    ] {
        let out = lab.run(args);
        out.assert_code(code);
        if code != 0 {
            out.assert_one_line_error().stderr_contains("nope");
        } else {
            assert_eq!(out.err(), "", "{args:?}: nothing to say");
        }
    }
    lab.run(&["volume", "create", "vol"]).assert_success();
    lab.detach(&["--name", "web", "-v", "vol:/data"], SLEEP);
    let out = lab.run(&["rm", "web", "nope"]);
    out.assert_code(2);
    let lines: Vec<&str> = out.err().lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.err());
    assert!(lines[0].contains("no such container: nope"), "{lines:?}");
    assert!(lines[1].contains("web is running"), "{lines:?}");
    lab.run(&["rmi", &lab.image])
        .assert_code(2)
        .assert_one_line_error()
        .stderr_contains("in use by container web");
    lab.run(&["volume", "rm", "vol"])
        .assert_code(2)
        .assert_one_line_error()
        .stderr_contains("in use");
    lab.run(&["rm", "-f", "web"]).assert_success();
    lab.run(&["volume", "rm", "vol"]).assert_success();
}

/// podman's `logs` flags: several containers (each line prefixed with the short id, or the
/// name with -n), --latest, --until, --tail=-1 (all).
#[test]
fn logs_of_several_containers_names_latest_until() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let one = lab.detach(
        &["--name", "l1"],
        &["sh", "-c", "echo a1; echo a2; sleep 300"],
    );
    let two = lab.detach(&["--name", "l2"], &["sh", "-c", "echo b1; sleep 300"]);
    until("both logged", Duration::from_secs(5), || {
        lab.run(&["logs", "l1"]).out().lines().count() == 2
            && lab.run(&["logs", "l2"]).out().lines().count() == 1
    });
    lab.run(&["logs", "l1", "l2"])
        .assert_success()
        .stdout_is(&format!(
            "{} a1\n{} a2\n{} b1\n",
            &one[..12],
            &one[..12],
            &two[..12]
        ));
    lab.run(&["logs", "-n", "--tail", "1", "l1", "l2"])
        .assert_success()
        .stdout_is("l1 a2\nl2 b1\n");
    // One container: no prefix, even with -n.
    lab.run(&["logs", "-n", "--tail=-1", "l1"])
        .assert_success()
        .stdout_is("a1\na2\n");
    lab.run(&["logs", "-l"]).assert_success().stdout_is("b1\n");
    lab.run(&["logs", "--until", "1h", "l1"])
        .assert_success()
        .stdout_is("");
    lab.run(&["logs", "--until", "soon", "l1"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("--until");
    lab.run(&["logs", "l1", "nope"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("nope");
}

/// `box attach`: a detached container's output from now on until it exits, box exiting as
/// it did; a signal box gets goes to the container (--sig-proxy, podman's default); a
/// container that is not running is refused.
#[test]
fn attach_follows_until_exit_and_proxies_signals() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // It waits for a file before speaking, so attach is there first.
    lab.detach(
        &["--name", "talk"],
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out; echo err >&2; exit 3",
        ],
    );
    let attached = lab.tb.cmd(["attach", "talk"]).spawn();
    proxying(attached.pid());
    // (it opens the log right after blocking the signals it forwards)
    std::thread::sleep(Duration::from_millis(100));
    lab.run(&["exec", "talk", "touch", "/tmp/go"])
        .assert_success();
    let out = attached.wait();
    out.assert_code(3).stdout_is("out\n").stderr_contains("err");
    lab.run(&["attach", "talk"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not running");

    lab.detach(
        &["--name", "trap"],
        &[
            "sh",
            "-c",
            "trap 'echo got INT; exit 7' INT; while true; do sleep 0.05; done",
        ],
    );
    let attached = lab.tb.cmd(["attach", "-l"]).spawn();
    proxying(attached.pid());
    attached.signal(libc::SIGINT);
    let out = attached.wait();
    out.assert_code(7).stdout_is("got INT\n");
}

/// Wait until box `pid` blocks SIGINT (attach's signal proxy is set up).
fn proxying(pid: i32) {
    until("attach to forward signals", Duration::from_secs(10), || {
        std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
                .is_some_and(|m| m & (1 << (libc::SIGINT - 1)) != 0)
        })
    });
}
