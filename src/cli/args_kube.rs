//! `box kube ...` and `box play kube`: the clap definitions (declared apart from
//! `args.rs`; `Command::Kube` and `Command::Play` are the lines there).
use clap::{Args, Subcommand};

use super::args::GenerateKubeArgs;

const EX_KUBE_PLAY: &str = "\
Examples:
  # Create and start the pods, containers and volumes of a file
  box kube play app.yaml
  # From stdin, replacing what an earlier play of it made
  box generate kube web | box kube play --replace -
  # Remove the pods again (PersistentVolumeClaim volumes are kept)
  box kube down app.yaml";

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum KubeCommand {
    /// Create and start pods, containers and volumes from Kubernetes YAML
    #[command(after_help = EX_KUBE_PLAY)]
    Play(KubePlayArgs),
    /// Remove the pods (and their emptyDir volumes) a Kubernetes YAML file describes
    Down(KubeDownArgs),
    /// Print a Kubernetes Pod for containers or a pod (as box generate kube)
    Generate(GenerateKubeArgs),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum PlayCommand {
    /// Create and start pods, containers and volumes from Kubernetes YAML (as box kube play)
    #[command(after_help = EX_KUBE_PLAY)]
    Kube(KubePlayArgs),
}

#[derive(Debug, Args)]
pub struct KubePlayArgs {
    /// Remove what the file describes first (as box kube down), then play it
    #[arg(long)]
    pub replace: bool,
    /// Remove what the file describes instead of playing it (as box kube down)
    #[arg(long, conflicts_with = "replace")]
    pub down: bool,
    /// Put the pods on this user network (box network create) instead of the default
    #[arg(long = "network", visible_alias = "net", value_name = "NETWORK")]
    pub network: Option<String>,
    /// Start the pods once created
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub start: bool,
    /// Kubernetes YAML file, or - for stdin
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: String,
}

#[derive(Debug, Args)]
pub struct KubeDownArgs {
    /// Kubernetes YAML file, or - for stdin
    #[arg(value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: String,
}
