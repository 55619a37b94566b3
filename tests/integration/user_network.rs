//! User networks as boxtest: the records (`network create|ls|inspect|exists|rm|prune`), their
//! checks (overlapping subnets, bad gateways, reserved and taken names), two containers on a
//! network reaching each other by name and alias (aardvark-dns) with a service answering,
//! `--ip`, a published port answering on the host's loopback, in-use
//! refusal of `network rm`, and cleanup: the holder of the shared namespace, netavark's
//! aardvark-dns and the leases go with the last container; `system check` finds a holder a
//! killed box left behind.
use std::path::Path;
use std::time::Duration;

use crate::harness::lab::{Lab, alive, read_from, until};

fn have_netavark() -> bool {
    if Path::new("/usr/lib/podman/netavark").exists()
        && Path::new("/usr/lib/podman/aardvark-dns").exists()
    {
        return true;
    }
    crate::harness::skip(
        "netavark and aardvark-dns are not installed (apt install netavark aardvark-dns)",
    );
    false
}

/// Live processes whose program (argv[0]) contains `needles[0]` and whose command line
/// contains every one of `needles` (not a netavark naming aardvark-dns in its arguments:
/// box does not wait for a teardown).
fn processes(needles: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd);
        let program = cmd.split('\0').next().unwrap_or("");
        if program.contains(needles[0]) && needles.iter().all(|n| cmd.contains(n)) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn network_records_and_their_checks() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "backend"])
        .run()
        .assert_success()
        .stdout_is("backend\n");
    tb.cmd([
        "network",
        "create",
        "--subnet",
        "10.90.0.0/24",
        "--gateway",
        "10.90.0.254",
        "--internal",
        "--label",
        "tier=db",
        "dbnet",
    ])
    .run()
    .assert_success();
    tb.cmd([
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Subnets}} {{.Internal}}",
    ])
    .run()
    .assert_success()
    .stdout_is("backend 10.89.0.0/24 false\ndbnet 10.90.0.0/24 true\n");
    tb.cmd([
        "network",
        "inspect",
        "--format",
        "{{.network_interface}} {{(index .subnets 0).gateway}}",
        "dbnet",
    ])
    .run()
    .assert_success()
    .stdout_is("box1 10.90.0.254\n");
    tb.cmd(["network", "ls", "-q", "--filter", "label=tier=db"])
        .run()
        .assert_success()
        .stdout_is("dbnet\n");
    tb.cmd(["network", "exists", "backend"])
        .run()
        .assert_success();
    tb.cmd(["network", "exists", "nope"]).run().assert_code(1);

    // Bad input: one line, exit 125, nothing recorded.
    for (args, needle) in [
        (
            vec!["--subnet", "10.89.0.0/16", "clash"],
            "overlaps network backend",
        ),
        (
            vec!["--subnet", "10.91.0.1/24", "clash"],
            "host bits are set",
        ),
        (
            vec![
                "--subnet",
                "10.91.0.0/24",
                "--gateway",
                "10.92.0.1",
                "clash",
            ],
            "--gateway",
        ),
        (vec!["backend"], "exists already"),
        (vec!["host"], "reserved"),
        (vec!["--subnet", "fd00::/129", "clash"], "prefix length"),
    ] {
        let mut argv = vec!["network", "create"];
        argv.extend(args);
        tb.cmd(&argv)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
    tb.cmd(["network", "exists", "clash"]).run().assert_code(1);

    // An unknown network: one line, nothing created.
    tb.cmd(["create", "--network", "nosuch", &lab.image, "true"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unknown network \"nosuch\"");
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");

    tb.cmd(["network", "rm", "backend"])
        .run()
        .assert_success()
        .stdout_is("backend\n");
    tb.cmd(["network", "rm", "backend"])
        .run()
        .assert_code(1)
        .stderr_contains("no such network: backend");
    tb.cmd(["network", "prune", "-f"]).run().assert_success();
    tb.cmd(["network", "ls", "-q"])
        .run()
        .assert_success()
        .stdout_is("");

    // system prune takes unused networks and pods with nothing running too.
    tb.cmd(["network", "create", "leftover"])
        .run()
        .assert_success();
    tb.cmd(["pod", "create", "--name", "idlepod", "--network", "none"])
        .run()
        .assert_success();
    tb.cmd(["system", "prune", "-f"])
        .run()
        .assert_success()
        .stdout_contains("Deleted Networks\nleftover\n")
        .stdout_contains("Deleted Pods\n");
    tb.cmd(["network", "exists", "leftover"])
        .run()
        .assert_code(1);
    tb.cmd(["pod", "exists", "idlepod"]).run().assert_code(1);
    // Each network's creation and removal is an event.
    let out = tb
        .cmd([
            "events",
            "--stream=false",
            "--filter",
            "type=network",
            "--format",
            "{{.Status}} {{.Name}}",
        ])
        .run();
    out.assert_success();
    let seen: Vec<&str> = out.out().lines().collect();
    for want in [
        "create backend",
        "remove backend",
        "create leftover",
        "remove leftover",
    ] {
        assert!(seen.contains(&want), "network event {want:?} in {seen:?}");
    }
}

#[test]
fn containers_on_a_network_reach_each_other_by_name() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.77.0.0/24", "backend"])
        .run()
        .assert_success();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let publish = format!("127.0.0.1:{port}:6379");
    tb.cmd([
        "run",
        "-d",
        "--network",
        "backend",
        "--name",
        "db",
        "--network-alias",
        "redis",
        "--ip",
        "10.77.0.50",
        "-p",
        &publish,
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "6379",
        "-e",
        "echo",
        "PONG",
    ])
    .run()
    .assert_success();
    tb.cmd(["exec", "db", "ip", "-4", "-o", "addr", "show", "eth0"])
        .run()
        .assert_success()
        .stdout_contains("10.77.0.50/24");
    tb.cmd([
        "inspect",
        "--format",
        "{{.NetworkSettings.IPAddress}} {{.HostConfig.NetworkMode}} {{index .NetworkSettings.Networks.backend.Aliases 1}}",
        "db",
    ])
    .run()
    .assert_success()
    .stdout_is("10.77.0.50 backend redis\n");
    // Its address is taken; one outside the subnet, or --ip without a network, is refused.
    for (args, needle) in [
        (vec!["--network", "backend", "--ip", "10.77.0.50"], "in use"),
        (
            vec!["--network", "backend", "--ip", "10.99.0.5"],
            "not a host address",
        ),
        (
            vec!["--network", "none", "--network-alias", "x1"],
            "need a user network",
        ),
    ] {
        let mut argv = vec!["run", "--rm"];
        argv.extend(args);
        argv.extend([lab.image.as_str(), "true"]);
        tb.cmd(&argv)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
    // Another container finds db by name (aardvark-dns on the gateway) and its service
    // answers; it has its own address on the network.
    let mut said = String::new();
    until("db to answer by name", Duration::from_secs(20), || {
        let out = tb
            .cmd([
                "run",
                "--rm",
                "--network",
                "backend",
                &lab.image,
                "sh",
                "-c",
                "grep nameserver /etc/resolv.conf; ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4; nc db 6379 </dev/null; nc redis 6379 </dev/null",
            ])
            .run();
        said = out.out().to_string();
        out.success() && said.matches("PONG").count() == 2
    });
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines[0], "nameserver 10.77.0.1", "{said}");
    assert!(
        lines[1].starts_with("10.77.0.") && lines[1].ends_with("/24"),
        "{said}"
    );
    // Its published port answers on the host's loopback.
    until(
        "the published port to answer",
        Duration::from_secs(10),
        || read_from(port).is_some_and(|s| s.contains("PONG")),
    );
    let runroot = tb.runroot().display().to_string();
    let dns = || processes(&["aardvark-dns", &runroot]);
    assert!(
        dns().len() == 1,
        "one aardvark-dns while the network is in use"
    );
    let holder_pid = lab.state(&lab.id("box-netns"))["pid"].as_i64().unwrap() as i32;

    // A container on two networks: reached by name from each.
    tb.cmd(["network", "create", "--subnet", "10.76.0.0/24", "front"])
        .run()
        .assert_success();
    tb.cmd([
        "run",
        "-d",
        "--network",
        "backend",
        "--network",
        "front",
        "--name",
        "both",
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "BOTH",
    ])
    .run()
    .assert_success();
    for net in ["backend", "front"] {
        until(
            &format!("both to answer on {net}"),
            Duration::from_secs(10),
            || {
                tb.cmd([
                    "run",
                    "--rm",
                    "--network",
                    net,
                    &lab.image,
                    "nc",
                    "both",
                    "80",
                ])
                .run()
                .out()
                .contains("BOTH")
            },
        );
    }
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "--network",
        "front",
        &lab.image,
        "true",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("cannot be combined");
    tb.cmd(["rm", "-f", "both"]).run().assert_success();
    // connect/disconnect: a stopped container, from its next start.
    tb.cmd([
        "create",
        "--network",
        "backend",
        "--name",
        "later",
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "LATER",
    ])
    .run()
    .assert_success();
    tb.cmd([
        "network",
        "connect",
        "--alias",
        "late2",
        "--ip",
        "10.76.0.77",
        "front",
        "later",
    ])
    .run()
    .assert_success();
    tb.cmd(["network", "connect", "front", "later"])
        .run()
        .assert_code(125)
        .stderr_contains("already on network front");
    tb.cmd(["network", "disconnect", "backend", "later"])
        .run()
        .assert_success();
    tb.cmd(["network", "disconnect", "front", "later"])
        .run()
        .assert_code(125)
        .stderr_contains("only network");
    tb.cmd(["start", "later"]).run().assert_success();
    until("later to answer on front", Duration::from_secs(10), || {
        tb.cmd([
            "run",
            "--rm",
            "--network",
            "front",
            &lab.image,
            "sh",
            "-c",
            "nc later 80 </dev/null; nc late2 80 </dev/null",
        ])
        .run()
        .out()
        .matches("LATER")
        .count()
            == 2
    });
    assert!(
        sh(&lab, "later", "ip -4 -o addr show eth0").contains("10.76.0.77/24"),
        "the address asked for at connect"
    );
    tb.cmd(["rm", "-f", "later"]).run().assert_success();
    tb.cmd(["network", "rm", "front"]).run().assert_success();

    // In use: refused; with -f its containers go first.
    tb.cmd(["network", "rm", "backend"])
        .run()
        .assert_code(2)
        .assert_one_line_error()
        .stderr_contains("used by container(s) db");
    tb.cmd(["network", "rm", "-f", "backend"])
        .run()
        .assert_success();
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
    until(
        "the holder and aardvark-dns to go",
        Duration::from_secs(10),
        || !alive(holder_pid) && dns().is_empty(),
    );
    let leases = tb.runroot().join("networks").join("leases").join("backend");
    assert!(
        std::fs::read_dir(&leases).map(|d| d.count()).unwrap_or(0) == 0,
        "no lease left"
    );
}

#[test]
fn system_check_finds_a_holder_a_killed_box_left() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.78.0.0/24", "front"])
        .run()
        .assert_success();
    let fg = tb
        .cmd(["run", "--network", "front", &lab.image, "sleep", "300"])
        .spawn();
    until("the holder to run", Duration::from_secs(20), || {
        tb.cmd(["ps", "-q", "--filter", "name=box-netns"])
            .run()
            .out()
            .len()
            == 12
            && tb.cmd(["ps", "-q"]).run().out().lines().count() == 2
    });
    fg.signal(libc::SIGKILL);
    let _ = fg.wait();
    until(
        "the container to die with its box",
        Duration::from_secs(10),
        || tb.cmd(["ps", "-q"]).run().out().lines().count() == 1,
    );
    tb.cmd(["system", "check"])
        .run()
        .assert_success()
        .stdout_contains("leftover: container box-netns");
    tb.cmd(["system", "check", "--repair"])
        .run()
        .assert_success()
        .stdout_contains("removed the idle container box-netns");
    tb.cmd(["ps", "-q"]).run().assert_success().stdout_is("");
    // Its aardvark-dns (never torn down: the box that would have was killed) is gone too.
    let runroot = tb.runroot().display().to_string();
    until("aardvark-dns to go", Duration::from_secs(10), || {
        processes(&["aardvark-dns", &runroot]).is_empty()
    });
}

#[test]
fn a_pod_on_a_user_network_is_found_by_its_name() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.79.0.0/24", "mesh"])
        .run()
        .assert_success();
    tb.cmd(["pod", "create", "--name", "api", "--network", "mesh"])
        .run()
        .assert_success();
    tb.cmd([
        "run", "-d", "--pod", "api", "--name", "apiweb", &lab.image, "nc", "-lk", "-p", "80", "-e",
        "echo", "FROM-POD",
    ])
    .run()
    .assert_success();
    // Another container on the network reaches the pod by its name.
    until("the pod to answer by name", Duration::from_secs(15), || {
        tb.cmd([
            "run",
            "--rm",
            "--network",
            "mesh",
            &lab.image,
            "nc",
            "api",
            "80",
        ])
        .run()
        .out()
        .contains("FROM-POD")
    });
    tb.cmd(["pod", "rm", "-f", "api"]).run().assert_success();
    // kube play --network: the played pod is on the network too.
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubeapi\nspec:\n  containers:\n  - name: web\n    image: {}\n    command: [nc, -lk, -p, \"80\", -e, echo, FROM-KUBE]\n",
        lab.image
    );
    let file = tb.write("kubeapi.yaml", &yaml);
    tb.cmd(["kube", "play", "--network", "mesh", file.to_str().unwrap()])
        .run()
        .assert_success();
    until(
        "the played pod to answer by name",
        Duration::from_secs(15),
        || {
            tb.cmd([
                "run",
                "--rm",
                "--network",
                "mesh",
                &lab.image,
                "nc",
                "kubeapi",
                "80",
            ])
            .run()
            .out()
            .contains("FROM-KUBE")
        },
    );
    let holder_pid = lab.state(&lab.id("box-netns"))["pid"].as_i64().unwrap() as i32;
    tb.cmd(["kube", "down", file.to_str().unwrap()])
        .run()
        .assert_success();
    until(
        "the holder to go with the pod",
        Duration::from_secs(10),
        || !alive(holder_pid),
    );
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
}

#[test]
fn parallel_runs_on_a_network_share_one_holder() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.75.0.0/24", "par"])
        .run()
        .assert_success();
    for _round in 0..2 {
        let running: Vec<_> = (0..4)
            .map(|_| {
                tb.cmd(["run", "--rm", "--network", "par", &lab.image, "true"])
                    .spawn()
            })
            .collect();
        for r in running {
            r.wait().assert_success();
        }
    }
    // The last one took the holder with it.
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
}

/// `(pid, ppid)` of the zombie processes named `comm` (from /proc/*/stat).
fn zombies(comm: &str) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let (Some(state), Some(ppid)) = (rest.next(), rest.next()) else {
            continue;
        };
        if &stat[open + 1..close] == comm && state == "Z" {
            out.push((
                stat[..open].trim().parse().unwrap_or(0),
                ppid.parse().unwrap_or(0),
            ));
        }
    }
    out
}

#[test]
fn restarts_on_a_network_leave_no_zombie_netavark_in_the_monitor() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.81.0.0/24", "again"])
        .run()
        .assert_success();
    // Fails twice (restarted each time), then stays up.
    tb.cmd([
        "run",
        "-d",
        "--network",
        "again",
        "--restart",
        "on-failure",
        "--name",
        "flaky",
        &lab.image,
        "sh",
        "-c",
        "test -e /n2 && exec sleep 1000; test -e /n1 && touch /n2; touch /n1; exit 1",
    ])
    .run()
    .assert_success();
    until("two restarts", Duration::from_secs(30), || {
        lab.run(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .out()
        .trim()
            == "2 running"
    });
    let id = lab.id("flaky");
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tb.root().join("containers").join(&id).join("monitor.json")).unwrap(),
    )
    .unwrap();
    let monitor = info["monitor_pid"].as_i64().unwrap() as i32;
    let supervisor = lab.state(&id)["box_pid"].as_i64().unwrap() as i32;
    // The teardowns of the first two runs are not waited for by box: none is left a zombie
    // of the monitor or of the running `box start --attach`.
    until(
        "no zombie netavark under the monitor",
        Duration::from_secs(10),
        || {
            !zombies("netavark")
                .iter()
                .any(|&(_, ppid)| ppid == monitor || ppid == supervisor)
        },
    );
    tb.cmd(["rm", "-f", "flaky"]).run().assert_success();
}

/// `sh -c SCRIPT` in running container `name`: its output.
fn sh(lab: &Lab, name: &str, script: &str) -> String {
    lab.run(&["exec", name, "sh", "-c", script])
        .out()
        .to_string()
}

#[test]
fn a_running_container_is_connected_and_disconnected() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    for (net, subnet) in [("one", "10.71.0.0/24"), ("two", "10.72.0.0/24")] {
        tb.cmd(["network", "create", "--subnet", subnet, net])
            .run()
            .assert_success();
    }
    let serve = |net: &str, name: &str, word: &str| {
        tb.cmd([
            "run",
            "-d",
            "--network",
            net,
            "--name",
            name,
            &lab.image,
            "nc",
            "-lk",
            "-p",
            "80",
            "-e",
            "echo",
            word,
        ])
        .run()
        .assert_success();
    };
    serve("one", "srv", "SRV");
    serve("two", "peer", "PEER");
    // Reached (`nc NAME 80` answering WORD) from a new container on `net`.
    let answers = |net: &str, name: &str, word: &str| {
        tb.cmd([
            "run",
            "--rm",
            "--network",
            net,
            &lab.image,
            "nc",
            name,
            "80",
        ])
        .run()
        .out()
        .contains(word)
    };

    tb.cmd([
        "network",
        "connect",
        "--alias",
        "web2",
        "--ip",
        "10.72.0.40",
        "two",
        "srv",
    ])
    .run()
    .assert_success()
    .stdout_is("");
    // Its new interface, the network's DNS server appended, the record updated.
    assert!(
        sh(&lab, "srv", "ip -4 -o addr show eth1").contains("10.72.0.40/24"),
        "eth1 on two"
    );
    assert_eq!(
        sh(&lab, "srv", "grep nameserver /etc/resolv.conf").trim_end(),
        "nameserver 10.71.0.1\nnameserver 10.72.0.1"
    );
    assert!(
        sh(&lab, "srv", "grep srv /etc/hosts").contains("10.72.0.40\t"),
        "its address on two in /etc/hosts"
    );
    tb.cmd([
        "inspect",
        "--format",
        "{{.NetworkSettings.Networks.two.IPAddress}} {{index .NetworkSettings.Networks.two.Aliases 1}} {{.HostConfig.NetworkMode}}",
        "srv",
    ])
    .run()
    .assert_success()
    .stdout_is("10.72.0.40 web2 one,two\n");
    tb.cmd(["ps", "--filter", "network=two", "--format", "{{.Names}}"])
        .run()
        .assert_success()
        .stdout_contains("srv");
    // Found on the new network by name and alias; it finds the members there; still
    // found on its first network.
    until("srv to answer on two", Duration::from_secs(15), || {
        answers("two", "srv", "SRV") && answers("two", "web2", "SRV")
    });
    until("srv to reach peer by name", Duration::from_secs(10), || {
        sh(&lab, "srv", "nc peer 80 </dev/null").contains("PEER")
    });
    assert!(answers("one", "srv", "SRV"), "srv still answers on one");
    // Already there: refused, nothing changed.
    tb.cmd(["network", "connect", "two", "srv"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("already on network two");

    // A restart keeps both networks, and the address asked for.
    tb.cmd(["restart", "srv"]).run().assert_success();
    until("srv back on both", Duration::from_secs(15), || {
        sh(&lab, "srv", "ip -4 -o addr").contains("10.72.0.40/24")
            && answers("two", "web2", "SRV")
            && answers("one", "srv", "SRV")
    });
    assert!(
        sh(&lab, "srv", "cat /etc/hosts").contains("10.72.0.40\t"),
        "its address on two in /etc/hosts after the restart"
    );

    tb.cmd(["network", "disconnect", "two", "srv"])
        .run()
        .assert_success()
        .stdout_is("");
    assert_eq!(
        sh(&lab, "srv", "grep nameserver /etc/resolv.conf").trim_end(),
        "nameserver 10.71.0.1"
    );
    assert!(
        !sh(&lab, "srv", "cat /etc/hosts").contains("10.72.0.40"),
        "its address on two gone from /etc/hosts"
    );
    let links = sh(&lab, "srv", "ip -o link");
    assert!(links.contains("eth0") && !links.contains("eth1"), "{links}");
    assert!(!answers("two", "srv", "SRV"), "srv gone from two's DNS");
    assert!(answers("one", "srv", "SRV"), "srv still answers on one");
    tb.cmd(["network", "disconnect", "two", "srv"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not on network two");
    tb.cmd(["inspect", "--format", "{{.HostConfig.NetworkMode}}", "srv"])
        .run()
        .assert_success()
        .stdout_is("one\n");
    let out = tb
        .cmd([
            "events",
            "--stream=false",
            "--filter",
            "type=network",
            "--format",
            "{{.Status}} {{.Name}}",
        ])
        .run();
    for want in ["connect two", "disconnect two"] {
        assert!(out.out().contains(want), "event {want:?} in {}", out.out());
    }
    let holder_pid = lab.state(&lab.id("box-netns"))["pid"].as_i64().unwrap() as i32;
    tb.cmd(["rm", "-f", "-t", "0", "srv", "peer"])
        .run()
        .assert_success();
    // Nothing left: the holder, aardvark-dns, leases (the connected ones too), records.
    let runroot = tb.runroot().display().to_string();
    until("the holder to go", Duration::from_secs(10), || {
        !alive(holder_pid) && processes(&["aardvark-dns", &runroot]).is_empty()
    });
    let networks = tb.runroot().join("networks");
    for dir in ["leases/one", "leases/two", "attached"] {
        let left: Vec<_> = std::fs::read_dir(networks.join(dir))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    .filter(|n| n != ".lock")
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "{dir}: {left:?} left");
    }
}

#[test]
fn connect_refuses_what_podman_refuses() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.73.0.0/24", "net1"])
        .run()
        .assert_success();
    for (name, mode) in [
        ("plain", None),
        ("off", Some("none")),
        ("hosted", Some("host")),
        ("joined", Some("container:plain")),
    ] {
        let mut argv = vec!["create", "--name", name];
        if let Some(m) = mode {
            argv.extend(["--network", m]);
        }
        argv.extend([lab.image.as_str(), "true"]);
        tb.cmd(&argv).run().assert_success();
        tb.cmd(["network", "connect", "net1", name])
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("is not supported: invalid network mode");
    }
    for (args, needle) in [
        (
            vec!["connect", "nosuch", "plain"],
            "no such network: nosuch",
        ),
        (vec!["connect", "net1", "nosuch"], "nosuch"),
        (vec!["disconnect", "net1", "plain"], "not supported"),
    ] {
        let mut argv = vec!["network"];
        argv.extend(args);
        tb.cmd(&argv)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
    tb.cmd([
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}}",
        "plain",
    ])
    .run()
    .assert_success()
    .stdout_lacks("net1");
}

#[test]
fn dual_stack_networks_give_ipv6_addresses_and_names() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    // --ipv6 alone: a random unique local /64 beside the IPv4 subnet.
    tb.cmd(["network", "create", "--ipv6", "auto6"])
        .run()
        .assert_success()
        .stdout_is("auto6\n");
    let out = tb
        .cmd([
            "network",
            "inspect",
            "--format",
            "{{.ipv6_enabled}} {{(index .subnets 0).subnet}} {{(index .subnets 1).subnet}} {{(index .subnets 1).gateway}}",
            "auto6",
        ])
        .run();
    out.assert_success();
    let f: Vec<&str> = out.out().split_whitespace().collect();
    assert_eq!(&f[..2], ["true", "10.89.0.0/24"], "{}", out.out());
    assert!(
        f[2].starts_with("fd") && f[2].ends_with("::/64"),
        "{}",
        out.out()
    );
    assert_eq!(f[3], f[2].replace("::/64", "::1"), "{}", out.out());
    // Two --subnet flags, their --gateway flags in the same order.
    tb.cmd([
        "network",
        "create",
        "--subnet",
        "10.74.0.0/24",
        "--subnet",
        "fd74:1:2:3::/64",
        "--gateway",
        "10.74.0.1",
        "--gateway",
        "fd74:1:2:3::fe",
        "dual",
    ])
    .run()
    .assert_success();
    tb.cmd([
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Subnets}} {{.IPv6Enabled}}",
    ])
    .run()
    .assert_success()
    .stdout_contains("dual 10.74.0.0/24,fd74:1:2:3::/64 true\n");
    for (args, needle) in [
        (
            vec!["--subnet", "fd74:1::/32", "clash"],
            "overlaps network dual",
        ),
        (
            vec!["--subnet", "fd75::1/64", "--ipv6", "clash"],
            "host bits",
        ),
        (
            vec![
                "--subnet",
                "10.75.0.0/24",
                "--subnet",
                "fd75::/64",
                "--gateway",
                "10.75.0.1",
                "--gateway",
                "fd76::1",
                "clash",
            ],
            "--gateway",
        ),
    ] {
        let mut argv = vec!["network", "create"];
        argv.extend(args);
        tb.cmd(&argv)
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
    tb.cmd(["network", "exists", "clash"]).run().assert_code(1);

    tb.cmd([
        "run",
        "-d",
        "--network",
        "dual",
        "--ip6",
        "fd74:1:2:3::50",
        "--name",
        "six",
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "SIX",
    ])
    .run()
    .assert_success();
    tb.cmd([
        "inspect",
        "--format",
        "{{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}} {{.NetworkSettings.Networks.dual.GlobalIPv6Address}}",
        "six",
    ])
    .run()
    .assert_success()
    .stdout_is("fd74:1:2:3::50/64 fd74:1:2:3::fe fd74:1:2:3::50\n");
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "dual",
        "--ip6",
        "fd74:1:2:3::50",
        &lab.image,
        "true",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("in use");
    // Another container: an IPv6 address of its own; six's name answers AAAA, and six
    // answers over IPv6.
    let mut said = String::new();
    until("six to answer over IPv6", Duration::from_secs(20), || {
        let out = tb
            .cmd([
                "run",
                "--rm",
                "--network",
                "dual",
                &lab.image,
                "sh",
                "-c",
                "ip -6 -o addr show eth0 scope global | tr -s ' ' | cut -d' ' -f4; nslookup -type=AAAA six | grep -i address | tail -n 1; nc fd74:1:2:3::50 80 </dev/null",
            ])
            .run();
        said = out.out().to_string();
        out.success() && said.contains("SIX")
    });
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        lines[0].starts_with("fd74:1:2:3::") && lines[0].ends_with("/64"),
        "{said}"
    );
    assert!(lines[1].contains("fd74:1:2:3::50"), "{said}");
    // network connect --ip6: an address of the other network's IPv6 subnet.
    tb.cmd([
        "network",
        "connect",
        "--ip6",
        "fd74:1:2:3::60",
        "auto6",
        "six",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("not a host address");
    tb.cmd(["network", "connect", "auto6", "six"])
        .run()
        .assert_success();
    let v6 = f[2].replace("::/64", "::");
    until("six's eth1 on auto6", Duration::from_secs(10), || {
        lab.run(&["exec", "six", "ip", "-6", "-o", "addr", "show", "eth1"])
            .out()
            .contains(&v6)
    });
    tb.cmd(["rm", "-f", "-t", "0", "six"])
        .run()
        .assert_success();

    // An IPv6 --subnet alone: an IPv6-only network, as podman's.
    tb.cmd(["network", "create", "--subnet", "fd77::/64", "only6"])
        .run()
        .assert_success();
    tb.cmd([
        "network",
        "ls",
        "--filter",
        "name=only6",
        "--format",
        "{{.Subnets}} {{.IPv6Enabled}}",
    ])
    .run()
    .assert_success()
    .stdout_is("fd77::/64 true\n");
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "only6",
        &lab.image,
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | wc -l; ip -6 -o addr show eth0 scope global | tr -s ' ' | cut -d' ' -f4; grep nameserver /etc/resolv.conf",
    ])
    .run()
    .assert_success()
    .stdout_is("0\nfd77::2/64\nnameserver fd77::1\n");
}

/// A container leaving a network others stay on: its name leaves aardvark-dns at once (box
/// removes its records itself instead of running netavark's teardown, which only the last
/// container of a network needs), the others keep resolving each other, and a new
/// container under the same name is found at its own address.
#[test]
fn a_container_leaving_a_shared_network_takes_its_name_along() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--subnet", "10.74.0.0/24", "stay"])
        .run()
        .assert_success();
    tb.cmd([
        "run",
        "-d",
        "--network",
        "stay",
        "--name",
        "a",
        "--ip",
        "10.74.0.5",
        &lab.image,
        "sleep",
        "600",
    ])
    .run()
    .assert_success();
    // aardvark-dns rebinds its sockets when it rereads its records (SIGHUP, from box or
    // netavark alike): a query sent at that moment is lost, so ask again until `want` shows.
    // Only what it has is asked (A records of its names), yet a name asked for just before
    // aardvark-dns has reread its records goes to the upstream servers, which this host
    // cannot reach: aardvark-dns 1.4 then answers nothing from its next SIGHUP until that
    // query gives up (~9 s; netavark's teardown or setup alike), hence the long wait: more
    // than one such stall in a row was seen (SIGHUPs close together, as a short `run --rm`
    // gives, are aardvark-dns 1.4's known trouble: containers/aardvark-dns#389, fixed in
    // 1.11 by no longer restarting every server on SIGHUP). That a name left is read in
    // the records aardvark-dns is given.
    let lookup = |name: &str, want: &str| {
        let mut said = String::new();
        until(
            &format!("{name} to resolve to {want}"),
            Duration::from_secs(60),
            || {
                said = tb
                    .cmd([
                        "exec",
                        "a",
                        "timeout",
                        "1",
                        "nslookup",
                        "-type=a",
                        &format!("{name}.dns.podman"),
                    ])
                    .run()
                    .out()
                    .to_string();
                said.contains(want)
            },
        );
        said
    };
    let records = tb
        .runroot()
        .join("networks/netavark/aardvark-dns")
        .join("stay");
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "stay",
        "--name",
        "b",
        &lab.image,
        "true",
    ])
    .run()
    .assert_success();
    let only_a = || {
        let text = std::fs::read_to_string(&records).unwrap();
        assert_eq!(text.lines().count(), 2, "the gateway and a only: {text}");
        assert!(text.contains("10.74.0.5") && !text.contains(" b"), "{text}");
    };
    only_a();
    lookup("a", "10.74.0.5");
    // The same name again, at another address: found there.
    tb.cmd([
        "run",
        "-d",
        "--network",
        "stay",
        "--name",
        "b",
        "--ip",
        "10.74.0.9",
        &lab.image,
        "sleep",
        "600",
    ])
    .run()
    .assert_success();
    lookup("b", "10.74.0.9");
    tb.cmd(["rm", "-f", "b"]).run().assert_success();
    only_a();
    lookup("a", "10.74.0.5");
    let left: Vec<_> = std::fs::read_dir(tb.runroot().join("networks/netavark"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "no temporary records left: {left:?}");
    // The last one: the holder goes, and with it aardvark-dns and any netavark still
    // tearing down in its namespace.
    tb.cmd(["rm", "-f", "a"]).run().assert_success();
    tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
    let runroot = tb.runroot().display().to_string();
    until(
        "netavark and aardvark-dns to go",
        Duration::from_secs(10),
        || {
            processes(&["netavark", &runroot]).is_empty()
                && processes(&["aardvark-dns", &runroot]).is_empty()
        },
    );
}

/// The host's default IPv4 gateway (from /proc/net/route), which pasta copies into the
/// namespace it serves and maps to the host's loopback.
fn default_gateway() -> Option<std::net::Ipv4Addr> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    routes.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"00000000"))
            .then(|| u32::from_str_radix(f.get(2)?, 16).ok())
            .flatten()
            .map(|g| std::net::Ipv4Addr::from(g.to_le_bytes()))
    })
}

/// The first container on a network starts the holder, whose pasta comes up while netavark
/// plugs the container in: its command runs only once pasta is ready, so it reaches the
/// outside at once (here the host's loopback, which pasta maps the gateway address to).
/// Each run starts a fresh holder.
#[test]
fn the_first_container_on_a_network_reaches_the_outside_at_once() {
    let env = require_env!(alpine);
    if !have_netavark() || !crate::network::have(&["pasta"]) {
        return;
    }
    let Some(gw) = default_gateway() else {
        crate::harness::skip("no default route for pasta to copy");
        return;
    };
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "outward"])
        .run()
        .assert_success();
    let port = crate::network::host_http("hello through pasta\n");
    let url = format!("http://{gw}:{port}/");
    for _ in 0..3 {
        tb.cmd([
            "run",
            "--rm",
            "--network",
            "outward",
            &lab.image,
            "wget",
            "-q",
            "-T",
            "5",
            "-O",
            "-",
            &url,
        ])
        .run()
        .assert_success()
        .stdout_contains("hello through pasta");
        // The holder went with it: the next run starts another.
        tb.cmd(["ps", "-aq"]).run().assert_success().stdout_is("");
    }
}

/// `network create --disable-dns`: no aardvark-dns on the network, so its containers do not
/// find each other by name; they resolve through the holder's pasta (its DNS forwarder), as
/// a container of the default network does. `network inspect` says so.
#[test]
fn a_network_without_dns_has_no_aardvark_dns() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "--disable-dns", "quiet"])
        .run()
        .assert_success();
    tb.cmd(["network", "inspect", "--format", "{{.DNSEnabled}}", "quiet"])
        .run()
        .assert_success()
        .stdout_is("false\n");
    tb.cmd([
        "run",
        "-d",
        "--network",
        "quiet",
        "--name",
        "peer",
        &lab.image,
        "sleep",
        "60",
    ])
    .run()
    .assert_success();
    let out = tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "quiet",
            &lab.image,
            "sh",
            "-c",
            "cat /etc/resolv.conf; nslookup peer >/dev/null 2>&1 && echo FOUND || echo NOTFOUND",
        ])
        .run();
    out.assert_success()
        .stdout_contains("nameserver 169.254.1.1")
        .stdout_contains("NOTFOUND");
    assert!(!out.out().contains("dns.podman"), "{}", out.out());
    let runroot = tb.runroot().display().to_string();
    assert!(
        processes(&["aardvark-dns", &runroot]).is_empty(),
        "no aardvark-dns for a network without DNS"
    );
    tb.cmd(["rm", "-f", "-t", "0", "peer"])
        .run()
        .assert_success();
}

/// `network create --subnet ... --ip-range CIDR`: containers get addresses from the range
/// (netavark's `lease_range` in the record), `--ip` may still ask for one outside it.
#[test]
fn addresses_come_from_the_ip_range() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd([
        "network",
        "create",
        "--subnet",
        "10.91.0.0/24",
        "--ip-range",
        "10.91.0.128/25",
        "ranged",
    ])
    .run()
    .assert_success();
    tb.cmd(["network", "inspect", "ranged"])
        .run()
        .assert_success()
        .stdout_contains("\"start_ip\": \"10.91.0.128\"")
        .stdout_contains("\"end_ip\": \"10.91.0.254\"");
    let addr = |extra: &[&str]| {
        let mut argv = vec!["run", "--rm", "--network", "ranged"];
        argv.extend_from_slice(extra);
        argv.extend_from_slice(&[&lab.image, "ip", "-4", "-o", "addr", "show", "eth0"]);
        let out = tb.cmd(argv).run();
        out.assert_success();
        out.out().to_string()
    };
    assert!(addr(&[]).contains("10.91.0.128/24"), "first of the range");
    assert!(
        addr(&["--ip", "10.91.0.7"]).contains("10.91.0.7/24"),
        "--ip outside it"
    );
    // A range outside the subnet: one line, nothing created.
    tb.cmd([
        "network",
        "create",
        "--subnet",
        "10.92.0.0/24",
        "--ip-range",
        "10.93.0.0/25",
        "wrong",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("--ip-range");
    tb.cmd(["network", "exists", "wrong"]).run().assert_code(1);
}

/// A container's own settings on a user network. The network comes up while the container
/// mounts its root (its command waits for it), and a net.* `--sysctl` naming the interface
/// netavark brings (eth0) waits for it first. `--mac-address`: the interface has it
/// (netavark's `static_mac`), inspect and `generate systemd --new` say it; a bad one, or
/// one without a user network, is refused with exit 125 and nothing created.
#[test]
fn a_containers_interface_takes_its_sysctls_and_mac_address() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["network", "create", "macnet"])
        .run()
        .assert_success();
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "macnet",
        "--sysctl",
        "net.ipv4.conf.eth0.route_localnet=1",
        &lab.image,
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/conf/eth0/route_localnet; ip -o -4 addr show eth0 | grep -c inet",
    ])
    .run()
    .assert_success()
    .stdout_is("1\n1\n");
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "macnet",
        "--mac-address",
        "92:D0:c6:0a:29:33",
        &lab.image,
        "cat",
        "/sys/class/net/eth0/address",
    ])
    .run()
    .assert_success()
    .stdout_is("92:d0:c6:0a:29:33\n");
    tb.cmd([
        "create",
        "--network",
        "macnet",
        "--name",
        "m",
        "--mac-address",
        "92:d0:c6:0a:29:34",
        &lab.image,
        "true",
    ])
    .run()
    .assert_success();
    let out = tb.cmd(["inspect", "m"]).run();
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(out.out()).unwrap();
    let net = &v[0]["NetworkSettings"];
    assert_eq!(net["MacAddress"], "92:d0:c6:0a:29:34", "{net}");
    assert_eq!(
        net["Networks"]["macnet"]["MacAddress"], "92:d0:c6:0a:29:34",
        "{net}"
    );
    tb.cmd(["generate", "systemd", "--new", "m"])
        .run()
        .assert_success()
        .stdout_contains("--mac-address 92:d0:c6:0a:29:34");
    for (args, says) in [
        (
            vec!["--network", "macnet", "--mac-address", "93:d0:c6:0a:29:35"],
            "invalid --mac-address \"93:d0:c6:0a:29:35\"",
        ),
        (
            vec!["--network", "macnet", "--mac-address", "92:d0:c6:0a:29"],
            "invalid --mac-address",
        ),
        (
            vec!["--mac-address", "92:d0:c6:0a:29:35"],
            "--mac-address 92:d0:c6:0a:29:35 needs a user network",
        ),
    ] {
        let mut argv = vec!["run", "--rm", "--name", "refused"];
        argv.extend(args);
        argv.extend([lab.image.as_str(), "true"]);
        tb.cmd(argv).run().assert_code(125).stderr_contains(says);
    }
    tb.cmd(["ps", "-a", "--format", "{{.Names}}"])
        .run()
        .assert_success()
        .stdout_is("m\n");
}
