//! `box system`: prune, df, check.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{CheckArgs, PruneArgs};

pub fn prune(_ctx: &Ctx, _args: PruneArgs) -> Result<u8> {
    not_implemented("box system prune")
}

pub fn df(_ctx: &Ctx) -> Result<u8> {
    not_implemented("box system df")
}

pub fn check(_ctx: &Ctx, _args: CheckArgs) -> Result<u8> {
    not_implemented("box system check")
}
