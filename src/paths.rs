//! Per-user directories, resolved once per invocation.
//!
//! - data (images, layers, container records): `--root`/`BOX_ROOT`, else `$XDG_DATA_HOME/box`
//!   (~/.local/share/box).
//! - runtime (pids, locks, mount points; gone after reboot): `--runroot`/`BOX_RUNROOT`, else
//!   `$XDG_RUNTIME_DIR/box`, else `/tmp/box-$UID` (0700, must be ours), as under `su`.
//! - config (auth.json, registries.toml): `$XDG_CONFIG_HOME/box` (~/.config/box).
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot find the home directory: set HOME or pass --root")]
    NoHome,
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} belongs to uid {owner}, not to you (uid {uid}): remove it or set XDG_RUNTIME_DIR"
    )]
    NotOurs { path: PathBuf, owner: u32, uid: u32 },
}

#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent per-user data: store, container records, volumes.
    pub data: PathBuf,
    /// Runtime state, cleared by a reboot.
    pub runtime: PathBuf,
    /// Per-user configuration.
    pub config: PathBuf,
}

impl Paths {
    /// Resolve from explicit overrides (flags or env, already merged by clap) and XDG.
    pub fn resolve(root: Option<&Path>, runroot: Option<&Path>) -> Result<Paths, Error> {
        let uid = nix::unistd::getuid().as_raw();
        let base = directories::BaseDirs::new();
        let data = match root {
            Some(r) => absolute(r),
            None => base.as_ref().ok_or(Error::NoHome)?.data_dir().join("box"),
        };
        let runtime = match runroot {
            Some(r) => absolute(r),
            None => match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
                Some(dir) if writable_dir(Path::new(&dir)) => PathBuf::from(dir).join("box"),
                _ => PathBuf::from(format!("/tmp/box-{uid}")),
            },
        };
        let config = match std::env::var_os("BOX_CONFIG_DIR").filter(|v| !v.is_empty()) {
            Some(c) => PathBuf::from(c),
            None => base.as_ref().ok_or(Error::NoHome)?.config_dir().join("box"),
        };
        Ok(Paths {
            data,
            runtime,
            config,
        })
    }

    /// Create the data and runtime directories (0700) and check the runtime dir is ours.
    pub fn ensure(&self) -> Result<(), Error> {
        for dir in [&self.data, &self.runtime] {
            ensure_private_dir(dir)?;
        }
        Ok(())
    }

    pub fn store(&self) -> PathBuf {
        self.data.join("storage")
    }
    pub fn containers(&self) -> PathBuf {
        self.data.join("containers")
    }
    pub fn volumes(&self) -> PathBuf {
        self.data.join("volumes")
    }
    pub fn pods(&self) -> PathBuf {
        self.data.join("pods")
    }
    pub fn auth_file(&self) -> PathBuf {
        self.config.join("auth.json")
    }
    pub fn registries_file(&self) -> PathBuf {
        self.config.join("registries.toml")
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn writable_dir(p: &Path) -> bool {
    nix::unistd::access(
        p,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_ok()
}

/// Create `dir` (and parents) with mode 0700; a pre-existing dir must belong to us.
pub fn ensure_private_dir(dir: &Path) -> Result<(), Error> {
    let uid = nix::unistd::getuid().as_raw();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Create {
            path: dir.to_path_buf(),
            source,
        })?;
    let md = fs::metadata(dir).map_err(|source| Error::Create {
        path: dir.to_path_buf(),
        source,
    })?;
    if md.uid() != uid {
        return Err(Error::NotOurs {
            path: dir.to_path_buf(),
            owner: md.uid(),
            uid,
        });
    }
    if md.permissions().mode() & 0o077 != 0 && dir.starts_with("/tmp") {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_root_wins() {
        let t = tempfile::tempdir().unwrap();
        let p = Paths::resolve(Some(&t.path().join("d")), Some(&t.path().join("r"))).unwrap();
        assert_eq!(p.data, t.path().join("d"));
        assert_eq!(p.runtime, t.path().join("r"));
        p.ensure().unwrap();
        let mode = fs::metadata(&p.runtime).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
