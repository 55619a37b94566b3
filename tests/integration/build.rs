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
COPY --chown=1234:1234 src/ $APP/src/
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
    assert!(out.out().contains("[1/2] STEP 1/"), "{out}");
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
    assert!(took.as_secs_f64() < 2.0, "cached rebuild took {took:?}");

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
}
