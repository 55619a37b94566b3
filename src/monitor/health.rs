//! Healthchecks without a daemon: the detached container's monitor runs the check on
//! schedule (`Schedule`, ticked from its poll loop), `box healthcheck run` runs it once by
//! hand (`run_once`). Either way the check is a fresh `box __internal healthcheck ID`
//! (`helper_main`): `monitor::exec` into the container, its stdout and stderr on a pipe
//! to the caller, killed at the timeout (the exec'd command dies with it, PDEATHSIG).
//!
//! ```text
//! <dir>/health.json   `.State.Health`: {Status, FailingStreak, Log: the last 5 results}
//! <dir>/health.lock   held (lock::FileLock) to update it; readers need no lock
//! ```
//! docker's rules: a pass makes the container healthy and resets the streak; a failure
//! during the start period (while still starting) does not count; `retries` failures in a
//! row make it unhealthy. Each start resets the status to starting. Becoming unhealthy
//! triggers `--health-on-failure` (kill, stop, or restart through the monitor's loop), and
//! with `--sdnotify=healthy` the first healthy result sends READY=1.
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Ctx, Error, Result, fail, status};
use crate::container::{Record, Status};
use crate::paths::Paths;
use crate::spec::health::{Healthcheck, OnFailure};

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";

/// The results kept in the log, and the output kept of each (docker's bounds).
const LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// `.State.Health`, as docker and podman show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: u32,
    #[serde(default)]
    pub log: Vec<Probe>,
}

/// One result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

impl Probe {
    pub fn passed(&self) -> bool {
        self.exit_code == 0
    }
}

fn path(rec: &Record) -> std::path::PathBuf {
    rec.dir.join("health.json")
}

/// The recorded health of a container with a healthcheck (None without one).
pub fn read(rec: &Record) -> Option<Health> {
    rec.config.spec.healthcheck.as_ref()?;
    Some(
        fs::read(path(rec))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| Health {
                status: STARTING.into(),
                ..Health::default()
            }),
    )
}

/// Read-modify-write under the lock.
fn update(rec: &Record, f: impl FnOnce(&mut Health)) -> Result<Health> {
    let _lock = crate::lock::FileLock::acquire(
        &rec.dir.join("health.lock"),
        crate::lock::Mode::Exclusive,
        crate::lock::default_timeout(),
    )
    .map_err(|e| Error::Failed(e.to_string()))?;
    let mut h = read(rec).unwrap_or_default();
    f(&mut h);
    let bytes = serde_json::to_vec_pretty(&h).expect("health serializes");
    crate::container::write_atomic(&path(rec), &bytes)?;
    Ok(h)
}

/// At each start: starting again, no streak (the log stays).
pub fn reset(rec: &Record) {
    if rec.config.spec.healthcheck.is_some() {
        let _ = update(rec, |h| {
            h.status = STARTING.into();
            h.failing_streak = 0;
        });
    }
}

/// Whether `now` is within the start period of a container started at `started`.
fn in_start_period(hc: &Healthcheck, started: Option<SystemTime>, now: SystemTime) -> bool {
    started.is_some_and(|s| now.duration_since(s).unwrap_or_default() < hc.start_period())
}

/// Apply one result with docker's rules (pure, for tests).
fn apply(h: &mut Health, hc: &Healthcheck, probe: Probe, in_start: bool) {
    if probe.passed() {
        h.status = HEALTHY.into();
        h.failing_streak = 0;
    } else if !(in_start && h.status == STARTING) {
        h.failing_streak += 1;
        if h.failing_streak >= hc.retries() {
            h.status = UNHEALTHY.into();
        }
    }
    if h.status.is_empty() {
        h.status = STARTING.into();
    }
    h.log.push(probe);
    let extra = h.log.len().saturating_sub(LOG_ENTRIES);
    h.log.drain(..extra);
}

/// Record a result: the new health, and the status before it.
pub fn record(paths: &Paths, rec: &Record, probe: Probe) -> Result<(Health, String)> {
    let Some(hc) = rec.config.spec.healthcheck.as_ref() else {
        fail!("container {} has no healthcheck", rec.name());
    };
    let started = rec
        .state()
        .ok()
        .and_then(|s| s.started_at)
        .and_then(|t| crate::units::parse_rfc3339(&t));
    let in_start = in_start_period(hc, started, SystemTime::now());
    let mut before = String::new();
    let h = update(rec, |h| {
        before = h.status.clone();
        apply(h, hc, probe, in_start);
    })?;
    crate::events::health_status(paths, rec, &h.status);
    Ok((h, before))
}

/// A check under way: the helper process and the pipe with its output.
pub struct Check {
    child: Child,
    out: Option<OwnedFd>,
    buf: Vec<u8>,
    start: SystemTime,
    deadline: Instant,
    timeout: Duration,
}

impl Check {
    /// Start `box __internal healthcheck ID`.
    pub fn spawn(paths: &Paths, rec: &Record, timeout: Duration) -> Result<Check> {
        let (r, w) = std::io::pipe().ctx(|| "pipe".into())?;
        let w: OwnedFd = w.into();
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("box")
            .args(["__internal", "healthcheck", rec.id()])
            .env("BOX_ROOT", &paths.data)
            .env("BOX_RUNROOT", &paths.runtime)
            .env_remove(super::STARTED_FD_ENV)
            .env_remove(super::REPORT_FD_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::from(w.try_clone().ctx(|| "dup".into())?))
            .stderr(Stdio::from(w));
        let child = cmd.spawn().ctx(|| "cannot start the healthcheck".into())?;
        drop(cmd);
        let r: OwnedFd = r.into();
        let _ = nix::fcntl::fcntl(
            &r,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        Ok(Check {
            child,
            out: Some(r),
            buf: Vec::new(),
            start: SystemTime::now(),
            deadline: Instant::now() + timeout,
            timeout,
        })
    }

    fn read_available(&mut self) {
        let Some(fd) = self.out.as_ref() else { return };
        let mut chunk = [0u8; 8192];
        loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => {
                    self.out = None;
                    return;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(self.buf.len());
                    self.buf.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }

    fn probe(&self, code: i32, output: String) -> Probe {
        Probe {
            start: crate::units::format_rfc3339(self.start),
            end: crate::units::now_rfc3339(),
            exit_code: code,
            output,
        }
    }

    /// The result once the check is over (its exit, or the timeout); None while it runs.
    pub fn poll(&mut self) -> Option<Probe> {
        self.read_available();
        match self.child.try_wait() {
            Ok(Some(status)) => {
                // Whatever the command left in the pipe (its descendants may hold it open:
                // do not wait for them).
                self.read_available();
                self.out = None;
                let code = super::exit_code(status) as i32;
                Some(self.probe(code, String::from_utf8_lossy(&self.buf).into_owned()))
            }
            Ok(None) if Instant::now() >= self.deadline => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Some(self.probe(
                    -1,
                    format!(
                        "Health check exceeded timeout ({})",
                        crate::units::go_duration(self.timeout)
                    ),
                ))
            }
            Ok(None) => None,
            Err(e) => Some(self.probe(-1, format!("cannot wait for the healthcheck: {e}"))),
        }
    }

    /// How long until it must be looked at again (output, exit or timeout).
    pub fn wait_for(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50))
    }

    /// Block until the check is over.
    pub fn wait(mut self) -> Probe {
        loop {
            if let Some(p) = self.poll() {
                return p;
            }
            let t = nix::poll::PollTimeout::try_from(self.wait_for())
                .unwrap_or(nix::poll::PollTimeout::ZERO);
            match self.out.as_ref() {
                Some(fd) => {
                    let mut fds = [nix::poll::PollFd::new(
                        fd.as_fd(),
                        nix::poll::PollFlags::POLLIN,
                    )];
                    let _ = nix::poll::poll(&mut fds, t);
                }
                None => std::thread::sleep(self.wait_for()),
            }
        }
    }
}

impl Drop for Check {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `box healthcheck run`: run the check once and record it. Errors (no healthcheck, not
/// running) are box's (125).
pub fn run_once(paths: &Paths, rec: &Record) -> Result<(Probe, Health)> {
    let Some(hc) = rec.config.spec.healthcheck.as_ref() else {
        fail!(
            "container {} has no healthcheck: create it with --health-cmd",
            rec.name()
        );
    };
    let st = status::observe(rec);
    if st.status != Status::Running {
        fail!("container {} is not running: start it first", rec.name());
    }
    if super::stop::is_paused(rec, &st) {
        fail!("container {} is paused: unpause it first", rec.name());
    }
    let probe = Check::spawn(paths, rec, hc.timeout())?.wait();
    let (h, before) = record(paths, rec, probe.clone())?;
    if h.status == UNHEALTHY && before != UNHEALTHY {
        act_once(paths, rec)?;
    }
    Ok((probe, h))
}

/// `--health-on-failure` after a check by hand made the container unhealthy: as the
/// monitor does, but waiting (stop) and starting a detached one again (restart).
fn act_once(paths: &Paths, rec: &Record) -> Result<()> {
    let (plan, _) = super::stop::StopPlan::for_record(rec, None);
    match rec.config.spec.health_on_failure {
        OnFailure::None => {}
        OnFailure::Kill => {
            super::request_stop(rec);
            super::stop::signal(&status::observe(rec), libc::SIGKILL)?;
        }
        OnFailure::Stop => {
            super::stop::stop(rec, &plan)?;
        }
        OnFailure::Restart => {
            let detached = super::monitor_alive(rec);
            super::stop::stop(rec, &plan)?;
            if detached {
                super::stop::wait_monitor_gone(rec, Duration::from_secs(10));
                super::start_detached(paths, rec)?;
            }
        }
    }
    Ok(())
}

/// `box __internal healthcheck ID`: exec the check in the container; its exit code.
pub fn helper_main(paths: &Paths, id: &str) -> Result<u8> {
    let rec = crate::container::Containers::open(paths)?.find(id)?;
    let Some(hc) = rec.config.spec.healthcheck.as_ref() else {
        fail!("container {} has no healthcheck", rec.name());
    };
    let st = status::observe(&rec);
    let Some(pid) = st.pid.filter(|_| st.status == Status::Running) else {
        fail!("container {} is not running", rec.name());
    };
    let opts = super::exec::Opts {
        command: hc.argv(),
        ..Default::default()
    };
    super::exec::exec(&rec, pid, &opts)
}

/// A foreground container (`box run` without `-d`, e.g. the main process of a systemd
/// unit) has no monitor: its supervising box starts this loop as a child (`box __internal
/// health-loop ID`), which dies with it. `restart` here only stops the container: the
/// supervisor exits and systemd's `Restart=` decides.
pub fn spawn_loop(paths: &Paths, rec: &Record) -> Option<Child> {
    rec.config.spec.healthcheck.as_ref()?.interval()?;
    let supervisor = std::process::id().to_string();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("box")
        .args(["__internal", "health-loop", rec.id(), &supervisor])
        .env("BOX_ROOT", &paths.data)
        .env("BOX_RUNROOT", &paths.runtime)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: prctl with integer arguments between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
    cmd.spawn().ok()
}

/// `box __internal health-loop ID SUPERVISOR`: the schedule, until the container is gone.
pub fn loop_main(paths: &Paths, id: &str, supervisor: i32) -> Result<u8> {
    let rec = crate::container::Containers::open(paths)?.find(id)?;
    let Some(mut schedule) = Schedule::new(&rec, supervisor) else {
        return Ok(0);
    };
    loop {
        std::thread::sleep(schedule.wait_for().min(Duration::from_millis(500)));
        let st = status::observe(&rec);
        let ours = st.box_pid == Some(supervisor);
        if crate::container::process_start_time(supervisor).is_none()
            || (st.status != Status::Running && schedule.running.is_none() && ours)
        {
            return Ok(0);
        }
        schedule.tick(paths, &rec);
    }
}

/// The monitor's side: when to check, the check under way, what to do about the result.
pub struct Schedule {
    hc: Healthcheck,
    on_failure: OnFailure,
    notify_healthy: bool,
    next: Instant,
    running: Option<Check>,
    /// The container's supervisor (`box start --attach`): its pid is MAINPID.
    supervisor: i32,
    /// SIGKILL then, if still running (after the stop signal of `stop`/`restart`).
    kill_at: Option<Instant>,
    /// `--health-on-failure=restart` stopped the container: the monitor starts it again.
    pub restart: bool,
}

impl Schedule {
    /// None when the container has no scheduled check.
    pub fn new(rec: &Record, supervisor: i32) -> Option<Schedule> {
        let hc = rec.config.spec.healthcheck.clone()?;
        let first = hc.start_interval().or(hc.interval())?;
        Some(Schedule {
            notify_healthy: rec.config.spec.sdnotify == crate::spec::SdNotify::Healthy,
            on_failure: rec.config.spec.health_on_failure,
            next: Instant::now() + first,
            hc,
            running: None,
            supervisor,
            kill_at: None,
            restart: false,
        })
    }

    /// How long the monitor's poll may sleep.
    pub fn wait_for(&self) -> Duration {
        let mut d = match &self.running {
            Some(c) => c.wait_for(),
            None => self.next.saturating_duration_since(Instant::now()),
        };
        if let Some(k) = self.kill_at {
            d = d.min(k.saturating_duration_since(Instant::now()));
        }
        d.max(Duration::from_millis(10))
    }

    /// Do what is due: start a check, collect one, act on the result.
    pub fn tick(&mut self, paths: &Paths, rec: &Record) {
        let now = Instant::now();
        if let Some(k) = self.kill_at
            && now >= k
        {
            self.kill_at = None;
            let _ = super::stop::signal(&status::observe(rec), libc::SIGKILL);
        }
        if let Some(check) = self.running.as_mut() {
            let Some(probe) = check.poll() else { return };
            self.running = None;
            let Ok((h, before)) = record(paths, rec, probe) else {
                self.schedule(false);
                return;
            };
            if h.status == HEALTHY && self.notify_healthy {
                self.notify_healthy = false;
                if let Err(e) = crate::systemd::ready(self.supervisor as u32) {
                    let _ = e; // no notify socket: nothing to tell
                }
            }
            if h.status == UNHEALTHY && before != UNHEALTHY {
                self.act(rec);
            }
            self.schedule(h.status == STARTING);
            return;
        }
        if now < self.next || self.kill_at.is_some() {
            return;
        }
        let st = status::observe(rec);
        if st.status != Status::Running
            || st.box_pid != Some(self.supervisor)
            || super::stop::is_paused(rec, &st)
        {
            // Not (yet, or any more) ours to check: look again soon.
            self.next = now + Duration::from_millis(200);
            return;
        }
        match Check::spawn(paths, rec, self.hc.timeout()) {
            Ok(c) => self.running = Some(c),
            Err(_) => self.schedule(false),
        }
    }

    fn schedule(&mut self, starting: bool) {
        let every = match (starting, self.hc.start_interval(), self.hc.interval()) {
            (true, Some(si), _) => si,
            (_, _, Some(i)) => i,
            (_, Some(si), None) => si,
            (_, None, None) => Duration::from_secs(30),
        };
        self.next = Instant::now() + every;
    }

    /// `--health-on-failure`.
    fn act(&mut self, rec: &Record) {
        let (plan, _) = super::stop::StopPlan::for_record(rec, None);
        match self.on_failure {
            OnFailure::None => {}
            OnFailure::Kill => {
                super::request_stop(rec);
                let _ = super::stop::signal(&status::observe(rec), libc::SIGKILL);
            }
            OnFailure::Stop => {
                super::request_stop(rec);
                let _ = super::stop::signal(&status::observe(rec), plan.signal);
                self.kill_at = Some(Instant::now() + plan.timeout);
            }
            OnFailure::Restart => {
                self.restart = true;
                let _ = super::stop::signal(&status::observe(rec), plan.signal);
                self.kill_at = Some(Instant::now() + plan.timeout);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        Probe {
            exit_code: code,
            ..Probe::default()
        }
    }

    #[test]
    fn dockers_rules() {
        let hc = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            retries: 2,
            ..Default::default()
        };
        let mut h = Health {
            status: STARTING.into(),
            ..Health::default()
        };
        // Failures in the start period do not count while starting.
        apply(&mut h, &hc, probe(1), true);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        apply(&mut h, &hc, probe(1), false);
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        apply(&mut h, &hc, probe(1), false);
        assert_eq!((h.status.as_str(), h.failing_streak), (UNHEALTHY, 2));
        apply(&mut h, &hc, probe(0), false);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Once healthy, the start period no longer shields failures.
        apply(&mut h, &hc, probe(1), true);
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 1));
        for _ in 0..5 {
            apply(&mut h, &hc, probe(0), false);
        }
        assert_eq!(h.log.len(), LOG_ENTRIES);
        let v = serde_json::to_value(&h).unwrap();
        assert!(v.get("FailingStreak").is_some() && v["Log"][0].get("ExitCode").is_some());
    }
}
