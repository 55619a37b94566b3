//! The `box __internal unpack` helper process: root in a user namespace mapped like
//! `box run`'s, it reads one JSON `Job` per line on stdin and answers one `JobResult` per
//! line on stdout. `Unpacker` is the parent's side.
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Options, Stats, unpack_file};
use crate::storage::{Error, Store};

/// One job for the `__internal unpack` helper: a blob to unpack into `dest` (which must
/// not exist yet; it is created).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub blob: PathBuf,
    #[serde(default)]
    pub media_type: String,
    /// Expected `sha256:<hex>` of the uncompressed tar; empty to only compute it.
    pub diff_id: String,
    pub dest: PathBuf,
}

/// The helper's answer to one job (one JSON line on its stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobResult {
    pub dest: PathBuf,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub stats: Stats,
}

/// Body of `box __internal unpack`: enter the user namespace, then read one JSON `Job`
/// per line on stdin and answer one `JobResult` per line on stdout, working on up to
/// `workers` jobs at a time. Every `dest` must be under `<store>/tmp/`.
pub fn helper_main(store_root: &Path) -> Result<(), Error> {
    crate::userns::helper_enter()?;
    // The parent syncs the filesystem once for all layers before committing them.
    let opts = Options {
        sync: false,
        chown: std::env::var_os(SQUASH_ENV).is_none(),
        into_existing: false,
        ignore_chown_errors: std::env::var_os(crate::driver::IGNORE_CHOWN_ENV).is_some(),
    };
    serve(store_root, &opts)
}

/// The job loop of the helper (no namespace handling; tests call it directly).
pub fn serve(store_root: &Path, opts: &Options) -> Result<(), Error> {
    let tmp = store_root.join("tmp");
    // Unpacking waits on the filesystem more than on the CPU: as many workers as the
    // puller's download pool feeds (more than the cores), not one per core.
    let workers = 4;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let rx = std::sync::Mutex::new(rx);
    let out = std::sync::Mutex::new(io::stdout());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let job = match rx.lock().map(|r| r.recv()) {
                        Ok(Ok(job)) => job,
                        _ => break,
                    };
                    let res = if !job.dest.starts_with(&tmp)
                        || job
                            .dest
                            .components()
                            .any(|c| matches!(c, Component::ParentDir))
                    {
                        Err(Error::Helper(format!(
                            "refusing to unpack into {}: not under {}",
                            job.dest.display(),
                            tmp.display()
                        )))
                    } else {
                        let expected = Some(job.diff_id.as_str()).filter(|d| !d.is_empty());
                        unpack_file(&job.blob, &job.dest, expected, opts)
                    };
                    let result = match res {
                        Ok(stats) => JobResult {
                            dest: job.dest,
                            ok: true,
                            error: None,
                            stats,
                        },
                        Err(e) => JobResult {
                            dest: job.dest,
                            ok: false,
                            error: Some(e.to_string()),
                            stats: Stats::default(),
                        },
                    };
                    if let Ok(line) = serde_json::to_string(&result)
                        && let Ok(mut o) = out.lock()
                    {
                        let _ = writeln!(o, "{line}");
                        let _ = o.flush();
                    }
                }
            });
        }
        let stdin = io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Job>(&line) {
                Ok(job) => {
                    if tx.send(job).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("box: unpack helper: bad job: {e}");
                }
            }
        }
        drop(tx);
    });
    Ok(())
}

/// The parent's side of the unpack helper: a `box __internal unpack` process root in a
/// user namespace mapped like `box run`'s (0 → you, 1.. → your subordinate ids).
///
/// Spawn it while the process is single-threaded; `submit` may then be called from any
/// thread, and `results` read from another.
pub struct Unpacker {
    child: std::process::Child,
    stdin: std::sync::Mutex<Option<std::process::ChildStdin>>,
    stdout: Option<std::process::ChildStdout>,
    /// Why the image's owners cannot be kept (the user has no subordinate ids): the helper
    /// maps only the user, and every file is stored as the user's own (root in a
    /// container) instead of its owner in the image.
    pub owners_squashed: Option<crate::userns::Error>,
}

/// Tells the helper to keep the owners the user namespace has (see `owners_squashed`).
const SQUASH_ENV: &str = "BOX_UNPACK_SQUASH_OWNERS";

impl Unpacker {
    pub fn spawn(store: &Store) -> Result<Unpacker, Error> {
        use crate::userns::{IdMaps, Mode};
        use std::process::Stdio;
        // Without subordinate ids the image's owners cannot be kept; `run --userns=single`
        // still works with such a store (podman's ignore_chown_errors).
        let (maps, owners_squashed) = match IdMaps::for_current_user(Mode::Auto) {
            Ok(m) => (m, None),
            Err(e @ crate::userns::Error::NoSubids { .. }) => {
                (IdMaps::for_current_user(Mode::Single)?, Some(e))
            }
            Err(e) => return Err(e.into()),
        };
        let mut cmd = crate::userns::helper_command(&["unpack"]);
        if owners_squashed.is_some() {
            cmd.env(SQUASH_ENV, "1");
        }
        cmd.env("BOX_ROOT", store.data_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = crate::userns::spawn_helper(&maps, cmd)?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        Ok(Unpacker {
            child,
            stdin: std::sync::Mutex::new(stdin),
            stdout,
            owners_squashed,
        })
    }

    /// Queue one job.
    pub fn submit(&self, job: &Job) -> Result<(), Error> {
        let line = serde_json::to_string(job).map_err(|e| Error::Helper(e.to_string()))?;
        let mut guard = self
            .stdin
            .lock()
            .map_err(|_| Error::Helper("unpack helper input poisoned".into()))?;
        let w = guard
            .as_mut()
            .ok_or_else(|| Error::Helper("unpack helper input already closed".into()))?;
        writeln!(w, "{line}")
            .and_then(|_| w.flush())
            .map_err(|e| Error::Helper(format!("the unpack helper died: {e}")))
    }

    /// Close the helper's input: it finishes the queued jobs and exits.
    pub fn close(&self) {
        if let Ok(mut g) = self.stdin.lock() {
            g.take();
        }
    }

    /// The helper's answers, one per submitted job, until it exits.
    pub fn take_results(&mut self) -> impl Iterator<Item = JobResult> + use<> {
        let out = self.stdout.take();
        out.into_iter().flat_map(|o| {
            BufReader::new(o)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_str::<JobResult>(&l).ok())
        })
    }

    /// Wait for the helper to exit (closing its input first).
    pub fn wait(mut self) -> Result<(), Error> {
        self.close();
        let status = self.child.wait().map_err(|e| Error::Io {
            what: "wait for the unpack helper".into(),
            source: e,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(Error::Helper(format!(
                "the unpack helper failed ({status})"
            )))
        }
    }
}

/// Run `jobs` through a fresh helper and return their results (in completion order).
/// Single-threaded callers only (import, load).
pub fn unpack_all(store: &Store, jobs: &[Job]) -> Result<Vec<JobResult>, Error> {
    let mut u = Unpacker::spawn(store)?;
    let results = u.take_results();
    for j in jobs {
        u.submit(j)?;
    }
    u.close();
    let results: Vec<JobResult> = results.collect();
    u.wait()?;
    Ok(results)
}
