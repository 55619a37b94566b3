//! `box cp`: copies between a container and the host (`monitor::cp`).
use anyhow::Result;

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::CpArgs;
use crate::monitor;

pub fn cp(ctx: &Ctx, args: CpArgs) -> Result<u8> {
    let c = containers(ctx)?;
    monitor::cp::copy(&ctx.paths, &c, &args.src, &args.dest)?;
    Ok(0)
}
