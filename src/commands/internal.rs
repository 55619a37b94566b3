//! Hidden entry points box re-executes itself into.
use anyhow::Result;

use crate::cli::Ctx;
use crate::cli::args::InternalCommand;

pub fn internal(ctx: &Ctx, command: InternalCommand) -> Result<u8> {
    match command {
        InternalCommand::Unpack => {
            crate::storage::unpack::helper_main(&ctx.paths.store())?;
            Ok(0)
        }
        InternalCommand::Remove { paths } => {
            crate::storage::remove::helper_main(&ctx.paths.data, &paths)?;
            Ok(0)
        }
        InternalCommand::Probe { dir } => {
            crate::userns::helper_enter()?;
            crate::driver::probe_child(&dir)?;
            Ok(0)
        }
        InternalCommand::Monitor { id } => Ok(crate::monitor::monitor_main(&ctx.paths, &id)?),
        InternalCommand::HealthLoop { id, supervisor } => Ok(crate::monitor::health::loop_main(
            &ctx.paths, &id, supervisor,
        )?),
        InternalCommand::Healthcheck { id } => {
            Ok(crate::monitor::health::helper_main(&ctx.paths, &id)?)
        }
        InternalCommand::Complete { words } => super::completion::print_candidates(words),
        InternalCommand::Unshare { command } => super::unshare::internal(ctx, command),
        InternalCommand::VolumeImport { dir } => {
            crate::userns::helper_enter()?;
            // box's own tar writer: every entry created beneath DIR through descriptors,
            // so an archive's symlinks or `..` cannot reach outside the volume.
            crate::storage::unpack::unpack(
                std::io::stdin().lock(),
                &dir,
                None,
                &crate::storage::unpack::Options {
                    chown: true,
                    sync: false,
                    into_existing: true,
                    ignore_chown_errors: false,
                },
            )?;
            Ok(0)
        }
    }
}
