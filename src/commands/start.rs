//! `box start`: detached under a fresh monitor, or `--attach`ed in the foreground.
use anyhow::{Result, bail};

use super::{containers, each};
use crate::cli::Ctx;
use crate::cli::args::StartArgs;
use crate::container::{Record, Status};
use crate::monitor::{self, status};

pub fn start(ctx: &Ctx, args: StartArgs) -> Result<u8> {
    if args.attach {
        if args.containers.len() != 1 {
            bail!("box start --attach takes exactly one container");
        }
        let c = containers(ctx)?;
        let rec = c.find(&args.containers[0])?;
        let st = status::observe(&rec);
        if st.status == Status::Running && std::env::var_os(monitor::UNDER_MONITOR_ENV).is_none() {
            bail!(
                "container {} is already running: use box logs -f or box exec to see it",
                rec.name()
            );
        }
        let opts = crate::run::StartOptions {
            attach: true,
            interactive: args.interactive,
            debug: ctx.verbose(),
        };
        let _ = std::fs::remove_file(monitor::stop_mark(&rec));
        if std::env::var_os(monitor::UNDER_MONITOR_ENV).is_none() {
            crate::events::container(&ctx.paths, &rec, "attach");
        }
        return start_attached(ctx, &rec, &opts);
    }
    let c = containers(ctx)?;
    let names = super::stop::targets(&c, &args.containers, args.all, &args.filter, &[], |_| true)?;
    each(ctx, &names, |_, rec, name| {
        let st = status::observe(rec);
        if st.status != Status::Running {
            start_required(ctx, rec)?;
            monitor::start_detached(&ctx.paths, rec)?;
        }
        println!("{name}");
        Ok(())
    })
}

/// `--requires`: the containers `rec` needs, started (detached) first when not running.
pub fn start_required(ctx: &Ctx, rec: &Record) -> Result<()> {
    let required = &rec.config.spec.settings.requires;
    if required.is_empty() {
        return Ok(());
    }
    let c = containers(ctx)?;
    for name in required {
        let other = c
            .find(name)
            .map_err(|e| anyhow::anyhow!("container {} requires {name}: {e}", rec.name()))?;
        if status::observe(&other).status != Status::Running {
            monitor::start_detached(&ctx.paths, &other)?;
        }
    }
    Ok(())
}

fn start_attached(ctx: &Ctx, rec: &Record, opts: &crate::run::StartOptions) -> Result<u8> {
    start_required(ctx, rec)?;
    // A pod's member needs its infra container running, a container on user networks
    // their holder.
    super::pod::ensure_infra(&ctx.paths, &rec.config.spec)?;
    let holder = super::network::ensure_holder(ctx, &rec.config.spec)?;
    let code = crate::run::start_container(&ctx.paths, rec, opts).map_err(|e| match e {
        crate::run::Error::Exec(c) => anyhow::Error::new(c),
        e => anyhow::Error::new(e),
    });
    let _ = super::network::release_holder(ctx, holder);
    code
}
