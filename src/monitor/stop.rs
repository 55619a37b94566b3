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
    loop {
        let st = rec.state().unwrap_or_default();
        if st.status != Status::Running {
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// docker stop: the plan's signal, then SIGKILL after its timeout. A paused container is
/// thawed first (frozen, it cannot act on its stop signal). Nothing to do for one that is
/// not running.
pub fn stop(rec: &Record, plan: &StopPlan) -> Result<()> {
    request_stop(rec);
    let st = status::observe(rec);
    if st.status != Status::Running {
        return Ok(());
    }
    if is_paused(rec, &st) {
        let _ = freezer::thaw(rec, &st);
    }
    if signal(&st, plan.signal)? && wait_not_running(rec, plan.timeout) {
        return Ok(());
    }
    kill_and_wait(rec, &rec.state().unwrap_or_default())
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

/// `box wait`: block until the container exits; its exit code (137 when it was lost with
/// its supervisor).
pub fn wait_exit(rec: &Record) -> Result<i32> {
    loop {
        let st = status::observe(rec);
        if st.status == Status::Exited {
            return Ok(st.exit_code.unwrap_or(status::LOST_EXIT_CODE));
        }
        if !rec.dir.join("config.json").exists() {
            return Err(Error::Failed(format!(
                "container {} was removed while waiting",
                rec.name()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait up to `timeout` for the container's monitor to go (it may still be writing the
/// last log lines); true when it is gone.
pub fn wait_monitor_gone(rec: &Record, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while super::monitor_alive(rec) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
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
}
