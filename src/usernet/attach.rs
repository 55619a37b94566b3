//! Containers on user networks, as rootless podman does it: one shared network namespace
//! (the *holder*'s, a box infra container named `box-netns` with pasta for the way out)
//! holds a bridge per network; netavark, run inside the holder's user and network
//! namespaces with a private /run, plugs each container's own network namespace into it
//! with a veth and the address box leased, and starts aardvark-dns on the gateway for
//! names. The containers live in the holder's user namespace (so netavark may act on both
//! namespaces), each with its own network namespace. Only a network's last container is
//! unplugged by `netavark teardown`; the others just leave aardvark-dns's records (`dns`).
//!
//! Leases: `<runtime>/networks/leases/<network>/<ip>` holds `<pid> <start time> <id>` of
//! the box process that supervises the container; one whose process is gone is free.
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Error, Network, Networks, dns};
use crate::paths::Paths;

/// The name of the container that holds the shared network namespace.
pub const HOLDER: &str = "box-netns";

/// Debian's netavark and aardvark-dns (packaged for podman).
const NETAVARK: &[&str] = &["/usr/lib/podman/netavark", "/usr/libexec/podman/netavark"];
const AARDVARK: &[&str] = &[
    "/usr/lib/podman/aardvark-dns",
    "/usr/libexec/podman/aardvark-dns",
];

/// Teardowns spawned and not yet waited for (see `Attached::run_netavark`).
static TEARDOWNS: std::sync::Mutex<Vec<std::process::Child>> = std::sync::Mutex::new(Vec::new());

fn pending_teardowns() -> std::sync::MutexGuard<'static, Vec<std::process::Child>> {
    TEARDOWNS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reap the detached netavark teardowns that have exited, without blocking (waits on their
/// own pids only), so a long-lived process (the monitor restarting a container) does not
/// collect zombies. Returns how many are still running.
pub fn reap_teardowns() -> usize {
    let mut pending = pending_teardowns();
    pending.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    pending.len()
}

/// After the holder went (its namespace with every bridge and firewall chain in it): the
/// teardowns this process left running there have nothing left to do, and the next holder's
/// first setup would wait for them (they hold netavark's lock). Kill them; those not gone
/// at once stay pending (reaped by `reap_teardowns`, or by init once this process exits):
/// waiting for one caught inside a netlink call took up to 30 ms.
pub fn abandon_teardowns() {
    let mut pending = pending_teardowns();
    for child in pending.iter_mut() {
        let _ = child.kill();
    }
    pending.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
}

fn find(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.exists())
}

/// Whether netavark and aardvark-dns are installed.
pub fn check_tools() -> Result<(PathBuf, PathBuf), Error> {
    match (find(NETAVARK), find(AARDVARK)) {
        (Some(n), Some(a)) => Ok((n, a)),
        _ => Err(Error::Tools),
    }
}

pub(super) fn runtime_dir(paths: &Paths) -> PathBuf {
    paths.runtime.join("networks")
}

/// An address of a network, held while the container runs.
#[derive(Debug)]
pub struct Lease {
    pub network: Network,
    /// Its address on the network's IPv4 subnet (none on an IPv6-only network).
    pub ip: Option<Ipv4Addr>,
    /// Its names there besides its own and `--network-alias`.
    pub aliases: Vec<String>,
    /// The MAC its interface there gets (`--mac-address`), else netavark's pick.
    pub mac: Option<String>,
    path: PathBuf,
    /// Its address on the network's IPv6 subnet, if it has one.
    pub ip6: Option<std::net::Ipv6Addr>,
    path6: PathBuf,
    /// What the lease file says: it is removed only while it still says so (a network
    /// connect|disconnect may have given the address away meanwhile).
    stamp: String,
}

impl Lease {
    /// Keep the lease file when the lease is dropped (it is the supervisor's, and goes
    /// with it: `network connect` of a running container).
    pub(super) fn keep(mut self) {
        self.path = PathBuf::new();
        self.path6 = PathBuf::new();
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        for path in [&self.path, &self.path6] {
            remove_stamped(path, &self.stamp);
        }
    }
}

/// What a lease file says: the supervisor (pid, start time) and the container.
pub(super) fn stamp((pid, start): (i32, u64), id: &str) -> String {
    format!("{pid} {start} {id}\n")
}

/// Remove lease file `path` while it still says `stamp` (`network connect|disconnect`
/// may have given the address away meanwhile).
pub(super) fn remove_stamped(path: &Path, stamp: &str) {
    if fs::read_to_string(path).is_ok_and(|t| t == stamp) {
        let _ = fs::remove_file(path);
    }
}

/// The leases in lease directory `ldir` whose supervisor lives: (file name, that is the
/// address; container id).
fn live_leases(ldir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(ldir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let text = fs::read_to_string(e.path()).ok()?;
            let id = text.split_whitespace().nth(2)?.to_string();
            holder_alive(&text).then(|| (e.file_name().to_string_lossy().into_owned(), id))
        })
        .collect()
}

/// A namespace descriptor of one's own.
pub(super) fn dup_fd(fd: BorrowedFd) -> Result<OwnedFd, Error> {
    fd.try_clone_to_owned().map_err(super::io_err(
        "duplicate",
        Path::new("a namespace descriptor"),
    ))
}

/// What a container asks of one network: `--ip` (else the first free address) and aliases.
#[derive(Debug, Clone, Default)]
pub struct Want {
    pub network: String,
    pub ip: Option<Ipv4Addr>,
    pub ip6: Option<std::net::Ipv6Addr>,
    pub aliases: Vec<String>,
    /// `--mac-address`: its interface's MAC there.
    pub mac: Option<String>,
}

pub(super) fn holder_alive(text: &str) -> bool {
    let mut it = text.split_whitespace();
    let (Some(pid), Some(start)) = (
        it.next().and_then(|p| p.parse::<i32>().ok()),
        it.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return false;
    };
    crate::container::process_start_time(pid) == Some(start)
}

/// Lease one address on each network for container `id`, supervised by this process:
/// the one wanted (`--ip`), else the first free one.
pub fn lease(paths: &Paths, wants: &[Want], id: &str) -> Result<Vec<Lease>, Error> {
    lease_for(paths, wants, id, this_supervisor())
}

/// This process as a lease's supervisor: its pid and start time.
pub(super) fn this_supervisor() -> (i32, u64) {
    let me = std::process::id() as i32;
    (me, crate::container::process_start_time(me).unwrap_or(0))
}

/// [`lease`] for the supervisor `owner` (pid, start time).
pub(super) fn lease_for(
    paths: &Paths,
    wants: &[Want],
    id: &str,
    (me, start): (i32, u64),
) -> Result<Vec<Lease>, Error> {
    let nets = Networks::at(paths);
    let dir = runtime_dir(paths);
    fs::create_dir_all(&dir).map_err(super::io_err("create", &dir))?;
    let _lock = crate::lock::FileLock::acquire(
        &dir.join(".lock"),
        crate::lock::Mode::Exclusive,
        crate::lock::default_timeout(),
    )?;
    let mut out = Vec::new();
    for w in wants {
        let network = nets.get(&w.network)?;
        let ldir = dir.join("leases").join(&network.name);
        fs::create_dir_all(&ldir).map_err(super::io_err("create", &ldir))?;
        let mut got = Lease {
            network: network.clone(),
            ip: None,
            aliases: w.aliases.clone(),
            mac: w.mac.clone(),
            path: PathBuf::new(),
            ip6: None,
            path6: PathBuf::new(),
            stamp: stamp((me, start), id),
        };
        // Dropped (its files removed) if the IPv6 address cannot be had.
        if let Some((ip, path)) = lease4(&ldir, &network, w.ip, &got.stamp)? {
            got.ip = Some(ip);
            got.path = path;
        }
        if let Some((ip6, path6)) = super::ipv6::lease6(&ldir, &network, w.ip6, &got.stamp)? {
            got.ip6 = Some(ip6);
            got.path6 = path6;
        }
        out.push(got);
    }
    Ok(out)
}

/// Lease an address of `network`'s IPv4 subnet (if it has one) in its lease directory
/// `ldir`: `want` (`--ip`), else the first free one; the lease file says `stamp`.
fn lease4(
    ldir: &Path,
    network: &Network,
    want: Option<Ipv4Addr>,
    stamp: &str,
) -> Result<Option<(Ipv4Addr, PathBuf)>, Error> {
    let Some(((net, len), gateway)) = network.subnet4() else {
        return Ok(None);
    };
    let size = 1u32 << (32 - len);
    let host = |ip: Ipv4Addr| {
        let h = u32::from(ip).wrapping_sub(u32::from(net));
        h >= 1 && h < size - 1 && ip != gateway
    };
    // `--ip-range`: the first and last host numbers leased (all of the subnet's without).
    let (lo, hi) = network
        .lease_range4()
        .map(|(a, b)| (u32::from(a) - u32::from(net), u32::from(b) - u32::from(net)))
        .unwrap_or((1, size - 2));
    let candidates: Box<dyn Iterator<Item = Ipv4Addr>> = match want {
        // One outside the subnet (or its gateway) is never free.
        Some(w) => Box::new(std::iter::once(w).filter(move |w| host(*w))),
        None => Box::new(
            (lo..=hi)
                .map(move |h| Ipv4Addr::from(u32::from(net) + h))
                .filter(move |ip| host(*ip)),
        ),
    };
    claim(ldir, network, candidates, want.is_some(), stamp)
}

/// The first of `candidates` whose lease file in `ldir` is free, leased now (written with
/// `stamp`); one given by the user (`asked`) that is taken is an error.
pub(super) fn claim<A: std::fmt::Display>(
    ldir: &Path,
    network: &Network,
    candidates: impl Iterator<Item = A>,
    asked: bool,
    stamp: &str,
) -> Result<Option<(A, PathBuf)>, Error> {
    for ip in candidates {
        let path = ldir.join(ip.to_string());
        if let Ok(text) = fs::read_to_string(&path)
            && holder_alive(&text)
        {
            if asked {
                return Err(Error::AddressInUse {
                    ip: ip.to_string(),
                    network: network.name.clone(),
                });
            }
            continue;
        }
        fs::write(&path, stamp).map_err(super::io_err("write", &path))?;
        return Ok(Some((ip, path)));
    }
    Err(Error::Full(network.name.clone()))
}

/// The address container `id` holds on `network` while it runs.
pub fn address_of(paths: &Paths, network: &str, id: &str) -> Option<Ipv4Addr> {
    address_in(paths, network, id)
}

/// The address of type `A` (IPv4 or IPv6) container `id` holds on `network`.
pub(super) fn address_in<A: std::str::FromStr>(
    paths: &Paths,
    network: &str,
    id: &str,
) -> Option<A> {
    live_leases(&runtime_dir(paths).join("leases").join(network))
        .into_iter()
        .filter(|(_, holder)| holder == id)
        .find_map(|(ip, _)| ip.parse().ok())
}

/// How many leases are held by live processes (the holder may stop at 0).
pub fn leases_in_use(paths: &Paths) -> usize {
    let dir = runtime_dir(paths).join("leases");
    let Ok(nets) = fs::read_dir(&dir) else {
        return 0;
    };
    nets.filter_map(|n| n.ok())
        .map(|n| live_leases(&n.path()).len())
        .sum()
}

/// The lock held while the holder starts or stops, and leases are counted for it.
pub fn holder_lock(paths: &Paths) -> Result<crate::lock::FileLock, Error> {
    let dir = runtime_dir(paths);
    fs::create_dir_all(&dir).map_err(super::io_err("create", &dir))?;
    Ok(crate::lock::FileLock::acquire(
        &dir.join("holder.lock"),
        crate::lock::Mode::Exclusive,
        crate::lock::default_timeout(),
    )?)
}

/// Held (shared) by every box process that runs a container on a user network, from
/// before the holder is ensured until the container is gone: the holder may go only when
/// it can be taken exclusively ([`holder_unused`]). A killed process lets go by itself.
pub fn holder_user(paths: &Paths) -> Result<crate::lock::FileLock, Error> {
    let dir = runtime_dir(paths);
    fs::create_dir_all(&dir).map_err(super::io_err("create", &dir))?;
    Ok(crate::lock::FileLock::acquire(
        &dir.join("users.lock"),
        crate::lock::Mode::Shared,
        crate::lock::default_timeout(),
    )?)
}

/// The users' lock, exclusively, when no container on a user network runs or starts.
pub fn holder_unused(paths: &Paths) -> Result<Option<crate::lock::FileLock>, Error> {
    let dir = runtime_dir(paths);
    fs::create_dir_all(&dir).map_err(super::io_err("create", &dir))?;
    Ok(crate::lock::FileLock::try_acquire(
        &dir.join("users.lock"),
        crate::lock::Mode::Exclusive,
    )?)
}

/// A container plugged into its networks; unplugged (netavark teardown) when dropped:
/// from the networks it is on by then (`super::connect` records those it joins or leaves
/// while it runs).
pub struct Attached {
    pub(super) leases: Vec<Lease>,
    pub(super) plugs: Vec<super::connect::Plug>,
    /// The supervisor's own (set up at start, torn down when dropped), or one
    /// `network connect|disconnect` made for a single network.
    pub(super) owner: bool,
    pub(super) holder_userns: OwnedFd,
    pub(super) holder_netns: OwnedFd,
    pub(super) netns: OwnedFd,
    pub(super) config: PathBuf,
    pub(super) id: String,
    pub(super) name: String,
}

/// Container `pid`'s network namespace, opened while it can be (before it is released:
/// from then on it is not dumpable).
pub fn open_netns(pid: i32) -> Result<OwnedFd, Error> {
    fs::File::open(format!("/proc/{pid}/ns/net"))
        .map(OwnedFd::from)
        .map_err(super::io_err("open", Path::new("/proc/PID/ns/net")))
}

impl Attached {
    /// Plug a container (its network namespace `netns`, made in the holder's user
    /// namespace, see [`open_netns`]) into the leased networks.
    #[allow(clippy::too_many_arguments)]
    pub fn setup(
        paths: &Paths,
        leases: Vec<Lease>,
        aliases: &[String],
        holder_userns: BorrowedFd,
        holder_netns: BorrowedFd,
        netns: OwnedFd,
        id: &str,
        name: &str,
    ) -> Result<Attached, Error> {
        let plugs = super::connect::plugs(&leases, aliases, name);
        let a = Attached {
            leases,
            plugs,
            owner: true,
            holder_userns: dup_fd(holder_userns)?,
            holder_netns: dup_fd(holder_netns)?,
            netns,
            config: runtime_dir(paths).join("netavark"),
            id: id.to_string(),
            name: name.to_string(),
        };
        fs::create_dir_all(&a.config).map_err(super::io_err("create", &a.config))?;
        a.netavark("setup")?;
        super::connect::record(paths, &a)?;
        Ok(a)
    }

    /// The JSON netavark's setup and teardown read on stdin. No `port_mappings` (box's `-p`
    /// is pasta's): netavark then makes no per-network port chain either (two iptables
    /// runs fewer, as for podman's containers without ports).
    fn options(&self) -> serde_json::Value {
        let mut networks = serde_json::Map::new();
        let mut info = serde_json::Map::new();
        for p in &self.plugs {
            networks.insert(p.network.name.clone(), p.options());
            info.insert(
                p.network.name.clone(),
                serde_json::to_value(&p.network).unwrap_or_default(),
            );
        }
        serde_json::json!({
            "container_id": self.id,
            "container_name": self.name,
            "networks": networks,
            "network_info": info,
        })
    }

    /// Run netavark `command` in the holder's user and network namespaces, with a private
    /// mount namespace whose /run is a fresh tmpfs (iptables' lock file).
    pub(super) fn netavark(&self, command: &'static str) -> Result<(), Error> {
        self.run_netavark(command, false)
    }

    /// `detach`: do not wait for netavark (a teardown, whose errors are ignored anyway): it
    /// inherits the serialising lock, so the next setup still waits for it to finish.
    fn run_netavark(&self, command: &'static str, detach: bool) -> Result<(), Error> {
        let (netavark, aardvark) = check_tools()?;
        // One netavark at a time (as podman's network lock): concurrent setups race on the
        // firewall chains.
        let _serial = crate::lock::FileLock::acquire(
            &self.config.join("box.lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?;
        // Earlier teardowns held this lock until they exited: reap them (they are past
        // closing their descriptors, so at most moments from being zombies).
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
        while reap_teardowns() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let userns = self.holder_userns.as_raw_fd();
        let holder_net = self.holder_netns.as_raw_fd();
        let target = self.netns.as_raw_fd();
        let serial_fd = _serial.raw_fd();
        let mut cmd = Command::new(&netavark);
        // netavark runs iptables and ip by name: users' PATHs often lack the sbin dirs.
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env(
            "PATH",
            format!("{path}:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"),
        );
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--rootless=true")
            .arg(format!("--aardvark-binary={}", aardvark.display()))
            .arg(command)
            .arg(format!("/proc/self/fd/{target}"))
            .stdin(Stdio::piped());
        if detach {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        // SAFETY: only system calls between fork and exec (the child is single-threaded).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                let fail = || Err(std::io::Error::last_os_error());
                if libc::setns(userns, libc::CLONE_NEWUSER) < 0
                    || libc::setns(holder_net, libc::CLONE_NEWNET) < 0
                    || libc::unshare(libc::CLONE_NEWNS) < 0
                {
                    return fail();
                }
                let none = c"none".as_ptr();
                if libc::mount(
                    none,
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) < 0
                    || libc::mount(
                        none,
                        c"/run".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    ) < 0
                {
                    return fail();
                }
                // The container's namespace, for /proc/self/fd/N.
                if libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                    return fail();
                }
                if detach && libc::fcntl(serial_fd, libc::F_SETFD, 0) < 0 {
                    return fail();
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| Error::Netavark {
            command,
            why: e.to_string(),
        })?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(self.options().to_string().as_bytes());
        }
        if detach {
            // Not waited for: reaped by this process's next netavark (`reap_teardowns`) or,
            // once this process exits, by the subreaper or init. (The monitor is never its
            // parent: each run's `box start --attach` is a child of the monitor that exits.)
            _serial.leave_to_child();
            pending_teardowns().push(child);
            return Ok(());
        }
        let out = child.wait_with_output().map_err(|e| Error::Netavark {
            command,
            why: e.to_string(),
        })?;
        if !out.status.success() {
            // netavark reports its error as JSON on stdout ({"error": "..."}).
            let stdout = String::from_utf8_lossy(&out.stdout);
            let json_error = serde_json::from_str::<serde_json::Value>(&stdout)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string));
            let stderr = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.contains("syslog"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Netavark {
                command,
                why: json_error.unwrap_or(if stderr.is_empty() {
                    stdout.trim().to_string()
                } else {
                    stderr
                }),
            });
        }
        Ok(())
    }

    /// The container's addresses, with their networks' gateways (its DNS servers).
    pub fn leases(&self) -> &[Lease] {
        &self.leases
    }
}

impl Attached {
    /// Whether another live container holds an address on each of this container's
    /// networks (so none of their bridges goes with this one).
    fn others_remain(&self) -> bool {
        let Some(dir) = self.config.parent() else {
            return false;
        };
        self.plugs.iter().all(|p| {
            live_leases(&dir.join("leases").join(&p.network.name))
                .iter()
                .any(|(_, id)| *id != self.id)
        })
    }

    /// Unplug a container whose networks all keep other containers: what `netavark
    /// teardown` would do for it, without its ~20 ms of iptables checks. Its veth goes with
    /// its network namespace (no port mappings are ever given to netavark: `-p` is pasta's),
    /// so only its names leave aardvark-dns's records, which aardvark-dns rereads on SIGHUP.
    fn forget_names(&self) -> Result<(), Error> {
        let _serial = crate::lock::FileLock::acquire(
            &self.config.join("box.lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?;
        let dns = self.config.join("aardvark-dns");
        let mut changed = false;
        for p in self.plugs.iter().filter(|p| p.network.dns_enabled) {
            changed |= dns::forget(&dns.join(&p.network.name), &self.id)?;
        }
        if changed {
            dns::reload(&dns);
        }
        Ok(())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        // The networks it is on now (`network connect|disconnect` may have changed them).
        super::connect::forget(self);
        // The last container of a network: netavark removes the bridge, its firewall chains
        // and (with the last network) aardvark-dns.
        if !self.others_remain() || self.forget_names().is_err() {
            let _ = self.run_netavark("teardown", true);
        }
    }
}

/// After the holder went: an aardvark-dns whose containers were never torn down (their box
/// was killed) is stopped, and its records cleared.
pub fn stop_dns(paths: &Paths) {
    let dir = runtime_dir(paths).join("netavark").join("aardvark-dns");
    if let Some(pid) = dns::server(&dir) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    let _ = fs::remove_dir_all(&dir);
}

/// The /etc/hosts and resolv.conf lines of a container on `leases`: its own addresses (on
/// each network, the first network's first, as podman), and aardvark-dns on each gateway.
pub fn etc_lines(leases: &[Lease], hostname: &str, name: &str) -> (String, String) {
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
    for l in leases {
        let ips = l.ip.map(IpAddr::from).into_iter();
        for ip in ips.chain(l.ip6.map(IpAddr::from)) {
            hosts.push_str(&format!("{ip}\t{hostname} {name}\n"));
        }
    }
    // aardvark-dns on each network that has it; on none (`--disable-dns`), the holder's
    // pasta forwards to the host's resolvers (the container's traffic leaves through it).
    let dns: Vec<&Lease> = leases.iter().filter(|l| l.network.dns_enabled).collect();
    let resolv = if dns.is_empty() {
        format!("nameserver {}\n", crate::network::PASTA_DNS_FORWARD)
    } else {
        let mut r = String::from("search dns.podman\n");
        for l in dns {
            r.push_str(&format!("nameserver {}\n", l.network.subnets[0].gateway));
        }
        r
    };
    (hosts, resolv)
}
