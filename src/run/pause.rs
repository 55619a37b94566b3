//! A pod's infra container: box's pause program. It holds the namespaces the pod's
//! containers share (network, uts, ipc) for as long as the pod runs, and does nothing else.
//!
//! As with `--init`, PID 1 stays box's own code (forked, never exec'd: no container
//! process ever has box's binary as its `/proc/PID/exe`, see `run`'s notes), so no image is
//! needed: its root is an empty read-only tmpfs, and nothing of the host is left in its
//! mount namespace. It drops every capability, installs the
//! seccomp filter, tells box it runs (EOF on the channel), then waits in `sigwaitinfo`:
//! SIGTERM, SIGINT or SIGHUP end it (exit 0), SIGCHLD reaps whatever is reparented to it.
//!
//! It stays dumpable (C2 skips that for it), so that box, as the user, can open its
//! /proc/PID/ns/* for the members to join, as an exec would have allowed: no container
//! process can reach it, alone in its pid namespace (the members' pid namespaces are
//! siblings of it, not children).
use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::create::{ChildStdio, Launch, Network};
use super::sync::{ChildEnd, Step};
use super::{Fail, rootfs, security, supervise};

/// Steps C4–C9 of an infra container. Returns only on failure.
pub fn run(l: &Launch, ch: &ChildEnd, mut network: Network) -> Result<Infallible, (Step, Fail)> {
    let at = |step: Step| move |f: Fail| (step, f);
    let sys = |step: Step, what: &'static str| {
        move |e: nix::Error| (step, Fail::new(e as i32, format!("{what}: {}", e.desc())))
    };
    // Named while /proc is still there (the empty root has none).
    super::init::set_title("box-pause");
    rootfs::make_private().map_err(at(Step::Rootfs))?;
    // The empty root has no /dev/null: opened before the pivot.
    let devnull = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys(Step::Process, "open /dev/null"))?;
    let root = rootfs::mount_empty_root(&l.layout).map_err(at(Step::Rootfs))?;
    rootfs::pivot(root.as_fd()).map_err(at(Step::PivotRoot))?;
    drop(root);
    stdio(l, devnull.as_fd()).map_err(sys(Step::Process, "set up stdio"))?;
    drop(devnull);

    network.wait(ch);
    let s = Step::Security;
    security::drop_bounding(l.caps).map_err(sys(s, "drop bounding capabilities"))?;
    for prog in &l.seccomp {
        security::install(prog).map_err(sys(s, "install the seccomp filter"))?;
    }
    security::set_caps(l.caps).map_err(sys(s, "set capabilities"))?;
    nix::sys::prctl::set_no_new_privs().map_err(sys(s, "prctl(PR_SET_NO_NEW_PRIVS)"))?;

    // Running: box sees EOF once our end of the channel is closed (there is no exec to
    // close it).
    // SAFETY: we never return, so the channel's owner never closes it again.
    unsafe { libc::close(ch.as_fd().as_raw_fd()) };
    pause()
}

/// A session of its own; stdin /dev/null; stdout and stderr the log (or box's own).
fn stdio(l: &Launch, devnull: std::os::fd::BorrowedFd) -> nix::Result<()> {
    nix::unistd::setsid()?;
    let onto = |fd: std::os::fd::BorrowedFd, target: i32| -> nix::Result<()> {
        // SAFETY: dup2 onto a standard descriptor number, which we own.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(nix::Error::last());
        }
        Ok(())
    };
    onto(devnull, 0)?;
    if let ChildStdio::Log(log) = &l.stdio {
        onto(log.as_fd(), 1)?;
        onto(log.as_fd(), 2)?;
    }
    Ok(())
}

/// Wait for the end, reaping orphans. The signals are blocked (box blocked them before
/// the clone), so `sigwait` receives them even as PID 1 of its namespace.
fn pause() -> ! {
    let set = supervise::signal_set();
    loop {
        match set.wait() {
            Ok(Signal::SIGTERM | Signal::SIGINT | Signal::SIGHUP) => {
                // SAFETY: _exit; nothing to flush.
                unsafe { libc::_exit(0) }
            }
            Ok(Signal::SIGCHLD) => loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => continue,
                }
            },
            _ => {}
        }
    }
}
