//! `box stats`: CPU, memory and pids of running containers, from their cgroup or /proc.
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::containers;
use super::table;
use crate::cli::Ctx;
use crate::cli::args::StatsArgs;
use crate::container::{Record, Status};
use crate::monitor::status;
use crate::monitor::top::{self, Sample};
use crate::template::Format;
use crate::units::human_size;

fn stats_row(rec: &Record, a: Option<&Sample>, b: Option<&Sample>) -> Value {
    let cpu = match (a, b) {
        (Some(a), Some(b)) => top::cpu_percent(a, b),
        _ => None,
    };
    let s = b.map(|b| &b.stats);
    json!({
        "ID": rec.short_id(),
        "Name": rec.name(),
        "CPUPerc": cpu,
        "MemUsage": s.and_then(|s| s.memory_current),
        "MemLimit": s.and_then(|s| s.memory_max),
        "MemPeak": s.and_then(|s| s.memory_peak),
        "PIDs": s.and_then(|s| s.pids_current),
        "CgroupOwn": b.is_some_and(|b| b.stats.memory_max.is_some() || b.stats.cpu_max.is_some()),
    })
}

/// What a `--format` template sees: podman's stats fields, as podman prints them.
fn template_row(rec: &Record, r: &Value) -> Value {
    let usage = r["MemUsage"].as_u64();
    let limit = r["MemLimit"].as_u64();
    let size = |v: Option<u64>| v.map(human_size).unwrap_or_else(|| "--".into());
    let percent = |v: Option<f64>| v.map(|p| format!("{p:.2}%")).unwrap_or_else(|| "--".into());
    json!({
        "ID": r["ID"],
        "ContainerID": rec.id(),
        "Name": r["Name"],
        "CPUPerc": percent(r["CPUPerc"].as_f64()),
        "CPU": r["CPUPerc"].as_f64().unwrap_or(0.0),
        "MemUsage": format!("{} / {}", size(usage), size(limit)),
        "MemUsageBytes": format!("{} / {}", usage.map(|u| u.to_string()).unwrap_or_else(|| "--".into()), limit.map(|l| l.to_string()).unwrap_or_else(|| "--".into())),
        "MemPerc": percent(usage.zip(limit).filter(|(_, l)| *l > 0).map(|(u, l)| u as f64 * 100.0 / l as f64)),
        "PIDs": r["PIDs"].as_u64().map(|n| n.to_string()).unwrap_or_else(|| "--".into()),
        "NetIO": "-- / --",
        "BlockIO": "-- / --",
    })
}

pub fn stats(ctx: &Ctx, args: StatsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let recs: Vec<Record> = if args.containers.is_empty() {
        c.list()?
            .into_iter()
            .filter(|r| status::observe(r).status == Status::Running)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|n| c.find(n))
            .collect::<Result<_, _>>()?
    };
    let dash =
        |v: &Value, f: &dyn Fn(u64) -> String| v.as_u64().map(f).unwrap_or_else(|| "--".into());
    loop {
        let first: Vec<_> = recs.iter().map(top::sample).collect();
        std::thread::sleep(Duration::from_millis(if args.no_stream {
            500
        } else {
            1000
        }));
        let second: Vec<_> = recs.iter().map(top::sample).collect();
        let rows: Vec<Value> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| stats_row(r, first[i].as_ref(), second[i].as_ref()))
            .collect();
        match Format::from_arg(args.format.as_deref()) {
            Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
            Format::Template { source, table } => {
                let t = crate::template::Template::parse(&source)?;
                let mut out = String::new();
                if table {
                    out.push_str(&crate::template::table_header(&source));
                    out.push('\n');
                }
                for (rec, r) in recs.iter().zip(&rows) {
                    out.push_str(&t.render(&template_row(rec, r))?);
                    out.push('\n');
                }
                if !args.no_stream {
                    print!("\x1b[2J\x1b[H");
                }
                print!("{out}");
            }
            Format::Table => {
                let mut table = vec![table::header(&[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "PIDS",
                ])];
                for r in &rows {
                    let cpu = r["CPUPerc"]
                        .as_f64()
                        .map(|p| format!("{p:.2}%"))
                        .unwrap_or_else(|| "--".into());
                    let limit = dash(&r["MemLimit"], &human_size);
                    let limit = if limit == "--" && r["CgroupOwn"] == true {
                        "unlimited".into()
                    } else {
                        limit
                    };
                    table.push(vec![
                        r["ID"].as_str().unwrap_or("").to_string(),
                        r["Name"].as_str().unwrap_or("").to_string(),
                        cpu,
                        format!("{} / {limit}", dash(&r["MemUsage"], &human_size)),
                        dash(&r["PIDs"], &|n| n.to_string()),
                    ]);
                }
                if !args.no_stream {
                    print!("\x1b[2J\x1b[H");
                }
                table::print(&table);
                if rows.iter().any(|r| r["CgroupOwn"] == false) && args.no_stream {
                    eprintln!(
                        "box: usage summed from /proc: the container has no cgroup of its own, so no limits apply (see box info)"
                    );
                }
            }
        }
        let _ = std::io::stdout().flush();
        if args.no_stream || recs.is_empty() {
            return Ok(0);
        }
    }
}
