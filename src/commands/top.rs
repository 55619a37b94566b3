//! `box top`: the processes of a running container (`monitor::top`).
use anyhow::{Result, bail};

use super::containers;
use super::table;
use crate::cli::Ctx;
use crate::cli::args::TopArgs;
use crate::container::Status;
use crate::monitor::{self, status};

pub fn top(ctx: &Ctx, args: TopArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let st = status::observe(&rec);
    let pid = match (st.status, st.pid) {
        (Status::Running, Some(p)) => p,
        _ => bail!("container {} is not running", rec.name()),
    };
    // Descriptors as podman takes them: words, or one comma-separated list.
    let words: Vec<&str> = args
        .descriptors
        .iter()
        .flat_map(|d| d.split([',', ' ']))
        .filter(|w| !w.is_empty())
        .collect();
    if let Some(flag) = words.iter().find(|w| w.starts_with('-')) {
        bail!(
            "box top runs no ps(1) inside the container, so it takes no ps options ({flag}): give descriptors such as pid user args (see box top --help)"
        );
    }
    let mut columns = Vec::new();
    for w in &words {
        match monitor::top::descriptor(w) {
            Some(d) => columns.push(d),
            None => bail!("unknown descriptor: {w} (see box top --help for the list)"),
        }
    }
    let rows = monitor::top::processes(pid)?;
    if !columns.is_empty() {
        let headers: Vec<&str> = columns.iter().map(|(_, h)| *h).collect();
        let mut table = vec![table::header(&headers)];
        for p in rows {
            table.push(
                columns
                    .iter()
                    .map(|(name, _)| p.fields.get(name).cloned().unwrap_or_default())
                    .collect(),
            );
        }
        table::print(&table);
        return Ok(0);
    }
    let mut table = vec![table::header(&[
        "USER", "PID", "PPID", "HOST PID", "ELAPSED", "TIME", "COMMAND",
    ])];
    for p in rows {
        table.push(vec![
            p.user,
            p.pid.to_string(),
            p.ppid.to_string(),
            p.host_pid.to_string(),
            p.elapsed,
            p.time,
            p.command,
        ]);
    }
    table::print(&table);
    Ok(0)
}
