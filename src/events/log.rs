//! The log file: appending (one `write()` per event, rotation under the lock), reading
//! (the rotated file, then the current one) and following (inotify on the directory).
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{Error, Event, MAX_SIZE, log_path};
use crate::lock::{FileLock, Mode};

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// The rotated file beside `log`.
fn rotated(log: &Path) -> PathBuf {
    log.with_file_name("events.log.1")
}

/// A user's event log directory.
#[derive(Debug, Clone)]
pub struct Log {
    dir: PathBuf,
    max: u64,
}

impl Log {
    pub fn new(dir: &Path) -> Log {
        Log::with_max(dir, MAX_SIZE)
    }

    /// A log rotated past `max` bytes (tests use small ones).
    pub fn with_max(dir: &Path, max: u64) -> Log {
        Log {
            dir: dir.to_path_buf(),
            max,
        }
    }

    pub fn path(&self) -> PathBuf {
        log_path(&self.dir)
    }

    /// Append one event as one line with one `write()`; rotate when the file is too big.
    pub fn append(&self, event: &Event) -> Result<(), Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io("create", &self.dir))?;
        let path = self.path();
        let mut line = serde_json::to_vec(event).expect("events serialize");
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(io("open", &path))?;
        let n = f.write(&line).map_err(io("write", &path))?;
        if n != line.len() {
            return Err(Error::Io {
                what: "write",
                path,
                source: std::io::Error::new(std::io::ErrorKind::WriteZero, "short write"),
            });
        }
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        if size > self.max {
            self.rotate()?;
        }
        Ok(())
    }

    /// Rename the log to `events.log.1` (replacing the older one) under the lock; a writer
    /// that rotated it first leaves nothing to do.
    fn rotate(&self) -> Result<(), Error> {
        let Some(_lock) = FileLock::try_acquire(&self.dir.join("events.lock"), Mode::Exclusive)?
        else {
            return Ok(()); // another writer is rotating it
        };
        let path = self.path();
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > self.max {
            fs::rename(&path, rotated(&path)).map_err(io("rotate", &path))?;
        }
        Ok(())
    }
}

/// Every event in the log, oldest first: the rotated file, then the current one. Lines
/// that do not parse (a torn last line after a crash) are skipped.
pub fn read_all(dir: &Path) -> Result<Vec<Event>, Error> {
    let path = log_path(dir);
    let mut out = Vec::new();
    for p in [rotated(&path), path] {
        match fs::read(&p) {
            Ok(bytes) => out.extend(parse_lines(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read", &p)(e)),
        }
    }
    Ok(out)
}

fn parse_lines(bytes: &[u8]) -> impl Iterator<Item = Event> + '_ {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
}

/// Follows the log as it grows, across rotations: inotify on the directory, no polling.
pub struct Follower {
    path: PathBuf,
    inotify: Inotify,
    file: Option<(File, u64)>,
    partial: Vec<u8>,
}

impl Follower {
    /// Start following `dir`'s log: from its first line (`from_start`), else from its end.
    pub fn new(dir: &Path, from_start: bool) -> Result<Follower, Error> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create", dir))?;
        let inotify =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|source| {
                Error::Watch {
                    path: dir.to_path_buf(),
                    source,
                }
            })?;
        inotify
            .add_watch(
                dir,
                AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CREATE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_MOVED_FROM,
            )
            .map_err(|source| Error::Watch {
                path: dir.to_path_buf(),
                source,
            })?;
        let mut f = Follower {
            path: log_path(dir),
            inotify,
            file: None,
            partial: Vec::new(),
        };
        f.reopen()?;
        if !from_start && let Some((file, _)) = f.file.as_mut() {
            file.seek(SeekFrom::End(0))
                .map_err(io("read", &log_path(dir)))?;
        }
        Ok(f)
    }

    /// (Re)open the current log when it is another file than ours (created or rotated).
    /// Returns whether it did.
    fn reopen(&mut self) -> Result<bool, Error> {
        let ino = match fs::metadata(&self.path) {
            Ok(m) => m.ino(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("read", &self.path)(e)),
        };
        if self.file.as_ref().is_some_and(|(_, i)| *i == ino) {
            return Ok(false);
        }
        match File::open(&self.path) {
            Ok(file) => {
                self.file = Some((file, ino));
                self.partial.clear();
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("read", &self.path)(e)),
        }
    }

    /// What was appended since the last call.
    fn drain(&mut self) -> Result<Vec<Event>, Error> {
        let Some((file, _)) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(io("read", &self.path))?;
        self.partial.extend_from_slice(&buf);
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let rest = self.partial.split_off(last_nl + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        Ok(parse_lines(&whole).collect())
    }

    /// The events appended since the last call; waits for some until `deadline` (None:
    /// for ever). An empty answer means the deadline passed.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Vec<Event>, Error> {
        loop {
            let mut out = self.drain()?;
            // The old file is drained: move on to a new one, from its start.
            while self.reopen()? {
                out.extend(self.drain()?);
            }
            if !out.is_empty() {
                return Ok(out);
            }
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Vec::new());
                    }
                    PollTimeout::try_from(left.min(Duration::from_secs(3600)))
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(self.inotify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(source) => {
                    return Err(Error::Watch {
                        path: self.path.clone(),
                        source,
                    });
                }
            }
            // Empty the queue; which file changed does not matter, we look at both.
            while matches!(self.inotify.read_events(), Ok(ev) if !ev.is_empty()) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Kind;
    use super::*;

    fn ev(n: usize) -> Event {
        let mut e = Event::new(Kind::Volume, "create");
        e.name = format!("v{n}");
        e
    }

    #[test]
    fn appends_rotates_and_reads_back_in_order() {
        let d = tempfile::tempdir().unwrap();
        let log = Log::with_max(d.path(), 1000);
        for i in 0..30 {
            log.append(&ev(i)).unwrap();
        }
        assert!(d.path().join("events.log.1").exists());
        assert!(fs::metadata(log.path()).map_or(0, |m| m.len()) <= 1000 + 200);
        let all = read_all(d.path()).unwrap();
        // Only the last two files are kept: the newest events, in order.
        let names: Vec<usize> = all.iter().map(|e| e.name[1..].parse().unwrap()).collect();
        assert_eq!(*names.last().unwrap(), 29);
        assert!(names.windows(2).all(|w| w[1] == w[0] + 1), "{names:?}");
    }

    #[test]
    fn concurrent_writers_do_not_interleave() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().to_path_buf();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let log = Log::new(&dir);
                    for i in 0..200 {
                        let mut e = ev(i);
                        e.id = format!("{t}-{}", "x".repeat(200));
                        log.append(&e).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = fs::read_to_string(log_path(&dir)).unwrap();
        assert_eq!(text.lines().count(), 800);
        for l in text.lines() {
            serde_json::from_str::<Event>(l).unwrap();
        }
    }

    #[test]
    fn follows_across_rotation() {
        let d = tempfile::tempdir().unwrap();
        let log = Log::with_max(d.path(), 300);
        log.append(&ev(0)).unwrap();
        let mut f = Follower::new(d.path(), false).unwrap();
        let soon = || Some(Instant::now() + Duration::from_millis(200));
        assert!(f.next(soon()).unwrap().is_empty(), "starts at the end");
        let mut seen = Vec::new();
        for i in 1..12 {
            log.append(&ev(i)).unwrap();
            seen.extend(f.next(soon()).unwrap().into_iter().map(|e| e.name));
        }
        let want: Vec<String> = (1..12).map(|i| format!("v{i}")).collect();
        assert_eq!(seen, want);
        assert!(d.path().join("events.log.1").exists());
    }
}
