//! Parse → dispatch. Each command's behaviour lives in `crate::commands`.
pub mod args;
mod args_attach;
mod args_auto_update;
pub mod args_build;
mod args_events;
mod args_health;
pub mod args_kube;
pub mod args_network;
pub mod args_pod;
mod args_quadlet;
pub mod args_run;
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
    // Invoked as systemd's user generator (a symlink named box-user-generator).
    if let Some(code) = commands::quadlet::as_generator() {
        return code;
    }
    let mut cli = match Cli::try_parse() {
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
                let words: Vec<std::ffi::OsString> = std::env::args_os().collect();
                eprintln!("box: {}", usage_error_line(&e, &words));
            }
            return ExitCode::from(code);
        }
    };
    if !matches!(cli.command, Command::Internal(_)) {
        restore_sigpipe();
        if let Err(e) = close_inherited_fds(preserved_fds(&cli.command)) {
            eprintln!("box: {e}");
            return ExitCode::from(exit::BOX_ERROR);
        }
    }
    if let Err(e) = apply_global_more(&mut cli) {
        eprintln!("box: {e}");
        return ExitCode::from(exit::BOX_ERROR);
    }
    if cli.global.events_backend.as_deref() == Some("none") {
        crate::events::set_backend(true);
        // The monitor and other re-executed helpers record events too: they inherit it.
        // SAFETY: single-threaded this early; nothing reads the environment concurrently.
        unsafe { std::env::set_var(crate::events::BACKEND_ENV, "none") };
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
/// `run`/`exec --preserve-fds N`, or what a detached container's monitor hands the
/// `box start --attach` it runs (`monitor::PRESERVE_FDS_ENV`): the descriptors 3..3+N
/// box must not close.
fn preserved_fds(cmd: &Command) -> u32 {
    use args::ContainerCommand as C;
    let from_monitor = || {
        let n = std::env::var(crate::monitor::PRESERVE_FDS_ENV)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        // SAFETY: single-threaded this early; our own variable.
        unsafe { std::env::remove_var(crate::monitor::PRESERVE_FDS_ENV) };
        n
    };
    match cmd {
        Command::Run(r) | Command::Container(C::Run(r)) => {
            r.container.extra.preserve_fds.unwrap_or(0)
        }
        Command::Exec(e) | Command::Container(C::Exec(e)) => e.preserve_fds.unwrap_or(0),
        Command::Start(_) | Command::Container(C::Start(_)) => from_monitor(),
        _ => 0,
    }
}

/// podman's global `--noout`, `--tmpdir`, `--storage-opt`, `--cgroup-manager` (while
/// single-threaded).
fn apply_global_more(cli: &mut Cli) -> Result<(), String> {
    let storage = crate::driver::StorageOpts::parse(&cli.global.more.storage_opt)
        .map_err(|e| e.to_string())?;
    if storage.mount_program.is_some() {
        // podman: a mount program makes the overlay driver fuse-overlayfs.
        match cli.global.storage_driver {
            None | Some(args::StorageDriver::FuseOverlayfs) => {
                cli.global.storage_driver = Some(args::StorageDriver::FuseOverlayfs)
            }
            Some(_) => {
                return Err(
                    "--storage-opt overlay.mount_program needs the fuse-overlayfs driver: leave out --storage-driver or give fuse-overlayfs".into(),
                );
            }
        }
    }
    storage.export();
    if let Some(m) = &cli.global.more.cgroup_manager
        && let Some(w) = crate::cgroup::set_manager(m).map_err(|e| e.to_string())?
    {
        eprintln!("box: warning: {w}");
    }
    let more = &cli.global.more;
    if let Some(dir) = &more.tmpdir {
        if !dir.is_dir() {
            return Err(format!("--tmpdir {}: no such directory", dir.display()));
        }
        // SAFETY: box is single-threaded here (nothing has spawned a thread yet).
        unsafe { std::env::set_var("TMPDIR", dir) };
    }
    if more.noout {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("--noout: /dev/null: {e}"))?;
        // SAFETY: dup2 onto stdout, which the process owns.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1) } < 0 {
            return Err("--noout: cannot redirect stdout".into());
        }
    }
    Ok(())
}

fn close_inherited_fds(preserve: u32) -> Result<(), String> {
    use crate::run::sys::close_range;
    // podman's rule: every descriptor of the range must be open.
    for fd in 3..3 + preserve as i32 {
        // SAFETY: F_GETFD on a plain integer.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(format!(
                "file descriptor {fd} is not available: --preserve-fds {preserve} needs descriptors 3 to {} open",
                2 + preserve
            ));
        }
    }
    let first = 3 + preserve;
    let keep = std::env::var(crate::monitor::STARTED_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|fd| *fd >= first);
    match keep {
        Some(fd) => {
            if fd > first {
                let _ = close_range(first, fd - 1);
            }
            let _ = close_range(fd + 1, u32::MAX);
        }
        None => {
            let _ = close_range(first, u32::MAX);
        }
    }
    // Held close-on-exec: no helper box runs gets them, only the command (see
    // `run::exec`, `monitor::exec`) and a detached container's monitor.
    crate::run::sys::preserved_cloexec(preserve, true)
        .map_err(|e| format!("--preserve-fds {preserve}: {e}"))?;
    crate::run::set_handed_fds(preserve);
    Ok(())
}

/// The subcommands `words` (the whole command line) name, as the parser walks them:
/// `box --root /x run --bogus` is `["run"]`, whatever flags stand before.
fn subcommands(words: &[std::ffi::OsString]) -> Vec<String> {
    let mut cmd = args::command();
    cmd.build();
    complete::scan::scan(&cmd, words, words.len()).command
}

/// A clap usage error as one line: what is wrong, clap's tip (e.g. "a similar subcommand
/// exists: 'run'") and the help of the subcommand the words name, e.g.
/// `unexpected argument '--bogus' found (tip: ...): see 'box run --help'`.
fn usage_error_line(e: &clap::Error, words: &[std::ffi::OsString]) -> String {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut what = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    // "the following required arguments were not provided:" lists them on the next lines.
    if what.ends_with(':') {
        let listed: Vec<&str> = lines
            .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("tip:"))
            .collect();
        what = format!("{what} {}", listed.join(" "));
    }
    let tips: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("tip: "))
        .collect();
    let mut command = vec!["box".to_string()];
    command.extend(subcommands(words));
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
        let argv = |s: &str| -> Vec<std::ffi::OsString> { s.split(' ').map(Into::into).collect() };
        let words = argv("box run --bogus alpine");
        let e = Cli::try_parse_from(&words).unwrap_err();
        let line = usage_error_line(&e, &words);
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with("unexpected argument '--bogus' found"),
            "{line}"
        );
        assert!(line.ends_with("see 'box run --help'"), "{line}");
        let words = argv("box imagess");
        let e = Cli::try_parse_from(&words).unwrap_err();
        let line = usage_error_line(&e, &words);
        assert!(
            line.contains("images"),
            "suggests the right command: {line}"
        );
        // Flags before the bad one (global or the command's own) do not become the command.
        for (line, help) in [
            ("box --root /tmp/x tag", "box tag --help"),
            ("box run --name web --bogus alpine", "box run --help"),
            ("box run -h", "box run --help"),
            ("box image rm", "box image remove --help"),
        ] {
            let words = argv(line);
            let e = Cli::try_parse_from(&words).unwrap_err();
            let text = usage_error_line(&e, &words);
            assert!(text.ends_with(&format!("see '{help}'")), "{line}: {text}");
            assert!(!text.contains("::"), "{line}: {text}");
        }
    }
}
