//! Offline image transport: import, load, save.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{ImportArgs, LoadArgs, SaveArgs};

pub fn import(_ctx: &Ctx, _args: ImportArgs) -> Result<u8> {
    not_implemented("box import")
}

pub fn load(_ctx: &Ctx, _args: LoadArgs) -> Result<u8> {
    not_implemented("box load")
}

pub fn save(_ctx: &Ctx, _args: SaveArgs) -> Result<u8> {
    not_implemented("box save")
}
