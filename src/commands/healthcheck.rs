//! `box healthcheck run`: a container's check once, by hand (`monitor::health`).
use anyhow::Result;

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::HealthcheckCommand;
use crate::monitor::health;

pub fn healthcheck(ctx: &Ctx, command: HealthcheckCommand) -> Result<u8> {
    match command {
        HealthcheckCommand::Run(args) => {
            let rec = containers(ctx)?.find(&args.container)?;
            let (probe, _) = health::run_once(&ctx.paths, &rec)?;
            if probe.passed() {
                Ok(0)
            } else {
                // podman prints the verdict and exits 1.
                println!("{}", health::UNHEALTHY);
                Ok(1)
            }
        }
    }
}
