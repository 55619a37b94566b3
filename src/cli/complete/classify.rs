//! Which kind of value an argument takes (decided from the command path, the argument's id
//! and its value name), and the values of the kinds that are fixed lists.
use clap_complete::engine::CompletionCandidate;

/// What an argument's values are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Containers(Want),
    /// `NAME:` for `box cp`, then host paths.
    CpEndpoint,
    Images,
    Volumes,
    Pods,
    UserNetworks,
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
    /// `top`'s ps(1) descriptors.
    TopDescriptor,
    /// `--userns` modes.
    Userns,
}

/// Which containers make sense for a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    All,
    Running,
    /// Created or exited: what `start` can start.
    NotRunning,
}

/// Commands that only act on running containers.
const RUNNING_ONLY: &[&str] = &[
    "exec", "stop", "kill", "pause", "unpause", "top", "stats", "attach",
];

/// Decide how `arg` of the command at `path` (subcommand names below `box`) completes.
pub(super) fn classify(path: &[String], arg: &clap::Arg) -> Option<Kind> {
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
            (_, _, "POD") => Some(Kind::Pods),
            (_, _, "NETWORK") => Some(Kind::UserNetworks),
            (_, _, "CONTAINER") if RUNNING_ONLY.contains(&leaf) => {
                Some(Kind::Containers(Want::Running))
            }
            (_, "start", "CONTAINER") => Some(Kind::Containers(Want::NotRunning)),
            (_, _, "CONTAINER") => Some(Kind::Containers(Want::All)),
            (_, "cp", "SRC" | "DEST") => Some(Kind::CpEndpoint),
            (_, _, "IMAGE" | "REPOSITORY") => Some(Kind::Images),
            ("image", "inspect", _) => Some(Kind::Images),
            ("image", "diff", _) => Some(Kind::Images),
            (_, "diff", _) => Some(Kind::Containers(Want::All)),
            ("container", "inspect", _) => Some(Kind::Containers(Want::All)),
            ("volume", "rm" | "inspect" | "exists", _) => Some(Kind::Volumes),
            (_, "untag", "NAME") => Some(Kind::Images),
            (_, "top", "DESCRIPTORS") => Some(Kind::TopDescriptor),
            ("", "inspect", _) => Some(Kind::AnyObject),
            (_, "login" | "logout", "REGISTRY") => Some(Kind::Registry),
            _ => None,
        };
    }
    match (leaf, id) {
        (_, "network") => Some(Kind::Network),
        (_, "pod") if value_name == "POD" => Some(Kind::Pods),
        ("logs", "container") => Some(Kind::Containers(Want::All)),
        (_, "infra_image") => Some(Kind::Images),
        (_, "volume") => Some(Kind::VolumeSpec),
        (_, "signal" | "stop_signal") => Some(Kind::Signal),
        (_, "platform") => Some(Kind::Platform),
        (_, "restart") => Some(Kind::Restart),
        ("systemd", "restart_policy") => Some(Kind::SystemdRestart),
        (_, "cap_add" | "cap_drop") => Some(Kind::Capability),
        (_, "security_opt") => Some(Kind::SecurityOpt),
        (_, "requires") => Some(Kind::Containers(Want::All)),
        (_, "userns") => Some(Kind::Userns),
        ("import" | "commit", "change") => Some(Kind::Instruction),
        (_, "filter") if matches!(leaf, "ps" | "list" | "stop" | "start" | "restart") => {
            Some(Kind::PsFilter)
        }
        (_, "format") if value_name == "FORMAT" => Some(Kind::Format),
        _ => None,
    }
}

impl Kind {
    /// The values of a kind that does not depend on the store (empty for the others, which
    /// `live` answers). `current` is the word being completed.
    pub(super) fn fixed_values(self, current: &str) -> Vec<CompletionCandidate> {
        match self {
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
            Kind::Userns => fixed(&[
                ("auto", "0 is you, 1.. your subordinate ids"),
                (
                    "keep-id",
                    "your uid is the same inside (keep-id:uid=N,gid=N: N)",
                ),
                ("single", "only your uid, as 0"),
            ]),
            Kind::TopDescriptor => crate::monitor::top::DESCRIPTORS
                .iter()
                .map(|(name, _, header)| {
                    CompletionCandidate::new(*name).help(Some((*header).into()))
                })
                .collect(),
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
            Kind::Containers(_)
            | Kind::CpEndpoint
            | Kind::Images
            | Kind::Volumes
            | Kind::Pods
            | Kind::UserNetworks
            | Kind::AnyObject
            | Kind::VolumeSpec
            | Kind::Network
            | Kind::PsFilter
            | Kind::Registry => Vec::new(),
        }
    }
}

pub(super) fn fixed(values: &[(&str, &str)]) -> Vec<CompletionCandidate> {
    values
        .iter()
        .map(|(v, h)| CompletionCandidate::new(v).help(Some(h.to_string().into())))
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::complete::scan::takes_value;

    /// Value names of options whose values nobody can guess (numbers, free text, paths inside
    /// the container): everything else that takes a value must complete.
    const FREE_FORM: &[&str] = &[
        "ALIAS",
        "BYTES",
        "CIDR",
        "CMD",
        "COMMAND",
        "DEST[:OPTS]",
        "DESTINATION",
        "DIR",
        "DURATION",
        "HOST:IP",
        "ID",
        "IP",
        "KEY=VALUE",
        "KEY[=VALUE]",
        "LIST",
        "MAC",
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
        // podman's further run/create flags (cli::args_run).
        "NAME=SOFT[:HARD]",
        "TIMEZONE",
        "MASK",
        "GROUP",
        "SIZE",
        "type=TYPE,...",
        "KEY[:PASSPHRASE]",
        "OPT=VALUE",
        "ENTRY",
        "KEYS",
        "C:I:N",
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
            "these values do not complete:\n  {}\nteach `classify` in src/cli/complete/classify.rs what \
             they are (live names or fixed values), give them possible values or a ValueHint in \
             args.rs, or add their value name to FREE_FORM when nothing can be offered",
            missing.join("\n  ")
        );
    }
}
