//! Crash consistency (issue 9): `kill -9` box at many points of a pull and of a `run --rm`.
//!
//! After every kill: no process of the test is left (box's helpers, the watcher, the
//! container), nothing is mounted under the test's directory, and `box system check`
//! passes: it may list leftovers in `storage/tmp` (what a killed process could not clean;
//! the next pull or `--repair` removes them), never a broken image, layer or blob. At the end `--repair` leaves a clean store, the next pull succeeds and
//! `box run --rm IMAGE true` works. For `run --rm`, `box ps -a` is empty once the
//! container's watcher has cleaned up.
//!
//! The kill points are spread over the measured duration of an uninterrupted pull/run with
//! a random jitter; the seed is printed and `BOX_CRASH_SEED` replays it.
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{self, Env, TestBox, images};
use crate::hostile::{assert_check_clean, entries, store};

/// Kill points per image.
const POINTS: u32 = 20;

/// A small deterministic PRNG (xorshift64*), seeded from the clock or `BOX_CRASH_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn new(what: &str) -> Rng {
        let seed = std::env::var("BOX_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        harness::note(&format!("{what}: BOX_CRASH_SEED={seed}"));
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` kill points spread over `0..1.1 * total`, each jittered within its slot.
fn kill_points(total: Duration, n: u32, rng: &mut Rng) -> Vec<Duration> {
    let span = total.mul_f64(1.1);
    (0..n)
        .map(|i| span.mul_f64((f64::from(i) + rng.unit()) / f64::from(n)))
        .collect()
}

/// Processes started for this test box: box and its helpers inherit `BOX_IT_DIR=<dir>`
/// (containers get it with `-e`). "pid comm" of each.
pub fn processes_of(tb: &TestBox) -> Vec<String> {
    let marker = format!("BOX_IT_DIR={}", tb.dir().display());
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for p in rd.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let environ = std::fs::read(p.path().join("environ")).unwrap_or_default();
        if environ.split(|&c| c == 0).any(|kv| kv == marker.as_bytes()) {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline: Vec<String> = cmdline
                .split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            found.push(format!("{pid} {}", cmdline.join(" ")));
        }
    }
    found
}

/// Wait (up to `grace`) until no process of the test box is left; what is left otherwise.
pub fn wait_processes_gone(tb: &TestBox, grace: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let left = processes_of(tb);
        if left.is_empty() || start.elapsed() > grace {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Mount points at or under `dir` in the test process's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split(' ')
                .nth(4)
                .is_some_and(|mp| mp == dir || mp.starts_with(&format!("{dir}/")))
        })
        .map(str::to_string)
        .collect()
}

/// The store after a kill: `system check` passes; a killed process may only have left
/// garbage in tmp/ (reported as `leftover:` lines), never damage (`problem:` lines).
#[track_caller]
/// SIGKILL `r` after `at` unless it finished first (counted in `finished`); either way it
/// must not have failed on its own.
fn kill_at(mut r: harness::Running, at: Duration, what: &str, finished: &mut usize) {
    std::thread::sleep(at);
    if r.is_running() {
        r.signal(libc::SIGKILL);
    } else {
        *finished += 1;
    }
    let out = r.wait();
    assert!(
        out.success() || out.signal == Some(libc::SIGKILL),
        "{what}: it failed on its own:\n{out}"
    );
}

fn assert_consistent_after_kill(tb: &TestBox, what: &str) {
    let check = tb.cmd(["system", "check"]).run();
    let tmp = store(tb).join("tmp");
    check.assert_success();
    assert!(
        !check.stdout.contains("problem:"),
        "{what}: the store is damaged:\n{check}"
    );
    for l in check.stdout.lines().filter(|l| l.starts_with("leftover:")) {
        assert!(
            l.starts_with(&format!("leftover: {}/", tmp.display())),
            "{what}: a leftover outside tmp/: {l}"
        );
    }
    // Whatever is visible is complete.
    for l in entries(&store(tb).join("layers")) {
        let p = store(tb).join("layers").join(&l);
        assert!(
            p.join("layer.json").is_file() && p.join("diff").is_dir(),
            "{what}: incomplete layer {l} is visible"
        );
    }
}

#[track_caller]
fn assert_nothing_running(tb: &TestBox, what: &str) {
    let left = wait_processes_gone(tb, Duration::from_secs(30));
    assert!(left.is_empty(), "{what}: processes left: {left:#?}");
    let mounts = mounts_under(tb.dir());
    assert!(mounts.is_empty(), "{what}: mounts left: {mounts:#?}");
}

/// Kill `box pull IMAGE` at POINTS points; the store stays consistent throughout.
fn killed_pulls(env: &'static Env, image: &str) {
    let tb = env.test_box();
    // How long an uninterrupted pull takes here.
    let first = tb.cmd(["pull", "-q", image]).run();
    first.assert_success();
    let total = first.duration;
    tb.cmd(["rmi", "-a"]).run().assert_success();
    assert_check_clean(&tb, "after rmi");
    let mut rng = Rng::new(&format!("pull {image}"));
    let points = kill_points(total, POINTS, &mut rng);
    let mut finished = 0;
    for (i, at) in points.iter().enumerate() {
        let what = format!("pull {image} killed at {at:?} (#{i} of a {total:.1?} pull)");
        let r = tb.cmd(["pull", "-q", image]).spawn();
        kill_at(r, *at, &what, &mut finished);
        assert_nothing_running(&tb, &what);
        assert_consistent_after_kill(&tb, &what);
        // Start the next point from scratch (blobs and layers go with the images).
        let rmi = tb.cmd(["rmi", "-a"]).run();
        assert!(
            rmi.success() || rmi.stderr.contains("no images"),
            "{what}: rmi -a:\n{rmi}"
        );
    }
    harness::note(&format!(
        "pull {image}: {POINTS} kills over {total:.1?}, {finished} pulls had finished first"
    ));
    // A last kill mid-pull, then: the next pull completes and cleans up after it.
    let r = tb.cmd(["pull", "-q", image]).spawn();
    std::thread::sleep(total / 2);
    r.signal(libc::SIGKILL);
    let _ = r.wait();
    assert_nothing_running(&tb, "last kill");
    tb.cmd(["system", "check", "--repair"])
        .run()
        .assert_success();
    assert_check_clean(&tb, "after --repair");
    tb.cmd(["pull", "-q", image]).run().assert_success();
    assert!(
        entries(&store(&tb).join("tmp")).is_empty(),
        "a complete pull leaves nothing in tmp/: {:?}",
        entries(&store(&tb).join("tmp"))
    );
    assert_check_clean(&tb, "after the last pull");
    tb.cmd(["run", "--rm", "--network", "none", image, "true"])
        .run()
        .assert_success();
    assert_nothing_running(&tb, "after run");
}

#[test]
fn killed_pulls_of_a_multi_layer_image_leave_a_consistent_store() {
    let env = require_env!();
    killed_pulls(env, &env.image(images::LAYERS));
}

#[test]
fn killed_pulls_of_alpine_leave_a_consistent_store() {
    let env = require_env!(alpine);
    killed_pulls(env, &env.image(images::ALPINE));
}

#[test]
fn killed_runs_leave_no_process_mount_or_container() {
    let env = require_env!();
    let tb = env.test_box();
    let image = env.image(images::LAYERS);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    let marker = format!("BOX_IT_DIR={}", tb.dir().display());
    let args = |name: &str| -> Vec<String> {
        [
            "run",
            "--rm",
            "--network",
            "none",
            "--name",
            name,
            "-e",
            &marker,
            &image,
            "sh",
            "-c",
            "sleep 0.2; true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let first = tb.cmd(args("crash-measure")).run();
    first.assert_success();
    let total = first.duration;
    let mut rng = Rng::new("run --rm");
    let points = kill_points(total, POINTS, &mut rng);
    let mut finished = 0;
    let mut left_behind = Vec::new();
    for (i, at) in points.iter().enumerate() {
        let what = format!("run --rm killed at {at:?} (#{i} of a {total:.1?} run)");
        let r = tb.cmd(args(&format!("crash-{i}"))).spawn();
        kill_at(r, *at, &what, &mut finished);
        assert_nothing_running(&tb, &what);
        // A --rm container is gone with its run, however that run ended.
        let ps = tb
            .cmd(["ps", "-a", "--format", "{{.Names}} {{.Status}}"])
            .run();
        ps.assert_success();
        if !ps.out().is_empty() {
            left_behind.push(format!("{what}: {}", ps.out().replace('\n', "; ")));
            tb.cmd(["rm", "-f", "--all"]).run();
        }
        let records: Vec<String> = entries(&tb.root().join("containers"))
            .into_iter()
            .filter(|e| e.len() == 64 && e.chars().all(|c| c.is_ascii_hexdigit()))
            .collect();
        if !records.is_empty() {
            left_behind.push(format!("{what}: container records {records:?}"));
        }
    }
    harness::note(&format!(
        "run --rm: {POINTS} kills over {total:.1?}, {finished} runs had finished first, {} left a container",
        left_behind.len()
    ));
    assert!(
        left_behind.is_empty(),
        "killed `box run --rm` left containers behind:\n{}",
        left_behind.join("\n")
    );
    // The store and the image still work.
    assert_check_clean(&tb, "after the killed runs");
    tb.cmd(["run", "--rm", "--network", "none", &image, "true"])
        .run()
        .assert_success();
    assert_nothing_running(&tb, "after the last run");
}
