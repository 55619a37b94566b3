//! The truth about a container's state, and how `ps` words it.
//!
//! A `running` record is only believed while its pid is alive *and* is the same process
//! (the start time in /proc/PID/stat matches the one recorded at start), so a container
//! whose supervising box was SIGKILLed, or that was running when the machine rebooted
//! (runtime dir gone, pids recycled), shows as exited — never as an "improper state".
use std::time::{Duration, SystemTime};

use crate::container::{Record, State, Status};
use crate::units::{human_duration, parse_rfc3339};

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
                s.finished_at = Some(crate::units::now_rfc3339());
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

fn since(t: Option<&str>, now: SystemTime) -> Option<Duration> {
    let t = parse_rfc3339(t?)?;
    Some(now.duration_since(t).unwrap_or_default())
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
    use crate::units::format_rfc3339;

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
    }
}
