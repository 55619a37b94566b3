//! User namespaces: the user's subordinate id ranges, newuidmap/newgidmap, and entering a
//! fresh user namespace from a re-executed `box __internal ...` helper.
//!
//! Mapping (`Mode::Auto`, the one layers are unpacked with and `box run` uses):
//! container 0 → the user's own id, container 1.. → the /etc/subuid (/etc/subgid) ranges in
//! file order. As root the map is the identity over the whole id space.
mod helper;
mod subid;

use std::fmt;
use std::path::PathBuf;
use std::process::Command;

use nix::unistd::{Gid, Pid, Uid};

pub use helper::{Helper, helper_command, helper_enter, spawn_helper};
pub use subid::{SubidRange, overlaps, parse_subid_file, suggest_line};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no subordinate {kind}s for {user} in {file}: as root add the line '{line}' to {file} (e.g. `usermod --add-sub{kind}s {first}-{last} {user}`), or run with --userns=single"
    )]
    NoSubids {
        kind: &'static str,
        user: String,
        file: &'static str,
        line: String,
        first: u64,
        last: u64,
    },
    #[error("cannot read {file}: {source}")]
    ReadSubids {
        file: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{tool} not found: install the uidmap package (apt install uidmap) to use subordinate ids"
    )]
    ToolMissing { tool: &'static str },
    #[error("{tool} {pid} failed ({status}): {stderr}")]
    ToolFailed {
        tool: &'static str,
        pid: i32,
        status: String,
        stderr: String,
    },
    #[error("cannot run {tool}: {source}")]
    ToolSpawn {
        tool: &'static str,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteMap {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--userns=keep-id needs at least {need} subordinate ids, found {have}: add a larger range to /etc/subuid and /etc/subgid"
    )]
    KeepIdTooSmall { need: u64, have: u64 },
    #[error("{0}")]
    BadIdMap(String),
    #[error("user namespace helper: {0}")]
    Helper(String),
    #[error(
        "{what} {id} is not mapped in the container's user namespace (its {kind}s are {mapped}): use one of those"
    )]
    Unmapped {
        what: &'static str,
        kind: &'static str,
        id: u32,
        mapped: String,
    },
    #[error("cannot read the id maps of process {pid}: {detail}")]
    ReadMaps { pid: i32, detail: String },
    #[error(
        "cannot create a user namespace: {0} (is kernel.unprivileged_userns_clone or user.max_user_namespaces 0?)"
    )]
    Unshare(nix::Error),
}

/// `--userns` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// 0 → you, 1.. → your subordinate ranges.
    #[default]
    Auto,
    /// Your own id maps to itself inside; the rest from your subordinate ranges.
    KeepId,
    /// Only your own id, as 0 inside. No subordinate ids needed.
    Single,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "auto" | "" => Some(Mode::Auto),
            "keep-id" => Some(Mode::KeepId),
            "single" => Some(Mode::Single),
            _ => None,
        }
    }

    /// The `--userns` value that selects this mode.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::KeepId => "keep-id",
            Mode::Single => "single",
        }
    }
}

/// `--uidmap CONTAINER:HOST:SIZE` (podman also takes several, `/`- or `,`-separated).
pub fn parse_idmaps(s: &str) -> Result<Vec<IdMap>, Error> {
    let mut out = Vec::new();
    for part in s.split(['/', ',']).filter(|p| !p.is_empty()) {
        let nums: Vec<Option<u32>> = part.split(':').map(|x| x.parse().ok()).collect();
        match nums.as_slice() {
            [Some(c), Some(h), Some(n)] if *n > 0 => out.push(IdMap {
                container: *c,
                host: *h,
                size: *n,
            }),
            _ => {
                return Err(Error::BadIdMap(format!(
                    "{part:?}: use CONTAINER:INTERMEDIATE:SIZE, e.g. 0:1:65536"
                )));
            }
        }
    }
    Ok(out)
}

/// One line of a uid_map/gid_map: `size` ids starting at `container` map to `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMaps {
    pub uid: Vec<IdMap>,
    pub gid: Vec<IdMap>,
    /// Whether the process creating the maps is root (maps are written directly).
    pub root: bool,
}

impl IdMaps {
    /// The maps for the calling user in `mode`, from /etc/subuid and /etc/subgid.
    pub fn for_current_user(mode: Mode) -> Result<IdMaps, Error> {
        let uid = Uid::current();
        let gid = Gid::current();
        if uid.is_root() {
            let all = vec![IdMap {
                container: 0,
                host: 0,
                size: u32::MAX,
            }];
            return Ok(IdMaps {
                uid: all.clone(),
                gid: all,
                root: true,
            });
        }
        let user = user_name(uid);
        if mode == Mode::Single {
            return Ok(IdMaps {
                uid: vec![single(uid.as_raw())],
                gid: vec![single(gid.as_raw())],
                root: false,
            });
        }
        let subuids = subid::ranges_for("/etc/subuid", &user, uid.as_raw())?;
        let subgids = subid::ranges_for("/etc/subgid", &user, uid.as_raw())?;
        let missing = |kind: &'static str, file: &'static str| {
            let (first, last) = subid::suggest_range(file);
            Error::NoSubids {
                kind,
                user: user.clone(),
                file,
                line: suggest_line(&user, first),
                first,
                last,
            }
        };
        if subuids.is_empty() {
            return Err(missing("uid", "/etc/subuid"));
        }
        if subgids.is_empty() {
            return Err(missing("gid", "/etc/subgid"));
        }
        let (uid_maps, gid_maps) = match mode {
            Mode::KeepId => (
                keep_id(uid.as_raw(), &subuids)?,
                keep_id(gid.as_raw(), &subgids)?,
            ),
            _ => (auto(uid.as_raw(), &subuids), auto(gid.as_raw(), &subgids)),
        };
        Ok(IdMaps {
            uid: uid_maps,
            gid: gid_maps,
            root: false,
        })
    }

    /// `--uidmap`/`--gidmap` as rootless podman reads them: `CONTAINER:INTERMEDIATE:SIZE`,
    /// the intermediate ids being those of box's own user namespace (0 you, 1.. your
    /// subordinate ids); each range must lie within them. A map not given is the other.
    pub fn custom(uid: &[IdMap], gid: &[IdMap]) -> Result<IdMaps, Error> {
        let auto = IdMaps::for_current_user(Mode::Auto)?;
        if auto.root {
            // Root's intermediate ids are the host's.
            return Ok(IdMaps {
                uid: uid.to_vec(),
                gid: if gid.is_empty() { uid } else { gid }.to_vec(),
                root: true,
            });
        }
        let through = |given: &[IdMap], base: &[IdMap], what: &str| -> Result<Vec<IdMap>, Error> {
            let mut out = Vec::new();
            for m in given {
                let (mut c, mut h, mut left) = (m.container as u64, m.host as u64, m.size as u64);
                while left > 0 {
                    let seg = base.iter().find(|b| {
                        h >= b.container as u64 && h < b.container as u64 + b.size as u64
                    });
                    let Some(seg) = seg else {
                        return Err(Error::BadIdMap(format!(
                            "--{what} {}:{}:{}: intermediate id {h} is not yours (0 is you, 1 to {} your subordinate ids)",
                            m.container,
                            m.host,
                            m.size,
                            base.iter().map(|b| b.size as u64).sum::<u64>() - 1
                        )));
                    };
                    let off = h - seg.container as u64;
                    let n = left.min(seg.size as u64 - off);
                    out.push(IdMap {
                        container: c as u32,
                        host: (seg.host as u64 + off) as u32,
                        size: n as u32,
                    });
                    c += n;
                    h += n;
                    left -= n;
                }
            }
            Ok(out)
        };
        let gid = if gid.is_empty() { uid } else { gid };
        // The user must be mapped (box's run and store directories are theirs, 0700): when
        // the maps leave intermediate 0 out, it goes right after the highest container id.
        let with_user = |mut maps: Vec<IdMap>, own: u32| {
            if !maps
                .iter()
                .any(|m| own >= m.host && (own as u64) < m.host as u64 + m.size as u64)
            {
                let next = maps
                    .iter()
                    .map(|m| m.container as u64 + m.size as u64)
                    .max()
                    .unwrap_or(0);
                maps.push(IdMap {
                    container: next.min(u32::MAX as u64 - 1) as u32,
                    host: own,
                    size: 1,
                });
            }
            maps
        };
        Ok(IdMaps {
            uid: with_user(through(uid, &auto.uid, "uidmap")?, Uid::current().as_raw()),
            gid: with_user(through(gid, &auto.gid, "gidmap")?, Gid::current().as_raw()),
            root: false,
        })
    }

    /// Write these maps for the process `pid`, which must have just created its user
    /// namespace. Root writes /proc/PID/{uid,gid}_map itself; users go through the setuid
    /// newuidmap/newgidmap, except for a single-id map which needs no helper.
    pub fn write_for(&self, pid: Pid) -> Result<(), Error> {
        if self.root || self.is_single_self() {
            if !self.root {
                write_proc(pid, "setgroups", "deny")?;
            }
            write_proc(pid, "uid_map", &self.proc_format(&self.uid))?;
            write_proc(pid, "gid_map", &self.proc_format(&self.gid))?;
            return Ok(());
        }
        // Both at once: each is a setuid program that takes milliseconds to load, and
        // this sits on every `box run`'s critical path.
        let uid = spawn_tool("newuidmap", pid, &self.uid)?;
        let gid = spawn_tool("newgidmap", pid, &self.gid);
        let u = finish_tool("newuidmap", pid, uid);
        let g = gid.and_then(|child| finish_tool("newgidmap", pid, child));
        u.and(g)
    }

    /// How many container ids are mapped (65537 for a standard subuid range).
    pub fn uid_count(&self) -> u64 {
        self.uid.iter().map(|m| m.size as u64).sum()
    }

    /// The host uid a container uid maps to, if mapped.
    pub fn host_uid(&self, container: u32) -> Option<u32> {
        translate(&self.uid, container, |m| (m.container, m.host))
    }
    /// The host gid a container gid maps to, if mapped.
    pub fn host_gid(&self, container: u32) -> Option<u32> {
        translate(&self.gid, container, |m| (m.container, m.host))
    }
    /// The container uid a host uid appears as, if mapped.
    pub fn container_uid(&self, host: u32) -> Option<u32> {
        translate(&self.uid, host, |m| (m.host, m.container))
    }
    /// The container gid a host gid appears as, if mapped.
    pub fn container_gid(&self, host: u32) -> Option<u32> {
        translate(&self.gid, host, |m| (m.host, m.container))
    }

    /// The maps of the user namespace of process `pid` (e.g. a running container's PID 1),
    /// from its /proc/PID/uid_map and gid_map as this process sees them.
    pub fn of_process(pid: i32) -> Result<IdMaps, Error> {
        let read = |file: &str| -> Result<Vec<IdMap>, Error> {
            let bad = |detail: String| Error::ReadMaps { pid, detail };
            let text = std::fs::read_to_string(format!("/proc/{pid}/{file}"))
                .map_err(|e| bad(format!("{file}: {e}")))?;
            text.lines()
                .map(|l| {
                    let f: Vec<u32> = l
                        .split_whitespace()
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .map_err(|_| bad(format!("{file}: bad line {l:?}")))?;
                    match f[..] {
                        [container, host, size] => Ok(IdMap {
                            container,
                            host,
                            size,
                        }),
                        _ => Err(bad(format!("{file}: bad line {l:?}"))),
                    }
                })
                .collect()
        };
        Ok(IdMaps {
            uid: read("uid_map")?,
            gid: read("gid_map")?,
            root: Uid::current().is_root(),
        })
    }

    /// Refuse an identity these maps cannot give a process: an unmapped uid or gid makes
    /// setresuid/setresgid fail, or, for 4294967295 (`(uid_t)-1`, never mappable), leaves
    /// the process's ids "unchanged": root. Supplementary groups are checked only where
    /// they can be set.
    pub fn check_identity(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<(), Error> {
        let unmapped =
            |what: &'static str, kind: &'static str, id: u32, maps: &[IdMap]| Error::Unmapped {
                what,
                kind,
                id,
                mapped: show_ranges(maps),
            };
        if self.host_uid(uid).is_none() {
            return Err(unmapped("uid", "uid", uid, &self.uid));
        }
        if self.host_gid(gid).is_none() {
            return Err(unmapped("gid", "gid", gid, &self.gid));
        }
        if self.setgroups_allowed()
            && let Some(&g) = groups.iter().find(|g| self.host_gid(**g).is_none())
        {
            return Err(unmapped("the supplementary group gid", "gid", g, &self.gid));
        }
        Ok(())
    }

    /// Whether processes in the namespace may call setgroups (a user's single-id map
    /// denies it, as the kernel requires).
    pub fn setgroups_allowed(&self) -> bool {
        self.root || !self.is_single_self()
    }

    fn is_single_self(&self) -> bool {
        self.uid.len() == 1
            && self.gid.len() == 1
            && self.uid[0].size == 1
            && self.gid[0].size == 1
            && self.uid[0].host == Uid::current().as_raw()
            && self.gid[0].host == Gid::current().as_raw()
    }

    fn proc_format(&self, maps: &[IdMap]) -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
            .collect()
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.container, self.host, self.size)
    }
}

/// The container ids of `maps` as "0-65536" (adjacent ranges merged, comma-separated).
fn show_ranges(maps: &[IdMap]) -> String {
    let mut r: Vec<(u64, u64)> = maps
        .iter()
        .filter(|m| m.size > 0)
        .map(|m| (m.container as u64, m.container as u64 + m.size as u64 - 1))
        .collect();
    r.sort();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in r {
        match merged.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    if merged.is_empty() {
        return "none".into();
    }
    merged
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn single(id: u32) -> IdMap {
    IdMap {
        container: 0,
        host: id,
        size: 1,
    }
}

/// 0 → own id, then the subordinate ranges back to back from container id 1.
fn auto(own: u32, ranges: &[SubidRange]) -> Vec<IdMap> {
    let mut maps = vec![single(own)];
    let mut next = 1u32;
    for r in ranges {
        maps.push(IdMap {
            container: next,
            host: r.start,
            size: r.count,
        });
        next = next.saturating_add(r.count);
    }
    maps
}

/// Own id → itself; container ids below and above it from the subordinate ranges.
fn keep_id(own: u32, ranges: &[SubidRange]) -> Result<Vec<IdMap>, Error> {
    let have: u64 = ranges.iter().map(|r| r.count as u64).sum();
    let need = own as u64 + 1;
    if have < need {
        return Err(Error::KeepIdTooSmall { need, have });
    }
    // Lay the subordinate ids over container ids 0.., skipping `own`.
    let mut maps = Vec::new();
    let mut container = 0u32;
    for r in ranges {
        let (mut host, mut left) = (r.start, r.count);
        while left > 0 {
            if container == own {
                container += 1;
                continue;
            }
            let size = if container < own {
                left.min(own - container)
            } else {
                left
            };
            maps.push(IdMap {
                container,
                host,
                size,
            });
            container = container.saturating_add(size);
            host = host.saturating_add(size);
            left -= size;
        }
    }
    maps.push(IdMap {
        container: own,
        host: own,
        size: 1,
    });
    maps.sort_by_key(|m| m.container);
    Ok(maps)
}

fn translate(maps: &[IdMap], id: u32, pick: impl Fn(&IdMap) -> (u32, u32)) -> Option<u32> {
    maps.iter().find_map(|m| {
        let (from, to) = pick(m);
        (id >= from && (id - from) < m.size).then(|| to + (id - from))
    })
}

fn write_proc(pid: Pid, file: &str, contents: &str) -> Result<(), Error> {
    let path = PathBuf::from(format!("/proc/{pid}/{file}"));
    std::fs::write(&path, contents).map_err(|source| Error::WriteMap { path, source })
}

fn spawn_tool(tool: &'static str, pid: Pid, maps: &[IdMap]) -> Result<std::process::Child, Error> {
    use std::process::Stdio;
    let path = tool_path(tool).ok_or(Error::ToolMissing { tool })?;
    let mut cmd = Command::new(path);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container.to_string(),
            m.host.to_string(),
            m.size.to_string(),
        ]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::ToolSpawn { tool, source })
}

fn finish_tool(tool: &'static str, pid: Pid, child: std::process::Child) -> Result<(), Error> {
    let out = child
        .wait_with_output()
        .map_err(|source| Error::ToolSpawn { tool, source })?;
    if !out.status.success() {
        return Err(Error::ToolFailed {
            tool,
            pid: pid.as_raw(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', "; "),
        });
    }
    Ok(())
}

/// Where newuidmap/newgidmap live, looked up in the usual places and $PATH.
pub fn tool_path(tool: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(tool)).find(|p| p.is_file())
}

/// How a newuidmap-style tool gets its privilege: "setuid root", "file capabilities", or None.
pub fn tool_privilege(path: &std::path::Path) -> Option<&'static str> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(path).ok()?;
    if md.mode() & 0o4000 != 0 && md.uid() == 0 {
        return Some("setuid root");
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: c and the name are valid NUL-terminated strings; a NULL buffer of size 0 asks
    // only for the attribute's length.
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    (n > 0).then_some("file capabilities")
}

/// The login name of `uid` from /etc/passwd, or the number.
pub fn user_name(uid: Uid) -> String {
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u32, count: u32) -> SubidRange {
        SubidRange { start, count }
    }

    #[test]
    fn custom_maps_go_through_the_users_own() {
        assert_eq!(
            parse_idmaps("0:1:10/10:0:1").unwrap(),
            vec![
                IdMap {
                    container: 0,
                    host: 1,
                    size: 10
                },
                IdMap {
                    container: 10,
                    host: 0,
                    size: 1
                }
            ]
        );
        assert!(parse_idmaps("0:1").is_err());
        assert!(parse_idmaps("0:1:0").is_err());
    }

    #[test]
    fn auto_maps_self_then_ranges() {
        let m = auto(1000, &[r(100000, 65536)]);
        assert_eq!(
            m,
            vec![
                IdMap {
                    container: 0,
                    host: 1000,
                    size: 1
                },
                IdMap {
                    container: 1,
                    host: 100000,
                    size: 65536
                }
            ]
        );
        let maps = IdMaps {
            uid: m.clone(),
            gid: m,
            root: false,
        };
        assert_eq!(maps.host_uid(0), Some(1000));
        assert_eq!(maps.host_uid(1000), Some(100999));
        assert_eq!(maps.container_uid(100999), Some(1000));
        assert_eq!(maps.host_uid(70000), None);
        assert_eq!(maps.uid_count(), 65537);
    }

    #[test]
    fn auto_concatenates_several_ranges() {
        let m = auto(1000, &[r(100000, 10), r(200000, 20)]);
        assert_eq!(
            m[2],
            IdMap {
                container: 11,
                host: 200000,
                size: 20
            }
        );
    }

    #[test]
    fn keep_id_maps_own_id_to_itself() {
        let m = keep_id(1000, &[r(100000, 65536)]).unwrap();
        let maps = IdMaps {
            uid: m.clone(),
            gid: m.clone(),
            root: false,
        };
        assert_eq!(maps.host_uid(1000), Some(1000));
        assert_eq!(maps.host_uid(0), Some(100000));
        assert_eq!(maps.host_uid(999), Some(100999));
        assert_eq!(maps.host_uid(1001), Some(101000));
        assert_eq!(m.iter().map(|x| x.size as u64).sum::<u64>(), 65537);
        assert!(keep_id(70000, &[r(100000, 65536)]).is_err());
    }

    #[test]
    fn identities_outside_the_maps_are_refused() {
        let m = auto(1000, &[r(100000, 65536)]);
        let maps = IdMaps {
            uid: m.clone(),
            gid: m,
            root: false,
        };
        assert!(maps.check_identity(0, 0, &[0, 10]).is_ok());
        assert!(maps.check_identity(65536, 65536, &[65536]).is_ok());
        let e = maps
            .check_identity(u32::MAX, 0, &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "uid 4294967295 is not mapped in the container's user namespace (its uids are 0-65536): use one of those"
        );
        let e = maps
            .check_identity(0, u32::MAX, &[])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("gid 4294967295 is not mapped"), "{e}");
        let e = maps
            .check_identity(0, 0, &[10, 70000])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the supplementary group gid 70000 is not mapped"),
            "{e}"
        );
        // Root's identity map covers everything but (uid_t)-1.
        let all = vec![IdMap {
            container: 0,
            host: 0,
            size: u32::MAX,
        }];
        let root = IdMaps {
            uid: all.clone(),
            gid: all,
            root: true,
        };
        assert!(root.check_identity(u32::MAX - 1, u32::MAX - 1, &[]).is_ok());
        let e = root
            .check_identity(u32::MAX, 0, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("(its uids are 0-4294967294)"), "{e}");
        assert!(root.check_identity(0, 0, &[u32::MAX]).is_err());
        // Several ranges, shown merged where adjacent.
        let split = auto(1000, &[r(100000, 10), r(300000, 5)]);
        assert_eq!(show_ranges(&split), "0-15");
        assert_eq!(
            show_ranges(&[
                IdMap {
                    container: 0,
                    host: 1,
                    size: 1
                },
                IdMap {
                    container: 5,
                    host: 9,
                    size: 3
                }
            ]),
            "0,5-7"
        );
    }

    #[test]
    fn maps_of_a_process_are_read_from_proc() {
        let me = IdMaps::of_process(std::process::id() as i32).unwrap();
        assert!(!me.uid.is_empty() && !me.gid.is_empty());
        let uid = Uid::current().as_raw();
        assert!(me.container_uid(uid).is_some() || me.host_uid(uid).is_some());
        assert!(IdMaps::of_process(i32::MAX).is_err());
    }

    #[test]
    fn modes_parse() {
        assert_eq!(Mode::parse("keep-id"), Some(Mode::KeepId));
        assert_eq!(Mode::parse("bogus"), None);
    }
}
