//! Where `box cp` does its copying: inside the container's user namespace, where its root
//! (your own uid) may read and write files of every user of the container, as podman's
//! copier does. A running container's namespace is joined; for a stopped (or created)
//! container box makes one with the same mapping and mounts its root filesystem in a
//! private mount namespace, so the copy sees and changes what the container will.
//!
//! ```text
//!  box cp (single-threaded)
//!   running: open /proc/PID/ns/user and /proc/PID/root, fork ─► setns(user), copy
//!   stopped: fork ─► unshare(user) ── 1 ──► box writes the id maps ── 1 ──►
//!                    setresuid(0), unshare(mount), mount the root filesystem, copy,
//!                    unmount (fuse-overlayfs exits with it)
//!   the child's answer (`+TEXT`) or error (`-LINE`) comes back over a pipe, its exit
//!   status says whether it failed
//! ```
//! `in_userns` is the same without any mount: for reading an upper directory or a stored
//! layer with the owners the container sees (`box commit`, `box diff`).
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, fork};

use super::{Ctx, Error, Result, fail};
use crate::container::{Record, Status};
use crate::paths::Paths;
use crate::run::{rootfs, sys};
use crate::userns::IdMaps;

/// Run `copy` with the container's root directory, in the container's user namespace. For
/// a container that is not running, its volumes and bind mounts are mounted too (not its
/// tmpfs mounts), so what is copied lands where the container will see it.
pub fn in_container(
    paths: &Paths,
    rec: &Record,
    copy: impl FnOnce(BorrowedFd) -> Result<()>,
) -> Result<()> {
    in_root_with(paths, rec, true, |root| copy(root).map(|()| String::new())).map(|_| ())
}

/// [`in_container`] for work that answers: what `work` returns in the child (a short
/// text, e.g. JSON) comes back to the caller.
pub fn in_root(
    paths: &Paths,
    rec: &Record,
    work: impl FnOnce(BorrowedFd) -> Result<String>,
) -> Result<String> {
    in_root_with(paths, rec, false, work)
}

fn in_root_with(
    paths: &Paths,
    rec: &Record,
    with_binds: bool,
    work: impl FnOnce(BorrowedFd) -> Result<String>,
) -> Result<String> {
    check_threads()?;
    let st = super::status::observe(rec);
    if let (Status::Running, Some(pid)) = (st.status, st.pid) {
        let ns = open_proc(pid, "ns/user", OFlag::O_RDONLY)?;
        let root = open_proc(pid, "root", OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        return run_child(None, || {
            setns(&ns, CloneFlags::CLONE_NEWUSER)
                .ctx(|| "cannot enter the container's user namespace".into())?;
            work(root.as_fd())
        });
    }
    let spec = &rec.config.spec;
    let mode = spec.userns;
    let maps = IdMaps::for_current_user(mode)?;
    crate::run::make_rootfs_dirs(rec, spec)?;
    let layout = crate::run::layout(paths, rec, spec, mode, &maps)?;
    run_child(Some(&maps), || {
        become_root()?;
        unshare(CloneFlags::CLONE_NEWNS).ctx(|| "cannot create a mount namespace".into())?;
        let failed = |f: crate::run::Fail| Error::Failed(f.message);
        rootfs::make_private().map_err(failed)?;
        let root = rootfs::mount_rootfs(spec, &layout).map_err(failed)?;
        if with_binds {
            // The binds alone (a tmpfs mounted here would swallow the copy), their volume
            // indexes renumbered.
            let volumes = crate::run::volume_mounts(spec, &paths.volumes());
            let mut binds = Vec::new();
            let mut bind_volumes = Vec::new();
            for (i, m) in spec.mounts.iter().enumerate() {
                if matches!(m, crate::run::Mount::Bind { .. }) {
                    if volumes.contains(&i) {
                        bind_volumes.push(binds.len());
                    }
                    binds.push(m.clone());
                }
            }
            rootfs::mount_volumes(root.as_fd(), &binds, &bind_volumes, &[], &[]).map_err(failed)?;
            // Image mounts too: a copy into a writable one lands in its upper directory.
            for (n, im) in spec.settings.image_mounts.iter().enumerate() {
                let rw = layout.image_mounts.get(n).filter(|_| im.rw);
                rootfs::mount_image(
                    root.as_fd(),
                    &im.layers,
                    &im.target,
                    rw.map(|d| d.as_path()),
                    false,
                )
                .map_err(failed)?;
            }
        }
        let done = work(root.as_fd());
        drop(root);
        let _ = nix::mount::umount2(&layout.merged, nix::mount::MntFlags::MNT_DETACH);
        done
    })
}

/// Where [`in_userns`] runs.
pub enum Userns<'a> {
    /// The container's own: joined while it runs, else a new one with its mapping.
    Container(&'a Record),
    /// A new one with the mapping the store's layers were unpacked with.
    Store,
}

/// Run `work` as root of a user namespace, without mounting anything (to read an upper
/// directory or a stored layer with the owners the container sees).
pub fn in_userns(target: Userns<'_>, work: impl FnOnce() -> Result<String>) -> Result<String> {
    check_threads()?;
    let mode = match target {
        Userns::Container(rec) => {
            let st = super::status::observe(rec);
            if let (Status::Running, Some(pid)) = (st.status, st.pid) {
                let ns = open_proc(pid, "ns/user", OFlag::O_RDONLY)?;
                return run_child(None, || {
                    setns(&ns, CloneFlags::CLONE_NEWUSER)
                        .ctx(|| "cannot enter the container's user namespace".into())?;
                    work()
                });
            }
            rec.config.spec.userns
        }
        Userns::Store => crate::userns::Mode::Auto,
    };
    let maps = IdMaps::for_current_user(mode)?;
    run_child(Some(&maps), || {
        become_root()?;
        work()
    })
}

/// Write `rec`'s upper directory (its changes) as a gzip layer into `out`, as root of its
/// user namespace so that owners are the container's ids (`box commit`, `box build`'s
/// RUN steps). `drop` names empty files box made in the upper directory as mount targets
/// (build secrets), removed first so that no layer records them.
pub fn write_upper(
    rec: &Record,
    out: std::fs::File,
    timestamp: Option<u64>,
    drop: &[String],
) -> Result<crate::storage::layer::Digests> {
    use crate::storage::layer;
    let upper = rec.upper_dir();
    std::fs::create_dir_all(&upper).ctx(|| format!("create {}", upper.display()))?;
    let answer = in_userns(Userns::Container(rec), || {
        let dir: OwnedFd = std::fs::File::open(&upper)
            .ctx(|| format!("open {}", upper.display()))?
            .into();
        for rel in drop {
            remove_empty_target(dir.as_fd(), rel);
        }
        let opts = layer::Options {
            mode: layer::Mode::Layer,
            timestamp,
        };
        let d = layer::write_layer(dir.as_fd(), out, &opts)
            .map_err(|e| Error::Failed(e.to_string()))?;
        serde_json::to_string(&d).map_err(|e| Error::Failed(e.to_string()))
    })?;
    serde_json::from_str(&answer).map_err(|e| Error::Failed(e.to_string()))
}

/// Remove the empty regular file `rel` beneath `dir` (never following a symlink), then
/// its parent directories while they are empty.
fn remove_empty_target(dir: BorrowedFd, rel: &str) {
    use nix::sys::stat::{SFlag, fstatat};
    use nix::unistd::{UnlinkatFlags, unlinkat};
    let rel = rel.trim_matches('/');
    let Ok(st) = fstatat(dir, rel, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
        return;
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG || st.st_size != 0 {
        return;
    }
    if unlinkat(dir, rel, UnlinkatFlags::NoRemoveDir).is_err() {
        return;
    }
    let mut p = std::path::Path::new(rel).parent();
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        if unlinkat(dir, d, UnlinkatFlags::RemoveDir).is_err() {
            break;
        }
        p = d.parent();
    }
}

fn check_threads() -> Result<()> {
    let threads = sys::thread_count();
    if threads != 1 {
        fail!("box must be single-threaded to fork, and has {threads} threads");
    }
    Ok(())
}

fn become_root() -> Result<()> {
    let root_g = Gid::from_raw(0);
    let root_u = Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).ctx(|| "setresgid(0)".into())?;
    nix::unistd::setresuid(root_u, root_u, root_u).ctx(|| "setresuid(0)".into())?;
    Ok(())
}

fn open_proc(pid: i32, what: &str, flags: OFlag) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/{what}");
    open(path.as_str(), flags | OFlag::O_CLOEXEC, Mode::empty())
        .ctx(|| format!("cannot open the container's {path}"))
}

/// Fork; the child runs `work` (after entering a new user namespace whose `maps` the
/// parent writes, when given) and reports its answer (`+TEXT`) or its error (`-LINE`) on a
/// pipe. Returns the child's result.
fn run_child(maps: Option<&IdMaps>, work: impl FnOnce() -> Result<String>) -> Result<String> {
    let (mut err_r, err_w) = pipe()?;
    let (mut up_r, up_w) = pipe()?;
    let (mut down_r, down_w) = pipe()?;
    // SAFETY: single-threaded (checked by the caller); the child only _exits.
    match unsafe { fork() }.ctx(|| "cannot fork".into())? {
        ForkResult::Child => {
            drop((err_r, up_r, down_w));
            let (mut err_w, mut up_w) = (err_w, up_w);
            let result = (|| -> Result<String> {
                // Not dumpable: this process holds the host's destination open while it
                // sits in the container's user namespace.
                nix::sys::prctl::set_dumpable(false).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
                if maps.is_some() {
                    unshare(CloneFlags::CLONE_NEWUSER)
                        .ctx(|| "cannot create a user namespace".into())?;
                    up_w.write_all(b"1")?;
                    let mut b = [0u8; 1];
                    down_r
                        .read_exact(&mut b)
                        .ctx(|| "box did not write the id maps".into())?;
                }
                work()
            })();
            let code = match result {
                Ok(answer) => {
                    let _ = err_w.write_all(format!("+{answer}").as_bytes());
                    0
                }
                Err(e) => {
                    let _ = err_w.write_all(format!("-{}", crate::exit::error_line(&e)).as_bytes());
                    1
                }
            };
            // SAFETY: _exit in the forked child.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop((err_w, up_w, down_r));
            let mut down_w = down_w;
            if let Some(maps) = maps {
                let mut b = [0u8; 1];
                if up_r.read_exact(&mut b).is_ok() {
                    match maps.write_for(child) {
                        Ok(()) => down_w.write_all(b"1")?,
                        Err(e) => {
                            let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
                            let _ = waitpid(child, None);
                            return Err(e.into());
                        }
                    }
                }
            }
            drop(down_w);
            let mut msg = String::new();
            let _ = err_r.read_to_string(&mut msg);
            let status = waitpid(child, None).ctx(|| "waiting for the copying process".into())?;
            match (status, msg.strip_prefix('+'), msg.strip_prefix('-')) {
                (WaitStatus::Exited(_, 0), Some(answer), _) => Ok(answer.to_string()),
                (_, _, Some(err)) if !err.is_empty() => fail!("{err}"),
                (other, ..) => fail!("the copying process failed ({other:?})"),
            }
        }
    }
}

fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx(|| "pipe".into())?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}
