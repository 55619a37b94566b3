//! A transient, delegated scope from the user's (or, for root, the system's) systemd,
//! over D-Bus with zbus: `StartTransientUnit("box-<id>.scope", "fail", [PIDs, Delegate=yes])`.
//!
//! zbus is async; the call runs inside `zbus::block_on` in a forked child when box is
//! single-threaded (the D-Bus machinery, its allocations and any helper thread never touch
//! box's own process, which must stay single-threaded to clone the container), inline
//! otherwise. The caller waits for systemd to move the pid (see `cgroup::prepare`).
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

use zbus::{OwnedObjectPath, Variant};

use super::Error;

/// Ask systemd to start `unit` (a `.scope`) holding `pid`, with Delegate=yes.
pub fn start_delegated_scope(unit: &str, pid: u32, description: &str) -> Result<(), Error> {
    let single_threaded = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count() == 1)
        .unwrap_or(false);
    if !single_threaded {
        return call(unit, pid, description);
    }
    let (r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().map_err(|e| Error::Fork(e.into()))?;
    // SAFETY: box is single-threaded (checked above), so the child may run any code.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::Fork(e.into()))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let code = match call(unit, pid, description) {
                Ok(()) => 0,
                Err(e) => {
                    let mut f = std::fs::File::from(w);
                    let _ = f.write_all(e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: leave without running box's atexit handlers or destructors twice.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut msg = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut msg);
            let status = nix::sys::wait::waitpid(child, None).map_err(|e| Error::Fork(e.into()))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                _ if !msg.is_empty() => Err(Error::StartUnit {
                    unit: unit.to_string(),
                    message: strip_prefix(&msg, unit),
                }),
                other => Err(Error::StartUnit {
                    unit: unit.to_string(),
                    message: format!("the D-Bus helper ended with {other:?}"),
                }),
            }
        }
    }
}

fn strip_prefix(msg: &str, unit: &str) -> String {
    let p = format!("systemd refused to start {unit}: ");
    msg.strip_prefix(&p).unwrap_or(msg).to_string()
}

fn bus_name() -> String {
    if nix::unistd::getuid().is_root() {
        "system bus".into()
    } else {
        std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_else(|_| {
            match std::env::var("XDG_RUNTIME_DIR") {
                Ok(d) => format!("unix:path={d}/bus"),
                Err(_) => format!("unix:path=/run/user/{}/bus", nix::unistd::getuid()),
            }
        })
    }
}

fn call(unit: &str, pid: u32, description: &str) -> Result<(), Error> {
    let bus = bus_name();
    zbus::block_on(async {
        let conn = if nix::unistd::getuid().is_root() {
            zbus::Connection::system().await
        } else {
            zbus::connection::Builder::address(bus.as_str())
                .build()
                .await
        }
        .map_err(|e| Error::Bus {
            bus: bus.clone(),
            message: e.to_string(),
        })?;
        let props: Vec<(&str, Variant<'_>)> = vec![
            ("Description", Variant::from(description)),
            ("PIDs", Variant::from(vec![pid])),
            ("Delegate", Variant::from(true)),
            ("CollectMode", Variant::from("inactive-or-failed")),
        ];
        let aux: Vec<(&str, Vec<(&str, Variant<'_>)>)> = Vec::new();
        let reply = conn
            .call_method(
                Some("org.freedesktop.systemd1"),
                "/org/freedesktop/systemd1",
                Some("org.freedesktop.systemd1.Manager"),
                "StartTransientUnit",
                &(unit, "fail", props, aux),
            )
            .await
            .map_err(|e| Error::StartUnit {
                unit: unit.to_string(),
                message: e.to_string(),
            })?;
        let _job: OwnedObjectPath = reply.body().deserialize().map_err(|e| Error::StartUnit {
            unit: unit.to_string(),
            message: e.to_string(),
        })?;
        Ok(())
    })
}
