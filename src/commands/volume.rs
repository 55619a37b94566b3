//! Named volumes in the per-user store.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{PruneArgs, VolumeLsArgs, VolumeNameArgs, VolumeNamesArgs, VolumeRmArgs};

pub fn create(_ctx: &Ctx, _args: VolumeNameArgs) -> Result<u8> {
    not_implemented("box volume create")
}

pub fn ls(_ctx: &Ctx, _args: VolumeLsArgs) -> Result<u8> {
    not_implemented("box volume ls")
}

pub fn rm(_ctx: &Ctx, _args: VolumeRmArgs) -> Result<u8> {
    not_implemented("box volume rm")
}

pub fn inspect(_ctx: &Ctx, _args: VolumeNamesArgs) -> Result<u8> {
    not_implemented("box volume inspect")
}

pub fn prune(_ctx: &Ctx, _args: PruneArgs) -> Result<u8> {
    not_implemented("box volume prune")
}
