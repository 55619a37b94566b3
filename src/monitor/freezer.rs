//! `box pause`/`box unpause` through the cgroup v2 freezer (`cgroup.freeze`).
//!
//! Only a cgroup of the container's own is ever frozen: if the container shares its
//! cgroup with its supervising box process (or with us), freezing would stop them too,
//! so that is refused with a pointer to `box info`.
use std::fs;
use std::path::PathBuf;

use super::{Ctx, Result, fail};

use crate::container::{Record, State};

const NOT_DELEGATED: &str =
    "pause needs the cgroup freezer: your cgroup is not delegated (see box info)";

fn cgroup_of(pid: i32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|s| s.trim().to_string())
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ")
            .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// The container's own cgroup directory (None when it shares box's or the supervisor's).
pub fn own_cgroup_dir(st: &State) -> Option<PathBuf> {
    let cg = cgroup_of(st.pid?)?;
    let ours = cgroup_of(std::process::id() as i32);
    let supervisor = st.box_pid.and_then(cgroup_of);
    if cg == "/" || Some(&cg) == ours.as_ref() || Some(&cg) == supervisor.as_ref() {
        return None;
    }
    Some(cgroup2_mount()?.join(cg.trim_start_matches('/')))
}

/// The container's own `cgroup.freeze`, or the reason it cannot be used.
fn freeze_file(st: &State) -> Result<PathBuf> {
    let Some(pid) = st.pid else {
        fail!("the container is not running");
    };
    let Some(cg) = cgroup_of(pid) else {
        fail!("{NOT_DELEGATED}")
    };
    let ours = cgroup_of(std::process::id() as i32);
    let supervisor = st.box_pid.and_then(cgroup_of);
    if cg == "/" || Some(&cg) == ours.as_ref() || Some(&cg) == supervisor.as_ref() {
        fail!("{NOT_DELEGATED}");
    }
    let Some(mount) = cgroup2_mount() else {
        fail!("{NOT_DELEGATED}")
    };
    let file = mount.join(cg.trim_start_matches('/')).join("cgroup.freeze");
    let writable = nix::unistd::access(&file, nix::unistd::AccessFlags::W_OK).is_ok();
    if !writable {
        fail!("{NOT_DELEGATED}");
    }
    Ok(file)
}

fn marker(rec: &Record) -> PathBuf {
    rec.run_dir.join("paused")
}

/// Whether `box pause` left its mark (see `stop::is_paused` for a container's state).
pub fn is_marked(rec: &Record) -> bool {
    marker(rec).exists()
}

pub fn freeze(rec: &Record, st: &State) -> Result<()> {
    let file = freeze_file(st)?;
    if let Err(e) = fs::write(&file, "1") {
        fail!("{}: {e}: {NOT_DELEGATED}", file.display());
    }
    let _ = fs::create_dir_all(&rec.run_dir);
    fs::write(marker(rec), b"").ctx(|| "cannot mark the container paused".into())?;
    Ok(())
}

pub fn thaw(rec: &Record, st: &State) -> Result<()> {
    let file = freeze_file(st)?;
    fs::write(&file, "0").ctx(|| file.display().to_string())?;
    let _ = fs::remove_file(marker(rec));
    Ok(())
}
