//! `box exec`: a new process inside a running container.
//!
//! ```text
//!  box (single-threaded, child subreaper)
//!   ├─ opens /proc/PID/ns/{user,mnt,pid,uts,ipc,net,cgroup} of the container's PID 1
//!   ├─ fork ─► C1: setns(user) first (it grants the capabilities the others need), then
//!   │              mnt, pid, uts, ipc, net, cgroup; fork ─► C2 (in the pid namespace);
//!   │              send C2's pid, _exit
//!   │         C2: setsid, stdio or the pty, user, working dir, capabilities, seccomp,
//!   │             no_new_privs as the container has them, execve (errors over a pipe)
//!   └─ reaps C1; C2 is reparented to box (subreaper): box forwards signals, relays the
//!      terminal and returns C2's exit code; 126/127 when the exec failed.
//! ```
//! Namespaces the container shares with us (e.g. the network with `--network host`) are
//! not joined: they are already ours.
use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork};

use super::{Ctx, Error, Result, fail};
use crate::container::Record;
use crate::exit::Coded;
use crate::run::{create, security, supervise, sys};

const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
];

fn same_ns(pid: i32, name: &str) -> bool {
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
    use std::os::unix::fs::MetadataExt;
    matches!((theirs, ours), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::Failed(format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

/// What `box exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Keep stdin open.
    pub interactive: bool,
    /// A terminal, allocated in the container.
    pub tty: bool,
    /// Run in the background: stdio on /dev/null, not killed with box.
    pub detach: bool,
    /// `KEY=VALUE`, or `KEY` for the caller's value.
    pub env: Vec<String>,
    /// `user[:group]`, else the container's.
    pub user: Option<String>,
    /// The working directory, else the container's.
    pub workdir: Option<String>,
    /// Every capability, no seccomp.
    pub privileged: bool,
    /// `--preserve-fds N`: box's descriptors 3..3+N are the command's.
    pub preserve_fds: u32,
}

/// Run `args.command` in the container whose PID 1 is `pid`; returns its exit code.
pub fn exec(rec: &Record, pid: i32, args: &Opts) -> Result<u8> {
    let threads = sys::thread_count();
    if threads != 1 {
        fail!("box exec must be single-threaded but has {threads} threads (a bug)");
    }
    let spec = &rec.config.spec;
    // Open every namespace first: the pid may die, and the fds keep them valid.
    let mut ns_fds: Vec<(OwnedFd, CloneFlags)> = Vec::new();
    for (name, flag) in NAMESPACES {
        if same_ns(pid, name) {
            continue;
        }
        let path = format!("/proc/{pid}/ns/{name}");
        let fd = open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| format!("cannot open {path} to join the container"))?;
        ns_fds.push((fd, *flag));
    }

    // Everything the child needs, built before the fork.
    let hostname = if spec.hostname.is_empty() {
        rec.short_id().to_string()
    } else {
        spec.hostname.clone()
    };
    // A later entry replaces an earlier one and moves to the end; linear (the container's
    // environment may hold 100 000 entries): `slots` has each key's latest index, the
    // entries it replaced become None.
    let mut env: Vec<Option<String>> = Vec::new();
    let mut slots: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut set_env = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        if let Some(old) = slots.insert(key, env.len()) {
            env[old] = None;
        }
        env.push(Some(kv));
    };
    set_env(format!("PATH={}", crate::spec::DEFAULT_PATH));
    set_env(format!("HOSTNAME={hostname}"));
    for e in &spec.env {
        set_env(e.clone());
    }
    if args.tty {
        set_env("TERM=xterm".into());
    }
    for e in &args.env {
        match e.split_once('=') {
            Some(_) => set_env(e.clone()),
            None => {
                if let Ok(v) = std::env::var(e) {
                    set_env(format!("{e}={v}"));
                }
            }
        }
    }
    let env: Vec<String> = env.into_iter().flatten().collect();
    let user = args.user.clone().unwrap_or_else(|| spec.user.clone());
    // The container's id maps: the user is checked against them in C2.
    let ids = crate::userns::IdMaps::of_process(pid)?;
    let cwd = args.workdir.clone().unwrap_or_else(|| spec.cwd.clone());
    let cwd = if cwd.is_empty() { "/".to_string() } else { cwd };
    let argv = cstrings(&args.command)?;
    let path_dirs: Vec<String> = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH)
        .split(':')
        .map(String::from)
        .collect();
    let privileged = args.privileged || spec.privileged;
    let caps = if privileged {
        security::cap_mask(&security::all_cap_names())
    } else {
        security::cap_mask(&spec.caps)
    };
    let seccomp = if privileged {
        Vec::new()
    } else {
        create::seccomp_programs(spec, caps)
            .map_err(|e| Error::Failed(format!("building the seccomp profile: {e}")))?
    };

    // The terminal is allocated inside the container (its own devpts), by C1.
    let winsize = if args.tty {
        sys::get_winsize(std::io::stdin().as_fd())
            .or_else(|| sys::get_winsize(std::io::stdout().as_fd()))
    } else {
        None
    };
    let devnull = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| "open /dev/null".into())?;

    let (pid_r, pid_w) = std::os::unix::net::UnixStream::pair().ctx(|| "socketpair".into())?;
    let (mut err_r, err_w) = std::io::pipe().ctx(|| "pipe".into())?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let (alive_r, alive_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    let (mut sfd, _old_mask) = supervise::block_signals()?;

    // SAFETY: single-threaded (checked above).
    match unsafe { fork() }.ctx(|| "fork".into())? {
        ForkResult::Child => {
            drop(pid_r);
            drop(err_r);
            drop(alive_w);
            let child = Child {
                ns_fds: &ns_fds,
                tty: args.tty && !args.detach,
                winsize,
                devnull: devnull.as_fd(),
                interactive: args.interactive,
                detach: args.detach,
                user: &user,
                ids: &ids,
                cwd: &cwd,
                argv: &argv,
                env: &env,
                path_dirs: &path_dirs,
                caps,
                seccomp: &seccomp,
                no_new_privs: spec.no_new_privileges,
                box_alive: alive_r.as_fd(),
                preserve_fds: args.preserve_fds,
            };
            let code = child.first(pid_w, err_w);
            // SAFETY: plain _exit in the forked child.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(pid_w);
            drop(err_w);
            drop(ns_fds);
            let (buf, master) = receive_pid(&pid_r);
            drop(pid_r);
            let _ = nix::sys::wait::waitpid(child, None);
            let _ = nix::unistd::write(&alive_w, b"g");
            let mut msg = Vec::new();
            let _ = err_r.read_to_end(&mut msg);
            let c2: i32 = match buf.trim().parse() {
                Ok(p) => p,
                Err(_) => {
                    let text = String::from_utf8_lossy(&msg);
                    fail!(
                        "cannot enter the container: {}",
                        text.split_once(':').map(|x| x.1).unwrap_or(&text).trim()
                    );
                }
            };
            let c2 = Pid::from_raw(c2);
            if !msg.is_empty() {
                let _ = nix::sys::wait::waitpid(c2, None);
                let text = String::from_utf8_lossy(&msg).into_owned();
                let (code, m) = text.split_once(':').unwrap_or(("125", &text));
                let code: u8 = code.parse().unwrap_or(crate::exit::BOX_ERROR);
                return Err(Error::Coded(Coded::new(code, m.trim().to_string())));
            }
            if args.detach {
                return Ok(0);
            }
            let relay = match master {
                Some(master) => Some(supervise::Relay {
                    master,
                    stdin: args.interactive,
                    out: std::io::stdout()
                        .as_fd()
                        .try_clone_to_owned()
                        .ctx(|| "stdout".into())?,
                    winch: true,
                }),
                None => None,
            };
            let raw = relay
                .as_ref()
                .is_some_and(|r| r.stdin)
                .then(supervise::RawMode::enable)
                .flatten();
            let status = supervise::wait(c2, &mut sfd, relay, None, None);
            drop(raw);
            drop((alive_r, alive_w));
            Ok(crate::exit::from_wait(status?))
        }
    }
}

struct Child<'a> {
    ns_fds: &'a [(OwnedFd, CloneFlags)],
    tty: bool,
    winsize: Option<libc::winsize>,
    devnull: std::os::fd::BorrowedFd<'a>,
    interactive: bool,
    /// `exec -d`: no terminal, stdio on /dev/null, not killed when box exits.
    detach: bool,
    user: &'a str,
    /// The container's id maps: an unmapped uid fails setresuid, and 4294967295 would
    /// leave C2 root.
    ids: &'a crate::userns::IdMaps,
    cwd: &'a str,
    argv: &'a [CString],
    env: &'a [String],
    path_dirs: &'a [String],
    caps: u64,
    seccomp: &'a [seccompiler::BpfProgram],
    no_new_privs: bool,
    /// Read end of a pipe whose write end only box holds: one byte once C1 is reaped,
    /// EOF once box is gone.
    box_alive: std::os::fd::BorrowedFd<'a>,
    /// `exec --preserve-fds N`.
    preserve_fds: u32,
}

impl Child<'_> {
    /// C1: join the namespaces, fork C2, report its pid.
    fn first(&self, pid_w: UnixStream, mut err_w: std::io::PipeWriter) -> i32 {
        // Not dumpable (C2 inherits it): until its execve C2 runs box's image inside the
        // container's pid namespace, and a dumpable process there lets the container open
        // box's binary through /proc/PID/exe (CVE-2019-5736). execve resets it.
        if let Err(e) = nix::sys::prctl::set_dumpable(false) {
            let _ = write!(err_w, "125:prctl(PR_SET_DUMPABLE): {e}");
            return 1;
        }
        for (fd, flag) in self.ns_fds {
            if let Err(e) = setns(fd, *flag) {
                let _ = write!(err_w, "125:setns({flag:?}): {e}");
                return 1;
            }
        }
        // The terminal, from the container's own /dev/ptmx (so `tty` names it there).
        let pty = if self.tty {
            match open_pty(self.winsize.as_ref()) {
                Ok(p) => Some(p),
                Err(e) => {
                    let _ = write!(
                        err_w,
                        "125:cannot allocate a terminal in the container: {e}"
                    );
                    return 1;
                }
            }
        } else {
            None
        };
        // SAFETY: still single-threaded.
        match unsafe { fork() } {
            Err(e) => {
                let _ = write!(err_w, "125:fork: {e}");
                1
            }
            Ok(ForkResult::Parent { child }) => {
                send_pid(&pid_w, child.as_raw(), pty.as_ref().map(|(m, _)| m.as_fd()));
                0
            }
            Ok(ForkResult::Child) => {
                drop(pid_w);
                let slave = pty.map(|(master, slave)| {
                    drop(master);
                    slave
                });
                let (code, msg) = self.second(slave.as_ref().map(|s| s.as_fd()));
                let _ = write!(err_w, "{code}:{msg}");
                // SAFETY: plain _exit in the forked child.
                unsafe { libc::_exit(code as i32) }
            }
        }
    }

    /// C2: become the process the container would run, then exec. Returns only on error.
    fn second(&self, pty_slave: Option<std::os::fd::BorrowedFd>) -> (u8, String) {
        let fail = |what: &str, e: nix::Error| (crate::exit::BOX_ERROR, format!("{what}: {e}"));
        // Die with box, like the container's own PID 1. The death signal follows the
        // parent, so wait until box has reaped C1 (and so adopted us, as a subreaper): it
        // says so with one byte on the `box_alive` pipe; EOF instead means box is gone.
        let mut b = [0u8; 1];
        if !matches!(nix::unistd::read(self.box_alive, &mut b), Ok(1)) {
            return (
                crate::exit::BOX_ERROR,
                "box exited before the command started".into(),
            );
        }
        if !self.detach {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        }
        let mut p = [nix::poll::PollFd::new(
            self.box_alive,
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::ZERO);
        if p[0].revents().is_some_and(|r| !r.is_empty()) {
            return (
                crate::exit::BOX_ERROR,
                "box exited before the command started".into(),
            );
        }
        let root = Uid::from_raw(0);
        let root_g = Gid::from_raw(0);
        if let Err(e) = nix::unistd::setresgid(root_g, root_g, root_g) {
            return fail("setresgid(0)", e);
        }
        if let Err(e) = nix::unistd::setresuid(root, root, root) {
            return fail("setresuid(0)", e);
        }
        if let Err(e) = nix::unistd::setsid() {
            return fail("setsid", e);
        }
        let dup = |fd: i32, to: i32| {
            // SAFETY: dup2 onto a standard descriptor.
            if unsafe { libc::dup2(fd, to) } < 0 {
                Err(nix::Error::last())
            } else {
                Ok(())
            }
        };
        if let Some(slave) = pty_slave {
            // SAFETY: TIOCSCTTY with an integer argument on our new session's terminal.
            unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
            for n in 0..3 {
                if let Err(e) = dup(slave.as_raw_fd(), n) {
                    return fail("dup2 the terminal", e);
                }
            }
        } else if self.detach {
            for n in 0..3 {
                if let Err(e) = dup(self.devnull.as_raw_fd(), n) {
                    return fail("dup2 /dev/null", e);
                }
            }
        } else if !self.interactive
            && let Err(e) = dup(self.devnull.as_raw_fd(), 0)
        {
            return fail("dup2 /dev/null", e);
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
        let id = match crate::run::user::resolve(self.user, &passwd, &group) {
            Ok(id) => id,
            Err(m) => return (crate::exit::BOX_ERROR, m),
        };
        if let Err(e) = self.ids.check_identity(id.uid, id.gid, &id.groups) {
            return (crate::exit::BOX_ERROR, e.to_string());
        }
        let mut env = self.env.to_vec();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", id.home));
        }
        let envp: Vec<CString> = env
            .iter()
            .filter_map(|e| CString::new(e.as_bytes()).ok())
            .collect();
        if let Err(e) = security::drop_bounding(self.caps) {
            return fail("drop bounding capabilities", e);
        }
        for prog in self.seccomp {
            if let Err(e) = security::install(prog) {
                return fail("install the seccomp filter", e);
            }
        }
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
        let gids: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        if nix::unistd::setgroups(&gids).is_err() && !gids.is_empty() {
            return (
                crate::exit::BOX_ERROR,
                "cannot set the supplementary groups".into(),
            );
        }
        let g = Gid::from_raw(id.gid);
        let u = Uid::from_raw(id.uid);
        if let Err(e) = nix::unistd::setresgid(g, g, g) {
            return fail(&format!("setresgid({}): is the gid mapped?", id.gid), e);
        }
        if let Err(e) = nix::unistd::setresuid(u, u, u) {
            return fail(&format!("setresuid({}): is the uid mapped?", id.uid), e);
        }
        if let Err(e) = security::set_caps(self.caps) {
            return fail("set capabilities", e);
        }
        if self.no_new_privs
            && let Err(e) = nix::sys::prctl::set_no_new_privs()
        {
            return fail("prctl(PR_SET_NO_NEW_PRIVS)", e);
        }
        // Resolved in the container's root without magic links: `-w /proc/self/fd/N`
        // must not lead to a host directory.
        let workdir = match crate::run::rootfs::open_workdir(self.cwd, false) {
            Ok(fd) => fd,
            Err(f) => {
                return (
                    crate::exit::CANNOT_INVOKE,
                    format!("cannot chdir: {}", f.message),
                );
            }
        };
        if let Err(e) = nix::unistd::fchdir(&workdir) {
            return (
                crate::exit::CANNOT_INVOKE,
                format!("cannot chdir to {}: {e}", self.cwd),
            );
        }
        drop(workdir);
        // Nothing box inherited or opened reaches the command: every descriptor above
        // stdio is closed at execve (the error pipe too, which tells box it succeeded).
        if let Err(e) = sys::cloexec_from(3 + self.preserve_fds) {
            return fail("close inherited descriptors", e);
        }
        if let Err(e) = sys::preserved_cloexec(self.preserve_fds, false) {
            return fail("pass the preserved descriptors", e);
        }
        // Default signal dispositions and an empty mask for the command.
        for n in 1..=31 {
            if n == libc::SIGKILL || n == libc::SIGSTOP {
                continue;
            }
            // SAFETY: SIG_DFL installs no handler.
            unsafe { libc::signal(n, libc::SIG_DFL) };
        }
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        );
        let name = self.argv[0].to_string_lossy().into_owned();
        let candidates: Vec<CString> = if name.contains('/') {
            vec![self.argv[0].clone()]
        } else {
            self.path_dirs
                .iter()
                .filter(|d| !d.is_empty())
                .filter_map(|d| CString::new(format!("{d}/{name}")).ok())
                .collect()
        };
        let mut errno = nix::errno::Errno::ENOENT;
        for c in &candidates {
            let e = match nix::unistd::execve(c, self.argv, &envp) {
                Err(e) => e,
                Ok(never) => match never {},
            };
            // Keep the most telling error: "permission denied" beats "not found".
            if e != nix::errno::Errno::ENOENT && e != nix::errno::Errno::ENOTDIR {
                errno = e;
            }
        }
        let code = if errno == nix::errno::Errno::ENOENT || errno == nix::errno::Errno::ENOTDIR {
            crate::exit::NOT_FOUND
        } else {
            crate::exit::CANNOT_INVOKE
        };
        (
            code,
            format!("cannot run {name:?} in the container: {}", errno.desc()),
        )
    }
}

/// Open a pty in the current mount namespace's /dev/ptmx: (master, slave).
fn open_pty(ws: Option<&libc::winsize>) -> nix::Result<(OwnedFd, OwnedFd)> {
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    sys::unlock_pty(master.as_fd())?;
    let slave = sys::open_pty_peer(master.as_fd())?;
    if let Some(ws) = ws {
        let _ = sys::set_winsize(slave.as_fd(), ws);
    }
    Ok((master, slave))
}

/// C1 → box: C2's pid, with the pty master when there is one.
fn send_pid(sock: &UnixStream, pid: i32, master: Option<std::os::fd::BorrowedFd>) {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let text = pid.to_string();
    let iov = [IoSlice::new(text.as_bytes())];
    let fds;
    let cmsgs: &[ControlMessage] = match master {
        Some(m) => {
            fds = [m.as_raw_fd()];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    let _ = sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None);
}

/// box's side of `send_pid`: the pid text (empty when C1 failed) and the master.
fn receive_pid(sock: &UnixStream) -> (String, Option<OwnedFd>) {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut buf = [0u8; 32];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let Ok(msg) = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    ) else {
        return (String::new(), None);
    };
    let mut master = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel just gave us this descriptor.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    master.get_or_insert(owned);
                }
            }
        }
    }
    let n = msg.bytes;
    (String::from_utf8_lossy(&buf[..n]).into_owned(), master)
}
