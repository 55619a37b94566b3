//! The per-container monitor behind `box run -d` and `box start`: box itself, no daemon.
//!
//! ```text
//!  box run -d / box start            box __internal monitor ID (setsid, no terminal)
//!  ───────────────────────           ─────────────────────────────────────────────
//!  spawn monitor, report pipe ─────► loop:
//!                                      pipes for stdout/stderr
//!                                      spawn `box start --attach ID` (the foreground
//!                                        path: it creates the container as its direct
//!                                        child, records pid and exit code, forwards
//!                                        signals); its stdio are the pipes
//!  read report  ◄──── "ok" ─────────   once the container runs (exec succeeded)
//!  print id, exit 0                  │ or "err CODE message" if it could not start
//!  (or exit 125/126/127)               copy the pipes into ctr.log (k8s-file, rotated)
//!                                      wait; restart per --restart while it lives
//! ```
//! The monitor is a fresh process (never a fork of a possibly multithreaded box), in its
//! own session, with stdin, stdout and stderr on /dev/null. Being a separate `box start
//! --attach` process, the supervisor of the container is exactly the code that runs
//! foreground containers, so both behave the same.
//!
//! If the monitor is SIGKILLed, its `box start --attach` child keeps supervising (the
//! container loses its log: writes get EPIPE). If that child is SIGKILLed, the container
//! dies with it (PR_SET_PDEATHSIG) and `status::observe` reports it exited.
//!
//! Restart policies (`--restart no|on-failure[:N]|always`) are honoured while the monitor
//! lives, not across reboots: use `box generate systemd` for that. `box stop`/`box kill`
//! leave a `stop-requested` mark so a stopped container is not restarted.
pub mod cp;
pub mod cp_ns;
mod cp_tree;
pub mod exec;
pub mod freezer;
pub mod health;
pub mod kube;
pub mod log;
pub mod status;
pub mod stop;
pub mod top;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::{Deserialize, Serialize};

use crate::container::{Containers, Record, Status};
use crate::exit::Coded;
use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start the container monitor: {0}")]
    Spawn(std::io::Error),
    #[error("the container monitor exited before the container started (see box logs {0})")]
    Lost(String),
    #[error("container monitor: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Container(#[from] crate::container::Error),
    #[error("not started by box (no report fd)")]
    NoReport,
    /// An error that carries its exit code (the container could not start: 125/126/127).
    #[error("{0}")]
    Coded(#[source] Coded),
    /// What box was doing, and the system call's error.
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    /// What box was doing with which file, and the error.
    #[error("{what}: {source}")]
    File {
        what: String,
        source: std::io::Error,
    },
    /// A refusal or a failure explained in full.
    #[error("{0}")]
    Failed(String),
    /// A step inside a helper process failed; its one-line report.
    #[error("{0}")]
    Child(String),
    /// What box was doing when the inner error happened.
    #[error("{what}: {source}")]
    In { what: String, source: Box<Error> },
    #[error(transparent)]
    Run(#[from] crate::run::Error),
    #[error(transparent)]
    Userns(#[from] crate::userns::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.ctx(|| "what box was doing")` on io and nix results: the `File`/`Sys` error.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for std::io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::File {
            what: what(),
            source,
        })
    }
}

impl<T> Ctx<T> for Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::In {
            what: what(),
            source: Box::new(e),
        })
    }
}

impl<T> Ctx<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            what: what(),
            source,
        })
    }
}

/// Return early with `Error::Failed(format!(...))`.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::monitor::Error::Failed(format!($($arg)*)))
    };
}
pub(crate) use fail;

/// Environment variable naming the fd the monitor reports on (set by `start_detached`).
pub const REPORT_FD_ENV: &str = "BOX_MONITOR_REPORT_FD";
/// Environment variable naming the fd on which `box start --attach` under a monitor may
/// say `started` once the container's command runs (see `notify_started`).
pub const STARTED_FD_ENV: &str = "BOX_MONITOR_STARTED_FD";
/// Set for the `box start --attach` a monitor runs.
pub const UNDER_MONITOR_ENV: &str = "BOX_UNDER_MONITOR";
/// `run -d --preserve-fds N`: the descriptors 3..3+N `box run -d` hands its monitor, and
/// the monitor its first `box start --attach` (then closes its own copies). The report
/// and started descriptors follow them, at 3+N.
pub const PRESERVE_FDS_ENV: &str = "BOX_MONITOR_PRESERVE_FDS";

/// In a forked child about to exec: descriptors 3..3+`preserved` stay open across the
/// exec and `w` becomes 3+`preserved`. Only async-signal-safe calls.
fn hand_over(preserved: u32, w: i32) -> std::io::Result<()> {
    crate::run::sys::preserved_cloexec(preserved, false).map_err(std::io::Error::from)?;
    let target = 3 + preserved as i32;
    // SAFETY: fcntl and dup2 on descriptors this process owns.
    unsafe {
        if w == target {
            let flags = libc::fcntl(target, libc::F_GETFD);
            if flags < 0 || libc::fcntl(target, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        } else if libc::dup2(w, target) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub use crate::spec::RestartPolicy;

/// The restart policy recorded for a container.
pub fn restart_policy(rec: &Record) -> RestartPolicy {
    rec.config.spec.restart
}

/// What the monitor keeps next to the record: `<dir>/monitor.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MonitorInfo {
    pub monitor_pid: Option<i32>,
    pub monitor_start: Option<u64>,
    pub restart_count: u32,
}

pub fn info_path(rec: &Record) -> PathBuf {
    rec.dir.join("monitor.json")
}

pub fn read_info(rec: &Record) -> MonitorInfo {
    fs::read(info_path(rec))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_info(rec: &Record, info: &MonitorInfo) {
    let bytes = serde_json::to_vec(info).unwrap_or_default();
    let _ = crate::container::write_atomic(&info_path(rec), &bytes);
}

/// Whether the container's monitor process is alive.
pub fn monitor_alive(rec: &Record) -> bool {
    monitor_pid(rec).is_some()
}

/// The container's monitor process, while it is alive.
pub fn monitor_pid(rec: &Record) -> Option<i32> {
    let info = read_info(rec);
    match (info.monitor_pid, info.monitor_start) {
        (Some(pid), Some(start)) => {
            (crate::container::process_start_time(pid) == Some(start)).then_some(pid)
        }
        _ => None,
    }
}

/// The mark `box stop`/`box kill` leave so the monitor does not restart the container.
pub fn stop_mark(rec: &Record) -> PathBuf {
    rec.dir.join("stop-requested")
}

pub fn request_stop(rec: &Record) {
    let _ = fs::write(stop_mark(rec), b"");
}

/// Start `rec` in the background under a fresh monitor. Returns once the container's
/// command runs; an error carries 125/126/127 when it could not start.
pub fn start_detached(paths: &Paths, rec: &Record) -> Result<()> {
    let (mut report_r, report_w) = std::io::pipe().map_err(Error::Spawn)?;
    let report_w: OwnedFd = report_w.into();
    let w_fd = report_w.as_raw_fd();
    let _ = fs::remove_file(stop_mark(rec));
    // `run -d --preserve-fds N`: this box's 3..3+N go to the monitor.
    let preserved = rec
        .config
        .spec
        .settings
        .preserve_fds
        .min(crate::run::handed_fds());
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("box")
        .args(["__internal", "monitor", rec.id()])
        .env("BOX_ROOT", &paths.data)
        .env("BOX_RUNROOT", &paths.runtime)
        .env(REPORT_FD_ENV, (3 + preserved).to_string())
        .env(PRESERVE_FDS_ENV, preserved.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            hand_over(preserved, w_fd)
        });
    }
    let mut child = cmd.spawn().map_err(Error::Spawn)?;
    drop(report_w);
    let mut report = String::new();
    let _ = report_r.read_to_string(&mut report);
    // The monitor runs on (it is in its own session); reap it if it already exited so no
    // zombie stays with us while we print.
    let _ = child.try_wait();
    parse_report(&report, rec.name())
}

/// Start `rec` in the background without a monitor: its `box start --attach`, in a session
/// of its own, supervises it alone (stdout /dev/null, stderr `start.err` beside the
/// record). For box's own containers whose output nobody reads and which never restart
/// (the user networks' holder): one process and one exec fewer than [`start_detached`],
/// on the way of the first container that needs it. Returns once the command runs; an
/// error carries the start's exit code and last line.
pub fn start_unmonitored(paths: &Paths, rec: &Record) -> Result<()> {
    let (mut started_r, started_w) = std::io::pipe().map_err(Error::Spawn)?;
    let started_w: OwnedFd = started_w.into();
    let w_fd = started_w.as_raw_fd();
    let err_path = rec.dir.join("start.err");
    let err = fs::File::create(&err_path).map_err(|source| Error::File {
        what: format!("create {}", err_path.display()),
        source,
    })?;
    let _ = fs::remove_file(stop_mark(rec));
    let mut cmd = supervisor(paths, rec, 0);
    cmd.stdout(Stdio::null()).stderr(Stdio::from(err));
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            hand_over(0, w_fd)
        });
    }
    let mut child = cmd.spawn().map_err(Error::Spawn)?;
    drop(cmd);
    drop(started_w);
    // Its line, not EOF: the container may hold the other end on (box's pause program).
    let mut said = Vec::new();
    let mut buf = [0u8; 16];
    while !said.contains(&b'\n') {
        match started_r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if said.starts_with(b"started") {
        // It runs on in its session; reaped by init once this box exits (or here, by a
        // later try_wait when it is gone already).
        let _ = child.try_wait();
        return Ok(());
    }
    let code = child
        .wait()
        .ok()
        .and_then(|s| s.code())
        .and_then(|c| u8::try_from(c).ok())
        .filter(|c| *c != 0)
        .unwrap_or(crate::exit::BOX_ERROR);
    let text = fs::read_to_string(&err_path).unwrap_or_default();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(could_not_start(rec.name(), code, last))
}

/// The `box start --attach` that supervises `rec` for a monitor (or alone, see
/// [`start_unmonitored`]): it gets `preserved` descriptors from 3 and says it started on
/// the one after them (put there by [`hand_over`]); stdin /dev/null.
fn supervisor(paths: &Paths, rec: &Record, preserved: u32) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("box")
        .args(["start", "--attach", rec.id()])
        .env("BOX_ROOT", &paths.data)
        .env("BOX_RUNROOT", &paths.runtime)
        .env(UNDER_MONITOR_ENV, "1")
        .env(STARTED_FD_ENV, (3 + preserved).to_string())
        .env(PRESERVE_FDS_ENV, preserved.to_string())
        .stdin(Stdio::null());
    cmd
}

fn parse_report(report: &str, name: &str) -> Result<()> {
    let report = report.trim_end();
    if report == "ok" {
        return Ok(());
    }
    if let Some(rest) = report.strip_prefix("err ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u8 = code.parse().unwrap_or(crate::exit::BOX_ERROR);
        return Err(could_not_start(name, code, msg));
    }
    Err(Error::Lost(name.to_string()))
}

/// A start that failed with `code`: the supervisor's last line `msg` (its "box: " prefix
/// dropped), or which container and code when it said nothing.
fn could_not_start(name: &str, code: u8, msg: &str) -> Error {
    let msg = msg.trim();
    let msg = msg.strip_prefix("box: ").unwrap_or(msg);
    let msg = if msg.is_empty() {
        format!("container {name} could not start (exit status {code})")
    } else {
        msg.to_string()
    };
    Error::Coded(Coded::new(code, msg))
}

/// Called by the supervising `box start --attach` once the container's command runs: tells
/// a monitor waiting on it (no-op otherwise).
pub fn notify_started() {
    let Some(fd) = std::env::var(STARTED_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    // SAFETY: the monitor passed this fd to us for this one message; we own it from here.
    let mut f = unsafe { fs::File::from_raw_fd(fd) };
    let _ = f.write_all(b"started\n");
    // SAFETY: removing our own variable in a process about to go on single-threaded.
    unsafe { std::env::remove_var(STARTED_FD_ENV) };
}

/// `box __internal monitor ID`: the monitor's body. Returns the exit code of the last run.
pub fn monitor_main(paths: &Paths, id: &str) -> Result<u8> {
    let report_fd: i32 = std::env::var(REPORT_FD_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(Error::NoReport)?;
    // SAFETY: start_detached dup'ed the report pipe to this fd for us alone.
    let mut report = Some(unsafe { fs::File::from_raw_fd(report_fd) });
    let _ = nix::fcntl::fcntl(
        report.as_ref().map(|f| f.as_fd()).ok_or(Error::NoReport)?,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let mut preserved: u32 = std::env::var(PRESERVE_FDS_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Only the first `box start --attach` gets them: nothing else the monitor runs.
    if crate::run::sys::preserved_cloexec(preserved, true).is_err() {
        preserved = 0;
    }
    // SAFETY: fresh single-threaded process; removing our own variables.
    unsafe {
        std::env::remove_var(REPORT_FD_ENV);
        std::env::remove_var(PRESERVE_FDS_ENV);
    }
    // The monitor belongs to no terminal: job-control and hangup signals are not for it.
    for sig in [
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGQUIT,
        nix::sys::signal::Signal::SIGTTOU,
        nix::sys::signal::Signal::SIGTTIN,
    ] {
        // SAFETY: setting SIG_IGN installs no handler code.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn);
        }
    }

    let containers = Containers::open(paths)?;
    let rec = containers.find(id)?;
    let me = std::process::id() as i32;
    let mut info = MonitorInfo {
        monitor_pid: Some(me),
        monitor_start: crate::container::process_start_time(me),
        restart_count: 0,
    };
    write_info(&rec, &info);
    let policy = restart_policy(&rec);
    let mut log = log::writer_for(&rec)?;
    let mut backoff = Duration::from_millis(100);
    loop {
        let started_at = Instant::now();
        let mut health_restart = false;
        let outcome = supervise_once(
            paths,
            &rec,
            &mut log,
            &mut report,
            &mut health_restart,
            &mut preserved,
        );
        let code = match outcome {
            Ok(code) => code,
            Err(e) => {
                let msg = crate::exit::error_line(&e);
                let _ = log.write(log::Stream::Stderr, format!("box: {msg}\n").as_bytes());
                if let Some(mut r) = report.take() {
                    let _ = writeln!(r, "err {} {msg}", crate::exit::error_code(&e));
                }
                return Err(e);
            }
        };
        let _ = log.flush_partial();
        let stop_requested = stop_mark(&rec).exists();
        let gone = !rec.dir.join("config.json").exists();
        // --health-on-failure=restart restarts whatever the policy says.
        let restart = health_restart || policy.should_restart(code as i32, info.restart_count);
        if stop_requested || gone || !restart {
            return Ok(code);
        }
        // docker's backoff: doubles from 100 ms while the container keeps failing fast,
        // back to 100 ms after a run of 10 s or more.
        if started_at.elapsed() >= Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(60));
        if stop_mark(&rec).exists() {
            return Ok(code);
        }
        info.restart_count += 1;
        write_info(&rec, &info);
    }
}

/// One run of the container under `box start --attach`; reports on `report` once started.
fn supervise_once(
    paths: &Paths,
    rec: &Record,
    log: &mut log::LogWriter,
    report: &mut Option<fs::File>,
    health_restart: &mut bool,
    preserved: &mut u32,
) -> Result<u8> {
    let (out_r, out_w) = std::io::pipe()?;
    let (err_r, err_w) = std::io::pipe()?;
    let (started_r, started_w) = std::io::pipe()?;
    let started_w: OwnedFd = started_w.into();
    let sw = started_w.as_raw_fd();
    let n = *preserved;
    let mut cmd = supervisor(paths, rec, n);
    cmd.stdout(Stdio::from(OwnedFd::from(out_w)))
        .stderr(Stdio::from(OwnedFd::from(err_w)));
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || hand_over(n, sw));
    }
    let spawned = cmd.spawn();
    if n > 0 {
        // Handed over (or lost with a failed spawn): the monitor keeps no copy.
        let _ = crate::run::sys::close_range(3, 2 + n);
        *preserved = 0;
    }
    let mut child = spawned?;
    drop(cmd);
    drop(started_w);
    let child_pid = child.id() as i32;
    // The healthcheck, run on schedule while this run lives (see `health`).
    let mut health = health::Schedule::new(rec, child_pid);

    let out_r: OwnedFd = out_r.into();
    let err_r: OwnedFd = err_r.into();
    let started_r: OwnedFd = started_r.into();
    let mut open = [Some(out_r), Some(err_r), Some(started_r)];
    // Output before the start is confirmed, to explain a failure.
    let mut early_err = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut exit: Option<u8> = None;
    loop {
        if report.is_some() && started_by_state(rec, child_pid) {
            confirm(report);
        }
        let mut timeout = if report.is_some() { 20u16 } else { 500 };
        if let Some(h) = &health {
            timeout = timeout.min(h.wait_for().as_millis().min(500) as u16);
        }
        let mut fds: Vec<PollFd> = open
            .iter()
            .flatten()
            .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if fds.is_empty() {
            break;
        }
        let ready = match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(std::io::Error::from(e).into()),
        };
        let revents: Vec<bool> = fds
            .iter()
            .map(|p| {
                p.revents()
                    .is_some_and(|r| !(r & (PollFlags::POLLIN | PollFlags::POLLHUP)).is_empty())
            })
            .collect();
        drop(fds);
        if ready > 0 {
            let mut k = 0;
            for (slot_idx, slot) in open.iter_mut().enumerate() {
                let Some(fd) = slot.as_ref() else { continue };
                let readable = revents[k];
                k += 1;
                if !readable {
                    continue;
                }
                let n = match nix::unistd::read(fd, &mut buf) {
                    Ok(n) => n,
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                    Err(_) => 0,
                };
                if n == 0 {
                    *slot = None;
                    continue;
                }
                match slot_idx {
                    0 => log.write(log::Stream::Stdout, &buf[..n])?,
                    1 => {
                        log.write(log::Stream::Stderr, &buf[..n])?;
                        if report.is_some() && early_err.len() < 4096 {
                            early_err.extend_from_slice(&buf[..n]);
                        }
                    }
                    _ => {
                        if buf[..n].starts_with(b"started") {
                            confirm(report);
                        }
                    }
                }
            }
        }
        if report.is_none()
            && let Some(h) = health.as_mut()
        {
            h.tick(paths, rec);
            *health_restart = h.restart;
        }
        if exit.is_none()
            && let Some(status) = child.try_wait()?
        {
            exit = Some(exit_code(status));
            // The container (its PID 1, and so its whole pid namespace) is gone with it;
            // read what is left in the pipes, without waiting for descendants that
            // escaped into another session holding them open.
            open[2] = None;
            drain_rest(&mut open, log, &mut buf)?;
            break;
        }
    }
    let code = match exit {
        Some(c) => c,
        None => exit_code(child.wait()?),
    };
    if let Some(mut r) = report.take() {
        // Never confirmed: the container could not start (or ran and exited before we
        // saw it run: then the state says so).
        let state = rec.state().unwrap_or_default();
        if state.status != Status::Created && state.started_at.is_some() && code < 125 {
            let _ = writeln!(r, "ok");
        } else {
            let text = String::from_utf8_lossy(&early_err);
            let msg = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let code = if code == 0 {
                crate::exit::BOX_ERROR
            } else {
                code
            };
            let _ = writeln!(r, "err {code} {msg}");
        }
    }
    Ok(code)
}

fn confirm(report: &mut Option<fs::File>) {
    if let Some(mut r) = report.take() {
        let _ = writeln!(r, "ok");
    }
}

/// Whether the record says our `box start --attach` has the container running.
fn started_by_state(rec: &Record, child_pid: i32) -> bool {
    rec.state()
        .is_ok_and(|s| s.status == Status::Running && s.box_pid == Some(child_pid) && s.is_alive())
}

fn drain_rest(
    open: &mut [Option<OwnedFd>; 3],
    log: &mut log::LogWriter,
    buf: &mut [u8],
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(500);
    for (i, slot) in open.iter_mut().enumerate().take(2) {
        let Some(fd) = slot.take() else { continue };
        let _ = nix::fcntl::fcntl(
            &fd,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while Instant::now() < deadline {
            match nix::unistd::read(&fd, buf) {
                Ok(0) => break,
                Ok(n) => {
                    let stream = if i == 0 {
                        log::Stream::Stdout
                    } else {
                        log::Stream::Stderr
                    };
                    log.write(stream, &buf[..n])?;
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }
    Ok(())
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => (c & 0xff) as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => crate::exit::BOX_ERROR,
    }
}

/// Whether `path` exists; a helper for callers deciding whether a log is there.
pub fn has_log(rec: &Record) -> bool {
    let p: &Path = &rec.log_path();
    p.exists() || log::rotated(p).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(RestartPolicy::parse("no").unwrap(), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").unwrap(),
            RestartPolicy::OnFailure(Some(3))
        );
        assert_eq!(
            RestartPolicy::parse("always").unwrap(),
            RestartPolicy::Always
        );
        assert!(RestartPolicy::parse("sometimes").is_err());
        let p = RestartPolicy::OnFailure(Some(2));
        assert!(p.should_restart(1, 0) && p.should_restart(1, 1));
        assert!(!p.should_restart(1, 2) && !p.should_restart(0, 0));
        assert!(RestartPolicy::Always.should_restart(0, 100));
        assert!(!RestartPolicy::No.should_restart(1, 0));
    }

    #[test]
    fn reports() {
        assert!(parse_report("ok\n", "web").is_ok());
        let e = parse_report("err 127 box: exec /nope: not found\n", "web").unwrap_err();
        assert_eq!(crate::exit::error_code(&e), 127);
        assert_eq!(e.to_string(), "exec /nope: not found");
        let e = parse_report("", "web").unwrap_err();
        assert_eq!(crate::exit::error_code(&e), 125);
        assert!(e.to_string().contains("box logs web"));
    }
}
