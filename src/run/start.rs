//! Starting a recorded container and supervising it until it exits.
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::unistd::Pid;

use super::cleanup::Watcher;
use super::create::{self, ChildStdio, Hooks, Launch};
use super::hooks;
use super::rootfs::{Layout, Specials};
use super::{Error, etc, security, supervise, sys};
use crate::container::{Containers, Record, Status};
use crate::paths::Paths;
use crate::spec::{DEFAULT_PATH, Driver, Spec};
use crate::units as time;
use crate::userns::{self, IdMaps};

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Attach the container to box's stdio (and the terminal with -t). Otherwise its
    /// output is appended to `ctr.log` and stdin is /dev/null.
    pub attach: bool,
    /// With `attach`: stdin too, even if the container was created without `-i`
    /// (`box start -a -i`).
    pub interactive: bool,
    /// Print debug notes on stderr.
    pub debug: bool,
}

/// Start `rec`, supervise it until it exits, record its state, and (for `--rm`) remove
/// it. Returns the container's exit code in docker's convention. Must be called while box
/// is single-threaded. `box run` and `box start` both come here.
pub fn start_container(paths: &Paths, rec: &Record, opts: &StartOptions) -> Result<u8, Error> {
    let watcher = Watcher::spawn(&Containers::open(paths)?)?;
    watcher.adopt(rec.id(), rec.config.autoremove)?;
    start_watched(paths, rec, opts, watcher)
}

/// `start_container` with a watcher the caller forked (and told about `rec`) before it
/// recorded the container: `box run --rm` does so, so that even a box killed between
/// writing the record and starting the container leaves nothing behind.
pub fn start_watched(
    paths: &Paths,
    rec: &Record,
    opts: &StartOptions,
    watcher: Watcher,
) -> Result<u8, Error> {
    // --sdnotify=container: the notify socket and NOTIFY_SOCKET go into the container.
    let notify_spec = crate::systemd::spec_with_notify(&rec.config.spec)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let spec = notify_spec.as_ref().unwrap_or(&rec.config.spec);
    // `box start -a -i`: stdin attached as if created with -i.
    let interactive_spec = (opts.attach && opts.interactive && !spec.interactive).then(|| {
        let mut s = spec.clone();
        s.interactive = true;
        s
    });
    let spec = interactive_spec.as_ref().unwrap_or(spec);
    let containers = Containers::open(paths)?;
    let mode = spec.userns;
    let maps = IdMaps::for_current_user(mode)?;
    let net_plan = spec.network.clone();
    let joined = join_target(paths, spec, mode)?;
    super::trace("start: id maps");

    make_rootfs_dirs(rec, spec)?;
    let hostname = if spec.hostname.is_empty() {
        rec.short_id().to_string()
    } else {
        spec.hostname.clone()
    };
    etc::write_userdata(
        &rec.userdata_dir(),
        spec,
        &net_plan,
        &hostname,
        rec.name(),
        joined.as_ref(),
    )
    .map_err(|source| Error::Io {
        what: "write the container's /etc files".into(),
        source,
    })?;
    super::trace("start: dirs and /etc files");
    let limits = spec.limits.clone();

    let caps = security::cap_mask(&spec.caps);
    let seccomp = create::seccomp_programs(spec, caps)?;
    super::trace("start: seccomp compiled");
    let stdio = if opts.attach {
        ChildStdio::Inherit
    } else {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(rec.log_path())
            .map_err(|source| Error::Io {
                what: format!("open {}", rec.log_path().display()),
                source,
            })?;
        ChildStdio::Log(OwnedFd::from(log))
    };
    let winsize = if spec.tty && opts.attach {
        sys::get_winsize(std::io::stdin().as_fd())
            .or_else(|| sys::get_winsize(std::io::stdout().as_fd()))
    } else {
        None
    };
    let launch = Launch {
        spec,
        hostname: &hostname,
        env: environment(spec, &hostname),
        layout: layout(paths, rec, spec, mode, &maps)?,
        specials: Specials {
            // A fresh sysfs only for a network namespace of the container's own user
            // namespace (not the host's).
            netns: !spec.host_network() && !joined.as_ref().is_some_and(|t| t.uses_host_network()),
            cgroupfs: crate::cgroup::mount_in_container(),
            tty_gid: maps.host_gid(5).is_some(),
        },
        stdio,
        winsize,
        seccomp,
        caps,
        volumes: volume_mounts(spec, &paths.volumes()),
        setgroups: maps.setgroups_allowed(),
        join: joined.as_ref().map(|t| create::Join {
            userns: t.userns.as_fd(),
            netns: (!t.uses_host_network()).then(|| t.netns.as_fd()),
        }),
    };

    // The cgroup last: from here on every error path must clean it up.
    let mut cgroup: hooks::CgroupHook = crate::cgroup::prepare(&limits, rec.id())?.into();
    if let Err(e) = watcher.cgroup(cgroup.path()) {
        cgroup.cleanup();
        return Err(e);
    }
    super::trace("start: cgroup prepared");
    let (mut sfd, old_mask) = supervise::block_signals()?;
    let restore = Restore(old_mask);
    let mut parent = Parent {
        cgroup: &cgroup,
        watcher: &watcher,
        net_plan: &net_plan,
        net: None,
    };
    let created = create::create(&launch, &maps, &mut parent);
    let mut net = parent.net.take();
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            drop(net);
            cgroup.cleanup();
            if !rec.config.autoremove {
                let code = e.exit_code();
                let _ = rec.update_state(|s| {
                    s.status = Status::Created;
                    s.exit_code = Some(code as i32);
                    s.error = Some(e.to_string());
                });
            }
            finish_cleanup(watcher, &containers, rec);
            drop(restore);
            return Err(e);
        }
    };
    super::trace("container running (exec done)");
    let pid = created.pid;
    let _ = rec.update_state(|s| {
        s.status = Status::Running;
        s.pid = Some(pid.as_raw());
        s.pid_start = crate::container::process_start_time(pid.as_raw());
        s.box_pid = Some(std::process::id() as i32);
        s.exit_code = None;
        s.error = None;
        s.started_at = Some(time::now_rfc3339());
        s.finished_at = None;
        s.oom_killed = false;
    });
    crate::events::container(paths, rec, "init");
    crate::events::container(paths, rec, "start");
    // A `box start --attach` under the detached monitor tells it the command runs.
    crate::monitor::notify_started();
    // --sdnotify=ready: READY=1 to systemd.
    crate::systemd::container_started(spec);
    crate::monitor::health::reset(rec);
    // Without a monitor (foreground), a child runs the scheduled healthchecks.
    let mut health_loop = std::env::var_os(crate::monitor::UNDER_MONITOR_ENV)
        .is_none()
        .then(|| crate::monitor::health::spawn_loop(paths, rec))
        .flatten();

    let relay = match created.pty {
        Some(master) => Some(supervise::Relay {
            master,
            stdin: opts.attach && spec.interactive,
            out: match &launch.stdio {
                ChildStdio::Log(log) => log.try_clone(),
                ChildStdio::Inherit => std::io::stdout().as_fd().try_clone_to_owned(),
            }
            .map_err(|source| Error::Io {
                what: "duplicate stdout".into(),
                source,
            })?,
            winch: opts.attach,
        }),
        None => None,
    };
    let raw = (relay.as_ref().is_some_and(|r| r.stdin))
        .then(supervise::RawMode::enable)
        .flatten();
    super::trace("state running");
    let status = supervise::wait(pid, &mut sfd, relay);
    super::trace("container exited");
    if let Some(h) = health_loop.as_mut() {
        let _ = h.kill();
        let _ = h.wait();
    }
    drop(raw);
    drop(net.take()); // stops the network helper
    let oom_killed = cgroup.oom_killed();
    cgroup.cleanup();
    let status = status?;
    let code = crate::exit::from_wait(status);
    if !rec.config.autoremove {
        let _ = rec.update_state(|s| {
            s.status = Status::Exited;
            s.exit_code = Some(code as i32);
            s.finished_at = Some(time::now_rfc3339());
            s.oom_killed = oom_killed;
        });
    }
    drop(created.userns);
    super::trace("state recorded");
    crate::events::died(paths, rec, code as i32);
    finish_cleanup(watcher, &containers, rec);
    crate::events::container(paths, rec, "cleanup");
    if rec.config.autoremove {
        crate::events::container(paths, rec, "remove");
    }
    super::trace("cleanup done");
    drop(restore);
    Ok(code)
}

/// The indexes of the mounts that are volumes of the store (named or anonymous).
pub fn volume_mounts(spec: &Spec, volumes: &std::path::Path) -> Vec<usize> {
    spec.mounts
        .iter()
        .enumerate()
        .filter_map(|(i, m)| match m {
            crate::run::Mount::Bind { source, .. } if source.starts_with(volumes) => Some(i),
            _ => None,
        })
        .collect()
}

/// `--network container:NAME`: the running container to join, holding its namespaces
/// open. The joiner lives in that container's user namespace, so both need one mapping.
fn join_target(
    paths: &Paths,
    spec: &Spec,
    mode: userns::Mode,
) -> Result<Option<crate::network::JoinTarget>, Error> {
    let Some(name) = spec.network_container() else {
        return Ok(None);
    };
    let target = crate::network::join_target(paths, name)?;
    let theirs = target.userns_mode;
    if theirs != mode {
        return Err(Error::Invalid(format!(
            "--network container:{name}: {name} runs with --userns={} and this container with --userns={}: a container joining another's network shares its user namespace, so use --userns={}",
            theirs.name(),
            spec.userns.name(),
            theirs.name(),
        )));
    }
    Ok(Some(target))
}

/// Retire a `--rm` container (the watcher deletes its files in the background) and let
/// the watcher go; as a systemd service's process (`INVOCATION_ID`), wait for it.
fn finish_cleanup(watcher: Watcher, containers: &Containers, rec: &Record) {
    if rec.config.autoremove {
        let _ = super::cleanup::retire_container(containers, rec, true);
    }
    if std::env::var_os("INVOCATION_ID").is_some() {
        watcher.release_and_wait();
    } else {
        watcher.release();
    }
}

struct Restore(nix::sys::signal::SigSet);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&self.0),
            None,
        );
    }
}

/// Where the container's root filesystem comes from and is mounted.
pub fn layout(
    paths: &Paths,
    rec: &Record,
    spec: &Spec,
    mode: userns::Mode,
    maps: &IdMaps,
) -> Result<Layout, Error> {
    Ok(Layout {
        data: paths.data.clone(),
        upper: rec.upper_dir(),
        work: rec.work_dir(),
        vfs_root: rec.rootfs_dir(),
        merged: rec.merged_dir(),
        userdata: rec.userdata_dir(),
        fuse_overlayfs: (spec.rootfs.driver == Driver::FuseOverlayfs)
            .then(|| userns::tool_path("fuse-overlayfs"))
            .flatten(),
        volatile: rec.config.autoremove,
        fuse_idmap: keep_id_shift(mode, maps)?,
    })
}

/// The container's upper, work and mount point directories (made at its first start).
pub fn make_rootfs_dirs(rec: &Record, spec: &Spec) -> Result<(), Error> {
    let mkdir = |d: &std::path::Path| {
        std::fs::create_dir_all(d).map_err(|source| Error::Io {
            what: format!("create {}", d.display()),
            source,
        })
    };
    if spec.rootfs.driver != Driver::Vfs {
        mkdir(&rec.upper_dir())?;
        mkdir(&rec.work_dir())?;
    }
    if !rec.merged_dir().is_dir() {
        mkdir(&rec.merged_dir())?;
    }
    Ok(())
}

/// For `--userns=keep-id` (as a user): the fuse-overlayfs id shift from the storage's
/// mapping (auto) to the container's.
fn keep_id_shift(mode: userns::Mode, maps: &IdMaps) -> Result<Option<String>, Error> {
    if mode != userns::Mode::KeepId || maps.root {
        return Ok(None);
    }
    let stored = IdMaps::for_current_user(userns::Mode::Auto)?;
    Ok(Some(format!(
        "uidmapping={},gidmapping={}",
        super::rootfs::id_shift(&stored.uid, &maps.uid),
        super::rootfs::id_shift(&stored.gid, &maps.gid)
    )))
}

/// The final environment (HOME comes from the user, in the child): HOSTNAME first, then
/// the image's and the user's, PATH and TERM defaults as docker adds them.
fn environment(spec: &Spec, hostname: &str) -> Vec<String> {
    let has = |k: &str| spec.env.iter().any(|e| e.split('=').next() == Some(k));
    let mut env = Vec::with_capacity(spec.env.len() + 3);
    if !has("HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if !has("PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.extend(spec.env.iter().cloned());
    if spec.tty && !has("TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

/// box's side of the handshake hooks.
struct Parent<'a> {
    cgroup: &'a hooks::CgroupHook,
    watcher: &'a Watcher,
    net_plan: &'a crate::network::Plan,
    net: Option<crate::network::Handle>,
}

impl Hooks for Parent<'_> {
    fn cloned(&mut self, pid: Pid, userns: BorrowedFd) -> Result<(), Error> {
        self.watcher.started(pid, userns)
    }

    fn mapped(&mut self, pid: Pid) -> Result<(), Error> {
        self.cgroup.attach(pid)?;
        self.net = Some(hooks::network_setup(self.net_plan, pid)?);
        Ok(())
    }
}
