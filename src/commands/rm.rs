//! `box rm` and `box container prune` (also the containers part of `system prune`).
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::stop::find;
use super::{containers, each_name};
use crate::cli::Ctx;
use crate::cli::args::{ForceArgs, RmArgs};
use crate::container::{Containers, Record, Status};
use crate::monitor::stop::StopPlan;
use crate::monitor::{self, status};
use crate::storage::usage::disk_usage;
use crate::units::human_size;

/// How `rm` goes about a container.
#[derive(Debug, Clone, Copy, Default)]
pub struct Removal {
    /// Stop a running one first: SIGKILL at once, or with `time`, its stop signal and
    /// SIGKILL after that many seconds.
    pub force: bool,
    pub time: Option<u64>,
    /// Its anonymous volumes too.
    pub volumes: bool,
}

/// Remove one container: refuse a running one unless `force` (then stop it first), and
/// one other containers joined with `--network container:` (see `remove_with_dependents`);
/// with `volumes`, its anonymous volumes too.
pub fn remove_container(ctx: &Ctx, c: &Containers, rec: &Record, how: Removal) -> Result<()> {
    let dependents = crate::network::dependents(c, rec)?;
    if !dependents.is_empty() {
        let names: Vec<&str> = dependents.iter().map(|d| d.name()).collect();
        bail!(
            "container {} has dependent containers ({}) that joined its network: remove them first, or all with box rm --depend {}",
            rec.name(),
            names.join(", "),
            rec.name()
        );
    }
    let st = status::observe(rec);
    if st.status == Status::Running {
        if !how.force {
            return Err(anyhow::Error::new(crate::exit::Coded::new(
                super::RM_IN_USE,
                format!(
                    "container {} is running: stop it first (box stop {}) or use box rm -f",
                    rec.name(),
                    rec.name()
                ),
            )));
        }
        match how.time {
            None => monitor::stop::force(rec, &st)?,
            Some(secs) => {
                let (plan, _) = StopPlan::for_record(rec, Some(Duration::from_secs(secs)));
                monitor::stop::stop(rec, &plan)?;
            }
        }
    }
    // The monitor may still be writing its last log lines: let it finish first.
    monitor::stop::wait_monitor_gone(rec, Duration::from_secs(5));
    crate::run::remove_container_files(c, rec, &ctx.paths.data, how.volumes)
        .with_context(|| format!("removing container {}", rec.name()))?;
    crate::events::container(&ctx.paths, rec, "remove");
    Ok(())
}

/// `rm --depend`: the containers that joined `rec`'s network (and theirs, first), then
/// `rec`; each full id printed once removed, as podman does.
fn remove_with_dependents(ctx: &Ctx, c: &Containers, rec: &Record, how: Removal) -> Result<()> {
    for d in crate::network::dependents(c, rec)? {
        remove_with_dependents(ctx, c, &d, how)?;
    }
    remove_container(ctx, c, rec, how)?;
    println!("{}", rec.id());
    Ok(())
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<u8> {
    let how = Removal {
        force: args.force,
        time: args.time,
        volumes: args.volumes,
    };
    let c = containers(ctx)?;
    if args.all {
        // Everything goes: each container's dependents before it, and a pod with its
        // infra container.
        let code = each_name(&ids(&c)?, |id| match find(&c, id, true)? {
            Some(rec) => remove_with_dependents(ctx, &c, &rec, how),
            None => Ok(()), // removed as a dependent
        })?;
        remove_emptied_pods(ctx, &c)?;
        return Ok(code);
    }
    // podman: with -f (or -i) a container that does not exist is not an error.
    let ignore = args.ignore || args.force;
    each_name(&args.containers, |name| {
        let Some(rec) = find(&c, name, ignore).map_err(super::missing_is_1)? else {
            return Ok(());
        };
        if rec.name() == crate::usernet::HOLDER && rec.config.spec.is_infra() {
            bail!(
                "container {} holds the user networks' namespace and goes by itself after the last container on a user network (box rm -a removes it too)",
                rec.name()
            );
        }
        if let Some(link) = rec.config.spec.pod.as_ref().filter(|l| l.infra) {
            let pod = crate::pod::Pods::beside(&c)
                .load(&link.id)
                .map(|p| p.name)
                .unwrap_or_else(|_| link.id.clone());
            bail!(
                "container {} is the infra container of pod {pod}: remove the pod (box pod rm -f {pod})",
                rec.name()
            );
        }
        if args.depend {
            return remove_with_dependents(ctx, &c, &rec, how);
        }
        remove_container(ctx, &c, &rec, how)?;
        println!("{name}");
        Ok(())
    })
}

/// After `rm -a`: the pods whose infra container went are removed too.
fn remove_emptied_pods(ctx: &Ctx, c: &Containers) -> Result<()> {
    let pods = crate::pod::Pods::beside(c);
    for pod in pods.list()? {
        if let Some(infra) = &pod.infra_id
            && matches!(c.load(infra), Err(crate::container::Error::NotFound(_)))
        {
            super::pod::remove_pod(ctx, &pod, true, None)?;
        }
    }
    Ok(())
}

fn ids(c: &Containers) -> Result<Vec<String>> {
    Ok(c.list()?.into_iter().map(|r| r.id().to_string()).collect())
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
    // Build containers of a killed `box build` (running or not).
    pruned
        .ids
        .extend(crate::builder::remove_stale_build_containers(&ctx.paths));
    let mut left: Vec<Record> = c
        .list()?
        .into_iter()
        // A pod's infra container goes with its pod (box pod prune).
        .filter(|r| status::observe(r).status != Status::Running && !r.config.spec.is_infra())
        // A live build's container is its builder's to remove.
        .filter(|r| !r.name().starts_with("box-build-"))
        .collect();
    // Containers others joined (--network container:) go after those others; one a
    // running container joined stays.
    loop {
        let before = left.len();
        let mut later = Vec::new();
        for rec in left {
            if !crate::network::dependents(&c, &rec)?.is_empty() {
                later.push(rec);
                continue;
            }
            let size = disk_usage(&rec.dir);
            match remove_container(ctx, &c, &rec, Removal::default()) {
                Ok(()) => {
                    pruned.reclaimed += size;
                    pruned.ids.push(rec.id().to_string());
                }
                Err(e) => eprintln!("box: {}", crate::exit::one_line(&e)),
            }
        }
        left = later;
        if left.is_empty() || left.len() == before {
            break;
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

pub fn prune(ctx: &Ctx, args: ForceArgs) -> Result<u8> {
    if !args.force
        && !super::image::confirm(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?",
            "box container prune",
        )?
    {
        return Ok(0);
    }
    let pruned = prune_containers(ctx)?;
    for id in &pruned.ids {
        println!("{id}");
    }
    println!("Total reclaimed space: {}", human_size(pruned.reclaimed));
    Ok(0)
}
