//! The candidates for a kind of value, with live names read from the store through the
//! owning modules' lock-free readers (`storage::read`, `container::read`, `Volumes::names`,
//! `registry::auth::registries`): nothing here knows a file format, takes a lock or writes.
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::OnceLock;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};

use super::classify::{Kind, Want, fixed};
use super::scan::Typed;
use crate::container::{self, Status, read::Summary};
use crate::paths::Paths;
use crate::storage::{self, Image};

/// What one completion request has read so far (each part read at most once).
#[derive(Default)]
pub(super) struct Live {
    /// The words typed, set once they are scanned (before any candidate is asked for).
    pub(super) typed: OnceLock<Typed>,
    paths: OnceLock<Option<Paths>>,
    images: OnceLock<Vec<Image>>,
    containers: OnceLock<Vec<Summary>>,
}

impl Live {
    fn paths(&self) -> Option<&Paths> {
        self.paths
            .get_or_init(|| {
                let typed = self.typed.get();
                let env = |name: &str| {
                    std::env::var_os(name)
                        .filter(|v| !v.is_empty())
                        .map(PathBuf::from)
                };
                let root = typed
                    .and_then(|t| t.root.clone())
                    .or_else(|| env("BOX_ROOT"));
                let runroot = typed
                    .and_then(|t| t.runroot.clone())
                    .or_else(|| env("BOX_RUNROOT"));
                Paths::resolve(root.as_deref(), runroot.as_deref()).ok()
            })
            .as_ref()
    }

    /// Image records, by names then id.
    fn images(&self) -> &[Image] {
        self.images.get_or_init(|| {
            let mut images = self.paths().map(storage::read::images).unwrap_or_default();
            images.sort_by(|a, b| a.names.cmp(&b.names).then(a.id.cmp(&b.id)));
            images
        })
    }

    /// Containers with their effective status, by name.
    fn containers(&self) -> &[Summary] {
        self.containers.get_or_init(|| {
            let mut all = self
                .paths()
                .map(container::read::summaries)
                .unwrap_or_default();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            all
        })
    }

    pub(super) fn candidates(&self, kind: Kind, current: &str) -> Vec<CompletionCandidate> {
        let mut out = match kind {
            Kind::Containers(want) => self.container_candidates(want, current, ""),
            Kind::CpEndpoint => {
                if current.contains(':') {
                    // A path inside the container: not readable without entering it.
                    return Vec::new();
                }
                let mut v = self.container_candidates(Want::All, current, ":");
                v.extend(PathCompleter::any().complete(OsStr::new(current)));
                return v;
            }
            Kind::Images => self.image_candidates(current),
            Kind::Volumes => volume_candidates(self.paths(), ""),
            Kind::Pods => pod_candidates(self.paths()),
            Kind::UserNetworks => self
                .paths()
                .and_then(|p| crate::usernet::Networks::at(p).list().ok())
                .unwrap_or_default()
                .into_iter()
                .map(|n| CompletionCandidate::new(n.name).help(Some("network".into())))
                .collect(),
            Kind::AnyObject => {
                let kind = self.typed.get().and_then(|t| t.kind.clone());
                let mut v = Vec::new();
                if kind.as_deref().is_none_or(|k| k == "container") {
                    v.extend(self.container_candidates(Want::All, current, ""));
                }
                if kind.as_deref().is_none_or(|k| k == "image") {
                    v.extend(self.image_candidates(current));
                }
                if kind.as_deref().is_none_or(|k| k == "volume") {
                    v.extend(volume_candidates(self.paths(), ""));
                }
                v
            }
            Kind::VolumeSpec => {
                if current.contains(':') {
                    return Vec::new();
                }
                let mut v = volume_candidates(self.paths(), ":");
                v.retain(|c| c.get_value().to_string_lossy().starts_with(current));
                v.extend(PathCompleter::any().complete(OsStr::new(current)));
                return v;
            }
            Kind::Network => {
                let mut v = fixed(&[
                    ("default", "pasta when installed, else slirp4netns"),
                    ("pasta", "user-mode networking with pasta (passt)"),
                    ("slirp4netns", "user-mode networking with slirp4netns"),
                    ("none", "only a loopback interface"),
                    ("host", "the host's network namespace"),
                    (
                        "container:",
                        "join the network namespace of a running container",
                    ),
                ]);
                if let Some(rest) = current.strip_prefix("container:") {
                    v = self
                        .container_candidates(Want::Running, rest, "")
                        .into_iter()
                        .map(|c| c.add_prefix("container:"))
                        .collect();
                }
                v
            }
            Kind::Format
            | Kind::Signal
            | Kind::Platform
            | Kind::Restart
            | Kind::SystemdRestart
            | Kind::Capability
            | Kind::Instruction
            | Kind::TopDescriptor
            | Kind::Userns
            | Kind::SecurityOpt => kind.fixed_values(current),
            Kind::PsFilter => self.ps_filter_candidates(current),
            Kind::Registry => registry_candidates(self.paths()),
        };
        out.retain(|c| c.get_value().to_string_lossy().starts_with(current));
        out
    }

    fn container_candidates(
        &self,
        want: Want,
        current: &str,
        suffix: &str,
    ) -> Vec<CompletionCandidate> {
        let wanted = self.containers().iter().filter(|c| match want {
            Want::All => true,
            Want::Running => c.status == Status::Running,
            Want::NotRunning => c.status != Status::Running,
        });
        let hex = !current.is_empty() && current.bytes().all(|b| b.is_ascii_hexdigit());
        let mut out = Vec::new();
        for c in wanted {
            if c.name.starts_with(current) {
                let help = format!("{} ({})", c.image, c.status);
                out.push(
                    CompletionCandidate::new(format!("{}{suffix}", c.name)).help(Some(help.into())),
                );
            } else if hex && c.id.starts_with(current) {
                let id = if current.len() > 12 {
                    &c.id
                } else {
                    &c.id[..12.min(c.id.len())]
                };
                out.push(
                    CompletionCandidate::new(format!("{id}{suffix}"))
                        .help(Some(c.name.clone().into())),
                );
            }
        }
        out
    }

    fn image_candidates(&self, current: &str) -> Vec<CompletionCandidate> {
        let hex = !current.is_empty() && current.bytes().all(|b| b.is_ascii_hexdigit());
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for image in self.images() {
            let short = &image.id[..12.min(image.id.len())];
            for name in &image.names {
                let familiar = familiar(name);
                let value = if familiar.starts_with(current) || !name.starts_with(current) {
                    familiar
                } else {
                    name.clone()
                };
                if seen.insert(value.clone()) {
                    out.push(CompletionCandidate::new(value).help(Some(short.to_string().into())));
                }
            }
            if image.names.is_empty() || (hex && image.id.starts_with(current)) {
                let id = if current.len() > 12 { &image.id } else { short };
                let help = image
                    .names
                    .first()
                    .map(|n| familiar(n))
                    .unwrap_or_else(|| "<none>".into());
                if seen.insert(id.to_string()) {
                    out.push(CompletionCandidate::new(id).help(Some(help.into())));
                }
            }
        }
        out.sort_by(|a, b| a.get_value().cmp(b.get_value()));
        out
    }

    fn ps_filter_candidates(&self, current: &str) -> Vec<CompletionCandidate> {
        if let Some(v) = current.strip_prefix("status=") {
            let _ = v;
            return ["created", "running", "paused", "exited"]
                .iter()
                .map(|s| CompletionCandidate::new(format!("status={s}")))
                .collect();
        }
        if let Some(rest) = current.strip_prefix("name=") {
            return self
                .container_candidates(Want::All, rest, "")
                .into_iter()
                .map(|c| c.add_prefix("name="))
                .collect();
        }
        if let Some(rest) = current.strip_prefix("ancestor=") {
            return self
                .image_candidates(rest)
                .into_iter()
                .map(|c| c.add_prefix("ancestor="))
                .collect();
        }
        fixed(&[
            ("status=", "created, running, paused or exited"),
            ("name=", "container name"),
            ("id=", "container id (prefix)"),
            ("ancestor=", "image the container was created from"),
            ("label=", "KEY or KEY=VALUE"),
        ])
    }
}

/// Named volumes (those `-v NAME:` made without a record too).
fn volume_candidates(paths: Option<&Paths>, suffix: &str) -> Vec<CompletionCandidate> {
    let Some(paths) = paths else {
        return Vec::new();
    };
    crate::volume::Volumes::at(&paths.volumes())
        .names()
        .into_iter()
        .map(|n| CompletionCandidate::new(format!("{n}{suffix}")).help(Some("volume".into())))
        .collect()
}

/// Pod names (read without a lock, as `pod ps` does).
fn pod_candidates(paths: Option<&Paths>) -> Vec<CompletionCandidate> {
    let Some(paths) = paths else {
        return Vec::new();
    };
    crate::pod::Pods::at(paths)
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|p| CompletionCandidate::new(p.name).help(Some("pod".into())))
        .collect()
}

/// Registries with stored credentials (the keys of auth.json), and docker.io.
fn registry_candidates(paths: Option<&Paths>) -> Vec<CompletionCandidate> {
    let mut names = BTreeSet::new();
    if let Some(paths) = paths {
        names.extend(crate::registry::auth::registries(&paths.auth_file()));
    }
    names.insert("docker.io".to_string());
    names.into_iter().map(CompletionCandidate::new).collect()
}

/// `docker.io/library/alpine:latest` → `alpine:latest`, `docker.io/u/app:1` → `u/app:1`.
fn familiar(name: &str) -> String {
    match name.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest).to_string(),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(live: &Live, kind: Kind, current: &str) -> Vec<String> {
        live.candidates(kind, current)
            .iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect()
    }

    /// A store made by the library's own writers, read while its locks are held elsewhere.
    #[test]
    fn names_from_a_store_the_writers_made() {
        let t = tempfile::tempdir().unwrap();
        let p = Paths {
            data: t.path().join("data"),
            runtime: t.path().join("run"),
            config: t.path().join("config"),
        };
        let store = storage::Store::open_at(&p.store(), &p.data).unwrap();
        let name = "docker.io/library/alpine:latest".to_string();
        let image = Image {
            id: "a".repeat(64),
            names: vec![],
            repo_digests: vec![],
            manifest_digest: None,
            manifest_media_type: None,
            config: serde_json::from_str(
                r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
            )
            .unwrap(),
            diff_ids: vec![],
            layers: vec![],
            stored: 0,
            size: 0,
            layer_root: None,
        };
        store.commit_image(image, &[name]).unwrap();
        let containers = container::Containers::open(&p).unwrap();
        let config = container::config_for_tests;
        let up = containers.create(Some("web-up"), config).unwrap();
        let me = std::process::id() as i32;
        up.write_state(&container::State {
            status: Status::Running,
            pid: Some(me),
            pid_start: container::process_start_time(me),
            ..Default::default()
        })
        .unwrap();
        containers.create(Some("web-new"), config).unwrap();
        let volumes = crate::volume::Volumes::open(&p).unwrap();
        volumes.create(Some("cache"), Default::default()).unwrap();
        let creds = crate::registry::auth::Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        crate::registry::auth::store(&p.auth_file(), "quay.io", &creds).unwrap();

        let _store_lock = store.lock_exclusive().unwrap();
        let _containers_lock = containers.lock().unwrap();
        let live = Live::default();
        let _ = live.paths.set(Some(p));
        assert_eq!(
            values(&live, Kind::Containers(Want::Running), ""),
            ["web-up"]
        );
        assert_eq!(
            values(&live, Kind::Containers(Want::NotRunning), "web"),
            ["web-new"]
        );
        assert_eq!(
            values(&live, Kind::Containers(Want::All), &up.id()[..4]),
            [container::short_id(up.id())]
        );
        assert_eq!(values(&live, Kind::Images, ""), ["alpine:latest"]);
        assert_eq!(values(&live, Kind::Volumes, ""), ["cache"]);
        assert_eq!(values(&live, Kind::VolumeSpec, "cac"), ["cache:"]);
        assert_eq!(values(&live, Kind::Registry, ""), ["docker.io", "quay.io"]);
    }

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("docker.io/library/alpine:latest"), "alpine:latest");
        assert_eq!(familiar("docker.io/u/app:1"), "u/app:1");
        assert_eq!(familiar("127.0.0.1:5000/t/a:1"), "127.0.0.1:5000/t/a:1");
    }
}
