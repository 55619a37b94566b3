//! `box completion SHELL`: print a completion script generated from the clap definition.
use anyhow::Result;

use crate::cli::args::{self, CompletionArgs};

pub fn completion(args: CompletionArgs) -> Result<u8> {
    let mut cmd = args::command();
    clap_complete::generate(args.shell, &mut cmd, "box", &mut std::io::stdout());
    Ok(0)
}
