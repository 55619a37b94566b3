//! The parent ↔ child channel: one SOCK_SEQPACKET socketpair (message boundaries kept,
//! descriptors passed with SCM_RIGHTS), messages encoded as JSON.
//!
//! Both ends are close-on-exec. The child's end is the only copy left once the parent has
//! closed its duplicate, so the parent reading EOF means the child's `execve` succeeded (or
//! the child died).
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};

/// The numbered steps of container creation, in the order the child runs them. A failure
/// names its step, so an error says how far creation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Step {
    /// 0. `--network container:NAME` only, in a short-lived joiner process before the
    ///    child exists: enter the other container's user and network namespaces.
    Join = 0,
    /// 1. wait for the parent: id maps written, cgroup joined.
    Release = 1,
    /// 2. become root of the user namespace.
    Identity = 2,
    /// 3. host name (UTS namespace), loopback (network namespace).
    Namespaces = 3,
    /// 4. mount the image's root filesystem (overlay, fuse-overlayfs or a copy).
    Rootfs = 4,
    /// 5. /proc, /sys, /dev, /etc files, volumes, masks, read-only root.
    Mounts = 5,
    /// 6. pivot_root into the root filesystem and detach the host's.
    PivotRoot = 6,
    /// 7. the terminal or stdio, the working directory, the user; the network set up.
    Process = 7,
    /// 8. capabilities, seccomp, no_new_privs.
    Security = 8,
    /// 9. execve the command.
    Exec = 9,
}

impl Step {
    pub fn describe(self) -> &'static str {
        match self {
            Step::Join => "joining the other container's network",
            Step::Release => "waiting for the id maps",
            Step::Identity => "entering the user namespace",
            Step::Namespaces => "setting up namespaces",
            Step::Rootfs => "mounting the root filesystem",
            Step::Mounts => "mounting /proc, /sys, /dev and volumes",
            Step::PivotRoot => "switching to the root filesystem",
            Step::Process => "preparing the process",
            Step::Security => "applying security settings",
            Step::Exec => "starting the command",
        }
    }
}

/// parent → child: all box ever tells the container's PID 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToChild {
    /// Before step 1, one per `:idmap` bind: its detached idmapped mount (SCM_RIGHTS),
    /// which only box could make (see `run::idmap`), for the child to attach at step 5.
    IdmappedMount { target: String },
    /// Step 1: the maps are written, the cgroup joined.
    Release,
    /// Before step 8 (or before step 3's net.* sysctls): the network is set up.
    NetworkReady,
}

/// child (or the joiner) → parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToParent {
    /// joiner → parent (step 0): the child was cloned into the joined namespaces, with
    /// this pid (the parent's pid namespace; the child is the parent's own child).
    Cloned { pid: i32 },
    /// child → parent (step 7): the pty master, attached as SCM_RIGHTS.
    PtyMaster,
    /// A step failed; the child exits after sending this.
    Failed {
        step: Step,
        errno: i32,
        message: String,
    },
}

/// One end of the handshake, typed by direction: it can only send `S` and receive `R`,
/// so the parent cannot send what only the child sends, nor the other way round.
pub struct End<S, R> {
    ch: Channel,
    _dir: std::marker::PhantomData<fn(S) -> R>,
}

/// box's end: sends `ToChild`, receives `ToParent`.
pub type ParentEnd = End<ToChild, ToParent>;
/// The child's (and the joiner's) end: sends `ToParent`, receives `ToChild`.
pub type ChildEnd = End<ToParent, ToChild>;

/// The handshake's two ends: (box's, the child's).
pub fn handshake() -> Result<(ParentEnd, ChildEnd), ChannelError> {
    let (a, b) = Channel::pair()?;
    Ok((End::new(a), End::new(b)))
}

impl<S: Serialize, R: for<'de> Deserialize<'de>> End<S, R> {
    fn new(ch: Channel) -> Self {
        End {
            ch,
            _dir: std::marker::PhantomData,
        }
    }

    pub fn send(&self, msg: &S) -> Result<(), ChannelError> {
        self.ch.send_as(msg, &[])
    }

    pub fn send_with_fd(
        &self,
        msg: &S,
        fd: Option<std::os::fd::BorrowedFd>,
    ) -> Result<(), ChannelError> {
        self.ch.send_as(msg, &fd.into_iter().collect::<Vec<_>>())
    }

    /// The next message with any descriptors that came with it; None at EOF.
    pub fn recv(&self) -> Result<Option<(R, Vec<OwnedFd>)>, ChannelError> {
        self.ch.recv_as()
    }
}

impl<S, R> AsFd for End<S, R> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.ch.as_fd()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("sync channel: {0}")]
    Sys(#[from] nix::Error),
    #[error("sync channel: bad message: {0}")]
    Decode(#[from] serde_json::Error),
}

/// One end of the untyped channel (the handshake wraps it in `End`; the cleanup watcher
/// sends its own notes).
pub struct Channel {
    sock: OwnedFd,
}

impl Channel {
    /// A connected pair: (parent's end, child's end).
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel { sock: a }, Channel { sock: b }))
    }

    /// Send any serializable message with descriptors attached.
    pub fn send_as<T: Serialize>(
        &self,
        msg: &T,
        fds: &[std::os::fd::BorrowedFd],
    ) -> Result<(), ChannelError> {
        let bytes = serde_json::to_vec(msg)?;
        let iov = [IoSlice::new(&bytes)];
        let raw: Vec<std::os::fd::RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let cmsgs: &[ControlMessage] = if raw.is_empty() {
            &[]
        } else {
            &[ControlMessage::ScmRights(&raw)]
        };
        loop {
            match sendmsg::<()>(
                self.sock.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Err(nix::Error::EINTR) => continue,
                r => return r.map(|_| ()).map_err(Into::into),
            }
        }
    }

    /// `recv` for any deserializable message type.
    pub fn recv_as<T: for<'de> Deserialize<'de>>(
        &self,
    ) -> Result<Option<(T, Vec<OwnedFd>)>, ChannelError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let (n, fds) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(m) => {
                    let mut fds = Vec::new();
                    for c in m.cmsgs()? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: SCM_RIGHTS gave us these new descriptors.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break (m.bytes, fds);
                }
            }
        };
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((serde_json::from_slice(&buf[..n])?, fds)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross_and_eof_is_none() {
        let (parent, child) = handshake().unwrap();
        parent.send(&ToChild::Release).unwrap();
        parent.send(&ToChild::NetworkReady).unwrap();
        let (m, fds) = child.recv().unwrap().unwrap();
        assert_eq!(m, ToChild::Release);
        assert!(fds.is_empty());
        let (m, _) = child.recv().unwrap().unwrap();
        assert_eq!(m, ToChild::NetworkReady);
        child
            .send(&ToParent::Failed {
                step: Step::Exec,
                errno: 2,
                message: "nope".into(),
            })
            .unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        child
            .send_with_fd(&ToParent::PtyMaster, Some(f.as_fd()))
            .unwrap();
        let (m, fds) = parent.recv().unwrap().unwrap();
        assert!(matches!(
            m,
            ToParent::Failed {
                step: Step::Exec,
                errno: 2,
                ..
            }
        ));
        assert!(fds.is_empty());
        let (m, fds) = parent.recv().unwrap().unwrap();
        assert_eq!(m, ToParent::PtyMaster);
        assert_eq!(fds.len(), 1);
        drop(child);
        assert!(parent.recv().unwrap().is_none());
    }
}
