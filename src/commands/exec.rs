//! `box exec`: a command in a running container (`monitor::exec` joins its namespaces).
use anyhow::{Context, Result, bail};

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::ExecArgs;
use crate::container::Status;
use crate::exit::Coded;
use crate::monitor::stop::is_paused;
use crate::monitor::{self, status};

pub fn exec(ctx: &Ctx, args: ExecArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let st = status::observe(&rec);
    if st.status != Status::Running {
        return Err(Coded::new(
            crate::exit::BOX_ERROR,
            format!(
                "container {} is not running: start it first (box start {})",
                rec.name(),
                rec.name()
            ),
        )
        .into());
    }
    if is_paused(&rec, &st) {
        bail!("container {} is paused: unpause it first", rec.name());
    }
    let pid = st.pid.context("the container's record has no pid")?;
    let opts = monitor::exec::Opts {
        command: args.command.clone(),
        interactive: args.interactive,
        tty: args.tty,
        detach: args.detach,
        env: args.env.clone(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        privileged: args.privileged,
        // Checked open and held close-on-exec by cli::main.
        preserve_fds: crate::run::handed_fds(),
    };
    crate::events::container(&ctx.paths, &rec, "exec");
    let code = monitor::exec::exec(&rec, pid, &opts)?;
    if !args.detach {
        crate::events::exec_died(&ctx.paths, &rec, i32::from(code));
    }
    Ok(code)
}
