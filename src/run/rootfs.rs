//! The container's filesystem, built by the child as root of its user namespace, in its
//! own mount namespace, before `pivot_root`.
//!
//! Every mount uses the new mount API: a filesystem is created detached (`fsopen` …
//! `fsmount`) or a bind is cloned detached (`open_tree`), then attached with `move_mount`
//! onto a *descriptor* of its target. Targets are resolved with `openat2(RESOLVE_IN_ROOT)`
//! relative to the root filesystem and created component by component with `mkdirat` on
//! already-resolved parents, so an image's symlink (`/proc -> /`, `/etc -> /home/me`) can
//! never redirect a mount or a new file outside the root filesystem.
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat};

use super::Fail;
use super::sys::{self, FsContext, clone_tree, mount_setattr, move_mount, open_in_root};
use crate::spec::{Driver, Mount, Spec, clean_path};

const NOSUID: u64 = libc::MOUNT_ATTR_NOSUID;
const NODEV: u64 = libc::MOUNT_ATTR_NODEV;
const NOEXEC: u64 = libc::MOUNT_ATTR_NOEXEC;
const RDONLY: u64 = libc::MOUNT_ATTR_RDONLY;

/// podman's masked paths: files get /dev/null, directories an empty read-only tmpfs.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
    "/sys/fs/selinux",
];

/// podman's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Host devices bind-mounted into the container's /dev (mknod is not allowed rootless).
pub const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Where the container's directories are on the host.
#[derive(Debug, Clone)]
pub struct Layout {
    /// box's data dir: overlay paths are given relative to it (fsconfig strings are capped
    /// at 256 bytes, mount(2) options at a page).
    pub data: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The vfs driver's copy.
    pub vfs_root: PathBuf,
    /// The mount point (only ever mounted in the container's mount namespace).
    pub merged: PathBuf,
    /// hostname, hosts, resolv.conf.
    pub userdata: PathBuf,
    /// fuse-overlayfs, when that is the driver.
    pub fuse_overlayfs: Option<PathBuf>,
    /// Mount the overlay `volatile` (no syncs of the upper dir): for `--rm` containers,
    /// whose upper dir never outlives them.
    pub volatile: bool,
    /// fuse-overlayfs `uidmapping=...,gidmapping=...` (see [`id_shift`]): set for
    /// `--userns=keep-id`, whose user namespace does not map ids the way the image's files
    /// were stored.
    pub fuse_idmap: Option<String>,
    /// Per `--mount type=image`: the directory of its upper and work directories (used
    /// with `rw=true`).
    pub image_mounts: Vec<PathBuf>,
}

trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Fail>;
}

impl<T> Ctx<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Fail> {
        self.map_err(|e| Fail::new(e as i32, format!("{}: {}", what(), e.desc())))
    }
}

fn fs_fail(ctx: &FsContext, e: Errno, what: &str) -> Fail {
    Fail::new(e as i32, format!("{what}: {} ({})", e.desc(), ctx.log()))
}

/// Make every mount private so nothing we mount propagates to the host (and back).
pub fn make_private() -> Result<(), Fail> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx(|| "make / private".into())
}

/// Mount the image as the root filesystem on `layout.merged`; returns a descriptor of it.
pub fn mount_rootfs(spec: &Spec, layout: &Layout) -> Result<OwnedFd, Fail> {
    let layers = &spec.rootfs.layers;
    if layers.is_empty() {
        return Err(Fail::new(libc::EINVAL, "the image has no layers".into()));
    }
    match spec.rootfs.driver {
        Driver::Overlay => mount_overlay(layers, layout)?,
        Driver::FuseOverlayfs => mount_fuse_overlayfs(layers, layout)?,
        Driver::Vfs => {
            super::vfs::ensure_copy(layers, &layout.vfs_root)
                .map_err(|e| Fail::new(e.raw_os_error().unwrap_or(libc::EIO), e.to_string()))?;
            let tree = clone_tree(None, &layout.vfs_root, false)
                .ctx(|| format!("bind {}", layout.vfs_root.display()))?;
            sys::move_mount_to_path(tree.as_fd(), &layout.merged)
                .ctx(|| format!("mount the root filesystem on {}", layout.merged.display()))?;
        }
    }
    restrict_rootfs(&layout.merged)?;
    open(
        &layout.merged,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", layout.merged.display()))
}

/// `--storage-opt overlay.mountopt=nodev,nosuid,noexec`: a bind remount adding them
/// (the flags the mount already has are kept: a user namespace may not drop locked ones).
fn restrict_rootfs(merged: &Path) -> Result<(), Fail> {
    use nix::sys::statvfs::FsFlags;
    let extra = crate::driver::rootfs_mount_flags();
    if extra.is_empty() {
        return Ok(());
    }
    let have =
        nix::sys::statvfs::statvfs(merged).ctx(|| format!("statvfs {}", merged.display()))?;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | extra;
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if have.flags().contains(st) {
            flags |= ms;
        }
    }
    mount(None::<&str>, merged, None::<&str>, flags, None::<&str>)
        .ctx(|| "--storage-opt overlay.mountopt: remount the root filesystem".into())
}

/// A pod's infra container (box's pause program needs no files): an empty, read-only
/// tmpfs as its root on `layout.merged`; returns a descriptor of it.
pub fn mount_empty_root(layout: &Layout) -> Result<OwnedFd, Fail> {
    let root = new_fs(
        "tmpfs",
        &[("mode", "555"), ("size", "4k")],
        RDONLY | NOSUID | NODEV | NOEXEC,
    )?;
    sys::move_mount_to_path(root.as_fd(), &layout.merged)
        .ctx(|| format!("mount the empty root on {}", layout.merged.display()))?;
    open(
        &layout.merged,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {}", layout.merged.display()))
}

fn relative<'a>(p: &'a Path, base: &Path) -> &'a Path {
    p.strip_prefix(base).unwrap_or(p)
}

fn mount_overlay(layers: &[PathBuf], layout: &Layout) -> Result<(), Fail> {
    // Paths relative to the data dir keep every option short.
    nix::unistd::chdir(&layout.data).ctx(|| format!("chdir {}", layout.data.display()))?;
    let rel = |p: &Path| relative(p, &layout.data).to_string_lossy().into_owned();
    let ctx = FsContext::new("overlay").ctx(|| "fsopen overlay".into())?;
    let _ = ctx.set("source", "overlay");
    // lowerdir+ (Linux 6.8) adds one layer per call, topmost first: no length limit.
    let mut legacy = false;
    for (i, l) in layers.iter().rev().enumerate() {
        match ctx.set("lowerdir+", &rel(l)) {
            Ok(()) => {}
            Err(Errno::EINVAL) if i == 0 => {
                legacy = true;
                break;
            }
            Err(e) => return Err(fs_fail(&ctx, e, &format!("overlay layer {}", l.display()))),
        }
    }
    if legacy {
        return mount_overlay_legacy(layers, layout);
    }
    ctx.set("upperdir", &rel(&layout.upper))
        .map_err(|e| fs_fail(&ctx, e, "overlay upperdir"))?;
    ctx.set("workdir", &rel(&layout.work))
        .map_err(|e| fs_fail(&ctx, e, "overlay workdir"))?;
    ctx.flag("userxattr")
        .map_err(|e| fs_fail(&ctx, e, "overlay userxattr"))?;
    if layout.volatile {
        // Linux 5.10+; older kernels just sync as usual.
        let _ = ctx.flag("volatile");
    }
    let mnt = match ctx.mount(0) {
        Ok(m) => m,
        // Overlay before Linux 6.5 has no fs_context of its own: the keys above were only
        // collected, and the unknown "lowerdir+" fails here. The mount(2) string then.
        Err(Errno::EINVAL) => return mount_overlay_legacy(layers, layout),
        Err(e) => return Err(fs_fail(&ctx, e, "mount overlay")),
    };
    sys::move_mount_to_path(mnt.as_fd(), &layout.merged)
        .ctx(|| format!("mount the root filesystem on {}", layout.merged.display()))
}

/// Kernels before 6.8: one mount(2) option string (at most a page), relative paths.
fn mount_overlay_legacy(layers: &[PathBuf], layout: &Layout) -> Result<(), Fail> {
    let rel = |p: &Path| relative(p, &layout.data).to_string_lossy().into_owned();
    let lower: Vec<String> = layers.iter().rev().map(|l| rel(l)).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.join(":"),
        rel(&layout.upper),
        rel(&layout.work)
    );
    if opts.len() >= 4096 {
        return Err(Fail::new(
            libc::E2BIG,
            format!(
                "the image has too many layers ({}) for this kernel's overlay: use --storage-driver vfs or a kernel >= 6.8",
                layers.len()
            ),
        ));
    }
    mount(
        Some("overlay"),
        &layout.merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .ctx(|| "mount overlay".into())
}

fn mount_fuse_overlayfs(layers: &[PathBuf], layout: &Layout) -> Result<(), Fail> {
    let prog = layout
        .fuse_overlayfs
        .clone()
        .ok_or_else(|| Fail::new(libc::ENOENT, "fuse-overlayfs is not installed".into()))?;
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    let mut opts = format!(
        "lowerdir={},upperdir={},workdir={},allow_other",
        lower.join(":"),
        layout.upper.display(),
        layout.work.display()
    );
    if let Some(idmap) = &layout.fuse_idmap {
        opts.push(',');
        opts.push_str(idmap);
    }
    // fuse-overlayfs daemonizes once mounted; the daemon lives in the container's pid
    // namespace and dies with it. It gets a mount namespace of its own: in ours,
    // pivot_root would make its own FUSE mount its root, and any path it then looked up
    // would wait for itself. Its mount reaches us because the mount point is a shared
    // bind mount (a peer in both namespaces); everything is made private again after.
    let m = &layout.merged;
    mount(Some(m), m, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .ctx(|| format!("bind {}", m.display()))?;
    mount(
        None::<&str>,
        m,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .ctx(|| format!("share {}", m.display()))?;
    let mut cmd = std::process::Command::new(&prog);
    cmd.arg("-o")
        .arg(&opts)
        .arg(m)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // SAFETY: unshare is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().map_err(|e| {
        Fail::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("run {}: {e}", prog.display()),
        )
    })?;
    if !out.status.success() {
        return Err(Fail::new(
            libc::EIO,
            format!(
                "fuse-overlayfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    // pivot_root refuses shared mounts.
    make_private()
}

/// The id shift that shows stored files with their image owners inside a namespace mapped
/// by `ns` when they were stored under `stored` (both container → host maps). For each
/// image id X: fuse-overlayfs (running in `ns`) sees the file's owner as ns⁻¹(stored(X))
/// and must present it as X. Returned as fuse-overlayfs triples, which read
/// `SEEN:PRESENTED:COUNT` (checked: `stat` in a keep-id container shows image owners).
pub fn id_shift(stored: &[crate::userns::IdMap], ns: &[crate::userns::IdMap]) -> String {
    let mut triples: Vec<(u64, u64, u64)> = Vec::new();
    for a in stored {
        let (a_lo, a_hi) = (a.host as u64, a.host as u64 + a.size as u64);
        for k in ns {
            let (k_lo, k_hi) = (k.host as u64, k.host as u64 + k.size as u64);
            let (lo, hi) = (a_lo.max(k_lo), a_hi.min(k_hi));
            if lo < hi {
                let image = a.container as u64 + (lo - a_lo);
                let seen = k.container as u64 + (lo - k_lo);
                triples.push((seen, image, hi - lo));
            }
        }
    }
    triples.sort_unstable();
    triples
        .iter()
        .map(|(x, y, n)| format!("{x}:{y}:{n}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn o_path() -> libc::c_int {
    libc::O_PATH
}

/// Resolve `path` inside `root` (following symlinks only within it).
pub fn resolve(root: BorrowedFd, path: &str) -> nix::Result<OwnedFd> {
    open_in_root(root, Path::new(&clean_path(path)), o_path())
}

/// `mkdir -p` inside `root`; returns the directory.
pub fn mkdir_all(root: BorrowedFd, path: &str) -> nix::Result<OwnedFd> {
    let clean = clean_path(path);
    let dir = libc::O_PATH | libc::O_DIRECTORY;
    match open_in_root(root, Path::new(&clean), dir) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let mut cur = open_in_root(root, Path::new("/"), dir)?;
    let mut prefix = PathBuf::from("/");
    for comp in clean.split('/').filter(|c| !c.is_empty()) {
        prefix.push(comp);
        cur = match open_in_root(root, &prefix, dir) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                // `cur` is a real directory inside the root; `comp` is one plain name.
                match nix::sys::stat::mkdirat(cur.as_fd(), comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                open_in_root(root, &prefix, dir)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Create an empty file inside `root` if nothing is there; returns it. A dangling
/// symlink in the way is replaced by the file.
pub fn mkfile(root: BorrowedFd, path: &str) -> nix::Result<OwnedFd> {
    let clean = clean_path(path);
    match open_in_root(root, Path::new(&clean), o_path()) {
        Err(Errno::ENOENT) => {}
        r => return r,
    }
    let p = Path::new(&clean);
    let parent = mkdir_all(
        root,
        &p.parent().unwrap_or(Path::new("/")).to_string_lossy(),
    )?;
    let name = p.file_name().unwrap_or(OsStr::new("."));
    let create = || {
        openat(
            parent.as_fd(),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
    };
    match create() {
        Ok(_) => {}
        Err(Errno::EEXIST) => {
            nix::unistd::unlinkat(
                parent.as_fd(),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )?;
            create()?;
        }
        Err(e) => return Err(e),
    }
    open_in_root(root, p, o_path())
}

/// Fill the empty volume directory `dest` with the image's `target` directory (owners,
/// modes, times, links), as docker does when a volume is first mounted.
fn copy_up(root: BorrowedFd, target: &str, dest: &Path) -> Result<(), Fail> {
    let fail = |e: std::io::Error| {
        Fail::new(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("copy the image's {target} into its volume: {e}"),
        )
    };
    let empty = std::fs::read_dir(dest).map_err(fail)?.next().is_none();
    if !empty {
        return Ok(());
    }
    let src = match resolve(root, target) {
        Ok(fd) if is_dir(fd.as_fd()) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        _ => return Ok(()),
    };
    super::vfs::copy_dir(
        Path::new(&format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&src)
        )),
        dest,
    )
    .map_err(fail)
}

fn is_dir(fd: BorrowedFd) -> bool {
    fstat(fd)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

/// Attach the detached mount `mnt` on the directory `target` (created if missing).
fn attach_dir(root: BorrowedFd, target: &str, mnt: &OwnedFd) -> Result<(), Fail> {
    let t = mkdir_all(root, target).ctx(|| format!("create {target} in the container"))?;
    move_mount(mnt.as_fd(), t.as_fd()).ctx(|| format!("mount on {target}"))
}

fn new_fs(fstype: &str, params: &[(&str, &str)], attrs: u64) -> Result<OwnedFd, Fail> {
    let ctx = FsContext::new(fstype).ctx(|| format!("fsopen {fstype}"))?;
    for (k, v) in params {
        ctx.set(k, v)
            .map_err(|e| fs_fail(&ctx, e, &format!("{fstype} option {k}={v}")))?;
    }
    ctx.mount(attrs)
        .map_err(|e| fs_fail(&ctx, e, &format!("mount {fstype}")))
}

/// What the standard mounts need to know.
pub struct Specials {
    /// The container has its own network namespace (sysfs can be mounted fresh).
    pub netns: bool,
    /// Mount the container's own cgroup2 tree at /sys/fs/cgroup (cgroup v2 hosts only).
    pub cgroupfs: bool,
    /// gid 5 (tty) is mapped, so devpts can give it to new ptys.
    pub tty_gid: bool,
}

/// /proc, /sys, /dev and its contents.
pub fn mount_specials(root: BorrowedFd, spec: &Spec, sp: &Specials) -> Result<(), Fail> {
    // /proc: a new instance for the new pid namespace.
    let proc_ = new_fs("proc", &[], NOSUID | NODEV | NOEXEC)?;
    attach_dir(root, "/proc", &proc_)?;
    super::trace("  /proc");

    // /sys: sysfs of our network namespace, read-only; else the host's, read-only.
    let sys_ro = if spec.privileged { 0 } else { RDONLY };
    let sysfs = match sp.netns {
        true => new_fs("sysfs", &[], sys_ro | NOSUID | NODEV | NOEXEC).ok(),
        false => None,
    };
    let sysfs = match sysfs {
        Some(m) => m,
        None => {
            let t = clone_tree(None, Path::new("/sys"), true).ctx(|| "bind /sys".into())?;
            mount_setattr(t.as_fd(), sys_ro | NOSUID | NODEV | NOEXEC, 0, true)
                .ctx(|| "make /sys read-only".into())?;
            t
        }
    };
    attach_dir(root, "/sys", &sysfs)?;
    super::trace("  /sys");
    // The container's own cgroup tree (its cgroup namespace), on cgroup v2 hosts.
    if sp.cgroupfs
        && let Ok(cg) = new_fs("cgroup2", &[], sys_ro | NOSUID | NODEV | NOEXEC)
    {
        let _ = attach_dir(root, "/sys/fs/cgroup", &cg);
    }

    super::trace("  cgroup2");
    // /dev: a small tmpfs with the host's harmless devices bound in.
    let dev = new_fs(
        "tmpfs",
        &[("mode", "755"), ("size", "65536k")],
        NOSUID | libc::MOUNT_ATTR_STRICTATIME,
    )?;
    attach_dir(root, "/dev", &dev)?;
    for d in DEVICES {
        let host = format!("/dev/{d}");
        let Ok(tree) = clone_tree(None, Path::new(&host), false) else {
            continue; // a host without this device: the container goes without
        };
        let t = mkfile(root, &host).ctx(|| format!("create {host}"))?;
        move_mount(tree.as_fd(), t.as_fd()).ctx(|| format!("bind {host}"))?;
    }
    let mut pts_params = vec![("ptmxmode", "0666"), ("mode", "0620")];
    if sp.tty_gid {
        pts_params.push(("gid", "5"));
    }
    let pts = match new_fs("devpts", &pts_params, NOSUID | NOEXEC) {
        Ok(m) => m,
        Err(_) => new_fs(
            "devpts",
            &[("ptmxmode", "0666"), ("mode", "0620")],
            NOSUID | NOEXEC,
        )?,
    };
    attach_dir(root, "/dev/pts", &pts)?;
    super::trace("  /dev, devices, pts");
    let shm_size = format!(
        "{}k",
        spec.settings.shm_size.unwrap_or(64 << 20).div_ceil(1024)
    );
    let shm = new_fs(
        "tmpfs",
        &[("mode", "1777"), ("size", &shm_size)],
        NOSUID | NODEV | NOEXEC,
    )?;
    attach_dir(root, "/dev/shm", &shm)?;
    if let Ok(mq) = new_fs("mqueue", &[], NOSUID | NODEV | NOEXEC) {
        let _ = attach_dir(root, "/dev/mqueue", &mq);
    }
    let devfd = resolve(root, "/dev").ctx(|| "open /dev".into())?;
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        nix::unistd::symlinkat(target, devfd.as_fd(), name)
            .ctx(|| format!("symlink /dev/{name}"))?;
    }
    if spec.tty {
        mkfile(root, "/dev/console").ctx(|| "create /dev/console".into())?;
    }
    Ok(())
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf from the container's userdata dir.
pub fn mount_etc_files(root: BorrowedFd, userdata: &Path, root_owned: bool) -> Result<(), Fail> {
    for f in ["hostname", "hosts", "resolv.conf"] {
        let src = userdata.join(f);
        if root_owned {
            // --userns=keep-id: the user is mapped to their own id inside, so these
            // files, theirs on the host, would be the container user's: make them
            // root's (the container's), as podman keeps them.
            std::os::unix::fs::chown(&src, Some(0), Some(0)).map_err(|e| {
                Fail::new(
                    e.raw_os_error().unwrap_or(libc::EPERM),
                    format!("chown {}: {e}", src.display()),
                )
            })?;
        }
        let tree = clone_tree(None, &src, false).ctx(|| format!("bind {}", src.display()))?;
        let target = format!("/etc/{f}");
        let t = mkfile(root, &target).ctx(|| format!("create {target}"))?;
        move_mount(tree.as_fd(), t.as_fd()).ctx(|| format!("mount on {target}"))?;
    }
    Ok(())
}

/// `--userns=keep-id`: the user's entry appended to the container's /etc/passwd and
/// /etc/group (in its upper layer, as podman does) unless one has that id already.
/// `entries` are (file, id field's value, line).
pub fn add_entries(root: BorrowedFd, entries: &[(&str, u32, String)]) -> Result<(), Fail> {
    use std::io::{Read, Write};
    for (file, id, line) in entries {
        let fd = match open_in_root(root, Path::new(file), libc::O_RDWR | libc::O_APPEND) {
            Ok(fd) => fd,
            // No such file in the image, or a read-only one: nothing to add to.
            Err(Errno::ENOENT | Errno::EROFS | Errno::EACCES) => continue,
            Err(e) => return Err(Fail::new(e as i32, format!("open {file}: {}", e.desc()))),
        };
        let mut f = std::fs::File::from(fd);
        let mut text = String::new();
        let _ = f.read_to_string(&mut text);
        let id = id.to_string();
        if text
            .lines()
            .any(|l| l.split(':').nth(2) == Some(id.as_str()))
        {
            continue;
        }
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        f.write_all(format!("{sep}{line}\n").as_bytes())
            .map_err(|e| {
                Fail::new(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    format!("{file}: {e}"),
                )
            })?;
    }
    Ok(())
}

/// `--mount type=image`: an image's layers as a read-only overlay on `target`, or with
/// `rw` (the directory holding `upper` and `work`) a writable one whose changes stay there.
pub fn mount_image(
    root: BorrowedFd,
    layers: &[PathBuf],
    target: &str,
    rw: Option<&Path>,
    volatile: bool,
) -> Result<(), Fail> {
    let ctx = FsContext::new("overlay").ctx(|| "fsopen overlay".into())?;
    let _ = ctx.set("source", "overlay");
    if layers.len() == 1 && rw.is_none() {
        // One layer: overlay needs two lowers without an upper; a read-only bind will do.
        let tree =
            clone_tree(None, &layers[0], true).ctx(|| format!("bind {}", layers[0].display()))?;
        mount_setattr(tree.as_fd(), RDONLY, 0, true).ctx(|| format!("make {target} read-only"))?;
        return attach_dir(root, target, &tree);
    }
    for l in layers.iter().rev() {
        ctx.set("lowerdir+", &l.to_string_lossy())
            .map_err(|e| fs_fail(&ctx, e, &format!("image layer {}", l.display())))?;
    }
    // The upper and work directories through a descriptor: short options, however long
    // the container's path.
    let dir = match rw {
        Some(d) => Some(
            open(
                d,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| format!("open {}", d.display()))?,
        ),
        None => None,
    };
    if let Some(dir) = &dir {
        let base = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(dir));
        ctx.set("upperdir", &format!("{base}/upper"))
            .map_err(|e| fs_fail(&ctx, e, &format!("the upper directory of {target}")))?;
        ctx.set("workdir", &format!("{base}/work"))
            .map_err(|e| fs_fail(&ctx, e, &format!("the work directory of {target}")))?;
        if volatile {
            let _ = ctx.flag("volatile");
        }
    }
    ctx.flag("userxattr")
        .map_err(|e| fs_fail(&ctx, e, "overlay userxattr"))?;
    let mnt = ctx
        .mount(if dir.is_some() { 0 } else { RDONLY })
        .map_err(|e| fs_fail(&ctx, e, &format!("mount the image on {target}")))?;
    attach_dir(root, target, &mnt)
}

/// `-v SRC:DEST:O`: an overlay with SRC as its lower layer and its upper and work
/// directories in a fresh tmpfs, so what the container changes goes with it.
fn overlay_on(source: &Path, readonly: bool) -> Result<OwnedFd, Fail> {
    let tmp = new_fs("tmpfs", &[("mode", "0755")], 0)?;
    for d in ["upper", "work"] {
        nix::sys::stat::mkdirat(tmp.as_fd(), d, Mode::from_bits_truncate(0o755))
            .ctx(|| format!("create the overlay's {d} directory"))?;
    }
    let base = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&tmp));
    let ctx = FsContext::new("overlay").ctx(|| "fsopen overlay".into())?;
    let _ = ctx.set("source", "overlay");
    ctx.set("lowerdir", &source.to_string_lossy())
        .map_err(|e| fs_fail(&ctx, e, &format!("overlay lowerdir {}", source.display())))?;
    ctx.set("upperdir", &format!("{base}/upper"))
        .map_err(|e| fs_fail(&ctx, e, "overlay upperdir"))?;
    ctx.set("workdir", &format!("{base}/work"))
        .map_err(|e| fs_fail(&ctx, e, "overlay workdir"))?;
    ctx.flag("userxattr")
        .map_err(|e| fs_fail(&ctx, e, "overlay userxattr"))?;
    ctx.mount(if readonly { RDONLY } else { 0 })
        .map_err(|e| fs_fail(&ctx, e, &format!("overlay on {}", source.display())))
}

/// `-v ...:U`: everything under `source` chowned to `uid:gid` (ids of the container's
/// namespace), through descriptors without following symlinks.
pub fn chown_tree(source: &Path, uid: u32, gid: u32) -> Result<(), Fail> {
    let fail = |what: String| move |e: Errno| Fail::new(e as i32, format!("{what}: {}", e.desc()));
    let top = nix::fcntl::open(
        source,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    use nix::fcntl::{AT_FDCWD, AtFlags};
    use nix::unistd::{Gid, Uid};
    let (u, g) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let top = match top {
        Ok(fd) => fd,
        // A file: chown it alone.
        Err(Errno::ENOTDIR) => {
            return nix::unistd::fchownat(AT_FDCWD, source, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(fail(format!("chown {}", source.display())));
        }
        Err(e) => return Err(fail(format!("open {}", source.display()))(e)),
    };
    nix::unistd::fchown(&top, u, g).map_err(fail(format!("chown {}", source.display())))?;
    let mut stack = vec![top];
    while let Some(dir) = stack.pop() {
        let mut d = nix::dir::Dir::openat(
            &dir,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(fail(format!("read {}", source.display())))?;
        for e in d.iter() {
            let e = e.map_err(fail(format!("read {}", source.display())))?;
            let name = e.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            nix::unistd::fchownat(&dir, name, u, g, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(fail(format!("chown {}/{:?}", source.display(), name)))?;
            if e.file_type() == Some(nix::dir::Type::Directory) {
                let sub = nix::fcntl::openat(
                    &dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(fail(format!("open {}/{:?}", source.display(), name)))?;
                stack.push(sub);
            }
        }
    }
    Ok(())
}

/// A host file bound read-only on `target` (`--tz`'s /etc/localtime).
pub fn bind_readonly_file(root: BorrowedFd, src: &Path, target: &str) -> Result<(), Fail> {
    let tree = clone_tree(None, src, false).ctx(|| format!("bind {}", src.display()))?;
    mount_setattr(tree.as_fd(), RDONLY, 0, false).ctx(|| format!("make {target} read-only"))?;
    let t = mkfile(root, target).ctx(|| format!("create {target}"))?;
    move_mount(tree.as_fd(), t.as_fd()).ctx(|| format!("mount on {target}"))?;
    Ok(())
}

/// `-v` and `--tmpfs` mounts, parents before children (`-v /a/b` then `-v /a` would hide
/// the first), as docker orders them. `volumes` are the indexes of the binds that are
/// volumes: an empty one first gets what the image has at its path (docker's copy-up).
/// `idmapped` are the detached idmapped mounts box made of `:idmap` binds, by target.
pub fn mount_volumes(
    root: BorrowedFd,
    mounts: &[Mount],
    volumes: &[usize],
    overlays: &[String],
    idmapped: &[(String, OwnedFd)],
) -> Result<(), Fail> {
    let mut order: Vec<usize> = (0..mounts.len()).collect();
    order.sort_by_key(|&i| match &mounts[i] {
        Mount::Bind { target, .. } | Mount::Tmpfs { target, .. } => {
            Path::new(target).components().count()
        }
    });
    for i in order {
        let m = &mounts[i];
        match m {
            Mount::Bind {
                source,
                target,
                readonly,
            } => {
                if overlays.contains(target) && source.is_dir() {
                    let mnt = overlay_on(source, *readonly)?;
                    attach_dir(root, target, &mnt)?;
                    continue;
                }
                if volumes.contains(&i) {
                    copy_up(root, target, source)?;
                }
                let made = idmapped.iter().find(|(t, _)| t == target);
                let cloned;
                let tree = match made {
                    // Made idmapped (and read-only if asked) by box.
                    Some((_, fd)) => fd,
                    None => {
                        cloned = clone_tree(None, source, true)
                            .ctx(|| format!("bind {}", source.display()))?;
                        &cloned
                    }
                };
                if *readonly && made.is_none() {
                    mount_setattr(tree.as_fd(), RDONLY, 0, true)
                        .ctx(|| format!("make {target} read-only"))?;
                }
                let t = if source.is_dir() {
                    mkdir_all(root, target)
                } else {
                    mkfile(root, target)
                }
                .ctx(|| format!("create {target} in the container"))?;
                move_mount(tree.as_fd(), t.as_fd())
                    .ctx(|| format!("mount {} on {target}", source.display()))?;
            }
            Mount::Tmpfs { target, options } => {
                let mut attrs = NOSUID | NODEV | NOEXEC;
                let mut params: Vec<(&str, &str)> = Vec::new();
                for o in options {
                    match o.as_str() {
                        "ro" => attrs |= RDONLY,
                        "rw" => attrs &= !RDONLY,
                        "exec" => attrs &= !NOEXEC,
                        "noexec" => attrs |= NOEXEC,
                        "suid" => attrs &= !NOSUID,
                        "nosuid" => attrs |= NOSUID,
                        "dev" => attrs &= !NODEV,
                        "nodev" => attrs |= NODEV,
                        kv => {
                            if let Some((k, v)) = kv.split_once('=') {
                                params.push((k, v));
                            }
                        }
                    }
                }
                let mnt = new_fs("tmpfs", &params, attrs)?;
                attach_dir(root, target, &mnt)?;
            }
        }
    }
    Ok(())
}

/// Mask and make read-only what podman does (nothing with --privileged).
pub fn apply_masks(root: BorrowedFd) -> Result<(), Fail> {
    for p in MASKED_PATHS {
        let t = match resolve(root, p) {
            Ok(t) => t,
            Err(Errno::ENOENT) | Err(Errno::EACCES) => continue,
            Err(e) => return Err(Fail::new(e as i32, format!("mask {p}: {}", e.desc()))),
        };
        let mnt = if is_dir(t.as_fd()) {
            new_fs(
                "tmpfs",
                &[("mode", "755")],
                RDONLY | NOSUID | NODEV | NOEXEC,
            )?
        } else {
            clone_tree(None, Path::new("/dev/null"), false).ctx(|| "bind /dev/null".into())?
        };
        move_mount(mnt.as_fd(), t.as_fd()).ctx(|| format!("mask {p}"))?;
    }
    for p in READONLY_PATHS {
        let t = match resolve(root, p) {
            Ok(t) => t,
            Err(Errno::ENOENT) | Err(Errno::EACCES) => continue,
            Err(e) => return Err(Fail::new(e as i32, format!("{p}: {}", e.desc()))),
        };
        let tree = clone_tree(Some(t.as_fd()), Path::new(""), true).ctx(|| format!("bind {p}"))?;
        mount_setattr(tree.as_fd(), RDONLY | NOSUID | NODEV, 0, true)
            .ctx(|| format!("make {p} read-only"))?;
        move_mount(tree.as_fd(), t.as_fd()).ctx(|| format!("mount {p} read-only"))?;
    }
    Ok(())
}

/// `--read-only`: the root mount itself (not the mounts on it) becomes read-only.
pub fn make_root_readonly(root: BorrowedFd) -> Result<(), Fail> {
    mount_setattr(root, RDONLY, 0, false).ctx(|| "make the root filesystem read-only".into())
}

/// `pivot_root` into `root` and detach the host's filesystem.
pub fn pivot(root: BorrowedFd) -> Result<(), Fail> {
    nix::unistd::fchdir(root).ctx(|| "chdir to the root filesystem".into())?;
    sys::pivot_root_cwd().ctx(|| "pivot_root".into())?;
    umount2(".", MntFlags::MNT_DETACH).ctx(|| "detach the old root".into())?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After pivot_root (or in a joined container): the working directory `path`, resolved in
/// the container's root without magic links (`/proc/self/fd/N` of an inherited descriptor
/// would lead to the host), as an `O_PATH` descriptor to `fchdir` to. With `create`, a
/// missing directory is made, as docker does for `run -w`.
pub fn open_workdir(path: &str, create: bool) -> Result<OwnedFd, Fail> {
    let fail = |e: Errno, what: &str| Fail::new(e as i32, format!("{what} {path}: {}", e.desc()));
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(e, "open / for the working directory"))?;
    let flags = libc::O_PATH | libc::O_DIRECTORY;
    match open_in_root(root.as_fd(), Path::new(path), flags) {
        Err(Errno::ENOENT) if create => {}
        r => return r.map_err(|e| fail(e, "the working directory")),
    }
    // Make each missing component, each resolved in the root like the whole path.
    let mut prefix = PathBuf::from("/");
    for part in Path::new(path).components() {
        let std::path::Component::Normal(name) = part else {
            if part == std::path::Component::ParentDir {
                prefix.pop();
            }
            continue;
        };
        let parent = open_in_root(root.as_fd(), &prefix, flags)
            .map_err(|e| fail(e, "create the working directory"))?;
        match nix::sys::stat::mkdirat(parent.as_fd(), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(fail(e, "create the working directory")),
        }
        prefix.push(name);
    }
    open_in_root(root.as_fd(), Path::new(path), flags).map_err(|e| fail(e, "the working directory"))
}

/// After pivot_root, with a terminal: bind its slave onto /dev/console, as docker does.
pub fn bind_console(slave_path: &Path) {
    let _ = mount(
        Some(slave_path),
        "/dev/console",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    );
}

#[cfg(test)]
mod tests {
    use crate::userns::IdMap;

    fn m(container: u32, host: u32, size: u32) -> IdMap {
        IdMap {
            container,
            host,
            size,
        }
    }

    #[test]
    fn keep_id_shift_puts_image_owners_back() {
        // Stored as: 0 → 1001, 1.. → 100000..; keep-id: 0..1000 → 100000.., 1001 → 1001,
        // 1002.. → 101001..
        let stored = [m(0, 1001, 1), m(1, 100000, 65536)];
        let keep = [m(0, 100000, 1001), m(1001, 1001, 1), m(1002, 101001, 64535)];
        // Seen 0..1000 are image ids 1..1001; seen 1001 (the user) is image root.
        assert_eq!(
            super::id_shift(&stored, &keep),
            "0:1:1001:1001:0:1:1002:1002:64535"
        );
        // Same maps: the identity.
        assert_eq!(super::id_shift(&stored, &stored), "0:0:1:1:1:65536");
    }
}
