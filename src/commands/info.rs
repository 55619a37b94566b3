//! `box info`: what a user needs to know before the first run.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::InfoArgs;

pub fn info(_ctx: &Ctx, _args: InfoArgs) -> Result<u8> {
    not_implemented("box info")
}
