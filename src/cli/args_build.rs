//! `box build` (also `box image build`): its flags.
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::args::PullPolicy;

/// `box build --pull`'s values: podman 4.3's for build, where `true` (and `--pull` alone)
/// means always and `false` means missing; `box run --pull` keeps its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum BuildPullPolicy {
    /// Pull only when the image is not in the store
    #[default]
    #[value(alias = "false")]
    Missing,
    /// Always pull
    #[value(alias = "true")]
    Always,
    /// Never pull; fail when missing
    Never,
    /// Pull when the registry has a newer image
    Newer,
}

impl From<BuildPullPolicy> for PullPolicy {
    fn from(p: BuildPullPolicy) -> PullPolicy {
        match p {
            BuildPullPolicy::Missing => PullPolicy::Missing,
            BuildPullPolicy::Always => PullPolicy::Always,
            BuildPullPolicy::Never => PullPolicy::Never,
            BuildPullPolicy::Newer => PullPolicy::Newer,
        }
    }
}

pub(crate) const EX_BUILD: &str = "\
Examples:
  # Build the Containerfile (or Dockerfile) of the current directory, named app:1
  box build -t app:1 .
  # Another file, a build argument, and only the stage named test
  box build -f ci/Containerfile --build-arg VERSION=2 --target test -t app:test .
  # Print only the image id; always pull the base image
  box build -q --pull=always .
  # A secret for the RUN lines that mount it (RUN --mount=type=secret,id=token ...)
  box build --secret id=token,src=$HOME/.token -t app .";
pub(crate) const EX_IMAGE_BUILD: &str = "\
Examples:
  box image build -t app:1 .";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum BuildFormat {
    /// OCI image manifest and config
    #[default]
    Oci,
    /// Docker v2s2 manifest and config
    Docker,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name the image (repeatable); a short name is localhost/NAME:latest
    #[arg(short, long, value_name = "NAME[:TAG]")]
    pub tag: Vec<String>,
    /// The Containerfile ('-' reads it from stdin) [default: Containerfile, then
    /// Dockerfile, in the context]
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: Option<PathBuf>,
    /// Set a build argument: KEY=VALUE, or KEY to take it from the environment
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_arg: Vec<String>,
    /// Build this stage (and the stages it needs) instead of the last
    #[arg(long, value_name = "STAGE", value_hint = clap::ValueHint::Other)]
    pub target: Option<String>,
    /// Run every step again instead of reusing the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// When to pull base images ('--pull' alone or true: always; false: missing)
    #[arg(long, value_enum, value_name = "POLICY", num_args = 0..=1, require_equals = true,
          default_missing_value = "always", default_value_t = BuildPullPolicy::Missing)]
    pub pull: BuildPullPolicy,
    /// Print only the image id (RUN output goes to stderr)
    #[arg(short, long)]
    pub quiet: bool,
    /// Add a label to the image
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// The platform to build for: only this host's is supported
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Write the image id to this file
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub iidfile: Option<PathBuf>,
    /// Network for RUN steps: default, none, host, pasta or slirp4netns
    #[arg(long, value_name = "MODE")]
    pub network: Option<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (mounted at
    /// /run/secrets/ID)
    #[arg(long, value_name = "id=ID,src=FILE", value_hint = clap::ValueHint::Other)]
    pub secret: Vec<String>,
    /// Manifest and config format of the image
    #[arg(long, value_enum, default_value_t = BuildFormat::Oci)]
    pub format: BuildFormat,
    /// Clamp file times and set creation times to this Unix time [default:
    /// $SOURCE_DATE_EPOCH]
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<u64>,
    /// One layer and cache entry per step (false: one new layer per stage)
    #[arg(long, value_name = "BOOL", default_missing_value = "true", num_args = 0..=1, require_equals = true,
          default_value_t = true, action = clap::ArgAction::Set)]
    pub layers: bool,
    /// Merge the final image's new layers into one
    #[arg(long)]
    pub squash: bool,
    /// Remove the build containers after each step (always done; accepted for podman)
    #[arg(long, value_name = "BOOL", default_missing_value = "true", num_args = 0..=1, require_equals = true)]
    pub rm: Option<bool>,
    /// Remove the build containers even after a failure (always done; accepted for podman)
    #[arg(long, value_name = "BOOL", default_missing_value = "true", num_args = 0..=1, require_equals = true)]
    pub force_rm: Option<bool>,
    /// The build context directory
    #[arg(value_name = "CONTEXT", default_value = ".", value_hint = clap::ValueHint::DirPath)]
    pub context: PathBuf,
}
