//! Smoke tests: the command tree, help, exit codes, and that the harness itself works.
use crate::harness::{self, TestUser, images};

/// Every subcommand path, e.g. ["image", "ls"], hidden ones excluded.
fn subcommand_paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        out.push(path.clone());
        subcommand_paths(sub, &path, out);
    }
}

#[test]
fn help_exits_zero_and_lists_run() {
    let env = require_env!();
    let out = env.user_box().arg("--help").run();
    out.assert_success()
        .stdout_contains("run")
        .stdout_contains("Usage:");
    for cmd in ["pull", "run", "ps", "images", "info"] {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(cmd)),
            "`box --help` does not list {cmd}:\n{out}"
        );
    }
}

#[test]
fn every_subcommand_has_help() {
    let env = require_env!();
    let mut paths = Vec::new();
    subcommand_paths(&boxctr::cli::args::command(), &[], &mut paths);
    assert!(paths.len() > 20, "suspiciously few subcommands: {paths:?}");
    let tb = env.test_box();
    for path in paths {
        let out = tb.cmd(&path).arg("--help").run();
        out.assert_success().stdout_contains("Usage:");
        let usage = format!("box {}", path.join(" "));
        assert!(
            out.stdout.contains(&usage),
            "`{usage} --help` does not show its usage line:\n{out}"
        );
        // The first line is the one-sentence description from the clap table.
        let about = out.stdout.lines().next().unwrap_or("").trim();
        assert!(
            about.len() > 8,
            "`{usage} --help` has no description:\n{out}"
        );
    }
}

#[test]
fn version_flag() {
    let env = require_env!();
    env.user_box()
        .arg("--version")
        .run()
        .assert_success()
        .stdout_contains(env!("CARGO_PKG_VERSION"));
}

#[test]
fn bogus_flag_exits_125_with_an_error() {
    let env = require_env!();
    let out = env.user_box().arg("--bogus-flag").run();
    out.assert_code(125).stderr_contains("--bogus-flag");
    assert!(out.stdout.is_empty(), "error output on stdout:\n{out}");
    let first = out
        .stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        first.contains("--bogus-flag"),
        "the first stderr line must say what is wrong:\n{out}"
    );
    out.assert_one_line_error();
}

#[test]
fn info_as_boxtest() {
    let env = require_env!();
    let out = env.user_box().arg("info").run();
    out.assert_success();
    assert!(!out.out().is_empty(), "`box info` printed nothing:\n{out}");
}

/// `box info` warns when another user's subordinate range overlaps boxtest's (a line for a
/// user that does not exist is added to /etc/subuid for the test, atomically, and removed).
#[test]
fn info_warns_when_another_users_subids_overlap() {
    let env = require_env!();
    env.user_box()
        .arg("info")
        .run()
        .assert_success()
        .stdout_lacks("subid overlap");
    struct Line(String);
    fn rewrite(f: impl Fn(&str) -> String) {
        let text = std::fs::read_to_string("/etc/subuid").unwrap();
        let tmp = format!("/etc/.subuid.box-it-{}", std::process::id());
        std::fs::write(&tmp, f(&text)).unwrap();
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        std::fs::rename(&tmp, "/etc/subuid").unwrap();
    }
    impl Drop for Line {
        fn drop(&mut self) {
            let line = self.0.clone();
            rewrite(|t| {
                t.lines()
                    .filter(|l| *l != line)
                    .map(|l| format!("{l}\n"))
                    .collect()
            });
        }
    }
    let text = std::fs::read_to_string("/etc/subuid").unwrap();
    let start: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("boxtest:"))
        .and_then(|r| r.split(':').next()?.parse().ok())
        .unwrap();
    let line = Line(format!("box-overlap-test:{}:10", start + 5));
    rewrite(|t| format!("{t}{}\n", line.0));
    env.user_box()
        .arg("info")
        .run()
        .assert_success()
        .stdout_contains("subid overlap")
        .stdout_contains(&format!(
            "box-overlap-test {}-{} in /etc/subuid",
            start + 5,
            start + 14
        ));
    drop(line);
    assert!(
        !std::fs::read_to_string("/etc/subuid")
            .unwrap()
            .contains("box-overlap-test")
    );
}

#[test]
fn harness_runs_box_as_boxtest_in_a_private_store() {
    let env = require_env!();
    let tb = env.test_box();
    let user = tb.user();
    let out = tb
        .sh("id -u; id -g; echo \"$HOME\"; echo \"$BOX_ROOT\"; echo \"${XDG_RUNTIME_DIR-unset}\"; test -x \"$BOX\" && echo exec-ok; stat -c '%u %a' \"$BOX_ROOT\"")
        .run();
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            user.uid.to_string().as_str(),
            user.gid.to_string().as_str(),
            user.home.to_str().unwrap(),
            tb.root().to_str().unwrap(),
            "unset",
            "exec-ok",
            format!("{} 700", user.uid).as_str(),
        ],
        "{out}"
    );
    assert_ne!(user.uid, 0);

    // Stdin and the environment reach the command.
    tb.sh("cat; echo \" $GREETING\"")
        .stdin("hello")
        .env("GREETING", "world")
        .run()
        .assert_success()
        .stdout_is("hello world");

    // Other users: root and boxnosub get their own stores.
    let root = env.test_box_as(TestUser::Root);
    root.sh("id -u").run().assert_success().stdout_is("0");
    let nosub = env.test_box_as(TestUser::NoSub);
    nosub
        .sh("id -un; grep -c '^boxnosub:' /etc/subuid || true")
        .run()
        .assert_success()
        .stdout_is("boxnosub\n0");

    // The directory goes away with the last handle.
    let dir = tb.dir().to_path_buf();
    drop(tb);
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn harness_timeout_kills_the_command() {
    let env = require_env!();
    let tb = env.test_box();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tb.sh("sleep 30")
            .timeout(std::time::Duration::from_millis(300))
            .run()
    }));
    let err = result.expect_err("a command over its timeout must fail the test");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("timed out"), "{msg}");
}

#[test]
fn registry_serves_the_test_images() {
    let env = require_env!();
    let (status, body) = env.registry_get("/v2/");
    assert_eq!(status, 200, "{body}");

    let tags = |repo: &str| -> Vec<String> {
        let (status, body) = env.registry_get(&format!("/v2/{repo}/tags/list"));
        assert_eq!(status, 200, "{repo}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let mut tags: Vec<String> = v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        tags.sort();
        tags
    };
    assert_eq!(tags("test/layers"), ["latest"]);
    assert_eq!(
        tags("test/evil"),
        ["abs", "dotdot", "hardlink", "latest", "symlink"]
    );
    assert!(env.image(images::LAYERS).starts_with(&env.registry()));
    if env.has_alpine() {
        assert_eq!(tags("library/alpine"), ["latest", "v2s2", "zstd"]);
        assert_eq!(tags("library/alpine-index"), ["latest"]);
    } else {
        harness::skip("alpine fixture absent: alpine tags not checked");
    }
}
