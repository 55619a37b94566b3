//! `box stop`, `restart`, `kill` and `wait`: flags and output; how a container is stopped
//! (signal, timeout, SIGKILL) is `monitor::stop`.
use std::time::Duration;

use anyhow::{Result, bail};

use super::{containers, each};
use crate::cli::Ctx;
use crate::cli::args::{ContainersArgs, KillArgs, StopArgs};
use crate::container::{Record, Status};
use crate::monitor::stop::StopPlan;
use crate::monitor::{self, status};

fn stop_targets(ctx: &Ctx, args: &StopArgs) -> Result<Vec<String>> {
    if !args.all {
        return Ok(args.containers.clone());
    }
    let c = containers(ctx)?;
    Ok(c.list()?
        .into_iter()
        .filter(|r| status::observe(r).status == Status::Running)
        .map(|r| r.name().to_string())
        .collect())
}

/// docker stop: the container's stop signal, SIGKILL after `-t` (else its own timeout).
fn stop_one(rec: &Record, time: Option<u64>) -> Result<()> {
    let (plan, warning) = StopPlan::for_record(rec, time.map(Duration::from_secs));
    if let Some(w) = warning
        && status::observe(rec).status == Status::Running
    {
        eprintln!("box: warning: {w}");
    }
    monitor::stop::stop(rec, &plan)?;
    Ok(())
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<u8> {
    let names = stop_targets(ctx, &args)?;
    each(ctx, &names, |_, rec, name| {
        stop_one(rec, args.time)?;
        println!("{name}");
        Ok(())
    })
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<u8> {
    let sig = crate::cli::args::parse_signal(&args.signal).map_err(|e| anyhow::anyhow!(e))?;
    each(ctx, &args.containers, |_, rec, name| {
        if !monitor::stop::kill(rec, sig as i32)? {
            bail!("container {} is not running", rec.name());
        }
        println!("{name}");
        Ok(())
    })
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<u8> {
    let names = stop_targets(ctx, &args)?;
    each(ctx, &names, |_, rec, name| {
        stop_one(rec, args.time)?;
        monitor::start_detached(&ctx.paths, rec)?;
        println!("{name}");
        Ok(())
    })
}

pub fn wait(ctx: &Ctx, args: ContainersArgs) -> Result<u8> {
    each(ctx, &args.containers, |_, rec, _| {
        println!("{}", monitor::stop::wait_exit(rec)?);
        Ok(())
    })
}
