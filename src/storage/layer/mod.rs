//! Layers made from a container: `box commit`, `box diff`, `box export` (and later
//! `box build`).
//!
//! - `tree`: a directory tree as a tar stream, walked through descriptors (never a path
//!   a container could swap for a symlink), sorted, mtimes clamped: either an overlay
//!   upper directory as an OCI layer (0/0 character devices → `.wh.NAME`, opaque
//!   directories → `.wh..wh..opq`, overlay's own xattrs dropped), or a merged root as
//!   the container sees it (other mounts not entered). Hard links stay hard links.
//! - `changes`: what an upper directory adds, changes and deletes relative to the layers
//!   below it (`A`/`C`/`D` as docker prints them).
//! - `image`: a new image from a base image and a layer blob written by `tree`.
//!
//! Owners are written as `stat` shows them: callers run the walk as root of the
//! container's user namespace (`monitor::cp_ns`), where they are the container's ids.
use std::io;

mod changes;
mod image;
mod tree;

pub use changes::{Change, Kind as ChangeKind, changes};
pub use image::{CommitOptions, commit_image};
pub use tree::{Digests, Mode, Options, write_layer, write_tree};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error(transparent)]
    Store(#[from] super::Error),
    #[error(transparent)]
    Archive(#[from] super::archive::Error),
    /// A refusal explained in full.
    #[error("{0}")]
    Invalid(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub(crate) fn sys_err(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}
