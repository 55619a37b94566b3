//! podman's further `run`/`create` flags (flattened into `ContainerOpts`): process limits,
//! umask, groups, sysctls, /dev/shm, time zone, logging, mounts, files written at create
//! and start, and the ones accepted with a clear error. `commands::container_spec`
//! translates them into the spec's `Settings`.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args, Clone, Default)]
pub struct RunExtraOpts {
    /// Process limit NAME=SOFT[:HARD] (nofile, nproc, core, ...; -1 unlimited), or host
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub ulimit: Vec<String>,
    /// Write the container's PID (as the host sees it) to FILE at start
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub pidfile: Option<PathBuf>,
    /// Write the container's id to FILE (which must not exist)
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub cidfile: Option<PathBuf>,
    /// Read labels (KEY=VALUE lines) from FILE
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub label_file: Vec<PathBuf>,
    /// Add an annotation KEY=VALUE
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// Time zone: local (the host's) or a zone such as Europe/Berlin
    #[arg(long, value_name = "TIMEZONE")]
    pub tz: Option<String>,
    /// The command's umask (octal) [default: 0022]
    #[arg(long, value_name = "MASK")]
    pub umask: Option<String>,
    /// Add a supplementary group (name or gid), or keep-groups: keep your own groups
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Size of /dev/shm [default: 64m]
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,
    /// Set a namespaced sysctl KEY=VALUE (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)
    #[arg(long, value_name = "KEY=VALUE")]
    pub sysctl: Vec<String>,
    /// Mount: type=bind|volume|tmpfs|image,src=...,dst=...[,ro][,idmap][,tmpfs-size=..][,tmpfs-mode=..] (type=image: read-only unless rw=true, whose writes stay in the container)
    #[arg(long, value_name = "type=TYPE,...")]
    pub mount: Vec<String>,
    /// Pass the whole host environment into the container
    #[arg(long)]
    pub env_host: bool,
    /// Kill the container after SECONDS
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Containers to start first (comma-separated names or ids)
    #[arg(long, value_name = "CONTAINERS", value_delimiter = ',')]
    pub requires: Vec<String>,
    /// Key to decrypt an encrypted image (not supported: an error says so)
    #[arg(long, value_name = "KEY[:PASSPHRASE]")]
    pub decryption_key: Vec<String>,
    /// cgroup namespace: private (default) or host
    #[arg(long, value_name = "MODE", value_parser = ["host", "private"])]
    pub cgroupns: Option<String>,
    /// cgroup of the container: enabled (default: its own where box can make one),
    /// disabled (none: box's), no-conmon (box stays where it was started; the container
    /// gets a systemd scope of its own) or split (below box's own delegated cgroup, e.g. a
    /// unit's with Delegate=yes; refused where there is none)
    #[arg(long, value_name = "MODE", value_parser = ["enabled", "disabled", "no-conmon", "split"])]
    pub cgroups: Option<String>,
    /// Log driver: k8s-file (default), json-file, none or passthrough
    #[arg(long, value_name = "DRIVER", value_parser = ["k8s-file", "json-file", "none", "passthrough"])]
    pub log_driver: Option<String>,
    /// Log option: path=FILE or max-size=SIZE
    #[arg(long, value_name = "OPT=VALUE")]
    pub log_opt: Vec<String>,
    /// Attach these streams in the foreground: stdin, stdout, stderr [default: all]
    #[arg(short = 'a', long, value_name = "STREAM", value_parser = ["stdin", "stdout", "stderr"])]
    pub attach: Vec<String>,
    /// Add an /etc/passwd entry for a numeric --user the image does not know (default true)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub passwd: Option<bool>,
    /// The /etc/passwd entry --passwd adds, with $USERNAME, $UID, $GID, $NAME and $HOME
    /// replaced [default: $USERNAME:*:$UID:$GID:$NAME:$HOME:/bin/sh]
    #[arg(long, value_name = "ENTRY")]
    pub passwd_entry: Option<String>,
    /// Add the host user NAME (or uid) to the container's /etc/passwd
    #[arg(long, value_name = "NAME")]
    pub hostuser: Vec<String>,
    /// Map container ids to your namespace's: CONTAINER:INTERMEDIATE:SIZE (0 is you,
    /// 1.. your subordinate ids), e.g. 0:1:65536; you are added after the highest id if
    /// left out
    #[arg(long, value_name = "C:I:N")]
    pub uidmap: Vec<String>,
    /// As --uidmap, for groups [default: the --uidmap]
    #[arg(long, value_name = "C:I:N")]
    pub gidmap: Vec<String>,
    /// Subordinate uid ranges of NAME in /etc/subuid (rootless: only your own)
    #[arg(long, value_name = "NAME")]
    pub subuidname: Option<String>,
    /// Subordinate gid ranges of NAME in /etc/subgid (rootless: only your own)
    #[arg(long, value_name = "NAME")]
    pub subgidname: Option<String>,
    /// Pass descriptors 3 to 3+N-1 of box to the command (run, also with -d; a later
    /// start passes none)
    #[arg(long, value_name = "N")]
    pub preserve_fds: Option<u32>,
    /// Give the container a host device (one you can open): HOST[:CONTAINER][:PERMS]
    #[arg(long, value_name = "HOST[:CONTAINER][:PERMS]", value_hint = clap::ValueHint::FilePath)]
    pub device: Vec<String>,
}

// podman's further `ps` flags.
#[derive(Debug, Args, Clone, Default)]
pub struct PsMoreArgs {
    /// Show the N most recently created containers (in any state)
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,
    /// Sort by command, created, id, image, names, runningfor, size or status
    #[arg(long, value_name = "FIELD", value_parser = ["command", "created", "id", "image", "names", "runningfor", "size", "status"])]
    pub sort: Option<String>,
    /// Show each container's size: its writable layer (and the image's)
    #[arg(short, long)]
    pub size: bool,
    /// Show the namespaces of each container
    #[arg(long)]
    pub ns: bool,
    /// Also show the containers of running builds (box build's RUN steps)
    #[arg(long)]
    pub external: bool,
}

// podman's further `images` flags.
#[derive(Debug, Args, Clone, Default)]
pub struct ImagesMoreArgs {
    /// Show all images (box keeps no intermediate images: the same list)
    #[arg(short, long)]
    pub all: bool,
    /// Filter: dangling=true|false, reference=PATTERN, label=K[=V], before=IMAGE, since=IMAGE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Sort by created (default), id, repository, size or tag
    #[arg(long, value_name = "FIELD", value_parser = ["created", "id", "repository", "size", "tag"])]
    pub sort: Option<String>,
}

// `volume create`, with podman's options.
#[derive(Debug, Args, Clone, Default)]
pub struct VolumeCreateArgs {
    /// Volume name [default: a random name]
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Volume driver (only local)
    #[arg(short, long, value_name = "DRIVER", default_value = "local", value_parser = ["local"])]
    pub driver: String,
    /// Driver option: type=tmpfs|bind|none, device=HOSTPATH, o=MOUNT,OPTIONS
    #[arg(short, long = "opt", value_name = "KEY=VALUE")]
    pub opt: Vec<String>,
    /// Set a label KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Do not fail when the volume exists
    #[arg(long)]
    pub ignore: bool,
}

// `volume inspect`.
#[derive(Debug, Args, Clone, Default)]
pub struct VolumeInspectArgs {
    /// Output format: json or a Go template such as '{{.Mountpoint}}'
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Inspect every volume
    #[arg(short, long)]
    pub all: bool,
    /// Volume names
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub names: Vec<String>,
}

/// podman's further global flags (accepted where box has nothing to choose).
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalMoreOpts {
    /// Send box's own standard output to /dev/null (the container's output too)
    #[arg(long, global = true)]
    pub noout: bool,
    /// cgroup manager: cgroupfs (box makes cgroups only in its own delegated cgroup and
    /// never asks systemd for a scope) or systemd (delegated cgroups, and transient
    /// systemd scopes where limits need them; without a systemd user session, a warning
    /// and cgroupfs, as podman)
    /// [default: systemd's scopes when there is systemd, else cgroupfs]
    #[arg(long, global = true, value_name = "MANAGER", value_parser = ["cgroupfs", "systemd"])]
    pub cgroup_manager: Option<String>,
    /// Storage option: overlay.mount_program=PATH (fuse-overlayfs to use; selects that
    /// driver), overlay.mountopt=nodev,nosuid,noexec (on containers' root filesystems),
    /// overlay.ignore_chown_errors=true or vfs.ignore_chown_errors=true (image files whose
    /// owner cannot be mapped stay yours); any other key is an error
    #[arg(long, global = true, value_name = "KEY=VALUE")]
    pub storage_opt: Vec<String>,
    /// Directory for temporary files [default: $TMPDIR or /tmp]
    #[arg(long, global = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub tmpdir: Option<PathBuf>,
}

pub const EX_UNSHARE: &str = "\
Examples:
  box unshare                       # a shell as root of box's user namespace
  box unshare ls -ln ~/.local/share/box/storage
  box unshare sh -c 'cat $(box mount web)/etc/os-release'";
pub const EX_MOUNT: &str = "\
Examples:
  box unshare
  # then, inside:
  box mount web                     # prints the mount point
  box mount                         # lists mounted containers";
pub const EX_UNMOUNT: &str = "\
Examples:
  box unmount web
  box unmount --all";

// `box unshare`.
#[derive(Debug, Args, Clone, Default)]
pub struct UnshareArgs {
    /// Command and arguments [default: $SHELL, else /bin/sh]
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

// `box mount`.
#[derive(Debug, Args, Clone, Default)]
pub struct MountArgs {
    /// Containers (none: list the mounted ones)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

// `box unmount`.
#[derive(Debug, Args, Clone, Default)]
pub struct UnmountArgs {
    /// Unmount every mounted container
    #[arg(short, long)]
    pub all: bool,
    /// Containers
    #[arg(value_name = "CONTAINER", required_unless_present = "all")]
    pub containers: Vec<String>,
}

pub const EX_VOLUME_EXPORT: &str = "\
Examples:
  box volume export data > data.tar
  box volume export -o data.tar data";
pub const EX_VOLUME_IMPORT: &str = "\
Examples:
  box volume import data data.tar
  gzip -dc data.tar.gz | box volume import data -";

// `volume export`.
#[derive(Debug, Args, Clone, Default)]
pub struct VolumeExportArgs {
    /// Write to FILE instead of stdout
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub output: Option<PathBuf>,
    /// Volume name
    #[arg(value_name = "NAME")]
    pub name: String,
}

// `volume import`.
#[derive(Debug, Args, Clone, Default)]
pub struct VolumeImportArgs {
    /// Volume name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Tar archive to read, or - for stdin
    #[arg(value_name = "SOURCE", value_hint = clap::ValueHint::FilePath)]
    pub source: String,
}

/// `--userns`: auto, single, keep-id, or podman's keep-id:uid=N,gid=N.
pub fn parse_userns(s: &str) -> Result<String, String> {
    match s.split_once(':') {
        None if matches!(s, "auto" | "keep-id" | "single") => Ok(s.into()),
        Some(("keep-id", opts))
            if opts.split(',').all(|o| {
                o.split_once('=')
                    .is_some_and(|(k, v)| matches!(k, "uid" | "gid") && v.parse::<u32>().is_ok())
            }) =>
        {
            Ok(s.into())
        }
        _ => Err(format!(
            "invalid --userns {s:?}: use auto, keep-id, keep-id:uid=N,gid=N or single"
        )),
    }
}
