//! `setup` against real namespaces: `unshare --user --map-root-user --net sleep` stands in for
//! a container. All traffic stays on the host's loopback or inside that namespace (the
//! container side reaches the host only through the helper's host-loopback mapping).
//! Skips, with a message, where pasta/slirp4netns/unshare/nsenter/busybox are missing.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::*;

fn have(tool: &str) -> bool {
    host::find_in_path(tool, std::env::var_os("PATH").as_deref()).is_some()
}

/// Say why a test does not run; under `BOX_IT_REQUIRE=1` (CI) that is a failure.
pub(super) fn skip(why: &str) {
    if std::env::var_os("BOX_IT_REQUIRE").is_some_and(|v| v != "0" && !v.is_empty()) {
        panic!("BOX_IT_REQUIRE is set, but this test would skip: {why}");
    }
    eprintln!("SKIP: {why}");
}

fn skip_without(tools: &[&str]) -> bool {
    for t in tools {
        if !have(t) {
            skip(&format!("{t} is not installed"));
            return true;
        }
    }
    false
}

/// A stand-in container: a process in a new user and network namespace.
struct Ns {
    child: Child,
}

impl Ns {
    fn new() -> Option<Ns> {
        let own = std::fs::read_link("/proc/self/ns/net").ok()?;
        let child = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .ok()?;
        let ns = Ns { child };
        let path = format!("/proc/{}/ns/net", ns.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if std::fs::read_link(&path).is_ok_and(|l| l != own) {
                // The uid map is written before the netns is unshared by unshare(1).
                return Some(ns);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        skip("unshare --user --net did not create a namespace");
        None
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args([
            "-t",
            &self.child.id().to_string(),
            "-U",
            "-n",
            "--preserve-credentials",
        ])
        .args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("nsenter")
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn alive(pid: Pid) -> bool {
    // A zombie is as good as gone: its parent only has to reap it.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pid: Pid, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}

/// A one-page HTTP server on the host's loopback, in a thread, answering `body` forever.
fn host_http(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 1024];
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

fn http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A child process killed and reaped on drop (also when an assertion fails).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serve `body` on port 80 inside the namespace (busybox httpd, foreground).
fn ns_httpd(ns: &Ns, body: &str) -> (Killed, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), body).unwrap();
    let child = ns
        .cmd(&["busybox", "httpd", "-f", "-p", "80", "-h"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Killed(child);
    // Wait until it listens (the namespace's own loopback).
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let o = ns.run(&["cat", "/proc/net/tcp"]);
        // 0050 = port 80, 0A = LISTEN
        if stdout(&o)
            .lines()
            .any(|l| l.contains(":0050 ") && l.contains(" 0A "))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child, dir)
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn published(mode: Mode, host_port: u16) -> Plan {
    Plan {
        mode,
        ports: vec![PortMapping {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port,
            container_port: 80,
            protocol: Protocol::Tcp,
        }],
    }
}

/// The whole round trip for one helper.
fn round_trip(mode: Mode, tools: &[&str]) {
    if skip_without(tools) {
        return;
    }
    let Some(ns) = Ns::new() else { return };
    let port = free_loopback_port();
    let plan = published(mode.clone(), port);
    let t = Instant::now();
    let handle = setup(&plan, ns.pid()).unwrap_or_else(|e| panic!("{mode} setup: {e}"));
    eprintln!("{mode}: setup took {:?}", t.elapsed());
    let helper = handle.pid().expect("a helper runs");
    assert!(alive(helper));

    // The namespace is configured: lo and the tap are up, with an address and a route.
    let addrs = stdout(&ns.run(&["ip", "-o", "addr", "show"]));
    let tap = if mode == Mode::Pasta { "eth0" } else { "tap0" };
    assert!(addrs.contains("lo ") || addrs.contains("lo    "), "{addrs}");
    assert!(addrs.contains("127.0.0.1/8"), "lo is up: {addrs}");
    let (ip, prefix) = plan.container_address().expect("an address");
    assert!(
        addrs.contains(&format!("{tap}    inet {ip}/{prefix}")),
        "{tap} has {ip}/{prefix}: {addrs}"
    );
    let routes = stdout(&ns.run(&["ip", "route"]));
    let gw = plan.gateway().unwrap();
    assert!(
        routes.contains(&format!("default via {gw} dev {tap}")),
        "{routes}"
    );

    // Published port: host loopback -> the namespace's port 80.
    let (httpd, _dir) = ns_httpd(&ns, "hello from the container\n");
    let page = http_get(port).unwrap_or_default();
    assert!(page.contains("hello from the container"), "got {page:?}");

    // host.containers.internal: the namespace reaches a server on the host's loopback.
    let hport = host_http("hello from the host\n");
    let url = format!("http://{}:{hport}/", plan.host_address().unwrap());
    let o = ns.run(&["curl", "-s", "-m", "3", &url]);
    assert!(
        stdout(&o).contains("hello from the host"),
        "{url}: {}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );

    drop(httpd);
    handle.stop().unwrap();
    assert!(!alive(helper), "the helper is reaped after stop");
    // And the port is free again.
    TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[test]
fn pasta_round_trip() {
    round_trip(
        Mode::Pasta,
        &["pasta", "unshare", "nsenter", "busybox", "ip", "curl"],
    );
}

#[test]
fn slirp4netns_round_trip() {
    round_trip(
        Mode::Slirp4netns,
        &["slirp4netns", "unshare", "nsenter", "busybox", "ip", "curl"],
    );
}

#[test]
fn dropping_the_handle_kills_the_helper() {
    for (mode, tool) in [(Mode::Pasta, "pasta"), (Mode::Slirp4netns, "slirp4netns")] {
        if skip_without(&[tool, "unshare"]) {
            continue;
        }
        let Some(ns) = Ns::new() else { return };
        let plan = Plan {
            mode: mode.clone(),
            ports: vec![],
        };
        let handle = setup(&plan, ns.pid()).unwrap();
        let pid = handle.pid().unwrap();
        drop(handle);
        // Killed at once, reaped later (by the next start or reap_helpers).
        assert!(
            wait_gone(pid, Duration::from_secs(2)),
            "{mode} helper gone after drop"
        );
        reap_helpers();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{mode} helper reaped"
        );
    }
}

#[test]
fn modes_without_helper_start_nothing() {
    for mode in [Mode::None, Mode::Host, Mode::Container("x".into())] {
        let plan = Plan {
            mode,
            ports: vec![],
        };
        let h = setup(&plan, Pid::from_raw(1)).unwrap();
        assert!(h.pid().is_none());
        h.stop().unwrap();
    }
}

#[test]
fn helper_failure_is_reported_with_its_message() {
    if skip_without(&["pasta", "slirp4netns"]) {
        return;
    }
    // A pid that does not exist (pid_max is at most 2^22).
    let gone = Pid::from_raw(4_194_304 + 7);
    for mode in [Mode::Pasta, Mode::Slirp4netns] {
        let plan = Plan {
            mode: mode.clone(),
            ports: vec![],
        };
        let e = setup(&plan, gone).unwrap_err();
        let msg = e.to_string();
        // pasta is handed the namespaces box opened (so box says it cannot); slirp4netns
        // opens them itself and says so.
        let expected = match mode {
            Mode::Pasta => matches!(e, Error::Io { .. }),
            _ => matches!(e, Error::HelperFailed { .. }),
        };
        assert!(expected, "{mode}: {msg} ({e:?})");
        assert!(msg.contains(&mode.to_string()), "{msg}");
        assert!(!msg.contains("to syslog"), "{msg}");
    }
}

#[test]
fn port_already_bound_fails_setup_and_kills_the_helper() {
    if skip_without(&["pasta", "slirp4netns", "unshare"]) {
        return;
    }
    for mode in [Mode::Pasta, Mode::Slirp4netns] {
        let Some(ns) = Ns::new() else { return };
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let plan = published(mode.clone(), busy.local_addr().unwrap().port());
        let starting = start(&plan, ns.pid()).unwrap();
        let pid = starting.pid().unwrap();
        let e = starting.wait().unwrap_err();
        eprintln!("{mode}: {e}");
        assert!(wait_gone(pid, Duration::from_secs(2)), "{mode} helper gone");
    }
}

/// Run by `helper_dies_with_a_killed_box` in a child process: set up, print, sleep.
#[test]
#[ignore = "run by helper_dies_with_a_killed_box in a child process"]
fn setup_then_sleep_child() {
    let Some(pid) = std::env::var("BOX_NET_TARGET_PID").ok() else {
        return;
    };
    let mode: Mode = serde_json::from_str(&std::env::var("BOX_NET_MODE").unwrap()).unwrap();
    let plan = Plan {
        mode,
        ports: vec![],
    };
    let h = setup(&plan, Pid::from_raw(pid.parse().unwrap())).unwrap();
    println!("HELPER-PID {}", h.pid().unwrap());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn helper_dies_with_a_killed_box() {
    use std::io::BufRead;
    for (mode, tool) in [(Mode::Pasta, "pasta"), (Mode::Slirp4netns, "slirp4netns")] {
        if skip_without(&[tool, "unshare"]) {
            continue;
        }
        let Some(ns) = Ns::new() else { return };
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "network::live_tests::setup_then_sleep_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("BOX_NET_TARGET_PID", ns.pid().to_string())
            .env("BOX_NET_MODE", serde_json::to_string(&mode).unwrap())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut child = Killed(child);
        let mut lines = std::io::BufReader::new(out).lines();
        let helper = lines
            .by_ref()
            .map_while(Result::ok)
            // libtest prints "test name ... " first, on the same line.
            .find_map(|l| {
                l.split_once("HELPER-PID ")
                    .map(|(_, p)| p.trim().to_string())
            })
            .expect("the child reports the helper pid");
        let helper = Pid::from_raw(helper.parse().unwrap());
        assert!(alive(helper));
        nix::sys::signal::kill(
            Pid::from_raw(child.0.id() as i32),
            nix::sys::signal::SIGKILL,
        )
        .unwrap();
        let _ = child.0.wait();
        assert!(
            wait_gone(helper, Duration::from_secs(3)),
            "{mode} helper {helper} outlived a SIGKILLed parent"
        );
    }
}

/// `cargo test --lib setup_latency -- --ignored --nocapture`: start-up and teardown of each
/// helper, 20 times, no ports (a number for the benchmark notes, not an assertion).
#[test]
#[ignore = "a measurement: run explicitly"]
fn setup_latency() {
    for (mode, tool) in [(Mode::Pasta, "pasta"), (Mode::Slirp4netns, "slirp4netns")] {
        if skip_without(&[tool, "unshare"]) {
            continue;
        }
        let plan = Plan {
            mode: mode.clone(),
            ports: vec![],
        };
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..20 {
            let Some(ns) = Ns::new() else { return };
            let t = Instant::now();
            let h = setup(&plan, ns.pid()).unwrap();
            up.push(t.elapsed());
            let t = Instant::now();
            h.stop().unwrap();
            down.push(t.elapsed());
        }
        up.sort();
        down.sort();
        eprintln!(
            "{mode}: setup median {:?} min {:?}; stop+reap median {:?} min {:?}",
            up[up.len() / 2],
            up[0],
            down[down.len() / 2],
            down[0]
        );
    }
}
