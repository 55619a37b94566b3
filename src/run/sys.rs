//! Thin wrappers over the system calls box needs and neither std nor nix wraps: the new
//! mount API (fsopen/fsconfig/fsmount/move_mount/open_tree/mount_setattr), openat2,
//! pivot_root, close_range, pidfd_open and a fork-like clone.
//!
//! Every wrapper returns `nix::Result` and owns what it creates (`OwnedFd`).
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;

fn cstr(s: &str) -> nix::Result<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

fn cpath(p: &Path) -> nix::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)
}

fn fd_result(ret: libc::c_long) -> nix::Result<OwnedFd> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: the kernel just returned this new descriptor to us alone.
        Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
    }
}

fn unit_result(ret: libc::c_long) -> nix::Result<()> {
    if ret < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// A filesystem context (`fsopen`), configured with `set_*` and turned into a detached
/// mount with `mount`.
pub struct FsContext {
    fd: OwnedFd,
    fstype: String,
}

impl FsContext {
    pub fn new(fstype: &str) -> nix::Result<FsContext> {
        let name = cstr(fstype)?;
        // SAFETY: `name` is a valid C string; the flags are a plain integer.
        let ret = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
        Ok(FsContext {
            fd: fd_result(ret)?,
            fstype: fstype.to_string(),
        })
    }

    fn config(
        &self,
        cmd: libc::c_uint,
        key: Option<&CStr>,
        value: Option<&CStr>,
        aux: libc::c_int,
    ) -> nix::Result<()> {
        // SAFETY: the key and value pointers are valid C strings or NULL, as the command
        // requires.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                cmd,
                key.map_or(std::ptr::null(), |k| k.as_ptr()),
                value.map_or(std::ptr::null(), |v| v.as_ptr()),
                aux,
            )
        };
        unit_result(ret)
    }

    /// `key=value`.
    pub fn set(&self, key: &str, value: &str) -> nix::Result<()> {
        self.config(
            libc::FSCONFIG_SET_STRING,
            Some(&cstr(key)?),
            Some(&cstr(value)?),
            0,
        )
    }

    /// A flag option such as `userxattr`.
    pub fn flag(&self, key: &str) -> nix::Result<()> {
        self.config(libc::FSCONFIG_SET_FLAG, Some(&cstr(key)?), None, 0)
    }

    /// Create the superblock and return a detached mount with `attrs` (MOUNT_ATTR_*).
    pub fn mount(&self, attrs: u64) -> nix::Result<OwnedFd> {
        self.config(libc::FSCONFIG_CMD_CREATE, None, None, 0)?;
        // SAFETY: plain integer arguments.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                self.fd.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                attrs as libc::c_uint,
            )
        };
        fd_result(ret)
    }

    /// The messages the filesystem logged into this context (why a mount failed).
    pub fn log(&self) -> String {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        // The log is read one message per read(2); ENODATA ends it. The fd is blocking
        // but reads never wait: an empty log answers ENODATA at once.
        for _ in 0..16 {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(n) if n > 0 => {
                    let msg = String::from_utf8_lossy(&buf[..n]);
                    // Lines are "e overlayfs: message" (e = error, w = warning, i = info).
                    let msg = msg.trim();
                    let msg = msg.get(2..).unwrap_or(msg);
                    out.push(msg.to_string());
                }
                _ => break,
            }
        }
        if out.is_empty() {
            self.fstype.clone()
        } else {
            out.join("; ")
        }
    }
}

/// `move_mount(from, "", to, "", F_EMPTY_PATH|T_EMPTY_PATH)`: attach a detached mount (or
/// move a mount) onto the file or directory `to` refers to.
pub fn move_mount(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    // SAFETY: empty C strings and valid fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            to.as_raw_fd(),
            c"".as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    unit_result(ret)
}

/// `move_mount` of a detached mount onto a path.
pub fn move_mount_to_path(from: BorrowedFd, to: &Path) -> nix::Result<()> {
    let to = cpath(to)?;
    // SAFETY: valid C strings and fds.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    unit_result(ret)
}

/// `open_tree(OPEN_TREE_CLONE)`: a detached copy of the mount at `path` (a bind mount in
/// waiting). `dirfd` with an empty path clones what the fd refers to.
pub fn clone_tree(dirfd: Option<BorrowedFd>, path: &Path, recursive: bool) -> nix::Result<OwnedFd> {
    let p = cpath(path)?;
    let mut flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    if path.as_os_str().is_empty() {
        flags |= libc::AT_EMPTY_PATH as libc::c_uint;
    }
    let dfd = dirfd.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: valid C string and fd.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, dfd, p.as_ptr(), flags) };
    fd_result(ret)
}

/// Set (and clear) MOUNT_ATTR_* on the mount `fd` refers to (and its children).
pub fn mount_setattr(fd: BorrowedFd, set: u64, clear: u64, recursive: bool) -> nix::Result<()> {
    setattr(fd, set, clear, None, recursive)
}

/// `mount_setattr(MOUNT_ATTR_IDMAP | set)`: the detached mount `fd` (and its children)
/// idmapped through the user namespace `userns`.
pub fn mount_setattr_idmap(
    fd: BorrowedFd,
    set: u64,
    userns: BorrowedFd,
    recursive: bool,
) -> nix::Result<()> {
    setattr(fd, set | libc::MOUNT_ATTR_IDMAP, 0, Some(userns), recursive)
}

fn setattr(
    fd: BorrowedFd,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd>,
    recursive: bool,
) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `attr` lives across the call and its size is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    unit_result(ret)
}

/// `openat2(dirfd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `path` is
/// resolved as if `dirfd` were `/` — `..` and absolute symlinks cannot leave it.
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: libc::c_int) -> nix::Result<OwnedFd> {
    let p = cpath(path)?;
    // SAFETY: open_how is plain old data; zeroed is valid (and what unused fields need).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: valid C string, fd and struct of the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                p.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        // EAGAIN: a concurrent rename raced the lookup; retry as the man page says.
        match fd_result(ret) {
            Err(Errno::EAGAIN) => continue,
            r => return r,
        }
    }
}

/// `pivot_root(".", ".")`: the calling process's cwd becomes `/`, the old root is stacked
/// on top of it (and must then be detached with `umount2(".", MNT_DETACH)`).
pub fn pivot_root_cwd() -> nix::Result<()> {
    // SAFETY: static C strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
    unit_result(ret)
}

/// `--preserve-fds N`: set (`cloexec`) or clear close-on-exec on descriptors
/// `3..3+count` (box holds them close-on-exec, so no helper it runs gets them; the
/// command's process clears it just before its execve). Only async-signal-safe calls.
pub fn preserved_cloexec(count: u32, cloexec: bool) -> nix::Result<()> {
    for fd in 3..3 + count as i32 {
        // SAFETY: fcntl on plain integers.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(nix::errno::Errno::last());
        }
        let want = if cloexec {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, want) } < 0 {
            return Err(nix::errno::Errno::last());
        }
    }
    Ok(())
}

/// Mark every descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: plain integers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    unit_result(ret)
}

/// Close the descriptors `first..=last`.
pub fn close_range(first: u32, last: u32) -> nix::Result<()> {
    // SAFETY: plain integers; the caller owns no Rust objects over these descriptors (box
    // was started with them and never wrapped them).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    unit_result(ret)
}

/// Close every descriptor from `first` up.
pub fn close_from(first: u32) -> nix::Result<()> {
    // SAFETY: plain integers; the caller owns no Rust objects over these descriptors any
    // more (it is about to exec or exit).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    unit_result(ret)
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: plain integers.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    fd_result(ret)
}

/// What `clone_process` returns on each side.
pub enum Forked {
    Parent(nix::unistd::Pid),
    Child,
}

// `clone_process` passes flags first and the stack second, which is the raw clone order on
// these architectures (the three pointers after them are all zero, so their order does not
// matter). s390x swaps flags and stack (CLONE_BACKWARDS2), others differ again: refuse to
// build rather than clone with the flags in the stack argument.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64",
    target_arch = "powerpc64",
    target_arch = "arm",
    target_arch = "x86"
)))]
compile_error!(
    "run::sys::clone_process: check the raw clone(2) argument order for this architecture"
);

/// `clone(flags | SIGCHLD)` without a new stack: fork semantics (the child continues here
/// on a copy of our stack), plus namespace flags. The caller must be single-threaded.
///
/// # Safety
/// As for fork: in the child only the calling thread exists; the caller must not rely on
/// locks other threads could have held (there are none when single-threaded).
pub unsafe fn clone_process(flags: libc::c_int) -> nix::Result<Forked> {
    // flags, stack, then parent_tid, child_tid and tls (in an order that varies by
    // architecture; all zero here).
    // SAFETY: a NULL stack means "share a copy of the current one", as fork does.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        r if r < 0 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(nix::unistd::Pid::from_raw(pid as i32))),
    }
}

/// How many threads this process has (entries of /proc/self/task).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `ioctl(fd, TIOCGPTPEER, O_RDWR|O_NOCTTY)`: open the pty slave of master `fd` without a
/// path lookup.
pub fn open_pty_peer(master: BorrowedFd) -> nix::Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: an ioctl with an integer argument on a valid fd.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER as _,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    fd_result(ret as libc::c_long)
}

/// Get the window size of a terminal.
pub fn get_winsize(fd: BorrowedFd) -> Option<libc::winsize> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer given.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (ret == 0 && (ws.ws_row > 0 || ws.ws_col > 0)).then_some(ws)
}

/// Set the window size of a terminal.
pub fn set_winsize(fd: BorrowedFd, ws: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize from the pointer given.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    unit_result(ret as libc::c_long)
}

/// Unlock a pty master (`unlockpt`) and return its slave's path (`/dev/pts/N`).
pub fn unlock_pty(master: BorrowedFd) -> nix::Result<std::path::PathBuf> {
    let zero: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &zero) } < 0 {
        return Err(Errno::last());
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(Errno::last());
    }
    Ok(std::path::PathBuf::from(format!("/dev/pts/{n}")))
}
