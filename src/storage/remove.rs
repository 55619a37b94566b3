//! Removing trees that hold files owned by subordinate ids (layers, container upper dirs).
//!
//! As an ordinary user those files can only be removed from inside a user namespace mapped
//! like a container: `remove_trees` spawns `box __internal remove PATH...` through
//! `userns::spawn_helper`; `helper_main` is that helper's body. As root it removes directly.
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::Error;
use crate::userns;

/// Remove `path` (file or tree) without following symlinks, making directories writable
/// on the way when their mode forbids it. A missing path is fine.
pub fn remove_tree_direct(path: &Path) -> Result<(), Error> {
    remove_path(path).map_err(|source| Error::Io {
        what: format!("remove {}", path.display()),
        source,
    })
}

/// [`remove_tree_direct`] with the plain I/O error (overlay's work/work is mode 0, so a
/// first `remove_dir_all` can fail where one after fixing the modes does not).
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    let md = match fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !md.is_dir() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    match fs::remove_dir_all(path) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    // Slow path: some directory is not writable or searchable; fix modes and retry.
    fix_modes(path);
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn fix_modes(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                fix_modes(&e.path());
            }
        }
    }
}

/// Remove trees that may hold subordinate-owned files. `data` is the data directory every
/// path must be under. Spawns the userns helper when not root; call it from a
/// single-threaded moment (no download or progress threads alive).
pub fn remove_trees(data: &Path, paths: &[PathBuf]) -> Result<(), Error> {
    if paths.is_empty() {
        return Ok(());
    }
    for p in paths {
        check_under(data, p)?;
    }
    if nix::unistd::geteuid().is_root() {
        for p in paths {
            remove_tree_direct(p)?;
        }
        return Ok(());
    }
    // Whatever we can remove ourselves (our own files) goes first; the rest needs the ns.
    let rest: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| remove_tree_direct(p).is_err())
        .collect();
    if rest.is_empty() {
        return Ok(());
    }
    let maps = userns::IdMaps::for_current_user(userns::Mode::Auto)?;
    let mut args: Vec<std::ffi::OsString> = vec!["remove".into()];
    args.extend(rest.iter().map(|p| p.as_os_str().to_owned()));
    let mut cmd = userns::helper_command(&args);
    cmd.env("BOX_ROOT", data)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = userns::spawn_helper(&maps, cmd)?;
    let out = child.wait_with_output().map_err(|e| Error::Io {
        what: "wait for the remove helper".into(),
        source: e,
    })?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Helper(format!(
            "remove helper failed: {}",
            msg.trim().trim_start_matches("box: ")
        )));
    }
    Ok(())
}

/// `path` must be absolute, free of `..`, and strictly under `data`.
fn check_under(data: &Path, path: &Path) -> Result<(), Error> {
    let ok = path.is_absolute()
        && !path.components().any(|c| matches!(c, Component::ParentDir))
        && path.starts_with(data)
        && path != data;
    if ok {
        Ok(())
    } else {
        Err(Error::Helper(format!(
            "refusing to remove {}: not under {}",
            path.display(),
            data.display()
        )))
    }
}

/// Body of `box __internal remove PATH...`: enter the namespace, remove each path.
pub fn helper_main(data: &Path, paths: &[PathBuf]) -> Result<(), Error> {
    userns::helper_enter()?;
    for p in paths {
        check_under(data, p)?;
        // The parent of the path must not be a symlink that leads elsewhere.
        if let Some(parent) = p.parent() {
            let real = fs::canonicalize(parent).map_err(|e| Error::Io {
                what: format!("resolve {}", parent.display()),
                source: e,
            })?;
            let real_data = fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
            if !real.starts_with(&real_data) {
                return Err(Error::Helper(format!(
                    "refusing to remove {}: it resolves outside {}",
                    p.display(),
                    data.display()
                )));
            }
        }
        remove_tree_direct(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_read_only_trees_and_refuses_outside() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("f"), "x").unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree_direct(&t.path().join("a")).unwrap();
        assert!(!t.path().join("a").exists());
        assert!(check_under(t.path(), Path::new("/etc")).is_err());
        assert!(check_under(t.path(), &t.path().join("../x")).is_err());
        assert!(check_under(t.path(), &t.path().join("x")).is_ok());
    }
}
