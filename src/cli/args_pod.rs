//! `box pod ...`: the clap definitions of the pod commands (declared apart from `args.rs`;
//! `Command::Pod` is the one line there).
use clap::{Args, Subcommand};

const EX_POD: &str = "\
Examples:
  # A pod whose port 8080 on this host reaches port 80 of its containers
  box pod create --name web -p 127.0.0.1:8080:80
  # Two containers in it: they share localhost, the host name and IPC
  box run -d --pod web --name app alpine httpd -f -p 80
  box run --rm --pod web alpine wget -qO- http://localhost:80/
  # Its containers, then everything gone
  box ps --pod --filter pod=web
  box pod rm -f web";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
#[command(after_help = EX_POD)]
pub enum PodCommand {
    /// Create a pod: an infra process holding the namespaces its containers share
    Create(Box<PodCreateArgs>),
    /// Start pods (the infra container first, then the others)
    Start(PodsArgs),
    /// Stop pods (their containers, then the infra container)
    Stop(PodStopArgs),
    /// Stop and start pods
    Restart(PodsArgs),
    /// Remove pods (-f: their containers too)
    Rm(PodRmArgs),
    /// List pods
    #[command(visible_aliases = ["ls", "list"])]
    Ps(PodPsArgs),
    /// Show pod details as JSON
    Inspect(PodInspectArgs),
    /// Exit 0 when a pod exists, 1 when it does not
    Exists(PodExistsArgs),
    /// Send a signal to the running containers of pods
    Kill(PodKillArgs),
    /// Freeze every running container of pods
    Pause(PodsArgs),
    /// Thaw the paused containers of pods
    Unpause(PodsArgs),
    /// The processes of a pod's running containers
    Top(PodTopArgs),
    /// The output of a pod's containers
    Logs(PodLogsArgs),
    /// Remove every pod none of whose containers runs
    Prune(PodPruneArgs),
}

#[derive(Debug, Args)]
pub struct PodCreateArgs {
    /// Name of the pod (unique among pods); a random name otherwise
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Publish a port of the pod: [HOSTIP:][HOSTPORT:]CPORT[/PROTO]
    #[arg(short, long = "publish", value_name = "[IP:][HPORT:]CPORT[/PROTO]")]
    pub publish: Vec<String>,
    /// The pod's network: default, pasta, slirp4netns, none, host or a user network's name
    #[arg(long = "network", visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,
    /// The host name its containers share [default: the pod's name]
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Namespaces the containers share: a comma-separated subset of ipc, net, uts
    #[arg(long, value_name = "LIST", default_value = "ipc,net,uts")]
    pub share: String,
    /// Create the infra container (false: the containers share nothing)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub infra: bool,
    /// Run the infra container from this image (its entrypoint and command, or
    /// --infra-command) instead of box's built-in pause program (no image)
    #[arg(long, value_name = "IMAGE")]
    pub infra_image: Option<String>,
    /// The infra container's command with --infra-image: words split at spaces, or a JSON
    /// array ('["sh","-c","..."]') [default: the image's entrypoint and command]
    #[arg(long, value_name = "COMMAND", requires = "infra_image")]
    pub infra_command: Option<String>,
    /// Name of the infra container [default: the pod's short id, then -infra]
    #[arg(long, value_name = "NAME")]
    pub infra_name: Option<String>,
    /// Set metadata on the pod: KEY=VALUE
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Memory limit of the pod's cgroup (all its containers), e.g. 512m (needs delegated cgroup v2)
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU limit of the pod's cgroup, in CPUs (e.g. 1.5)
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// CPUs the pod's containers may run on (0-3, 0,1)
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Print nothing but errors
    #[arg(short, long)]
    pub quiet: bool,
    /// Name of the pod (as --name)
    #[arg(value_name = "NAME", conflicts_with = "name")]
    pub pod_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct PodsArgs {
    /// Every pod
    #[arg(short, long)]
    pub all: bool,
    /// Pods (name or id)
    #[arg(value_name = "POD", required_unless_present = "all")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodStopArgs {
    /// Every pod
    #[arg(short, long)]
    pub all: bool,
    /// A pod that does not exist is not an error
    #[arg(short, long)]
    pub ignore: bool,
    /// Seconds to wait for each container to stop before SIGKILL
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u64>,
    /// Pods (name or id)
    #[arg(value_name = "POD", required_unless_present = "all")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodRmArgs {
    /// Every pod
    #[arg(short, long)]
    pub all: bool,
    /// Stop and remove the pod's containers too
    #[arg(short, long)]
    pub force: bool,
    /// A pod that does not exist is not an error
    #[arg(short, long)]
    pub ignore: bool,
    /// Seconds to wait for each running container to stop (with -f) before SIGKILL
    #[arg(short, long, value_name = "SECONDS")]
    pub time: Option<u64>,
    /// Pods (name or id)
    #[arg(value_name = "POD", required_unless_present = "all")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodPsArgs {
    /// Print only pod ids
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter: name=NAME, id=ID, label=K[=V], status=created|running|degraded|exited|paused
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Output format: table, json, or a Go template like '{{.Name}} {{.Status}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Also show the names of each pod's containers
    #[arg(long)]
    pub ctr_names: bool,
}

#[derive(Debug, Args)]
pub struct PodInspectArgs {
    /// Go template applied to each pod, e.g. '{{.Name}}'
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Pods (name or id)
    #[arg(value_name = "POD", required = true)]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodExistsArgs {
    /// Pod (name or id)
    #[arg(value_name = "POD")]
    pub pod: String,
}

#[derive(Debug, Args)]
pub struct PodKillArgs {
    /// Every pod
    #[arg(short, long)]
    pub all: bool,
    /// Signal to send (name or number)
    #[arg(short, long, value_name = "SIGNAL", default_value = "KILL")]
    pub signal: String,
    /// Pods (name or id)
    #[arg(value_name = "POD", required_unless_present = "all")]
    pub pods: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PodTopArgs {
    /// Pod (name or id)
    #[arg(value_name = "POD")]
    pub pod: String,
}

#[derive(Debug, Args)]
pub struct PodLogsArgs {
    /// Only this container of the pod (name or id)
    #[arg(short, long, value_name = "CONTAINER")]
    pub container: Option<String>,
    /// Follow the output until the container exits (needs -c)
    #[arg(short, long, requires = "container")]
    pub follow: bool,
    /// Number of lines to show from the end of each container's log
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,
    /// Pod (name or id)
    #[arg(value_name = "POD")]
    pub pod: String,
}

#[derive(Debug, Args)]
pub struct PodPruneArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}
