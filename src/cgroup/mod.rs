//! cgroup v2: detection, delegation, per-container leaves and limits.
//!
//! box only ever uses cgroup v2 and only where the user may write (a delegated subtree).
//! On v1 or hybrid hosts without v2 controllers it runs without limits when none were
//! asked for, and refuses with the fix when a limit was asked for.
mod detect;

pub use detect::{Hierarchy, Summary, detect};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}
