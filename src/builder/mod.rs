//! `box build`'s executor: runs the stage plan of the front end (`crate::build`) against
//! the store, one instruction at a time.
//!
//! - `state`: what a stage has built so far (the image config as JSON, its diff_ids and
//!   layer blobs) and the metadata instructions (ENV, LABEL, CMD, ...) applied to it, with
//!   history entries as docker and buildah write them.
//! - `exec`: the build loop (stages, the cache, metadata instructions, the final commit);
//!   `steps`: the instructions that make layers (WORKDIR, RUN, COPY/ADD).
//! - `run_step`: RUN in a temporary box container made from the stage's layers (same user
//!   namespace mapping, security defaults and network as `box run`); its upper directory
//!   becomes the step's layer, as `box commit` makes one.
//! - `copy`: COPY and ADD: the sources (build context through directory fds, or another
//!   stage's or image's root inside its user namespace) written straight into a layer tar.
//! - `view`: the image being built as its layer directories show it (COPY destinations,
//!   symlinks, `--chown` names).
//! - `cache`: one file per step under `<store>/buildcache/`, keyed by the parent state, the
//!   expanded instruction, the ARGs in effect and the sources' content digest.
//!
//! Nothing is recorded as an image until the target stage is complete: a failed build
//! leaves only cache entries (and the layers they name) behind, never an image record.
mod cache;
mod copy;
mod exec;
mod run_step;
mod squash;
mod stale;
mod state;
mod steps;
mod view;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use cache::prune_locked as prune_cache_locked;
pub use exec::build;
pub use stale::{
    is_build_container, is_stale as is_stale_build_container,
    remove_stale as remove_stale_build_containers,
};

/// The media type of the layers a build writes.
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `--secret id=ID,src=PATH`.
#[derive(Debug, Clone)]
pub struct Secret {
    pub id: String,
    pub src: PathBuf,
}

/// `--format`: the manifest and media types of the built image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Oci,
    Docker,
}

/// What to build and how (the command line, typed).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The build context directory.
    pub context: PathBuf,
    /// The Containerfile's text and the name errors give it.
    pub file_text: String,
    pub file_name: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Names for the result (`-t`).
    pub tags: Vec<String>,
    pub no_cache: bool,
    pub pull: crate::storage::pull::Policy,
    /// `--label KEY=VALUE` for the final image.
    pub labels: Vec<(String, String)>,
    /// `--network` for RUN (none: box's default).
    pub network: Option<String>,
    pub secrets: Vec<Secret>,
    pub format: Format,
    /// `--timestamp` / SOURCE_DATE_EPOCH.
    pub timestamp: Option<u64>,
    /// `--layers` (default true): one layer per step and the cache; false: one layer per
    /// stage.
    pub layers: bool,
    /// `--squash`: the final image's new layers as one.
    pub squash: bool,
    /// `--platform`, checked against the host.
    pub platform: Option<String>,
    /// `--storage-driver`.
    pub driver: Option<crate::spec::Driver>,
    /// `-q`: RUN output goes to stderr, so that stdout is only the image id.
    pub quiet_output: bool,
}

/// Where the build reports.
pub trait Progress {
    /// A progress line (`STEP 2/5: RUN ...`, `--> 1234abcd`).
    fn line(&self, text: &str);
    /// Where pulls of base images report.
    fn pull(&self) -> &dyn crate::storage::pull::Progress;
}

/// The built image.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: crate::storage::Image,
    /// The names it got.
    pub names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Containerfile or an ignore file (already `file:line: ...`).
    #[error(transparent)]
    Front(#[from] crate::build::Error),
    /// A step failed: `file:line: what`.
    #[error("{file}:{line}: {msg}")]
    At {
        file: String,
        line: usize,
        msg: String,
    },
    /// A RUN exited with a non-zero status.
    #[error("{file}:{line}: error building at STEP \"{step}\": exit status {code}")]
    RunFailed {
        file: String,
        line: usize,
        step: String,
        code: u8,
    },
    /// Anything else, explained in full.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The exit code `box build` ends with: a failed RUN's own status (as podman), else 125.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::RunFailed { code, .. } => *code,
            _ => crate::exit::BOX_ERROR,
        }
    }
}
