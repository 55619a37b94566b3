//! Where a container's cgroup lives, and its life: prepare → attach → cleanup.
//!
//! 1. Inside a delegated subtree (box's own cgroup is writable and has the controllers the
//!    limits need — a systemd unit with `Delegate=yes`, or a scope box created earlier):
//!    box moves itself (and, if the kernel insists, every other process there) into the
//!    sibling leaf [`SUPERVISOR_LEAF`] (the no-internal-processes rule), enables the
//!    controllers in `cgroup.subtree_control`, creates the leaf `box-<id>` and writes the limits.
//! 2. From a non-delegated cgroup on a systemd host (an interactive login's session-N.scope),
//!    when limits were asked for: the user's systemd starts a transient `box-<id>.scope` with
//!    `Delegate=yes` holding box, then as in 1. Never from inside a service unit: that would
//!    take the container out of the unit (the fix there is `Delegate=yes` on the unit).
//! 3. Otherwise (cgroup v1, hybrid, no systemd): no cgroup of our own when no limit was asked
//!    for; an error naming the missing controllers and the fix when one was.
//!
//! A pod's containers (infra included) share a parent in case 1: `<base>/box-pod-<pod id>/`
//! holds their leaves (created with the first, removed with the last when empty); the
//! pod's limits (`pod create --memory`) are written there when its infra starts. Case 2
//! (a scope per container) and case 3 have no pod cgroup: pod limits are refused there.
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::detect::{Hierarchy, Summary};
use super::limits::Limits;
use super::stats::{Stats, keyed, stats};
use super::{Error, Missing};

/// The leaf box moves itself into inside a delegated cgroup, next to the container leaves.
pub const SUPERVISOR_LEAF: &str = "box-supervisor";

/// Controllers enabled for every container where available (for stats and the pids default),
/// besides the ones its limits need.
const ALWAYS: &[&str] = &["cpu", "memory", "pids"];

/// A container's cgroup, or none (`Plan::none()`: run in box's own cgroup, no limits).
#[derive(Debug)]
pub struct Plan {
    /// Made at prepare, or (`--cgroups=no-conmon`) at attach from `pending`.
    leaf: std::cell::OnceCell<Leaf>,
    pending: Option<PendingScope>,
}

/// `--cgroups=no-conmon`: a transient scope systemd makes for the container's own pid at
/// attach (box stays where it is).
#[derive(Debug)]
struct PendingScope {
    unit: String,
    mount: PathBuf,
    limits: Limits,
}

#[derive(Debug)]
struct Leaf {
    /// Absolute path, e.g. /sys/fs/cgroup/user.slice/.../box-<id>.
    path: PathBuf,
    /// Path relative to the cgroup2 root, as /proc/PID/cgroup shows it.
    rel: String,
    dir: OwnedFd,
    controllers: Vec<String>,
    /// The transient scope box asked systemd for, if it did.
    scope: Option<String>,
    /// The pod's cgroup holding the leaf, removed after it when it is empty.
    group: Option<PathBuf>,
    /// memory.events oom_kill seen before cleanup (the files are gone afterwards).
    oom_killed: std::cell::Cell<bool>,
    removed: bool,
    /// The leaf is systemd's scope itself (no-conmon): emptied at cleanup, removed by
    /// systemd.
    systemd_owned: bool,
}

/// Asks systemd for a delegated scope `unit` holding `pid`; returns box's new cgroup
/// (relative to the mount), or None when there is no systemd to ask.
pub(crate) type StartScope<'a> = &'a dyn Fn(&str, u32) -> Result<Option<String>, Error>;

/// What prepare needs to know about the host; `Host::current()` in real life, fakes in tests.
pub(crate) struct Host<'a> {
    pub summary: Summary,
    /// The pid to move (box itself).
    pub pid: u32,
    pub writable: &'a dyn Fn(&Path) -> bool,
    pub start_scope: StartScope<'a>,
    /// Whether the user's systemd can be asked for scopes.
    pub systemd: bool,
}

impl Plan {
    /// No cgroup of our own: the container stays in box's cgroup.
    pub fn none() -> Plan {
        Plan {
            leaf: std::cell::OnceCell::new(),
            pending: None,
        }
    }

    pub fn is_none(&self) -> bool {
        self.leaf.get().is_none() && self.pending.is_none()
    }

    /// The container's cgroup directory (absolute), for `box inspect`/`box stats`.
    pub fn path(&self) -> Option<&Path> {
        self.leaf.get().map(|l| l.path.as_path())
    }

    /// The container's cgroup as /proc/PID/cgroup names it (relative to the cgroup2 root).
    pub fn cgroup(&self) -> Option<&str> {
        self.leaf.get().map(|l| l.rel.as_str())
    }

    /// The systemd scope box created for this container, if any.
    pub fn scope(&self) -> Option<&str> {
        self.leaf.get().and_then(|l| l.scope.as_deref())
    }

    /// Controllers enabled in the container's cgroup.
    pub fn controllers(&self) -> &[String] {
        self.leaf.get().map_or(&[], |l| l.controllers.as_slice())
    }

    /// An O_DIRECTORY fd of the leaf, for clone3(CLONE_INTO_CGROUP).
    pub fn dir_fd(&self) -> Option<BorrowedFd<'_>> {
        self.leaf.get().map(|l| l.dir.as_fd())
    }

    /// Move `pid` (the container's first process, before it is released) into the leaf.
    pub fn attach(&self, pid: i32) -> Result<(), Error> {
        if let Some(p) = &self.pending
            && self.leaf.get().is_none()
        {
            let leaf = scope_leaf(p, pid)?;
            let _ = self.leaf.set(leaf);
            return Ok(());
        }
        let Some(l) = self.leaf.get() else {
            return Ok(());
        };
        write_file(&l.path.join("cgroup.procs"), &pid.to_string()).map_err(|e| Error::Attach {
            pid,
            path: l.path.clone(),
            source: e,
        })
    }

    /// Current usage (None without a cgroup of our own, or after cleanup).
    pub fn stats(&self) -> Option<Stats> {
        let l = self.leaf.get().filter(|l| !l.removed)?;
        stats(&l.path).ok()
    }

    /// Whether the OOM killer killed a process of the container (memory.events oom_kill > 0).
    /// Valid before and after cleanup.
    pub fn oom_killed(&self) -> bool {
        match self.leaf.get() {
            None => false,
            Some(l) if l.removed => l.oom_killed.get(),
            Some(l) => {
                if read_oom_kill(&l.path) {
                    l.oom_killed.set(true);
                }
                l.oom_killed.get()
            }
        }
    }

    /// After the container exited: kill what is left in the leaf (cgroup.kill), wait until it
    /// is empty and remove it. Idempotent.
    pub fn cleanup(&mut self) -> Result<(), Error> {
        let Some(l) = self.leaf.get_mut() else {
            return Ok(());
        };
        if l.removed {
            return Ok(());
        }
        if read_oom_kill(&l.path) {
            l.oom_killed.set(true);
        }
        if l.systemd_owned {
            empty_scope(&l.path);
        } else {
            remove_leaf(&l.path)?;
        }
        l.removed = true;
        if let Some(g) = &l.group {
            // The pod's other containers may still be in it (EBUSY), or one may just be
            // creating its leaf (it retries if this wins): either is fine.
            let _ = std::fs::remove_dir(g);
        }
        Ok(())
    }
}

fn read_oom_kill(path: &Path) -> bool {
    std::fs::read_to_string(path.join("memory.events"))
        .map(|t| keyed(&t).iter().any(|(k, v)| k == "oom_kill" && *v > 0))
        .unwrap_or(false)
}

/// no-conmon: systemd starts `p.unit` holding the container's `pid` (box stays where it
/// is); once the pid is in it, the scope's cgroup is the container's leaf.
fn scope_leaf(p: &PendingScope, pid: i32) -> Result<Leaf, Error> {
    crate::systemd::start_delegated_scope(&p.unit, pid as u32, "box container")
        .map_err(|e| Error::Scope(e.to_string()))?;
    let want = format!("/{}", p.unit);
    let deadline = Instant::now() + Duration::from_secs(10);
    let rel = loop {
        let own = super::detect::own_cgroup(Path::new(&format!("/proc/{pid}/cgroup")));
        if let Some(o) = own.filter(|o| o.ends_with(&want)) {
            break o;
        }
        if Instant::now() > deadline {
            return Err(Error::Scope(format!(
                "systemd did not move the container into {} within 10 s",
                p.unit
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let path = join(&p.mount, &rel);
    let controllers = controllers_of(&path, "cgroup.controllers");
    let missing = missing_in(&p.limits, &controllers);
    if !missing.is_empty() {
        return Err(refusal(&missing, Why::ScopeLacks(p.unit.clone())));
    }
    let dir = open_dir(&path)?;
    let has_file = |f: &str| path.join(f).exists();
    for (file, value) in p.limits.writes(&controllers, &has_file) {
        let explicit = !matches!(
            (file, p.limits.pids),
            ("pids.max", super::limits::Pids::Default)
        );
        if let Err(e) = write_file(&path.join(file), &value)
            && explicit
        {
            return Err(Error::Write {
                path: path.join(file),
                value,
                source: e,
            });
        }
    }
    Ok(Leaf {
        path,
        rel,
        dir,
        controllers,
        scope: Some(p.unit.clone()),
        group: None,
        oom_killed: std::cell::Cell::new(false),
        removed: false,
        systemd_owned: true,
    })
}

/// Kill what is left in a scope's cgroup and wait (up to 5 s) until it is empty.
fn empty_scope(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut killed = false;
    while has_procs(path) && Instant::now() < deadline {
        if !killed {
            kill_all(path);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kill every process in `path`, wait for it to empty, rmdir it.
pub(crate) fn remove_leaf(path: &Path) -> Result<(), Error> {
    if !path.exists() {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut killed = false;
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                if !killed {
                    kill_all(path);
                    killed = true;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(Error::Remove {
                    path: path.to_path_buf(),
                    source: e,
                });
            }
        }
    }
}

fn kill_all(path: &Path) {
    if write_file(&path.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    // Kernels before 5.14: SIGKILL one by one (the container is frozen in no way, but its
    // PID 1 is gone already, so the pid namespace is being torn down anyway).
    if let Ok(t) = std::fs::read_to_string(path.join("cgroup.procs")) {
        for pid in t.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Write a cgroup interface file (never creating it on the real cgroupfs).
pub(crate) fn write_file(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(cfg!(test))
        .truncate(cfg!(test))
        .open(path)?;
    f.write_all(value.as_bytes())
}

fn controllers_of(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn join(mount: &Path, rel: &str) -> PathBuf {
    mount.join(rel.trim_start_matches('/'))
}

fn parent_rel(rel: &str) -> Option<&str> {
    let r = rel.trim_end_matches('/');
    let (p, _) = r.rsplit_once('/')?;
    Some(if p.is_empty() { "/" } else { p })
}

fn base_name(rel: &str) -> &str {
    rel.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

fn missing_in(limits: &Limits, have: &[String]) -> Vec<(&'static str, &'static str)> {
    limits
        .required()
        .into_iter()
        .filter(|(c, _)| !have.iter().any(|h| h == c))
        .collect()
}

/// The real host: /sys/fs/cgroup, /proc/self/cgroup, the user's systemd over D-Bus.
/// A container's pod: its cgroup (where there is one) is the container's parent.
#[derive(Debug, Clone, Copy)]
pub struct PodGroup<'a> {
    /// The pod's id.
    pub id: &'a str,
    /// The pod cgroup's limits (given by the infra container, which starts first).
    pub limits: Option<&'a Limits>,
}

pub fn prepare(limits: &Limits, container_id: &str, pod: Option<PodGroup>) -> Result<Plan, Error> {
    prepare_mode(limits, container_id, pod, super::Mode::Enabled)
}

/// `prepare` as `--cgroups` says (`Disabled` is the caller's: no plan at all).
pub fn prepare_mode(
    limits: &Limits,
    container_id: &str,
    pod: Option<PodGroup>,
    mode: super::Mode,
) -> Result<Plan, Error> {
    let writable = |d: &Path| super::detect::writable(d);
    let cgroupfs = super::manager() == super::Manager::Cgroupfs;
    let start_scope = |unit: &str, pid: u32| -> Result<Option<String>, Error> {
        if cgroupfs {
            return Err(Error::Manager(
                "cgroupfs: the limits need controllers your cgroup does not delegate, and the cgroupfs manager asks systemd for no delegated scope: run box in a unit or scope with Delegate=yes, or leave out --cgroup-manager".into(),
            ));
        }
        if !crate::systemd::booted() {
            return Ok(None);
        }
        crate::systemd::start_delegated_scope(unit, pid, "box container")
            .map_err(|e| Error::Scope(e.to_string()))?;
        // systemd moves the pid when the scope's start job runs; wait for it.
        let want = format!("/{unit}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let own = super::detect::own_cgroup(Path::new("/proc/self/cgroup"));
            if let Some(o) = own.filter(|o| o.ends_with(&want)) {
                return Ok(Some(o));
            }
            if Instant::now() > deadline {
                return Err(Error::Scope(format!(
                    "systemd did not move box into {unit} within 10 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let host = Host {
        summary: super::detect(),
        pid: std::process::id(),
        writable: &writable,
        start_scope: &start_scope,
        systemd: !cgroupfs && crate::systemd::booted(),
    };
    match mode {
        super::Mode::Disabled => Ok(Plan::none()),
        super::Mode::NoConmon => prepare_no_conmon(&host, limits, container_id),
        super::Mode::Split => prepare_split(&host, limits, container_id, pod),
        super::Mode::Enabled => prepare_in(&host, limits, container_id, pod),
    }
}

/// `--cgroups=no-conmon`: box is never moved; the container gets a scope of its own from
/// the user's systemd at attach. Without systemd (or cgroup v2) it stays in box's cgroup,
/// which only a limit makes an error.
pub(crate) fn prepare_no_conmon(host: &Host, limits: &Limits, id: &str) -> Result<Plan, Error> {
    let s = &host.summary;
    let (Hierarchy::Unified, Some(mount)) = (s.hierarchy, &s.v2_mount) else {
        return refuse_or_none(limits, s, &[], Why::NotUnified(s.hierarchy));
    };
    if !host.systemd {
        return refuse_or_none(limits, s, &[], Why::NoSystemd);
    }
    Ok(Plan {
        leaf: std::cell::OnceCell::new(),
        pending: Some(PendingScope {
            unit: format!("box-{id}.scope"),
            mount: mount.clone(),
            limits: limits.clone(),
        }),
    })
}

/// `--cgroups=split`: the container's leaf below box's own (delegated) cgroup, box in the
/// supervisor leaf beside it, as in a `Delegate=yes` unit; never a scope elsewhere.
pub(crate) fn prepare_split(
    host: &Host,
    limits: &Limits,
    id: &str,
    pod: Option<PodGroup>,
) -> Result<Plan, Error> {
    let s = &host.summary;
    let fix = "run box where its cgroup is delegated: a systemd service with Delegate=yes \
               (box generate systemd writes one) or `systemd-run --user --scope -p Delegate=yes box ...`";
    let (Hierarchy::Unified, Some(mount), Some(own)) = (s.hierarchy, &s.v2_mount, &s.own) else {
        let what = match s.hierarchy {
            Hierarchy::Hybrid => "this host's cgroup v2 tree has no controllers (hybrid v1/v2)",
            Hierarchy::Unified => "box's own cgroup is unknown",
            _ => "this host has no cgroup v2",
        };
        return Err(Error::Split(format!(
            "{what}, so no cgroup can be made below box's: boot with systemd.unified_cgroup_hierarchy=1 and {fix}"
        )));
    };
    let mut base = own.clone();
    if base_name(own) == SUPERVISOR_LEAF
        && let Some(p) = parent_rel(own)
    {
        base = p.to_string();
    }
    if !(host.writable)(&join(mount, &base)) {
        return Err(Error::Split(format!(
            "box's cgroup {base} is not delegated to you: {fix}"
        )));
    }
    let missing = missing_in(
        limits,
        &controllers_of(&join(mount, &base), "cgroup.controllers"),
    );
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|(c, _)| *c).collect();
        return Err(Error::Split(format!(
            "box's cgroup {base} lacks the {} controller the limits need: {fix}",
            names.join(", ")
        )));
    }
    prepare_in(host, limits, id, pod).and_then(|plan| match plan.path() {
        Some(p) if p.starts_with(join(mount, &base)) && plan.scope().is_none() => Ok(plan),
        _ => Err(Error::Split(format!(
            "box's cgroup {base} lacks the controllers the limits need: {fix}"
        ))),
    })
}

#[cfg(test)]
pub(crate) fn prepare_on(host: &Host, limits: &Limits, id: &str) -> Result<Plan, Error> {
    prepare_in(host, limits, id, None)
}

/// The cgroup of pod `pod_id` (a directory name under the delegated base).
pub fn pod_group(pod_id: &str) -> String {
    format!("box-pod-{pod_id}")
}

pub(crate) fn prepare_in(
    host: &Host,
    limits: &Limits,
    id: &str,
    pod: Option<PodGroup>,
) -> Result<Plan, Error> {
    // The pod's limits need the delegated cgroup its containers share (case 1).
    let pod_limits = pod.and_then(|p| p.limits).filter(|l| !l.is_empty());
    let s = &host.summary;
    let (Hierarchy::Unified, Some(mount), Some(own)) = (s.hierarchy, &s.v2_mount, &s.own) else {
        if let Some(pl) = pod_limits {
            return Err(refusal(&pl.required(), Why::NotUnified(s.hierarchy)));
        }
        return refuse_or_none(limits, s, &[], Why::NotUnified(s.hierarchy));
    };
    let leaf_name = format!("box-{id}");

    // A second box in the same delegated cgroup finds itself in the supervisor leaf.
    let mut base = own.clone();
    if base_name(own) == SUPERVISOR_LEAF
        && let Some(p) = parent_rel(own)
        && (host.writable)(&join(mount, p))
    {
        base = p.to_string();
    }
    let base_dir = join(mount, &base);
    let usable = (host.writable)(&base_dir);
    let have = controllers_of(&base_dir, "cgroup.controllers");
    let missing = missing_in(limits, &have);
    let pod_missing = pod_limits.map_or(Vec::new(), |pl| missing_in(pl, &have));
    if usable && missing.is_empty() && pod_missing.is_empty() {
        let group = pod.map(|p| (pod_group(p.id), pod_limits));
        let group = group.as_ref().map(|(g, l)| (g.as_str(), *l));
        return build(host, mount, &base, group, &leaf_name, limits, None);
    }
    if let Some(pl) = pod_limits {
        let missing = if usable { pod_missing } else { pl.required() };
        let missing = if missing.is_empty() {
            pl.required()
        } else {
            missing
        };
        return Err(refusal(&missing, Why::PodNotDelegated));
    }
    if limits.is_empty() {
        return Ok(Plan::none());
    }
    let missing = if usable { missing } else { limits.required() };
    if let Some(unit) = service_unit(own) {
        return Err(refusal(&missing, Why::ServiceWithoutDelegate(unit)));
    }
    let scope = format!("{leaf_name}.scope");
    match (host.start_scope)(&scope, host.pid)? {
        None => Err(refusal(&missing, Why::NoSystemd)),
        Some(new_own) => {
            let dir = join(mount, &new_own);
            let have = controllers_of(&dir, "cgroup.controllers");
            let missing = missing_in(limits, &have);
            if !(host.writable)(&dir) || !missing.is_empty() {
                let missing = if missing.is_empty() {
                    limits.required()
                } else {
                    missing
                };
                return Err(refusal(&missing, Why::ScopeLacks(scope)));
            }
            build(host, mount, &new_own, None, &leaf_name, limits, Some(scope))
        }
    }
}

/// `app.slice/web.service` → Some("web.service"); session scopes and user@.service → None.
fn service_unit(own: &str) -> Option<String> {
    let name = base_name(own);
    let unit = if name == SUPERVISOR_LEAF {
        base_name(parent_rel(own)?)
    } else {
        name
    };
    (unit.ends_with(".service") && !unit.starts_with("user@")).then(|| unit.to_string())
}

enum Why {
    NotUnified(Hierarchy),
    PodNotDelegated,
    ServiceWithoutDelegate(String),
    NoSystemd,
    ScopeLacks(String),
}

fn refuse_or_none(
    limits: &Limits,
    _s: &Summary,
    _have: &[String],
    why: Why,
) -> Result<Plan, Error> {
    if limits.is_empty() {
        Ok(Plan::none())
    } else {
        Err(refusal(&limits.required(), why))
    }
}

fn refusal(missing: &[(&'static str, &'static str)], why: Why) -> Error {
    let why = match why {
        Why::NotUnified(Hierarchy::Hybrid) => {
            "this host mounts cgroup v1 controllers and a v2 tree without them (hybrid); \
             boot with systemd.unified_cgroup_hierarchy=1, then"
                .to_string()
        }
        Why::NotUnified(_) => "this host has no cgroup v2 (v1 only); boot with \
                               systemd.unified_cgroup_hierarchy=1, then"
            .to_string(),
        Why::ServiceWithoutDelegate(unit) => {
            return Error::NotDelegated(Missing {
                controllers: missing.to_vec(),
                fix: format!(
                    "box runs in the systemd unit {unit}, which does not delegate them: add \
                     Delegate=yes to its [Service] section (box generate systemd does)"
                ),
            });
        }
        Why::PodNotDelegated => "a pod's limits need a delegated cgroup its containers share \
                                 (box in a unit or scope with Delegate=yes); on a systemd host"
            .to_string(),
        Why::NoSystemd => {
            "they are not delegated to your cgroup and there is no systemd to ask for a \
             delegated scope; on a systemd host"
                .to_string()
        }
        Why::ScopeLacks(scope) => {
            format!("systemd's delegated scope {scope} does not have them either;")
        }
    };
    Error::NotDelegated(Missing {
        controllers: missing.to_vec(),
        fix: format!(
            "{why} create /etc/systemd/system/user@.service.d/delegate.conf containing \
             \"[Service]\\nDelegate=cpu cpuset io memory pids\" and log in again, or run box \
             under `systemd-run --user --scope -p Delegate=yes`"
        ),
    })
}

fn build(
    host: &Host,
    mount: &Path,
    base: &str,
    group: Option<(&str, Option<&Limits>)>,
    leaf_name: &str,
    limits: &Limits,
    scope: Option<String>,
) -> Result<Plan, Error> {
    let base_dir = join(mount, base);
    let available = controllers_of(&base_dir, "cgroup.controllers");
    let pod_limits = group.and_then(|(_, l)| l);
    let mut want: Vec<&str> = limits
        .required()
        .into_iter()
        .chain(pod_limits.map(Limits::required).unwrap_or_default())
        .map(|(c, _)| c)
        .collect();
    want.dedup();
    for c in ALWAYS {
        if available.iter().any(|a| a == c) && !want.contains(c) {
            want.push(c);
        }
    }
    let enabled = controllers_of(&base_dir, "cgroup.subtree_control");
    let to_enable: Vec<&str> = want
        .iter()
        .copied()
        .filter(|c| !enabled.iter().any(|e| e == c))
        .collect();

    // The no-internal-processes rule: base may hold no process once controllers are enabled
    // for its children (the root is exempt). box leaves for the supervisor leaf first.
    let supervisor = base_dir.join(SUPERVISOR_LEAF);
    let is_root = base == "/" || base.is_empty();
    if !is_root && has_procs(&base_dir) {
        mkdir_p(&supervisor)?;
        move_pid(&supervisor, host.pid)?;
    }
    for c in &to_enable {
        let token = format!("+{c}");
        let ctl = base_dir.join("cgroup.subtree_control");
        let mut r = write_file(&ctl, &token);
        if r.as_ref().err().and_then(|e| e.raw_os_error()) == Some(libc::EBUSY) && !is_root {
            // Other processes share the cgroup (e.g. the shell in a delegated scope): they
            // move into the supervisor leaf too.
            mkdir_p(&supervisor)?;
            move_all(&base_dir, &supervisor)?;
            r = write_file(&ctl, &token);
        }
        if let Err(e) = r {
            let required = limits.required().iter().any(|(rc, _)| rc == c);
            if required {
                return Err(Error::Write {
                    path: ctl,
                    value: token,
                    source: e,
                });
            }
        }
    }
    let mut controllers = controllers_of(&base_dir, "cgroup.subtree_control");
    let group_dir = group.map(|(g, _)| base_dir.join(g));
    let parent = group_dir.clone().unwrap_or_else(|| base_dir.clone());
    if let Some(g) = &group_dir {
        // The pod's cgroup holds no process: it passes the same controllers on.
        mkdir_p(g)?;
        let enabled = controllers_of(g, "cgroup.subtree_control");
        for c in controllers.iter().filter(|c| !enabled.contains(c)) {
            let ctl = g.join("cgroup.subtree_control");
            let token = format!("+{c}");
            let required = limits.required().iter().any(|(rc, _)| rc == c);
            if let Err(e) = write_file(&ctl, &token)
                && required
            {
                return Err(Error::Write {
                    path: ctl,
                    value: token,
                    source: e,
                });
            }
        }
        controllers = controllers_of(g, "cgroup.subtree_control");
        if let Some(pl) = pod_limits {
            // Explicit limits only: the pids default is each container's.
            for (file, value) in pl.writes(&controllers, &|f| g.join(f).exists()) {
                if file == "pids.max" && pl.pids == super::limits::Pids::Default {
                    continue;
                }
                write_file(&g.join(file), &value).map_err(|e| Error::Write {
                    path: g.join(file),
                    value,
                    source: e,
                })?;
            }
        }
    }

    let path = parent.join(leaf_name);
    match create_leaf_dir(&path, group_dir.as_deref()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // A leftover of a crashed run with the same id: empty it, make it anew.
            remove_leaf(&path)?;
            std::fs::create_dir(&path).map_err(|e| Error::Mkdir {
                path: path.clone(),
                source: e,
            })?;
        }
        Err(e) => {
            return Err(Error::Mkdir {
                path: path.clone(),
                source: e,
            });
        }
    }
    let dir = open_dir(&path).inspect_err(|_| {
        let _ = std::fs::remove_dir(&path);
    })?;
    let has_file = |f: &str| path.join(f).exists();
    for (file, value) in limits.writes(&controllers, &has_file) {
        let explicit = !matches!(
            (file, limits.pids),
            ("pids.max", super::limits::Pids::Default)
        );
        if let Err(e) = write_file(&path.join(file), &value)
            && explicit
        {
            let _ = std::fs::remove_dir(&path);
            return Err(Error::Write {
                path: path.join(file),
                value,
                source: e,
            });
        }
    }
    let rel = match group {
        Some((g, _)) => format!("{}/{g}/{leaf_name}", base.trim_end_matches('/')),
        None => format!("{}/{leaf_name}", base.trim_end_matches('/')),
    };
    Ok(Plan {
        leaf: std::cell::OnceCell::from(Leaf {
            path,
            rel,
            dir,
            controllers,
            scope,
            group: group_dir,
            oom_killed: std::cell::Cell::new(false),
            removed: false,
            systemd_owned: false,
        }),
        pending: None,
    })
}

/// mkdir the leaf; in a pod's cgroup, once more if the pod's last container removed that
/// cgroup in between.
fn create_leaf_dir(path: &Path, group: Option<&Path>) -> std::io::Result<()> {
    match (std::fs::create_dir(path), group) {
        (Err(e), Some(g)) if e.kind() == std::io::ErrorKind::NotFound => {
            let _ = std::fs::create_dir(g);
            std::fs::create_dir(path)
        }
        (r, _) => r,
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| Error::Read {
            path: path.to_path_buf(),
            source: e,
        })
}

fn mkdir_p(path: &Path) -> Result<(), Error> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Mkdir {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn has_procs(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().any(|l| !l.trim().is_empty()))
        .unwrap_or(false)
}

fn move_pid(to: &Path, pid: u32) -> Result<(), Error> {
    write_file(&to.join("cgroup.procs"), &pid.to_string()).map_err(|e| Error::Attach {
        pid: pid as i32,
        path: to.to_path_buf(),
        source: e,
    })
}

fn move_all(from: &Path, to: &Path) -> Result<(), Error> {
    let t = std::fs::read_to_string(from.join("cgroup.procs")).unwrap_or_default();
    for pid in t.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        match move_pid(to, pid) {
            Ok(()) => {}
            // Exited meanwhile.
            Err(Error::Attach { source, .. })
                if source.raw_os_error() == Some(Errno::ESRCH as i32) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::limits::Pids;
    use std::cell::RefCell;

    /// A fake cgroup2 tree: directories with cgroup.controllers / subtree_control / procs.
    struct Fake {
        dir: tempfile::TempDir,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn root(&self) -> PathBuf {
            self.dir.path().to_path_buf()
        }
        fn cg(&self, rel: &str, controllers: &str, procs: &str) {
            let d = join(&self.root(), rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup.controllers"), controllers).unwrap();
            std::fs::write(d.join("cgroup.subtree_control"), "").unwrap();
            std::fs::write(d.join("cgroup.procs"), procs).unwrap();
        }
        fn read(&self, rel: &str) -> String {
            std::fs::read_to_string(join(&self.root(), rel)).unwrap_or_default()
        }
        fn summary(&self, own: &str) -> Summary {
            Summary {
                hierarchy: Hierarchy::Unified,
                v2_mount: Some(self.root()),
                own: Some(own.to_string()),
                controllers: vec![],
                writable: true,
            }
        }
    }

    fn limits(mem: bool, pids: Option<u64>) -> Limits {
        Limits {
            memory: mem.then_some(64 << 20),
            pids: pids.map_or(Pids::Default, Pids::Max),
            ..Default::default()
        }
    }

    const UNIT: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/web.service";
    const SESSION: &str = "/user.slice/user-1000.slice/session-3.scope";

    fn no_scope(_: &str, _: u32) -> Result<Option<String>, Error> {
        Ok(None)
    }

    #[test]
    fn delegated_unit_gets_a_leaf_and_box_moves_aside() {
        let f = Fake::new();
        f.cg(UNIT, "cpu memory pids", "42\n");
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &no_scope,
            systemd: false,
        };
        let mut plan = prepare_on(&host, &limits(true, Some(16)), "abc").unwrap();
        assert_eq!(plan.cgroup(), Some(format!("{UNIT}/box-abc").as_str()));
        assert_eq!(f.read(&format!("{UNIT}/box-supervisor/cgroup.procs")), "42");
        // each controller enabled with its own write (the fake keeps the last): the required
        // ones first, then the always-on cpu
        assert_eq!(f.read(&format!("{UNIT}/cgroup.subtree_control")), "+cpu");
        let leaf = format!("{UNIT}/box-abc");
        assert_eq!(f.read(&format!("{leaf}/memory.max")), "67108864");
        assert_eq!(f.read(&format!("{leaf}/pids.max")), "16");
        assert!(plan.dir_fd().is_some());
        plan.attach(77).unwrap();
        assert_eq!(f.read(&format!("{leaf}/cgroup.procs")), "77");
        std::fs::write(
            join(&f.root(), &format!("{leaf}/memory.events")),
            "oom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(plan.oom_killed());
        // A fake leaf is a plain dir with files: empty it the way the kernel would.
        for e in std::fs::read_dir(plan.path().unwrap()).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        plan.cleanup().unwrap();
        assert!(!join(&f.root(), &leaf).exists());
        assert!(plan.oom_killed(), "remembered after cleanup");
        plan.cleanup().unwrap();
    }

    #[test]
    fn a_pods_containers_share_the_pod_cgroup() {
        let f = Fake::new();
        f.cg(UNIT, "cpu memory pids", "");
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &no_scope,
            systemd: false,
        };
        let pod_limits = Limits {
            memory: Some(128 << 20),
            ..Default::default()
        };
        let infra = PodGroup {
            id: "p1",
            limits: Some(&pod_limits),
        };
        let member = PodGroup {
            id: "p1",
            limits: None,
        };
        let mut a = prepare_in(&host, &limits(true, None), "a", Some(infra)).unwrap();
        let b = prepare_in(&host, &Limits::default(), "b", Some(member)).unwrap();
        assert_eq!(
            f.read(&format!("{UNIT}/box-pod-p1/memory.max")),
            "134217728"
        );
        assert_eq!(
            a.cgroup(),
            Some(format!("{UNIT}/box-pod-p1/box-a").as_str())
        );
        assert_eq!(
            b.cgroup(),
            Some(format!("{UNIT}/box-pod-p1/box-b").as_str())
        );
        assert_eq!(
            f.read(&format!("{UNIT}/box-pod-p1/box-a/memory.max")),
            "67108864"
        );
        for e in std::fs::read_dir(a.path().unwrap()).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
        a.cleanup().unwrap();
        // b is still there: the pod's cgroup stays.
        assert!(join(&f.root(), &format!("{UNIT}/box-pod-p1/box-b")).exists());
    }

    #[test]
    fn second_box_in_the_supervisor_leaf_uses_the_parent() {
        let f = Fake::new();
        f.cg(UNIT, "cpu memory pids", "");
        let own = format!("{UNIT}/box-supervisor");
        f.cg(&own, "", "42\n");
        let host = Host {
            summary: f.summary(&own),
            pid: 42,
            writable: &|_| true,
            start_scope: &no_scope,
            systemd: false,
        };
        let plan = prepare_on(&host, &limits(true, None), "two").unwrap();
        assert_eq!(plan.cgroup(), Some(format!("{UNIT}/box-two").as_str()));
    }

    #[test]
    fn empty_limits_in_a_session_need_no_systemd() {
        let f = Fake::new();
        f.cg(SESSION, "", "42\n");
        let called = RefCell::new(false);
        let scope = |_: &str, _: u32| {
            *called.borrow_mut() = true;
            Ok(None)
        };
        let host = Host {
            summary: f.summary(SESSION),
            pid: 42,
            writable: &|_| false,
            start_scope: &scope,
            systemd: true,
        };
        let plan = prepare_on(&host, &Limits::default(), "x").unwrap();
        assert!(plan.is_none());
        assert!(!*called.borrow(), "no D-Bus without limits");
    }

    #[test]
    fn session_with_limits_asks_systemd_for_a_scope() {
        let f = Fake::new();
        f.cg(SESSION, "", "42\n");
        let scope_rel = "/user.slice/user-1000.slice/user@1000.service/app.slice/box-x.scope";
        let root = f.root();
        let asked = RefCell::new(String::new());
        let scope = |unit: &str, pid: u32| {
            *asked.borrow_mut() = format!("{unit} {pid}");
            let d = join(&root, scope_rel);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup.controllers"), "cpu memory pids").unwrap();
            std::fs::write(d.join("cgroup.procs"), "42\n").unwrap();
            Ok(Some(scope_rel.to_string()))
        };
        let writable = |p: &Path| !p.ends_with("session-3.scope");
        let host = Host {
            summary: f.summary(SESSION),
            pid: 42,
            writable: &writable,
            start_scope: &scope,
            systemd: true,
        };
        let plan = prepare_on(&host, &limits(true, None), "x").unwrap();
        assert_eq!(&*asked.borrow(), "box-x.scope 42");
        assert_eq!(plan.scope(), Some("box-x.scope"));
        assert_eq!(plan.cgroup(), Some(format!("{scope_rel}/box-x").as_str()));
        assert_eq!(f.read(&format!("{scope_rel}/box-x/memory.max")), "67108864");
    }

    #[test]
    fn no_systemd_refuses_with_the_fix() {
        let f = Fake::new();
        f.cg(SESSION, "", "42\n");
        let host = Host {
            summary: f.summary(SESSION),
            pid: 42,
            writable: &|_| false,
            start_scope: &no_scope,
            systemd: false,
        };
        let e = prepare_on(&host, &limits(true, Some(5)), "x").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("memory (--memory)"), "{m}");
        assert!(m.contains("pids (--pids-limit)"), "{m}");
        assert!(
            m.contains("/etc/systemd/system/user@.service.d/delegate.conf"),
            "{m}"
        );
        assert!(
            m.contains("systemd-run --user --scope -p Delegate=yes"),
            "{m}"
        );
        assert!(!m.contains('\n'), "one line: {m}");
    }

    #[test]
    fn service_without_controllers_never_escapes() {
        let f = Fake::new();
        f.cg(UNIT, "pids", "42\n");
        let scope = |_: &str, _: u32| -> Result<Option<String>, Error> {
            panic!("must not leave the unit")
        };
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &scope,
            systemd: true,
        };
        let m = prepare_on(&host, &limits(true, None), "x")
            .unwrap_err()
            .to_string();
        assert!(m.contains("web.service"), "{m}");
        assert!(m.contains("Delegate=yes"), "{m}");
        assert!(m.starts_with("cannot enforce --memory"), "{m}");
    }

    #[test]
    fn hybrid_and_legacy() {
        for h in [Hierarchy::Hybrid, Hierarchy::Legacy] {
            let host = Host {
                summary: Summary {
                    hierarchy: h,
                    v2_mount: None,
                    own: Some("/".into()),
                    controllers: vec![],
                    writable: true,
                },
                pid: 1,
                writable: &|_| true,
                start_scope: &no_scope,
                systemd: false,
            };
            assert!(
                prepare_on(&host, &Limits::default(), "x")
                    .unwrap()
                    .is_none()
            );
            let m = prepare_on(&host, &limits(true, None), "x")
                .unwrap_err()
                .to_string();
            assert!(m.contains("memory"), "{m}");
            assert!(m.contains("delegate.conf"), "{m}");
        }
    }

    #[test]
    fn pids_default_only_where_delegated() {
        let f = Fake::new();
        f.cg(UNIT, "memory pids", "42\n");
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &no_scope,
            systemd: false,
        };
        // The fake's subtree_control keeps only the last write, so seed it as the kernel
        // would look after enabling.
        let plan = prepare_on(&host, &Limits::default(), "d").unwrap();
        let _ = plan;
        std::fs::write(
            join(&f.root(), &format!("{UNIT}/cgroup.subtree_control")),
            "memory pids",
        )
        .unwrap();
        let plan = prepare_on(&host, &Limits::default(), "e").unwrap();
        assert_eq!(f.read(&format!("{UNIT}/box-e/pids.max")), "2048");
        assert!(plan.controllers().contains(&"pids".to_string()));
    }

    #[test]
    fn unit_names() {
        assert_eq!(service_unit(UNIT).as_deref(), Some("web.service"));
        assert_eq!(
            service_unit(&format!("{UNIT}/box-supervisor")).as_deref(),
            Some("web.service")
        );
        assert_eq!(service_unit(SESSION), None);
        assert_eq!(
            service_unit("/user.slice/user-1000.slice/user@1000.service"),
            None
        );
        assert_eq!(parent_rel("/a/b"), Some("/a"));
        assert_eq!(parent_rel("/a"), Some("/"));
    }

    fn never_a_scope(_: &str, _: u32) -> Result<Option<String>, Error> {
        panic!("no scope may be asked for here");
    }

    #[test]
    fn split_stays_below_the_callers_cgroup() {
        let f = Fake::new();
        f.cg(UNIT, "cpu memory pids", "42\n");
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &never_a_scope,
            systemd: true,
        };
        let plan = prepare_split(&host, &limits(true, None), "abc", None).unwrap();
        assert_eq!(plan.cgroup(), Some(format!("{UNIT}/box-abc").as_str()));
        assert_eq!(f.read(&format!("{UNIT}/box-supervisor/cgroup.procs")), "42");
        // A session's cgroup is not delegated: refused, no scope elsewhere.
        f.cg(SESSION, "", "42\n");
        let host = Host {
            summary: f.summary(SESSION),
            writable: &|_| false,
            ..host
        };
        let e = prepare_split(&host, &limits(true, None), "abc", None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--cgroups=split: box's cgroup"), "{e}");
        assert!(e.contains("Delegate=yes"), "{e}");
        // A unit without the memory controller: refused before anything moves.
        let f = Fake::new();
        f.cg(UNIT, "pids", "42\n");
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &never_a_scope,
            systemd: true,
        };
        let e = prepare_split(&host, &limits(true, None), "abc", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks the memory controller"), "{e}");
        assert!(!join(&f.root(), &format!("{UNIT}/box-supervisor")).exists());
        // Hybrid: nothing can be made.
        let host = Host {
            summary: Summary {
                hierarchy: Hierarchy::Hybrid,
                v2_mount: None,
                own: Some("/".into()),
                controllers: vec![],
                writable: true,
            },
            pid: 1,
            writable: &|_| true,
            start_scope: &never_a_scope,
            systemd: false,
        };
        let e = prepare_split(&host, &Limits::default(), "x", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("hybrid"), "{e}");
    }

    #[test]
    fn no_conmon_leaves_box_where_it_is() {
        let f = Fake::new();
        f.cg(UNIT, "cpu memory pids", "42\n");
        let host = Host {
            summary: f.summary(UNIT),
            pid: 42,
            writable: &|_| true,
            start_scope: &never_a_scope,
            systemd: true,
        };
        // A scope for the container's pid at attach; box is not moved aside.
        let plan = prepare_no_conmon(&host, &limits(true, None), "abc").unwrap();
        assert!(!plan.is_none() && plan.dir_fd().is_none() && plan.path().is_none());
        assert!(!join(&f.root(), &format!("{UNIT}/box-supervisor")).exists());
        // No systemd: no cgroup of its own without limits, refused with them.
        let host = Host {
            systemd: false,
            ..host
        };
        assert!(
            prepare_no_conmon(&host, &Limits::default(), "abc")
                .unwrap()
                .is_none()
        );
        let e = prepare_no_conmon(&host, &limits(true, None), "abc")
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory"), "{e}");
    }
}
