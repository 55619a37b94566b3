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
    let ports = cfg.spec.publish.join(", ");
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
        "Labels": labels,
        "LabelMap": cfg.labels,
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
        other => bail!(
            "unknown filter {other:?}: use status, name, id, pod, ancestor, label, exited or health"
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
    for rec in c.list()? {
        let st = status::observe(&rec);
        let obj = ps_object(&rec, &st, now, args.no_trunc, &pods);
        let mut keep = args.all || args.latest || st.status == Status::Running;
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
    if args.latest {
        rows.truncate(1);
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
                table.push(row);
            }
            write!(out, "{}", columns(&table))?;
        }
    }
    Ok(0)
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
