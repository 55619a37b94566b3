//! `box ps` / `box container ls`: the records, their observed state, docker's columns.
//!
//! The truth about a container is its record plus a liveness check of its pid
//! (`monitor::status::observe`).
use std::io::Write;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::containers;
use super::table::{self, align_tabs, columns};
use crate::cli::Ctx;
use crate::cli::args::PsArgs;
use crate::container::{Containers, Record, State, Status};
use crate::monitor::status;
use crate::monitor::stop::{is_paused, is_stopping};
use crate::template::{self, Format};
use crate::units;

/// Pod id → name, for the POD columns and `--filter pod=`.
pub type PodNames = std::collections::BTreeMap<String, String>;

/// Every pod's name by id (none when the pods cannot be read).
pub fn pod_names(c: &Containers) -> PodNames {
    crate::pod::Pods::beside(c)
        .list()
        .map(|pods| pods.into_iter().map(|p| (p.id, p.name)).collect())
        .unwrap_or_default()
}

/// One container as `ps` templates and `--format json` see it.
fn ps_object(rec: &Record, st: &State, now: SystemTime, no_trunc: bool, pods: &PodNames) -> Value {
    let cfg = &rec.config;
    let pod_id = cfg.spec.pod.as_ref().map(|p| p.id.as_str()).unwrap_or("");
    let pod_name = pods.get(pod_id).map(String::as_str).unwrap_or("");
    let created = units::parse_rfc3339(&cfg.created);
    let command = cfg.command.join(" ");
    // As podman shows it: no quotes, cut at 17 characters and "...".
    let shown_command = if no_trunc {
        command.clone()
    } else {
        super::table::truncate(&command, 17)
    };
    let paused = is_paused(rec, st);
    let stopping = is_stopping(rec, st);
    let state = if stopping {
        "stopping".to_string()
    } else if paused {
        "paused".to_string()
    } else {
        st.status.to_string()
    };
    let ports = podman_ports(&cfg.spec.network.ports);
    let mounts: Vec<String> = cfg
        .spec
        .mounts
        .iter()
        .map(|m| match m {
            crate::run::Mount::Bind { target, .. } => target.clone(),
            crate::run::Mount::Tmpfs { target, .. } => target.clone(),
        })
        .collect();
    let labels = cfg
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "ID": if no_trunc { rec.id() } else { rec.short_id() },
        "Id": rec.id(),
        "Image": cfg.image_name,
        "ImageID": cfg.image_id,
        "Command": shown_command,
        "Cmd": cfg.command,
        "CreatedAt": cfg.created,
        "Created": created.map(units::unix_secs).unwrap_or(0),
        "RunningFor": created.map(|t| units::ago(t, now)).unwrap_or_default(),
        "Status": if stopping {
            "Stopping".to_string()
        } else {
            status::status_text(st, paused, now) + &health_suffix(rec, st)
        },
        "State": state,
        "ExitCode": st.exit_code.unwrap_or(0),
        "Exited": st.status == Status::Exited,
        "StartedAt": st.started_at.clone().unwrap_or_default(),
        "FinishedAt": st.finished_at.clone().unwrap_or_default(),
        "Names": rec.name(),
        "Pid": if st.status == Status::Running { st.pid.unwrap_or(0) } else { 0 },
        "Ports": ports,
        "Mounts": mounts.join(","),
        // A map, as podman's: {{.Labels.key}}, {{.Label "key"}}.
        "Labels": cfg.labels,
        "LabelText": labels,
        "LabelMap": cfg.labels,
        "Networks": [cfg.spec.network_arg()],
        "AutoRemove": cfg.autoremove,
        "Pod": if no_trunc { pod_id } else { crate::container::short_id(pod_id) },
        "PodName": pod_name,
        "IsInfra": cfg.spec.is_infra(),
    })
}

/// ` (healthy)` after a running container's status when it has a healthcheck.
fn health_suffix(rec: &Record, st: &State) -> String {
    match crate::monitor::health::read(rec) {
        Some(h) if st.status == Status::Running => format!(" ({})", h.status),
        _ => String::new(),
    }
}

fn matches_filter(rec: &Record, st: &State, obj: &Value, filter: &str) -> Result<bool> {
    let (key, value) = filter
        .split_once('=')
        .with_context(|| format!("invalid filter {filter:?}: use KEY=VALUE"))?;
    Ok(match key {
        "status" => {
            if !["created", "running", "exited", "paused", "stopping"].contains(&value) {
                bail!(
                    "invalid filter status={value}: use created, running, exited, paused or stopping"
                );
            }
            obj["State"] == value
        }
        "name" => rec.name().contains(value),
        "pod" => {
            let id = rec.config.spec.pod.as_ref().map(|p| p.id.as_str());
            id.is_some_and(|id| {
                (!value.is_empty() && id.starts_with(value)) || obj["PodName"] == value
            })
        }
        "id" => rec.id().starts_with(value),
        "ancestor" => {
            let cfg = &rec.config;
            cfg.image == value
                || cfg.image_name == value
                || cfg.image_name.strip_suffix(":latest") == Some(value)
                || cfg.image_name.rsplit('/').next() == Some(value)
                || cfg
                    .image_name
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.strip_suffix(":latest"))
                    == Some(value)
                || cfg
                    .image_id
                    .trim_start_matches("sha256:")
                    .starts_with(value.trim_start_matches("sha256:"))
        }
        "label" => match value.split_once('=') {
            Some((k, v)) => rec.config.labels.get(k).is_some_and(|x| x == v),
            None => rec.config.labels.contains_key(value),
        },
        "exited" => {
            st.status == Status::Exited
                && st.exit_code.map(|c| c.to_string()) == Some(value.to_string())
        }
        "health" => {
            if !["healthy", "unhealthy", "starting", "none"].contains(&value) {
                bail!("invalid filter health={value}: use healthy, unhealthy, starting or none");
            }
            match crate::monitor::health::read(rec) {
                None => value == "none",
                Some(h) => st.status == Status::Running && h.status == value,
            }
        }
        "network" => {
            let mode = rec.config.spec.network_arg();
            mode == value
                || (value == "container" && mode.starts_with("container:"))
                || rec.config.spec.networks.iter().any(|n| n == value)
        }
        other => bail!(
            "unknown filter {other:?}: use status, name, id, pod, ancestor, label, exited, network or health"
        ),
    })
}

/// The containers (all of them, whatever their state) that match every `ps --filter` in
/// `filters`: for `stop`, `start`, `restart --filter`.
pub fn filtered(c: &Containers, filters: &[String]) -> Result<Vec<Record>> {
    let now = SystemTime::now();
    let pods = pod_names(c);
    let mut out = Vec::new();
    for rec in c.list()? {
        let st = status::observe(&rec);
        let obj = ps_object(&rec, &st, now, true, &pods);
        let mut keep = true;
        for f in filters {
            keep &= matches_filter(&rec, &st, &obj, f)?;
        }
        if keep {
            out.push(rec);
        }
    }
    Ok(out)
}

pub fn ps(ctx: &Ctx, args: PsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let now = SystemTime::now();
    let pods = pod_names(&c);
    let mut rows: Vec<(Record, State, Value)> = Vec::new();
    let more = &args.more;
    let images = if more.size || more.sort.as_deref() == Some("size") {
        crate::storage::Store::open(&ctx.paths)
            .and_then(|s| s.images())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    for rec in c.list()? {
        // A build step's container is the builder's, not the user's (podman's --external).
        if !more.external && crate::builder::is_build_container(&rec) {
            continue;
        }
        let st = status::observe(&rec);
        let mut obj = ps_object(&rec, &st, now, args.no_trunc, &pods);
        if more.size || more.sort.as_deref() == Some("size") {
            add_size(&rec, &images, &mut obj);
        }
        if more.ns {
            add_namespaces(&st, &mut obj);
        }
        let mut keep =
            args.all || args.latest || more.last.is_some() || st.status == Status::Running;
        for f in &args.filter {
            if !matches_filter(&rec, &st, &obj, f)? {
                keep = false;
            }
        }
        if keep {
            rows.push((rec, st, obj));
        }
    }
    // Newest first, as docker lists them.
    rows.reverse();
    if let Some(key) = more.sort.as_deref() {
        sort_rows(&mut rows, key);
    }
    if args.latest {
        rows.truncate(1);
    }
    if let Some(n) = more.last {
        rows.truncate(n);
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for (_, _, obj) in &rows {
            writeln!(out, "{}", obj["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    match Format::from_arg(args.format.as_deref()) {
        Format::Json => {
            let all: Vec<&Value> = rows.iter().map(|(_, _, o)| o).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        }
        Format::Template { source, table } => {
            let t = template::Template::parse(&source)?;
            let mut lines = Vec::new();
            if table {
                lines.push(template::table_header(&source));
            }
            for (_, _, obj) in &rows {
                lines.push(t.render(obj)?);
            }
            if table {
                write!(out, "{}", align_tabs(&lines))?;
            } else {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
        }
        Format::Table if more.ns => {
            let mut table = vec![table::header(&[
                "CONTAINER ID",
                "NAMES",
                "PID",
                "CGROUPNS",
                "IPC",
                "MNT",
                "NET",
                "PIDNS",
                "USERNS",
                "UTS",
            ])];
            for (_, _, o) in &rows {
                let ns = |k: &str| o["Namespaces"][k].as_str().unwrap_or("").to_string();
                table.push(vec![
                    o["ID"].as_str().unwrap_or("").to_string(),
                    o["Names"].as_str().unwrap_or("").to_string(),
                    o["Pid"].to_string(),
                    ns("Cgroup"),
                    ns("IPC"),
                    ns("MNT"),
                    ns("NET"),
                    ns("PIDNS"),
                    ns("User"),
                    ns("UTS"),
                ]);
            }
            write!(out, "{}", columns(&table))?;
        }
        Format::Table => {
            let mut header = vec![
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            if args.pod {
                header.extend(["POD ID", "PODNAME"]);
            }
            if args.pid {
                header.push("PID");
            }
            if more.size {
                header.push("SIZE");
            }
            let mut table = vec![table::header(&header)];
            for (_, _, o) in &rows {
                let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
                let mut row = vec![
                    s("ID"),
                    s("Image"),
                    s("Command"),
                    s("RunningFor"),
                    s("Status"),
                    s("Ports"),
                    s("Names"),
                ];
                if args.pod {
                    row.extend([s("Pod"), s("PodName")]);
                }
                if args.pid {
                    row.push(o["Pid"].to_string());
                }
                if more.size {
                    row.push(o["SizeText"].as_str().unwrap_or("").to_string());
                }
                table.push(row);
            }
            write!(out, "{}", columns(&table))?;
        }
    }
    Ok(0)
}

/// PORTS as podman shows them: `0.0.0.0:8080->80/tcp`, runs of consecutive ports as one
/// range (`0.0.0.0:8080-8081->80-81/tcp`).
fn podman_ports(ports: &[crate::network::PortMapping]) -> String {
    let mut runs: Vec<(String, u16, u16, u16, crate::network::Protocol)> = Vec::new();
    for m in ports {
        let ip = m.host_ip_string();
        if let Some(last) = runs.last_mut()
            && last.0 == ip
            && last.4 == m.protocol
            && last.2.checked_add(1) == Some(m.host_port)
            && last.3 as u32 + (last.2 - last.1) as u32 + 1 == m.container_port as u32
        {
            last.2 = m.host_port;
            continue;
        }
        runs.push((ip, m.host_port, m.host_port, m.container_port, m.protocol));
    }
    runs.iter()
        .map(|(ip, h0, h1, c0, proto)| {
            if h0 == h1 {
                format!("{ip}:{h0}->{c0}/{proto}")
            } else {
                format!("{ip}:{h0}-{h1}->{c0}-{}/{proto}", c0 + (h1 - h0))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--size`: the writable layer's size and the image's, as podman shows them
/// (`12B (virtual 7.8MB)`).
fn add_size(rec: &Record, images: &[crate::storage::Image], obj: &mut Value) {
    let rw = if rec.config.spec.rootfs.driver == crate::spec::Driver::Vfs {
        crate::storage::usage::disk_usage(&rec.rootfs_dir())
    } else {
        crate::storage::usage::disk_usage(&rec.upper_dir())
    };
    let image = images
        .iter()
        .find(|i| i.digest_id() == rec.config.image_id)
        .map(|i| i.size)
        .unwrap_or(0);
    obj["Size"] = json!({"rwSize": rw, "rootFsSize": image + rw});
    obj["SizeText"] = json!(format!(
        "{} (virtual {})",
        units::human_size(rw),
        units::human_size(image + rw)
    ));
}

/// `--ns`: a running container's namespaces, by inode number as podman shows them.
fn add_namespaces(st: &State, obj: &mut Value) {
    let pid = st.pid.filter(|_| st.status == Status::Running);
    let ns = |name: &str| -> String {
        use std::os::unix::fs::MetadataExt;
        pid.and_then(|p| std::fs::metadata(format!("/proc/{p}/ns/{name}")).ok())
            .map(|m| m.ino().to_string())
            .unwrap_or_default()
    };
    obj["Namespaces"] = json!({
        "Cgroup": ns("cgroup"),
        "IPC": ns("ipc"),
        "MNT": ns("mnt"),
        "NET": ns("net"),
        "PIDNS": ns("pid"),
        "User": ns("user"),
        "UTS": ns("uts"),
    });
}

/// `--sort`: podman's keys; created stays newest first, the others ascend.
fn sort_rows(rows: &mut [(Record, State, Value)], key: &str) {
    let text = |o: &Value, k: &str| match &o[k] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match key {
        "created" => rows.sort_by(|a, b| b.2["Created"].as_u64().cmp(&a.2["Created"].as_u64())),
        "runningfor" => rows.sort_by(|a, b| b.2["Created"].as_u64().cmp(&a.2["Created"].as_u64())),
        "size" => rows.sort_by_key(|r| r.2["Size"]["rwSize"].as_u64().unwrap_or(0)),
        "command" => rows.sort_by_key(|r| text(&r.2, "Command")),
        "id" => rows.sort_by_key(|r| text(&r.2, "Id")),
        "image" => rows.sort_by_key(|r| text(&r.2, "Image")),
        "names" => rows.sort_by_key(|r| text(&r.2, "Names")),
        "status" => rows.sort_by_key(|r| text(&r.2, "State")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::table::truncate;

    #[test]
    fn cells_are_cut_as_podman_cuts_them() {
        assert_eq!(
            truncate("sh -c while true; do sleep 1; done", 17),
            "sh -c while true;..."
        );
        assert_eq!(truncate("sh", 17), "sh");
        let long = "a".repeat(50);
        assert_eq!(truncate(&long, 45), format!("{}...", "a".repeat(45)));
    }
}
