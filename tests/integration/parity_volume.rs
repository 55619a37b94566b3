//! podman parity of `box volume`, as boxtest: create's -o/--label/-d/--ignore, rm -a,
//! ls --filter, inspect --format, and tmpfs and bind volumes in containers.
use crate::harness::lab::Lab;

#[test]
fn volume_create_options_filters_and_formats() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let host = lab.tb.mkdir("hostdir");
    lab.tb.write("hostdir/f", "from the host\n");
    let device = format!("device={}", host.display());
    lab.run(&["volume", "create", "-d", "local", "-l", "app=web", "plain"])
        .assert_success()
        .stdout_is("plain\n");
    lab.run(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "o=size=1m",
        "scratch",
    ])
    .assert_success();
    lab.run(&[
        "volume",
        "create",
        "-o",
        "type=bind",
        "-o",
        &device,
        "hostvol",
    ])
    .assert_success();
    // --ignore: an existing volume is fine.
    lab.run(&["volume", "create", "plain"]).assert_code(125);
    lab.run(&["volume", "create", "--ignore", "plain"])
        .assert_success()
        .stdout_is("plain\n");
    lab.run(&[
        "volume",
        "inspect",
        "--format",
        "{{.Name}} {{.Labels.app}} {{.Driver}}",
        "plain",
    ])
    .assert_success()
    .stdout_is("plain web local\n");
    lab.run(&["volume", "inspect", "-f", "{{.Mountpoint}}", "hostvol"])
        .assert_success()
        .stdout_is(&format!("{}\n", host.display()));
    lab.run(&["volume", "ls", "-q", "--filter", "label=app=web"])
        .assert_success()
        .stdout_is("plain\n");
    lab.run(&["volume", "ls", "-q", "--filter", "name=scr"])
        .assert_success()
        .stdout_is("scratch\n");
    // In a container: the bind volume is the host directory, the tmpfs one a tmpfs.
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "hostvol:/h",
        "-v",
        "scratch:/s",
        "-v",
        "plain:/p",
        &lab.image,
        "sh",
        "-c",
        "cat /h/f; df -k /s | tail -1 | awk '{print $2}'; touch /p/x && echo ok",
    ])
    .assert_success()
    .stdout_is("from the host\n1024\nok\n");
    lab.run(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        "dangling=true",
        "--filter",
        "name=plain",
    ])
    .assert_success()
    .stdout_is("plain\n");
    lab.run(&["run", "--rm", "-v", "plain:/p:idmap", &lab.image, "true"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("idmapped mounts");
    lab.run(&["volume", "create", "-o", "type=nfs", "bad"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("type=nfs");
    lab.run(&["volume", "create", "-d", "other", "bad"])
        .assert_code(125);
    // rm -a removes them all; the host directory of the bind volume stays.
    lab.run(&["volume", "rm", "-a"]).assert_success();
    lab.run(&["volume", "ls", "-q"])
        .assert_success()
        .stdout_is("");
    assert!(host.join("f").exists());
}

#[test]
fn volume_export_and_import_keep_contents_and_owners() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "src:/v",
        &lab.image,
        "sh",
        "-c",
        "echo hello > /v/f && mkdir /v/d && chown 123:45 /v/d /v/f",
    ])
    .assert_success();
    let file = lab.tb.work().join("src.tar");
    lab.run(&["volume", "export", "-o", file.to_str().unwrap(), "src"])
        .assert_success();
    let listing = std::process::Command::new("tar")
        .args(["-tvf", file.to_str().unwrap(), "--numeric-owner"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("123/45") && listing.contains("./f"),
        "{listing}"
    );
    lab.run(&["volume", "create", "dst"]).assert_success();
    lab.run(&["volume", "import", "dst", file.to_str().unwrap()])
        .assert_success();
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "dst:/v",
        &lab.image,
        "sh",
        "-c",
        "cat /v/f; stat -c '%u:%g' /v/f /v/d",
    ])
    .assert_success()
    .stdout_is("hello\n123:45\n123:45\n");
    // Through stdout and stdin.
    lab.tb
        .sh("\"$BOX\" volume export src | \"$BOX\" volume import piped -")
        .run()
        .assert_code(125);
    lab.run(&["volume", "create", "piped"]).assert_success();
    lab.tb
        .sh("\"$BOX\" volume export src | \"$BOX\" volume import piped -")
        .run()
        .assert_success();
    lab.run(&["volume", "import", "nosuch", file.to_str().unwrap()])
        .assert_code(125)
        .stderr_contains("nosuch");
}

#[test]
fn volume_option_u_chowns_to_the_container_user() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let dir = lab.tb.mkdir("owned");
    lab.tb.write("owned/sub/f", "x\n");
    let bind = format!("{}:/d:U", dir.display());
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000:1000",
        "-v",
        &bind,
        "-v",
        "vol:/v:rw,U",
        &lab.image,
        "sh",
        "-c",
        "stat -c '%u:%g' /d /d/sub /d/sub/f /v; touch /d/new /v/new && echo ok",
    ])
    .assert_success()
    .stdout_is("1000:1000\n1000:1000\n1000:1000\n1000:1000\nok\n");
}

#[test]
fn volume_option_o_is_an_overlay_whose_changes_go() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let dir = lab.tb.mkdir("lower");
    lab.tb.write("lower/f", "original\n");
    let v = format!("{}:/d:O", dir.display());
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &v,
        &lab.image,
        "sh",
        "-c",
        "echo changed > /d/f && echo new > /d/n && cat /d/f /d/n",
    ])
    .assert_success()
    .stdout_is("changed\nnew\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).unwrap(),
        "original\n"
    );
    assert!(!dir.join("n").exists());
}
