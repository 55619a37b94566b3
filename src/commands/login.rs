//! `box login` / `box logout`: per-user registry credentials.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{LoginArgs, LogoutArgs};

pub fn login(_ctx: &Ctx, _args: LoginArgs) -> Result<u8> {
    not_implemented("box login")
}

pub fn logout(_ctx: &Ctx, _args: LogoutArgs) -> Result<u8> {
    not_implemented("box logout")
}
