//! `box generate systemd|kube`.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{GenerateKubeArgs, GenerateSystemdArgs};

pub fn systemd(_ctx: &Ctx, _args: GenerateSystemdArgs) -> Result<u8> {
    not_implemented("box generate systemd")
}

/// A Kubernetes Pod with the given containers (see `monitor::kube` for the mapping).
pub fn kube(ctx: &Ctx, args: GenerateKubeArgs) -> Result<u8> {
    ctx.paths.ensure()?;
    let containers = crate::container::Containers::open(&ctx.paths)?;
    let recs = args
        .containers
        .iter()
        .map(|n| containers.find(n))
        .collect::<Result<Vec<_>, _>>()?;
    let pod = crate::monitor::kube::pod(&recs, &ctx.paths.volumes());
    print!("{}", crate::monitor::kube::to_yaml(&pod));
    Ok(0)
}
