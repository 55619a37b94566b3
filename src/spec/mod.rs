//! `Spec`: everything needed to start a container, decided once by `box create`/`box run`
//! (from the image configuration and the command line with docker's override rules, in
//! `commands::container_spec`) and stored in the container's `config.json`, so `box start`
//! runs exactly what was decided.
//!
//! A leaf: the spec holds the typed values of the modules that act on it (the network
//! plan, cgroup limits, the user-namespace mode, the restart policy and sd_notify mode) and
//! depends on nothing that reads it. Records written by earlier versions of box (network as
//! a name beside an optional plan, limits as the flags given, `--restart` and
//! `--sdnotify` as text) still load: see `stored`.
pub mod health;
mod parse;
mod settings;
mod signal;
mod stored;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use parse::{
    READ_ONLY_TMPFS, clean_path, command, environment, labels, stop_signal, tmpfs_mount,
    volume_mount,
};
pub use settings::{
    IdmapMount, ImageMount, LogConfig, LogDriver, NetworkOpts, Settings, ULIMITS, Ulimit,
    check_sysctl, timezone_file,
};
pub use signal::signal_number;

/// docker's default PATH, used when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A bad option or image setting, found before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "stored::Stored")]
pub struct Spec {
    /// argv: entrypoint + command.
    pub args: Vec<String>,
    /// KEY=VALUE, image env overridden by --env-file then -e. HOSTNAME, PATH, TERM and
    /// HOME defaults are added at start.
    pub env: Vec<String>,
    /// Absolute working directory (created when missing, as docker does).
    pub cwd: String,
    /// `user[:group]` as given (name or number); "" is root. Resolved at start against
    /// the container's /etc/passwd and /etc/group.
    pub user: String,
    /// Host name; "" means the short id.
    pub hostname: String,
    pub tty: bool,
    pub interactive: bool,
    pub read_only: bool,
    /// Volumes and tmpfs mounts, in command-line order.
    pub mounts: Vec<Mount>,
    /// The network: its mode (the default resolved to pasta or slirp4netns at create) and
    /// every published port with its host port.
    pub network: crate::network::Plan,
    /// `-p` as given (for generated units).
    pub publish: Vec<String>,
    pub dns: Vec<String>,
    /// `--add-host HOST:IP`.
    pub add_hosts: Vec<String>,
    pub userns: crate::userns::Mode,
    /// The capability set (bounding, permitted, effective), e.g. `CAP_CHOWN`.
    pub caps: Vec<String>,
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
    /// No masked or read-only paths, no seccomp, every capability.
    pub privileged: bool,
    /// Run box's tiny init as PID 1.
    pub init: bool,
    pub rootfs: Rootfs,
    /// cgroup limits, validated at create.
    pub limits: crate::cgroup::Limits,
    /// A signal box can send (checked at create), else SIGTERM.
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub sdnotify: SdNotify,
    /// Honoured by the detached monitor.
    pub restart: RestartPolicy,
    /// The pod the container belongs to (`--pod`), or the pod whose infra it is.
    pub pod: Option<PodLink>,
    /// User networks (`--network NAME`, see `crate::usernet`): the container lives in the
    /// network holder's user namespace with a network namespace of its own, plumbed by
    /// netavark. The network mode is then `none` (no helper of its own).
    pub networks: Vec<String>,
    /// `--network-alias`: more names on its user network (its own name always resolves).
    pub network_aliases: Vec<String>,
    /// `--ip`: its address on its user network (else the first free one).
    pub ip: Option<std::net::Ipv4Addr>,
    /// Run by the detached monitor on schedule, and by `box healthcheck run`.
    pub healthcheck: Option<health::Healthcheck>,
    /// What the monitor does when the container becomes unhealthy.
    pub health_on_failure: health::OnFailure,
    /// podman's further run/create options (ulimits, umask, sysctls, logging, ...).
    pub settings: Settings,
}

/// A container's place in a pod (see `crate::pod`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodLink {
    /// The pod's id.
    pub id: String,
    /// This is the pod's infra container: box's pause program (run in-process, as
    /// `--init` is, on an empty read-only root), holding the namespaces the pod shares.
    #[serde(default)]
    pub infra: bool,
    /// A member joins the infra's uts namespace (its host name) ...
    #[serde(default)]
    pub uts: bool,
    /// ... and its ipc namespace. The network is joined through the network mode
    /// (`container:INFRA-ID`), which also gives the infra's user namespace.
    #[serde(default)]
    pub ipc: bool,
    /// The infra's only: `pod create --memory/--cpus/--cpuset-cpus`, written into the pod's
    /// cgroup when the infra starts (see `cgroup::prepare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::cgroup::Limits>,
}

impl Spec {
    /// `--network container:NAME`: the name (or id) of the container whose network this
    /// one joins.
    pub fn network_container(&self) -> Option<&str> {
        match &self.network.mode {
            crate::network::Mode::Container(name) => Some(name),
            _ => None,
        }
    }

    /// The pod's infra container (box's pause program, no image).
    pub fn is_infra(&self) -> bool {
        self.pod.as_ref().is_some_and(|p| p.infra)
    }

    /// Whether the container uses the host's network namespace.
    pub fn host_network(&self) -> bool {
        self.network.mode == crate::network::Mode::Host
    }

    /// The `--network` value that recreates this mode.
    pub fn network_arg(&self) -> String {
        self.network.mode.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum Mount {
    /// `-v SRC:DEST[:ro]`: SRC is an absolute host path (named volumes resolved to theirs).
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
    },
    /// `--tmpfs DEST[:OPTS]`.
    Tmpfs {
        target: String,
        options: Vec<String>,
    },
}

impl Mount {
    pub fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. } | Mount::Tmpfs { target, .. } => target,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// box's built-in profile, equivalent to docker's default.
    #[default]
    Default,
    Unconfined,
    /// A docker/OCI profile given with `--security-opt seccomp=FILE`: its text is kept in
    /// the container's record (as docker does) so later starts do not depend on the file.
    Profile {
        path: String,
        text: String,
    },
}

/// How the container's root filesystem is made from the image's layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    #[default]
    Overlay,
    FuseOverlayfs,
    Vfs,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::FuseOverlayfs => "fuse-overlayfs",
            Driver::Vfs => "vfs",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rootfs {
    pub driver: Driver,
    /// The image's layer dirs, bottom → top.
    pub layers: Vec<PathBuf>,
}

/// `--sdnotify`: who tells systemd the container is ready (see `crate::systemd`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SdNotify {
    /// NOTIFY_SOCKET is passed to the container; it sends READY=1 itself.
    #[default]
    Container,
    /// box sends READY=1 once the container's command runs.
    Ready,
    /// Nothing is said to systemd.
    Ignore,
    /// The container's monitor sends READY=1 at the first healthy check.
    Healthy,
}

impl SdNotify {
    pub fn name(self) -> &'static str {
        match self {
            SdNotify::Container => "container",
            SdNotify::Ready => "ready",
            SdNotify::Ignore => "ignore",
            SdNotify::Healthy => "healthy",
        }
    }

    /// The name as recorded; anything unknown (or "") is the default.
    pub fn from_name(name: &str) -> SdNotify {
        match name {
            "ready" => SdNotify::Ready,
            "ignore" => SdNotify::Ignore,
            "healthy" => SdNotify::Healthy,
            _ => SdNotify::Container,
        }
    }
}

/// `--restart`, honoured while the container's monitor lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart on a non-zero exit, at most N times (None: forever).
    OnFailure(Option<u32>),
    Always,
    /// As `Always` here (a stopped container is never restarted); kept apart so that
    /// generated units say what the user asked for.
    UnlessStopped,
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy, Error> {
        match s {
            "" | "no" => Ok(RestartPolicy::No),
            "always" => Ok(RestartPolicy::Always),
            "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
            "on-failure" => Ok(RestartPolicy::OnFailure(None)),
            other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
                Some(Ok(n)) => Ok(RestartPolicy::OnFailure(Some(n))),
                _ => Err(Error::Invalid(format!(
                    "invalid restart policy {other:?}: use no, on-failure[:N], always or unless-stopped"
                ))),
            },
        }
    }

    /// docker's policy name, without the count.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure(_) => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// The most restarts on failure (0: unlimited or not on-failure).
    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure(Some(n)) => *n,
            _ => 0,
        }
    }

    /// Whether to restart after an exit with `code`, having restarted `count` times.
    pub fn should_restart(&self, code: i32, count: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && max.is_none_or(|m| count < m),
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
            other => f.write_str(other.name()),
        }
    }
}

/// The parts of an image's configuration a container starts from.
#[derive(Debug, Clone, Default)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub stop_signal: Option<String>,
    /// The image's `VOLUME`s: each gets an anonymous volume unless a mount covers it.
    pub volumes: Vec<String>,
    /// The image's `HEALTHCHECK` (docker's `config.Healthcheck`, beyond the OCI fields).
    pub healthcheck: Option<health::Healthcheck>,
}

impl ImageDefaults {
    pub fn from_oci(cfg: Option<&oci_spec::image::Config>) -> ImageDefaults {
        let Some(c) = cfg else {
            return ImageDefaults::default();
        };
        ImageDefaults {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            stop_signal: c.stop_signal().clone(),
            volumes: c.volumes().clone().unwrap_or_default(),
            healthcheck: None,
        }
    }
}

/// `KEY=VALUE` labels, as recorded beside the spec.
pub type Labels = BTreeMap<String, String>;
