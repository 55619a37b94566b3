//! podman parity of the listing commands, as boxtest: `ps`'s filters, --last, --sort,
//! --size, --ns and podman's template fields (`{{.Labels.key}}`, `{{.Label "x"}}`,
//! `{{json .}}`, `table`); `stats --format` templates.
use crate::harness::lab::Lab;

#[test]
fn ps_filters_sorts_and_templates_as_podman() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "create",
        "--network",
        "none",
        "--name",
        "bb",
        "-l",
        "tier=db",
        &lab.image,
        "true",
    ])
    .assert_success();
    lab.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "aa",
        "-l",
        "tier=web",
        &lab.image,
        "sh",
        "-c",
        "exit 3",
    ])
    .assert_code(3);
    lab.detach(&["--name", "cc", "-l", "tier=web"], &["sleep", "300"]);
    let names = |args: &[&str]| {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let out = lab.run(&a);
        out.assert_success();
        out.out()
            .lines()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(names(&["-a", "--filter", "status=exited"]), "aa");
    assert_eq!(names(&["-a", "--filter", "exited=3"]), "aa");
    assert_eq!(
        names(&["-a", "--filter", "label=tier=web", "--sort", "names"]),
        "aa cc"
    );
    assert_eq!(
        names(&["-a", "--filter", "network=none", "--sort", "names"]),
        "aa bb cc"
    );
    assert_eq!(names(&["-a", "--filter", "name=b"]), "bb");
    // --last N: the newest N, whatever their state.
    assert_eq!(names(&["--last", "2"]), "cc aa");
    assert_eq!(names(&["-n", "1"]), "cc");
    // Labels is a map, as podman's; .Label "x" is its method.
    lab.run(&[
        "ps",
        "-a",
        "--sort",
        "names",
        "--format",
        "{{.Labels.tier}} {{ .Label \"tier\" }}",
    ])
    .assert_success()
    .stdout_is("web web\ndb db\nweb web\n");
    lab.run(&["ps", "--format", "table {{.Names}}\t{{.Label \"tier\"}}"])
        .assert_success()
        .stdout_contains("NAMES")
        .stdout_contains("cc");
    let out = lab.run(&["ps", "--format", "{{json .}}"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(out.out()).unwrap();
    assert_eq!(v["Names"], "cc");
    assert_eq!(v["Labels"]["tier"], "web");
    // --size and --ns add podman's columns.
    lab.run(&["ps", "--size"])
        .assert_success()
        .stdout_contains("SIZE")
        .stdout_contains("(virtual ");
    let out = lab.run(&["ps", "--ns"]);
    out.assert_success()
        .stdout_contains("CGROUPNS")
        .stdout_contains("USERNS");
    assert!(
        out.out().lines().nth(1).unwrap().split_whitespace().count() == 10,
        "{out}"
    );
    lab.run(&["ps", "--filter", "bogus=1"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unknown filter");
}

#[test]
fn images_filters_and_sorts_as_podman() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let layers = env.image(crate::harness::images::LAYERS);
    lab.run(&["pull", "-q", &layers]).assert_success();
    lab.run(&["create", "--name", "c", &lab.image, "true"])
        .assert_success();
    lab.run(&["commit", "c", "localhost/new:1"])
        .assert_success();
    let repos = |args: &[&str]| {
        let mut a = vec!["images", "--format", "{{.Repository}}"];
        a.extend_from_slice(args);
        let out = lab.run(&a);
        out.assert_success();
        out.out().lines().map(String::from).collect::<Vec<_>>()
    };
    let short = |r: &String| r.rsplit('/').next().unwrap_or("").to_string();
    let all = repos(&["-a"]);
    assert_eq!(all.len(), 3, "{all:?}");
    // Newest first by default (podman's --sort created).
    assert_eq!(all[0], "localhost/new");
    assert_eq!(
        repos(&["--filter", "label=box.test=layers"])
            .iter()
            .map(short)
            .collect::<Vec<_>>(),
        ["layers"]
    );
    assert_eq!(
        repos(&["--filter", "reference=*layers*"])
            .iter()
            .map(short)
            .collect::<Vec<_>>(),
        ["layers"]
    );
    assert_eq!(repos(&["--filter", "dangling=true"]), Vec::<String>::new());
    assert_eq!(
        repos(&["--filter", &format!("since={layers}")])
            .first()
            .map(String::as_str),
        Some("localhost/new")
    );
    assert!(!repos(&["--filter", "before=localhost/new:1"]).contains(&"localhost/new".to_string()));
    let sorted = repos(&["--sort", "repository"]);
    let mut expect = sorted.clone();
    expect.sort();
    assert_eq!(sorted, expect);
    lab.run(&["images", "--format", "table {{.Repository}}\t{{.Tag}}"])
        .assert_success()
        .stdout_contains("REPOSITORY")
        .stdout_contains("TAG");
    // podman's fields: Labels (a map, and its Label method), Containers, Dangling.
    lab.run(&[
        "images",
        "--filter",
        "label=box.test",
        "--format",
        "{{.Labels}} {{ .Label \"box.test\" }} {{.Containers}} {{.Dangling}}",
    ])
    .assert_success()
    .stdout_is("map[box.test:layers] layers 0 false\n");
    lab.run(&[
        "images",
        "--filter",
        "reference=*alpine*",
        "--format",
        "{{.Containers}}",
    ])
    .assert_success()
    .stdout_is("1\n");
    lab.run(&["images", "--filter", "bogus=1"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("unknown filter");
}

#[test]
fn info_format_uses_podmans_structure() {
    let env = require_env!();
    let tb = env.test_box();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    tb.cmd([
        "info",
        "--format",
        "{{.Host.Arch}} {{.Host.OS}} {{.Host.Security.Rootless}} {{.Version.Version}} {{.Store.ContainerStore.number}}",
    ])
    .run()
    .assert_success()
    .stdout_is(&format!("{arch} linux true {} 0\n", env!("CARGO_PKG_VERSION")));
    let out = tb.cmd(["info", "-f", "{{.Store.GraphRoot}}"]).run();
    out.assert_success();
    assert!(out.out().starts_with(tb.root().to_str().unwrap()), "{out}");
    // podman's words: the driver's name alone, the events backend in use.
    tb.cmd([
        "info",
        "-f",
        "{{.Store.GraphDriverName}} {{.Host.EventLogger}}",
    ])
    .run()
    .assert_success()
    .stdout_is("overlay file\n");
    tb.cmd([
        "--events-backend",
        "none",
        "info",
        "-f",
        "{{.Host.EventLogger}}",
    ])
    .run()
    .assert_success()
    .stdout_is("none\n");
    // json stays box's own document.
    let out = tb.cmd(["info", "--format", "json"]).run();
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(out.out()).unwrap();
    assert!(v["user"]["rootless"].as_bool().unwrap());
    tb.cmd(["info", "--format", "{{.Host.Arch"])
        .run()
        .assert_code(125)
        .assert_one_line_error();
}

#[test]
fn inspect_type_and_size() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "run",
        "--network",
        "none",
        "--name",
        "c",
        &lab.image,
        "sh",
        "-c",
        "head -c 10000 /dev/zero > /f",
    ])
    .assert_success();
    let out = lab.run(&[
        "inspect",
        "--type",
        "container",
        "--size",
        "-f",
        "{{.SizeRw}} {{.SizeRootFs}}",
        "c",
    ]);
    out.assert_success();
    let n: Vec<u64> = out.out().split(' ').map(|x| x.parse().unwrap()).collect();
    assert!(n[0] >= 10000 && n[1] > n[0], "{out}");
    lab.run(&["inspect", "--type", "image", "c"])
        .assert_code(125)
        .stderr_contains("no such image: c");
    lab.run(&["inspect", "--type", "volume", "-f", "{{.Name}}", "c"])
        .assert_code(125)
        .stderr_contains("no such volume: c");
}

#[test]
fn stats_format_takes_podmans_templates() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(&["--name", "st"], &["sleep", "300"]);
    let out = lab.run(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}|{{.ID}}",
    ]);
    out.assert_success();
    let line = out.out().trim().to_string();
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f.len(), 5, "{line}");
    assert_eq!(f[0], "st");
    assert!(f[1].ends_with('%'), "{line}");
    assert!(f[2].contains(" / "), "{line}");
    assert_eq!(f[3], "1", "{line}");
    assert_eq!(f[4], &lab.id("st")[..12]);
    lab.run(&[
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\t{{.PIDs}}",
    ])
    .assert_success()
    .stdout_contains("NAME")
    .stdout_contains("PIDS")
    .stdout_contains("st");
}
