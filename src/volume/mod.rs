//! Named volumes: directories in the per-user store that outlive containers.
//!
//! Layout under `<data>/volumes/`:
//! ```text
//! .lock                 flock: held to create or remove a volume
//! <name>/volume.json    `Volume` record (name, created, labels)
//! <name>/_data/         what containers see at the mount point
//! ```
//! A volume is created by `box volume create NAME` or on first use by `-v NAME:/path`
//! ([`resolve_or_create`]). Files a container writes as a non-root user are owned by
//! subordinate ids on the host, so removal goes through the userns remove helper.
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

mod read;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {0:?} already exists")]
    Exists(String),
    #[error(
        "invalid volume name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error(
        "volume {name} is in use by container {container}: remove the container first or use --force"
    )]
    InUse { name: String, container: String },
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt volume record {path}: {source} (remove the directory)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    #[error("removing volume data: {0}")]
    Remove(String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// One named volume, shaped like docker's `volume inspect` output.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: PathBuf,
    pub created_at: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    pub scope: String,
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
    /// Made for one container (`-v /path`, or an image's `VOLUME`): removed with it by
    /// `rm -v` and `--rm`, as docker does.
    #[serde(default)]
    pub anonymous: bool,
}

impl Volume {
    /// The host directory of a bind volume (`-o type=bind -o device=DIR`, or `o=bind`).
    pub fn bind_device(&self) -> Option<PathBuf> {
        let bind = self.options.get("type").map(String::as_str) == Some("bind")
            || self
                .options
                .get("o")
                .is_some_and(|o| o.split(',').any(|x| x == "bind" || x == "rbind"));
        bind.then(|| self.options.get("device").map(PathBuf::from))
            .flatten()
    }
}

/// The per-user set of volumes.
#[derive(Debug, Clone)]
pub struct Volumes {
    root: PathBuf,
}

/// The volumes lock; released on drop.
pub type Lock = crate::lock::FileLock;

impl Volumes {
    /// `<data>/volumes`, created when missing.
    pub fn open(paths: &Paths) -> Result<Volumes, Error> {
        let root = paths.volumes();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)
            .map_err(io_err("create", &root))?;
        Ok(Volumes { root })
    }

    /// The volumes under `root` (`Paths::volumes`), as they are (nothing is created).
    pub fn at(root: &Path) -> Volumes {
        Volumes {
            root: root.to_path_buf(),
        }
    }

    /// The anonymous volumes among a container's mounts.
    pub fn anonymous_in(&self, mounts: &[crate::run::Mount]) -> Vec<String> {
        mounts
            .iter()
            .filter_map(|m| match m {
                crate::run::Mount::Bind { source, .. } => self.anonymous_at(source),
                crate::run::Mount::Tmpfs { .. } => None,
            })
            .collect()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<Lock, Error> {
        Ok(crate::lock::FileLock::acquire(
            &self.root.join(".lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?)
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join("volume.json")
    }

    /// Create a volume (a random 64-hex name when `name` is None).
    pub fn create(
        &self,
        name: Option<&str>,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<Volume, Error> {
        self.create_with(name, labels, Default::default())
    }

    /// `create` with the local driver's options (podman's `-o type=,device=,o=`):
    /// `type=bind` (or `o=bind`) with `device=DIR` makes the volume that host directory;
    /// `type=tmpfs` gives each container using it a fresh tmpfs (`o=` its options).
    pub fn create_with(
        &self,
        name: Option<&str>,
        labels: std::collections::BTreeMap<String, String>,
        options: std::collections::BTreeMap<String, String>,
    ) -> Result<Volume, Error> {
        let _lock = self.lock()?;
        let mut v = self.create_locked(name, labels)?;
        if !options.is_empty() {
            v.options = options;
            if let Some(device) = v.bind_device() {
                v.mountpoint = device;
            }
            let bytes = serde_json::to_vec_pretty(&v).expect("volume serializes");
            let rec = self.record_path(&v.name);
            let tmp = rec.with_extension("json.tmp");
            fs::write(&tmp, bytes).map_err(io_err("write", &tmp))?;
            fs::rename(&tmp, &rec).map_err(io_err("write", &rec))?;
        }
        Ok(v)
    }

    fn create_locked(
        &self,
        name: Option<&str>,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<Volume, Error> {
        let name_was_none = name.is_none();
        let name = match name {
            Some(n) => {
                validate_name(n)?;
                n.to_string()
            }
            None => crate::container::random_id(),
        };
        let dir = self.root.join(&name);
        if self.record_path(&name).exists() {
            return Err(Error::Exists(name));
        }
        // A data dir without a record (made by `-v NAME:/path` directly): adopt it.
        if dir.join("_data").is_dir() {
            return self.adopt(&name);
        }
        let tmp = self
            .root
            .join(format!(".tmp-{}-{}", std::process::id(), name));
        let _ = fs::remove_dir_all(&tmp);
        let data = tmp.join("_data");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&data)
            .map_err(io_err("create", &data))?;
        let vol = Volume {
            name: name.clone(),
            driver: "local".into(),
            mountpoint: dir.join("_data"),
            created_at: crate::units::now_rfc3339(),
            labels,
            scope: "local".into(),
            options: Default::default(),
            anonymous: name_was_none,
        };
        let bytes = serde_json::to_vec_pretty(&vol).expect("volume serializes");
        let rec = tmp.join("volume.json");
        fs::write(&rec, bytes).map_err(io_err("write", &rec))?;
        fs::rename(&tmp, &dir).map_err(|e| {
            let _ = fs::remove_dir_all(&tmp);
            io_err("create", &dir)(e)
        })?;
        Ok(vol)
    }

    /// A volume by name.
    pub fn get(&self, name: &str) -> Result<Volume, Error> {
        if validate_name(name).is_err() && !is_hex64(name) {
            return Err(Error::NotFound(name.to_string()));
        }
        let path = self.record_path(name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.root.join(name).join("_data").is_dir() {
                    return self.adopt(name);
                }
                return Err(Error::NotFound(name.to_string()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let mut vol: Volume =
            serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })?;
        // The store may have moved (BOX_ROOT): the mount point is where it is now, unless
        // the volume is a host directory (`-o type=bind -o device=DIR`).
        vol.mountpoint = vol
            .bind_device()
            .unwrap_or_else(|| self.root.join(name).join("_data"));
        Ok(vol)
    }

    /// Write the record of a volume whose data dir exists without one.
    fn adopt(&self, name: &str) -> Result<Volume, Error> {
        let data = self.root.join(name).join("_data");
        let created = fs::metadata(&data)
            .and_then(|m| m.modified())
            .map(crate::units::format_rfc3339)
            .unwrap_or_else(|_| crate::units::now_rfc3339());
        let vol = Volume {
            name: name.to_string(),
            driver: "local".into(),
            mountpoint: data,
            created_at: created,
            labels: Default::default(),
            scope: "local".into(),
            options: Default::default(),
            anonymous: false,
        };
        let bytes = serde_json::to_vec_pretty(&vol).expect("volume serializes");
        crate::container::write_atomic(&self.record_path(name), &bytes)
            .map_err(|e| Error::Remove(e.to_string()))?;
        Ok(vol)
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<Volume>, Error> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("read", &self.root))? {
            let entry = entry.map_err(io_err("read", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Ok(v) = self.get(&name) {
                out.push(v);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The host directory of volume `name`, creating the volume when it does not exist.
    pub fn resolve_or_create(&self, name: &str) -> Result<PathBuf, Error> {
        match self.get(name) {
            Ok(v) => return Ok(v.mountpoint),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let _lock = self.lock()?;
        match self.create_locked(Some(name), Default::default()) {
            Ok(v) => Ok(v.mountpoint),
            Err(Error::Exists(_)) => Ok(self.get(name)?.mountpoint),
            Err(e) => Err(e),
        }
    }

    /// A new anonymous volume (a random 64-hex name); returns its name and data dir.
    pub fn create_anonymous(&self) -> Result<(String, PathBuf), Error> {
        let v = self.create(None, Default::default())?;
        Ok((v.name, v.mountpoint))
    }

    /// The anonymous volume whose data dir is `source`, if it is one.
    pub fn anonymous_at(&self, source: &Path) -> Option<String> {
        let rel = source.strip_prefix(&self.root).ok()?;
        let mut parts = rel.components().skip(1);
        if parts.next()?.as_os_str() != "_data" || parts.next().is_some() {
            return None;
        }
        let name = self.name_at(source)?;
        self.get(&name).ok().filter(|v| v.anonymous).map(|v| v.name)
    }

    /// The containers among `recs` that mount volume `name`.
    pub fn mounted_by<'a>(
        &self,
        name: &str,
        recs: &'a [crate::container::Record],
    ) -> Vec<&'a crate::container::Record> {
        let dir = self.root.join(name);
        recs.iter()
            .filter(|r| {
                r.config.spec.mounts.iter().any(|m| match m {
                    crate::run::Mount::Bind { source, .. } => source.starts_with(&dir),
                    crate::run::Mount::Tmpfs { .. } => false,
                })
            })
            .collect()
    }

    /// The name of the volume a host path lies in, if it lies in one.
    pub fn name_at(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        rel.components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
    }

    /// Remove an anonymous volume no container ever used (empty, the user's own files).
    pub fn remove_unused_fresh(&self, name: &str) -> Result<(), Error> {
        let _lock = self.lock()?;
        if !self.get(name)?.anonymous {
            return Ok(());
        }
        let dir = self.root.join(name);
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    /// Move an anonymous volume into `trash` (a directory on the same filesystem) at once;
    /// the caller deletes the trash later, from inside a user namespace where every file
    /// is its own.
    pub fn retire_to(&self, name: &str, trash: &Path) -> Result<PathBuf, Error> {
        let _lock = self.lock()?;
        self.get(name)?;
        let dir = self.root.join(name);
        fs::create_dir_all(trash).map_err(io_err("create", trash))?;
        let dest = trash.join(format!("volume-{name}"));
        fs::rename(&dir, &dest).map_err(io_err("remove", &dir))?;
        Ok(dest)
    }

    /// Remove a volume and its data. Checking that no container uses it is the caller's
    /// job (it knows the containers). Spawns the userns remove helper for files owned by
    /// subordinate ids, so call it from a single-threaded moment.
    pub fn remove(&self, data_root: &Path, name: &str) -> Result<(), Error> {
        let _lock = self.lock()?;
        self.get(name)?;
        let dir = self.root.join(name);
        // Retire the record first so a half-removed volume is never listed.
        let gone = self
            .root
            .join(format!(".rm-{}-{}", std::process::id(), name));
        fs::rename(&dir, &gone).map_err(io_err("remove", &dir))?;
        crate::storage::remove::remove_trees(data_root, std::slice::from_ref(&gone))
            .map_err(|e| Error::Remove(e.to_string()))
    }

    /// Disk usage of a volume's data, in bytes (`storage::usage::disk_usage`).
    pub fn size(&self, name: &str) -> u64 {
        crate::storage::usage::disk_usage(&self.root.join(name).join("_data"))
    }
}

/// The host directory of volume `name` in the store at `paths`, created on first use.
/// For `-v NAME:/path`: a source with no `/` and no leading `.` is a volume name.
pub fn resolve_or_create(paths: &Paths, name: &str) -> Result<PathBuf, Error> {
    Volumes::open(paths)?.resolve_or_create(name)
}

/// Whether a `-v` source names a volume rather than a host path.
pub fn is_volume_name(source: &str) -> bool {
    !source.is_empty() && !source.contains('/') && !source.starts_with('.') && source != "~"
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// docker's rule for volume names (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`), at most 255 bytes (a
/// directory name).
pub fn validate_name(name: &str) -> Result<(), Error> {
    if crate::container::is_docker_name(name, 255) {
        Ok(())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(t: &Path) -> Paths {
        Paths {
            data: t.join("data"),
            runtime: t.join("run"),
            config: t.join("config"),
        }
    }

    #[test]
    fn create_list_get_remove() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let v = Volumes::open(&p).unwrap();
        let a = v.create(Some("data"), Default::default()).unwrap();
        assert!(a.mountpoint.is_dir());
        assert_eq!(a.driver, "local");
        assert!(matches!(
            v.create(Some("data"), Default::default()),
            Err(Error::Exists(_))
        ));
        let anon = v.create(None, Default::default()).unwrap();
        // A data dir made directly (as `-v NAME:/path` does) is adopted.
        fs::create_dir_all(v.root().join("direct/_data")).unwrap();
        assert_eq!(v.get("direct").unwrap().name, "direct");
        v.remove(&p.data, "direct").unwrap();
        assert_eq!(anon.name.len(), 64);
        let names: Vec<String> = v.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"data".to_string()));
        fs::write(a.mountpoint.join("f"), b"x").unwrap();
        assert!(v.size("data") > 0);
        v.remove(&p.data, "data").unwrap();
        assert!(matches!(v.get("data"), Err(Error::NotFound(_))));
        assert!(!v.root().join("data").exists());
        assert_eq!(v.list().unwrap().len(), 1);
    }

    #[test]
    fn resolve_creates_once() {
        let t = tempfile::tempdir().unwrap();
        let p = paths(t.path());
        let a = resolve_or_create(&p, "cache").unwrap();
        fs::write(a.join("x"), b"1").unwrap();
        let b = resolve_or_create(&p, "cache").unwrap();
        assert_eq!(a, b);
        assert!(b.join("x").exists());
    }

    #[test]
    fn names() {
        assert!(validate_name("my-vol_1.x").is_ok());
        assert!(validate_name("../x").is_err());
        assert!(validate_name("a").is_ok());
        assert!(validate_name("").is_err());
        assert!(is_volume_name("data"));
        assert!(!is_volume_name("/srv/data"));
        assert!(!is_volume_name("./data"));
        let t = tempfile::tempdir().unwrap();
        let v = Volumes::open(&paths(t.path())).unwrap();
        assert!(matches!(v.get("../../etc"), Err(Error::NotFound(_))));
    }
}
