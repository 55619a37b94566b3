//! The one clap definition of box. It drives the parser, `--help`, the man pages and the
//! shell completions, so a flag exists in exactly one place.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use super::args_attach::AttachArgs;
use super::args_attach::EX_ATTACH;
pub use super::args_auto_update::AutoUpdateArgs;
use super::args_auto_update::EX_AUTO_UPDATE;
use super::args_events::EX_EVENTS;
pub use super::args_events::EventsArgs;
pub use super::args_health::{HealthOpts, HealthcheckCommand, HealthcheckRunArgs};
use super::args_quadlet::EX_QUADLET;
pub use super::args_quadlet::QuadletArgs;

const AFTER_HELP: &str = "\
Examples:
  # An interactive shell in Alpine, removed when it exits
  box run --rm -it alpine sh
  # A server in the background, published on port 8080 of this host
  box run -d --name web -p 8080:80 nginx
  # All containers, running or not
  box ps -a
  # What box found on this host (subuid ranges, cgroups, storage)
  box info

Exit status: 125 when box itself fails, 126 when the command cannot be invoked,
127 when it is not found, otherwise the container's own status (128+N for signal N).";

// Examples shown by `--help` and, as EXAMPLES, in the man pages: `  # what it does`, then
// the command lines.
const EX_PULL: &str = "\
Examples:
  # The latest Alpine from Docker Hub
  box pull alpine
  # One platform of a multi-platform image
  box pull --platform linux/arm64 docker.io/library/alpine:3.20
  # By digest, from a registry on this host that speaks plain http
  box pull --tls-verify=false 127.0.0.1:5000/test/app@sha256:<digest>";
const EX_PUSH: &str = "\
Examples:
  # Push to the registry and repository the image's name gives
  box push 127.0.0.1:5000/team/app:1
  # A local image under another name, as a Docker v2s2 manifest
  box push --format v2s2 alpine registry.example.com/me/alpine:3.20
  # zstd layers, the manifest digest written to a file
  box push --compression-format zstd --digestfile app.digest app registry.example.com/app:2";
const EX_IMAGE_PUSH: &str = "\
Examples:
  box image push alpine registry.example.com/me/alpine:3.20";
const EX_RUN: &str = "\
Examples:
  # Run one command and remove the container afterwards
  box run --rm alpine cat /etc/alpine-release
  # An interactive shell: without a command, the image's own (Entrypoint and Cmd) runs
  box run --rm -it alpine
  # A named server in the background, its port 80 published on 127.0.0.1:8080
  box run -d --name web -p 127.0.0.1:8080:80 nginx
  # Mount the current directory read-only and work in it
  box run --rm -v \"$PWD\":/src:ro -w /src alpine ls
  # Keep data in a named volume
  box run -d --name db -v dbdata:/var/lib/postgresql/data postgres
  # Limit memory and CPU (needs the controllers delegated: see box-rootless(7))
  box run --rm --memory 64m --cpus 0.5 alpine sh -c 'yes > /dev/null'
  # Files created in a bind mount belong to you, not to a subordinate id
  box run --rm --userns keep-id -v \"$PWD\":/work -w /work alpine touch made-by-me
  # Everything after the image is the container's command, flags included
  box run --rm alpine ls -la /";
const EX_CREATE: &str = "\
Examples:
  # Create a container now, start it later
  box create --name web -p 8080:80 nginx
  box start web";
const EX_START: &str = "\
Examples:
  # Start a created or stopped container in the background
  box start web
  # Start it and follow its output until it exits
  box start -a web";
const EX_RESTART: &str = "\
Examples:
  # Stop (SIGTERM, SIGKILL after 10 s) and start again
  box restart web
  # Give it 2 seconds to stop
  box restart -t 2 web";
const EX_PS: &str = "\
Examples:
  # Running containers
  box ps
  # All containers, stopped ones included
  box ps -a
  # Only the ids of the exited ones
  box ps -aq --filter status=exited
  # Your own columns
  box ps -a --format '{{.Names}} {{.Status}}'
  # JSON for scripts
  box ps -a --format json";
const EX_LOGS: &str = "\
Examples:
  # Everything the container printed
  box logs web
  # The last 10 lines, then follow until it exits
  box logs -f --tail 10 web";
const EX_EXEC: &str = "\
Examples:
  # Run one command in a running container
  box exec web cat /etc/hostname
  # An interactive shell inside it
  box exec -it web sh
  # As another user, with an extra variable
  box exec -u nobody -e DEBUG=1 web env";
const EX_STOP: &str = "\
Examples:
  # SIGTERM (or the image's StopSignal), SIGKILL after 10 seconds
  box stop web
  # Give it 2 seconds
  box stop -t 2 web
  # Stop every running container
  box stop -a";
const EX_KILL: &str = "\
Examples:
  # SIGKILL, the default
  box kill web
  # Ask nginx to reload its configuration
  box kill -s HUP web";
const EX_RM: &str = "\
Examples:
  # Remove a stopped container
  box rm web
  # Stop and remove a running one
  box rm -f web
  # Remove every stopped container
  box container prune";
const EX_WAIT: &str = "\
Examples:
  # Print the exit code of web once it stops
  box wait web";
const EX_PAUSE: &str = "\
Examples:
  # Freeze every process of web, then thaw them
  box pause web
  box unpause web";
const EX_UNPAUSE: &str = "\
Examples:
  # Thaw a paused container
  box unpause web";
const EX_RENAME: &str = "\
Examples:
  box rename web frontend";
const EX_TOP: &str = "\
Examples:
  # The processes of web, with their host pids
  box top web";
const EX_CP: &str = "\
Examples:
  # From a container to the host
  box cp web:/etc/hosts ./hosts
  # From the host into a container
  box cp ./app.conf web:/etc/app.conf";
const EX_PORT: &str = "\
Examples:
  # Where web's ports are published on the host
  box port web";
const EX_STATS: &str = "\
Examples:
  # Memory, CPU and pids of every running container, refreshed every second
  box stats
  # One sample of web, as JSON
  box stats --no-stream --format json web";
const EX_IMAGES: &str = "\
Examples:
  # Every local image
  box images
  # Only the ids
  box images -q
  # Only the alpine repository, as JSON
  box images --format json alpine";
const EX_RMI: &str = "\
Examples:
  # Remove an image (layers no other image uses go too)
  box rmi alpine
  # Also remove the containers created from it
  box rmi -f alpine
  # Remove the images no container or tag uses
  box image prune";
const EX_TAG: &str = "\
Examples:
  # Give alpine a name in another registry, then push it with skopeo
  box tag alpine 127.0.0.1:5000/test/alpine:3.20";
const EX_INSPECT: &str = "\
Examples:
  # Everything about a container, as JSON
  box inspect web
  # One field
  box inspect --format '{{.State.Status}}' web
  # An image, even when a container has the same name
  box inspect --type image alpine";
const EX_LOGIN: &str = "\
Examples:
  # Asks for the password
  box login -u alice registry.example.com
  # From a script, without the password on the command line
  printf '%s' \"$TOKEN\" | box login -u alice --password-stdin registry.example.com";
const EX_LOGOUT: &str = "\
Examples:
  box logout registry.example.com
  # Forget every stored credential
  box logout -a";
const EX_COMMIT: &str = "\
Examples:
  # Save what a container changed as a new image
  box commit web myapp:1
  # With a default command and a message
  box commit -c 'CMD [\"/srv/run\"]' -m 'add the app' web myapp:2";
const EX_DIFF: &str = "\
Examples:
  # What a container added (A), changed (C) and deleted (D)
  box diff web
  # The changes of an image's top layer, as JSON
  box diff --format json myapp:1";
const EX_HISTORY: &str = "\
Examples:
  box history alpine
  # Full commands, as a template
  box history --no-trunc --format '{{.ID}} {{.CreatedBy}}' myapp:1";
const EX_EXPORT: &str = "\
Examples:
  # A container's root filesystem as a tarball
  box export -o web.tar web
  box export web | tar -tv";
const EX_CONTAINER_COMMIT: &str = "\
Examples:
  box container commit web myapp:1";
const EX_CONTAINER_DIFF: &str = "\
Examples:
  box container diff web";
const EX_CONTAINER_EXPORT: &str = "\
Examples:
  box container export -o web.tar web";
const EX_IMAGE_DIFF: &str = "\
Examples:
  box image diff myapp:1";
const EX_IMAGE_HISTORY: &str = "\
Examples:
  box image history -q alpine";
const EX_IMPORT: &str = "\
Examples:
  # An image from a root filesystem tarball, with a default command
  box import --change 'CMD [\"/bin/sh\"]' rootfs.tar.gz mybase:1";
const EX_LOAD: &str = "\
Examples:
  box load -i alpine.tar
  box load < alpine.tar";
const EX_SAVE: &str = "\
Examples:
  # A docker-archive, as docker save writes it
  box save -o alpine.tar alpine
  # An OCI image layout in a tarball
  box save --format oci-archive -o alpine-oci.tar alpine";
const EX_INFO: &str = "\
Examples:
  # What box found on this host: subuid ranges, storage driver, cgroups, network helpers
  box info
  box info --format json";
const EX_COMPLETION: &str = "\
Examples:
  # Bash (needs the bash-completion package)
  box completion bash > ~/.local/share/bash-completion/completions/box
  # Zsh (the directory must be in $fpath, before compinit runs)
  box completion zsh > ~/.zfunc/_box
  # Fish
  box completion fish > ~/.config/fish/completions/box.fish";
const EX_UNTAG: &str = "\
Examples:
  # Remove one name, keep the image and its other names
  box untag alpine 127.0.0.1:5000/test/alpine:3.20
  # Remove every name: the image stays, listed as <none>
  box untag alpine";
const EX_VERSION: &str = "\
Examples:
  box version
  # One field, or everything as JSON
  box version --format '{{.Client.Version}}'
  box version --format json";
const EX_CONTAINER_EXISTS: &str = "\
Examples:
  # Create web unless it is there already
  box container exists web || box create --name web nginx";
const EX_IMAGE_EXISTS: &str = "\
Examples:
  # Pull alpine only when it is not in the store
  box image exists alpine || box pull alpine";
const EX_VOLUME_EXISTS: &str = "\
Examples:
  box volume exists data || box volume create data";
const EX_IMAGE_LIST: &str = "\
Examples:
  box image ls
  box image ls -q";
const EX_IMAGE_PULL: &str = "\
Examples:
  box image pull alpine";
const EX_IMAGE_REMOVE: &str = "\
Examples:
  box image rm alpine";
const EX_IMAGE_PRUNE: &str = "\
Examples:
  # Remove dangling images
  box image prune
  # Also images no container uses, without asking
  box image prune -a -f";
const EX_IMAGE_INSPECT: &str = "\
Examples:
  box image inspect alpine
  # Its default command
  box image inspect --format '{{json .Config.Cmd}}' alpine";
const EX_IMAGE_TAG: &str = "\
Examples:
  box image tag alpine alpine:mine";
const EX_CONTAINER_LIST: &str = "\
Examples:
  box container ls -a";
const EX_CONTAINER_PRUNE: &str = "\
Examples:
  # Remove every stopped container without asking
  box container prune -f";
const EX_CONTAINER_INSPECT: &str = "\
Examples:
  box container inspect web";
const EX_VOLUME_CREATE: &str = "\
Examples:
  # Create a volume, then mount it
  box volume create data
  box run --rm -v data:/data alpine touch /data/hello";
const EX_VOLUME_LS: &str = "\
Examples:
  box volume ls
  box volume ls -q";
const EX_VOLUME_RM: &str = "\
Examples:
  box volume rm data";
const EX_VOLUME_INSPECT: &str = "\
Examples:
  # Where a volume lives on the host
  box volume inspect data";
const EX_VOLUME_PRUNE: &str = "\
Examples:
  # Remove the volumes no container uses
  box volume prune -f";
const EX_SYSTEM_PRUNE: &str = "\
Examples:
  # Stopped containers, dangling images, unused layers
  box system prune
  # Everything not in use, volumes too, without asking
  box system prune -a --volumes -f";
const EX_SYSTEM_DF: &str = "\
Examples:
  box system df";
const EX_SYSTEM_CHECK: &str = "\
Examples:
  # Report what is broken in the store
  box system check
  # Remove it (pull the images again afterwards)
  box system check --repair";
const EX_SYSTEM_INFO: &str = "\
Examples:
  box system info";
const EX_SYSTEM_RESET: &str = "\
Examples:
  box system reset          ask, then remove every container, image and volume, and the store
  box system reset -f       the same without asking (needed when stdin is not a terminal)";
const EX_SYSTEM_MIGRATE: &str = "\
Examples:
  box system migrate        say that there is nothing to migrate";
const EX_GENERATE_SYSTEMD: &str = "\
Examples:
  # A user unit that creates a fresh container at every start
  box generate systemd --new --name web > ~/.config/systemd/user/web.service
  systemctl --user daemon-reload && systemctl --user enable --now web
  # Keep it running after you log out
  loginctl enable-linger";
const EX_GENERATE_KUBE: &str = "\
Examples:
  # A Pod with the web and db containers
  box generate kube web db > pod.yaml";

#[derive(Debug, Parser)]
#[command(
    name = "box",
    version,
    about = "Run containers as an ordinary user: rootless, daemonless",
    long_about = "box pulls OCI and Docker images into per-user storage and runs them as \
                  direct children of your shell, inside a user namespace built from your \
                  /etc/subuid and /etc/subgid ranges. No daemon, no root.",
    after_help = AFTER_HELP,
    propagate_version = true,
    // A repeated flag takes the last value, as podman's (lists such as -e still collect).
    args_override_self = true,
    infer_subcommands = false,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalOpts {
    /// Directory for images, layers and container records [default: $XDG_DATA_HOME/box]
    #[arg(long, global = true, env = "BOX_ROOT", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub root: Option<PathBuf>,
    /// Directory for runtime state [default: $XDG_RUNTIME_DIR/box or /tmp/box-$UID]
    #[arg(long, global = true, env = "BOX_RUNROOT", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub runroot: Option<PathBuf>,
    /// Storage driver for container root filesystems [default: best available]
    #[arg(long, global = true, env = "BOX_STORAGE_DRIVER", value_enum)]
    pub storage_driver: Option<StorageDriver>,
    /// How much box tells on stderr
    #[arg(long, global = true, env = "BOX_LOG_LEVEL", value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// Where events are recorded: file (the per-user log `box events` reads) or none
    #[arg(long, global = true, env = "BOX_EVENTS_BACKEND", value_name = "BACKEND", value_parser = ["file", "none"])]
    pub events_backend: Option<String>,
    #[command(flatten)]
    pub more: super::args_run::GlobalMoreOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StorageDriver {
    /// Kernel overlayfs mounted inside the user namespace (userxattr, kernel >= 5.11)
    Overlay,
    /// fuse-overlayfs, for kernels that cannot mount overlay unprivileged
    FuseOverlayfs,
    /// Copy the layers into one directory per container (slow, always works)
    Vfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Default)]
pub enum LogLevel {
    Error,
    #[default]
    Warn,
    Info,
    Debug,
}

/// The subcommands. `defer`: each one's arguments are built only when it is the one
/// parsed (building all of them cost every box run ~0.4 ms), here and in the nested
/// enums. With it, an `Args` struct's doc comment would replace the about of the
/// subcommand it makes or joins: theirs are plain comments (the man-page drift test
/// catches one).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Pull an image from a registry into your store
    #[command(after_help = EX_PULL)]
    Pull(PullArgs),
    /// Push an image from your store to a registry
    #[command(after_help = EX_PUSH)]
    Push(PushArgs),
    /// Create and run a container (pulls the image when missing)
    #[command(after_help = EX_RUN)]
    Run(RunArgs),
    /// Create a container without starting it
    #[command(after_help = EX_CREATE)]
    Create(CreateArgs),
    /// Start one or more created or stopped containers
    #[command(after_help = EX_START)]
    Start(StartArgs),
    /// Stop then start containers
    #[command(after_help = EX_RESTART)]
    Restart(StopArgs),
    /// List containers
    #[command(visible_alias = "list", after_help = EX_PS)]
    Ps(PsArgs),
    /// Show a container's output
    #[command(after_help = EX_LOGS)]
    Logs(LogsArgs),
    /// Run a command in a running container
    #[command(after_help = EX_EXEC)]
    Exec(ExecArgs),
    /// Stop running containers (SIGTERM, then SIGKILL after a timeout)
    #[command(after_help = EX_STOP)]
    Stop(StopArgs),
    /// Send a signal to running containers
    #[command(after_help = EX_KILL)]
    Kill(KillArgs),
    /// Follow a running container's output until it exits, and exit as it did
    #[command(after_help = EX_ATTACH)]
    Attach(AttachArgs),
    /// Remove containers
    #[command(after_help = EX_RM)]
    Rm(RmArgs),
    /// Block until containers stop, then print their exit codes
    #[command(after_help = EX_WAIT)]
    Wait(WaitArgs),
    /// Pause all processes in containers (needs the freezer delegated)
    #[command(after_help = EX_PAUSE)]
    Pause(ContainersArgs),
    /// Unpause paused containers
    #[command(after_help = EX_UNPAUSE)]
    Unpause(ContainersArgs),
    /// Rename a container
    #[command(after_help = EX_RENAME)]
    Rename(RenameArgs),
    /// Show the processes of a container
    #[command(after_help = EX_TOP)]
    Top(TopArgs),
    /// Copy files between a container and the host
    #[command(after_help = EX_CP)]
    Cp(CpArgs),
    /// List a container's published ports
    #[command(after_help = EX_PORT)]
    Port(PortArgs),
    /// Show cgroup usage (memory, cpu, pids) of running containers
    #[command(after_help = EX_STATS)]
    Stats(StatsArgs),
    /// List local images
    #[command(after_help = EX_IMAGES)]
    Images(ImagesArgs),
    /// Remove local images
    #[command(after_help = EX_RMI)]
    Rmi(RmiArgs),
    /// Give an image another name
    #[command(after_help = EX_TAG)]
    Tag(TagArgs),
    /// Show low-level information on containers or images as JSON
    #[command(after_help = EX_INSPECT)]
    Inspect(InspectArgs),
    /// Store credentials for a registry
    #[command(after_help = EX_LOGIN)]
    Login(LoginArgs),
    /// Remove stored credentials for a registry
    #[command(after_help = EX_LOGOUT)]
    Logout(LogoutArgs),
    /// Create an image from a root filesystem tarball
    #[command(after_help = EX_IMPORT)]
    Import(ImportArgs),
    /// Create an image from a container's changes
    #[command(after_help = EX_COMMIT)]
    Commit(CommitArgs),
    /// Build an image from a Containerfile
    #[command(after_help = super::args_build::EX_BUILD)]
    Build(super::args_build::BuildArgs),
    /// Show what a container (or an image's top layer) added, changed and deleted
    #[command(after_help = EX_DIFF)]
    Diff(DiffArgs),
    /// Show the history of an image: one row per layer or config step
    #[command(after_help = EX_HISTORY)]
    History(HistoryArgs),
    /// Write a container's root filesystem as a tar archive
    #[command(after_help = EX_EXPORT)]
    Export(ExportArgs),
    /// Load images from a docker-archive or oci-archive tarball
    #[command(after_help = EX_LOAD)]
    Load(LoadArgs),
    /// Save images to a docker-archive or oci-archive tarball
    #[command(after_help = EX_SAVE)]
    Save(SaveArgs),
    /// Remove names from an image, keeping the image (all its names when none are given)
    #[command(after_help = EX_UNTAG)]
    Untag(UntagArgs),
    /// Show box's version, the Rust compiler it was built with, OS and architecture
    #[command(after_help = EX_VERSION)]
    Version(VersionArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage named volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage user networks: containers on one reach each other by name
    #[command(subcommand)]
    Network(super::args_network::NetworkCommand),
    /// Manage pods: containers sharing a network, host name and IPC
    #[command(subcommand)]
    Pod(super::args_pod::PodCommand),
    /// Play Kubernetes YAML (pods, deployments, config maps, secrets, volume claims)
    #[command(subcommand)]
    Kube(super::args_kube::KubeCommand),
    /// Play Kubernetes YAML (as box kube play)
    #[command(subcommand)]
    Play(super::args_kube::PlayCommand),
    /// Manage the store: prune, disk usage, consistency check
    #[command(subcommand)]
    System(SystemCommand),
    /// Show what box found on this host: user, subuid ranges, storage, cgroups, network
    #[command(after_help = EX_INFO)]
    Info(InfoArgs),
    /// Generate systemd units or Kubernetes YAML from containers
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Print a shell completion script
    #[command(after_help = EX_COMPLETION)]
    Completion(CompletionArgs),
    /// Show the events of containers, images and volumes (follows new ones)
    #[command(after_help = EX_EVENTS)]
    Events(EventsArgs),
    /// Run containers' healthchecks by hand
    #[command(subcommand)]
    Healthcheck(HealthcheckCommand),
    /// Turn Quadlet-style .container, .volume, .image, .network, .pod and .kube files into systemd user units (the generator)
    #[command(after_help = EX_QUADLET)]
    Quadlet(QuadletArgs),
    /// Update containers of systemd units to their image's newest version
    #[command(after_help = EX_AUTO_UPDATE)]
    AutoUpdate(AutoUpdateArgs),
    /// Run a command (a shell by default) in box's user namespace, the store visible
    #[command(after_help = super::args_run::EX_UNSHARE)]
    Unshare(super::args_run::UnshareArgs),
    /// Mount containers' root filesystems (inside box unshare) and print where
    #[command(after_help = super::args_run::EX_MOUNT)]
    Mount(super::args_run::MountArgs),
    /// Unmount containers' root filesystems mounted by box mount
    #[command(visible_alias = "umount", after_help = super::args_run::EX_UNMOUNT)]
    Unmount(super::args_run::UnmountArgs),
    /// Internal: entry points box re-executes itself into (not for users)
    #[command(hide = true, name = "__internal", subcommand)]
    Internal(InternalCommand),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference, e.g. alpine, docker.io/library/alpine:3.20, host:5000/ns/app@sha256:...
    #[arg(value_name = "IMAGE")]
    pub image: String,
    #[command(flatten)]
    pub pull: PullOpts,
}

#[derive(Debug, Args, Clone, Default)]
pub struct PullOpts {
    /// Platform to pull from a multi-platform image, as os/arch[/variant]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<String>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Allow plain http (and unverified TLS) for this registry
    #[arg(long = "tls-verify", value_name = "BOOL", default_missing_value = "true", num_args = 0..=1)]
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Image to push: a name or an id
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Where to push it, e.g. registry.example.com/ns/app:tag [default: the image's name]
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
    /// Manifest format [default: the image's own, else oci]
    #[arg(short = 'f', long, value_enum, value_name = "MANIFEST")]
    pub format: Option<ManifestFormat>,
    /// Compression of the pushed layers (layers stored otherwise are recompressed)
    #[arg(long, value_enum, value_name = "ALGORITHM")]
    pub compression_format: Option<LayerCompression>,
    /// Write the manifest digest to FILE
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub digestfile: Option<PathBuf>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Allow plain http (and unverified TLS) for this registry
    #[arg(long = "tls-verify", value_name = "BOOL", default_missing_value = "true", num_args = 0..=1)]
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestFormat {
    /// OCI image manifest
    Oci,
    /// Docker image manifest v2, schema 2
    V2s2,
    /// The same as v2s2
    Docker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayerCompression {
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not in the store
    #[default]
    Missing,
    /// Always pull
    Always,
    /// Never pull; fail when missing
    Never,
    /// Pull when the registry has a newer image
    Newer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkMode {
    /// User-mode networking with pasta when installed, else slirp4netns
    Default,
    /// pasta (from passt)
    Pasta,
    /// slirp4netns
    Slirp4netns,
    /// Only a loopback interface
    None,
    /// Share the host's network namespace
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SdNotify {
    /// Pass NOTIFY_SOCKET to the container; it sends READY=1 itself
    #[default]
    Container,
    /// box sends READY=1 once the container process has started
    Ready,
    /// Do not talk to systemd at all
    Ignore,
    /// box sends READY=1 once the container's healthcheck first passes
    Healthy,
}

// Everything that defines a container, shared by `run` and `create`.
#[derive(Debug, Args, Clone, Default)]
pub struct ContainerOpts {
    /// Name of the container (unique); a random name otherwise
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to copy from your environment)
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file, one KEY=VALUE per line
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User (name or uid) and group inside the container
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Override the image's entrypoint ("" clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Container host name [default: the short id]
    #[arg(short = 'h', long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,
    /// With --read-only, mount tmpfs on /run, /tmp and /var/tmp (podman's default: true)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub read_only_tmpfs: bool,
    /// Bind mount a host path or named volume (SRC:DEST[:ro|rw][,U][,O][,idmap[=uids=..;gids=..]]:
    /// U chowns SRC to the container user, O overlays it and discards the changes, idmap shifts
    /// its owners by the container's id mapping or the one given (root only)), or an anonymous
    /// volume (DEST)
    #[arg(short, long = "volume", value_name = "SRC:DEST[:OPTS]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: DEST[:OPTS]
    #[arg(long, value_name = "DEST[:OPTS]")]
    pub tmpfs: Vec<String>,
    /// Add a capability to the default set (e.g. NET_ADMIN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from the default set (e.g. CHOWN, or ALL)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Security options: no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json (a
    /// docker seccomp profile; the default is equivalent to docker's)
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Give the container all capabilities box can give and no seccomp or masked paths
    #[arg(long)]
    pub privileged: bool,
    /// User namespace: auto (subuid ranges), keep-id[:uid=N,gid=N] (your uid maps to itself,
    /// or to N), single (only your uid)
    #[arg(long, value_name = "MODE", value_parser = super::args_run::parse_userns, default_value = "auto")]
    pub userns: String,
    /// Network: default, pasta[:OPTIONS], slirp4netns[:OPTIONS], none, host, container:NAME or a user network's name (repeat for several user networks)
    #[arg(long = "network", visible_alias = "net", value_name = "MODE", value_parser = parse_network)]
    pub network: Vec<String>,
    /// Publish a container port: [HOSTIP:][HOSTPORT:]CPORT[/PROTO]
    #[arg(short, long = "publish", value_name = "[IP:][HPORT:]CPORT[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a random host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Add a line to /etc/hosts: HOST:IP
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// DNS server for /etc/resolv.conf
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// Memory limit, e.g. 64m, 1g (needs the memory controller delegated)
    #[arg(short, long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1 for unlimited swap)
    #[arg(long, value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// Number of CPUs, e.g. 0.5
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// CPU CFS quota in microseconds per period (-1 for unlimited)
    #[arg(long, value_name = "US", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds [default: 100000]
    #[arg(long, value_name = "US")]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight, 2..262144; converted to cpu.weight)
    #[arg(short = 'c', long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPU weight (1..10000, cgroup v2)
    #[arg(long, value_name = "N")]
    pub cpu_weight: Option<u64>,
    /// Maximum number of processes (-1 for unlimited) [default: 2048 when pids is delegated]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// CPUs the container may run on, e.g. 0-1 or 0,2
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// How to tell systemd the container is ready (with Type=notify units)
    #[arg(long, value_enum, value_name = "MODE", default_value = "container")]
    pub sdnotify: SdNotify,
    /// Restart policy while box's monitor lives: no, on-failure[:N], always
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    /// Signal to stop the container with [default: the image's StopSignal or SIGTERM]
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before SIGKILL [default: 10]
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u64>,
    /// Set metadata on the container: KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Run in a pod (name or id), or in a new pod: new:NAME
    #[arg(long, value_name = "POD")]
    pub pod: Option<String>,
    /// Another name the container has on its user network (with --network NAME)
    #[arg(long, value_name = "ALIAS")]
    pub network_alias: Vec<String>,
    /// The container's IPv4 address on its user network (with --network NAME)
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// The container's IPv6 address on its dual-stack user network (with --network NAME)
    #[arg(long, value_name = "IP")]
    pub ip6: Option<String>,
    /// The MAC address of the container's interface on its user network (with --network
    /// NAME), e.g. 92:d0:c6:0a:29:33
    #[arg(long, value_name = "MAC")]
    pub mac_address: Option<String>,
    #[command(flatten)]
    pub health: HealthOpts,
    #[command(flatten)]
    pub extra: super::args_run::RunExtraOpts,
    /// When to pull the image
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Platform to pull when the image is missing
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<String>,
    /// Suppress pull progress
    #[arg(short, long)]
    pub quiet: bool,
    /// Image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Command and arguments [default: the image's Entrypoint and Cmd]
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

fn parse_platform(s: &str) -> Result<String, String> {
    crate::registry::Platform::parse(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

fn parse_network(s: &str) -> Result<String, String> {
    match s {
        "default" | "pasta" | "slirp4netns" | "none" | "host" | "private" | "bridge" => {
            Ok(s.into())
        }
        _ if s.strip_prefix("container:").is_some_and(|n| !n.is_empty()) => Ok(s.into()),
        // podman's helper options: pasta:ARG,ARG... and slirp4netns:KEY=VALUE,...
        _ if s.starts_with("pasta:") || s.starts_with("slirp4netns:") => Ok(s.into()),
        // A user network's name (checked against the records at create).
        _ if crate::container::is_docker_name(s, 253) => Ok(s.into()),
        _ => Err(format!(
            "unknown network mode {s:?}: use default, pasta, slirp4netns, none, host, container:NAME or a network's name"
        )),
    }
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (-h is --hostname, as in docker)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run in the background and print the container id
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub container: ContainerOpts,
}

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help (-h is --hostname, as in docker)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub container: ContainerOpts,
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short, long, conflicts_with_all = ["all", "filter"])]
    pub attach: bool,
    /// Attach stdin too (with --attach), even if the container was created without -i
    #[arg(short, long)]
    pub interactive: bool,
    /// Start all containers, whatever their state
    #[arg(long, conflicts_with_all = ["containers", "filter"])]
    pub all: bool,
    /// Start the containers that match (as ps --filter: status=, name=, id=, ancestor=, label=)
    #[arg(short, long, value_name = "KEY=VALUE", conflicts_with = "containers")]
    pub filter: Vec<String>,
    /// Containers to start (name or id)
    #[arg(value_name = "CONTAINER", required_unless_present_any = ["all", "filter"])]
    pub containers: Vec<String>,
}

/// A state `box wait --condition` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitCondition {
    Created,
    Running,
    Paused,
    /// Not running (created, or exited)
    Stopped,
    Exited,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// State to wait for (repeat for any of several) [default: stopped]
    #[arg(long, value_enum, value_name = "STATE")]
    pub condition: Vec<WaitCondition>,
    /// How often to look, in milliseconds or with a unit (500ms, 2s)
    #[arg(short, long, value_name = "DURATION", default_value = "250ms", value_parser = parse_interval)]
    pub interval: std::time::Duration,
    /// Containers (name or id)
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// `wait --interval`: a number of milliseconds, or one with a unit (ms, s, m).
fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid interval {s:?}: use milliseconds or a duration like 500ms or 2s");
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 0.001)
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if !n.is_finite() || n <= 0.0 || n * scale > 3600.0 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(n * scale))
}

#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// Containers (name or id)
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    /// Aligned columns for people
    #[default]
    Table,
    /// JSON for programs
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones
    #[arg(short, long)]
    pub all: bool,
    /// Print only container ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter: status=running|exited|created, name=NAME, id=ID, ancestor=IMAGE, label=K=V,
    /// exited=CODE, network=MODE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Output format: table, json, or a Go template like '{{.Names}} {{.Status}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Show the host pid of each container
    #[arg(long)]
    pub pid: bool,
    /// Show only the most recently created container
    #[arg(short, long)]
    pub latest: bool,
    /// Show each container's pod (POD ID and PODNAME columns)
    #[arg(long)]
    pub pod: bool,
    #[command(flatten)]
    pub more: super::args_run::PsMoreArgs,
}

/// `--tail N`: a negative N is every line (podman's default, -1).
fn parse_tail(s: &str) -> Result<usize, String> {
    match s.parse::<i64>() {
        Ok(n) if n < 0 => Ok(usize::MAX),
        Ok(n) => Ok(n as usize),
        Err(_) => Err(format!("{s:?} is not a number of lines")),
    }
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow the output until the container exits
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end (-1: all, as podman)
    #[arg(long, value_name = "N", value_parser = parse_tail, allow_negative_numbers = true)]
    pub tail: Option<usize>,
    /// Show lines since a time (RFC 3339, Unix seconds) or duration (e.g. 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show lines until a time (RFC 3339, Unix seconds) or duration ago (e.g. 10m)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
    /// With several containers, prefix each line with its container's name (else its id)
    #[arg(short, long)]
    pub names: bool,
    /// The most recently created container
    #[arg(short, long, conflicts_with = "containers")]
    pub latest: bool,
    /// Containers (name or id)
    #[arg(value_name = "CONTAINER", required_unless_present = "latest")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// User (name or uid) and group inside the container
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Give the process extended privileges (as with run --privileged)
    #[arg(long)]
    pub privileged: bool,
    /// Pass descriptors 3 to 3+N-1 of box to the command
    #[arg(long, value_name = "N")]
    pub preserve_fds: Option<u32>,
    /// Container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Command and arguments
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL [default: the container's stop timeout, 10]
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECONDS"
    )]
    pub time: Option<u64>,
    /// All containers
    #[arg(short, long, conflicts_with_all = ["containers", "filter", "cidfile"])]
    pub all: bool,
    /// The containers that match (as ps --filter: status=, name=, id=, ancestor=, label=)
    #[arg(
        short,
        long,
        value_name = "KEY=VALUE",
        conflicts_with_all = ["containers", "cidfile"]
    )]
    pub filter: Vec<String>,
    /// Read the container id (or name) from FILE
    #[arg(long, value_name = "FILE")]
    pub cidfile: Vec<PathBuf>,
    /// A container that does not exist is not an error
    #[arg(short, long)]
    pub ignore: bool,
    /// Containers (name or id)
    #[arg(value_name = "CONTAINER", required_unless_present_any = ["all", "filter", "cidfile"])]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send (name like TERM or SIGTERM, or number)
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL", value_parser = parse_signal_arg)]
    pub signal: String,
    /// Signal all running containers
    #[arg(short, long, conflicts_with_all = ["containers", "cidfile"])]
    pub all: bool,
    /// Read the container id (or name) from FILE
    #[arg(long, value_name = "FILE")]
    pub cidfile: Vec<PathBuf>,
    /// Containers (name or id)
    #[arg(value_name = "CONTAINER", required_unless_present_any = ["all", "cidfile"])]
    pub containers: Vec<String>,
}

/// Signal names for `kill -s`: completion offers these; numbers are accepted too.
pub const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Parse a signal given as a name (TERM, SIGTERM, term) or a number.
pub fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, String> {
    use std::str::FromStr;
    if let Ok(n) = s.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n)
            .map_err(|_| format!("unknown signal number {n}: use 1..31 or a name like TERM"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    nix::sys::signal::Signal::from_str(&name)
        .map_err(|_| format!("unknown signal {s:?}: use a name like TERM, KILL, HUP or a number"))
}

/// docker's signal names (without SIG), as moby's `signal.SignalMap` has them on Linux,
/// before the real-time ones.
/// A signal as docker accepts it for `--stop-signal` and an image's `StopSignal` (see
/// `spec::signal_number`).
pub fn parse_signal_number(s: &str) -> Result<i32, String> {
    crate::spec::signal_number(s)
}

fn parse_signal_arg(s: &str) -> Result<String, String> {
    parse_signal(s).map(|_| s.to_string())
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Stop and remove running containers too; a missing container is not an error
    #[arg(short, long)]
    pub force: bool,
    /// With --force: seconds to wait after the stop signal before SIGKILL [default: SIGKILL at once]
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u64>,
    /// A container that does not exist is not an error
    #[arg(short, long)]
    pub ignore: bool,
    /// Also remove the containers that depend on it (joined with --network container:NAME)
    #[arg(long)]
    pub depend: bool,
    /// Remove the anonymous volumes of the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove all containers
    #[arg(short, long, conflicts_with = "containers")]
    pub all: bool,
    /// Containers (name or id)
    #[arg(value_name = "CONTAINER", required_unless_present = "all")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RenameArgs {
    /// Container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// New name
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// ps(1) descriptors to show, as podman (pid, user, args, comm, pcpu, etime, time,
    /// tty, vsz, rss, nice, pgid, ppid, group, ruser, rgroup, groups, hpid, huser,
    /// hgroup, hgroups, state, stime, seccomp, label, capinh, capprm, capeff, capbnd,
    /// capamb) or AIX descriptors (%C %G %P %U %a %c %g %n %p %r %t %u %x %y %z)
    #[arg(value_name = "DESCRIPTORS", allow_hyphen_values = true)]
    pub descriptors: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Source: CONTAINER:PATH or a host path
    #[arg(value_name = "SRC")]
    pub src: String,
    /// Destination: CONTAINER:PATH or a host path
    #[arg(value_name = "DEST")]
    pub dest: String,
}

#[derive(Debug, Args)]
pub struct PortArgs {
    /// Every running container's ports, each line prefixed with its short id
    #[arg(short, long, conflicts_with = "latest")]
    pub all: bool,
    /// The most recently created container
    #[arg(short, long)]
    pub latest: bool,
    /// Container (name or id; not with --all or --latest), then the container port to look
    /// up: PORT[/PROTO] (tcp when not given)
    #[arg(value_name = "CONTAINER", num_args = 0..=2)]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table, json, or a Go template like '{{.Name}} {{.MemUsage}}'
    /// (fields: ID, ContainerID, Name, CPUPerc, CPU, MemUsage, MemUsageBytes, MemPerc,
    /// PIDs, NetIO, BlockIO; a `table` prefix adds a header)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Containers [default: all running]
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Print only image ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate image ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Show image digests
    #[arg(long)]
    pub digests: bool,
    /// Output format: table, json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Only images whose reference matches
    #[arg(value_name = "REPOSITORY")]
    pub reference: Option<String>,
    #[command(flatten)]
    pub more: super::args_run::ImagesMoreArgs,
}

#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove images even when containers use them (removes those containers)
    #[arg(short, long)]
    pub force: bool,
    /// Remove all images
    #[arg(short, long)]
    pub all: bool,
    /// Images (reference or id)
    #[arg(value_name = "IMAGE", required_unless_present = "all")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image (reference or id)
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// New references
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectType {
    Container,
    Image,
    Volume,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Go template applied to each object, e.g. '{{.State.Status}}' or '{{json .Config}}'
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Only look for this kind of object
    #[arg(long = "type", value_enum)]
    pub kind: Option<InspectType>,
    /// Add the sizes of a container (SizeRw: its writable layer, SizeRootFs: with the image)
    #[arg(short, long)]
    pub size: bool,
    /// Containers, images or volumes (name or id)
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name
    #[arg(short, long, value_name = "NAME")]
    pub username: Option<String>,
    /// Password (prefer --password-stdin)
    #[arg(short, long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Credentials file [default: $XDG_CONFIG_HOME/box/auth.json]
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub authfile: Option<PathBuf>,
    /// Allow plain http (and unverified TLS) for this registry
    #[arg(long = "tls-verify", value_name = "BOOL", default_missing_value = "true", num_args = 0..=1)]
    pub tls_verify: Option<bool>,
    /// Registry host[:port] [default: docker.io]
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Remove the credentials of every registry
    #[arg(short, long)]
    pub all: bool,
    /// Credentials file [default: $XDG_CONFIG_HOME/box/auth.json]
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub authfile: Option<PathBuf>,
    /// Registry host[:port] [default: docker.io]
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Root filesystem tarball (gzip, zstd or plain; - for stdin)
    #[arg(value_name = "TARBALL", value_hint = clap::ValueHint::FilePath)]
    pub tarball: PathBuf,
    /// Name for the new image
    #[arg(value_name = "NAME[:TAG]")]
    pub reference: String,
    /// Set the image's Cmd, e.g. --change 'CMD ["/bin/sh"]'
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME,
    /// WORKDIR or STOPSIGNAL
    #[arg(short, long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,
    /// Commit message (the history entry's comment)
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Author of the image, e.g. 'Jane Doe <jane@example.com>'
    #[arg(short, long, value_name = "NAME")]
    pub author: Option<String>,
    /// Pause the container while its changes are read (needs the freezer delegated;
    /// ignored otherwise)
    #[arg(short, long, value_name = "BOOL", default_missing_value = "true", num_args = 0..=1, require_equals = true)]
    pub pause: Option<bool>,
    /// Print only the image id
    #[arg(short, long)]
    pub quiet: bool,
    /// Clamp file times and set the creation time to this Unix time [default:
    /// $SOURCE_DATE_EPOCH]
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u64>,
    /// The container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Name for the new image [default: none, a dangling image]
    #[arg(value_name = "IMAGE")]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DiffFormat {
    /// One `A|C|D /path` line per change
    #[default]
    Text,
    /// {"added": [...], "changed": [...], "deleted": [...]}
    Json,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// A container (name or id) or an image (reference or id)
    #[arg(value_name = "CONTAINER|IMAGE")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show sizes in human units (false: bytes)
    #[arg(short = 'H', long, value_name = "BOOL", default_value_t = true, default_missing_value = "true", num_args = 0..=1, require_equals = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Do not truncate ids and commands
    #[arg(long)]
    pub no_trunc: bool,
    /// Print only the ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Go template per row (.ID .Created .CreatedSince .CreatedBy .Size .Comment .Tags), or json
    #[arg(long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// The image (reference or id)
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// File to write [default: stdout, which must not be a terminal]
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub output: Option<PathBuf>,
    /// The container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive to read [default: stdin]
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub input: Option<PathBuf>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ArchiveFormat {
    /// docker save format (manifest.json + layer tarballs)
    #[default]
    DockerArchive,
    /// OCI image layout in a tarball
    OciArchive,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// File to write [default: stdout]
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = ArchiveFormat::DockerArchive)]
    pub format: ArchiveFormat,
    /// Images to save
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List local images
    #[command(visible_alias = "ls", after_help = EX_IMAGE_LIST)]
    List(ImagesArgs),
    /// Pull an image
    #[command(after_help = EX_IMAGE_PULL)]
    Pull(PullArgs),
    /// Build an image from a Containerfile
    #[command(after_help = super::args_build::EX_IMAGE_BUILD)]
    Build(super::args_build::BuildArgs),
    /// Push an image
    #[command(after_help = EX_IMAGE_PUSH)]
    Push(PushArgs),
    /// Remove images
    #[command(visible_alias = "rm", after_help = EX_IMAGE_REMOVE)]
    Remove(RmiArgs),
    /// Remove images no container or tag uses
    #[command(after_help = EX_IMAGE_PRUNE)]
    Prune(ImagePruneArgs),
    /// Show image details
    #[command(after_help = EX_IMAGE_INSPECT)]
    Inspect(InspectArgs),
    /// Tag an image
    #[command(after_help = EX_IMAGE_TAG)]
    Tag(TagArgs),
    /// Show what an image's top layer added, changed and deleted
    #[command(after_help = EX_IMAGE_DIFF)]
    Diff(DiffArgs),
    /// Show the history of an image
    #[command(after_help = EX_IMAGE_HISTORY)]
    History(HistoryArgs),
    /// Remove names from an image, keeping the image
    #[command(after_help = EX_UNTAG)]
    Untag(UntagArgs),
    /// Exit 0 when an image is in the store, 1 when it is not
    #[command(after_help = EX_IMAGE_EXISTS)]
    Exists(ImageExistsArgs),
    /// Save images to a docker-archive or oci-archive tarball
    #[command(after_help = EX_SAVE)]
    Save(SaveArgs),
    /// Load images from a docker-archive or oci-archive tarball
    #[command(after_help = EX_LOAD)]
    Load(LoadArgs),
    /// Create an image from a root filesystem tarball
    #[command(after_help = EX_IMPORT)]
    Import(ImportArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ls", "ps"], after_help = EX_CONTAINER_LIST)]
    List(PsArgs),
    /// Remove all stopped containers
    #[command(after_help = EX_CONTAINER_PRUNE)]
    Prune(ForceArgs),
    /// Show container details
    #[command(after_help = EX_CONTAINER_INSPECT)]
    Inspect(InspectArgs),
    /// Create an image from a container's changes
    #[command(after_help = EX_CONTAINER_COMMIT)]
    Commit(CommitArgs),
    /// Show what a container added, changed and deleted
    #[command(after_help = EX_CONTAINER_DIFF)]
    Diff(DiffArgs),
    /// Write a container's root filesystem as a tar archive
    #[command(after_help = EX_CONTAINER_EXPORT)]
    Export(ExportArgs),
    /// Exit 0 when a container exists, 1 when it does not
    #[command(after_help = EX_CONTAINER_EXISTS)]
    Exists(ContainerExistsArgs),
    /// Create and run a container (pulls the image when missing)
    #[command(after_help = EX_RUN)]
    Run(RunArgs),
    /// Create a container without starting it
    #[command(after_help = EX_CREATE)]
    Create(CreateArgs),
    /// Start one or more created or stopped containers
    #[command(after_help = EX_START)]
    Start(StartArgs),
    /// Stop running containers (SIGTERM, then SIGKILL after a timeout)
    #[command(after_help = EX_STOP)]
    Stop(StopArgs),
    /// Stop then start containers
    #[command(after_help = EX_RESTART)]
    Restart(StopArgs),
    /// Remove containers
    #[command(after_help = EX_RM)]
    Rm(RmArgs),
    /// Show a container's output
    #[command(after_help = EX_LOGS)]
    Logs(LogsArgs),
    /// Run a command in a running container
    #[command(after_help = EX_EXEC)]
    Exec(ExecArgs),
    /// Copy files between a container and the host
    #[command(after_help = EX_CP)]
    Cp(CpArgs),
    /// Send a signal to running containers
    #[command(after_help = EX_KILL)]
    Kill(KillArgs),
    /// Follow a running container's output until it exits, and exit as it did
    #[command(after_help = EX_ATTACH)]
    Attach(AttachArgs),
    /// Block until containers stop, then print their exit codes
    #[command(after_help = EX_WAIT)]
    Wait(WaitArgs),
    /// Pause all processes in containers (needs the freezer delegated)
    #[command(after_help = EX_PAUSE)]
    Pause(ContainersArgs),
    /// Unpause paused containers
    #[command(after_help = EX_UNPAUSE)]
    Unpause(ContainersArgs),
    /// Rename a container
    #[command(after_help = EX_RENAME)]
    Rename(RenameArgs),
    /// Show the processes of a container
    #[command(after_help = EX_TOP)]
    Top(TopArgs),
    /// List a container's published ports
    #[command(after_help = EX_PORT)]
    Port(PortArgs),
    /// Show cgroup usage (memory, cpu, pids) of running containers
    #[command(after_help = EX_STATS)]
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
pub struct ContainerExistsArgs {
    /// Container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct ImageExistsArgs {
    /// Image (reference or id)
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct VolumeExistsArgs {
    /// Volume name
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct UntagArgs {
    /// Image (reference or id)
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Names to remove [default: every name of the image]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format: json, or a Go template such as '{{.Client.Version}}'
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also remove unused images, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(short, long)]
    pub force: bool,
    /// Also remove volumes no container uses
    #[arg(long)]
    pub volumes: bool,
}

// `image prune`.
#[derive(Debug, Args)]
pub struct ImagePruneArgs {
    /// Also remove unused images, not only dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

// `container prune`, `volume prune`.
#[derive(Debug, Args)]
pub struct ForceArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a named volume
    #[command(after_help = EX_VOLUME_CREATE)]
    Create(super::args_run::VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list", after_help = EX_VOLUME_LS)]
    Ls(VolumeLsArgs),
    /// Remove volumes
    #[command(after_help = EX_VOLUME_RM)]
    Rm(VolumeRmArgs),
    /// Show volume details
    #[command(after_help = EX_VOLUME_INSPECT)]
    Inspect(super::args_run::VolumeInspectArgs),
    /// Remove volumes no container uses
    #[command(after_help = EX_VOLUME_PRUNE)]
    Prune(ForceArgs),
    /// Exit 0 when a volume exists, 1 when it does not
    #[command(after_help = EX_VOLUME_EXISTS)]
    Exists(VolumeExistsArgs),
    /// Write a volume's contents as a tar archive (to stdout or -o FILE)
    #[command(after_help = super::args_run::EX_VOLUME_EXPORT)]
    Export(super::args_run::VolumeExportArgs),
    /// Unpack a tar archive (a file, or - for stdin) into a volume
    #[command(after_help = super::args_run::EX_VOLUME_IMPORT)]
    Import(super::args_run::VolumeImportArgs),
}

#[derive(Debug, Args)]
pub struct VolumeNameArgs {
    /// Volume name [default: a random name]
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeNamesArgs {
    /// Volume names
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Remove volumes even when containers use them
    #[arg(short, long)]
    pub force: bool,
    /// Remove every volume (those containers use only with -f)
    #[arg(short, long)]
    pub all: bool,
    /// Volume names
    #[arg(value_name = "NAME", required_unless_present = "all")]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Print only names
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Filter: name=NAME, label=K[=V], driver=local, dangling=true|false
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Remove stopped containers, dangling images and unused layers
    #[command(after_help = EX_SYSTEM_PRUNE)]
    Prune(PruneArgs),
    /// Show disk usage of images, containers and volumes
    #[command(after_help = EX_SYSTEM_DF)]
    Df,
    /// Verify the store: blob digests, layer dirs, image records, container state
    #[command(after_help = EX_SYSTEM_CHECK)]
    Check(CheckArgs),
    /// Same as `box info`
    #[command(after_help = EX_SYSTEM_INFO)]
    Info(InfoArgs),
    /// Remove every container, image and volume, and the store itself
    #[command(after_help = EX_SYSTEM_RESET)]
    Reset(ForceArgs),
    /// Nothing to migrate: box's records need no conversion (accepted for podman's scripts)
    #[command(after_help = EX_SYSTEM_MIGRATE)]
    Migrate,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Remove what is broken instead of only reporting it
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format: table, json, or a Go template over podman's info structure
    /// ('{{.Host.Arch}}', '{{.Store.GraphRoot}}', '{{.Version.Version}}')
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum GenerateCommand {
    /// Print a systemd user unit that runs a container in the foreground (for a pod: its unit and one per container)
    #[command(after_help = EX_GENERATE_SYSTEMD)]
    Systemd(GenerateSystemdArgs),
    /// Print a Kubernetes Pod for a container
    #[command(after_help = EX_GENERATE_KUBE)]
    Kube(GenerateKubeArgs),
}

#[derive(Debug, Args)]
pub struct GenerateSystemdArgs {
    /// Create a fresh container from the recorded configuration at every start
    #[arg(long)]
    pub new: bool,
    /// Use the container's name, not its id, in the unit
    #[arg(short, long)]
    pub name: bool,
    /// Restart policy for the unit
    #[arg(long, value_name = "POLICY", default_value = "on-failure")]
    pub restart_policy: String,
    /// Seconds systemd waits for the container to stop
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 10)]
    pub time: u64,
    /// Container or pod (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct GenerateKubeArgs {
    /// Containers to put in the pod, or one pod (all its containers)
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// Shell to generate the script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Hidden entry points: box re-executes itself into these so that no work that forks
/// happens in a multithreaded process.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum InternalCommand {
    /// Unpack layer blobs inside the user namespace (args: JSON job on stdin)
    Unpack,
    /// Remove store directories inside the user namespace
    Remove {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Probe whether overlayfs mounts inside a user namespace (in DIR)
    Probe { dir: PathBuf },
    /// Detached container monitor
    Monitor { id: String },
    /// Run a container's healthcheck command once (for its monitor or healthcheck run)
    Healthcheck { id: String },
    /// Run a foreground container's healthchecks on schedule while SUPERVISOR lives
    HealthLoop {
        id: String,
        #[arg(value_name = "N")]
        supervisor: i32,
    },
    /// `box volume import`'s process: unpack a tar from stdin into DIR, owners kept
    VolumeImport { dir: PathBuf },
    /// `box unshare`'s process: enter the user namespace, then run the command
    Unshare {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Answer a shell completion request: the words typed so far
    Complete {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        words: Vec<String>,
    },
}

/// The clap command, for man pages and completion generators.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

impl From<StorageDriver> for crate::spec::Driver {
    fn from(d: StorageDriver) -> crate::spec::Driver {
        match d {
            StorageDriver::Overlay => crate::spec::Driver::Overlay,
            StorageDriver::FuseOverlayfs => crate::spec::Driver::FuseOverlayfs,
            StorageDriver::Vfs => crate::spec::Driver::Vfs,
        }
    }
}

impl From<SdNotify> for crate::spec::SdNotify {
    fn from(m: SdNotify) -> crate::spec::SdNotify {
        match m {
            SdNotify::Container => crate::spec::SdNotify::Container,
            SdNotify::Ready => crate::spec::SdNotify::Ready,
            SdNotify::Ignore => crate::spec::SdNotify::Ignore,
            SdNotify::Healthy => crate::spec::SdNotify::Healthy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn run_keeps_command_flags_for_the_container() {
        let cli = Cli::try_parse_from([
            "box", "run", "--rm", "-it", "alpine", "ls", "-la", "--", "x",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert!(r.rm && r.container.interactive && r.container.tty);
        assert_eq!(r.container.image, "alpine");
        assert_eq!(r.container.command, ["ls", "-la", "--", "x"]);
    }

    #[test]
    fn a_repeated_flag_takes_the_last_value_and_lists_still_collect() {
        let cli = Cli::try_parse_from([
            "box",
            "run",
            "--name",
            "a",
            "--name",
            "b",
            "-e",
            "A=1",
            "-e",
            "B=2",
            "-v",
            "/x:/x",
            "-v",
            "/y:/y",
            "-p",
            "1:1",
            "-p",
            "2:2",
            "--hostname",
            "h1",
            "--hostname",
            "h2",
            "--network",
            "front",
            "--network",
            "back",
            "alpine",
        ])
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!()
        };
        assert_eq!(r.container.name.as_deref(), Some("b"));
        assert_eq!(r.container.hostname.as_deref(), Some("h2"));
        // --network repeats for several user networks, as podman's.
        assert_eq!(r.container.network, ["front", "back"]);
        assert_eq!(r.container.env, ["A=1", "B=2"]);
        assert_eq!(r.container.volume, ["/x:/x", "/y:/y"]);
        assert_eq!(r.container.publish, ["1:1", "2:2"]);
        // In the groups too.
        let cli = Cli::try_parse_from(["box", "container", "ps", "--format", "x", "--format", "y"])
            .unwrap();
        let Command::Container(ContainerCommand::List(p)) = cli.command else {
            panic!()
        };
        assert_eq!(p.format.as_deref(), Some("y"));
    }

    #[test]
    fn signals_parse_by_name_and_number() {
        use nix::sys::signal::Signal;
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("sigkill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("1").unwrap(), Signal::SIGHUP);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn stop_signals_parse_as_docker_does() {
        for (s, n) in [
            ("TERM", 15),
            ("sigterm", 15),
            ("SIGQUIT", 3),
            ("iot", 6),
            ("CLD", 17),
            ("1", 1),
            ("37", 37),
            ("64", 64),
            ("RTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("rtmin+15", 49),
            ("RTMAX-14", 50),
            ("SIGRTMAX-1", 63),
            ("RTMAX", 64),
        ] {
            assert_eq!(parse_signal_number(s), Ok(n), "{s}");
        }
        for s in [
            "",
            "0",
            "-1",
            "65",
            "99",
            "4294967311",
            "BOGUS",
            "SIGBOGUS",
            "SIG",
            "RTMIN+16",
            "RTMIN+0",
            "RTMIN-1",
            "RTMIN+",
            "RTMIN++1",
            "RTMAX-15",
            "RTMAX+1",
            "RTMIN+-1",
            "RTMAX--1",
            " TERM",
            "TERM ",
        ] {
            let e = parse_signal_number(s).unwrap_err();
            assert!(e.starts_with("unknown signal"), "{s}: {e}");
        }
    }

    #[test]
    fn network_modes_validated() {
        assert!(parse_network("none").is_ok());
        assert!(parse_network("container:web").is_ok());
        assert!(parse_network("container:").is_err());
        // A name: a user network, checked against the records at create.
        assert!(parse_network("backend").is_ok());
        assert!(parse_network("no such").is_err());
    }
}
