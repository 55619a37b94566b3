//! Container lifecycle without a daemon: start, ps, logs, exec, stop, kill, rm, ...
//!
//! The truth about a container is its record plus a liveness check of its pid
//! (`monitor::status::observe`); detached containers run under `box __internal monitor`.
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::args::{
    ContainersArgs, CpArgs, ExecArgs, KillArgs, LogsArgs, PortArgs, PruneArgs, PsArgs, RenameArgs,
    RmArgs, StartArgs, StatsArgs, StopArgs, TopArgs,
};
use crate::container::{Containers, Record, State, Status};
use crate::exit::Coded;
use crate::monitor::{self, log, status};
use crate::storage::usage::disk_usage;
use crate::template::{self, Format};
use crate::units::{self, human_size};

use super::table::{self, align_tabs, columns};

fn containers(ctx: &Ctx) -> Result<Containers> {
    ctx.paths.ensure()?;
    Ok(Containers::open(&ctx.paths)?)
}

/// Run `f` on each named container, printing errors as docker does (one line each) and
/// failing with 125 at the end if any failed.
fn each(
    ctx: &Ctx,
    names: &[String],
    mut f: impl FnMut(&Containers, &Record, &str) -> Result<()>,
) -> Result<u8> {
    let c = containers(ctx)?;
    let mut failed: Option<anyhow::Error> = None;
    for name in names {
        let r = c
            .find(name)
            .map_err(anyhow::Error::from)
            .and_then(|rec| f(&c, &rec, name));
        if let Err(e) = r
            && let Some(prev) = failed.replace(e)
        {
            eprintln!("box: {}", crate::exit::one_line(&prev));
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

// ------------------------------------------------------------------ start / restart

pub fn start(ctx: &Ctx, args: StartArgs) -> Result<u8> {
    if args.attach {
        if args.containers.len() != 1 {
            bail!("box start --attach takes exactly one container");
        }
        let c = containers(ctx)?;
        let rec = c.find(&args.containers[0])?;
        let st = status::observe(&rec);
        if st.status == Status::Running && std::env::var_os(monitor::UNDER_MONITOR_ENV).is_none() {
            bail!(
                "container {} is already running: use box logs -f or box exec to see it",
                rec.name()
            );
        }
        let opts = crate::run::StartOptions {
            attach: true,
            debug: ctx.verbose(),
        };
        let _ = std::fs::remove_file(monitor::stop_mark(&rec));
        return start_attached(ctx, &rec, &opts);
    }
    each(ctx, &args.containers, |_, rec, name| {
        let st = status::observe(rec);
        if st.status != Status::Running {
            monitor::start_detached(&ctx.paths, rec)?;
        }
        println!("{name}");
        Ok(())
    })
}

fn start_attached(ctx: &Ctx, rec: &Record, opts: &crate::run::StartOptions) -> Result<u8> {
    let code = crate::run::start_container(&ctx.paths, rec, opts).map_err(|e| match e {
        crate::run::Error::Exec(c) => anyhow::Error::new(c),
        e => anyhow::Error::new(e),
    })?;
    Ok(code)
}

pub fn restart(ctx: &Ctx, args: StopArgs) -> Result<u8> {
    let names = stop_targets(ctx, &args)?;
    each(ctx, &names, |_, rec, name| {
        stop_one(rec, args.time)?;
        monitor::start_detached(&ctx.paths, rec)?;
        println!("{name}");
        Ok(())
    })
}

// ------------------------------------------------------------------ ps

/// One container as `ps` templates and `--format json` see it.
fn ps_object(rec: &Record, st: &State, now: SystemTime, no_trunc: bool) -> Value {
    let cfg = &rec.config;
    let created = units::parse_rfc3339(&cfg.created);
    let command = cfg.command.join(" ");
    let shown_command = if no_trunc {
        format!("\"{command}\"")
    } else {
        format!("\"{}\"", truncate(&command, 20))
    };
    let paused = is_paused(rec, st);
    let state = if paused {
        "paused".to_string()
    } else {
        st.status.to_string()
    };
    let ports = cfg.spec.publish.join(", ");
    let mounts: Vec<String> = cfg
        .spec
        .mounts
        .iter()
        .map(|m| match m {
            crate::run::Mount::Bind { target, .. } => target.clone(),
            crate::run::Mount::Tmpfs { target, .. } => target.clone(),
        })
        .collect();
    let labels = cfg
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    json!({
        "ID": if no_trunc { rec.id() } else { rec.short_id() },
        "Id": rec.id(),
        "Image": cfg.image_name,
        "ImageID": cfg.image_id,
        "Command": shown_command,
        "Cmd": cfg.command,
        "CreatedAt": cfg.created,
        "Created": created.map(units::unix_secs).unwrap_or(0),
        "RunningFor": created.map(|t| units::ago(t, now)).unwrap_or_default(),
        "Status": status::status_text(st, paused, now),
        "State": state,
        "ExitCode": st.exit_code.unwrap_or(0),
        "Exited": st.status == Status::Exited,
        "StartedAt": st.started_at.clone().unwrap_or_default(),
        "FinishedAt": st.finished_at.clone().unwrap_or_default(),
        "Names": rec.name(),
        "Pid": if st.status == Status::Running { st.pid.unwrap_or(0) } else { 0 },
        "Ports": ports,
        "Mounts": mounts.join(","),
        "Labels": labels,
        "LabelMap": cfg.labels,
        "AutoRemove": cfg.autoremove,
    })
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn matches_filter(rec: &Record, st: &State, obj: &Value, filter: &str) -> Result<bool> {
    let (key, value) = filter
        .split_once('=')
        .with_context(|| format!("invalid filter {filter:?}: use KEY=VALUE"))?;
    Ok(match key {
        "status" => {
            if !["created", "running", "exited", "paused"].contains(&value) {
                bail!("invalid filter status={value}: use created, running, exited or paused");
            }
            obj["State"] == value
        }
        "name" => rec.name().contains(value),
        "id" => rec.id().starts_with(value),
        "ancestor" => {
            let cfg = &rec.config;
            cfg.image == value
                || cfg.image_name == value
                || cfg.image_name.strip_suffix(":latest") == Some(value)
                || cfg.image_name.rsplit('/').next() == Some(value)
                || cfg
                    .image_name
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.strip_suffix(":latest"))
                    == Some(value)
                || cfg
                    .image_id
                    .trim_start_matches("sha256:")
                    .starts_with(value.trim_start_matches("sha256:"))
        }
        "label" => match value.split_once('=') {
            Some((k, v)) => rec.config.labels.get(k).is_some_and(|x| x == v),
            None => rec.config.labels.contains_key(value),
        },
        "exited" => {
            st.status == Status::Exited
                && st.exit_code.map(|c| c.to_string()) == Some(value.to_string())
        }
        other => bail!("unknown filter {other:?}: use status, name, id, ancestor, label or exited"),
    })
}

fn is_paused(rec: &Record, st: &State) -> bool {
    st.status == Status::Running && rec.run_dir.join("paused").exists()
}

pub fn ps(ctx: &Ctx, args: PsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let now = SystemTime::now();
    let mut rows: Vec<(Record, State, Value)> = Vec::new();
    for rec in c.list()? {
        let st = status::observe(&rec);
        let obj = ps_object(&rec, &st, now, args.no_trunc);
        let mut keep = args.all || args.latest || st.status == Status::Running;
        for f in &args.filter {
            if !matches_filter(&rec, &st, &obj, f)? {
                keep = false;
            }
        }
        if keep {
            rows.push((rec, st, obj));
        }
    }
    // Newest first, as docker lists them.
    rows.reverse();
    if args.latest {
        rows.truncate(1);
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for (_, _, obj) in &rows {
            writeln!(out, "{}", obj["ID"].as_str().unwrap_or(""))?;
        }
        return Ok(0);
    }
    match Format::from_arg(args.format.as_deref()) {
        Format::Json => {
            let all: Vec<&Value> = rows.iter().map(|(_, _, o)| o).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
        }
        Format::Template { source, table } => {
            let t = template::Template::parse(&source)?;
            let mut lines = Vec::new();
            if table {
                lines.push(template::table_header(&source));
            }
            for (_, _, obj) in &rows {
                lines.push(t.render(obj)?);
            }
            if table {
                write!(out, "{}", align_tabs(&lines))?;
            } else {
                for l in lines {
                    writeln!(out, "{l}")?;
                }
            }
        }
        Format::Table => {
            let mut header = vec![
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ];
            if args.pid {
                header.push("PID");
            }
            let mut table = vec![table::header(&header)];
            for (_, _, o) in &rows {
                let s = |k: &str| o[k].as_str().unwrap_or("").to_string();
                let mut row = vec![
                    s("ID"),
                    s("Image"),
                    s("Command"),
                    s("RunningFor"),
                    s("Status"),
                    s("Ports"),
                    s("Names"),
                ];
                if args.pid {
                    row.push(o["Pid"].to_string());
                }
                table.push(row);
            }
            write!(out, "{}", columns(&table))?;
        }
    }
    Ok(0)
}

// ------------------------------------------------------------------ logs

pub fn logs(ctx: &Ctx, args: LogsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let path = rec.log_path();
    if !monitor::has_log(&rec) {
        let st = status::observe(&rec);
        if st.status == Status::Running {
            bail!(
                "container {} runs in the foreground: its output goes to the terminal that started it, not to a log (start it with -d to keep a log)",
                rec.name()
            );
        }
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

// ------------------------------------------------------------------ exec

pub fn exec(ctx: &Ctx, args: ExecArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let st = status::observe(&rec);
    if st.status != Status::Running {
        return Err(Coded::new(
            crate::exit::BOX_ERROR,
            format!(
                "container {} is not running: start it first (box start {})",
                rec.name(),
                rec.name()
            ),
        )
        .into());
    }
    if is_paused(&rec, &st) {
        bail!("container {} is paused: unpause it first", rec.name());
    }
    let pid = st.pid.context("the container's record has no pid")?;
    let opts = monitor::exec::Opts {
        command: args.command.clone(),
        interactive: args.interactive,
        tty: args.tty,
        detach: args.detach,
        env: args.env.clone(),
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        privileged: args.privileged,
    };
    Ok(monitor::exec::exec(&rec, pid, &opts)?)
}

// ------------------------------------------------------------------ stop / kill

fn stop_targets(ctx: &Ctx, args: &StopArgs) -> Result<Vec<String>> {
    if !args.all {
        return Ok(args.containers.clone());
    }
    let c = containers(ctx)?;
    Ok(c.list()?
        .into_iter()
        .filter(|r| status::observe(r).status == Status::Running)
        .map(|r| r.name().to_string())
        .collect())
}

fn signal_of(name: &str) -> Result<Signal> {
    crate::cli::args::parse_signal(name).map_err(|e| anyhow::anyhow!(e))
}

/// Send `sig` to the container's PID 1 if it is still the process we started.
/// `sig` is a number: stop signals may be real-time ones, which nix's `Signal` lacks.
fn signal_container(st: &State, sig: i32) -> Result<bool> {
    if !st.is_alive() {
        return Ok(false);
    }
    let Some(pid) = st.pid else { return Ok(false) };
    // SAFETY: kill(2) with a pid and a signal number.
    let r = unsafe { libc::kill(pid, sig) };
    match nix::errno::Errno::result(r) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(anyhow::anyhow!(
            "cannot signal the container's process {pid}: {e}"
        )),
    }
}

/// Wait until the container is no longer running (its exit recorded, or its pid gone).
fn wait_not_running(rec: &Record, timeout: Duration) -> bool {
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

/// docker stop: the stop signal, then SIGKILL after the timeout.
fn stop_one(rec: &Record, time: Option<u64>) -> Result<()> {
    monitor::request_stop(rec);
    let st = status::observe(rec);
    if st.status != Status::Running {
        return Ok(());
    }
    let spec = &rec.config.spec;
    // Checked at create; a record from before that check may hold one box cannot send.
    let sig = match spec
        .stop_signal
        .as_deref()
        .map(crate::cli::args::parse_signal_number)
    {
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("box: warning: the container's stop signal is ignored ({e}); using SIGTERM");
            libc::SIGTERM
        }
        None => libc::SIGTERM,
    };
    let timeout = Duration::from_secs(time.or(spec.stop_timeout).unwrap_or(10));
    // A paused container cannot act on its stop signal.
    if is_paused(rec, &st) {
        let _ = crate::monitor::freezer::thaw(rec, &st);
    }
    if signal_container(&st, sig)? && wait_not_running(rec, timeout) {
        return Ok(());
    }
    signal_container(&rec.state().unwrap_or_default(), libc::SIGKILL)?;
    if !wait_not_running(rec, Duration::from_secs(10)) {
        bail!(
            "container {} did not exit after SIGKILL: its process may be stuck in the kernel",
            rec.name()
        );
    }
    Ok(())
}

pub fn stop(ctx: &Ctx, args: StopArgs) -> Result<u8> {
    let names = stop_targets(ctx, &args)?;
    each(ctx, &names, |_, rec, name| {
        stop_one(rec, args.time)?;
        println!("{name}");
        Ok(())
    })
}

pub fn kill(ctx: &Ctx, args: KillArgs) -> Result<u8> {
    let sig = signal_of(&args.signal)?;
    each(ctx, &args.containers, |_, rec, name| {
        let st = status::observe(rec);
        if st.status != Status::Running {
            bail!("container {} is not running", rec.name());
        }
        if matches!(sig, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
            monitor::request_stop(rec);
        }
        if !signal_container(&st, sig as i32)? {
            bail!("container {} is not running", rec.name());
        }
        println!("{name}");
        Ok(())
    })
}

// ------------------------------------------------------------------ rm / prune

/// Remove one container: refuse a running one unless `force` (then SIGKILL it first); with
/// `volumes`, its anonymous volumes too.
pub fn remove_container(
    ctx: &Ctx,
    c: &Containers,
    rec: &Record,
    force: bool,
    volumes: bool,
) -> Result<()> {
    let st = status::observe(rec);
    if st.status == Status::Running {
        if !force {
            bail!(
                "container {} is running: stop it first (box stop {}) or use box rm -f",
                rec.name(),
                rec.name()
            );
        }
        monitor::request_stop(rec);
        if is_paused(rec, &st) {
            let _ = crate::monitor::freezer::thaw(rec, &st);
        }
        signal_container(&st, libc::SIGKILL)?;
        if !wait_not_running(rec, Duration::from_secs(10)) {
            bail!("container {} did not exit after SIGKILL", rec.name());
        }
    }
    // The monitor may still be writing its last log lines: let it finish first.
    let deadline = Instant::now() + Duration::from_secs(5);
    while monitor::monitor_alive(rec) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::run::remove_container_files(c, rec, &ctx.paths.data, volumes)
        .with_context(|| format!("removing container {}", rec.name()))?;
    Ok(())
}

pub fn rm(ctx: &Ctx, args: RmArgs) -> Result<u8> {
    let names: Vec<String> = if args.all {
        containers(ctx)?
            .list()?
            .into_iter()
            .map(|r| r.id().to_string())
            .collect()
    } else {
        args.containers.clone()
    };
    each(ctx, &names, |c, rec, name| {
        remove_container(ctx, c, rec, args.force, args.volumes)?;
        println!("{name}");
        Ok(())
    })
}

/// What `container prune` removed.
#[derive(Debug, Default, Clone)]
pub struct Pruned {
    pub ids: Vec<String>,
    /// Bytes of upper/rootfs dirs and logs freed (approximate: blocks in use).
    pub reclaimed: u64,
}

/// Remove every container that is not running. For `box container prune` and
/// `box system prune`.
pub fn prune_containers(ctx: &Ctx) -> Result<Pruned> {
    let c = containers(ctx)?;
    let mut pruned = Pruned::default();
    for rec in c.list()? {
        if status::observe(&rec).status == Status::Running {
            continue;
        }
        let size = disk_usage(&rec.dir);
        match remove_container(ctx, &c, &rec, false, false) {
            Ok(()) => {
                pruned.reclaimed += size;
                pruned.ids.push(rec.id().to_string());
            }
            Err(e) => eprintln!("box: {}", crate::exit::one_line(&e)),
        }
    }
    // What removals that failed or were killed left in the trash.
    let trash = c.claim_trash();
    if !trash.is_empty() {
        let paths: Vec<std::path::PathBuf> = trash.iter().map(|t| t.path.clone()).collect();
        let size: u64 = paths.iter().map(|p| disk_usage(p)).sum();
        match crate::storage::remove::remove_trees(&ctx.paths.data, &paths) {
            Ok(()) => pruned.reclaimed += size,
            Err(e) => eprintln!("box: removing containers/.trash: {e}"),
        }
    }
    Ok(pruned)
}

pub fn prune(ctx: &Ctx, _args: PruneArgs) -> Result<u8> {
    let pruned = prune_containers(ctx)?;
    for id in &pruned.ids {
        println!("{id}");
    }
    println!("Total reclaimed space: {}", human_size(pruned.reclaimed));
    Ok(0)
}

// ------------------------------------------------------------------ wait / rename

pub fn wait(ctx: &Ctx, args: ContainersArgs) -> Result<u8> {
    each(ctx, &args.containers, |_, rec, _| {
        loop {
            let st = status::observe(rec);
            if st.status == Status::Exited {
                println!("{}", st.exit_code.unwrap_or(status::LOST_EXIT_CODE));
                return Ok(());
            }
            if !rec.dir.join("config.json").exists() {
                bail!("container {} was removed while waiting", rec.name());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

pub fn rename(ctx: &Ctx, args: RenameArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let mut rec = c.find(&args.container)?;
    c.rename(&mut rec, &args.new_name)?;
    Ok(0)
}

// ------------------------------------------------------------------ pause / unpause

pub fn pause(ctx: &Ctx, args: ContainersArgs) -> Result<u8> {
    each(ctx, &args.containers, |_, rec, name| {
        let st = status::observe(rec);
        if st.status != Status::Running {
            bail!("container {} is not running", rec.name());
        }
        monitor::freezer::freeze(rec, &st)?;
        println!("{name}");
        Ok(())
    })
}

pub fn unpause(ctx: &Ctx, args: ContainersArgs) -> Result<u8> {
    each(ctx, &args.containers, |_, rec, name| {
        let st = status::observe(rec);
        if !is_paused(rec, &st) {
            bail!("container {} is not paused", rec.name());
        }
        monitor::freezer::thaw(rec, &st)?;
        println!("{name}");
        Ok(())
    })
}

// ------------------------------------------------------------------ top / cp / port / stats

pub fn top(ctx: &Ctx, args: TopArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let st = status::observe(&rec);
    let pid = match (st.status, st.pid) {
        (Status::Running, Some(p)) => p,
        _ => bail!("container {} is not running", rec.name()),
    };
    let rows = monitor::top::processes(pid)?;
    let mut table = vec![table::header(&[
        "USER", "PID", "PPID", "HOST PID", "ELAPSED", "TIME", "COMMAND",
    ])];
    for p in rows {
        table.push(vec![
            p.user,
            p.pid.to_string(),
            p.ppid.to_string(),
            p.host_pid.to_string(),
            p.elapsed,
            p.time,
            p.command,
        ]);
    }
    table::print(&table);
    Ok(0)
}

pub fn cp(ctx: &Ctx, args: CpArgs) -> Result<u8> {
    let c = containers(ctx)?;
    monitor::cp::copy(&ctx.paths, &c, &args.src, &args.dest)?;
    Ok(0)
}

pub fn port(ctx: &Ctx, args: PortArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let rec = c.find(&args.container)?;
    let plan = rec.config.spec.network.clone();
    print!("{}", crate::network::format_ports(&plan.ports));
    Ok(0)
}

/// One `stats` sample of a running container.
fn stats_sample(rec: &Record) -> Option<(crate::cgroup::Stats, Instant)> {
    let st = status::observe(rec);
    if st.status != Status::Running {
        return None;
    }
    if let Some(dir) = monitor::freezer::own_cgroup_dir(&st)
        && let Ok(s) = crate::cgroup::stats(&dir)
    {
        return Some((s, Instant::now()));
    }
    // No cgroup of its own: add up its processes from /proc (no limits to show).
    let (cpu, rss, n) = monitor::top::usage(st.pid?).ok()?;
    let s = crate::cgroup::Stats {
        cpu_usage_usec: Some(cpu),
        memory_current: Some(rss),
        pids_current: Some(n),
        ..Default::default()
    };
    Some((s, Instant::now()))
}

fn stats_row(
    rec: &Record,
    a: Option<&(crate::cgroup::Stats, Instant)>,
    b: Option<&(crate::cgroup::Stats, Instant)>,
) -> Value {
    let cpu = match (a, b) {
        (Some((sa, ta)), Some((sb, tb))) => match (sa.cpu_usage_usec, sb.cpu_usage_usec) {
            (Some(x), Some(y)) if tb > ta => {
                let wall = tb.duration_since(*ta).as_micros() as f64;
                Some((y.saturating_sub(x) as f64) / wall * 100.0)
            }
            _ => None,
        },
        _ => None,
    };
    let s = b.map(|(s, _)| s);
    json!({
        "ID": rec.short_id(),
        "Name": rec.name(),
        "CPUPerc": cpu,
        "MemUsage": s.and_then(|s| s.memory_current),
        "MemLimit": s.and_then(|s| s.memory_max),
        "MemPeak": s.and_then(|s| s.memory_peak),
        "PIDs": s.and_then(|s| s.pids_current),
        "CgroupOwn": b.is_some_and(|(s, _)| s.memory_max.is_some() || s.cpu_max.is_some()),
    })
}

pub fn stats(ctx: &Ctx, args: StatsArgs) -> Result<u8> {
    let c = containers(ctx)?;
    let recs: Vec<Record> = if args.containers.is_empty() {
        c.list()?
            .into_iter()
            .filter(|r| status::observe(r).status == Status::Running)
            .collect()
    } else {
        args.containers
            .iter()
            .map(|n| c.find(n))
            .collect::<Result<_, _>>()?
    };
    let dash =
        |v: &Value, f: &dyn Fn(u64) -> String| v.as_u64().map(f).unwrap_or_else(|| "--".into());
    loop {
        let first: Vec<_> = recs.iter().map(stats_sample).collect();
        std::thread::sleep(Duration::from_millis(if args.no_stream {
            500
        } else {
            1000
        }));
        let second: Vec<_> = recs.iter().map(stats_sample).collect();
        let rows: Vec<Value> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| stats_row(r, first[i].as_ref(), second[i].as_ref()))
            .collect();
        match args.format {
            crate::cli::args::OutputFormat::Json => {
                println!("{}", serde_json::to_string_pretty(&rows)?)
            }
            crate::cli::args::OutputFormat::Table => {
                let mut table = vec![table::header(&[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "PIDS",
                ])];
                for r in &rows {
                    let cpu = r["CPUPerc"]
                        .as_f64()
                        .map(|p| format!("{p:.2}%"))
                        .unwrap_or_else(|| "--".into());
                    let limit = dash(&r["MemLimit"], &human_size);
                    let limit = if limit == "--" && r["CgroupOwn"] == true {
                        "unlimited".into()
                    } else {
                        limit
                    };
                    table.push(vec![
                        r["ID"].as_str().unwrap_or("").to_string(),
                        r["Name"].as_str().unwrap_or("").to_string(),
                        cpu,
                        format!("{} / {limit}", dash(&r["MemUsage"], &human_size)),
                        dash(&r["PIDs"], &|n| n.to_string()),
                    ]);
                }
                if !args.no_stream {
                    print!("\x1b[2J\x1b[H");
                }
                table::print(&table);
                if rows.iter().any(|r| r["CgroupOwn"] == false) && args.no_stream {
                    eprintln!(
                        "box: usage summed from /proc: the container has no cgroup of its own, so no limits apply (see box info)"
                    );
                }
            }
        }
        let _ = std::io::stdout().flush();
        if args.no_stream || recs.is_empty() {
            return Ok(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_truncation() {
        assert_eq!(
            truncate("sh -c 'while true; do date; done'", 20)
                .chars()
                .count(),
            20
        );
        assert_eq!(truncate("sh", 20), "sh");
    }
}
