//! The on-disk whiteout format of unpacked layers, for every consumer of `layers/*/diff`.
//!
//! Layers are stored in the format of kernel overlayfs mounted with `userxattr`:
//! - a deleted path is a character device 0/0 with the deleted name;
//! - an opaque directory (the OCI `.wh..wh..opq` marker) carries the xattr
//!   `user.overlay.opaque=y`.
//!
//! fuse-overlayfs reads the same 0/0 character devices. Its own opaque xattr is
//! `user.fuseoverlayfs.opaque` (1.10, the version in Debian 12, does not read
//! `user.overlay.opaque`; later versions read both), so the unpacker sets both xattrs.
//! The plain-copy (vfs) driver applies layers bottom to top and uses [`is_whiteout`] and
//! [`is_opaque`] to delete what a layer deletes.
use std::ffi::CStr;
use std::fs::Metadata;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Prefix of an OCI whiteout entry in a layer tarball.
pub const OCI_WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque-directory marker entry.
pub const OCI_OPAQUE_MARKER: &str = ".wh..wh..opq";
/// Opaque xattr read by kernel overlayfs with `userxattr` (and fuse-overlayfs >= 1.11).
pub const OVERLAY_OPAQUE_XATTR: &CStr = c"user.overlay.opaque";
/// Opaque xattr read by fuse-overlayfs.
pub const FUSE_OPAQUE_XATTR: &CStr = c"user.fuseoverlayfs.opaque";

/// Whether `md` (from `symlink_metadata`) is an overlay whiteout: a 0/0 character device.
pub fn is_whiteout(md: &Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

/// Whether the directory at `dir` is marked opaque (hides everything below it).
pub fn is_opaque(dir: &Path) -> bool {
    match std::fs::File::open(dir) {
        Ok(f) => is_opaque_fd(&f),
        Err(_) => false,
    }
}

/// [`is_opaque`] for an open directory.
pub fn is_opaque_fd<F: AsFd>(dir: F) -> bool {
    [OVERLAY_OPAQUE_XATTR, FUSE_OPAQUE_XATTR]
        .iter()
        .any(|name| get_xattr_y(dir.as_fd().as_raw_fd(), name))
}

fn get_xattr_y(fd: i32, name: &CStr) -> bool {
    let mut buf = [0u8; 4];
    // SAFETY: buf is valid for buf.len() bytes; name is NUL-terminated.
    let n = unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    n == 1 && buf[0] == b'y'
}

/// Mark an open directory opaque for kernel overlay and fuse-overlayfs.
pub fn set_opaque<F: AsFd>(dir: F) -> std::io::Result<()> {
    for name in [OVERLAY_OPAQUE_XATTR, FUSE_OPAQUE_XATTR] {
        // SAFETY: value is 1 valid byte; name is NUL-terminated.
        let r = unsafe {
            libc::fsetxattr(
                dir.as_fd().as_raw_fd(),
                name.as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_roundtrip() {
        let t = tempfile::tempdir().unwrap();
        assert!(!is_opaque(t.path()));
        let f = std::fs::File::open(t.path()).unwrap();
        if set_opaque(&f).is_err() {
            eprintln!("skipped: user xattrs unsupported on this filesystem");
            return;
        }
        assert!(is_opaque(t.path()));
        let md = std::fs::symlink_metadata(t.path()).unwrap();
        assert!(!is_whiteout(&md));
    }
}
