//! The per-user event log behind `box events`: no daemon, so each invocation that causes
//! an event appends it itself.
//!
//! ```text
//! <runtime>/events/events.log     one JSON object per line, podman's file-backend fields
//!                                 (ID, Image, Name, Status, Time, Type, Attributes,
//!                                 ContainerExitCode, HealthStatus, Network)
//! <runtime>/events/events.log.1   the previous file, once the log grew past MAX_SIZE
//! <runtime>/events/events.lock    held (lock::FileLock) only to rotate
//! ```
//! Writers open the log with `O_APPEND` and write each event with one `write()` of one
//! line, so concurrent writers never interleave (a regular file's appends are atomic
//! under its inode lock). A writer that finds the file past `MAX_SIZE` rotates it under the
//! lock: a rename, so a writer that opened the old file just before lands in `.1`, still
//! read. Readers (`read`, `follow`) take no lock. As podman's file backend, the log lives
//! in the runtime directory.
//!
//! `--events-backend=none` (or `BOX_EVENTS_BACKEND=none`, which box's own re-executed
//! helpers inherit) turns recording off.
//!
//! Recording never fails a command: an event that cannot be written is dropped with a
//! warning at `--log-level debug`.
mod log;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

pub use log::{Follower, Log, read_all};

use crate::container::Record;
use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::Error),
    #[error("cannot watch {path} for new events: {source}")]
    Watch { path: PathBuf, source: nix::Error },
}

/// The log is rotated once it grows past this (one rotated file is kept).
pub const MAX_SIZE: u64 = 1 << 20;

/// The environment variable (and the value of `--events-backend`) that turns recording off.
pub const BACKEND_ENV: &str = "BOX_EVENTS_BACKEND";

static DISABLED: AtomicBool = AtomicBool::new(false);

/// `--events-backend`: `file` (the default) or `none`. Re-executed helpers (the monitor,
/// `box start --attach`) inherit it through [`BACKEND_ENV`].
pub fn set_backend(none: bool) {
    DISABLED.store(none, Ordering::Relaxed);
}

pub fn disabled() -> bool {
    DISABLED.load(Ordering::Relaxed) || std::env::var(BACKEND_ENV).is_ok_and(|v| v == "none")
}

/// What an event is about, as podman names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Container,
    Image,
    Volume,
    Network,
    Pod,
    System,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Volume => "volume",
            Kind::Network => "network",
            Kind::Pod => "pod",
            Kind::System => "system",
        }
    }
}

/// One event: a line of the log, as podman's file backend writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(
        rename = "ContainerExitCode",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub exit_code: Option<i32>,
    #[serde(rename = "ID", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "Image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(rename = "Name", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Network", default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// What happened: `create`, `start`, `died`, `pull`, ... (docker's Action).
    #[serde(rename = "Status")]
    pub status: String,
    /// RFC 3339 with nanoseconds, UTC.
    #[serde(rename = "Time")]
    pub time: String,
    #[serde(rename = "Type")]
    pub kind: Kind,
    #[serde(
        rename = "HealthStatus",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub health_status: String,
    /// A container's labels (and, for some events, more details).
    #[serde(rename = "Attributes", default)]
    pub attributes: Option<BTreeMap<String, String>>,
}

impl Event {
    /// An event of `kind` with `status`, now.
    pub fn new(kind: Kind, status: &str) -> Event {
        Event {
            kind,
            status: status.to_string(),
            time: crate::units::now_rfc3339(),
            ..Event::default()
        }
    }

    /// A container event: its id, name, image and labels.
    pub fn container(rec: &Record, status: &str) -> Event {
        Event {
            id: rec.id().to_string(),
            name: rec.name().to_string(),
            image: rec.config.image_name.clone(),
            attributes: Some(rec.config.labels.clone()),
            ..Event::new(Kind::Container, status)
        }
    }

    /// When it happened (the epoch for a time that does not parse).
    pub fn when(&self) -> std::time::SystemTime {
        crate::units::parse_rfc3339(&self.time).unwrap_or(std::time::UNIX_EPOCH)
    }
}

/// Where a user's event log lives.
pub fn dir(paths: &Paths) -> PathBuf {
    paths.runtime.join("events")
}

/// Append `event` to the user's log (unless recording is off). Never fails the caller.
pub fn record(paths: &Paths, event: &Event) {
    if disabled() {
        return;
    }
    if let Err(e) = Log::new(&dir(paths)).append(event)
        && std::env::var("BOX_LOG_LEVEL").is_ok_and(|l| l == "debug")
    {
        eprintln!("box: warning: event not recorded: {e}");
    }
}

/// A container event (`create`, `init`, `start`, `attach`, `stop`, `kill`, `pause`,
/// `unpause`, `remove`, `cleanup`, `rename`, `exec`, ...).
pub fn container(paths: &Paths, rec: &Record, status: &str) {
    record(paths, &Event::container(rec, status));
}

/// `died`, with the container's exit code.
pub fn died(paths: &Paths, rec: &Record, code: i32) {
    let mut e = Event::container(rec, "died");
    e.exit_code = Some(code);
    record(paths, &e);
}

/// `exec_died`, with the exec'd command's exit code.
pub fn exec_died(paths: &Paths, rec: &Record, code: i32) {
    let mut e = Event::container(rec, "exec_died");
    e.exit_code = Some(code);
    record(paths, &e);
}

/// `health_status`, with the status the check just left the container in.
pub fn health_status(paths: &Paths, rec: &Record, status: &str) {
    let mut e = Event::container(rec, "health_status");
    e.health_status = status.to_string();
    record(paths, &e);
}

/// An image event (`pull`, `push`, `tag`, `untag`, `remove`, `save`, `load`, `import`):
/// `id` is the image id (may be empty, as for a pull), `name` the reference.
pub fn image(paths: &Paths, status: &str, id: &str, name: &str) {
    let mut e = Event::new(Kind::Image, status);
    e.id = id.trim_start_matches("sha256:").to_string();
    e.name = name.to_string();
    record(paths, &e);
}

/// A volume event (`create`, `remove`, `prune`, `mount`, `unmount`).
pub fn volume(paths: &Paths, status: &str, name: &str) {
    let mut e = Event::new(Kind::Volume, status);
    e.name = name.to_string();
    record(paths, &e);
}

/// A network event (`create`, `remove`, `connect`, `disconnect`): `network` is the
/// network's name, `container_id` the container connected or disconnected (if any).
pub fn network(paths: &Paths, status: &str, network: &str, container_id: &str) {
    let mut e = Event::new(Kind::Network, status);
    e.network = network.to_string();
    e.id = container_id.to_string();
    e.name = network.to_string();
    record(paths, &e);
}

/// A pod event (`create`, `start`, `stop`, `kill`, `remove`, ...).
pub fn pod(paths: &Paths, status: &str, id: &str, name: &str) {
    let mut e = Event::new(Kind::Pod, status);
    e.id = id.to_string();
    e.name = name.to_string();
    record(paths, &e);
}

/// The log file in `dir`.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("events.log")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_podmans() {
        let mut e = Event::new(Kind::Volume, "create");
        e.time = "2024-01-01T00:00:00.000000000Z".into();
        e.name = "data".into();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"Name":"data","Status":"create","Time":"2024-01-01T00:00:00.000000000Z","Type":"volume","Attributes":null}"#
        );
        // podman's own lines read back.
        let line = r#"{"ID":"e6a8","Image":"alpine","Name":"b","Status":"create","Time":"2026-12-03T22:22:01.391149315Z","Type":"container","Attributes":{}}"#;
        let e: Event = serde_json::from_str(line).unwrap();
        assert_eq!(e.kind, Kind::Container);
        assert_eq!(e.status, "create");
        assert!(e.when() > std::time::UNIX_EPOCH);
    }
}
