//! Cleaning up after a container, on every exit path.
//!
//! Right after the clone box forks a *watcher*: a small process in its own session (so
//! terminal signals miss it) holding the container's user namespace open, a pidfd of the
//! container and the read end of a pipe whose write end only box holds. When the
//! container has exited box records its state and sends `done`; the watcher then removes
//! a `--rm` container and exits, and box waits for it. If box dies instead (even SIGKILL),
//! the pipe reads EOF: the watcher waits for the container to die (PR_SET_PDEATHSIG kills
//! it), records it as exited (137) or, with `--rm`, removes it, and runs the cgroup
//! cleanup. Mounts need no cleanup: they live only in the container's mount namespace.
//!
//! Files owned by subordinate ids (upper/, work/, rootfs/) are removed from inside the
//! container's user namespace: a forked process `setns()`s into it (the namespace's owner
//! has every capability there) — no newuidmap, no helper executable.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::hooks::CgroupHook;
use super::{Error, sys};
use crate::container::{Containers, Record, State, Status, time};

/// What to do once the container is gone.
pub struct Job {
    pub containers: Containers,
    pub record: Record,
    pub autoremove: bool,
    /// Box cleans it up after the container exits; the watcher when box was killed.
    pub cgroup: std::cell::RefCell<CgroupHook>,
}

/// The watcher process, from box's side.
pub struct Watcher {
    pid: Pid,
    tx: Option<OwnedFd>,
}

impl Watcher {
    /// Fork the watcher for the container `container`.
    pub fn spawn(job: &Job, userns: BorrowedFd, container: Pid) -> Result<Watcher, Error> {
        let (rx, tx) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Sys("pipe", e))?;
        let pidfd = sys::pidfd_open(container.as_raw()).map_err(|e| Error::Sys("pidfd_open", e))?;
        // SAFETY: box is single-threaded here (checked by `create` before the clone).
        match unsafe { nix::unistd::fork() }.map_err(|e| Error::Sys("fork the watcher", e))? {
            ForkResult::Child => {
                drop(tx);
                watcher_main(job, rx, userns, pidfd)
            }
            ForkResult::Parent { child } => Ok(Watcher {
                pid: child,
                tx: Some(tx),
            }),
        }
    }

    /// The container's exit is recorded: let the watcher finish (remove a `--rm`
    /// container) and wait for it. Returns whether it did its job.
    pub fn finish(mut self) -> bool {
        if let Some(tx) = self.tx.take() {
            let _ = nix::unistd::write(&tx, b"d");
        }
        matches!(waitpid(self.pid, None), Ok(WaitStatus::Exited(_, 0)))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropped without `finish` (an error path): closing the pipe makes the watcher
        // clean up as if box had died; wait for it so the caller sees the result.
        if self.tx.take().is_some() {
            let _ = waitpid(self.pid, None);
        }
    }
}

fn watcher_main(job: &Job, rx: OwnedFd, userns: BorrowedFd, pidfd: OwnedFd) -> ! {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"box-cleanup");
    // Only what the watcher needs stays open: no terminal, no locks, no channel.
    if let Ok(null) = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    ) {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which this process owns.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    close_all_but(&[rx.as_raw_fd(), userns.as_raw_fd(), pidfd.as_raw_fd()]);

    let mut byte = [0u8; 1];
    let box_done = matches!(nix::unistd::read(&rx, &mut byte), Ok(1));
    let mut ok = true;
    if !box_done {
        // box died: the container dies with it (PR_SET_PDEATHSIG); wait until it has.
        let mut p = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut p, PollTimeout::from(10_000u16));
        job.cgroup.borrow_mut().cleanup();
        if !job.autoremove {
            ok = job
                .record
                .update_state(|s: &mut State| {
                    if s.status != Status::Exited {
                        s.status = Status::Exited;
                        s.exit_code = Some(137);
                        s.finished_at = Some(time::now_rfc3339());
                        s.error = Some("box was killed".into());
                    }
                })
                .is_ok();
        }
    }
    if job.autoremove {
        ok = remove_in_userns(&job.containers, &job.record, userns).is_ok();
    }
    // SAFETY: _exit in a forked child.
    unsafe { libc::_exit(if ok { 0 } else { 1 }) }
}

fn close_all_but(keep: &[i32]) {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing descriptors this forked process will never use again.
            unsafe { libc::close(fd) };
        }
    }
}

/// Remove everything of the container (its files, owned by subordinate ids, included)
/// from a forked process inside its user namespace `userns`.
pub fn remove_in_userns(
    containers: &Containers,
    rec: &Record,
    userns: BorrowedFd,
) -> Result<(), Error> {
    // SAFETY: called from single-threaded box or the watcher.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::Sys("fork", e))? {
        ForkResult::Child => {
            let ok = nix::sched::setns(userns, nix::sched::CloneFlags::CLONE_NEWUSER).is_ok()
                && remove_record(containers, rec).is_ok();
            // SAFETY: _exit in a forked child.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            _ => Err(Error::Io {
                what: format!("remove container {}", rec.short_id()),
                source: std::io::Error::other("the remover failed"),
            }),
        },
    }
}

fn remove_record(containers: &Containers, rec: &Record) -> Result<(), Error> {
    for d in [rec.upper_dir(), rec.work_dir(), rec.rootfs_dir()] {
        remove_tree(&d).map_err(|source| Error::Io {
            what: format!("remove {}", d.display()),
            source,
        })?;
    }
    containers.remove(rec)?;
    Ok(())
}

/// `rm -rf` that fixes directory modes on the way (overlay's work/work is mode 0).
fn remove_tree(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            fix_modes(p);
            match std::fs::remove_dir_all(p) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        }
    }
}

fn fix_modes(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                fix_modes(&e.path());
            }
        }
    }
}

/// For a container that is not running (no user namespace to enter): remove its
/// subordinate-owned dirs through the storage module's `box __internal remove` helper,
/// then its record. Call from a single-threaded moment.
pub fn remove_container_files(
    containers: &Containers,
    rec: &Record,
    data: &Path,
) -> Result<(), Error> {
    let dirs: Vec<PathBuf> = [rec.upper_dir(), rec.work_dir(), rec.rootfs_dir()]
        .into_iter()
        .filter(|d| d.exists())
        .collect();
    crate::storage::remove::remove_trees(data, &dirs).map_err(|e| Error::Io {
        what: format!("remove the files of container {}", rec.short_id()),
        source: std::io::Error::other(e.to_string()),
    })?;
    containers.remove(rec)?;
    Ok(())
}
