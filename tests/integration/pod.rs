//! Pods as boxtest: two containers of a pod talk over localhost and share the pod's host
//! name, the pod's published port answers on the host's loopback, `ps --pod`/`--filter
//! pod=` and `pod ps`, refusals (running pod without -f, the infra container alone, flags
//! the pod owns, name clashes, unknown pods, unsupported options), and after `pod rm -f`
//! nothing is left: no record, no infra or helper process.
use std::net::TcpListener;
use std::time::Duration;

use crate::harness::lab::{Lab, alive, free_port, read_from, until};
use crate::harness::which;

/// The pid of a container (by name) from its state.json.
fn pid_of(lab: &Lab, name: &str) -> i32 {
    lab.state(&lab.id(name))["pid"].as_i64().expect("pid") as i32
}

#[test]
fn pod_containers_share_localhost_and_the_published_port() {
    let env = require_env!(alpine);
    if which("pasta").is_none() {
        crate::harness::skip("pasta is not installed");
        return;
    }
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = tb
        .cmd([
            "pod", "create", "--name", "shop", "-p", &publish, "--label", "tier=web",
        ])
        .run();
    out.assert_success();
    let pod_id = out.out().trim().to_string();
    assert_eq!(pod_id.len(), 64, "{out}");
    tb.cmd(["pod", "exists", "shop"]).run().assert_success();
    // Created: only the infra container, not started yet.
    tb.cmd(["pod", "ps"])
        .run()
        .assert_success()
        .stdout_contains("POD ID")
        .stdout_contains("# OF CONTAINERS")
        .stdout_contains("Created");

    tb.cmd([
        "run",
        "-d",
        "--pod",
        "shop",
        "--name",
        "web",
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "hello-from-web",
    ])
    .run()
    .assert_success();
    // A second container reaches the first on localhost and has the pod's host name.
    let mut said = String::new();
    until(
        "web to answer on the pod's localhost",
        Duration::from_secs(15),
        || {
            let out = tb
                .cmd([
                    "run",
                    "--rm",
                    "--pod",
                    "shop",
                    &lab.image,
                    "sh",
                    "-c",
                    "hostname; nc 127.0.0.1 80 </dev/null",
                ])
                .run();
            said = out.out().to_string();
            out.success() && said.contains("hello-from-web")
        },
    );
    assert!(said.starts_with("shop\n"), "the pod's host name: {said:?}");
    // The pod's published port answers on the host's loopback.
    let mut page = None;
    until(
        "the published port to answer",
        Duration::from_secs(15),
        || {
            page = read_from(port);
            page.is_some()
        },
    );
    assert!(page.unwrap().contains("hello-from-web"));

    // ps --pod and --filter pod=; pod ps counts the infra container and web.
    let out = tb.cmd(["ps", "-a", "--pod", "--filter", "pod=shop"]).run();
    out.assert_success()
        .stdout_contains("POD ID")
        .stdout_contains("PODNAME")
        .stdout_contains(&pod_id[..12])
        .stdout_contains(" web");
    assert_eq!(out.out().lines().count(), 3, "header, infra, web:\n{out}");
    tb.cmd(["ps", "-a", "--filter", "pod=nope"])
        .run()
        .assert_success()
        .stdout_lacks("web");
    let out = tb
        .cmd([
            "pod",
            "ps",
            "--format",
            "{{.Name}} {{.Status}} {{.NumberOfContainers}}",
        ])
        .run();
    out.assert_success().stdout_is("shop Running 2\n");
    tb.cmd([
        "pod",
        "inspect",
        "--format",
        "{{.Hostname}} {{.InfraConfig.NetworkMode}}",
        "shop",
    ])
    .run()
    .assert_success()
    .stdout_is("shop pasta\n");
    tb.cmd(["pod", "top", "shop"])
        .run()
        .assert_success()
        .stdout_contains("box-pause")
        .stdout_contains("nc -lk");

    // A running pod is not removed without -f; its infra container never alone.
    let out = tb.cmd(["pod", "rm", "shop"]).run();
    out.assert_code(2)
        .assert_one_line_error()
        .stderr_contains("box pod rm -f shop");
    let infra = format!("{}-infra", &pod_id[..12]);
    tb.cmd(["rm", "-f", &infra])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("infra container of pod shop");

    // pod stop, then start again: the same app answers.
    tb.cmd(["pod", "stop", "-t", "1", "shop"])
        .run()
        .assert_success();
    tb.cmd(["pod", "ps", "--format", "{{.Status}}"])
        .run()
        .assert_success()
        .stdout_is("Exited\n");
    tb.cmd(["pod", "start", "shop"]).run().assert_success();
    until(
        "the published port after pod start",
        Duration::from_secs(15),
        || read_from(port).is_some_and(|s| s.contains("hello-from-web")),
    );

    let infra_pid = pid_of(&lab, &infra);
    let web_pid = pid_of(&lab, "web");
    assert!(alive(infra_pid) && alive(web_pid));
    let out = tb.cmd(["pod", "rm", "-f", "shop"]).run();
    out.assert_success().stdout_contains(&pod_id);
    until("the pod's processes to go", Duration::from_secs(10), || {
        !alive(infra_pid) && !alive(web_pid)
    });
    until(
        "the published port to be free",
        Duration::from_secs(10),
        || TcpListener::bind(("127.0.0.1", port)).is_ok(),
    );
    tb.cmd(["pod", "exists", "shop"]).run().assert_code(1);
    let out = tb.cmd(["ps", "-a", "-q"]).run();
    out.assert_success().stdout_is("");
    assert!(
        std::fs::read_dir(tb.root().join("pods"))
            .unwrap()
            .filter_map(|e| e.ok())
            .all(|e| e.file_name() == "names" || e.file_name() == ".lock"),
        "no pod record left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&tb.root().display().to_string()),
        "nothing mounted under the store on the host"
    );
    // The pod's life is in the event log, as podman's pod events.
    let out = tb
        .cmd([
            "events",
            "--stream=false",
            "--filter",
            "type=pod",
            "--format",
            "{{.Status}} {{.Name}}",
        ])
        .run();
    out.assert_success();
    let seen: Vec<&str> = out.out().lines().collect();
    for want in ["create shop", "start shop", "remove shop"] {
        assert!(seen.contains(&want), "pod event {want:?} in {seen:?}");
    }
}

#[test]
fn pod_errors_are_one_line() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["pod", "create", "--name", "p1", "--network", "none"])
        .run()
        .assert_success();
    // A name clash.
    tb.cmd(["pod", "create", "--name", "p1"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("already in use");
    // An unknown pod.
    tb.cmd(["run", "--rm", "--pod", "nope", &lab.image, "true"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("no such pod: nope");
    tb.cmd(["pod", "exists", "nope"]).run().assert_code(1);
    // What the pod owns cannot be set on its containers.
    tb.cmd([
        "run", "--rm", "--pod", "p1", "-p", "8080:80", &lab.image, "true",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("belong to the pod p1");
    tb.cmd([
        "run",
        "--rm",
        "--pod",
        "p1",
        "--hostname",
        "x",
        &lab.image,
        "true",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error();
    // Options box does not have.
    tb.cmd(["pod", "create", "--share", "pid", "--name", "p2"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("--share");
    tb.cmd(["pod", "exists", "p2"]).run().assert_code(1);
    // Pod limits: the infra container holds the pod's cgroup; no cgroup v2 (this build
    // machine's hybrid hierarchy), no pod limits. (Where delegated: tests/vm/guest/pods.)
    tb.cmd([
        "pod",
        "create",
        "--infra=false",
        "--memory",
        "64m",
        "--name",
        "p2",
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("--infra=false");
    if std::fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_err() {
        tb.cmd(["pod", "create", "--memory", "64m", "--name", "p2"])
            .run()
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains("cgroup v2");
    }
    tb.cmd(["pod", "exists", "p2"]).run().assert_code(1);
    // A taken port: nothing is recorded.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    tb.cmd([
        "pod",
        "create",
        "--name",
        "p3",
        "-p",
        &format!("127.0.0.1:{port}:80"),
    ])
    .run()
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("already in use");
    tb.cmd(["pod", "exists", "p3"]).run().assert_code(1);

    // --pod new:NAME makes the pod; a container of it that exits leaves the pod.
    let out = tb
        .cmd([
            "run",
            "--rm",
            "--pod",
            "new:p4",
            "--network",
            "none",
            &lab.image,
            "hostname",
        ])
        .run();
    out.assert_success().stdout_is("p4\n");
    tb.cmd(["pod", "exists", "p4"]).run().assert_success();
    // Stopped pods (their infra still runs: a running pod) go with -f; prune takes the
    // stopped ones.
    tb.cmd(["pod", "rm", "-f", "p4"]).run().assert_success();
    tb.cmd(["pod", "prune", "-f"]).run().assert_success();
    tb.cmd(["pod", "exists", "p1"]).run().assert_code(1);
    tb.cmd(["pod", "ps", "-q"])
        .run()
        .assert_success()
        .stdout_is("");
}

#[test]
fn generate_systemd_and_kube_for_a_pod() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    tb.cmd(["pod", "create", "--name", "svc", "--network", "none"])
        .run()
        .assert_success();
    tb.cmd([
        "create", "--pod", "svc", "--name", "worker", &lab.image, "sleep", "300",
    ])
    .run()
    .assert_success();
    let pod_id = tb
        .cmd(["pod", "inspect", "--format", "{{.Id}}", "svc"])
        .run()
        .out()
        .to_string();
    let infra_name = format!("{}-infra", &pod_id[..12]);
    let out = tb.cmd(["generate", "systemd", "--name", "svc"]).run();
    out.assert_success()
        .stdout_contains("# pod-svc.service")
        .stdout_contains("Type=oneshot")
        .stdout_contains(&format!(" start {infra_name}\n"))
        .stdout_contains(&format!(" stop -t 10 {infra_name}\n"))
        .stdout_contains("Wants=container-worker.service")
        .stdout_contains("# container-worker.service")
        .stdout_contains("BindsTo=pod-svc.service")
        .stdout_contains(" start --attach worker");
    tb.cmd(["generate", "systemd", "--new", "svc"])
        .run()
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not supported for pods yet");
    // generate kube: the pod with its container, not the infra container.
    tb.cmd(["generate", "kube", "svc"])
        .run()
        .assert_success()
        .stdout_contains("name: \"svc\"")
        .stdout_contains("name: \"worker\"")
        .stdout_lacks("box-pause");
    tb.cmd(["pod", "rm", "-f", "svc"]).run().assert_success();
}

/// `pod create --infra-image IMAGE --infra-command ... --infra-name`: the infra container runs
/// that command on that image's root (podman's), holds the pod's published port for its
/// members, keeps the image in use, and bad combinations leave nothing behind.
#[test]
fn an_infra_container_from_an_image() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    lab.run(&[
        "pod",
        "create",
        "--name",
        "imgpod",
        "--infra-image",
        &lab.image,
        "--infra-command",
        r#"["sh","-c","trap 'exit 0' TERM; while :; do sleep 1; done"]"#,
        "--infra-name",
        "imginfra",
        "-p",
        &publish,
    ])
    .assert_success();
    lab.run(&[
        "run",
        "-d",
        "--pod",
        "imgpod",
        "--name",
        "member",
        &lab.image,
        "nc",
        "-lk",
        "-p",
        "80",
        "-e",
        "echo",
        "FROM-MEMBER",
    ])
    .assert_success();
    lab.run(&[
        "ps",
        "--format",
        "{{.Names}} {{.Image}}",
        "--filter",
        "name=imginfra",
    ])
    .assert_success()
    .stdout_is(&format!("imginfra {}\n", lab.image));
    lab.run(&["exec", "imginfra", "cat", "/proc/1/cmdline"])
        .assert_success()
        .stdout_contains("trap");
    until(
        "the member to answer on the pod's port",
        Duration::from_secs(10),
        || read_from(port).is_some_and(|s| s.contains("FROM-MEMBER")),
    );
    lab.run(&["rmi", &lab.image])
        .assert_code(2)
        .stderr_contains("imginfra");
    lab.run(&["pod", "stop", "-t", "5", "imgpod"])
        .assert_success();
    lab.run(&["pod", "rm", "imgpod"]).assert_success();
    lab.run(&["ps", "-aq"]).assert_success().stdout_is("");

    for (args, needle) in [
        (
            vec!["--infra=false", "--infra-image", lab.image.as_str()],
            "--infra=false",
        ),
        (vec!["--infra-command", "sleep"], "--infra-image"),
    ] {
        let mut argv = vec!["pod", "create", "--name", "bad"];
        argv.extend(args);
        lab.run(&argv)
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(needle);
    }
    // An image the registry does not have: the pull's own lines, then the error.
    let missing = format!("{}/nope:1", lab.image.split('/').next().unwrap());
    let out = lab.run(&["pod", "create", "--name", "bad", "--infra-image", &missing]);
    out.assert_code(125);
    let last = out.err().lines().last().unwrap_or("").to_string();
    assert!(last.contains(&format!("--infra-image {missing}")), "{out}");
    lab.run(&["pod", "ps", "-q"]).assert_success().stdout_is("");
    lab.run(&["ps", "-aq"]).assert_success().stdout_is("");
}
