//! `box quadlet`'s flags (kept apart from `args.rs`, which only names the variant).
use std::path::PathBuf;

use clap::Args;

pub(super) const EX_QUADLET: &str = "\
Examples:
  # What the generator would make of ~/.config/box/systemd/ (.container, .volume, .image,
  # .network, .pod, .kube files)
  box quadlet --dryrun
  # Install the generator once (scripts/install does), then after each change:
  systemctl --user daemon-reload && systemctl --user start web.service";

#[derive(Debug, Args, Clone, Default)]
pub struct QuadletArgs {
    /// Print the units on stdout instead of writing them
    #[arg(long)]
    pub dryrun: bool,
    /// Accepted for podman's quadlet command line (box's units are always user units)
    #[arg(long)]
    pub user: bool,
    /// Where to write the units (what systemd passes a generator)
    #[arg(value_name = "OUTPUT_DIR", value_hint = clap::ValueHint::DirPath)]
    pub output_dir: Option<PathBuf>,
}
