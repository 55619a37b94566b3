//! `box run` as boxtest: namespaces and id mapping, the layered root filesystem, exit codes,
//! signals, security defaults (capabilities, seccomp, masked paths, no leaked descriptors,
//! box's binary out of reach), `--rm` cleanup even after `kill -9`, and an `-it` shell
//! driven through tmux.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{Env, TestBox, TestUser, images, note, skip, which};

/// A store with alpine pulled; returns it and the image reference.
fn alpine(env: &'static Env) -> (TestBox, String) {
    let tb = env.test_box();
    let image = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    (tb, image)
}

/// `box run --rm --network none IMAGE ARGS...` in `tb`.
fn run(tb: &TestBox, image: &str, args: &[&str]) -> crate::harness::Outcome {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.push(image);
    a.extend_from_slice(args);
    tb.cmd(&a).run()
}

/// `box run --rm --network none FLAGS... IMAGE ARGS...`.
fn run_with(tb: &TestBox, flags: &[&str], image: &str, args: &[&str]) -> crate::harness::Outcome {
    let mut a = vec!["run", "--rm", "--network", "none"];
    a.extend_from_slice(flags);
    a.push(image);
    a.extend_from_slice(args);
    tb.cmd(&a).run()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The 64-hex container dirs of a store.
fn container_dirs(tb: &TestBox) -> Vec<PathBuf> {
    std::fs::read_dir(tb.root().join("containers"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.file_name().is_some_and(|n| n.len() == 64))
                .collect()
        })
        .unwrap_or_default()
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).map_or(true, |mut d| d.next().is_none())
}

/// Processes (not zombies) whose environment carries the test box's marker.
fn live_processes_of(tb: &TestBox) -> Vec<(i32, String)> {
    let marker = format!("BOX_IT_DIR={}", tb.dir().display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').next())
            .unwrap_or("");
        if state != "Z" && !state.is_empty() {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

#[test]
fn runs_a_command_in_alpine() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    run(&tb, &image, &["cat", "/etc/alpine-release"])
        .assert_success()
        .stdout_is("3.20.3\n");
    // The image's Cmd (/bin/sh) with stdin from -i.
    tb.cmd(["run", "--rm", "-i", "--network", "none", &image])
        .stdin("echo from-stdin\n")
        .run()
        .assert_success()
        .stdout_is("from-stdin\n");
    // Without --rm the container stays, exited, with its code.
    tb.cmd([
        "run",
        "--name",
        "kept",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "exit 3",
    ])
    .run()
    .assert_code(3);
    let dirs = container_dirs(&tb);
    assert_eq!(dirs.len(), 1, "the container stays: {dirs:?}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "exited", "{state}");
    assert_eq!(state["exit_code"], 3, "{state}");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("config.json")).unwrap()).unwrap();
    assert_eq!(config["name"], "kept");
    assert_eq!(config["command"], serde_json::json!(["sh", "-c", "exit 3"]));
    // The name is taken now.
    tb.cmd([
        "run",
        "--rm",
        "--name",
        "kept",
        "--network",
        "none",
        &image,
        "true",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("already in use");
}

#[test]
fn exit_codes_follow_docker() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    for code in [0, 1, 32] {
        run(&tb, &image, &["sh", "-c", &format!("exit {code}")]).assert_code(code);
    }
    run(&tb, &image, &["/etc"])
        .assert_code(126)
        .assert_one_line_error()
        .stderr_contains("permission denied");
    run(&tb, &image, &["/nope"])
        .assert_code(127)
        .assert_one_line_error()
        .stderr_contains("no such file");
    run(&tb, &image, &["nope"])
        .assert_code(127)
        .stderr_contains("not found in $PATH");
    // A bad option is box's own error.
    run_with(&tb, &["-w", "relative"], &image, &["true"])
        .assert_code(125)
        .assert_one_line_error();
    // A failed exec leaves nothing behind with --rm.
    wait_for("the trash to empty", Duration::from_secs(10), || {
        dir_is_empty(&tb.root().join("containers/.trash"))
    });
    assert!(container_dirs(&tb).is_empty());
}

/// Start `args` in the background with a volume on `work/sig`; returns once the container
/// wrote `ready` there.
fn spawn_ready(tb: &TestBox, flags: &[&str], image: &str, script: &str) -> crate::harness::Running {
    let dir = tb.mkdir("sig");
    let _ = std::fs::remove_file(dir.join("ready"));
    let vol = format!("{}:/sig", dir.display());
    let mut a = vec!["run", "--rm", "--network", "none", "-v", &vol];
    a.extend_from_slice(flags);
    let script = format!("touch /sig/ready; {script}");
    a.extend([image, "sh", "-c", &script]);
    let running = tb.cmd(&a).timeout(Duration::from_secs(60)).spawn();
    wait_for("the container to start", Duration::from_secs(30), || {
        dir.join("ready").exists()
    });
    running
}

#[test]
fn signals_reach_the_container_and_give_128_plus_n() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    // --init: the command is PID 2 with default dispositions; box's init reports 128+N.
    for (sig, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGHUP, 129),
    ] {
        let r = spawn_ready(&tb, &["--init"], &image, "exec sleep 60");
        r.signal(sig);
        r.wait().assert_code(code);
    }
    // Without --init the command is PID 1: it gets the signal if it handles it.
    let r = spawn_ready(
        &tb,
        &[],
        &image,
        "trap 'echo got-term; exit 7' TERM; sleep 60 & wait",
    );
    r.signal(libc::SIGTERM);
    r.wait().assert_code(7).stdout_contains("got-term");
    let r = spawn_ready(&tb, &[], &image, "trap 'exit 10' USR1; sleep 60 & wait");
    r.signal(libc::SIGUSR1);
    r.wait().assert_code(10);
}

#[test]
fn user_namespace_maps_root_to_the_user_and_the_subuid_range() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    let uid = env.user(TestUser::Boxtest).uid;
    run(&tb, &image, &["id", "-u"])
        .assert_success()
        .stdout_is("0\n");
    run(&tb, &image, &["id", "-g"])
        .assert_success()
        .stdout_is("0\n");
    let maps = run(
        &tb,
        &image,
        &["cat", "/proc/self/uid_map", "/proc/self/gid_map"],
    );
    maps.assert_success();
    let lines: Vec<Vec<&str>> = maps
        .out()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let uid_s = uid.to_string();
    let gid_s = env.user(TestUser::Boxtest).gid.to_string();
    // boxtest's range as scripts/setup-test-host chose it (one that overlaps nobody's).
    let range = |file: &str| -> Vec<String> {
        let text = std::fs::read_to_string(file).unwrap();
        let line = text.lines().find(|l| l.starts_with("boxtest:")).unwrap();
        line.split(':').skip(1).map(String::from).collect()
    };
    let (su, sg) = (range("/etc/subuid"), range("/etc/subgid"));
    assert_eq!(
        lines,
        vec![
            vec!["0", uid_s.as_str(), "1"],
            vec!["1", su[0].as_str(), su[1].as_str()],
            vec!["0", gid_s.as_str(), "1"],
            vec!["1", sg[0].as_str(), sg[1].as_str()],
        ],
        "{maps}"
    );
    // A file the container's root creates in a volume belongs to the user on the host.
    let vol = tb.mkdir("owned");
    run_with(
        &tb,
        &["-v", &format!("{}:/v", vol.display())],
        &image,
        &["sh", "-c", "echo hi > /v/by-root"],
    )
    .assert_success();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(vol.join("by-root")).unwrap().uid(), uid);
}

#[test]
fn layered_image_shows_owners_whiteouts_and_opaque_dirs() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    check_layers_view(&tb, &[], &image);
}

/// The merged view of test/layers (see tests/images/mklayers.py), with `flags`.
fn check_layers_view(tb: &TestBox, flags: &[&str], image: &str) {
    let script = r#"
        stat -c '%n %u:%g %a' /owned /owned/user.txt /owned/odd.txt /home/user
        test -e /base/keep.txt && echo keep-present
        test -e /base/remove-me.txt || echo whiteout-ok
        test -e /whdir || echo whdir-gone
        echo "opq: $(ls -A /opq | tr '\n' ' ')"
        cat /replace.txt /becomes-file
        stat -c '%F' /becomes-file /fifo
        cat /links/abs-symlink
        stat -c '%a %u:%g' /bin/suid
    "#;
    let out = run_with(tb, flags, image, &["sh", "-c", script]);
    out.assert_success()
        .stdout_contains("/owned 1000:1000 755")
        .stdout_contains("/owned/user.txt 1000:1000 644")
        .stdout_contains("/owned/odd.txt 1234:5678 640")
        .stdout_contains("/home/user 1000:1000 755")
        .stdout_contains("keep-present")
        .stdout_contains("whiteout-ok")
        .stdout_contains("whdir-gone")
        .stdout_contains("opq: upper.txt \n")
        .stdout_contains("v3\nlayer 3: was a directory in layer 1\n")
        .stdout_contains("regular file\nfifo\n")
        .stdout_contains("hardlinked content")
        .stdout_contains("4755 0:0");
}

#[test]
fn other_storage_drivers_show_the_same_view() {
    let env = require_env!();
    let image = env.image(images::LAYERS);
    for driver in ["vfs", "fuse-overlayfs"] {
        if driver == "fuse-overlayfs" && which("fuse-overlayfs").is_none() {
            skip("fuse-overlayfs is not installed");
            continue;
        }
        let tb = env.test_box();
        tb.cmd(["pull", "-q", &image]).run().assert_success();
        check_layers_view(&tb, &[&format!("--storage-driver={driver}")], &image);
    }
}

#[test]
fn read_only_root_tmpfs_and_volumes() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    run_with(&tb, &["--read-only"], &image, &["touch", "/x"])
        .assert_failure()
        .stderr_contains("Read-only file system");
    run_with(
        &tb,
        &["--read-only", "--tmpfs", "/run:size=1m"],
        &image,
        &["sh", "-c", "touch /run/x /dev/shm/y && echo ok"],
    )
    .assert_success()
    .stdout_is("ok\n");
    // Without --read-only the root is writable (and the write does not survive --rm).
    run(&tb, &image, &["sh", "-c", "echo hi > /x && cat /x"])
        .assert_success()
        .stdout_is("hi\n");

    let data = tb.mkdir("data");
    std::fs::write(data.join("in.txt"), "from the host\n").unwrap();
    let rw = format!("{}:/data", data.display());
    let ro = format!("{}:/data:ro", data.display());
    run_with(
        &tb,
        &["-v", &rw],
        &image,
        &["sh", "-c", "cat /data/in.txt && echo back > /data/out.txt"],
    )
    .assert_success()
    .stdout_is("from the host\n");
    assert_eq!(
        std::fs::read_to_string(data.join("out.txt")).unwrap(),
        "back\n"
    );
    run_with(&tb, &["-v", &ro], &image, &["touch", "/data/nope"])
        .assert_failure()
        .stderr_contains("Read-only file system");
    // A target that does not exist yet is created inside the root filesystem.
    run_with(
        &tb,
        &["-v", &format!("{}:/deep/new/dir", data.display())],
        &image,
        &["cat", "/deep/new/dir/in.txt"],
    )
    .assert_success();
    // A missing host path is box's error.
    run_with(&tb, &["-v", "/nonexistent-box-src:/x"], &image, &["true"])
        .assert_code(125)
        .assert_one_line_error();
}

#[test]
fn user_workdir_env_entrypoint_hostname() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    // podman's --passwd (the default) gives a numeric user an /etc/passwd entry.
    run_with(&tb, &["-u", "1000:1000"], &image, &["id"])
        .assert_success()
        .stdout_is("uid=1000(1000) gid=1000\n");
    run_with(&tb, &["-u", "guest"], &image, &["id", "-un"])
        .assert_success()
        .stdout_is("guest\n");
    run_with(&tb, &["-u", "nobody-such"], &image, &["id"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unable to find user nobody-such");
    run_with(&tb, &["-w", "/srv/new"], &image, &["pwd"])
        .assert_success()
        .stdout_is("/srv/new\n");
    let env_out = run_with(&tb, &["-e", "FOO=bar", "-e", "HOME=/x"], &image, &["env"]);
    env_out
        .assert_success()
        .stdout_contains("FOO=bar\n")
        .stdout_contains("HOME=/x\n")
        .stdout_contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
        .stdout_contains("HOSTNAME=");
    let envfile = tb.write("env.list", "# comment\nFROMFILE=1\n");
    run_with(
        &tb,
        &["--env-file", &envfile.display().to_string()],
        &image,
        &["sh", "-c", "echo $FROMFILE"],
    )
    .assert_success()
    .stdout_is("1\n");
    run_with(&tb, &["--entrypoint", "/bin/echo"], &image, &["a", "b"])
        .assert_success()
        .stdout_is("a b\n");
    let out = run_with(
        &tb,
        &["--hostname", "boxhost", "--name", "named1"],
        &image,
        &[
            "sh",
            "-c",
            "hostname; cat /etc/hostname; grep boxhost /etc/hosts",
        ],
    );
    out.assert_success()
        .stdout_contains("boxhost\nboxhost\n")
        .stdout_contains("named1");
}

#[test]
fn capabilities_seccomp_and_no_new_privileges() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    let status = run(&tb, &image, &["cat", "/proc/1/status"]);
    status
        .assert_success()
        .stdout_contains("CapEff:\t00000000800405fb")
        .stdout_contains("CapPrm:\t00000000800405fb")
        .stdout_contains("CapBnd:\t00000000800405fb")
        .stdout_contains("CapInh:\t0000000000000000")
        .stdout_contains("CapAmb:\t0000000000000000")
        .stdout_contains("NoNewPrivs:\t0")
        .stdout_contains("Seccomp:\t2");
    run_with(
        &tb,
        &["--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
        &image,
        &["grep", "CapEff", "/proc/self/status"],
    )
    .assert_success()
    .stdout_is("CapEff:\t0000000000001000\n");
    run_with(
        &tb,
        &["--security-opt", "no-new-privileges"],
        &image,
        &["grep", "NoNewPrivs", "/proc/self/status"],
    )
    .assert_success()
    .stdout_is("NoNewPrivs:\t1\n");
    run_with(
        &tb,
        &["--security-opt", "seccomp=unconfined"],
        &image,
        &["grep", "^Seccomp:", "/proc/self/status"],
    )
    .assert_success()
    .stdout_is("Seccomp:\t0\n");
    // A non-root user ends with no capabilities, as in docker.
    run_with(
        &tb,
        &["-u", "1000"],
        &image,
        &["grep", "CapEff", "/proc/self/status"],
    )
    .assert_success()
    .stdout_is("CapEff:\t0000000000000000\n");
    // The profile denies new namespaces and mounts.
    run(&tb, &image, &["unshare", "-U", "true"])
        .assert_failure()
        .stderr_contains("Operation not permitted");
}

#[test]
fn proc_and_sys_are_masked_and_read_only() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    let script = r#"
        for f in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug /proc/latency_stats; do
            test -e $f && echo "$f: $(wc -c < $f)"
        done
        for d in /proc/acpi /sys/firmware /proc/scsi; do
            test -d $d && echo "$d: [$(ls -A $d)]"
        done
        echo x > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-writable
        echo x > /proc/sysrq-trigger 2>/dev/null && echo sysrq-writable
        touch /sys/x 2>/dev/null && echo sys-writable
        grep -c ' /proc/sys ' /proc/self/mountinfo
        echo done
    "#;
    let out = run(&tb, &image, &["sh", "-c", script]);
    out.assert_success()
        .stdout_lacks("writable")
        .stdout_contains("done");
    for line in out.out().lines() {
        if let Some((path, size)) = line.split_once(": ") {
            assert!(
                size == "0" || size == "[]",
                "{path} must be masked (empty), got {size:?}"
            );
        }
    }
    // --privileged: no masks, no seccomp, every capability.
    run_with(
        &tb,
        &["--privileged"],
        &image,
        &["sh", "-c", "grep -E '^(Seccomp|CapEff)' /proc/self/status"],
    )
    .assert_success()
    .stdout_contains("Seccomp:\t0")
    .stdout_lacks("CapEff:\t00000000800405fb");
}

#[test]
fn no_host_descriptors_or_directories_leak_in() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    // ls is PID 1: its descriptors are 0, 1, 2 and the one it opened to list the directory.
    let out = run(&tb, &image, &["ls", "/proc/self/fd"]);
    out.assert_success();
    let fds: Vec<&str> = out.out().split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
    run(&tb, &image, &["readlink", "/proc/self/cwd"])
        .assert_success()
        .stdout_is("/\n");
    // The same with a box started with extra descriptors open (they must be closed).
    let out = tb
        .sh(r#"exec 7</etc/passwd 8>/dev/null; "$BOX" run --rm --network none "$1" ls /proc/self/fd"#)
        .arg(&image)
        .run();
    out.assert_success();
    let fds: Vec<&str> = out.out().split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
}

#[test]
fn box_binary_is_not_reachable_from_the_container() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    // PID 1 is the container's own program, never box.
    run(&tb, &image, &["readlink", "/proc/1/exe"])
        .assert_success()
        .stdout_is("/bin/busybox\n");
    // With --init PID 1 is box's code, non-dumpable: its exe link cannot be followed.
    let out = run_with(
        &tb,
        &["--init"],
        &image,
        &[
            "sh",
            "-c",
            "readlink /proc/1/exe || echo unreadable; cat /proc/1/comm",
        ],
    );
    out.assert_success()
        .stdout_contains("unreadable")
        .stdout_contains("box-init");
    let box_path = env.box_bin().display().to_string();
    out.stdout_lacks(&box_path);
}

#[test]
fn kill_9_of_box_leaves_no_process_mount_or_state() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    let r = spawn_ready(&tb, &["--name", "k9"], &image, "exec sleep 600");
    let dirs = container_dirs(&tb);
    assert_eq!(dirs.len(), 1);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "running", "{state}");
    let pid = state["pid"].as_i64().expect("pid") as i32;
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    r.signal(libc::SIGKILL);
    let out = r.wait();
    assert_eq!(out.code, 137, "{out}");
    wait_for(
        "the container and box's helpers to go",
        Duration::from_secs(15),
        || live_processes_of(&tb).is_empty(),
    );
    wait_for("the record to go", Duration::from_secs(15), || {
        container_dirs(&tb).is_empty()
            && dir_is_empty(&tb.root().join("containers/names"))
            && dir_is_empty(&tb.root().join("containers/.trash"))
    });
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&tb.dir().display().to_string()),
        "nothing of the container is mounted on the host"
    );
    // The name is free again.
    run_with(&tb, &["--name", "k9"], &image, &["true"]).assert_success();
}

#[test]
fn create_records_a_container_without_starting_it() {
    let env = require_env!(alpine);
    let (tb, image) = alpine(env);
    let out = tb
        .cmd([
            "create",
            "--name",
            "made",
            "--network",
            "none",
            &image,
            "echo",
            "hi",
        ])
        .run();
    out.assert_success();
    let id = out.out().trim().to_string();
    assert_eq!(id.len(), 64, "{out}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let dir = tb.root().join("containers").join(&id);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(
        std::fs::read_link(tb.root().join("containers/names/made")).unwrap(),
        PathBuf::from(&id)
    );
}

#[test]
fn runs_as_root_too() {
    let env = require_env!(alpine);
    let tb = env.test_box_as(TestUser::Root);
    let image = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    run(
        &tb,
        &image,
        &["sh", "-c", "id -u; grep CapEff /proc/self/status"],
    )
    .assert_success()
    .stdout_contains("0\nCapEff:\t00000000800405fb");
}

#[test]
fn interactive_shell_in_tmux() {
    let env = require_env!(alpine);
    if which("tmux").is_none() {
        skip("tmux is not installed");
        return;
    }
    let (tb, image) = alpine(env);
    let session = format!("box-it-{}", std::process::id());
    let done = tb.dir().join("tmux-exit");
    let line = tb
        .cmd(["run", "--rm", "-it", "--network", "none", &image, "sh"])
        .shell_line();
    // shell_line ends in `exec box ...`: a subshell keeps the exit code for us.
    // Written whole, then renamed: a poll never sees the file empty.
    let script = format!(
        "({line}); echo $? > {d}.tmp && mv {d}.tmp {d}",
        d = done.display()
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux")
    };
    let ok = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &script,
    ]);
    assert!(ok.status.success(), "{ok:?}");
    let pane = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned()
    };
    let keys = |k: &[&str]| {
        let mut a = vec!["send-keys", "-t", &session];
        a.extend_from_slice(k);
        tmux(&a);
    };
    let cleanup = scopeguard(|| {
        tmux(&["kill-session", "-t", &session]);
    });
    // The pane's size as tmux sees it (rows, columns), "ROWS COLS" as stty prints it.
    let size = || {
        String::from_utf8_lossy(
            &tmux(&[
                "display",
                "-p",
                "-t",
                &session,
                "#{pane_height} #{pane_width}",
            ])
            .stdout,
        )
        .trim()
        .to_string()
    };
    wait_for("the prompt", Duration::from_secs(30), || {
        pane().contains("/ #")
    });
    // busybox's line editor asks the terminal for the cursor position first; keys typed
    // before the answer are dropped.
    std::thread::sleep(Duration::from_millis(700));
    keys(&["stty size; tty", "Enter"]);
    let first = size();
    wait_for(
        &format!("stty size {first} in:\n{}", pane()),
        Duration::from_secs(10),
        || pane().contains(&first),
    );
    assert!(pane().contains("/dev/pts/0"), "{}", pane());
    tmux(&["resize-window", "-t", &session, "-x", "80", "-y", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    let second = size();
    assert_ne!(first, second);
    keys(&["clear; stty size", "Enter"]);
    wait_for(
        &format!("the new size {second} (SIGWINCH)"),
        Duration::from_secs(10),
        || pane().contains(&second),
    );
    keys(&["sleep 100", "Enter"]);
    std::thread::sleep(Duration::from_millis(500));
    keys(&["C-c"]);
    keys(&["echo interrupted-$?", "Enter"]);
    wait_for("Ctrl-C to reach sleep", Duration::from_secs(10), || {
        pane().contains("interrupted-130")
    });
    std::thread::sleep(Duration::from_millis(700));
    keys(&["exit 5", "Enter"]);
    wait_for(
        &format!("box to exit, in:\n{}", pane()),
        Duration::from_secs(10),
        || done.exists(),
    );
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "5");
    drop(cleanup);
    note("tmux: prompt, stty size, SIGWINCH, Ctrl-C and exit code checked");
}

/// Runs `f` when dropped (also when a test assertion panics).
fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
    struct Guard<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    Guard(f)
}

#[test]
fn keep_id_maps_the_user_to_itself_without_copying_the_image() {
    let env = require_env!();
    if which("fuse-overlayfs").is_none() {
        skip("fuse-overlayfs is not installed (keep-id needs it)");
        return;
    }
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    let me = env.user(TestUser::Boxtest);
    let vol = tb.mkdir("home");
    let script =
        "id -u; stat -c '%n %u:%g' /etc/passwd /owned/user.txt /owned/odd.txt /v; touch /v/mine";
    let out = run_with(
        &tb,
        &[
            "--userns",
            "keep-id",
            "-v",
            &format!("{}:/v", vol.display()),
        ],
        &image,
        &["sh", "-c", script],
    );
    out.assert_success()
        .stdout_contains(&format!("{}\n", me.uid))
        .stdout_contains("/etc/passwd 0:0")
        .stdout_contains("/owned/user.txt 1000:1000")
        .stdout_contains("/owned/odd.txt 1234:5678")
        .stdout_contains(&format!("/v {}:{}", me.uid, me.gid));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(vol.join("mine")).unwrap().uid(), me.uid);
    // -u 0 is the image's root, who owns /etc.
    run_with(
        &tb,
        &["--userns", "keep-id", "-u", "0"],
        &image,
        &["sh", "-c", "echo x >> /etc/passwd && echo ok"],
    )
    .assert_success()
    .stdout_is("ok\n");
}

/// A user without subordinate ids: pull works (owners squashed, with a warning that says
/// the fix), `run` says what to add to /etc/subuid or to use --userns=single, and
/// --userns=single runs.
#[test]
fn a_user_without_subids_pulls_and_runs_with_userns_single() {
    let env = require_env!(alpine);
    let tb = env.test_box_as(TestUser::NoSub);
    let image = env.image(images::ALPINE);
    let out = tb.cmd(["pull", &image]).run();
    out.assert_success()
        .stderr_contains("no subordinate ids in /etc/subuid")
        .stderr_contains("boxnosub:")
        .stderr_contains("--userns=single");
    tb.cmd(["run", "--rm", "--network", "none", &image, "true"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("to /etc/subuid")
        .stderr_contains("--userns=single");
    tb.cmd([
        "run",
        "--rm",
        "--userns=single",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "id -u; cat /etc/shadow >/dev/null && echo readable; touch /new && echo writable",
    ])
    .run()
    .assert_success()
    .stdout_is("0\nreadable\nwritable\n");
}

/// `--security-opt seccomp=PROFILE.json` (docker's format): a deny-list profile with an
/// errno and an argument condition, podman's own default profile when installed, and a
/// file that is not a profile.
#[test]
fn custom_seccomp_profiles() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let image = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    let profile = tb.write(
        "deny.json",
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 2048, "valueTwo": 2048, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["not_a_syscall_here"], "action": "SCMP_ACT_KILL"}]}"#,
    );
    let opt = format!("seccomp={}", profile.display());
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &opt,
        &image,
        "sh",
        "-c",
        "mkdir /x 2>&1; touch /f; chmod 755 /f && echo plain-chmod-ok; chmod 4755 /f || echo setuid-denied",
    ])
    .run()
    .assert_success()
    .stdout_contains("Permission denied")
    .stdout_contains("plain-chmod-ok")
    .stdout_contains("setuid-denied");
    // The profile is part of the container: the file may go, the container still starts.
    tb.cmd([
        "create",
        "--name",
        "kept",
        "--network",
        "none",
        "--security-opt",
        &opt,
        &image,
        "sh",
        "-c",
        "mkdir /y",
    ])
    .run()
    .assert_success();
    std::fs::remove_file(&profile).unwrap();
    tb.cmd(["start", "-a", "kept"]).run().assert_code(1);
    tb.cmd(["inspect", "--format", "{{.HostConfig.SecurityOpt}}", "kept"])
        .run()
        .assert_success()
        .stdout_contains("deny.json");

    let podman = Path::new("/usr/share/containers/seccomp.json");
    if podman.exists() {
        tb.cmd([
            "run",
            "--rm",
            "--network",
            "none",
            "--security-opt",
            "seccomp=/usr/share/containers/seccomp.json",
            &image,
            "sh",
            "-c",
            "grep Seccomp_filters /proc/self/status; keyctl 2>/dev/null; echo done",
        ])
        .run()
        .assert_success()
        .stdout_contains("done");
    } else {
        skip("no /usr/share/containers/seccomp.json (containers-common) to run podman's profile");
    }
    tb.cmd([
        "run",
        "--rm",
        "--security-opt",
        "seccomp=/etc/hostname",
        &image,
        "true",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("not a seccomp profile");
}
