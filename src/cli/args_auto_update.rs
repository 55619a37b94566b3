//! `box auto-update`'s flags (kept apart from `args.rs`, which only names the variant).
use clap::Args;

pub(super) const EX_AUTO_UPDATE: &str = "\
Examples:
  # Which systemd-managed containers have a newer image (nothing is changed)
  box auto-update --dry-run
  # Pull the new images and restart their units, rolling back a unit that fails
  box auto-update";

#[derive(Debug, Args, Clone, Default)]
pub struct AutoUpdateArgs {
    /// Only say which containers would be updated
    #[arg(long)]
    pub dry_run: bool,
    /// Go back to the previous image when the restarted unit fails
    #[arg(long, value_name = "BOOL", default_value_t = true, default_missing_value = "true", num_args = 0..=1, action = clap::ArgAction::Set)]
    pub rollback: bool,
    /// Print each result with a Go template, or as JSON (json)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Allow plain http (and unverified TLS) for the registries
    #[arg(long = "tls-verify", value_name = "BOOL", default_missing_value = "true", num_args = 0..=1)]
    pub tls_verify: Option<bool>,
}
