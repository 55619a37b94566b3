//! Cleaning up after a container, on every exit path.
//!
//! Right after the clone box forks a *watcher*: a small process in its own session (so
//! terminal signals miss it) holding the container's user namespace open, a pidfd of the
//! container and the read end of a pipe whose write end only box holds.
//!
//! - Normal exit: box records the exit code and, for `--rm`, *retires* the container
//!   (`Containers::retire`: its name is dropped and its directory renamed into
//!   `containers/.trash/`, which is instant), then writes `d` and returns without waiting.
//!   The watcher deletes the trash from inside the container's user namespace (its files
//!   belong to subordinate ids) and exits. Deleting trees is slow on some disks; this way
//!   `box run --rm` does not wait for it, yet the container is gone from the record when
//!   box returns.
//! - box dies (even SIGKILL): the pipe reads EOF. The watcher waits for the container to
//!   die (PR_SET_PDEATHSIG kills it), runs the cgroup cleanup, then retires and deletes a
//!   `--rm` container, or records the others as exited (137, "box was killed").
//!
//! Mounts need no cleanup: they exist only in the container's mount namespace, which dies
//! with it. Entering the user namespace is a `setns` (its owner has every capability
//! there): no newuidmap, no helper executable.
use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, waitpid};
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
    pub cgroup: RefCell<CgroupHook>,
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

    /// box is done (exit recorded, a `--rm` container retired): let the watcher delete
    /// what is left and exit. Does not wait for it.
    pub fn release(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = nix::unistd::write(&tx, b"d");
        }
        // Reap it if it is already done; otherwise it is reaped when box exits.
        let _ = waitpid(self.pid, Some(WaitPidFlag::WNOHANG));
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropped without `release` (an error path): closing the pipe makes the watcher
        // clean up as if box had died.
        self.tx.take();
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
        ok = if job.autoremove {
            job.containers.retire(&job.record).is_ok()
        } else {
            job.record
                .update_state(|s: &mut State| {
                    if s.status != Status::Exited {
                        s.status = Status::Exited;
                        s.exit_code = Some(137);
                        s.finished_at = Some(time::now_rfc3339());
                        s.error = Some("box was killed".into());
                    }
                })
                .is_ok()
        };
    }
    if job.autoremove {
        // Inside the container's user namespace every file of the trash is ours.
        ok &= nix::sched::setns(userns, nix::sched::CloneFlags::CLONE_NEWUSER).is_ok()
            && job.containers.empty_trash().is_ok();
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

/// For a container that is not running (no user namespace to enter): retire it and delete
/// its files (subordinate-owned ones through the storage module's `box __internal remove`
/// helper). Call from a single-threaded moment.
pub fn remove_container_files(
    containers: &Containers,
    rec: &Record,
    data: &Path,
) -> Result<(), Error> {
    let trashed: PathBuf = containers.retire(rec)?;
    crate::storage::remove::remove_trees(data, &[trashed]).map_err(|e| Error::Io {
        what: format!("remove the files of container {}", rec.short_id()),
        source: std::io::Error::other(e.to_string()),
    })
}
