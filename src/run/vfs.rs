//! The "vfs" driver: when neither kernel overlay nor fuse-overlayfs works, the image's
//! layers are copied once into the container's own `rootfs/`, bottom to top, with overlay
//! semantics: a 0/0 character device is a whiteout (removes the path below), a directory
//! with `user.overlay.opaque=y` (or `trusted.overlay.opaque=y`) hides what was below it.
//!
//! Runs in the child, as root of the container's user namespace (owners are kept with
//! lchown). The copy goes to `rootfs.tmp` and is renamed into place when complete.
//! Destination paths are only ever built from entries this walk created or checked, never
//! by following a symlink in the destination.
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Make sure `dest` holds the merged layers.
pub fn ensure_copy(layers: &[PathBuf], dest: &Path) -> io::Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    let tmp = dest.with_extension("tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir(&tmp)?;
    for layer in layers {
        let mut links = HashMap::new();
        apply_dir(layer, &tmp, &mut links).map_err(|e| {
            io::Error::new(e.kind(), format!("copy layer {}: {e}", layer.display()))
        })?;
    }
    // The root directory takes the top layer's mode.
    if let Some(top) = layers.last() {
        let md = fs::symlink_metadata(top)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    fs::rename(&tmp, dest)
}

/// Copy the directory `src` (a merged view: no whiteouts) into the existing empty
/// directory `dest`, which takes `src`'s owner, mode and times.
pub fn copy_dir(src: &Path, dest: &Path) -> io::Result<()> {
    let md = fs::metadata(src)?;
    apply_dir(src, dest, &mut HashMap::new())?;
    set_owner_mode_times(dest, &md, false)
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    ["user.overlay.opaque", "trusted.overlay.opaque"]
        .iter()
        .any(|name| getxattr(dir, name).is_some_and(|v| v == b"y"))
}

fn getxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = std::ffi::CString::new(name).ok()?;
    let mut buf = [0u8; 16];
    // SAFETY: valid C strings and a buffer of the given size.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn clear_dir(p: &Path) -> io::Result<()> {
    for entry in fs::read_dir(p)? {
        remove_any(&entry?.path())?;
    }
    Ok(())
}

fn set_owner_mode_times(path: &Path, md: &fs::Metadata, symlink: bool) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(md.uid()), Some(md.gid()))?;
    if !symlink {
        fs::set_permissions(path, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    let times = [
        nix::sys::time::TimeSpec::new(md.atime(), md.atime_nsec()),
        nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec()),
    ];
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &times[0],
        &times[1],
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}

/// Merge the layer directory `src` into `dst` (an existing real directory).
fn apply_dir(src: &Path, dst: &Path, links: &mut HashMap<(u64, u64), PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let s = entry.path();
        let d = dst.join(entry.file_name());
        let md = fs::symlink_metadata(&s)?;
        let ft = md.file_type();
        if is_whiteout(&md) {
            remove_any(&d)?;
            continue;
        }
        if ft.is_dir() {
            match fs::symlink_metadata(&d) {
                Ok(existing) if existing.is_dir() => {
                    if is_opaque(&s) {
                        clear_dir(&d)?;
                    }
                }
                Ok(_) => {
                    fs::remove_file(&d)?;
                    fs::create_dir(&d)?;
                }
                Err(_) => fs::create_dir(&d)?,
            }
            // Writable while we fill it, whatever its final mode.
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
            apply_dir(&s, &d, links)?;
            set_owner_mode_times(&d, &md, false)?;
            continue;
        }
        remove_any(&d)?;
        if md.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = links.get(&(md.dev(), md.ino()))
                && fs::hard_link(first, &d).is_ok()
            {
                continue;
            }
            links.insert((md.dev(), md.ino()), d.clone());
        }
        if ft.is_symlink() {
            symlink(fs::read_link(&s)?, &d)?;
            set_owner_mode_times(&d, &md, true)?;
        } else if ft.is_file() {
            fs::copy(&s, &d)?;
            set_owner_mode_times(&d, &md, false)?;
        } else if ft.is_fifo() {
            nix::unistd::mkfifo(&d, nix::sys::stat::Mode::from_bits_truncate(md.mode()))
                .map_err(io::Error::from)?;
            set_owner_mode_times(&d, &md, false)?;
        }
        // Devices and sockets cannot be created rootless; images do not need them (/dev
        // is a tmpfs).
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_merge_with_whiteouts_when_possible() {
        let t = tempfile::tempdir().unwrap();
        let l1 = t.path().join("l1");
        let l2 = t.path().join("l2");
        fs::create_dir_all(l1.join("etc/sub")).unwrap();
        fs::write(l1.join("etc/a"), "a1").unwrap();
        fs::write(l1.join("etc/sub/x"), "x").unwrap();
        fs::write(l1.join("gone"), "g").unwrap();
        fs::create_dir_all(l2.join("etc")).unwrap();
        fs::write(l2.join("etc/a"), "a2").unwrap();
        symlink("etc/a", l2.join("link")).unwrap();
        // A whiteout needs mknod(0/0): only as (namespace) root; skip that part otherwise.
        let whiteout = nix::sys::stat::mknod(
            &l2.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            0,
        )
        .is_ok();
        let dest = t.path().join("rootfs");
        ensure_copy(&[l1, l2], &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("etc/a")).unwrap(), "a2");
        assert_eq!(fs::read_to_string(dest.join("etc/sub/x")).unwrap(), "x");
        assert_eq!(
            fs::read_link(dest.join("link")).unwrap(),
            Path::new("etc/a")
        );
        if whiteout {
            assert!(!dest.join("gone").exists());
        }
        assert!(!dest.with_extension("tmp").exists());
    }
}
