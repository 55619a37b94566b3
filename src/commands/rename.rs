//! `box rename`.
use anyhow::Result;

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::RenameArgs;

pub fn rename(ctx: &Ctx, args: RenameArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let mut rec = c.find(&args.container)?;
    c.rename(&mut rec, &args.new_name)?;
    crate::events::container(&ctx.paths, &rec, "rename");
    Ok(0)
}
