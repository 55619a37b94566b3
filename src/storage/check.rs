//! `box system check`: verify the store, optionally repair it, and clean tmp/.
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{Error, Store, digest_hex};

/// What a check found. `to_remove` holds paths (possibly with subordinate-owned files) the
/// caller removes with `remove::remove_trees` once no thread is running.
#[derive(Debug, Default)]
pub struct Report {
    /// Damage: something visible is missing, corrupt or unparsable.
    pub problems: Vec<String>,
    /// Garbage in tmp/ from processes that died (kill -9, a crash): never visible as
    /// store content, removed by `--repair` or the next pull.
    pub leftovers: Vec<String>,
    pub repaired: Vec<String>,
    pub to_remove: Vec<PathBuf>,
}

/// Whether a tmp/ entry named `<pid>-...` belongs to a process that is gone.
pub fn stale_pid_name(name: &str) -> bool {
    let Some((pid, _)) = name.split_once('-') else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    if pid <= 0 || pid as u32 == std::process::id() {
        return false;
    }
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

impl Store {
    /// Detach (rename to a fresh tmp name of ours) the tmp/ entries of dead processes.
    /// Takes the exclusive lock briefly. Returns what to remove.
    pub fn detach_stale_tmp(&self) -> Result<Vec<PathBuf>, Error> {
        let _lock = self.lock_exclusive()?;
        let mut out = Vec::new();
        let dir = self.tmp_dir();
        let Ok(rd) = fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Partial downloads are kept for a resume, but not forever.
            let old_partial = (name.ends_with(".part") || name.ends_with(".lock"))
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(24 * 3600))
                && super::FileLock::is_free(&e.path());
            if stale_pid_name(&name) || old_partial {
                let dest = self.tmp_path(&format!("rm-{}", super::unique()));
                if fs::rename(e.path(), &dest).is_ok() {
                    out.push(dest);
                }
            }
        }
        Ok(out)
    }

    /// Verify records, layers and blobs; with `repair`, drop what is broken.
    pub fn check(&self, repair: bool) -> Result<Report, Error> {
        let _lock = if repair {
            self.lock_exclusive()?
        } else {
            self.lock_shared()?
        };
        let mut r = Report::default();
        let (images, errors) = self.images_and_errors()?;
        for e in errors {
            r.problems.push(e.to_string());
            if repair && let Error::Corrupt { path, .. } = &e {
                let _ = fs::remove_file(path);
                r.repaired.push(format!("removed {}", path.display()));
            }
        }
        for img in &images {
            let missing: Vec<&String> =
                img.diff_ids.iter().filter(|d| !self.has_layer(d)).collect();
            if !missing.is_empty() {
                r.problems.push(format!(
                    "image {} ({}) is missing {} layer(s), first {}",
                    img.short_id(),
                    img.names.first().map(String::as_str).unwrap_or("<none>"),
                    missing.len(),
                    missing[0]
                ));
                if repair {
                    let _ = fs::remove_file(self.image_path(&img.id));
                    r.repaired
                        .push(format!("removed image {}: pull it again", img.short_id()));
                }
            }
        }
        // Layer directories.
        if let Ok(rd) = fs::read_dir(self.layers_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                let ok = name.len() == 64
                    && p.join("layer.json").is_file()
                    && fs::symlink_metadata(p.join("diff")).is_ok_and(|m| m.is_dir())
                    && fs::read(p.join("layer.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<super::LayerRecord>(&b).ok())
                        .is_some_and(|l| digest_hex(&l.diff_id).is_ok_and(|h| h == name));
                if !ok {
                    r.problems
                        .push(format!("layer {} is incomplete", p.display()));
                    if repair {
                        let dest = self.tmp_path(&format!("rm-{}", super::unique()));
                        if fs::rename(&p, &dest).is_ok() {
                            r.to_remove.push(dest);
                            r.repaired.push(format!("removed {}", p.display()));
                        }
                    }
                }
            }
        }
        // Blobs: the content must hash to the name.
        if let Ok(rd) = fs::read_dir(self.blobs_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                match hash_file(&p) {
                    Ok(h) if h == name => {}
                    Ok(h) => {
                        r.problems
                            .push(format!("blob {name} is corrupt (content hashes to {h})"));
                        if repair {
                            let _ = fs::remove_file(&p);
                            r.repaired.push(format!("removed blob {name}"));
                        }
                    }
                    Err(e) => r.problems.push(format!("blob {name}: {e}")),
                }
            }
        }
        // Leftovers in tmp/.
        if let Ok(rd) = fs::read_dir(self.tmp_dir()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                let idle = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| m.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(600));
                // A partial download (kept for a resume) counts once nothing has written
                // to it for 10 minutes; a lock file once nobody holds it.
                let leftover = stale_pid_name(&name)
                    || (name.ends_with(".part") && idle)
                    || (name.ends_with(".lock") && super::FileLock::is_free(&p));
                if leftover {
                    r.leftovers.push(p.display().to_string());
                    if repair {
                        let dest = self.tmp_path(&format!("rm-{}", super::unique()));
                        if fs::rename(&p, &dest).is_ok() {
                            r.to_remove.push(dest);
                            r.repaired.push(format!("removed {}", p.display()));
                        }
                    }
                }
            }
        }
        Ok(r)
    }
}

/// Hex sha256 of a file, streamed.
pub fn hash_file(p: &std::path::Path) -> std::io::Result<String> {
    let mut f = fs::File::open(p)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}
