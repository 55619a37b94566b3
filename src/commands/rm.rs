//! `box rm` and `box container prune` (also the containers part of `system prune`).
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{containers, each};
use crate::cli::Ctx;
use crate::cli::args::{PruneArgs, RmArgs};
use crate::container::{Containers, Record, Status};
use crate::monitor::{self, status};
use crate::storage::usage::disk_usage;
use crate::units::human_size;

/// Remove one container: refuse a running one unless `force` (then SIGKILL it first); with
/// `volumes`, its anonymous volumes too.
pub fn remove_container(
    ctx: &Ctx,
    c: &Containers,
    rec: &Record,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let st = status::observe(rec);
    if st.status == Status::Running {
        if !force {
            bail!(
                "container {} is running: stop it first (box stop {}) or use box rm -f",
                rec.name(),
                rec.name()
            );
        }
        monitor::stop::force(rec, &st)?;
    }
    // The monitor may still be writing its last log lines: let it finish first.
    monitor::stop::wait_monitor_gone(rec, Duration::from_secs(5));
    crate::run::remove_container_files(c, rec, &ctx.paths.data, volumes)
        .with_context(|| format!("removing container {}", rec.name()))?;
    Ok(())
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<u8> {
    let names: Vec<String> = if args.all {
        containers(ctx)?
            .list()?
            .into_iter()
            .map(|r| r.id().to_string())
            .collect()
    } else {
        args.containers.clone()
    };
    each(ctx, &names, |c, rec, name| {
        remove_container(ctx, c, rec, args.force, args.volumes)?;
        println!("{name}");
        Ok(())
    })
}

/// What `container prune` removed.
#[derive(Debug, Default, Clone)]
pub struct Pruned {
    pub ids: Vec<String>,
    /// Bytes of upper/rootfs dirs and logs freed (approximate: blocks in use).
    pub reclaimed: u64,
}

/// Remove every container that is not running. For `box container prune` and
/// `box system prune`.
pub fn prune_containers(ctx: &Ctx) -> Result<Pruned> {
    let c = containers(ctx)?;
    let mut pruned = Pruned::default();
    for rec in c.list()? {
        if status::observe(&rec).status == Status::Running {
            continue;
        }
        let size = disk_usage(&rec.dir);
        match remove_container(ctx, &c, &rec, false, false) {
            Ok(()) => {
                pruned.reclaimed += size;
                pruned.ids.push(rec.id().to_string());
            }
            Err(e) => eprintln!("box: {}", crate::exit::one_line(&e)),
        }
    }
    // What removals that failed or were killed left in the trash.
    let trash = c.claim_trash();
    if !trash.is_empty() {
        let paths: Vec<std::path::PathBuf> = trash.iter().map(|t| t.path.clone()).collect();
        let size: u64 = paths.iter().map(|p| disk_usage(p)).sum();
        match crate::storage::remove::remove_trees(&ctx.paths.data, &paths) {
            Ok(()) => pruned.reclaimed += size,
            Err(e) => eprintln!("box: removing containers/.trash: {e}"),
        }
    }
    Ok(pruned)
}

pub fn prune(ctx: &Ctx, _args: PruneArgs) -> Result<u8> {
    let pruned = prune_containers(ctx)?;
    for id in &pruned.ids {
        println!("{id}");
    }
    println!("Total reclaimed space: {}", human_size(pruned.reclaimed));
    Ok(0)
}
