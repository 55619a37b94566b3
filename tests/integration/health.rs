//! Healthchecks without a daemon, as boxtest: the detached container's monitor runs the
//! check on schedule (starting → unhealthy → healthy, with FailingStreak and Log in
//! `inspect`, `(healthy)` in `ps`, `ps --filter health=`), `box healthcheck run` (0, 1,
//! 125), `--health-on-failure` kill and restart, `health_status` events, bad durations.
use std::time::Duration;

use serde_json::Value;

use crate::harness::lab::{Lab, until};

fn health(lab: &Lab, name: &str) -> Value {
    let out = lab.run(&["inspect", "--format", "{{json .State.Health}}", name]);
    out.assert_success();
    serde_json::from_str(out.out().trim()).unwrap()
}

fn health_status(lab: &Lab, name: &str) -> String {
    health(lab, name)["Status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn a_failing_check_that_starts_passing() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(
        &[
            "--name",
            "hc",
            "--health-cmd",
            "test -e /tmp/ok && echo fine || { echo missing; exit 1; }",
            "--health-interval",
            "1s",
            "--health-retries",
            "2",
        ],
        &["sleep", "300"],
    );
    // Before any result: starting.
    assert_eq!(health_status(&lab, "hc"), "starting");
    assert!(
        lab.ps_line("hc").contains("(starting)"),
        "{}",
        lab.ps_line("hc")
    );

    until("unhealthy", Duration::from_secs(20), || {
        health_status(&lab, "hc") == "unhealthy"
    });
    let h = health(&lab, "hc");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert_eq!(last["Output"], "missing\n", "{h}");
    assert!(last["Start"].as_str().unwrap().starts_with("20"), "{h}");
    assert!(
        lab.ps_line("hc").contains("(unhealthy)"),
        "{}",
        lab.ps_line("hc")
    );
    lab.run(&["ps", "-q", "--filter", "health=unhealthy"])
        .assert_success()
        .stdout_lacks("\n\n");
    assert_eq!(
        lab.run(&[
            "ps",
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Names}}"
        ])
        .out()
        .trim(),
        "hc"
    );
    assert_eq!(
        lab.run(&["ps", "--filter", "health=healthy", "--format", "{{.Names}}"])
            .out()
            .trim(),
        ""
    );
    // By hand: 1 and "unhealthy".
    lab.run(&["healthcheck", "run", "hc"])
        .assert_code(1)
        .stdout_is("unhealthy");

    // The check starts passing.
    lab.run(&["exec", "hc", "touch", "/tmp/ok"])
        .assert_success();
    until("healthy", Duration::from_secs(20), || {
        health_status(&lab, "hc") == "healthy"
    });
    let h = health(&lab, "hc");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "fine\n", "{h}");
    assert!(
        lab.ps_line("hc").contains("(healthy)"),
        "{}",
        lab.ps_line("hc")
    );
    lab.run(&["healthcheck", "run", "hc"])
        .assert_success()
        .stdout_is("");
    // podman's older name for the same object, and the configuration.
    lab.run(&["inspect", "--format", "{{.State.Healthcheck.Status}} {{.Config.Healthcheck.Retries}} {{index .Config.Healthcheck.Test 0}}", "hc"])
        .assert_success()
        .stdout_is("healthy 2 CMD-SHELL");

    // Every result is a health_status event.
    let out = lab.run(&[
        "events",
        "--stream=false",
        "--filter",
        "event=health_status",
        "--format",
        "{{.HealthStatus}}",
    ]);
    out.assert_success();
    let seen: Vec<&str> = out.out().lines().collect();
    assert!(
        seen.contains(&"unhealthy") && seen.contains(&"healthy"),
        "{out}"
    );
    lab.run(&["rm", "-f", "hc"]).assert_success();
}

#[test]
fn healthcheck_run_exit_codes() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // No schedule (disable): only by hand.
    lab.detach(
        &[
            "--name",
            "manual",
            "--health-cmd",
            "[\"true\"]",
            "--health-interval",
            "disable",
        ],
        &["sleep", "300"],
    );
    assert_eq!(health_status(&lab, "manual"), "starting");
    lab.run(&["healthcheck", "run", "manual"])
        .assert_success()
        .stdout_is("");
    assert_eq!(health_status(&lab, "manual"), "healthy");
    // Errors are box's: 125, one line.
    lab.detach(&["--name", "plain"], &["sleep", "300"]);
    lab.run(&["healthcheck", "run", "plain"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("no healthcheck");
    lab.run(&["healthcheck", "run", "nosuch"])
        .assert_code(125)
        .assert_one_line_error();
    lab.run(&["stop", "-t", "0", "manual"]).assert_success();
    lab.run(&["healthcheck", "run", "manual"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not running");
    // A check that outlives its timeout fails.
    lab.detach(
        &[
            "--name",
            "slow",
            "--health-cmd",
            "sleep 30",
            "--health-interval",
            "disable",
            "--health-timeout",
            "1s",
        ],
        &["sleep", "300"],
    );
    lab.run(&["healthcheck", "run", "slow"]).assert_code(1);
    let last = health(&lab, "slow")["Log"][0].clone();
    assert!(
        last["Output"]
            .as_str()
            .unwrap()
            .contains("exceeded timeout"),
        "{last}"
    );
}

#[test]
fn bad_health_flags_are_one_line_errors() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for bad in [
        &["--health-cmd", "true", "--health-interval", "10"][..],
        &["--health-cmd", "true", "--health-timeout", "1x"],
        &["--health-cmd", "true", "--health-start-period", "soon"],
        &["--health-cmd", "true", "--health-interval", "10ms"],
        &["--health-cmd", "true", "--health-retries", "0"],
        &["--health-cmd", "true", "--health-on-failure", "explode"],
        &["--health-cmd", "[\"unterminated"],
        &["--sdnotify", "healthy"],
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(bad);
        args.extend_from_slice(&[lab.image.as_str(), "true"]);
        lab.run(&args).assert_code(125).assert_one_line_error();
    }
    // Nothing was recorded.
    lab.run(&["ps", "-aq"]).assert_success().stdout_is("");
}

#[test]
fn on_failure_kill_and_restart() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let fails = [
        "--health-cmd",
        "false",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
    ];
    let mut kill = fails.to_vec();
    kill.extend_from_slice(&[
        "--name",
        "kk",
        "--health-on-failure",
        "kill",
        "--restart",
        "always",
    ]);
    lab.detach(&kill, &["sleep", "300"]);
    let mut restart = fails.to_vec();
    restart.extend_from_slice(&["--name", "rr", "--health-on-failure", "restart"]);
    lab.detach(&restart, &["sleep", "300"]);

    // kill: SIGKILLed once unhealthy, and stays down whatever --restart says.
    until("k killed", Duration::from_secs(20), || {
        lab.status("kk") == "exited"
    });
    lab.run(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}} {{.RestartCount}}",
        "kk",
    ])
    .assert_success()
    .stdout_is("137 0");

    // restart: the monitor starts it again (no --restart needed), starting afresh.
    until("r restarted", Duration::from_secs(30), || {
        lab.run(&["inspect", "--format", "{{.RestartCount}}", "rr"])
            .out()
            .trim()
            .parse::<u32>()
            .is_ok_and(|n| n >= 1)
    });
    until("r running again", Duration::from_secs(20), || {
        lab.status("rr") == "running"
    });
    let out = lab.run(&[
        "events",
        "--stream=false",
        "--filter",
        "container=rr",
        "--format",
        "{{.Status}}",
    ]);
    let starts = out.out().lines().filter(|l| *l == "start").count();
    assert!(starts >= 2, "{out}");
    lab.run(&["stop", "-t", "1", "rr"]).assert_success();
    assert_eq!(lab.status("rr"), "exited");
}

#[test]
fn sdnotify_healthy_sends_ready_at_the_first_healthy_result() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let sock_path = lab.tb.dir().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    let u = lab.tb.user();
    std::os::unix::fs::chown(&sock_path, Some(u.uid), Some(u.gid)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let out = lab
        .tb
        .cmd([
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "ready",
            "--sdnotify",
            "healthy",
            "--health-cmd",
            "test -e /tmp/ok",
            "--health-interval",
            "1s",
            &lab.image,
            "sh",
            "-c",
            "sleep 2; touch /tmp/ok; sleep 300",
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .run();
    out.assert_success();
    // Nothing while starting (the check fails for 2 s), then READY=1 once healthy.
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(msg.starts_with("READY=1\nMAINPID="), "{msg}");
    assert_eq!(health_status(&lab, "ready"), "healthy");
    let log = health(&lab, "ready")["Log"].clone();
    assert!(
        log.as_array().unwrap().iter().any(|p| p["ExitCode"] == 1),
        "it failed before it passed: {log}"
    );
}

#[test]
fn an_images_healthcheck_applies_unless_turned_off() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&["create", "--name", "base", &lab.image, "true"])
        .assert_success();
    lab.run(&[
        "commit",
        "-c",
        "HEALTHCHECK --interval=1s --retries=1 CMD test -e /etc/alpine-release",
        "base",
        "withcheck:1",
    ])
    .assert_success();
    lab.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Healthcheck}}",
        "withcheck:1",
    ])
    .assert_success();
    lab.run(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "imgcheck",
        "withcheck:1",
        "sleep",
        "300",
    ])
    .assert_success();
    until(
        "healthy by the image's check",
        Duration::from_secs(20),
        || health_status(&lab, "imgcheck") == "healthy",
    );
    lab.run(&[
        "inspect",
        "--format",
        "{{json .Config.Healthcheck.Test}}",
        "imgcheck",
    ])
    .assert_success()
    .stdout_is(r#"["CMD-SHELL","test -e /etc/alpine-release"]"#);
    // --no-healthcheck and --health-cmd none turn it off.
    for off in ["--no-healthcheck", "--health-cmd=none"] {
        lab.run(&[
            "create",
            "--name",
            &format!("off{}", off.len()),
            off,
            "withcheck:1",
        ])
        .assert_success();
        lab.run(&[
            "inspect",
            "--format",
            "{{.State.Health}}",
            &format!("off{}", off.len()),
        ])
        .assert_success()
        .stdout_is("<nil>");
    }
}

#[test]
fn a_foreground_container_is_checked_too() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // As the main process of a systemd unit: box run in the foreground, no monitor.
    let fg = lab
        .tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            "fg",
            "--health-cmd",
            "true",
            "--health-interval",
            "1s",
            &lab.image,
            "sleep",
            "300",
        ])
        .spawn();
    until("fg healthy", Duration::from_secs(20), || {
        lab.run(&["inspect", "--format", "{{.State.Health.Status}}", "fg"])
            .out()
            .trim()
            == "healthy"
    });
    lab.run(&["stop", "-t", "0", "fg"]).assert_success();
    fg.wait().assert_code(137);
}

#[test]
fn start_period_and_start_interval() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // Failures in the start period do not count: still starting, no streak.
    lab.detach(
        &[
            "--name",
            "sp",
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
            "--health-start-period",
            "1h",
        ],
        &["sleep", "300"],
    );
    // The start interval, not the (hour-long) interval, while starting.
    lab.detach(
        &[
            "--name",
            "si",
            "--health-cmd",
            "true",
            "--health-interval",
            "1h",
            "--health-start-period",
            "1h",
            "--health-start-interval",
            "1s",
        ],
        &["sleep", "300"],
    );
    until("two results for sp", Duration::from_secs(20), || {
        health(&lab, "sp")["Log"]
            .as_array()
            .is_some_and(|l| l.len() >= 2)
    });
    let h = health(&lab, "sp");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    until("si healthy", Duration::from_secs(20), || {
        health_status(&lab, "si") == "healthy"
    });
}

#[test]
fn healthcheck_run_takes_the_on_failure_action() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(
        &[
            "--name",
            "byhand",
            "--health-cmd",
            "false",
            "--health-interval",
            "disable",
            "--health-retries",
            "1",
            "--health-on-failure",
            "kill",
        ],
        &["sleep", "300"],
    );
    lab.run(&["healthcheck", "run", "byhand"])
        .assert_code(1)
        .stdout_is("unhealthy");
    until("byhand killed", Duration::from_secs(10), || {
        lab.status("byhand") == "exited"
    });
}
