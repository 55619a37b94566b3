//! Escape checks (issue 9): what a container can reach of the host.
//!
//! The image is `hostile/escape` from tests/hostile/registry.py (never built by box): static
//! busybox, `evil -> /tmp`, `up -> ../../../../../../tmp`, `data/evil -> /tmp`, and two
//! tiny static probes whose exit status is the errno of one syscall (0 when it worked):
//! `/probe/keyctl` and `/probe/unshare-user`.
//!
//! - no host fd reaches the container (not even one box inherited without CLOEXEC);
//! - PID 1 is the container's command; no process of the container's pid namespace shows
//!   box's executable, not even while `box exec` is entering it;
//! - `-v` targets that are symlinks in the image resolve inside the rootfs, never on the host;
//! - /proc/sys is read-only, /proc/kcore masked;
//! - the default seccomp profile denies keyctl and unshare(CLONE_NEWUSER) (EPERM), as docker's.
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::crash::{mounts_under, wait_processes_gone};
use crate::harness::{self, Env, Outcome, TestBox};
use crate::hostile::hostile_ref;

/// A store with the escape image pulled.
fn lab(env: &'static Env) -> (TestBox, String) {
    let tb = env.test_box();
    let image = hostile_ref(env, "escape");
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    (tb, image)
}

/// `box run --rm --network none [extra] IMAGE sh -c SCRIPT`.
fn sh(tb: &TestBox, image: &str, extra: &[&str], script: &str) -> Outcome {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sh", "-c", script]);
    tb.cmd(args).run()
}

fn box_binary_names(env: &Env) -> Vec<String> {
    let bin = env.box_bin().to_string_lossy().into_owned();
    let real = std::fs::canonicalize(env!("CARGO_BIN_EXE_box"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    vec![bin, real]
}

#[test]
fn no_host_fd_is_visible_in_the_container() {
    let env = require_env!();
    let (tb, image) = lab(env);
    // box itself inherits fd 9 open on a host file, without CLOEXEC.
    let host_file = tb.write("host-secret", "host secret\n");
    let secret = std::fs::File::open(&host_file).unwrap();
    let fd = secret.as_raw_fd();
    let cmd = tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "ls /proc/self/fd; readlink /proc/self/fd/* 2>/dev/null; true",
    ]);
    let display = cmd.display();
    let mut c = cmd.command();
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: dup2 and fcntl are async-signal-safe.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(fd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::fcntl(9, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("timed out: {display}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{display}: {status}\n{out}\n{err}");
    let fds: Vec<&str> = out
        .lines()
        .take_while(|l| l.trim().parse::<u32>().is_ok())
        .collect();
    assert_eq!(
        fds,
        ["0", "1", "2", "3"],
        "only stdio and the directory ls opened:\n{out}"
    );
    assert!(
        !out.contains("host-secret") && !out.contains(&tb.dir().to_string_lossy().to_string()),
        "a host file is reachable:\n{out}"
    );
    drop(secret);
}

#[test]
fn pid1_is_the_command_and_box_is_nowhere_in_the_pid_namespace() {
    let env = require_env!();
    let (tb, image) = lab(env);
    let out = sh(
        &tb,
        &image,
        &[],
        "readlink /proc/1/exe; ls -l /proc/[0-9]*/exe 2>&1",
    );
    out.assert_success();
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("/bin/busybox"), "PID 1 is sh:\n{out}");
    for name in box_binary_names(env) {
        assert!(!out.stdout.contains(&name), "box is visible:\n{out}");
    }
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.contains("/exe"))
            .all(|l| l.ends_with("/bin/busybox")),
        "every process of the container runs busybox:\n{out}"
    );
}

/// While `box exec` enters a running container, the container scans /proc: it must never
/// see a process whose executable is box's (CVE-2019-5736: the exec'd helper is box until
/// its execve, and a dumpable one lets the container open box's binary through
/// /proc/PID/exe).
#[test]
fn box_exec_never_shows_box_to_the_container() {
    let env = require_env!();
    let (tb, image) = lab(env);
    let scan = "end=$(( $(date +%s) + 20 )); \
        while [ $(date +%s) -lt $end ]; do \
          ls -l /proc/[0-9]*/exe 2>/dev/null | grep -e '-> ' | grep -v -e '-> /bin/busybox$' ; \
          [ -e /tmp/stop ] && break; \
        done; true";
    let name = "exec-scan";
    let scanner = tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            name,
            &image,
            "sh",
            "-c",
            scan,
        ])
        .timeout(Duration::from_secs(120))
        .spawn();
    // Wait until it runs.
    let start = Instant::now();
    loop {
        let ps = tb.cmd(["ps", "--format", "{{.Names}}"]).run();
        if ps.stdout.lines().any(|l| l.trim() == name) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut execs = 0;
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let o = tb.cmd(["exec", name, "true"]).run();
        if !o.success() {
            break;
        }
        execs += 1;
    }
    tb.cmd(["exec", name, "touch", "/tmp/stop"]).run();
    let out = scanner.wait();
    harness::note(&format!("{execs} execs while the container scanned /proc"));
    assert!(execs > 0, "box exec works:\n{out}");
    for bin in box_binary_names(env) {
        assert!(
            !out.stdout.contains(&bin),
            "the container saw box's executable through /proc while box exec ran:\n{out}"
        );
    }
    assert!(
        out.stdout.trim().is_empty(),
        "the container saw a foreign executable:\n{out}"
    );
}

#[test]
fn bind_mount_targets_that_are_image_symlinks_stay_in_the_rootfs() {
    let env = require_env!();
    let (tb, image) = lab(env);
    let vol = tb.mkdir("vol");
    tb.write("vol/marker", "from the host dir\n");
    let file = tb.write("file-vol", "a bind-mounted file\n");
    let nonce = format!("box-escape-{}-{}", std::process::id(), tb.dir().display())
        .replace(['/', '.'], "-");
    let cases = [
        ("/evil", vol.clone(), "dir-abs"),
        ("/up", vol.clone(), "dir-rel"),
        ("/data/evil", vol.clone(), "dir-nested"),
        ("/evil", file.clone(), "file-abs"),
    ];
    for (link, src, tag) in cases {
        let leaf = format!("{nonce}-{tag}");
        let dest = format!("{link}/{leaf}");
        let host = Path::new("/tmp").join(&leaf);
        let spec = format!("{}:{dest}", src.display());
        let script = if src.is_dir() {
            format!("cat {dest}/marker && cat /tmp/{leaf}/marker")
        } else {
            format!("cat {dest} && cat /tmp/{leaf}")
        };
        let out = sh(&tb, &image, &["-v", &spec], &script);
        harness::note(&format!(
            "-v {spec}: exit {} {}",
            out.code,
            out.err().lines().last().unwrap_or("")
        ));
        if out.success() {
            // Mounted where the symlink points *inside* the rootfs.
            let want = if src.is_dir() {
                "from the host dir\nfrom the host dir"
            } else {
                "a bind-mounted file\na bind-mounted file"
            };
            out.stdout_is(want);
        } else {
            out.assert_code(125).assert_one_line_error();
        }
        assert!(
            host.symlink_metadata().is_err(),
            "-v {spec} created {} on the host",
            host.display()
        );
        assert!(
            mounts_under(&host).is_empty(),
            "-v {spec} mounted on the host"
        );
    }
    assert!(wait_processes_gone(&tb, Duration::from_secs(20)).is_empty());
}

#[test]
fn proc_sys_is_read_only_and_kcore_masked() {
    let env = require_env!();
    let (tb, image) = lab(env);
    let before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    // Masked files become /dev/null, masked directories an empty tmpfs. Only what exists on
    // this kernel can be checked (/proc/kcore needs CONFIG_PROC_KCORE).
    let files: Vec<&str> = [
        "/proc/kcore",
        "/proc/keys",
        "/proc/timer_list",
        "/proc/interrupts",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    let dirs: Vec<&str> = ["/proc/acpi", "/sys/firmware"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect();
    if !Path::new("/proc/kcore").exists() {
        harness::note("this kernel has no /proc/kcore: checking the other masked paths");
    }
    let mut script = String::from(
        "cat /proc/sys/kernel/ostype; \
         if echo box-escape > /proc/sys/kernel/domainname; then echo WROTE-SYS; fi; ",
    );
    if Path::new("/proc/sysrq-trigger").exists() {
        script.push_str("if echo h > /proc/sysrq-trigger; then echo WROTE-SYSRQ; fi; ");
    }
    for f in &files {
        script.push_str(&format!(
            "echo {f} $(wc -c < {f}) $(stat -c '%F %t:%T' {f}); "
        ));
    }
    for d in &dirs {
        script.push_str(&format!("echo {d} entries: $(ls -A {d} | wc -l); "));
    }
    script.push_str("true");
    let out = sh(&tb, &image, &[], &script);
    out.assert_success()
        .stdout_contains("Linux")
        .stdout_lacks("WROTE-SYS")
        .stderr_contains("Read-only file system");
    for f in &files {
        out.stdout_contains(&format!("{f} 0 character special file 1:3"));
    }
    for d in &dirs {
        out.stdout_contains(&format!("{d} entries: 0"));
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        before
    );
}

#[test]
fn default_seccomp_denies_keyctl_and_nested_user_namespaces() {
    let env = require_env!();
    let (tb, image) = lab(env);
    let out = sh(
        &tb,
        &image,
        &[],
        "grep '^Seccomp:' /proc/self/status; \
         /probe/keyctl; echo keyctl=$?; \
         /probe/unshare-user; echo unshare=$?; \
         unshare -U true; echo unshare-cmd=$?",
    );
    out.assert_success()
        .stdout_contains("Seccomp:\t2")
        .stdout_contains(&format!("keyctl={}", libc::EPERM))
        .stdout_contains(&format!("unshare={}", libc::EPERM))
        .stderr_contains("Operation not permitted");
    assert!(
        !out.stdout.contains("unshare-cmd=0"),
        "busybox unshare -U worked:\n{out}"
    );
    // The probes themselves work: without the filter keyctl succeeds.
    let control = sh(
        &tb,
        &image,
        &["--security-opt", "seccomp=unconfined"],
        "grep '^Seccomp:' /proc/self/status; /probe/keyctl; echo keyctl=$?",
    );
    control
        .assert_success()
        .stdout_contains("Seccomp:\t0")
        .stdout_contains("keyctl=0");
}
