//! `box pause` / `box unpause` (the cgroup freezer, `monitor::freezer`).
use anyhow::{Result, bail};

use super::each;
use crate::cli::Ctx;
use crate::cli::args::ContainersArgs;
use crate::container::Status;
use crate::monitor::stop::is_paused;
use crate::monitor::{self, status};

pub fn pause(ctx: &Ctx, args: ContainersArgs) -> Result<u8> {
    each(ctx, &args.containers, |_, rec, name| {
        let st = status::observe(rec);
        if st.status != Status::Running {
            bail!("container {} is not running", rec.name());
        }
        monitor::freezer::freeze(rec, &st)?;
        crate::events::container(&ctx.paths, rec, "pause");
        println!("{name}");
        Ok(())
    })
}

pub fn unpause(ctx: &Ctx, args: ContainersArgs) -> Result<u8> {
    each(ctx, &args.containers, |_, rec, name| {
        let st = status::observe(rec);
        if !is_paused(rec, &st) {
            bail!("container {} is not paused", rec.name());
        }
        monitor::freezer::thaw(rec, &st)?;
        crate::events::container(&ctx.paths, rec, "unpause");
        println!("{name}");
        Ok(())
    })
}
