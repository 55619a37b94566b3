//! `-v ...:idmap` / `--mount ...,idmap` (idmapped binds: root only, refused rootless) and
//! `--mount type=image,...,rw=true` (a writable image mount over the image's layers).
use crate::harness::lab::Lab;
use crate::harness::{TestUser, images};

#[test]
fn idmap_is_refused_rootless_in_one_line_and_nothing_is_created() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let src = lab.tb.mkdir("idmap-src");
    let src = src.display().to_string();
    let v = format!("{src}:/d:idmap");
    let m = format!("type=bind,src={src},dst=/d,idmap");
    let own = format!("{src}:/d:idmap=uids=0-100-10;gids=0-200-10");
    for (flag, value) in [("-v", &v), ("--mount", &m), ("-v", &own)] {
        for cmd in ["run", "create"] {
            lab.run(&[
                cmd,
                "--name",
                "idm",
                "--network",
                "none",
                flag,
                value,
                &lab.image,
                "true",
            ])
            .assert_code(125)
            .assert_one_line_error()
            .stderr_contains(value)
            .stderr_contains("the kernel refused an idmapped mount")
            .stderr_contains("use :U");
        }
    }
    // A malformed mapping of its own is named before anything else.
    let bad = format!("{src}:/d:idmap=uids=0-1");
    lab.run(&["run", "--rm", "-v", &bad, &lab.image, "true"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("\"0-1\" is not DISK-HOST-SIZE");
    // Nothing was recorded, nothing runs, no volume was made.
    lab.run(&["ps", "-a", "-q"]).assert_success().stdout_is("");
    lab.run(&["volume", "ls", "-q"])
        .assert_success()
        .stdout_is("");
}

#[test]
fn idmap_shifts_ids_by_the_containers_mapping_as_root() {
    let env = require_env!(alpine);
    let tb = env.test_box_as(TestUser::Root);
    let image = env.image(images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    let src = tb.mkdir("idmap-src");
    std::fs::write(src.join("roots"), "").unwrap();
    std::fs::write(src.join("fives"), "").unwrap();
    std::os::unix::fs::chown(src.join("roots"), Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(src.join("fives"), Some(5), Some(5)).unwrap();
    // Container root stays host root (box's store is root's), ids 1..1000 are host
    // 100001..101000: without idmap the source's uid 5 is nobody inside, and what the
    // container's uid 7 makes is host uid 100007; idmapped, both are unshifted on disk.
    let run = |opt: &str, made: &str| {
        let v = format!("{}:/d{opt}", src.display());
        let script = format!(
            "stat -c '%n %u:%g' /d/roots /d/fives; touch /d/{made}-0 /d/{made}-7; chown 7:7 /d/{made}-7"
        );
        tb.cmd([
            "run",
            "--rm",
            "--network",
            "none",
            "--uidmap",
            "0:0:1",
            "--uidmap",
            "1:100001:1000",
            "-v",
            &v,
            &image,
            "sh",
            "-c",
            &script,
        ])
        .run()
    };
    run("", "plain")
        .assert_success()
        .stdout_is("/d/roots 0:0\n/d/fives 65534:65534\n");
    run(":idmap", "idmapped")
        .assert_success()
        .stdout_is("/d/roots 0:0\n/d/fives 5:5\n");
    let owner = |name: &str| {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(src.join(name)).unwrap();
        (md.uid(), md.gid())
    };
    assert_eq!(owner("plain-0"), (0, 0));
    assert_eq!(owner("plain-7"), (100007, 100007));
    assert_eq!(owner("idmapped-0"), (0, 0));
    assert_eq!(owner("idmapped-7"), (7, 7));
    // --mount's spelling, read-only: the same shift, and no writes.
    let m = format!("type=bind,src={},dst=/d,idmap,ro", src.display());
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "--uidmap",
        "0:0:1",
        "--uidmap",
        "1:100001:1000",
        "--mount",
        &m,
        &image,
        "sh",
        "-c",
        "stat -c %u /d/fives; touch /d/x 2>/dev/null || echo ro",
    ])
    .run()
    .assert_success()
    .stdout_is("5\nro\n");
    // podman's mapping of its own (a container with root's identity map shows host ids):
    // disk ids 0.. are host 100.. (uids) and 200.. (gids).
    let own = format!("{}:/d:idmap=uids=0-100-10;gids=0-200-10", src.display());
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &own,
        &image,
        "stat",
        "-c",
        "%u:%g",
        "/d/roots",
        "/d/fives",
    ])
    .run()
    .assert_success()
    .stdout_is("100:200\n105:205\n");
    tb.cmd(["ps", "-a", "-q"])
        .run()
        .assert_success()
        .stdout_is("");
}

#[test]
fn mount_type_image_rw_writes_into_the_container_never_the_image() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let layers = env.image(images::LAYERS);
    lab.run(&["pull", "-q", &layers]).assert_success();
    let rw = format!("type=image,src={},dst=/img,rw=true", lab.image);
    let multi = format!("type=image,source={layers},destination=/layers,rw=true");
    let original = lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &lab.image,
        "cat",
        "/etc/alpine-release",
    ]);
    original.assert_success();
    let original = format!("{}\n", original.out());
    // Writable: changes, new files and deletions, over one layer and over several; the
    // container keeps them across starts, as it keeps its own root filesystem's.
    let script = "cat /img/new 2>/dev/null || echo none; echo changed > /img/etc/alpine-release; \
                  echo new > /img/new; rm -f /img/etc/hostname; cat /img/etc/alpine-release; \
                  test -e /img/etc/hostname || echo gone; touch /layers/x && echo layers-rw";
    lab.run(&[
        "run",
        "--name",
        "w",
        "--network",
        "none",
        "--mount",
        &rw,
        "--mount",
        &multi,
        &lab.image,
        "sh",
        "-c",
        script,
    ])
    .assert_success()
    .stdout_is("none\nchanged\ngone\nlayers-rw\n");
    lab.run(&["start", "-a", "w"])
        .assert_success()
        .stdout_is("new\nchanged\ngone\nlayers-rw\n");
    lab.run(&[
        "inspect",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}",
        "w",
    ])
    .assert_success()
    .stdout_is("image /img true;image /layers true;\n");
    // Kept in the container's own directory, and removed with it.
    let dir = lab.tb.root().join("containers").join(lab.id("w"));
    assert!(dir.join("image-mounts/0/upper/new").is_file());
    lab.run(&["rm", "w"]).assert_success();
    assert!(!dir.exists());
    lab.run(&[
        "run", "--rm", "--network", "none", "--mount", &rw, &lab.image, "sh", "-c",
        "cat /img/etc/alpine-release; test -e /img/new || echo no-new; test -e /img/etc/hostname && echo kept",
    ])
    .assert_success()
    .stdout_is(&format!("{original}no-new\nkept\n"));
    // Neither the image nor a read-only mount of it (rw=false, the default) saw a thing.
    let ro = format!("type=image,src={},dst=/img,rw=false", lab.image);
    lab.run(&[
        "run", "--rm", "--network", "none", "--mount", &ro, &lab.image, "sh", "-c",
        "cat /etc/alpine-release /img/etc/alpine-release; test -e /img/new || echo no-new; touch /img/y 2>/dev/null || echo ro",
    ])
    .assert_success()
    .stdout_is(&format!("{original}{original}no-new\nro\n"));
    lab.run(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=image,src={},dst=/i,rw=maybe", lab.image),
        &lab.image,
        "true",
    ])
    .assert_code(125)
    .assert_one_line_error()
    .stderr_contains("rw=maybe");
}

#[test]
fn cp_into_a_created_container_writes_through_its_writable_image_mount() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let rw = format!("type=image,src={},dst=/img,rw=true", lab.image);
    lab.run(&[
        "create",
        "--name",
        "c",
        "--network",
        "none",
        "--mount",
        &rw,
        &lab.image,
        "cat",
        "/img/etc/copied",
    ])
    .assert_success();
    let file = lab.tb.write("copied", "through the image mount\n");
    lab.run(&["cp", &file.display().to_string(), "c:/img/etc/copied"])
        .assert_success();
    lab.run(&["start", "-a", "c"])
        .assert_success()
        .stdout_is("through the image mount\n");
    // A read-only one (the default) refuses the copy.
    let ro = format!("type=image,src={},dst=/img", lab.image);
    lab.run(&[
        "create",
        "--name",
        "r",
        "--network",
        "none",
        "--mount",
        &ro,
        &lab.image,
        "true",
    ])
    .assert_success();
    lab.run(&["cp", &file.display().to_string(), "r:/img/etc/copied"])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("Read-only file system");
}
