//! What the image being built holds, read from its layer directories on the host (top
//! layer first; whiteouts hide what is below): whether a COPY destination exists or is a
//! directory, the destination with the image's symlinks resolved (a COPY into a symlinked
//! `/bin` lands where the link points), and `--chown` names from its /etc/passwd. Every
//! lookup is beneath a layer directory with no symlink followed on the host.
use std::collections::HashMap;
use std::path::PathBuf;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, open, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat};

use super::state::State;
use crate::storage::Store;

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

fn is_whiteout(st: &FileStat) -> bool {
    kind(st) == SFlag::S_IFCHR && st.st_rdev == 0
}

/// `rel`'s parent directory beneath `layer` (no symlink followed on the way) and its
/// last name. A layer directory holds what an image put there: its symlinks mean
/// something in the container, never on the host.
fn parent_in<'r>(layer: &Path, rel: &'r str) -> nix::Result<(OwnedFd, &'r str)> {
    let root = open(
        layer,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let (dir, name) = match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    };
    if dir.is_empty() {
        return Ok((root, name));
    }
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(beneath());
    Ok((openat2(&root, dir, how)?, name))
}

fn beneath() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

fn lstat_in(layer: &Path, rel: &str) -> nix::Result<FileStat> {
    let (dir, name) = parent_in(layer, rel)?;
    fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

fn readlink_in(layer: &Path, rel: &str) -> nix::Result<OsString> {
    let (dir, name) = parent_in(layer, rel)?;
    readlinkat(&dir, name)
}

fn read_in(layer: &Path, rel: &str) -> std::io::Result<String> {
    use std::io::Read;
    let root = open(
        layer,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(beneath());
    let mut f = std::fs::File::from(openat2(&root, rel, how)?);
    let mut s = String::new();
    f.by_ref().take(1 << 20).read_to_string(&mut s)?;
    Ok(s)
}

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
    fn lstat(&self, rel: &str) -> Option<FileStat> {
        if rel.is_empty() {
            return None;
        }
        let comps: Vec<&str> = rel.split('/').collect();
        for l in &self.layers {
            // A whiteout or a non-directory at the path or above it hides everything
            // below, in this layer and the ones under it.
            for i in 1..=comps.len() {
                let p = comps[..i].join("/");
                match lstat_in(l, &p) {
                    Ok(st) if is_whiteout(&st) => return None,
                    Ok(st) if i == comps.len() => return Some(st),
                    Ok(st) if kind(&st) != SFlag::S_IFDIR => return None,
                    Ok(_) => {}
                    Err(Errno::EACCES | Errno::EPERM) => {
                        self.unreadable.set(true);
                        return None;
                    }
                    Err(_) => break,
                }
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
        rel.is_empty() || self.lstat(&rel).is_some_and(|m| kind(&m) == SFlag::S_IFDIR)
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
                .filter(|m| kind(m) == SFlag::S_IFLNK)
                .and_then(|_| self.layers.iter().find_map(|l| readlink_in(l, &p).ok()));
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
                .find_map(|l| read_in(l, &rel).ok())
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
    let view = ImageView {
        layers: layers.to_vec(),
        unreadable: std::cell::Cell::new(false),
    };
    paths
        .iter()
        .map(|p| {
            let m = view.lstat(p).map(|m| Meta {
                is_dir: kind(&m) == SFlag::S_IFDIR,
                mode: m.st_mode & 0o7777,
                uid: m.st_uid as u64,
                gid: m.st_gid as u64,
                mtime: m.st_mtime.max(0) as u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_resolve_image_symlinks_and_never_host_ones() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("top");
        let bottom = t.path().join("bottom");
        std::fs::create_dir_all(bottom.join("etc")).unwrap();
        std::fs::create_dir_all(bottom.join("usr/bin")).unwrap();
        std::fs::write(bottom.join("etc/passwd"), "app:x:5:6::/:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("usr/bin", bottom.join("bin")).unwrap();
        // A link that means the image's root in the container, the host's on the host.
        std::os::unix::fs::symlink("/", bottom.join("evil")).unwrap();
        std::fs::create_dir_all(top.join("usr")).unwrap();
        std::fs::write(top.join("file"), "x").unwrap();
        let view = ImageView {
            layers: vec![top, bottom],
            unreadable: std::cell::Cell::new(false),
        };
        assert_eq!(view.resolve("bin/sh"), "usr/bin/sh");
        assert!(view.is_dir("bin"));
        assert!(view.is_dir("usr/bin"));
        assert!(!view.is_dir("file"));
        assert!(view.exists("file"));
        assert_eq!(view.resolve("evil/etc/passwd"), "etc/passwd");
        // Unresolved, the host's /proc behind the link is not looked at.
        assert!(!view.exists("evil/proc"));
        assert!(!view.exists("file/below"));
        assert_eq!(view.owner("app"), Ok((5, 6)));
        assert_eq!(view.owner("7:8"), Ok((7, 8)));
        assert!(view.owner("nobody-here").is_err());
    }
}
