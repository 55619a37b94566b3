//! `Spec`: everything needed to start a container, resolved from the image configuration
//! and the command line with docker's override rules. It is stored in the container's
//! `config.json`, so `box start` runs exactly what `box create` decided.
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;
use super::security;
use crate::cli::args::{ContainerOpts, StorageDriver};

/// docker's default PATH, used when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The network mode (the default resolved to pasta or slirp4netns at create).
    pub network: Network,
    /// The network module's plan: mode and published ports with their host ports.
    #[serde(default)]
    pub network_plan: Option<crate::network::Plan>,
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--add-host HOST:IP`.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `auto`, `keep-id` or `single`.
    pub userns: String,
    /// The capability set (bounding, permitted, effective), e.g. `CAP_CHOWN`.
    pub caps: Vec<String>,
    pub seccomp: Seccomp,
    pub no_new_privileges: bool,
    /// No masked or read-only paths, no seccomp, every capability.
    pub privileged: bool,
    /// Run box's tiny init as PID 1.
    pub init: bool,
    pub rootfs: Rootfs,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub stop_signal: Option<String>,
    #[serde(default)]
    pub stop_timeout: Option<u64>,
    /// `--sdnotify`: "container" (or ""), "ready" or "ignore" (see `crate::systemd`).
    #[serde(default)]
    pub sdnotify: String,
    /// `--restart`: "no", "on-failure[:N]" or "always", honoured by the detached monitor.
    #[serde(default)]
    pub restart: String,
}

impl Spec {
    /// `--network container:NAME`: the name (or id) of the container whose network this
    /// one joins.
    pub fn network_container(&self) -> Option<&str> {
        match self.network_plan.as_ref().map(|p| &p.mode) {
            Some(crate::network::Mode::Container(name)) if self.network == Network::Container => {
                Some(name)
            }
            _ => None,
        }
    }

    /// The `--network` value that recreates this mode ("" for the default).
    pub fn network_arg(&self) -> String {
        match self.network {
            Network::Default => String::new(),
            Network::Pasta => "pasta".into(),
            Network::Slirp4netns => "slirp4netns".into(),
            Network::None => "none".into(),
            Network::Host => "host".into(),
            Network::Container => format!("container:{}", self.network_container().unwrap_or("")),
        }
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// pasta when installed, else slirp4netns (the network module decides).
    #[default]
    Default,
    Pasta,
    Slirp4netns,
    /// Only loopback.
    None,
    /// The host's network namespace.
    Host,
    /// Another container's network (and user) namespace: `--network container:NAME`, the
    /// name in `network_plan`.
    Container,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Seccomp {
    /// box's built-in profile, equivalent to docker's default (see `security`).
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    #[default]
    Overlay,
    FuseOverlayfs,
    Vfs,
}

impl From<StorageDriver> for Driver {
    fn from(d: StorageDriver) -> Driver {
        match d {
            StorageDriver::Overlay => Driver::Overlay,
            StorageDriver::FuseOverlayfs => Driver::FuseOverlayfs,
            StorageDriver::Vfs => Driver::Vfs,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rootfs {
    pub driver: Driver,
    /// The image's layer dirs, bottom → top.
    pub layers: Vec<PathBuf>,
}

/// Resource limits exactly as given on the command line, for the cgroup module.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub cpus: Option<f64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpu_weight: Option<u64>,
    pub pids_limit: Option<i64>,
    pub cpuset_cpus: Option<String>,
}

impl Eq for Resources {}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
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
        }
    }
}

/// Build the spec. `host_env` looks up the caller's environment (for `-e KEY`); `volume`
/// gives the host directory of a named volume (creating it on first use), or of a new
/// anonymous one for `None`.
pub fn build(
    opts: &ContainerOpts,
    image: &ImageDefaults,
    rootfs: Rootfs,
    net: crate::network::Plan,
    volume: &dyn Fn(Option<&str>) -> Result<PathBuf, String>,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Spec, Error> {
    let args = command(opts, image)?;
    let env = environment(opts, image, host_env)?;
    let cwd = match &opts.workdir {
        Some(w) if !w.starts_with('/') => {
            return Err(Error::Invalid(format!(
                "the working directory {w:?} is invalid: it needs to be an absolute path"
            )));
        }
        Some(w) => clean_path(w),
        None if image.working_dir.is_empty() => "/".to_string(),
        None => clean_path(&format!("/{}", image.working_dir)),
    };
    let user = opts.user.clone().unwrap_or_else(|| image.user.clone());
    use crate::network::Mode;
    let network = match &net.mode {
        Mode::Pasta => Network::Pasta,
        Mode::Slirp4netns => Network::Slirp4netns,
        Mode::None => Network::None,
        Mode::Host => Network::Host,
        Mode::Container(_) => Network::Container,
    };
    // Validated now so that `box create` fails, not the later start.
    crate::cgroup::Limits::parse(&limit_flags(opts))?;
    let mut mounts = Vec::new();
    for v in &opts.volume {
        mounts.push(parse_volume(v, volume)?);
    }
    for t in &opts.tmpfs {
        mounts.push(parse_tmpfs(t)?);
    }
    // The image's VOLUMEs that no -v or --tmpfs covers, as docker does.
    for path in &image.volumes {
        let target = clean_path(&format!("/{path}"));
        let covered = mounts.iter().any(|m| match m {
            Mount::Bind { target: t, .. } | Mount::Tmpfs { target: t, .. } => *t == target,
        });
        if !covered && target != "/" {
            let source = volume(None)
                .map_err(|e| Error::Invalid(format!("the image's VOLUME {path}: {e}")))?;
            mounts.push(Mount::Bind {
                source,
                target,
                readonly: false,
            });
        }
    }
    let mut no_new_privileges = false;
    let mut seccomp = Seccomp::Default;
    for o in &opts.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("no-new-privileges", "" | "true") => no_new_privileges = true,
            ("no-new-privileges", "false") => no_new_privileges = false,
            ("seccomp", "unconfined") => seccomp = Seccomp::Unconfined,
            ("seccomp", path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Invalid(format!(
                        "--security-opt {o}: cannot read the seccomp profile {path}: {e}"
                    ))
                })?;
                seccomp = Seccomp::Profile {
                    path: std::fs::canonicalize(path)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|_| path.to_string()),
                    text,
                };
            }
            ("label" | "apparmor", _) => {} // no SELinux/AppArmor in rootless box: accepted, ignored
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown --security-opt {o:?}: use no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json"
                )));
            }
        }
    }
    let caps = if opts.privileged {
        seccomp = Seccomp::Unconfined;
        security::all_cap_names()
    } else {
        security::cap_set(&opts.cap_add, &opts.cap_drop)?
    };
    // A profile that does not compile fails `box create`, not the later start.
    if let Seccomp::Profile { text, .. } = &seccomp {
        super::seccomp_profile::compile(
            text,
            &super::seccomp_profile::Target {
                caps: &caps,
                kernel: super::seccomp_profile::running_kernel(),
            },
        )
        .map_err(|e| Error::Invalid(format!("--security-opt seccomp: {e}")))?;
    }
    Ok(Spec {
        args,
        env,
        cwd,
        user,
        hostname: opts.hostname.clone().unwrap_or_default(),
        tty: opts.tty,
        interactive: opts.interactive,
        read_only: opts.read_only,
        mounts,
        network,
        network_plan: Some(net),
        publish: opts.publish.clone(),
        dns: opts.dns.clone(),
        add_hosts: opts.add_host.clone(),
        userns: opts.userns.clone(),
        caps,
        seccomp,
        no_new_privileges,
        privileged: opts.privileged,
        init: opts.init,
        rootfs,
        resources: Resources {
            memory: opts.memory.clone(),
            memory_swap: opts.memory_swap.clone(),
            cpus: opts.cpus,
            cpu_quota: opts.cpu_quota,
            cpu_period: opts.cpu_period,
            cpu_shares: opts.cpu_shares,
            cpu_weight: opts.cpu_weight,
            pids_limit: opts.pids_limit,
            cpuset_cpus: opts.cpuset_cpus.clone(),
        },
        stop_signal: stop_signal(opts, image)?,
        stop_timeout: opts.stop_timeout,
        sdnotify: crate::systemd::mode_name(opts.sdnotify).to_string(),
        restart: {
            crate::monitor::RestartPolicy::parse(&opts.restart)
                .map_err(|e| Error::Invalid(e.to_string()))?;
            opts.restart.clone()
        },
    })
}

/// The limit flags of the command line, for the cgroup module.
pub fn limit_flags(opts: &ContainerOpts) -> crate::cgroup::LimitFlags {
    crate::cgroup::LimitFlags {
        memory: opts.memory.clone(),
        memory_swap: opts.memory_swap.clone(),
        cpus: opts.cpus,
        cpu_quota: opts.cpu_quota,
        cpu_period: opts.cpu_period,
        cpu_shares: opts.cpu_shares,
        cpu_weight: opts.cpu_weight,
        pids_limit: opts.pids_limit,
        cpuset_cpus: opts.cpuset_cpus.clone(),
    }
}

/// `--stop-signal` (a signal box cannot send is an error), else the image's `StopSignal`
/// (one box cannot send is replaced by SIGTERM with a warning, as docker does: `stop`
/// must keep working).
fn stop_signal(opts: &ContainerOpts, image: &ImageDefaults) -> Result<Option<String>, Error> {
    use crate::cli::args::parse_signal_number;
    if let Some(s) = &opts.stop_signal {
        parse_signal_number(s).map_err(|e| Error::Invalid(format!("--stop-signal {s}: {e}")))?;
        return Ok(Some(s.clone()));
    }
    match &image.stop_signal {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => match parse_signal_number(s) {
            Ok(_) => Ok(Some(s.clone())),
            Err(e) => {
                eprintln!(
                    "box: warning: the image's StopSignal {s:?} is ignored ({e}); using SIGTERM"
                );
                Ok(None)
            }
        },
        None => Ok(None),
    }
}

/// docker: `--entrypoint` replaces the image's Entrypoint *and* drops its Cmd; command
/// arguments replace Cmd. `--entrypoint ""` clears the entrypoint. A JSON array is accepted
/// for --entrypoint, as podman does.
fn command(opts: &ContainerOpts, image: &ImageDefaults) -> Result<Vec<String>, Error> {
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(e) => {
            let ep = if e.is_empty() {
                Vec::new()
            } else if e.trim_start().starts_with('[') {
                serde_json::from_str::<Vec<String>>(e).map_err(|err| {
                    Error::Invalid(format!("--entrypoint {e:?}: not a JSON array: {err}"))
                })?
            } else {
                vec![e.clone()]
            };
            (ep, opts.command.clone())
        }
        None if opts.command.is_empty() => (image.entrypoint.clone(), image.cmd.clone()),
        None => (image.entrypoint.clone(), opts.command.clone()),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Invalid(
            "no command specified: the image has none, give one after the image name".into(),
        ));
    }
    Ok(args)
}

/// Image Env, then --env-file lines, then -e; later keys replace earlier ones in place.
fn environment(
    opts: &ContainerOpts,
    image: &ImageDefaults,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Error> {
    // Each key's slot in `env`: linear in the number of entries (an image may carry
    // 100 000 of them, an --env-file as many lines).
    let mut env: Vec<String> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        match slots.entry(key) {
            Entry::Occupied(slot) => env[*slot.get()] = kv,
            Entry::Vacant(slot) => {
                slot.insert(env.len());
                env.push(kv);
            }
        }
    };
    for e in &image.env {
        set(e.clone());
    }
    let user_entry = |entry: &str, origin: &str| -> Result<Option<String>, Error> {
        let (key, value) = match entry.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (entry, None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "{origin}: invalid environment variable {entry:?}"
            )));
        }
        Ok(value
            .or_else(|| host_env(key))
            .map(|v| format!("{key}={v}")))
    };
    for file in &opts.env_file {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::Invalid(format!("cannot read --env-file {}: {e}", file.display()))
        })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(kv) = user_entry(line, &file.display().to_string())? {
                set(kv);
            }
        }
    }
    for e in &opts.env {
        if let Some(kv) = user_entry(e, "-e")? {
            set(kv);
        }
    }
    Ok(env)
}

/// Lexically clean an absolute container path: no `.`, `..` resolved, no trailing `/`.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

fn parse_volume(
    v: &str,
    volume: &dyn Fn(Option<&str>) -> Result<PathBuf, String>,
) -> Result<Mount, Error> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        // `-v /path`: a new anonymous volume.
        [d] if d.starts_with('/') => ("", *d, ""),
        [_] => {
            return Err(Error::Invalid(format!(
                "-v {v}: use SRC:DEST[:ro|rw], or an absolute container path for an anonymous volume"
            )));
        }
        _ => return Err(Error::Invalid(format!("-v {v}: use SRC:DEST[:ro|rw]"))),
    };
    if !dst.starts_with('/') {
        return Err(Error::Invalid(format!(
            "-v {v}: the container path {dst:?} must be absolute"
        )));
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabel and propagation options: meaningless rootless, accepted.
            "z" | "Z" | "bind" | "rbind" | "private" | "rprivate" => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "-v {v}: unsupported option {o:?} (use ro or rw)"
                )));
            }
        }
    }
    let source = if src.is_empty() {
        volume(None).map_err(|e| Error::Invalid(format!("-v {v}: {e}")))?
    } else if src.starts_with('/') || src.starts_with('.') {
        std::fs::canonicalize(src).map_err(|e| {
            Error::Invalid(format!("-v {v}: the host path {src:?} cannot be used: {e}"))
        })?
    } else {
        if !src
            .bytes()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && b"_.-".contains(&c)))
        {
            return Err(Error::Invalid(format!(
                "-v {v}: {src:?} is neither an absolute path nor a volume name"
            )));
        }
        // A named volume: created on first use, as podman does.
        volume(Some(src)).map_err(|e| Error::Invalid(format!("-v {v}: {e}")))?
    };
    Ok(Mount::Bind {
        source,
        target: clean_path(dst),
        readonly,
    })
}

fn parse_tmpfs(t: &str) -> Result<Mount, Error> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dst.starts_with('/') {
        return Err(Error::Invalid(format!(
            "--tmpfs {t}: the container path must be absolute"
        )));
    }
    let options: Vec<String> = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect();
    for o in &options {
        let key = o.split('=').next().unwrap_or("");
        if !matches!(
            key,
            "ro" | "rw"
                | "exec"
                | "noexec"
                | "suid"
                | "nosuid"
                | "dev"
                | "nodev"
                | "size"
                | "mode"
                | "uid"
                | "gid"
                | "nr_inodes"
                | "nr_blocks"
        ) {
            return Err(Error::Invalid(format!(
                "--tmpfs {t}: unsupported option {o:?}"
            )));
        }
    }
    Ok(Mount::Tmpfs {
        target: clean_path(dst),
        options,
    })
}

/// `KEY=VALUE` labels.
pub fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, Error> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            if k.is_empty() {
                Err(Error::Invalid(format!("--label {l:?}: use KEY=VALUE")))
            } else {
                Ok((k.to_string(), v.to_string()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(image: &str, cmd: &[&str]) -> ContainerOpts {
        ContainerOpts {
            image: image.into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            userns: "auto".into(),
            ..Default::default()
        }
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=1".into()],
            working_dir: "app".into(),
            user: "nobody".into(),
            stop_signal: None,
            volumes: Vec::new(),
        }
    }

    fn no_volumes(name: Option<&str>) -> Result<PathBuf, String> {
        Err(format!("no volume {name:?}"))
    }

    fn plan() -> crate::network::Plan {
        crate::network::Plan {
            mode: crate::network::Mode::None,
            ports: vec![],
        }
    }

    fn build_ok(o: &ContainerOpts, i: &ImageDefaults) -> Spec {
        build(o, i, Rootfs::default(), plan(), &no_volumes, &|k| {
            (k == "HOSTVAR").then(|| "fromhost".to_string())
        })
        .unwrap()
    }

    #[test]
    fn docker_command_rules() {
        let i = image();
        assert_eq!(build_ok(&opts("x", &[]), &i).args, ["/entry", "default"]);
        assert_eq!(
            build_ok(&opts("x", &["a", "b"]), &i).args,
            ["/entry", "a", "b"]
        );
        let mut o = opts("x", &[]);
        o.entrypoint = Some("/other".into());
        assert_eq!(build_ok(&o, &i).args, ["/other"]);
        o.command = vec!["z".into()];
        assert_eq!(build_ok(&o, &i).args, ["/other", "z"]);
        o.entrypoint = Some(String::new());
        assert_eq!(build_ok(&o, &i).args, ["z"]);
        o.entrypoint = Some(r#"["/bin/sh","-c"]"#.into());
        assert_eq!(build_ok(&o, &i).args, ["/bin/sh", "-c", "z"]);
        let mut none = opts("x", &[]);
        none.entrypoint = Some(String::new());
        assert!(build(&none, &i, Rootfs::default(), plan(), &no_volumes, &|_| None).is_err());
    }

    #[test]
    fn env_overrides_in_order() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("env");
        std::fs::write(&file, "# comment\n\nA=file\nB=file\nHOSTVAR\nMISSING\n").unwrap();
        let mut o = opts("x", &[]);
        o.env_file = vec![file];
        o.env = vec!["B=cli".into(), "C=c=d".into()];
        let s = build_ok(&o, &image());
        assert_eq!(
            s.env,
            ["PATH=/bin", "A=file", "B=cli", "HOSTVAR=fromhost", "C=c=d"]
        );
        o.env = vec!["BAD KEY=1".into()];
        assert!(
            build(
                &o,
                &image(),
                Rootfs::default(),
                plan(),
                &no_volumes,
                &|_| None
            )
            .is_err()
        );
    }

    #[test]
    fn many_env_entries_merge_linearly_later_wins_in_place() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("env");
        let n = 100_000;
        let mut text = String::from("DUP=first\n");
        for i in 0..n {
            text.push_str(&format!("K{i}=v{i}\n"));
        }
        text.push_str("DUP=last\nA=file\n");
        std::fs::write(&file, text).unwrap();
        let mut img = image();
        img.env = (0..n).map(|i| format!("I{i}=x")).collect();
        img.env.push("A=image".into());
        let mut o = opts("x", &[]);
        o.env_file = vec![file];
        o.env = vec!["K5=cli".into()];
        let s = build_ok(&o, &img);
        assert_eq!(s.env.len(), 2 * n + 2);
        assert_eq!(s.env[0], "I0=x");
        assert_eq!(s.env[n], "A=file");
        assert_eq!(s.env[n + 1], "DUP=last");
        assert_eq!(s.env[n + 2 + 5], "K5=cli");
        assert_eq!(s.env[2 * n + 1], format!("K{}=v{}", n - 1, n - 1));
    }

    #[test]
    fn stop_signals_are_checked() {
        let mut o = opts("x", &[]);
        let mut img = image();
        img.stop_signal = Some("SIGQUIT".into());
        assert_eq!(build_ok(&o, &img).stop_signal.as_deref(), Some("SIGQUIT"));
        for bogus in ["99", "SIGBOGUS", "0", ""] {
            img.stop_signal = Some(bogus.into());
            assert_eq!(build_ok(&o, &img).stop_signal, None, "{bogus}");
        }
        o.stop_signal = Some("RTMIN+3".into());
        assert_eq!(build_ok(&o, &img).stop_signal.as_deref(), Some("RTMIN+3"));
        for bogus in ["99", "SIGBOGUS", "0", ""] {
            o.stop_signal = Some(bogus.into());
            let e = build(&o, &img, Rootfs::default(), plan(), &no_volumes, &|_| None)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("--stop-signal {bogus}: unknown signal")),
                "{e}"
            );
        }
    }

    #[test]
    fn workdir_user_hostname() {
        let s = build_ok(&opts("x", &[]), &image());
        assert_eq!(s.cwd, "/app");
        assert_eq!(s.user, "nobody");
        let mut o = opts("x", &[]);
        o.workdir = Some("/srv/../data/".into());
        o.user = Some("1000:1000".into());
        let s = build_ok(&o, &image());
        assert_eq!(s.cwd, "/data");
        assert_eq!(s.user, "1000:1000");
        o.workdir = Some("relative".into());
        assert!(
            build(
                &o,
                &image(),
                Rootfs::default(),
                plan(),
                &no_volumes,
                &|_| None
            )
            .is_err()
        );
    }

    #[test]
    fn volumes_and_tmpfs() {
        let t = tempfile::tempdir().unwrap();
        let vols = |name: Option<&str>| -> Result<PathBuf, String> {
            let d = t.path().join(name.unwrap_or("anon")).join("_data");
            std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
            Ok(d)
        };
        let mut o = opts("x", &[]);
        o.volume = vec![
            format!("{}:/data:ro", t.path().display()),
            "cache:/cache".into(),
        ];
        o.tmpfs = vec!["/run:size=1m,mode=755".into()];
        let s = build(&o, &image(), Rootfs::default(), plan(), &vols, &|_| None).unwrap();
        assert_eq!(
            s.mounts[0],
            Mount::Bind {
                source: t.path().canonicalize().unwrap(),
                target: "/data".into(),
                readonly: true
            }
        );
        assert!(t.path().join("cache/_data").is_dir());
        assert_eq!(
            s.mounts[2],
            Mount::Tmpfs {
                target: "/run".into(),
                options: vec!["size=1m".into(), "mode=755".into()]
            }
        );
        // `-v /path` and the image's VOLUMEs not covered by a mount: anonymous volumes.
        let mut o = opts("x", &[]);
        o.volume = vec!["/scratch".into(), "cache:/var/lib/db".into()];
        let mut img = image();
        img.volumes = vec!["/var/lib/db".into(), "/var/log/app/".into()];
        let s = build(&o, &img, Rootfs::default(), plan(), &vols, &|_| None).unwrap();
        let anon = t.path().join("anon/_data");
        let targets: Vec<(&str, &Path)> = s
            .mounts
            .iter()
            .map(|m| match m {
                Mount::Bind { source, target, .. } => (target.as_str(), source.as_path()),
                Mount::Tmpfs { target, .. } => (target.as_str(), Path::new("")),
            })
            .collect();
        assert_eq!(
            targets,
            vec![
                ("/scratch", anon.as_path()),
                ("/var/lib/db", t.path().join("cache/_data").as_path()),
                ("/var/log/app", anon.as_path()),
            ]
        );
        for bad in [
            "/nonexistent-src:/x",
            "rel:x",
            "/tmp:/x:bogus",
            "x",
            "rel/x",
        ] {
            let mut o = opts("x", &[]);
            o.volume = vec![bad.into()];
            assert!(
                build(&o, &image(), Rootfs::default(), plan(), &vols, &|_| None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn security_options() {
        let mut o = opts("x", &[]);
        o.security_opt = vec!["no-new-privileges".into(), "seccomp=unconfined".into()];
        let s = build_ok(&o, &image());
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        o.security_opt = vec!["seccomp=/x.json".into()];
        assert!(
            build(
                &o,
                &image(),
                Rootfs::default(),
                plan(),
                &no_volumes,
                &|_| None
            )
            .is_err()
        );
        let mut p = opts("x", &[]);
        p.privileged = true;
        let s = build_ok(&p, &image());
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        assert!(s.caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c");
        assert_eq!(clean_path("/../.."), "/");
    }
}
