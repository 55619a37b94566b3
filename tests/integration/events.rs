//! `box events` without a daemon, as boxtest: a container's whole life in the per-user log
//! (written by the invocations that cause each event), `--since`/`--until`, `--filter`,
//! `--format` ('{{json .}}' and templates), `--stream=false`, following new events with
//! inotify, and concurrent writers.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::lab::{Lab, until};

fn unix_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// `events --stream=false` with `extra` flags: its stdout lines.
fn past(lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["events", "--stream=false"];
    args.extend_from_slice(extra);
    let out = lab.run(&args);
    out.assert_success();
    out.out().lines().map(String::from).collect()
}

#[test]
fn a_containers_whole_life() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // pull (by Lab::new): an image event.
    let pulls = past(
        &lab,
        &[
            "--filter",
            "type=image",
            "--format",
            "{{.Status}} {{.Name}}",
        ],
    );
    assert!(
        pulls
            .iter()
            .any(|l| l.starts_with("pull ") && l.contains("alpine")),
        "{pulls:?}"
    );

    let id = lab.detach(&["--name", "ev", "--label", "app=t"], &["sleep", "300"]);
    lab.run(&["exec", "ev", "sh", "-c", "exit 3"])
        .assert_code(3);
    let mid = unix_now();
    lab.run(&["stop", "-t", "0", "ev"]).assert_success();
    until("died", Duration::from_secs(10), || {
        past(&lab, &["--filter", "event=died"]).len() == 1
    });
    lab.run(&["rename", "ev", "ev2"]).assert_success();
    lab.run(&["rm", "ev2"]).assert_success();

    // The whole life, in order.
    let statuses = past(
        &lab,
        &[
            "--filter",
            &format!("container={id}"),
            "--format",
            "{{.Status}}",
        ],
    );
    let want = [
        "create",
        "init",
        "start",
        "exec",
        "exec_died",
        "died",
        "cleanup",
        "stop",
        "rename",
        "remove",
    ];
    let mut at = 0;
    for s in &statuses {
        if at < want.len() && s == want[at] {
            at += 1;
        }
    }
    assert_eq!(at, want.len(), "want {want:?} in order, got {statuses:?}");

    // podman's default line: time, type, status, id, (image=, name=, labels).
    let lines = past(&lab, &["--filter", "event=start"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert!(l.contains(" +0000 UTC container start "), "{l}");
    assert!(l.contains(&format!("start {id} (image=")), "{l}");
    assert!(l.ends_with(", name=ev, app=t)"), "{l}");
    // --no-trunc=false: the short id.
    let short = past(&lab, &["--filter", "event=start", "--no-trunc=false"]);
    assert!(
        short[0].contains(&format!("start {} (", &id[..12])),
        "{short:?}"
    );

    // '{{json .}}': podman's JSON objects; died carries the exit code.
    let json = past(
        &lab,
        &[
            "--filter",
            "container=ev",
            "--filter",
            "event=died",
            "--format",
            "{{json .}}",
        ],
    );
    assert_eq!(json.len(), 1, "{json:?}");
    let v: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
    assert_eq!(v["ID"], id.as_str());
    assert_eq!(v["Name"], "ev");
    assert_eq!(v["Type"], "container");
    assert_eq!(v["Status"], "died");
    assert_eq!(v["ContainerExitCode"], 137, "stop -t 0 kills: {v}");
    assert_eq!(v["Attributes"]["app"], "t");
    let exec_died = past(
        &lab,
        &[
            "--filter",
            "event=exec_died",
            "--format",
            "{{.ContainerExitCode}}",
        ],
    );
    assert_eq!(exec_died, ["3"]);

    // --since/--until split the life at `mid`.
    let after = past(&lab, &["--since", &mid, "--format", "{{.Status}}"]);
    assert!(after.contains(&"died".to_string()), "{after:?}");
    assert!(!after.contains(&"create".to_string()), "{after:?}");
    let before = past(&lab, &["--until", &mid, "--format", "{{.Status}}"]);
    assert!(before.contains(&"create".to_string()), "{before:?}");
    assert!(!before.contains(&"died".to_string()), "{before:?}");
    // Durations, as podman: the last hour has everything, "0s" ago nothing yet.
    assert!(past(&lab, &["--since", "1h"]).len() >= want.len());
    assert!(past(&lab, &["--since", "1h", "--until", "1h"]).is_empty());

    // Filters: one key's values are alternatives, different keys must all match.
    let two = past(
        &lab,
        &[
            "--filter",
            "event=create",
            "--filter",
            "event=remove",
            "--filter",
            "label=app=t",
        ],
    );
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(
        past(
            &lab,
            &["--filter", "event=create", "--filter", "label=app=x"]
        )
        .is_empty()
    );
    assert!(
        !past(
            &lab,
            &["--filter", "image=alpine", "--filter", "event=create"]
        )
        .is_empty()
    );

    // Bad input: one line, 125.
    for bad in [
        &["events", "--since", "yesterday-ish"][..],
        &["events", "--filter", "colour=red"],
        &["events", "--format", "{{.Status"],
    ] {
        lab.run(bad).assert_code(125).assert_one_line_error();
    }
}

#[test]
fn stream_follows_new_events_until_until() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let end = SystemTime::now() + Duration::from_secs(4);
    let end = end.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let since = unix_now();
    let streamer = lab
        .tb
        .cmd([
            "events",
            "--since",
            &since,
            "--until",
            &format!("{end:.3}"),
            "--filter",
            "container=follow",
            "--format",
            "{{.Type}} {{.Status}} {{.Name}}",
        ])
        .spawn();
    // Once it watches the log (an inotify descriptor), everything else comes by following.
    let pid = streamer.pid();
    until("the inotify watch", Duration::from_secs(10), || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("inotify"))
            })
    });
    lab.run(&["create", "--name", "follow", &lab.image, "true"])
        .assert_success();
    lab.run(&["rm", "follow"]).assert_success();
    let out = streamer.wait();
    out.assert_success();
    assert_eq!(
        out.out().lines().collect::<Vec<_>>(),
        ["container create follow", "container remove follow"],
        "{out}"
    );
}

#[test]
fn volume_events_and_concurrent_writers() {
    let env = require_env!();
    let tb = env.test_box();
    // 6 writers at once, 5 volumes each: every line whole.
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let names: Vec<String> = (0..5).map(|i| format!("v{w}x{i}")).collect();
            let script = names
                .iter()
                .map(|n| format!("\"$BOX\" volume create {n} >/dev/null"))
                .collect::<Vec<_>>()
                .join(" && ");
            tb.sh(&script).spawn()
        })
        .collect();
    for w in writers {
        w.wait().assert_success();
    }
    tb.cmd(["volume", "rm", "v0x0"]).run().assert_success();
    tb.cmd(["volume", "prune", "-f"]).run().assert_success();
    let log = tb.runroot().join("events").join("events.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut creates = 0;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a torn line {line:?}: {e}"));
        if v["Status"] == "create" {
            creates += 1;
        }
    }
    assert_eq!(creates, 30, "{text}");
    let out = tb
        .cmd(["events", "--stream=false", "--filter", "volume=v0x0"])
        .run();
    out.assert_success();
    let lines: Vec<&str> = out.out().lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].ends_with(" volume create v0x0"), "{out}");
    assert!(lines[1].ends_with(" volume remove v0x0"), "{out}");
    let pruned = tb
        .cmd([
            "events",
            "--stream=false",
            "--filter",
            "event=prune",
            "--format",
            "{{.Name}}",
        ])
        .run();
    assert_eq!(
        pruned.assert_success().out().lines().count(),
        29,
        "{pruned}"
    );
    // --events-backend=none records nothing.
    tb.cmd(["--events-backend", "none", "volume", "create", "quiet"])
        .run()
        .assert_success();
    tb.cmd(["events", "--stream=false", "--filter", "volume=quiet"])
        .run()
        .assert_success()
        .stdout_is("");
}
