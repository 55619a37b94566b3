//! Container creation, both sides of the handshake, top to bottom.
//!
//! box's own process (single-threaded, checked) clones the child with fork semantics and
//! new user, mount, pid, uts, ipc (and, unless `--network host`, network) namespaces, so
//! the child is both PID 1 of the container and a direct child of box. The cgroup
//! namespace comes at C3, after the parent moved the child into its cgroup.
//! The two talk over one SOCK_SEQPACKET socketpair (`sync::handshake`: box holds a `ParentEnd`
//! that sends `ToChild` and receives `ToParent`, the child a `ChildEnd`, the reverse):
//!
//! ```text
//!  parent (box)                                  child (container PID 1)
//!  P1 assert single-threaded; the user namespaces
//!     of `idmap=uids=..` binds (run::idmap)
//!  P2 socketpair, clone(CLONE_NEW*)  ─────────►  C1 PR_SET_PDEATHSIG(SIGKILL); wait for
//!  P3 open /proc/PID/ns/user; hooks.cloned()        Release (EOF: box died → exit)
//!     (the cleanup watcher)
//!  P4 write uid/gid maps (newuidmap/newgidmap)
//!  P5 hooks.mapped() (cgroup attach; the
//!     namespaces the network needs, opened)
//!  P6 idmap `:idmap` binds (run::idmap) ──────►  (collected until Release)
//!     IdmappedMount{target} + fd, each
//!     send Release  ─────────────────────────►  C2 setresuid/gid(0): root of the userns
//!  P7 hooks.released() (the network: pasta,     C3 new cgroup namespace (now that it is
//!     netavark), meanwhile the child goes on       in its cgroup), hostname, loopback up
//!     send NetworkReady  ────────────────────►  C4 mount the image (overlay/fuse/vfs)
//!                                               C5 /proc /sys /dev /etc files, volumes
//!                                                  (the idmapped ones box sent),
//!                                                  masks, read-only root
//!                                               C6 pivot_root, detach the host's root
//!  P8 receive until EOF  ◄── PtyMaster + fd ──  C7 pty or stdio, user, working dir;
//!                                                  wait for NetworkReady (before C3's
//!                                                  sysctls when one is net.*)
//!                                               C8 capabilities, seccomp, no_new_privs
//!                        ◄── Failed{step,..} ── (any step that fails)
//!                        ◄── EOF ────────────── C9 execve: the CLOEXEC end closes
//! ```
//! The network comes up while the child mounts its root (P7 beside C3–C7), not before it
//! is released: neither needs the other until the command runs.
//! A child error arrives as `Failed { step, errno, message }`; the parent reaps the child
//! and turns it into `Error::Child` (exit code 125), or 126/127 for an exec failure. EOF
//! without `Failed` means the command is running.
//!
//! `--network container:NAME` (see `network::join`) replaces P2: a network namespace
//! belongs to the user namespace it was made in, so the child must live in the other
//! container's user namespace, and namespaces can only be made from inside it. As runc's
//! nsexec does, a short-lived joiner does that and hands the child back to box:
//!
//! ```text
//!  P2 socketpair, fork the joiner ──►  J0 setns(user), setns(net) of the other container;
//!                                         clone(CLONE_PARENT | CLONE_NEW{NS,PID,UTS,IPC})
//!     ◄── Cloned{pid} ───────────────     (box is the child's parent), then exit
//!     reap the joiner; P3 as above, P4 skipped (the user namespace is mapped already)
//! ```
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid};

use super::rootfs::{self, Layout, Specials};
use super::sync::{ChildEnd, Step, ToChild, ToParent};
use super::sys::{self, Forked};
use super::{Error, Fail, exec, security, user};
use crate::spec::{Seccomp, Spec};
use crate::userns::IdMaps;

/// Where the container's stdio goes.
pub enum ChildStdio {
    /// box's own stdin/stdout/stderr (stdin only with -i; else /dev/null). With -t, a pty.
    Inherit,
    /// stdout and stderr appended to this file, stdin /dev/null (a pty's output too).
    Log(OwnedFd),
    /// box's stdin (with -i), stdout and stderr into these pipes, which box copies to its
    /// own and into the container's log.
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
}

/// Everything the child needs, prepared by the parent before the clone (the child gets a
/// copy of the parent's memory).
pub struct Launch<'a> {
    pub spec: &'a Spec,
    pub hostname: &'a str,
    /// The final environment, except HOME (which depends on the user).
    pub env: Vec<String>,
    pub layout: Layout,
    pub specials: Specials,
    pub stdio: ChildStdio,
    /// The user's terminal size, for the container's pty.
    pub winsize: Option<libc::winsize>,
    /// Compiled seccomp programs (empty: unconfined).
    pub seccomp: Vec<seccompiler::BpfProgram>,
    /// Capability mask.
    pub caps: u64,
    /// `--network container:NAME`: the other container's namespaces to join.
    pub join: Option<Join<'a>>,
    /// Indexes of `spec.mounts` that are volumes (copied up from the image when empty).
    pub volumes: Vec<usize>,
    /// Supplementary groups can be set (not in a single-id user namespace).
    pub setgroups: bool,
    /// (file, id, line) entries for /etc/passwd and /etc/group, added when the image has
    /// none with that id: `--userns=keep-id`'s user, `--hostuser`, `--passwd`.
    pub user_entries: Vec<(String, u32, String)>,
    /// `--userns=keep-id`: the /etc files box provides become the container's root's.
    pub etc_root_owned: bool,
    /// `--tz`: the host's zone file to bind read-only on /etc/localtime.
    pub localtime: Option<std::path::PathBuf>,
}

/// The user and network namespaces of the container whose network the new one joins.
#[derive(Clone, Copy)]
pub struct Join<'a> {
    pub userns: BorrowedFd<'a>,
    /// `None` when that container uses the host's network: then so does this one.
    pub netns: Option<BorrowedFd<'a>>,
    /// A pod's infra container's uts and ipc namespaces, for its members (`--share`).
    pub utsns: Option<BorrowedFd<'a>>,
    pub ipcns: Option<BorrowedFd<'a>>,
    /// A network namespace of its own in that user namespace (user networks: netavark
    /// plugs it into the holder's bridge).
    pub new_netns: bool,
}

/// What the parent does between the clone and the command.
pub trait Hooks {
    /// P3: the child exists (its user namespace is open in `userns`).
    fn cloned(&mut self, pid: Pid, userns: BorrowedFd) -> Result<(), Error>;
    /// P5: the id maps are written; the child waits to be released. Whatever must open
    /// the child's /proc/PID/ns/* does it here: from C2 on the child is not dumpable.
    fn mapped(&mut self, pid: Pid) -> Result<(), Error>;
    /// P7: the child was released and mounts its root meanwhile; it runs its command only
    /// once this returned (the network is set up here).
    fn released(&mut self, pid: Pid) -> Result<(), Error>;
}

/// The running container's PID 1, as the parent sees it.
pub struct Created {
    pub pid: Pid,
    /// The pty master (with -t).
    pub pty: Option<OwnedFd>,
    /// The container's user namespace (keeps it alive to remove its files later).
    pub userns: OwnedFd,
}

/// Create the container and start its command; returns once the command is running.
pub fn create(launch: &Launch, maps: &IdMaps, hooks: &mut dyn Hooks) -> Result<Created, Error> {
    // P1. Forking a multithreaded process copies only this thread, with whatever locks the
    // others held: refuse (threads from pulling must have been joined).
    let threads = sys::thread_count();
    if threads != 1 {
        return Err(Error::Threads(threads));
    }
    // `idmap=uids=..;gids=..` binds map through user namespaces of their own, made (by a
    // fork) now, while box is still single-threaded.
    let own_idmaps = super::idmap::mapping_namespaces(launch.spec)?;

    // P2. The channel and the clone (through the joiner for `--network container:`).
    let (ours, theirs) = super::sync::handshake()?;
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    // CLONE_NEWCGROUP is not here: the child unshares it after P5 (see C3), so that its
    // cgroup namespace is rooted at the container's own cgroup, not at box's.
    let pid = match launch.join {
        None => {
            flags |= libc::CLONE_NEWUSER;
            if !launch.spec.host_network() {
                flags |= libc::CLONE_NEWNET;
            }
            // SAFETY: single-threaded (checked above); the child never returns from `child`.
            let pid = match unsafe { sys::clone_process(flags) }.map_err(Error::Clone)? {
                Forked::Child => {
                    drop(ours);
                    child(launch, maps, &theirs)
                }
                Forked::Parent(pid) => pid,
            };
            drop(theirs);
            pid
        }
        Some(join) => {
            // Joined uts and ipc namespaces replace new ones.
            if join.utsns.is_some() {
                flags &= !libc::CLONE_NEWUTS;
            }
            if join.ipcns.is_some() {
                flags &= !libc::CLONE_NEWIPC;
            }
            if join.new_netns {
                flags |= libc::CLONE_NEWNET;
            }
            // SAFETY: single-threaded (checked above); the joiner never returns.
            let joiner = match unsafe { sys::clone_process(0) }.map_err(Error::Clone)? {
                Forked::Child => {
                    drop(ours);
                    joiner(launch, maps, join, flags, &theirs)
                }
                Forked::Parent(pid) => pid,
            };
            drop(theirs);
            let cloned = ours.recv();
            // The joiner exits right after its message (or its failure).
            let _ = waitpid(joiner, None);
            match cloned? {
                Some((ToParent::Cloned { pid }, _)) => Pid::from_raw(pid),
                Some((
                    ToParent::Failed {
                        step,
                        errno,
                        message,
                    },
                    _,
                )) => return Err(Error::child(step, errno, message, &launch.spec.args)),
                other => {
                    return Err(Error::Protocol(format!(
                        "the namespace joiner sent {other:?}"
                    )));
                }
            }
        }
    };
    super::trace("P2 cloned");
    let abort = |e: Error| {
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        e
    };

    // P3. Keep the user namespace open (cleanup removes the container's files from inside
    // it after the container is gone), then let the caller start the watcher.
    let userns = open(
        format!("/proc/{pid}/ns/user").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| abort(Error::Sys("open the container's user namespace", e)))?;
    hooks.cloned(pid, userns.as_fd()).map_err(abort)?;
    super::trace("P3 user namespace open, watcher started");

    // P4. The id maps: newuidmap/newgidmap (or direct writes as root). A joined user
    // namespace has its maps already.
    if launch.join.is_none() {
        write_maps(maps, pid).map_err(abort)?;
        super::trace("P4 id maps written");
    }

    // P5. The cgroup; what the network will need opened.
    hooks.mapped(pid).map_err(abort)?;
    super::trace("P5 cgroup, network namespaces open");

    // P6. The `:idmap` binds, idmapped through the child's now mapped user namespace
    // (only box may: see `idmap`), handed over as detached mounts; then the release.
    for (target, mnt) in
        super::idmap::make_mounts(launch.spec, userns.as_fd(), &own_idmaps).map_err(abort)?
    {
        ours.send_with_fd(&ToChild::IdmappedMount { target }, Some(mnt.as_fd()))
            .map_err(|e| abort(e.into()))?;
    }
    ours.send(&ToChild::Release).map_err(|e| abort(e.into()))?;
    super::trace("P6 released");

    // P7. The network, while the child mounts its root; then it may run its command.
    if let Err(e) = hooks.released(pid) {
        let e = abort(e);
        // A child that failed meanwhile said why (its message outlives it): that is the
        // error, not what the network made of its going.
        return Err(failure_said(&ours, &launch.spec.args).unwrap_or(e));
    }
    // A child that failed meanwhile has closed its end (EPIPE here): P8 reads why.
    let _ = ours.send(&ToChild::NetworkReady);
    super::trace("P7 network ready");

    // P8. Until EOF: the pty master, or a failure.
    let mut pty = None;
    loop {
        match ours.recv().map_err(|e| abort(e.into()))? {
            None => break,
            Some((ToParent::PtyMaster, mut fds)) => pty = fds.pop(),
            Some((
                ToParent::Failed {
                    step,
                    errno,
                    message,
                },
                _,
            )) => {
                let _ = waitpid(pid, None);
                return Err(Error::child(step, errno, message, &launch.spec.args));
            }
            Some((other, _)) => {
                return Err(abort(Error::Protocol(format!("unexpected {other:?}"))));
            }
        }
    }
    super::trace("P8 EOF: the command runs");
    Ok(Created { pid, pty, userns })
}

/// The failure a child that is gone reported, if it did (what it sent is still queued).
fn failure_said(ours: &super::sync::ParentEnd, args: &[String]) -> Option<Error> {
    loop {
        match ours.recv() {
            Ok(Some((
                ToParent::Failed {
                    step,
                    errno,
                    message,
                },
                _,
            ))) => return Some(Error::child(step, errno, message, args)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

/// P4: the id maps (newuidmap and newgidmap run concurrently; root and single-id maps are
/// written directly).
fn write_maps(maps: &IdMaps, pid: Pid) -> Result<(), Error> {
    Ok(maps.write_for(pid)?)
}

/// J0, the joiner: enter the other container's user namespace (which gives the
/// capabilities to make namespaces owned by it) and network namespace, clone the child as
/// box's own child (CLONE_PARENT), report its pid and exit. Never returns.
fn joiner(launch: &Launch, maps: &IdMaps, join: Join, flags: libc::c_int, ch: &ChildEnd) -> ! {
    let fail = |errno: i32, message: String| -> ! {
        let _ = ch.send(&ToParent::Failed {
            step: Step::Join,
            errno,
            message,
        });
        // SAFETY: _exit in a forked child.
        unsafe { libc::_exit(crate::exit::BOX_ERROR as i32) }
    };
    use nix::sched::{CloneFlags, setns};
    if let Err(e) = setns(join.userns, CloneFlags::CLONE_NEWUSER) {
        fail(e as i32, format!("enter its user namespace: {}", e.desc()));
    }
    if let Some(netns) = join.netns
        && let Err(e) = setns(netns, CloneFlags::CLONE_NEWNET)
    {
        fail(
            e as i32,
            format!("enter its network namespace: {}", e.desc()),
        );
    }
    for (ns, flag, what) in [
        (join.utsns, CloneFlags::CLONE_NEWUTS, "uts"),
        (join.ipcns, CloneFlags::CLONE_NEWIPC, "ipc"),
    ] {
        if let Some(fd) = ns
            && let Err(e) = setns(fd, flag)
        {
            fail(
                e as i32,
                format!("enter its {what} namespace: {}", e.desc()),
            );
        }
    }
    // SAFETY: the joiner is single-threaded (a fork of single-threaded box).
    match unsafe { sys::clone_process(flags | libc::CLONE_PARENT) } {
        Ok(Forked::Child) => child(launch, maps, ch),
        Ok(Forked::Parent(pid)) => {
            let code = match ch.send(&ToParent::Cloned { pid: pid.as_raw() }) {
                Ok(()) => 0,
                Err(_) => {
                    let _ = kill(pid, Signal::SIGKILL);
                    1
                }
            };
            // SAFETY: _exit in a forked child.
            unsafe { libc::_exit(code) }
        }
        Err(e) => fail(e as i32, format!("clone into its namespaces: {}", e.desc())),
    }
}

/// The child: run the steps; on failure report it and exit. Never returns. `maps` are its
/// user namespace's (a joined one has the same: same user, same --userns mode).
fn child(launch: &Launch, maps: &IdMaps, ch: &ChildEnd) -> ! {
    let Err((step, fail)) = steps(launch, maps, ch);
    let _ = ch.send(&ToParent::Failed {
        step,
        errno: fail.errno,
        message: fail.message,
    });
    let code = if step == Step::Exec {
        exec::exit_code_for(fail.errno)
    } else {
        crate::exit::BOX_ERROR
    };
    // SAFETY: _exit skips the parent's atexit handlers and stdio buffers we share.
    unsafe { libc::_exit(code as i32) }
}

/// The child's side of P7: whether the parent said the network is ready.
pub enum Network {
    Pending,
    Ready,
}

impl Network {
    /// Wait for `NetworkReady` (once). box gone or giving up (it kills us then anyway):
    /// nothing to report to, so exit.
    pub fn wait(&mut self, ch: &ChildEnd) {
        if let Network::Pending = self {
            match ch.recv() {
                Ok(Some((ToChild::NetworkReady, _))) => *self = Network::Ready,
                // SAFETY: plain _exit in the child.
                _ => unsafe { libc::_exit(1) },
            }
        }
    }
}

/// A pod's infra container (or the user networks' holder) with no image: box's pause
/// program (`run::pause`).
fn is_pause(spec: &crate::spec::Spec) -> bool {
    spec.is_infra() && spec.rootfs.layers.is_empty()
}

fn at(step: Step) -> impl Fn(Fail) -> (Step, Fail) {
    move |f| (step, f)
}

fn errno(step: Step, what: &str) -> impl Fn(nix::Error) -> (Step, Fail) + '_ {
    move |e| (step, Fail::new(e as i32, format!("{what}: {}", e.desc())))
}

fn steps(l: &Launch, maps: &IdMaps, ch: &ChildEnd) -> Result<Infallible, (Step, Fail)> {
    let spec = l.spec;

    // C1. Die with box. If box died before this took effect, its end of the channel is
    // closed and the wait below sees EOF. (The usual getppid() check cannot work: in a new
    // pid namespace getppid() is 0.)
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(errno(Step::Release, "prctl"))?;
    let mut idmapped: Vec<(String, OwnedFd)> = Vec::new();
    loop {
        match ch.recv() {
            Ok(Some((ToChild::Release, _))) => break,
            Ok(Some((ToChild::IdmappedMount { target }, mut fds))) if fds.len() == 1 => {
                idmapped.extend(fds.pop().map(|fd| (target, fd)));
            }
            // box is gone or gave up (it kills us then anyway): nothing to report to.
            // SAFETY: plain _exit in the child.
            _ => unsafe { libc::_exit(1) },
        }
    }

    super::trace("C1 released");
    // C2. Root of the user namespace (with --userns=keep-id the creator's uid is not 0).
    let root_g = Gid::from_raw(0);
    let root_u = Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g)
        .map_err(errno(Step::Identity, "setresgid(0)"))?;
    nix::unistd::setresuid(root_u, root_u, root_u)
        .map_err(errno(Step::Identity, "setresuid(0)"))?;
    // EPERM when setgroups is denied (single-id maps): then there are none to drop.
    // `--group-add keep-groups` keeps the user's own groups (podman's rootless meaning).
    if !spec.settings.keep_groups {
        let _ = nix::unistd::setgroups(&[]);
    }
    // From here on, other processes cannot ptrace us or open /proc/1/{mem,exe,fd}: the
    // child still runs box's image (and stays box with --init). Not box's pause program:
    // alone in its pid namespace, no container process can name it, and box, as the user,
    // must be able to open its /proc/PID/ns/* from the moment it is mapped (the user
    // networks' holder says it runs at P5, see `run::start`); it ends dumpable anyway.
    if !is_pause(spec) {
        nix::sys::prctl::set_dumpable(false)
            .map_err(errno(Step::Identity, "prctl(PR_SET_DUMPABLE)"))?;
    }

    super::trace("C2 root of the user namespace");
    // C3. The cgroup namespace (rooted at the cgroup the parent just moved us into), the
    // host name, loopback up in a new network namespace.
    if !spec.settings.host_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(errno(Step::Namespaces, "unshare the cgroup namespace"))?;
    }
    // A pod's member that shares the infra's uts namespace keeps the pod's host name.
    if l.join.is_none_or(|j| j.utsns.is_none()) {
        nix::unistd::sethostname(l.hostname).map_err(errno(Step::Namespaces, "sethostname"))?;
    }
    if !spec.host_network() && l.join.is_none_or(|j| j.new_netns) {
        crate::network::bring_up_loopback()
            .map_err(|e| (Step::Namespaces, Fail::new(libc::EPERM, e.to_string())))?;
    }

    // A net.* sysctl may name an interface the network brings (eth0): wait for it first.
    let mut network = Network::Pending;
    if spec
        .settings
        .sysctls
        .iter()
        .any(|(k, _)| k.starts_with("net."))
    {
        network.wait(ch);
    }
    // --sysctl: only namespaced ones were accepted; written through the host's /proc,
    // which shows the namespaces of the writer (ours).
    for (k, v) in &spec.settings.sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|e| {
            (
                Step::Namespaces,
                Fail::new(
                    e.raw_os_error().unwrap_or(libc::EPERM),
                    format!("--sysctl {k}={v}: {e}"),
                ),
            )
        })?;
    }

    super::trace("C3 cgroup namespace, hostname, loopback");
    // A pod's infra container: box's pause program on an empty root, no image (unless
    // `pod create --infra-image` gave it one: then it runs as any container).
    if is_pause(spec) {
        return super::pause::run(l, ch, network);
    }
    // C4. The image.
    rootfs::make_private().map_err(at(Step::Rootfs))?;
    let root = rootfs::mount_rootfs(spec, &l.layout).map_err(at(Step::Rootfs))?;
    let r = root.as_fd();

    super::trace("C4 rootfs mounted");
    // C5. Everything mounted on it.
    let m = at(Step::Mounts);
    rootfs::mount_specials(r, spec, &l.specials).map_err(&m)?;
    super::trace("  specials");
    rootfs::mount_etc_files(r, &l.layout.userdata, l.etc_root_owned).map_err(&m)?;
    if !l.user_entries.is_empty() && !spec.read_only {
        let entries: Vec<(&str, u32, String)> = l
            .user_entries
            .iter()
            .map(|(f, id, line)| (f.as_str(), *id, line.clone()))
            .collect();
        rootfs::add_entries(r, &entries).map_err(&m)?;
    }
    if let Some(tz) = &l.localtime {
        rootfs::bind_readonly_file(r, tz, "/etc/localtime").map_err(&m)?;
    }
    super::trace("  etc files");
    if !spec.settings.chown_targets.is_empty() {
        // -v ...:U: the sources become the container user's (resolved in the image).
        let read = |p: &str| {
            use std::io::Read;
            let mut text = String::new();
            if let Ok(fd) = super::sys::open_in_root(r, std::path::Path::new(p), libc::O_RDONLY) {
                let _ = std::fs::File::from(fd).read_to_string(&mut text);
            }
            text
        };
        let id = user::resolve(&spec.user, &read("/etc/passwd"), &read("/etc/group"))
            .map_err(|msg| (Step::Mounts, Fail::new(libc::ENOENT, msg)))?;
        for mnt in &spec.mounts {
            if let crate::spec::Mount::Bind { source, target, .. } = mnt
                && spec.settings.chown_targets.contains(target)
            {
                rootfs::chown_tree(source, id.uid, id.gid).map_err(&m)?;
            }
        }
    }
    rootfs::mount_volumes(
        r,
        &spec.mounts,
        &l.volumes,
        &spec.settings.overlay_targets,
        &idmapped,
    )
    .map_err(&m)?;
    drop(idmapped);
    for (n, im) in spec.settings.image_mounts.iter().enumerate() {
        let rw = l.layout.image_mounts.get(n).filter(|_| im.rw);
        rootfs::mount_image(
            r,
            &im.layers,
            &im.target,
            rw.map(|d| d.as_path()),
            l.layout.volatile,
        )
        .map_err(&m)?;
    }
    if !spec.privileged {
        rootfs::apply_masks(r).map_err(&m)?;
    }
    super::trace("  masks");
    if spec.read_only {
        rootfs::make_root_readonly(r).map_err(&m)?;
    }

    super::trace("C5 mounts, masks, read-only root");
    // C6. Into it; the host's tree is detached and unreachable from now on.
    rootfs::pivot(r).map_err(at(Step::PivotRoot))?;
    drop(root);

    super::trace("C6 pivoted, host root detached");
    // C7. stdio or the terminal, the user, the working directory.
    let p = Step::Process;
    setup_stdio(l, ch).map_err(at(p))?;
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let id =
        user::resolve(&spec.user, &passwd, &group).map_err(|m| (p, Fail::new(libc::ENOENT, m)))?;
    let mut id = id;
    for g in &spec.settings.group_add {
        let gid = user::group_id(g, &group).map_err(|m| (p, Fail::new(libc::ENOENT, m)))?;
        if !id.groups.contains(&gid) {
            id.groups.push(gid);
        }
    }
    // An unmapped id fails setresuid, except 4294967295 ((uid_t)-1): "unchanged", root.
    let groups: &[u32] = if l.setgroups { &id.groups } else { &[] };
    maps.check_identity(id.uid, id.gid, groups)
        .map_err(|e| (p, Fail::new(libc::EINVAL, e.to_string())))?;
    let workdir = rootfs::open_workdir(&spec.cwd, true).map_err(at(p))?;
    let mut env = l.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", id.home));
    }
    let argv = cstrings(&spec.args).map_err(|m| (p, m))?;
    let envp = cstrings(&env).map_err(|m| (p, m))?;

    network.wait(ch);
    super::trace("C7 stdio, user, working directory, network ready");
    // C8. Capabilities, seccomp, user, no_new_privs.
    let s = Step::Security;
    security::drop_bounding(l.caps).map_err(errno(s, "drop bounding capabilities"))?;
    // Installed while we still hold CAP_SYS_ADMIN (so no_new_privs is not required); the
    // filter allows everything that follows.
    for prog in &l.seccomp {
        security::install(prog).map_err(errno(s, "install the seccomp filter"))?;
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    for u in &spec.settings.ulimits {
        set_ulimit(u).map_err(|f| (s, f))?;
    }
    if let Some(mask) = spec.settings.umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    let gids: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    // A single-id map (--userns=single) has no other groups to give; keep-groups keeps
    // the user's.
    if l.setgroups
        && !spec.settings.keep_groups
        && nix::unistd::setgroups(&gids).is_err()
        && !gids.is_empty()
    {
        return Err((
            s,
            Fail::new(libc::EPERM, "cannot set the supplementary groups".into()),
        ));
    }
    let g = Gid::from_raw(id.gid);
    let u = Uid::from_raw(id.uid);
    nix::unistd::setresgid(g, g, g).map_err(errno(
        s,
        &format!("setresgid({}): is the gid mapped?", id.gid),
    ))?;
    nix::unistd::setresuid(u, u, u).map_err(errno(
        s,
        &format!("setresuid({}): is the uid mapped?", id.uid),
    ))?;
    security::set_caps(l.caps).map_err(errno(s, "set capabilities"))?;
    if spec.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(errno(s, "prctl(PR_SET_NO_NEW_PRIVS)"))?;
    }
    nix::unistd::fchdir(&workdir).map_err(errno(
        s,
        &format!("chdir to the working directory {}", spec.cwd),
    ))?;
    drop(workdir);

    super::trace("C8 capabilities, seccomp, no_new_privs");
    exec::PRESERVE_FDS.store(
        spec.settings.preserve_fds.min(exec::handed_fds()),
        std::sync::atomic::Ordering::Relaxed,
    );
    // C9. The command (under box's init with --init). Returns only on failure.
    let fail = if spec.init {
        super::init::run(ch, &argv, &envp, spec.tty)
    } else {
        exec::exec(&argv, &envp)
    };
    Err((Step::Exec, fail))
}

/// One `--ulimit`, as setrlimit.
fn set_ulimit(u: &crate::spec::Ulimit) -> Result<(), Fail> {
    let Some(resource) = crate::spec::Ulimit::resource_of(&u.name) else {
        return Err(Fail::new(
            libc::EINVAL,
            format!("--ulimit {}: unknown", u.name),
        ));
    };
    let lim = libc::rlimit {
        rlim_cur: u.soft.unwrap_or(libc::RLIM_INFINITY),
        rlim_max: u.hard.unwrap_or(libc::RLIM_INFINITY),
    };
    // SAFETY: setrlimit with a valid resource and a struct on our stack.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        let e = nix::Error::last();
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        unsafe { libc::getrlimit(resource, &mut cur) };
        let show = |v: u64| {
            if v == libc::RLIM_INFINITY {
                "unlimited".to_string()
            } else {
                v.to_string()
            }
        };
        return Err(Fail::new(
            e as i32,
            format!(
                "--ulimit {}: {} (a rootless container cannot raise the hard limit above the user's, {})",
                u.name,
                e.desc(),
                show(cur.rlim_max)
            ),
        ));
    }
    Ok(())
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, Fail> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| Fail::new(libc::EINVAL, format!("{s:?} contains a NUL byte")))
        })
        .collect()
}

fn dup_onto(fd: BorrowedFd, target: i32) -> Result<(), Fail> {
    // SAFETY: dup2 onto a standard descriptor number, which we own.
    if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&fd), target) } < 0 {
        let e = nix::Error::last();
        return Err(Fail::new(e as i32, format!("dup2: {}", e.desc())));
    }
    Ok(())
}

/// C7: a new session; the pty (sent to the parent) or the inherited/logged stdio.
fn setup_stdio(l: &Launch, ch: &ChildEnd) -> Result<(), Fail> {
    let sys_err = |what: &'static str| {
        move |e: nix::Error| Fail::new(e as i32, format!("{what}: {}", e.desc()))
    };
    // Own session: terminal signals reach box (which forwards them), not the container.
    nix::unistd::setsid().map_err(sys_err("setsid"))?;
    let devnull = || {
        open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(sys_err("open /dev/null"))
    };
    if l.spec.tty {
        let master = open(
            "/dev/ptmx",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys_err("open /dev/ptmx"))?;
        let slave_path = sys::unlock_pty(master.as_fd()).map_err(sys_err("unlock the pty"))?;
        let slave = sys::open_pty_peer(master.as_fd()).map_err(sys_err("open the pty"))?;
        if let Some(ws) = &l.winsize {
            let _ = sys::set_winsize(slave.as_fd(), ws);
        }
        // The parent relays the terminal (to the user, or into the log).
        ch.send_with_fd(&ToParent::PtyMaster, Some(master.as_fd()))
            .map_err(|e| Fail::new(libc::EIO, e.to_string()))?;
        drop(master);
        // SAFETY: TIOCSCTTY with an integer argument on our new session's terminal.
        if unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&slave), libc::TIOCSCTTY, 0) } < 0 {
            let e = nix::Error::last();
            return Err(Fail::new(e as i32, format!("TIOCSCTTY: {}", e.desc())));
        }
        for fd in 0..3 {
            dup_onto(slave.as_fd(), fd)?;
        }
        rootfs::bind_console(&slave_path);
        return Ok(());
    }
    match &l.stdio {
        ChildStdio::Inherit => {
            if !l.spec.interactive {
                dup_onto(devnull()?.as_fd(), 0)?;
            }
        }
        ChildStdio::Log(log) => {
            dup_onto(devnull()?.as_fd(), 0)?;
            dup_onto(log.as_fd(), 1)?;
            dup_onto(log.as_fd(), 2)?;
        }
        ChildStdio::Pipes { stdout, stderr } => {
            if !l.spec.interactive {
                dup_onto(devnull()?.as_fd(), 0)?;
            }
            dup_onto(stdout.as_fd(), 1)?;
            dup_onto(stderr.as_fd(), 2)?;
        }
    }
    Ok(())
}

/// The seccomp programs of a container, in installation order (none: unconfined).
pub fn seccomp_programs(spec: &Spec, caps: u64) -> Result<Vec<seccompiler::BpfProgram>, Error> {
    match &spec.seccomp {
        _ if spec.privileged => Ok(Vec::new()),
        Seccomp::Unconfined => Ok(Vec::new()),
        Seccomp::Default => Ok(security::default_profile(caps)?),
        Seccomp::Profile { text, .. } => super::seccomp_profile::compile(
            text,
            &super::seccomp_profile::Target {
                caps: &spec.caps,
                kernel: super::seccomp_profile::running_kernel(),
            },
        )
        .map_err(|e| Error::Invalid(format!("--security-opt seccomp: {e}"))),
    }
}
