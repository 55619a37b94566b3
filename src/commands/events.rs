//! `box events`: the user's event log (`crate::events`), filtered and printed as podman
//! does; followed with inotify until `--until` or forever.
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::args::EventsArgs;
use crate::events::{self, Event, Follower, Kind};
use crate::monitor::log::parse_since;
use crate::template::Template;

pub fn events(ctx: &Ctx, args: EventsArgs) -> Result<u8> {
    let now = SystemTime::now();
    let time = |flag: &str, v: &Option<String>| -> Result<Option<SystemTime>> {
        v.as_deref()
            .map(|s| {
                parse_since(s, now).with_context(|| {
                    format!("invalid {flag} {s:?}: use an RFC 3339 time, a Unix time or a duration like 10m")
                })
            })
            .transpose()
    };
    let since = time("--since", &args.since)?;
    let until = time("--until", &args.until)?;
    let filters = Filters::parse(&args.filter)?;
    let out = Output::new(args.format.as_deref(), args.no_trunc)?;
    let keep = |e: &Event| {
        let t = e.when();
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u) && filters.matches(e)
    };
    let dir = events::dir(&ctx.paths);
    let mut stdout = std::io::stdout().lock();
    if !args.stream {
        for e in events::read_all(&dir)?.iter().filter(|e| keep(e)) {
            out.print(&mut stdout, e)?;
        }
        return Ok(0);
    }
    // Streaming: the past too when a time range is asked for (podman), then what comes.
    let past = since.is_some() || until.is_some();
    let mut follower = Follower::new(&dir, past)?;
    if past {
        let rotated = dir.join("events.log.1");
        if let Ok(bytes) = std::fs::read(&rotated) {
            for e in bytes
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice::<Event>(l).ok())
                .filter(|e| keep(e))
            {
                out.print(&mut stdout, &e)?;
            }
        }
    }
    // Stop at --until: as an Instant, for the waits.
    let deadline = until.map(|u| match u.duration_since(SystemTime::now()) {
        Ok(left) => Instant::now() + left,
        Err(_) => Instant::now(),
    });
    loop {
        let batch = follower.next(deadline)?;
        if batch.is_empty() {
            return Ok(0); // --until passed
        }
        for e in batch.iter().filter(|e| keep(e)) {
            out.print(&mut stdout, e)?;
        }
        stdout.flush()?;
    }
}

/// `--filter KEY=VALUE`s: values of one key are alternatives, keys must all match.
struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    fn parse(args: &[String]) -> Result<Filters> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in args {
            let Some((k, v)) = f.split_once('=') else {
                bail!(
                    "invalid filter {f:?}: use KEY=VALUE (container, image, event, type, label, volume, network, pod)"
                );
            };
            match k {
                "container" | "image" | "event" | "type" | "label" | "volume" | "network"
                | "pod" => m.entry(k.to_string()).or_default().push(v.to_string()),
                _ => bail!(
                    "invalid filter {k:?}: use container, image, event, type, label, volume, network or pod"
                ),
            }
        }
        Ok(Filters(m))
    }

    fn matches(&self, e: &Event) -> bool {
        self.0
            .iter()
            .all(|(k, vals)| vals.iter().any(|v| one(k, v, e)))
    }
}

/// One filter against one event, as podman's `generateEventFilter`.
fn one(key: &str, v: &str, e: &Event) -> bool {
    let id_or_name =
        |kind: Kind| e.kind == kind && (e.name == v || (!v.is_empty() && e.id.starts_with(v)));
    match key {
        "container" => id_or_name(Kind::Container),
        "pod" => id_or_name(Kind::Pod),
        "volume" => e.kind == Kind::Volume && e.name == v,
        "network" => e.kind == Kind::Network && (e.network == v || e.id.starts_with(v)),
        "image" => {
            e.image == v
                || (e.kind == Kind::Image
                    && (e.name == v
                        || (!v.is_empty() && e.id.starts_with(v.trim_start_matches("sha256:")))))
                || short_name(&e.image) == v
                || (e.kind == Kind::Image && short_name(&e.name) == v)
        }
        "event" => e.status == v,
        "type" => e.kind.name() == v,
        "label" => {
            let (lk, lv) = match v.split_once('=') {
                Some((k, val)) => (k, Some(val)),
                None => (v, None),
            };
            e.attributes
                .as_ref()
                .and_then(|a| a.get(lk))
                .is_some_and(|have| lv.is_none_or(|want| have == want))
        }
        _ => false,
    }
}

/// `docker.io/library/alpine:latest` → `alpine`, so `image=alpine` matches as in podman.
fn short_name(full: &str) -> &str {
    let last = full.rsplit('/').next().unwrap_or(full);
    last.split([':', '@']).next().unwrap_or(last)
}

enum Output {
    Human { trunc: bool },
    Json,
    Template(Template),
}

impl Output {
    fn new(format: Option<&str>, no_trunc: bool) -> Result<Output> {
        Ok(match format.map(str::trim) {
            None | Some("") => Output::Human { trunc: !no_trunc },
            Some("json" | "{{json .}}" | "{{ json . }}") => Output::Json,
            Some(t) => Output::Template(
                Template::parse(&t.replace("\\t", "\t").replace("\\n", "\n"))
                    .with_context(|| format!("invalid --format {t:?}"))?,
            ),
        })
    }

    fn print(&self, w: &mut impl Write, e: &Event) -> Result<()> {
        match self {
            Output::Json => writeln!(w, "{}", serde_json::to_string(e)?)?,
            Output::Human { trunc } => writeln!(w, "{}", human(e, *trunc))?,
            Output::Template(t) => writeln!(w, "{}", t.render(&template_data(e))?)?,
        }
        Ok(())
    }
}

/// podman's `ToHumanReadable`.
fn human(e: &Event, trunc: bool) -> String {
    let time = crate::units::go_time(e.when());
    let id = if trunc {
        crate::container::short_id(&e.id)
    } else {
        &e.id
    };
    let (kind, status) = (e.kind.name(), &e.status);
    match e.kind {
        Kind::Container | Kind::Pod => {
            let mut s = format!(
                "{time} {kind} {status} {id} (image={}, name={}",
                e.image, e.name
            );
            if !e.health_status.is_empty() {
                s.push_str(&format!(", health_status={}", e.health_status));
            }
            if let Some(code) = e.exit_code {
                s.push_str(&format!(", containerExitCode={code}"));
            }
            for (k, v) in e.attributes.iter().flatten() {
                s.push_str(&format!(", {k}={v}"));
            }
            s.push(')');
            s
        }
        Kind::Network => format!(
            "{time} {kind} {status} {id} (container={id}, name={})",
            e.network
        ),
        Kind::Image => format!("{time} {kind} {status} {id} {}", e.name),
        Kind::Volume | Kind::System => format!("{time} {kind} {status} {}", e.name),
    }
}

/// What a `--format` template sees: podman's field names (and docker's Action and
/// TimeNano), Time as Go prints a time.
fn template_data(e: &Event) -> Value {
    let when = e.when();
    let nanos = when
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    json!({
        "ID": e.id,
        "Image": e.image,
        "Name": e.name,
        "Network": e.network,
        "Status": e.status,
        "Action": e.status,
        "Type": e.kind.name(),
        "Time": crate::units::go_time(when),
        "TimeNano": nanos,
        "HealthStatus": e.health_status,
        "ContainerExitCode": e.exit_code.unwrap_or(0),
        "Attributes": e.attributes.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(status: &str) -> Event {
        let mut e = Event::new(Kind::Container, status);
        e.time = "2026-12-03T23:59:01.123456789Z".into();
        e.id = "abcdef0123456789".into();
        e.name = "web".into();
        e.image = "docker.io/library/alpine:latest".into();
        e.attributes = Some(BTreeMap::from([("app".into(), "x".into())]));
        e
    }

    #[test]
    fn human_lines_as_podman() {
        assert_eq!(
            human(&ctr("start"), false),
            "2026-12-03 23:59:01.123456789 +0000 UTC container start abcdef0123456789 (image=docker.io/library/alpine:latest, name=web, app=x)"
        );
        let mut v = Event::new(Kind::Volume, "create");
        v.time = "2026-12-03T23:59:01Z".into();
        v.name = "data".into();
        assert_eq!(
            human(&v, true),
            "2026-12-03 23:59:01 +0000 UTC volume create data"
        );
    }

    #[test]
    fn filters_or_within_a_key_and_across_keys() {
        let f = Filters::parse(&[
            "event=start".into(),
            "event=died".into(),
            "container=web".into(),
        ])
        .unwrap();
        assert!(f.matches(&ctr("start")) && f.matches(&ctr("died")));
        assert!(!f.matches(&ctr("create")));
        let f = Filters::parse(&[
            "image=alpine".into(),
            "label=app=x".into(),
            "type=container".into(),
        ])
        .unwrap();
        assert!(f.matches(&ctr("start")));
        let f = Filters::parse(&["label=app=y".into()]).unwrap();
        assert!(!f.matches(&ctr("start")));
        let f = Filters::parse(&["container=abcdef".into()]).unwrap();
        assert!(f.matches(&ctr("start")));
        assert!(Filters::parse(&["bogus=1".into()]).is_err());
        assert!(Filters::parse(&["event".into()]).is_err());
    }
}
