//! `--init`: box's tiny init. The container's PID 1 stays box's code: it forks the command
//! (PID 2, in its own process group, owning the terminal), forwards the signals box
//! forwards to it, reaps every orphan that gets reparented to PID 1, and exits with the
//! command's status (128+N when a signal killed it), as tini does.
//!
//! PID 1 is then box's image, not an exec'd program: it made itself non-dumpable in step
//! C2, so container processes can neither ptrace it nor open /proc/1/{exe,mem,fd} (which
//! would reach box's binary on the host, CVE-2019-5736).
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::signal::kill;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::sync::{ChildEnd, Step, ToParent};
use super::{Fail, exec, supervise};

/// Fork the command and supervise it. Returns only if the fork fails.
pub fn run(ch: &ChildEnd, argv: &[CString], envp: &[CString], tty: bool) -> Fail {
    // SAFETY: the child is single-threaded (it is a fork of single-threaded box).
    match unsafe { nix::unistd::fork() } {
        Err(e) => Fail::new(e as i32, format!("fork the command: {}", e.desc())),
        Ok(ForkResult::Child) => {
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if tty {
                // SIGTTOU is still blocked here, so a background group may take the tty.
                let _ = nix::unistd::tcsetpgrp(std::io::stdin().as_fd(), nix::unistd::getpid());
            }
            let f = exec::exec(argv, envp);
            let _ = ch.send(&ToParent::Failed {
                step: Step::Exec,
                errno: f.errno,
                message: f.message,
            });
            // SAFETY: _exit in a forked child.
            unsafe { libc::_exit(exec::exit_code_for(f.errno) as i32) }
        }
        Ok(ForkResult::Parent { child }) => {
            // Our copy of the channel must go, so box sees EOF when the command execs.
            // SAFETY: we never return, so the Channel's owner never closes it again.
            unsafe { libc::close(ch.as_fd().as_raw_fd()) };
            // --preserve-fds: the command's now, not the init's.
            let kept = exec::PRESERVE_FDS.load(std::sync::atomic::Ordering::Relaxed);
            if kept > 0 {
                let _ = super::sys::close_range(3, 2 + kept);
            }
            set_title("box-init");
            supervise_child(child)
        }
    }
}

fn supervise_child(child: Pid) -> ! {
    let set = supervise::signal_set();
    loop {
        let Ok(sig) = set.wait() else { continue };
        if sig != nix::sys::signal::Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                    // SAFETY: _exit; the kernel kills what is left in the namespace.
                    unsafe { libc::_exit(code) }
                }
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    // SAFETY: as above.
                    unsafe { libc::_exit(128 + s as i32) }
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}

/// Show as `title` in `ps` inside the container instead of box's host command line: the
/// process name, and the argument area /proc/1/cmdline reads (overwritten in place, as
/// setproctitle does; box's own arguments are not read again in this process).
pub(super) fn set_title(title: &str) {
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(title).unwrap_or_default());
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return;
    };
    // Fields 48 and 49 (arg_start, arg_end); `rest` starts at field 3.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let (Some(start), Some(end)) = (
        f.get(45).and_then(|s| s.parse::<usize>().ok()),
        f.get(46).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        return;
    };
    if start == 0 || end <= start {
        return;
    }
    let len = end - start;
    let bytes = title.as_bytes();
    let n = bytes.len().min(len.saturating_sub(1));
    // SAFETY: [arg_start, arg_end) is this process's own argument strings area, mapped
    // and writable (it is on the initial stack); nothing in this process reads it again.
    unsafe {
        let p = start as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, len - n);
    }
}
