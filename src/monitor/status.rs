//! The truth about a container's state, and how `ps` words it.
//!
//! A `running` record is only believed while its pid is alive *and* is the same process
//! (the start time in /proc/PID/stat matches the one recorded at start), so a container
//! whose supervising box was SIGKILLed, or that was running when the machine rebooted
//! (runtime dir gone, pids recycled), shows as exited — never as an "improper state".
use std::time::{Duration, SystemTime};

use crate::container::time::parse_rfc3339;
use crate::container::{Record, State, Status};

/// The exit code reported when a container died with its supervising box process and
/// nobody could record its status: the container was killed along with box (it has
/// PR_SET_PDEATHSIG=SIGKILL, or the machine went down), so 128+SIGKILL.
pub const LOST_EXIT_CODE: i32 = 137;

/// What to tell about a container whose exit was never recorded.
pub const LOST_ERROR: &str =
    "exit status not recorded: box's supervising process died and the container was killed with it";

/// The state as it really is: a `running` record whose process is gone is turned into an
/// `exited` one. When the supervising box process is gone too (so nobody else will record
/// the exit), the corrected state is written back.
pub fn observe(rec: &Record) -> State {
    let state = rec.state().unwrap_or_default();
    if state.status != Status::Running || state.is_alive() {
        return state;
    }
    let supervisor_alive = state
        .box_pid
        .is_some_and(|p| crate::container::process_start_time(p).is_some());
    if supervisor_alive {
        // It is about to record the exit itself; report it as exited meanwhile.
        let mut s = state;
        s.status = Status::Exited;
        return s;
    }
    let fixed = |s: &mut State| {
        if s.status == Status::Running && !s.is_alive() {
            s.status = Status::Exited;
            s.exit_code.get_or_insert(LOST_EXIT_CODE);
            if s.finished_at.is_none() {
                s.finished_at = Some(crate::container::time::now_rfc3339());
            }
            s.error.get_or_insert_with(|| LOST_ERROR.to_string());
            s.pid = None;
        }
    };
    match rec.update_state(fixed) {
        Ok(s) => s,
        Err(_) => {
            let mut s = state;
            fixed(&mut s);
            s
        }
    }
}

/// docker's `units.HumanDuration`: "Less than a second", "3 seconds", "About a minute",
/// "5 minutes", "About an hour", "3 hours", "2 days", "3 weeks", "4 months", "2 years".
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let s = secs.round() as u64;
    if secs < 1.0 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let minutes = (secs / 60.0).round() as u64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0).round() as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

fn since(t: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = parse_rfc3339(t?)?;
    Some(now.duration_since(t).unwrap_or_default())
}

/// `CREATED` column: "3 seconds ago".
pub fn ago(t: &str, now: SystemTime) -> String {
    match since(Some(t), now) {
        Some(d) => format!("{} ago", human_duration(d)),
        None => String::new(),
    }
}

/// `STATUS` column: "Up 3 seconds", "Up 2 minutes (Paused)", "Exited (0) 2 minutes ago",
/// "Created".
pub fn status_text(state: &State, paused: bool, now: SystemTime) -> String {
    match state.status {
        Status::Created => "Created".into(),
        Status::Running => {
            let up = since(state.started_at.as_deref(), now)
                .map(human_duration)
                .unwrap_or_else(|| "Less than a second".into());
            if paused {
                format!("Up {up} (Paused)")
            } else {
                format!("Up {up}")
            }
        }
        Status::Exited => {
            let code = state.exit_code.unwrap_or(LOST_EXIT_CODE);
            match since(state.finished_at.as_deref(), now) {
                Some(d) => format!("Exited ({code}) {} ago", human_duration(d)),
                None => format!("Exited ({code})"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::time::format_rfc3339;

    #[test]
    fn durations_like_docker() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(3)), "3 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(150)), "3 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3 * 3600)), "3 hours");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(21 * 86400)), "3 weeks");
        assert_eq!(human_duration(s(100 * 86400)), "3 months");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn status_strings() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let t = |ago: u64| Some(format_rfc3339(now - Duration::from_secs(ago)));
        let created = State::default();
        assert_eq!(status_text(&created, false, now), "Created");
        let running = State {
            status: Status::Running,
            started_at: t(3),
            ..Default::default()
        };
        assert_eq!(status_text(&running, false, now), "Up 3 seconds");
        assert_eq!(status_text(&running, true, now), "Up 3 seconds (Paused)");
        let exited = State {
            status: Status::Exited,
            exit_code: Some(0),
            finished_at: t(120),
            ..Default::default()
        };
        assert_eq!(status_text(&exited, false, now), "Exited (0) 2 minutes ago");
        assert_eq!(ago(&t(5).unwrap(), now), "5 seconds ago");
    }
}
