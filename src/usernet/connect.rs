//! What a running container is plugged into, and `network connect|disconnect` of one.
//!
//! The supervisor (the box process that runs the container, owner of its `Attached`)
//! records the networks it plugged in at start in `<runtime>/networks/attached/<id>.json`
//! with its own pid and start time. `connect` leases an address for that supervisor (so it
//! goes with it), runs netavark `setup` for the one network on the next free `ethN` and
//! adds it to the record; `disconnect` runs netavark `teardown` for the one network (its
//! interface, aardvark-dns entries and firewall rules) and drops it. When the container
//! stops, its supervisor tears down what the record then says, not what it started with.
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::attach::{
    Attached, Lease, Want, dup_fd, lease_for, remove_stamped, runtime_dir, stamp, this_supervisor,
};
use super::{Error, Network};
use crate::paths::Paths;

/// One network a running container is plugged into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plug {
    pub network: Network,
    /// Its address on the network's IPv4 subnet (none on an IPv6-only network).
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// Its address on the network's IPv6 subnet, if it has one.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    /// Its interface in the container (`ethN`).
    pub interface: String,
    /// Its names on the network, its own first.
    pub aliases: Vec<String>,
    /// `--mac-address`: its interface's MAC (else netavark picks one).
    #[serde(default)]
    pub mac: Option<String>,
}

impl Plug {
    /// Its addresses: IPv4, IPv6.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> {
        let v4 = self.ip.map(IpAddr::from);
        v4.into_iter().chain(self.ip6.map(IpAddr::from))
    }

    /// netavark's per-network options.
    pub(super) fn options(&self) -> serde_json::Value {
        let mut o = serde_json::json!({
            "interface_name": self.interface,
            "static_ips": self.ips().map(|ip| ip.to_string()).collect::<Vec<_>>(),
            "aliases": self.aliases,
        });
        if let Some(mac) = &self.mac {
            o["static_mac"] = serde_json::json!(mac);
        }
        o
    }
}

/// What start plugs in: `eth0`, `eth1`, ... in the order of `leases`.
pub(super) fn plugs(leases: &[Lease], aliases: &[String], name: &str) -> Vec<Plug> {
    leases
        .iter()
        .enumerate()
        .map(|(i, l)| Plug {
            network: l.network.clone(),
            ip: l.ip,
            ip6: l.ip6,
            interface: format!("eth{i}"),
            aliases: names(name, aliases, &l.aliases),
            mac: l.mac.clone(),
        })
        .collect()
}

fn names(name: &str, aliases: &[String], more: &[String]) -> Vec<String> {
    let mut out = vec![name.to_string()];
    for a in aliases.iter().chain(more) {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

/// What a container asks of each of its networks (in `spec.networks` order): `--ip` is
/// the first network's; `network connect --alias/--ip` are per network.
pub fn wants(spec: &crate::spec::Spec) -> Vec<Want> {
    spec.networks
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let o = spec.settings.per_network.get(n);
            Want {
                network: n.clone(),
                ip: o.and_then(|o| o.ip).or(if i == 0 { spec.ip } else { None }),
                ip6: o.and_then(|o| o.ip6),
                aliases: o.map(|o| o.aliases.clone()).unwrap_or_default(),
                mac: o.and_then(|o| o.mac.clone()),
            }
        })
        .collect()
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The supervisor: pid and start time.
    owner: (i32, u64),
    plugs: Vec<Plug>,
}

fn dir(paths: &Paths) -> PathBuf {
    runtime_dir(paths).join("attached")
}

fn lock(dir: &std::path::Path) -> Result<crate::lock::FileLock, Error> {
    fs::create_dir_all(dir).map_err(super::io_err("create", dir))?;
    Ok(crate::lock::FileLock::acquire(
        &dir.join(".lock"),
        crate::lock::Mode::Exclusive,
        crate::lock::default_timeout(),
    )?)
}

fn read(dir: &std::path::Path, id: &str) -> Option<Record> {
    let text = fs::read(dir.join(format!("{id}.json"))).ok()?;
    let rec: Record = serde_json::from_slice(&text).ok()?;
    (crate::container::process_start_time(rec.owner.0) == Some(rec.owner.1)).then_some(rec)
}

fn write(dir: &std::path::Path, id: &str, rec: &Record) -> Result<(), Error> {
    let bytes = serde_json::to_vec(rec).expect("the record serializes");
    super::write_atomic(&dir.join(format!("{id}.json")), &bytes)
}

/// After start plugged `a` in: record it, supervised by this process.
pub(super) fn record(paths: &Paths, a: &Attached) -> Result<(), Error> {
    let dir = dir(paths);
    let _lock = lock(&dir)?;
    write(
        &dir,
        &a.id,
        &Record {
            owner: this_supervisor(),
            plugs: a.plugs.clone(),
        },
    )
}

/// When the supervisor unplugs `a`: the networks it is on by now are the ones to tear
/// down; their leases and the record go.
pub(super) fn forget(a: &mut Attached) {
    let Some(networks) = a.config.parent().map(|p| p.join("attached")) else {
        return;
    };
    let Ok(_lock) = lock(&networks) else { return };
    let path = networks.join(format!("{}.json", a.id));
    if let Some(rec) = read(&networks, &a.id) {
        let stamp = stamp(rec.owner, &a.id);
        for p in &rec.plugs {
            remove_lease(&networks, p, &stamp);
        }
        a.plugs = rec.plugs;
    }
    let _ = fs::remove_file(path);
}

/// The lease file of `p`, while it is still `stamp`'s.
fn remove_lease(attached: &std::path::Path, p: &Plug, stamp: &str) {
    let Some(networks) = attached.parent() else {
        return;
    };
    let dir = networks.join("leases").join(&p.network.name);
    for ip in p.ips() {
        remove_stamped(&dir.join(ip.to_string()), stamp);
    }
}

/// A running container's namespaces, and its holder's.
pub struct Running<'a> {
    pub holder_userns: BorrowedFd<'a>,
    pub holder_netns: BorrowedFd<'a>,
    pub netns: BorrowedFd<'a>,
    pub id: &'a str,
    pub name: &'a str,
}

impl Running<'_> {
    fn attached(&self, paths: &Paths, plug: Plug) -> Result<Attached, Error> {
        Ok(Attached {
            leases: Vec::new(),
            plugs: vec![plug],
            owner: false,
            holder_userns: dup_fd(self.holder_userns)?,
            holder_netns: dup_fd(self.holder_netns)?,
            netns: dup_fd(self.netns)?,
            config: runtime_dir(paths).join("netavark"),
            id: self.id.to_string(),
            name: self.name.to_string(),
        })
    }
}

/// Plug running container `c` into `want.network` (aliases: `aliases`, its
/// `--network-alias`, and `want.aliases`). Nothing changes when anything fails.
pub fn connect(paths: &Paths, c: &Running, want: &Want, aliases: &[String]) -> Result<Plug, Error> {
    let dir = dir(paths);
    let _lock = lock(&dir)?;
    let mut rec = read(&dir, c.id).ok_or_else(|| Error::NotPlugged(c.name.to_string()))?;
    if rec.plugs.iter().any(|p| p.network.name == want.network) {
        return Err(Error::AlreadyOn {
            container: c.name.to_string(),
            network: want.network.clone(),
        });
    }
    let interface = (0..)
        .map(|i| format!("eth{i}"))
        .find(|i| !rec.plugs.iter().any(|p| &p.interface == i))
        .expect("a free interface name");
    let lease = lease_for(paths, std::slice::from_ref(want), c.id, rec.owner)?
        .pop()
        .expect("one lease per network");
    let plug = Plug {
        network: lease.network.clone(),
        ip: lease.ip,
        ip6: lease.ip6,
        interface,
        aliases: names(c.name, aliases, &want.aliases),
        mac: lease.mac.clone(),
    };
    // On failure the lease (dropped) goes; netavark undid its own half-setup.
    c.attached(paths, plug.clone())?.netavark("setup")?;
    rec.plugs.push(plug.clone());
    if let Err(e) = write(&dir, c.id, &rec) {
        let _ = c.attached(paths, plug)?.netavark("teardown");
        return Err(e);
    }
    lease.keep();
    Ok(plug)
}

/// Unplug running container `c` from `network`: its interface there and its names go.
/// `force`: it goes from the record even when netavark fails.
pub fn disconnect(paths: &Paths, c: &Running, network: &str, force: bool) -> Result<Plug, Error> {
    let dir = dir(paths);
    let _lock = lock(&dir)?;
    let mut rec = read(&dir, c.id).ok_or_else(|| Error::NotPlugged(c.name.to_string()))?;
    let Some(i) = rec.plugs.iter().position(|p| p.network.name == network) else {
        return Err(Error::NotOn {
            container: c.name.to_string(),
            network: network.to_string(),
        });
    };
    let plug = rec.plugs[i].clone();
    match c.attached(paths, plug.clone())?.netavark("teardown") {
        Err(e) if !force => return Err(e),
        _ => {}
    }
    rec.plugs.remove(i);
    write(&dir, c.id, &rec)?;
    let stamp = stamp(rec.owner, c.id);
    remove_lease(&dir, &plug, &stamp);
    Ok(plug)
}
