//! The one file lock of box: flock(2) on a lock file, shared or exclusive, taken at once
//! ([`FileLock::try_acquire`]) or waited for up to a timeout ([`FileLock::acquire`],
//! [`default_timeout`]: `BOX_LOCK_TIMEOUT` seconds, default 60). Used by `storage` (the store
//! lock, per-layer work locks), `container` (the name index, trash entries) and `volume`.
//!
//! Whoever holds a lock file exclusively writes `<pid> <start time> <command line>` into it
//! and empties it again before releasing it, so that a process that gives up waiting can say
//! who is in the way: "… is locked by pid 1234 (box pull alpine) …: wait for it or kill it".
//! A holder is only named while that pid still runs the same command it started with (a
//! holder killed with SIGKILL leaves its line behind; its pid may be reused).
//! Directories can be locked too ([`FileLock::try_dir`]), without a holder line.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} lock file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "{path} is locked by {} (held for more than {waited}s): {}, or set BOX_LOCK_TIMEOUT=SECONDS to wait longer",
        holder_text(.holder),
        advice(.holder)
    )]
    Timeout {
        path: PathBuf,
        holder: Option<Holder>,
        waited: u64,
    },
}

fn holder_text(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another box process".into(),
    }
}

fn advice(holder: &Option<Holder>) -> &'static str {
    match holder {
        Some(_) => "wait for it or kill it",
        None => "wait for it to finish",
    }
}

/// Shared (readers) or exclusive (writers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

/// The process holding a lock exclusively, as it recorded itself in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    /// Its command line, e.g. `box pull alpine` (the program's file name, then its arguments).
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

/// How long to wait for a lock before giving up: `BOX_LOCK_TIMEOUT` seconds, default 60.
pub fn default_timeout() -> Duration {
    std::env::var("BOX_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(60))
}

/// A held flock; released on drop (after emptying the holder line it wrote).
#[derive(Debug)]
pub struct FileLock {
    lock: Flock<File>,
    path: PathBuf,
    wrote_holder: bool,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if self.wrote_holder {
            let _ = self.lock.set_len(0);
        }
    }
}

impl FileLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock's descriptor, for a child to inherit (see [`FileLock::leave_to_child`]).
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.lock.as_raw_fd()
    }

    /// A child inherited the descriptor: close ours without unlocking, so the lock is held
    /// until the child exits.
    pub fn leave_to_child(self) {
        let fd = self.raw_fd();
        let mut me = std::mem::ManuallyDrop::new(self);
        drop(std::mem::take(&mut me.path));
        // SAFETY: fd is ours and, with the Flock never dropped, closed exactly once.
        unsafe { libc::close(fd) };
    }

    /// Take a lock on `path` (created when missing), polling until `timeout`; then fail
    /// naming the lock file and, when known, the process holding it.
    pub fn acquire(path: &Path, mode: Mode, timeout: Duration) -> Result<FileLock, Error> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            if let Some(l) = FileLock::try_acquire(path, mode)? {
                return Ok(l);
            }
            if start.elapsed() >= timeout {
                return Err(Error::Timeout {
                    path: path.to_path_buf(),
                    holder: holder(path),
                    waited: timeout.as_secs(),
                });
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// Take a lock on `path` (created when missing) without waiting: `None` while another
    /// process holds it in a conflicting mode.
    pub fn try_acquire(path: &Path, mode: Mode) -> Result<Option<FileLock>, Error> {
        let Some(lock) = lock_file(path, mode)? else {
            return Ok(None);
        };
        let mut l = FileLock {
            lock,
            path: path.to_path_buf(),
            wrote_holder: false,
        };
        if mode == Mode::Exclusive {
            // Best effort: a lock whose holder cannot be named still works.
            let line = own_holder_line();
            l.wrote_holder = l.lock.set_len(0).is_ok();
            let _ = l.lock.write_all_at(line.as_bytes(), 0);
        }
        Ok(Some(l))
    }

    /// Whether nobody holds `path` (created when missing): an exclusive lock could be taken
    /// now. Takes it for an instant without writing a holder line (the file is not modified).
    pub fn is_free(path: &Path) -> bool {
        matches!(lock_file(path, Mode::Exclusive), Ok(Some(_)))
    }

    /// Lock directory `path` exclusively without waiting and without following a symlink:
    /// `None` while another process holds it.
    pub fn try_dir(path: &Path) -> Result<Option<FileLock>, Error> {
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err("open", path))?;
        Ok(flock(dir, Mode::Exclusive, path)?.map(|lock| FileLock {
            lock,
            path: path.to_path_buf(),
            wrote_holder: false,
        }))
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
    let path = path.to_path_buf();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

fn lock_file(path: &Path, mode: Mode) -> Result<Option<Flock<File>>, Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err("open", path))?;
    flock(file, mode, path)
}

fn flock(file: File, mode: Mode, path: &Path) -> Result<Option<Flock<File>>, Error> {
    let arg = match mode {
        Mode::Shared => FlockArg::LockSharedNonblock,
        Mode::Exclusive => FlockArg::LockExclusiveNonblock,
    };
    match Flock::lock(file, arg) {
        Ok(l) => Ok(Some(l)),
        Err((_, Errno::EWOULDBLOCK | Errno::EINTR)) => Ok(None),
        Err((_, errno)) => Err(io_err("lock", path)(io::Error::from(errno))),
    }
}

/// The process that recorded itself as the exclusive holder of lock file `path`, if it
/// still runs the command it recorded.
pub fn holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let (pid, start, command) = parse_holder_line(&text)?;
    let (now_start, now_command) = describe(pid)?;
    (now_start == start && now_command == command).then_some(Holder { pid, command })
}

fn parse_holder_line(text: &str) -> Option<(i32, u64, String)> {
    let line = text.lines().next()?;
    let mut parts = line.splitn(3, ' ');
    let pid: i32 = parts.next()?.parse().ok().filter(|&p| p > 0)?;
    let start: u64 = parts.next()?.parse().ok()?;
    let command = parts.next()?.to_string();
    Some((pid, start, command))
}

/// `<pid> <start time> <command line>\n` of this process.
fn own_holder_line() -> &'static str {
    static LINE: OnceLock<String> = OnceLock::new();
    LINE.get_or_init(|| {
        let pid = std::process::id() as i32;
        match describe(pid) {
            Some((start, command)) => format!("{pid} {start} {command}\n"),
            None => String::new(),
        }
    })
}

/// (start time, printable command line) of a living process.
fn describe(pid: i32) -> Option<(u64, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 2..].split_ascii_whitespace();
    if matches!(fields.next()?, "Z" | "X" | "x") {
        return None;
    }
    // the rest starts at field 3 (state); starttime is field 22
    let start: u64 = fields.nth(18)?.parse().ok()?;
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some((start, printable_command(&raw)))
}

/// `box pull alpine` from a NUL-separated command line: the program's file name, then its
/// arguments; control characters replaced, at most 200 characters.
fn printable_command(raw: &[u8]) -> String {
    let mut args = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy);
    let Some(prog) = args.next() else {
        return "?".into();
    };
    let prog = prog.rsplit('/').next().unwrap_or(&prog).to_string();
    let mut out = std::iter::once(prog)
        .chain(args.map(|a| a.into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    out = out
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short() -> Duration {
        Duration::from_millis(30)
    }

    #[test]
    fn shared_locks_share() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let _a = FileLock::acquire(&p, Mode::Shared, short()).unwrap();
        let _b = FileLock::acquire(&p, Mode::Shared, short()).unwrap();
        assert!(FileLock::try_acquire(&p, Mode::Shared).unwrap().is_some());
    }

    #[test]
    fn exclusive_blocks_shared_and_exclusive_until_dropped() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let x = FileLock::acquire(&p, Mode::Exclusive, short()).unwrap();
        assert!(FileLock::try_acquire(&p, Mode::Shared).unwrap().is_none());
        assert!(
            FileLock::try_acquire(&p, Mode::Exclusive)
                .unwrap()
                .is_none()
        );
        assert!(!FileLock::is_free(&p));
        drop(x);
        assert!(FileLock::is_free(&p));
        let _s = FileLock::acquire(&p, Mode::Shared, short()).unwrap();
    }

    #[test]
    fn shared_blocks_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let s = FileLock::acquire(&p, Mode::Shared, short()).unwrap();
        let e = FileLock::acquire(&p, Mode::Exclusive, short()).unwrap_err();
        // readers write no holder line: nobody to name
        assert!(matches!(&e, Error::Timeout { holder: None, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(msg.contains("locked by another box process"), "{msg}");
        drop(s);
        let _x = FileLock::acquire(&p, Mode::Exclusive, short()).unwrap();
    }

    #[test]
    fn timeout_names_the_file_and_the_holder() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("store.lock");
        let _x = FileLock::acquire(&p, Mode::Exclusive, short()).unwrap();
        let start = Instant::now();
        let e = FileLock::acquire(&p, Mode::Shared, Duration::from_millis(200)).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert!(start.elapsed() < Duration::from_secs(5));
        let Error::Timeout { holder, .. } = &e else {
            panic!("{e:?}")
        };
        let holder = holder.as_ref().expect("the holder is named");
        assert_eq!(holder.pid, std::process::id() as i32);
        let me = std::env::current_exe().unwrap();
        let me = me.file_name().unwrap().to_string_lossy();
        assert!(holder.command.starts_with(&*me), "{holder:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!(
                "{} is locked by pid {} ({me}",
                p.display(),
                std::process::id()
            )),
            "{msg}"
        );
        assert!(msg.contains("wait for it or kill it"), "{msg}");
    }

    #[test]
    fn release_forgets_the_holder() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let x = FileLock::acquire(&p, Mode::Exclusive, short()).unwrap();
        assert!(holder(&p).is_some());
        drop(x);
        assert_eq!(fs::read(&p).unwrap(), b"");
        assert_eq!(holder(&p), None);
    }

    #[test]
    fn a_stale_holder_line_is_not_named() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let me = std::process::id() as i32;
        let (start, command) = describe(me).unwrap();
        // a dead process, a pid reused by another command, another start time
        for line in [
            format!("999999999 {start} {command}\n"),
            format!("{me} {start} sh -c sleep\n"),
            format!("{me} {} {command}\n", start + 1),
            "garbage".to_string(),
        ] {
            fs::write(&p, &line).unwrap();
            assert_eq!(holder(&p), None, "{line}");
        }
        fs::write(&p, format!("{me} {start} {command}\n")).unwrap();
        assert_eq!(holder(&p).map(|h| h.pid), Some(me));
    }

    #[test]
    fn another_process_holding_it_is_waited_for() {
        // flock(1) holds an exclusive lock in another process for a moment.
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("l");
        let Ok(mut child) = std::process::Command::new("flock")
            .arg("-x")
            .arg(&p)
            .args(["sleep", "0.5"])
            .spawn()
        else {
            eprintln!("no flock(1): skipped");
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while FileLock::is_free(&p) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(matches!(
            FileLock::acquire(&p, Mode::Shared, short()),
            Err(Error::Timeout { holder: None, .. })
        ));
        let _s = FileLock::acquire(&p, Mode::Shared, Duration::from_secs(10)).unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn directories_lock_without_a_holder_line() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d");
        fs::create_dir(&d).unwrap();
        let a = FileLock::try_dir(&d).unwrap().expect("free");
        assert!(FileLock::try_dir(&d).unwrap().is_none());
        drop(a);
        assert!(FileLock::try_dir(&d).unwrap().is_some());
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(FileLock::try_dir(&link).is_err());
    }

    #[test]
    fn printable_commands() {
        assert_eq!(
            printable_command(b"/usr/bin/box\0pull\0alpine\0"),
            "box pull alpine"
        );
        assert_eq!(printable_command(b"box\0a\nb\0"), "box a?b");
        assert_eq!(printable_command(b""), "?");
        assert_eq!(printable_command(&[b'x'; 500]).len(), 200);
    }
}
