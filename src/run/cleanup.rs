//! Cleaning up after a container, on every exit path.
//!
//! Before a container is even recorded, box forks a *watcher*: a small process in its own
//! session (so terminal signals miss it) on the other end of a socketpair only box holds.
//! box tells it what it needs as it becomes known: the record (`Adopt`), then, right after
//! the clone, the container's pidfd and user namespace (`Started`, as SCM_RIGHTS), then its
//! cgroup (`Cgroup`).
//!
//! - Normal exit: box records the exit code and, for `--rm`, *retires* the container
//!   (`Containers::retire`: its name is dropped and its directory renamed into
//!   `containers/.trash/`, which is instant), then sends `Done` and returns without
//!   waiting. The watcher deletes the trash from inside the container's user namespace
//!   (its files belong to subordinate ids) and exits. Deleting trees is slow on some
//!   disks; this way `box run --rm` does not wait for it, yet the container is gone from
//!   the record when box returns. As a systemd service's process (`INVOCATION_ID`) box
//!   waits for the watcher: systemd kills what is left in the unit's cgroup.
//! - box dies at any point (even SIGKILL, even before the clone): the socket reads EOF.
//!   The watcher waits for the container to die (PR_SET_PDEATHSIG kills it), removes its
//!   cgroup, then retires and deletes a `--rm` container, or records the others as exited
//!   (137, "box was killed").
//!
//! Mounts need no cleanup: they exist only in the container's mount namespace, which dies
//! with it. Entering the user namespace is a `setns` (its owner has every capability
//! there): no newuidmap, no helper executable.
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{ForkResult, Pid};
use serde::{Deserialize, Serialize};

use super::sync::Channel;
use super::{Error, sys};
use crate::container::{Containers, Record, State, Status};
use crate::units as time;

/// What box tells its watcher.
#[derive(Debug, Serialize, Deserialize)]
enum Note {
    /// The container it looks after.
    Adopt { id: String, autoremove: bool },
    /// The container's PID 1 exists: its pidfd and user namespace are attached.
    Started,
    /// The container's cgroup (removed if box dies).
    Cgroup { path: PathBuf },
    /// box recorded the exit (and retired a `--rm` container): delete what is left.
    Done,
}

/// The watcher process, from box's side.
pub struct Watcher {
    pid: Pid,
    ch: Option<Channel>,
}

impl Watcher {
    /// Fork the watcher. box must be single-threaded (it is checked).
    pub fn spawn(containers: &Containers) -> Result<Watcher, Error> {
        let threads = sys::thread_count();
        if threads != 1 {
            return Err(Error::Threads(threads));
        }
        let (ours, theirs) = Channel::pair()?;
        // SAFETY: single-threaded (checked above).
        match unsafe { nix::unistd::fork() }.map_err(|e| Error::Sys("fork the watcher", e))? {
            ForkResult::Child => {
                drop(ours);
                watcher_main(containers, theirs)
            }
            ForkResult::Parent { child } => Ok(Watcher {
                pid: child,
                ch: Some(ours),
            }),
        }
    }

    fn note(&self, n: &Note, fds: &[BorrowedFd]) -> Result<(), Error> {
        match &self.ch {
            Some(ch) => Ok(ch.send_as(n, fds)?),
            None => Ok(()),
        }
    }

    /// The container to look after: call it as soon as its id exists (before its
    /// record is written: a half-written record is cleaned up too).
    pub fn adopt(&self, id: &str, autoremove: bool) -> Result<(), Error> {
        self.note(
            &Note::Adopt {
                id: id.to_string(),
                autoremove,
            },
            &[],
        )
    }

    /// The container's PID 1 exists (right after the clone, before it can do anything).
    pub fn started(&self, pid: Pid, userns: BorrowedFd) -> Result<(), Error> {
        let pidfd = sys::pidfd_open(pid.as_raw()).map_err(|e| Error::Sys("pidfd_open", e))?;
        self.note(&Note::Started, &[pidfd.as_fd(), userns])
    }

    /// The container's cgroup, if it has one of its own.
    pub fn cgroup(&self, path: Option<&Path>) -> Result<(), Error> {
        match path {
            Some(p) => self.note(&Note::Cgroup { path: p.into() }, &[]),
            None => Ok(()),
        }
    }

    /// box is done (exit recorded, a `--rm` container retired): let the watcher delete
    /// what is left and exit. Does not wait for it.
    pub fn release(mut self) {
        if let Some(ch) = self.ch.take() {
            let _ = ch.send_as(&Note::Done, &[]);
        }
        // Reap it if it is already done; otherwise it is reaped when box exits.
        let _ = waitpid(self.pid, Some(WaitPidFlag::WNOHANG));
    }

    /// [`release`](Self::release), then wait until the watcher has deleted what is left:
    /// for box as a systemd service's main process, since systemd kills the processes left
    /// in the unit's cgroup once the main process exits (the files would stay in the trash).
    pub fn release_and_wait(mut self) {
        if let Some(ch) = self.ch.take() {
            let _ = ch.send_as(&Note::Done, &[]);
        }
        while let Err(nix::errno::Errno::EINTR) = waitpid(self.pid, None) {}
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropped without `release` (an error path): closing the socket makes the watcher
        // clean up as if box had died.
        self.ch.take();
    }
}

fn watcher_main(containers: &Containers, ch: Channel) -> ! {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"box-cleanup");
    // Only what the watcher needs stays open: no terminal, no locks.
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
    close_all_but(&[ch.as_fd().as_raw_fd()]);

    let mut adopted: Option<(String, bool)> = None;
    let mut pidfd: Option<OwnedFd> = None;
    let mut userns: Option<OwnedFd> = None;
    let mut cgroup: Option<PathBuf> = None;
    let box_done = loop {
        match ch.recv_as::<Note>() {
            Ok(Some((Note::Adopt { id, autoremove }, _))) => adopted = Some((id, autoremove)),
            Ok(Some((Note::Started, fds))) => {
                let mut fds = fds.into_iter();
                pidfd = fds.next();
                userns = fds.next();
            }
            Ok(Some((Note::Cgroup { path }, _))) => cgroup = Some(path),
            Ok(Some((Note::Done, _))) => break true,
            // EOF: box is gone.
            Ok(None) | Err(_) => break false,
        }
    };
    drop(ch);
    let Some((id, autoremove)) = adopted else {
        // SAFETY: _exit in a forked child.
        unsafe { libc::_exit(0) }
    };
    let mut ok = true;
    if !box_done {
        // box died: the container dies with it (PR_SET_PDEATHSIG); wait until it has.
        if let Some(p) = &pidfd {
            let mut fds = [PollFd::new(p.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(10_000u16));
        }
        if let Some(cg) = &cgroup {
            // Empty once its processes are reaped; that can lag behind the pidfd a little.
            for _ in 0..50 {
                match std::fs::remove_dir(cg) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
        let loaded = containers.load(&id);
        if loaded.is_err() && autoremove {
            // Killed while the record was being written.
            ok = containers.remove_partial(&id).is_ok();
        }
        if let Ok(rec) = loaded {
            ok = if autoremove {
                retire_container(containers, &rec, true).is_ok()
            } else {
                rec.update_state(|s: &mut State| {
                    if s.status == Status::Running {
                        s.status = Status::Exited;
                        s.exit_code = Some(137);
                        s.finished_at = Some(time::now_rfc3339());
                        s.error = Some("box was killed".into());
                    }
                })
                .is_ok()
            };
        }
    }
    if autoremove {
        // Inside the container's user namespace every file of the trash is ours. Without
        // one (box died before the clone) the files are still all the user's own.
        if let Some(ns) = &userns {
            ok &= nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
        }
        ok &= containers.empty_trash().is_ok();
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

/// Retire `rec` into the trash, and with `volumes` its anonymous volumes too (`rm -v`,
/// `--rm`). Returns what went into the trash.
pub fn retire_container(
    containers: &Containers,
    rec: &Record,
    volumes: bool,
) -> Result<Vec<PathBuf>, Error> {
    let vols = crate::volume::Volumes::at(containers.volumes_dir());
    let mut anonymous = if volumes {
        vols.anonymous_in(&rec.config.spec.mounts)
    } else {
        Vec::new()
    };
    if !anonymous.is_empty() {
        // One that another container mounts too (`-v NAME:/path`) stays, as docker keeps it.
        let others = containers.list().unwrap_or_default();
        anonymous.retain(|name| {
            vols.mounted_by(name, &others)
                .iter()
                .all(|o| o.id() == rec.id())
        });
    }
    let mut trashed = vec![containers.retire(rec)?];
    for name in anonymous {
        // Gone already, or locked for too long: `box volume prune` removes it later.
        if let Ok(p) = vols.retire_to(&name, &containers.trash_dir()) {
            trashed.push(p);
        }
    }
    Ok(trashed)
}

/// For a container that is not running (no user namespace to enter): retire it (with its
/// anonymous volumes for `volumes`) and delete its files (subordinate-owned ones through
/// the storage module's `box __internal remove` helper). Call from a single-threaded
/// moment.
pub fn remove_container_files(
    containers: &Containers,
    rec: &Record,
    data: &Path,
    volumes: bool,
) -> Result<(), Error> {
    let trashed = retire_container(containers, rec, volumes)?;
    // Claimed while they are deleted: `system check` and `prune` leave them alone.
    let _claims: Vec<_> = trashed
        .iter()
        .filter_map(|p| crate::container::TrashEntry::claim(p.clone()))
        .collect();
    crate::storage::remove::remove_trees(data, &trashed).map_err(|e| Error::Io {
        what: format!("remove the files of container {}", rec.short_id()),
        source: std::io::Error::other(e.to_string()),
    })
}
