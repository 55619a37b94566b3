//! Parse → dispatch. Each command's behaviour lives in `crate::commands`.
pub mod args;
pub mod complete;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};

use crate::commands;
use crate::exit;
use crate::paths::Paths;

/// What every command gets: resolved paths and the global options.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub paths: Paths,
    pub global: args::GlobalOpts,
}

impl Ctx {
    pub fn from_global(global: args::GlobalOpts) -> anyhow::Result<Ctx> {
        let paths = Paths::resolve(global.root.as_deref(), global.runroot.as_deref())?;
        Ok(Ctx { paths, global })
    }

    /// Whether to print informational messages on stderr.
    pub fn verbose(&self) -> bool {
        self.global.log_level >= args::LogLevel::Info
    }
}

pub fn main() -> ExitCode {
    // A shell asking for completions (BOX_COMPLETE=<shell>): answer and exit.
    complete::handle_env();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => exit::BOX_ERROR,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result =
        Ctx::from_global(cli.global.clone()).and_then(|ctx| commands::dispatch(&ctx, cli.command));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("box: {}", exit::one_line(&err));
            ExitCode::from(exit::code_of(&err))
        }
    }
}
