//! Per-test private stores and their cleanup.
use std::ffi::OsStr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::Env;
use super::cmd::BoxCmd;

/// Who runs box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestUser {
    /// `boxtest`, with a 65536-id range in /etc/subuid and /etc/subgid (the normal case).
    Boxtest,
    /// `boxnosub`, with no subordinate ranges at all.
    NoSub,
    /// root (the lesser case).
    Root,
}

/// A user from /etc/passwd.
#[derive(Debug, Clone)]
pub struct UserInfo {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl UserInfo {
    pub fn lookup(name: &str) -> Option<UserInfo> {
        let u = nix::unistd::User::from_name(name).ok()??;
        Some(UserInfo {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })
    }
}

/// A private store for one test: `dir/data` (BOX_ROOT), `dir/run` (BOX_RUNROOT),
/// `dir/config` (XDG_CONFIG_HOME) and `dir/work` (the commands' working directory, scratch
/// space), all owned by the user, 0700. Cheap to clone; removed when the last clone drops.
#[derive(Clone)]
pub struct TestBox(Arc<Inner>);

struct Inner {
    env: &'static Env,
    who: TestUser,
    user: UserInfo,
    dir: PathBuf,
}

impl TestBox {
    pub(super) fn create(env: &'static Env, who: TestUser, dir: &Path) -> TestBox {
        let user = env.user(who).clone();
        for sub in ["", "data", "run", "config", "work"] {
            let p = dir.join(sub);
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
            chown(&p, &user);
        }
        TestBox(Arc::new(Inner {
            env,
            who,
            user,
            dir: dir.to_path_buf(),
        }))
    }

    /// A `box` command in this store: `tb.cmd(["pull", &img]).run()`.
    pub fn cmd<I, S>(&self, args: I) -> BoxCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        BoxCmd::new(self.clone(), None).args(args)
    }

    /// A `/bin/sh -c SCRIPT` as the same user with the same environment, plus `$BOX` (the box
    /// binary): `tb.sh("$BOX images -q | wc -l").run()`.
    pub fn sh(&self, script: &str) -> BoxCmd {
        BoxCmd::new(self.clone(), Some(script.to_string()))
    }

    pub fn env(&self) -> &'static Env {
        self.0.env
    }
    pub fn who(&self) -> TestUser {
        self.0.who
    }
    pub fn user(&self) -> &UserInfo {
        &self.0.user
    }
    /// The test's directory (`/tmp/box-it-<pid>/t<n>`).
    pub fn dir(&self) -> &Path {
        &self.0.dir
    }
    /// BOX_ROOT.
    pub fn root(&self) -> PathBuf {
        self.0.dir.join("data")
    }
    /// BOX_RUNROOT.
    pub fn runroot(&self) -> PathBuf {
        self.0.dir.join("run")
    }
    /// XDG_CONFIG_HOME (so box's config dir is `config_dir()/box`).
    pub fn config_dir(&self) -> PathBuf {
        self.0.dir.join("config")
    }
    /// The working directory of the commands; scratch space owned by the user.
    pub fn work(&self) -> PathBuf {
        self.0.dir.join("work")
    }

    /// Write `work/<rel>` (parents created), owned by the user; returns its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(rel);
        if let Some(parent) = path.parent() {
            self.mkdir_path(parent);
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        chown(&path, &self.0.user);
        path
    }

    /// Create the directory `work/<rel>` (and parents), owned by the user; returns its path.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let path = self.work().join(rel);
        self.mkdir_path(&path);
        path
    }

    fn mkdir_path(&self, path: &Path) {
        let mut missing = Vec::new();
        let mut p = path;
        while !p.exists() {
            missing.push(p.to_path_buf());
            match p.parent() {
                Some(parent) => p = parent,
                None => break,
            }
        }
        for dir in missing.iter().rev() {
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
            chown(dir, &self.0.user);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if std::thread::panicking() {
            super::say(&format!(
                "harness: test dir {} (set BOX_IT_KEEP=1 to keep it)",
                self.dir.display()
            ));
        }
        if std::env::var_os("BOX_IT_KEEP").is_none() {
            remove_tree(&self.dir);
        }
    }
}

fn chown(path: &Path, user: &UserInfo) {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
}

/// Remove a tree box may have left in any state: kill the processes that still use it,
/// unmount what is mounted under it (`umount --recursive --lazy`), make directories writable
/// again, then remove it. Files owned by subordinate ids are no obstacle to root.
pub fn remove_tree(dir: &Path) {
    if !dir.exists() {
        return;
    }
    kill_users_of(dir);
    for mp in mounts_under(dir) {
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(&mp)
            .status();
    }
    if std::fs::remove_dir_all(dir).is_err() {
        // Read-only or 000 directories inside (a container's files): open them up, retry.
        make_writable(dir);
        if let Err(e) = std::fs::remove_dir_all(dir) {
            super::say(&format!("harness: cannot remove {}: {e}", dir.display()));
        }
    }
}

fn make_writable(dir: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            make_writable(&e.path());
        }
    }
}

/// Mount points at or below `dir` in this mount namespace, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape_mountinfo(mp)))
        .filter(|mp| mp.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// SIGKILL every process started for this directory (env `BOX_IT_DIR=<dir>`, which box and
/// its helpers inherit) or whose working directory is inside it.
fn kill_users_of(dir: &Path) {
    let me = std::process::id();
    let marker = format!("BOX_IT_DIR={}", dir.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || pid == 1 {
            continue;
        }
        let environ = std::fs::read(p.path().join("environ")).unwrap_or_default();
        let marked = environ.split(|&c| c == 0).any(|kv| kv == marker.as_bytes());
        let inside = std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
        if marked || inside {
            // SAFETY: kill(2).
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        }
    }
}

/// Remove `/tmp/box-it-<pid>` trees of test processes that are gone (killed runs).
pub fn remove_stale_bases() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("box-it-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_tree(&e.path());
        }
    }
}
