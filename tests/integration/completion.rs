//! Tab completion in real shells, as boxtest, with the completions `scripts/install` puts
//! under a temporary PREFIX: bash (through bash-completion's loader when installed), zsh
//! (through $fpath and compinit) and fish (through $XDG_DATA_DIRS), each in its own tmux.
//!
//! The store is made by box's own writers (`storage::Store::commit_image`,
//! `container::Containers::create`, `Record::write_state`, `Volumes::create`): two image
//! records, two running containers (their pids are live `sleep`s), an exited and a created
//! one, a volume.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxctr::paths::Paths;
use boxctr::{container, storage, volume};

use crate::harness::{self, TestBox};

const RUNNING: &[&str] = &["web-running", "api-running"];
const NOT_RUNNING: &[&str] = &["db-exited", "job-created"];
const IMAGE_NAMES: &[&str] = &[
    "docker.io/library/alpine:latest",
    "127.0.0.1:5000/test/app:1",
];

struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Give `path` and everything below it to the test user (the writers ran as root).
fn chown_tree(path: &Path, tb: &TestBox) {
    let u = tb.user();
    std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid)).unwrap();
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), tb);
        }
    }
}

/// The store, written by box's own writers (image records, container records and states, a
/// volume), so a change of any of their formats reaches this test too.
fn fake_store(tb: &TestBox) -> Sleepers {
    let paths = Paths {
        data: tb.root(),
        runtime: tb.runroot(),
        config: tb.config_dir().join("box"),
    };
    let store = storage::Store::open_at(&paths.store(), &paths.data).unwrap();
    for (i, name) in IMAGE_NAMES.iter().enumerate() {
        let image = storage::Image {
            id: format!("{:x}", i + 10).repeat(64),
            names: vec![],
            repo_digests: vec![],
            manifest_digest: None,
            manifest_media_type: None,
            config: serde_json::from_value(serde_json::json!({
                "architecture": "amd64", "os": "linux",
                "config": {"Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": []}
            }))
            .unwrap(),
            diff_ids: vec![],
            layers: vec![],
            stored: 0,
            size: 0,
            layer_root: None,
        };
        store.commit_image(image, &[name.to_string()]).unwrap();
    }
    let containers = container::Containers::open(&paths).unwrap();
    let mut sleepers = Vec::new();
    for name in RUNNING.iter().chain(NOT_RUNNING) {
        let rec = containers
            .create(Some(name), |id, name| container::Config {
                id: id.to_string(),
                name: name.to_string(),
                image: "alpine".into(),
                image_name: "docker.io/library/alpine:latest".into(),
                image_id: format!("sha256:{}", "a".repeat(64)),
                created: "2024-01-01T00:00:00Z".into(),
                command: vec!["/bin/sh".into()],
                autoremove: false,
                labels: Default::default(),
                spec: Default::default(),
            })
            .unwrap();
        let state = if RUNNING.contains(name) {
            let child = Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id() as i32;
            sleepers.push(child);
            container::State {
                status: container::Status::Running,
                pid: Some(pid),
                pid_start: container::process_start_time(pid),
                ..Default::default()
            }
        } else if name.contains("exited") {
            container::State {
                status: container::Status::Exited,
                exit_code: Some(0),
                ..Default::default()
            }
        } else {
            // `create` wrote the `created` state.
            continue;
        };
        rec.write_state(&state).unwrap();
    }
    volume::Volumes::open(&paths)
        .unwrap()
        .create(Some("cache-vol"), Default::default())
        .unwrap();
    chown_tree(&paths.data, tb);
    chown_tree(&paths.runtime, tb);
    Sleepers(sleepers)
}

fn install(tb: &TestBox) -> PathBuf {
    let prefix = tb.dir().join("prefix");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install"))
        .arg(&prefix)
        .env("BOX_BIN", tb.env().box_bin())
        .env_remove("DESTDIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "bin/box",
        "share/man/man1/box-run.1",
        "share/man/man7/box-rootless.7",
        "share/bash-completion/completions/box",
        "share/zsh/site-functions/_box",
        "share/fish/vendor_completions.d/box.fish",
    ] {
        assert!(
            prefix.join(f).exists(),
            "scripts/install did not install {f}"
        );
    }
    prefix
}

/// One tmux server on a private socket, running one shell as the test user.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(tb: &TestBox, shell_line: &str, name: &str) -> Tmux {
        let socket = tb.dir().join(format!("tmux-{name}"));
        let st = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "50",
            ])
            .arg(shell_line)
            .status()
            .unwrap();
        assert!(st.success(), "tmux new-session failed");
        Tmux { socket }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-l", text]);
    }

    fn key(&self, key: &str) {
        self.tmux(&["send-keys", key]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    /// Wait until `ok(screen)`; the screen either way.
    fn wait(&self, timeout: Duration, ok: impl Fn(&str) -> bool) -> (bool, String) {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return (true, s);
            }
            if start.elapsed() > timeout {
                return (false, s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clear the line and the screen, and wait for a fresh prompt.
    fn reset(&self) {
        self.key("C-c");
        std::thread::sleep(Duration::from_millis(100));
        self.type_text("clear");
        self.key("Enter");
        let (ok, s) = self.wait(Duration::from_secs(5), |s| {
            let mut lines = s.lines().filter(|l| !l.trim().is_empty());
            lines.next().is_some_and(|l| l.starts_with("READY>")) && lines.next().is_none()
        });
        assert!(ok, "the shell did not come back to a prompt:\n{s}");
    }

    /// Type `line`, press Tab `tabs` times, and wait until `ok(screen)`.
    fn complete(
        &self,
        shell: &str,
        line: &str,
        tabs: usize,
        what: &str,
        ok: impl Fn(&str) -> bool,
    ) {
        self.reset();
        self.type_text(line);
        for _ in 0..tabs {
            std::thread::sleep(Duration::from_millis(150));
            self.key("Tab");
        }
        let (mut good, mut screen) = self.wait(Duration::from_secs(5), &ok);
        if !good && tabs == 1 {
            // On a loaded machine (the whole suite on 2 cores) a Tab pressed while the shell
            // was still busy can be lost: press it once more and wait longer.
            self.key("Tab");
            (good, screen) = self.wait(Duration::from_secs(15), &ok);
        }
        assert!(
            good,
            "{shell}: `{line}<Tab>` should {what}; the screen shows:\n{screen}"
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

/// The last non-empty line (the prompt with what is typed).
fn prompt_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .find(|l| l.starts_with("READY>"))
        .unwrap_or("")
}

fn check_shell(tb: &TestBox, prefix: &Path, shell: &str) {
    let home = tb.dir().join(format!("home-{shell}"));
    std::fs::create_dir_all(home.join(".config")).unwrap();
    for d in [home.clone(), home.join(".config")] {
        std::os::unix::fs::chown(&d, Some(tb.user().uid), Some(tb.user().gid)).unwrap();
    }
    let shell_cmd = match shell {
        "bash" => "exec bash --norc --noprofile",
        "zsh" => "exec zsh -f",
        _ => "exec fish",
    };
    let line = tb
        .sh(shell_cmd)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env(
            "XDG_DATA_DIRS",
            format!("{}:/usr/share", prefix.join("share").display()),
        )
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", prefix.join("bin").display()),
        )
        .env("TERM", "xterm")
        .env("LANG", "C.UTF-8")
        .shell_line();
    let tmux = Tmux::start(tb, &line, shell);
    let bash_loader = Path::new("/usr/share/bash-completion/bash_completion");
    let setup = match shell {
        "bash" if bash_loader.exists() => {
            format!("source {}; PS1='READY> '", bash_loader.display())
        }
        "bash" => {
            harness::note("bash-completion is not installed: sourcing the script directly");
            format!(
                "source {}; PS1='READY> '",
                prefix
                    .join("share/bash-completion/completions/box")
                    .display()
            )
        }
        "zsh" => format!(
            "fpath=({} $fpath); autoload -U compinit; compinit -u; PS1='READY> '",
            prefix.join("share/zsh/site-functions").display()
        ),
        _ => "set -g fish_greeting; function fish_prompt; echo -n 'READY> '; end".to_string(),
    };
    // Type only once the shell shows its first prompt (typeahead may be discarded).
    let (up, screen) = tmux.wait(Duration::from_secs(10), |s| !s.trim().is_empty());
    assert!(up, "{shell} did not start:\n{screen}");
    tmux.type_text(&setup);
    tmux.key("Enter");
    let (ready, screen) = tmux.wait(Duration::from_secs(10), |s| {
        s.lines().any(|l| l.starts_with("READY>"))
    });
    assert!(ready, "{shell} did not take the set-up line:\n{screen}");

    // Subcommands by prefix.
    let tabs = if shell == "bash" { 2 } else { 1 };
    tmux.complete(
        shell,
        "box r",
        tabs,
        "offer run, rm, rmi, restart and rename",
        |s| {
            ["run", "rmi", "restart", "rename"]
                .iter()
                .all(|w| s.contains(w))
        },
    );
    // A long flag through its prefix.
    tmux.complete(shell, "box run --net", 1, "complete --network", |s| {
        prompt_line(s).contains("box run --network")
    });
    // Only running containers for exec.
    tmux.complete(
        shell,
        "box exec ",
        tabs,
        "offer only the running containers",
        |s| RUNNING.iter().all(|n| s.contains(n)) && !NOT_RUNNING.iter().any(|n| s.contains(n)),
    );
    // All containers for rm (name prefix narrows).
    tmux.complete(shell, "box rm db", 1, "complete db-exited", |s| {
        prompt_line(s).contains("box rm db-exited")
    });
    // Local images for rmi.
    tmux.complete(shell, "box rmi ", tabs, "offer the local images", |s| {
        s.contains("alpine:latest") && s.contains("127.0.0.1:5000/test/app:1")
    });
    // Enumerable values.
    tmux.complete(shell, "box kill -s TE", 1, "complete TERM", |s| {
        prompt_line(s).contains("box kill -s TERM")
    });
    tmux.complete(
        shell,
        "box run --network=container:web",
        1,
        "complete the running container",
        |s| prompt_line(s).contains("--network=container:web-running"),
    );
}

#[test]
fn tab_completes_in_bash_zsh_and_fish_as_boxtest() {
    let Some(env) = harness::env() else { return };
    if harness::which("tmux").is_none() {
        harness::skip("tmux is not installed");
        return;
    }
    let tb = env.test_box();
    let _sleepers = fake_store(&tb);
    let prefix = install(&tb);
    let mut tried = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        if harness::which(shell).is_none() {
            harness::skip(&format!(
                "{shell} is not installed: not checking its completion"
            ));
            continue;
        }
        check_shell(&tb, &prefix, shell);
        tried.push(shell);
    }
    assert!(tried.contains(&"bash"), "bash is needed for this test");
    harness::note(&format!("completion checked in {}", tried.join(", ")));
}

/// How long one completion request takes (a benchmark, not an assert): printed as a NOTE.
#[test]
fn completion_request_timing() {
    let Some(env) = harness::env() else { return };
    let tb = env.test_box();
    let _sleepers = fake_store(&tb);
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let out = tb
            .cmd(["--", "box", "exec", ""])
            .env("BOX_COMPLETE", "fish")
            .run();
        times.push(start.elapsed());
        out.assert_success().stdout_contains("web-running");
    }
    times.sort();
    harness::note(&format!(
        "completion request (box exec <Tab>, debug build, via setpriv): median {:?}, max {:?}",
        times[times.len() / 2],
        times[times.len() - 1]
    ));
}

/// The same answers from a store box itself wrote: pulled image, a running and an exited
/// container, a volume. Catches drift between the records and what completion reads.
#[test]
fn live_names_from_a_store_box_wrote() {
    let env = require_env!(alpine);
    let tb = env.test_box();
    let image = env.image(harness::images::ALPINE);
    tb.cmd(["pull", "-q", &image]).run().assert_success();
    let complete = |line: &[&str]| {
        let mut args = vec!["--", "box"];
        args.extend_from_slice(line);
        let out = tb.cmd(&args).env("BOX_COMPLETE", "fish").run();
        out.assert_success();
        out.out()
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect::<Vec<String>>()
    };
    let familiar = image.clone();
    assert!(
        complete(&["rmi", ""]).contains(&familiar),
        "box rmi <Tab> should offer {familiar}: {:?}",
        complete(&["rmi", ""])
    );
    let run = tb
        .cmd([
            "run",
            "-d",
            "--name",
            "live-up",
            "--network",
            "none",
            "-v",
            "live-vol:/data",
            &image,
            "sleep",
            "300",
        ])
        .run();
    run.assert_success();
    tb.cmd([
        "run",
        "--name",
        "live-done",
        "--network",
        "none",
        &image,
        "true",
    ])
    .run()
    .assert_success();
    let exec = complete(&["exec", ""]);
    assert!(
        exec.contains(&"live-up".to_string()) && !exec.contains(&"live-done".to_string()),
        "box exec <Tab> should offer live-up only: {exec:?}"
    );
    let rm = complete(&["rm", "live-"]);
    assert!(
        rm.contains(&"live-up".to_string()) && rm.contains(&"live-done".to_string()),
        "box rm live-<Tab> should offer both: {rm:?}"
    );
    let start = complete(&["start", ""]);
    assert!(
        start.contains(&"live-done".to_string()) && !start.contains(&"live-up".to_string()),
        "box start <Tab> should offer the stopped one: {start:?}"
    );
    let vols = complete(&["volume", "rm", ""]);
    assert!(
        vols.contains(&"live-vol".to_string()),
        "box volume rm <Tab>: {vols:?}"
    );
    tb.cmd(["rm", "-f", "live-up", "live-done"]).run();
}
