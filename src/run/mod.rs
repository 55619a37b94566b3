//! Container creation and supervision: namespaces, rootfs, security, pty, signals.
//!
//! - `spec`: what to run (`Spec`), from the image config + command line (docker rules).
//! - `create`: the parent ↔ child handshake, numbered steps on both sides (read it first).
//! - `rootfs`, `vfs`: the root filesystem and everything mounted on it; `idmap`: the
//!   idmapped mounts of `:idmap` volumes, which box makes for the child.
//! - `security`: capabilities and the default seccomp profile.
//! - `user`: `-u user[:group]` against the container's /etc/passwd and /etc/group.
//! - `exec`, `init`: the final execve, and `--init`'s tiny PID 1.
//! - `supervise`: signal forwarding, the terminal relay, the exit status.
//! - `cleanup`: the watcher that removes a `--rm` container even when box is SIGKILLed.
//! - `hooks`: where the cgroup and network modules plug in.
//! - `sync`, `sys`, `etc`: the channel, raw system calls, /etc files.
//!
//! Entry points: [`start_container`] (used by `box run` and `box start`), or
//! [`start_watched`] with a [`Watcher`] forked before the record was written.
//!
//! # What the container cannot reach
//! - Host paths: the image is mounted and everything is mounted on it *before*
//!   `pivot_root`, with each target resolved by `openat2(RESOLVE_IN_ROOT)` (an image's
//!   symlink cannot redirect a mount to the host); then the host's tree is detached.
//! - Host descriptors (CVE-2024-21626): every descriptor above 2 is marked close-on-exec
//!   with `close_range` right before `execve`, and the working directory is entered after
//!   `pivot_root`, by path, inside the container.
//! - box's binary (CVE-2019-5736): the container's PID 1 is the image's program, exec'd
//!   directly; box never execs itself inside the container, so no container process has
//!   box's binary as its `/proc/PID/exe`. Until that exec (and for good with `--init`) the
//!   child is non-dumpable, so container processes cannot open its `/proc/1/{exe,mem,fd}`.
//! - box itself: the child dies with box (PR_SET_PDEATHSIG), and everything it created is
//!   owned by the user's subordinate ids or the user; the capabilities it holds are those
//!   of its own user namespace only.
pub mod cleanup;
pub mod create;
pub mod etc;
mod exec;
pub mod hooks;
pub mod idmap;
mod init;
mod pause;
pub mod rootfs;
pub mod seccomp_profile;
pub mod security;
mod start;
pub mod supervise;
pub mod sync;
pub mod sys;
pub mod user;
mod vfs;

pub use crate::spec::{Driver, Mount, Rootfs, Seccomp, Spec};
pub use cleanup::Watcher;
pub use cleanup::remove_container_files;
pub use exec::{handed_fds, set_handed_fds};
pub use start::{
    StartOptions, layout, make_rootfs_dirs, start_container, start_watched, volume_mounts,
};

use sync::Step;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad option or image configuration (found before anything runs).
    #[error("{0}")]
    Invalid(String),
    /// The container's command could not be run: 126/127 per docker.
    #[error("{0}")]
    Exec(#[source] crate::exit::Coded),
    #[error("creating the container failed at step {} ({}): {message}", *step as u8, step.describe())]
    Child {
        step: Step,
        errno: i32,
        message: String,
    },
    #[error(
        "box must be single-threaded to create a container but has {0} threads (a bug: threads from pulling must be joined first)"
    )]
    Threads(usize),
    #[error(
        "cannot create the container's namespaces: {0} (are unprivileged user namespaces disabled? check user.max_user_namespaces and kernel.unprivileged_userns_clone)"
    )]
    Clone(nix::Error),
    #[error("{0}: {1}")]
    Sys(&'static str, nix::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("container handshake: {0}")]
    Protocol(String),
    #[error(transparent)]
    Channel(#[from] sync::ChannelError),
    #[error(transparent)]
    Userns(#[from] crate::userns::Error),
    #[error(transparent)]
    Container(#[from] crate::container::Error),
    #[error(transparent)]
    Driver(#[from] crate::driver::Error),
    #[error("seccomp profile: {0}")]
    Seccomp(#[from] seccompiler::BackendError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::Error),
    #[error(transparent)]
    Network(#[from] crate::network::Error),
}

impl Error {
    /// docker's exit code for this error: 126/127 when the command could not be run,
    /// else 125.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Exec(c) => c.code,
            _ => crate::exit::BOX_ERROR,
        }
    }
}

impl Error {
    /// A child failure: exec failures become 126/127 with docker's meaning.
    fn child(step: Step, errno: i32, message: String, args: &[String]) -> Error {
        if step == Step::Exec {
            let code = exec::exit_code_for(errno);
            let what = args.first().map(String::as_str).unwrap_or("");
            let msg = if message.starts_with('"') {
                format!("cannot run the container's command: {message}")
            } else {
                format!("cannot run the container's command {what:?}: {message}")
            };
            return Error::Exec(crate::exit::Coded::new(code, msg));
        }
        Error::Child {
            step,
            errno,
            message,
        }
    }
}

/// A failure inside the child: errno and what failed.
#[derive(Debug)]
pub struct Fail {
    pub errno: i32,
    pub message: String,
}

impl Fail {
    pub fn new(errno: i32, message: String) -> Fail {
        Fail { errno, message }
    }
}

static TRACE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Turn on step timings (`--log-level debug`): each `trace` prints the time since then.
pub fn enable_trace() {
    let _ = TRACE.set(std::time::Instant::now());
}

/// With `--log-level debug`: "box: debug: +1.23ms what" on stderr.
pub fn trace(what: &str) {
    if let Some(t0) = TRACE.get() {
        eprintln!(
            "box: debug: +{:.2}ms {what}",
            t0.elapsed().as_secs_f64() * 1000.0
        );
    }
}
