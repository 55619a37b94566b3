//! `box network ...`: the clap definitions (declared apart from `args.rs`; `Command::Network`
//! is the line there).
use clap::{Args, Subcommand};

const EX_NETWORK: &str = "\
Examples:
  # A network with the first free 10.89.N.0/24 subnet
  box network create backend
  # With a subnet and gateway of your own, no route outside
  box network create --subnet 10.90.0.0/24 --gateway 10.90.0.254 --internal private-net
  # Dual stack: IPv4 and IPv6 addresses, names answering A and AAAA
  box network create --ipv6 v6net
  # Two containers that reach each other by name
  box run -d --network backend --name db alpine nc -lk -p 6379 -e echo PONG
  box run --rm --network backend alpine nc db 6379
  box network ls
  box network rm backend";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
#[command(after_help = EX_NETWORK)]
pub enum NetworkCommand {
    /// Create a network: its containers reach each other by name (run --network NAME)
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Show networks as JSON
    Inspect(NetworkInspectArgs),
    /// Remove networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove every network no container uses
    Prune(NetworkPruneArgs),
    /// Exit 0 when a network exists, 1 when it does not
    Exists(NetworkExistsArgs),
    /// Put a container on one more network (a running one at once)
    Connect(NetworkConnectArgs),
    /// Take a container off one of its networks (a running one at once)
    Disconnect(NetworkDisconnectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver: only bridge
    #[arg(short, long, value_name = "DRIVER", value_parser = ["bridge"])]
    pub driver: Option<String>,
    /// Subnet in CIDR form: an IPv4 one, an IPv6 one, or both (dual stack) [default: the first free 10.89.N.0/24]
    #[arg(long, value_name = "CIDR")]
    pub subnet: Vec<String>,
    /// Lease containers' IPv4 addresses from this range of the --subnet, in CIDR form (--ip may still ask for any address of the subnet)
    #[arg(long, value_name = "CIDR")]
    pub ip_range: Option<String>,
    /// Gateway address, one per --subnet in their order [default: the subnet's first address]
    #[arg(long, value_name = "IP")]
    pub gateway: Vec<String>,
    /// Dual stack: an IPv6 subnet too (a random fdXX:XXXX:XXXX:XXXX::/64 unless --subnet gives one)
    #[arg(long)]
    pub ipv6: bool,
    /// No route outside the network
    #[arg(long)]
    pub internal: bool,
    /// No DNS server (aardvark-dns) on the network: its containers do not find each other by name and resolve through the host's resolvers
    #[arg(long)]
    pub disable_dns: bool,
    /// Set metadata on the network: KEY=VALUE
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Do nothing (exit 0) when a network of that name already exists
    #[arg(long)]
    pub ignore: bool,
    /// Name of the network [default: boxN]
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Print only names
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template like '{{.Name}} {{.Subnets}}'
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Filter: name=NAME, id=ID, label=K[=V], driver=bridge
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Go template applied to each network, e.g. '{{.Name}}'
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Networks (name or id)
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Also remove the containers that use it
    #[arg(short, long)]
    pub force: bool,
    /// Networks (name or id)
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not ask for confirmation (needed when stdin is not a terminal)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkExistsArgs {
    /// Network (name or id)
    #[arg(value_name = "NETWORK")]
    pub network: String,
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Another name of the container on this network (repeatable)
    #[arg(long, value_name = "NAME")]
    pub alias: Vec<String>,
    /// Its IPv4 address on this network [default: the first free one]
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Its IPv6 address on this network (dual stack) [default: the first free one]
    #[arg(long, value_name = "IP")]
    pub ip6: Option<String>,
    /// Network (name or id)
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Take it off the network even when unplugging its interface fails
    #[arg(short, long)]
    pub force: bool,
    /// Network (name or id)
    #[arg(value_name = "NETWORK")]
    pub network: String,
    /// Container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}
