//! Hostile layers and archives against the unpacker and `box load` (issue 9, items 3, 4, 9).
//!
//! The layers are crafted by `tests/images/hostile-unpack.py` (see its header), made into
//! one-layer images with umoci and pushed with skopeo to the harness's registry; the archives
//! are written here with the tar crate. box always runs as boxtest. Stores that must run out of
//! room live on a small tmpfs mounted (by the root test process) over the test's BOX_ROOT, so
//! that even the old, unbounded behaviour only fills that tmpfs.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::harness::{self, Env, Outcome, TestBox};
use crate::hostile::{assert_check_clean, assert_store_clean, entries, store};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn python() -> PathBuf {
    let system = Path::new("/usr/bin/python3");
    if system.is_file() {
        return system.to_path_buf();
    }
    harness::which("python3").unwrap_or_else(|| "python3".into())
}

#[track_caller]
fn run_tool(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hostile-unpack.py ARGS... OUT` as the one layer of `hostile-unpack/NAME:latest` in the
/// test registry (umoci + skopeo); returns the reference.
fn push_layer(env: &Env, name: &str, kind: &str, arg: &str) -> String {
    let dir = env.base_dir().join("hostile-unpack").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("layer.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/hostile-unpack.py");
    run_tool(
        Command::new(python())
            .arg(script)
            .arg(kind)
            .arg(&tar)
            .arg(arg),
    );
    let layout = dir.join("oci");
    let image = format!("{}:latest", layout.display());
    run_tool(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_tool(Command::new("umoci").args(["new", "--image", &image]));
    run_tool(
        Command::new("umoci")
            .args(["raw", "add-layer", "--image", &image])
            .arg(&tar),
    );
    run_tool(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--os",
        "linux",
        "--architecture",
        "amd64",
        "--config.cmd",
        "/ok.txt",
    ]));
    let reference = format!("{}/hostile-unpack/{name}:latest", env.registry());
    run_tool(
        Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{image}"))
            .arg(format!("docker://{reference}")),
    );
    let _ = std::fs::remove_file(&tar);
    reference
}

/// Put BOX_ROOT of `tb` on a tmpfs of `mib` MiB owned by its user (the harness unmounts it
/// with the test directory).
fn small_store(tb: &TestBox, mib: u64) -> PathBuf {
    let root = tb.root();
    let user = tb.user();
    run_tool(
        Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!(
                "size={mib}m,mode=0700,uid={},gid={}",
                user.uid, user.gid
            ))
            .arg("box-it-small-store")
            .arg(&root),
    );
    root
}

/// Bytes in use on the filesystem of `path`.
fn used(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).unwrap();
    (st.blocks() - st.blocks_free()) * st.fragment_size()
}

/// Samples `used(path)` every millisecond until dropped into `peak()`.
struct PeakWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl PeakWatch {
    fn start(path: &Path) -> PeakWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (path.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !s.load(Ordering::Relaxed) {
                peak = peak.max(used(&p));
                std::thread::sleep(Duration::from_millis(1));
            }
            peak.max(used(&p))
        });
        PeakWatch { stop, thread }
    }
    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Peak RSS in KiB from `/usr/bin/time -f maxrss=%M`, and stderr without time's lines.
fn split_time(out: &Outcome) -> (Option<u64>, Vec<String>) {
    let mut rss = None;
    let mut lines = Vec::new();
    for l in out.stderr.lines() {
        if let Some(v) = l.trim().strip_prefix("maxrss=") {
            rss = v.trim().parse().ok();
        } else if !l.trim().is_empty() && !l.starts_with("Command") {
            lines.push(l.to_string());
        }
    }
    (rss, lines)
}

/// The only layer directory of the store.
fn only_layer(tb: &TestBox) -> PathBuf {
    let layers = entries(&store(tb).join("layers"));
    assert_eq!(layers.len(), 1, "one layer: {layers:?}");
    store(tb).join("layers").join(&layers[0]).join("diff")
}

// --- item 3: names of millions of components ---------------------------------------------

#[test]
fn hostile_unpack_long_names_fail_in_one_short_line_and_bounded_memory() {
    let env = require_env!();
    if !Path::new("/usr/bin/time").is_file() {
        harness::skip("/usr/bin/time is missing (it measures box's peak memory here)");
        return;
    }
    // 4 million components: an 8 MB name in a layer of a few KB.
    const N: &str = "4000000";
    for (name, kind) in [("longpath", "longpath"), ("longlink", "longlink")] {
        let reference = push_layer(env, name, kind, N);
        let tb = env.test_box();
        let out = tb
            .sh("exec /usr/bin/time -f maxrss=%M \"$BOX\" pull -q \"$1\"")
            .arg(&reference)
            .timeout(Duration::from_secs(300))
            .run();
        out.assert_code(125);
        let (rss, lines) = split_time(&out);
        let rss = rss.expect("/usr/bin/time reports the peak RSS");
        let shown = lines
            .iter()
            .map(|l| match l.get(..300) {
                Some(head) if l.len() > 300 => format!("{head}…({} bytes)", l.len()),
                _ => l.clone(),
            })
            .collect::<Vec<_>>();
        harness::note(&format!(
            "{name}: {:.1?}, peak RSS {rss} KiB: {}",
            out.duration,
            shown.join(" | ")
        ));
        assert_eq!(lines.len(), 1, "a one-line error: {shown:?}");
        let error = &lines[0];
        assert!(
            error.len() < 500,
            "the error line is {} bytes: {shown:?}",
            error.len()
        );
        assert!(
            error.starts_with("box: ")
                && error.contains("layer entry")
                && error.contains("PATH_MAX")
                && (error.contains("8000001 bytes") || error.contains("8000006 bytes")),
            "names the entry and why: {error}"
        );
        // An 8 MB name may cost a few copies of itself, never 30 bytes per byte.
        assert!(rss < 96 * 1024, "{name}: box's peak RSS was {rss} KiB");
        assert_store_clean(&tb, name);
    }
}

// --- item 4: GNU sparse files --------------------------------------------------------------

#[track_caller]
fn assert_sparse(path: &Path, size: u64, data: &[(u64, u8)]) {
    use std::os::unix::fs::FileExt;
    let md = std::fs::metadata(path).unwrap();
    assert_eq!(md.len(), size, "{}: apparent size", path.display());
    assert!(
        md.blocks() * 512 <= 64 * 1024,
        "{}: {} bytes allocated on disk: the holes were written",
        path.display(),
        md.blocks() * 512
    );
    let f = std::fs::File::open(path).unwrap();
    for &(offset, byte) in data {
        let mut buf = vec![0u8; 1024];
        f.read_exact_at(&mut buf, offset).unwrap();
        assert!(buf[..512].iter().all(|&b| b == byte), "data at {offset}");
        assert!(buf[512..].iter().all(|&b| b == 0), "a hole after {offset}");
        if offset >= 512 {
            f.read_exact_at(&mut buf[..512], offset - 512).unwrap();
            assert!(buf[..512].iter().all(|&b| b == 0), "a hole before {offset}");
        }
    }
}

#[test]
fn hostile_unpack_sparse_files_stay_sparse() {
    let env = require_env!();
    // 4 GiB of apparent size, 1.5 KiB of data.
    let reference = push_layer(
        env,
        "sparse",
        "sparse",
        "big:1G:0=a:512M=b,tail:2G:1G=c,hole:1G",
    );
    let tb = env.test_box();
    let out = tb
        .cmd(["pull", "-q", &reference])
        .timeout(Duration::from_secs(300))
        .run();
    out.assert_success();
    harness::note(&format!(
        "sparse: 4 GiB of holes pulled in {:.1?}",
        out.duration
    ));
    let diff = only_layer(&tb);
    assert_sparse(&diff.join("big"), GIB, &[(0, b'a'), (512 * MIB, b'b')]);
    assert_sparse(&diff.join("tail"), 2 * GIB, &[(GIB, b'c')]);
    assert_sparse(&diff.join("hole"), GIB, &[]);
    assert_eq!(
        std::fs::read_to_string(diff.join("ok.txt")).unwrap(),
        "ok\n"
    );
    assert!(entries(&store(&tb).join("tmp")).is_empty());
    assert_check_clean(&tb, "sparse");
}

#[test]
fn hostile_unpack_files_beyond_the_free_space_are_refused() {
    let env = require_env!();
    // (name, spec, the entry refused, what the error must say)
    let cases = [
        // One file of 1 PiB: more than any disk.
        (
            "huge",
            "huge:1P:0=x",
            "huge",
            "1.0 PiB (1125899906842624 bytes)",
        ),
        // Each fits the 64 MiB store, together they do not: refused at the third.
        (
            "sum",
            "f1:24M:0=x,f2:24M:0=y,f3:24M:0=z",
            "f3",
            "24.0 MiB (25165824 bytes)",
        ),
    ];
    for (name, spec, entry, says) in cases {
        let reference = push_layer(env, name, "sparse", spec);
        let tb = env.test_box();
        small_store(&tb, 64);
        let out = tb
            .cmd(["pull", "-q", &reference])
            .timeout(Duration::from_secs(300))
            .run();
        out.assert_code(125)
            .assert_one_line_error()
            .stderr_contains(&format!("layer entry \"{entry}\""))
            .stderr_contains(says)
            .stderr_contains("free on the store's filesystem");
        harness::note(&format!("{name}: {:.1?}: {}", out.duration, out.err()));
        assert!(
            out.duration < Duration::from_secs(60),
            "refused without writing: {out}"
        );
        assert_store_clean(&tb, name);
    }
}

// --- item 9: an archive listing one layer many times -----------------------------------------

/// Deterministic incompressible bytes (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn append(b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_725_580_800);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

const COPIES: usize = 40;
const LAYER_FILE: usize = 4 << 20;

/// (layer tar, its sha256 hex, config bytes): one 4 MiB file of noise.
fn repeated_image() -> (Vec<u8>, String, Vec<u8>) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let data = noise(LAYER_FILE);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_725_580_800);
    b.append_data(&mut h, "noise.bin", &data[..]).unwrap();
    let layer = b.into_inner().unwrap();
    let hex = sha(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/noise.bin"]},
        "rootfs": {"type": "layers", "diff_ids": vec![format!("sha256:{hex}"); COPIES]},
    }))
    .unwrap();
    (layer, hex, config)
}

fn docker_archive(path: &Path) -> String {
    let (layer, hex, config) = repeated_image();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    append(&mut b, &format!("{hex}/layer.tar"), &layer);
    append(&mut b, "config.json", &config);
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["localhost/repeat:docker"],
        "Layers": vec![format!("{hex}/layer.tar"); COPIES],
    }]);
    append(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap();
    hex
}

fn oci_archive(path: &Path) -> String {
    let (layer, hex, config) = repeated_image();
    let desc = |mt: &str, b: &[u8]| serde_json::json!({"mediaType": mt, "digest": format!("sha256:{}", sha(b)), "size": b.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": vec![desc("application/vnd.oci.image.layer.v1.tar", &layer); COPIES],
    }))
    .unwrap();
    let mut index = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    index["annotations"] = serde_json::json!({"io.containerd.image.name": "localhost/repeat:oci"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [index]});
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
    for blob in [&layer, &config, &manifest] {
        append(&mut b, &format!("blobs/sha256/{}", sha(blob)), blob);
    }
    b.into_inner().unwrap();
    hex
}

#[test]
fn hostile_unpack_load_stages_a_repeated_layer_once() {
    let env = require_env!();
    for (format, tag) in [
        ("docker", "localhost/repeat:docker"),
        ("oci", "localhost/repeat:oci"),
    ] {
        let tb = env.test_box();
        let archive = tb.work().join(format!("{format}.tar"));
        let hex = if format == "docker" {
            docker_archive(&archive)
        } else {
            oci_archive(&archive)
        };
        // 40 copies would need 160 MiB of staging; one copy, its unpacked layer and the
        // extracted archive fit in 48 MiB.
        let root = small_store(&tb, 48);
        let base = used(&root);
        let watch = PeakWatch::start(&root);
        let out = tb
            .cmd(["load", "-i", archive.to_str().unwrap()])
            .timeout(Duration::from_secs(300))
            .run();
        let peak = watch.peak() - base;
        harness::note(&format!(
            "load {format} archive listing a {} MiB layer {COPIES} times: {:.1?}, peak store use {:.1} MiB",
            LAYER_FILE as u64 / MIB,
            out.duration,
            peak as f64 / MIB as f64
        ));
        out.assert_success().stdout_contains(tag);
        assert!(
            peak < 3 * LAYER_FILE as u64 + 2 * MIB,
            "{format}: the store held {peak} bytes at its peak"
        );
        let inspect = tb.cmd(["image", "inspect", tag]).run();
        inspect.assert_success();
        let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        let v = if v.is_array() { v[0].clone() } else { v };
        let layers = v["RootFS"]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), COPIES, "{format}");
        assert!(layers.iter().all(|l| l == &format!("sha256:{hex}")[..]));
        let diff = only_layer(&tb);
        assert_eq!(
            std::fs::read(diff.join("noise.bin")).unwrap(),
            noise(LAYER_FILE),
            "{format}: the layer's content"
        );
        assert!(entries(&store(&tb).join("tmp")).is_empty(), "{format}");
        assert_check_clean(&tb, format);
    }
}
