//! Persistent container records and their state, stored atomically per user.
//!
//! # Layout
//! ```text
//! <data>/containers/
//!   .lock                    flock: held exclusively to create, rename or remove a container
//!   names/<name> -> <id>     the name index: one symlink per name (creation fails if taken)
//!   .trash/<id>/             removed containers whose files are still being deleted (a
//!                            removal renames the dir here first: instant and atomic)
//!   <id>/config.json         `Config`: what to run; written once by `box create`/`box run`
//!   <id>/state.json          `State`: status, pid, exit code, times; replaced atomically
//!                            (write `state.json.tmp-<pid>`, then rename)
//!   <id>/userdata/           hostname, hosts, resolv.conf (bind-mounted into the container)
//!   <id>/upper/ <id>/work/   overlay upper and work dirs (files owned by subordinate ids)
//!   <id>/rootfs/             the copied root filesystem (vfs driver only, subordinate ids)
//!   <id>/ctr.log             output of a container started without a terminal attached
//! <runtime>/containers/
//!   .rootfs/                 the mount point of every container's root filesystem: each
//!                            mounts it only inside its own mount namespace, so they never
//!                            meet (and nothing is ever mounted there on the host)
//!   <id>/                    per-container runtime files of other modules (e.g. `paused`)
//! ```
//! Ids are 64 lowercase hex digits (32 random bytes); the short form is the first 12. Names
//! match `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; a random `adjective_noun` is picked when none is given.
//!
//! Readers need no lock: `config.json` never changes after creation (except the name on
//! rename) and `state.json` is always replaced whole. A `running` state whose pid is gone
//! (box was killed with SIGKILL and its cleanup could not run) is reported by
//! [`State::effective_status`] as exited.
pub mod names;
pub use names::random_name;
pub mod prefix;
pub mod read;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error(
        "the container name {name:?} is already in use by {id}: choose another name or remove that container (box rm {name})"
    )]
    NameInUse { name: String, id: String },
    #[error(
        "invalid container name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )]
    BadName(String),
    #[error("{0:?} matches more than one container: give more of the id or the name")]
    Ambiguous(String),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt container record {path}: {source} (remove the directory)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What a container is: written once at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// 64 hex digits.
    pub id: String,
    /// Unique name (changed only by rename).
    pub name: String,
    /// The image as the user gave it (e.g. `alpine`).
    pub image: String,
    /// The image's canonical name (e.g. `docker.io/library/alpine:latest`), or the id.
    pub image_name: String,
    /// The image id (`sha256:<config digest hex>`).
    pub image_id: String,
    /// RFC 3339 UTC creation time.
    pub created: String,
    /// The argv the container runs (entrypoint + command, after overrides).
    pub command: Vec<String>,
    /// `--rm`: remove everything when the container exits.
    #[serde(default)]
    pub autoremove: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Everything needed to start it (see `crate::run::Spec`).
    pub spec: crate::run::Spec,
}

/// The container's lifecycle status as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or being started).
    #[default]
    Created,
    /// The container's init process is alive (see `State::pid`).
    Running,
    /// It ran and exited (see `State::exit_code`).
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        })
    }
}

/// What a container is doing: replaced atomically at every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// Host pid of the container's PID 1 while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot), to tell a
    /// recycled pid from ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start: Option<u64>,
    /// Host pid of the box process supervising the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_pid: Option<i32>,
    /// Exit code in docker's convention (128+N for signal N) once exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The OOM killer killed a process of the container (cgroup memory.events).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oom_killed: bool,
    /// Why the last start failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl State {
    /// The status, with a `running` record whose process is gone (box was killed before it
    /// could record the exit) reported as `exited`.
    pub fn effective_status(&self) -> Status {
        match self.status {
            Status::Running if !self.is_alive() => Status::Exited,
            s => s,
        }
    }

    /// Whether the recorded pid is alive and still the same process.
    pub fn is_alive(&self) -> bool {
        match (self.pid, self.pid_start) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            (Some(pid), None) => process_start_time(pid).is_some(),
            _ => false,
        }
    }
}

/// Field 22 (starttime) of /proc/PID/stat, or None when the process does not exist or has
/// already exited: a zombie waiting for its parent to reap it is not alive (an orphan's
/// zombie may linger for seconds where PID 1 reaps lazily).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    start_time_of_living(&stat)
}

fn start_time_of_living(stat: &str) -> Option<u64> {
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    // rest starts at field 3 (state); starttime is field 22 → index 19.
    let mut fields = rest.split_ascii_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// One container: its directories and configuration.
#[derive(Debug, Clone)]
pub struct Record {
    pub config: Config,
    /// `<data>/containers/<id>`.
    pub dir: PathBuf,
    /// `<runtime>/containers/<id>`.
    pub run_dir: PathBuf,
}

impl Record {
    pub fn id(&self) -> &str {
        &self.config.id
    }
    pub fn short_id(&self) -> &str {
        short_id(&self.config.id)
    }
    pub fn name(&self) -> &str {
        &self.config.name
    }
    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn userdata_dir(&self) -> PathBuf {
        self.dir.join("userdata")
    }
    pub fn upper_dir(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }
    /// The upper and work directories of the container's `n`th `--mount type=image,rw=true`.
    pub fn image_mount_dir(&self, n: usize) -> PathBuf {
        self.dir.join("image-mounts").join(n.to_string())
    }
    /// The vfs driver's private copy of the image.
    pub fn rootfs_dir(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    /// The container's log file: `--log-opt path=`, else `ctr.log` in its directory.
    pub fn log_path(&self) -> PathBuf {
        match &self.config.spec.settings.log.path {
            Some(p) => p.clone(),
            None => self.dir.join("ctr.log"),
        }
    }
    /// The mount point of the root filesystem (inside the container's mount namespace;
    /// shared by all containers, see the layout).
    pub fn merged_dir(&self) -> PathBuf {
        self.run_dir.with_file_name(".rootfs")
    }

    /// The recorded state (`created` when none was written yet).
    pub fn state(&self) -> Result<State, Error> {
        let path = self.state_path();
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Replace the state atomically.
    pub fn write_state(&self, state: &State) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        write_atomic(&self.state_path(), &bytes)
    }

    /// Read-modify-write of the state.
    pub fn update_state(&self, f: impl FnOnce(&mut State)) -> Result<State, Error> {
        let mut s = self.state()?;
        f(&mut s);
        self.write_state(&s)?;
        Ok(s)
    }
}

/// The first 12 hex digits of an id.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Write `bytes` to `path` via a temp file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!("{file_name}.tmp-{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("write", path)(e)
    })
}

/// The per-user set of containers.
#[derive(Debug, Clone)]
pub struct Containers {
    root: PathBuf,
    runtime: PathBuf,
    /// The store's volumes (a container's anonymous volumes are retired with it).
    volumes: PathBuf,
}

/// The exclusive lock over the name index (held while creating, renaming, removing).
pub type Lock = crate::lock::FileLock;

/// An entry of `containers/.trash/` claimed for deletion: a directory is flocked (without
/// following a symlink) so that two deleters skip each other's entries.
pub struct TrashEntry {
    pub path: PathBuf,
    _lock: Option<crate::lock::FileLock>,
}

impl TrashEntry {
    /// None when another process holds it, or it is gone.
    pub fn claim(path: PathBuf) -> Option<TrashEntry> {
        let md = fs::symlink_metadata(&path).ok()?;
        if !md.is_dir() {
            return Some(TrashEntry { path, _lock: None });
        }
        let lock = match crate::lock::FileLock::try_dir(&path) {
            Ok(Some(l)) => Some(l),
            Ok(None) => return None,
            // Gone meanwhile.
            Err(crate::lock::Error::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                return None;
            }
            // A directory we cannot open (mode 0): nobody deletes it with a lock either.
            Err(_) => None,
        };
        Some(TrashEntry { path, _lock: lock })
    }
}

impl Containers {
    /// `<data>/containers` and `<runtime>/containers`, created when missing.
    pub fn open(paths: &Paths) -> Result<Containers, Error> {
        let c = Containers {
            root: paths.containers(),
            runtime: paths.runtime.join("containers"),
            volumes: paths.volumes(),
        };
        for dir in [c.root.join("names"), c.runtime.clone()] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err("create", &dir))?;
        }
        Ok(c)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Take the exclusive lock over the name index (waiting at most `BOX_LOCK_TIMEOUT`).
    pub fn lock(&self) -> Result<Lock, Error> {
        Ok(crate::lock::FileLock::acquire(
            &self.root.join(".lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?)
    }

    fn record_at(&self, id: &str, config: Config) -> Record {
        Record {
            dir: self.root.join(id),
            run_dir: self.runtime.join(id),
            config,
        }
    }

    /// Create a container: pick an id (and a name if none is given), reserve the name,
    /// and write `config.json` as built by `make(id, name)`. The state is `created`.
    pub fn create(
        &self,
        name: Option<&str>,
        make: impl FnOnce(&str, &str) -> Config,
    ) -> Result<Record, Error> {
        if let Some(n) = name {
            validate_name(n)?;
        }
        let _lock = self.lock()?;
        let id = loop {
            let id = random_id();
            if !self.root.join(&id).exists() {
                break id;
            }
        };
        let name = match name {
            Some(n) => {
                self.reserve_name(n, &id)?;
                n.to_string()
            }
            None => loop {
                let n = names::random_name();
                match self.reserve_name(&n, &id) {
                    Ok(()) => break n,
                    Err(Error::NameInUse { .. }) => continue,
                    Err(e) => return Err(e),
                }
            },
        };
        let dir = self.root.join(&id);
        let unreserve = |e: Error| {
            let _ = fs::remove_file(self.root.join("names").join(&name));
            let _ = fs::remove_dir_all(&dir);
            e
        };
        let config = make(&id, &name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| unreserve(io_err("create", &dir)(e)))?;
        let userdata = dir.join("userdata");
        fs::create_dir(&userdata).map_err(|e| unreserve(io_err("create", &userdata)(e)))?;
        let bytes = serde_json::to_vec_pretty(&config).expect("config serializes");
        write_atomic(&dir.join("config.json"), &bytes).map_err(unreserve)?;
        let rec = self.record_at(&id, config);
        rec.write_state(&State::default()).map_err(unreserve)?;
        Ok(rec)
    }

    fn reserve_name(&self, name: &str, id: &str) -> Result<(), Error> {
        use names::Reserve;
        names::reserve(&self.root, "config.json", name, id).map_err(|e| match e {
            Reserve::InUse(other) => Error::NameInUse {
                name: name.to_string(),
                id: short_id(&other).to_string(),
            },
            Reserve::Io(link, e) => io_err("create", &link)(e),
        })
    }

    /// Load a container by exact name, full id or unique id prefix.
    pub fn find(&self, id_or_name: &str) -> Result<Record, Error> {
        if !id_or_name.is_empty() && !id_or_name.contains('/') {
            if let Ok(target) = fs::read_link(self.root.join("names").join(id_or_name))
                && let Ok(rec) = self.load(&target.to_string_lossy())
            {
                return Ok(rec);
            }
            if is_hex(id_or_name) {
                if id_or_name.len() == 64 {
                    if let Ok(rec) = self.load(id_or_name) {
                        return Ok(rec);
                    }
                } else {
                    match prefix::by_prefix(id_or_name, self.ids()?) {
                        prefix::Match::One(id) => return self.load(&id),
                        prefix::Match::None => {}
                        prefix::Match::Ambiguous => {
                            return Err(Error::Ambiguous(id_or_name.to_string()));
                        }
                    }
                }
            }
        }
        Err(Error::NotFound(id_or_name.to_string()))
    }

    /// Load a container by full id.
    pub fn load(&self, id: &str) -> Result<Record, Error> {
        if id.len() != 64 || !is_hex(id) {
            return Err(Error::NotFound(id.to_string()));
        }
        let path = self.root.join(id).join("config.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let config: Config =
            serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })?;
        Ok(self.record_at(id, config))
    }

    /// Every container id on record.
    pub fn ids(&self) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io_err("read", &self.root))? {
            let entry = entry.map_err(io_err("read", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && is_hex(&name) {
                ids.push(name);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Every container, oldest first. Records that cannot be read are skipped.
    pub fn list(&self) -> Result<Vec<Record>, Error> {
        let mut all: Vec<Record> = self
            .ids()?
            .iter()
            .filter_map(|id| self.load(id).ok())
            .collect();
        all.sort_by(|a, b| a.config.created.cmp(&b.config.created));
        Ok(all)
    }

    /// Give a container another name.
    pub fn rename(&self, rec: &mut Record, new_name: &str) -> Result<(), Error> {
        validate_name(new_name)?;
        let _lock = self.lock()?;
        self.reserve_name(new_name, rec.id())?;
        let old = rec.config.name.clone();
        rec.config.name = new_name.to_string();
        let bytes = serde_json::to_vec_pretty(&rec.config).expect("config serializes");
        if let Err(e) = write_atomic(&rec.dir.join("config.json"), &bytes) {
            rec.config.name = old;
            let _ = fs::remove_file(self.root.join("names").join(new_name));
            return Err(e);
        }
        let old_link = self.root.join("names").join(&old);
        if fs::read_link(&old_link).is_ok_and(|t| t.as_os_str() == rec.id()) {
            let _ = fs::remove_file(old_link);
        }
        Ok(())
    }

    /// Change a stopped container's spec (`network connect|disconnect`): `f` edits the
    /// spec read from disk under the lock, and the config is replaced atomically.
    pub fn update_spec(
        &self,
        rec: &mut Record,
        f: impl FnOnce(&mut crate::spec::Spec),
    ) -> Result<(), Error> {
        let _lock = self.lock()?;
        let mut fresh = self.load(rec.id())?;
        f(&mut fresh.config.spec);
        let bytes = serde_json::to_vec_pretty(&fresh.config).expect("config serializes");
        write_atomic(&rec.dir.join("config.json"), &bytes)?;
        *rec = fresh;
        Ok(())
    }

    /// Remove the record: name, runtime dir and container dir. Files owned by subordinate
    /// ids (upper/, work/, rootfs/) must have been removed first, from inside a user
    /// namespace (`crate::run::remove_container_files`).
    pub fn remove(&self, rec: &Record) -> Result<(), Error> {
        let _lock = self.lock()?;
        self.remove_locked(rec)
    }

    /// Remove what a creation interrupted half-way left of container `id` (its name and
    /// directory: nothing in it belongs to subordinate ids yet).
    pub fn remove_partial(&self, id: &str) -> Result<(), Error> {
        if id.len() != 64 || !is_hex(id) {
            return Err(Error::NotFound(id.to_string()));
        }
        let _lock = self.lock()?;
        let names = self.root.join("names");
        if let Ok(entries) = fs::read_dir(&names) {
            for e in entries.flatten() {
                if fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == id) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        match crate::storage::remove::remove_path(&self.root.join(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(io_err("remove", &self.root.join(id))(e))
            }
            _ => Ok(()),
        }
    }

    /// The store's volumes directory (`Paths::volumes`).
    pub fn volumes_dir(&self) -> &Path {
        &self.volumes
    }

    /// Where retired containers wait for their files to be deleted.
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join(".trash")
    }

    /// Remove the container from the record at once: drop its name and move its directory
    /// into `.trash/` (a rename: atomic, and fast even where deleting a tree is slow). The
    /// files are deleted later with [`Containers::empty_trash`] (from inside a user
    /// namespace when they include subordinate-owned files). Returns the trash path.
    pub fn retire(&self, rec: &Record) -> Result<PathBuf, Error> {
        let _lock = self.lock()?;
        let link = self.root.join("names").join(rec.name());
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == rec.id()) {
            let _ = fs::remove_file(&link);
        }
        let trash = self.trash_dir();
        let dest = trash.join(rec.id());
        let moved = fs::rename(&rec.dir, &dest).or_else(|e| {
            if e.kind() == io::ErrorKind::NotFound && !trash.exists() {
                fs::create_dir(&trash)?;
                fs::rename(&rec.dir, &dest)
            } else {
                Err(e)
            }
        });
        match moved {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &rec.dir)(e));
            }
            _ => {}
        }
        if fs::symlink_metadata(&rec.run_dir).is_ok() {
            fs::remove_dir_all(&rec.run_dir).map_err(io_err("remove", &rec.run_dir))?;
        }
        Ok(dest)
    }

    /// The entries of `.trash/` that nobody is deleting right now, each locked for the
    /// caller (a flock on the directory, held as long as the [`TrashEntry`] lives): what a
    /// removal that failed or was killed left behind, for `system check` and `prune`.
    pub fn claim_trash(&self) -> Vec<TrashEntry> {
        let Ok(entries) = fs::read_dir(self.trash_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<TrashEntry> = entries
            .flatten()
            .filter_map(|e| TrashEntry::claim(e.path()))
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Delete everything in `.trash/` (each entry is a retired container or volume).
    /// Entries another process is deleting at the same time are left to it. Returns the
    /// first error.
    pub fn empty_trash(&self) -> Result<(), Error> {
        let mut first = Ok(());
        for entry in self.claim_trash() {
            let p = &entry.path;
            match crate::storage::remove::remove_path(p) {
                Err(err) if err.kind() != io::ErrorKind::NotFound && first.is_ok() => {
                    first = Err(io_err("remove", p)(err));
                }
                _ => {}
            }
        }
        first
    }

    /// `remove` for a caller that holds the lock.
    pub fn remove_locked(&self, rec: &Record) -> Result<(), Error> {
        let link = self.root.join("names").join(rec.name());
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == rec.id()) {
            let _ = fs::remove_file(&link);
        }
        match fs::remove_dir_all(&rec.run_dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("remove", &rec.run_dir)(e));
            }
            _ => {}
        }
        match fs::remove_dir_all(&rec.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &rec.dir)(e)),
            _ => Ok(()),
        }
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// podman's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (docker wants two characters
/// at least; podman takes `c`), at most `max` bytes.
pub fn is_docker_name(name: &str, max: usize) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A container name: docker's rule, at most 253 bytes (a hostname's limit).
pub fn validate_name(name: &str) -> Result<(), Error> {
    if is_docker_name(name, 253) {
        Ok(())
    } else {
        Err(Error::BadName(name.to_string()))
    }
}

/// 32 random bytes as 64 hex digits.
pub fn random_id() -> String {
    let mut buf = [0u8; 32];
    fill_random(&mut buf);
    hex::encode(buf)
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n > 0 {
            done += n as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // getrandom cannot fail on a kernel that has it, short of EFAULT.
            panic!("getrandom failed: {}", io::Error::last_os_error());
        }
    }
}

/// A minimal config (alpine, `sh`) for unit tests that need a record.
#[cfg(test)]
pub(crate) fn config_for_tests(id: &str, name: &str) -> Config {
    Config {
        id: id.into(),
        name: name.into(),
        image: "alpine".into(),
        image_name: "docker.io/library/alpine:latest".into(),
        image_id: "sha256:00".into(),
        created: crate::units::now_rfc3339(),
        command: vec!["sh".into()],
        autoremove: false,
        labels: BTreeMap::new(),
        spec: crate::run::Spec::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombies_are_not_alive() {
        let running = "42 (sh (x)) S 1 42 42 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 12345 0";
        assert_eq!(start_time_of_living(running), Some(12345));
        let zombie = running.replace(") S ", ") Z ");
        assert_eq!(start_time_of_living(&zombie), None);
        assert!(process_start_time(std::process::id() as i32).is_some());
    }

    fn paths(t: &Path) -> Paths {
        Paths {
            data: t.join("data"),
            runtime: t.join("run"),
            config: t.join("config"),
        }
    }

    #[test]
    fn create_find_rename_remove() {
        let t = tempfile::tempdir().unwrap();
        let c = Containers::open(&paths(t.path())).unwrap();
        let rec = c.create(Some("web"), config_for_tests).unwrap();
        assert_eq!(rec.id().len(), 64);
        assert_eq!(rec.short_id().len(), 12);
        assert_eq!(rec.state().unwrap().status, Status::Created);
        assert_eq!(c.find("web").unwrap().id(), rec.id());
        assert_eq!(c.find(rec.short_id()).unwrap().id(), rec.id());
        assert_eq!(c.find(rec.id()).unwrap().name(), "web");
        assert!(matches!(c.find("nope"), Err(Error::NotFound(_))));

        let dup = c.create(Some("web"), config_for_tests);
        assert!(matches!(dup, Err(Error::NameInUse { .. })));

        let mut rec2 = c.find("web").unwrap();
        c.rename(&mut rec2, "web2").unwrap();
        assert!(c.find("web").is_err());
        assert_eq!(c.find("web2").unwrap().name(), "web2");

        c.remove(&rec2).unwrap();
        assert!(c.find("web2").is_err());
        assert!(c.list().unwrap().is_empty());

        let rec3 = c.create(Some("web3"), config_for_tests).unwrap();
        let trashed = c.retire(&rec3).unwrap();
        assert!(c.find("web3").is_err() && !rec3.dir.exists() && trashed.exists());
        assert!(c.ids().unwrap().is_empty());
        {
            let claimed = c.claim_trash();
            assert_eq!(claimed.len(), 1);
            assert_eq!(claimed[0].path, trashed);
            // Held by someone else: skipped, neither listed nor deleted.
            assert!(c.claim_trash().is_empty());
            c.empty_trash().unwrap();
            assert!(trashed.exists());
        }
        c.empty_trash().unwrap();
        assert!(!trashed.exists());
    }

    #[test]
    fn random_names() {
        let t = tempfile::tempdir().unwrap();
        let c = Containers::open(&paths(t.path())).unwrap();
        let a = c.create(None, config_for_tests).unwrap();
        let b = c.create(None, config_for_tests).unwrap();
        assert!(a.name().contains('_'));
        assert_ne!(a.name(), b.name());
        assert_eq!(c.ids().unwrap().len(), 2);
    }

    #[test]
    fn state_roundtrip_and_staleness() {
        let t = tempfile::tempdir().unwrap();
        let c = Containers::open(&paths(t.path())).unwrap();
        let rec = c.create(None, config_for_tests).unwrap();
        let me = std::process::id() as i32;
        let s = rec
            .update_state(|s| {
                s.status = Status::Running;
                s.pid = Some(me);
                s.pid_start = process_start_time(me);
            })
            .unwrap();
        assert_eq!(rec.state().unwrap(), s);
        assert_eq!(s.effective_status(), Status::Running);
        let stale = State {
            pid_start: Some(1),
            ..s
        };
        assert_eq!(stale.effective_status(), Status::Exited);
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("web-1.a_b").is_ok());
        assert!(validate_name("a").is_ok(), "podman takes one character");
        assert!(validate_name("").is_err());
        assert!(validate_name("-web").is_err());
        assert!(validate_name("we/b").is_err());
    }
}
