//! `box info`: what a user needs to know before the first run, each fact with its fix.
use anyhow::Result;
use serde::Serialize;

use crate::cli::Ctx;
use crate::cli::args::InfoArgs;
use crate::userns::{self, IdMaps, Mode};

#[derive(Debug, Serialize)]
struct Info {
    version: &'static str,
    user: User,
    idmap: IdMapInfo,
    kernel: String,
    storage: Storage,
    cgroup: Cgroup,
    network: Network,
    paths: Paths,
}

#[derive(Debug, Serialize)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    rootless: bool,
}

#[derive(Debug, Serialize)]
struct IdMapInfo {
    subuid: Vec<userns::SubidRange>,
    subgid: Vec<userns::SubidRange>,
    newuidmap: Tool,
    newgidmap: Tool,
    /// The uid map `box run` will use, or why there is none.
    uid_map: Option<Vec<String>>,
    problem: Option<String>,
    /// Other users' ranges that overlap ours ("bob 165536-231071 in /etc/subuid"): they
    /// could reach our containers' files.
    overlaps: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Tool {
    path: Option<String>,
    privilege: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Storage {
    driver: Option<String>,
    overlay_in_userns: Option<bool>,
    overlay_error: Option<String>,
    fuse_overlayfs: Option<String>,
    problem: Option<String>,
}

#[derive(Debug, Serialize)]
struct Cgroup {
    #[serde(flatten)]
    summary: crate::cgroup::Summary,
    delegated: Vec<String>,
    note: String,
}

#[derive(Debug, Serialize)]
struct Network {
    pasta: Option<String>,
    slirp4netns: Option<String>,
    default: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Paths {
    data: String,
    runtime: String,
    config: String,
}

fn tool(name: &str) -> Tool {
    let path = userns::tool_path(name);
    Tool {
        privilege: path.as_deref().and_then(userns::tool_privilege),
        path: path.map(|p| p.display().to_string()),
    }
}

fn path_str(p: Option<std::path::PathBuf>) -> Option<String> {
    p.map(|p| p.display().to_string())
}

fn gather(ctx: &Ctx) -> Info {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let name = userns::user_name(uid);
    let read = |f: &str| std::fs::read_to_string(f).unwrap_or_default();
    let subuid = userns::parse_subid_file(&read("/etc/subuid"), &name, uid.as_raw());
    let subgid = userns::parse_subid_file(&read("/etc/subgid"), &name, uid.as_raw());
    let overlaps: Vec<String> = ["/etc/subuid", "/etc/subgid"]
        .iter()
        .flat_map(|file| {
            userns::overlaps(&read(file), &name, uid.as_raw())
                .into_iter()
                .map(move |(other, r)| {
                    format!(
                        "{other} {}-{} in {file}",
                        r.start,
                        r.start as u64 + r.count as u64 - 1
                    )
                })
        })
        .collect();
    let maps = IdMaps::for_current_user(Mode::Auto);
    let (uid_map, problem) = match &maps {
        Ok(m) => (Some(m.uid.iter().map(|m| m.to_string()).collect()), None),
        Err(e) => (None, Some(e.to_string())),
    };

    // Without subordinate ids the driver can still be probed with a single-id map.
    let probe_maps = maps
        .as_ref()
        .ok()
        .cloned()
        .or_else(|| IdMaps::for_current_user(Mode::Single).ok());
    let storage = match (&probe_maps, ctx.paths.ensure()) {
        (Some(m), Ok(())) => match crate::driver::probe(&ctx.paths.runtime, m) {
            Ok(p) => Storage {
                driver: p
                    .choose(ctx.global.storage_driver.map(Into::into))
                    .map(|d| driver_name(d).to_string())
                    .ok(),
                problem: p
                    .choose(ctx.global.storage_driver.map(Into::into))
                    .err()
                    .map(|e| e.to_string()),
                overlay_in_userns: Some(p.overlay),
                overlay_error: p.overlay_error,
                fuse_overlayfs: path_str(p.fuse_overlayfs),
            },
            Err(e) => Storage::unknown(e.to_string()),
        },
        (None, _) => Storage::unknown("needs a user namespace mapping (see idmap)".into()),
        (_, Err(e)) => Storage::unknown(e.to_string()),
    };

    let summary = crate::cgroup::detect();
    let delegated = summary.delegated();
    let note = if summary.v2_mount.is_none() {
        "cgroup v1 only: box runs without resource limits; limits are refused".to_string()
    } else if delegated.is_empty() {
        "no cgroup v2 controllers delegated to you: runs work, resource limits are refused; \
         on systemd hosts add /etc/systemd/system/user@.service.d/delegate.conf with \
         [Service] Delegate=cpu cpuset io memory pids"
            .to_string()
    } else {
        format!("limits available for: {}", delegated.join(" "))
    };

    let pasta = userns::tool_path("pasta");
    let slirp = userns::tool_path("slirp4netns");
    let default = if pasta.is_some() {
        Some("pasta")
    } else if slirp.is_some() {
        Some("slirp4netns")
    } else {
        None
    };
    Info {
        version: env!("CARGO_PKG_VERSION"),
        user: User {
            name,
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            rootless: !uid.is_root(),
        },
        idmap: IdMapInfo {
            subuid,
            subgid,
            newuidmap: tool("newuidmap"),
            newgidmap: tool("newgidmap"),
            uid_map,
            problem,
            overlaps,
        },
        kernel: crate::driver::kernel_release(),
        storage,
        cgroup: Cgroup {
            summary,
            delegated,
            note,
        },
        network: Network {
            pasta: path_str(pasta),
            slirp4netns: path_str(slirp),
            default,
        },
        paths: Paths {
            data: ctx.paths.data.display().to_string(),
            runtime: ctx.paths.runtime.display().to_string(),
            config: ctx.paths.config.display().to_string(),
        },
    }
}

impl Storage {
    fn unknown(problem: String) -> Storage {
        Storage {
            driver: None,
            overlay_in_userns: None,
            overlay_error: None,
            fuse_overlayfs: None,
            problem: Some(problem),
        }
    }
}

fn driver_name(d: crate::spec::Driver) -> &'static str {
    use crate::spec::Driver::*;
    match d {
        Overlay => "overlay (native, in user namespace)",
        FuseOverlayfs => "fuse-overlayfs",
        Vfs => "vfs (copy)",
    }
}

/// podman's `Store.GraphDriverName` for a driver `driver_name` describes.
fn graph_driver(described: &str) -> String {
    match described.split_whitespace().next().unwrap_or("") {
        "fuse-overlayfs" => "overlay".into(),
        first => first.to_string(),
    }
}

fn ranges(r: &[userns::SubidRange]) -> String {
    if r.is_empty() {
        return "none".into();
    }
    r.iter()
        .map(|r| {
            format!(
                "{}-{} ({} ids)",
                r.start,
                r.start as u64 + r.count as u64 - 1,
                r.count
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn tool_line(t: &Tool) -> String {
    match (&t.path, t.privilege) {
        (Some(p), Some(how)) => format!("{p} ({how})"),
        (Some(p), None) => format!("{p} (NOT setuid and no file capabilities: reinstall uidmap)"),
        (None, _) => "not found: apt install uidmap".into(),
    }
}

fn or_none(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("not found")
}

fn render(i: &Info) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("version", i.version.to_string()),
        (
            "user",
            format!(
                "{} (uid {}, gid {}){}",
                i.user.name,
                i.user.uid,
                i.user.gid,
                if i.user.rootless {
                    ", rootless"
                } else {
                    ", root"
                }
            ),
        ),
        ("subuid", ranges(&i.idmap.subuid)),
        ("subgid", ranges(&i.idmap.subgid)),
    ];
    if !i.idmap.overlaps.is_empty() {
        rows.push((
            "subid overlap",
            format!(
                "WARNING: your range overlaps {}: those users can reach your containers' files; give each user its own range (usermod --del-subuids/--add-subuids)",
                i.idmap.overlaps.join(", ")
            ),
        ));
    }
    rows.extend([
        ("newuidmap", tool_line(&i.idmap.newuidmap)),
        ("newgidmap", tool_line(&i.idmap.newgidmap)),
    ]);
    match (&i.idmap.uid_map, &i.idmap.problem) {
        (Some(m), _) => rows.push(("uid map", m.join(", "))),
        (None, Some(p)) => rows.push(("uid map", format!("PROBLEM: {p}"))),
        _ => {}
    }
    rows.push(("kernel", i.kernel.clone()));
    match (&i.storage.driver, &i.storage.problem) {
        (Some(d), _) => rows.push(("storage driver", d.clone())),
        (None, Some(p)) => rows.push(("storage driver", format!("PROBLEM: {p}"))),
        _ => {}
    }
    if let Some(e) = &i.storage.overlay_error {
        rows.push(("overlay in userns", format!("no: {e}")));
    }
    let c = &i.cgroup;
    rows.push((
        "cgroup",
        format!(
            "{} (v2 at {})",
            match c.summary.hierarchy {
                crate::cgroup::Hierarchy::Unified => "v2 (unified)",
                crate::cgroup::Hierarchy::Hybrid => "v1/v2 hybrid",
                crate::cgroup::Hierarchy::Legacy => "v1 only",
            },
            c.summary
                .v2_mount
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "none".into())
        ),
    ));
    rows.push((
        "cgroup (own)",
        c.summary.own.clone().unwrap_or_else(|| "-".into()),
    ));
    rows.push((
        "cgroup delegated",
        if c.delegated.is_empty() {
            "none".into()
        } else {
            c.delegated.join(" ")
        },
    ));
    rows.push(("cgroup note", c.note.clone()));
    rows.push(("pasta", or_none(&i.network.pasta).to_string()));
    rows.push(("slirp4netns", or_none(&i.network.slirp4netns).to_string()));
    rows.push((
        "network default",
        i.network
            .default
            .unwrap_or("none found: apt install passt (or slirp4netns)")
            .to_string(),
    ));
    rows.push(("data dir", i.paths.data.clone()));
    rows.push(("runtime dir", i.paths.runtime.clone()));
    rows.push(("config dir", i.paths.config.clone()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

pub fn info(ctx: &Ctx, args: InfoArgs) -> Result<u8> {
    let info = gather(ctx);
    match crate::template::Format::from_arg(args.format.as_deref()) {
        crate::template::Format::Json => println!("{}", serde_json::to_string_pretty(&info)?),
        crate::template::Format::Table => print!("{}", render(&info)),
        crate::template::Format::Template { source, .. } => {
            let data = podman_info(ctx, &info);
            let out = crate::template::render(&source, &data)
                .map_err(|e| anyhow::anyhow!("--format {source:?}: {e}"))?;
            println!("{out}");
        }
    }
    Ok(0)
}

/// podman's `info` structure (Go field names, for `--format '{{.Host.Arch}}'`), filled
/// from what box knows.
fn podman_info(ctx: &Ctx, i: &Info) -> serde_json::Value {
    use serde_json::json;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = |k: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let maps = |m: &[userns::SubidRange], own: u32| {
        let mut v = vec![json!({"ContainerID": 0, "HostID": own, "Size": 1})];
        let mut next = 1u64;
        for r in m {
            v.push(json!({"ContainerID": next, "HostID": r.start, "Size": r.count}));
            next += r.count as u64;
        }
        v
    };
    let (containers, running, paused) = crate::container::Containers::open(&ctx.paths)
        .and_then(|c| c.list())
        .map(|list| {
            let mut running = 0;
            for r in &list {
                if crate::monitor::status::observe(r).status == crate::container::Status::Running {
                    running += 1;
                }
            }
            (list.len(), running, 0)
        })
        .unwrap_or((0, 0, 0));
    let images = crate::storage::Store::open(&ctx.paths)
        .and_then(|s| s.images())
        .map(|v| v.len())
        .unwrap_or(0);
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    json!({
        "Host": {
            "Arch": arch,
            "OS": "linux",
            "Kernel": i.kernel,
            "Hostname": hostname,
            "CPUs": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem("MemTotal:"),
            "MemFree": mem("MemAvailable:"),
            "SwapTotal": mem("SwapTotal:"),
            "SwapFree": mem("SwapFree:"),
            "CgroupVersion": if i.cgroup.summary.v2_mount.is_some() { "v2" } else { "v1" },
            "CgroupManager": crate::cgroup::manager().effective_name(),
            "CgroupControllers": i.cgroup.delegated,
            "Distribution": {"Distribution": field("ID"), "Version": field("VERSION_ID"), "Codename": field("VERSION_CODENAME")},
            "EventLogger": if crate::events::disabled() { "none" } else { "file" },
            "LogDriver": "k8s-file",
            "NetworkBackend": i.network.default.unwrap_or(""),
            "Pasta": {"Executable": i.network.pasta.clone().unwrap_or_default()},
            "Slirp4NetNS": {"Executable": i.network.slirp4netns.clone().unwrap_or_default()},
            "Security": {"Rootless": i.user.rootless, "SECCOMPEnabled": true, "SELinuxEnabled": false, "AppArmorEnabled": false},
            "IDMappings": {"UIDMap": maps(&i.idmap.subuid, i.user.uid), "GIDMap": maps(&i.idmap.subgid, i.user.gid)},
            "Uptime": crate::units::human_duration(std::time::Duration::from_secs(uptime)),
            "RemoteSocket": {"Exists": false, "Path": ""},
        },
        "Store": {
            // podman's names: fuse-overlayfs is its overlay driver with a mount program.
            "GraphDriverName": i.storage.driver.as_deref().map(graph_driver).unwrap_or_default(),
            "GraphOptions": if i.storage.driver.as_deref() == Some(driver_name(crate::spec::Driver::FuseOverlayfs)) {
                json!({"overlay.mount_program": {"Executable": i.storage.fuse_overlayfs.clone().unwrap_or_default()}})
            } else {
                json!({})
            },
            "GraphRoot": ctx.paths.data.join("storage").display().to_string(),
            "RunRoot": i.paths.runtime,
            "VolumePath": ctx.paths.volumes().display().to_string(),
            "ConfigFile": ctx.paths.config.display().to_string(),
            "ImageStore": {"number": images},
            "ContainerStore": {"number": containers, "running": running, "paused": paused, "stopped": containers - running - paused},
        },
        "Version": {
            "Version": i.version,
            "APIVersion": i.version,
            "Os": "linux",
            "OsArch": format!("linux/{arch}"),
            "GoVersion": env!("BOX_RUSTC_VERSION"),
        },
        "Registries": {},
    })
}
