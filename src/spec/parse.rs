//! Reading what the user typed (and the image says) into spec values, one flag at a time:
//! the command (docker's entrypoint/cmd rules), the environment, mounts, labels, the stop
//! signal. `commands::container_spec` calls these with the flags' values.
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Component, Path, PathBuf};

use super::signal::signal_number;
use super::{Error, ImageDefaults, Labels, Mount};

/// `--stop-signal` (a signal box cannot send is an error), else the image's `StopSignal`
/// (one box cannot send is replaced by SIGTERM with a warning, as docker does: `stop`
/// must keep working).
pub fn stop_signal(flag: Option<&str>, image: &ImageDefaults) -> Result<Option<String>, Error> {
    if let Some(s) = flag {
        signal_number(s).map_err(|e| Error::Invalid(format!("--stop-signal {s}: {e}")))?;
        return Ok(Some(s.to_string()));
    }
    match &image.stop_signal {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => match signal_number(s) {
            Ok(_) => Ok(Some(s.clone())),
            Err(e) => {
                eprintln!(
                    "box: warning: the image's StopSignal {s:?} is ignored ({e}); using SIGTERM"
                );
                Ok(None)
            }
        },
        None => Ok(None),
    }
}

/// docker: `--entrypoint` replaces the image's Entrypoint *and* drops its Cmd; command
/// arguments replace Cmd. `--entrypoint ""` clears the entrypoint. A JSON array is accepted
/// for --entrypoint, as podman does.
pub fn command(
    entrypoint: Option<&str>,
    command: &[String],
    image: &ImageDefaults,
) -> Result<Vec<String>, Error> {
    let (entrypoint, cmd) = match entrypoint {
        Some(e) => {
            let ep = if e.is_empty() {
                Vec::new()
            } else if e.trim_start().starts_with('[') {
                serde_json::from_str::<Vec<String>>(e).map_err(|err| {
                    Error::Invalid(format!("--entrypoint {e:?}: not a JSON array: {err}"))
                })?
            } else {
                vec![e.to_string()]
            };
            (ep, command.to_vec())
        }
        None if command.is_empty() => (image.entrypoint.clone(), image.cmd.clone()),
        None => (image.entrypoint.clone(), command.to_vec()),
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Invalid(
            "no command specified: the image has none, give one after the image name".into(),
        ));
    }
    Ok(args)
}

/// Image Env, then --env-file lines, then -e; later keys replace earlier ones in place.
pub fn environment(
    image_env: &[String],
    env_files: &[PathBuf],
    env_flags: &[String],
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Error> {
    // Each key's slot in `env`: linear in the number of entries (an image may carry
    // 100 000 of them, an --env-file as many lines).
    let mut env: Vec<String> = Vec::new();
    let mut slots: HashMap<String, usize> = HashMap::new();
    let mut set = |kv: String| {
        let key = kv.split('=').next().unwrap_or("").to_string();
        match slots.entry(key) {
            Entry::Occupied(slot) => env[*slot.get()] = kv,
            Entry::Vacant(slot) => {
                slot.insert(env.len());
                env.push(kv);
            }
        }
    };
    for e in image_env {
        set(e.clone());
    }
    let user_entry = |entry: &str, origin: &str| -> Result<Option<String>, Error> {
        let (key, value) = match entry.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (entry, None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "{origin}: invalid environment variable {entry:?}"
            )));
        }
        Ok(value
            .or_else(|| host_env(key))
            .map(|v| format!("{key}={v}")))
    };
    for file in env_files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::Invalid(format!("cannot read --env-file {}: {e}", file.display()))
        })?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(kv) = user_entry(line, &file.display().to_string())? {
                set(kv);
            }
        }
    }
    for e in env_flags {
        if let Some(kv) = user_entry(e, "-e")? {
            set(kv);
        }
    }
    Ok(env)
}

/// Lexically clean an absolute container path: no `.`, `..` resolved, no trailing `/`.
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

pub fn volume_mount(
    v: &str,
    volume: &dyn Fn(Option<&str>) -> Result<PathBuf, String>,
) -> Result<Mount, Error> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        // `-v /path`: a new anonymous volume.
        [d] if d.starts_with('/') => ("", *d, ""),
        [_] => {
            return Err(Error::Invalid(format!(
                "-v {v}: use SRC:DEST[:ro|rw], or an absolute container path for an anonymous volume"
            )));
        }
        _ => return Err(Error::Invalid(format!("-v {v}: use SRC:DEST[:ro|rw]"))),
    };
    if !dst.starts_with('/') {
        return Err(Error::Invalid(format!(
            "-v {v}: the container path {dst:?} must be absolute"
        )));
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabel and propagation options: meaningless rootless, accepted.
            "z" | "Z" | "bind" | "rbind" | "private" | "rprivate" => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "-v {v}: unsupported option {o:?} (use ro or rw)"
                )));
            }
        }
    }
    let source = if src.is_empty() {
        volume(None).map_err(|e| Error::Invalid(format!("-v {v}: {e}")))?
    } else if src.starts_with('/') || src.starts_with('.') {
        std::fs::canonicalize(src).map_err(|e| {
            Error::Invalid(format!("-v {v}: the host path {src:?} cannot be used: {e}"))
        })?
    } else {
        if !src
            .bytes()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphanumeric() || (i > 0 && b"_.-".contains(&c)))
        {
            return Err(Error::Invalid(format!(
                "-v {v}: {src:?} is neither an absolute path nor a volume name"
            )));
        }
        // A named volume: created on first use, as podman does.
        volume(Some(src)).map_err(|e| Error::Invalid(format!("-v {v}: {e}")))?
    };
    Ok(Mount::Bind {
        source,
        target: clean_path(dst),
        readonly,
    })
}

/// Where `--read-only` puts a tmpfs unless `--read-only-tmpfs=false` (podman's).
pub const READ_ONLY_TMPFS: &[&str] = &["/run", "/tmp", "/var/tmp"];

pub fn tmpfs_mount(t: &str) -> Result<Mount, Error> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    if !dst.starts_with('/') {
        return Err(Error::Invalid(format!(
            "--tmpfs {t}: the container path must be absolute"
        )));
    }
    let options: Vec<String> = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect();
    for o in &options {
        let key = o.split('=').next().unwrap_or("");
        if !matches!(
            key,
            "ro" | "rw"
                | "exec"
                | "noexec"
                | "suid"
                | "nosuid"
                | "dev"
                | "nodev"
                | "size"
                | "mode"
                | "uid"
                | "gid"
                | "nr_inodes"
                | "nr_blocks"
        ) {
            return Err(Error::Invalid(format!(
                "--tmpfs {t}: unsupported option {o:?}"
            )));
        }
    }
    Ok(Mount::Tmpfs {
        target: clean_path(dst),
        options,
    })
}

/// `KEY=VALUE` labels.
pub fn labels(labels: &[String]) -> Result<Labels, Error> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            if k.is_empty() {
                Err(Error::Invalid(format!("--label {l:?}: use KEY=VALUE")))
            } else {
                Ok((k.to_string(), v.to_string()))
            }
        })
        .collect()
}
