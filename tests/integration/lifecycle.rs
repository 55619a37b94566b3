//! The container lifecycle without a daemon, as boxtest: run -d under box's monitor, ps,
//! logs (-f), exec (incl. -it through tmux), stop/kill/rm, start/restart/wait, inspect
//! --format, the truth after the monitor or its supervisor is SIGKILLed, volumes, cp, top,
//! generate kube against the Kubernetes schema, and 8 parallel lifecycles.
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::lab::{Lab, alive, until};

const LOOP: &str = "while true; do date; sleep 1; done";
/// A shell that ignores SIGTERM, as PID 1 of its container.
const DEAF: &str = "trap '' TERM; while true; do date; sleep 1; done";

#[test]
fn detached_container_ps_logs_exec_stop_rm() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let id = lab.detach(&["--name", "web"], &["sh", "-c", DEAF]);

    // ps: running, short id, the command, docker's status words.
    let line = lab.ps_line("web");
    assert!(line.starts_with(&id[..12]), "{line}");
    assert!(line.contains("Up "), "{line}");
    // podman's COMMAND: no quotes, cut at 17 characters and "...".
    assert!(line.contains("sh -c trap"), "{line}");
    assert!(!line.contains('"'), "{line}");
    lab.run(&["ps", "-q", "--no-trunc"])
        .assert_success()
        .stdout_contains(&id);
    lab.run(&["ps", "--format", "{{.Names}}|{{.State}}"])
        .assert_success()
        .stdout_contains("web|running");

    // logs: the output, with timestamps on request; --tail.
    until("two log lines", Duration::from_secs(10), || {
        lab.run(&["logs", "web"]).out().lines().count() >= 2
    });
    let out = lab.run(&["logs", "-t", "--tail", "1", "web"]);
    out.assert_success();
    let lines: Vec<&str> = out.out().lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("20") && lines[0].contains("Z "),
        "{out}"
    );
    // k8s-file records on disk.
    let log = std::fs::read_to_string(lab.tb.root().join("containers").join(&id).join("ctr.log"))
        .unwrap();
    assert!(log.lines().next().unwrap().contains(" stdout F "), "{log}");

    // exec: the container's files, its pid namespace, exit codes.
    lab.run(&["exec", "web", "cat", "/etc/alpine-release"])
        .assert_success()
        .stdout_is("3.20.3\n");
    lab.run(&[
        "exec",
        "web",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; exit 7",
    ])
    .assert_code(7)
    .stdout_contains("sh -c trap");
    lab.run(&[
        "exec",
        "-e",
        "A=b",
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "web",
        "sh",
        "-c",
        "echo $A $(pwd) $(id -u)",
    ])
    .assert_success()
    .stdout_is("b /tmp 1000\n");
    lab.run(&["exec", "web", "/nope"]).assert_code(127);
    lab.run(&["exec", "web", "/etc"]).assert_code(126);
    // Same capabilities and seccomp as the container's PID 1.
    let caps = |pid: &str| {
        let s = lab.run(&[
            "exec",
            "web",
            "grep",
            "-E",
            "^(CapEff|Seccomp):",
            &format!("/proc/{pid}/status"),
        ]);
        s.assert_success();
        s.out().to_string()
    };
    assert_eq!(caps("1"), caps("self"));

    // stop -t 2 on a shell that ignores SIGTERM: SIGKILL after 2 s, Exited (137).
    let start = Instant::now();
    lab.run(&["stop", "-t", "2", "web"])
        .assert_success()
        .stdout_is("web\n");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "stop -t 2 took {took:?}"
    );
    assert!(
        lab.ps_line("web").contains("Exited (137)"),
        "{}",
        lab.ps_line("web")
    );
    assert_eq!(lab.status("web"), "exited");
    lab.run(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}} {{.State.Running}}",
        "web",
    ])
    .assert_success()
    .stdout_is("137 false\n");
    lab.run(&["exec", "web", "true"]).assert_code(125);

    // rm: gone from ps, its directory too.
    lab.run(&["rm", "web"]).assert_success();
    assert!(!lab.tb.root().join("containers").join(&id).exists());
    lab.run(&["ps", "-a"]).assert_success().stdout_lacks("web");
    lab.run(&["logs", "web"]).assert_code(125);
}

#[test]
fn run_d_reports_start_failures() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let out = lab.run(&["run", "-d", "--network", "none", &lab.image, "/nope"]);
    out.assert_code(127).assert_one_line_error();
    let out = lab.run(&["run", "-d", "--network", "none", &lab.image, "/etc"]);
    out.assert_code(126).assert_one_line_error();
    lab.run(&["ps", "-a", "--format", "{{.Status}}"])
        .assert_success()
        .stdout_lacks("Up");
}

#[test]
fn restart_policy_is_honoured_by_the_monitor() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&["run", "-d", "--restart", "sometimes", &lab.image, "true"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("restart policy");
    lab.detach(
        &["--name", "flaky", "--restart", "on-failure:2"],
        &["sh", "-c", "exit 3"],
    );
    // One run and two restarts, then the monitor gives up and the container stays exited.
    let deadline = Instant::now() + Duration::from_secs(30);
    let format = "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}";
    loop {
        let out = lab.run(&["inspect", "--format", format, "flaky"]);
        out.assert_success();
        if out.out().trim() == "2 exited 3" {
            break;
        }
        assert!(Instant::now() < deadline, "no two restarts: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.run(&[
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Name}}",
        "flaky",
    ])
    .assert_success()
    .stdout_contains("on-failure");
}

#[test]
fn logs_follow_until_exit_and_since() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(
        &["--name", "counter"],
        &[
            "sh",
            "-c",
            "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 1; done",
        ],
    );
    // -f returns by itself once the container exits, with everything.
    let out = lab
        .tb
        .cmd(["logs", "-f", "counter"])
        .timeout(Duration::from_secs(20))
        .run();
    out.assert_success();
    assert_eq!(out.out(), "out1\nout2\nout3", "{out}");
    assert!(out.err().contains("err3"), "{out}");
    assert_eq!(lab.status("counter"), "exited");
    lab.run(&["logs", "--since", "1h", "counter"])
        .assert_success()
        .stdout_contains("out1");
    lab.run(&["logs", "--since", "2099-01-01T00:00:00Z", "counter"])
        .assert_success()
        .stdout_is("");
    lab.run(&["wait", "counter"])
        .assert_success()
        .stdout_is("0\n");
}

#[test]
fn status_is_true_after_the_monitor_or_supervisor_is_killed() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let id = lab.detach(&["--name", "victim"], &["sh", "-c", LOOP]);
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            lab.tb
                .root()
                .join("containers")
                .join(&id)
                .join("monitor.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let monitor = info["monitor_pid"].as_i64().unwrap() as i32;
    let st = lab.state(&id);
    let supervisor = st["box_pid"].as_i64().unwrap() as i32;
    let pid = st["pid"].as_i64().unwrap() as i32;

    // The monitor dies: its `box start --attach` still supervises, the container runs.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lab.status("victim"), "running");
    assert!(lab.ps_line("victim").contains("Up "));

    // The supervisor dies: the container dies with it, and ps says so (no "unknown").
    unsafe { libc::kill(supervisor, libc::SIGKILL) };
    until("the container to die", Duration::from_secs(10), || {
        !alive(pid)
    });
    let line = lab.ps_line("victim");
    assert!(line.contains("Exited (137)"), "{line}");
    lab.run(&["ps"]).assert_success().stdout_lacks("victim");
    // And it starts again.
    lab.run(&["start", "victim"]).assert_success();
    assert_eq!(lab.status("victim"), "running");
}

#[test]
fn a_stale_record_after_a_reboot_reads_as_exited() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let id = lab.detach(&["--name", "old"], &["sleep", "1000"]);
    lab.run(&["kill", "old"]).assert_success();
    lab.run(&["wait", "old"])
        .assert_success()
        .stdout_is("137\n");
    // What a reboot leaves: a `running` record whose pid now belongs to someone else (the
    // start time differs) and whose supervisor is gone.
    let p = lab
        .tb
        .root()
        .join("containers")
        .join(&id)
        .join("state.json");
    let mut st = lab.state(&id);
    st["status"] = "running".into();
    st["pid"] = 1.into();
    st["pid_start"] = 12345.into();
    st["box_pid"] = 1.into();
    std::fs::write(&p, serde_json::to_vec(&st).unwrap()).unwrap();
    assert_eq!(lab.status("old"), "exited");
    assert!(lab.ps_line("old").contains("Exited ("));
}

#[test]
fn start_restart_kill_rename_top_cp_inspect() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let out = lab.run(&[
        "create",
        "--name",
        "c1",
        "--network",
        "none",
        "--label",
        "tier=web",
        &lab.image,
        "sh",
        "-c",
        LOOP,
    ]);
    out.assert_success();
    assert!(lab.ps_line("c1").contains("Created"));
    lab.run(&["start", "c1"]).assert_success().stdout_is("c1\n");
    assert_eq!(lab.status("c1"), "running");

    // inspect --format on the docker field names.
    lab.run(&[
        "inspect",
        "--format",
        "{{.Name}} {{.State.Running}} {{json .Config.Cmd}} {{index .Config.Labels \"tier\"}}",
        "c1",
    ])
    .assert_success()
    .stdout_is("c1 true [\"sh\",\"-c\",\"while true; do date; sleep 1; done\"] web\n");
    let json = lab.run(&["inspect", "c1"]);
    json.assert_success();
    let v: serde_json::Value = serde_json::from_str(json.out()).unwrap();
    for key in [
        "Id",
        "Name",
        "Created",
        "Path",
        "Args",
        "State",
        "Config",
        "HostConfig",
        "Mounts",
        "GraphDriver",
        "NetworkSettings",
    ] {
        assert!(v[0].get(key).is_some(), "inspect lacks {key}:\n{json}");
    }
    assert!(v[0]["State"]["Pid"].as_i64().unwrap() > 0);
    lab.run(&["ps", "--filter", "label=tier=web", "-q"])
        .assert_success()
        .stdout_contains(&v[0]["Id"].as_str().unwrap()[..12]);
    lab.run(&["ps", "--filter", "status=exited", "-q"])
        .assert_success()
        .stdout_is("");

    // top: the container's processes with their in-container pids.
    let top = lab.run(&["top", "c1"]);
    top.assert_success().stdout_contains("sh -c while true");
    assert!(
        top.out().lines().nth(1).unwrap().split_whitespace().nth(1) == Some("1"),
        "{top}"
    );

    // cp both ways; a symlink out of the container stays inside it.
    let host_file = lab.tb.write("app.conf", "hello from the host\n");
    lab.run(&["cp", host_file.to_str().unwrap(), "c1:/etc/app.conf"])
        .assert_success();
    lab.run(&["exec", "c1", "cat", "/etc/app.conf"])
        .assert_success()
        .stdout_is("hello from the host\n");
    lab.run(&["exec", "c1", "ln", "-s", "/", "/tmp/up"])
        .assert_success();
    let dest = lab.tb.work().join("hosts-copy");
    lab.run(&[
        "cp",
        "c1:/tmp/up/../../etc/alpine-release",
        dest.to_str().unwrap(),
    ])
    .assert_success();
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "3.20.3\n");

    // kill -s, restart, rename.
    lab.run(&["kill", "-s", "KILL", "c1"]).assert_success();
    until("c1 to exit", Duration::from_secs(10), || {
        lab.status("c1") == "exited"
    });
    lab.run(&["restart", "-t", "1", "c1"]).assert_success();
    assert_eq!(lab.status("c1"), "running");
    lab.run(&["rename", "c1", "c2"]).assert_success();
    assert_eq!(lab.status("c2"), "running");
    // The old name is gone (unless the id happens to start with "c1": a short id matches too,
    // as in podman).
    if !lab.id("c2").starts_with("c1") {
        lab.run(&["inspect", "c1"]).assert_code(125);
    }
    lab.run(&["rm", "c2"])
        .assert_code(2)
        .stderr_contains("running");
    lab.run(&["rm", "-f", "c2"]).assert_success();
}

#[test]
fn exec_it_through_tmux() {
    let env = require_env!(alpine);
    if crate::harness::which("tmux").is_none() {
        crate::harness::skip("tmux not installed");
        return;
    }
    let lab = Lab::new(env);
    lab.detach(&["--name", "tty"], &["sh", "-c", LOOP]);
    let socket: PathBuf = lab.tb.dir().join("tmux-exec");
    let line = lab.tb.cmd(["exec", "-it", "tty", "sh"]).shell_line();
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let st = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .args([
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
        ])
        .arg(format!("( {line} ); echo EXITED=$?; sleep 30"))
        .status()
        .unwrap();
    assert!(st.success());
    let wait_for = |needle: &str| {
        let start = Instant::now();
        loop {
            let s = tmux(&["capture-pane", "-p"]);
            if s.contains(needle) {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {needle:?} on screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("/ #");
    // busybox's line editor asks the terminal for the cursor position first and drops
    // keys typed before the answer (slow on a loaded machine): wait, and type again if the
    // line arrived cut.
    let mut s = String::new();
    for attempt in 0..3 {
        std::thread::sleep(Duration::from_millis(700));
        let done = 40 + attempt;
        tmux(&[
            "send-keys",
            "-l",
            &format!("stty size; tty; echo done-$((40+{attempt}))"),
        ]);
        tmux(&["send-keys", "Enter"]);
        s = wait_for(&format!("done-{done}"));
        if s.contains("30 100") {
            break;
        }
    }
    assert!(
        s.contains("30 100"),
        "the terminal size reaches the exec'd shell:\n{s}"
    );
    assert!(s.contains("/dev/pts/"), "{s}");
    tmux(&["send-keys", "-l", "exit 5"]);
    tmux(&["send-keys", "Enter"]);
    wait_for("EXITED=5");
    tmux(&["kill-server"]);
}

#[test]
fn named_volumes_and_generate_kube() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&["volume", "create", "data"])
        .assert_success()
        .stdout_is("data\n");
    lab.detach(
        &[
            "--name",
            "kube",
            "-v",
            "data:/data",
            "--tmpfs",
            "/scratch",
            "-e",
            "MODE=prod",
            "-u",
            "1000:1000",
        ],
        &["sleep", "1000"],
    );
    lab.run(&["exec", "-u", "0", "kube", "sh", "-c", "echo kept > /data/f"])
        .assert_success();
    lab.run(&["volume", "ls"])
        .assert_success()
        .stdout_contains("data");
    lab.run(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Destination}}={{.Type}} {{end}}",
        "kube",
    ])
    .assert_success()
    .stdout_contains("/data=volume");
    lab.run(&["volume", "rm", "data"])
        .assert_code(2)
        .stderr_contains("in use");

    // The Pod passes the Kubernetes schema (k8s-openapi), strictly: nothing dropped.
    let out = lab.run(&["generate", "kube", "kube"]);
    out.assert_success();
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_yaml::from_str(out.out()).unwrap_or_else(|e| panic!("{e}\n{out}"));
    let ours: serde_json::Value = serde_yaml::from_str(out.out()).unwrap();
    assert_eq!(serde_json::to_value(&pod).unwrap(), ours, "{out}");
    let c = &pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(c.name, "kube");
    assert_eq!(c.command.as_deref(), Some(&["sleep".to_string()][..]));
    assert_eq!(c.security_context.as_ref().unwrap().run_as_user, Some(1000));
    assert!(c.env.as_ref().unwrap().iter().any(|e| e.name == "MODE"));
    let vols = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
    assert!(vols.iter().any(|v| v.host_path.is_some()));
    assert!(vols.iter().any(|v| v.empty_dir.is_some()));

    // The data outlives the container.
    lab.run(&["rm", "-f", "kube"]).assert_success();
    let out = lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        &lab.image,
        "cat",
        "/data/f",
    ]);
    out.assert_success().stdout_is("kept\n");
    lab.run(&["volume", "rm", "data"]).assert_success();
    lab.run(&["volume", "ls", "-q"])
        .assert_success()
        .stdout_is("");
}

/// `box cp` works inside the container's user namespace: files of the container's other
/// users both ways, and a stopped or never-started container (its root filesystem is
/// mounted for the copy, and what is copied in is there at the next start).
#[test]
fn cp_reaches_every_user_and_stopped_containers() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let setup = "adduser -D -u 1000 u && mkdir /home/u/priv && echo secret > /home/u/priv/s \
                 && chmod 600 /home/u/priv/s && chmod 700 /home/u/priv && chown -R u:u /home/u/priv";
    lab.detach(
        &["--name", "cp1"],
        &["sh", "-c", &format!("{setup} && exec sleep 300")],
    );
    until("the user's files", Duration::from_secs(10), || {
        lab.run(&["exec", "cp1", "test", "-f", "/home/u/priv/s"])
            .success()
    });
    let out_dir = lab.tb.mkdir("out");
    // Out of a directory only its user (uid 1000 in the container) may read.
    lab.run(&["cp", "cp1:/home/u/priv", out_dir.to_str().unwrap()])
        .assert_success();
    assert_eq!(
        std::fs::read_to_string(out_dir.join("priv/s")).unwrap(),
        "secret\n"
    );
    // Into it.
    let host_file = lab.tb.write("note.txt", "from the host\n");
    lab.run(&["cp", host_file.to_str().unwrap(), "cp1:/home/u/priv/"])
        .assert_success();
    lab.run(&["exec", "cp1", "cat", "/home/u/priv/note.txt"])
        .assert_success()
        .stdout_is("from the host\n");

    // Stopped: both ways, and the file is there when it runs again.
    lab.run(&["stop", "-t", "0", "cp1"]).assert_success();
    lab.run(&[
        "cp",
        host_file.to_str().unwrap(),
        "cp1:/home/u/priv/later.txt",
    ])
    .assert_success();
    let back = out_dir.join("back.txt");
    lab.run(&["cp", "cp1:/home/u/priv/note.txt", back.to_str().unwrap()])
        .assert_success();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "from the host\n");
    // Created, never started.
    lab.run(&[
        "create",
        "--name",
        "cp2",
        "--network",
        "none",
        &lab.image,
        "cat",
        "/in.txt",
    ])
    .assert_success();
    lab.run(&["cp", host_file.to_str().unwrap(), "cp2:/in.txt"])
        .assert_success();
    lab.run(&["start", "-a", "cp2"])
        .assert_success()
        .stdout_is("from the host\n");
    let release = out_dir.join("release");
    lab.run(&["cp", "cp2:/etc/alpine-release", release.to_str().unwrap()])
        .assert_success();
    assert_eq!(std::fs::read_to_string(&release).unwrap(), "3.20.3\n");
    // Nothing stays mounted for the copies.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(lab.tb.root().to_str().unwrap()),
        "a copy left a mount behind:\n{mounts}"
    );
}

/// `-v /path` makes an anonymous volume, filled from the image when it is empty (as is a
/// named volume on first use); `rm` keeps it, `rm -v` and `--rm` remove it.
#[test]
fn anonymous_volumes_copy_up_and_go_with_rm_v_and_rm() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let anonymous = |lab: &Lab| -> Vec<String> {
        let out = lab.run(&["volume", "ls", "-q"]);
        out.assert_success();
        out.out()
            .lines()
            .filter(|l| l.len() == 64)
            .map(String::from)
            .collect()
    };
    // The image's /etc/apk is copied into the new volume, owners and modes kept; a named
    // volume on first use gets the same.
    let out = lab.run(&[
        "run",
        "--name",
        "anon",
        "--network",
        "none",
        "-v",
        "/etc/apk",
        "-v",
        "etc-vol:/etc",
        &lab.image,
        "sh",
        "-c",
        "ls /etc/apk; stat -c '%U:%G %a' /etc/shadow; echo mine > /etc/apk/new",
    ]);
    out.assert_success()
        .stdout_contains("repositories")
        .stdout_contains("root:shadow 640");
    let vols = anonymous(&lab);
    assert_eq!(vols.len(), 1, "one anonymous volume: {vols:?}");
    assert_eq!(
        lab.run(&[
            "inspect",
            "--format",
            "{{range .Mounts}}{{.Destination}} {{end}}",
            "anon"
        ])
        .out()
        .trim(),
        "/etc/apk /etc"
    );
    // Not empty any more: a second start keeps what the container wrote.
    lab.run(&["start", "-a", "anon"]).assert_success();
    let data = lab.tb.root().join("volumes").join(&vols[0]).join("_data");
    assert!(data.join("new").is_file() && data.join("repositories").is_file());
    // `rm` keeps anonymous volumes, `rm -v` removes them (named ones stay).
    lab.run(&["rm", "anon"]).assert_success();
    assert_eq!(anonymous(&lab), vols);
    lab.run(&[
        "run",
        "--name",
        "anon2",
        "--network",
        "none",
        "-v",
        "/data",
        &lab.image,
        "true",
    ])
    .assert_success();
    assert_eq!(anonymous(&lab).len(), 2);
    // For Kubernetes an anonymous volume is an emptyDir.
    lab.run(&["generate", "kube", "anon2"])
        .assert_success()
        .stdout_contains("emptyDir: {}");
    lab.run(&["rm", "-v", "anon2"]).assert_success();
    assert_eq!(anonymous(&lab), vols);
    // `--rm` takes its anonymous volumes along, also when the container wrote files as
    // another user (owned by subordinate ids on the host).
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/data",
        &lab.image,
        "sh",
        "-c",
        "echo x > /data/f && chown 1000:1000 /data/f",
    ])
    .assert_success();
    until("the --rm volume to go", Duration::from_secs(10), || {
        anonymous(&lab) == vols
    });
    lab.run(&["volume", "ls", "-q"])
        .assert_success()
        .stdout_contains("etc-vol");
    lab.run(&["volume", "rm", "etc-vol", &vols[0]])
        .assert_success();
    // A bad -v still says what to write.
    lab.run(&["run", "--rm", "-v", "rel/path", &lab.image, "true"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("SRC:DEST");
}

#[test]
fn eight_parallel_lifecycles() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let script = format!(
        "set -e; for n in 1 2 3; do \
           $BOX run -d --name p$1-$n --network none {img} sleep 60 >/dev/null; \
           $BOX ps -a >/dev/null; \
           $BOX exec p$1-$n true; \
           $BOX rm -f p$1-$n >/dev/null; \
         done; \
         $BOX run -d --name same --network none {img} sleep 60 >/dev/null 2>&1 || true",
        img = lab.image
    );
    let runs: Vec<_> = (0..8)
        .map(|i| {
            lab.tb
                .sh(&script)
                .arg(i.to_string())
                .timeout(Duration::from_secs(120))
                .spawn()
        })
        .collect();
    for r in runs {
        r.wait().assert_success();
    }
    // Exactly one `same` won the name; nothing else is left; every record is readable.
    let out = lab.run(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    out.assert_success();
    assert_eq!(out.out(), "same running", "{out}");
    lab.run(&["rm", "-f", "same"]).assert_success();
    let left: Vec<_> = std::fs::read_dir(lab.tb.root().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64)
        .collect();
    assert!(left.is_empty(), "leftover containers: {left:?}");
}
