//! cgroup v2 limits and systemd integration.
//!
//! On a host without delegated v2 controllers (this build machine: v1/v2 hybrid, no systemd)
//! every limit is refused with exit 125 and the fix, and a run without limits works. The real
//! thing — limits enforced in a delegated unit and from a login session, OOM kills, pids and
//! cpu throttling, Type=notify units — runs in a throwaway systemd VM: `tests/vm/run`
//! (skipped with a SKIP line where qemu/mmdebstrap cannot run; `BOX_VM=0` skips it too).
use std::process::Command;

use crate::harness::{TestBox, images, note, skip};

/// A store with alpine pulled.
fn lab(env: &'static crate::harness::Env) -> (TestBox, String) {
    let tb = env.test_box();
    let image = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    (tb, image)
}

/// The controllers boxtest can use for limits here, as `box info` reports them.
fn delegated(tb: &TestBox) -> Vec<String> {
    let out = tb.cmd(["info", "--format", "json"]).run();
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(out.out()).expect("box info json");
    v["cgroup"]["delegated"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn limits_are_refused_with_the_fix_where_nothing_is_delegated() {
    let env = require_env!(alpine);
    let (tb, image) = lab(env);
    let have = delegated(&tb);
    if !have.is_empty() {
        note(&format!(
            "this host delegates {have:?} to boxtest: the refusal is checked in the VM only"
        ));
        return;
    }
    for (flags, controller) in [
        (&["--memory", "64m"][..], "memory (--memory)"),
        (&["--cpus", "0.5"][..], "cpu (--cpus)"),
        (&["--pids-limit", "16"][..], "pids (--pids-limit)"),
        (&["--cpu-shares", "512"][..], "cpu (--cpu-shares)"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([image.as_str(), "true"]);
        tb.cmd(&args)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("cannot enforce")
            .stderr_contains(controller)
            .stderr_contains("/etc/systemd/system/user@.service.d/delegate.conf")
            .stderr_contains("Delegate=cpu cpuset io memory pids")
            .stderr_contains("systemd-run --user --scope -p Delegate=yes");
    }
    // Several limits: every missing controller is named.
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "16",
        &image,
        "true",
    ])
    .run()
    .assert_code(125)
    .stderr_contains("memory (--memory), pids (--pids-limit)");
}

#[test]
fn runs_without_limits_where_nothing_is_delegated() {
    let env = require_env!(alpine);
    let (tb, image) = lab(env);
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "echo",
        "no limits, no cgroup needed",
    ])
    .run()
    .assert_success()
    .stdout_contains("no limits, no cgroup needed");
    // "No limit" spelled out is no limit either.
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "-1",
        "--cpu-quota=-1",
        &image,
        "true",
    ])
    .run()
    .assert_success();
}

/// `--cgroups=no-conmon|split` where nothing is delegated (this host: hybrid, no
/// systemd): no-conmon runs (box stays put, the container has no scope to go to) but a
/// limit is refused; split is refused with the fix, as no cgroup can be made below
/// box's. Both are recorded: inspect shows podman's HostConfig.Cgroups and CgroupMode.
/// (split under a real delegated unit: tests/vm/guest/pods, case cgroups-split.)
#[test]
fn cgroups_modes_where_nothing_is_delegated() {
    let env = require_env!(alpine);
    let (tb, image) = lab(env);
    let run = |extra: &[&str]| {
        let mut a = vec!["run", "--rm", "--network", "none"];
        a.extend_from_slice(extra);
        a.extend([image.as_str(), "echo", "ran"]);
        tb.cmd(a).run()
    };
    let have = delegated(&tb);
    if have.is_empty() {
        run(&["--cgroups", "no-conmon"])
            .assert_success()
            .stdout_is("ran\n");
        run(&["--cgroups", "no-conmon", "--memory", "64m"])
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("memory (--memory)");
        run(&["--cgroups=split"])
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("--cgroups=split: ")
            .stderr_contains("Delegate=yes");
    } else {
        note(&format!(
            "this host delegates {have:?} to boxtest: the refusals are checked in the VM only"
        ));
    }
    for (mode, shown) in [
        (None, "default"),
        (Some("no-conmon"), "no-conmon"),
        (Some("split"), "split"),
        (Some("disabled"), "disabled"),
    ] {
        let mut a = vec!["create", "--network", "none"];
        if let Some(m) = mode {
            a.extend(["--cgroups", m]);
        }
        a.extend([image.as_str(), "true"]);
        let out = tb.cmd(a).run();
        out.assert_success();
        let id = out.out().trim().to_string();
        tb.cmd([
            "inspect",
            "--format",
            "{{.HostConfig.Cgroups}} {{.HostConfig.CgroupMode}}",
            &id,
        ])
        .run()
        .assert_success()
        .stdout_is(&format!("{shown} private\n"));
        tb.cmd(["rm", &id]).run().assert_success();
    }
}

#[test]
fn invalid_limits_are_refused_before_anything_runs() {
    let env = require_env!(alpine);
    let (tb, image) = lab(env);
    for (flags, needle) in [
        (&["--memory", "64x"][..], "invalid --memory \"64x\""),
        (&["--memory", "1m"][..], "the minimum is 6m"),
        (&["--memory-swap", "1g"][..], "needs --memory"),
        (
            &["--memory", "64m", "--memory-swap", "32m"][..],
            "at least --memory",
        ),
        (&["--cpus", "0"][..], "invalid --cpus"),
        (
            &["--cpus", "0.5", "--cpu-quota", "50000"][..],
            "cannot be combined",
        ),
        (&["--cpu-shares", "1"][..], "2 to 262144"),
        (&["--cpu-weight", "10001"][..], "1 to 10000"),
        (&["--pids-limit", "-5"][..], "invalid --pids-limit"),
        (&["--cpuset-cpus", "1-0"][..], "invalid --cpuset-cpus"),
    ] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([image.as_str(), "true"]);
        tb.cmd(&args)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
}

#[test]
fn generate_systemd_new_recreates_the_recorded_container() {
    let env = require_env!(alpine);
    let (tb, image) = lab(env);
    let cid = tb.mkdir("cid").join("web.cid");
    let cid = cid.to_str().unwrap();
    tb.cmd([
        "create",
        "--cidfile",
        cid,
        "--preserve-fds",
        "1",
        "--hostuser",
        "root",
        "--passwd=false",
        "--env-host",
        "--name",
        "web",
        "--network",
        "none",
        "-e",
        "GREETING=hello world",
        "--memory",
        "64m",
        "--pids-limit",
        "32",
        // podman's further options, repeated by the unit (spec::Settings).
        "--ulimit",
        "nofile=1024:2048",
        "--umask",
        "0027",
        "--annotation",
        "team=infra",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--shm-size",
        "128m",
        "--timeout",
        "300",
        "--group-add",
        "10",
        &image,
        "sh",
        "-c",
        "echo $GREETING",
    ])
    .run()
    .assert_success();
    let out = tb
        .cmd(["generate", "systemd", "--new", "--name", "-t", "15", "web"])
        .run();
    out.assert_success();
    let unit = out.out();
    for line in [
        "[Unit]",
        "Wants=network-online.target",
        "After=network-online.target",
        "[Service]",
        "Type=notify",
        "NotifyAccess=all",
        "Delegate=yes",
        "KillMode=mixed",
        "TimeoutStopSec=25",
        "Restart=on-failure",
        "[Install]",
        "WantedBy=default.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    let exec = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("ExecStart");
    for part in [
        " run --rm --sdnotify=ready --stop-timeout 15 --name web ",
        "-e \"GREETING=hello world\"",
        "--network none",
        "--memory 64m",
        "--pids-limit 32",
        "--ulimit nofile=1024:2048",
        "--umask 0027",
        "--annotation team=infra",
        "--sysctl net.ipv4.ip_forward=1",
        "--shm-size 134217728",
        "--timeout 300",
        "--group-add 10",
        "--preserve-fds 1",
        "--hostuser root",
        "--passwd=false",
        "--env-host",
        &format!("--cidfile {cid}"),
        "--entrypoint \"[\\\"sh\\\",\\\"-c\\\",\\\"echo $$GREETING\\\"]\"",
    ] {
        assert!(exec.contains(part), "{part} missing: {exec}");
    }
    assert!(
        !exec.contains("PATH="),
        "the image's env is not repeated: {exec}"
    );
    assert!(
        unit.contains("ExecStartPre=-") && unit.contains(" rm -f web"),
        "{unit}"
    );

    // The unit's argv recreates the same container: its settings inspect the same.
    let settings = |tb: &TestBox| {
        let out = tb.cmd(["inspect", "web"]).run();
        out.assert_success();
        let v: serde_json::Value = serde_json::from_str(out.out()).expect("inspect json");
        let mut picked = Vec::new();
        for (section, keys) in [
            ("Config", &["Env", "Annotations", "Umask", "Timeout"][..]),
            (
                "HostConfig",
                &["Ulimits", "ShmSize", "Sysctls", "GroupAdd", "Memory"][..],
            ),
        ] {
            for k in keys {
                let field = v[0][section][k].clone();
                assert!(!field.is_null(), "{section}.{k} missing: {v}");
                picked.push((format!("{section}.{k}"), field));
            }
        }
        picked
    };
    let before = settings(&tb);
    let words = unit_words(exec.trim_start_matches("ExecStart="));
    let run_at = words
        .iter()
        .position(|w| w == "--sdnotify=ready")
        .expect("run --sdnotify=ready");
    assert!(
        unit.lines()
            .any(|l| l == format!("ExecStartPre=-/bin/rm -f {cid}")),
        "the unit removes the last start's --cidfile: {unit}"
    );
    tb.cmd(["rm", "-f", "web"]).run().assert_success();
    std::fs::remove_file(cid).unwrap();
    let mut create = vec!["create".to_string()];
    create.extend(words[run_at + 1..].iter().cloned());
    tb.cmd(&create).run().assert_success();
    assert_eq!(settings(&tb), before, "recreated from {words:?}");

    // Without --new: the existing container, started and stopped by name.
    let out = tb.cmd(["generate", "systemd", "--name", "web"]).run();
    out.assert_success()
        .stdout_contains("Type=exec")
        .stdout_contains(" start --attach web")
        .stdout_contains(" stop -t 10 web");
    tb.cmd([
        "generate",
        "systemd",
        "--restart-policy",
        "sometimes",
        "web",
    ])
    .run()
    .assert_code(125)
    .stderr_contains("invalid --restart-policy");
    tb.cmd(["generate", "systemd", "nosuchcontainer"])
        .run()
        .assert_failure();
}

/// An Exec*= line's words as systemd splits them: double quotes with C escapes, `$$`
/// and `%%` for `$` and `%` (the subset `systemd::unit::quote` writes).
fn unit_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars();
    let mut word: Option<String> = None;
    while let Some(c) = chars.next() {
        match c {
            ' ' => words.extend(word.take()),
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => w.push('\n'),
                            Some('t') => w.push('\t'),
                            Some(e) => w.push(e),
                            None => {}
                        },
                        c => w.push(c),
                    }
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
        .into_iter()
        .map(|w| w.replace("$$", "$").replace("%%", "%"))
        .collect()
}

/// The real systemd + cgroup v2 host: build (or reuse) the VM image, boot it, run the guest
/// cases (tests/vm/guest/cases) and fail on any FAIL line.
#[test]
fn vm_systemd_cgroup_v2() {
    let env = require_env!(alpine);
    if std::env::var_os("BOX_VM").is_some_and(|v| v == "0") {
        crate::harness::opt_out("BOX_VM=0: the systemd VM tests are off");
        return;
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/run");
    let started = std::time::Instant::now();
    let out = Command::new(&script)
        .arg("--box")
        .arg(env.box_bin())
        .env("BOX_TEST_IMAGES", env.images_dir())
        .output()
        .expect("run tests/vm/run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(77) => {
            let why = stderr
                .lines()
                .find(|l| l.starts_with("SKIP:"))
                .unwrap_or("SKIP: the VM cannot run here");
            skip(why.trim_start_matches("SKIP: "));
        }
        Some(0) => {
            assert_service_cases(&stdout);
            assert_pod_cases(&stdout);
            assert_session_cases(&stdout);
            note(&format!(
                "systemd VM passed in {} s:\n{stdout}{}",
                started.elapsed().as_secs(),
                stderr
                    .lines()
                    .filter(|l| l.contains("image:") || l.contains("guest:"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        }
        code => panic!("tests/vm/run failed ({code:?}):\n{stdout}\n--- stderr ---\n{stderr}"),
    }
}

/// The containers-as-services cases (tests/vm/guest/services) must have run and passed
/// whenever their setting was wanted: a quadlet unit with a published port and a volume,
/// a healthcheck's restart under a unit, auto-update with its rollback, no files left.
fn assert_service_cases(stdout: &str) {
    let wanted = std::env::var("BOX_VM_CASES").unwrap_or_default();
    if !(wanted.is_empty() || wanted == "all" || wanted.split_whitespace().any(|c| c == "services"))
    {
        return;
    }
    for case in ["quadlet", "healthcheck", "auto-update", "leftovers"] {
        let line = format!("PASS services/{case}:");
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "the systemd VM printed no `{line}` line:\n{stdout}"
        );
    }
}

/// The session's `--cgroup-manager` case (tests/vm/guest/cases) must have run and passed
/// when wanted.
fn assert_session_cases(stdout: &str) {
    let wanted = std::env::var("BOX_VM_CASES").unwrap_or_default();
    if !(wanted.is_empty() || wanted == "all" || wanted.split_whitespace().any(|c| c == "session"))
    {
        return;
    }
    let line = "PASS session/cgroup-manager:";
    assert!(
        stdout.lines().any(|l| l.starts_with(line)),
        "the systemd VM printed no `{line}` line:\n{stdout}"
    );
}

/// The pod cgroup cases (tests/vm/guest/pods) must have run and passed when wanted.
fn assert_pod_cases(stdout: &str) {
    let wanted = std::env::var("BOX_VM_CASES").unwrap_or_default();
    if !(wanted.is_empty() || wanted == "all" || wanted.split_whitespace().any(|c| c == "pods")) {
        return;
    }
    for case in [
        "cgroup-parent",
        "pod-memory",
        "cgroups-split",
        "cgroups-no-conmon",
    ] {
        let line = format!("PASS pods/{case}:");
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "the systemd VM printed no `{line}` line:\n{stdout}"
        );
    }
}
