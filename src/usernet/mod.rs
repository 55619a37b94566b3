//! User networks (`box network ...`, `run --network NAME`).
//!
//! A network is stored as `<data>/networks/<name>.json` in netavark's own network format
//! (the `network_info` netavark's `setup` reads, and what `podman network inspect` prints),
//! handed to netavark as is. Each network has one IPv4 subnet (the first; when none is
//! given, the first free `10.89.<N>.0/24`), one IPv6 subnet beside it (dual stack:
//! `ipv6`), or only an IPv6 one (an IPv6 `--subnet` alone, as podman); each gets its own bridge interface name (`box<N>`); overlapping subnets
//! are refused. How containers are plugged in: `attach`; how the holder's pasta comes up
//! while the first one is: `helper_ready`.
//!
//! `-p` of a container on a user network is pasta in `network::Mode::Forward` (the host's
//! loopback only); `--network` repeats for several networks (eth0, eth1, ...);
//! `network connect|disconnect` plug a running container in or out: `connect`. A network
//! made with `--disable-dns` has no aardvark-dns: its containers resolve through the
//! holder's pasta (its DNS forwarder), as a container of the default network does.
//! `--ip-range` (a CIDR of the given `--subnet`) becomes the subnet's `lease_range`, where
//! addresses are leased from. `--mac-address` (`parse_mac`) is the first network's
//! netavark `static_mac`.
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

mod attach;
mod connect;
mod dns;
pub mod helper_ready;
mod ipv6;
pub use attach::{
    Attached, HOLDER, Lease, Want, abandon_teardowns, address_of, check_tools, etc_lines,
    holder_lock, holder_unused, holder_user, lease, leases_in_use, open_netns, reap_teardowns,
    stop_dns,
};
pub use connect::{Plug, Running, connect, disconnect, wants};
pub use ipv6::address6_of;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such network: {0}")]
    NotFound(String),
    #[error("network {0} exists already: choose another name or remove it (box network rm {0})")]
    Exists(String),
    #[error(
        "invalid network name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit, at least 2 characters"
    )]
    BadName(String),
    #[error(
        "network name {0:?} is reserved for a network mode (--network {0}): choose another name"
    )]
    Reserved(String),
    #[error("invalid --subnet {0:?}: {1}")]
    BadSubnet(String, String),
    #[error("invalid --ip-range {0:?}: {1}")]
    BadRange(String, String),
    #[error("invalid --gateway {0:?}: {1}")]
    BadGateway(String, String),
    #[error("--subnet {subnet} overlaps network {other}'s subnet {theirs}: choose another subnet")]
    Overlap {
        subnet: String,
        other: String,
        theirs: String,
    },
    #[error("no free 10.89.N.0/24 subnet left: give --subnet")]
    NoSubnet,
    #[error("IPv6-only networks are not supported: add an IPv4 --subnet, or --ipv6 for one picked")]
    V6Only,
    #[error("driver {0:?} is not supported: box networks use the bridge driver")]
    Driver(String),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt network record {path}: {source} (remove the file)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "user networks need netavark and aardvark-dns: install them (apt install netavark aardvark-dns)"
    )]
    Tools,
    #[error("network {0} has no free address left")]
    Full(String),
    #[error(
        "invalid --mac-address {0:?}: give six hex pairs such as 92:d0:c6:0a:29:33, of a unicast address (an even first byte)"
    )]
    BadMac(String),
    #[error("invalid --ip {ip:?}: {why}")]
    BadAddress { ip: String, why: String },
    #[error("address {ip} is in use on network {network}: choose another one")]
    AddressInUse { ip: String, network: String },
    #[error("netavark {command} failed: {why}")]
    Netavark { command: &'static str, why: String },
    #[error(
        "cannot find which networks container {0} is plugged into (still starting, or started by an older box): try again, or restart it"
    )]
    NotPlugged(String),
    #[error("container {container} is already on network {network}")]
    AlreadyOn { container: String, network: String },
    #[error("container {container} is not on network {network}")]
    NotOn { container: String, network: String },
    #[error("the user networks' namespace has no way out: its network helper failed: {0}")]
    HelperFailed(String),
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Names `--network` gives other meanings.
const RESERVED: &[&str] = &[
    "default",
    "private",
    "bridge",
    "pasta",
    "slirp4netns",
    "none",
    "host",
    "podman",
];

/// One subnet of a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub subnet: String,
    pub gateway: String,
    /// `--ip-range`: where addresses are leased from, unless `--ip` asks for another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_range: Option<LeaseRange>,
}

/// netavark's lease range of a subnet: the first and last address handed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRange {
    pub start_ip: String,
    pub end_ip: String,
}

/// netavark's IPAM options: box allocates the addresses (`host-local`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipam {
    pub driver: String,
}

/// A network, in netavark's format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub network_interface: String,
    pub created: String,
    pub subnets: Vec<Subnet>,
    pub ipv6_enabled: bool,
    pub internal: bool,
    pub dns_enabled: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub ipam_options: Ipam,
}

impl Network {
    /// Its IPv4 subnet, parsed, with its gateway (none when the network is IPv6-only).
    pub fn subnet4(&self) -> Option<((Ipv4Addr, u8), Ipv4Addr)> {
        self.subnets.iter().find_map(|s| {
            let c = parse_cidr(&s.subnet).ok()?;
            Some((c, s.gateway.parse().ok()?))
        })
    }

    /// The IPv4 subnet's `--ip-range` (first and last address), if it has one.
    pub fn lease_range4(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        let s = self
            .subnets
            .iter()
            .find(|s| parse_cidr(&s.subnet).is_ok())?;
        let r = s.lease_range.as_ref()?;
        Some((r.start_ip.parse().ok()?, r.end_ip.parse().ok()?))
    }

    /// `--ip`: a host address of the network's subnet, not its gateway.
    pub fn check_address(&self, ip: &str) -> Result<Ipv4Addr, Error> {
        let bad = |why: String| Error::BadAddress {
            ip: ip.to_string(),
            why,
        };
        let addr: Ipv4Addr = ip.parse().map_err(|_| bad("not an IPv4 address".into()))?;
        let Some(s) = self.subnets.iter().find(|s| parse_cidr(&s.subnet).is_ok()) else {
            return Err(bad(format!(
                "network {} has no IPv4 subnet: use --ip6",
                self.name
            )));
        };
        let (net, len) = parse_cidr(&s.subnet)?;
        let host = u32::from(addr) & !mask(len);
        if !overlaps((addr, 32), (net, len)) || host == 0 || host == !mask(len) {
            return Err(bad(format!(
                "not a host address of network {}'s subnet {}",
                self.name, s.subnet
            )));
        }
        if s.gateway == ip {
            return Err(bad(format!("it is network {}'s gateway", self.name)));
        }
        Ok(addr)
    }
}

/// What `network create` asks for.
#[derive(Debug, Default)]
pub struct NewNetwork {
    pub name: Option<String>,
    pub driver: Option<String>,
    /// At most one IPv4 and one IPv6 CIDR.
    pub subnets: Vec<String>,
    /// The gateways of `subnets`, in their order (the first: of the default IPv4 subnet
    /// when none is given).
    pub gateways: Vec<String>,
    /// Dual stack: an IPv6 subnet is picked when none is given.
    pub ipv6: bool,
    pub internal: bool,
    /// No aardvark-dns on the network (`--disable-dns`).
    pub disable_dns: bool,
    /// `--ip-range`: a CIDR inside the IPv4 subnet to lease addresses from.
    pub ip_range: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// An IPv4 CIDR: network address and prefix length.
fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), Error> {
    let bad = |why: &str| Error::BadSubnet(s.to_string(), why.to_string());
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| bad("use an IPv4 CIDR such as 10.90.0.0/24"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| bad("use an IPv4 CIDR such as 10.90.0.0/24"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| bad("the prefix length is not a number"))?;
    if !(8..=30).contains(&len) {
        return Err(bad("the prefix length must be between 8 and 30"));
    }
    let mask = mask(len);
    if u32::from(ip) & !mask != 0 {
        return Err(bad(&format!(
            "host bits are set: did you mean {}/{len}?",
            Ipv4Addr::from(u32::from(ip) & mask)
        )));
    }
    Ok((ip, len))
}

fn mask(len: u8) -> u32 {
    if len == 0 { 0 } else { u32::MAX << (32 - len) }
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let m = mask(a.1.min(b.1));
    u32::from(a.0) & m == u32::from(b.0) & m
}

/// The per-user set of networks.
pub struct Networks {
    root: PathBuf,
}

impl Networks {
    /// `<data>/networks` (created on the first write).
    pub fn at(paths: &Paths) -> Networks {
        Networks {
            root: paths.data.join("networks"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.json"))
    }

    fn lock(&self) -> Result<crate::lock::FileLock, Error> {
        fs::create_dir_all(&self.root).map_err(io_err("create", &self.root))?;
        Ok(crate::lock::FileLock::acquire(
            &self.root.join(".lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?)
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>, Error> {
        let entries = match fs::read_dir(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.map_err(io_err("read", &self.root))?,
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io_err("read", &self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_suffix(".json")
                && !n.starts_with('.')
            {
                out.push(self.get(n)?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by name or id prefix.
    pub fn get(&self, name: &str) -> Result<Network, Error> {
        if crate::container::is_docker_name(name, 253) {
            let path = self.path(name);
            match fs::read(&path) {
                Ok(b) => {
                    return serde_json::from_slice(&b)
                        .map_err(|source| Error::Corrupt { path, source });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("read", &path)(e)),
            }
        }
        if name.len() >= 3 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let found: Vec<Network> = self
                .list()?
                .into_iter()
                .filter(|n| n.id.starts_with(name))
                .collect();
            if let [one] = found.as_slice() {
                return Ok(one.clone());
            }
        }
        Err(Error::NotFound(name.to_string()))
    }

    /// Create a network; nothing is written when anything is wrong.
    pub fn create(&self, new: &NewNetwork) -> Result<Network, Error> {
        if let Some(d) = &new.driver
            && d != "bridge"
        {
            return Err(Error::Driver(d.clone()));
        }
        let _lock = self.lock()?;
        let existing = self.list()?;
        let name = match &new.name {
            Some(n) => {
                if RESERVED.contains(&n.as_str()) {
                    return Err(Error::Reserved(n.clone()));
                }
                if !crate::container::is_docker_name(n, 253) {
                    return Err(Error::BadName(n.clone()));
                }
                if existing.iter().any(|e| &e.name == n) {
                    return Err(Error::Exists(n.clone()));
                }
                n.clone()
            }
            None => (0..)
                .map(|i| format!("box{i}"))
                .find(|n| !existing.iter().any(|e| &e.name == n))
                .expect("a free name"),
        };
        let theirs: Vec<(&Network, (Ipv4Addr, u8))> = existing
            .iter()
            .flat_map(|n| {
                n.subnets
                    .iter()
                    .filter_map(move |s| parse_cidr(&s.subnet).ok().map(|c| (n, c)))
            })
            .collect();
        let theirs6: Vec<(&Network, (Ipv6Addr, u8))> = existing
            .iter()
            .flat_map(|n| {
                n.subnets
                    .iter()
                    .filter_map(move |s| ipv6::parse_cidr6(&s.subnet).ok().map(|c| (n, c)))
            })
            .collect();
        if new.gateways.len() > new.subnets.len().max(1) {
            return Err(Error::BadGateway(
                new.gateways[new.subnets.len().max(1)].clone(),
                "give one --gateway per --subnet, in their order".into(),
            ));
        }
        let mut v4: Option<((Ipv4Addr, u8), Option<&String>)> = None;
        let mut v6: Option<((Ipv6Addr, u8), Option<&String>)> = None;
        for (i, s) in new.subnets.iter().enumerate() {
            let gateway = new.gateways.get(i);
            if s.contains(':') {
                let c = ipv6::parse_cidr6(s)?;
                if v6.is_some() {
                    return Err(Error::BadSubnet(
                        s.clone(),
                        "a network has at most one IPv6 subnet".into(),
                    ));
                }
                if let Some((other, t)) = theirs6.iter().find(|(_, t)| ipv6::overlaps6(c, *t)) {
                    return Err(Error::Overlap {
                        subnet: s.clone(),
                        other: other.name.clone(),
                        theirs: format!("{}/{}", t.0, t.1),
                    });
                }
                v6 = Some((c, gateway));
            } else {
                let c = parse_cidr(s)?;
                if v4.is_some() {
                    return Err(Error::BadSubnet(
                        s.clone(),
                        "a network has at most one IPv4 subnet".into(),
                    ));
                }
                if let Some((other, t)) = theirs.iter().find(|(_, t)| overlaps(c, *t)) {
                    return Err(Error::Overlap {
                        subnet: s.clone(),
                        other: other.name.clone(),
                        theirs: format!("{}/{}", t.0, t.1),
                    });
                }
                v4 = Some((c, gateway));
            }
        }
        // An IPv6 --subnet alone (without --ipv6): an IPv6-only network, as podman.
        let v6_only = v4.is_none() && v6.is_some() && !new.ipv6;
        let mut subnets = Vec::new();
        if !v6_only {
            let ((net, len), gateway) = match v4 {
                Some(v) => v,
                None => (
                    (0..=255u8)
                        .map(|n| (Ipv4Addr::new(10, 89, n, 0), 24))
                        .find(|c| !theirs.iter().any(|(_, t)| overlaps(*c, *t)))
                        .ok_or(Error::NoSubnet)?,
                    // With no --subnet, the first --gateway is the default subnet's.
                    new.gateways.first().filter(|_| new.subnets.is_empty()),
                ),
            };
            let first = Ipv4Addr::from(u32::from(net) + 1);
            let gateway = match gateway {
                Some(g) => {
                    let ip: Ipv4Addr = g
                        .parse()
                        .map_err(|_| Error::BadGateway(g.clone(), "not an IPv4 address".into()))?;
                    let host = u32::from(ip) & !mask(len);
                    if !overlaps((ip, 32), (net, len)) || host == 0 || host == !mask(len) {
                        return Err(Error::BadGateway(
                            g.clone(),
                            format!("not a host address of {net}/{len}"),
                        ));
                    }
                    ip
                }
                None => first,
            };
            let lease_range = match &new.ip_range {
                Some(r) => Some(lease_range(r, (net, len), !new.subnets.is_empty())?),
                None => None,
            };
            subnets.push(Subnet {
                subnet: format!("{net}/{len}"),
                gateway: gateway.to_string(),
                lease_range,
            });
        } else if let Some(r) = &new.ip_range {
            return Err(Error::BadRange(
                r.clone(),
                "an IPv6-only network has no IPv4 subnet to take it from".into(),
            ));
        }
        let v6 = match v6 {
            Some(v) => Some(v),
            None if new.ipv6 => Some((
                (0..16)
                    .map(|_| ipv6::random_ula())
                    .find(|c| !theirs6.iter().any(|(_, t)| ipv6::overlaps6(*c, *t)))
                    .ok_or(Error::NoSubnet)?,
                None,
            )),
            None => None,
        };
        if let Some(((net6, len6), gateway)) = v6 {
            let gateway = match gateway {
                Some(g) => {
                    let ip: Ipv6Addr = g
                        .parse()
                        .map_err(|_| Error::BadGateway(g.clone(), "not an IPv6 address".into()))?;
                    if !ipv6::is_host6(ip, (net6, len6)) {
                        return Err(Error::BadGateway(
                            g.clone(),
                            format!("not a host address of {net6}/{len6}"),
                        ));
                    }
                    ip
                }
                None => Ipv6Addr::from(u128::from(net6) + 1),
            };
            subnets.push(Subnet {
                subnet: format!("{net6}/{len6}"),
                gateway: gateway.to_string(),
                lease_range: None,
            });
        }
        let iface = (0..)
            .map(|i| format!("box{i}"))
            .find(|i| !existing.iter().any(|e| &e.network_interface == i))
            .expect("a free interface name");
        let network = Network {
            name: name.clone(),
            id: crate::container::random_id(),
            driver: "bridge".into(),
            network_interface: iface,
            created: crate::units::now_rfc3339(),
            ipv6_enabled: subnets.iter().any(|s| s.subnet.contains(':')),
            subnets,
            internal: new.internal,
            dns_enabled: !new.disable_dns,
            labels: new.labels.clone(),
            ipam_options: Ipam {
                driver: "host-local".into(),
            },
        };
        let bytes = serde_json::to_vec_pretty(&network).expect("network serializes");
        write_atomic(&self.path(&name), &bytes)?;
        Ok(network)
    }

    /// Remove a network's record (whether containers use it is the caller's question).
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let _lock = self.lock()?;
        let net = self.get(name)?;
        let path = self.path(&net.name);
        fs::remove_file(&path).map_err(io_err("remove", &path))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("write", path)(e)
        })
}

/// `--ip-range CIDR` of subnet `net`, as podman: a range inside the subnet given with
/// `--subnet`; its first and last host addresses (the subnet's own network and broadcast
/// addresses left out).
fn lease_range(range: &str, (net, len): (Ipv4Addr, u8), given: bool) -> Result<LeaseRange, Error> {
    let bad = |why: &str| Error::BadRange(range.to_string(), why.to_string());
    if !given {
        return Err(bad("give the --subnet it is part of"));
    }
    let (rnet, rlen) =
        parse_cidr(range).map_err(|_| bad("not an IPv4 CIDR such as 10.89.0.128/25"))?;
    if rlen < len || !overlaps((rnet, rlen), (net, len)) {
        return Err(bad(&format!("not inside the subnet {net}/{len}")));
    }
    let first = u32::from(net) + 1;
    let last = u32::from(net) + ((1u64 << (32 - len)) as u32).wrapping_sub(2);
    let start = u32::from(rnet).max(first);
    let end = (u32::from(rnet) | !mask(rlen)).min(last);
    if start > end {
        return Err(bad("it holds no host address of the subnet"));
    }
    Ok(LeaseRange {
        start_ip: Ipv4Addr::from(start).to_string(),
        end_ip: Ipv4Addr::from(end).to_string(),
    })
}

/// `--mac-address`: six hex pairs separated by ':' (or '-'), a unicast address (the
/// first byte even) other than all zeros; given back lowercase with ':' (netavark's
/// `static_mac`).
pub fn parse_mac(s: &str) -> Result<String, Error> {
    let bad = || Error::BadMac(s.to_string());
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return Err(bad());
    }
    let bytes = parts
        .iter()
        .map(|p| u8::from_str_radix(p, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, Error>>()?;
    if bytes[0] & 1 == 1 || bytes.iter().all(|b| *b == 0) {
        return Err(bad());
    }
    Ok(bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_are_unicast_hex_pairs() {
        assert_eq!(parse_mac("92:D0:c6:0a:29:33").unwrap(), "92:d0:c6:0a:29:33");
        assert_eq!(parse_mac("92-d0-c6-0a-29-33").unwrap(), "92:d0:c6:0a:29:33");
        for bad in [
            "",
            "92:d0:c6:0a:29",
            "92:d0:c6:0a:29:33:44",
            "92:d0:c6:0a:29:3",
            "92:d0:c6:0a:29:zz",
            "93:d0:c6:0a:29:33", // multicast
            "00:00:00:00:00:00",
            "92d0c60a2933",
        ] {
            let e = parse_mac(bad).unwrap_err().to_string();
            assert!(e.starts_with("invalid --mac-address"), "{bad}: {e}");
        }
    }

    fn nets() -> (tempfile::TempDir, Networks) {
        let d = tempfile::tempdir().unwrap();
        let n = Networks {
            root: d.path().join("networks"),
        };
        (d, n)
    }

    #[test]
    fn an_ip_range_is_a_part_of_the_subnet_given() {
        let (_d, n) = nets();
        let with = |name: &str, subnet: Option<&str>, range: &str| NewNetwork {
            name: Some(name.into()),
            subnets: subnet.into_iter().map(String::from).collect(),
            ip_range: Some(range.into()),
            ..Default::default()
        };
        let a = n
            .create(&with("a", Some("10.91.0.0/24"), "10.91.0.128/25"))
            .unwrap();
        assert_eq!(
            a.lease_range4(),
            Some((
                "10.91.0.128".parse().unwrap(),
                "10.91.0.254".parse().unwrap()
            ))
        );
        // The subnet's own network address is never leased.
        let b = n
            .create(&with("b", Some("10.92.0.0/24"), "10.92.0.0/28"))
            .unwrap();
        assert_eq!(
            b.subnets[0].lease_range.as_ref().unwrap().start_ip,
            "10.92.0.1"
        );
        for (name, subnet, range, why) in [
            ("c", None, "10.89.0.0/25", "--subnet"),
            ("d", Some("10.93.0.0/24"), "10.94.0.0/25", "not inside"),
            ("e", Some("10.93.0.0/24"), "10.93.0.0/16", "not inside"),
            ("f", Some("10.93.0.0/24"), "nonsense", "CIDR"),
        ] {
            let e = n
                .create(&with(name, subnet, range))
                .unwrap_err()
                .to_string();
            assert!(e.contains("--ip-range") && e.contains(why), "{e}");
            assert!(n.get(name).is_err(), "{name} not created");
        }
    }

    #[test]
    fn subnets_are_picked_and_checked() {
        let (_d, n) = nets();
        let a = n.create(&NewNetwork::default()).unwrap();
        assert_eq!(a.name, "box0");
        assert_eq!(a.subnets[0].subnet, "10.89.0.0/24");
        assert_eq!(a.subnets[0].gateway, "10.89.0.1");
        let b = n
            .create(&NewNetwork {
                name: Some("web".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(b.subnets[0].subnet, "10.89.1.0/24");
        assert_eq!(b.network_interface, "box1");
        let e = n
            .create(&NewNetwork {
                name: Some("x1".into()),
                subnets: vec!["10.89.0.0/16".into()],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(e, Error::Overlap { .. }), "{e}");
        assert!(matches!(
            n.create(&NewNetwork {
                name: Some("web".into()),
                ..Default::default()
            }),
            Err(Error::Exists(_))
        ));
        for bad in ["10.0.0.1/24", "10.0.0.0", "fd00::/64", "10.0.0.0/33"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
        let g = n.create(&NewNetwork {
            name: Some("g".into()),
            subnets: vec!["192.168.50.0/24".into()],
            gateways: vec!["192.168.51.1".into()],
            ..Default::default()
        });
        assert!(matches!(
            g,
            Err(Error::BadName(_)) | Err(Error::BadGateway(..))
        ));
        assert!(matches!(
            n.create(&NewNetwork {
                name: Some("host".into()),
                ..Default::default()
            }),
            Err(Error::Reserved(_))
        ));
        assert_eq!(n.get(&b.id[..12]).unwrap().name, "web");
        n.remove("web").unwrap();
        assert!(matches!(n.get("web"), Err(Error::NotFound(_))));
    }

    #[test]
    fn dual_stack_subnets_pair_with_their_gateways() {
        let (_d, n) = nets();
        let new = |name: &str, subnets: &[&str], gateways: &[&str], ipv6: bool| NewNetwork {
            name: Some(name.into()),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            gateways: gateways.iter().map(|s| s.to_string()).collect(),
            ipv6,
            ..Default::default()
        };
        let d = n
            .create(&new(
                "dual",
                &["fd10::/64", "10.10.0.0/24"],
                &["fd10::fe", "10.10.0.254"],
                false,
            ))
            .unwrap();
        assert!(d.ipv6_enabled);
        assert_eq!(
            d.subnets,
            vec![
                Subnet {
                    subnet: "10.10.0.0/24".into(),
                    gateway: "10.10.0.254".into(),
                    lease_range: None,
                },
                Subnet {
                    subnet: "fd10::/64".into(),
                    gateway: "fd10::fe".into(),
                    lease_range: None,
                },
            ]
        );
        let a = n.create(&new("auto", &[], &[], true)).unwrap();
        assert_eq!(a.subnets[0].subnet, "10.89.0.0/24");
        assert!(a.subnet6().is_some());
        let only6 = n.create(&new("only6", &["fd40::/64"], &[], false)).unwrap();
        assert!(only6.ipv6_enabled && only6.subnet4().is_none());
        assert_eq!(only6.subnets[0].gateway, "fd40::1");
        assert!(only6.check_address("10.0.0.5").is_err());
        let v4only = n.create(&new("v4", &[], &[], false)).unwrap();
        assert!(!v4only.ipv6_enabled && v4only.subnet6().is_none());
        for (bad, want) in [
            (new("x1", &["fd10:0:0:0:1::/80"], &[], true), "overlaps"),
            (
                new("x3", &["fd20::/64", "fd30::/64"], &[], true),
                "at most one",
            ),
            (
                new("x4", &["10.20.0.0/24"], &["10.20.0.1", "fd::1"], false),
                "one --gateway per",
            ),
        ] {
            let e = n.create(&bad).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert_eq!(
            d.check_address6("fd10::5").unwrap(),
            "fd10::5".parse::<Ipv6Addr>().unwrap()
        );
        assert!(d.check_address6("fd10::fe").is_err());
        assert!(d.check_address6("fd11::5").is_err());
    }
}
