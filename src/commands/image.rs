//! Local images: images, rmi, tag, image prune.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{ImagesArgs, PruneArgs, RmiArgs, TagArgs};

pub fn images(_ctx: &Ctx, _args: ImagesArgs) -> Result<u8> {
    not_implemented("box images")
}

pub fn rmi(_ctx: &Ctx, _args: RmiArgs) -> Result<u8> {
    not_implemented("box rmi")
}

pub fn tag(_ctx: &Ctx, _args: TagArgs) -> Result<u8> {
    not_implemented("box tag")
}

pub fn prune(_ctx: &Ctx, _args: PruneArgs) -> Result<u8> {
    not_implemented("box image prune")
}
