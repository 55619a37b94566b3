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
    let maps = spec_maps(spec)?;
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
    // User networks: an address on each (held while the container runs), its own
    // /etc/hosts and aardvark-dns as its resolver.
    let leases = if spec.networks.is_empty() {
        Vec::new()
    } else {
        let wants = crate::usernet::wants(spec);
        let leases = crate::usernet::lease(paths, &wants, rec.id())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let (hosts, resolv) = crate::usernet::etc_lines(&leases, &hostname, rec.name());
        for (file, text) in [("hosts", hosts), ("resolv.conf", resolv)] {
            let path = rec.userdata_dir().join(file);
            std::fs::write(&path, text).map_err(|source| Error::Io {
                what: format!("write {}", path.display()),
                source,
            })?;
        }
        leases
    };
    super::trace("start: dirs and /etc files");
    let limits = spec.limits.clone();

    let caps = security::cap_mask(&spec.caps);
    let seccomp = create::seccomp_programs(spec, caps)?;
    super::trace("start: seccomp compiled");
    // In the foreground (not under the detached monitor, which logs what it reads): the
    // output is copied into the log too, as podman does, unless the log driver keeps
    // none (none, passthrough: the container writes to box's own stdout and stderr).
    let log_foreground = opts.attach
        && std::env::var_os(crate::monitor::UNDER_MONITOR_ENV).is_none()
        && spec.settings.log.driver.keeps_log();
    let mut tee = if log_foreground {
        let attach = &spec.settings.attach;
        Some(supervise::Tee {
            log: crate::monitor::log::writer_for(rec).map_err(|source| Error::Io {
                what: format!("open {}", rec.log_path().display()),
                source,
            })?,
            stdout: None,
            stderr: None,
            show: [
                attach.is_empty() || attach.iter().any(|a| a == "stdout"),
                attach.is_empty() || attach.iter().any(|a| a == "stderr"),
            ],
        })
    } else {
        None
    };
    let pipe = || {
        std::io::pipe().map_err(|source| Error::Io {
            what: "create the output pipes".into(),
            source,
        })
    };
    let stdio = if let Some(t) = tee.as_mut().filter(|_| !spec.tty) {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        t.stdout = Some(out_r.into());
        t.stderr = Some(err_r.into());
        ChildStdio::Pipes {
            stdout: out_w.into(),
            stderr: err_w.into(),
        }
    } else if opts.attach {
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
    let mut launch = Launch {
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
        etc_root_owned: mode == userns::Mode::KeepId && !maps.root,
        user_entries: keep_id_entries(mode, &maps)
            .into_iter()
            .chain(spec.settings.passwd_entries.iter().filter_map(|l| {
                let uid = l.split(':').nth(2)?.parse().ok()?;
                Some(("/etc/passwd".to_string(), uid, l.clone()))
            }))
            .collect(),
        localtime: match &spec.settings.timezone {
            Some(tz) => {
                Some(crate::spec::timezone_file(tz).map_err(|e| Error::Invalid(e.to_string()))?)
            }
            None => None,
        },
        join: joined.as_ref().map(|t| create::Join {
            userns: t.userns.as_fd(),
            netns: (!t.uses_host_network() && spec.networks.is_empty()).then(|| t.netns.as_fd()),
            new_netns: !spec.networks.is_empty(),
            utsns: spec
                .pod
                .as_ref()
                .is_some_and(|p| p.uts)
                .then(|| t.utsns.as_fd()),
            ipcns: spec
                .pod
                .as_ref()
                .is_some_and(|p| p.ipc)
                .then(|| t.ipcns.as_fd()),
        }),
    };

    // The cgroup last: from here on every error path must clean it up.
    let mut cgroup: hooks::CgroupHook = if spec.settings.no_cgroup {
        crate::cgroup::Plan::none()
    } else {
        crate::cgroup::prepare_mode(
            &limits,
            rec.id(),
            // A pod's containers share its cgroup (not the user networks' holder).
            spec.pod
                .as_ref()
                .filter(|p| p.id != crate::usernet::HOLDER)
                .map(|p| crate::cgroup::PodGroup {
                    id: &p.id,
                    limits: p.limits.as_ref(),
                }),
            spec.settings.cgroups,
        )?
    }
    .into();
    if let Err(e) = watcher.cgroup(cgroup.path()) {
        cgroup.cleanup();
        return Err(e);
    }
    super::trace("start: cgroup prepared");
    let mut helper_pending = match holder_helper(paths, spec) {
        Ok(p) => p,
        Err(e) => {
            cgroup.cleanup();
            return Err(e);
        }
    };
    let (mut sfd, old_mask) = supervise::block_signals()?;
    let restore = Restore(old_mask);
    let mut parent = Parent {
        rec,
        reported: false,
        cgroup: &cgroup,
        watcher: &watcher,
        net_plan: &net_plan,
        net_options: &spec.settings.network_options,
        net: None,
        defer_helper: helper_pending.is_some(),
        deferred: None,
        later: None,
        usernet_ns: None,
        usernet: (!leases.is_empty())
            .then_some(joined.as_ref())
            .flatten()
            .map(|t| UserNet {
                paths,
                leases,
                aliases: &spec.network_aliases,
                holder: t,
                id: rec.id(),
                name: rec.name(),
            }),
        attached: None,
    };
    let created = create::create(&launch, &maps, &mut parent);
    if let ChildStdio::Pipes { .. } = launch.stdio {
        // The container holds the write ends now: ours go, so its exit ends the pipes.
        launch.stdio = ChildStdio::Inherit;
    }
    let reported = parent.reported;
    let mut net = parent.net.take();
    let mut deferred = parent.deferred.take();
    let mut attached = parent.attached.take();
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            drop(deferred);
            drop(net);
            drop(attached);
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
    if !reported {
        record_running(rec, pid);
    }
    crate::events::container(paths, rec, "init");
    crate::events::container(paths, rec, "start");
    if let Some(p) = &spec.settings.pidfile
        && let Err(e) = std::fs::write(p, format!("{}\n", pid.as_raw()))
    {
        eprintln!("box: warning: --pidfile {}: {e}", p.display());
    }
    // --preserve-fds: the command has them now; box keeps no copy.
    let handed = super::handed_fds();
    if handed > 0 {
        let _ = super::sys::close_range(3, 2 + handed);
        super::set_handed_fds(0);
    }
    // A `box start --attach` under the detached monitor tells it the command runs.
    crate::monitor::notify_started();
    if let (Some(d), Some(p)) = (deferred.take(), helper_pending.take()) {
        net = start_holder_helper(d, p, pid);
    }
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
                ChildStdio::Inherit | ChildStdio::Pipes { .. } => {
                    std::io::stdout().as_fd().try_clone_to_owned()
                }
            }
            .map_err(|source| Error::Io {
                what: "duplicate stdout".into(),
                source,
            })?,
            winch: opts.attach,
        }),
        None => None,
    };
    // Copying the output, box must see a closed stdout as EPIPE (and pass it on), not
    // die of SIGPIPE. The container was made with SIGPIPE at its default.
    let tee_pipes = tee.as_ref().is_some_and(|t| t.stdout.is_some());
    if tee_pipes {
        // SAFETY: SIG_IGN installs no handler.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    }
    let raw = (relay.as_ref().is_some_and(|r| r.stdin))
        .then(supervise::RawMode::enable)
        .flatten();
    super::trace("state running");
    let status = supervise::wait(
        pid,
        &mut sfd,
        relay,
        tee,
        spec.settings.timeout.map(std::time::Duration::from_secs),
    );
    super::trace("container exited");
    if let Some(h) = health_loop.as_mut() {
        let _ = h.kill();
        let _ = h.wait();
    }
    if tee_pipes {
        // SAFETY: SIG_DFL installs no handler.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    drop(raw);
    drop(net.take()); // stops the network helper
    if attached.is_some() {
        drop(attached.take()); // netavark teardown, the addresses released
        super::trace("netavark teardown");
    }
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

/// The user networks' holder (with pasta): its helper comes up while it is reported
/// running and the first container is plugged in, which waits for it before running
/// (`usernet::helper_ready`). Taken before the start; `None` for any other container.
fn holder_helper(
    paths: &Paths,
    spec: &Spec,
) -> Result<Option<crate::usernet::helper_ready::Pending>, Error> {
    let holder = spec
        .pod
        .as_ref()
        .is_some_and(|p| p.infra && p.id == crate::usernet::HOLDER);
    if !holder || spec.network.mode != crate::network::Mode::Pasta {
        return Ok(None);
    }
    crate::usernet::helper_ready::pending(paths)
        .map(Some)
        .map_err(|e| Error::Invalid(e.to_string()))
}

/// The holder, running: start its helper and wait for it. Failed, the holder goes (its
/// command is killed) and the containers waiting learn why.
fn start_holder_helper(
    later: crate::network::Deferred,
    pending: crate::usernet::helper_ready::Pending,
    pid: Pid,
) -> Option<crate::network::Handle> {
    match later.start().and_then(crate::network::Starting::wait) {
        Ok(h) => {
            pending.ready();
            Some(h)
        }
        Err(e) => {
            eprintln!("box: {e}");
            pending.failed(&e.to_string());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            None
        }
    }
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
    let name = match spec.network_container() {
        Some(name) => name,
        // User networks: the holder's user namespace.
        None if !spec.networks.is_empty() => crate::usernet::HOLDER,
        None => return Ok(None),
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
            .then(crate::driver::fuse_overlayfs_program)
            .flatten(),
        volatile: rec.config.autoremove,
        fuse_idmap: keep_id_shift(mode, spec.settings.custom_idmap(), maps)?,
        image_mounts: (0..spec.settings.image_mounts.len())
            .map(|n| rec.image_mount_dir(n))
            .collect(),
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
    // --mount type=image,rw=true: the writes go to the container's own upper directory.
    for (n, im) in spec.settings.image_mounts.iter().enumerate() {
        if im.rw {
            mkdir(&rec.image_mount_dir(n).join("upper"))?;
            mkdir(&rec.image_mount_dir(n).join("work"))?;
        }
    }
    Ok(())
}

/// For `--userns=keep-id` (as a user): the user's /etc/passwd and /etc/group lines, as
/// podman adds them (name, home and shell of the host's entry).
fn keep_id_entries(mode: userns::Mode, maps: &IdMaps) -> Vec<(String, u32, String)> {
    if mode != userns::Mode::KeepId || maps.root {
        return Vec::new();
    }
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let user = nix::unistd::User::from_uid(uid).ok().flatten();
    let name = user
        .as_ref()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| uid.to_string());
    let home = user
        .as_ref()
        .map(|u| u.dir.display().to_string())
        .unwrap_or_else(|| "/".into());
    let group = nix::unistd::Group::from_gid(gid)
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| name.clone());
    // The ids the user has inside: their own, or keep-id:uid=,gid='s.
    let inside = |maps: &[userns::IdMap], own: u32| {
        maps.iter()
            .find(|m| own >= m.host && ((own - m.host) as u64) < m.size as u64)
            .map(|m| m.container + (own - m.host))
            .unwrap_or(own)
    };
    let (uid, gid) = (
        inside(&maps.uid, uid.as_raw()),
        inside(&maps.gid, gid.as_raw()),
    );
    vec![
        (
            "/etc/passwd".into(),
            uid,
            format!("{name}:*:{uid}:{gid}:{name}:{home}:/bin/sh"),
        ),
        ("/etc/group".into(), gid, format!("{group}:x:{gid}:{name}")),
    ]
}

/// The id maps of a container: its `--uidmap`/`--gidmap`, else its `--userns` mode's.
pub fn spec_maps(spec: &Spec) -> Result<IdMaps, Error> {
    let s = &spec.settings;
    if s.custom_idmap() {
        return Ok(IdMaps::custom(&s.uidmap, &s.gidmap)?);
    }
    Ok(IdMaps::for_current_user(spec.userns)?)
}

/// For `--userns=keep-id` or `--uidmap` (as a user): the fuse-overlayfs id shift from the
/// storage's mapping (auto) to the container's.
fn keep_id_shift(mode: userns::Mode, custom: bool, maps: &IdMaps) -> Result<Option<String>, Error> {
    if (mode != userns::Mode::KeepId && !custom) || maps.root {
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

/// The container runs with `pid` (its PID 1): its state says so.
fn record_running(rec: &Record, pid: Pid) {
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
}

/// box's side of the handshake hooks.
struct Parent<'a> {
    rec: &'a Record,
    /// Recorded running and reported started already (the holder, at P5).
    reported: bool,
    cgroup: &'a hooks::CgroupHook,
    watcher: &'a Watcher,
    net_plan: &'a crate::network::Plan,
    net_options: &'a [String],
    net: Option<crate::network::Handle>,
    /// At P5 only open the namespaces for the helper (`deferred`), started once the
    /// container runs: the user networks' holder.
    defer_helper: bool,
    deferred: Option<crate::network::Deferred>,
    /// pasta, its namespaces opened at P5, started at P7.
    later: Option<crate::network::Deferred>,
    /// User networks to plug the container into (at P7), and its network namespace
    /// (opened at P5).
    usernet: Option<UserNet<'a>>,
    usernet_ns: Option<std::os::fd::OwnedFd>,
    attached: Option<crate::usernet::Attached>,
}

/// What netavark needs at P5: the leases and the holder's namespaces.
struct UserNet<'a> {
    paths: &'a Paths,
    leases: Vec<crate::usernet::Lease>,
    aliases: &'a [String],
    holder: &'a crate::network::JoinTarget,
    id: &'a str,
    name: &'a str,
}

impl Hooks for Parent<'_> {
    fn cloned(&mut self, pid: Pid, userns: BorrowedFd) -> Result<(), Error> {
        self.watcher.started(pid, userns)
    }

    /// P5: the cgroup, and every namespace the network needs opened (the child is still
    /// dumpable). slirp4netns (it takes the pid) and no helper at all are set up now.
    fn mapped(&mut self, pid: Pid) -> Result<(), Error> {
        self.cgroup.attach(pid)?;
        let deferrable = matches!(
            self.net_plan.mode,
            crate::network::Mode::Pasta | crate::network::Mode::Forward
        );
        if self.defer_helper {
            self.deferred = Some(hooks::network_defer(self.net_plan, self.net_options, pid)?);
            // The user networks' holder: its namespaces exist and are mapped, all that
            // the first container needs to be plugged in (its pasta comes later, waited
            // for by `usernet::helper_ready`; failing from here, the holder goes and that
            // says so). So it runs as far as the others care: ~2 ms sooner than at P8.
            record_running(self.rec, pid);
            crate::monitor::notify_started();
            self.reported = true;
        } else if deferrable {
            self.later = Some(hooks::network_defer(self.net_plan, self.net_options, pid)?);
        } else {
            self.net = Some(hooks::network_setup(self.net_plan, self.net_options, pid)?);
        }
        if self.usernet.is_some() {
            self.usernet_ns = Some(
                crate::usernet::open_netns(pid.as_raw())
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            );
        }
        Ok(())
    }

    /// P7, while the child mounts its root: start pasta, plug into user networks.
    fn released(&mut self, _pid: Pid) -> Result<(), Error> {
        if let Some(later) = self.later.take() {
            self.net = Some(hooks::network_start(later)?);
        }
        if let (Some(u), Some(netns)) = (self.usernet.take(), self.usernet_ns.take()) {
            self.attached = Some(
                crate::usernet::Attached::setup(
                    u.paths,
                    u.leases,
                    u.aliases,
                    u.holder.userns.as_fd(),
                    u.holder.netns.as_fd(),
                    netns,
                    u.id,
                    u.name,
                )
                .map_err(|e| Error::Invalid(e.to_string()))?,
            );
            // Plugged in: the holder's way out (it may have started with us) before the
            // command runs. On failure the handle above unplugs it again.
            crate::usernet::helper_ready::wait(u.paths)
                .map_err(|e| Error::Invalid(e.to_string()))?;
        }
        Ok(())
    }
}
