//! `box build` as boxtest: a multi-stage Containerfile built on the test registry's alpine
//! (ARG/ENV expansion, COPY --from, --chown, .dockerignore, a whiteout, USER, WORKDIR,
//! ENTRYPOINT, CMD), checked in the config, at `box run`, and after `box push` with
//! skopeo and umoci; the cache (every step reused, a changed COPY source rebuilds from its
//! step); and bad input (one line naming file:line, nothing stored).
use std::time::Instant;

use serde_json::Value;

use crate::harness::TestBox;
use crate::harness::lab::Lab;

fn containerfile(base: &str) -> String {
    format!(
        "ARG BASE={base}
FROM $BASE AS builder
ARG GREETING=hello
RUN mkdir -p /out && echo \"$GREETING from builder\" > /out/greeting
FROM $BASE
ARG APPDIR=/srv/app
ENV APP=$APPDIR PATH=/srv/bin:$PATH
COPY --from=builder /out/greeting $APP/
RUN rm /etc/motd && adduser -D -u 1234 app
COPY --chown=app:app src/ $APP/src/
WORKDIR $APP
USER app
ENTRYPOINT [\"/bin/sh\", \"-c\"]
CMD [\"cat greeting\"]
LABEL stage=final
EXPOSE 8080
"
    )
}

fn image_count(tb: &TestBox) -> usize {
    let out = tb.cmd(["images", "-q", "--no-trunc"]).run();
    out.assert_success();
    out.out().lines().count()
}

fn inspect_config(tb: &TestBox, name: &str) -> Value {
    let out = tb.cmd(["image", "inspect", name]).run();
    out.assert_success();
    let v: Value = serde_json::from_str(out.out()).unwrap();
    v[0].clone()
}

/// The image's config blob as stored (and pushed), read as root.
fn config_blob(tb: &TestBox, id: &str) -> Value {
    let path = tb.root().join("storage/blobs/sha256").join(id);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn setup(lab: &Lab) {
    let tb = &lab.tb;
    tb.write("ctx/Containerfile", containerfile(&lab.image));
    tb.write("ctx/src/main.sh", "echo main\n");
    tb.write("ctx/src/secret.key", "do not copy\n");
    tb.write("ctx/.dockerignore", "src/*.key\n");
}

#[test]
fn build_multi_stage_runs_caches_and_pushes() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    setup(&lab);
    let before = image_count(tb);

    let out = tb
        .cmd(["build", "--network", "none", "-t", "app:1", "ctx"])
        .run();
    out.assert_success();
    let id = out.out().lines().last().unwrap().to_string();
    assert_eq!(id.len(), 64, "{out}");
    assert!(
        out.out().contains("[1/2] STEP 1/3: FROM $BASE AS builder"),
        "{out}"
    );
    assert!(out.out().contains("[2/2] STEP 1/12: FROM $BASE\n"), "{out}");
    assert!(out.out().contains("COMMIT localhost/app:1"), "{out}");
    assert!(
        out.out().contains("Successfully tagged localhost/app:1"),
        "{out}"
    );
    assert_eq!(
        image_count(tb),
        before + 1,
        "only the final image is recorded"
    );

    // The config.
    let c = inspect_config(tb, "app:1");
    let cfg = &c["Config"];
    assert_eq!(cfg["User"], "app", "{c}");
    assert_eq!(cfg["WorkingDir"], "/srv/app", "{c}");
    assert_eq!(
        cfg["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c"]),
        "{c}"
    );
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat greeting"]), "{c}");
    assert_eq!(cfg["Labels"]["stage"], "final", "{c}");
    let env_list = cfg["Env"].to_string();
    assert!(env_list.contains("APP=/srv/app"), "{c}");
    assert!(env_list.contains("PATH=/srv/bin:/usr/local/sbin"), "{c}");
    // History as docker writes it: RUN's command (with the ARGs it saw), metadata steps
    // as empty layers.
    let blob = config_blob(tb, &id);
    let history = blob["history"].as_array().unwrap();
    assert!(
        history.iter().any(|h| h["created_by"]
            == "|1 APPDIR=/srv/app /bin/sh -c rm /etc/motd && adduser -D -u 1234 app"),
        "{blob}"
    );
    let label = history
        .iter()
        .find(|h| h["created_by"] == "/bin/sh -c #(nop) LABEL stage=final")
        .unwrap_or_else(|| panic!("{blob}"));
    assert_eq!(label["empty_layer"], true, "{blob}");
    let with_layers = history.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(
        with_layers,
        c["RootFS"]["Layers"].as_array().unwrap().len(),
        "{c}"
    );

    // At run: the image's own command, user and directory; the whiteout; owners;
    // the ignored file left out.
    tb.cmd(["run", "--rm", "--network", "none", "app:1"])
        .run()
        .assert_success()
        .stdout_is("hello from builder\n");
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "app:1",
        "id -u; pwd; test -e /etc/motd || echo gone; stat -c '%u:%g %n' src src/main.sh; ls src",
    ])
    .run()
    .assert_success()
    .stdout_is("1234\n/srv/app\ngone\n1234:1234 src\n1234:1234 src/main.sh\nmain.sh\n");

    // Again: every step from the cache, quickly, the same image.
    let t = Instant::now();
    let again = tb.cmd(["build", "-t", "app:1", "ctx"]).run();
    let took = t.elapsed();
    again.assert_success();
    let steps = again.out().lines().filter(|l| l.contains("STEP ")).count();
    let from_lines = again
        .out()
        .lines()
        .filter(|l| l.contains(": FROM "))
        .count();
    let hits = again
        .out()
        .lines()
        .filter(|l| l.starts_with("--> Using cache"))
        .count();
    // ARG lines make no cache entry.
    assert_eq!(hits, steps - from_lines - 2, "{again}");
    assert_eq!(again.out().lines().last().unwrap(), id, "{again}");
    assert!(took.as_secs_f64() < 1.0, "cached rebuild took {took:?}");

    // A changed COPY source: the steps before it come from the cache, it and the later
    // ones are built again.
    tb.write("ctx/src/main.sh", "echo changed\n");
    let third = tb
        .cmd(["build", "--network", "none", "-t", "app:2", "ctx"])
        .run();
    third.assert_success();
    let text = third.out();
    let copy_at = text.find("COPY --chown").unwrap();
    assert!(text[..copy_at].contains("Using cache"), "{third}");
    assert!(!text[copy_at..].contains("Using cache"), "{third}");

    // Pushed, read by skopeo and unpacked by umoci: the same files and owners.
    let dest = format!("{}/built/app:1", env.registry());
    tb.cmd(["push", "-q", "--tls-verify=false", "app:1", &dest])
        .run()
        .assert_success();
    let remote = crate::push::inspect(&dest, false, None);
    assert_eq!(remote["Labels"]["stage"], "final", "{remote}");
    let rootfs = crate::push::unpack(tb, &dest, "built");
    assert!(
        !rootfs.join("etc/motd").exists(),
        "the whiteout hides /etc/motd"
    );
    assert!(rootfs.join("etc/alpine-release").exists());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/app/greeting")).unwrap(),
        "hello from builder\n"
    );
    assert!(!rootfs.join("srv/app/src/secret.key").exists());
    podman_runs(tb, &dest);
}

/// When podman is installed: it pulls what box built and pushed and runs its default
/// command with the same result as box run.
fn podman_runs(tb: &TestBox, reference: &str) {
    if crate::harness::which("podman").is_none() {
        crate::harness::note("podman is not installed: the podman pull/run check is skipped");
        return;
    }
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .arg("--root")
            .arg(tb.work().join("podman-root"))
            .arg("--runroot")
            .arg(tb.work().join("podman-run"))
            .args(args)
            .output()
            .expect("run podman")
    };
    let out = podman(&["pull", "-q", "--tls-verify=false", reference]);
    assert!(
        out.status.success(),
        "podman pull: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = podman(&["run", "--rm", "--network=none", reference]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("error setting rlimit") {
        crate::harness::note(&format!(
            "podman pulled the image but cannot run containers on this host: {}",
            stderr.trim()
        ));
        return;
    }
    assert!(out.status.success(), "podman run: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from builder\n");
}

/// Each bad Containerfile or context: one line naming file:line, box's exit code (a failed
/// RUN's own status), no image recorded and no build container left.
#[test]
fn build_refuses_bad_input_naming_the_line_and_storing_nothing() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let base = &lab.image;
    tb.write("bad/file.txt", "x\n");
    tb.mkdir("bad/dir");
    std::os::unix::fs::symlink("/etc/passwd", tb.work().join("bad/escape")).unwrap();
    let before = image_count(tb);
    let cases: Vec<(String, i32, &str)> = vec![
        (
            format!("FROM {base}\nFROBNICATE x\n"),
            125,
            "Containerfile:2: unknown instruction",
        ),
        (
            format!("FROM {base}\nCOPY missing.txt /x\n"),
            125,
            "Containerfile:2: COPY missing.txt: no such file or directory in the build context",
        ),
        (
            format!("FROM {base}\nCOPY ../file.txt /x\n"),
            125,
            "Containerfile:2: COPY ../file.txt: the path is outside the build context",
        ),
        (
            format!("FROM {base}\nCOPY escape /x\n"),
            125,
            "Containerfile:2: COPY escape: a symlink leads outside the build context",
        ),
        (
            format!("FROM {base}\nRUN true\nRUN echo failing; exit 3\n"),
            3,
            "Containerfile:3: error building at STEP \"RUN echo failing; exit 3\": exit status 3",
        ),
        (
            format!("FROM {base} AS a\nCOPY --from=b /x /x\nFROM {base} AS b\n"),
            125,
            "Containerfile:2: stage \"b\" is defined later in the file",
        ),
        (
            format!("FROM {}/nothere:1\n", env.registry()),
            125,
            "Containerfile:1: ",
        ),
        (
            "FROM a AS a\n".to_string(),
            125,
            "Containerfile:1: stage \"a\" refers to itself",
        ),
        (
            format!("FROM --platform=linux/s390x {base}\n"),
            125,
            "Containerfile:1: --platform linux/s390x: box builds only for this host's platform",
        ),
    ];
    for (text, code, want) in &cases {
        tb.write("bad/Containerfile", text);
        let out = tb.cmd(["build", "--network", "none", "bad"]).run();
        out.assert_code(*code);
        let err: Vec<&str> = out.err().lines().filter(|l| !l.trim().is_empty()).collect();
        let last = err.last().copied().unwrap_or_default();
        assert!(last.contains(want), "{text}: want {want:?}\n{out}");
        // (A pull says what it tries first, as podman does.)
        if *code == 125 && !text.contains("nothere") {
            out.assert_one_line_error();
        }
        assert_eq!(image_count(tb), before, "{text}: nothing stored\n{out}");
        tb.cmd(["ps", "-a", "-q"])
            .run()
            .assert_success()
            .stdout_is("");
    }
    tb.write("bad/Containerfile", "FROM never-pulled.invalid/x:1\n");
    let out = tb.cmd(["build", "--pull=never", "bad"]).run();
    out.assert_code(125).assert_one_line_error();
    assert!(out.err().contains("Containerfile:1: "), "{out}");
    assert!(!out.err().contains("Trying to pull"), "{out}");
    // podman 4.3's build values: false is missing (so it tries), true is always.
    let out = tb.cmd(["build", "--pull=false", "bad"]).run();
    out.assert_code(125);
    assert!(out.err().contains("Trying to pull"), "{out}");
    tb.write(
        "bad/Containerfile",
        format!("FROM {base}\nLABEL pulled=1\n"),
    );
    for (pull, pulls) in [
        ("--pull=false", false),
        ("--pull=true", true),
        ("--pull", true),
    ] {
        let out = tb.cmd(["build", "--iidfile", "iid", pull, "bad"]).run();
        out.assert_success();
        assert_eq!(out.err().contains("Trying to pull"), pulls, "{pull}: {out}");
    }
    let iid = std::fs::read_to_string(tb.work().join("iid")).unwrap();
    tb.cmd(["rmi", iid.trim()]).run().assert_success();
    tb.cmd(["build", "--pull=sometimes", "bad"])
        .run()
        .assert_code(125);
    tb.write("bad/Containerfile", format!("FROM {base} AS a\n"));
    let out = tb.cmd(["build", "--target", "nope", "bad"]).run();
    out.assert_code(125).assert_one_line_error();
    assert!(
        out.err()
            .contains("target stage \"nope\" could not be found"),
        "{out}"
    );
    let out = tb.cmd(["build", "--platform", "linux/arm64", "bad"]).run();
    out.assert_code(125).assert_one_line_error();
    // -f - reads the Containerfile from stdin.
    let out = tb
        .cmd(["build", "-q", "-f", "-", "bad"])
        .stdin(format!("FROM {base}\nENV FROM_STDIN=1\n"))
        .run();
    out.assert_success();
    let id = out.out().trim().to_string();
    let env_list = inspect_config(tb, &id)["Config"]["Env"].to_string();
    assert!(env_list.contains("FROM_STDIN=1"), "{env_list}");
    tb.cmd(["rmi", &id]).run().assert_success();
    let out = tb.cmd(["build", "-f", "nothere", "bad"]).run();
    out.assert_code(125).assert_one_line_error();
    assert_eq!(image_count(tb), before);
}

/// The flags: -q and --iidfile, --build-arg (KEY=VALUE and KEY from the environment),
/// --target, --label, --secret for the one RUN that mounts it, heredocs, ADD of a local
/// archive, ADD of an unreachable URL, --timestamp reproducibility, --squash,
/// --layers=false, --format docker and --no-cache.
#[test]
fn build_flags() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let base = &lab.image;
    // An archive for ADD, made by tar (independent of box), as the user.
    tb.write("f/arch/in/a.txt", "from the archive\n");
    tb.mkdir("f/ctx");
    tb.sh("tar -czf f/ctx/files.tgz -C f/arch in && tar -cJf f/ctx/files.txz -C f/arch in")
        .run()
        .assert_success();
    tb.write("f/token", "s3cret\n");
    tb.write(
        "f/ctx/Containerfile",
        format!(
            "FROM {base} AS test
ARG V1
ARG V2=default
RUN echo \"$V1 $V2\" > /args
RUN --mount=type=secret,id=tok cat /run/secrets/tok > /seen
RUN --mount=type=secret,id=tok2,target=/tmp/t2 (cat /tmp/t2; echo) >> /seen
RUN test ! -e /run/secrets/tok
RUN <<EOF
echo heredoc > /heredoc
EOF
COPY <<EOF /etc/note
a note
EOF
ADD files.tgz /unpacked/
ADD files.txz /unpacked-xz
FROM {base} AS other
RUN false
"
        ),
    );
    let out = tb
        .cmd([
            "build",
            "-q",
            "--network",
            "none",
            "--iidfile",
            "iid",
            "--build-arg",
            "V1=one",
            "--build-arg",
            "V2",
            "--secret",
            "id=tok,src=f/token",
            "--secret",
            "id=tok2,env=TOKEN2",
            "--target",
            "test",
            "--label",
            "extra=yes",
            "-t",
            "flags:1",
            "f/ctx",
        ])
        .env("V2", "from-env")
        .env("TOKEN2", "from-the-env")
        .run();
    out.assert_success();
    let id = out.out().trim();
    assert_eq!(id.len(), 64, "-q prints only the id:\n{out}");
    assert_eq!(
        std::fs::read_to_string(tb.work().join("iid")).unwrap(),
        format!("sha256:{id}")
    );
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        "flags:1",
        "sh",
        "-c",
        "cat /args /seen /heredoc /etc/note /unpacked/in/a.txt /unpacked-xz/in/a.txt; ls -A /run/secrets /tmp/t2 2>/dev/null | wc -l",
    ])
    .run()
    .assert_success()
    .stdout_is("one from-env\ns3cret\nfrom-the-env\nheredoc\na note\nfrom the archive\nfrom the archive\n0\n");
    let c = inspect_config(tb, "flags:1");
    assert_eq!(c["Config"]["Labels"]["extra"], "yes", "{c}");
    let blob = config_blob(tb, id).to_string();
    assert!(
        !blob.contains("s3cret") && !blob.contains("from-the-env"),
        "{blob}"
    );
    assert!(
        blob.contains("--mount=type=secret") || blob.contains("cat /run/secrets/tok"),
        "{blob}"
    );

    // FROM an earlier stage, COPY --from an image.
    tb.write(
        "f/stages/Containerfile",
        format!(
            "FROM {base} AS one\nRUN echo 1 > /one\nFROM one AS two\nCOPY --from={base} /etc/alpine-release /rel\nRUN cat /one /rel > /both\nCOPY --from=one /one /root/sub/one\n"
        ),
    );
    let out = tb
        .cmd(["build", "-q", "--network", "none", "f/stages"])
        .run();
    out.assert_success();
    let staged = out.out().trim().to_string();
    // (/root, 0700 in the base, keeps its mode under the new file.)
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        &staged,
        "sh",
        "-c",
        "cat /both /root/sub/one; stat -c %a /root",
    ])
    .run()
    .assert_success()
    .stdout_is("1\n3.20.3\n1\n700\n");

    // ONBUILD: stored in the config, run by the build that uses the image as its base.
    tb.write(
        "f/onbuild/Containerfile",
        format!(
            "FROM {base}\nONBUILD RUN echo triggered > /trig\nHEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost || exit 1\nSTOPSIGNAL SIGINT\nVOLUME /data\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN case $- in *e*) echo errexit > /shell;; esac\n"
        ),
    );
    let out = tb.cmd(["build", "-q", "-t", "trig:1", "f/onbuild"]).run();
    out.assert_success();
    let parent = config_blob(tb, out.out().trim());
    assert_eq!(
        parent["config"]["OnBuild"],
        serde_json::json!(["RUN echo triggered > /trig"])
    );
    let pc = &parent["config"];
    assert_eq!(
        pc["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "wget -q localhost || exit 1"], "Interval": 5_000_000_000u64, "Retries": 2}),
        "{parent}"
    );
    assert_eq!(pc["StopSignal"], "SIGINT", "{parent}");
    assert_eq!(pc["Volumes"], serde_json::json!({"/data": {}}), "{parent}");
    assert_eq!(
        pc["Shell"],
        serde_json::json!(["/bin/sh", "-ec"]),
        "{parent}"
    );
    // image inspect shows them with docker's field names, with the rest docker shows.
    let out = tb.cmd(["image", "inspect", "trig:1"]).run();
    out.assert_success();
    let inspected: Value = serde_json::from_str(out.out()).unwrap();
    let ic = &inspected[0]["Config"];
    assert_eq!(ic["Healthcheck"], pc["Healthcheck"], "{inspected}");
    assert_eq!(ic["OnBuild"], parent["config"]["OnBuild"], "{inspected}");
    assert_eq!(ic["Shell"], pc["Shell"], "{inspected}");
    assert_eq!(ic["StopSignal"], "SIGINT", "{inspected}");
    assert_eq!(
        inspected[0]["RootFS"]["Layers"], parent["rootfs"]["diff_ids"],
        "{inspected}"
    );
    assert_eq!(inspected[0]["History"], parent["history"], "{inspected}");
    assert_eq!(inspected[0]["Created"], parent["created"], "{inspected}");
    assert!(inspected[0]["Size"].as_u64().unwrap() > 0, "{inspected}");
    let out = tb
        .cmd([
            "image",
            "inspect",
            "--format",
            "{{.Config.Healthcheck.Retries}} {{.Config.Shell}}",
            "trig:1",
        ])
        .run();
    out.assert_success();
    assert_eq!(out.out().trim(), "2 [/bin/sh -ec]");
    tb.write("f/child/Containerfile", "FROM trig:1\nENV CHILD=1\n");
    let out = tb
        .cmd(["build", "-q", "--network", "none", "f/child"])
        .run();
    out.assert_success();
    let child = out.out().trim().to_string();
    assert!(config_blob(tb, &child)["config"]["OnBuild"].is_null());
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        &child,
        "cat",
        "/trig",
        "/shell",
    ])
    .run()
    .assert_success()
    .stdout_is("triggered\nerrexit\n");

    // ADD of a URL the network cannot reach: a clear error at its line.
    tb.write(
        "f/url/Containerfile",
        format!("FROM {base}\nADD http://127.0.0.1:9/file.txt /x\n"),
    );
    let out = tb.cmd(["build", "f/url"]).run();
    out.assert_code(125).assert_one_line_error();
    assert!(
        out.err()
            .contains("Containerfile:2: ADD http://127.0.0.1:9/file.txt: cannot download it"),
        "{out}"
    );

    // Reproducible: the same context and --timestamp give the same image, with the cache
    // or without.
    tb.write("f/repro/a.txt", "a\n");
    tb.write(
        "f/repro/Containerfile",
        format!("FROM {base}\nCOPY a.txt /a.txt\nENV X=1\nWORKDIR /w\nCOPY a.txt b.txt\n"),
    );
    let build = |extra: &[&str]| -> String {
        let mut args = vec!["build", "-q", "--timestamp", "0"];
        args.extend_from_slice(extra);
        args.push("f/repro");
        let out = tb.cmd(args).run();
        out.assert_success();
        out.out().trim().to_string()
    };
    let first = build(&[]);
    assert_eq!(build(&["--no-cache", "--rm", "--force-rm=true"]), first);
    // SOURCE_DATE_EPOCH is --timestamp's default.
    let out = tb
        .cmd(["build", "-q", "--no-cache", "f/repro"])
        .env("SOURCE_DATE_EPOCH", "0")
        .run();
    out.assert_success();
    assert_eq!(out.out().trim(), first);
    // --squash: the new layers as one; --layers=false likewise; --format docker.
    let layers_of = |id: &str| {
        inspect_config(tb, id)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .len()
    };
    let base_layers = layers_of(base);
    assert_eq!(layers_of(&first), base_layers + 3);
    let squashed = build(&["--squash"]);
    assert_eq!(layers_of(&squashed), base_layers + 1);
    // One history entry with a layer per layer, as the image spec wants.
    let cfg = config_blob(tb, &squashed);
    let with_layers = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["empty_layer"] != true)
        .count();
    assert_eq!(with_layers, base_layers + 1, "{cfg}");
    let one = build(&["--layers=false", "--no-cache"]);
    assert_eq!(layers_of(&one), base_layers + 1);
    tb.cmd([
        "run",
        "--rm",
        "--network",
        "none",
        &squashed,
        "cat",
        "/w/b.txt",
        "/a.txt",
    ])
    .run()
    .assert_success()
    .stdout_is("a\na\n");
    let docker = build(&["--format", "docker"]);
    let dest = format!("{}/built/docker:1", env.registry());
    tb.cmd(["push", "-q", "--tls-verify=false", &docker, &dest])
        .run()
        .assert_success();
    let raw = crate::push::inspect(&dest, true, None);
    assert_eq!(
        raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json",
        "{raw}"
    );
}

fn cache_entries(tb: &TestBox) -> usize {
    std::fs::read_dir(tb.root().join("storage/buildcache"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// `image prune` removes the build cache entries whose layers are gone, `-a` all of them.
#[test]
fn build_cache_entries_go_with_their_layers() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let base = &lab.image;
    tb.write(
        "c1/Containerfile",
        format!("FROM {base}\nRUN echo 1 > /one\n"),
    );
    tb.write(
        "c2/Containerfile",
        format!("FROM {base}\nRUN echo 1 > /one\nRUN echo 2 > /two\n"),
    );
    let build = |dir: &str, tag: &str| {
        let out = tb
            .cmd(["build", "-q", "--network", "none", "-t", tag, dir])
            .run();
        out.assert_success();
    };
    build("c1", "one:1");
    build("c2", "two:1");
    assert_eq!(cache_entries(tb), 2);
    // Their layers are in use: nothing goes.
    tb.cmd(["image", "prune", "-f"]).run().assert_success();
    assert_eq!(cache_entries(tb), 2);
    tb.cmd(["rmi", "two:1"]).run().assert_success();
    tb.cmd(["image", "prune", "-f"]).run().assert_success();
    // The first RUN's layer is one:1's; the second's is gone, and its entry.
    assert_eq!(cache_entries(tb), 1);
    tb.cmd(["system", "prune", "-a", "-f"])
        .run()
        .assert_success();
    assert_eq!(cache_entries(tb), 0);
}

/// Names of the build containers box lists (`ps -a`).
fn build_containers(tb: &TestBox, all: bool) -> Vec<String> {
    // podman's --external: build containers are listed only with it.
    let mut args = vec!["ps", "--external", "--format", "{{.Names}}"];
    if all {
        args.insert(1, "-a");
    }
    let out = tb.cmd(args).run();
    out.assert_success();
    out.out()
        .lines()
        .filter(|l| l.starts_with("box-build-"))
        .map(str::to_string)
        .collect()
}

/// A build SIGKILLed mid-RUN leaves its running build container; the next build,
/// `container prune` and `system check --repair` each stop and remove it (its builder is
/// gone), leaving no process and no mount, while a live build's container is left alone.
/// `ps` shows them only with `--external`.
#[test]
fn killed_build_leaves_no_build_container() {
    use std::time::Duration;
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let tb = &lab.tb;
    let base = &lab.image;
    tb.write("k/Containerfile", format!("FROM {base}\nRUN sleep 30\n"));
    tb.write("ok/Containerfile", format!("FROM {base}\nENV OK=1\n"));
    let cleanups: [&[&str]; 3] = [
        &["build", "-q", "ok"],
        &["container", "prune", "-f"],
        &["system", "check", "--repair"],
    ];
    for cleanup in cleanups {
        let mut build = tb
            .cmd(["build", "--network", "none", "k"])
            .timeout(Duration::from_secs(60))
            .spawn();
        crate::harness::lab::until("the RUN step running", Duration::from_secs(30), || {
            !build_containers(tb, false).is_empty()
        });
        // Hidden from ps without --external (podman's build containers are too).
        tb.cmd(["ps", "-a", "--format", "{{.Names}}"])
            .run()
            .assert_success()
            .stdout_lacks("box-build-");
        assert_eq!(build_containers(tb, false).len(), 1, "{cleanup:?}");
        // A live build's container is not stale: prune leaves it.
        tb.cmd(["container", "prune", "-f"]).run().assert_success();
        assert_eq!(build_containers(tb, false).len(), 1, "{cleanup:?}");
        assert!(build.is_running());
        build.signal(libc::SIGKILL);
        build.wait();
        assert_eq!(build_containers(tb, true).len(), 1, "{cleanup:?}");
        let out = tb.cmd(cleanup.to_vec()).run();
        out.assert_success();
        assert!(build_containers(tb, true).is_empty(), "{cleanup:?}: {out}");
        let left = crate::crash::wait_processes_gone(tb, Duration::from_secs(10));
        assert!(left.is_empty(), "{cleanup:?}: processes left: {left:#?}");
        let mounts = crate::crash::mounts_under(tb.dir());
        assert!(mounts.is_empty(), "{cleanup:?}: mounts left: {mounts:#?}");
    }
}
