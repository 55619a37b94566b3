//! `box stop`, `restart`, `kill` and `wait`: flags and output; how a container is stopped
//! (signal, timeout, SIGKILL) is `monitor::stop`.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{containers, each};
use crate::cli::Ctx;
use crate::cli::args::{KillArgs, StopArgs, WaitArgs, WaitCondition};
use crate::container::{Containers, Record, Status};
use crate::monitor::stop::{Condition, StopPlan, Stopped};
use crate::monitor::{self, status};

/// Which containers a command acts on, as podman picks them: `--all` (those `keep`
/// accepts) or `--filter` give full ids (printed as such); `--cidfile` ids and names are
/// used as given.
pub(super) fn targets(
    c: &Containers,
    names: &[String],
    all: bool,
    filters: &[String],
    cidfiles: &[PathBuf],
    keep: impl Fn(&Record) -> bool,
) -> Result<Vec<String>> {
    let ids = |recs: Vec<Record>| -> Vec<String> {
        recs.into_iter()
            .filter(|r| keep(r))
            .map(|r| r.id().to_string())
            .collect()
    };
    if all {
        return Ok(ids(c.list()?));
    }
    if !filters.is_empty() {
        return Ok(ids(super::ps::filtered(c, filters)?));
    }
    let mut out = Vec::new();
    for file in cidfiles {
        let id = std::fs::read_to_string(file).with_context(|| {
            format!(
                "cannot read the cidfile {}: give a file holding a container id",
                file.display()
            )
        })?;
        let id = id.trim();
        if id.is_empty() {
            bail!(
                "the cidfile {} is empty: give a file holding a container id",
                file.display()
            );
        }
        out.push(id.to_string());
    }
    out.extend(names.iter().cloned());
    Ok(out)
}

/// The container `name`; `None` when it does not exist and `ignore` says that is fine.
pub(super) fn find(c: &Containers, name: &str, ignore: bool) -> Result<Option<Record>> {
    match c.find(name) {
        Ok(rec) => Ok(Some(rec)),
        Err(crate::container::Error::NotFound(_)) if ignore => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_running(rec: &Record) -> bool {
    status::observe(rec).status == Status::Running
}

/// docker stop: the container's stop signal, SIGKILL after `-t` (else its own timeout); the
/// fallback to SIGKILL said on stderr as podman does.
pub(super) fn stop_one(rec: &Record, time: Option<u64>) -> Result<()> {
    let (plan, warning) = StopPlan::for_record(rec, time.map(Duration::from_secs));
    if let Some(w) = warning
        && status::observe(rec).status == Status::Running
    {
        eprintln!("box: warning: {w}");
    }
    if monitor::stop::stop(rec, &plan)? == Stopped::Killed {
        eprintln!(
            "box: warning: StopSignal {} failed to stop container {} in {} seconds, resorting to SIGKILL",
            monitor::stop::signal_name(plan.signal),
            rec.name(),
            plan.timeout.as_secs()
        );
    }
    Ok(())
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<u8> {
    stop_each(ctx, &args, |_| Ok(()))
}

/// `stop` and `restart`: stop each container `args` name, then `then` it; print the name.
fn stop_each(ctx: &Ctx, args: &StopArgs, then: impl Fn(&Record) -> Result<()>) -> Result<u8> {
    let c = containers(ctx)?;
    let names = targets(
        &c,
        &args.containers,
        args.all,
        &args.filter,
        &args.cidfile,
        |_| true,
    )?;
    super::each_name(&names, |name| {
        let Some(rec) = find(&c, name, args.ignore)? else {
            return Ok(());
        };
        stop_one(&rec, args.time)?;
        crate::events::container(&ctx.paths, &rec, "stop");
        then(&rec)?;
        println!("{name}");
        Ok(())
    })
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<u8> {
    let sig = crate::cli::args::parse_signal(&args.signal).map_err(|e| anyhow::anyhow!(e))?;
    let c = containers(ctx)?;
    let names = targets(
        &c,
        &args.containers,
        args.all,
        &[],
        &args.cidfile,
        is_running,
    )?;
    each(ctx, &names, |_, rec, name| {
        if !monitor::stop::kill(rec, sig as i32)? {
            bail!("container {} is not running", rec.name());
        }
        crate::events::container(&ctx.paths, rec, "kill");
        println!("{name}");
        Ok(())
    })
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<u8> {
    stop_each(ctx, &args, |rec| {
        monitor::start_detached(&ctx.paths, rec)?;
        crate::events::container(&ctx.paths, rec, "restart");
        Ok(())
    })
}

pub fn wait(ctx: &Ctx, args: WaitArgs) -> Result<u8> {
    let conditions: Vec<Condition> = args
        .condition
        .iter()
        .map(|c| match c {
            WaitCondition::Created => Condition::Created,
            WaitCondition::Running => Condition::Running,
            WaitCondition::Paused => Condition::Paused,
            WaitCondition::Stopped => Condition::Stopped,
            WaitCondition::Exited => Condition::Exited,
        })
        .collect();
    each(ctx, &args.containers, |_, rec, _| {
        println!(
            "{}",
            monitor::stop::wait_for(rec, &conditions, args.interval)?
        );
        Ok(())
    })
}
