//! box's file locks as a user meets them: a command that cannot get a lock gives up after
//! `BOX_LOCK_TIMEOUT` seconds with one line naming the lock file and, when known, the
//! process holding it (the container lock used to wait forever).
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

use crate::harness::lab::Lab;

/// Hold `path` from this (the test) process, recording it as the holder the way box does.
fn hold(path: &Path, exclusive: bool) -> Flock<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let arg = if exclusive {
        FlockArg::LockExclusiveNonblock
    } else {
        FlockArg::LockSharedNonblock
    };
    let lock = Flock::lock(f, arg).map_err(|(_, e)| e).unwrap();
    if exclusive {
        std::fs::write(path, holder_line()).unwrap();
    }
    lock
}

/// `<pid> <start time> <command>`: what box writes into a lock file it holds exclusively.
fn holder_line() -> String {
    let pid = std::process::id();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start = stat[stat.rfind(')').unwrap() + 2..]
        .split_ascii_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    format!("{pid} {start} {}\n", own_command())
}

fn own_command() -> String {
    let raw = std::fs::read(format!("/proc/{}/cmdline", std::process::id())).unwrap();
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let prog = args[0].rsplit('/').next().unwrap().to_string();
    std::iter::once(prog)
        .chain(args[1..].iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

#[test]
fn a_held_container_lock_times_out_naming_its_holder() {
    let env = require_env!(alpine);
    let lab = Lab::new(env);
    lab.run(&["create", "--name", "first", &lab.image, "true"])
        .assert_success();
    let lock_path = lab.tb.root().join("containers/.lock");
    let held = hold(&lock_path, true);

    let start = Instant::now();
    let out = lab
        .tb
        .cmd(["rename", "first", "second"])
        .env("BOX_LOCK_TIMEOUT", "1")
        .timeout(Duration::from_secs(30))
        .run();
    out.assert_code(125).assert_one_line_error();
    assert!(start.elapsed() < Duration::from_secs(20), "{out}");
    out.stderr_contains(&format!(
        "{} is locked by pid {} (",
        lock_path.display(),
        std::process::id()
    ))
    .stderr_contains("wait for it or kill it");
    // nothing changed
    lab.run(&["inspect", "first"]).assert_success();

    drop(held);
    lab.run(&["rename", "first", "second"]).assert_success();
    // box emptied its own holder line on release
    assert_eq!(std::fs::read(&lock_path).unwrap(), b"");
    lab.run(&["rm", "second"]).assert_success();
}

#[test]
fn a_shared_volume_lock_times_out_without_a_holder() {
    let env = require_env!();
    let tb = env.test_box();
    tb.cmd(["volume", "create", "one"]).run().assert_success();
    let lock_path = tb.root().join("volumes/.lock");
    let held = hold(&lock_path, false);
    let out = tb
        .cmd(["volume", "create", "two"])
        .env("BOX_LOCK_TIMEOUT", "1")
        .timeout(Duration::from_secs(30))
        .run();
    out.assert_code(125)
        .assert_one_line_error()
        .stderr_contains(&format!(
            "{} is locked by another box process",
            lock_path.display()
        ));
    drop(held);
    tb.cmd(["volume", "create", "two"]).run().assert_success();
}
