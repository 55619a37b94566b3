//! `box unshare`, `box mount`, `box unmount`, as podman's: a command (a shell by default)
//! as root of a user namespace mapped as box's containers are (the store's files show
//! their owners, and can be changed), in a mount namespace of its own where `box mount`
//! mounts containers' root filesystems for it to look into.
//!
//! ```text
//! box unshare                     (waits; ^C goes to the command)
//!  └─ box __internal unshare -- CMD   (userns helper: unshare(USER), mapped by the
//!                                      parent, then unshare(NS), then exec CMD)
//! ```
use std::os::unix::process::CommandExt;

use anyhow::{Context, Result, anyhow, bail};

use super::containers;
use crate::cli::Ctx;
use crate::cli::args_run::{MountArgs, UnmountArgs, UnshareArgs};
use crate::container::Record;
use crate::userns::{self, IdMaps};

/// Set for the command `box unshare` runs (and so for the `box mount` it runs).
pub const UNSHARE_ENV: &str = "BOX_UNSHARE";

pub fn unshare(ctx: &Ctx, args: UnshareArgs) -> Result<u8> {
    if inside_unshare() {
        bail!("already inside box unshare: run the command directly");
    }
    ctx.paths.ensure()?;
    let maps = IdMaps::for_current_user(userns::Mode::Auto)?;
    let mut cmd = userns::helper_command(&["unshare", "--"]);
    cmd.args(&args.command)
        .env("BOX_ROOT", &ctx.paths.data)
        .env("BOX_RUNROOT", &ctx.paths.runtime)
        .env(UNSHARE_ENV, "1");
    let mut child = userns::spawn_helper(&maps, cmd)?;
    // The command owns the terminal's ^C and ^\ now; box only waits for it.
    // SAFETY: SIG_IGN installs no handler.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let status = child.wait().context("wait for the command")?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        _ => crate::exit::BOX_ERROR,
    })
}

/// `box __internal unshare -- CMD...`: enter the namespaces, then become the command.
pub fn internal(_ctx: &Ctx, command: Vec<String>) -> Result<u8> {
    userns::helper_enter()?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| anyhow!("cannot create a mount namespace: {e}"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| anyhow!("make / private: {e}"))?;
    // box's helpers ignore SIGPIPE; the command (a shell) must not inherit that.
    // SAFETY: SIG_DFL installs no handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let argv = if command.is_empty() {
        vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
    } else {
        command
    };
    let err = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .env(
            "CONTAINERS_GRAPHROOT",
            std::env::var_os("BOX_ROOT").unwrap_or_default(),
        )
        .exec();
    let code = if err.kind() == std::io::ErrorKind::NotFound {
        crate::exit::NOT_FOUND
    } else {
        crate::exit::CANNOT_INVOKE
    };
    Err(anyhow::Error::new(crate::exit::Coded::new(
        code,
        format!("cannot run {:?}: {err}", argv[0]),
    )))
}

/// Whether this box runs inside `box unshare` (root of its user namespace).
fn inside_unshare() -> bool {
    std::env::var_os(UNSHARE_ENV).is_some() && nix::unistd::geteuid().is_root()
}

fn require_namespace(what: &str) -> Result<()> {
    if inside_unshare() {
        return Ok(());
    }
    bail!(
        "box {what} needs box's user namespace: run it inside box unshare (e.g. box unshare sh -c 'ls $(box {what} NAME)')"
    )
}

/// Where `box mount` mounts a container's root filesystem.
fn mount_point(rec: &Record) -> std::path::PathBuf {
    rec.dir.join("merged")
}

fn is_mounted(path: &std::path::Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let p = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == p))
}

pub fn mount(ctx: &Ctx, args: MountArgs) -> Result<u8> {
    require_namespace("mount")?;
    let c = containers(ctx)?;
    if args.containers.is_empty() {
        for rec in c.list()? {
            let p = mount_point(&rec);
            if is_mounted(&p) {
                println!("{}  {}", rec.short_id(), p.display());
            }
        }
        return Ok(0);
    }
    super::each_name(&args.containers, |name| {
        let rec = c.find(name)?;
        let spec = &rec.config.spec;
        let target = mount_point(&rec);
        if !is_mounted(&target) {
            crate::run::make_rootfs_dirs(&rec, spec)?;
            std::fs::create_dir_all(&target)
                .with_context(|| format!("create {}", target.display()))?;
            let maps = IdMaps::for_current_user(spec.userns)?;
            let mut layout = crate::run::layout(&ctx.paths, &rec, spec, spec.userns, &maps)?;
            layout.merged = target.clone();
            layout.volatile = false;
            crate::run::rootfs::mount_rootfs(spec, &layout)
                .map_err(|f| anyhow!("mount {}: {}", rec.name(), f.message))?;
        }
        println!("{}", target.display());
        Ok(())
    })
}

pub fn unmount(ctx: &Ctx, args: UnmountArgs) -> Result<u8> {
    require_namespace("unmount")?;
    let c = containers(ctx)?;
    let names: Vec<String> = if args.all {
        c.list()?
            .into_iter()
            .filter(|r| is_mounted(&mount_point(r)))
            .map(|r| r.name().to_string())
            .collect()
    } else {
        args.containers.clone()
    };
    super::each_name(&names, |name| {
        let rec = c.find(name)?;
        let target = mount_point(&rec);
        if is_mounted(&target) {
            nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH)
                .map_err(|e| anyhow!("unmount {}: {e}", rec.name()))?;
        }
        println!("{}", rec.id());
        Ok(())
    })
}
