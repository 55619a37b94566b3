//! Starting pasta or slirp4netns for a container's network namespace, and stopping them.
//!
//! The helper is a direct child of the calling box process (fork+exec via std::process), in
//! its own process group (a terminal's ^C goes to the container, not to the helper), with
//! `PR_SET_PDEATHSIG=SIGKILL` so that it dies with the box process that started it, even on
//! `kill -9`. slirp4netns also gets `--exit-fd`, the read end of a pipe only box holds.
//!
//! Readiness, without polling:
//! - pasta runs with `--foreground --pid /dev/stdout`, stdout a pipe: pasta writes its pid
//!   there once the namespace is configured (tap up, addresses, routes, ports bound).
//! - slirp4netns writes "1" to `--ready-fd` once the tap, addresses and API socket are up;
//!   box then publishes ports through the API socket (`add_hostfwd`) and removes the socket.
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

use super::host::{HostFacts, RealHost};
use super::ports::{PortMapping, Protocol};
use super::{Error, Mode, PASTA_DNS_FORWARD, Plan};

/// How long a helper may take to configure the namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which helper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    Pasta,
    Slirp4netns,
}

impl Helper {
    pub fn name(self) -> &'static str {
        match self {
            Helper::Pasta => "pasta",
            Helper::Slirp4netns => "slirp4netns",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Helper::Pasta => "passt",
            Helper::Slirp4netns => "slirp4netns",
        }
    }
}

/// A running helper process.
#[derive(Debug)]
struct Proc {
    helper: Helper,
    child: Child,
    /// The helper's stderr: an unlinked temp file (a pipe nobody reads could block it).
    stderr: File,
    /// slirp4netns' `--exit-fd` pipe: it exits when box closes this (or dies).
    _exit_w: Option<OwnedFd>,
}

impl Proc {
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Kill and reap. A helper that already exited is reaped too.
    fn stop(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            // Reaped by someone else (waitpid(-1)): nothing left to do.
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(()),
            Err(e) => return Err(self.io("cannot check", e)),
        }
        if let Err(e) = self.child.kill()
            && e.kind() != std::io::ErrorKind::InvalidInput
        {
            return Err(self.io("cannot kill", e));
        }
        match self.child.wait() {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(()),
            Err(e) => Err(self.io("cannot reap", e)),
        }
    }

    fn io(&self, what: &'static str, source: std::io::Error) -> Error {
        Error::HelperIo {
            what,
            helper: self.helper.name(),
            source,
        }
    }

    /// What the helper said on stderr, one line, without its syslog complaints.
    fn stderr_text(&mut self) -> String {
        let mut text = String::new();
        let _ = self.stderr.seek(SeekFrom::Start(0));
        let _ = (&self.stderr).take(64 * 1024).read_to_string(&mut text);
        summarize_stderr(&text)
    }

    /// The failure of a helper that exited (or is about to): exit status and stderr.
    fn failed(&mut self, deadline: Instant) -> Error {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st.to_string(),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    let _ = self.stop();
                    break "killed: it closed its output but did not exit".into();
                }
                Err(e) => break format!("unknown status: {e}"),
            }
        };
        Error::HelperFailed {
            helper: self.helper.name(),
            status,
            stderr: self.stderr_text(),
        }
    }
}

pub(super) fn summarize_stderr(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        // pasta logs to syslog too; without one it complains on every line.
        .filter(|l| !(l.starts_with("Failed to send") && l.ends_with("to syslog")))
        .filter(|l| !l.starts_with("Don't run as root"))
        .collect();
    if lines.is_empty() {
        return "no error message".into();
    }
    let mut s = lines.join("; ");
    if s.len() > 600 {
        let mut cut = 600;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// The network of a container while it runs: the helper process, if the mode has one.
/// Dropping the handle kills the helper without waiting for its exit; [`Handle::stop`]
/// kills and reaps it and reports errors.
#[derive(Debug)]
pub struct Handle {
    mode: Mode,
    proc: Option<Proc>,
    setup_time: Duration,
}

impl Handle {
    /// The handle of a mode without a helper (none, host, container:NAME).
    pub fn without_helper(mode: Mode) -> Handle {
        Handle {
            mode,
            proc: None,
            setup_time: Duration::ZERO,
        }
    }

    /// The helper's pid, for the container's state.
    pub fn pid(&self) -> Option<Pid> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// `pasta` or `slirp4netns`, when a helper runs.
    pub fn helper(&self) -> Option<Helper> {
        self.proc.as_ref().map(|p| p.helper)
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// How long the helper took from spawn to a configured namespace.
    pub fn setup_time(&self) -> Duration {
        self.setup_time
    }

    /// Whether the helper is still alive (false when there is none). Reaps it if it died.
    pub fn is_alive(&mut self) -> bool {
        self.proc
            .as_mut()
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Kill and reap the helper.
    pub fn stop(mut self) -> Result<(), Error> {
        match self.proc.take() {
            Some(mut p) => p.stop(),
            None => Ok(()),
        }
    }
}

impl Drop for Handle {
    /// SIGKILL without waiting: a helper's exit takes 20-40 ms (the kernel unregisters its
    /// tap device synchronously), which `box run --rm` should not wait for. The exiting
    /// helper is reaped by the next [`start`] in this process (so a restart finds its ports
    /// free), by [`reap_helpers`], or by init once box exits.
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.kill_later();
        }
    }
}

/// Helpers killed by a dropped [`Handle`] that may still be exiting.
static EXITING: std::sync::Mutex<Vec<Child>> = std::sync::Mutex::new(Vec::new());

impl Proc {
    fn kill_later(self) {
        let mut child = self.child;
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        let _ = child.kill();
        if matches!(child.try_wait(), Ok(None)) {
            EXITING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(child);
        }
    }
}

/// Wait until every helper killed by a dropped handle has exited (its ports are free).
pub fn reap_helpers() {
    let mut list = EXITING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for mut c in list.drain(..) {
        let _ = c.wait();
    }
}

/// A helper that was spawned and is configuring the namespace: overlap other work with its
/// start-up, then [`Starting::wait`] before the container's command runs.
#[derive(Debug)]
pub struct Starting {
    mode: Mode,
    proc: Option<Proc>,
    ready: Option<OwnedFd>,
    ports: Vec<PortMapping>,
    api: Option<tempfile::TempDir>,
    started: Instant,
}

impl Starting {
    /// The helper's pid.
    pub fn pid(&self) -> Option<Pid> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Block until the helper has configured the namespace (and, for slirp4netns, the ports
    /// are published). On error the helper is killed.
    pub fn wait(mut self) -> Result<Handle, Error> {
        let deadline = self.started + READY_TIMEOUT;
        let Some(mut proc) = self.proc.take() else {
            return Ok(Handle::without_helper(self.mode.clone()));
        };
        let ready = self.ready.take().expect("a started helper has a ready fd");
        // pasta writes its pid and a newline, slirp4netns "1" and closes the fd.
        match wait_line(ready.as_fd(), deadline) {
            Ok(Some(_)) => {}
            Ok(None) => {
                let err = proc.failed(deadline + Duration::from_secs(1));
                return Err(err);
            }
            Err(WaitError::Timeout) => {
                let _ = proc.stop();
                return Err(Error::HelperTimeout {
                    helper: proc.helper.name(),
                    secs: READY_TIMEOUT.as_secs(),
                    stderr: proc.stderr_text(),
                });
            }
            Err(WaitError::Io(e)) => {
                let _ = proc.stop();
                return Err(proc.io("cannot read the readiness of", e));
            }
        }
        if proc.helper == Helper::Slirp4netns && !self.ports.is_empty() {
            let api = self
                .api
                .as_ref()
                .expect("slirp4netns with ports has an API socket");
            let socket = api.path().join("slirp4netns.sock");
            for m in &self.ports {
                if let Err(e) = slirp_add_hostfwd(&socket, m) {
                    let _ = proc.stop();
                    return Err(e);
                }
            }
        }
        // The API socket stays bound inside slirp4netns; nobody needs its path any more.
        drop(self.api.take());
        Ok(Handle {
            mode: self.mode.clone(),
            proc: Some(proc),
            setup_time: self.started.elapsed(),
        })
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            let _ = p.stop();
        }
    }
}

enum WaitError {
    Timeout,
    Io(std::io::Error),
}

/// Read until a newline (Some(line)) or EOF (None), or the deadline passes.
fn wait_line(fd: BorrowedFd<'_>, deadline: Instant) -> Result<Option<String>, WaitError> {
    let mut buf = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WaitError::Timeout);
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Err(WaitError::Timeout),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(WaitError::Io(e.into())),
        }
        let mut chunk = [0u8; 64];
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => {
                // slirp4netns writes "1" without a newline and closes the fd.
                return Ok(if buf.is_empty() {
                    None
                } else {
                    Some(String::from_utf8_lossy(&buf).into_owned())
                });
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.contains(&b'\n') {
                    return Ok(Some(String::from_utf8_lossy(&buf).trim().to_string()));
                }
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(WaitError::Io(e.into())),
        }
    }
}

/// The pasta arguments for a plan: configure the namespace, forward the published ports
/// (`-t`/`-u`, "none" otherwise: pasta's default is to forward everything it sees bound),
/// never forward from the container to the host's ports (`-T none -U none`), DNS through a
/// fixed forwarder address, and the gateway address mapped to the host (the default, which
/// is what makes `host.containers.internal` reach the host's loopback). The namespaces
/// are `ns`, descriptors box opened and pasta inherits (see [`NsFds`]).
pub(super) fn pasta_args(ports: &[PortMapping], ns: (RawFd, RawFd), root: bool) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--config-net",
        "--foreground",
        "--quiet",
        "--pid",
        "/dev/stdout",
        "--ns-ifname",
        "eth0",
        "--dns-forward",
        PASTA_DNS_FORWARD,
        "-T",
        "none",
        "-U",
        "none",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    for (flag, proto) in [("-t", Protocol::Tcp), ("-u", Protocol::Udp)] {
        let specs = pasta_port_specs(ports, proto);
        if specs.is_empty() {
            args.push(flag.into());
            args.push("none".into());
        }
        for spec in specs {
            args.push(flag.into());
            args.push(spec.into());
        }
    }
    if root {
        // As root pasta switches to nobody, who may not enter the container's namespaces.
        args.push("--runas".into());
        args.push("0".into());
    }
    // Its own descriptors: no /proc/PID/ns permission check, which a container that made
    // itself non-dumpable meanwhile (create's C2) would fail. Not bound to a file, the
    // network namespace needs no watching: pasta dies with box (PDEATHSIG).
    args.extend(
        [
            "--userns".to_string(),
            format!("/proc/self/fd/{}", ns.0),
            "--netns".to_string(),
            format!("/proc/self/fd/{}", ns.1),
            "--no-netns-quit".to_string(),
        ]
        .map(OsString::from),
    );
    args
}

/// The user and network namespaces of a container, opened by box while the container
/// waits to be released (still dumpable), for pasta to inherit.
struct NsFds {
    user: OwnedFd,
    net: OwnedFd,
}

impl NsFds {
    fn open(child: Pid) -> Result<NsFds, Error> {
        let open = |ns: &str| {
            std::fs::File::open(format!("/proc/{}/ns/{ns}", child.as_raw()))
                .map(OwnedFd::from)
                .map_err(|e| Error::Io {
                    what: "cannot open the container's namespaces for pasta",
                    source: e,
                })
        };
        Ok(NsFds {
            user: open("user")?,
            net: open("net")?,
        })
    }

    fn raw(&self) -> (RawFd, RawFd) {
        (self.user.as_raw_fd(), self.net.as_raw_fd())
    }
}

/// pasta's arguments for `Mode::Forward`: the namespace is not configured (netavark does
/// that), no DNS forwarder; its tap device gets a name of its own.
fn forward_only(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("--config-net") => {}
            Some("--dns-forward") => {
                it.next();
            }
            Some("--ns-ifname") => {
                it.next();
                out.push(a);
                out.push("pasta0".into());
            }
            _ => out.push(a),
        }
    }
    out
}

/// One pasta spec per run of consecutive ports on one address:
/// `127.0.0.1/8000-8001:80-81`, `8080:80`, `::1/53:53`.
pub(super) fn pasta_port_specs(ports: &[PortMapping], proto: Protocol) -> Vec<String> {
    let mut runs: Vec<(Option<IpAddr>, u16, u16, u16)> = Vec::new(); // ip, host0, host1, cont0
    for m in ports.iter().filter(|m| m.protocol == proto) {
        if let Some(last) = runs.last_mut()
            && last.0 == m.host_ip
            && last.2.checked_add(1) == Some(m.host_port)
            && last.3 as u32 + (last.2 - last.1) as u32 + 1 == m.container_port as u32
        {
            last.2 = m.host_port;
            continue;
        }
        runs.push((m.host_ip, m.host_port, m.host_port, m.container_port));
    }
    runs.into_iter()
        .map(|(ip, h0, h1, c0)| {
            let addr = ip.map(|ip| format!("{ip}/")).unwrap_or_default();
            let c1 = c0 + (h1 - h0);
            if h0 == h1 {
                format!("{addr}{h0}:{c0}")
            } else {
                format!("{addr}{h0}-{h1}:{c0}-{c1}")
            }
        })
        .collect()
}

fn slirp_args(child: Pid, ready_fd: RawFd, exit_fd: RawFd, api: Option<&Path>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "--configure".into(),
        "--mtu=65520".into(),
        format!("--ready-fd={ready_fd}").into(),
        format!("--exit-fd={exit_fd}").into(),
    ];
    if let Some(api) = api {
        let mut a = OsString::from("--api-socket=");
        a.push(api);
        args.push(a);
    }
    args.push(child.as_raw().to_string().into());
    args.push("tap0".into());
    args
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::Io {
        what: "cannot create a pipe for the network helper",
        source: e.into(),
    })
}

/// Spawn `program args` as a helper: own process group, dies with us, stdin null,
/// stderr to an unlinked temp file, `inherit` fds kept open across exec.
fn spawn(
    helper: Helper,
    program: &Path,
    args: &[OsString],
    stdout: Stdio,
    inherit: Vec<RawFd>,
) -> Result<Proc, Error> {
    let stderr = tempfile::tempfile().map_err(|e| Error::Io {
        what: "cannot create a log file for the network helper",
        source: e,
    })?;
    let stderr_for_child = stderr.try_clone().map_err(|e| Error::Io {
        what: "cannot create a log file for the network helper",
        source: e,
    })?;
    let parent = nix::unistd::getpid().as_raw();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::from(stderr_for_child))
        .process_group(0);
    // SAFETY: only async-signal-safe calls (prctl, getppid, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before prctl: the signal will never come.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            for &fd in &inherit {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Error::Spawn {
        helper: helper.name(),
        program: program.to_path_buf(),
        source: e,
    })?;
    // `cmd` still holds the child's ends of pipes; they must close now so that EOF means
    // "the helper exited".
    drop(cmd);
    Ok(Proc {
        helper,
        child,
        stderr,
        _exit_w: None,
    })
}

/// Where the slirp4netns API socket goes: the runtime dir when there is one.
fn api_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

fn find(helper: Helper, host: &dyn HostFacts) -> Result<PathBuf, Error> {
    host.find_program(helper.name())
        .ok_or_else(|| Error::HelperMissing {
            program: helper.name(),
            package: helper.package(),
            other: match helper {
                Helper::Pasta => "slirp4netns",
                Helper::Slirp4netns => "pasta",
            },
        })
}

/// pasta re-executes itself as `pasta.avx2` on CPUs with AVX2 (Debian's build): start that
/// one directly and save an exec.
fn avx2_build(pasta: PathBuf) -> PathBuf {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let avx2 = pasta.with_file_name("pasta.avx2");
        if avx2.is_file() {
            return avx2;
        }
    }
    pasta
}

/// Spawn the plan's helper for `child`'s network namespace without waiting for it.
pub fn start(plan: &Plan, child: Pid) -> Result<Starting, Error> {
    start_with(plan, &[], child)
}

/// slirp4netns' flags for podman's `slirp4netns:` options (checked at create).
pub fn slirp_options(options: &[String]) -> Result<Vec<String>, String> {
    let mut flags = Vec::new();
    for o in options {
        let (k, v) = o.split_once('=').unwrap_or((o.as_str(), "true"));
        let yes = match v {
            "true" => true,
            "false" => false,
            _ => !matches!(k, "allow_host_loopback" | "enable_ipv6"),
        };
        match k {
            "allow_host_loopback" if yes => {}
            "allow_host_loopback" => flags.push("--disable-host-loopback".to_string()),
            "enable_ipv6" if yes => flags.push("--enable-ipv6".to_string()),
            "enable_ipv6" => {}
            "mtu" if v.parse::<u32>().is_ok_and(|n| (68..=65521).contains(&n)) => {
                flags.push(format!("--mtu={v}"))
            }
            "outbound_addr" | "outbound_addr6" if v.parse::<IpAddr>().is_ok() => {
                flags.push(format!("--{}={v}", k.replace('_', "-")))
            }
            // box publishes ports through slirp4netns' API: the handler is that one.
            "port_handler" if matches!(v, "slirp4netns" | "rootlesskit") => {}
            _ => {
                return Err(format!(
                    "--network slirp4netns:{o}: unsupported option: use allow_host_loopback=, enable_ipv6=, mtu=, outbound_addr= or outbound_addr6="
                ));
            }
        }
    }
    Ok(flags)
}

/// `start` with the user's helper options (see `super::setup_with`).
pub fn start_with(plan: &Plan, options: &[String], child: Pid) -> Result<Starting, Error> {
    if matches!(plan.mode, Mode::Pasta | Mode::Forward) {
        return defer(plan, options, child)?.start();
    }
    // A previous helper of this process (a restart) must release its ports first.
    reap_helpers();
    let started = Instant::now();
    let host = RealHost;
    let mut starting = Starting {
        mode: plan.mode.clone(),
        proc: None,
        ready: None,
        ports: Vec::new(),
        api: None,
        started,
    };
    match plan.mode {
        Mode::Slirp4netns => {
            let program = find(Helper::Slirp4netns, &host)?;
            let (ready_r, ready_w) = pipe()?;
            let (exit_r, exit_w) = pipe()?;
            let api = if plan.ports.is_empty() {
                None
            } else {
                Some(
                    tempfile::Builder::new()
                        .prefix("box-slirp-")
                        .tempdir_in(api_base())
                        .map_err(|e| Error::Io {
                            what: "cannot create a directory for the slirp4netns API socket",
                            source: e,
                        })?,
                )
            };
            let socket = api.as_ref().map(|d| d.path().join("slirp4netns.sock"));
            let mut args = slirp_args(
                child,
                ready_w.as_raw_fd(),
                exit_r.as_raw_fd(),
                socket.as_deref(),
            );
            let extra = slirp_options(options).map_err(|why| Error::InvalidPublish {
                spec: options.join(","),
                why,
                usage: "see box run --help",
            })?;
            if extra.iter().any(|f| f.starts_with("--mtu=")) {
                args.retain(|a| !a.to_string_lossy().starts_with("--mtu="));
            }
            // Options go before the pid and the interface name.
            let tail = args.split_off(args.len() - 2);
            args.extend(extra.into_iter().map(OsString::from));
            args.extend(tail);
            let mut proc = spawn(
                Helper::Slirp4netns,
                &program,
                &args,
                Stdio::null(),
                vec![ready_w.as_raw_fd(), exit_r.as_raw_fd()],
            )?;
            drop(ready_w);
            drop(exit_r);
            proc._exit_w = Some(exit_w);
            starting.proc = Some(proc);
            starting.ready = Some(ready_r);
            starting.ports = plan.ports.clone();
            starting.api = api;
        }
        Mode::Pasta | Mode::Forward | Mode::None | Mode::Host | Mode::Container(_) => {}
    }
    Ok(starting)
}

/// pasta for a container whose namespaces are open already: started now or later.
pub struct Deferred {
    mode: Mode,
    ports: Vec<PortMapping>,
    options: Vec<String>,
    ns: NsFds,
}

/// Open the container's namespaces for pasta now, while it waits to be released; start
/// pasta later ([`Deferred::start`]), even once the container runs. `Mode::Pasta` and
/// `Mode::Forward` only (slirp4netns takes the pid).
pub fn defer(plan: &Plan, options: &[String], child: Pid) -> Result<Deferred, Error> {
    if !matches!(plan.mode, Mode::Pasta | Mode::Forward) {
        return Err(Error::NotDeferrable(plan.mode.to_string()));
    }
    Ok(Deferred {
        mode: plan.mode.clone(),
        ports: plan.ports.clone(),
        options: options.to_vec(),
        ns: NsFds::open(child)?,
    })
}

impl Deferred {
    /// Spawn pasta; `Starting::wait` until it configured the namespace.
    pub fn start(self) -> Result<Starting, Error> {
        // A previous helper of this process (a restart) must release its ports first.
        reap_helpers();
        let started = Instant::now();
        let host = RealHost;
        let program = avx2_build(find(Helper::Pasta, &host)?);
        let (ready_r, ready_w) = pipe()?;
        let mut args = pasta_args(&self.ports, self.ns.raw(), host.is_root());
        args.extend(self.options.iter().map(OsString::from));
        if self.mode == Mode::Forward {
            args = forward_only(args);
        }
        let proc = spawn(
            Helper::Pasta,
            &program,
            &args,
            Stdio::from(ready_w),
            vec![self.ns.raw().0, self.ns.raw().1],
        )?;
        Ok(Starting {
            mode: self.mode,
            proc: Some(proc),
            ready: Some(ready_r),
            ports: Vec::new(),
            api: None,
            started,
        })
    }
}

/// Publish one port through slirp4netns' API socket.
fn slirp_add_hostfwd(socket: &Path, m: &PortMapping) -> Result<(), Error> {
    use std::os::unix::net::UnixStream;
    let what = format!("{}/{}", m.host_endpoint(), m.protocol);
    let fail = |why: String| Error::Hostfwd {
        what: what.clone(),
        why,
    };
    let req = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": m.protocol.as_str(),
            "host_addr": m.host_ip_string(),
            "host_port": m.host_port,
            "guest_port": m.container_port,
        }
    });
    let mut s = UnixStream::connect(socket).map_err(|e| fail(format!("API socket: {e}")))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    s.write_all(req.to_string().as_bytes())
        .map_err(|e| fail(format!("API socket: {e}")))?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                resp.extend_from_slice(&buf[..n]);
                if serde_json::from_slice::<serde_json::Value>(&resp).is_ok() {
                    break;
                }
            }
            Err(e) => return Err(fail(format!("API socket: {e}"))),
        }
    }
    let v: serde_json::Value =
        serde_json::from_slice(&resp).map_err(|_| fail("unreadable API answer".into()))?;
    if let Some(err) = v.get("error") {
        let desc = err
            .get("desc")
            .and_then(|d| d.as_str())
            .unwrap_or("unknown error");
        return Err(fail(desc.to_string()));
    }
    if v.get("return").is_none() {
        return Err(fail(format!("unexpected API answer {v}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ip: Option<&str>, h: u16, c: u16, p: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.map(|s| s.parse().unwrap()),
            host_port: h,
            container_port: c,
            protocol: p,
        }
    }

    #[test]
    fn pasta_specs_compress_runs() {
        let ports = vec![
            m(Some("127.0.0.1"), 8000, 80, Protocol::Tcp),
            m(Some("127.0.0.1"), 8001, 81, Protocol::Tcp),
            m(Some("127.0.0.1"), 8002, 90, Protocol::Tcp),
            m(None, 9000, 9000, Protocol::Tcp),
            m(Some("::1"), 5353, 53, Protocol::Udp),
        ];
        assert_eq!(
            pasta_port_specs(&ports, Protocol::Tcp),
            vec![
                "127.0.0.1/8000-8001:80-81",
                "127.0.0.1/8002:90",
                "9000:9000"
            ]
        );
        assert_eq!(pasta_port_specs(&ports, Protocol::Udp), vec!["::1/5353:53"]);
    }

    #[test]
    fn pasta_args_without_ports_forward_nothing() {
        let args = pasta_args(&[], (5, 6), false);
        let s: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        let joined = s.join(" ");
        assert!(joined.contains("-t none"), "{joined}");
        assert!(joined.contains("-u none"), "{joined}");
        assert!(joined.contains("-T none -U none"), "{joined}");
        assert!(joined.contains("--dns-forward 169.254.1.1"), "{joined}");
        assert!(!joined.contains("--runas"));
        assert!(!joined.contains("--no-map-gw"));
        assert!(
            joined.ends_with("--userns /proc/self/fd/5 --netns /proc/self/fd/6 --no-netns-quit"),
            "{joined}"
        );
        let root = pasta_args(&[], (5, 6), true);
        assert!(root.iter().any(|a| a == "--runas"));
    }

    #[test]
    fn pasta_args_udp_only_disables_tcp() {
        let args = pasta_args(&[m(None, 5353, 53, Protocol::Udp)], (5, 6), false);
        let joined = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(joined.contains("-t none -u 5353:53"), "{joined}");
    }

    #[test]
    fn stderr_summary_drops_syslog_noise() {
        let s = summarize_stderr(
            "Failed to send 51 bytes to syslog\nNo external routable interface for IPv4\n\nFailed to send 3 bytes to syslog\nExternal interface not usable\n",
        );
        assert_eq!(
            s,
            "No external routable interface for IPv4; External interface not usable"
        );
        assert_eq!(summarize_stderr(""), "no error message");
    }
}
