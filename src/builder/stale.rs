//! The hidden `box-build-*` containers of a build that was killed (SIGKILL mid-RUN): each
//! records its builder as `pid:starttime` in a label, so a container whose builder is gone
//! is known exactly (a reused pid has another start time). The next build, `container
//! prune`/`system prune` and `system check --repair` stop and remove them.
use std::time::Duration;

use crate::container::{Containers, Record, Status};
use crate::paths::Paths;

/// The label naming the box process that builds with the container.
pub(crate) const BUILDER_LABEL: &str = "box.build.builder";
/// The name prefix of build containers.
pub(crate) const PREFIX: &str = "box-build-";

/// This process as a builder: `pid:starttime`.
pub(crate) fn builder_id() -> String {
    let pid = std::process::id() as i32;
    let start = crate::container::process_start_time(pid).unwrap_or(0);
    format!("{pid}:{start}")
}

/// A `box build` step's container (podman's "external" containers: `ps` shows them only
/// with `--external`).
pub fn is_build_container(rec: &Record) -> bool {
    rec.config.labels.contains_key(BUILDER_LABEL)
}

/// A build container whose builder process is gone (one without the label, from an older
/// box, counts as gone).
pub fn is_stale(rec: &Record) -> bool {
    if !rec.name().starts_with(PREFIX) {
        return false;
    }
    let alive = rec
        .config
        .labels
        .get(BUILDER_LABEL)
        .and_then(|v| v.split_once(':'))
        .and_then(|(p, s)| Some((p.parse::<i32>().ok()?, s.parse::<u64>().ok()?)))
        .is_some_and(|(pid, start)| crate::container::process_start_time(pid) == Some(start));
    !alive
}

/// Stop (SIGKILL) and remove every stale build container; returns their ids. A container
/// that cannot be removed is reported on stderr and left for the next try.
pub fn remove_stale(paths: &Paths) -> Vec<String> {
    let Ok(containers) = Containers::open(paths) else {
        return Vec::new();
    };
    let Ok(list) = containers.list() else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for rec in list.into_iter().filter(is_stale) {
        let st = crate::monitor::status::observe(&rec);
        if st.status == Status::Running
            && let Err(e) = crate::monitor::stop::force(&rec, &st)
        {
            eprintln!("box: stale build container {}: {e}", rec.name());
            continue;
        }
        crate::monitor::stop::wait_monitor_gone(&rec, Duration::from_secs(5));
        match crate::run::remove_container_files(&containers, &rec, &paths.data, false) {
            Ok(()) => removed.push(rec.id().to_string()),
            Err(e) => eprintln!("box: stale build container {}: {e}", rec.name()),
        }
    }
    removed
}
