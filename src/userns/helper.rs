//! Re-executed helpers that work inside a user namespace.
//!
//! Work that creates or deletes files owned by subordinate ids (unpacking layers, removing
//! them) must happen as root of a user namespace mapped like a container. The parent may be
//! multithreaded (downloads, progress bars), so it never forks by hand: it spawns a fresh
//! `box __internal ...` (fork+exec by std), and that single-threaded process unshares
//! CLONE_NEWUSER itself, which keeps it its full capability set in the new namespace.
//!
//! Sync over one socketpair (the child's end is fd 3, named by `BOX_USERNS_SYNC_FD`):
//! 1. child: unshare(CLONE_NEWUSER), then sends `U` (or `E` + message on failure);
//! 2. parent: writes the uid/gid maps for the child's pid (newuidmap/newgidmap), sends `G`
//!    (or closes the socket on failure, which the child takes as an error);
//! 3. child: setresuid/setresgid(0), and is root in the namespace.
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Pid, Uid};

use super::{Error, IdMaps};

/// The environment variable naming the child's end of the sync socket.
pub const SYNC_FD_ENV: &str = "BOX_USERNS_SYNC_FD";
const CHILD_FD: i32 = 3;

/// A spawned helper: the child process, root in its own user namespace.
pub type Helper = Child;

/// `box __internal ARGS...` from the running executable; set stdio before spawning.
pub fn helper_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("box").arg("__internal").args(args);
    cmd
}

/// Spawn `cmd` (from `helper_command`) and map its new user namespace with `maps`.
pub fn spawn_helper(maps: &IdMaps, mut cmd: Command) -> Result<Helper, Error> {
    let io = |e: std::io::Error| Error::Helper(e.to_string());
    let (mut ours, theirs) = UnixStream::pair().map_err(io)?;
    let theirs_fd = theirs.as_raw_fd();
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if theirs_fd == CHILD_FD {
                let flags = libc::fcntl(CHILD_FD, libc::F_GETFD);
                if flags < 0 || libc::fcntl(CHILD_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(theirs_fd, CHILD_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.env(SYNC_FD_ENV, CHILD_FD.to_string());
    let mut child = cmd.spawn().map_err(io)?;
    drop(theirs);

    let fail = |child: &mut Child, err: Error| {
        let _ = child.kill();
        let _ = child.wait();
        err
    };
    let mut byte = [0u8; 1];
    if let Err(e) = ours.read_exact(&mut byte) {
        return Err(fail(
            &mut child,
            Error::Helper(format!("helper exited before entering its namespace: {e}")),
        ));
    }
    if byte[0] != b'U' {
        let mut msg = String::new();
        let _ = ours.read_to_string(&mut msg);
        return Err(fail(&mut child, Error::Helper(msg)));
    }
    if let Err(e) = maps.write_for(Pid::from_raw(child.id() as i32)) {
        return Err(fail(&mut child, e));
    }
    if let Err(e) = ours.write_all(b"G") {
        return Err(fail(&mut child, io(e)));
    }
    Ok(child)
}

/// The helper's side: enter a fresh user namespace and wait to be mapped. Call this first
/// thing in `box __internal ...`, while the process is single-threaded. Without the sync
/// fd (started by hand) it fails.
pub fn helper_enter() -> Result<(), Error> {
    let fd: i32 = std::env::var(SYNC_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Helper("not started by box (no sync fd)".into()))?;
    // SAFETY: the parent dup'ed its end of the socketpair to this fd for us alone.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut sock = UnixStream::from(owned);
    // Die with the parent: a helper must never outlive the command that started it.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);

    if let Err(e) = unshare(CloneFlags::CLONE_NEWUSER) {
        let _ = sock.write_all(format!("Eunshare: {e}").as_bytes());
        return Err(Error::Unshare(e));
    }
    let io = |e: std::io::Error| Error::Helper(e.to_string());
    sock.write_all(b"U").map_err(io)?;
    let mut byte = [0u8; 1];
    sock.read_exact(&mut byte)
        .map_err(|_| Error::Helper("the parent could not write the id maps".into()))?;
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    nix::unistd::setresgid(root_gid, root_gid, root_gid)
        .map_err(|e| Error::Helper(format!("setresgid(0) in the user namespace: {e}")))?;
    nix::unistd::setresuid(root_uid, root_uid, root_uid)
        .map_err(|e| Error::Helper(format!("setresuid(0) in the user namespace: {e}")))?;
    let _ = nix::unistd::setgroups(&[]);
    Ok(())
}
