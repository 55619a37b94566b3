//! `box generate systemd|kube`.
use anyhow::Result;

use super::not_implemented;
use crate::cli::Ctx;
use crate::cli::args::{GenerateKubeArgs, GenerateSystemdArgs};

pub fn systemd(_ctx: &Ctx, _args: GenerateSystemdArgs) -> Result<u8> {
    not_implemented("box generate systemd")
}

pub fn kube(_ctx: &Ctx, _args: GenerateKubeArgs) -> Result<u8> {
    not_implemented("box generate kube")
}
