//! A container's healthcheck, decided at create from `--health-*` and the image's
//! `HEALTHCHECK` (docker's rules: flags override the image field by field; `--health-cmd
//! none` or `--no-healthcheck` turn it off), and what to do when it fails.
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::units::{go_duration, parse_go_duration};

/// docker's and podman's defaults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_RETRIES: u32 = 3;
/// docker's default interval during the start period when `--health-start-interval` is
/// set without a value (never: box requires a value) — kept for the image field `0`.
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

/// The check, as the image configuration's `Healthcheck` holds it (durations in ns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["CMD-SHELL", "cmd"]` or `["CMD", "arg0", ...]`.
    pub test: Vec<String>,
    /// Between checks; 0: no scheduled checks (`--health-interval disable`), only
    /// `box healthcheck run`.
    #[serde(default)]
    pub interval: u64,
    #[serde(default)]
    pub timeout: u64,
    #[serde(default)]
    pub start_period: u64,
    /// Between checks during the start period (0: `interval`).
    #[serde(default)]
    pub start_interval: u64,
    #[serde(default)]
    pub retries: u32,
}

impl Healthcheck {
    /// The argv to exec in the container: `/bin/sh -c CMD` for the shell form.
    pub fn argv(&self) -> Vec<String> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
            }
            Some((kind, rest)) if kind == "CMD" => rest.to_vec(),
            _ => Vec::new(),
        }
    }

    pub fn interval(&self) -> Option<Duration> {
        (self.interval > 0).then(|| Duration::from_nanos(self.interval))
    }
    pub fn timeout(&self) -> Duration {
        match self.timeout {
            0 => DEFAULT_TIMEOUT,
            n => Duration::from_nanos(n),
        }
    }
    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }
    /// The interval while in the start period.
    pub fn start_interval(&self) -> Option<Duration> {
        (self.start_interval > 0).then(|| Duration::from_nanos(self.start_interval))
    }
    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }

    /// The healthcheck an image configuration (its JSON) declares, if any: docker's
    /// `config.Healthcheck`. `["NONE"]` is none.
    pub fn from_image_config(config: &serde_json::Value) -> Option<Healthcheck> {
        let hc: Healthcheck =
            serde_json::from_value(config.get("config")?.get("Healthcheck")?.clone()).ok()?;
        match hc.test.first().map(String::as_str) {
            Some("CMD" | "CMD-SHELL") => Some(hc),
            _ => None,
        }
    }
}

/// `--health-on-failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    None,
    Kill,
    Restart,
    Stop,
}

impl OnFailure {
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::None => "none",
            OnFailure::Kill => "kill",
            OnFailure::Restart => "restart",
            OnFailure::Stop => "stop",
        }
    }
}

/// The `--health-*` flags as given.
#[derive(Debug, Clone, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    pub on_failure: Option<String>,
    pub no_healthcheck: bool,
}

fn duration(flag: &str, v: &str, min: Duration) -> Result<u64, Error> {
    let d = parse_go_duration(v).ok_or_else(|| {
        Error::Invalid(format!(
            "invalid {flag} {v:?}: use a duration such as 30s, 1m30s or 500ms"
        ))
    })?;
    if d < min {
        return Err(Error::Invalid(format!(
            "{flag} {v:?} is too short: use at least {}",
            go_duration(min)
        )));
    }
    Ok(d.as_nanos() as u64)
}

/// The healthcheck and the failure action a container gets from the flags and the image.
pub fn decide(
    flags: &HealthFlags,
    image: Option<&Healthcheck>,
) -> Result<(Option<Healthcheck>, OnFailure), Error> {
    let on_failure = match flags.on_failure.as_deref() {
        None | Some("none") => OnFailure::None,
        Some("kill") => OnFailure::Kill,
        Some("restart") => OnFailure::Restart,
        Some("stop") => OnFailure::Stop,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "invalid --health-on-failure {other:?}: use none, kill, restart or stop"
            )));
        }
    };
    let none_cmd = flags.cmd.as_deref().is_some_and(|c| c.trim() == "none");
    if flags.no_healthcheck && flags.cmd.is_some() && !none_cmd {
        return Err(Error::Invalid(
            "--no-healthcheck and --health-cmd conflict: give one of them".into(),
        ));
    }
    // Every value is checked even when no check results, so a typo never passes.
    let one_second = Duration::from_secs(1);
    let interval = match flags.interval.as_deref() {
        Some("disable") => Some(0),
        Some(v) => Some(duration("--health-interval", v, one_second)?),
        None => None,
    };
    let timeout = flags
        .timeout
        .as_deref()
        .map(|v| duration("--health-timeout", v, one_second))
        .transpose()?;
    let start_period = flags
        .start_period
        .as_deref()
        .map(|v| duration("--health-start-period", v, Duration::ZERO))
        .transpose()?;
    let start_interval = flags
        .start_interval
        .as_deref()
        .map(|v| duration("--health-start-interval", v, one_second))
        .transpose()?;
    if flags.retries == Some(0) {
        return Err(Error::Invalid(
            "invalid --health-retries 0: use 1 or more".into(),
        ));
    }
    if flags.no_healthcheck || none_cmd {
        return Ok((None, on_failure));
    }
    let mut hc = match (&flags.cmd, image) {
        (Some(cmd), base) => {
            let test = if cmd.trim_start().starts_with('[') {
                let argv: Vec<String> = serde_json::from_str(cmd).map_err(|e| {
                    Error::Invalid(format!(
                        "invalid --health-cmd {cmd:?}: a JSON array of strings ({e}) or a shell command"
                    ))
                })?;
                if argv.is_empty() {
                    return Err(Error::Invalid(
                        "invalid --health-cmd []: give the command to run".into(),
                    ));
                }
                // `["CMD", ...]`/`["CMD-SHELL", ...]` as docker writes it, else exec form.
                match argv[0].as_str() {
                    "CMD" | "CMD-SHELL" => argv,
                    "NONE" => return Ok((None, on_failure)),
                    _ => std::iter::once("CMD".to_string()).chain(argv).collect(),
                }
            } else if cmd.trim().is_empty() {
                return Err(Error::Invalid(
                    "--health-cmd is empty: give the command to run, or none".into(),
                ));
            } else {
                vec!["CMD-SHELL".to_string(), cmd.clone()]
            };
            Healthcheck {
                test,
                ..base.cloned().unwrap_or_default()
            }
        }
        (None, Some(base)) => base.clone(),
        (None, None) => return Ok((None, on_failure)),
    };
    if let Some(v) = interval {
        hc.interval = v;
    } else if hc.interval == 0 {
        hc.interval = DEFAULT_INTERVAL.as_nanos() as u64;
    }
    hc.timeout = timeout.unwrap_or(if hc.timeout == 0 {
        DEFAULT_TIMEOUT.as_nanos() as u64
    } else {
        hc.timeout
    });
    if let Some(v) = start_period {
        hc.start_period = v;
    }
    if let Some(v) = start_interval {
        hc.start_interval = v;
    }
    if let Some(r) = flags.retries {
        hc.retries = r;
    } else if hc.retries == 0 {
        hc.retries = DEFAULT_RETRIES;
    }
    Ok((Some(hc), on_failure))
}

/// A Containerfile `HEALTHCHECK` instruction's arguments (what `--change`, and a build,
/// give): `NONE`, or `[--interval=D] [--timeout=D] [--start-period=D]
/// [--start-interval=D] [--retries=N] CMD command` (shell form, or a JSON array).
pub fn parse_instruction(args: &str) -> Result<Healthcheck, Error> {
    let bad = |m: String| Error::Invalid(format!("HEALTHCHECK {args}: {m}"));
    let mut hc = Healthcheck::default();
    let mut rest = args.trim();
    if rest.eq_ignore_ascii_case("NONE") {
        hc.test = vec!["NONE".into()];
        return Ok(hc);
    }
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| bad(format!("--{word}: use --{word}=VALUE")))?;
        let dur = |v: &str| {
            parse_go_duration(v)
                .map(|d| d.as_nanos() as u64)
                .ok_or_else(|| bad(format!("--{k}={v}: not a duration (30s, 1m30s)")))
        };
        match k {
            "interval" => hc.interval = dur(v)?,
            "timeout" => hc.timeout = dur(v)?,
            "start-period" => hc.start_period = dur(v)?,
            "start-interval" => hc.start_interval = dur(v)?,
            "retries" => {
                hc.retries = v
                    .parse()
                    .map_err(|_| bad(format!("--retries={v}: not a number")))?
            }
            _ => return Err(bad(format!("unknown flag --{k}"))),
        }
        rest = after.trim_start();
    }
    let (cmd, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !cmd.eq_ignore_ascii_case("CMD") || rest.trim().is_empty() {
        return Err(bad("use NONE or [OPTIONS] CMD command".into()));
    }
    let rest = rest.trim();
    hc.test = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(argv) => std::iter::once("CMD".to_string()).chain(argv).collect(),
        Err(_) => vec!["CMD-SHELL".into(), rest.into()],
    };
    Ok(hc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(cmd: &str) -> HealthFlags {
        HealthFlags {
            cmd: Some(cmd.into()),
            ..Default::default()
        }
    }

    #[test]
    fn shell_exec_and_none_forms() {
        let (hc, _) = decide(&flags("test -e /tmp/ok"), None).unwrap();
        let hc = hc.unwrap();
        assert_eq!(hc.test, ["CMD-SHELL", "test -e /tmp/ok"]);
        assert_eq!(hc.argv(), ["/bin/sh", "-c", "test -e /tmp/ok"]);
        assert_eq!(hc.interval(), Some(DEFAULT_INTERVAL));
        assert_eq!(hc.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(hc.retries(), 3);
        let (hc, _) = decide(&flags(r#"["/bin/true", "x"]"#), None).unwrap();
        assert_eq!(hc.unwrap().argv(), ["/bin/true", "x"]);
        let (hc, _) = decide(&flags(r#"["CMD-SHELL", "exit 1"]"#), None).unwrap();
        assert_eq!(hc.unwrap().argv(), ["/bin/sh", "-c", "exit 1"]);
        let image = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 5_000_000_000,
            ..Default::default()
        };
        assert_eq!(decide(&flags("none"), Some(&image)).unwrap().0, None);
        let no = HealthFlags {
            no_healthcheck: true,
            ..Default::default()
        };
        assert_eq!(decide(&no, Some(&image)).unwrap().0, None);
    }

    #[test]
    fn flags_override_the_image_field_by_field() {
        let image = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: 5_000_000_000,
            retries: 7,
            ..Default::default()
        };
        let f = HealthFlags {
            timeout: Some("2s".into()),
            interval: Some("disable".into()),
            on_failure: Some("restart".into()),
            ..Default::default()
        };
        let (hc, on) = decide(&f, Some(&image)).unwrap();
        let hc = hc.unwrap();
        assert_eq!(hc.test, ["CMD", "true"]);
        assert_eq!(hc.interval(), None);
        assert_eq!(hc.timeout(), Duration::from_secs(2));
        assert_eq!(hc.retries(), 7);
        assert_eq!(on, OnFailure::Restart);
        let (hc, _) = decide(&HealthFlags::default(), Some(&image)).unwrap();
        assert_eq!(hc.unwrap().interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for f in [
            HealthFlags {
                interval: Some("10".into()),
                ..flags("true")
            },
            HealthFlags {
                timeout: Some("1x".into()),
                ..flags("true")
            },
            HealthFlags {
                interval: Some("100ms".into()),
                ..flags("true")
            },
            HealthFlags {
                retries: Some(0),
                ..flags("true")
            },
            HealthFlags {
                on_failure: Some("explode".into()),
                ..flags("true")
            },
            flags("[not json"),
            flags(""),
        ] {
            let e = decide(&f, None).unwrap_err().to_string();
            assert!(!e.contains('\n') && e.contains("health"), "{e}");
        }
    }

    #[test]
    fn image_config_healthcheck() {
        let cfg = serde_json::json!({"config": {"Healthcheck": {
            "Test": ["CMD-SHELL", "curl -f http://localhost/"],
            "Interval": 10_000_000_000u64, "Timeout": 3_000_000_000u64, "Retries": 2}}});
        let hc = Healthcheck::from_image_config(&cfg).unwrap();
        assert_eq!(hc.interval(), Some(Duration::from_secs(10)));
        assert_eq!(hc.retries(), 2);
        let none = serde_json::json!({"config": {"Healthcheck": {"Test": ["NONE"]}}});
        assert_eq!(Healthcheck::from_image_config(&none), None);
    }

    #[test]
    fn healthcheck_instructions() {
        let hc = parse_instruction("--interval=1s --retries=2 CMD test -e /tmp/ok").unwrap();
        assert_eq!(hc.test, ["CMD-SHELL", "test -e /tmp/ok"]);
        assert_eq!(hc.interval(), Some(Duration::from_secs(1)));
        assert_eq!(hc.retries(), 2);
        let hc = parse_instruction(r#"CMD ["/bin/true"]"#).unwrap();
        assert_eq!(hc.test, ["CMD", "/bin/true"]);
        assert_eq!(parse_instruction("NONE").unwrap().test, ["NONE"]);
        for bad in [
            "",
            "--interval=x CMD true",
            "--bogus=1 CMD true",
            "RUN true",
            "CMD",
        ] {
            assert!(parse_instruction(bad).is_err(), "{bad}");
        }
    }
}
