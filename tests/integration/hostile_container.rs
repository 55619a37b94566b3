//! A hostile running container against `box cp` and `box exec` (issue 12, items 1 and 2).
//!
//! The container plants symlinks to the user's own files, changes what a first copy brought
//! to the host, swaps entries while box copies, and looks for descriptors box was started
//! with. The user's files (a `victim` directory in the test's work directory) must never be
//! written, have their mode changed, or be listed from inside the container.
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::harness::lab::{Lab, until};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The user's own files: `victim/bashrc` ("mine") in a 0750 directory.
fn victim(lab: &Lab) -> std::path::PathBuf {
    let dir = lab.tb.mkdir("victim");
    std::fs::write(dir.join("bashrc"), "mine\n").unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    dir
}

fn assert_untouched(victim: &Path) {
    assert_eq!(
        std::fs::read_to_string(victim.join("bashrc")).unwrap(),
        "mine\n",
        "the container wrote the user's file"
    );
    let names: Vec<_> = std::fs::read_dir(victim)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["bashrc"],
        "the container created files in the user's directory"
    );
    assert_eq!(
        std::fs::metadata(victim).unwrap().permissions().mode() & 0o7777,
        0o750,
        "the container changed the mode of the user's directory"
    );
}

fn exec_sh(lab: &Lab, c: &str, script: &str) {
    lab.run(&["exec", c, "sh", "-c", script]).assert_success();
}

/// A first copy brings the container's symlinks to the host; the container then turns
/// them into a file and a directory; a second copy into the same destination must replace
/// them, not write through them.
#[test]
fn cp_replaces_symlinks_an_earlier_copy_brought() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let victim = victim(&lab);
    let v = s(&victim);
    lab.detach(&["--name", "cc"], &["sleep", "300"]);
    exec_sh(
        &lab,
        "cc",
        &format!(
            "mkdir /data && ln -s {v}/bashrc /data/rc && ln -s {v} /data/ssh && ln -s {v}/bashrc /top"
        ),
    );
    let out = lab.tb.mkdir("out");
    lab.run(&["cp", "cc:/data", s(&out)]).assert_success();
    assert!(
        std::fs::symlink_metadata(out.join("data/rc"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let top = out.join("top");
    lab.run(&["cp", "cc:/top", s(&top)]).assert_success();
    assert!(
        std::fs::symlink_metadata(&top)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    exec_sh(
        &lab,
        "cc",
        "rm /data/rc /data/ssh /top && echo pwned > /data/rc && mkdir /data/ssh \
         && echo key > /data/ssh/authorized_keys && chmod 777 /data/ssh && echo pwned > /top",
    );
    lab.run(&["cp", "cc:/data", s(&out)]).assert_success();
    lab.run(&["cp", "cc:/top", s(&top)]).assert_success();
    assert_untouched(&victim);
    assert_eq!(
        std::fs::read_to_string(out.join("data/rc")).unwrap(),
        "pwned\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("data/ssh/authorized_keys")).unwrap(),
        "key\n"
    );
    assert_eq!(std::fs::read_to_string(&top).unwrap(), "pwned\n");

    // A directory is not copied onto a file or symlink DEST: one line, 125, nothing changed.
    std::os::unix::fs::symlink(&victim, out.join("link")).unwrap();
    lab.run(&["cp", "cc:/data/ssh", s(&out.join("link"))])
        .assert_code(125)
        .assert_one_line_error()
        .stderr_contains("not a directory");
    assert_untouched(&victim);
    // DEST/ is the user's explicit directory: followed, as they asked.
    lab.run(&["cp", "cc:/data/rc", &format!("{}/", s(&out.join("link")))])
        .assert_success();
    assert_eq!(
        std::fs::read_to_string(victim.join("rc")).unwrap(),
        "pwned\n"
    );
}

/// The container swaps an entry between a regular file and a symlink to the user's file
/// while the user copies its directory out again and again.
#[test]
fn cp_races_with_a_container_swapping_entries() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let victim = victim(&lab);
    let v = s(&victim);
    let swap = format!(
        "mkdir /race && cd /race && echo a > f && \
         while :; do ln -sfn {v}/bashrc x.l; mv -f x.l x; echo pwned > x.f; mv -f x.f x; \
         ln -sfn {v} d.l; mv -f d.l d; rm -f d; mkdir d.d; echo k > d.d/k; mv d.d d 2>/dev/null; \
         rm -rf d; done"
    );
    lab.detach(&["--name", "rr"], &["sh", "-c", &swap]);
    until("the swapping loop", Duration::from_secs(10), || {
        lab.run(&["exec", "rr", "test", "-d", "/race"]).success()
    });
    let out = lab.tb.mkdir("out");
    for _ in 0..15 {
        // Each copy may fail when an entry changes under it; none may reach the victim.
        let _ = lab.run(&["cp", "rr:/race", s(&out)]);
        let _ = lab.run(&["cp", "rr:/race/.", s(&out.join("race"))]);
    }
    assert_untouched(&victim);
}

/// Names are bytes: a name that is not UTF-8 is copied unchanged, both ways.
#[test]
fn cp_copies_names_that_are_not_utf8() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.detach(&["--name", "nn"], &["sleep", "300"]);
    exec_sh(
        &lab,
        "nn",
        "mkdir /n && printf x > \"/n/$(printf 'a\\377b')\" && mkdir \"/n/$(printf 'd\\376')\" \
         && printf y > \"/n/$(printf 'd\\376')/f\"",
    );
    let out = lab.tb.mkdir("out");
    lab.run(&["cp", "nn:/n", s(&out)]).assert_success();
    let odd = out.join("n").join(std::ffi::OsStr::from_bytes(b"a\xffb"));
    assert_eq!(std::fs::read_to_string(&odd).unwrap(), "x");
    let sub = out
        .join("n")
        .join(std::ffi::OsStr::from_bytes(b"d\xfe"))
        .join("f");
    assert_eq!(std::fs::read_to_string(&sub).unwrap(), "y");
    lab.run(&["cp", s(&out.join("n")), "nn:/back"])
        .assert_success();
    lab.run(&[
        "exec",
        "nn",
        "sh",
        "-c",
        "cat \"/back/$(printf 'a\\377b')\" \"/back/$(printf 'd\\376')/f\"",
    ])
    .assert_success()
    .stdout_is("xy");
}

/// A host directory given to box as fd 9 (`exec 9<DIR`) is never reachable from the
/// container: not through `/proc/self/fd/9` of `exec`, `exec -t`, `exec -d` or `run`, not
/// as a working directory.
#[test]
fn exec_and_run_pass_no_inherited_descriptor() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    let dir = lab.tb.mkdir("secret-dir");
    std::fs::write(dir.join("host-marker"), "x").unwrap();
    lab.detach(&["--name", "ee"], &["sleep", "300"]);
    let with_fd9 = |cmd: &str| lab.tb.sh(&format!("exec 9<{}; {cmd}", s(&dir))).run();
    let cases = [
        "\"$BOX\" exec ee ls /proc/self/fd/9/",
        "\"$BOX\" exec -t ee ls /proc/self/fd/9/",
        "\"$BOX\" exec -w /proc/self/fd/9 ee ls",
        "\"$BOX\" exec ee sh -c 'ls -l /proc/self/fd/; ls /proc/$$/fd/9/'",
        &format!(
            "\"$BOX\" run --rm --network none -w /proc/self/fd/9 {} ls",
            lab.image
        ),
        &format!(
            "\"$BOX\" run --rm --network none {} ls /proc/self/fd/9/",
            lab.image
        ),
    ];
    for case in cases {
        let out = with_fd9(case);
        out.stdout_lacks("host-marker");
        assert!(!out.success(), "{case} reached fd 9:\n{out}");
    }
    // exec -d: the command outlives box; the container looks at every process's fd 9.
    with_fd9("\"$BOX\" exec -d ee sleep 120").assert_success();
    lab.run(&[
        "exec",
        "ee",
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do ls $p/fd/9/ 2>/dev/null; done; echo looked",
    ])
    .assert_success()
    .stdout_contains("looked")
    .stdout_lacks("host-marker");
    // The working directory still works inside the container, and is made by run.
    lab.run(&["exec", "-w", "/etc", "ee", "pwd"])
        .assert_success()
        .stdout_is("/etc\n");
    lab.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-w",
        "/new/dir",
        &lab.image,
        "pwd",
    ])
    .assert_success()
    .stdout_is("/new/dir\n");
}
