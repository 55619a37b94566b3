//! `box inspect`: containers, images and volumes as JSON or through a template.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::InspectArgs;

pub fn inspect(_ctx: &Ctx, _args: InspectArgs) -> Result<u8> {
    not_implemented("box inspect")
}
