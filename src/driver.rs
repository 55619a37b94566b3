//! Which rootfs driver works on this host: kernel overlay mounted inside the user namespace
//! (`userxattr`, kernel >= 5.11), fuse-overlayfs, or a plain copy ("vfs").
//!
//! The truth is found by trying: a `box __internal probe DIR` helper enters a user namespace
//! mapped like a container, mounts a tiny overlay and reports. The answer is cached in the
//! runtime dir per kernel release, so `box run` does not pay for the probe each time.
//!
//! podman's global `--storage-opt KEY=VALUE` ([`StorageOpts`]): the keys box can honour,
//! handed to the processes that act on them through the environment (the unpack helper,
//! the detached monitor's `box start`), every other key refused.
use std::path::{Path, PathBuf};

use crate::spec::Driver as StorageDriver;
use crate::userns::{self, IdMaps};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("storage driver probe: {0}")]
    Probe(String),
    #[error("storage driver {0} is not usable here: {1}")]
    Unusable(&'static str, String),
    #[error(transparent)]
    Userns(#[from] userns::Error),
    #[error("--storage-opt {0}")]
    Opt(String),
}

/// `overlay.mount_program`: the fuse-overlayfs program to use.
pub const MOUNT_PROGRAM_ENV: &str = "BOX_STORAGE_MOUNT_PROGRAM";
/// `overlay.mountopt`: `nodev`, `nosuid`, `noexec` on containers' root filesystems.
pub const MOUNTOPT_ENV: &str = "BOX_STORAGE_MOUNTOPT";
/// `overlay|vfs.ignore_chown_errors`: an image file whose owner cannot be mapped is
/// stored as the user's own instead of failing the pull.
pub const IGNORE_CHOWN_ENV: &str = "BOX_STORAGE_IGNORE_CHOWN_ERRORS";

/// The mount options `overlay.mountopt` may hold.
pub const MOUNTOPTS: &[&str] = &["nodev", "nosuid", "noexec"];

/// podman's `--storage-opt` keys that box honours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageOpts {
    pub mount_program: Option<PathBuf>,
    pub mountopt: Vec<String>,
    pub ignore_chown_errors: bool,
}

impl StorageOpts {
    pub fn parse(opts: &[String]) -> Result<StorageOpts, Error> {
        let mut out = StorageOpts::default();
        for o in opts {
            let Some((key, value)) = o.split_once('=') else {
                return Err(Error::Opt(format!("{o:?}: use KEY=VALUE")));
            };
            // podman accepts a driver prefix; box's overlay and vfs share these keys.
            match key.trim() {
                "overlay.mount_program" | "overlay2.mount_program" => {
                    let p = PathBuf::from(value);
                    let runnable = p.is_absolute()
                        && nix::unistd::access(&p, nix::unistd::AccessFlags::X_OK).is_ok()
                        && p.is_file();
                    if !runnable {
                        return Err(Error::Opt(format!(
                            "{key}={value}: not an executable file: give the absolute path of fuse-overlayfs"
                        )));
                    }
                    out.mount_program = Some(p);
                }
                "overlay.mountopt" | "overlay2.mountopt" => {
                    for m in value.split(',').filter(|m| !m.is_empty()) {
                        if !MOUNTOPTS.contains(&m) {
                            return Err(Error::Opt(format!(
                                "{key}={value}: unsupported mount option {m:?}: use {}",
                                MOUNTOPTS.join(", ")
                            )));
                        }
                        if !out.mountopt.iter().any(|x| x == m) {
                            out.mountopt.push(m.to_string());
                        }
                    }
                }
                "overlay.ignore_chown_errors"
                | "overlay2.ignore_chown_errors"
                | "vfs.ignore_chown_errors" => {
                    out.ignore_chown_errors = match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(Error::Opt(format!("{key}={value}: use true or false")));
                        }
                    };
                }
                other => {
                    return Err(Error::Opt(format!(
                        "{other}: not supported by box: use overlay.mount_program, overlay.mountopt, overlay.ignore_chown_errors or vfs.ignore_chown_errors"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Set the environment the helpers read (call while single-threaded).
    pub fn export(&self) {
        // SAFETY: the caller is single-threaded (cli::main, before any thread exists).
        unsafe {
            if let Some(p) = &self.mount_program {
                std::env::set_var(MOUNT_PROGRAM_ENV, p);
            }
            if !self.mountopt.is_empty() {
                std::env::set_var(MOUNTOPT_ENV, self.mountopt.join(","));
            }
            if self.ignore_chown_errors {
                std::env::set_var(IGNORE_CHOWN_ENV, "1");
            }
        }
    }
}

/// The fuse-overlayfs program: `overlay.mount_program`, else the one on the PATH.
pub fn fuse_overlayfs_program() -> Option<PathBuf> {
    std::env::var_os(MOUNT_PROGRAM_ENV)
        .map(PathBuf::from)
        .or_else(|| userns::tool_path("fuse-overlayfs"))
}

/// `overlay.mountopt`'s flags for a container's root filesystem.
pub fn rootfs_mount_flags() -> nix::mount::MsFlags {
    use nix::mount::MsFlags;
    let mut f = MsFlags::empty();
    for m in std::env::var(MOUNTOPT_ENV).unwrap_or_default().split(',') {
        f |= match m {
            "nodev" => MsFlags::MS_NODEV,
            "nosuid" => MsFlags::MS_NOSUID,
            "noexec" => MsFlags::MS_NOEXEC,
            _ => MsFlags::empty(),
        };
    }
    f
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    pub kernel: String,
    pub overlay: bool,
    pub overlay_error: Option<String>,
    pub fuse_overlayfs: Option<PathBuf>,
    pub dev_fuse: bool,
}

impl Probe {
    /// The best driver, or the requested one when it works.
    pub fn choose(&self, requested: Option<StorageDriver>) -> Result<StorageDriver, Error> {
        let fuse_ok = self.fuse_overlayfs.is_some() && self.dev_fuse;
        match requested {
            Some(StorageDriver::Overlay) if !self.overlay => Err(Error::Unusable(
                "overlay",
                self.overlay_error.clone().unwrap_or_default(),
            )),
            Some(StorageDriver::FuseOverlayfs) if !fuse_ok => Err(Error::Unusable(
                "fuse-overlayfs",
                "install fuse-overlayfs and make /dev/fuse readable and writable (mode 0666)"
                    .into(),
            )),
            Some(d) => Ok(d),
            None if self.overlay => Ok(StorageDriver::Overlay),
            None if fuse_ok => Ok(StorageDriver::FuseOverlayfs),
            None => Ok(StorageDriver::Vfs),
        }
    }
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The cached probe for this kernel, probing (and caching) when needed.
pub fn probe(runtime: &Path, maps: &IdMaps) -> Result<Probe, Error> {
    let cache = runtime.join("driver-probe.json");
    let kernel = kernel_release();
    if let Some(p) = std::fs::read(&cache)
        .ok()
        .and_then(|b| serde_json::from_slice::<Probe>(&b).ok())
        .filter(|p| p.kernel == kernel)
    {
        return Ok(with_mount_program(p));
    }
    let p = probe_now(runtime, maps)?;
    let tmp = runtime.join(format!(".driver-probe.{}.tmp", std::process::id()));
    if std::fs::write(&tmp, serde_json::to_vec(&p).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(&tmp, &cache);
    }
    Ok(with_mount_program(p))
}

/// `overlay.mount_program` over what the (cached) probe found.
fn with_mount_program(mut p: Probe) -> Probe {
    if let Some(prog) = std::env::var_os(MOUNT_PROGRAM_ENV) {
        p.fuse_overlayfs = Some(PathBuf::from(prog));
    }
    p
}

/// Probe without the cache.
pub fn probe_now(runtime: &Path, maps: &IdMaps) -> Result<Probe, Error> {
    let dir = tempfile::Builder::new()
        .prefix(".probe-")
        .tempdir_in(runtime)
        .map_err(|e| Error::Probe(format!("temp dir in {}: {e}", runtime.display())))?;
    let (overlay, overlay_error) = match try_overlay(maps, dir.path()) {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e)),
    };
    // The probe's files belong to the user (container root), so removal needs no helper;
    // overlay made work/work mode 0, which a plain remove_dir_all cannot enter.
    let _ = crate::storage::remove::remove_path(&dir.keep());
    Ok(Probe {
        kernel: kernel_release(),
        overlay,
        overlay_error,
        fuse_overlayfs: userns::tool_path("fuse-overlayfs"),
        dev_fuse: nix::unistd::access(
            "/dev/fuse",
            nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
        )
        .is_ok(),
    })
}

fn try_overlay(maps: &IdMaps, dir: &Path) -> Result<(), String> {
    let mut cmd = userns::helper_command(&[std::ffi::OsStr::new("probe"), dir.as_os_str()]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = userns::spawn_helper(maps, cmd).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr)
            .trim()
            .trim_start_matches("box: ")
            .to_string())
    }
}

/// The helper's side of the probe, already root in its user namespace: mount an overlay
/// with `userxattr` in a private mount namespace and check a whiteout can be made.
pub fn probe_child(dir: &Path) -> Result<(), Error> {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let err = |what: &str, e: &dyn std::fmt::Display| Error::Probe(format!("{what}: {e}"));
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| err("unshare mount namespace", &e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| err("make / private", &e))?;
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| err("mkdir", &e))?;
    }
    // A whiteout (0/0 char device) must be creatable by root of the namespace.
    nix::sys::stat::mknod(
        &dir.join("lower/wh"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .map_err(|e| err("mknod whiteout", &e))?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        dir.join("lower").display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    mount(
        Some("overlay"),
        &dir.join("merged"),
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| err("mount overlay (userxattr)", &e))?;
    std::fs::write(dir.join("merged/f"), b"x").map_err(|e| err("write through overlay", &e))?;
    nix::mount::umount2(&dir.join("merged"), nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| err("umount", &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_opts_box_can_honour_and_every_other_refused() {
        let o =
            |v: &[&str]| StorageOpts::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let got = o(&[
            "overlay.mount_program=/bin/sh",
            "overlay.mountopt=nodev,nosuid,nodev",
            "vfs.ignore_chown_errors=true",
        ])
        .unwrap();
        assert_eq!(got.mount_program, Some(PathBuf::from("/bin/sh")));
        assert_eq!(got.mountopt, ["nodev", "nosuid"]);
        assert!(got.ignore_chown_errors);
        for (bad, says) in [
            ("size=10G", "size: not supported by box"),
            (
                "overlay.force_mask=shared",
                "overlay.force_mask: not supported",
            ),
            ("overlay.mountopt=metacopy=on", "unsupported mount option"),
            (
                "overlay.mount_program=/nonexistent",
                "not an executable file",
            ),
            ("overlay.mount_program=sh", "not an executable file"),
            ("overlay.ignore_chown_errors=maybe", "use true or false"),
            ("novalue", "use KEY=VALUE"),
        ] {
            let e = o(&[bad]).unwrap_err().to_string();
            assert!(
                e.starts_with("--storage-opt ") && e.contains(says),
                "{bad}: {e}"
            );
        }
    }

    fn probe(overlay: bool, fuse: bool) -> Probe {
        Probe {
            kernel: "6.18".into(),
            overlay,
            overlay_error: (!overlay).then(|| "EPERM".into()),
            fuse_overlayfs: fuse.then(|| PathBuf::from("/usr/bin/fuse-overlayfs")),
            dev_fuse: fuse,
        }
    }

    #[test]
    fn prefers_native_overlay_then_fuse_then_copy() {
        assert_eq!(
            probe(true, true).choose(None).unwrap(),
            StorageDriver::Overlay
        );
        assert_eq!(
            probe(false, true).choose(None).unwrap(),
            StorageDriver::FuseOverlayfs
        );
        assert_eq!(
            probe(false, false).choose(None).unwrap(),
            StorageDriver::Vfs
        );
    }

    #[test]
    fn a_requested_driver_that_cannot_work_is_an_error() {
        let e = probe(false, false)
            .choose(Some(StorageDriver::Overlay))
            .unwrap_err();
        assert!(e.to_string().contains("EPERM"));
        assert!(
            probe(false, false)
                .choose(Some(StorageDriver::FuseOverlayfs))
                .is_err()
        );
        assert_eq!(
            probe(false, false)
                .choose(Some(StorageDriver::Vfs))
                .unwrap(),
            StorageDriver::Vfs
        );
    }
}
