//! `Settings`: the podman run/create options beyond docker's core set (resource limits
//! of the process, its umask and extra groups, namespaced sysctls, /dev/shm's size, the
//! time zone, logging, a run-time limit, the containers it requires, ...), typed and
//! validated at create (`commands::container_spec`), stored in the record under
//! `settings`. Every field has a default, so records written before they existed load.
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Error;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `--ulimit NAME=SOFT[:HARD]`, set in the container before its command runs.
    pub ulimits: Vec<Ulimit>,
    /// `--umask`: the command's umask (podman's default 0022).
    pub umask: Option<u32>,
    /// `--group-add`: extra groups (names resolved in the container, or numbers).
    pub group_add: Vec<String>,
    /// `--group-add keep-groups`: the user's own supplementary groups stay (rootless).
    pub keep_groups: bool,
    /// `--sysctl` (namespaced ones only), written at start.
    pub sysctls: BTreeMap<String, String>,
    /// `--shm-size` in bytes (podman's default 64 MiB).
    pub shm_size: Option<u64>,
    /// `--tz`: `local` or a zone of the host's zoneinfo, bound read-only on /etc/localtime.
    pub timezone: Option<String>,
    pub log: LogConfig,
    /// `--annotation KEY=VALUE`.
    pub annotations: BTreeMap<String, String>,
    /// `--timeout`: seconds the container may run before it is killed.
    pub timeout: Option<u64>,
    /// `--pidfile`: where the container's PID 1 (host pid) is written at start.
    pub pidfile: Option<PathBuf>,
    /// `--requires`: containers started before this one.
    pub requires: Vec<String>,
    /// `--cgroups=disabled`: no cgroup of its own.
    pub no_cgroup: bool,
    /// `--cgroups`: where its cgroup goes (`Disabled` also sets `no_cgroup`, which older
    /// records have alone).
    pub cgroups: crate::cgroup::Mode,
    /// `--cgroupns=host`: the host's cgroup namespace.
    pub host_cgroupns: bool,
    /// `--attach`: the streams shown in the foreground (empty: all).
    pub attach: Vec<String>,
    /// `--network pasta:OPTS` / `slirp4netns:OPTS`: the helper's options.
    pub network_options: Vec<String>,
    /// Per user network (by name): `network connect --alias/--ip/--ip6`, and `--ip6` of
    /// run/create on the first network. Networks left are dropped from it.
    pub per_network: BTreeMap<String, NetworkOpts>,
    /// `--preserve-fds N`: box's descriptors 3..3+N passed to the command.
    pub preserve_fds: u32,
    /// `--hostuser` and `--passwd`: /etc/passwd lines added at start when the image has
    /// no entry with their uid.
    pub passwd_entries: Vec<String>,
    /// `--hostuser` as given (their lines are in `passwd_entries`).
    pub hostusers: Vec<String>,
    /// `--passwd=false`: no entry for a numeric `--user`.
    pub no_passwd: bool,
    /// `--passwd-entry`: the template of that entry (as given).
    pub passwd_entry: Option<String>,
    /// `--env-host`: the host's environment was copied in at create ...
    pub env_host: bool,
    /// ... and these of `Spec::env`'s keys hold the host's value (not an `-e`'s).
    pub host_env_keys: Vec<String>,
    /// `--cidfile`: where the id was written at create (absolute).
    pub cidfile: Option<PathBuf>,
    /// `-v SRC:DEST:U`: the container paths whose sources are chowned (recursively) to
    /// the container's user at start.
    pub chown_targets: Vec<String>,
    /// `-v SRC:DEST:O`: the container paths where SRC is the lower layer of an overlay
    /// whose changes (in a tmpfs) are discarded when the container stops.
    pub overlay_targets: Vec<String>,
    /// `-v SRC:DEST:idmap[=uids=..;gids=..]` (and `--mount type=bind,...,idmap`): the binds
    /// mounted idmapped (box makes the mounts, which needs privilege over the source's
    /// filesystem: root).
    pub idmap_mounts: Vec<IdmapMount>,
    /// `--mount type=image,src=IMAGE,dst=PATH`: an image's layers (bottom → top) mounted
    /// read-only at a path.
    pub image_mounts: Vec<ImageMount>,
    /// `--uidmap`/`--gidmap` as given (intermediate ids: 0 the user, 1.. subordinate).
    pub uidmap: Vec<crate::userns::IdMap>,
    pub gidmap: Vec<crate::userns::IdMap>,
}

/// A container's options on one user network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkOpts {
    /// Names it has there besides its own and `--network-alias`.
    pub aliases: Vec<String>,
    pub ip: Option<std::net::Ipv4Addr>,
    pub ip6: Option<std::net::Ipv6Addr>,
    /// `--mac-address` (the first network's): its interface's MAC there.
    pub mac: Option<String>,
}

/// One `--mount type=image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMount {
    /// The image as the user named it.
    pub image: String,
    pub target: String,
    /// Its layer directories, bottom → top (filled in at create).
    pub layers: Vec<PathBuf>,
    /// `rw=true`: writable through an overlay whose upper directory is the container's
    /// own (`Record::image_mount_dir`), so the image never changes.
    #[serde(default)]
    pub rw: bool,
}

/// One idmapped bind: by the container's user namespace, or by podman's own mapping
/// (`idmap=uids=DISK-HOST-SIZE#...;gids=...`: disk ids DISK.. appear as host ids HOST..).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdmapMount {
    pub target: String,
    /// Empty (both): the container's own mapping.
    #[serde(default)]
    pub uids: Vec<crate::userns::IdMap>,
    #[serde(default)]
    pub gids: Vec<crate::userns::IdMap>,
}

impl IdmapMount {
    /// `idmap`'s value (empty: none given) for the bind on `target`; a map not given is
    /// the other's.
    pub fn parse(target: &str, value: &str) -> Result<IdmapMount, Error> {
        let bad = |why: String| {
            Error::Invalid(format!(
                "{why}: use idmap alone (the container's mapping) or idmap=uids=DISK-HOST-SIZE[#...];gids=DISK-HOST-SIZE[#...]"
            ))
        };
        let (mut uids, mut gids) = (Vec::new(), Vec::new());
        for part in value.split(';').filter(|p| !p.is_empty()) {
            let (key, ranges) = part.split_once('=').unwrap_or((part, ""));
            let list = match key {
                "uids" => &mut uids,
                "gids" => &mut gids,
                _ => return Err(bad(format!("unknown {key:?}"))),
            };
            for r in ranges.split('#') {
                if r.starts_with('@') {
                    return Err(bad(format!(
                        "{r}: ids relative to the container's (@) are not supported"
                    )));
                }
                let n: Vec<Option<u32>> = r.split('-').map(|x| x.parse().ok()).collect();
                match n.as_slice() {
                    [Some(c), Some(h), Some(size)] if *size > 0 => {
                        list.push(crate::userns::IdMap {
                            container: *c,
                            host: *h,
                            size: *size,
                        })
                    }
                    _ => return Err(bad(format!("{r:?} is not DISK-HOST-SIZE"))),
                }
            }
        }
        if uids.is_empty() {
            uids = gids.clone();
        }
        if gids.is_empty() {
            gids = uids.clone();
        }
        Ok(IdmapMount {
            target: target.to_string(),
            uids,
            gids,
        })
    }

    /// The option as podman spells it (`idmap` or `idmap=uids=..;gids=..`).
    pub fn option(&self) -> String {
        if self.uids.is_empty() {
            return "idmap".into();
        }
        let list = |m: &[crate::userns::IdMap]| {
            m.iter()
                .map(|m| format!("{}-{}-{}", m.container, m.host, m.size))
                .collect::<Vec<_>>()
                .join("#")
        };
        format!("idmap=uids={};gids={}", list(&self.uids), list(&self.gids))
    }
}

impl Settings {
    /// Whether `--uidmap`/`--gidmap` replace the user-namespace mode's maps.
    pub fn custom_idmap(&self) -> bool {
        !self.uidmap.is_empty() || !self.gidmap.is_empty()
    }
}

/// One `--ulimit`: a resource by its podman name (`nofile`, `nproc`, ...) and its soft
/// and hard limits (`None`: unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The resources `--ulimit` names, as podman (and docker) call them.
pub const ULIMITS: &[(&str, libc::__rlimit_resource_t)] = &[
    ("as", libc::RLIMIT_AS),
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

impl Ulimit {
    /// `NAME=SOFT[:HARD]` (`-1` or `unlimited`: no limit). `host` is handled by the caller.
    pub fn parse(s: &str) -> Result<Ulimit, Error> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "--ulimit {s}: {why}: use NAME=SOFT[:HARD] (e.g. nofile=1024:2048) or host"
            ))
        };
        let (name, value) = s.split_once('=').ok_or_else(|| bad("no value"))?;
        let name = name.trim().to_ascii_lowercase();
        let name = name.strip_prefix("rlimit_").unwrap_or(&name).to_string();
        if Ulimit::resource_of(&name).is_none() {
            let names: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
            return Err(bad(&format!(
                "unknown resource {name:?} (one of {})",
                names.join(", ")
            )));
        }
        let num = |v: &str| -> Result<Option<u64>, Error> {
            match v.trim() {
                "-1" | "unlimited" => Ok(None),
                n => n
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad(&format!("{n:?} is not a number"))),
            }
        };
        let (soft, hard) = match value.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let v = num(value)?;
                (v, v)
            }
        };
        if let (Some(s), Some(h)) = (soft, hard)
            && s > h
        {
            return Err(bad("the soft limit is above the hard limit"));
        }
        if soft.is_none() && hard.is_some() {
            return Err(bad("the soft limit is above the hard limit"));
        }
        Ok(Ulimit { name, soft, hard })
    }

    pub fn resource_of(name: &str) -> Option<libc::__rlimit_resource_t> {
        ULIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }
}

/// `--log-driver`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// podman's default: `<time> <stream> <F|P> <text>` lines (see `monitor::log`).
    #[default]
    K8sFile,
    /// Accepted as podman does: the same file format as k8s-file.
    JsonFile,
    /// Nothing is kept; `box logs` says so.
    None,
    /// The container writes to box's own stdout and stderr (foreground only); no log.
    Passthrough,
}

impl LogDriver {
    pub fn parse(s: &str) -> Result<LogDriver, Error> {
        match s {
            "k8s-file" => Ok(LogDriver::K8sFile),
            "json-file" => Ok(LogDriver::JsonFile),
            "none" => Ok(LogDriver::None),
            "passthrough" => Ok(LogDriver::Passthrough),
            _ => Err(Error::Invalid(format!(
                "--log-driver {s}: unsupported: use k8s-file, json-file, none or passthrough"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogDriver::K8sFile => "k8s-file",
            LogDriver::JsonFile => "json-file",
            LogDriver::None => "none",
            LogDriver::Passthrough => "passthrough",
        }
    }

    /// Whether output goes into a log file.
    pub fn keeps_log(self) -> bool {
        matches!(self, LogDriver::K8sFile | LogDriver::JsonFile)
    }
}

/// `--log-driver` and `--log-opt path=,max-size=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    pub driver: LogDriver,
    /// `path=`: the log file instead of the container's `ctr.log`.
    pub path: Option<PathBuf>,
    /// `max-size=`: rotate past this many bytes (else box's default).
    pub max_size: Option<u64>,
}

/// The host file `--tz` binds on /etc/localtime: the host's own for `local`, else the
/// zone's file under /usr/share/zoneinfo.
pub fn timezone_file(tz: &str) -> Result<PathBuf, Error> {
    let path = if tz == "local" {
        PathBuf::from("/etc/localtime")
    } else {
        let ok = !tz.is_empty()
            && !tz.starts_with('/')
            && tz
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
            && tz
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
        if !ok {
            return Err(Error::Invalid(format!(
                "--tz {tz:?}: use local or a zone such as Europe/Berlin"
            )));
        }
        PathBuf::from("/usr/share/zoneinfo").join(tz)
    };
    std::fs::canonicalize(&path)
        .ok()
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--tz {tz}: no such time zone on this host ({} is missing; is tzdata installed?)",
                path.display()
            ))
        })
}

/// The sysctls a container may set: those of its own namespaces (podman's list).
pub fn check_sysctl(key: &str, host_network: bool, host_ipc: bool) -> Result<(), Error> {
    let ipc = matches!(
        key,
        "kernel.msgmax" | "kernel.msgmnb" | "kernel.msgmni" | "kernel.sem"
    ) || key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key.starts_with("fs.mqueue.");
    let net = key.starts_with("net.");
    let uts = matches!(key, "kernel.domainname" | "kernel.hostname");
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        || key.contains("..")
    {
        return Err(Error::Invalid(format!("--sysctl {key}: not a sysctl name")));
    }
    if net && host_network {
        return Err(Error::Invalid(format!(
            "--sysctl {key}: a net.* sysctl cannot be set with --network host (it would change the host's)"
        )));
    }
    if ipc && host_ipc {
        return Err(Error::Invalid(format!(
            "--sysctl {key}: an IPC sysctl cannot be set with the host's IPC namespace"
        )));
    }
    if uts {
        return Err(Error::Invalid(format!(
            "--sysctl {key}: set the host name with --hostname"
        )));
    }
    if !(ipc || net) {
        return Err(Error::Invalid(format!(
            "--sysctl {key}: not namespaced, so a container cannot set it: only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmap_options_parse_and_print_as_podman_spells_them() {
        let plain = IdmapMount::parse("/d", "").unwrap();
        assert!(plain.uids.is_empty() && plain.gids.is_empty());
        assert_eq!(plain.option(), "idmap");
        let own = IdmapMount::parse("/d", "uids=0-100-10#10-200-5;gids=0-300-10").unwrap();
        assert_eq!(own.uids.len(), 2);
        assert_eq!(own.uids[1].container, 10);
        assert_eq!(own.uids[1].host, 200);
        assert_eq!(own.gids[0].host, 300);
        assert_eq!(own.option(), "idmap=uids=0-100-10#10-200-5;gids=0-300-10");
        // A map not given is the other's.
        let uids_only = IdmapMount::parse("/d", "uids=0-100-10").unwrap();
        assert_eq!(uids_only.gids, uids_only.uids);
        for bad in [
            "uids=0-1",
            "uids=a-1-1",
            "uids=0-1-0",
            "users=0-1-1",
            "uids=@0-1-1",
        ] {
            assert!(IdmapMount::parse("/d", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ulimits_parse_as_podman() {
        let u = Ulimit::parse("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        let u = Ulimit::parse("RLIMIT_NPROC=-1").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nproc", None, None));
        let u = Ulimit::parse("core=0").unwrap();
        assert_eq!((u.soft, u.hard), (Some(0), Some(0)));
        for bad in [
            "nofile",
            "bogus=1",
            "nofile=x",
            "nofile=10:5",
            "nofile=-1:5",
        ] {
            assert!(Ulimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_namespaced_sysctls() {
        assert!(check_sysctl("net.ipv4.ip_forward", false, false).is_ok());
        assert!(check_sysctl("kernel.shmmax", false, false).is_ok());
        assert!(check_sysctl("kernel.sem", false, false).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", false, false).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", true, false).is_err());
        assert!(check_sysctl("kernel.pid_max", false, false).is_err());
        assert!(check_sysctl("vm.swappiness", false, false).is_err());
        assert!(check_sysctl("net/../../x", false, false).is_err());
    }
}
