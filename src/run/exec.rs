//! The last step: `execve` the container's command, looked up in the container's PATH
//! like docker does, with every inherited descriptor above 2 marked close-on-exec and the
//! signal state reset. Failures map to 127 (not found) and 126 (cannot invoke).
use std::ffi::{CStr, CString};

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};

use super::Fail;
use super::sys;
use crate::spec::DEFAULT_PATH;

/// docker's exit code for an exec failure with `errno`.
pub fn exit_code_for(errno: i32) -> u8 {
    if errno == libc::ENOENT || errno == libc::ENOTDIR {
        crate::exit::NOT_FOUND
    } else {
        crate::exit::CANNOT_INVOKE
    }
}

/// Default dispositions for every signal (an ignored SIGPIPE, as Rust sets it, would
/// survive exec) and an empty signal mask.
pub fn reset_signals() {
    for n in 1..=64 {
        if n == libc::SIGKILL || n == libc::SIGSTOP {
            continue;
        }
        if let Ok(sig) = Signal::try_from(n) {
            // SAFETY: installing SIG_DFL has no handler to be unsafe about.
            let _ = unsafe { signal(sig, SigHandler::SigDfl) };
        } else {
            // Real-time signals: nix has no Signal for them.
            // SAFETY: as above, SIG_DFL.
            unsafe { libc::signal(n, libc::SIG_DFL) };
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// The candidates for `argv0`: itself when it has a `/`, else each PATH entry.
fn candidates(argv0: &CStr, envp: &[CString]) -> Vec<CString> {
    let name = argv0.to_bytes();
    if name.contains(&b'/') {
        return vec![argv0.to_owned()];
    }
    let path = envp
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { &b"."[..] } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(name);
            CString::new(full).expect("no NUL: both parts came from C strings")
        })
        .collect()
}

/// `--preserve-fds N`: descriptors 3..3+N the command keeps (set by the child before
/// `exec`; 0 otherwise).
pub static PRESERVE_FDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// How many descriptors (3..3+N) this box process was handed for a container
/// (`cli::main`: `run --preserve-fds N`, or the monitor's `box start --attach`); a
/// container gets at most these, whatever its spec says (a later `box start` has none).
static HANDED_FDS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

pub fn set_handed_fds(n: u32) {
    HANDED_FDS.store(n, std::sync::atomic::Ordering::Relaxed);
}

pub fn handed_fds() -> u32 {
    HANDED_FDS.load(std::sync::atomic::Ordering::Relaxed)
}

/// execve the command. Returns only on failure.
pub fn exec(argv: &[CString], envp: &[CString]) -> Fail {
    let Some(argv0) = argv.first() else {
        return Fail::new(libc::ENOENT, "no command".into());
    };
    let shown = argv0.to_string_lossy();
    let keep = PRESERVE_FDS.load(std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = sys::cloexec_from(3 + keep) {
        return Fail::new(
            e as i32,
            format!("close inherited descriptors: {}", e.desc()),
        );
    }
    // The preserved ones, close-on-exec in box, are the command's.
    if let Err(e) = sys::preserved_cloexec(keep, false) {
        return Fail::new(
            e as i32,
            format!("pass the preserved descriptors: {}", e.desc()),
        );
    }
    reset_signals();
    let searched = !argv0.to_bytes().contains(&b'/');
    let mut denied = None;
    for path in candidates(argv0, envp) {
        let Err(err) = nix::unistd::execve(&path, argv, envp);
        match err {
            Errno::ENOENT | Errno::ENOTDIR if searched => continue,
            Errno::EACCES if searched => {
                denied.get_or_insert(err);
                continue;
            }
            e => return exec_fail(&shown, e),
        }
    }
    match denied {
        Some(e) => exec_fail(&shown, e),
        None => Fail::new(
            libc::ENOENT,
            format!("{shown:?}: executable file not found in $PATH"),
        ),
    }
}

fn exec_fail(shown: &str, e: Errno) -> Fail {
    let hint = match e {
        Errno::EACCES => " (is it a directory, or not executable?)",
        Errno::ENOEXEC => " (not a binary for this machine, or a script without #!)",
        _ => "",
    };
    Fail::new(
        e as i32,
        format!("{shown:?}: {}{hint}", e.desc().to_lowercase()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_candidates() {
        let env = [CString::new("PATH=/a:/b").unwrap()];
        let c = candidates(c"ls", &env);
        assert_eq!(
            c,
            [
                CString::new("/a/ls").unwrap(),
                CString::new("/b/ls").unwrap()
            ]
        );
        assert_eq!(candidates(c"./x", &env), [CString::new("./x").unwrap()]);
        assert_eq!(candidates(c"ls", &[]).len(), 6);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code_for(libc::ENOENT), 127);
        assert_eq!(exit_code_for(libc::EACCES), 126);
        assert_eq!(exit_code_for(libc::ENOEXEC), 126);
    }
}
