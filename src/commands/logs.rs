//! `box logs`: containers' logs (written by their monitors, or by `run`/`start -a` in the
//! foreground), `-f` follows them. Several containers: each line prefixed with its
//! container's short id, or name with `--names` (podman).
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use super::containers;
use crate::cli::Ctx;
use crate::cli::args::LogsArgs;
use crate::container::{Record, Status};
use crate::monitor::{self, log, status};

/// One container's log being read.
struct Source {
    rec: Record,
    opts: log::ReadOptions,
    at_start: [bool; 2],
    follower: Option<log::Follower>,
    done_at: Option<Instant>,
    finished: bool,
}

fn time_arg(flag: &str, s: &Option<String>) -> Result<Option<SystemTime>> {
    s.as_ref()
        .map(|s| {
            log::parse_since(s, SystemTime::now()).with_context(|| {
                format!("invalid --{flag} {s:?}: use an RFC 3339 time, a Unix time or a duration like 10m")
            })
        })
        .transpose()
}

pub fn logs(ctx: &Ctx, args: LogsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let recs: Vec<Record> = if args.latest {
        match super::latest(&c, |r| !r.config.spec.is_infra())? {
            Some(rec) => vec![rec],
            None => bail!("no containers: --latest has nothing to show"),
        }
    } else {
        args.containers
            .iter()
            .map(|n| c.find(n))
            .collect::<Result<_, _>>()?
    };
    for rec in &recs {
        let driver = rec.config.spec.settings.log.driver;
        if !driver.keeps_log() {
            bail!(
                "container {} uses the {} log driver, which keeps no log: create it with --log-driver k8s-file to read its logs",
                rec.name(),
                driver.name()
            );
        }
    }
    let multi = recs.len() > 1;
    let base = log::ReadOptions {
        tail: args.tail,
        since: time_arg("since", &args.since)?,
        until: time_arg("until", &args.until)?,
        timestamps: args.timestamps,
        prefix: String::new(),
    };
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let mut sources: Vec<Source> = Vec::new();
    for rec in recs {
        if !monitor::has_log(&rec) {
            continue;
        }
        let prefix = match (multi, args.names) {
            (false, _) => String::new(),
            (true, true) => format!("{} ", rec.name()),
            (true, false) => format!("{} ", rec.short_id()),
        };
        let opts = log::ReadOptions {
            prefix,
            ..base.clone()
        };
        // Follow from where the snapshot ends: open the follower before reading (not past
        // --until: nothing after it is shown).
        let follower =
            (args.follow && base.until.is_none()).then(|| log::Follower::at_end(&rec.log_path()));
        let mut s = Source {
            rec,
            opts,
            at_start: [true, true],
            follower,
            done_at: None,
            finished: false,
        };
        for r in log::read_all(&s.rec.log_path(), &s.opts)? {
            if log::print_record(&r, &s.opts, &mut s.at_start, &mut out, &mut err).is_err() {
                return Ok(0); // our reader went away (e.g. `| head`)
            }
        }
        sources.push(s);
    }
    let _ = out.flush();
    sources.retain(|s| s.follower.is_some());
    while !sources.is_empty() {
        let mut got = false;
        for s in sources.iter_mut() {
            let Some(follower) = s.follower.as_mut() else {
                continue;
            };
            for r in follower.poll()? {
                got = true;
                if !s.opts.keeps(&r) {
                    continue;
                }
                if log::print_record(&r, &s.opts, &mut s.at_start, &mut out, &mut err).is_err() {
                    return Ok(0);
                }
            }
        }
        let _ = out.flush();
        if got {
            continue;
        }
        // A container that is gone (and its monitor too, so nothing more will be written):
        // one last read after a short grace, then it is done.
        for s in sources.iter_mut() {
            let running =
                status::observe(&s.rec).status == Status::Running || monitor::monitor_alive(&s.rec);
            if !running && !s.rec.dir.join("config.json").exists() {
                s.finished = true;
            } else if !running {
                match s.done_at {
                    Some(t) if t.elapsed() > Duration::from_millis(300) => s.finished = true,
                    Some(_) => {}
                    None => s.done_at = Some(Instant::now()),
                }
            } else {
                s.done_at = None;
            }
        }
        sources.retain(|s| !s.finished);
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}
