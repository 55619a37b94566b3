//! `box pull`: fetch an image into the store.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::PullArgs;

pub fn pull(_ctx: &Ctx, _args: PullArgs) -> Result<u8> {
    not_implemented("box pull")
}
