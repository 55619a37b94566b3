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
    let rows = monitor::top::processes(pid)?;
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
