//! Pods: groups of containers that share namespaces (network, uts, ipc) held by an infra
//! container, as podman's pods and Kubernetes' Pods.
//!
//! # Layout
//! ```text
//! <data>/pods/
//!   .lock                  flock: held exclusively to create or remove a pod
//!   names/<name> -> <id>   the name index (pod names are apart from container names)
//!   <id>/pod.json          `Pod`: name, labels, what is shared, the infra container's id
//!   <id>/start.lock        held while the infra container is being started, so members
//!                          started at once start it once
//! ```
//! The infra container is an ordinary container record (`<podid12>-infra`) whose spec is
//! marked `PodLink { infra: true }`: box's pause program, no image (see `run::pause`). It
//! owns the pod's network plan (`-p`, `--network`) and its host name; a member's spec
//! joins it with `--network container:INFRA-ID` plus the uts and ipc namespaces its
//! `PodLink` names. Which containers belong to a pod is read from their specs: the pod
//! record never lists them, so it never goes stale.
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such pod: {0}")]
    NotFound(String),
    #[error(
        "the pod name {name:?} is already in use by {id}: choose another name or remove that pod (box pod rm {name})"
    )]
    NameInUse { name: String, id: String },
    #[error(
        "invalid pod name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit, at least 2 characters"
    )]
    BadName(String),
    #[error("{0:?} matches more than one pod: give more of the id or the name")]
    Ambiguous(String),
    #[error(
        "invalid --share {0:?}: box pods share net, uts and ipc (a comma-separated subset that includes net, or \"\" for none)"
    )]
    BadShare(String),
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("corrupt pod record {path}: {source} (remove the directory)")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Container(#[from] crate::container::Error),
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

/// The namespaces a pod's containers share with its infra container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    pub net: bool,
    pub uts: bool,
    pub ipc: bool,
}

impl Share {
    /// podman's default, `ipc,net,uts`.
    pub const DEFAULT: Share = Share {
        net: true,
        uts: true,
        ipc: true,
    };

    /// `--share`: a comma-separated list of net, uts and ipc (podman's `cgroup` is
    /// accepted and means nothing more here). The user and network namespaces come
    /// together (a member joins the infra's user namespace through its network), so a
    /// non-empty list must name `net`. `+ipc` adds to the default as podman's does.
    pub fn parse(s: &str) -> Result<Share, Error> {
        let bad = || Error::BadShare(s.to_string());
        let (mut share, list) = match s.strip_prefix('+') {
            Some(rest) => (Share::DEFAULT, rest),
            None => (Share::default(), s),
        };
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "net" => share.net = true,
                "uts" => share.uts = true,
                "ipc" => share.ipc = true,
                "cgroup" => {}
                _ => return Err(bad()),
            }
        }
        if (share.uts || share.ipc) && !share.net {
            return Err(bad());
        }
        Ok(share)
    }

    pub fn any(&self) -> bool {
        self.net || self.uts || self.ipc
    }

    /// As podman lists them: `ipc,net,uts`.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.ipc {
            v.push("ipc");
        }
        if self.net {
            v.push("net");
        }
        if self.uts {
            v.push("uts");
        }
        v
    }
}

/// What a pod is: written at creation (the infra id added once its container exists).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pod {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// RFC 3339 UTC creation time.
    pub created: String,
    /// The host name its members share (with `uts`).
    pub hostname: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub share: Share,
    /// The infra container's id (none with `--infra=false`).
    #[serde(default)]
    pub infra_id: Option<String>,
    /// `-p` as given (published by the infra container).
    #[serde(default)]
    pub publish: Vec<String>,
    /// `--network` as given.
    #[serde(default)]
    pub network: Option<String>,
}

impl Pod {
    pub fn short_id(&self) -> &str {
        crate::container::short_id(&self.id)
    }

    /// The name of a pod's infra container, as podman names it.
    pub fn infra_name(id: &str) -> String {
        format!("{}-infra", crate::container::short_id(id))
    }
}

/// The per-user set of pods.
#[derive(Debug, Clone)]
pub struct Pods {
    root: PathBuf,
}

impl Pods {
    /// `<data>/pods`, created when missing.
    pub fn open(paths: &Paths) -> Result<Pods, Error> {
        let p = Pods { root: paths.pods() };
        let names = p.root.join("names");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&names)
            .map_err(io_err("create", &names))?;
        Ok(p)
    }

    /// The pods of `paths`, to read (nothing is created).
    pub fn at(paths: &Paths) -> Pods {
        Pods { root: paths.pods() }
    }

    /// The pods of the store whose containers are `c` (read only: nothing is created).
    pub fn beside(c: &crate::container::Containers) -> Pods {
        Pods {
            root: c.root().with_file_name("pods"),
        }
    }

    /// The exclusive lock over the name index (create, remove).
    pub fn lock(&self) -> Result<crate::lock::FileLock, Error> {
        Ok(crate::lock::FileLock::acquire(
            &self.root.join(".lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?)
    }

    /// Held while the pod's infra container is started (see the layout).
    pub fn start_lock(&self, pod: &Pod) -> Result<crate::lock::FileLock, Error> {
        Ok(crate::lock::FileLock::acquire(
            &self.root.join(&pod.id).join("start.lock"),
            crate::lock::Mode::Exclusive,
            crate::lock::default_timeout(),
        )?)
    }

    /// Record a new pod: pick an id, reserve the name (`make` gets both and returns the
    /// record to write). Caller holds `lock()`.
    pub fn create_locked(
        &self,
        name: Option<&str>,
        make: impl FnOnce(&str, &str) -> Pod,
    ) -> Result<Pod, Error> {
        if let Some(n) = name
            && !crate::container::is_docker_name(n, 253)
        {
            return Err(Error::BadName(n.to_string()));
        }
        let id = loop {
            let id = crate::container::random_id();
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
                let n = crate::container::random_name();
                match self.reserve_name(&n, &id) {
                    Ok(()) => break n,
                    Err(Error::NameInUse { .. }) => continue,
                    Err(e) => return Err(e),
                }
            },
        };
        let pod = make(&id, &name);
        let dir = self.root.join(&id);
        let written = fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create", &dir))
            .and_then(|()| self.write(&pod));
        if let Err(e) = written {
            let _ = fs::remove_file(self.root.join("names").join(&name));
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(pod)
    }

    /// Replace a pod's record (atomically).
    pub fn write(&self, pod: &Pod) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(pod).expect("pod serializes");
        crate::container::write_atomic(&self.root.join(&pod.id).join("pod.json"), &bytes)?;
        Ok(())
    }

    fn reserve_name(&self, name: &str, id: &str) -> Result<(), Error> {
        use crate::container::names::Reserve;
        crate::container::names::reserve(&self.root, "pod.json", name, id).map_err(|e| match e {
            Reserve::InUse(other) => Error::NameInUse {
                name: name.to_string(),
                id: crate::container::short_id(&other).to_string(),
            },
            Reserve::Io(link, e) => io_err("create", &link)(e),
        })
    }

    /// A pod by exact name, full id or unique id prefix.
    pub fn find(&self, id_or_name: &str) -> Result<Pod, Error> {
        if !id_or_name.is_empty() && !id_or_name.contains('/') {
            if let Ok(target) = fs::read_link(self.root.join("names").join(id_or_name))
                && let Ok(pod) = self.load(&target.to_string_lossy())
            {
                return Ok(pod);
            }
            if id_or_name.bytes().all(|b| b.is_ascii_hexdigit()) {
                use crate::container::prefix::{Match, by_prefix};
                match by_prefix(id_or_name, self.ids()?) {
                    Match::One(id) => return self.load(&id),
                    Match::None => {}
                    Match::Ambiguous => return Err(Error::Ambiguous(id_or_name.to_string())),
                }
            }
        }
        Err(Error::NotFound(id_or_name.to_string()))
    }

    /// A pod by full id.
    pub fn load(&self, id: &str) -> Result<Pod, Error> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NotFound(id.to_string()));
        }
        let path = self.root.join(id).join("pod.json");
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()));
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })
    }

    fn ids(&self) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            r => r.map_err(io_err("read", &self.root))?,
        };
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.root))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    /// Every pod, oldest first (records that cannot be read are skipped).
    pub fn list(&self) -> Result<Vec<Pod>, Error> {
        let mut all: Vec<Pod> = self
            .ids()?
            .iter()
            .filter_map(|id| self.load(id).ok())
            .collect();
        all.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(all)
    }

    /// Remove a pod's record (its containers are the caller's). Caller holds `lock()`.
    pub fn remove_locked(&self, pod: &Pod) -> Result<(), Error> {
        let link = self.root.join("names").join(&pod.name);
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == pod.id.as_str()) {
            let _ = fs::remove_file(&link);
        }
        let dir = self.root.join(&pod.id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }
}

/// The containers of `pod`, its infra container first, then the others oldest first.
pub fn members(
    containers: &crate::container::Containers,
    pod: &Pod,
) -> Result<Vec<crate::container::Record>, crate::container::Error> {
    let mut recs: Vec<_> = containers
        .list()?
        .into_iter()
        .filter(|r| r.config.spec.pod.as_ref().is_some_and(|p| p.id == pod.id))
        .collect();
    recs.sort_by_key(|r| !r.config.spec.is_infra());
    Ok(recs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_lists() {
        assert_eq!(Share::parse("ipc,net,uts").unwrap(), Share::DEFAULT);
        assert_eq!(Share::parse("net").unwrap().names(), vec!["net"]);
        assert_eq!(Share::parse("").unwrap(), Share::default());
        assert_eq!(Share::parse("+cgroup").unwrap(), Share::DEFAULT);
        assert!(Share::parse("pid").is_err());
        assert!(Share::parse("uts").is_err(), "uts without net");
    }
}
