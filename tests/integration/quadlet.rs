//! Quadlet-style units, as boxtest, without systemd: `box quadlet --dryrun` on the user's
//! `~/.config/box/systemd/*.container`, the generator mode (box invoked as
//! `box-user-generator DIR`), warnings and errors naming file:line, and the generated
//! ExecStart/ExecStop lines run by hand: a container, a `.volume`, an `.image`, a `.network`
//! with a container on it, a `.pod` with a container in it, a `.kube` playing its YAML.
//! (The units under a real systemd: tests/vm.)
use std::time::Duration;

use crate::harness::lab::{Lab, until};

const WEB: &str = "\
[Unit]
Description=quadlet test

[Container]
Image=IMAGE
ContainerName=qweb
Network=none
Volume=qdata:/data
Environment=GREETING=hello
Label=app=q
StopTimeout=1
HealthCmd=test -e /data
HealthInterval=1s
Frobnicate=yes
Exec=sleep 300

[Service]
Restart=always

[Install]
WantedBy=default.target
";

fn put(lab: &Lab, rel: &str, text: &str) -> std::path::PathBuf {
    let u = lab.tb.user();
    let mut p = lab.tb.config_dir();
    for part in ["box", "systemd"] {
        p = p.join(part);
        let _ = std::fs::create_dir(&p);
        std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
    }
    let f = p.join(rel);
    std::fs::write(&f, text).unwrap();
    std::os::unix::fs::chown(&f, Some(u.uid), Some(u.gid)).unwrap();
    f
}

/// The command of a unit's `KEY=` line (plain and double-quoted words: what these tests write).
fn exec_line(unit: &str, key: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in\n{unit}"));
    let line = line.trim_start_matches('-');
    // Words, with "double quotes" grouping (what quote() writes for these values).
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[test]
fn a_container_file_becomes_a_unit_that_runs() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let file = put(&lab, "web.container", &WEB.replace("IMAGE", &lab.image));

    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_success();
    let unit = out.out().to_string();
    assert!(unit.starts_with("---web.service---\n"), "{unit}");
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "KillMode=mixed",
        "Delegate=yes",
        "Restart=always",
        "WantedBy=default.target",
        "Description=quadlet test",
        &format!("SourcePath={}", file.display()),
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    // The unknown key: a warning naming file:line.
    out.stderr_contains(&format!(
        "{}:14: unsupported key 'Frobnicate'",
        file.display()
    ));

    // The generator mode writes the same unit.
    let gen_dir = lab.tb.work().join("generated");
    let link = lab.tb.work().join("box-user-generator");
    std::os::unix::fs::symlink(env.box_bin(), &link).unwrap();
    let out = lab
        .tb
        .sh(&format!(
            "'{}' '{}' /nonexistent/early /nonexistent/late",
            link.display(),
            gen_dir.display()
        ))
        .run();
    out.assert_success();
    let written = std::fs::read_to_string(gen_dir.join("web.service")).unwrap();
    assert_eq!(
        written,
        unit.trim_start_matches("---web.service---\n")
            .trim_end_matches('\n')
            .to_string()
            + "\n"
    );

    // What systemd would run: ExecStart in the foreground (Type=notify's main process),
    // then ExecStop.
    let start = exec_line(&written, "ExecStart");
    assert!(
        start.join(" ").contains(" run --rm --sdnotify=ready "),
        "{start:?}"
    );
    let main = lab.tb.cmd(&start[1..]).spawn();
    until("qweb healthy", Duration::from_secs(20), || {
        lab.run(&["inspect", "--format", "{{.State.Health.Status}}", "qweb"])
            .out()
            .trim()
            == "healthy"
    });
    lab.run(&["exec", "qweb", "sh", "-c", "echo $GREETING; test -d /data"])
        .assert_success()
        .stdout_is("hello");
    lab.run(&["volume", "exists", "qdata"]).assert_success();
    lab.run(&["inspect", "--format", "{{.Config.Labels.app}}", "qweb"])
        .assert_success()
        .stdout_is("q");
    let stop = exec_line(&written, "ExecStop");
    lab.tb.cmd(&stop[1..]).run().assert_success();
    let code = main.wait();
    assert!(matches!(code.code, 0 | 137 | 143), "{code}");
    // --rm: gone.
    lab.run(&["container", "exists", "qweb"]).assert_code(1);
}

#[test]
fn bad_unit_files_are_errors_naming_file_and_line() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let f = put(&lab, "bad.container", "[Container]\nPublishPort=80\n");
    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_code(125);
    out.stderr_contains(&format!("{}: no Image=", f.display()));
    let f = put(
        &lab,
        "bad.container",
        "[Container]\nImage=alpine\nnot a key\n",
    );
    lab.run(&["quadlet", "--dryrun"])
        .assert_code(125)
        .stderr_contains(&format!("{}:3: expected KEY=VALUE", f.display()));
    lab.run(&["quadlet"])
        .assert_code(125)
        .assert_one_line_error();
}

#[test]
fn a_volume_file_and_a_container_mounting_it() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    put(&lab, "store.volume", "[Volume]\nVolumeName=qstore\n");
    put(
        &lab,
        "app.container",
        &format!(
            "[Container]\nImage={}\nVolume=store.volume:/store\n",
            lab.image
        ),
    );
    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_success();
    let text = out.out();
    assert!(text.contains("---store-volume.service---\n"), "{text}");
    assert!(
        text.lines().any(|l| l.ends_with(" volume create qstore")),
        "{text}"
    );
    assert!(text.contains(" -v qstore:/store "), "{text}");
    assert!(text.contains("\nRequires=store-volume.service\n"), "{text}");
    // The oneshot's commands work: create once, then the condition says it exists.
    let unit = text.split("---store-volume.service---\n").nth(1).unwrap();
    let create = exec_line(unit, "ExecStart");
    lab.tb.cmd(&create[1..]).run().assert_success();
    lab.run(&["volume", "exists", "qstore"]).assert_success();
    let cond = exec_line(unit, "ExecCondition");
    assert_eq!(
        cond[..2],
        ["/bin/sh".to_string(), "-c".to_string()],
        "{cond:?}"
    );
    lab.tb.sh(&cond[2]).run().assert_code(1);
}

#[test]
fn an_image_file_pulls_what_a_container_file_runs() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let image = env.image(crate::harness::images::LAYERS);
    put(
        &lab,
        "layers.image",
        &format!("[Image]\nImage={image}\nTLSVerify=false\n"),
    );
    put(&lab, "uses.container", "[Container]\nImage=layers.image\n");
    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_success();
    let text = out.out();
    assert!(text.contains("---layers-image.service---\n"), "{text}");
    assert!(text.contains("\nRequires=layers-image.service\n"), "{text}");
    let uses = text.split("---uses.service---\n").nth(1).unwrap();
    assert!(exec_line(uses, "ExecStart").contains(&image), "{uses}");
    // The oneshot's pull works.
    let unit = text
        .split("---layers-image.service---\n")
        .nth(1)
        .unwrap()
        .split("---")
        .next()
        .unwrap();
    let pull = exec_line(unit, "ExecStart");
    lab.tb.cmd(&pull[1..]).run().assert_success();
    lab.run(&["image", "exists", &image]).assert_success();
}

/// As a systemd service's process (`INVOCATION_ID`, as in a quadlet unit), `box run --rm`
/// returns only once its cleanup watcher has deleted the container's files: systemd kills
/// what is left in the unit's cgroup when the main process exits, which would leave them in
/// containers/.trash.
#[test]
fn under_a_unit_run_rm_returns_after_the_files_are_deleted() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.tb
        .cmd([
            "run",
            "--rm",
            "--network",
            "none",
            &lab.image,
            "sh",
            "-c",
            "mkdir /d && cd /d && i=0; while [ $i -lt 2000 ]; do : >f$i; i=$((i+1)); done",
        ])
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
        .run()
        .assert_success();
    let trash = lab.tb.root().join("containers/.trash");
    let left: Vec<_> = std::fs::read_dir(&trash)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", trash.display());
}

/// One unit of `box quadlet --dryrun`'s output.
fn unit_of<'a>(all: &'a str, name: &str) -> &'a str {
    all.split(&format!("---{name}---\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} in\n{all}"))
        .split("\n---")
        .next()
        .unwrap()
}

/// Every `KEY=` command of a unit, in order.
fn exec_lines(unit: &str, key: &str) -> Vec<Vec<String>> {
    unit.lines()
        .filter(|l| l.starts_with(&format!("{key}=")))
        .map(|l| exec_line(l, key))
        .collect()
}

fn have_netavark() -> bool {
    if std::path::Path::new("/usr/lib/podman/netavark").exists()
        && std::path::Path::new("/usr/lib/podman/aardvark-dns").exists()
    {
        return true;
    }
    crate::harness::skip(
        "netavark and aardvark-dns are not installed (apt install netavark aardvark-dns)",
    );
    false
}

#[test]
fn a_network_file_and_a_container_on_it() {
    let env = require_env!(alpine);
    if !have_netavark() {
        return;
    }
    let lab = Lab::new(env);
    put(
        &lab,
        "back.network",
        "[Network]\nNetworkName=qnet\nSubnet=10.78.0.0/24\nLabel=q=1\n",
    );
    put(
        &lab,
        "app.container",
        &format!(
            "[Container]\nImage={}\nContainerName=qapp\nNetwork=back.network\nStopTimeout=1\nExec=sleep 300\n",
            lab.image
        ),
    );
    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_success();
    let all = out.out().to_string();
    let net = unit_of(&all, "back-network.service");
    let app = unit_of(&all, "app.service");
    assert!(net.lines().any(|l| l == "Type=oneshot"), "{net}");
    assert!(
        app.contains("\nRequires=back-network.service\nAfter=back-network.service\n"),
        "{app}"
    );

    // The oneshot creates the network; run again (a restart), --ignore keeps it.
    let create = exec_line(net, "ExecStart");
    assert!(create.contains(&"--ignore".to_string()), "{create:?}");
    for _ in 0..2 {
        lab.tb.cmd(&create[1..]).run().assert_success();
    }
    lab.run(&["network", "ls", "-q", "--filter", "label=q=1"])
        .assert_success()
        .stdout_is("qnet");

    let main = lab.tb.cmd(&exec_line(app, "ExecStart")[1..]).spawn();
    until("qapp running", Duration::from_secs(20), || {
        lab.run(&["inspect", "--format", "{{.State.Status}}", "qapp"])
            .out()
            .trim()
            == "running"
    });
    lab.run(&["inspect", "--format", "{{.HostConfig.NetworkMode}}", "qapp"])
        .assert_success()
        .stdout_is("qnet");
    lab.run(&["exec", "qapp", "ip", "-4", "-o", "addr", "show", "eth0"])
        .assert_success()
        .stdout_contains("10.78.0.");
    lab.tb
        .cmd(&exec_line(app, "ExecStop")[1..])
        .run()
        .assert_success();
    let code = main.wait();
    assert!(matches!(code.code, 0 | 137 | 143), "{code}");
    lab.run(&["container", "exists", "qapp"]).assert_code(1);
    // The network stays (as Quadlet's): it is the oneshot's, not the container's.
    lab.run(&["network", "exists", "qnet"]).assert_success();
}

#[test]
fn a_pod_file_and_a_container_in_it() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    put(&lab, "web.pod", "[Pod]\nLabel=q=pod\n");
    put(
        &lab,
        "app.container",
        &format!(
            "[Container]\nImage={}\nContainerName=qpodapp\nPod=web.pod\nStopTimeout=1\nExec=sleep 300\n",
            lab.image
        ),
    );
    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_success();
    let all = out.out().to_string();
    let pod = unit_of(&all, "web-pod.service");
    let app = unit_of(&all, "app.service");
    assert!(
        pod.contains("\nWants=app.service\nBefore=app.service\n"),
        "{pod}"
    );
    assert!(
        app.contains("\nBindsTo=web-pod.service\nAfter=web-pod.service\n"),
        "{app}"
    );

    // Start the pod unit as systemd would: ExecStartPre lines ('-': failure ignored), then
    // ExecStart; twice (a restart replaces the pod).
    for _ in 0..2 {
        for (i, pre) in exec_lines(pod, "ExecStartPre").iter().enumerate() {
            let r = lab.tb.cmd(&pre[1..]).run();
            if i > 0 {
                r.assert_success();
            }
        }
        lab.tb
            .cmd(&exec_line(pod, "ExecStart")[1..])
            .run()
            .assert_success();
    }
    lab.run(&["pod", "ps", "--format", "{{.Name}} {{.Status}}"])
        .assert_success()
        .stdout_is("systemd-web Running");

    let main = lab.tb.cmd(&exec_line(app, "ExecStart")[1..]).spawn();
    until("qpodapp running", Duration::from_secs(20), || {
        lab.run(&["inspect", "--format", "{{.State.Status}}", "qpodapp"])
            .out()
            .trim()
            == "running"
    });
    lab.run(&["pod", "ps", "--format", "{{.Name}} {{.NumberOfContainers}}"])
        .assert_success()
        .stdout_is("systemd-web 2");
    lab.run(&[
        "ps",
        "--filter",
        "pod=systemd-web",
        "--format",
        "{{.Names}}",
    ])
    .assert_success()
    .stdout_contains("qpodapp");

    // Stop: the container's unit first (it is bound to the pod's), then the pod's.
    lab.tb
        .cmd(&exec_line(app, "ExecStop")[1..])
        .run()
        .assert_success();
    let code = main.wait();
    assert!(matches!(code.code, 0 | 137 | 143), "{code}");
    lab.run(&["container", "exists", "qpodapp"]).assert_code(1);
    for key in ["ExecStop", "ExecStopPost"] {
        lab.tb.cmd(&exec_line(pod, key)[1..]).run().assert_success();
    }
    lab.run(&["pod", "exists", "systemd-web"]).assert_code(1);
}

#[test]
fn a_kube_file_plays_its_yaml_and_takes_it_down() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let yaml = put(
        &lab,
        "app.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: qk\nspec:\n  containers:\n  - name: c\n    image: {}\n    command: [sleep, \"300\"]\n",
            lab.image
        ),
    );
    // Yaml= relative to the unit file's directory; ConfigMap=: a warning naming file:line.
    let file = put(
        &lab,
        "app.kube",
        "[Kube]\nYaml=app.yaml\nConfigMap=cm.yaml\n",
    );
    let out = lab.run(&["quadlet", "--dryrun"]);
    out.assert_success();
    out.stderr_contains(&format!("{}:3: ConfigMap=", file.display()));
    let all = out.out().to_string();
    let unit = unit_of(&all, "app.service");
    let play = exec_line(unit, "ExecStart");
    assert_eq!(
        play[play.len() - 3..],
        [
            "play".to_string(),
            "--replace".to_string(),
            yaml.display().to_string()
        ],
        "{unit}"
    );
    // Started twice (a restart): --replace plays it again.
    for _ in 0..2 {
        lab.tb.cmd(&play[1..]).run().assert_success();
    }
    lab.run(&["pod", "ps", "--format", "{{.Name}} {{.Status}}"])
        .assert_success()
        .stdout_is("qk Running");
    lab.tb
        .cmd(&exec_line(unit, "ExecStop")[1..])
        .run()
        .assert_success();
    lab.run(&["pod", "exists", "qk"]).assert_code(1);
}
