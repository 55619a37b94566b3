//! `box attach`.
use clap::Args;

pub const EX_ATTACH: &str = "\
Examples:
  # Watch a detached container's output until it exits; Ctrl-C stops it (--sig-proxy)
  box attach web
  # The most recently created container, without forwarding signals
  box attach --latest --sig-proxy=false";

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Accepted for podman: a detached container's stdin is never open, so nothing is sent
    #[arg(long)]
    pub no_stdin: bool,
    /// Forward the signals box receives (INT, TERM, HUP, QUIT, USR1, USR2) to the container
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub sig_proxy: bool,
    /// Accepted for podman (there is no stdin to detach from: Ctrl-C with --sig-proxy=false
    /// detaches)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// The most recently created container
    #[arg(short, long, conflicts_with = "container")]
    pub latest: bool,
    /// Container (name or id)
    #[arg(value_name = "CONTAINER", required_unless_present = "latest")]
    pub container: Option<String>,
}
