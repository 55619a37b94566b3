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
            if code == 0 {
                let _ = e.print();
            } else {
                eprintln!("box: {}", usage_error_line(&e));
            }
            return ExitCode::from(code);
        }
    };
    if !matches!(cli.command, Command::Internal(_)) {
        restore_sigpipe();
        close_inherited_fds();
    }
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

/// Rust ignores SIGPIPE, so printing into a closed pipe (`box ps | head -1`) would panic.
/// A command-line tool should just stop, as `ls` does. Internal helpers keep it ignored:
/// the detached monitor must outlive the `box run -d` that reads its first report.
fn restore_sigpipe() {
    // SAFETY: SIG_DFL installs no handler; nothing else runs concurrently this early.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Close every descriptor above stdio that box was started with (a shell's `exec 9<DIR`,
/// a leaked socket): none is for box, and a container must never reach one, through
/// `/proc/PID/fd` or a working directory such as `/proc/self/fd/9`. Only the descriptor
/// a detached container's monitor hands `box start --attach` is kept (`monitor`'s
/// `STARTED_FD_ENV`). Internal helpers keep theirs: their protocols pass descriptors.
fn close_inherited_fds() {
    use crate::run::sys::close_range;
    let keep = std::env::var(crate::monitor::STARTED_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|fd| *fd >= 3);
    match keep {
        Some(fd) => {
            if fd > 3 {
                let _ = close_range(3, fd - 1);
            }
            let _ = close_range(fd + 1, u32::MAX);
        }
        None => {
            let _ = close_range(3, u32::MAX);
        }
    }
}

/// A clap usage error as one line: what is wrong, clap's tip (e.g. "a similar subcommand
/// exists: 'run'") and where to read more, e.g.
/// `unexpected argument '--bogus' found (tip: ...): see 'box run --help'`.
fn usage_error_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let what = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    let tips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    let command: Vec<&str> = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|u| {
            u.split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<']))
                .collect()
        })
        .unwrap_or_else(|| vec!["box"]);
    let tip = if tips.is_empty() {
        String::new()
    } else {
        format!(" ({})", tips.join("; "))
    };
    format!("{what}{tip}: see '{} --help'", command.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_are_one_line_with_the_help_to_read() {
        let e = Cli::try_parse_from(["box", "run", "--bogus", "alpine"]).unwrap_err();
        let line = usage_error_line(&e);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("unexpected argument '--bogus' found"),
            "{line}"
        );
        assert!(line.ends_with("see 'box run --help'"), "{line}");
        let e = Cli::try_parse_from(["box", "imagess"]).unwrap_err();
        let line = usage_error_line(&e);
        assert!(
            line.contains("images"),
            "suggests the right command: {line}"
        );
    }
}
