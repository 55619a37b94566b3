//! Rootless networking as boxtest: the default helper (pasta) and slirp4netns, a container
//! reaching a server on the host through host.containers.internal, a published port of a
//! detached container reached from the host, `--network none` and `host`, the files in /etc,
//! clear errors (no helper, privileged port), and the helper process gone after `rm -f` and
//! after `kill -9` of a foreground box, and `--network container:NAME` (joining a running
//! container's network, also one on the host's network).
//!
//! Traffic stays on the host's loopback: the container reaches the host only through the
//! helper's host-loopback mapping, names are resolved from /etc/hosts, and nothing is
//! looked up in DNS.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::lab::{Lab, alive, until};
use crate::harness::which;

pub(crate) fn have(tools: &[&str]) -> bool {
    for t in tools {
        if which(t).is_none() {
            crate::harness::skip(&format!("{t} is not installed"));
            return false;
        }
    }
    true
}

/// An HTTP server on the host's loopback (a thread of the test), answering `body`.
pub(crate) fn host_http(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// GET / from 127.0.0.1:port, retrying until `within` passes.
fn http_get(port: u16, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(page) if page.starts_with("HTTP/") => return Some(page),
            _ if Instant::now() >= deadline => return None,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Children of `parent` whose command is a network helper (pasta runs as passt.avx2 or
/// passt on some builds).
fn helpers_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid: i32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if ppid == parent
            && state != "Z"
            && (comm.starts_with("pasta") || comm.starts_with("passt") || comm == "slirp4netns")
        {
            out.push(pid);
        }
    }
    out
}

/// The container reaches a server on the host's loopback by name, through each helper.
#[test]
fn container_reaches_the_host_through_host_containers_internal() {
    let env = require_env!(alpine);
    for (net, tool) in [("default", "pasta"), ("slirp4netns", "slirp4netns")] {
        if !have(&[tool]) {
            continue;
        }
        let lab = Lab::new(env);
        let port = host_http("hello from the host\n");
        let url = format!("http://host.containers.internal:{port}/");
        let out = lab
            .tb
            .cmd([
                "run",
                "--rm",
                "--network",
                net,
                &lab.image,
                "wget",
                "-q",
                "-T",
                "5",
                "-O",
                "-",
                &url,
            ])
            .run();
        out.assert_success().stdout_contains("hello from the host");
    }
}

/// `box run -d -p 127.0.0.1:PORT:80 IMAGE httpd ...`, then the page from the host; `box
/// port` and `box inspect` show the mapping; `rm -f` leaves no helper behind.
#[test]
fn detached_httpd_is_published_on_the_host() {
    let env = require_env!(alpine);
    if !have(&["pasta"]) {
        return;
    }
    // Alpine's busybox has no httpd applet: bring the host's static busybox in.
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        crate::harness::skip("no static /bin/busybox (busybox-static) for httpd");
        return;
    }
    let lab = Lab::new(env);
    // A port free right now (a fixed one may be taken on a CI machine).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = lab
        .tb
        .cmd([
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            &publish,
            "-v",
            "/bin/busybox:/opt/busybox:ro",
            &lab.image,
            "sh",
            "-c",
            "mkdir -p /www && echo hello from the container > /www/index.html && exec /opt/busybox httpd -f -p 80 -h /www",
        ])
        .run();
    out.assert_success();
    let page = http_get(port, Duration::from_secs(15)).unwrap_or_default();
    assert!(
        page.contains("hello from the container"),
        "GET 127.0.0.1:{port} returned {page:?}"
    );
    // Bound to 127.0.0.1 only, as asked.
    let out = lab.tb.cmd(["port", "web"]).run();
    out.assert_success()
        .stdout_contains(&format!("80/tcp -> 127.0.0.1:{port}"));

    // The helper lives under the process that supervises the container.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            lab.tb
                .root()
                .join("containers")
                .join(
                    lab.tb
                        .cmd(["inspect", "--format", "{{.Id}}", "web"])
                        .run()
                        .out()
                        .trim(),
                )
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let supervisor = state["box_pid"].as_i64().expect("box_pid in state.json") as i32;
    let helpers = helpers_of(supervisor);
    assert_eq!(helpers.len(), 1, "one helper under box {supervisor}");

    lab.tb.cmd(["rm", "-f", "web"]).run().assert_success();
    until("the helper to go", Duration::from_secs(5), || {
        !alive(helpers[0])
    });
    // The port is free again.
    until(
        &format!("port {port} to be free"),
        Duration::from_secs(5),
        || TcpListener::bind(("127.0.0.1", port)).is_ok(),
    );
}

#[test]
fn publish_with_slirp4netns_and_a_random_port() {
    let env = require_env!(alpine);
    if !have(&["slirp4netns"]) || !Path::new("/bin/busybox").exists() {
        return;
    }
    let lab = Lab::new(env);
    lab.tb
        .cmd([
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "slirp4netns",
            "-p",
            "127.0.0.1::80",
            "-v",
            "/bin/busybox:/opt/busybox:ro",
            &lab.image,
            "sh",
            "-c",
            "mkdir -p /www && echo hello via slirp > /www/index.html && exec /opt/busybox httpd -f -p 80 -h /www",
        ])
        .run()
        .assert_success();
    // The host port box chose is in the container's network plan.
    let id = lab
        .tb
        .cmd(["inspect", "--format", "{{.Id}}", "web"])
        .run()
        .out()
        .trim()
        .to_string();
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            lab.tb
                .root()
                .join("containers")
                .join(&id)
                .join("config.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mapping = config
        .pointer("/spec/network/ports/0")
        .unwrap_or_else(|| panic!("no published port in config.json: {config}"))
        .clone();
    assert_eq!(mapping["container_port"], 80, "{mapping}");
    assert_eq!(mapping["host_ip"], "127.0.0.1", "{mapping}");
    let port = mapping["host_port"].as_u64().unwrap() as u16;
    assert!(port >= 1024, "a free unprivileged port: {mapping}");
    let out = lab.tb.cmd(["port", "web"]).run();
    out.assert_success();
    let want = format!("80/tcp -> 127.0.0.1:{port}");
    assert!(out.out().contains(&want), "box port: {}", out.out());
    let page = http_get(port, Duration::from_secs(15)).unwrap_or_default();
    assert!(page.contains("hello via slirp"), "{page:?}");
}

#[test]
fn network_none_has_only_loopback_up() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let out = lab
        .tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "none",
            &lab.image,
            "ip",
            "-o",
            "link",
        ])
        .run();
    out.assert_success();
    let links: Vec<&str> = out.out().lines().collect();
    assert_eq!(links.len(), 1, "only lo:\n{}", out.out());
    assert!(links[0].contains(": lo:"), "{}", links[0]);
    assert!(links[0].contains("UP"), "lo is up: {}", links[0]);
    // And the loopback works.
    lab.tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "none",
            &lab.image,
            "sh",
            "-c",
            "nc -l -p 7777 -w 5 & sleep 0.3; echo ok | nc -w 2 127.0.0.1 7777 && echo sent",
        ])
        .run()
        .assert_success()
        .stdout_contains("sent");
}

#[test]
fn network_host_sees_the_host_interfaces() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let out = lab
        .tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "host",
            &lab.image,
            "ip",
            "-o",
            "link",
        ])
        .run();
    out.assert_success();
    // /proc/net/dev lists the interfaces of our own netns (/sys may show another's).
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    for line in dev.lines().skip(2) {
        let name = line.split(':').next().unwrap_or("").trim().to_string();
        assert!(
            out.out().contains(&format!(": {name}")),
            "{name} missing from the container's view:\n{}",
            out.out()
        );
    }
    // A server on the host's loopback is right there.
    let port = host_http("same netns\n");
    lab.tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "host",
            &lab.image,
            "wget",
            "-q",
            "-O",
            "-",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .run()
        .assert_success()
        .stdout_contains("same netns");
}

#[test]
fn default_network_interface_and_etc_files() {
    let env = require_env!(alpine);
    if !have(&["pasta"]) {
        return;
    }
    let lab = Lab::new(env);
    let out = lab
        .tb
        .cmd([
            "run",
            "--rm",
            "--name",
            "named",
            "--hostname",
            "web.example",
            "--add-host",
            "db:192.0.2.5",
            &lab.image,
            "sh",
            "-c",
            "ip -o addr show; ip route; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf",
        ])
        .run();
    out.assert_success();
    let text = out.out();
    let mut parts = text.split("---\n");
    let (ip, hosts, resolv) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    assert!(ip.contains("eth0") && ip.contains("inet "), "{ip}");
    assert!(ip.contains("default via"), "{ip}");
    assert!(hosts.contains("192.0.2.5\tdb"), "{hosts}");
    assert!(hosts.contains("host.containers.internal"), "{hosts}");
    assert!(hosts.contains("web.example web named"), "{hosts}");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(resolv.contains("nameserver 169.254.1.1"), "{resolv}");

    // --dns replaces the nameservers.
    lab.tb
        .cmd([
            "run",
            "--rm",
            "--dns",
            "192.0.2.53",
            &lab.image,
            "cat",
            "/etc/resolv.conf",
        ])
        .run()
        .assert_success()
        .stdout_contains("nameserver 192.0.2.53")
        .stdout_lacks("169.254.1.1");
}

#[test]
fn helper_dies_with_a_sigkilled_foreground_box() {
    let env = require_env!(alpine);
    for (net, tool) in [("pasta", "pasta"), ("slirp4netns", "slirp4netns")] {
        if !have(&[tool]) {
            continue;
        }
        let lab = Lab::new(env);
        let running = lab
            .tb
            .cmd(["run", "--rm", "--network", net, &lab.image, "sleep", "300"])
            .timeout(Duration::from_secs(60))
            .spawn();
        let boxpid = running.pid();
        let mut helper = 0;
        until("the helper to start", Duration::from_secs(20), || {
            helper = helpers_of(boxpid).first().copied().unwrap_or(0);
            helper != 0
        });
        running.signal(libc::SIGKILL);
        let _ = running.wait();
        until(
            &format!("{tool} {helper} to die with box"),
            Duration::from_secs(5),
            || !alive(helper),
        );
    }
}

#[test]
fn privileged_host_port_names_the_sysctl() {
    let env = require_env!(alpine);
    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if start <= 80 {
        crate::harness::skip("port 80 is not privileged on this host");
        return;
    }
    let lab = Lab::new(env);
    let out = lab
        .tb
        .cmd(["run", "--rm", "-p", "80:80", &lab.image, "true"])
        .run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains("net.ipv4.ip_unprivileged_port_start");
}

#[test]
fn no_helper_installed_is_a_clear_error() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    // A PATH with what box itself needs, but neither pasta nor slirp4netns.
    let bin = lab.tb.dir().join("bin-no-net");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["newuidmap", "newgidmap", "fuse-overlayfs"] {
        if let Some(p) = which(tool) {
            let _ = std::os::unix::fs::symlink(p, bin.join(tool));
        }
    }
    let out = lab
        .tb
        .cmd(["run", "--rm", &lab.image, "true"])
        .env("PATH", &bin)
        .run();
    out.assert_code(125).stderr_contains(
        "no user-mode network helper found: install passt (apt install passt) or slirp4netns, or use --network none",
    );
    // --network none needs neither.
    lab.tb
        .cmd(["run", "--rm", "--network", "none", &lab.image, "true"])
        .env("PATH", &bin)
        .run()
        .assert_success();
}

/// `--network container:NAME`: the joiner shares the target's network namespace (its
/// loopback server, its interfaces, its /etc/hosts), keeps its own pid and uts namespaces,
/// starts no helper of its own, and every wrong use is a one-line error.
#[test]
fn network_container_joins_a_running_container() {
    let env = require_env!(alpine);
    if !have(&["pasta"]) {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd([
        "run",
        "-d",
        "--name",
        "web",
        &lab.image,
        "sh",
        "-c",
        "nc -lk -p 7777 -e echo hello-from-web & exec sleep 300",
    ])
    .run()
    .assert_success();
    let web_netns = tb
        .cmd(["exec", "web", "readlink", "/proc/self/ns/net"])
        .run()
        .assert_success()
        .out()
        .trim()
        .to_string();
    assert!(web_netns.starts_with("net:["), "{web_netns}");

    let out = tb
        .cmd([
            "run",
            "--rm",
            "--name",
            "client",
            "--network",
            "container:web",
            &lab.image,
            "sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do nc 127.0.0.1 7777 </dev/null && break; sleep 0.2; done; \
             echo ---; readlink /proc/self/ns/net; echo ---; ps -o comm; echo ---; cat /etc/hosts",
        ])
        .run();
    out.assert_success();
    let text = out.out();
    let parts: Vec<&str> = text.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{text}");
    assert!(
        parts[0].contains("hello-from-web"),
        "web's loopback: {text}"
    );
    assert_eq!(parts[1].trim(), web_netns, "the same network namespace");
    assert!(
        !parts[2].contains("nc") && !parts[2].contains("sleep"),
        "its own pid namespace: {}",
        parts[2]
    );
    assert!(parts[3].contains(" web"), "web's /etc/hosts: {}", parts[3]);
    assert!(
        parts[3].contains(" client"),
        "and its own name: {}",
        parts[3]
    );

    // Detached: no helper of its own; inspect names the mode; exec joins it too.
    tb.cmd([
        "run",
        "-d",
        "--name",
        "side",
        "--network",
        "container:web",
        &lab.image,
        "sleep",
        "300",
    ])
    .run()
    .assert_success();
    tb.cmd(["inspect", "--format", "{{.HostConfig.NetworkMode}}", "side"])
        .run()
        .assert_success()
        .stdout_contains("container:web");
    tb.cmd(["exec", "side", "readlink", "/proc/self/ns/net"])
        .run()
        .assert_success()
        .stdout_contains(&web_netns);
    let id = tb
        .cmd(["inspect", "--format", "{{.Id}}", "side"])
        .run()
        .out()
        .trim()
        .to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tb.root().join("containers").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let supervisor = state["box_pid"].as_i64().expect("box_pid in state.json") as i32;
    assert!(
        helpers_of(supervisor).is_empty(),
        "no network helper for a joiner"
    );

    // Wrong uses.
    let run_joined = |target: &str, extra: &[&str]| {
        let net = format!("container:{target}");
        let mut args = vec!["run", "--rm", "--network", &net];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&lab.image, "true"]);
        tb.cmd(&args).run()
    };
    run_joined("nosuch", &[])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("no such container");
    tb.cmd(["create", "--name", "idle", &lab.image, "true"])
        .run()
        .assert_success();
    run_joined("idle", &[])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not running; start it first (box start idle)");
    // -p with another container's network: discarded with a warning, as podman does.
    run_joined("web", &["-p", "18081:80"])
        .assert_success()
        .stderr_contains("port mappings have been discarded");
    run_joined("web", &["--userns", "keep-id"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("so use --userns=auto");
}

/// A container that joins one on the host's network is on the host's network too, also
/// through a chain of joins.
#[test]
fn network_container_of_a_host_network_container_is_the_host() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.tb
        .cmd([
            "run",
            "-d",
            "--name",
            "hostnet",
            "--network",
            "host",
            &lab.image,
            "sleep",
            "300",
        ])
        .run()
        .assert_success();
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    // Directly, and through a container that joined it (a chain of joins).
    lab.tb
        .cmd([
            "run",
            "-d",
            "--name",
            "middle",
            "--network",
            "container:hostnet",
            &lab.image,
            "sleep",
            "300",
        ])
        .run()
        .assert_success();
    for target in ["container:hostnet", "container:middle"] {
        lab.tb
            .cmd([
                "run",
                "--rm",
                "--network",
                target,
                &lab.image,
                "readlink",
                "/proc/self/ns/net",
            ])
            .run()
            .assert_success()
            .stdout_contains(&ours.to_string_lossy());
    }
}
