//! Hostile input to `run`, `create`, `exec`, `stop` and `--format` (security issue, items 6,
//! 7, 8 and 10), as boxtest:
//! - user and group ids outside the container's id mapping (`4294967295` is `(uid_t)-1`,
//!   "unchanged" to setresuid: it would leave the process root) are refused with exit 125;
//! - stop signals box cannot send: refused on the command line, replaced by SIGTERM (with a
//!   warning) from an image, so `stop` still works; docker's real-time names work;
//! - a 40 000-line `--env-file` is merged in linear time, later entries winning;
//! - printf widths and precisions above Go's limit are a template error, not a crash.
//!
//! The hostile images are the alpine test image with its configuration edited by umoci,
//! pushed by skopeo into the harness's registry under `hostile-run/<name>:latest`.
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::harness::lab::{Lab, until};
use crate::harness::{Env, Outcome};

/// The alpine test image with `umoci config ARGS`, pushed as `hostile-run/<name>:latest`;
/// returns its reference.
fn hostile_image(env: &Env, name: &str, umoci_args: &[&str]) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let layout: PathBuf = env.base_dir().join(format!("hostile-run-{name}-{n}"));
    let st = Command::new("cp")
        .arg("-a")
        .arg(env.images_dir().join("alpine"))
        .arg(&layout)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp the alpine layout: {st}");
    let out = Command::new("umoci")
        .arg("config")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .args(umoci_args)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci config {umoci_args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = env.image(&format!("hostile-run/{name}:latest"));
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo push {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&layout);
    reference
}

/// Exit 125 with one line on stderr that contains `needle`.
#[track_caller]
fn assert_refused(out: &Outcome, needle: &str) {
    out.assert_code(125).assert_one_line_error();
    out.stderr_contains(needle);
}

fn run_args<'a>(image: &'a str, flags: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(flags);
    a.push(image);
    a.extend_from_slice(cmd);
    a
}

#[test]
fn user_ids_outside_the_mapping_are_refused() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let img = lab.image.clone();
    // (uid_t)-1 and (gid_t)-1: "unchanged" to setresuid/setresgid, i.e. root.
    for (user, needle) in [
        ("4294967295", "uid 4294967295"),
        ("0:4294967295", "gid 4294967295"),
        ("4294967295:0", "uid 4294967295"),
        // Beyond boxtest's 65537 mapped ids.
        ("70000", "uid 70000"),
        ("0:70000", "gid 70000"),
    ] {
        let out = lab.run(&run_args(&img, &["--user", user], &["id"]));
        assert_refused(&out, needle);
        out.stderr_contains("not mapped");
        // box create refuses a numeric id outright, and records nothing.
        let out = lab.run(&["create", "--network", "none", "--user", user, &img, "id"]);
        assert_refused(&out, needle);
    }
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
    // The edges of the mapping still work.
    lab.run(&run_args(&img, &["--user", "65536:65536"], &["id"]))
        .assert_success()
        .stdout_contains("uid=65536(65536) gid=65536");

    // An /etc/passwd entry with uid 4294967295, and a supplementary group with gid
    // 4294967295 in /etc/group: found only at start, refused there.
    let passwd = lab.tb.write(
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nevil:x:4294967295:0::/:/bin/sh\n\
         app:x:1000:1000::/:/bin/sh\n",
    );
    let group = lab.tb.write(
        "group",
        "root:x:0:root\napp:x:1000:\nevil:x:4294967295:app\n",
    );
    let mounts = format!("{}:/etc/passwd:ro", passwd.display());
    let gmount = format!("{}:/etc/group:ro", group.display());
    let out = lab.run(&run_args(&img, &["-v", &mounts, "--user", "evil"], &["id"]));
    assert_refused(&out, "uid 4294967295");
    let out = lab.run(&run_args(
        &img,
        &["-v", &mounts, "-v", &gmount, "--user", "app"],
        &["id"],
    ));
    assert_refused(&out, "gid 4294967295");
    // create + start: the same refusal from start, and the container stays startable as
    // something else does not matter: it exits 125 and records the error.
    let out = lab.run(&[
        "create", "--name", "evil", "-v", &mounts, "--user", "evil", &img, "id",
    ]);
    out.assert_success();
    let out = lab.run(&["start", "-a", "evil"]);
    assert_refused(&out, "uid 4294967295");
}

#[test]
fn image_users_outside_the_mapping_are_refused() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for (name, user, needle) in [
        ("user-max", "4294967295", "uid 4294967295"),
        ("group-max", "0:4294967295", "gid 4294967295"),
        ("user-minus-one", "-1", "-1"),
    ] {
        let img = hostile_image(env, name, &["--config.user", user]);
        lab.run(&["pull", "-q", &img]).assert_success();
        let out = lab.run(&run_args(&img, &[], &["id", "-u"]));
        assert_refused(&out, needle);
        out.stdout_lacks("0");
    }
}

#[test]
fn exec_refuses_user_ids_outside_the_mapping() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(&["--name", "target"], &["sleep", "1000"]);
    for (user, needle) in [
        ("4294967295", "uid 4294967295"),
        ("0:4294967295", "gid 4294967295"),
        ("70000", "uid 70000"),
    ] {
        let out = lab.run(&["exec", "--user", user, "target", "id", "-u"]);
        assert_refused(&out, needle);
        out.stderr_contains("not mapped");
        out.stdout_lacks("0");
    }
    lab.run(&["exec", "--user", "1000:1000", "target", "id"])
        .assert_success()
        .stdout_contains("uid=1000 gid=1000");
}

#[test]
fn stop_signals_box_cannot_send_are_refused_or_replaced() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let img = lab.image.clone();
    for bad in [
        "99",
        "0",
        "-1",
        "SIGBOGUS",
        "BOGUS",
        "RTMIN+31",
        "SIGRTMAX-31",
    ] {
        let flag = format!("--stop-signal={bad}");
        let out = lab.run(&["create", &flag, &img, "true"]);
        assert_refused(&out, "--stop-signal");
        out.stderr_contains(bad);
    }
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
    // What docker accepts.
    for good in ["TERM", "sigusr1", "SIGRTMIN+3", "RTMAX-1", "37", "64", "1"] {
        lab.run(&["create", "--stop-signal", good, &img, "true"])
            .assert_success();
    }

    // A real-time stop signal is delivered: the shell traps 37 (SIGRTMIN+3) and exits 7.
    lab.detach(
        &["--name", "rt", "--stop-signal", "SIGRTMIN+3"],
        &[
            "sh",
            "-c",
            "trap 'echo got-rt; exit 7' 37; echo ready; while :; do sleep 0.1; done",
        ],
    );
    until("the trap is set", Duration::from_secs(10), || {
        lab.run(&["logs", "rt"]).out().contains("ready")
    });
    lab.run(&["stop", "-t", "20", "rt"]).assert_success();
    lab.run(&["logs", "rt"])
        .assert_success()
        .stdout_contains("got-rt");
    lab.run(&["inspect", "--format", "{{.State.ExitCode}}", "rt"])
        .assert_success()
        .stdout_is("7");

    // An image's bogus StopSignal: a warning, SIGTERM instead, and stop works.
    for (name, sig) in [("stopsignal-99", "99"), ("stopsignal-bogus", "SIGBOGUS")] {
        let bad = hostile_image(env, name, &["--config.stopsignal", sig]);
        lab.run(&["pull", "-q", &bad]).assert_success();
        let out = lab.run(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            name,
            &bad,
            "sh",
            "-c",
            "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done",
        ]);
        out.assert_success();
        out.stderr_contains("warning");
        out.stderr_contains(sig);
        lab.run(&["inspect", "--format", "{{.Config.StopSignal}}", name])
            .assert_success()
            .stdout_is("SIGTERM");
        until("the trap is set", Duration::from_secs(10), || {
            lab.run(&["logs", name]).out().contains("ready")
        });
        lab.run(&["stop", "-t", "20", name]).assert_success();
        lab.run(&["inspect", "--format", "{{.State.ExitCode}}", name])
            .assert_success()
            .stdout_is("3");
        let unit = lab.run(&["generate", "systemd", name]);
        unit.assert_success();
        unit.stdout_lacks("--stop-signal").stdout_lacks("SIGBOGUS");
        lab.run(&["restart", "-t", "20", name]).assert_success();
    }
}

#[test]
fn a_40k_line_env_file_merges_in_order() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let img = hostile_image(
        env,
        "env",
        &[
            "--config.env",
            "FROM_IMAGE=image",
            "--config.env",
            "K7=image",
            "--config.env",
            "DUP=image",
        ],
    );
    lab.run(&["pull", "-q", &img]).assert_success();
    let n = 40_000;
    let mut text = String::from("# many variables\nDUP=first\n");
    for i in 0..n {
        text.push_str(&format!("K{i}=v{i}\n"));
    }
    text.push_str("DUP=last\nK7=file\n");
    let file = lab.tb.write("big.env", text);
    let file = file.display().to_string();
    let script = "echo DUP=$DUP K7=$K7 K39999=$K39999 FROM_IMAGE=$FROM_IMAGE; env | grep -c '^K'";
    let started = std::time::Instant::now();
    let out = lab.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "big",
        "--env-file",
        &file,
        "-e",
        "K8=cli",
        &img,
        "sh",
        "-c",
        script,
    ]);
    crate::harness::note(&format!(
        "run with a 40000-line --env-file took {:.2?}",
        started.elapsed()
    ));
    out.assert_success();
    let lines: Vec<&str> = out.out().lines().collect();
    assert_eq!(
        lines,
        [
            "DUP=last K7=file K39999=v39999 FROM_IMAGE=image",
            &n.to_string()
        ],
        "{out}"
    );
    // The recorded order: the image's first (replaced in place), then the file's.
    let out = lab.run(&["inspect", "--format", "{{json .Config.Env}}", "big"]);
    out.assert_success();
    let recorded: Vec<String> = serde_json::from_str(out.out()).expect("Env JSON");
    let keys: Vec<&str> = recorded
        .iter()
        .map(|e| e.split('=').next().unwrap())
        .collect();
    let pos = |k: &str| keys.iter().position(|x| *x == k).unwrap();
    assert!(
        pos("FROM_IMAGE") < pos("K7") && pos("K7") < pos("DUP"),
        "{keys:?}"
    );
    assert!(pos("DUP") < pos("K0") && pos("K0") < pos("K39999"));
    assert!(recorded.contains(&"K8=cli".to_string()));
    assert_eq!(keys.iter().filter(|k| **k == "DUP").count(), 1);

    // exec builds its environment from the same 40k entries: also linear, later wins.
    lab.run(&["start", "big"]).assert_success();
    lab.detach(&["--name", "bigd", "--env-file", &file], &["sleep", "1000"]);
    let started = std::time::Instant::now();
    let out = lab.run(&[
        "exec",
        "-e",
        "DUP=exec",
        "-e",
        "X=1",
        "-e",
        "X=2",
        "bigd",
        "sh",
        "-c",
        "echo $DUP $X $K39999; env | grep -c '^K'",
    ]);
    crate::harness::note(&format!(
        "exec with 40000 variables took {:.2?}",
        started.elapsed()
    ));
    out.assert_success();
    let lines: Vec<&str> = out.out().lines().collect();
    assert_eq!(lines, ["exec 2 v39999", &n.to_string()], "{out}");
}

#[test]
fn printf_widths_beyond_gos_limit_are_a_template_error() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for format in [
        r#"{{printf "%.999999999f" 1.0}}"#,
        r#"{{printf "%999999999d" 1}}"#,
        r#"{{printf "%1000001s" "x"}}"#,
        r#"{{printf "%99999999999999999999999s" "x"}}"#,
    ] {
        let out = lab.run(&["image", "inspect", "--format", format, &lab.image]);
        assert_refused(&out, "template");
        out.stderr_contains("too large");
    }
    // Up to Go's limit is fine (and exact).
    let out = lab.run(&[
        "image",
        "inspect",
        "--format",
        r#"{{len (printf "%.100000f" 1.0)}}"#,
        &lab.image,
    ]);
    out.assert_success().stdout_is("100002");
}
