//! `box logs`: a container's log (written by its monitor, or by `run`/`start -a` in the
//! foreground), `-f` follows it.
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::LogsArgs;
use crate::container::Status;
use crate::monitor::{self, log, status};

pub fn logs(ctx: &Ctx, args: LogsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let driver = rec.config.spec.settings.log.driver;
    if !driver.keeps_log() {
        anyhow::bail!(
            "container {} uses the {} log driver, which keeps no log: create it with --log-driver k8s-file to read its logs",
            rec.name(),
            driver.name()
        );
    }
    let path = rec.log_path();
    if !monitor::has_log(&rec) {
        return Ok(0);
    }
    let opts = log::ReadOptions {
        tail: args.tail,
        since: match &args.since {
            Some(s) => Some(log::parse_since(s, SystemTime::now()).with_context(|| {
                format!("invalid --since {s:?}: use an RFC 3339 time, a Unix time or a duration like 10m")
            })?),
            None => None,
        },
        timestamps: args.timestamps,
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let mut at_start = [true, true];
    // Follow from where the snapshot ends: open the follower before reading.
    let mut follower = args.follow.then(|| log::Follower::at_end(&path));
    for r in log::read_all(&path, &opts)? {
        if log::print_record(&r, &opts, &mut at_start, &mut out, &mut err).is_err() {
            return Ok(0); // our reader went away (e.g. `| head`)
        }
    }
    let _ = out.flush();
    let Some(follower) = follower.as_mut() else {
        return Ok(0);
    };
    let mut done_at: Option<Instant> = None;
    loop {
        let recs = follower.poll()?;
        let got = !recs.is_empty();
        for r in recs {
            if opts
                .since
                .is_some_and(|s| r.system_time().is_some_and(|t| t < s))
            {
                continue;
            }
            if log::print_record(&r, &opts, &mut at_start, &mut out, &mut err).is_err() {
                return Ok(0);
            }
        }
        let _ = out.flush();
        if got {
            continue;
        }
        // The container is gone (and its monitor too, so nothing more will be written):
        // one last read after a short grace, then stop.
        let running =
            status::observe(&rec).status == Status::Running || monitor::monitor_alive(&rec);
        if !running && !rec.dir.join("config.json").exists() {
            return Ok(0);
        }
        if !running {
            match done_at {
                Some(t) if t.elapsed() > Duration::from_millis(300) => return Ok(0),
                Some(_) => {}
                None => done_at = Some(Instant::now()),
            }
        } else {
            done_at = None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
