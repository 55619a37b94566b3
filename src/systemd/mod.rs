//! Talking to systemd: sd_notify (READY=1, MAINPID, STOPPING=1), passing NOTIFY_SOCKET into a
//! container for `--sdnotify=container`, and asking the user's systemd for a delegated
//! transient scope over D-Bus (only when a limit needs one: see `cgroup::prepare`).
//!
//! `--sdnotify` in `run`:
//! - `container`: [`for_container`] gives the socket to bind-mount at
//!   [`CONTAINER_SOCKET`] and the `NOTIFY_SOCKET` to set; the container sends READY=1 itself.
//! - `ready`: the container gets no NOTIFY_SOCKET; box calls [`ready`] once the container's
//!   process has exec'd.
//! - `ignore`: the container gets no NOTIFY_SOCKET and box tells systemd nothing.
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

pub use crate::spec::SdNotify;

pub mod quadlet;
mod scope;
pub mod unit;

pub use scope::start_delegated_scope;

/// Where the notify socket appears inside a container with `--sdnotify=container`.
pub const CONTAINER_SOCKET: &str = "/run/notify/notify.sock";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot send {state:?} to systemd's notify socket {socket}: {source}")]
    Notify {
        state: String,
        socket: String,
        source: std::io::Error,
    },
    #[error(
        "NOTIFY_SOCKET {0} is an abstract socket, which a container cannot reach: use --sdnotify=ready"
    )]
    AbstractForContainer(String),
    #[error("NOTIFY_SOCKET {0} does not exist: is box running under a Type=notify unit?")]
    NoSocket(String),
    #[error("cannot reach systemd over D-Bus ({bus}): {message}")]
    Bus { bus: String, message: String },
    #[error("systemd refused to start {unit}: {message}")]
    StartUnit { unit: String, message: String },
    #[error("cannot ask systemd for a scope: {0}")]
    Fork(std::io::Error),
}

/// Whether systemd is the init system (it creates /run/systemd/system at boot).
pub fn booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The notify socket systemd gave box, if any.
pub fn notify_socket() -> Option<String> {
    std::env::var("NOTIFY_SOCKET")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Send `state` (e.g. "READY=1\nMAINPID=42") to $NOTIFY_SOCKET. Ok(false) when there is no
/// socket (not under a Type=notify unit); `@name` is an abstract socket.
pub fn notify(state: &str) -> Result<bool, Error> {
    match notify_socket() {
        None => Ok(false),
        Some(sock) => notify_to(&sock, state).map(|()| true),
    }
}

pub(crate) fn notify_to(sock: &str, state: &str) -> Result<(), Error> {
    let err = |source| Error::Notify {
        state: state.to_string(),
        socket: sock.to_string(),
        source,
    };
    let addr = match sock.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).map_err(err)?,
        None => SocketAddr::from_pathname(sock).map_err(err)?,
    };
    let s = UnixDatagram::unbound().map_err(err)?;
    s.send_to_addr(state.as_bytes(), &addr).map_err(err)?;
    Ok(())
}

/// `--sdnotify=ready`: the container is running. MAINPID names `main_pid`: box's own pid
/// when box supervises in the foreground (it forwards SIGTERM and cleans up after the
/// container, so systemd must watch box, not the container).
pub fn ready(main_pid: u32) -> Result<bool, Error> {
    notify(&format!("READY=1\nMAINPID={main_pid}"))
}

/// Tell systemd box is stopping the container (shown by `systemctl status`).
pub fn stopping() -> Result<bool, Error> {
    notify("STOPPING=1")
}

/// What `run` adds to a container for `--sdnotify=container`: bind-mount `host_socket` (a
/// socket file) onto `container_socket` (create an empty file there first, and its
/// directory), and set `env` in the container's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerNotify {
    pub host_socket: PathBuf,
    pub container_socket: PathBuf,
    pub env: (String, String),
}

/// The notify socket plumbing for a container, by `--sdnotify` mode. None when the
/// container gets no NOTIFY_SOCKET (modes ready and ignore, or box has none itself). In
/// every mode the container must not inherit box's own NOTIFY_SOCKET any other way.
pub fn for_container(mode: SdNotify) -> Result<Option<ContainerNotify>, Error> {
    for_container_with(mode, notify_socket())
}

fn for_container_with(
    mode: SdNotify,
    sock: Option<String>,
) -> Result<Option<ContainerNotify>, Error> {
    let (SdNotify::Container, Some(sock)) = (mode, sock) else {
        return Ok(None);
    };
    if sock.starts_with('@') {
        return Err(Error::AbstractForContainer(sock));
    }
    let host = PathBuf::from(&sock);
    if !host.exists() {
        return Err(Error::NoSocket(sock));
    }
    Ok(Some(ContainerNotify {
        host_socket: host,
        container_socket: PathBuf::from(CONTAINER_SOCKET),
        env: ("NOTIFY_SOCKET".into(), CONTAINER_SOCKET.into()),
    }))
}

/// `run`, before creating the container: with `--sdnotify=container` under a notify socket,
/// the spec to use instead — the socket bind-mounted at [`CONTAINER_SOCKET`] and
/// `NOTIFY_SOCKET` in the environment. None: use the spec as it is.
pub fn spec_with_notify(spec: &crate::spec::Spec) -> Result<Option<crate::spec::Spec>, Error> {
    let n = match for_container(spec.sdnotify) {
        Ok(Some(n)) => n,
        Ok(None) => return Ok(None),
        // Nothing the container could use: say so (in the unit's journal), run anyway.
        Err(e @ (Error::AbstractForContainer(_) | Error::NoSocket(_))) => {
            eprintln!("box: warning: {e}");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut s = spec.clone();
    s.env.retain(|e| !e.starts_with("NOTIFY_SOCKET="));
    s.env.push(format!("{}={}", n.env.0, n.env.1));
    s.mounts.push(crate::spec::Mount::Bind {
        source: n.host_socket,
        target: n.container_socket.display().to_string(),
        readonly: false,
    });
    Ok(Some(s))
}

/// `run`, once the container's command runs: with `--sdnotify=ready`, READY=1 and
/// MAINPID=box (box stays the supervisor). Failures are warnings: the container runs.
pub fn container_started(spec: &crate::spec::Spec) {
    if spec.sdnotify == SdNotify::Ready
        && let Err(e) = ready(std::process::id())
    {
        eprintln!("box: warning: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_path_socket() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("notify");
        let srv = UnixDatagram::bind(&p).unwrap();
        notify_to(p.to_str().unwrap(), "READY=1\nMAINPID=7").unwrap();
        let mut buf = [0u8; 64];
        let n = srv.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nMAINPID=7");
    }

    #[test]
    fn notify_abstract_socket() {
        let name = format!("box-test-notify-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let srv = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = srv.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn notify_missing_socket_is_an_error() {
        let e = notify_to("/nonexistent/box/notify", "READY=1").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/box/notify"));
    }

    #[test]
    fn container_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("notify");
        let _srv = UnixDatagram::bind(&p).unwrap();
        let s = Some(p.display().to_string());
        let c = for_container_with(SdNotify::Container, s.clone())
            .unwrap()
            .unwrap();
        assert_eq!(c.host_socket, p);
        assert_eq!(c.container_socket, Path::new(CONTAINER_SOCKET));
        assert_eq!(c.env, ("NOTIFY_SOCKET".into(), CONTAINER_SOCKET.into()));
        assert_eq!(
            for_container_with(SdNotify::Ready, s.clone()).unwrap(),
            None
        );
        assert_eq!(for_container_with(SdNotify::Ignore, s).unwrap(), None);
        assert_eq!(for_container_with(SdNotify::Container, None).unwrap(), None);
        assert!(for_container_with(SdNotify::Container, Some("@abs".into())).is_err());
        assert!(for_container_with(SdNotify::Container, Some("/nope/x".into())).is_err());
    }

    #[test]
    fn modes_round_trip() {
        for m in [SdNotify::Container, SdNotify::Ready, SdNotify::Ignore] {
            assert_eq!(SdNotify::from_name(m.name()), m);
        }
        assert_eq!(
            SdNotify::from_name(""),
            SdNotify::Container,
            "records from before the field"
        );
    }
}
