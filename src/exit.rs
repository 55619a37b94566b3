//! Docker's exit-code convention and the one place errors become exit codes.
//!
//! 125: box's own error; 126: the command cannot be invoked; 127: the command was not
//! found; otherwise the container's status, or 128+N when it was killed by signal N.

/// box itself failed (bad flag, missing image, storage error, ...).
pub const BOX_ERROR: u8 = 125;
/// The container command exists but could not be invoked (permission, is a directory).
pub const CANNOT_INVOKE: u8 = 126;
/// The container command was not found.
pub const NOT_FOUND: u8 = 127;

/// An error that carries its own exit code (126/127 from the container's exec, or a code
/// that must be passed through). Modules wrap it in their own error enums and expose it
/// through `anyhow` so that `code_of` can find it anywhere in the chain.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

impl Coded {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Coded {
            code,
            message: message.into(),
        }
    }
}

/// The exit code for an error: the first `Coded` in its chain, else 125.
pub fn code_of(err: &anyhow::Error) -> u8 {
    error_code(err.as_ref())
}

/// `code_of` for any error (a module's own enum).
pub fn error_code(err: &(dyn std::error::Error + 'static)) -> u8 {
    chain(err)
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.code))
        .unwrap_or(BOX_ERROR)
}

/// An error and its sources, outermost first.
fn chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |e| e.source())
}

/// Exit status of a waited-for process in docker's convention.
pub fn from_wait(status: nix::sys::wait::WaitStatus) -> u8 {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => (code & 0xff) as u8,
        WaitStatus::Signaled(_, sig, _) => 128u8.wrapping_add(sig as i32 as u8),
        _ => BOX_ERROR,
    }
}

/// Render an error as one line: `what failed: why`, lower-case, no trailing period.
pub fn one_line(err: &anyhow::Error) -> String {
    error_line(err.as_ref())
}

/// `one_line` for any error (a module's own enum).
pub fn error_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in chain(err) {
        let s = cause.to_string();
        let s = s.trim().replace('\n', " ");
        // anyhow chains often repeat the inner message in the outer one; keep it once.
        if parts.last().is_some_and(|p| p.ends_with(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;
    use nix::unistd::Pid;

    #[test]
    fn codes_follow_docker() {
        let p = Pid::from_raw(1);
        assert_eq!(from_wait(WaitStatus::Exited(p, 0)), 0);
        assert_eq!(from_wait(WaitStatus::Exited(p, 32)), 32);
        assert_eq!(
            from_wait(WaitStatus::Signaled(p, Signal::SIGINT, false)),
            130
        );
        assert_eq!(
            from_wait(WaitStatus::Signaled(p, Signal::SIGTERM, false)),
            143
        );
        assert_eq!(
            from_wait(WaitStatus::Signaled(p, Signal::SIGKILL, true)),
            137
        );
    }

    #[test]
    fn coded_error_found_in_chain() {
        let e = anyhow::Error::new(Coded::new(127, "nope: not found")).context("running");
        assert_eq!(code_of(&e), 127);
        let plain = anyhow::anyhow!("boom");
        assert_eq!(code_of(&plain), 125);
    }

    #[test]
    fn one_line_joins_chain() {
        let e = anyhow::anyhow!("disk full").context("writing blob");
        assert_eq!(one_line(&e), "writing blob: disk full");
    }
}
