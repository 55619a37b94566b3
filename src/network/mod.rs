//! Rootless networking: pasta / slirp4netns helpers, port publishing, DNS and hosts.
//!
//! box does not implement a TCP/IP stack: a container with its own network namespace gets a
//! tap device served by a user-mode helper that box starts (pasta from passt when installed,
//! else slirp4netns), and the helper binds the published ports on the host.
//!
//! ```text
//! let plan = network::Plan::new(&opts, &image_exposed_ports)?;        // at create
//! // persist `plan` (serde) in the container's config: `box port` and `box inspect` read it
//! let net = network::setup(&plan, child_pid)?;   // parent, after the child's netns exists,
//!                                                 // before the child execs
//! // or: let starting = network::start(&plan, pid)?; ...other work...; starting.wait()?
//! // or (pasta): let later = network::defer(&plan, &[], pid)?;  // namespaces opened now
//! //             ...release the child...; later.start()?.wait()?
//! write resolv.conf / hosts from network::resolv_conf(..) / network::hosts_file(..)
//! drop(net)  // kills the helper (reaped by the next start, reap_helpers(), or init);
//!            // net.stop() kills and waits. The helper also dies with box (PR_SET_PDEATHSIG).
//! ```
//!
//! pasta joins the container's namespaces through descriptors box opened while the child
//! still waited to be released (`--userns/--netns /proc/self/fd/N`), never by pid: a child
//! past its setuid step is not dumpable, and /proc/PID/ns would refuse pasta then.
//!
//! Modes: `pasta`, `slirp4netns`, `none` (the container's init brings `lo` up:
//! [`bring_up_loopback`]), `host` (no CLONE_NEWNET), `container:NAME` (the caller joins that
//! container's netns; nothing to start here).
//!
//! What the container sees:
//! - pasta: the host's address and gateway copied from the host's default-route interface, on
//!   `eth0` (MTU 65520); the gateway address reaches the host's loopback
//!   (`host.containers.internal`); DNS through 169.254.1.1 (pasta `--dns-forward`).
//! - slirp4netns: 10.0.2.100/24 on `tap0`, gateway 10.0.2.2 = the host's loopback, DNS 10.0.2.3.
mod files;
mod helper;
mod host;
mod join;
#[cfg(test)]
mod live_tests;
mod lo;
mod ports;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

pub use files::{hosts_file, joined_hosts_file, resolv_conf};
pub use helper::{Deferred, Handle, Helper, Starting, defer, reap_helpers, slirp_options, start};
pub(crate) use host::HostFacts;
pub use join::{JoinTarget, dependents, join_target};
pub use lo::{bring_up_loopback, loopback_is_up};
pub use ports::{PortMapping, Protocol};

/// The address pasta maps to the host's first resolver (`--dns-forward`).
pub const PASTA_DNS_FORWARD: &str = "169.254.1.1";
const SLIRP_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 100);
const SLIRP_GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
const SLIRP_DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid port mapping {spec:?}: {why}; {usage}")]
    InvalidPublish {
        spec: String,
        why: String,
        usage: &'static str,
    },
    #[error("the image exposes port {port:?}, which -P cannot publish: {why}")]
    InvalidExposedPort { port: String, why: String },
    #[error(
        "cannot publish host port {port} ({spec:?}): ports below {start} need root; use a host port of {start} or above, or as root lower the sysctl net.ipv4.ip_unprivileged_port_start (sysctl -w net.ipv4.ip_unprivileged_port_start={port})"
    )]
    PrivilegedPort { spec: String, port: u16, start: u16 },
    #[error("host port {port} is published twice: give each -p its own host port")]
    DuplicatePort { port: String },
    #[error(
        "cannot publish {spec:?}: host port {port} is already in use; pick another one, or leave the host port out to get a free one"
    )]
    PortInUse { spec: String, port: u16 },
    #[error("cannot publish {spec:?}: no free port in the host port range")]
    RangeExhausted { spec: String },
    #[error("cannot pick a free host port for {spec:?}: {source}")]
    RandomPort {
        spec: String,
        source: std::io::Error,
    },
    #[error(
        "no user-mode network helper found: install passt (apt install passt) or slirp4netns, or use --network none"
    )]
    NoHelper,
    #[error(
        "{program} not found in $PATH: install {package} (apt install {package}), or use --network {other} or --network none"
    )]
    HelperMissing {
        program: &'static str,
        package: &'static str,
        other: &'static str,
    },
    #[error(
        "pasta cannot serve this host: it has no default route, and slirp4netns is not installed; install slirp4netns (apt install slirp4netns) or use --network none"
    )]
    NoDefaultRoute,
    #[error("invalid --dns {0:?}: not an IP address")]
    InvalidDns(String),
    #[error(
        "invalid --add-host {0:?}: use NAME:IP, e.g. db:192.0.2.5, db:[2001:db8::5] or db:host-gateway"
    )]
    InvalidAddHost(String),
    #[error(
        "--add-host {0:?}: host-gateway needs a network that reaches the host (not none or container:)"
    )]
    NoHostGateway(String),
    #[error("cannot start {helper} ({program}): {source}")]
    Spawn {
        helper: &'static str,
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{helper} could not set up the container's network ({status}): {stderr}")]
    HelperFailed {
        helper: &'static str,
        status: String,
        stderr: String,
    },
    #[error("{helper} did not set up the container's network within {secs}s (killed): {stderr}")]
    HelperTimeout {
        helper: &'static str,
        secs: u64,
        stderr: String,
    },
    #[error("slirp4netns could not publish {what}: {why}")]
    Hostfwd { what: String, why: String },
    #[error("{what} {helper}: {source}")]
    HelperIo {
        what: &'static str,
        helper: &'static str,
        source: std::io::Error,
    },
    #[error("--network {0}: its helper starts with the container, never later")]
    NotDeferrable(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("--network container:{name}: {why}")]
    JoinTarget { name: String, why: String },
    #[error(
        "--network container:{name}: the container is not running; start it first (box start {name})"
    )]
    JoinNotRunning { name: String },
    #[error("cannot bring up the loopback interface: {0}")]
    Loopback(nix::errno::Errno),
}

/// How a container is networked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// pasta (passt) serves a tap device in the container's netns.
    #[default]
    Pasta,
    /// slirp4netns serves a tap device in the container's netns.
    Slirp4netns,
    /// Only `lo`, brought up by the container's init.
    None,
    /// The host's network namespace (no CLONE_NEWNET).
    Host,
    /// The network namespace of another container, by name or id.
    Container(String),
    /// Published ports only: pasta forwards them into a namespace it does not configure
    /// (a container on a user network, whose namespace netavark plugs into a bridge). The
    /// ports answer on the host's loopback (pasta's spliced connections).
    Forward,
}

impl Mode {
    /// Whether `-p`/`-P` mean nothing here (podman: "Port mappings have been discarded"):
    /// no network, the host's, or another container's.
    pub fn discards_ports(&self) -> bool {
        matches!(self, Mode::None | Mode::Host | Mode::Container(_))
    }

    /// Whether the container gets a network namespace of its own (CLONE_NEWNET).
    pub fn new_netns(&self) -> bool {
        matches!(self, Mode::Pasta | Mode::Slirp4netns | Mode::None)
    }

    /// The helper this mode starts.
    pub fn helper(&self) -> Option<Helper> {
        match self {
            Mode::Pasta | Mode::Forward => Some(Helper::Pasta),
            Mode::Slirp4netns => Some(Helper::Slirp4netns),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Pasta => f.write_str("pasta"),
            Mode::Slirp4netns => f.write_str("slirp4netns"),
            Mode::None => f.write_str("none"),
            Mode::Host => f.write_str("host"),
            Mode::Container(name) => write!(f, "container:{name}"),
            Mode::Forward => f.write_str("forward"),
        }
    }
}

/// The network options of `box run`/`box create`, as given.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// `--network`: none means the default (pasta, else slirp4netns).
    pub network: Option<String>,
    /// `-p`.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--add-host`.
    pub add_host: Vec<String>,
}

/// A container's network, decided at create time and persisted with the container: the mode
/// (the default already resolved to pasta or slirp4netns) and every published port with its
/// host port chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub mode: Mode,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

impl Plan {
    /// The plan for `--network`, `-p`, `-P` (with the image's `ExposedPorts` keys, like
    /// "80/tcp"), `--dns` and `--add-host` (validated here, used by the file functions).
    pub fn new(opts: &Opts, exposed_ports: &[String]) -> Result<Plan, Error> {
        Plan::build(
            opts.network.as_deref(),
            &opts.publish,
            opts.publish_all,
            exposed_ports,
            &opts.dns,
            &opts.add_host,
            &host::RealHost,
        )
    }

    pub(crate) fn build(
        network: Option<&str>,
        publish: &[String],
        publish_all: bool,
        exposed: &[String],
        dns: &[String],
        add_host: &[String],
        host: &dyn HostFacts,
    ) -> Result<Plan, Error> {
        let mode = resolve_mode(network, host)?;
        // As podman: with no network, the host's or another container's, -p/-P are
        // discarded (the caller warns, see `discards_ports`), not an error.
        let wants_ports =
            (!publish.is_empty() || (publish_all && !exposed.is_empty())) && !mode.discards_ports();
        let ports = if wants_ports {
            ports::plan_ports(publish, publish_all, exposed, host)?
        } else {
            Vec::new()
        };
        files::parse_dns(dns)?;
        for entry in add_host {
            let (_, target) = files::parse_add_host(entry)?;
            if target == files::AddHostTarget::HostGateway
                && matches!(mode, Mode::None | Mode::Container(_))
            {
                return Err(Error::NoHostGateway(entry.clone()));
            }
        }
        Ok(Plan { mode, ports })
    }

    /// Whether every host port of the plan can be bound again (its helper is gone).
    pub fn ports_released(&self) -> bool {
        self.ports
            .iter()
            .all(|p| ports::port_is_free(p.host_ip, p.host_port, std::slice::from_ref(&p.protocol)))
    }

    /// The host as the container reaches it (`host.containers.internal`): pasta maps the
    /// gateway address to the host, slirp4netns 10.0.2.2; with `host` the loopback.
    pub fn host_address(&self) -> Option<IpAddr> {
        match self.mode {
            Mode::Pasta => host::default_route_v4().map(|(_, gw)| IpAddr::V4(gw)),
            Mode::Slirp4netns => Some(IpAddr::V4(SLIRP_GATEWAY)),
            Mode::Host => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            Mode::None | Mode::Container(_) | Mode::Forward => None,
        }
    }

    /// The container's own IPv4 address and prefix length (pasta copies the host's).
    pub fn container_address(&self) -> Option<(IpAddr, u8)> {
        match self.mode {
            Mode::Pasta | Mode::Host => {
                let (iface, _) = host::default_route_v4()?;
                host::iface_v4(&iface).map(|(ip, p)| (IpAddr::V4(ip), p))
            }
            Mode::Slirp4netns => Some((IpAddr::V4(SLIRP_ADDRESS), 24)),
            Mode::None | Mode::Container(_) | Mode::Forward => None,
        }
    }

    /// The container's global IPv6 address, when pasta copies one from the host.
    pub fn container_address_v6(&self) -> Option<(IpAddr, u8)> {
        match self.mode {
            Mode::Pasta | Mode::Host => {
                let (iface, _) = host::default_route_v4()?;
                host::iface_v6(&iface).map(|(ip, p)| (IpAddr::V6(ip), p))
            }
            _ => None,
        }
    }

    /// The container's default gateway.
    pub fn gateway(&self) -> Option<IpAddr> {
        match self.mode {
            Mode::Pasta | Mode::Host => host::default_route_v4().map(|(_, gw)| IpAddr::V4(gw)),
            Mode::Slirp4netns => Some(IpAddr::V4(SLIRP_GATEWAY)),
            Mode::None | Mode::Container(_) | Mode::Forward => None,
        }
    }

    /// The helper's DNS forwarder, the nameserver of the container's resolv.conf.
    pub fn dns_forwarder(&self) -> Option<IpAddr> {
        match self.mode {
            Mode::Pasta => PASTA_DNS_FORWARD.parse().ok(),
            Mode::Slirp4netns => Some(IpAddr::V4(SLIRP_DNS)),
            _ => None,
        }
    }
}

/// `--network` to a mode; the default is pasta when installed and usable, else slirp4netns.
fn resolve_mode(network: Option<&str>, host: &dyn HostFacts) -> Result<Mode, Error> {
    let has = |h: Helper| host.find_program(h.name()).is_some();
    let missing = |h: Helper| match h {
        Helper::Pasta => Error::HelperMissing {
            program: "pasta",
            package: "passt",
            other: "slirp4netns",
        },
        Helper::Slirp4netns => Error::HelperMissing {
            program: "slirp4netns",
            package: "slirp4netns",
            other: "pasta",
        },
    };
    match network.unwrap_or("default") {
        // "private" and "bridge" are what docker and podman users type for the default.
        "default" | "private" | "bridge" | "" => {
            match (has(Helper::Pasta), has(Helper::Slirp4netns)) {
                (true, true) if !host.has_default_route() => Ok(Mode::Slirp4netns),
                (true, false) if !host.has_default_route() => Err(Error::NoDefaultRoute),
                (true, _) => Ok(Mode::Pasta),
                (false, true) => Ok(Mode::Slirp4netns),
                (false, false) => Err(Error::NoHelper),
            }
        }
        "pasta" => has(Helper::Pasta)
            .then_some(Mode::Pasta)
            .ok_or_else(|| missing(Helper::Pasta)),
        "slirp4netns" => has(Helper::Slirp4netns)
            .then_some(Mode::Slirp4netns)
            .ok_or_else(|| missing(Helper::Slirp4netns)),
        "none" => Ok(Mode::None),
        "host" => Ok(Mode::Host),
        other => match other.strip_prefix("container:") {
            Some(name) if !name.is_empty() => Ok(Mode::Container(name.to_string())),
            // The CLI parser rejects anything else; a stored config might not have.
            _ => Err(Error::InvalidPublish {
                spec: other.to_string(),
                why: "unknown network mode".into(),
                usage: "use default, pasta, slirp4netns, none, host or container:NAME",
            }),
        },
    }
}

/// Start the plan's helper for `child`'s network namespace and wait until the namespace is
/// configured: call it in the parent after the child's netns exists and its id maps are
/// written, before the child execs. Modes without a helper return an empty handle at once.
///
/// The helper is a child of the calling thread and dies with it (PR_SET_PDEATHSIG): call it
/// from the process (and thread) that lives as long as the container, i.e. the foreground
/// `box run` or the detached monitor. Reap the container with `waitpid(pid)`, not
/// `waitpid(-1)`, or the helper's exit is stolen from the handle.
pub fn setup(plan: &Plan, child_pid: Pid) -> Result<Handle, Error> {
    start(plan, child_pid)?.wait()
}

/// `setup` with `--network pasta:OPTS` / `slirp4netns:OPTS`: the options the user gave
/// for the helper (pasta's arguments; slirp4netns' KEY=VALUE options, see
/// `helper::slirp_options`).
pub fn setup_with(plan: &Plan, options: &[String], child_pid: Pid) -> Result<Handle, Error> {
    helper::start_with(plan, options, child_pid)?.wait()
}

/// `NetworkSettings` for `box inspect`. `handle` is the live helper when the caller owns it;
/// other processes pass `None` (the plan alone gives mode, addresses and ports).
pub fn inspect(plan: &Plan, handle: Option<&Handle>) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut ports: Map<String, Value> = Map::new();
    for m in &plan.ports {
        let key = format!("{}/{}", m.container_port, m.protocol);
        let entry = ports.entry(key).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.push(json!({"HostIp": m.host_ip_string(), "HostPort": m.host_port.to_string()}));
        }
    }
    let addr = plan.container_address();
    let v6 = plan.container_address_v6();
    json!({
        "NetworkMode": plan.mode.to_string(),
        "IPAddress": addr.map(|(ip, _)| ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": addr.map(|(_, p)| p).unwrap_or(0),
        "GlobalIPv6Address": v6.map(|(ip, _)| ip.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": v6.map(|(_, p)| p).unwrap_or(0),
        "Gateway": plan.gateway().map(|ip| ip.to_string()).unwrap_or_default(),
        "HostAddress": plan.host_address().map(|ip| ip.to_string()).unwrap_or_default(),
        "DNSForwarder": plan.dns_forwarder().map(|ip| ip.to_string()).unwrap_or_default(),
        "Helper": plan.mode.helper().map(Helper::name).unwrap_or(""),
        "HelperPid": handle.and_then(Handle::pid).map(|p| p.as_raw()),
        "Ports": ports,
    })
}

/// `box port` output: one `80/tcp -> 127.0.0.1:8080` line per mapping, by container port.
pub fn format_ports(ports: &[PortMapping]) -> String {
    let mut sorted: Vec<&PortMapping> = ports.iter().collect();
    sorted.sort_by_key(|m| (m.container_port, m.protocol, m.host_port));
    sorted.iter().map(|m| format!("{m}\n")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A host for plans: helpers present, a default route, every port free but `busy`.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct FakeHost {
        pub root: bool,
        pub unprivileged_port_start: u16,
        pub pasta: bool,
        pub slirp: bool,
        pub default_route: bool,
        /// Host ports reported as in use (on every address); all others are free. Unit tests
        /// never probe real ports: a CI machine may have anything listening.
        pub busy: &'static [u16],
    }

    impl Default for FakeHost {
        fn default() -> Self {
            FakeHost {
                root: false,
                unprivileged_port_start: 1024,
                pasta: true,
                slirp: true,
                default_route: true,
                busy: &[],
            }
        }
    }

    impl HostFacts for FakeHost {
        fn is_root(&self) -> bool {
            self.root
        }
        fn unprivileged_port_start(&self) -> u16 {
            self.unprivileged_port_start
        }
        fn find_program(&self, name: &str) -> Option<PathBuf> {
            let found = match name {
                "pasta" => self.pasta,
                "slirp4netns" => self.slirp,
                _ => false,
            };
            found.then(|| PathBuf::from("/usr/bin").join(name))
        }
        fn has_default_route(&self) -> bool {
            self.default_route
        }
        fn port_free(&self, _ip: Option<IpAddr>, port: u16, _protocols: &[Protocol]) -> bool {
            !self.busy.contains(&port)
        }
    }

    fn mode(network: Option<&str>, host: FakeHost) -> Result<Mode, Error> {
        Plan::build(network, &[], false, &[], &[], &[], &host).map(|p| p.mode)
    }

    #[test]
    fn default_mode_prefers_pasta() {
        let h = FakeHost::default();
        assert_eq!(mode(None, h).unwrap(), Mode::Pasta);
        assert_eq!(mode(Some("default"), h).unwrap(), Mode::Pasta);
        assert_eq!(mode(Some("private"), h).unwrap(), Mode::Pasta);
        let no_pasta = FakeHost { pasta: false, ..h };
        assert_eq!(mode(None, no_pasta).unwrap(), Mode::Slirp4netns);
        // pasta needs a template interface; slirp4netns does not.
        let no_route = FakeHost {
            default_route: false,
            ..h
        };
        assert_eq!(mode(None, no_route).unwrap(), Mode::Slirp4netns);
        let only_pasta_no_route = FakeHost {
            slirp: false,
            ..no_route
        };
        assert!(matches!(
            mode(None, only_pasta_no_route),
            Err(Error::NoDefaultRoute)
        ));
    }

    #[test]
    fn no_helper_is_a_clear_error() {
        let none = FakeHost {
            pasta: false,
            slirp: false,
            ..FakeHost::default()
        };
        let e = mode(None, none).unwrap_err().to_string();
        assert_eq!(
            e,
            "no user-mode network helper found: install passt (apt install passt) or slirp4netns, or use --network none"
        );
        let e = mode(Some("pasta"), none).unwrap_err().to_string();
        assert!(e.contains("apt install passt"), "{e}");
        let e = mode(Some("slirp4netns"), none).unwrap_err().to_string();
        assert!(e.contains("apt install slirp4netns"), "{e}");
        // Modes without a helper do not care.
        assert_eq!(mode(Some("none"), none).unwrap(), Mode::None);
        assert_eq!(mode(Some("host"), none).unwrap(), Mode::Host);
        assert_eq!(
            mode(Some("container:web"), none).unwrap(),
            Mode::Container("web".into())
        );
    }

    #[test]
    fn explicit_helpers() {
        let h = FakeHost::default();
        assert_eq!(mode(Some("pasta"), h).unwrap(), Mode::Pasta);
        assert_eq!(mode(Some("slirp4netns"), h).unwrap(), Mode::Slirp4netns);
        assert!(mode(Some("container:"), h).is_err());
        assert!(mode(Some("bogus"), h).is_err());
    }

    #[test]
    fn ports_need_a_helper_mode() {
        let h = FakeHost::default();
        // Discarded, as podman does (the command warns).
        for net in ["none", "host", "container:db"] {
            let p = Plan::build(Some(net), &["8080:80".into()], false, &[], &[], &[], &h).unwrap();
            assert!(p.ports.is_empty() && p.mode.discards_ports(), "{net}");
        }
        // -P with an image exposing nothing is fine anywhere.
        Plan::build(Some("host"), &[], true, &[], &[], &[], &h).unwrap();
        let p = Plan::build(
            Some("slirp4netns"),
            &["8080:80".into()],
            false,
            &[],
            &[],
            &[],
            &h,
        )
        .unwrap();
        assert_eq!(p.ports.len(), 1);
    }

    #[test]
    fn dns_and_add_host_are_validated() {
        let h = FakeHost::default();
        let build = |dns: &[&str], add: &[&str], net: &str| {
            let dns: Vec<String> = dns.iter().map(|s| s.to_string()).collect();
            let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
            Plan::build(Some(net), &[], false, &[], &dns, &add, &h)
        };
        build(&["192.0.2.53"], &["db:192.0.2.5"], "pasta").unwrap();
        assert!(matches!(
            build(&["dns.example"], &[], "pasta"),
            Err(Error::InvalidDns(_))
        ));
        assert!(matches!(
            build(&[], &["db"], "pasta"),
            Err(Error::InvalidAddHost(_))
        ));
        build(&[], &["gw:host-gateway"], "slirp4netns").unwrap();
        assert!(matches!(
            build(&[], &["gw:host-gateway"], "none"),
            Err(Error::NoHostGateway(_))
        ));
    }

    #[test]
    fn plan_round_trips_through_json() {
        let p = Plan {
            mode: Mode::Container("db".into()),
            ports: vec![PortMapping {
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 18080,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        };
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(
            s,
            r#"{"mode":{"container":"db"},"ports":[{"host_ip":"127.0.0.1","host_port":18080,"container_port":80,"protocol":"tcp"}]}"#
        );
        assert_eq!(serde_json::from_str::<Plan>(&s).unwrap(), p);
        let p: Plan = serde_json::from_str(r#"{"mode":"pasta"}"#).unwrap();
        assert_eq!(p.mode, Mode::Pasta);
        assert!(p.ports.is_empty());
    }

    #[test]
    fn slirp_addresses_and_inspect() {
        let p = Plan {
            mode: Mode::Slirp4netns,
            ports: vec![
                PortMapping {
                    host_ip: Some("127.0.0.1".parse().unwrap()),
                    host_port: 18080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
                PortMapping {
                    host_ip: None,
                    host_port: 18081,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                },
            ],
        };
        let v = inspect(&p, None);
        assert_eq!(v["NetworkMode"], "slirp4netns");
        assert_eq!(v["IPAddress"], "10.0.2.100");
        assert_eq!(v["IPPrefixLen"], 24);
        assert_eq!(v["Gateway"], "10.0.2.2");
        assert_eq!(v["HostAddress"], "10.0.2.2");
        assert_eq!(v["DNSForwarder"], "10.0.2.3");
        assert_eq!(
            v["Ports"]["80/tcp"],
            serde_json::json!([
                {"HostIp": "127.0.0.1", "HostPort": "18080"},
                {"HostIp": "0.0.0.0", "HostPort": "18081"}
            ])
        );
        assert!(v["HelperPid"].is_null());
        assert_eq!(
            format_ports(&p.ports),
            "80/tcp -> 127.0.0.1:18080\n80/tcp -> 0.0.0.0:18081\n"
        );
        let none = inspect(
            &Plan {
                mode: Mode::None,
                ports: vec![],
            },
            None,
        );
        assert_eq!(none["IPAddress"], "");
        assert_eq!(none["Ports"], serde_json::json!({}));
    }
}
