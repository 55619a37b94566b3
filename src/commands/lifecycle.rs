//! Container lifecycle without a daemon: start, ps, logs, exec, stop, kill, rm, ...
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{
    ContainersArgs, CpArgs, ExecArgs, KillArgs, LogsArgs, PortArgs, PruneArgs, PsArgs, RenameArgs,
    RmArgs, StartArgs, StatsArgs, StopArgs, TopArgs,
};

pub fn start(_ctx: &Ctx, _args: StartArgs) -> Result<u8> {
    not_implemented("box start")
}

pub fn restart(_ctx: &Ctx, _args: StopArgs) -> Result<u8> {
    not_implemented("box restart")
}

pub fn ps(_ctx: &Ctx, _args: PsArgs) -> Result<u8> {
    not_implemented("box ps")
}

pub fn logs(_ctx: &Ctx, _args: LogsArgs) -> Result<u8> {
    not_implemented("box logs")
}

pub fn exec(_ctx: &Ctx, _args: ExecArgs) -> Result<u8> {
    not_implemented("box exec")
}

pub fn stop(_ctx: &Ctx, _args: StopArgs) -> Result<u8> {
    not_implemented("box stop")
}

pub fn kill(_ctx: &Ctx, _args: KillArgs) -> Result<u8> {
    not_implemented("box kill")
}

pub fn rm(_ctx: &Ctx, _args: RmArgs) -> Result<u8> {
    not_implemented("box rm")
}

pub fn wait(_ctx: &Ctx, _args: ContainersArgs) -> Result<u8> {
    not_implemented("box wait")
}

pub fn pause(_ctx: &Ctx, _args: ContainersArgs) -> Result<u8> {
    not_implemented("box pause")
}

pub fn unpause(_ctx: &Ctx, _args: ContainersArgs) -> Result<u8> {
    not_implemented("box unpause")
}

pub fn rename(_ctx: &Ctx, _args: RenameArgs) -> Result<u8> {
    not_implemented("box rename")
}

pub fn top(_ctx: &Ctx, _args: TopArgs) -> Result<u8> {
    not_implemented("box top")
}

pub fn cp(_ctx: &Ctx, _args: CpArgs) -> Result<u8> {
    not_implemented("box cp")
}

pub fn port(_ctx: &Ctx, _args: PortArgs) -> Result<u8> {
    not_implemented("box port")
}

pub fn stats(_ctx: &Ctx, _args: StatsArgs) -> Result<u8> {
    not_implemented("box stats")
}

pub fn prune(_ctx: &Ctx, _args: PruneArgs) -> Result<u8> {
    not_implemented("box container prune")
}
