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
    // A reader that goes away (`| head -1`) ends a container that keeps writing, as if it
    // wrote to that pipe itself.
    let t = std::time::Instant::now();
    lab.tb
        .sh(&format!(
            "\"$BOX\" run --rm --network none {} yes | head -1",
            lab.image
        ))
        .run()
        .assert_success()
        .stdout_is("y\n");
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
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

#[test]
fn log_driver_and_log_opts() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for driver in ["none", "passthrough"] {
        let name = format!("d-{driver}");
        lab.run(&run_args(
            &lab,
            &["--log-driver", driver, "--name", &name],
            &["echo", "hi"],
        ))
        .assert_success()
        .stdout_is("hi\n");
        lab.run(&["logs", &name])
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(&format!("uses the {driver} log driver"));
    }
    // path= puts the log where asked; json-file is accepted (same format as podman's).
    let dir = lab.tb.mkdir("logs");
    let path = dir.join("x.log");
    let opt = format!("path={}", path.display());
    lab.run(&run_args(
        &lab,
        &[
            "--log-driver",
            "json-file",
            "--log-opt",
            &opt,
            "--name",
            "p",
        ],
        &["echo", "hi"],
    ))
    .assert_success();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.trim_end().ends_with(" stdout F hi"), "{text}");
    lab.run(&["logs", "p"]).assert_success().stdout_is("hi\n");
    lab.run(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "p"])
        .assert_success()
        .stdout_is("json-file\n");
    // max-size= rotates: the file never grows far past it.
    let path = dir.join("r.log");
    let opt = format!("path={}", path.display());
    lab.run(&run_args(
        &lab,
        &["--log-opt", &opt, "--log-opt", "max-size=4k", "--rm"],
        &["seq", "1", "2000"],
    ))
    .assert_success();
    assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
    assert!(dir.join("r.log.1").exists());
    lab.run(&run_args(&lab, &["--log-opt", "bogus=1"], &["true"]))
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("--log-opt bogus=1: unsupported");
}

#[test]
fn ulimit_umask_shm_size_and_groups() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&run_args(
        &lab,
        &[
            "--rm",
            "--ulimit",
            "nofile=100:200",
            "--ulimit",
            "core=0",
            "--umask",
            "0077",
            "--shm-size",
            "1m",
            "--group-add",
            "wheel",
            "--group-add",
            "1234",
            "-u",
            "nobody",
        ],
        &[
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; ulimit -c; umask; df -k /dev/shm | tail -1 | awk '{print $2}'; id -G",
        ],
    ))
    .assert_success()
    .stdout_is("100\n200\n0\n0077\n1024\n65534 10 1234\n");
    // The defaults: podman's umask and /dev/shm.
    lab.run(&run_args(
        &lab,
        &["--rm", "--ulimit", "host"],
        &[
            "sh",
            "-c",
            "umask; df -k /dev/shm | tail -1 | awk '{print $2}'",
        ],
    ))
    .assert_success()
    .stdout_is("0022\n65536\n");
    for (flag, value, msg) in [
        ("--ulimit", "bogus=1", "unknown resource"),
        ("--ulimit", "nofile=10:5", "above the hard limit"),
        ("--umask", "999", "octal"),
        ("--shm-size", "lots", "--shm-size lots"),
        ("--group-add", "nosuchgroup", "no such group"),
    ] {
        lab.run(&run_args(&lab, &["--rm", flag, value], &["true"]))
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(msg);
    }
    // Above the user's own hard limit: a rootless container cannot.
    lab.run(&run_args(
        &lab,
        &["--rm", "--ulimit", "nofile=100:99999999"],
        &["true"],
    ))
    .assert_code(125)
    .stderr_contains("cannot raise the hard limit");
    // keep-groups: accepted alone, refused with other groups.
    lab.run(&run_args(
        &lab,
        &["--rm", "--group-add", "keep-groups"],
        &["true"],
    ))
    .assert_success();
    lab.run(&run_args(
        &lab,
        &["--rm", "--group-add", "keep-groups", "--group-add", "10"],
        &["true"],
    ))
    .assert_code(125)
    .stderr_contains("cannot be combined");
}

#[test]
fn pidfile_and_cidfile() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let dir = lab.tb.mkdir("files");
    let (pidfile, cidfile) = (dir.join("pid"), dir.join("cid"));
    let id = lab.detach(
        &[
            "--name",
            "c",
            "--pidfile",
            pidfile.to_str().unwrap(),
            "--cidfile",
            cidfile.to_str().unwrap(),
        ],
        &["sleep", "300"],
    );
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    let pid = lab.run(&["inspect", "-f", "{{.State.Pid}}", "c"]);
    pid.assert_success();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), pid.out());
    // A cidfile that exists is never overwritten; nothing is created.
    // (a name that is no hex prefix: `exists d` would find an id starting with d)
    lab.run(&[
        "create",
        "--name",
        "second",
        "--cidfile",
        cidfile.to_str().unwrap(),
        &lab.image,
    ])
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("exists");
    lab.run(&["container", "exists", "second"]).assert_code(1);
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
}

#[test]
fn label_file_and_annotations() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let file = lab.tb.write("labels", "a=1\n# a comment\n\nb=2\n");
    lab.run(&[
        "create",
        "--name",
        "c",
        "--label-file",
        file.to_str().unwrap(),
        "-l",
        "b=3",
        "--annotation",
        "k=v",
        &lab.image,
    ])
    .assert_success();
    lab.run(&[
        "inspect",
        "-f",
        "{{.Config.Labels}} {{.Config.Annotations}}",
        "c",
    ])
    .assert_success()
    .stdout_is("map[a:1 b:3] map[k:v]\n");
    lab.run(&["create", "--annotation", "=v", &lab.image])
        .assert_code(125)
        .stderr_contains("--annotation");
}

#[test]
fn tz_binds_the_hosts_zone_read_only() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    if !std::path::Path::new("/usr/share/zoneinfo/Europe/Berlin").exists() {
        crate::harness::skip("tzdata is not installed");
        return;
    }
    let out = lab.run(&run_args(
        &lab,
        &["--rm", "--tz", "Europe/Berlin"],
        &[
            "sh",
            "-c",
            "date +%Z; echo x > /etc/localtime || echo read-only",
        ],
    ));
    out.assert_success();
    let zone = out.out().lines().next().unwrap();
    assert!(zone == "CET" || zone == "CEST", "{out}");
    assert!(out.out().ends_with("read-only"), "{out}");
    lab.run(&run_args(&lab, &["--rm", "--tz", "local"], &["true"]))
        .assert_success();
    for bad in ["Nowhere/Atlantis", "../../etc/passwd"] {
        lab.run(&run_args(&lab, &["--rm", "--tz", bad], &["true"]))
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("--tz");
    }
}

#[test]
fn sysctl_only_namespaced_ones() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&run_args(
        &lab,
        &["--rm", "--sysctl", "net.ipv4.ip_unprivileged_port_start=80"],
        &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
    ))
    .assert_success()
    .stdout_is("80\n");
    lab.run(&run_args(
        &lab,
        &["--rm", "--sysctl", "kernel.pid_max=100"],
        &["true"],
    ))
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("not namespaced");
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        &lab.image,
        "true",
    ])
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("--network host");
}

#[test]
fn mount_flag_binds_volumes_and_tmpfs() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let dir = lab.tb.mkdir("data");
    lab.tb.write("data/f", "hello\n");
    let bind = format!("type=bind,src={},dst=/data,ro", dir.display());
    lab.run(&run_args(
        &lab,
        &[
            "--rm",
            "--mount",
            &bind,
            "--mount",
            "type=volume,src=vol1,dst=/v",
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
        ],
        &[
            "sh",
            "-c",
            "cat /data/f; touch /data/g 2>/dev/null || echo ro; touch /v/x && echo vol; df -k /t | tail -1 | awk '{print $2}'",
        ],
    ))
    .assert_success()
    .stdout_is("hello\nro\nvol\n1024\n");
    lab.run(&["volume", "exists", "vol1"]).assert_success();
    lab.run(&run_args(
        &lab,
        &["--rm", "--mount", "type=devpts,dst=/i"],
        &["true"],
    ))
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("type=devpts is not supported");
    lab.run(&run_args(
        &lab,
        &["--rm", "--mount", "type=bind,src=/tmp"],
        &["true"],
    ))
    .assert_code(125)
    .stderr_contains("dst=");
}

#[test]
fn env_host_timeout_requires_and_attach() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let mut args = run_args(&lab, &["--rm", "--env-host", "-e", "B=cli"], &[]);
    args.extend_from_slice(&["sh", "-c", "echo $FROM_HOST $B"]);
    lab.tb
        .cmd(&args)
        .env("FROM_HOST", "yes")
        .env("B", "host")
        .run()
        .assert_success()
        .stdout_is("yes cli\n");
    // --timeout: killed after it, with SIGKILL's code.
    let t = std::time::Instant::now();
    lab.run(&run_args(
        &lab,
        &["--rm", "--timeout", "1"],
        &["sleep", "60"],
    ))
    .assert_code(137);
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    // --requires: started first.
    lab.run(&[
        "create",
        "--network",
        "none",
        "--name",
        "dep",
        &lab.image,
        "sleep",
        "300",
    ])
    .assert_success();
    lab.run(&run_args(&lab, &["--rm", "--requires", "dep"], &["true"]))
        .assert_success();
    assert_eq!(lab.status("dep"), "running");
    lab.run(&run_args(
        &lab,
        &["--rm", "--requires", "nosuch"],
        &["true"],
    ))
    .assert_code(125)
    .stderr_contains("--requires nosuch");
    // -a: only the streams asked for are shown (both are logged).
    lab.run(&run_args(
        &lab,
        &["-a", "stderr", "--name", "att"],
        &["sh", "-c", "echo out; echo err >&2"],
    ))
    .assert_success()
    .stdout_is("")
    .stderr_contains("err");
    lab.run(&["logs", "att"])
        .assert_success()
        .stdout_is("out\n");
}

#[test]
fn accepted_and_refused_flags() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&run_args(
        &lab,
        &["--rm", "--cgroups", "disabled", "--cgroupns", "host"],
        &["true"],
    ))
    .assert_success();
    lab.run(&run_args(
        &lab,
        &["--rm", "--decryption-key", "k.pem"],
        &["true"],
    ))
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("encrypted images");
    // --device: a node the user can open is bound in; one it cannot is refused.
    lab.run(&run_args(
        &lab,
        &["--rm", "--device", "/dev/null:/dev/mynull"],
        &["sh", "-c", "echo x > /dev/mynull && echo ok"],
    ))
    .assert_success()
    .stdout_is("ok\n");
    // A root-only node (tty0 or the like, 0600 root).
    use std::os::unix::fs::PermissionsExt;
    let private = [
        "/dev/tty0",
        "/dev/console",
        "/dev/kvm",
        "/dev/hwrng",
        "/dev/mem",
    ]
    .into_iter()
    .find(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o066 == 0));
    if let Some(dev) = private {
        lab.run(&run_args(&lab, &["--rm", "--device", dev], &["true"]))
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("cannot open it");
    }
    lab.run(&run_args(
        &lab,
        &["--rm", "--device", "/etc/passwd"],
        &["true"],
    ))
    .assert_code(125)
    .stderr_contains("not a device node");
}

#[test]
fn publish_takes_bracketed_ipv4_and_ranges() {
    let env = require_env!(alpine);
    if crate::harness::which("pasta").is_none() {
        crate::harness::skip("pasta is not installed");
        return;
    }
    let lab = Lab::new(env);
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let one = free();
    // Two free ports in a row.
    let two = loop {
        let p = free();
        if p < 65535 && std::net::TcpListener::bind(("0.0.0.0", p + 1)).is_ok() && p != one {
            break p;
        }
    };
    let bracketed = format!("[127.0.0.1]:{one}:80");
    let range = format!("{two}-{}:81-82", two + 1);
    lab.run(&[
        "run", "-d", "--name", "w", "-p", &bracketed, "-p", &range, &lab.image, "sleep", "300",
    ])
    .assert_success();
    lab.run(&["port", "w"])
        .assert_success()
        .stdout_contains(&format!("80/tcp -> 127.0.0.1:{one}"))
        .stdout_contains(&format!("81/tcp -> 0.0.0.0:{two}"))
        .stdout_contains(&format!("82/tcp -> 0.0.0.0:{}", two + 1));
    // One container port's host side; --all prefixes the short id; a port not published
    // is an error (podman).
    lab.run(&["port", "w", "81"])
        .assert_success()
        .stdout_is(&format!("0.0.0.0:{two}\n"));
    lab.run(&["port", "w", "80/tcp"])
        .assert_success()
        .stdout_is(&format!("127.0.0.1:{one}\n"));
    let short = lab.id("w")[..12].to_string();
    lab.run(&["port", "-a", "82"])
        .assert_success()
        .stdout_is(&format!("{short}\t0.0.0.0:{}\n", two + 1));
    lab.run(&["port", "-l", "80"])
        .assert_success()
        .stdout_is(&format!("127.0.0.1:{one}\n"));
    lab.run(&["port", "w", "80/udp"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("no port 80/udp");
    // ps shows them as podman: host->container, runs as one range.
    lab.run(&["ps", "--format", "{{.Ports}}"])
        .assert_success()
        .stdout_contains(&format!("127.0.0.1:{one}->80/tcp"))
        .stdout_contains(&format!("0.0.0.0:{two}-{}->81-82/tcp", two + 1));
}

#[test]
fn keep_id_adds_the_user_and_keeps_etc_files_roots() {
    let env = require_env!(alpine);
    if crate::harness::which("fuse-overlayfs").is_none() {
        crate::harness::skip("fuse-overlayfs is not installed (keep-id needs it)");
        return;
    }
    let lab = Lab::new(env);
    let me = env.user(crate::harness::TestUser::Boxtest);
    let script = "whoami; id -gn; stat -c '%n %u:%g' /etc/hosts /etc/resolv.conf /etc/hostname; \
                  for f in /etc/hosts /etc/resolv.conf /etc/hostname; do \
                  (echo x >> $f) 2>/dev/null && echo \"$f writable\"; done; echo end";
    let run = |name: &str, cmd: &str| {
        lab.run(&run_args(
            &lab,
            &["--userns", "keep-id", "--name", name],
            &["sh", "-c", cmd],
        ))
    };
    let out = run("k", script);
    out.assert_success()
        .stdout_contains(&format!("{}\n", me.name))
        .stdout_contains("/etc/hosts 0:0")
        .stdout_contains("/etc/resolv.conf 0:0")
        .stdout_contains("/etc/hostname 0:0")
        .stdout_lacks("writable");
    // Started again (its files rewritten by box), the same.
    lab.run(&["start", "-a", "k"])
        .assert_success()
        .stdout_contains(&format!("{}\n", me.name))
        .stdout_lacks("writable");
}

#[test]
fn network_helper_options_reach_pasta_and_slirp4netns() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    for (network, iface, tool) in [
        ("pasta:--mtu,1400", "eth0", "pasta"),
        (
            "slirp4netns:mtu=1400,allow_host_loopback=false",
            "tap0",
            "slirp4netns",
        ),
    ] {
        if crate::harness::which(tool).is_none() {
            crate::harness::skip(&format!("{tool} is not installed"));
            continue;
        }
        let mtu = format!("/sys/class/net/{iface}/mtu");
        lab.run(&["run", "--rm", "--network", network, &lab.image, "cat", &mtu])
            .assert_success()
            .stdout_is("1400\n");
    }
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "slirp4netns:bogus=1",
        &lab.image,
        "true",
    ])
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("unsupported option");
}

#[test]
fn preserve_fds_passes_the_descriptors_asked_for() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let file = lab.tb.write("secret", "passed in\n");
    let script = format!(
        "exec 3<{} 4<{}; \"$BOX\" run --rm --network none --preserve-fds 1 {} sh -c 'cat <&3; cat <&4 2>/dev/null || echo no fd 4'",
        file.display(),
        file.display(),
        lab.image
    );
    lab.tb
        .sh(&script)
        .run()
        .assert_success()
        .stdout_is("passed in\nno fd 4\n");
}

/// `run -d --preserve-fds N`: the detached container gets the descriptors through its
/// monitor, which keeps no copy (nor does the supervising box): only the container's
/// process holds the file once it runs. `exec --preserve-fds N` passes them too, and a
/// range with a closed descriptor is refused as podman refuses it.
#[test]
fn preserve_fds_reach_detached_containers_and_exec() {
    use std::time::Duration;
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let file = lab.tb.write("detached-secret", "passed in\n");
    let f = file.display();
    let script = format!(
        "exec 3<{f} 4<{f}; \"$BOX\" run -d --name pfd --network none --preserve-fds 1 {} sh -c 'cat <&3; cat <&4 2>/dev/null || echo no fd 4; exec sleep 600 3<&3'",
        lab.image
    );
    lab.tb.sh(&script).run().assert_success();
    crate::harness::lab::until(
        "the detached container's output",
        Duration::from_secs(20),
        || lab.run(&["logs", "pfd"]).out().contains("no fd 4"),
    );
    lab.run(&["logs", "pfd"])
        .assert_success()
        .stdout_is("passed in\nno fd 4\n");
    let pid = lab.state(&lab.id("pfd"))["pid"].as_i64().expect("pid") as i32;
    let holders: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd")).is_ok_and(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == file))
            })
        })
        .collect();
    assert_eq!(holders, [pid], "only the container holds the file");

    let exec = format!(
        "exec 3<{f}; \"$BOX\" exec --preserve-fds 1 pfd sh -c 'cat <&3'; \"$BOX\" exec pfd sh -c 'cat <&3 2>/dev/null || echo closed'"
    );
    lab.tb
        .sh(&exec)
        .run()
        .assert_success()
        .stdout_is("passed in\nclosed\n");

    let missing = format!(
        "exec 3<{f}; \"$BOX\" run --rm --network none --preserve-fds 2 {} true",
        lab.image
    );
    lab.tb
        .sh(&missing)
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("file descriptor 4 is not available");
}

/// `--storage-opt`: the keys box honours take effect (fuse-overlayfs as the mount program,
/// nodev/nosuid on the root filesystem, chown errors ignored on import), every other key
/// is refused naming it.
#[test]
fn storage_opt_keys_take_effect_or_are_refused() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let root_mount = ["sh", "-c", "grep -m1 ' / ' /proc/self/mounts"];
    let mut args = vec![
        "--storage-opt",
        "overlay.mount_program=/usr/bin/fuse-overlayfs",
        "run",
        "--rm",
    ];
    args.extend(run_args(&lab, &[], &root_mount).into_iter().skip(1));
    lab.run(&args).assert_success().stdout_contains(" fuse");
    let mut args = vec![
        "--storage-opt",
        "overlay.mountopt=nodev,nosuid",
        "run",
        "--rm",
    ];
    args.extend(run_args(&lab, &[], &root_mount).into_iter().skip(1));
    let out = lab.run(&args);
    out.assert_success();
    let opts = out
        .out()
        .split_whitespace()
        .nth(3)
        .unwrap_or("")
        .to_string();
    assert!(
        opts.split(',').any(|o| o == "nodev") && opts.split(',').any(|o| o == "nosuid"),
        "{out}"
    );

    // A file owned by an id outside boxtest's subordinate range.
    let dir = lab.tb.mkdir("high");
    std::fs::write(dir.join("f"), "x").unwrap();
    let tar = lab.tb.work().join("high.tar");
    let made = std::process::Command::new("tar")
        .args(["--owner=4000000", "--group=4000000", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&dir)
        .arg("f")
        .status()
        .unwrap();
    assert!(made.success());
    let tar = tar.to_str().unwrap();
    lab.run(&["import", tar, "high:1"])
        .assert_code(125)
        .stderr_contains("outside your subordinate id range");
    lab.run(&[
        "--storage-opt",
        "overlay.ignore_chown_errors=true",
        "import",
        tar,
        "high:1",
    ])
    .assert_success();
    lab.run(&["image", "exists", "high:1"]).assert_success();

    for (opt, says) in [
        ("size=10G", "--storage-opt size: not supported by box"),
        (
            "overlay.force_mask=shared",
            "--storage-opt overlay.force_mask: not supported",
        ),
        ("overlay.mountopt=metacopy=on", "unsupported mount option"),
        (
            "overlay.mount_program=/nonexistent",
            "not an executable file",
        ),
    ] {
        lab.run(&["--storage-opt", opt, "ps"])
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(says);
    }
    lab.run(&[
        "--storage-driver",
        "vfs",
        "--storage-opt",
        "overlay.mount_program=/usr/bin/fuse-overlayfs",
        "ps",
    ])
    .assert_code(125)
    .stderr_contains("needs the fuse-overlayfs driver");
}

/// `--passwd-entry`: the /etc/passwd line added for a numeric --user, podman's variables
/// replaced; a line that is not one for that uid is refused.
#[test]
fn passwd_entry_shapes_the_added_user() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let entry = "app:x:$UID:$GID:$NAME:/home/app:/bin/sh";
    lab.run(&run_args(
        &lab,
        &["--rm", "-u", "1234:1234", "--passwd-entry", entry],
        &["sh", "-c", "grep ^app: /etc/passwd; whoami"],
    ))
    .assert_success()
    .stdout_is("app:x:1234:1234:container user:/home/app:/bin/sh\napp\n");
    lab.run(&run_args(
        &lab,
        &["--rm", "-u", "1234", "--passwd-entry", "app:x:0:0"],
        &["true"],
    ))
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("--passwd-entry");
}

#[test]
fn global_noout_tmpdir_cgroup_manager_storage_opt() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tmp = lab.tb.mkdir("tmp");
    lab.run(&[
        "--noout",
        "--cgroup-manager",
        "cgroupfs",
        "--storage-opt",
        "overlay.mount_program=/usr/bin/fuse-overlayfs",
        "--tmpdir",
        tmp.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "none",
        &lab.image,
        "echo",
        "hidden",
    ])
    .assert_success()
    .stdout_is("");
    lab.run(&["--noout", "ps", "-a"])
        .assert_success()
        .stdout_is("");
    lab.run(&["--tmpdir", "/nonexistent", "ps"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("--tmpdir");
    lab.run(&["--cgroup-manager", "bogus", "ps"])
        .assert_code(125);
    lab.run(&[
        "--cgroup-manager",
        "cgroupfs",
        "info",
        "--format",
        "{{.Host.CgroupManager}}",
    ])
    .assert_success()
    .stdout_is("cgroupfs\n");
    // systemd cannot be honoured without systemd (this host): podman warns and falls
    // back to cgroupfs.
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        lab.run(&[
            "--cgroup-manager",
            "systemd",
            "info",
            "--format",
            "{{.Host.CgroupManager}}",
        ])
        .assert_success()
        .stdout_is("cgroupfs\n")
        .stderr_contains("falling back to --cgroup-manager=cgroupfs");
    }
}

#[test]
fn passwd_and_hostuser_add_etc_passwd_entries() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let me = env.user(crate::harness::TestUser::Boxtest);
    lab.run(&run_args(
        &lab,
        &["--rm", "-u", "1234", "--hostuser", &me.name],
        &["sh", "-c", "whoami; grep -c \"^$0:\" /etc/passwd", &me.name],
    ))
    .assert_success()
    .stdout_is("1234\n1\n");
    lab.run(&run_args(
        &lab,
        &["--rm", "-u", "1234", "--passwd=false"],
        &["sh", "-c", "grep -c ^1234: /etc/passwd"],
    ))
    .assert_code(1)
    .stdout_is("0\n");
    lab.run(&run_args(
        &lab,
        &["--rm", "--hostuser", "no-such-user-here"],
        &["true"],
    ))
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("--hostuser");
}

#[test]
fn uidmap_maps_into_the_users_own_ranges() {
    let env = require_env!(alpine);
    if crate::harness::which("fuse-overlayfs").is_none() {
        crate::harness::skip("fuse-overlayfs is not installed (--uidmap needs it)");
        return;
    }
    let lab = Lab::new(env);
    let sub = std::fs::read_to_string("/etc/subuid").unwrap();
    let me = env.user(crate::harness::TestUser::Boxtest);
    let start: u32 = sub
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:", me.name)))
        .and_then(|r| r.split(':').next()?.parse().ok())
        .expect("boxtest has a subuid range");
    let out = lab.run(&run_args(
        &lab,
        &["--rm", "--uidmap", "0:1:1000"],
        &[
            "sh",
            "-c",
            "head -1 /proc/self/uid_map; id -u; stat -c %u /etc/passwd",
        ],
    ));
    out.assert_success();
    let lines: Vec<&str> = out.out().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["0", &start.to_string(), "1000"],
        "{out}"
    );
    assert_eq!(&lines[1..], ["0", "0"], "{out}");
    // box cp into a created (never started) container writes with the container's own
    // mapping: the file is root's inside, not nobody's.
    let src = lab.tb.write("cp-src", "x");
    let mut create = run_args(
        &lab,
        &["--name", "um", "--uidmap", "0:1:1000"],
        &["stat", "-c", "%u", "/f"],
    );
    create[0] = "create";
    lab.run(&create).assert_success();
    lab.run(&["cp", &src.display().to_string(), "um:/f"])
        .assert_success();
    lab.run(&["start", "-a", "um"])
        .assert_success()
        .stdout_is("0\n");
    for (flag, value, msg) in [
        ("--uidmap", "0:1:99999999", "is not yours"),
        ("--uidmap", "0:1", "CONTAINER:INTERMEDIATE:SIZE"),
        ("--subuidname", "root", "your own subordinate ids"),
    ] {
        lab.run(&run_args(&lab, &["--rm", flag, value], &["true"]))
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(msg);
    }
}

#[test]
fn keep_id_with_uid_and_gid_maps_the_user_there() {
    let env = require_env!(alpine);
    if crate::harness::which("fuse-overlayfs").is_none() {
        crate::harness::skip("fuse-overlayfs is not installed (keep-id needs it)");
        return;
    }
    let lab = Lab::new(env);
    let me = env.user(crate::harness::TestUser::Boxtest);
    let dir = lab.tb.mkdir("mine");
    let v = format!("{}:/m", dir.display());
    lab.run(&run_args(
        &lab,
        &["--rm", "--userns", "keep-id:uid=2000,gid=3000", "-v", &v],
        &[
            "sh",
            "-c",
            "id -u; id -g; whoami; stat -c '%u:%g' /m /etc/passwd",
        ],
    ))
    .assert_success()
    .stdout_is(&format!("2000\n3000\n{}\n2000:3000\n0:0\n", me.name));
    lab.run(&run_args(
        &lab,
        &["--rm", "--userns", "keep-id:uid=x"],
        &["true"],
    ))
    .assert_code(125)
    .stderr_contains("--userns");
}

#[test]
fn mount_type_image_shows_an_image_read_only() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let layers = env.image(crate::harness::images::LAYERS);
    lab.run(&["pull", "-q", &layers]).assert_success();
    let img = format!("type=image,src={},dst=/img", lab.image);
    let multi = format!("type=image,src={layers},dst=/layers");
    lab.run(&run_args(
        &lab,
        &["--rm", "--mount", &img, "--mount", &multi],
        &[
            "sh",
            "-c",
            "test -f /img/etc/alpine-release && echo alpine; test -d /layers && echo layers; touch /img/x 2>/dev/null || echo ro",
        ],
    ))
    .assert_success()
    .stdout_is("alpine\nlayers\nro\n");
    lab.run(&run_args(
        &lab,
        &["--rm", "--mount", "type=image,src=no/such:image,dst=/x"],
        &["true"],
    ))
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("pull it first");
}

/// `--read-only` puts tmpfs on /run, /tmp and /var/tmp unless `--read-only-tmpfs=false`
/// (podman's default); an own `--tmpfs` there wins; `generate systemd --new` keeps the choice.
#[test]
fn read_only_gets_scratch_tmpfs_unless_told_not_to() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        &lab.image,
        "sh",
        "-c",
        "touch /tmp/a /run/a /var/tmp/a && echo ok; touch /a",
    ])
    .assert_code(1)
    .stdout_is("ok\n")
    .stderr_contains("Read-only file system");
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/tmp:size=1m",
        &lab.image,
        "sh",
        "-c",
        "grep -c ' /tmp ' /proc/mounts; grep ' /tmp ' /proc/mounts",
    ])
    .assert_success()
    .stdout_contains("1\n")
    .stdout_contains("size=1024k");
    lab.run(&[
        "create",
        "--name",
        "ro",
        "--network",
        "none",
        "--read-only",
        "--read-only-tmpfs=false",
        &lab.image,
        "touch",
        "/tmp/a",
    ])
    .assert_success();
    lab.run(&["start", "-a", "ro"])
        .assert_code(1)
        .stderr_contains("Read-only file system");
    lab.run(&["generate", "systemd", "--new", "ro"])
        .assert_success()
        .stdout_contains("--read-only --read-only-tmpfs=false");
}
