//! What the image being built holds, read from its layer directories on the host (top
//! layer first; whiteouts hide what is below): whether a COPY destination exists or is a
//! directory, the destination with the image's symlinks resolved (a COPY into a symlinked
//! `/bin` lands where the link points), and `--chown` names from its /etc/passwd.
use std::collections::HashMap;
use std::path::PathBuf;

use super::state::State;
use crate::storage::Store;

/// Lookups in a state's layers, as the merged root shows them (top layer first;
/// whiteouts hide what is below), read on the host.
pub(crate) struct ImageView {
    layers: Vec<PathBuf>,
    /// The last lookup met a directory box cannot search.
    unreadable: std::cell::Cell<bool>,
}

impl ImageView {
    pub fn new(store: &Store, st: &State) -> ImageView {
        ImageView {
            layers: st
                .diff_ids
                .iter()
                .rev()
                .map(|d| store.layer_diff(d))
                .collect(),
            unreadable: std::cell::Cell::new(false),
        }
    }

    /// The metadata of `rel` in the merged view, without following a last symlink.
    fn lstat(&self, rel: &str) -> Option<std::fs::Metadata> {
        use std::os::unix::fs::FileTypeExt;
        if rel.is_empty() {
            return None;
        }
        for l in &self.layers {
            // A whiteout of the path or of a parent hides everything below.
            let mut hidden = false;
            let mut p = PathBuf::new();
            for c in rel.split('/') {
                p.push(c);
                if let Ok(m) = std::fs::symlink_metadata(l.join(&p))
                    && m.file_type().is_char_device()
                    && {
                        use std::os::unix::fs::MetadataExt;
                        m.rdev() == 0
                    }
                {
                    hidden = true;
                    break;
                }
            }
            if hidden {
                return None;
            }
            match std::fs::symlink_metadata(l.join(rel)) {
                Ok(m) => return Some(m),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                    self.unreadable.set(true);
                    return None;
                }
                Err(_) => {}
            }
        }
        None
    }

    /// Whether `rel` exists. A path under a directory box cannot search on the host
    /// (`/root`, mode 0700, owned by a subordinate id) counts as existing: a COPY then
    /// never writes a parent directory entry over one the image has.
    pub fn exists(&self, rel: &str) -> bool {
        self.unreadable.set(false);
        rel.is_empty() || self.lstat(rel).is_some() || self.unreadable.get()
    }

    pub fn is_dir(&self, rel: &str) -> bool {
        let rel = self.resolve(rel.trim_matches('/'));
        rel.is_empty() || self.lstat(&rel).is_some_and(|m| m.is_dir())
    }

    /// `rel` with every symlink on the way resolved inside the image (at most 40).
    pub fn resolve(&self, rel: &str) -> String {
        let mut todo: Vec<String> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .rev()
            .map(String::from)
            .collect();
        let mut out: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                out.pop();
                continue;
            }
            out.push(c);
            let p = out.join("/");
            let target = self
                .lstat(&p)
                .filter(|m| m.file_type().is_symlink())
                .and_then(|_| {
                    self.layers
                        .iter()
                        .find_map(|l| std::fs::read_link(l.join(&p)).ok())
                });
            if let Some(t) = target
                && links < 40
            {
                links += 1;
                out.pop();
                let t = t.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    out.clear();
                }
                for part in t.split('/').filter(|c| !c.is_empty() && *c != ".").rev() {
                    todo.push(part.to_string());
                }
            }
        }
        out.join("/")
    }

    /// `--chown` as numbers: names looked up in the image's /etc/passwd and /etc/group.
    pub fn owner(&self, spec: &str) -> Result<(u64, u64), String> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        let file = |name: &str| -> String {
            let rel = self.resolve(&format!("etc/{name}"));
            self.layers
                .iter()
                .find_map(|l| std::fs::read_to_string(l.join(&rel)).ok())
                .unwrap_or_default()
        };
        let lookup = |table: &str, name: &str| -> Option<(u64, u64)> {
            file(table).lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name) && f.len() > 3).then(|| {
                    (
                        f[2].parse().unwrap_or(0),
                        f.get(3).and_then(|g| g.parse().ok()).unwrap_or(0),
                    )
                })
            })
        };
        let (uid, primary) = match u.parse::<u64>() {
            Ok(n) => (n, lookup_by_uid(&file("passwd"), n).unwrap_or(n)),
            Err(_) => lookup("passwd", u)
                .ok_or_else(|| format!("no user {u:?} in the image's /etc/passwd: use a number"))?,
        };
        let gid = match g {
            None => {
                if u.parse::<u64>().is_ok() {
                    uid
                } else {
                    primary
                }
            }
            Some(g) => match g.parse::<u64>() {
                Ok(n) => n,
                Err(_) => {
                    let groups = file("group");
                    groups
                        .lines()
                        .find_map(|l| {
                            let f: Vec<&str> = l.split(':').collect();
                            (f.first() == Some(&g) && f.len() > 2)
                                .then(|| f[2].parse().ok())
                                .flatten()
                        })
                        .ok_or_else(|| {
                            format!("no group {g:?} in the image's /etc/group: use a number")
                        })?
                }
            },
        };
        Ok((uid, gid))
    }
}

fn lookup_by_uid(passwd: &str, uid: u64) -> Option<u64> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[2].parse::<u64>().ok() == Some(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

/// What `COPY --from` needs to know of the image being built, captured before the work
/// moves into another process.
pub(crate) struct ImageProbe {
    known: HashMap<String, (bool, bool)>,
}

impl ImageProbe {
    pub fn capture(view: &ImageView, dest: &str, _sources: &[String]) -> ImageProbe {
        let mut known = HashMap::new();
        let mut p = dest.trim_matches('/').to_string();
        loop {
            let e = view.exists(&p);
            known.insert(p.clone(), (e, e && view.is_dir(&p)));
            match p.rfind('/') {
                Some(i) => p.truncate(i),
                None => break,
            }
        }
        ImageProbe { known }
    }

    pub fn exists(&self, p: &str) -> bool {
        self.known.get(p).is_some_and(|k| k.0)
    }

    pub fn is_dir(&self, p: &str) -> bool {
        self.known.get(p).is_some_and(|k| k.1)
    }
}

/// What a directory above a COPY's entries is in the image (read as root of the store's
/// user namespace, so that owners are the container's ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Meta {
    pub is_dir: bool,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// `paths` in the merged view of `layers` (top first): their metadata, or none when
/// absent. Run where every file is readable (in the user namespace).
pub(crate) fn lookup_meta(
    layers: &[PathBuf],
    paths: &[String],
) -> std::collections::BTreeMap<String, Option<Meta>> {
    use std::os::unix::fs::MetadataExt;
    let view = ImageView {
        layers: layers.to_vec(),
        unreadable: std::cell::Cell::new(false),
    };
    paths
        .iter()
        .map(|p| {
            let m = view.lstat(p).map(|m| Meta {
                is_dir: m.is_dir(),
                mode: m.mode() & 0o7777,
                uid: m.uid() as u64,
                gid: m.gid() as u64,
                mtime: m.mtime().max(0) as u64,
            });
            (p.clone(), m)
        })
        .collect()
}

impl ImageView {
    /// The layer dirs, top first.
    pub fn layers(&self) -> &[PathBuf] {
        &self.layers
    }
}
