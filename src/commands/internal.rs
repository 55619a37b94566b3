//! Hidden entry points box re-executes itself into.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::InternalCommand;

pub fn internal(_ctx: &Ctx, command: InternalCommand) -> Result<u8> {
    match command {
        InternalCommand::Unpack => not_implemented("layer unpack helper"),
        InternalCommand::Remove { .. } => not_implemented("remove helper"),
        InternalCommand::Probe { dir } => {
            crate::userns::helper_enter()?;
            crate::driver::probe_child(&dir)?;
            Ok(0)
        }
        InternalCommand::Monitor { .. } => not_implemented("container monitor"),
        InternalCommand::Complete { .. } => not_implemented("dynamic completion"),
    }
}
