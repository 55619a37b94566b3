//! How a container is stopped, signalled and waited for (`stop`, `restart`, `kill`, `rm -f`,
//! `wait`): the commands keep their flags and output, the rules are here.
//!
//! Every signal goes to the container's PID 1 only while it is still the process box
//! started (its start time matches the record), never to a recycled pid. A signal that
//! ends a container (`stop`, `kill` with KILL/TERM/INT, `rm -f`) first leaves the
//! `stop-requested` mark, so the monitor does not restart it.
use std::time::{Duration, Instant};

use super::{Error, Result, freezer, request_stop, status};
use crate::container::{Record, State, Status};

/// docker's default grace period between the stop signal and SIGKILL.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a container may take to go after SIGKILL before box gives up on it.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// What `box stop` sends and how long it waits before SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPlan {
    /// A number: stop signals may be real-time ones, which nix's `Signal` lacks.
    pub signal: i32,
    pub timeout: Duration,
}

impl StopPlan {
    /// The container's stop signal (`--stop-signal`, else SIGTERM) and `timeout` (`-t`), else
    /// its `--stop-timeout`, else 10 s. A recorded stop signal box cannot send (checked at
    /// create; a record from before that check may hold one) falls back to SIGTERM, and the
    /// reason comes back for a warning.
    pub fn for_record(rec: &Record, timeout: Option<Duration>) -> (StopPlan, Option<String>) {
        let spec = &rec.config.spec;
        let (signal, warning) = match spec.stop_signal.as_deref().map(crate::spec::signal_number) {
            Some(Ok(n)) => (n, None),
            Some(Err(e)) => (
                libc::SIGTERM,
                Some(format!(
                    "the container's stop signal is ignored ({e}); using SIGTERM"
                )),
            ),
            None => (libc::SIGTERM, None),
        };
        let timeout = timeout
            .or(spec.stop_timeout.map(Duration::from_secs))
            .unwrap_or(DEFAULT_TIMEOUT);
        (StopPlan { signal, timeout }, warning)
    }
}

/// Whether a running container is frozen by `box pause`.
pub fn is_paused(rec: &Record, st: &State) -> bool {
    st.status == Status::Running && freezer::is_marked(rec)
}

/// The mark `stop` leaves while it waits for a container to go: the pid and start time of
/// the `box stop` doing so, so a mark left by a killed `box stop` means nothing.
fn stopping_mark(rec: &Record) -> std::path::PathBuf {
    rec.run_dir.join("stopping")
}

/// Whether a running container is being stopped (podman's `stopping` state): a live
/// `box stop` has sent its stop signal and waits for it to go.
pub fn is_stopping(rec: &Record, st: &State) -> bool {
    if st.status != Status::Running {
        return false;
    }
    let Ok(mark) = std::fs::read_to_string(stopping_mark(rec)) else {
        return false;
    };
    let mut it = mark.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next()) {
        (Some(Ok(pid)), Some(Ok(start))) => {
            i32::try_from(pid)
                .ok()
                .and_then(crate::container::process_start_time)
                == Some(start)
        }
        _ => false,
    }
}

/// The `stopping` mark while it lives.
struct Stopping<'a>(&'a Record);

impl<'a> Stopping<'a> {
    fn mark(rec: &'a Record) -> Stopping<'a> {
        let me = std::process::id();
        if let Some(start) = crate::container::process_start_time(me as i32) {
            let _ = std::fs::create_dir_all(&rec.run_dir);
            let _ = std::fs::write(stopping_mark(rec), format!("{me} {start}\n"));
        }
        Stopping(rec)
    }
}

impl Drop for Stopping<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(stopping_mark(self.0));
    }
}

/// How `stop` ended a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    NotRunning,
    /// Its stop signal did.
    BySignal,
    /// It outlived its stop signal's timeout: SIGKILL did (`signal_name` says which).
    Killed,
}

/// A signal's name for messages: SIGTERM, or its number when it has no name.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// Send `sig` to the container's PID 1 if it is still the process box started; false when
/// it is not running.
pub fn signal(st: &State, sig: i32) -> Result<bool> {
    if !st.is_alive() {
        return Ok(false);
    }
    let Some(pid) = st.pid else { return Ok(false) };
    // SAFETY: kill(2) with a pid and a signal number.
    let r = unsafe { libc::kill(pid, sig) };
    match nix::errno::Errno::result(r) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(Error::Sys {
            what: format!("cannot signal the container's process {pid}"),
            source: e,
        }),
    }
}

/// `box kill`: send `sig` to a running container; one that ends it (KILL, TERM, INT) is a
/// stop request. False when the container is not running.
pub fn kill(rec: &Record, sig: i32) -> Result<bool> {
    let st = status::observe(rec);
    if st.status != Status::Running {
        return Ok(false);
    }
    if matches!(sig, libc::SIGKILL | libc::SIGTERM | libc::SIGINT) {
        request_stop(rec);
    }
    signal(&st, sig)
}

/// Wait until the container is no longer running (its exit recorded, or its pid gone);
/// false when `timeout` passed first.
pub fn wait_not_running(rec: &Record, timeout: Duration) -> bool {
    let start = Instant::now();
    // Its supervisor records the exit, then exits itself: a wait ends when it does.
    let mut pause = Backoff::watching(
        rec.state()
            .ok()
            .filter(|s| s.status == Status::Running)
            .and_then(|s| s.box_pid),
    );
    loop {
        let st = rec.state().unwrap_or_default();
        if st.status != Status::Running {
            // Recorded: its supervisor still says so (died, cleanup events) and exits; what
            // the caller does next (a stop event) comes after that.
            pause.await_exit(Duration::from_millis(500));
            return true;
        }
        if !st.is_alive() {
            // Give the supervisor a moment to record the real exit code.
            if start.elapsed() > timeout.min(Duration::from_secs(2))
                || st
                    .box_pid
                    .is_none_or(|p| crate::container::process_start_time(p).is_none())
            {
                status::observe(rec);
                return true;
            }
        }
        if start.elapsed() > timeout {
            return false;
        }
        pause.sleep();
    }
}

/// Polling that starts at 1 ms and doubles up to 20 ms: a container (or monitor) that goes
/// at once is seen at once, one that takes its time costs no more wake-ups than before.
/// Watching the process whose exit is awaited (a pidfd), a sleep ends when it exits.
struct Backoff {
    next: Duration,
    exit: Option<std::os::fd::OwnedFd>,
}

impl Backoff {
    /// Sleeps cut short when `pid` exits (plain sleeps without one, or without pidfds).
    fn watching(pid: Option<i32>) -> Backoff {
        Backoff {
            next: Duration::from_millis(1),
            exit: pid.and_then(|p| crate::run::sys::pidfd_open(p).ok()),
        }
    }

    fn sleep(&mut self) {
        match &self.exit {
            // Exited: look again now; from then on, plain sleeps.
            Some(fd) => {
                if exited_within(fd, self.next) {
                    self.exit = None;
                }
            }
            None => std::thread::sleep(self.next),
        }
        self.next = (self.next * 2).min(Duration::from_millis(20));
    }

    /// Wait up to `max` for the watched process to exit (at once without one).
    fn await_exit(&mut self, max: Duration) {
        if let Some(fd) = self.exit.take() {
            exited_within(&fd, max);
        }
    }
}

/// Whether the process of pidfd `fd` exits within `wait`.
fn exited_within(fd: &std::os::fd::OwnedFd, wait: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

/// docker stop: the plan's signal, then SIGKILL after its timeout (the container is
/// `stopping` meanwhile, see `is_stopping`). A paused container is thawed first (frozen, it
/// cannot act on its stop signal). Nothing to do for one that is not running.
pub fn stop(rec: &Record, plan: &StopPlan) -> Result<Stopped> {
    request_stop(rec);
    let st = status::observe(rec);
    if st.status != Status::Running {
        return Ok(Stopped::NotRunning);
    }
    let _stopping = Stopping::mark(rec);
    if is_paused(rec, &st) {
        let _ = freezer::thaw(rec, &st);
    }
    if !signal(&st, plan.signal)? {
        // Gone before the signal.
        wait_not_running(rec, KILL_TIMEOUT);
        return Ok(Stopped::BySignal);
    }
    if wait_not_running(rec, plan.timeout) {
        return Ok(Stopped::BySignal);
    }
    kill_and_wait(rec, &rec.state().unwrap_or_default())?;
    Ok(Stopped::Killed)
}

/// `rm -f` of a running container: SIGKILL at once (thawed first if paused), then wait.
pub fn force(rec: &Record, st: &State) -> Result<()> {
    request_stop(rec);
    if is_paused(rec, st) {
        let _ = freezer::thaw(rec, st);
    }
    kill_and_wait(rec, st)
}

fn kill_and_wait(rec: &Record, st: &State) -> Result<()> {
    signal(st, libc::SIGKILL)?;
    if !wait_not_running(rec, KILL_TIMEOUT) {
        return Err(Error::Failed(format!(
            "container {} did not exit after SIGKILL: its process may be stuck in the kernel",
            rec.name()
        )));
    }
    Ok(())
}

/// A state `box wait --condition` waits for (podman's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Created,
    Running,
    Paused,
    /// Not running: created and never started, or exited.
    Stopped,
    Exited,
}

/// `box wait`: block until the container is in one of `conditions` (none: `Stopped`),
/// polling every `interval`. As podman: `Stopped`/`Exited` give the exit code (0 for a
/// container never started, 137 when it was lost with its supervisor), the others -1.
pub fn wait_for(rec: &Record, conditions: &[Condition], interval: Duration) -> Result<i32> {
    let conditions = if conditions.is_empty() {
        &[Condition::Stopped][..]
    } else {
        conditions
    };
    loop {
        let st = status::observe(rec);
        let paused = is_paused(rec, &st);
        for c in conditions {
            let met = match c {
                Condition::Created => st.status == Status::Created,
                Condition::Running => st.status == Status::Running && !paused,
                Condition::Paused => paused,
                Condition::Stopped | Condition::Exited => st.status != Status::Running,
            };
            if met {
                return Ok(match c {
                    Condition::Stopped | Condition::Exited => match st.status {
                        Status::Exited => st.exit_code.unwrap_or(status::LOST_EXIT_CODE),
                        _ => 0,
                    },
                    _ => -1,
                });
            }
        }
        if !rec.dir.join("config.json").exists() {
            return Err(Error::Failed(format!(
                "container {} was removed while waiting",
                rec.name()
            )));
        }
        std::thread::sleep(interval);
    }
}

/// Wait up to `timeout` for the container's monitor to go (it may still be writing the
/// last log lines); true when it is gone.
pub fn wait_monitor_gone(rec: &Record, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Backoff::watching(super::monitor_pid(rec));
    while super::monitor_alive(rec) {
        if Instant::now() >= deadline {
            return false;
        }
        pause.sleep();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: &std::path::Path, stop_signal: Option<&str>, stop_timeout: Option<u64>) -> Record {
        let paths = crate::paths::Paths {
            data: t.join("data"),
            runtime: t.join("run"),
            config: t.join("config"),
        };
        let c = crate::container::Containers::open(&paths).unwrap();
        c.create(None, |id, name| {
            let mut config = crate::container::config_for_tests(id, name);
            config.spec.stop_signal = stop_signal.map(String::from);
            config.spec.stop_timeout = stop_timeout;
            config
        })
        .unwrap()
    }

    #[test]
    fn stop_plan_defaults_flags_and_bad_records() {
        let t = tempfile::tempdir().unwrap();
        let record = |sig, timeout| record(t.path(), sig, timeout);
        let plan = |r: &Record, t| StopPlan::for_record(r, t);
        assert_eq!(
            plan(&record(None, None), None),
            (
                StopPlan {
                    signal: libc::SIGTERM,
                    timeout: DEFAULT_TIMEOUT
                },
                None
            )
        );
        let r = record(Some("SIGUSR1"), Some(30));
        assert_eq!(plan(&r, None).0.signal, libc::SIGUSR1);
        assert_eq!(plan(&r, None).0.timeout, Duration::from_secs(30));
        assert_eq!(
            plan(&r, Some(Duration::from_secs(2))).0.timeout,
            Duration::from_secs(2)
        );
        let (p, warning) = plan(&record(Some("NOPE"), None), None);
        assert_eq!(p.signal, libc::SIGTERM);
        assert!(warning.unwrap().contains("using SIGTERM"));
    }

    #[test]
    fn a_container_without_a_live_pid_is_not_signalled() {
        assert!(!signal(&State::default(), libc::SIGKILL).unwrap());
        let t = tempfile::tempdir().unwrap();
        let rec = record(t.path(), None, None);
        assert!(!kill(&rec, libc::SIGKILL).unwrap());
        assert!(wait_not_running(&rec, Duration::from_millis(1)));
    }

    #[test]
    fn waiting_on_a_created_container_returns_at_once() {
        let t = tempfile::tempdir().unwrap();
        let rec = record(t.path(), None, None);
        let ms = Duration::from_millis(1);
        assert_eq!(wait_for(&rec, &[], ms).unwrap(), 0);
        assert_eq!(wait_for(&rec, &[Condition::Exited], ms).unwrap(), 0);
        assert_eq!(wait_for(&rec, &[Condition::Created], ms).unwrap(), -1);
        assert_eq!(
            wait_for(&rec, &[Condition::Running, Condition::Stopped], ms).unwrap(),
            0
        );
    }

    #[test]
    fn stopping_needs_a_live_stopper_and_a_running_container() {
        let t = tempfile::tempdir().unwrap();
        let rec = record(t.path(), None, None);
        let running = State {
            status: Status::Running,
            ..State::default()
        };
        assert!(!is_stopping(&rec, &running));
        let mark = Stopping::mark(&rec);
        assert!(is_stopping(&rec, &running));
        assert!(!is_stopping(&rec, &State::default()));
        drop(mark);
        assert!(!is_stopping(&rec, &running));
        // A mark left by a `box stop` that is gone means nothing.
        std::fs::write(stopping_mark(&rec), "999999999 1\n").unwrap();
        assert!(!is_stopping(&rec, &running));
    }
}
