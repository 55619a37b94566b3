//! Hostile registries and images (issue 9, reliability and security).
//!
//! `tests/hostile/registry.py` is a registry that lies on purpose, one scenario per repository
//! `hostile/<scenario>:latest`; it runs once per test process beside the harness's
//! docker-registry and dies with the test process. For every lie, `box pull` (as boxtest) must
//! fail with exit code 125 and one line naming the problem, and leave nothing behind: no image,
//! no layer, nothing in `storage/tmp`, a clean `box system check`. The evil layers of the real
//! registry (`test/evil:*`) must fail naming the entry and touch nothing outside the store.
//!
//! `BOX_REGISTRY_TIMEOUT` shortens box's read timeout for the hanging scenarios.
//! `BOX_SLOW_TESTS=1` also runs the 1-million-file layer (built once, cached in /var/tmp).
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{self, Env, Outcome, TestBox, images};

/// What box may wait on a silent registry here (seconds; box's default is 30).
pub const REGISTRY_TIMEOUT: &str = "3";

static HOSTILE_PID: AtomicI32 = AtomicI32::new(0);
static HOSTILE: OnceLock<Result<String, String>> = OnceLock::new();

extern "C" fn kill_hostile() {
    let pid = HOSTILE_PID.swap(0, Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) of the registry this process spawned.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/registry.py")
}

fn python() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    if system.is_file() {
        return system.to_path_buf();
    }
    harness::which("python3").unwrap_or_else(|| "python3".into())
}

/// `127.0.0.1:<port>` of the hostile registry, started on first use.
pub fn hostile_registry(env: &Env) -> &'static str {
    match HOSTILE.get_or_init(|| start(env)) {
        Ok(addr) => addr,
        Err(e) => panic!("hostile registry: {e}"),
    }
}

/// `127.0.0.1:<port>/hostile/<scenario>:latest`.
pub fn hostile_ref(env: &Env, scenario: &str) -> String {
    format!("{}/hostile/{scenario}:latest", hostile_registry(env))
}

fn start(env: &Env) -> Result<String, String> {
    let dir = env.base_dir().join("hostile");
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let portfile = dir.join("port");
    let _ = std::fs::remove_file(&portfile);
    let log_path = dir.join("registry.log");
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(python());
    cmd.arg(script()).arg(&portfile);
    // PDEATHSIG fires when the spawning *thread* exits: the thread below lives as long as
    // the registry (it waits for it).
    crate::harness::background(&mut cmd, log);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("box-it-hostile".into())
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id() as i32));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
        })
        .map_err(|e| e.to_string())?;
    let pid = rx
        .recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    HOSTILE_PID.store(pid, Ordering::SeqCst);
    // SAFETY: registers a plain extern "C" fn.
    unsafe {
        libc::atexit(kill_hostile);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(port) = std::fs::read_to_string(&portfile)
            && let Ok(port) = port.trim().parse::<u16>()
        {
            return Ok(format!("127.0.0.1:{port}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no port in {} after 30 s: {}",
                portfile.display(),
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Build the cached layer of a big scenario (`bomb`, `million`) before timing box.
fn prepare(scenario: &str) {
    let started = Instant::now();
    let st = Command::new(python())
        .arg(script())
        .args(["--prepare", scenario])
        .status()
        .expect("run registry.py --prepare");
    assert!(st.success(), "registry.py --prepare {scenario}: {st}");
    if started.elapsed() > Duration::from_secs(2) {
        harness::note(&format!(
            "built the {scenario} layer in {:.1?} (cached in /var/tmp)",
            started.elapsed()
        ));
    }
}

/// A tiny HTTP/1.0 GET (loopback only): (status, body).
pub fn http_get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status");
    (status, buf[split + 4..].to_vec())
}

/// The manifest the hostile registry serves for `scenario` (for digests and sizes).
fn manifest(env: &Env, scenario: &str) -> serde_json::Value {
    let (status, body) = http_get(
        hostile_registry(env),
        &format!("/v2/hostile/{scenario}/manifests/latest"),
    );
    assert_eq!(status, 200, "manifest of {scenario}");
    serde_json::from_slice(&body).expect("manifest JSON")
}

fn layer_digest(env: &Env, scenario: &str) -> String {
    let m = manifest(env, scenario);
    let layers = m["layers"].as_array().unwrap();
    layers.last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn store(tb: &TestBox) -> PathBuf {
    tb.root().join("storage")
}

pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// No image, no layer, nothing in tmp/, and `box system check` finds nothing wrong.
#[track_caller]
pub fn assert_store_clean(tb: &TestBox, what: &str) {
    let imgs = tb.cmd(["images", "-q"]).run();
    imgs.assert_success();
    assert!(imgs.out().is_empty(), "{what}: an image is left:\n{imgs}");
    assert_eq!(
        entries(&store(tb).join("layers")),
        Vec::<String>::new(),
        "{what}: a layer is left"
    );
    assert_eq!(
        entries(&store(tb).join("tmp")),
        Vec::<String>::new(),
        "{what}: storage/tmp is not empty"
    );
    assert_check_clean(tb, what);
}

#[track_caller]
pub fn assert_check_clean(tb: &TestBox, what: &str) {
    let check = tb.cmd(["system", "check"]).run();
    check.assert_success();
    assert!(
        check.stdout.contains("consistent") && !check.stdout.contains("problem"),
        "{what}: system check is not clean:\n{check}"
    );
}

/// `box pull -q` of a lying scenario: exit 125, one line, nothing left behind. Returns the
/// outcome for the scenario's own checks and reports the error and the time it took.
fn pull_fails(scenario: &str, timeout: Duration) -> Option<(TestBox, Outcome)> {
    let env = harness::env()?;
    let tb = env.test_box();
    let reference = hostile_ref(env, scenario);
    let out = tb
        .cmd(["pull", "-q", &reference])
        .env("BOX_REGISTRY_TIMEOUT", REGISTRY_TIMEOUT)
        .timeout(timeout)
        .run();
    out.assert_code(125).assert_one_line_error();
    assert!(
        out.err().starts_with("box: ") && out.err().contains(&reference),
        "the error names the image:\n{out}"
    );
    harness::note(&format!("{scenario}: {:.1?}: {}", out.duration, out.err()));
    assert_store_clean(&tb, scenario);
    Some((tb, out))
}

/// The bad layer itself was not kept as a blob.
#[track_caller]
fn assert_no_blob(tb: &TestBox, digest: &str) {
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        !store(tb).join("blobs/sha256").join(hex).exists(),
        "the corrupt blob {digest} was kept"
    );
}

#[test]
fn hostile_ok_is_pulled_and_runs() {
    let env = require_env!();
    let tb = env.test_box();
    let reference = hostile_ref(env, "ok");
    let out = tb.cmd(["pull", "-q", &reference]).run();
    out.assert_success();
    assert_eq!(out.out().len(), 64, "pull prints the image id:\n{out}");
    tb.cmd(["images"])
        .run()
        .assert_success()
        .stdout_contains("hostile/ok");
    assert_eq!(entries(&store(&tb).join("layers")).len(), 1);
    assert!(entries(&store(&tb).join("tmp")).is_empty());
    assert_check_clean(&tb, "ok");
}

#[test]
fn hostile_truncated_blob() {
    require_env!();
    let Some((tb, out)) = pull_fails("truncated", Duration::from_secs(120)) else {
        return;
    };
    let env = tb.env();
    let digest = layer_digest(env, "truncated");
    out.stderr_contains(&digest[7..19]);
    assert!(
        out.err().contains("broke") || out.err().contains("size mismatch"),
        "says the transfer broke:\n{out}"
    );
    assert_no_blob(&tb, &digest);
}

#[test]
fn hostile_oversized_blob() {
    require_env!();
    let Some((tb, out)) = pull_fails("oversized", Duration::from_secs(120)) else {
        return;
    };
    let digest = layer_digest(tb.env(), "oversized");
    out.stderr_contains("size mismatch")
        .stderr_contains(&digest[7..19]);
    assert_no_blob(&tb, &digest);
}

#[test]
fn hostile_digest_mismatch_names_the_digest() {
    require_env!();
    let Some((tb, out)) = pull_fails("digest", Duration::from_secs(120)) else {
        return;
    };
    let digest = layer_digest(tb.env(), "digest");
    out.stderr_contains("digest mismatch")
        .stderr_contains(&digest);
    assert_no_blob(&tb, &digest);
}

#[test]
fn hostile_wrong_content_length() {
    require_env!();
    let Some((tb, out)) = pull_fails("badlength", Duration::from_secs(120)) else {
        return;
    };
    let m = manifest(tb.env(), "badlength");
    let size = m["layers"][0]["size"].as_u64().unwrap();
    out.stderr_contains("size mismatch")
        .stderr_contains(&format!("expected {size} bytes"));
    assert_no_blob(&tb, m["layers"][0]["digest"].as_str().unwrap());
}

#[test]
fn hostile_manifest_not_json() {
    require_env!();
    let Some((_tb, out)) = pull_fails("notjson", Duration::from_secs(120)) else {
        return;
    };
    out.stderr_contains("invalid manifest")
        .stderr_contains("not JSON");
}

#[test]
fn hostile_huge_manifest_is_refused() {
    require_env!();
    let Some((_tb, out)) = pull_fails("hugemanifest", Duration::from_secs(120)) else {
        return;
    };
    out.stderr_contains("manifest")
        .stderr_contains("larger than");
    assert!(
        out.duration < Duration::from_secs(60),
        "refused without reading 100 MB:\n{out}"
    );
}

#[test]
fn hostile_hanging_manifest_times_out() {
    require_env!();
    // Two timeouts of BOX_REGISTRY_TIMEOUT plus back-off; box's default (30 s) if it is unknown.
    let Some((_tb, out)) = pull_fails("hang", Duration::from_secs(180)) else {
        return;
    };
    out.stderr_contains("did not answer in time");
}

#[test]
fn hostile_hanging_blob_times_out() {
    require_env!();
    let Some((tb, out)) = pull_fails("hangblob", Duration::from_secs(180)) else {
        return;
    };
    out.stderr_contains("did not answer in time");
    assert_no_blob(&tb, &layer_digest(tb.env(), "hangblob"));
}

#[test]
fn hostile_config_not_json() {
    require_env!();
    let Some((_tb, out)) = pull_fails("badconfig", Duration::from_secs(120)) else {
        return;
    };
    out.stderr_contains("invalid image config");
}

/// Regular files of at least `min` bytes under `dir` (not following symlinks).
fn big_files(dir: &Path, min: u64, found: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(md) = e.path().symlink_metadata() else {
            continue;
        };
        if md.is_dir() {
            big_files(&e.path(), min, found);
        } else if md.is_file() && md.len() >= min {
            found.push(e.path());
        }
    }
}

/// Files in `dir` (not below) of at least `min` bytes owned by `uid` or its subordinate ids.
fn big_files_of(dir: &Path, uid: u32, min: u64) -> Vec<PathBuf> {
    let sub = subuid_range("boxtest");
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let md = e.path().symlink_metadata().ok()?;
                    let owner = md.uid();
                    let ours = owner == uid || (sub.0..sub.0 + sub.1).contains(&owner);
                    (ours && md.is_file() && md.len() >= min).then(|| e.path())
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn subuid_range(user: &str) -> (u32, u32) {
    std::fs::read_to_string("/etc/subuid")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            if f.next() != Some(user) {
                return None;
            }
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .unwrap_or((0, 0))
}

/// Peak RSS in KiB from `/usr/bin/time -f maxrss=%M` output.
fn maxrss_kib(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("maxrss="))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn hostile_gzip_bomb_fails_and_leaves_no_big_file() {
    let env = require_env!();
    prepare("bomb");
    let tb = env.test_box();
    let reference = hostile_ref(env, "bomb");
    let timed = Path::new("/usr/bin/time").is_file();
    let script = if timed {
        "exec /usr/bin/time -f maxrss=%M \"$BOX\" pull -q \"$1\""
    } else {
        "exec \"$BOX\" pull -q \"$1\""
    };
    let out = tb
        .sh(script)
        .arg(&reference)
        .env("BOX_REGISTRY_TIMEOUT", REGISTRY_TIMEOUT)
        .timeout(Duration::from_secs(300))
        .run();
    out.assert_code(125);
    let error: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("maxrss=") && !l.starts_with("Command"))
        .collect();
    assert_eq!(error.len(), 1, "a one-line error:\n{out}");
    let error = error[0];
    let diff_id = manifest_config_diff_id(env, "bomb");
    assert!(
        error.contains("diff_id") && error.contains(&diff_id),
        "the error says the layer is not what its diff_id promises:\n{out}"
    );
    let rss = maxrss_kib(&out.stderr);
    harness::note(&format!(
        "bomb: {:.1?}, box peak RSS {} KiB: {error}",
        out.duration,
        rss.map(|r| r.to_string()).unwrap_or_else(|| "?".into())
    ));
    assert_store_clean(&tb, "bomb");
    let mut found = Vec::new();
    big_files(tb.dir(), 64 << 20, &mut found);
    assert!(found.is_empty(), "big files left behind: {found:?}");
    let uid = tb.user().uid;
    for dir in ["/tmp", "/var/tmp"] {
        let left = big_files_of(Path::new(dir), uid, 512 << 20);
        assert!(left.is_empty(), "big files of boxtest in {dir}: {left:?}");
    }
    if let Some(rss) = rss {
        assert!(rss < 512 * 1024, "box used {rss} KiB unpacking the bomb");
    }
}

fn manifest_config_diff_id(env: &Env, scenario: &str) -> String {
    let m = manifest(env, scenario);
    let digest = m["config"]["digest"].as_str().unwrap();
    let (status, body) = http_get(
        hostile_registry(env),
        &format!("/v2/hostile/{scenario}/blobs/{digest}"),
    );
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
    config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string()
}

/// Make sure the hardlink target exists with the content the storage tests use too (they
/// run in parallel and may remove it at their end), mode 0666.
fn ensure_hardlink_target() {
    let target = Path::new(images::ESCAPE_HARDLINK_TARGET);
    if std::fs::read_to_string(target).ok().as_deref() != Some("original\n") {
        std::fs::write(target, "original\n").unwrap();
    }
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o666)).unwrap();
}

#[test]
fn evil_layers_fail_naming_the_entry_and_touch_nothing() {
    let env = require_env!();
    let marker = Path::new(images::ESCAPE_MARKER);
    let _ = std::fs::remove_file(marker);
    let cases = [
        (images::EVIL, "escape"),
        (images::EVIL_DOTDOT, "../escape"),
        (images::EVIL_ABS, "/tmp/box-escape-marker"),
        (images::EVIL_SYMLINK, "link/box-escape-marker"),
        (images::EVIL_HARDLINK, "host-link"),
    ];
    for (image, entry) in cases {
        ensure_hardlink_target();
        let tb = env.test_box();
        let out = tb.cmd(["pull", "-q", &env.image(image)]).run();
        out.assert_code(125)
            .assert_one_line_error()
            .stderr_contains("layer entry")
            .stderr_contains(entry);
        harness::note(&format!("{image}: {}", out.err()));
        assert!(!marker.exists(), "{image} created {}", marker.display());
        if let Ok(text) = std::fs::read_to_string(images::ESCAPE_HARDLINK_TARGET) {
            assert_eq!(text, "original\n", "{image} wrote through a hardlink");
        }
        for escaped in [tb.dir().join("escape"), tb.root().join("escape")] {
            assert!(!escaped.exists(), "{image} wrote {}", escaped.display());
        }
        assert_store_clean(&tb, image);
    }
}

#[test]
fn device_nodes_are_skipped_with_a_warning() {
    let env = require_env!();
    let tb = env.test_box();
    // Not -q: a quiet pull prints no warnings.
    let out = tb.cmd(["pull", &hostile_ref(env, "devnode")]).run();
    out.assert_success()
        .stderr_contains("warning")
        .stderr_contains("dev/null")
        .stderr_contains("dev/sda");
    let warning = out
        .stderr
        .lines()
        .find(|l| l.contains("warning"))
        .unwrap_or("");
    harness::note(&format!("devnode: {warning}"));
    let layers = entries(&store(&tb).join("layers"));
    assert_eq!(layers.len(), 1, "one layer");
    let diff = store(&tb).join("layers").join(&layers[0]).join("diff");
    assert_eq!(
        std::fs::read_to_string(diff.join("ok.txt")).unwrap(),
        "ok\n",
        "the rest of the layer is there"
    );
    use std::os::unix::fs::FileTypeExt;
    let fifo = diff.join("dev/fifo").symlink_metadata().unwrap();
    assert!(fifo.file_type().is_fifo(), "the fifo is kept");
    for dev in ["dev/null", "dev/sda"] {
        assert!(
            diff.join(dev).symlink_metadata().is_err(),
            "{dev} must not exist in a rootless layer"
        );
    }
    assert_check_clean(&tb, "devnode");
}

/// `BOX_SLOW_TESTS=1`: a layer of one million empty files pulls (or fails with one clear
/// line) in bounded memory.
#[test]
fn million_file_layer_in_bounded_memory() {
    let env = require_env!();
    if std::env::var_os("BOX_SLOW_TESTS").is_none_or(|v| v != "1") {
        harness::opt_out("the 1-million-file layer runs only with BOX_SLOW_TESTS=1");
        return;
    }
    prepare("million");
    let tb = env.test_box();
    let out = tb
        .sh("exec /usr/bin/time -f maxrss=%M \"$BOX\" pull -q \"$1\"")
        .arg(hostile_ref(env, "million"))
        .env("BOX_REGISTRY_TIMEOUT", "120")
        .timeout(Duration::from_secs(1800))
        .run();
    let rss = maxrss_kib(&out.stderr).expect("/usr/bin/time reports the peak RSS");
    harness::note(&format!(
        "million: exit {} in {:.1?}, box peak RSS {rss} KiB: {}",
        out.code,
        out.duration,
        out.err().replace('\n', " | ")
    ));
    if out.success() {
        let layers = entries(&store(&tb).join("layers"));
        assert_eq!(layers.len(), 1);
        let diff = store(&tb).join("layers").join(&layers[0]).join("diff");
        assert!(diff.join("d999/f999").is_file(), "the last file is there");
        assert_check_clean(&tb, "million");
    } else {
        out.assert_code(125);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| !l.starts_with("maxrss=") && !l.starts_with("Command"))
            .collect();
        assert_eq!(lines.len(), 1, "a one-line error:\n{out}");
        assert_store_clean(&tb, "million");
    }
    assert!(rss < 256 * 1024, "box's peak RSS was {rss} KiB");
}
