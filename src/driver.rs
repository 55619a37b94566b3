//! Which rootfs driver works on this host: kernel overlay mounted inside the user namespace
//! (`userxattr`, kernel >= 5.11), fuse-overlayfs, or a plain copy ("vfs").
//!
//! The truth is found by trying: a `box __internal probe DIR` helper enters a user namespace
//! mapped like a container, mounts a tiny overlay and reports. The answer is cached in the
//! runtime dir per kernel release, so `box run` does not pay for the probe each time.
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
        return Ok(p);
    }
    let p = probe_now(runtime, maps)?;
    let tmp = runtime.join(format!(".driver-probe.{}.tmp", std::process::id()));
    if std::fs::write(&tmp, serde_json::to_vec(&p).unwrap_or_default()).is_ok() {
        let _ = std::fs::rename(&tmp, &cache);
    }
    Ok(p)
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
