//! The rootless integration-test harness: every integration test uses it.
//!
//! The test process runs as root (`sudo scripts/test`) and drops to the unprivileged `boxtest`
//! user for every `box` invocation. Once per process, [`env()`]:
//! - checks the host (root, users `boxtest`/`boxnosub`, subuid ranges, tools); anything missing
//!   prints `SKIP: <reason>` and every test returns early (`BOX_IT_REQUIRE=1` turns that into a
//!   failure, as `scripts/test` does);
//! - copies the `box` binary to `/tmp/box-it-<pid>/bin/box` where `boxtest` can run it;
//! - builds the test images (`scripts/build-test-images`, cached in `target/test-images`);
//! - starts Debian's `docker-registry` on a free 127.0.0.1 port and pushes the images into it
//!   with skopeo (`scripts/push-test-images`); the registry dies with the test process.
//!
//! ```ignore
//! #[test]
//! fn pulls_alpine() {
//!     let env = require_env!(alpine);           // or require_env!() when alpine is not needed
//!     let tb = env.test_box();                  // private store, as boxtest
//!     tb.cmd(["pull", "--tls-verify=false", &env.image(images::ALPINE)]).run().assert_success();
//!     tb.cmd(["images"]).run().assert_success().stdout_contains("alpine");
//! }
//! ```
//! Set `BOX_IT_KEEP=1` to keep the per-test directories for a post-mortem.
#![allow(dead_code)]

mod cmd;
pub mod lab;
mod registry;
mod testbox;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

#[allow(unused_imports)]
pub use cmd::{BoxCmd, Outcome, Running};
pub use testbox::{TestBox, TestUser, UserInfo};

/// The names of the pushed test images; turn one into a reference with [`Env::image`].
/// What each contains: `scripts/build-test-images` and `tests/images/mklayers.py`.
pub mod images {
    /// Alpine 3.20.3 minirootfs, OCI manifest, gzip layer, linux/amd64, Cmd ["/bin/sh"].
    pub const ALPINE: &str = "library/alpine:latest";
    /// The same image as a Docker schema 2 manifest.
    pub const ALPINE_V2S2: &str = "library/alpine:v2s2";
    /// The same image with a zstd-compressed layer (OCI manifest).
    pub const ALPINE_ZSTD: &str = "library/alpine:zstd";
    /// An OCI image index: linux/arm64/v8 first, then linux/amd64 (= ALPINE's manifest).
    pub const ALPINE_INDEX: &str = "library/alpine-index:latest";
    /// Three busybox layers: whiteouts, an opaque dir, owners, links, setuid, fifo, xattr.
    pub const LAYERS: &str = "test/layers:latest";
    /// Every path-traversal attack in one layer.
    pub const EVIL: &str = "test/evil:latest";
    /// `../escape` and `sub/../../escape-nested`.
    pub const EVIL_DOTDOT: &str = "test/evil:dotdot";
    /// `/tmp/box-escape-marker`.
    pub const EVIL_ABS: &str = "test/evil:abs";
    /// `link -> /tmp`, then `link/box-escape-marker`.
    pub const EVIL_SYMLINK: &str = "test/evil:symlink";
    /// hardlink `host-link` -> `/tmp/box-escape-hardlink-target`, then a write to `host-link`.
    pub const EVIL_HARDLINK: &str = "test/evil:hardlink";
    /// Host files the evil images try to reach.
    pub const ESCAPE_MARKER: &str = "/tmp/box-escape-marker";
    pub const ESCAPE_HARDLINK_TARGET: &str = "/tmp/box-escape-hardlink-target";
}

/// The prepared host: registry, box binary, users. Get it with [`env()`] / `require_env!()`.
pub struct Env {
    box_bin: PathBuf,
    base: PathBuf,
    images_dir: PathBuf,
    registry: String,
    has_alpine: bool,
    boxtest: UserInfo,
    boxnosub: UserInfo,
    root: UserInfo,
    counter: AtomicUsize,
}

enum State {
    Ready(Box<Env>),
    Skip(String),
    Failed(String),
}

static STATE: OnceLock<State> = OnceLock::new();

/// The harness, set up once per process; `None` (after printing `SKIP: <reason>`) when this
/// host cannot run the integration tests. Panics when the set-up itself fails (a registry that
/// does not start, an image build that fails), or on a skip when `BOX_IT_REQUIRE=1`.
pub fn env() -> Option<&'static Env> {
    let state = STATE.get_or_init(|| match setup() {
        Ok(env) => State::Ready(Box::new(env)),
        Err(Setup::Skip(why)) => State::Skip(why),
        Err(Setup::Failed(why)) => State::Failed(why),
    });
    match state {
        State::Ready(env) => Some(env),
        State::Skip(why) => {
            if required() {
                panic!("integration test environment missing (BOX_IT_REQUIRE is set): {why}");
            }
            skip(why);
            None
        }
        State::Failed(why) => panic!("integration test set-up failed: {why}"),
    }
}

/// `let env = require_env!();` — the harness, or return from the test after a SKIP line.
/// `let env = require_env!(alpine);` — also skip when the alpine fixture is absent.
#[macro_export]
macro_rules! require_env {
    () => {
        match $crate::harness::env() {
            Some(env) => env,
            None => return,
        }
    };
    (alpine) => {
        match $crate::harness::env() {
            Some(env) if env.has_alpine() => env,
            Some(_) => {
                $crate::harness::skip("alpine fixture absent (../shared/fixtures or BOX_FIXTURES)");
                return;
            }
            None => return,
        }
    };
}

/// Whether the tests must not skip (`BOX_IT_REQUIRE=1`, as CI and `scripts/test` set it).
pub fn required() -> bool {
    std::env::var_os("BOX_IT_REQUIRE").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Print `SKIP: <reason> (<test>)` where it is seen even when libtest captures output; under
/// `BOX_IT_REQUIRE=1` a skip is a failure (a missing tool or fixture must never pass as green).
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    if required() {
        panic!("BOX_IT_REQUIRE is set, but this test would skip: {reason} ({name})");
    }
    say(&format!("SKIP: {reason} ({name})"));
}

/// A part the person running the tests turned off themselves (`BOX_VM=0`, no
/// `BOX_SLOW_TESTS=1`): said, and allowed even under `BOX_IT_REQUIRE=1`.
pub fn opt_out(reason: &str) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    say(&format!("SKIP (opted out): {reason} ({name})"));
}

/// Print a note that is seen even when libtest captures output (e.g. "pending: ...").
pub fn note(msg: &str) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    say(&format!("NOTE: {msg} ({name})"));
}

impl Env {
    /// `127.0.0.1:<port>` of the test registry (plain http).
    pub fn registry(&self) -> String {
        self.registry.clone()
    }

    /// A reference in the test registry: `image("library/alpine:latest")` →
    /// `127.0.0.1:<port>/library/alpine:latest`. See [`images`] for the names.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{}", self.registry, name)
    }

    /// Whether the alpine images exist (the fixture was present).
    pub fn has_alpine(&self) -> bool {
        self.has_alpine
    }

    /// The box binary boxtest runs (a copy of `CARGO_BIN_EXE_box`).
    pub fn box_bin(&self) -> &Path {
        &self.box_bin
    }

    /// The OCI layouts the images were pushed from (`alpine`, `alpine-zstd`, `alpine-index`,
    /// `layers`, `evil`), e.g. for a test that pushes an extra tag with skopeo.
    pub fn images_dir(&self) -> &Path {
        &self.images_dir
    }

    /// `/tmp/box-it-<pid>`: everything this test process creates lives under it.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    pub fn user(&self, who: TestUser) -> &UserInfo {
        match who {
            TestUser::Boxtest => &self.boxtest,
            TestUser::NoSub => &self.boxnosub,
            TestUser::Root => &self.root,
        }
    }

    /// A fresh private store (BOX_ROOT, BOX_RUNROOT, XDG_CONFIG_HOME) used as `boxtest`.
    pub fn test_box(&'static self) -> TestBox {
        self.test_box_as(TestUser::Boxtest)
    }

    /// A fresh private store used as `who`.
    pub fn test_box_as(&'static self, who: TestUser) -> TestBox {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        TestBox::create(self, who, &self.base.join(format!("t{n}")))
    }

    /// One `box` command as boxtest in a fresh store: `env.user_box().args(["info"]).run()`.
    pub fn user_box(&'static self) -> BoxCmd {
        self.test_box().cmd::<_, &str>([])
    }

    /// One `box` command as root in a fresh store.
    pub fn root_box(&'static self) -> BoxCmd {
        self.test_box_as(TestUser::Root).cmd::<_, &str>([])
    }

    /// One `box` command as `boxnosub` (no /etc/subuid or /etc/subgid entry) in a fresh store.
    pub fn nosub_box(&'static self) -> BoxCmd {
        self.test_box_as(TestUser::NoSub).cmd::<_, &str>([])
    }

    /// HTTP GET against the test registry (`/v2/...`): (status, body).
    pub fn registry_get(&self, path: &str) -> (u16, String) {
        registry::http_get(&self.registry, path)
            .unwrap_or_else(|e| panic!("GET http://{}{path}: {e}", self.registry))
    }
}

enum Setup {
    Skip(String),
    Failed(String),
}

fn progress(msg: &str) {
    say(&format!("harness: {msg}"));
}

/// One line on the real stderr in a single write (libtest neither captures nor splits it).
pub fn say(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

fn setup() -> Result<Env, Setup> {
    use Setup::{Failed, Skip};
    let hint = "run `sudo scripts/setup-test-host`, then the tests as root (`sudo scripts/test`)";
    if !nix::unistd::geteuid().is_root() {
        return Err(Skip(format!(
            "integration tests must run as root (they drop to boxtest): {hint}"
        )));
    }
    let boxtest =
        UserInfo::lookup("boxtest").ok_or_else(|| Skip(format!("no user boxtest: {hint}")))?;
    let boxnosub =
        UserInfo::lookup("boxnosub").ok_or_else(|| Skip(format!("no user boxnosub: {hint}")))?;
    let root = UserInfo::lookup("root").ok_or_else(|| Failed("no user root".into()))?;
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text.lines().any(|l| l.starts_with("boxtest:")) {
            return Err(Skip(format!("{file} has no range for boxtest: {hint}")));
        }
    }
    let tools = [
        "docker-registry",
        "skopeo",
        "umoci",
        "setpriv",
        "newuidmap",
        "newgidmap",
        "python3",
        "flock",
        "umount",
    ];
    let missing: Vec<&str> = tools.into_iter().filter(|t| which(t).is_none()).collect();
    if !missing.is_empty() {
        return Err(Skip(format!("missing {}: {hint}", missing.join(", "))));
    }

    testbox::remove_stale_bases();
    let base = PathBuf::from(format!("/tmp/box-it-{}", std::process::id()));
    if base.exists() {
        testbox::remove_tree(&base);
    }
    let mkdir = |p: &Path| {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(p)
            .and_then(|_| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| Failed(format!("cannot create {}: {e}", p.display())))
    };
    mkdir(&base.join("bin"))?;
    registry::register_cleanup(&base);

    let box_bin = base.join("bin/box");
    std::fs::copy(env!("CARGO_BIN_EXE_box"), &box_bin)
        .and_then(|_| std::fs::set_permissions(&box_bin, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| {
            Failed(format!(
                "cannot copy the box binary to {}: {e}",
                box_bin.display()
            ))
        })?;

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let images_dir = match std::env::var_os("BOX_TEST_IMAGES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // CARGO_BIN_EXE_box is <target>/<profile>/box.
            let bin = Path::new(env!("CARGO_BIN_EXE_box"));
            let target = bin.parent().and_then(Path::parent).unwrap_or(repo);
            target.join("test-images")
        }
    };
    progress(&format!(
        "building test images into {}",
        images_dir.display()
    ));
    run_script(Command::new(repo.join("scripts/build-test-images")).arg(&images_dir))
        .map_err(Failed)?;
    let has_alpine = std::fs::read_to_string(images_dir.join(".have-alpine"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);

    let port = registry::start(&base.join("registry")).map_err(Failed)?;
    let registry = format!("127.0.0.1:{port}");
    run_script(
        Command::new(repo.join("scripts/push-test-images"))
            .arg(port.to_string())
            .arg(&images_dir),
    )
    .map_err(Failed)?;
    progress(&format!(
        "registry {registry} ready; box is {}; alpine images: {}",
        box_bin.display(),
        if has_alpine {
            "yes"
        } else {
            "no (fixture absent)"
        }
    ));
    Ok(Env {
        box_bin,
        base,
        images_dir,
        registry,
        has_alpine,
        boxtest,
        boxnosub,
        root,
        counter: AtomicUsize::new(0),
    })
}

/// Run a set-up script; its output goes to the real stderr only when it fails.
fn run_script(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines().filter(|l| l.starts_with("SKIP")) {
        say(&format!("harness: {line}"));
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            stderr
        ))
    }
}

/// Prepare a test's background server: no stdin, stdout and stderr into `log`, and
/// PR_SET_PDEATHSIG=SIGKILL so it dies with the thread that spawns it.
pub fn background(cmd: &mut Command, log: std::fs::File) {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null()))
        .stderr(Stdio::from(log));
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// The path of `tool` on the usual PATH (the test process's PATH may be cargo's).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain([
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}
