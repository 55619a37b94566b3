//! `box events`' flags (kept apart from `args.rs`, which only names the variant).
use clap::Args;

pub(super) const EX_EVENTS: &str = "\
Examples:
  # Follow new events as they happen
  box events
  # What happened in the last 10 minutes, then stop
  box events --since 10m --stream=false
  # One container's starts and deaths, as JSON lines
  box events --filter container=web --filter event=start --filter event=died --format '{{json .}}'
  # Your own line per event
  box events --since 1h --stream=false --format '{{.Time}} {{.Type}} {{.Status}} {{.Name}}'";

#[derive(Debug, Args, Clone, Default)]
pub struct EventsArgs {
    /// Show the events since this time: RFC 3339, Unix time, or a duration ago (10m, 1h30m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Show the events until this time (same forms as --since); stop streaming then
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only events that match: container=, image=, event=, type=, label=KEY[=VALUE],
    /// volume=, network=, pod= (the same key repeated: any; different keys: all)
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Print each event with a Go template, or as JSON ('json' or '{{json .}}')
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Keep waiting for new events (--stream=false: print the past ones and exit)
    #[arg(long, value_name = "BOOL", default_value_t = true, default_missing_value = "true", num_args = 0..=1, action = clap::ArgAction::Set)]
    pub stream: bool,
    /// Show full ids (--no-trunc=false: the first 12 digits)
    #[arg(long, value_name = "BOOL", default_value_t = true, default_missing_value = "true", num_args = 0..=1, action = clap::ArgAction::Set)]
    pub no_trunc: bool,
}
