//! Running box (or a shell) as a test user, with a timeout, and asserting on the outcome.
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::testbox::{TestBox, TestUser};

/// Default time a command may take before it is killed and the test fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A `box` (or `sh -c`) invocation as the test box's user. Build it, then `.run()` or `.spawn()`.
///
/// Environment (nothing else is inherited): HOME, USER, LOGNAME, PATH of the user;
/// BOX_ROOT, BOX_RUNROOT and XDG_CONFIG_HOME inside the test box; `BOX_IT_DIR` (a marker for
/// cleanup); RUST_BACKTRACE when set for the tests. No XDG_RUNTIME_DIR. Working directory:
/// `tb.work()`. Change any of it with `.env()`, `.env_remove()`, `.current_dir()`.
#[must_use = "a BoxCmd does nothing until .run() or .spawn()"]
pub struct BoxCmd {
    tb: TestBox,
    script: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    cwd: Option<PathBuf>,
}

impl BoxCmd {
    pub(super) fn new(tb: TestBox, script: Option<String>) -> BoxCmd {
        BoxCmd {
            tb,
            script,
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            cwd: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set an environment variable (overrides the harness's value).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Unset an environment variable the harness sets (e.g. XDG_CONFIG_HOME, BOX_ROOT).
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Bytes to feed on stdin (stdin is /dev/null otherwise).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Kill the command (its whole process group) and fail the test after `d` (default 120 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn test_box(&self) -> &TestBox {
        &self.tb
    }

    /// The environment the command gets, in order.
    pub fn environment(&self) -> Vec<(OsString, OsString)> {
        let tb = &self.tb;
        let user = tb.user();
        let path = if tb.who() == TestUser::Root {
            ROOT_PATH
        } else {
            USER_PATH
        };
        let mut env: Vec<(OsString, OsString)> = vec![
            ("HOME".into(), user.home.clone().into()),
            ("USER".into(), user.name.clone().into()),
            ("LOGNAME".into(), user.name.clone().into()),
            ("PATH".into(), path.into()),
            ("BOX_ROOT".into(), tb.root().into()),
            ("BOX_RUNROOT".into(), tb.runroot().into()),
            ("XDG_CONFIG_HOME".into(), tb.config_dir().into()),
            ("BOX_IT_DIR".into(), tb.dir().into()),
        ];
        if let Some(v) = std::env::var_os("RUST_BACKTRACE") {
            env.push(("RUST_BACKTRACE".into(), v));
        }
        if self.script.is_some() {
            env.push(("BOX".into(), tb.env().box_bin().into()));
        }
        for (k, v) in &self.env {
            env.retain(|(ek, _)| ek != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        env
    }

    /// The full argv: `setpriv --reuid=U --regid=G --init-groups -- box ARGS...` (no setpriv
    /// for root; `/bin/sh -c SCRIPT` instead of box for `tb.sh`).
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = Vec::new();
        if self.tb.who() != TestUser::Root {
            let u = self.tb.user();
            argv.extend([
                "setpriv".into(),
                format!("--reuid={}", u.uid).into(),
                format!("--regid={}", u.gid).into(),
                "--init-groups".into(),
                "--".into(),
            ]);
        }
        match &self.script {
            Some(script) => {
                argv.extend(["/bin/sh".into(), "-c".into(), script.into(), "sh".into()]);
            }
            None => argv.push(self.tb.env().box_bin().into()),
        }
        argv.extend(self.args.iter().cloned());
        argv
    }

    fn cwd(&self) -> PathBuf {
        self.cwd.clone().unwrap_or_else(|| self.tb.work())
    }

    /// A ready `Command` (env, cwd, argv; own process group), for what `run`/`spawn` do not
    /// cover. Stdio is left to the caller.
    pub fn command(&self) -> Command {
        let argv = self.argv();
        let program = if self.tb.who() == TestUser::Root {
            argv[0].clone()
        } else {
            super::which("setpriv")
                .map(OsString::from)
                .unwrap_or_else(|| "setpriv".into())
        };
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..])
            .env_clear()
            .envs(self.environment())
            .current_dir(self.cwd())
            .process_group(0);
        cmd
    }

    /// One shell line with the same effect (`cd DIR && env -i K=V... setpriv ... box ARGS`),
    /// e.g. for `tmux new-session -d <line>` in tests that need a terminal.
    pub fn shell_line(&self) -> String {
        let mut words = vec!["env".to_string(), "-i".to_string()];
        for (k, v) in self.environment() {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            words.push(quote(&kv));
        }
        words.extend(self.argv().iter().map(|a| quote(a)));
        format!(
            "cd {} && exec {}",
            quote(self.cwd().as_os_str()),
            words.join(" ")
        )
    }

    /// How the command shows in failure messages.
    pub fn display(&self) -> String {
        let what = match &self.script {
            Some(s) => format!("sh -c {}", quote(OsStr::new(s))),
            None => "box".to_string(),
        };
        let args: Vec<String> = self.args.iter().map(|a| quote(a)).collect();
        format!(
            "{what} {} (as {}, store {})",
            args.join(" "),
            self.tb.user().name,
            self.tb.dir().display()
        )
    }

    /// Start it; stdout and stderr are collected. Wait with [`Running::wait`].
    pub fn spawn(self) -> Running {
        let display = self.display();
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {display}: {e}"));
        if let Some(bytes) = self.stdin {
            let mut w = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
        }
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Running {
            child: Some(child),
            out: Some(out),
            err: Some(err),
            started,
            timeout: self.timeout,
            display,
            _tb: self.tb,
        }
    }

    /// Run to completion (or panic after the timeout) and return what happened.
    pub fn run(self) -> Outcome {
        self.spawn().wait()
    }
}

fn collect(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn quote(s: &OsStr) -> String {
    let b = s.as_bytes();
    if !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_=./:,+@%".contains(c))
    {
        return s.to_string_lossy().into_owned();
    }
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// A started command. Dropping it without `wait` kills its process group.
pub struct Running {
    child: Option<Child>,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
    started: Instant,
    timeout: Duration,
    display: String,
    _tb: TestBox,
}

impl Running {
    /// The pid of box itself (setpriv execs it), also its process group id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(-1)
    }

    /// Send `sig` (e.g. `libc::SIGTERM`) to box.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) of our child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Wait until it exits (panics after the timeout, having killed its process group).
    pub fn wait(mut self) -> Outcome {
        let mut child = self.child.take().unwrap();
        let deadline = self.started + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    kill_group(&mut child);
                    let out = self.out.take().unwrap().join().unwrap_or_default();
                    let err = self.err.take().unwrap().join().unwrap_or_default();
                    panic!(
                        "timed out after {:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        self.timeout,
                        self.display,
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&err)
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("cannot wait for {}: {e}", self.display),
            }
        };
        let duration = self.started.elapsed();
        // A daemonised grandchild may keep the pipes open: do not wait for it forever.
        let stdout = join_with_deadline(self.out.take().unwrap(), deadline);
        let stderr = join_with_deadline(self.err.take().unwrap(), deadline);
        let signal = status.signal();
        Outcome {
            code: status.code().unwrap_or_else(|| 128 + signal.unwrap_or(0)),
            signal,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_bytes: stdout,
            cmdline: std::mem::take(&mut self.display),
            duration,
        }
    }
}

fn join_with_deadline(h: JoinHandle<Vec<u8>>, deadline: Instant) -> Vec<u8> {
    let deadline = deadline.max(Instant::now() + Duration::from_secs(5));
    while !h.is_finished() {
        if Instant::now() >= deadline {
            return b"<output still open: a background process holds the pipe>".to_vec();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    h.join().unwrap_or_default()
}

fn kill_group(child: &mut Child) {
    // SAFETY: kill(2) of our child's process group (it is the group leader).
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take()
            && matches!(child.try_wait(), Ok(None))
        {
            kill_group(&mut child);
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit status; 128+N when killed by signal N.
    pub code: i32,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: Vec<u8>,
    pub cmdline: String,
    pub duration: Duration,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n  exit code {}{} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.code,
            self.signal
                .map(|s| format!(" (signal {s})"))
                .unwrap_or_default(),
            self.duration,
            self.stdout,
            self.stderr
        )
    }
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// stdout without surrounding whitespace.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// stderr without surrounding whitespace.
    pub fn err(&self) -> &str {
        self.stderr.trim()
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.code == 0, "expected success:\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert!(self.code == code, "expected exit code {code}:\n{self}");
        self
    }

    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(self.code != 0, "expected a failure:\n{self}");
        self
    }

    #[track_caller]
    pub fn stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "expected stdout to contain {needle:?}:\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stdout_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stdout.contains(needle),
            "expected stdout not to contain {needle:?}:\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "expected stderr to contain {needle:?}:\n{self}"
        );
        self
    }

    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.stderr.contains(needle),
            "expected stderr not to contain {needle:?}:\n{self}"
        );
        self
    }

    /// stdout, trimmed, equals `expected` (trimmed).
    #[track_caller]
    pub fn stdout_is(&self, expected: &str) -> &Self {
        assert!(
            self.out() == expected.trim(),
            "expected stdout {:?}:\n{self}",
            expected.trim()
        );
        self
    }

    /// box's error convention: exactly one non-empty stderr line (lower-case after `box: `).
    #[track_caller]
    pub fn assert_one_line_error(&self) -> &Self {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert!(
            lines.len() == 1,
            "expected a one-line error on stderr:\n{self}"
        );
        self
    }
}
