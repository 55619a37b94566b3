//! `box run` and `box create`.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{CreateArgs, RunArgs};

pub fn run(_ctx: &Ctx, _args: RunArgs) -> Result<u8> {
    not_implemented("box run")
}

pub fn create(_ctx: &Ctx, _args: CreateArgs) -> Result<u8> {
    not_implemented("box create")
}
