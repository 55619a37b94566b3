//! Shell completion: static registration scripts that call back into `box` for every Tab.
//!
//! The scripts in `completions/` (printed by `box completion SHELL`) run
//! `BOX_COMPLETE=<shell> box -- <words typed so far>`; [`handle_env`], called first thing in
//! `main`, answers that request and exits before any other work. Subcommands, flags and
//! enumerable values come from the one clap definition (clap_complete's engine); live names
//! (images, containers, volumes, registries) come from reading the per-user store's files
//! directly: no lock is taken, nothing is written, the network is never touched.
//!
//! `box __internal complete -- box exec ''` prints the same candidates as `value<TAB>help`
//! lines, for tests and debugging.
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use clap::Command;
use clap_complete::engine::{
    ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter,
};
use clap_complete::env::{EnvCompleter, Shells};

use crate::paths::Paths;

/// The environment variable that turns an invocation into a completion request.
pub const ENV_VAR: &str = "BOX_COMPLETE";

/// The shells `box completion` supports, in `clap_complete::Shell` terms.
const SHELLS: Shells<'static> = Shells(&[
    &Adapter(clap_complete::Shell::Bash),
    &Adapter(clap_complete::Shell::Zsh),
    &Adapter(clap_complete::Shell::Fish),
    &Adapter(clap_complete::Shell::Elvish),
    &Adapter(clap_complete::Shell::PowerShell),
]);

/// Answer a completion request (`BOX_COMPLETE=<shell> box -- WORDS`) and exit; return
/// without doing anything when `BOX_COMPLETE` is unset, empty or `0`.
pub fn handle_env() {
    // The factory only names the program: `complete` builds its own annotated command.
    clap_complete::CompleteEnv::with_factory(|| Command::new("box"))
        .var(ENV_VAR)
        .bin("box")
        .completer("box")
        .shells(SHELLS)
        .complete();
}

/// The registration script for `shell`: what `box completion SHELL` prints and what
/// `completions/` holds.
pub fn script(shell: clap_complete::Shell) -> String {
    let mut buf = Vec::new();
    Adapter(shell)
        .write_registration(ENV_VAR, "box", "box", "box", &mut buf)
        .expect("writing to a Vec cannot fail");
    String::from_utf8(buf).expect("scripts are UTF-8")
}

/// The candidates for `words[index]` (words[0] is `box`).
pub fn complete(
    words: Vec<OsString>,
    index: usize,
    current_dir: Option<&Path>,
) -> std::io::Result<Vec<CompletionCandidate>> {
    let live = Arc::new(Live::default());
    let mut cmd = annotate(crate::cli::args::command(), &[], &live);
    cmd.build();
    let typed = scan(&cmd, &words, index);
    if typed.in_container_command {
        // Everything after the image (run/create) or container (exec) is the container's
        // own command line: nothing of box's applies there.
        return Ok(Vec::new());
    }
    let current = words
        .get(index)
        .map(|w| w.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The engine keeps one candidate per subcommand, the alphabetically first of its name
    // and visible aliases (`list` for `ps`): offer the name itself where it matches.
    let mut names = std::collections::HashMap::new();
    let mut here = &cmd;
    for name in &typed.command {
        match here.find_subcommand(name) {
            Some(sub) => here = sub,
            None => break,
        }
    }
    for sub in here.get_subcommands() {
        if sub.get_name().starts_with(&current) {
            for alias in sub.get_visible_aliases() {
                names.insert(alias.to_string(), sub.get_name().to_string());
            }
        }
    }
    let _ = live.typed.set(typed);
    let mut out = clap_complete::engine::complete(&mut cmd, words, index, current_dir)?;
    for c in out.iter_mut() {
        if let Some(name) = names.get(&*c.get_value().to_string_lossy()) {
            *c = CompletionCandidate::new(name).help(c.get_help().cloned());
        }
    }
    // Flags only when a flag is being typed (as docker and podman do): `box exec <Tab>`
    // offers containers, not `--interactive`.
    if !current.starts_with('-') {
        out.retain(|c| !c.get_value().to_string_lossy().starts_with('-'));
    }
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// Which argument completes what
// ------------------------------------------------------------------------------------------

/// What an argument's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Containers(Want),
    /// `NAME:` for `box cp`, then host paths.
    CpEndpoint,
    Images,
    Volumes,
    /// Containers, images and volumes (narrowed by a `--type` typed before).
    AnyObject,
    /// `-v SRC:DEST`: volume names and host paths.
    VolumeSpec,
    Network,
    Format,
    Signal,
    Platform,
    Restart,
    SystemdRestart,
    Capability,
    SecurityOpt,
    PsFilter,
    Registry,
    /// `import --change`: a Dockerfile instruction.
    Instruction,
}

/// Which containers make sense for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    All,
    Running,
    /// Created or exited: what `start` can start.
    NotRunning,
}

/// Commands that only act on running containers.
const RUNNING_ONLY: &[&str] = &["exec", "stop", "kill", "pause", "unpause", "top", "stats"];

/// Decide how `arg` of the command at `path` (subcommand names below `box`) completes.
fn classify(path: &[String], arg: &clap::Arg) -> Option<Kind> {
    let leaf = path.last().map(String::as_str).unwrap_or("");
    let parent = if path.len() >= 2 {
        path[path.len() - 2].as_str()
    } else {
        ""
    };
    let value_name = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|s| s.as_str())
        .unwrap_or("");
    let id = arg.get_id().as_str();
    if arg.is_positional() {
        return match (parent, leaf, value_name) {
            (_, _, "CONTAINER") if RUNNING_ONLY.contains(&leaf) => {
                Some(Kind::Containers(Want::Running))
            }
            (_, "start", "CONTAINER") => Some(Kind::Containers(Want::NotRunning)),
            (_, _, "CONTAINER") => Some(Kind::Containers(Want::All)),
            (_, "cp", "SRC" | "DEST") => Some(Kind::CpEndpoint),
            (_, _, "IMAGE" | "REPOSITORY") => Some(Kind::Images),
            ("image", "inspect", _) => Some(Kind::Images),
            ("container", "inspect", _) => Some(Kind::Containers(Want::All)),
            ("volume", "rm" | "inspect", _) => Some(Kind::Volumes),
            ("", "inspect", _) => Some(Kind::AnyObject),
            (_, "login" | "logout", "REGISTRY") => Some(Kind::Registry),
            _ => None,
        };
    }
    match (leaf, id) {
        (_, "network") => Some(Kind::Network),
        (_, "volume") => Some(Kind::VolumeSpec),
        (_, "signal" | "stop_signal") => Some(Kind::Signal),
        (_, "platform") => Some(Kind::Platform),
        (_, "restart") => Some(Kind::Restart),
        ("systemd", "restart_policy") => Some(Kind::SystemdRestart),
        (_, "cap_add" | "cap_drop") => Some(Kind::Capability),
        (_, "security_opt") => Some(Kind::SecurityOpt),
        ("import", "change") => Some(Kind::Instruction),
        (_, "filter") if matches!(leaf, "ps" | "list") => Some(Kind::PsFilter),
        (_, "format") if value_name == "FORMAT" => Some(Kind::Format),
        _ => None,
    }
}

/// Attach live completers to every argument of `cmd` and its subcommands.
fn annotate(cmd: Command, path: &[String], live: &Arc<Live>) -> Command {
    // mut_args and mut_subcommands keep the order (positional indexes depend on it).
    let cmd = cmd.mut_args(|a| match classify(path, &a) {
        Some(kind) => {
            let live = live.clone();
            a.add(ArgValueCompleter::new(move |current: &OsStr| {
                live.candidates(kind, &current.to_string_lossy())
            }))
        }
        None => a,
    });
    cmd.mut_subcommands(|sub| {
        let mut sub_path = path.to_vec();
        sub_path.push(sub.get_name().to_string());
        annotate(sub, &sub_path, live)
    })
}

// ------------------------------------------------------------------------------------------
// What the words typed so far say
// ------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Typed {
    root: Option<PathBuf>,
    runroot: Option<PathBuf>,
    /// `inspect --type T`.
    kind: Option<String>,
    /// The cursor is in the container's command line (after `run IMAGE`, `exec CONTAINER`).
    in_container_command: bool,
    /// The subcommand names typed so far (`["image", "rm"]`).
    command: Vec<String>,
}

/// Walk `words[1..index]` like the parser would: follow subcommands, skip option values,
/// count positionals, and note the options that change where names come from.
fn scan(root_cmd: &Command, words: &[OsString], index: usize) -> Typed {
    let mut typed = Typed::default();
    let mut cmd = root_cmd;
    let mut positional = 0usize;
    let mut escaped = false;
    let mut i = 1;
    let record = |typed: &mut Typed, arg: &clap::Arg, value: &OsStr| match arg.get_id().as_str() {
        "root" => typed.root = Some(PathBuf::from(value)),
        "runroot" => typed.runroot = Some(PathBuf::from(value)),
        "kind" => typed.kind = Some(value.to_string_lossy().into_owned()),
        _ => {}
    };
    while i < index.min(words.len()) {
        let word = words[i].to_string_lossy();
        i += 1;
        if !escaped && word == "--" {
            escaped = true;
            continue;
        }
        if !escaped && word.len() > 1 && word.starts_with("--") {
            let (flag, value) = match word[2..].split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (&word[2..], None),
            };
            let Some(arg) = cmd.get_arguments().find(|a| {
                a.get_long_and_visible_aliases()
                    .is_some_and(|l| l.contains(&flag))
                    || a.get_all_aliases().is_some_and(|l| l.contains(&flag))
            }) else {
                continue;
            };
            if takes_value(arg) {
                match value {
                    Some(v) => record(&mut typed, arg, OsStr::new(v)),
                    None if arg.get_num_args().is_some_and(|n| n.min_values() == 0) => {}
                    None if i < index => {
                        record(&mut typed, arg, &words[i]);
                        i += 1;
                    }
                    None => {}
                }
            }
            continue;
        }
        if !escaped && word.len() > 1 && word.starts_with('-') {
            let chars: Vec<char> = word[1..].chars().collect();
            for (k, c) in chars.iter().enumerate() {
                let Some(arg) = cmd.get_arguments().find(|a| {
                    a.get_short_and_visible_aliases()
                        .is_some_and(|s| s.contains(c))
                }) else {
                    break;
                };
                if takes_value(arg) {
                    let rest: String = chars[k + 1..].iter().collect();
                    let rest = rest.strip_prefix('=').unwrap_or(&rest).to_string();
                    if !rest.is_empty() {
                        record(&mut typed, arg, OsStr::new(&rest));
                    } else if i < index {
                        record(&mut typed, arg, &words[i]);
                        i += 1;
                    }
                    break;
                }
            }
            continue;
        }
        if positional == 0
            && !escaped
            && let Some(sub) = cmd.find_subcommand(word.as_ref())
        {
            cmd = sub;
            typed.command.push(sub.get_name().to_string());
            continue;
        }
        positional += 1;
        // The positional after this one takes the rest of the line verbatim.
        let next = cmd
            .get_positionals()
            .find(|p| p.get_index() == Some(positional + 1));
        if next.is_some_and(|p| p.is_trailing_var_arg_set()) {
            typed.in_container_command = index >= i;
            break;
        }
    }
    typed
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

// ------------------------------------------------------------------------------------------
// Live names: read-only, lock-free reads of the store's files
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Live {
    typed: OnceLock<Typed>,
    paths: OnceLock<Option<Paths>>,
    images: OnceLock<Vec<ImageEntry>>,
    containers: OnceLock<Vec<ContainerEntry>>,
}

#[derive(Debug, Clone)]
struct ImageEntry {
    id: String,
    names: Vec<String>,
}

#[derive(Debug, Clone)]
struct ContainerEntry {
    id: String,
    name: String,
    image: String,
    status: String,
}

impl ContainerEntry {
    fn running(&self) -> bool {
        self.status == "running" || self.status == "paused"
    }
}

impl Live {
    fn paths(&self) -> Option<&Paths> {
        self.paths
            .get_or_init(|| {
                let typed = self.typed.get();
                let env = |name: &str| {
                    std::env::var_os(name)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                };
                let root = typed
                    .and_then(|t| t.root.clone())
                    .or_else(|| env("BOX_ROOT"));
                let runroot = typed
                    .and_then(|t| t.runroot.clone())
                    .or_else(|| env("BOX_RUNROOT"));
                Paths::resolve(root.as_deref(), runroot.as_deref()).ok()
            })
            .as_ref()
    }

    fn images(&self) -> &[ImageEntry] {
        self.images
            .get_or_init(|| self.paths().map(list_images).unwrap_or_default())
    }

    fn containers(&self) -> &[ContainerEntry] {
        self.containers
            .get_or_init(|| self.paths().map(list_containers).unwrap_or_default())
    }

    fn candidates(&self, kind: Kind, current: &str) -> Vec<CompletionCandidate> {
        let mut out = match kind {
            Kind::Containers(want) => self.container_candidates(want, current, ""),
            Kind::CpEndpoint => {
                if current.contains(':') {
                    // A path inside the container: not readable without entering it.
                    return Vec::new();
                }
                let mut v = self.container_candidates(Want::All, current, ":");
                v.extend(PathCompleter::any().complete(OsStr::new(current)));
                return v;
            }
            Kind::Images => self.image_candidates(current),
            Kind::Volumes => volume_candidates(self.paths(), ""),
            Kind::AnyObject => {
                let kind = self.typed.get().and_then(|t| t.kind.clone());
                let mut v = Vec::new();
                if kind.as_deref().is_none_or(|k| k == "container") {
                    v.extend(self.container_candidates(Want::All, current, ""));
                }
                if kind.as_deref().is_none_or(|k| k == "image") {
                    v.extend(self.image_candidates(current));
                }
                if kind.as_deref().is_none_or(|k| k == "volume") {
                    v.extend(volume_candidates(self.paths(), ""));
                }
                v
            }
            Kind::VolumeSpec => {
                if current.contains(':') {
                    return Vec::new();
                }
                let mut v = volume_candidates(self.paths(), ":");
                v.retain(|c| c.get_value().to_string_lossy().starts_with(current));
                v.extend(PathCompleter::any().complete(OsStr::new(current)));
                return v;
            }
            Kind::Network => {
                let mut v = fixed(&[
                    ("default", "pasta when installed, else slirp4netns"),
                    ("pasta", "user-mode networking with pasta (passt)"),
                    ("slirp4netns", "user-mode networking with slirp4netns"),
                    ("none", "only a loopback interface"),
                    ("host", "the host's network namespace"),
                    (
                        "container:",
                        "join the network namespace of a running container",
                    ),
                ]);
                if let Some(rest) = current.strip_prefix("container:") {
                    v = self
                        .container_candidates(Want::Running, rest, "")
                        .into_iter()
                        .map(|c| c.add_prefix("container:"))
                        .collect();
                }
                v
            }
            Kind::Format => fixed(&[
                ("table", "aligned columns for people"),
                ("json", "JSON for programs"),
            ]),
            Kind::Signal => {
                let sig = current.len() >= 3 && current[..3].eq_ignore_ascii_case("SIG");
                crate::cli::args::SIGNALS
                    .iter()
                    .map(|s| {
                        CompletionCandidate::new(if sig {
                            format!("SIG{s}")
                        } else {
                            s.to_string()
                        })
                    })
                    .collect()
            }
            Kind::Platform => PLATFORMS.iter().map(CompletionCandidate::new).collect(),
            Kind::Restart => fixed(&[
                ("no", "never restart"),
                (
                    "on-failure",
                    "restart when it exits non-zero (on-failure:N at most N times)",
                ),
                ("always", "restart whenever it exits"),
            ]),
            Kind::SystemdRestart => crate::systemd::unit::RESTART_POLICIES
                .iter()
                .map(CompletionCandidate::new)
                .collect(),
            Kind::Capability => {
                let mut v = vec![CompletionCandidate::new("ALL")];
                v.extend(CAPABILITIES.iter().map(CompletionCandidate::new));
                v
            }
            Kind::Instruction => fixed(&[
                ("CMD", "the default command, e.g. CMD [\"/bin/sh\"]"),
                ("ENTRYPOINT", "the entrypoint, e.g. ENTRYPOINT [\"/app\"]"),
                ("ENV", "an environment variable, ENV KEY=VALUE"),
                ("EXPOSE", "a port, EXPOSE 80/tcp"),
                ("LABEL", "metadata, LABEL KEY=VALUE"),
                ("USER", "the user to run as"),
                ("WORKDIR", "the working directory"),
                ("STOPSIGNAL", "the signal that stops the container"),
                ("VOLUME", "an anonymous volume"),
            ]),
            Kind::SecurityOpt => fixed(&[
                (
                    "no-new-privileges",
                    "processes cannot gain privileges (setuid, file caps)",
                ),
                ("seccomp=unconfined", "no seccomp filter"),
            ]),
            Kind::PsFilter => self.ps_filter_candidates(current),
            Kind::Registry => registry_candidates(self.paths()),
        };
        out.retain(|c| c.get_value().to_string_lossy().starts_with(current));
        out
    }

    fn container_candidates(
        &self,
        want: Want,
        current: &str,
        suffix: &str,
    ) -> Vec<CompletionCandidate> {
        let wanted = self.containers().iter().filter(|c| match want {
            Want::All => true,
            Want::Running => c.running(),
            Want::NotRunning => !c.running(),
        });
        let hex = !current.is_empty() && current.bytes().all(|b| b.is_ascii_hexdigit());
        let mut out = Vec::new();
        for c in wanted {
            if c.name.starts_with(current) {
                let help = format!("{} ({})", c.image, c.status);
                out.push(
                    CompletionCandidate::new(format!("{}{suffix}", c.name)).help(Some(help.into())),
                );
            } else if hex && c.id.starts_with(current) {
                let id = if current.len() > 12 {
                    &c.id
                } else {
                    &c.id[..12.min(c.id.len())]
                };
                out.push(
                    CompletionCandidate::new(format!("{id}{suffix}"))
                        .help(Some(c.name.clone().into())),
                );
            }
        }
        out
    }

    fn image_candidates(&self, current: &str) -> Vec<CompletionCandidate> {
        let hex = !current.is_empty() && current.bytes().all(|b| b.is_ascii_hexdigit());
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for image in self.images() {
            let short = &image.id[..12.min(image.id.len())];
            for name in &image.names {
                let familiar = familiar(name);
                let value = if familiar.starts_with(current) || !name.starts_with(current) {
                    familiar
                } else {
                    name.clone()
                };
                if seen.insert(value.clone()) {
                    out.push(CompletionCandidate::new(value).help(Some(short.to_string().into())));
                }
            }
            if image.names.is_empty() || (hex && image.id.starts_with(current)) {
                let id = if current.len() > 12 { &image.id } else { short };
                let help = image
                    .names
                    .first()
                    .map(|n| familiar(n))
                    .unwrap_or_else(|| "<none>".into());
                if seen.insert(id.to_string()) {
                    out.push(CompletionCandidate::new(id).help(Some(help.into())));
                }
            }
        }
        out.sort_by(|a, b| a.get_value().cmp(b.get_value()));
        out
    }

    fn ps_filter_candidates(&self, current: &str) -> Vec<CompletionCandidate> {
        if let Some(v) = current.strip_prefix("status=") {
            let _ = v;
            return ["created", "running", "paused", "exited"]
                .iter()
                .map(|s| CompletionCandidate::new(format!("status={s}")))
                .collect();
        }
        if let Some(rest) = current.strip_prefix("name=") {
            return self
                .container_candidates(Want::All, rest, "")
                .into_iter()
                .map(|c| c.add_prefix("name="))
                .collect();
        }
        if let Some(rest) = current.strip_prefix("ancestor=") {
            return self
                .image_candidates(rest)
                .into_iter()
                .map(|c| c.add_prefix("ancestor="))
                .collect();
        }
        fixed(&[
            ("status=", "created, running, paused or exited"),
            ("name=", "container name"),
            ("id=", "container id (prefix)"),
            ("ancestor=", "image the container was created from"),
            ("label=", "KEY or KEY=VALUE"),
        ])
    }
}

fn fixed(values: &[(&str, &str)]) -> Vec<CompletionCandidate> {
    values
        .iter()
        .map(|(v, h)| CompletionCandidate::new(v).help(Some(h.to_string().into())))
        .collect()
}

/// `docker.io/library/alpine:latest` → `alpine:latest`, `docker.io/u/app:1` → `u/app:1`.
fn familiar(name: &str) -> String {
    match name.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest).to_string(),
        None => name.to_string(),
    }
}

/// Platforms offered for `--platform` (any os/arch[/variant] is accepted).
const PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm64/v8",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
];

/// Capability names for `--cap-add`/`--cap-drop`, as docker spells them.
const CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// Image records: `<data>/storage/images/<config hex>.json`, `id` and `names` only.
fn list_images(paths: &Paths) -> Vec<ImageEntry> {
    #[derive(serde::Deserialize)]
    struct Record {
        id: String,
        #[serde(default)]
        names: Vec<String>,
    }
    let dir = paths.store().join("images");
    let mut out: Vec<ImageEntry> = read_dir_sorted(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .filter_map(|n| {
            let bytes = std::fs::read(dir.join(&n)).ok()?;
            let r: Record = serde_json::from_slice(&bytes).ok()?;
            Some(ImageEntry {
                id: r.id,
                names: r.names,
            })
        })
        .collect();
    out.sort_by(|a, b| a.names.cmp(&b.names).then(a.id.cmp(&b.id)));
    out
}

/// Container records: `<data>/containers/<id>/config.json` (`id`, `name`, `image`) and
/// `state.json` (`status`, `pid`, `pid_start`). A `running` record whose process is gone is
/// reported as exited, as `box ps` does.
fn list_containers(paths: &Paths) -> Vec<ContainerEntry> {
    #[derive(serde::Deserialize)]
    struct Config {
        id: String,
        name: String,
        #[serde(default)]
        image: String,
    }
    #[derive(serde::Deserialize, Default)]
    struct State {
        #[serde(default)]
        status: String,
        #[serde(default)]
        pid: Option<i32>,
        #[serde(default)]
        pid_start: Option<u64>,
    }
    let dir = paths.containers();
    let mut out: Vec<ContainerEntry> = read_dir_sorted(&dir)
        .into_iter()
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter_map(|n| {
            let cdir = dir.join(&n);
            let config: Config =
                serde_json::from_slice(&std::fs::read(cdir.join("config.json")).ok()?).ok()?;
            let state: State = std::fs::read(cdir.join("state.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let mut status = if state.status.is_empty() {
                "created".to_string()
            } else {
                state.status.to_ascii_lowercase()
            };
            if (status == "running" || status == "paused") && !alive(state.pid, state.pid_start) {
                status = "exited".into();
            }
            Some(ContainerEntry {
                id: config.id,
                name: config.name,
                image: config.image,
                status,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether `pid` is alive and (when known) still the process that started at `start`.
fn alive(pid: Option<i32>, start: Option<u64>) -> bool {
    match (pid, start) {
        (Some(pid), Some(start)) => crate::container::process_start_time(pid) == Some(start),
        (Some(pid), None) => crate::container::process_start_time(pid).is_some(),
        _ => false,
    }
}

/// Named volumes: `<data>/volumes/<name>/` holding `volume.json` or `_data/`.
fn volume_candidates(paths: Option<&Paths>, suffix: &str) -> Vec<CompletionCandidate> {
    let Some(paths) = paths else {
        return Vec::new();
    };
    let dir = paths.volumes();
    read_dir_sorted(&dir)
        .into_iter()
        .filter(|n| {
            // `volume.json` may be missing where `-v NAME:` created it: box adopts `_data`.
            !n.starts_with('.')
                && (dir.join(n).join("volume.json").is_file() || dir.join(n).join("_data").is_dir())
        })
        .map(|n| CompletionCandidate::new(format!("{n}{suffix}")).help(Some("volume".into())))
        .collect()
}

/// Registries with stored credentials (the keys of auth.json), and docker.io.
fn registry_candidates(paths: Option<&Paths>) -> Vec<CompletionCandidate> {
    let mut names = BTreeSet::new();
    if let Some(paths) = paths
        && let Ok(bytes) = std::fs::read(paths.auth_file())
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && let Some(auths) = v.get("auths").and_then(|a| a.as_object())
    {
        names.extend(auths.keys().cloned());
    }
    names.insert("docker.io".to_string());
    names.into_iter().map(CompletionCandidate::new).collect()
}

fn read_dir_sorted(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

// ------------------------------------------------------------------------------------------
// Shell adapters
// ------------------------------------------------------------------------------------------

/// One shell's side of the protocol: the registration script, and how it passes the words
/// and wants the answer.
struct Adapter(clap_complete::Shell);

impl EnvCompleter for Adapter {
    fn name(&self) -> &'static str {
        match self.0 {
            clap_complete::Shell::Bash => "bash",
            clap_complete::Shell::Zsh => "zsh",
            clap_complete::Shell::Fish => "fish",
            clap_complete::Shell::Elvish => "elvish",
            _ => "powershell",
        }
    }

    fn is(&self, name: &str) -> bool {
        name == self.name() || (self.name() == "powershell" && name == "pwsh")
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        let header = |buf: &mut dyn Write, comment: &str| {
            writeln!(
                buf,
                "{comment} {bin} completion for {}: generated by `box completion {}`, do not edit.\n\
                 {comment} It asks `{completer}` itself ({var}={} {completer} -- WORDS) for every Tab.",
                self.name(),
                self.name(),
                self.name()
            )
        };
        match self.0 {
            clap_complete::Shell::Bash => {
                header(buf, "#")?;
                let script = BASH_SCRIPT
                    .replace("NAME", &name.replace('-', "_"))
                    .replace("VAR", var)
                    .replace("BIN", bin)
                    .replace("COMPLETER", completer);
                buf.write_all(script.as_bytes())
            }
            clap_complete::Shell::Zsh => {
                writeln!(buf, "#compdef {bin}")?;
                header(buf, "#")?;
                let script = ZSH_SCRIPT
                    .replace("NAME", name)
                    .replace("VAR", var)
                    .replace("BIN", bin)
                    .replace("COMPLETER", completer);
                buf.write_all(script.as_bytes())
            }
            clap_complete::Shell::Fish => {
                header(buf, "#")?;
                clap_complete::env::Fish.write_registration(var, name, bin, completer, buf)
            }
            clap_complete::Shell::Elvish => {
                header(buf, "#")?;
                clap_complete::env::Elvish.write_registration(var, name, bin, completer, buf)
            }
            _ => {
                header(buf, "#")?;
                clap_complete::env::Powershell.write_registration(var, name, bin, completer, buf)
            }
        }
    }

    fn write_complete(
        &self,
        _cmd: &mut Command,
        mut args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn Write,
    ) -> std::io::Result<()> {
        let env_index = || {
            std::env::var("_CLAP_COMPLETE_INDEX")
                .ok()
                .and_then(|i| i.parse::<usize>().ok())
                .unwrap_or_default()
        };
        let ifs = std::env::var("_CLAP_IFS").unwrap_or_else(|_| "\n".into());
        let index = match self.0 {
            clap_complete::Shell::Bash
            | clap_complete::Shell::Zsh
            | clap_complete::Shell::Elvish => env_index(),
            _ => args.len().saturating_sub(1),
        };
        while args.len() <= index {
            args.push(OsString::new());
        }
        let candidates = complete(args, index, current_dir)?;
        let help = |c: &CompletionCandidate| {
            c.get_help()
                .map(|h| h.to_string().lines().next().unwrap_or_default().to_string())
        };
        match self.0 {
            clap_complete::Shell::Bash | clap_complete::Shell::Elvish => {
                let values: Vec<String> = candidates
                    .iter()
                    .map(|c| c.get_value().to_string_lossy().into_owned())
                    .collect();
                write!(buf, "{}", values.join(&ifs))
            }
            clap_complete::Shell::Zsh => {
                // One line per candidate: `n` (no space after it) or `s`, then `value:help`
                // with `:` and `\` in the value escaped for _describe.
                let values: Vec<String> = candidates
                    .iter()
                    .map(|c| {
                        let raw = c.get_value().to_string_lossy();
                        let flag = if raw.ends_with(['/', '=', ':']) {
                            'n'
                        } else {
                            's'
                        };
                        let v = raw.replace('\\', "\\\\").replace(':', "\\:");
                        match help(c) {
                            Some(h) => format!("{flag}{v}:{}", h.replace('\\', "\\\\")),
                            None => format!("{flag}{v}"),
                        }
                    })
                    .collect();
                write!(buf, "{}", values.join(&ifs))
            }
            _ => {
                for c in &candidates {
                    write!(buf, "{}", c.get_value().to_string_lossy())?;
                    if let Some(h) = help(c) {
                        write!(buf, "\t{h}")?;
                    }
                    writeln!(buf)?;
                }
                Ok(())
            }
        }
    }
}

/// Bash: rebuild the words from the line up to the cursor (COMP_WORDS splits at `=` and
/// `:`, which would hide `--network=container:NAME` and `NAME:PATH` from box), ask box, and
/// strip what bash does not consider part of the current word.
const BASH_SCRIPT: &str = r#"_NAME_complete() {
    local line="${COMP_LINE:0:COMP_POINT}"
    local -a words
    read -r -a words <<< "$line"
    if [[ -z $line || $line =~ [[:space:]]$ ]]; then
        words+=("")
    fi
    local index=$(( ${#words[@]} - 1 ))
    local word="${words[index]}"
    local cur="$2"
    local strip="${word%"$cur"}"
    local IFS=$'\013'
    local -a reply
    reply=( $(_CLAP_IFS="$IFS" _CLAP_COMPLETE_INDEX="$index" VAR=bash "COMPLETER" -- "${words[@]}" 2>/dev/null) ) || return 0
    COMPREPLY=()
    local r
    for r in "${reply[@]}"; do
        COMPREPLY+=("${r#"$strip"}")
    done
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} =~ [=/:]$ ]]; then
        compopt -o nospace 2>/dev/null
    fi
}
if [[ ${BASH_VERSINFO[0]} -gt 4 || ( ${BASH_VERSINFO[0]} -eq 4 && ${BASH_VERSINFO[1]} -ge 4 ) ]]; then
    complete -o nosort -F _NAME_complete BIN
else
    complete -F _NAME_complete BIN
fi
"#;

/// Zsh: works both sourced and autoloaded from `$fpath` as `_box`.
const ZSH_SCRIPT: &str = r#"_NAME() {
    local -a completions nospace space
    local completion
    completions=("${(@f)$(_CLAP_IFS=$'\n' _CLAP_COMPLETE_INDEX=$(( CURRENT - 1 )) VAR=zsh "COMPLETER" -- "${words[@]}" 2>/dev/null)}")
    for completion in $completions; do
        case $completion in
            n*) nospace+=("${completion#n}") ;;
            s*) space+=("${completion#s}") ;;
        esac
    done
    (( ${#nospace} )) && _describe -V 'values' nospace -S ''
    (( ${#space} )) && _describe -V 'values' space
    return 0
}
if [[ "$funcstack[1]" == "_NAME" ]]; then
    _NAME "$@"
else
    compdef _NAME BIN
fi
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        let mut w: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        if line.ends_with(' ') {
            w.pop();
            w.push(OsString::new());
        }
        w
    }

    fn values(line: &str) -> Vec<String> {
        let w = words(line);
        let index = w.len() - 1;
        complete(w, index, None)
            .unwrap()
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn subcommands_by_prefix() {
        let v = values("box r");
        for c in ["run", "rm", "rmi", "restart", "rename"] {
            assert!(v.contains(&c.to_string()), "{c} missing from {v:?}");
        }
        assert!(!v.iter().any(|c| c.starts_with('-')), "{v:?}");
    }

    #[test]
    fn long_flag_and_alias() {
        assert_eq!(values("box run --net"), ["--network"]);
    }

    #[test]
    fn enumerable_values() {
        assert!(values("box run --network ").contains(&"slirp4netns".to_string()));
        assert!(values("box run --network=").contains(&"--network=pasta".to_string()));
        assert_eq!(values("box ps --format j"), ["json"]);
        assert_eq!(values("box kill -s TE"), ["TERM"]);
        assert_eq!(values("box kill -s SIGTE"), ["SIGTERM"]);
        assert!(values("box run --sdnotify ").contains(&"ready".to_string()));
        assert!(values("box run --userns ").contains(&"keep-id".to_string()));
        assert!(values("box run --pull ").contains(&"never".to_string()));
        assert!(values("box --storage-driver ").contains(&"fuse-overlayfs".to_string()));
        assert_eq!(values("box run --restart on"), ["on-failure"]);
        assert!(values("box pull --platform linux/arm").contains(&"linux/arm64".to_string()));
        assert!(values("box run --platform linux/arm").contains(&"linux/arm64".to_string()));
    }

    #[test]
    fn nothing_inside_the_container_command() {
        assert!(values("box run --rm alpine -").is_empty());
        assert!(values("box run -it alpine ls -").is_empty());
        assert!(values("box exec web --").is_empty());
        // ... but options before the image still complete.
        assert!(values("box run -").contains(&"--rm".to_string()));
    }

    #[test]
    fn scan_follows_globals_and_values() {
        let mut cmd = crate::cli::args::command();
        cmd.build();
        let w = words("box --root /tmp/x run -e A=1 --name web -it alpine sh");
        let t = scan(&cmd, &w, w.len() - 1);
        assert_eq!(t.root.as_deref(), Some(Path::new("/tmp/x")));
        assert!(t.in_container_command);
        let w = words("box run -e A=1 --name web -it ");
        let t = scan(&cmd, &w, w.len() - 1);
        assert!(!t.in_container_command);
        let w = words("box inspect --type=image ");
        assert_eq!(scan(&cmd, &w, w.len() - 1).kind.as_deref(), Some("image"));
    }

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("docker.io/library/alpine:latest"), "alpine:latest");
        assert_eq!(familiar("docker.io/u/app:1"), "u/app:1");
        assert_eq!(familiar("127.0.0.1:5000/t/a:1"), "127.0.0.1:5000/t/a:1");
    }

    /// Value names of options whose values nobody can guess (numbers, free text, paths inside
    /// the container): everything else that takes a value must complete.
    const FREE_FORM: &[&str] = &[
        "BYTES",
        "CMD",
        "COMMAND",
        "DEST[:OPTS]",
        "DIR",
        "HOST:IP",
        "ID",
        "IP",
        "KEY=VALUE",
        "KEY[=VALUE]",
        "LIST",
        "N",
        "NAME",
        "NAME[:TAG]",
        "NEW_NAME",
        "PASSWORD",
        "SECONDS",
        "TARGET",
        "TEMPLATE",
        "TEXT",
        "TIME",
        "US",
        "USER[:GROUP]",
        "WORDS",
        "[IP:][HPORT:]CPORT[/PROTO]",
    ];

    #[test]
    fn every_value_completes_or_is_free_form() {
        fn walk(cmd: &clap::Command, path: &mut Vec<String>, missing: &mut Vec<String>) {
            for a in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                if !takes_value(a)
                    || !a.get_possible_values().is_empty()
                    || a.get_value_hint() != clap::ValueHint::Unknown
                    || classify(path, a).is_some()
                {
                    continue;
                }
                let value_name = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                if matches!(value_name.as_str(), "CONTAINER" | "IMAGE")
                    || !FREE_FORM.contains(&value_name.as_str())
                {
                    missing.push(format!(
                        "box {} {} <{value_name}>",
                        path.join(" "),
                        a.get_id()
                    ));
                }
            }
            for s in cmd.get_subcommands() {
                path.push(s.get_name().to_string());
                walk(s, path, missing);
                path.pop();
            }
        }
        let mut cmd = crate::cli::args::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, &mut Vec::new(), &mut missing);
        assert!(
            missing.is_empty(),
            "these values do not complete:\n  {}\nteach `classify` in src/cli/complete.rs what \
             they are (live names or fixed values), give them possible values or a ValueHint in \
             args.rs, or add their value name to FREE_FORM when nothing can be offered",
            missing.join("\n  ")
        );
    }
}
