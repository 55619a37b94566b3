//! `box port`: a container's published ports.
use anyhow::Result;

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::PortArgs;

pub fn port(ctx: &Ctx, args: PortArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let plan = rec.config.spec.network.clone();
    print!("{}", crate::network::format_ports(&plan.ports));
    Ok(0)
}
