//! `run`/`create`'s healthcheck flags and `box healthcheck` (kept apart from `args.rs`,
//! which only flattens and names them).
use clap::{Args, Subcommand};

pub(super) const EX_HEALTHCHECK_RUN: &str = "\
Examples:
  # A container with a check every 10 s
  box run -d --name web --health-cmd 'wget -q -O /dev/null http://localhost/' --health-interval 10s nginx
  # Run its check now: exit 0 healthy, 1 unhealthy
  box healthcheck run web
  # Its state and the last results
  box inspect --format '{{json .State.Health}}' web";

// The `--health-*` flags of `run` and `create`.
#[derive(Debug, Args, Clone, Default)]
pub struct HealthOpts {
    /// Check the container's health with this command: a shell command, a JSON array (exec
    /// form), or none [default: the image's HEALTHCHECK]
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between checks, e.g. 30s, 1m; disable: only box healthcheck run [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Time a check may take before it counts as failed [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Consecutive failures that make the container unhealthy [default: 3]
    #[arg(long, value_name = "N")]
    pub health_retries: Option<u32>,
    /// Time after the start during which failures do not count [default: 0s]
    #[arg(long, value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period [default: the interval]
    #[arg(long, value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// What to do when the container becomes unhealthy
    #[arg(long, value_name = "ACTION", value_parser = ["none", "kill", "restart", "stop"])]
    pub health_on_failure: Option<String>,
    /// Disable the image's HEALTHCHECK
    #[arg(long)]
    pub no_healthcheck: bool,
}

impl HealthOpts {
    pub fn flags(&self) -> crate::spec::health::HealthFlags {
        crate::spec::health::HealthFlags {
            cmd: self.health_cmd.clone(),
            interval: self.health_interval.clone(),
            timeout: self.health_timeout.clone(),
            retries: self.health_retries,
            start_period: self.health_start_period.clone(),
            start_interval: self.health_start_interval.clone(),
            on_failure: self.health_on_failure.clone(),
            no_healthcheck: self.no_healthcheck,
        }
    }
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum HealthcheckCommand {
    /// Run a container's healthcheck once: exit 0 healthy, 1 unhealthy, 125 error
    #[command(after_help = EX_HEALTHCHECK_RUN)]
    Run(HealthcheckRunArgs),
}

#[derive(Debug, Args)]
pub struct HealthcheckRunArgs {
    /// The container (name or id)
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}
