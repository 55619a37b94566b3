//! The test registry (Debian's docker-registry on 127.0.0.1) and process-exit cleanup.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the atexit handler tears down: the registry and /tmp/box-it-<pid>.
struct Cleanup {
    base: PathBuf,
    registry_pid: Option<i32>,
}

static CLEANUP: Mutex<Option<Cleanup>> = Mutex::new(None);

extern "C" fn at_exit() {
    let Ok(mut guard) = CLEANUP.lock() else {
        return;
    };
    let Some(c) = guard.take() else { return };
    if let Some(pid) = c.registry_pid {
        // SAFETY: plain kill(2) of the registry we spawned.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    if std::env::var_os("BOX_IT_KEEP").is_some() {
        super::say(&format!("harness: kept {}", c.base.display()));
    } else {
        super::testbox::remove_tree(&c.base);
    }
}

/// Remove `base` (after killing the registry) when the test process exits.
pub fn register_cleanup(base: &Path) {
    *CLEANUP.lock().unwrap() = Some(Cleanup {
        base: base.to_path_buf(),
        registry_pid: None,
    });
    // SAFETY: registers a plain extern "C" fn.
    unsafe {
        libc::atexit(at_exit);
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

enum Event {
    Spawned(i32),
    SpawnFailed(String),
    Exited(String),
}

/// Start docker-registry with its storage under `dir`; the port once `GET /v2/` answers.
///
/// The registry is spawned from a thread that lives as long as the registry, with
/// PR_SET_PDEATHSIG=SIGKILL (which fires when the *spawning thread* exits), so it dies with the
/// test process even when that is killed; the atexit handler kills it on a normal exit.
pub fn start(dir: &Path) -> Result<u16, String> {
    std::fs::create_dir_all(dir.join("storage"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port().map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let log_path = dir.join("registry.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let registry = super::which("docker-registry").ok_or("docker-registry not found")?;

        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("box-it-registry".into())
            .spawn(move || {
                let mut cmd = Command::new(registry);
                cmd.arg("serve").arg(&config);
                super::background(&mut cmd, log);
                match cmd.spawn() {
                    Ok(mut child) => {
                        let _ = tx.send(Event::Spawned(child.id() as i32));
                        let status = child.wait();
                        let _ = tx.send(Event::Exited(format!("{status:?}")));
                    }
                    Err(e) => {
                        let _ = tx.send(Event::SpawnFailed(e.to_string()));
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let pid = match rx.recv() {
            Ok(Event::Spawned(pid)) => pid,
            Ok(Event::SpawnFailed(e)) => return Err(format!("cannot run docker-registry: {e}")),
            _ => return Err("the registry thread died".into()),
        };
        if let Some(c) = CLEANUP.lock().unwrap().as_mut() {
            c.registry_pid = Some(pid);
        }

        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = format!("127.0.0.1:{port}");
        loop {
            if let Ok(Event::Exited(status)) = rx.try_recv() {
                last = format!(
                    "docker-registry exited ({status}) on port {port}: {}",
                    std::fs::read_to_string(&log_path)
                        .unwrap_or_default()
                        .trim()
                );
                break;
            }
            if matches!(http_get(&addr, "/v2/"), Ok((200, _))) {
                return Ok(port);
            }
            if Instant::now() > deadline {
                // SAFETY: kill(2) of our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                last = format!("docker-registry did not answer on {addr} within 15 s");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(last)
}

/// A tiny HTTP/1.0 GET (loopback only): (status, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {head:?}")))?;
    Ok((status, body.to_string()))
}
