//! The holder's network helper comes up while the first container is plugged in.
//!
//! The holder of the user networks' namespace reaches the outside through pasta, whose
//! setup takes ~15 ms; the first container's `netavark setup` in the fresh namespace
//! (bridge, firewall chains, aardvark-dns: ~45 ms) needs the namespace, not pasta. So the
//! holder reports itself running once its namespaces exist, with pasta still coming up,
//! and holds `helper.lock` exclusively until pasta is ready ([`pending`]); a container
//! takes it shared once netavark plugged it in, before its command runs ([`wait`]). If
//! pasta fails, the holder writes why beside the lock and goes: the container fails to
//! start with that reason instead of running without a way out.
use std::fs;
use std::path::{Path, PathBuf};

use super::Error;
use super::attach::runtime_dir;
use crate::lock::{FileLock, Mode};
use crate::paths::Paths;

fn lock_path(paths: &Paths) -> PathBuf {
    runtime_dir(paths).join("helper.lock")
}

fn failure_path(paths: &Paths) -> PathBuf {
    runtime_dir(paths).join("helper.err")
}

/// Held by the starting holder until its helper is ready or has failed; dropped
/// otherwise (the holder's start failed on the way), it says so to the waiting containers.
#[derive(Debug)]
pub struct Pending {
    failure: PathBuf,
    done: bool,
    _lock: FileLock,
}

/// The holder, before it starts: containers that join it wait from now on.
pub fn pending(paths: &Paths) -> Result<Pending, Error> {
    let dir = runtime_dir(paths);
    fs::create_dir_all(&dir).map_err(super::io_err("create", &dir))?;
    let lock = FileLock::acquire(
        &lock_path(paths),
        Mode::Exclusive,
        crate::lock::default_timeout(),
    )?;
    // An earlier holder's failure is not this one's.
    let failure = failure_path(paths);
    match fs::remove_file(&failure) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(super::io_err("remove", &failure)(e));
        }
        _ => {}
    }
    Ok(Pending {
        failure,
        done: false,
        _lock: lock,
    })
}

impl Pending {
    /// The helper configured the namespace: containers may run.
    pub fn ready(mut self) {
        self.done = true;
    }

    /// The helper failed: say why to the containers waiting (temp + rename, then unlock).
    pub fn failed(mut self, why: &str) {
        self.fail(why);
    }

    fn fail(&mut self, why: &str) {
        self.done = true;
        let tmp = self.failure.with_extension("err.tmp");
        if fs::write(&tmp, why).is_ok() {
            let _ = fs::rename(&tmp, &self.failure);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.fail("the holder stopped before its network helper was ready");
        }
    }
}

/// A container on user networks, before its command runs: wait until the holder's
/// helper is ready (at once when it has been for a while); its failure is the error.
pub fn wait(paths: &Paths) -> Result<(), Error> {
    let lock = FileLock::acquire(
        &lock_path(paths),
        Mode::Shared,
        crate::lock::default_timeout(),
    )?;
    let failure = failure_path(paths);
    let why = read_failure(&failure);
    drop(lock);
    match why {
        Some(why) => Err(Error::HelperFailed(why)),
        None => Ok(()),
    }
}

fn read_failure(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            data: dir.join("data"),
            runtime: dir.join("run"),
            config: dir.join("config"),
        }
    }

    #[test]
    fn a_ready_helper_lets_containers_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let pending = pending(&p).unwrap();
        // While pending, a shared lock cannot be had.
        assert!(
            FileLock::try_acquire(&lock_path(&p), Mode::Shared)
                .unwrap()
                .is_none()
        );
        pending.ready();
        wait(&p).unwrap();
        // Long ready: at once, again.
        wait(&p).unwrap();
    }

    #[test]
    fn a_failed_helper_fails_the_container_until_the_next_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        pending(&p).unwrap().failed("pasta: no route to the host");
        let err = wait(&p).unwrap_err().to_string();
        assert!(err.contains("pasta: no route to the host"), "{err}");
        // The next holder starts afresh.
        pending(&p).unwrap().ready();
        wait(&p).unwrap();
        // A holder that gives up on the way says so too.
        drop(pending(&p).unwrap());
        let err = wait(&p).unwrap_err().to_string();
        assert!(err.contains("stopped before"), "{err}");
    }
}
