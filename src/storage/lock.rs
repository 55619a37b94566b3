//! flock-based locks: the store lock (shared for readers, exclusive for writers) and the
//! per-layer work locks that let parallel pulls of the same image do the work once.
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::Error;

/// How long to wait for a lock before giving up: `BOX_LOCK_TIMEOUT` seconds, default 60.
pub fn default_timeout() -> Duration {
    std::env::var("BOX_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

/// A held flock; released on drop.
#[derive(Debug)]
pub struct FileLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl FileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take a lock on `path` (created when missing), polling until `timeout`.
    pub fn acquire(path: &Path, exclusive: bool, timeout: Duration) -> Result<FileLock, Error> {
        let io = |source| Error::Io {
            what: format!("open lock file {}", path.display()),
            source,
        };
        let start = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
                .map_err(io)?;
            let arg = if exclusive {
                FlockArg::LockExclusiveNonblock
            } else {
                FlockArg::LockSharedNonblock
            };
            match Flock::lock(file, arg) {
                Ok(lock) => {
                    return Ok(FileLock {
                        _lock: lock,
                        path: path.to_path_buf(),
                    });
                }
                Err((_, Errno::EWOULDBLOCK)) | Err((_, Errno::EINTR)) => {}
                Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
            }
            if start.elapsed() >= timeout {
                return Err(Error::Locked {
                    path: path.to_path_buf(),
                    waited: timeout.as_secs(),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_shared_shares() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let a = FileLock::acquire(&p, false, Duration::from_millis(10)).unwrap();
        let b = FileLock::acquire(&p, false, Duration::from_millis(10)).unwrap();
        let e = FileLock::acquire(&p, true, Duration::from_millis(30)).unwrap_err();
        assert!(
            e.to_string().contains("locked by another box process"),
            "{e}"
        );
        drop((a, b));
        let _x = FileLock::acquire(&p, true, Duration::from_millis(10)).unwrap();
    }
}
