//! box's side while the container runs: forward signals to its PID 1, relay the terminal
//! with -t, and collect its exit status. One thread, one poll loop: a signalfd for the
//! signals (blocked before the clone, so none is lost), the pty master and stdin.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Error, sys};
use crate::monitor::log::Stream;

/// The signals box forwards to the container (and --init to the command).
pub const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGWINCH,
];

/// FORWARDED + SIGCHLD: what box blocks and reads from its signalfd.
pub fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Block the signal set (before the clone: the child inherits the mask and resets it
/// right before exec) and open a signalfd for it.
pub fn block_signals() -> Result<(SignalFd, SigSet), Error> {
    let set = signal_set();
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .map_err(|e| Error::Sys("block signals", e))?;
    let sfd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Error::Sys("signalfd", e))?;
    Ok((sfd, old))
}

/// The user's terminal in raw mode; restored when dropped (on every return path).
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on stdin, if it is a terminal.
    pub fn enable() -> Option<RawMode> {
        // SAFETY: fd 0 stays open for the life of the process.
        let fd: BorrowedFd<'static> = unsafe { BorrowedFd::borrow_raw(0) };
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSADRAIN, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// The terminal relay of a -t container.
pub struct Relay {
    pub master: OwnedFd,
    /// Copy our stdin into the pty (-i).
    pub stdin: bool,
    /// Where the pty's output goes (our stdout, or a log file).
    pub out: OwnedFd,
    /// Forward our terminal's size changes.
    pub winch: bool,
}

fn set_nonblocking(fd: BorrowedFd) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// A foreground container's output copied into its log as well (podman and docker log
/// every container): the read ends of its stdout and stderr pipes (none with -t: then the
/// terminal relay's output is logged), copied to box's own stdout and stderr.
pub struct Tee {
    pub log: crate::monitor::log::LogWriter,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Whether stdout and stderr are shown (`--attach`); logged either way.
    pub show: [bool; 2],
}

impl Tee {
    /// Copy what is readable on pipe `i` (0 stdout, 1 stderr); false at its end.
    fn copy(&mut self, i: usize, buf: &mut [u8]) -> bool {
        let (pipe, stream, to) = match i {
            0 => (&self.stdout, Stream::Stdout, 1),
            _ => (&self.stderr, Stream::Stderr, 2),
        };
        let Some(fd) = pipe else { return false };
        match nix::unistd::read(fd.as_fd(), buf) {
            Ok(0) => {}
            Ok(n) => {
                // SAFETY: box's stdout and stderr stay open for the life of the process.
                let out = unsafe { BorrowedFd::borrow_raw(to) };
                if self.show[i] && write_all(out, &buf[..n]) == Err(Errno::EPIPE) {
                    // Our reader is gone (`box run ... | head -1`): so is the container's,
                    // as if it wrote to that pipe itself (it gets EPIPE/SIGPIPE next).
                    let _ = self.log.write(stream, &buf[..n]);
                    match i {
                        0 => self.stdout = None,
                        _ => self.stderr = None,
                    }
                    return false;
                }
                let _ = self.log.write(stream, &buf[..n]);
                return true;
            }
            Err(Errno::EAGAIN | Errno::EINTR) => return true,
            Err(_) => {}
        }
        match i {
            0 => self.stdout = None,
            _ => self.stderr = None,
        }
        false
    }

    /// After PID 1 exited (its pid namespace goes with it): what is left in the pipes,
    /// without waiting long for a writer that escaped.
    fn drain(&mut self, buf: &mut [u8]) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
        for i in 0..2 {
            loop {
                let fd = match i {
                    0 => self.stdout.as_ref(),
                    _ => self.stderr.as_ref(),
                };
                let Some(fd) = fd else { break };
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
                if !matches!(poll(&mut p, PollTimeout::from(ms)), Ok(n) if n > 0) {
                    break;
                }
                if !self.copy(i, buf) {
                    break;
                }
            }
        }
        let _ = self.log.flush_partial();
    }
}

/// Write all of `buf`, waiting for the fd to become writable when it is non-blocking.
fn write_all(fd: BorrowedFd, mut buf: &[u8]) -> nix::Result<()> {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::NONE);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Forward signals (and relay the terminal) until the container's PID 1 exits.
pub fn wait(
    pid: Pid,
    sfd: &mut SignalFd,
    relay: Option<Relay>,
    mut tee: Option<Tee>,
    timeout: Option<std::time::Duration>,
) -> Result<WaitStatus, Error> {
    // --timeout: SIGKILL once it has run that long (podman's conmon does the same).
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut killed = false;
    let stdin = std::io::stdin();
    let stdin_fd = stdin.as_fd();
    let mut status: Option<WaitStatus> = None;
    let mut pending: Vec<u8> = Vec::new(); // stdin bytes not yet written to the master
    let mut stdin_open = relay.as_ref().is_some_and(|r| r.stdin);
    let mut master_open = relay.is_some();
    if let Some(r) = &relay {
        set_nonblocking(r.master.as_fd());
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Some(status) = status {
            // PID 1 is gone (and with it every process holding the pty): drain what it
            // wrote last, then stop.
            if let Some(r) = &relay {
                while master_open {
                    match nix::unistd::read(r.master.as_fd(), &mut buf) {
                        Ok(n) if n > 0 => {
                            let _ = write_all(r.out.as_fd(), &buf[..n]);
                            if let Some(t) = tee.as_mut() {
                                let _ = t.log.write(Stream::Stdout, &buf[..n]);
                            }
                        }
                        Err(Errno::EINTR) => {}
                        _ => master_open = false,
                    }
                }
            }
            if let Some(t) = tee.as_mut() {
                t.drain(&mut buf);
            }
            return Ok(status);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut master_idx = None;
        let mut stdin_idx = None;
        let mut pipe_idx = [None, None];
        if let Some(t) = &tee {
            for (i, p) in [&t.stdout, &t.stderr].into_iter().enumerate() {
                if let Some(fd) = p {
                    pipe_idx[i] = Some(fds.len());
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                }
            }
        }
        if let Some(r) = &relay {
            if master_open {
                let mut ev = PollFlags::POLLIN;
                if !pending.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                master_idx = Some(fds.len());
                fds.push(PollFd::new(r.master.as_fd(), ev));
            }
            if stdin_open && pending.len() < 64 * 1024 {
                stdin_idx = Some(fds.len());
                fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
            }
        }
        let wait = match deadline.filter(|_| !killed) {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                PollTimeout::from(u16::try_from(left.as_millis()).unwrap_or(u16::MAX))
            }
        };
        let polled = poll(&mut fds, wait);
        if !killed && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            killed = true;
            let _ = kill(pid, Signal::SIGKILL);
        }
        match polled {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::Sys("poll", e)),
            Ok(_) => {}
        }
        let ready = |i: Option<usize>, f: PollFlags| {
            i.and_then(|i| fds[i].revents())
                .is_some_and(|r| r.intersects(f))
        };
        let sig_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let master_in = ready(
            master_idx,
            PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
        );
        let master_out = ready(master_idx, PollFlags::POLLOUT);
        let stdin_in = ready(
            stdin_idx,
            PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
        );
        let pipe_in = pipe_idx.map(|i| {
            ready(
                i,
                PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
            )
        });
        drop(fds);
        if let Some(t) = tee.as_mut() {
            for (i, readable) in pipe_in.into_iter().enumerate() {
                if readable {
                    t.copy(i, &mut buf);
                }
            }
        }

        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    // SIGCHLDs of other children (newuidmap, ...) arrive too: after one of
                    // them the container may already be reaped, so wait only once.
                    Signal::SIGCHLD if status.is_some() => {}
                    Signal::SIGCHLD => match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::StillAlive) => {}
                        Ok(s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                            status = Some(s)
                        }
                        Ok(_) => {}
                        Err(e) => return Err(Error::Sys("wait for the container", e)),
                    },
                    Signal::SIGWINCH if relay.as_ref().is_some_and(|r| r.winch) => {
                        let r = relay.as_ref().expect("checked");
                        if let Some(ws) = sys::get_winsize(stdin_fd) {
                            let _ = sys::set_winsize(r.master.as_fd(), &ws);
                        }
                    }
                    // Never signal a reaped pid: it may belong to someone else by now.
                    s if status.is_none() => {
                        let _ = kill(pid, s);
                    }
                    _ => {}
                }
            }
        }
        let Some(r) = &relay else { continue };
        if master_in {
            match nix::unistd::read(r.master.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    if write_all(r.out.as_fd(), &buf[..n]).is_err() {
                        // Our output is gone (closed pipe): keep running, drop output.
                    }
                    if let Some(t) = tee.as_mut() {
                        let _ = t.log.write(Stream::Stdout, &buf[..n]);
                    }
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                _ => master_open = false,
            }
        }
        if master_out && !pending.is_empty() {
            match nix::unistd::write(r.master.as_fd(), &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(_) => pending.clear(),
            }
        }
        if stdin_in {
            match nix::unistd::read(stdin_fd, &mut buf) {
                Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // EOF on a non-terminal stdin: tell the pty, as a user typing ^D would.
                _ => {
                    stdin_open = false;
                    pending.push(4);
                }
            }
        }
    }
}
